"""SQLite users store: one file, WAL mode, one transaction per change.

Calls run on the event loop thread: a primary-key read of a local, cached
SQLite file takes microseconds, less than handing it to a thread would.
"""

from __future__ import annotations

import secrets
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from gateway.store.api_keys import hashes_equal, new_api_key, parse_prefix
from gateway.store.base import ApiKeyInfo, User, UserStoreError, check_new_user

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role        TEXT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('standard', 'service')),
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    prefix      TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key_hash    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys(user_id);
"""
_USER_COLUMNS = "id, name, email, role, type, active, created_at, updated_at"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _user(row: tuple | None) -> User | None:
    if row is None:
        return None
    return User(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7])


class SQLiteUserStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: transactions are opened explicitly below.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA busy_timeout = 5000")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)

    def _transaction(self):
        return _Transaction(self._db)

    async def get_user(self, user_id: str) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return _user(row)

    async def find_user_by_api_key(self, key: str) -> User | None:
        prefix = parse_prefix(key)
        if prefix is None:
            return None

        row = self._db.execute(
            "SELECT key_hash, user_id FROM api_keys "
            "WHERE prefix = ? AND revoked_at IS NULL",
            (prefix,),
        ).fetchone()
        if row is None or not hashes_equal(key, row[0]):
            return None

        return await self.get_user(row[1])

    async def add_user(
        self,
        *,
        name: str,
        email: str,
        role: str,
        type: str,
        user_id: str | None = None,
    ) -> User:
        check_new_user(name, email, type, user_id)
        user_id = user_id or "u-" + secrets.token_hex(6)
        now = _now()
        try:
            with self._transaction():
                self._db.execute(
                    f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                    (user_id, name, email, role, type, now, now),
                )
        except sqlite3.IntegrityError as error:
            raise UserStoreError(_integrity_message(error, user_id, email)) from None

        return await self.get_user(user_id)

    async def list_users(self) -> list[User]:
        rows = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id"
        ).fetchall()
        return [_user(row) for row in rows]

    async def set_role(self, user_id: str, role: str) -> User:
        return await self._update(user_id, "role", role)

    async def set_active(self, user_id: str, active: bool) -> User:
        return await self._update(user_id, "active", int(active))

    async def _update(self, user_id: str, column: str, value) -> User:
        with self._transaction():
            cursor = self._db.execute(
                f"UPDATE users SET {column} = ?, updated_at = ? WHERE id = ?",
                (value, _now(), user_id),
            )
            if cursor.rowcount == 0:
                raise UserStoreError(f"no user with id {user_id!r}")

        return await self.get_user(user_id)

    async def add_api_key(self, user_id: str) -> str:
        user = await self.get_user(user_id)
        if user is None:
            raise UserStoreError(f"no user with id {user_id!r}")
        if user.type != "service":
            raise UserStoreError(f"user {user_id!r} is not a service user")

        key, prefix, key_hash = new_api_key()
        with self._transaction():
            self._db.execute(
                "INSERT INTO api_keys (prefix, user_id, key_hash, created_at) "
                "VALUES (?, ?, ?, ?)",
                (prefix, user_id, key_hash, _now()),
            )
        return key

    async def list_api_keys(self, user_id: str) -> list[ApiKeyInfo]:
        user = await self.get_user(user_id)
        if user is None or user.type != "service":
            raise UserStoreError(f"no service user with id {user_id!r}")

        rows = self._db.execute(
            "SELECT prefix, user_id, created_at, revoked_at FROM api_keys "
            "WHERE user_id = ? ORDER BY created_at",
            (user_id,),
        ).fetchall()
        return [ApiKeyInfo(*row) for row in rows]

    async def revoke_api_key(self, prefix: str) -> ApiKeyInfo:
        """Revoke a key named by its prefix, `gwk_PREFIX`, or the whole key."""
        prefix = prefix.removeprefix("gwk_").partition("_")[0]
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE api_keys SET revoked_at = ? "
                "WHERE prefix = ? AND revoked_at IS NULL",
                (_now(), prefix),
            )
            if cursor.rowcount == 0:
                raise UserStoreError(f"no active API key with prefix {prefix!r}")

        row = self._db.execute(
            "SELECT prefix, user_id, created_at, revoked_at FROM api_keys "
            "WHERE prefix = ?",
            (prefix,),
        ).fetchone()
        return ApiKeyInfo(*row)

    async def ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    async def close(self) -> None:
        self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, error_type, error, traceback) -> None:
        self._db.execute("ROLLBACK" if error_type else "COMMIT")


def _integrity_message(error: sqlite3.IntegrityError, user_id: str, email: str) -> str:
    text = str(error)
    if "users.email" in text:
        return f"a user with email {email!r} already exists"
    if "users.id" in text:
        return f"a user with id {user_id!r} already exists"
    return f"the store rejected the change: {text}"
