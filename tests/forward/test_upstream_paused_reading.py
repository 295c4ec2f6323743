"""A kept-alive connection must read again after a body that paused it.

The pooled client stops reading from the upstream while 1 MiB of a body waits
for the caller.  When the whole body arrived while reading was paused, and the
caller released the response without reading it (a client that went away),
the connection goes back to the pool, so it must read the next response.
"""

from __future__ import annotations

import asyncio

from multidict import CIMultiDict


PAUSE_AT_BYTES = 1024 * 1024
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_connection_reused_after_paused_body(pool_for):
    connections = 0
    big = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % PAUSE_AT_BYTES
           + b"y" * PAUSE_AT_BYTES)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        nonlocal connections
        connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(big)
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
            writer.write(OK)
            await writer.drain()
            await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    pool = await pool_for(serve)

    first = await pool.request("GET", "/big", CIMultiDict(), None, timeout=5)
    # Exactly 1 MiB: the read that completes the body also pauses reading.
    for _ in range(100):
        if first.complete:
            break
        await asyncio.sleep(0.01)
    first_complete = first.complete
    first.release()

    second = await pool.request("GET", "/small", CIMultiDict(), None, timeout=2)
    body = await second.read()
    second.release()

    assert first_complete, "the whole body arrived before the release"
    assert body == b"ok", "the reused connection read the next response"
    assert connections == 1, "the complete response left the connection reusable"
