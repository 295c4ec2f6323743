"""Users, service users and API keys: the endpoints under /gateway/v1/users.

Each endpoint finds the user it is aimed at, checks the policy for that
user's role, and makes the change in one store transaction that also writes
the audit row.  The store refuses what would remove the last active owner,
whatever the policy allows.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import orjson
from aiohttp import web

from gateway.api.body import json_body, no_body
from gateway.api.call import Call, empty_response, json_response
from gateway.api.document import ApiDocument
from gateway.api.rules import UserAdminRules
from gateway.errors import Conflict, Forbidden, NotFound, UnprocessableContent
from gateway.store import (
    ApiKeyInfo,
    InvalidUser,
    LastOwner,
    StoreConflict,
    User,
    UserNotFound,
    UserStore,
)

_DIRECTORY_FIELDS = ("id", "name", "email", "role")
DEFAULT_PAGE = 100
MAX_PAGE = 500
MAX_CURSOR = 200
_DIGITS = re.compile(r"[0-9]{1,4}")
_PREFIX = re.compile(r"[A-Za-z0-9]{1,64}")


def user_json(user: User, *, full: bool = True) -> dict:
    data = {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "type": user.type,
        "active": user.active,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }
    return data if full else {name: data[name] for name in _DIRECTORY_FIELDS}


def key_json(key: ApiKeyInfo) -> dict:
    return {"prefix": key.prefix, "created_at": key.created_at,
            "revoked_at": key.revoked_at}


def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(text: str):
    if len(text) > MAX_CURSOR:
        raise UnprocessableContent("The cursor is not one this API returned.",
                                   field="cursor")
    try:
        return orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise UnprocessableContent("The cursor is not one this API returned.",
                                   field="cursor") from None


def page_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE:
        raise UnprocessableContent(f"limit must be a whole number from 1 to {MAX_PAGE}.",
                                   field="limit")
    return int(text)


class UserEndpoints:
    def __init__(
        self,
        store: UserStore,
        on_change: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        # Rechecks open streams, whose users may just have lost a permission.
        self._on_change = on_change

    async def list_users(self, call: Call, document: ApiDocument) -> web.Response:
        query = call.query("role", "type", "active", "limit", "cursor")
        rules = _rules(call)
        listable = rules.require_any(call.principal, "users", "list")
        readable = call.snapshot.policy.targets(call.principal.role, "users", "read")
        call.allowed_by(next(iter(listable.values())))

        roles = [role for role in call.snapshot.config.roles if role in listable]
        if "role" in query:
            document.check("Role", query["role"], field="role")
            roles = [role for role in roles if role == query["role"]]
        if not readable and ("type" in query or "active" in query):
            raise Forbidden("Listing by type or state needs the permission to read "
                            "users.", reason="policy_denied")
        user_type = None
        if "type" in query:
            user_type = document.check("UserType", query["type"], field="type")
        # Roles that see the directory only see the users one may pick.
        active = None if readable else True
        if "active" in query:
            if query["active"] not in ("true", "false"):
                raise UnprocessableContent("active must be true or false.",
                                           field="active", allowed=("true", "false"))
            active = query["active"] == "true"
        after = None
        if "cursor" in query:
            after = decode_cursor(query["cursor"])
            if not (isinstance(after, list) and len(after) == 2
                    and all(isinstance(part, str) for part in after)):
                raise UnprocessableContent("The cursor is not one this API returned.",
                                           field="cursor")
        limit = page_limit(query.get("limit"))

        users = await self._store.list_users(roles=roles, type=user_type, active=active,
                                             after=tuple(after) if after else None,
                                             limit=limit + 1)
        page = users[:limit]
        next_cursor = None
        if len(users) > limit:
            next_cursor = encode_cursor([page[-1].created_at, page[-1].id])
        items = [user_json(user, full=user.role in readable) for user in page]
        return json_response({"items": items, "next_cursor": next_cursor})

    async def get_user(self, call: Call, document: ApiDocument) -> web.Response:
        user = await self._target(call, "users", "read")
        call.allowed_by(_rules(call).require(call.principal, "users", "read", user.role))
        return json_response(user_json(user))

    async def create_user(self, call: Call, document: ApiDocument) -> web.Response:
        body = await json_body(call, document, "NewUser")
        rules = _rules(call)
        call.allowed_by(rules.require_giving(call.principal, "create", body["role"]))

        fields = {"name": body["name"], "email": body["email"], "role": body["role"]}
        with _store_errors():
            if body["type"] == "service":
                user, key = await self._store.add_service_user(**fields, by=call.actor)
                return json_response({**user_json(user), "api_key": key}, status=201)
            user = await self._store.add_user(**fields, type="standard", by=call.actor)
        return json_response(user_json(user), status=201)

    async def change_role(self, call: Call, document: ApiDocument) -> web.Response:
        body = await json_body(call, document, "RoleChange")
        rules = _rules(call)
        user = await self._target(call, "users", "update_role")
        call.allowed_by(rules.require(call.principal, "users", "update_role", user.role))
        rules.require_giving(call.principal, "update_role", body["role"])

        with _store_errors():
            changed = await self._store.set_role(user.id, body["role"], by=call.actor,
                                                 expect_role=user.role)
        await self._on_change()
        return json_response(user_json(changed))

    async def deactivate(self, call: Call, document: ApiDocument) -> web.Response:
        return await self._set_active(call, False)

    async def activate(self, call: Call, document: ApiDocument) -> web.Response:
        return await self._set_active(call, True)

    async def _set_active(self, call: Call, active: bool) -> web.Response:
        await no_body(call)
        action = "activate" if active else "deactivate"
        user = await self._target(call, "users", action)
        call.allowed_by(_rules(call).require(call.principal, "users", action, user.role))

        with _store_errors():
            changed = await self._store.set_active(user.id, active, by=call.actor,
                                                   expect_role=user.role)
        await self._on_change()
        return json_response(user_json(changed))

    async def delete_user(self, call: Call, document: ApiDocument) -> web.Response:
        user = await self._target(call, "users", "delete")
        call.allowed_by(_rules(call).require(call.principal, "users", "delete", user.role))

        with _store_errors():
            await self._store.delete_user(user.id, by=call.actor, expect_role=user.role)
        await self._on_change()
        return empty_response()

    async def list_keys(self, call: Call, document: ApiDocument) -> web.Response:
        user = await self._target(call, "api_keys", "list", service=True)
        call.allowed_by(_rules(call).require(call.principal, "api_keys", "list",
                                             user.role))
        keys = await self._store.list_api_keys(user.id)
        return json_response({"items": [key_json(key) for key in keys]})

    async def rotate_key(self, call: Call, document: ApiDocument) -> web.Response:
        await no_body(call)
        user = await self._target(call, "api_keys", "create", service=True)
        call.allowed_by(_rules(call).require(call.principal, "api_keys", "create",
                                             user.role))

        with _store_errors():
            info, key = await self._store.rotate_api_key(user.id, by=call.actor)
        await self._on_change()
        return json_response({"prefix": info.prefix, "created_at": info.created_at,
                              "api_key": key}, status=201)

    async def revoke_key(self, call: Call, document: ApiDocument) -> web.Response:
        user = await self._target(call, "api_keys", "revoke", service=True)
        call.allowed_by(_rules(call).require(call.principal, "api_keys", "revoke",
                                             user.role))

        prefix = call.params["prefix"]
        if not _PREFIX.fullmatch(prefix):
            raise NotFound("Name the key by its prefix, the part after gwk_.",
                           reason="api_key_not_found")
        with _store_errors():
            info = await self._store.revoke_api_key(prefix, user_id=user.id,
                                                    by=call.actor)
        await self._on_change()
        return json_response(key_json(info))

    async def _target(self, call: Call, resource: str, action: str, *,
                      service: bool = False) -> User:
        """Return the user a call is aimed at, after a 403 for roles without the action.

        So a role without the action learns nothing of which ids exist.
        """
        _rules(call).require_any(call.principal, resource, action)
        user = await self._store.get_user(call.params["id"])
        if user is None or (service and user.type != "service"):
            kind = "service user" if service else "user"
            raise NotFound(f"No {kind} with id {call.params['id']!r}.",
                           reason="user_not_found")
        return user


def _rules(call: Call) -> UserAdminRules:
    return UserAdminRules(call.snapshot.policy, call.snapshot.config.roles)


@contextmanager
def _store_errors() -> Iterator[None]:
    """Turn the store's refusals into problem responses."""
    try:
        yield
    except InvalidUser as error:
        raise UnprocessableContent(_sentence(error), field=error.field,
                                   allowed=error.allowed) from None
    except LastOwner as error:
        raise Conflict(_sentence(error), reason="last_owner") from None
    except StoreConflict as error:
        conflict = Conflict(_sentence(error))
        if error.field is not None:
            conflict.extensions["field"] = error.field
        raise conflict from None
    except UserNotFound as error:
        raise NotFound(_sentence(error), reason="user_not_found") from None


def _sentence(error: Exception) -> str:
    text = str(error)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
