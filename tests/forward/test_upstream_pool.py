"""The gateway's pooled HTTP/1.1 client against a scripted upstream on loopback.

The upstream is a raw asyncio server: each test gives its reply byte for
byte and reads back which requests arrived on which connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout
from gateway.forward.upstream import UpstreamPool

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class ScriptedUpstream:
    """Replies to request N with `reply(N)`; None closes the connection at once."""

    def __init__(self, reply: Callable[[int], bytes | None]) -> None:
        self._reply = reply
        self.requests: list[tuple[int, bytes]] = []  # (connection number, bytes)
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> URL:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return URL(f"http://127.0.0.1:{port}")

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append((connection, head + body))
                reply = self._reply(len(self.requests))
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def scripted():
    upstreams: list[ScriptedUpstream] = []

    async def start(reply: Callable[[int], bytes | None]):
        upstream = ScriptedUpstream(reply)
        url = await upstream.start()
        upstreams.append(upstream)
        return upstream, url

    yield start
    for upstream in upstreams:
        await upstream.stop()


def new_pool(url: URL, **options) -> UpstreamPool:
    options.setdefault("max_connections", 4)
    options.setdefault("connect_timeout", 2.0)
    return UpstreamPool(url, **options)


async def fetch(pool: UpstreamPool, method: str = "GET", *, headers=None,
                body: bytes | None = None, timeout: float = 5.0):
    response = await pool.request(method, "/api/1/chats/?page=1",
                                  CIMultiDict(headers or {}), body, timeout=timeout)
    try:
        return response.status, response.headers, await response.read()
    finally:
        response.release()


async def test_sequential_requests_share_connection(scripted):
    upstream, url = await scripted(lambda number: OK)
    pool = new_pool(url)

    first = await fetch(pool)
    second = await fetch(pool)
    await pool.close()

    assert (first[0], first[2], second[2]) == (200, b"ok", b"ok")
    assert upstream.connections == 1, "a finished response gives its connection back"


async def test_request_head_has_host_and_length(scripted):
    upstream, url = await scripted(lambda number: OK)
    pool = new_pool(url)

    await fetch(pool, "POST", headers={"Content-Length": "999", "X-Trace": "a"},
                body=b'{"text": "hi"}')
    await pool.close()

    sent = upstream.requests[0][1]
    assert sent.startswith(b"POST /api/1/chats/?page=1 HTTP/1.1\r\n"
                           b"Host: " + url.host_port_subcomponent.encode() + b"\r\n")
    assert sent.count(b"Content-Length") == 1, "the caller's length is replaced"
    assert b"Content-Length: 14\r\n" in sent
    assert sent.endswith(b'\r\n\r\n{"text": "hi"}')


async def test_empty_post_sends_zero_length(scripted):
    upstream, url = await scripted(lambda number: OK)
    pool = new_pool(url)

    await fetch(pool, "POST")
    await pool.close()

    assert b"Content-Length: 0\r\n" in upstream.requests[0][1]


@pytest.mark.parametrize("value", ["a\r\nX-Gateway-User: u-owner", "a\nb", "a\x00b"])
async def test_line_break_in_header_rejected(scripted, value):
    upstream, url = await scripted(lambda number: OK)
    pool = new_pool(url)

    with pytest.raises(GatewayError) as refused:
        await fetch(pool, headers={"X-Gateway-Role": value})
    await pool.close()

    assert refused.value.reason == "unsafe_upstream_header"
    assert upstream.requests == [], "the upstream never saw the request"


async def test_closed_idle_connection_retries_get(scripted):
    # The first response keeps the connection alive, then the upstream closes it
    # as soon as the next request arrives, without responding.
    upstream, url = await scripted(lambda number: None if number == 2 else OK)
    pool = new_pool(url)

    await fetch(pool)
    status, _, body = await fetch(pool)
    await pool.close()

    assert (status, body) == (200, b"ok")
    assert upstream.connections == 2, "the retry went over a new connection"


async def test_closed_idle_connection_fails_post(scripted):
    upstream, url = await scripted(lambda number: None if number == 2 else OK)
    pool = new_pool(url)

    await fetch(pool)
    with pytest.raises(UpstreamError):
        await fetch(pool, "POST", body=b"{}")
    await pool.close()

    assert len(upstream.requests) == 2, "the POST was sent once, never again"


async def test_informational_responses_skipped(scripted):
    reply = (b"HTTP/1.1 100 Continue\r\n\r\n"
             b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
             b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\nX-Id: 7\r\n\r\nnew")
    upstream, url = await scripted(lambda number: reply)
    pool = new_pool(url)

    status, headers, body = await fetch(pool)
    await pool.close()

    assert (status, body) == (201, b"new")
    assert "Link" not in headers, "headers of an informational response are dropped"
    assert headers["X-Id"] == "7"


async def test_unexpected_second_response_closes_connection(scripted):
    upstream, url = await scripted(lambda number: OK + OK if number == 1 else OK)
    pool = new_pool(url)

    first = await fetch(pool)
    second = await fetch(pool)
    await pool.close()

    assert (first[2], second[2]) == (b"ok", b"ok")
    assert upstream.connections == 2, "the connection with the extra response is dropped"


async def one_reply_then_close(reply: bytes) -> tuple[asyncio.Server, URL]:
    """Start a server that replies to one request with `reply`, then closes."""

    async def reply_once(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, URL(f"http://127.0.0.1:{port}")


async def test_body_without_length_ends_at_close():
    server, url = await one_reply_then_close(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    pool = new_pool(url)

    status, _, body = await fetch(pool)
    await pool.close()
    server.close()

    assert (status, body) == (200, b"all of it")


async def test_body_cut_short_is_upstream_error():
    server, url = await one_reply_then_close(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"
    )
    pool = new_pool(url)

    with pytest.raises(UpstreamError) as failed:
        await fetch(pool)
    await pool.close()
    server.close()

    assert failed.value.reason == "upstream_ClientPayloadError"


async def test_non_http_reply_is_upstream_error(scripted):
    upstream, url = await scripted(lambda number: b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    pool = new_pool(url)

    with pytest.raises(UpstreamError) as failed:
        await fetch(pool)
    await pool.close()

    assert failed.value.reason == "upstream_invalid_response"


async def test_two_content_lengths_rejected(scripted):
    upstream, url = await scripted(
        lambda number: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                       b"Content-Length: 3\r\n\r\nok!"
    )
    pool = new_pool(url)

    with pytest.raises(UpstreamError):
        await fetch(pool)
    await pool.close()


async def test_timeout_frees_connection_slot(scripted):
    upstream, url = await scripted(lambda number: b"" if number == 1 else OK)
    pool = new_pool(url, max_connections=1)

    with pytest.raises(UpstreamTimeout):
        await fetch(pool, timeout=0.2)
    status, _, _ = await fetch(pool, timeout=2)
    await pool.close()

    assert status == 200, "the slot of the timed-out request was given back"
    assert upstream.connections == 2, "the timed-out connection is not reused"


async def test_requests_queue_at_connection_limit(scripted):
    upstream, url = await scripted(lambda number: OK)
    pool = new_pool(url, max_connections=1)

    results = await asyncio.gather(*(fetch(pool) for _ in range(5)))
    await pool.close()

    assert [result[2] for result in results] == [b"ok"] * 5
    assert upstream.connections == 1, "never more connections than the limit"


async def test_queue_wait_counts_against_timeout(scripted):
    upstream, url = await scripted(lambda number: b"")
    pool = new_pool(url, max_connections=1)

    holder = asyncio.ensure_future(fetch(pool, timeout=1.0))
    await asyncio.sleep(0.05)
    with pytest.raises(UpstreamTimeout):
        await fetch(pool, timeout=0.1)
    with pytest.raises(UpstreamTimeout):
        await holder
    await pool.close()


async def test_large_chunked_body_streams_whole(scripted):
    part = b"x" * 65536
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for _ in range(64))
    reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             + chunked + b"0\r\n\r\n")
    upstream, url = await scripted(lambda number: reply if number == 1 else OK)
    pool = new_pool(url)

    response = await pool.request("GET", "/", CIMultiDict(), None, timeout=10)
    received = 0
    async for chunk in response.iter_chunks():
        received += len(chunk)
        await asyncio.sleep(0)  # a slow reader: reading pauses and resumes
    response.release()
    status, _, body = await fetch(pool)
    await pool.close()

    assert received == 64 * 65536
    assert (status, body) == (200, b"ok")
    assert upstream.connections == 1, "a fully read chunked response keeps the connection"


async def test_early_release_closes_connection(scripted):
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\n" + b"y" * 5_000_000
    upstream, url = await scripted(lambda number: big if number == 1 else OK)
    pool = new_pool(url)

    response = await pool.request("GET", "/", CIMultiDict(), None, timeout=5)
    response.release()
    await fetch(pool)
    await pool.close()

    assert upstream.connections == 2, "an unread rest cannot be skipped safely"


async def test_refused_connection_is_upstream_error():
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = new_pool(URL(f"http://127.0.0.1:{port}"))

    with pytest.raises(UpstreamError) as failed:
        await fetch(pool)
    await pool.close()

    assert failed.value.reason == "upstream_ClientConnectorError"


async def test_credentials_in_upstream_url_sent_as_basic_auth(scripted):
    upstream, url = await scripted(lambda number: OK)
    pool = new_pool(url.with_user("gateway").with_password("s3cret"))

    await fetch(pool, headers={"Authorization": "Bearer client-token"})
    await pool.close()

    sent = upstream.requests[0][1]
    assert b"Authorization: Basic Z2F0ZXdheTpzM2NyZXQ=\r\n" in sent
    assert b"client-token" not in sent, "only the gateway's credentials are sent"
