"""Actor role x target role x operation, through the gateway's API.

Only owners change owners; administrators manage every other user,
administrators included, and read every user; chat managers only list;
chat operators get 403.
The service user has the chat_manager role and must get exactly its statuses.
Every row acts on a user made for it, so rows never depend on each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .helpers import new_email

pytestmark = pytest.mark.asyncio(loop_scope="session")

ACTORS = ("owner", "administrator", "chat_manager", "chat_operator", "service_user")
TARGETS = ("owner", "administrator", "chat_manager", "chat_operator")
ROLE_OF_ACTOR = {
    "owner": "owner",
    "administrator": "administrator",
    "chat_manager": "chat_manager",
    "chat_operator": "chat_operator",
    "service_user": "chat_manager",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    success: int
    target_type: str = "standard"
    target_active: bool = True


OPERATIONS = {
    "read": Operation("GET", "/users/{id}", 200),
    "update_role": Operation("PUT", "/users/{id}/role", 200),
    "deactivate": Operation("POST", "/users/{id}/deactivate", 200),
    "activate": Operation("POST", "/users/{id}/activate", 200, target_active=False),
    "delete": Operation("DELETE", "/users/{id}", 204),
    "list_keys": Operation("GET", "/users/{id}/keys", 200, target_type="service"),
    "rotate_key": Operation("POST", "/users/{id}/keys", 201, target_type="service"),
    "revoke_key": Operation("DELETE", "/users/{id}/keys/{prefix}", 200,
                            target_type="service"),
}


READ_ONLY = frozenset({"read", "list_keys"})


def allowed(actor: str, target: str, operation: str = "") -> bool:
    role = ROLE_OF_ACTOR[actor]
    if role == "owner":
        return True
    if role != "administrator":
        return False
    return target != "owner" or operation in READ_ONLY


def new_role_for(target: str) -> str:
    return "chat_manager" if target == "chat_operator" else "chat_operator"


def body_of(operation: str, target: str):
    if operation == "update_role":
        return {"role": new_role_for(target)}
    return None


ROWS = [
    pytest.param(actor, target, operation, id=f"{actor}-{operation}-{target}")
    for actor in ACTORS
    for target in TARGETS
    for operation in OPERATIONS
]


async def make_target(gateway, role: str, operation: Operation):
    store = gateway.store
    fields = {"name": f"Target {role}", "email": new_email(role), "role": role}
    key = None
    if operation.target_type == "service":
        user, key = await store.add_service_user(**fields)
    else:
        user = await store.add_user(**fields, type="standard")
    if not operation.target_active:
        user = await store.set_active(user.id, False)
    return user, key


@pytest.mark.parametrize("actor, target, operation", ROWS)
async def test_operation_on_user_by_role(api, gateway, actor, target, operation):
    spec = OPERATIONS[operation]
    user, key = await make_target(gateway, target, spec)
    path = spec.path.format(id=user.id, prefix=key.split("_")[1] if key else "")
    keys_before = await gateway.store.list_api_keys(user.id) if key else None

    response = await api.call(actor, spec.method, path, body_of(operation, target))

    if allowed(actor, target, operation):
        assert response.status == spec.success, response.body
    else:
        assert response.status == 403, response.body
        assert await gateway.store.get_user(user.id) == user, "a refused call changed"
        if key:
            keys_after = await gateway.store.list_api_keys(user.id)
            assert keys_after == keys_before, "a refused call changed the keys"


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("role", TARGETS)
async def test_create_user_with_role(api, gateway, actor, role):
    email = new_email(f"new-{role}")
    body = {"name": "New user", "email": email, "role": role, "type": "standard"}

    response = await api.call(actor, "POST", "/users", body)

    listed = [user.email for user in await gateway.store.list_users()]
    if allowed(actor, role):
        assert response.status == 201, response.body
        assert email in listed
    else:
        assert response.status == 403, response.body
        assert email not in listed


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("new_role", TARGETS)
async def test_grant_role_to_operator(api, gateway, actor, new_role):
    user = await gateway.store.add_user(name="Operator", email=new_email("grant"),
                                        role="chat_operator", type="standard")

    response = await api.call(actor, "PUT", f"/users/{user.id}/role", {"role": new_role})

    stored = await gateway.store.get_user(user.id)
    if allowed(actor, new_role):
        assert response.status == 200, response.body
        assert stored.role == new_role
    else:
        assert response.status == 403, response.body
        assert stored.role == "chat_operator"


@pytest.mark.parametrize("actor, status", [
    ("owner", 200),
    ("administrator", 200),
    ("chat_manager", 200),
    ("chat_operator", 403),
    ("service_user", 200),
])
async def test_list_users_by_role(api, actor, status):
    response = await api.call(actor, "GET", "/users")

    assert response.status == status


@pytest.mark.parametrize("actor, status", [
    ("owner", 200),
    ("administrator", 200),
    ("chat_manager", 403),
    ("chat_operator", 403),
    ("service_user", 403),
])
async def test_list_audit_by_role(api, actor, status):
    response = await api.call(actor, "GET", "/audit")

    assert response.status == status
