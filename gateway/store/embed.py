"""Embed sessions of service users: launch codes, the sessions they start, origins.

A partner's backend requests a session with its service user's API key and
gets a single-use launch code.  The iframe trades the code for the session's
credential: a cookie (`/embed/start`) or a short bearer token (the
postMessage path).  Codes and credentials carry 256 random bits and are
stored only as their SHA-256; a session row records the API key that created
it, so revoking the key ends the session.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gateway.store.audit import write_audit
from gateway.store.base import COMMAND_LINE, Actor
from gateway.store.schema import open_database
from gateway.store.sessions import csrf_token

TOKEN_PREFIX = "gwe_"
CODE_PREFIX = "gwc_"
_COLUMNS = ("id, user_id, origin, scope_kind, scope_id, credential, created_at, "
            "started_at, expires_at, revoked_at, code_expires_at")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class EmbedSession:
    id: str
    user_id: str
    origin: str
    scope_kind: str | None  # a resolver name, such as "chat"
    scope_id: str | None
    credential: str | None  # "cookie" or "bearer" once started
    created_at: float
    started_at: float | None
    expires_at: float | None
    revoked_at: float | None
    code_expires_at: float
    csrf_token: str | None = None  # only when found by its credential

    @property
    def scope(self) -> dict[str, str] | None:
        if self.scope_kind is None:
            return None
        return {self.scope_kind: self.scope_id}


def _session(row: tuple, csrf: str | None = None) -> EmbedSession:
    return EmbedSession(*row, csrf_token=csrf)


class SQLiteEmbedStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_database(path)

    def allowed_origins(self, user_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT origin FROM embed_origins WHERE user_id = ? ORDER BY origin",
            (user_id,),
        ).fetchall()
        return [origin for (origin,) in rows]

    def origin_allowed(self, origin: str) -> bool:
        """Return whether any service user allows `origin` to embed its sessions."""
        row = self._db.execute(
            "SELECT 1 FROM embed_origins WHERE origin = ? LIMIT 1", (origin,)
        ).fetchone()
        return row is not None

    def set_origins(self, user_id: str, origins: list[str], *,
                    by: Actor = COMMAND_LINE) -> list[str]:
        """Replace the origins allowed to embed the user's sessions, in one change."""
        now = _timestamp()
        with self._transaction():
            before = self.allowed_origins(user_id)
            self._db.execute("DELETE FROM embed_origins WHERE user_id = ?", (user_id,))
            self._db.executemany(
                "INSERT INTO embed_origins (user_id, origin, created_at) VALUES (?, ?, ?)",
                [(user_id, origin, now) for origin in sorted(set(origins))],
            )
            after = self.allowed_origins(user_id)
            write_audit(self._db, by, "embed.origins", user_id, {"origins": before},
                        {"origins": after})
        return after

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def create(
        self,
        user_id: str,
        *,
        key_prefix: str | None,
        origin: str,
        scope: tuple[str, str] | None,
        lifetime: float,
        code_lifetime: float,
    ) -> tuple[str, EmbedSession]:
        """Store a session that a launch code starts; return the code and the row."""
        code = CODE_PREFIX + secrets.token_urlsafe(32)
        session_id = "es-" + secrets.token_hex(8)
        now = time.time()
        kind, scope_id = scope if scope is not None else (None, None)
        self._db.execute(
            "INSERT INTO embed_sessions (id, user_id, key_prefix, origin, scope_kind, "
            "scope_id, lifetime, code_hash, code_expires_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, user_id, key_prefix, origin, kind, scope_id, lifetime,
             _digest(code), now + code_lifetime, now),
        )
        return code, self.get(session_id)

    def start(
        self, code: str, *, credential: str, max_lifetime: float | None = None
    ) -> tuple[str, EmbedSession] | None:
        """Consume a launch code and start its session; None for a used or stale code.

        One UPDATE marks the code used, so two requests with one code never
        both start the session.
        """
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        cap = max_lifetime if max_lifetime is not None else 1e12
        row = self._db.execute(
            "UPDATE embed_sessions SET started_at = ?, credential = ?, token_hash = ?, "
            "expires_at = ? + min(lifetime, ?) "
            "WHERE code_hash = ? AND started_at IS NULL AND code_expires_at > ? "
            "AND revoked_at IS NULL "
            f"RETURNING {_COLUMNS}",
            (now, credential, _digest(token), now, cap, _digest(code), now),
        ).fetchone()
        if row is None:
            return None
        return token, _session(row, csrf_token(token))

    def origin_of_code(self, code: str) -> str | None:
        """Return the origin a code was issued for, used or not, for its error page."""
        row = self._db.execute(
            "SELECT origin FROM embed_sessions WHERE code_hash = ?", (_digest(code),)
        ).fetchone()
        return None if row is None else row[0]

    def find(self, token: str, credential: str) -> EmbedSession | None:
        """Return the live session of a `credential` ("cookie" or "bearer"), or None.

        A cookie's value does not work as a bearer token, nor the other way:
        each has the lifetime and the checks of its own path.
        """
        if not token.startswith(TOKEN_PREFIX):
            return None

        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM embed_sessions WHERE token_hash = ? "
            "AND credential = ? AND revoked_at IS NULL AND expires_at > ?",
            (_digest(token), credential, time.time()),
        ).fetchone()
        return None if row is None else _session(row, csrf_token(token))

    def get(self, session_id: str) -> EmbedSession | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM embed_sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return None if row is None else _session(row)

    def list(self, user_id: str) -> list[EmbedSession]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM embed_sessions WHERE user_id = ? "
            "ORDER BY created_at DESC",
            (user_id,),
        ).fetchall()
        return [_session(row) for row in rows]

    def revoke(self, user_id: str, session_id: str | None = None, *,
               by: Actor | None = COMMAND_LINE) -> int:
        """End one live session of the user, or all; return how many ended.

        `by` None leaves no audit row: the gateway ending a session itself.
        """
        now = time.time()
        with self._transaction():
            ended = self._db.execute(
                "UPDATE embed_sessions SET revoked_at = ? WHERE user_id = ? "
                "AND id = coalesce(?, id) AND revoked_at IS NULL "
                "AND (started_at IS NULL AND code_expires_at > ? OR expires_at > ?) "
                "RETURNING id",
                (now, user_id, session_id, now, now),
            ).fetchall()
            if ended and by is not None:
                write_audit(self._db, by, "embed.revoke", user_id, None,
                            {"sessions": sorted(row[0] for row in ended)})
        return len(ended)

    def close(self) -> None:
        self._db.close()
