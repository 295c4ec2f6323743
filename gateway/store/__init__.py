"""The users store: one interface, a SQLite implementation."""

from gateway.store.base import ApiKeyInfo, User, UserStore, UserStoreError
from gateway.store.sqlite import SQLiteUserStore

__all__ = ["ApiKeyInfo", "SQLiteUserStore", "User", "UserStore", "UserStoreError"]
