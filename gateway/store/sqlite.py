"""SQLite users store: one file, WAL mode, one transaction per change.

Every change and its audit row are written in the same BEGIN IMMEDIATE
transaction, which takes the database's write lock.  So two changes never
interleave, also from different processes, and a rule such as "one active
owner remains" is checked on exactly the rows the change commits against.

Calls run on the event loop thread: a primary-key read of a local, cached
SQLite file takes microseconds, less than handing it to a thread would.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path

from gateway.store.api_keys import hashes_equal, new_api_key, parse_prefix
from gateway.store.base import (
    COMMAND_LINE,
    Actor,
    ApiKeyInfo,
    AuditEntry,
    LastOwner,
    StoreConflict,
    User,
    UserNotFound,
    UserStoreError,
    check_new_user,
)
from gateway.store.audit import write_audit
from gateway.store.schema import email_key, open_database

_USER_COLUMNS = "id, name, email, role, type, active, created_at, updated_at"
_KEY_COLUMNS = "prefix, user_id, created_at, revoked_at"
# Above this many cached users the cache starts again from empty.
_CACHED_USERS_MAX = 100_000


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _user(row: tuple | None) -> User | None:
    if row is None:
        return None
    return User(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7])


def _audited(user: User) -> dict:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "type": user.type,
        "active": user.active,
    }


class SQLiteUserStore:
    def __init__(self, path: Path, *, owner_role: str = "owner") -> None:
        """Open the store at `path`.

        `owner_role` is the role of which one active standard user must
        always remain: the highest role of the config.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.owner_role = owner_role
        self._db = open_database(path)
        # Users read by requests, valid while the file's data version (bumped
        # by other connections' commits) and this connection's change count
        # stay the same.  Checking both costs less than reading the row.
        self._cached_users: dict[str, User | None] = {}
        self._cached_as_of: tuple[int, int] = (-1, -1)
        # Owner cache generations by resolver, read again after the same checks.
        self._owner_generations: dict[str, int] | None = None

    def _transaction(self):
        return _Transaction(self._db)

    async def get_user(self, user_id: str) -> User | None:
        return self._read_user(user_id)

    def _read_user(self, user_id: str) -> User | None:
        as_of = (self._db.execute("PRAGMA data_version").fetchone()[0],
                 self._db.total_changes)
        if as_of != self._cached_as_of or len(self._cached_users) >= _CACHED_USERS_MAX:
            self._cached_users.clear()
            self._cached_as_of = as_of
            self._owner_generations = None
        try:
            return self._cached_users[user_id]
        except KeyError:
            user = self._cached_users[user_id] = self._get_user(user_id)
            return user

    def data_version(self) -> int:
        """Return SQLite's data version, which other connections' commits change."""
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def owner_generation(self, resolver: str) -> int:
        """Return the generation of `resolver`'s owner caches, in every process.

        It is as of the last user read, which every request that looks up an
        owner has made moments before (authentication), so it costs no query
        of its own unless the file changed.
        """
        if self._owner_generations is None:
            rows = self._db.execute("SELECT resolver, generation FROM generations")
            self._owner_generations = dict(rows.fetchall())
        return self._owner_generations.get(resolver, 0)

    def bump_owner_generation(self, resolver: str) -> None:
        """Start a new generation of `resolver`'s owner caches, in one statement."""
        self._db.execute(
            "INSERT INTO generations (resolver, generation) VALUES (?, 1) "
            "ON CONFLICT (resolver) DO UPDATE SET generation = generation + 1",
            (resolver,),
        )
        self._owner_generations = None

    def _get_user(self, user_id: str) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return _user(row)

    def _existing_user(self, user_id: str) -> User:
        user = self._get_user(user_id)
        if user is None:
            raise UserNotFound(f"no user with id {user_id!r}")
        return user

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

        return self._read_user(row[1])

    async def add_user(
        self,
        *,
        name: str,
        email: str,
        role: str,
        type: str,
        user_id: str | None = None,
        by: Actor = COMMAND_LINE,
    ) -> User:
        with self._transaction():
            return self._insert_user(name, email, role, type, user_id, by)

    async def add_service_user(
        self,
        *,
        name: str,
        email: str,
        role: str,
        user_id: str | None = None,
        by: Actor = COMMAND_LINE,
    ) -> tuple[User, str]:
        """Add a service user and its first API key; neither exists without the other."""
        with self._transaction():
            user = self._insert_user(name, email, role, "service", user_id, by)
            key = self._insert_key(user, by)
        return user, key

    def _insert_user(self, name, email, role, type, user_id, by: Actor) -> User:
        check_new_user(name, email, type, user_id)
        if user_id is not None and self._was_deleted(user_id):
            # Tokens minted for the deleted user still name this id.
            raise StoreConflict(f"user id {user_id!r} belonged to a deleted user "
                                "and is not given again", field="id")
        user_id = user_id or "u-" + secrets.token_hex(6)
        now = _now()
        try:
            self._db.execute(
                f"INSERT INTO users ({_USER_COLUMNS}, email_key) "
                "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (user_id, name, email, role, type, now, now, email_key(email)),
            )
        except sqlite3.IntegrityError as error:
            raise _conflict(error, user_id, email) from None

        user = self._get_user(user_id)
        self._audit(by, "user.create", user.id, None, _audited(user))
        return user

    async def list_users(
        self,
        *,
        roles: Collection[str] | None = None,
        type: str | None = None,
        active: bool | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[User]:
        """Users in order of creation, after the (created_at, id) of `after`."""
        conditions, values = [], []
        if roles is not None:
            conditions.append(f"role IN ({', '.join('?' * len(roles))})")
            values.extend(roles)
        for column, value in (("type", type), ("active", active)):
            if value is not None:
                conditions.append(f"{column} = ?")
                values.append(int(value) if column == "active" else value)
        if after is not None:
            conditions.append("(created_at, id) > (?, ?)")
            values.extend(after)

        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users {where} ORDER BY created_at, id "
            "LIMIT ?",
            (*values, -1 if limit is None else limit),
        ).fetchall()
        return [_user(row) for row in rows]

    def _was_deleted(self, user_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM audit WHERE action = 'user.delete' AND target = ? LIMIT 1",
            (user_id,),
        ).fetchone()
        return row is not None

    def _current_user(self, user_id: str, expect_role: str | None) -> User:
        """The user as stored now; with `expect_role`, it must still have that role.

        Callers decide on the role they read before the transaction; another
        process may have changed it since, and the decision no longer holds.
        """
        user = self._existing_user(user_id)
        if expect_role is not None and user.role != expect_role:
            raise StoreConflict(f"the role of {user_id!r} changed to {user.role!r} "
                                "meanwhile; reload and try again", field="role")
        return user

    async def set_role(self, user_id: str, role: str, *, by: Actor = COMMAND_LINE,
                       expect_role: str | None = None) -> User:
        with self._transaction():
            user = self._current_user(user_id, expect_role)
            if role != self.owner_role:
                self._keep_an_owner(user, "demote")
            return self._update(user, "role", role, "user.update_role", by)

    async def set_active(
        self, user_id: str, active: bool, *, by: Actor = COMMAND_LINE,
        expect_role: str | None = None,
    ) -> User:
        with self._transaction():
            user = self._current_user(user_id, expect_role)
            if not active:
                self._keep_an_owner(user, "deactivate")
                self._end_sessions(user_id)
            action = "user.activate" if active else "user.deactivate"
            return self._update(user, "active", int(active), action, by)

    async def delete_user(self, user_id: str, *, by: Actor = COMMAND_LINE,
                          expect_role: str | None = None) -> User:
        """Delete a user with its API keys and sessions; the audit trail keeps it."""
        with self._transaction():
            user = self._current_user(user_id, expect_role)
            self._keep_an_owner(user, "delete")
            self._db.execute("DELETE FROM users WHERE id = ?", (user_id,))
            self._audit(by, "user.delete", user_id, _audited(user), None)
        return user

    def _keep_an_owner(self, user: User, verb: str) -> None:
        if not (user.role == self.owner_role and user.active and user.type == "standard"):
            return

        (others,) = self._db.execute(
            "SELECT count(*) FROM users WHERE role = ? AND active = 1 "
            "AND type = 'standard' AND id != ?",
            (self.owner_role, user.id),
        ).fetchone()
        if others == 0:
            raise LastOwner(
                f"cannot {verb} {user.id!r}: it is the last active {self.owner_role}; "
                f"make another user {self.owner_role} first"
            )

    def _update(self, user: User, column: str, value, action: str, by: Actor) -> User:
        self._db.execute(
            f"UPDATE users SET {column} = ?, updated_at = ? WHERE id = ?",
            (value, _now(), user.id),
        )
        changed = self._get_user(user.id)
        self._audit(by, action, user.id, _audited(user), _audited(changed))
        return changed

    async def add_api_key(self, user_id: str, *, by: Actor = COMMAND_LINE) -> str:
        with self._transaction():
            return self._insert_key(self._existing_user(user_id), by)

    async def rotate_api_key(
        self, user_id: str, *, by: Actor = COMMAND_LINE
    ) -> tuple[ApiKeyInfo, str]:
        """Issue a new key and revoke every older one of the user, at once."""
        with self._transaction():
            user = self._existing_user(user_id)
            revoked = self._db.execute(
                "UPDATE api_keys SET revoked_at = ? "
                "WHERE user_id = ? AND revoked_at IS NULL RETURNING prefix",
                (_now(), user_id),
            ).fetchall()
            for (prefix,) in revoked:
                self._end_embed_sessions(prefix)
                self._audit(by, "api_key.revoke", user_id, {"prefix": prefix}, None)
            key = self._insert_key(user, by)
            info = self._key_info(parse_prefix(key))
        return info, key

    def _insert_key(self, user: User, by: Actor) -> str:
        if user.type != "service":
            raise StoreConflict(f"user {user.id!r} is not a service user")

        key, prefix, key_hash = new_api_key()
        self._db.execute(
            "INSERT INTO api_keys (prefix, user_id, key_hash, created_at) "
            "VALUES (?, ?, ?, ?)",
            (prefix, user.id, key_hash, _now()),
        )
        self._audit(by, "api_key.create", user.id, None, {"prefix": prefix})
        return key

    async def list_api_keys(self, user_id: str) -> list[ApiKeyInfo]:
        user = self._get_user(user_id)
        if user is None or user.type != "service":
            raise UserNotFound(f"no service user with id {user_id!r}")

        rows = self._db.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_id = ? "
            "ORDER BY created_at, prefix",
            (user_id,),
        ).fetchall()
        return [ApiKeyInfo(*row) for row in rows]

    async def revoke_api_key(
        self, prefix: str, *, user_id: str | None = None, by: Actor = COMMAND_LINE
    ) -> ApiKeyInfo:
        """Revoke a key named by its prefix, `gwk_PREFIX`, or the whole key.

        With `user_id`, only a key of that user is revoked.
        """
        prefix = prefix.removeprefix("gwk_").partition("_")[0]
        with self._transaction():
            row = self._db.execute(
                "UPDATE api_keys SET revoked_at = ? "
                "WHERE prefix = ? AND revoked_at IS NULL AND user_id = coalesce(?, user_id) "
                "RETURNING user_id",
                (_now(), prefix, user_id),
            ).fetchone()
            if row is None:
                raise UserNotFound(f"no active API key with prefix {prefix!r}")
            self._end_embed_sessions(prefix)
            self._audit(by, "api_key.revoke", row[0], {"prefix": prefix}, None)
            return self._key_info(prefix)

    def _end_sessions(self, user_id: str) -> None:
        # A deactivated user's sessions do not come back with reactivation.
        self._db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        self._db.execute(
            "UPDATE embed_sessions SET revoked_at = ? "
            "WHERE user_id = ? AND revoked_at IS NULL",
            (time.time(), user_id),
        )

    def _end_embed_sessions(self, prefix: str) -> None:
        # An embed session lives no longer than the key that opened it.
        self._db.execute(
            "UPDATE embed_sessions SET revoked_at = ? "
            "WHERE key_prefix = ? AND revoked_at IS NULL",
            (time.time(), prefix),
        )

    def _key_info(self, prefix: str) -> ApiKeyInfo:
        row = self._db.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE prefix = ?", (prefix,)
        ).fetchone()
        return ApiKeyInfo(*row)

    def _audit(self, by: Actor, action: str, target: str, before, after) -> None:
        write_audit(self._db, by, action, target, before, after)

    async def list_audit(
        self, *, before_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Audit entries, newest first, older than the entry `before_id`."""
        rows = self._db.execute(
            "SELECT id, at, actor, action, target, before, after, request_id "
            "FROM audit WHERE id < coalesce(?, 9223372036854775807) "
            "ORDER BY id DESC LIMIT ?",
            (before_id, limit),
        ).fetchall()
        return [
            AuditEntry(
                row[0], row[1], row[2], row[3], row[4],
                None if row[5] is None else json.loads(row[5]),
                None if row[6] is None else json.loads(row[6]),
                row[7],
            )
            for row in rows
        ]

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


def _conflict(error: sqlite3.IntegrityError, user_id: str, email: str) -> UserStoreError:
    text = str(error)
    if "email" in text:
        return StoreConflict(f"a user with email {email!r} already exists",
                             field="email")
    if "users.id" in text:
        return StoreConflict(f"a user with id {user_id!r} already exists", field="id")
    return UserStoreError(f"the store rejected the change: {text}")
