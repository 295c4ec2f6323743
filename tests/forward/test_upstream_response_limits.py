"""Limits on what an upstream may send before and after a response's body.

llhttp has no limit on a header section, and httptools keeps each header field
in memory until it ends.  An upstream that never ends its headers, its
trailers or its 1xx responses would so grow the gateway's memory until the
read timeout.  Each hostile upstream here sends without end, and the pooled
client must fail with 502 long before the request's timeout.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import UpstreamError
from gateway.forward.upstream import UpstreamPool

TIMEOUT = 10.0
# A flood must be rejected well before the request's timeout would end it.
MAX_SECONDS = 2.0
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
LONG_VALUE = b"a" * 70


class FloodingUpstream:
    """Sends `prefix` after each request head, then `piece` until the client closes.

    A `piece` of None sends `prefix` only and keeps the connection open.
    """

    def __init__(self, prefix: bytes, piece: bytes | None) -> None:
        self._prefix = prefix
        self._piece = piece
        self.sent = 0
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
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(self._prefix)
                await writer.drain()
                if self._piece is None:
                    continue
                # Bounded so that a client without a limit ends the test too.
                deadline = time.monotonic() + TIMEOUT
                while time.monotonic() < deadline:
                    writer.write(self._piece)
                    self.sent += len(self._piece)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def upstream():
    started: list[FloodingUpstream] = []

    async def start(prefix: bytes, piece: bytes | None = None):
        flooding = FloodingUpstream(prefix, piece)
        url = await flooding.start()
        started.append(flooding)
        return flooding, UpstreamPool(url, max_connections=2, connect_timeout=2.0)

    yield start
    for flooding in started:
        await flooding.stop()


async def fetch(pool: UpstreamPool) -> tuple[int, bytes]:
    response = await pool.request("GET", "/", CIMultiDict(), None, timeout=TIMEOUT)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def timed_failure(pool: UpstreamPool) -> tuple[UpstreamError, float]:
    started = time.monotonic()
    with pytest.raises(UpstreamError) as failed:
        await fetch(pool)
    elapsed = time.monotonic() - started
    await pool.close()
    return failed.value, elapsed


FLOODS = {
    "header fields": (b"HTTP/1.1 200 OK\r\n", b"X-Flood: " + LONG_VALUE + b"\r\n"),
    "one header value": (b"HTTP/1.1 200 OK\r\nX-Flood: ", LONG_VALUE),
    "reason phrase": (b"HTTP/1.1 200 ", LONG_VALUE),
    "trailer fields": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
        b"X-Flood: " + LONG_VALUE + b"\r\n",
    ),
    "one trailer value": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
        b"X-Flood: ",
        LONG_VALUE,
    ),
    "1xx responses": (b"", b"HTTP/1.1 100 Continue\r\n\r\n"),
    "1xx header fields": (b"HTTP/1.1 103 Early Hints\r\n",
                          b"Link: </" + LONG_VALUE + b">\r\n"),
}


@pytest.mark.parametrize("flood", FLOODS.values(), ids=FLOODS.keys())
async def test_endless_head_fails_fast(upstream, flood):
    flooding, pool = await upstream(*flood)

    failure, elapsed = await timed_failure(pool)

    assert failure.reason == "upstream_headers_too_large"
    assert elapsed < MAX_SECONDS, "the flood ended at a limit, not at the timeout"


async def test_header_field_count_limit(upstream):
    fields = b"".join(b"X-Field-%d: 1\r\n" % number for number in range(129))
    flooding, pool = await upstream(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n")

    failure, _ = await timed_failure(pool)

    assert failure.reason == "upstream_headers_too_large"
    assert "128 header fields" in failure.detail


async def test_trailer_fields_count_toward_limit(upstream):
    fields = b"".join(b"X-Field-%d: 1\r\n" % number for number in range(100))
    trailers = b"".join(b"X-Trailer-%d: 1\r\n" % number for number in range(40))
    flooding, pool = await upstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + fields
        + b"\r\n2\r\nok\r\n0\r\n" + trailers + b"\r\n"
    )

    failure, _ = await timed_failure(pool)

    assert failure.reason == "upstream_headers_too_large"


async def test_large_header_section_within_limits(upstream):
    # 100 fields of 500 bytes: 50 KB, under both limits.
    fields = b"".join(b"X-Field-%d: %s\r\n" % (number, b"v" * 480)
                      for number in range(100))
    flooding, pool = await upstream(
        b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok"
    )

    status, body = await fetch(pool)
    await pool.close()

    assert (status, body) == (200, b"ok")


async def test_tiny_chunks_not_counted_as_head(upstream):
    # 300,000 one-byte chunks carry 1.8 MB of chunk framing, far more than
    # the head limit, but body bytes arrive in every read.
    chunks = b"1\r\nx\r\n" * 300_000
    flooding, pool = await upstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )

    status, body = await fetch(pool)
    await pool.close()

    assert status == 200
    assert body == b"x" * 300_000


async def test_trailers_not_forwarded_as_headers(upstream):
    flooding, pool = await upstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Trailer: late\r\n\r\n"
    )

    response = await pool.request("GET", "/", CIMultiDict(), None, timeout=TIMEOUT)
    body = await response.read()
    response.release()
    await pool.close()

    assert body == b"ok"
    assert "X-Trailer" not in response.headers
