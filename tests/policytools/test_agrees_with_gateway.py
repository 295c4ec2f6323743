"""The offline decider against a running gateway in front of the sample API.

Only reads and refused writes are sent, so the shared sample data stays as
seeded.  The decider is given each object's owners from the seed data, which
is what the gateway's resolver reads from the sample API.
"""

from __future__ import annotations

import pytest

from gateway.policytools.offline import Subject
from sample_api.data import chat_assignee, contact_operators

pytestmark = pytest.mark.asyncio(loop_scope="session")

REQUESTS = [
    ("owner", "GET", "/api/1/account/billing/"),
    ("administrator", "GET", "/api/1/account/"),
    ("administrator", "GET", "/api/1/templates/"),
    ("chat_manager", "GET", "/api/1/campaigns/"),
    ("chat_manager", "GET", "/api/1/chats/2/"),
    ("chat_manager", "GET", "/api/1/nothing/"),
    ("chat_manager", "DELETE", "/api/1/account/"),
    ("chat_operator", "GET", "/api/1/chats/1/"),
    ("chat_operator", "GET", "/api/1/chats/2/"),
    ("chat_operator", "GET", "/api/1/chats/4/"),
    ("chat_operator", "GET", "/api/1/chats/1/messages/"),
    ("chat_operator", "POST", "/api/1/chats/2/messages/"),
    ("chat_operator", "POST", "/api/1/chats/1/assign/"),
    ("chat_operator", "GET", "/api/1/contacts/1/"),
    ("chat_operator", "GET", "/api/1/contacts/2/"),
    ("chat_operator", "GET", "/api/1/contacts/?operator=u-op-2"),
    ("chat_operator", "GET", "/api/1/lists/"),
    ("chat_operator", "POST", "/api/1/tags/"),
    ("chat_operator", "GET", "/api/1/integrations/"),
    ("chat_operator", "GET", "/api/1/webhooks/"),
]


def _seeded_object(route, path: str) -> dict | None:
    if route is None or route.object is None:
        return None
    object_id = int(path.split("/")[4])
    if route.object.name == "chat":
        return {"assignee": chat_assignee(object_id)}
    return {"operators": contact_operators(object_id)}


@pytest.mark.parametrize(("principal", "method", "path"), REQUESTS)
async def test_matches_gateway_status(gateway, http, decider, principal, method,
                                      path):
    user_id = gateway.user_id(principal)
    subject = Subject(role=principal, user_id=user_id)
    first = decider.decide(subject, method, path)
    route = decider.config.routes[0] if first.route is None else next(
        route for route in decider.config.routes
        if f"{method} {route.path.text}" == first.route
    )
    decision = decider.decide(subject, method, path,
                              obj=_seeded_object(route, path))

    async with http.request(method, gateway.url + path,
                            headers=gateway.credentials(principal),
                            json={} if method == "POST" else None) as response:
        status = response.status

    if decision.decision == "allow":
        assert status < 400, f"{decision.reason}: gateway answered {status}"
    else:
        assert decision.decision == "deny"
        assert status == decision.status, decision.reason
