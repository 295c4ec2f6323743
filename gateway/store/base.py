"""What the gateway needs from a users store, independent of the database."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

USER_TYPES = ("standard", "service")
# User ids go into headers, logs and URLs, so they keep to a plain alphabet.
USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


# Control, format (such as U+202E, right-to-left override), separator and
# surrogate characters: they rewrite terminal output and hide in listings.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
MAX_TEXT = 320


def check_text(value: str, field: str) -> None:
    """Raise InvalidUser when `value` is too long or contains a hidden character."""
    if len(value) > MAX_TEXT:
        raise InvalidUser(f"{field} is longer than {MAX_TEXT} characters", field=field)
    for character in value:
        if unicodedata.category(character) in _HIDDEN_CATEGORIES:
            raise InvalidUser(
                f"{field} contains the control or format character "
                f"U+{ord(character):04X}",
                field=field,
            )


def check_new_user(name: str, email: str, type: str, user_id: str | None) -> None:
    """Raise InvalidUser naming the first field of a new user that is invalid."""
    if type not in USER_TYPES:
        raise InvalidUser(
            f"type must be one of {', '.join(USER_TYPES)}, not {type!r}",
            field="type",
            allowed=USER_TYPES,
        )
    check_text(name, "name")
    if not name.strip():
        raise InvalidUser("name must not be empty", field="name")
    check_text(email, "email")
    if not EMAIL.fullmatch(email):
        raise InvalidUser(f"email {email[:100]!r} is not an email address",
                          field="email")
    if user_id is not None and not USER_ID.fullmatch(user_id):
        raise InvalidUser(
            f"user id {user_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="id",
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


@dataclass(frozen=True, slots=True)
class Actor:
    """The author of a change, as the audit trail records it."""

    user_id: str
    request_id: str | None = None


# The author of changes made with the `gateway` command on the store's machine.
COMMAND_LINE = Actor("cli")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    before: dict | None
    after: dict | None
    request_id: str | None


class UserStoreError(Exception):
    """A change the store rejected; nothing of it was written."""


class InvalidUser(UserStoreError):
    """A field of a new or changed user has a value the store does not take."""

    def __init__(self, message: str, *, field: str, allowed=None) -> None:
        super().__init__(message)
        self.field = field
        self.allowed = tuple(allowed) if allowed is not None else None


class UserNotFound(UserStoreError):
    """No user (or no API key) with the given id."""


class StoreConflict(UserStoreError):
    """The change contradicts what is stored, such as a second user with one email."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LastOwner(StoreConflict):
    """The change would leave the account without an active owner."""


class UserStore(Protocol):
    async def get_user(self, user_id: str) -> User | None: ...

    async def find_user_by_api_key(self, key: str) -> User | None: ...

    async def add_user(
        self,
        *,
        name: str,
        email: str,
        role: str,
        type: str,
        user_id: str | None = None,
        by: Actor = COMMAND_LINE,
    ) -> User: ...

    async def add_service_user(
        self,
        *,
        name: str,
        email: str,
        role: str,
        user_id: str | None = None,
        by: Actor = COMMAND_LINE,
    ) -> tuple[User, str]: ...

    async def list_users(
        self,
        *,
        roles: Collection[str] | None = None,
        type: str | None = None,
        active: bool | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[User]: ...

    async def set_role(
        self, user_id: str, role: str, *, by: Actor = COMMAND_LINE,
        expect_role: str | None = None,
    ) -> User: ...

    async def set_active(
        self, user_id: str, active: bool, *, by: Actor = COMMAND_LINE,
        expect_role: str | None = None,
    ) -> User: ...

    async def delete_user(
        self, user_id: str, *, by: Actor = COMMAND_LINE, expect_role: str | None = None
    ) -> User: ...

    async def add_api_key(self, user_id: str, *, by: Actor = COMMAND_LINE) -> str: ...

    async def rotate_api_key(
        self, user_id: str, *, by: Actor = COMMAND_LINE
    ) -> tuple[ApiKeyInfo, str]: ...

    async def list_api_keys(self, user_id: str) -> list[ApiKeyInfo]: ...

    async def revoke_api_key(
        self, prefix: str, *, user_id: str | None = None, by: Actor = COMMAND_LINE
    ) -> ApiKeyInfo: ...

    async def list_audit(
        self, *, before_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]: ...

    async def ping(self) -> None: ...

    def data_version(self) -> int: ...

    # Generations of the owner caches of every gateway process on the store.
    def owner_generation(self, resolver: str) -> int: ...

    def bump_owner_generation(self, resolver: str) -> None: ...

    async def close(self) -> None: ...
