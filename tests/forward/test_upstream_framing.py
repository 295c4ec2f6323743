"""Responses whose framing or header lines two parsers could read differently.

The llhttp in httptools 0.9.0 rejects each of these by default, and the
pooled client sets none of httptools' leniency flags.  A proxy that accepted one
could pass a header or a body boundary on to the client that the upstream
did not mean, so each must be a 502 on a connection that is then closed.
"""

from __future__ import annotations

import asyncio

import pytest
from multidict import CIMultiDict

from gateway.errors import UpstreamError

STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"Transfer-Encoding: chunked\r\n"

AMBIGUOUS = {
    "length and chunked": b"Content-Length: 2\r\n" + CHUNKED + b"\r\n2\r\nok\r\n0\r\n\r\n",
    "chunked and length": CHUNKED + b"Content-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "signed length": b"Content-Length: +2\r\n\r\nok",
    "folded header": b"X-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    "bare LF in header": b"X-A: a\nX-B: b\r\nContent-Length: 2\r\n\r\nok",
    "bare CR in header": b"X-A: a\rX-B: b\r\nContent-Length: 2\r\n\r\nok",
    "NUL in header": b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "space before colon": b"X-A : 1\r\nContent-Length: 2\r\n\r\nok",
    "invalid chunk size": CHUNKED + b"\r\nzz\r\nok\r\n0\r\n\r\n",
    "chunk size overflow": CHUNKED + b"\r\n" + b"f" * 20 + b"\r\nok\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("rest", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
async def test_ambiguous_response_rejected(pool_for, rest):
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        nonlocal connections
        connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(STATUS_LINE + rest if connections == 1 else OK)
            await writer.drain()
            await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    pool = await pool_for(serve)

    with pytest.raises(UpstreamError) as failed:
        response = await pool.request("GET", "/", CIMultiDict(), None, timeout=5)
        try:
            await response.read()
        finally:
            response.release()
    second = await pool.request("GET", "/", CIMultiDict(), None, timeout=5)
    body = await second.read()
    second.release()

    assert failed.value.reason == "upstream_invalid_response"
    assert body == b"ok"
    assert connections == 2, "the connection of the rejected response closed"
