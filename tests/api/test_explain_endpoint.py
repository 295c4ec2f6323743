"""POST /gateway/v1/explain: the running policy's decision, for owners and administrators."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

OTHERS_CHAT = {"user": "u-op-1", "method": "GET", "path": "/api/1/chats/2/",
               "object": {"assignee": "u-op-2"}}


@pytest.mark.parametrize(("actor", "status"), [
    ("owner", 200),
    ("administrator", 200),
    ("chat_manager", 403),
    ("chat_operator", 403),
    ("service_user", 403),
])
async def test_explain_by_role(api, actor, status):
    response = await api.call(actor, "POST", "/explain", OTHERS_CHAT)

    assert response.status == status


async def test_explain_names_decision_and_policy_line(api):
    response = await api.call("administrator", "POST", "/explain", OTHERS_CHAT)

    assert response.body["decision"] == "deny"
    assert response.body["object_check"] == "other"
    assert response.body["policy_line"].startswith("roles.csv:")


async def test_explain_allows_own_chat(api):
    own = {**OTHERS_CHAT, "path": "/api/1/chats/1/", "object": {"assignee": "u-op-1"}}

    response = await api.call("owner", "POST", "/explain", own)

    assert response.body["decision"] == "allow"
    assert response.body["role_chain"] == ["chat_operator"]


async def test_explain_unknown_user_is_denied(api):
    response = await api.call("owner", "POST", "/explain",
                              {**OTHERS_CHAT, "user": "u-nobody"})

    assert response.body["reason"] == "user_unknown"


async def test_explain_without_needed_object_says_so(api):
    request = {key: value for key, value in OTHERS_CHAT.items() if key != "object"}

    response = await api.call("owner", "POST", "/explain", request)

    assert response.body["decision"] == "needs_object"


async def test_explain_sends_nothing_upstream(api, sample_api):
    await sample_api.clear()

    await api.call("owner", "POST", "/explain", OTHERS_CHAT)

    assert await sample_api.recorded() == []
