"""Decisions that a cache could reuse for a request they were not made for.

Each request must get the decision its own subject, action and object call
for, even right after the same credential was allowed something else.  A
change of ownership made through the gateway, or of a user's role, state or
API key in the store, applies to the very next request, even though the
gateway caches ownership lookups for up to `cache_seconds`.

Tests that change state start a gateway of their own, so no cache entry
survives them.  In the seed data chat 1 and contact 1 belong to u-op-1, and
chat 2 and contact 2 to u-op-2.
"""

from __future__ import annotations

import json

import pytest

from .wire import assert_problem, build_request, exchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = "u-op-1"
MESSAGE = json.dumps({"text": "hello"}).encode()

# Steps for one credential, as (method, path, expected status).  Each rejected
# step follows an allowed one on another action or object.
SERVICE_USER_STEPS = [
    ("GET", "/api/1/chats/1/", 200),
    ("POST", "/api/1/automations/", 403),
    ("GET", "/api/1/chats/2/", 200),
    ("GET", "/api/1/webhooks/", 403),
    ("GET", "/api/1/chats/1/messages/", 200),
    ("DELETE", "/api/1/templates/1/", 403),
    ("GET", "/api/1/contacts/1/", 200),
    ("GET", "/api/1/account/billing/", 403),
]
OPERATOR_STEPS = [
    ("GET", "/api/1/chats/1/", 200),
    ("GET", "/api/1/chats/2/", 404),
    ("GET", "/api/1/chats/1/messages/", 200),
    ("POST", "/api/1/chats/2/messages/", 404),
    ("GET", "/api/1/contacts/1/", 200),
    ("POST", "/api/1/chats/1/assign/", 403),
    ("GET", "/api/1/tags/", 200),
    ("GET", "/api/1/contacts/2/", 404),
    ("GET", "/api/1/lists/1/", 200),
    ("GET", "/api/1/account/", 403),
]


def credentials_of(gateway, principal: str) -> list[tuple[str, str]]:
    """Return the headers that authenticate `principal`, a key of PRINCIPALS in
    tests/conftest.py."""
    return list(gateway.credentials(principal).items())


def bearer(gateway, user_id: str) -> list[tuple[str, str]]:
    return list(gateway.bearer(user_id).items())


async def send(gateway, credentials, method: str, path: str):
    headers = list(credentials)
    body = b""
    if method == "POST":
        headers.append(("Content-Type", "application/json"))
        body = MESSAGE if path.endswith("/messages/") else b"{}"
    request = build_request(method, path, headers, body)
    return (await exchange(gateway.port, request)).first


async def run_step(gateway, sample_api, credentials, method, path, expected):
    """Send one request and check its status and what reached the upstream."""
    await sample_api.clear()
    response = await send(gateway, credentials, method, path)

    if expected >= 400:
        assert_problem(response, expected)
        assert await sample_api.forwarded() == [], f"{method} {path} reached upstream"
    else:
        assert response.status == expected, (method, path, response.body)
        forwarded = await sample_api.forwarded()
        assert [(entry["method"], entry["raw_path"]) for entry in forwarded] == [
            (method, path)
        ]


@pytest.mark.parametrize(
    ("principal", "steps"),
    [
        pytest.param("service_user", SERVICE_USER_STEPS, id="api-key"),
        pytest.param("chat_operator", OPERATOR_STEPS, id="operator-token"),
    ],
)
async def test_same_credential_decided_per_request(gateway, sample_api, principal,
                                                   steps):
    credentials = credentials_of(gateway, principal)
    # Forward and then backward, so each step also follows the one after it.
    for method, path, expected in steps + steps[::-1]:
        await run_step(gateway, sample_api, credentials, method, path, expected)


# (change the chat manager makes, object the operators read, operator who
# loses access, operator who gains it)
OWNERSHIP_CHANGES = [
    pytest.param("/api/1/chats/1/assign/", {"operator": "u-op-2"},
                 "/api/1/chats/1/", "u-op-1", "u-op-2", id="chat-reassigned"),
    pytest.param("/api/1/chats/1/unassign/", {}, "/api/1/chats/1/", "u-op-1", None,
                 id="chat-unassigned"),
    pytest.param("/api/1/contacts/1/remove_operator/", {"operator": "u-op-1"},
                 "/api/1/contacts/1/", "u-op-1", None, id="contact-operator-removed"),
    pytest.param("/api/1/contacts/2/add_operator/", {"operator": "u-op-1"},
                 "/api/1/contacts/2/", None, "u-op-1", id="contact-operator-added"),
]


@pytest.mark.parametrize(("change", "body", "path", "loser", "gainer"),
                         OWNERSHIP_CHANGES)
async def test_ownership_change_applies_at_once(sample_api, gateway_factory, change,
                                                body, path, loser, gainer):
    gateway = await gateway_factory(sample_api.url)
    manager = credentials_of(gateway, "chat_manager")

    # These reads put the owners before the change in the lookup cache.
    if loser is not None:
        await run_step(gateway, sample_api, bearer(gateway, loser), "GET",
                       path, 200)
    if gainer is not None:
        await run_step(gateway, sample_api, bearer(gateway, gainer), "GET",
                       path, 404)

    request = build_request("POST", change,
                            manager + [("Content-Type", "application/json")],
                            json.dumps(body).encode())
    assert (await exchange(gateway.port, request)).first.status == 200

    if loser is not None:
        await run_step(gateway, sample_api, bearer(gateway, loser), "GET",
                       path, 404)
    if gainer is not None:
        await run_step(gateway, sample_api, bearer(gateway, gainer), "GET",
                       path, 200)


async def test_write_after_reassignment_not_forwarded(sample_api, gateway_factory):
    gateway = await gateway_factory(sample_api.url)
    operator = bearer(gateway, OPERATOR)
    await run_step(gateway, sample_api, operator, "POST", "/api/1/chats/1/messages/",
                   201)

    request = build_request(
        "POST", "/api/1/chats/1/assign/",
        credentials_of(gateway, "chat_manager") + [("Content-Type", "application/json")],
        json.dumps({"operator": "u-op-2"}).encode(),
    )
    assert (await exchange(gateway.port, request)).first.status == 200

    await run_step(gateway, sample_api, operator, "POST", "/api/1/chats/1/messages/",
                   404)


async def test_role_change_applies_to_same_token(sample_api, gateway_factory):
    gateway = await gateway_factory(sample_api.url)
    token = bearer(gateway, OPERATOR)
    await run_step(gateway, sample_api, token, "GET", "/api/1/chats/2/", 404)

    await gateway.store.set_role(OPERATOR, "chat_manager")
    await run_step(gateway, sample_api, token, "GET", "/api/1/chats/2/", 200)
    await run_step(gateway, sample_api, token, "GET", "/api/1/automations/", 403)

    await gateway.store.set_role(OPERATOR, "chat_operator")
    await run_step(gateway, sample_api, token, "GET", "/api/1/chats/2/", 404)


async def test_deactivation_applies_to_same_token(sample_api, gateway_factory):
    gateway = await gateway_factory(sample_api.url)
    token = bearer(gateway, OPERATOR)
    await run_step(gateway, sample_api, token, "GET", "/api/1/chats/1/", 200)

    await gateway.store.set_active(OPERATOR, False)
    await run_step(gateway, sample_api, token, "GET", "/api/1/chats/1/", 403)

    await gateway.store.set_active(OPERATOR, True)
    await run_step(gateway, sample_api, token, "GET", "/api/1/chats/1/", 200)


async def test_revoked_api_key_rejected_at_once(sample_api, gateway_factory):
    gateway = await gateway_factory(sample_api.url)
    credentials = credentials_of(gateway, "service_user")
    await run_step(gateway, sample_api, credentials, "GET", "/api/1/chats/1/", 200)

    (key,) = await gateway.store.list_api_keys("u-service")
    await gateway.store.revoke_api_key(key.prefix)
    await run_step(gateway, sample_api, credentials, "GET", "/api/1/chats/1/", 401)
