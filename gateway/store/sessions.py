"""Browser sign-in: single-use login codes and the sessions they open.

Codes and session tokens carry 256 random bits and are stored only as their
SHA-256, so the database file alone opens no session.  A session's CSRF token
is derived from its session token and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.store.schema import open_database


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """Return the CSRF token of a session: an HMAC of its token."""
    return hmac.new(session_token.encode(), b"csrf", hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    user_id: str
    expires_at: float
    csrf_token: str


class SQLiteSessionStore:
    """Login codes and sessions in the users store's database file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_database(path)

    def create_login_code(self, user_id: str, lifetime: float) -> str:
        code = "gwl_" + secrets.token_urlsafe(32)
        self._db.execute(
            "INSERT INTO login_codes (code_hash, user_id, expires_at) VALUES (?, ?, ?)",
            (_digest(code), user_id, time.time() + lifetime),
        )
        return code

    def find_login_code(self, code: str) -> str | None:
        """Return the user id of a valid code without using it up."""
        row = self._db.execute(
            "SELECT user_id FROM login_codes "
            "WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?",
            (_digest(code), time.time()),
        ).fetchone()
        return None if row is None else row[0]

    def consume_login_code(self, code: str) -> str | None:
        """Return the user id of a valid code and mark it used, in one statement."""
        now = time.time()
        row = self._db.execute(
            "UPDATE login_codes SET used_at = ? "
            "WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? "
            "RETURNING user_id",
            (now, _digest(code), now),
        ).fetchone()
        return None if row is None else row[0]

    def create_session(self, user_id: str, lifetime: float) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = time.time()
        self._db.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (_digest(token), user_id, now, now + lifetime),
        )
        return token, Session(user_id, now + lifetime, csrf_token(token))

    def find_session(self, token: str) -> Session | None:
        row = self._db.execute(
            "SELECT user_id, expires_at FROM sessions "
            "WHERE token_hash = ? AND expires_at > ?",
            (_digest(token), time.time()),
        ).fetchone()
        return None if row is None else Session(row[0], row[1], csrf_token(token))

    def end_session(self, token: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM sessions WHERE token_hash = ?", (_digest(token),)
        )
        return cursor.rowcount > 0

    def remove_expired(self) -> int:
        """Delete expired sessions and used or expired codes; return how many."""
        now = time.time()
        sessions = self._db.execute(
            "DELETE FROM sessions WHERE expires_at <= ?", (now,)
        ).rowcount
        codes = self._db.execute(
            "DELETE FROM login_codes WHERE expires_at <= ? OR used_at IS NOT NULL",
            (now,),
        ).rowcount
        return sessions + codes

    def close(self) -> None:
        self._db.close()
