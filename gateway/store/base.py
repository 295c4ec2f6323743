"""What the gateway needs from a users store, independent of the database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

USER_TYPES = ("standard", "service")
# User ids go into headers, logs and URLs, so they keep to a plain alphabet.
USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def check_new_user(name: str, email: str, type: str, user_id: str | None) -> None:
    """Raise UserStoreError naming the first field of a new user that is invalid."""
    if type not in USER_TYPES:
        raise UserStoreError(f"type must be one of {', '.join(USER_TYPES)}, "
                             f"not {type!r}")
    if not name.strip():
        raise UserStoreError("name must not be empty")
    if not EMAIL.fullmatch(email):
        raise UserStoreError(f"email {email!r} is not an email address")
    if user_id is not None and not USER_ID.fullmatch(user_id):
        raise UserStoreError(
            f"user id {user_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    email: str
    role: str
    type: str
    active: bool
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listed: its public prefix, never the key itself."""

    prefix: str
    user_id: str
    created_at: str
    revoked_at: str | None


class UserStoreError(Exception):
    """A change the store rejected, such as a duplicate email or unknown id."""


class UserStore(Protocol):
    async def get_user(self, user_id: str) -> User | None: ...

    async def find_user_by_api_key(self, key: str) -> User | None: ...

    async def add_user(
        self, *, name: str, email: str, role: str, type: str, user_id: str | None = None
    ) -> User: ...

    async def list_users(self) -> list[User]: ...

    async def set_role(self, user_id: str, role: str) -> User: ...

    async def set_active(self, user_id: str, active: bool) -> User: ...

    async def add_api_key(self, user_id: str) -> str: ...

    async def list_api_keys(self, user_id: str) -> list[ApiKeyInfo]: ...

    async def revoke_api_key(self, prefix: str) -> ApiKeyInfo: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
