"""A response body that never ends is cut at the request's deadline.

The deadline covers the whole exchange, not each read, so an upstream that
keeps sending small chunks cannot hold a connection slot past it.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from multidict import CIMultiDict

from gateway.errors import UpstreamTimeout

DEADLINE = 0.5
MARGIN = 0.5
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_endless_body_cut_at_deadline(pool_for):
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        nonlocal connections
        connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            if connections > 1:
                writer.write(OK)
                await writer.drain()
                await reader.read()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(200):  # 10 s at most, far past the deadline
                writer.write(b"1\r\nx\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    pool = await pool_for(serve)

    started = time.monotonic()
    response = await pool.request("GET", "/", CIMultiDict(), None, timeout=DEADLINE)
    received = 0
    with pytest.raises(UpstreamTimeout):
        async for chunk in response.iter_chunks():
            received += len(chunk)
    response.release()
    elapsed = time.monotonic() - started

    second = await pool.request("GET", "/", CIMultiDict(), None, timeout=2)
    body = await second.read()
    second.release()

    assert received > 0, "the body streamed until the deadline"
    assert elapsed < DEADLINE + MARGIN, elapsed
    assert body == b"ok", "the slot of the cut response was given back"
    assert connections == 2, "the cut connection was not reused"
