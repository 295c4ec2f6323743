"""Every role against every route family, through the gateway to the sample API.

Operator rows act as u-op-1.  In the seed data u-op-1 is the assignee of chats
1, 5 and 9 and an operator of contacts 1, 4 and 7; chat 2 and contacts 2 and 5
belong to u-op-2.  The service user has the chat_manager role and an API key,
and must get exactly the chat manager's statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROLES = ("owner", "administrator", "chat_manager", "chat_operator")


def expect(
    owner: int,
    administrator: int,
    chat_manager: int,
    chat_operator: int,
) -> dict[str, int]:
    return {
        "owner": owner,
        "administrator": administrator,
        "chat_manager": chat_manager,
        "chat_operator": chat_operator,
        # A service user's type never widens or narrows its role.
        "service_user": chat_manager,
    }


def everyone(status: int, *, chat_operator: int | None = None) -> dict[str, int]:
    operator_status = status if chat_operator is None else chat_operator
    return expect(status, status, status, operator_status)


def managers(status: int) -> dict[str, int]:
    """Owner, administrator and chat manager may; the chat operator gets 403."""
    return expect(status, status, status, 403)


def administrators(status: int) -> dict[str, int]:
    """Owner and administrator may; the chat roles get 403."""
    return expect(status, status, 403, 403)


def owner_only(status: int) -> dict[str, int]:
    return expect(status, 403, 403, 403)


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    expected: dict[str, int]
    body: Any = None


ROWS = [
    # Chats and their messages.
    Row("chats-list", "GET", "/api/1/chats/", everyone(200)),
    Row("chats-read-own", "GET", "/api/1/chats/1/", everyone(200)),
    Row("chats-read-other", "GET", "/api/1/chats/2/", everyone(200, chat_operator=404)),
    Row("chats-read-unassigned", "GET", "/api/1/chats/4/",
        everyone(200, chat_operator=404)),
    Row("chats-update-own", "PATCH", "/api/1/chats/1/", everyone(200),
        {"status": "closed"}),
    Row("chats-update-other", "PATCH", "/api/1/chats/2/",
        everyone(200, chat_operator=404), {"status": "closed"}),
    Row("messages-list-own", "GET", "/api/1/chats/1/messages/", everyone(200)),
    Row("messages-list-other", "GET", "/api/1/chats/2/messages/",
        everyone(200, chat_operator=404)),
    Row("messages-send-own", "POST", "/api/1/chats/1/messages/", everyone(201),
        {"text": "Your order ships today."}),
    Row("messages-send-other", "POST", "/api/1/chats/2/messages/",
        everyone(201, chat_operator=404), {"text": "Your order ships today."}),
    Row("chats-assign", "POST", "/api/1/chats/9/assign/", managers(200),
        {"operator": "u-op-2"}),
    Row("chats-unassign", "POST", "/api/1/chats/9/unassign/", managers(200), {}),
    Row("messages-send-by-phone", "POST", "/api/1/messages/send_by_phone/",
        managers(201), {"phone": "+393330000001", "text": "Hello again."}),
    # Contacts.
    Row("contacts-list", "GET", "/api/1/contacts/", everyone(200)),
    Row("contacts-create", "POST", "/api/1/contacts/", managers(201),
        {"first_name": "Nora", "phone": "+393330009999"}),
    Row("contacts-read-own", "GET", "/api/1/contacts/1/", everyone(200)),
    Row("contacts-read-other", "GET", "/api/1/contacts/2/",
        everyone(200, chat_operator=404)),
    Row("contacts-update-own", "PATCH", "/api/1/contacts/1/", everyone(200),
        {"email": "anna@example.com"}),
    Row("contacts-update-other", "PATCH", "/api/1/contacts/2/",
        everyone(200, chat_operator=404), {"email": "marco@example.com"}),
    Row("contacts-delete-own", "DELETE", "/api/1/contacts/4/", everyone(204)),
    Row("contacts-delete-other", "DELETE", "/api/1/contacts/5/",
        everyone(204, chat_operator=404)),
    Row("contacts-add-operator", "POST", "/api/1/contacts/7/add_operator/",
        managers(200), {"operator": "u-op-3"}),
    Row("contacts-remove-operator", "POST", "/api/1/contacts/7/remove_operator/",
        managers(200), {"operator": "u-op-1"}),
    Row("contacts-tag-own", "POST", "/api/1/contacts/1/tags/", everyone(200),
        {"tag": 3}),
    Row("contacts-tag-other", "POST", "/api/1/contacts/2/tags/",
        everyone(200, chat_operator=404), {"tag": 4}),
    Row("contacts-untag-own", "DELETE", "/api/1/contacts/1/tags/2/", everyone(200)),
    Row("contacts-untag-other", "DELETE", "/api/1/contacts/2/tags/3/",
        everyone(200, chat_operator=404)),
    # Lists and their members.
    Row("lists-list", "GET", "/api/1/lists/", everyone(200)),
    Row("lists-read", "GET", "/api/1/lists/1/", everyone(200)),
    Row("lists-create", "POST", "/api/1/lists/", managers(201), {"name": "Summer"}),
    Row("lists-update", "PATCH", "/api/1/lists/1/", managers(200),
        {"name": "Newsletter 2"}),
    Row("lists-delete", "DELETE", "/api/1/lists/5/", managers(204)),
    Row("lists-members-list", "GET", "/api/1/lists/1/contacts/", everyone(200)),
    Row("lists-members-add", "POST", "/api/1/lists/1/contacts/", managers(200),
        {"contact": 2}),
    # Tags.
    Row("tags-list", "GET", "/api/1/tags/", everyone(200)),
    Row("tags-read", "GET", "/api/1/tags/1/", everyone(200)),
    Row("tags-create", "POST", "/api/1/tags/", managers(201), {"name": "priority"}),
    Row("tags-update", "PATCH", "/api/1/tags/1/", managers(200), {"color": "#000000"}),
    Row("tags-delete", "DELETE", "/api/1/tags/8/", managers(204)),
    # Dashboards: operators get their own figures, which test_operator_scope.py
    # checks in detail.
    Row("dashboards-read", "GET", "/api/1/dashboards/summary/", everyone(200)),
    # Templates, campaigns, automations and webhooks (the integrations resource).
    Row("templates-list", "GET", "/api/1/templates/", administrators(200)),
    Row("templates-create", "POST", "/api/1/templates/", administrators(201),
        {"name": "Reminder"}),
    Row("templates-read", "GET", "/api/1/templates/1/", administrators(200)),
    Row("templates-update", "PATCH", "/api/1/templates/1/", administrators(200),
        {"body": "Order {{1}} is on its way."}),
    Row("templates-delete", "DELETE", "/api/1/templates/1/", administrators(204)),
    Row("campaigns-list", "GET", "/api/1/campaigns/", administrators(200)),
    Row("campaigns-create", "POST", "/api/1/campaigns/", administrators(201),
        {"name": "Summer sale"}),
    Row("campaigns-read", "GET", "/api/1/campaigns/1/", administrators(200)),
    Row("campaigns-update", "PATCH", "/api/1/campaigns/2/", administrators(200),
        {"status": "scheduled"}),
    Row("campaigns-delete", "DELETE", "/api/1/campaigns/2/", administrators(204)),
    Row("automations-list", "GET", "/api/1/automations/", administrators(200)),
    Row("automations-create", "POST", "/api/1/automations/", administrators(201),
        {"name": "Tag new contacts"}),
    Row("automations-read", "GET", "/api/1/automations/1/", administrators(200)),
    Row("automations-update", "PATCH", "/api/1/automations/2/", administrators(200),
        {"enabled": True}),
    Row("automations-delete", "DELETE", "/api/1/automations/2/", administrators(204)),
    Row("integrations-list", "GET", "/api/1/webhooks/", administrators(200)),
    Row("integrations-create", "POST", "/api/1/webhooks/", administrators(201),
        {"name": "Audit", "url": "https://example.com/hooks/audit"}),
    Row("integrations-read", "GET", "/api/1/webhooks/1/", administrators(200)),
    Row("integrations-update", "PATCH", "/api/1/webhooks/1/", administrators(200),
        {"events": ["chat.closed"]}),
    Row("integrations-delete", "DELETE", "/api/1/webhooks/2/", administrators(204)),
    # The account and its billing.
    Row("account-read", "GET", "/api/1/account/", owner_only(200)),
    Row("account-update", "PATCH", "/api/1/account/", owner_only(200),
        {"name": "Demo Shop Ltd"}),
    Row("billing-read", "GET", "/api/1/account/billing/", owner_only(200)),
    Row("billing-head", "HEAD", "/api/1/account/billing/", owner_only(200)),
    # The chat view that partner sites embed.
    Row("app-view", "GET", "/app/", everyone(200)),
    Row("app-script", "GET", "/app/app.js", everyone(200)),
]

CASES = [
    pytest.param(row, principal, id=f"{row.name}-{principal}")
    for row in ROWS
    for principal in (*ROLES, "service_user")
]


@pytest.mark.parametrize(("row", "principal"), CASES)
async def test_role_route_action_table(gateway, sample_api, http, row, principal):
    expected = row.expected[principal]
    headers = gateway.credentials(principal)

    async with http.request(
        row.method, gateway.url + row.path, json=row.body, headers=headers
    ) as response:
        body = await response.read()

    assert response.status == expected, body
    forwarded = await sample_api.forwarded()

    if expected in (403, 404):
        assert response.content_type == "application/problem+json"
        assert forwarded == [], "a refused request reached the upstream"
        if expected == 403:
            assert await sample_api.recorded() == [], "a 403 must not look anything up"
        return

    assert [(entry["method"], entry["path"]) for entry in forwarded] == [
        (row.method, row.path)
    ]
    assert forwarded[0]["headers"]["x-gateway-user"] == gateway.user_id(principal)


async def test_table_covers_every_action(gateway):
    """Each (resource, action) pair that config.yaml routes has a table row."""
    covered = set()
    for row in ROWS:
        segments = tuple(row.path[1:].split("/"))
        match = gateway.running.gateway.snapshot.routes.match(row.method, segments)
        covered.add((match.route.resource, match.route.action))

    assert covered == set(gateway.config.routed_actions)
