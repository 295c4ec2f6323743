"""1xx responses from the upstream: skipped before the final one, or rejected.

No request from the pooled client asks to switch protocols, so a 101 is an
invalid response, and the connection it came on is never reused.
"""

from __future__ import annotations

import asyncio

import pytest
from multidict import CIMultiDict

from gateway.errors import UpstreamError
from gateway.forward.upstream import UpstreamPool

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
async def upstream(pool_for):
    """Start a server that sends replies[N - 1] in response to request N."""
    connections = []

    async def start(replies: list[bytes]):
        async def serve(reader, writer):
            connections.append(writer)
            try:
                while replies:
                    await reader.readuntil(b"\r\n\r\n")
                    writer.write(replies.pop(0))
                    await writer.drain()
                await reader.read()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        return await pool_for(serve, max_connections=2), connections

    return start


async def fetch(pool: UpstreamPool) -> tuple[int, bytes]:
    response = await pool.request("GET", "/", CIMultiDict(), None, timeout=5)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def test_unasked_101_is_upstream_error(upstream):
    switch = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\n\r\n")
    pool, connections = await upstream([switch, OK])

    with pytest.raises(UpstreamError) as failed:
        await fetch(pool)
    status, body = await fetch(pool)

    assert failed.value.reason == "upstream_invalid_response"
    assert (status, body) == (200, b"ok")
    assert len(connections) == 2, "the connection that switched protocols closed"


async def test_many_early_hints_skipped(upstream):
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" * 50
    pool, connections = await upstream([hints + OK, OK])

    first = await fetch(pool)
    second = await fetch(pool)

    assert first == (200, b"ok")
    assert second == (200, b"ok")
    assert len(connections) == 1, "1xx responses leave the connection reusable"
