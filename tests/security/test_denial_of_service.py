"""Requests built to hold the gateway's event loop, memory or connections.

The gateway is one event loop, so any request whose cost grows faster than
its size, or that may stay open however slowly it arrives, stalls every
other client.  Oversized parts are rejected with 414 or 431, slow ones are
cut at a deadline counted from their first byte (408, then the connection
closes), and the upstream never receives any of them.

Deadline tests start a gateway with `limits.head_timeout` and
`limits.body_timeout` of 1 s and allow 1 s more for the response to arrive.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from gateway.protocol import client_key

from .wire import (
    HOST,
    Exchange,
    assert_problem,
    build_request,
    exchange,
    parse_responses,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

OWNER = "u-owner"
HEAD_START = b"GET /api/1/chats/1/ HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
DEADLINE = 1.0
# Time allowed past a deadline for the timer, the response and the close.
MARGIN = 1.0
# Seconds between two trickled bytes: often enough that an idle timeout reset
# by each byte would never fire, so only a deadline for the whole head or
# body can end the request.
TRICKLE_INTERVAL = 0.2


def bearer(gateway) -> list[tuple[str, str]]:
    return [("Authorization", "Bearer " + gateway.token(OWNER))]


@pytest_asyncio.fixture(loop_scope="session")
async def short_deadlines(sample_api, gateway_factory):
    """A gateway that waits at most 1 s for a request head and 1 s for a body."""
    return await gateway_factory(sample_api.url, {
        ("limits", "head_timeout"): DEADLINE,
        ("limits", "body_timeout"): DEADLINE,
    })


async def trickle(port: int, first: bytes, byte: bytes, *,
                  limit: float = DEADLINE + MARGIN + 2) -> Exchange:
    """Send `first`, then `byte` every TRICKLE_INTERVAL until the gateway closes.

    Returns what came back and the seconds from the first byte sent to the
    close, or to `limit` when the gateway never closes.
    """
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(first)

    async def keep_sending() -> None:
        while True:
            await asyncio.sleep(TRICKLE_INTERVAL)
            if writer.is_closing():
                return
            writer.write(byte)
            try:
                await writer.drain()
            except ConnectionError:
                return

    sender = asyncio.create_task(keep_sending())
    data = bytearray()
    closed = False
    try:
        async with asyncio.timeout(limit):
            while chunk := await reader.read(65536):
                data += chunk
            closed = True
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    finally:
        sender.cancel()
        writer.close()

    return Exchange(bytes(data), parse_responses(bytes(data)), closed,
                    time.monotonic() - started)


def assert_cut_at_deadline(result: Exchange) -> None:
    assert len(result.responses) == 1, result.data
    assert result.closed, "the gateway kept the connection open"
    assert result.elapsed < DEADLINE + MARGIN, result.elapsed
    assert_problem(result.first, 408)


async def test_silent_connection_closed_at_deadline(short_deadlines, sample_api):
    result = await trickle(short_deadlines.port, b"", b"")

    assert result.closed, "the gateway kept a silent connection open"
    assert result.elapsed < DEADLINE + MARGIN, result.elapsed
    for response in result.responses:
        assert_problem(response, 408)
    assert await sample_api.recorded() == []


@pytest.mark.parametrize(
    ("first", "byte"),
    [
        pytest.param(HEAD_START + b"X-Pad: ", b"a", id="one-header-byte-at-a-time"),
        pytest.param(HEAD_START, b"X-Pad: a\r\n", id="one-header-line-at-a-time"),
        pytest.param(b"GET /api/1/chats/", b"1", id="one-path-byte-at-a-time"),
    ],
)
async def test_trickled_head_cut_at_deadline(short_deadlines, sample_api, first,
                                             byte):
    result = await trickle(short_deadlines.port, first, byte)

    assert_cut_at_deadline(result)
    assert await sample_api.recorded() == []


async def test_second_head_on_connection_has_deadline(short_deadlines, sample_api):
    """After one response, the next request head gets a deadline of its own."""
    first = build_request("GET", "/api/1/chats/1/", bearer(short_deadlines),
                          close=False)
    started = time.monotonic()
    second = b"GET /api/1/chats/2/ HTTP/1.1\r\nX-Pad: "
    result = await trickle(short_deadlines.port, first + second, b"a")

    assert [response.status for response in result.responses] == [200, 408]
    assert_problem(result.responses[1], 408)
    assert result.closed, "the gateway kept the connection open"
    assert time.monotonic() - started < DEADLINE + MARGIN + 0.5
    recorded = await sample_api.recorded()
    assert [entry["raw_path"] for entry in recorded] == ["/api/1/chats/1/"]


# Each row: the route, the framing header, and the first body bytes.  The
# chat update reads its body whole before forwarding, because `assignee` is a
# guarded field; the message body streams to the upstream as it arrives.
TRICKLED_BODIES = [
    pytest.param("POST", "/api/1/chats/1/messages/", ("Content-Length", "1000"),
                 b'{"text": "', b"a", id="streamed-content-length"),
    pytest.param("POST", "/api/1/chats/1/messages/",
                 ("Transfer-Encoding", "chunked"), b'a\r\n{"text": "\r\n',
                 b"1\r\na\r\n",
                 id="streamed-chunked"),
    pytest.param("PATCH", "/api/1/chats/1/", ("Content-Length", "1000"),
                 b'{"assignee": "', b"a", id="read-whole-guarded"),
]


@pytest.mark.parametrize(("method", "path", "framing", "first", "byte"),
                         TRICKLED_BODIES)
async def test_trickled_body_cut_at_deadline(short_deadlines, sample_api, method,
                                             path, framing, first, byte):
    headers = bearer(short_deadlines) + [("Content-Type", "application/json"),
                                         framing]
    head = build_request(method, path, headers, close=False)
    result = await trickle(short_deadlines.port, head + first, byte)

    assert_cut_at_deadline(result)
    assert await sample_api.recorded() == [], "the upstream got a whole request"


# Sent as the chat operator, so the dashes case, which matches the chat route,
# costs an ownership lookup as well.
MANY_SEGMENTS = [
    pytest.param("/api/1/chats/" + "a/" * 1000, id="1000-segments"),
    pytest.param("/api/1/chats/" + "a-" * 1000 + "a/", id="one-segment-of-dashes"),
    pytest.param("/api/1/chats/1/" + "messages/" * 200, id="repeated-literal"),
    pytest.param("/api/1/" + "%41" * 600 + "/", id="600-escapes"),
    pytest.param("/api/1/contacts/1/tags/" + "1/" * 900, id="parameters-deep"),
]


@pytest.mark.parametrize("target", MANY_SEGMENTS)
async def test_deep_path_rejected_quickly(gateway, sample_api, target):
    credentials = [("Authorization", "Bearer " + gateway.token("u-op-1"))]
    result = await exchange(gateway.port, build_request("GET", target, credentials))

    assert_problem(result.first, 404)
    assert result.elapsed < 0.5, result.elapsed
    assert await sample_api.forwarded() == []


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("/api/1/chats/" + "1" * 100 * 1024 + "/", id="100-kib"),
        pytest.param("/api/1/chats/" + "a-" * 4000 + "a/", id="8-kib-of-dashes"),
        pytest.param("/api/1/chats/" + "1" * 4000 + "/", id="over-path-limit"),
        pytest.param("/api/1/chats/" + "a/" * 5000, id="5000-segments"),
    ],
)
async def test_long_path_gets_414(gateway, sample_api, target):
    request = build_request("GET", target, bearer(gateway))
    result = await exchange(gateway.port, request)

    assert_problem(result.first, 414)
    assert result.elapsed < 1.0, result.elapsed
    assert await sample_api.recorded() == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("X-Big", "a" * 64 * 1024)], id="64-kib-value"),
        pytest.param([("X-" + "n" * 9000, "a")], id="9000-byte-name"),
        pytest.param([("X-Big", "a" * 8200)], id="just-over-line-limit"),
        pytest.param([(f"X-Header-{n}", "v" * 90) for n in range(300)],
                     id="300-headers"),
        pytest.param([("Cookie", "a=" + "b" * 100) for _ in range(200)],
                     id="200-repeats-of-one-name"),
    ],
)
async def test_oversized_head_gets_431(gateway, sample_api, headers):
    request = build_request("GET", "/api/1/chats/1/", bearer(gateway) + headers)
    result = await exchange(gateway.port, request)

    assert_problem(result.first, 431)
    assert result.closed, "the gateway kept the connection open"
    assert await sample_api.recorded() == []


@pytest.mark.parametrize("name", ["__Host-gateway-embed", "__Host-gateway-session"])
async def test_backslash_cookies_answered_quickly(gateway, sample_api, name):
    """95 Cookie headers of 4,000 quoted backslashes that name a gateway cookie.

    Python 3.11.7's `http.cookies` unquotes such values in quadratic time:
    twice as many backslashes held the event loop for about 10 s.
    """
    value = '"' + "\\" * 4000 + '"'
    cookies = [("Cookie", f"x={value}; y={name}") for _ in range(95)]
    target = "/api/1/chats/" if "embed" in name else "/gateway/v1/session"
    result = await exchange(gateway.port, build_request("GET", target, cookies))

    assert_problem(result.first, 401)
    assert result.elapsed < 1.0, result.elapsed
    assert await sample_api.recorded() == []


CONNECTION_CAP = 4


async def test_connections_over_cap_per_client_refused(sample_api, gateway_factory):
    gateway = await gateway_factory(sample_api.url, {
        ("limits", "max_connections_per_client"): CONNECTION_CAP,
    })
    open_connections = [await asyncio.open_connection("127.0.0.1", gateway.port)
                        for _ in range(CONNECTION_CAP)]
    await asyncio.sleep(0.1)  # every one of them accepted by the gateway
    try:
        over = await exchange(gateway.port, HEAD_START + b"Connection: close\r\n\r\n")
    finally:
        for _, writer in open_connections:
            writer.close()
            await writer.wait_closed()
    await asyncio.sleep(0.1)
    request = build_request("GET", "/api/1/chats/1/", bearer(gateway))
    after = await exchange(gateway.port, request)

    assert_problem(over.first, 429)
    assert over.first.headers["Retry-After"] == "1"
    assert over.closed, "the gateway kept the connection over the cap open"
    assert after.first.status == 200, "closed connections must free their slots"
    assert [entry["path"] for entry in await sample_api.recorded()] == [
        "/api/1/chats/1/"]


@pytest.mark.parametrize(("address", "key"), [
    ("127.0.0.1", "127.0.0.1"),
    ("::1", "::/64"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("fe80::1%eth0", "fe80::/64"),
])
async def test_connection_cap_counts_ipv6_by_network(address, key):
    assert client_key(address) == key


def chunked_post(gateway, chunks: bytes) -> bytes:
    head = build_request(
        "POST", "/api/1/chats/1/messages/",
        bearer(gateway) + [("Content-Type", "application/json"),
                           ("Transfer-Encoding", "chunked")],
    )
    return head + chunks


async def test_trailer_flood_rejected(gateway, sample_api):
    body = b'{"text": "hi!!"}'
    trailers = b"".join(b"X-Trailer-%d: 1\r\n" % n for n in range(10_000))
    chunks = b"10\r\n" + body + b"\r\n0\r\n" + trailers + b"\r\n"
    result = await exchange(gateway.port, chunked_post(gateway, chunks))

    assert result.first.status in (400, 431)
    assert_problem(result.first, result.first.status)
    assert result.elapsed < 2.0, result.elapsed
    assert await sample_api.forwarded() == []


async def test_one_byte_chunks_handled_in_bounded_time(gateway, sample_api):
    """500,000 one-byte chunks (3 MB on the wire) fit the body limit and pass.

    The pure-Python parser took about 3 s for them where this was written and
    the C parser 0.3 s.  Work that grew with the square of the chunk count
    would take far longer than the bound.
    """
    text = b"a" * 500_000
    body = b'{"text": "' + text + b'"}'
    chunks = b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n" for i in range(len(body)))
    result = await exchange(gateway.port, chunked_post(gateway, chunks + b"0\r\n\r\n"),
                            timeout=20)

    assert result.first.status == 201
    assert result.elapsed < 15.0, result.elapsed
    recorded = await sample_api.recorded()
    assert [len(entry["body"]) for entry in recorded] == [len(body)]
