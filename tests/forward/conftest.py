"""Loopback servers that play a scripted upstream, and pools that reach them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from yarl import URL

from gateway.forward.upstream import UpstreamPool

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def pool_for():
    """Return `start(serve, max_connections=1)`: a pool to a server running `serve`.

    Every server and pool started is closed after the test.
    """
    opened: list[tuple[asyncio.Server, UpstreamPool]] = []

    async def start(serve: Serve, max_connections: int = 1) -> UpstreamPool:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(URL(f"http://127.0.0.1:{port}"),
                            max_connections=max_connections, connect_timeout=2.0)
        opened.append((server, pool))
        return pool

    yield start

    for server, pool in opened:
        await pool.close()
        server.close()
