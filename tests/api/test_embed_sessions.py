"""Embed sessions: launch codes, the start page, the cookie and token, scope, revocation.

The service user u-service has the chat_manager role; its sessions here are
scoped to chat 1 unless a test sets another scope.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARTNER = "http://partner.test"
COOKIE = "__Host-gateway-embed"


def set_cookie_attributes(header: str) -> tuple[str, str, set[str]]:
    """Split a Set-Cookie header into name, value and lower-cased attributes."""
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    return name, value, {attribute.lower() for attribute in attributes}


class Embedding:
    def __init__(self, gateway, http) -> None:
        self.gateway = gateway
        self.http = http

    async def allow(self, *origins: str, user: str = "u-service") -> None:
        async with self.http.put(
            self.gateway.url + f"/gateway/v1/users/{user}/embed/origins",
            json={"origins": list(origins)}, headers=self.gateway.credentials("owner"),
        ) as response:
            assert response.status == 200

    async def launch(self, body=None, *, key: str | None = None):
        body = {"origin": PARTNER, "scope": {"chat": "1"}} if body is None else body
        headers = {"X-API-Key": key or self.gateway.service_api_key}
        async with self.http.post(self.gateway.url + "/gateway/v1/embed/sessions",
                                  json=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def start(self, code: str):
        async with self.http.get(self.gateway.url + f"/embed/start?code={code}",
                                 allow_redirects=False) as response:
            await response.read()
            return response

    async def cookie_session(self, body=None) -> dict[str, str]:
        """Launch and start a session; return the headers its view sends."""
        _, launched = await self.launch(body)
        response = await self.start(launched["code"])
        _, token, _ = set_cookie_attributes(response.headers["Set-Cookie"])
        cookie = {"Cookie": f"{COOKIE}={token}"}
        async with self.http.get(self.gateway.url + "/gateway/v1/embed/session",
                                 headers=cookie) as info:
            csrf = (await info.json())["csrf_token"]
        return {**cookie, "Origin": self.gateway.url, "X-CSRF-Token": csrf,
                "_session": launched["session"]["id"]}

    async def get(self, path: str, headers: dict[str, str]) -> int:
        headers = {k: v for k, v in headers.items() if not k.startswith("_")}
        async with self.http.get(self.gateway.url + path, headers=headers) as response:
            await response.read()
            return response.status


@pytest_asyncio.fixture(loop_scope="session")
async def embedding(gateway, http) -> Embedding:
    embedding = Embedding(gateway, http)
    await embedding.allow(PARTNER)
    return embedding


async def test_launch_returns_code_and_url(embedding):
    status, launched = await embedding.launch()

    assert status == 201
    assert len(launched["code"]) >= 43, "fewer than 32 random bytes"
    assert launched["url"].endswith(f"/embed/start?code={launched['code']}")
    assert launched["code_expires_in"] == 120


async def test_launch_for_an_origin_not_allowed_is_refused(embedding):
    status, problem = await embedding.launch({"origin": "http://evil.test"})

    assert status == 403
    assert "not an allowed origin" in problem["detail"]


@pytest.mark.parametrize("origin", ["http://partner.test/", "partner.test",
                                    "http://partner.test/page", "javascript:alert(1)"])
async def test_launch_with_a_malformed_origin_gets_422(embedding, origin):
    status, problem = await embedding.launch({"origin": origin})

    assert status == 422
    assert problem["field"] == "origin"


async def test_launch_with_an_unknown_scope_kind_gets_422(embedding):
    status, problem = await embedding.launch({"origin": PARTNER,
                                              "scope": {"campaign": "1"}})

    assert status == 422
    assert problem["allowed"] == ["chat", "contact"]


async def test_standard_user_cannot_launch(embedding, gateway, http):
    async with http.post(gateway.url + "/gateway/v1/embed/sessions",
                         json={"origin": PARTNER},
                         headers=gateway.credentials("owner")) as response:
        assert response.status == 403


async def test_start_sets_a_partitioned_host_cookie_and_redirects(embedding):
    _, launched = await embedding.launch()

    response = await embedding.start(launched["code"])

    assert response.status == 303
    assert response.headers["Location"] == "/app/"
    name, _, attributes = set_cookie_attributes(response.headers["Set-Cookie"])
    assert name == COOKIE
    assert {"secure", "httponly", "samesite=none", "partitioned",
            "path=/"} <= attributes
    assert not any(attribute.startswith("domain") for attribute in attributes)


async def test_start_framed_by_partner_only(embedding):
    _, launched = await embedding.launch()

    response = await embedding.start(launched["code"])

    assert response.headers["Content-Security-Policy"] == f"frame-ancestors {PARTNER}"
    assert "X-Frame-Options" not in response.headers
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


async def test_replayed_code_gets_401_and_a_page(embedding):
    _, launched = await embedding.launch()
    await embedding.start(launched["code"])

    replay = await embedding.start(launched["code"])

    assert replay.status == 401
    assert replay.content_type == "text/html"
    assert "Set-Cookie" not in replay.headers


async def test_expired_code_gets_401(gateway_factory, sample_api, http):
    gateway = await gateway_factory(sample_api.url, {("embed", "code_seconds"): 0.2})
    embedding = Embedding(gateway, http)
    await embedding.allow(PARTNER)
    _, launched = await embedding.launch()
    await asyncio.sleep(0.3)

    response = await embedding.start(launched["code"])

    assert response.status == 401


async def test_two_starts_with_one_code_open_one_session(embedding):
    _, launched = await embedding.launch()

    responses = await asyncio.gather(*(embedding.start(launched["code"])
                                       for _ in range(5)))

    assert sorted(response.status for response in responses) == [303, 401, 401, 401,
                                                                  401]


SCOPE_ROWS = [
    pytest.param("/api/1/chats/1/", 200, id="scoped-chat"),
    pytest.param("/api/1/chats/1/messages/", 200, id="scoped-chat-messages"),
    pytest.param("/api/1/chats/2/", 403, id="another-chat"),
    pytest.param("/api/1/chats/2/messages/", 403, id="another-chats-messages"),
    pytest.param("/api/1/chats/", 403, id="chat-list"),
    pytest.param("/api/1/contacts/", 403, id="contact-list"),
    pytest.param("/api/1/contacts/1/", 403, id="a-contact"),
    pytest.param("/api/1/templates/", 403, id="templates"),
    pytest.param("/api/1/webhooks/", 403, id="integrations"),
    pytest.param("/api/1/account/", 403, id="account"),
    pytest.param("/gateway/v1/users", 401, id="users-api"),
    pytest.param("/gateway/v1/audit", 401, id="audit"),
]


@pytest.mark.parametrize(("path", "status"), SCOPE_ROWS)
async def test_scoped_session_reaches_its_chat_only(embedding, sample_api, path,
                                                    status):
    headers = await embedding.cookie_session()
    await sample_api.clear()

    got = await embedding.get(path, headers)

    assert got == status
    if status != 200:
        assert await sample_api.forwarded() == [], "a refused request went upstream"


async def test_unscoped_session_lists_chats(embedding):
    headers = await embedding.cookie_session({"origin": PARTNER})

    assert await embedding.get("/api/1/chats/", headers) == 200


async def test_message_from_the_view_is_sent(embedding, gateway, http):
    headers = await embedding.cookie_session()
    headers.pop("_session")

    async with http.post(gateway.url + "/api/1/chats/1/messages/",
                         json={"text": "from the view"}, headers=headers) as response:
        assert response.status == 201


FORGERIES = [
    pytest.param({"Origin": PARTNER}, id="partner-origin"),
    pytest.param({"Origin": None}, id="no-origin"),
    pytest.param({"X-CSRF-Token": None}, id="no-csrf-token"),
    pytest.param({"X-CSRF-Token": "0" * 64}, id="wrong-csrf-token"),
]


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_forged_message_with_the_cookie_is_refused(embedding, gateway, http,
                                                         sample_api, forgery):
    headers = await embedding.cookie_session()
    headers.pop("_session")
    for name, value in forgery.items():
        headers.pop(name)
        if value is not None:
            headers[name] = value
    await sample_api.clear()

    async with http.post(gateway.url + "/api/1/chats/1/messages/",
                         json={"text": "forged"}, headers=headers) as response:
        assert response.status == 403

    assert await sample_api.forwarded() == []


async def trade(http, gateway, code: str, origin: str = PARTNER, *,
                sender: str | None = None):
    """Trade `code` as the view does, from the gateway's origin or from `sender`."""
    async with http.post(gateway.url + "/gateway/v1/embed/token",
                         json={"code": code, "origin": origin},
                         headers={"Origin": sender or gateway.url}) as response:
        return response.status, await response.json(content_type=None)


async def test_code_traded_for_a_short_bearer_token(embedding, gateway, http):
    _, launched = await embedding.launch()

    status, traded = await trade(http, gateway, launched["code"])

    bearer = {"Authorization": f"Bearer {traded['token']}"}
    assert status == 200
    assert await embedding.get("/api/1/chats/1/", bearer) == 200
    assert await embedding.get("/api/1/chats/2/", bearer) == 403


async def test_bearer_token_lasts_at_most_15_minutes(embedding, gateway, http):
    _, launched = await embedding.launch()

    _, traded = await trade(http, gateway, launched["code"])

    session = gateway.running.embeds.get(launched["session"]["id"])
    assert session.expires_at - session.started_at <= 900


async def test_code_for_another_origin_is_not_traded(embedding, gateway, http):
    _, launched = await embedding.launch()

    wrong = await trade(http, gateway, launched["code"], origin="http://evil.test")
    right = await trade(http, gateway, launched["code"])

    assert (wrong[0], right[0]) == (401, 200)


async def test_traded_code_cannot_start_a_cookie_session(embedding, gateway, http):
    _, launched = await embedding.launch()
    await trade(http, gateway, launched["code"])

    response = await embedding.start(launched["code"])

    assert response.status == 401


async def test_revoked_session_ends_at_the_next_request(embedding, gateway, http):
    headers = await embedding.cookie_session()

    async with http.delete(
        gateway.url + f"/gateway/v1/users/u-service/embed/sessions/{headers['_session']}",
        headers=gateway.credentials("administrator"),
    ) as response:
        assert response.status == 204
    assert await embedding.get("/api/1/chats/1/", headers) == 401


async def test_revoking_all_sessions_ends_them(embedding, gateway, http):
    first = await embedding.cookie_session()
    second = await embedding.cookie_session()

    async with http.delete(gateway.url + "/gateway/v1/users/u-service/embed/sessions",
                           headers=gateway.credentials("owner")) as response:
        assert (await response.json())["revoked"] >= 2
    assert await embedding.get("/api/1/chats/1/", first) == 401
    assert await embedding.get("/api/1/chats/1/", second) == 401


async def test_revoking_the_key_ends_its_sessions(embedding, gateway, http):
    user, key = await gateway.store.add_service_user(
        name="Help desk", email="helpdesk@example.com", role="chat_manager")
    await embedding.allow(PARTNER, user=user.id)
    _, launched = await embedding.launch(key=key)
    response = await embedding.start(launched["code"])
    _, token, _ = set_cookie_attributes(response.headers["Set-Cookie"])

    await gateway.store.revoke_api_key(key)

    assert await embedding.get("/api/1/chats/1/", {"Cookie": f"{COOKIE}={token}"}) == 401


async def test_sessions_are_listed_without_secrets(embedding, gateway, http):
    _, launched = await embedding.launch()

    async with http.get(gateway.url + "/gateway/v1/users/u-service/embed/sessions",
                        headers=gateway.credentials("owner")) as response:
        text = await response.text()

    assert launched["session"]["id"] in text
    assert launched["code"] not in text


async def test_chat_manager_cannot_manage_embed_origins(embedding, gateway, http):
    async with http.put(gateway.url + "/gateway/v1/users/u-service/embed/origins",
                        json={"origins": ["http://evil.test"]},
                        headers=gateway.credentials("chat_manager")) as response:
        assert response.status == 403


async def test_proxied_responses_may_not_be_framed(gateway, http):
    async with http.get(gateway.url + "/api/1/chats/",
                        headers=gateway.credentials("owner")) as response:
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_no_code_or_token_in_decision_lines(embedding, gateway, http, caplog):
    caplog.set_level(logging.INFO, logger="gateway.decision")
    _, launched = await embedding.launch()
    response = await embedding.start(launched["code"])
    _, token, _ = set_cookie_attributes(response.headers["Set-Cookie"])
    await embedding.get("/api/1/chats/1/", {"Cookie": f"{COOKIE}={token}"})

    logged = " ".join(str(record.__dict__) for record in caplog.records)

    assert "embed" in logged, "no decision line was captured"
    assert launched["code"] not in logged
    assert token not in logged


@pytest.mark.parametrize(("query", "frame_ancestors"), [
    ("", "'none'"),
    (f"?parent={PARTNER}", PARTNER),
    ("?parent=http://evil.test", "'none'"),
])
async def test_bare_view_framed_by_allowed_parent(embedding, gateway, http,
                                                             query, frame_ancestors):
    async with http.get(gateway.url + "/app/" + query) as response:
        assert response.status == 200
        policies = response.headers.getall("Content-Security-Policy")

    assert f"frame-ancestors {frame_ancestors}" in policies


async def test_bare_view_goes_upstream_without_identity(embedding, gateway, http,
                                                        sample_api):
    await sample_api.clear()

    async with http.get(gateway.url + "/app/app.js") as response:
        assert response.status == 200

    (forwarded,) = await sample_api.forwarded()
    assert "x-gateway-user" not in forwarded["headers"]


async def test_bare_view_route_takes_no_other_path(gateway, http, sample_api):
    await sample_api.clear()

    async with http.get(gateway.url + "/api/1/chats/1/") as response:
        assert response.status == 401

    assert await sample_api.forwarded() == []


async def test_code_traded_from_another_page_is_refused(embedding, gateway, http):
    _, launched = await embedding.launch()

    refused = await trade(http, gateway, launched["code"], sender=PARTNER)
    traded = await trade(http, gateway, launched["code"])

    assert (refused[0], traded[0]) == (403, 200)


async def test_launch_url_opened_as_a_page_starts_nothing(embedding, gateway, http):
    _, launched = await embedding.launch()

    async with http.get(gateway.url + f"/embed/start?code={launched['code']}",
                        headers={"Sec-Fetch-Dest": "document"},
                        allow_redirects=False) as response:
        assert response.status == 403
    framed = await embedding.start(launched["code"])

    assert framed.status == 303


async def test_cookie_value_is_no_bearer_token(embedding):
    headers = await embedding.cookie_session()
    token = headers["Cookie"].split("=", 1)[1]

    assert await embedding.get("/api/1/chats/1/",
                               {"Authorization": f"Bearer {token}"}) == 401


async def test_bearer_token_is_no_cookie(embedding, gateway, http):
    _, launched = await embedding.launch()
    _, traded = await trade(http, gateway, launched["code"])

    assert await embedding.get("/api/1/chats/1/",
                               {"Cookie": f"{COOKIE}={traded['token']}"}) == 401


@pytest.mark.parametrize("origin", [
    "http://*", "https://*.crm.example.com", "http://x 127.0.0.1:19001",
    "http://a.com;x", "http://'self'", "http://a:b", "http://a.com:99999",
    "http://a.com:0", "http://a.com:80", "https://CRM.example.com", "http://a.com ",
])
async def test_origin_that_csp_would_misread_gets_422(embedding, gateway, http, origin):
    async with http.put(gateway.url + "/gateway/v1/users/u-service/embed/origins",
                        json={"origins": [origin]},
                        headers=gateway.credentials("owner")) as response:
        assert response.status == 422


async def test_origin_changes_and_revocations_are_audited(embedding, gateway, http):
    await embedding.cookie_session()
    await embedding.allow(PARTNER, "https://crm.example.com")
    async with http.delete(gateway.url + "/gateway/v1/users/u-service/embed/sessions",
                           headers=gateway.credentials("owner")) as response:
        assert response.status == 200

    entries = (await gateway.store.list_audit(limit=5))
    actions = [entry.action for entry in entries]
    assert actions[:2] == ["embed.revoke", "embed.origins"]
    assert entries[1].after == {"origins": ["http://partner.test",
                                            "https://crm.example.com"]}


@pytest.mark.parametrize("user_id", ["u-service", "u-owner", "u-nobody"])
async def test_operator_cannot_probe_embed_endpoints(gateway, http, user_id):
    async with http.get(gateway.url + f"/gateway/v1/users/{user_id}/embed/origins",
                        headers=gateway.credentials("chat_operator")) as response:
        assert response.status == 403
