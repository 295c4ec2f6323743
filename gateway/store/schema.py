"""The SQLite schema of the store, and the upgrade of older database files.

`PRAGMA user_version` records the schema a file has.  Older files are
upgraded in one transaction when the store opens them.  Version 0 has users
and API keys only, with emails unique by SQLite's ASCII-only NOCASE.
Version 1 has no embed sessions, version 2 no index on audit targets, and
version 3 no owner cache generations.
"""

from __future__ import annotations

import sqlite3
import unicodedata

VERSION = 4

_TABLES = """
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

_VERSION_1 = """
ALTER TABLE users ADD COLUMN email_key TEXT;
CREATE INDEX IF NOT EXISTS users_listing ON users(created_at, id);
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    request_id  TEXT
);
CREATE TABLE IF NOT EXISTS login_codes (
    code_hash   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at  REAL NOT NULL,
    used_at     REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
"""


_VERSION_2 = """
CREATE TABLE IF NOT EXISTS embed_origins (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    origin      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, origin)
);
CREATE TABLE IF NOT EXISTS embed_sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key_prefix      TEXT,
    origin          TEXT NOT NULL,
    scope_kind      TEXT,
    scope_id        TEXT,
    lifetime        REAL NOT NULL,
    code_hash       TEXT NOT NULL UNIQUE,
    code_expires_at REAL NOT NULL,
    started_at      REAL,
    credential      TEXT,
    token_hash      TEXT UNIQUE,
    expires_at      REAL,
    created_at      REAL NOT NULL,
    revoked_at      REAL
);
CREATE INDEX IF NOT EXISTS embed_sessions_user ON embed_sessions(user_id);
CREATE INDEX IF NOT EXISTS embed_sessions_key ON embed_sessions(key_prefix);
"""


# Adding a user with a given id checks that no deleted user had it.
_VERSION_3 = """
CREATE INDEX IF NOT EXISTS audit_target ON audit(target, action);
"""

# Owner caches of all gateway processes on this file (SQLiteUserStore).
_VERSION_4 = """
CREATE TABLE IF NOT EXISTS generations (
    resolver    TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL
);
"""


def email_key(email: str) -> str:
    """Return the form of an email that uniqueness is checked on.

    NFKC makes composed and decomposed accents (and compatibility forms such
    as fullwidth letters) one string, and case folding ignores case.
    """
    return unicodedata.normalize("NFKC", email).casefold()


def open_database(path) -> sqlite3.Connection:
    """Open (creating or upgrading) the store's database file."""
    # isolation_level=None: transactions are opened explicitly, BEGIN IMMEDIATE.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 5000")

    db.execute("BEGIN IMMEDIATE")
    try:
        _upgrade(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return db


def _upgrade(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version >= VERSION:
        return

    if version < 1:
        _run_script(db, _TABLES)
        _run_script(db, _VERSION_1)
        rows = db.execute("SELECT id, email FROM users").fetchall()
        for user_id, email in rows:
            db.execute("UPDATE users SET email_key = ? WHERE id = ?",
                       (email_key(email), user_id))
        # Fails, and the upgrade with it, if two stored emails differ only in
        # case outside ASCII; the file then stays as it was.
        db.execute("CREATE UNIQUE INDEX users_email_key ON users(email_key)")
    if version < 2:
        _run_script(db, _VERSION_2)
        # Version 1 folded case only; the keys are recomputed in the current form.
        rows = db.execute("SELECT id, email FROM users").fetchall()
        for user_id, email in rows:
            db.execute("UPDATE users SET email_key = ? WHERE id = ?",
                       (email_key(email), user_id))
    _run_script(db, _VERSION_3)
    _run_script(db, _VERSION_4)
    db.execute(f"PRAGMA user_version = {VERSION}")


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the open transaction first.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
