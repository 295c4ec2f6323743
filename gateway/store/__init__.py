"""The users store: one interface, a SQLite implementation."""

from gateway.store.base import (
    COMMAND_LINE,
    Actor,
    ApiKeyInfo,
    AuditEntry,
    InvalidUser,
    LastOwner,
    StoreConflict,
    User,
    UserNotFound,
    UserStore,
    UserStoreError,
)
from gateway.store.embed import EmbedSession, SQLiteEmbedStore
from gateway.store.sessions import Session, SQLiteSessionStore
from gateway.store.sqlite import SQLiteUserStore

__all__ = [
    "COMMAND_LINE",
    "Actor",
    "ApiKeyInfo",
    "AuditEntry",
    "EmbedSession",
    "InvalidUser",
    "LastOwner",
    "SQLiteEmbedStore",
    "SQLiteSessionStore",
    "SQLiteUserStore",
    "Session",
    "StoreConflict",
    "User",
    "UserNotFound",
    "UserStore",
    "UserStoreError",
]
