"""WebSockets and event streams stay open only while their request is allowed.

Seed data: chat 1 is assigned to u-op-1, chat 2 to u-op-2.  The gateways here
recheck open streams every 0.2 s, so a change shows within a second.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import WSCloseCode, WSMsgType

from gateway.config.derive import derive_config
from gateway.snapshot import load_snapshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECHECK = {("streams", "recheck_seconds"): 0.2}
CLOSE_WITHIN = 3.0


@pytest_asyncio.fixture(loop_scope="session")
async def streaming_gateway(gateway_factory, sample_api):
    return await gateway_factory(sample_api.url, RECHECK)


def socket_url(gateway, chat_id: int) -> str:
    return f"{gateway.url}/api/1/chats/{chat_id}/stream/"


def events_url(gateway, chat_id: int) -> str:
    return f"{gateway.url}/api/1/chats/{chat_id}/events/?heartbeat=0.1"


async def open_socket(http, gateway, chat_id: int, headers: dict):
    socket = await http.ws_connect(socket_url(gateway, chat_id), headers=headers)
    ready = await socket.receive_json(timeout=CLOSE_WITHIN)
    assert ready == {"type": "ready", "chat_id": chat_id}
    return socket


async def close_frame(socket) -> aiohttp.WSMessage:
    """Return the first close frame, skipping the upstream's messages."""
    while True:
        frame = await socket.receive(timeout=CLOSE_WITHIN)
        if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return frame


async def post(http, url: str, headers: dict, body: dict | None = None) -> int:
    async with http.post(url, json=body, headers=headers) as response:
        await response.read()
        return response.status


UPGRADES_REFUSED = [
    pytest.param({}, 1, 401, id="no-credentials"),
    pytest.param({"Authorization": "Bearer not.a.token"}, 1, 401, id="bad-token"),
    pytest.param("u-op-1", 2, 404, id="operator-other-chat"),
    pytest.param("u-op-1", 4, 404, id="operator-unassigned-chat"),
]


@pytest.mark.parametrize(("who", "chat_id", "status"), UPGRADES_REFUSED)
async def test_refused_upgrade_never_reaches_upstream(streaming_gateway, sample_api,
                                                      http, who, chat_id, status):
    headers = streaming_gateway.bearer(who) if isinstance(who, str) else who

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(socket_url(streaming_gateway, chat_id), headers=headers)

    assert refused.value.status == status
    forwarded = await sample_api.forwarded()
    assert forwarded == [], "the upstream must not see a refused upgrade"


async def test_allowed_socket_relays_both_ways(streaming_gateway, http):
    socket = await open_socket(http, streaming_gateway, 1,
                               streaming_gateway.bearer("u-op-1"))

    await socket.send_str("ping")
    reply = await socket.receive(timeout=CLOSE_WITHIN)
    sent = await post(http, f"{streaming_gateway.url}/api/1/chats/1/messages/",
                      streaming_gateway.bearer("u-manager"), {"text": "hello"})
    pushed = await socket.receive_json(timeout=CLOSE_WITHIN)
    await socket.close()

    assert reply.data == "pong"
    assert sent == 201
    assert pushed["message"]["text"] == "hello"


async def test_socket_identity_set_by_gateway(streaming_gateway, sample_api, http):
    headers = streaming_gateway.bearer("u-op-1") | {"X-Gateway-User": "u-owner"}
    socket = await open_socket(http, streaming_gateway, 1, headers)
    await socket.close()

    upgrade = (await sample_api.forwarded())[-1]
    assert upgrade["headers"]["x-gateway-user"] == "u-op-1"
    assert "authorization" not in upgrade["headers"]


async def test_socket_closed_when_token_expires(streaming_gateway, http):
    token = streaming_gateway.issuer.issue("u-op-1", lifetime=1)
    socket = await open_socket(http, streaming_gateway, 1,
                               {"Authorization": f"Bearer {token}"})

    frame = await close_frame(socket)

    assert frame.data == WSCloseCode.POLICY_VIOLATION
    assert frame.extra == "token_expired"


async def test_socket_closed_when_user_deactivated(streaming_gateway, http):
    socket = await open_socket(http, streaming_gateway, 1,
                               streaming_gateway.bearer("u-op-1"))

    await streaming_gateway.store.set_active("u-op-1", False)
    frame = await close_frame(socket)

    assert frame.data == WSCloseCode.POLICY_VIOLATION
    assert frame.extra == "user_inactive"


async def test_socket_closed_when_role_narrows(streaming_gateway, http):
    socket = await open_socket(http, streaming_gateway, 2,
                               streaming_gateway.bearer("u-manager"))

    await streaming_gateway.store.set_role("u-manager", "chat_operator")
    frame = await close_frame(socket)

    assert frame.data == WSCloseCode.POLICY_VIOLATION
    assert frame.extra == "object_not_own", "chat 2 is not the new operator's"


async def test_socket_closed_at_once_on_unassign(gateway_factory, sample_api, http):
    # A recheck period far above the bound shows that the unassign itself
    # triggers the recheck.
    gateway = await gateway_factory(sample_api.url, {("streams", "recheck_seconds"): 60})
    socket = await open_socket(http, gateway, 1, gateway.bearer("u-op-1"))

    unassigned = await post(http, f"{gateway.url}/api/1/chats/1/unassign/",
                            gateway.bearer("u-manager"))
    frame = await close_frame(socket)

    assert unassigned == 200
    assert frame.data == WSCloseCode.POLICY_VIOLATION
    assert frame.extra == "object_not_own"


async def test_socket_closed_when_policy_replaced(streaming_gateway, http, tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(streaming_gateway.config.roles_path.parent, policies)
    roles = policies / "roles.csv"
    roles.write_text(roles.read_text().replace(
        "p, chat_manager, messages, list, all\n", ""
    ))
    edited = derive_config(streaming_gateway.config_file, tmp_path / "config.yaml",
                           {("policy", "roles"): roles,
                            ("policy", "model"): policies / "model.conf"})
    socket = await open_socket(http, streaming_gateway, 2,
                               streaming_gateway.bearer("u-manager"))

    await streaming_gateway.running.gateway.replace_snapshot(load_snapshot(edited))
    frame = await close_frame(socket)

    assert frame.data == WSCloseCode.POLICY_VIOLATION
    assert frame.extra == "object_not_own", "the manager keeps only the own grant"


async def read_until_end(response) -> bytes:
    async with asyncio.timeout(CLOSE_WITHIN):
        return await response.content.read()


async def test_event_stream_ends_on_unassign(streaming_gateway, http):
    async with http.get(events_url(streaming_gateway, 1),
                        headers=streaming_gateway.bearer("u-op-1")) as response:
        first = await response.content.readline()
        unassigned = await post(http, f"{streaming_gateway.url}/api/1/chats/1/unassign/",
                                streaming_gateway.bearer("u-manager"))
        await read_until_end(response)

    assert response.status == 200
    assert first == b"event: ready\n"
    assert unassigned == 200


async def test_event_stream_ends_when_key_revoked(streaming_gateway, http):
    key = streaming_gateway.service_api_key
    async with http.get(events_url(streaming_gateway, 1),
                        headers={"X-API-Key": key}) as response:
        first = await response.content.readline()
        await streaming_gateway.store.revoke_api_key(key.split("_")[1])
        await read_until_end(response)

    assert response.status == 200
    assert first == b"event: ready\n"


async def test_upgrade_on_plain_route_not_upgraded(streaming_gateway, sample_api, http):
    headers = streaming_gateway.bearer("u-op-1") | {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }

    async with http.get(f"{streaming_gateway.url}/api/1/chats/1/",
                        headers=headers) as response:
        await response.read()

    forwarded = (await sample_api.forwarded())[-1]
    assert response.status == 200
    assert "upgrade" not in forwarded["headers"]


async def test_ended_stream_decision_names_reason(streaming_gateway, http, caplog):
    caplog.set_level(logging.INFO, logger="gateway.decision")
    async with http.get(events_url(streaming_gateway, 1),
                        headers=streaming_gateway.bearer("u-op-1")) as response:
        await response.content.readline()
        await post(http, f"{streaming_gateway.url}/api/1/chats/1/unassign/",
                   streaming_gateway.bearer("u-manager"))
        await read_until_end(response)

    opened, ended = [record for record in caplog.records
                     if record.name == "gateway.decision"
                     and record.route == "GET /api/1/chats/{id}/events/"]
    assert opened.reason == "stream_opened"
    assert ended.reason == "object_not_own"
    assert ended.status == 200, "the client got the stream's 200"
    assert ended.request_id == opened.request_id


async def test_open_stream_logged_before_it_ends(streaming_gateway, http, caplog):
    caplog.set_level(logging.INFO, logger="gateway.decision")
    async with http.get(events_url(streaming_gateway, 1),
                        headers=streaming_gateway.bearer("u-op-1")) as response:
        await response.content.readline()
        logged = [record for record in caplog.records
                  if record.name == "gateway.decision"
                  and record.route == "GET /api/1/chats/{id}/events/"]

    assert [record.reason for record in logged] == ["stream_opened"]
    assert logged[0].decision == "allow"
    assert logged[0].status == 200
    assert logged[0].subject == "u-op-1"


async def test_left_client_releases_stream(streaming_gateway, http):
    metrics = streaming_gateway.running.gateway.metrics.registry
    async with http.get(events_url(streaming_gateway, 1),
                        headers=streaming_gateway.bearer("u-op-1")) as response:
        await response.content.readline()
        opened = metrics.get_sample_value("gateway_open_streams")

    async with asyncio.timeout(CLOSE_WITHIN):
        while metrics.get_sample_value("gateway_open_streams") != 0:
            await asyncio.sleep(0.05)

    assert opened == 1


async def test_streams_beyond_user_limit_refused(gateway_factory, sample_api, http):
    gateway = await gateway_factory(sample_api.url, {("streams", "max_per_user"): 2})
    headers = gateway.bearer("u-op-1")
    sockets = [await open_socket(http, gateway, 1, headers) for _ in range(2)]
    await sample_api.clear()

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(socket_url(gateway, 1), headers=headers)
    for socket in sockets:
        await socket.close()

    assert refused.value.status == 429
    assert await sample_api.forwarded() == [], "a refused stream never reaches upstream"


async def test_unlisted_subprotocol_refused_before_upstream(streaming_gateway,
                                                            sample_api, http):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(socket_url(streaming_gateway, 1),
                              headers=streaming_gateway.bearer("u-op-1"),
                              protocols=("access_token.u-owner",))

    assert refused.value.status == 400
    assert await sample_api.forwarded() == [], "the upstream must not see the upgrade"


async def test_listed_subprotocol_passes(gateway_factory, sample_api, http):
    gateway = await gateway_factory(sample_api.url, RECHECK | {
        ("streams", "websocket_subprotocols"): ["chat.v1"],
    })

    socket = await http.ws_connect(socket_url(gateway, 1),
                                   headers=gateway.bearer("u-op-1"),
                                   protocols=("chat.v1",))
    ready = await socket.receive_json(timeout=CLOSE_WITHIN)
    await socket.close()

    assert ready == {"type": "ready", "chat_id": 1}
    upgrade = (await sample_api.forwarded())[-1]
    assert upgrade["headers"]["sec-websocket-protocol"] == "chat.v1"
