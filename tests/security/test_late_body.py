"""Decisions made on a request head and a body that arrives after them.

A client can send a write's head, wait, and send its body up to
`limits.body_timeout` later.  Whatever changes meanwhile (the chat is
reassigned, the user deactivated or demoted) must apply to that write: the gateway decides again once the body is whole, before the upstream
has a whole request to act on.  Each case sends the head and part of the body,
makes the change, then sends the rest.

In the seed data chat 1 and contact 1 belong to u-op-1.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from collections.abc import Awaitable, Callable

import pytest

from .wire import assert_problem, build_request, exchange, parse_responses

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = "u-op-1"
# Larger than the 256 KiB that the gateway reads whole before forwarding.
STREAMED_TEXT = "x" * (300 * 1024)


async def send_in_two_parts(port: int, request: bytes, split: int,
                            between: Callable[[], Awaitable[None]]) -> bytes:
    """Send `request[:split]`, run `between`, send the rest; return the reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request[:split])
        await writer.drain()
        await asyncio.sleep(0.2)  # the gateway decides on the head meanwhile
        await between()
        writer.write(request[split:])
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def call_ok(gateway, principal: str, method: str, path: str, body: dict) -> None:
    request = build_request(method, path,
                            list(gateway.credentials(principal).items())
                            + [("Content-Type", "application/json")],
                            json.dumps(body).encode())
    assert (await exchange(gateway.port, request)).first.status == 200


def message_request(gateway, chunked: bool) -> bytes:
    text = STREAMED_TEXT if chunked else "hello"
    body = json.dumps({"text": text}).encode()
    headers = list(gateway.bearer(OPERATOR).items()) + [
        ("Content-Type", "application/json")]
    if not chunked:
        return build_request("POST", "/api/1/chats/1/messages/", headers, body)

    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return build_request("POST", "/api/1/chats/1/messages/",
                         headers + [("Transfer-Encoding", "chunked")], chunks)


def posted_messages(recorded: list[dict]) -> list[dict]:
    return [entry for entry in recorded
            if entry["method"] == "POST" and entry["path"] == "/api/1/chats/1/messages/"]


@pytest.mark.parametrize("chunked", [False, True], ids=["read-whole", "streamed"])
async def test_reassigned_during_body_refused(sample_api, gateway_factory, chunked):
    gateway = await gateway_factory(sample_api.url)
    request = message_request(gateway, chunked)

    async def reassign() -> None:
        await call_ok(gateway, "chat_manager", "POST", "/api/1/chats/1/assign/",
                      {"operator": "u-op-2"})

    reply = await send_in_two_parts(gateway.port, request, len(request) - 10, reassign)

    assert_problem(parse_responses(reply)[0], 404)
    assert posted_messages(await sample_api.recorded()) == [], (
        "the upstream must not get a whole write for a chat its sender lost")


async def test_deactivated_during_body_refused(sample_api, gateway_factory):
    gateway = await gateway_factory(sample_api.url)
    request = message_request(gateway, chunked=False)

    async def deactivate() -> None:
        await gateway.store.set_active(OPERATOR, False)

    try:
        reply = await send_in_two_parts(gateway.port, request, len(request) - 10,
                                        deactivate)
    finally:
        await gateway.store.set_active(OPERATOR, True)

    assert_problem(parse_responses(reply)[0], 403)
    assert posted_messages(await sample_api.recorded()) == []


async def test_guarded_write_decided_on_new_role(sample_api, gateway_factory):
    """A manager demoted to operator while the body arrives may not set operators."""
    gateway = await gateway_factory(sample_api.url)
    body = json.dumps({"operators": ["u-op-1", "u-op-2"]}).encode()
    request = build_request("PATCH", "/api/1/contacts/1/",
                            list(gateway.bearer("u-manager").items())
                            + [("Content-Type", "application/json")], body)

    async def demote() -> None:
        await gateway.store.set_role("u-manager", "chat_operator")

    try:
        reply = await send_in_two_parts(gateway.port, request, len(request) - 5, demote)
    finally:
        await gateway.store.set_role("u-manager", "chat_manager")

    assert_problem(parse_responses(reply)[0], 403)
    assert [entry for entry in await sample_api.recorded()
            if entry["method"] == "PATCH"] == []


async def test_body_sent_with_head_forwarded(sample_api, gateway_factory):
    gateway = await gateway_factory(sample_api.url)
    request = message_request(gateway, chunked=False)

    result = await exchange(gateway.port, request)

    assert result.first.status == 201
    assert len(posted_messages(await sample_api.recorded())) == 1


async def test_guarded_write_decided_on_reloaded_policy(sample_api, gateway_factory,
                                                        tmp_path):
    """Rows removed by a reload while the body arrives apply to its fields."""
    policies = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parents[2] / "policies", policies)
    gateway = await gateway_factory(sample_api.url, {
        ("policy", "model"): policies / "model.conf",
        ("policy", "roles"): policies / "roles.csv",
        ("reload", "watch"): False,
    })
    body = json.dumps({"operators": ["u-op-2"]}).encode()
    request = build_request("PATCH", "/api/1/contacts/1/",
                            list(gateway.bearer("u-manager").items())
                            + [("Content-Type", "application/json")], body)
    roles = policies / "roles.csv"

    async def drop_operator_rows() -> None:
        remaining = [line for line in roles.read_text().splitlines(keepends=True)
                     if not line.startswith((
                         "p, chat_manager, contacts, add_operator",
                         "p, chat_manager, contacts, remove_operator"))]
        roles.write_text("".join(remaining))
        assert await gateway.running.reloader.reload("test")

    reply = await send_in_two_parts(gateway.port, request, len(request) - 5,
                                    drop_operator_rows)

    assert_problem(parse_responses(reply)[0], 403)
    assert [entry for entry in await sample_api.recorded()
            if entry["method"] == "PATCH"] == []
