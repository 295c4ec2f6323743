"""A hostile or broken upstream behind the real gateway, reached by raw clients.

The upstream here is a raw asyncio server scripted per request path.  It can
send what no framework would: endless headers, a second response after the
first, bytes while its connection sits idle, or a close in place of a
response.  Whatever it sends, one client's request must never receive bytes
meant for another, a request with side effects must never arrive twice, and
the gateway's connection pool must keep serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
import pytest_asyncio

from .wire import assert_problem, build_request, exchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

MANAGER = "u-manager"  # lists, reads and updates every chat: no ownership lookups
READ_TIMEOUT = 10.0
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

# Called with the request head and the writer.  Returning False closes the
# connection instead of reading the next request on it.
Script = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool | None]]


class ScriptedUpstream:
    """Runs `script` for every request and records (connection number, head)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[tuple[int, bytes]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def heads(self, method: str) -> list[bytes]:
        return [head for _, head in self.requests
                if head.startswith(method.encode() + b" ")]

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
                await reader.readexactly(length)
                self.requests.append((connection, head))
                if await self.script(head, writer) is False:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest_asyncio.fixture(loop_scope="session")
async def scripted_gateway(gateway_factory):
    """Start a ScriptedUpstream and a gateway in front of it; return both."""
    servers: list[asyncio.Server] = []

    async def start(script: Script, max_connections: int = 4):
        upstream = ScriptedUpstream(script)
        url = await upstream.start()
        servers.append(upstream.server)
        gateway = await gateway_factory(url, {
            ("upstream", "read_timeout"): READ_TIMEOUT,
            ("upstream", "max_connections"): max_connections,
        })
        return upstream, gateway

    yield start
    for server in servers:
        server.close()


def request(gateway, method: str = "GET", target: str = "/api/1/chats/",
            body: bytes = b"") -> bytes:
    headers = [("Authorization", "Bearer " + gateway.token(MANAGER))]
    if body:
        headers.append(("Content-Type", "application/json"))
    return build_request(method, target, headers, body)


async def test_endless_headers_get_502(scripted_gateway):
    async def script(head: bytes, writer: asyncio.StreamWriter):
        if b" /api/1/chats/1/ " not in head:
            writer.write(OK)
            return
        writer.write(b"HTTP/1.1 200 OK\r\n")
        deadline = time.monotonic() + READ_TIMEOUT
        while time.monotonic() < deadline:
            writer.write(b"X-Flood: " + b"a" * 100 + b"\r\n")
            await writer.drain()

    upstream, gateway = await scripted_gateway(script)

    flooded = await exchange(gateway.port, request(gateway, target="/api/1/chats/1/"))
    after = await exchange(gateway.port, request(gateway))

    assert_problem(flooded.first, 502)
    assert flooded.first.json()["detail"].startswith("The upstream")
    assert flooded.elapsed < 2.0, "the flood was cut at a limit, not the timeout"
    assert after.first.status == 200, "the gateway still serves"


async def test_extra_response_not_given_to_next_client(scripted_gateway):
    async def script(head: bytes, writer: asyncio.StreamWriter):
        if b" /api/1/chats/1/ " in head:
            writer.write(OK + SMUGGLED)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhonest")

    upstream, gateway = await scripted_gateway(script, max_connections=1)

    first = await exchange(gateway.port, request(gateway, target="/api/1/chats/1/"))
    second = await exchange(gateway.port, request(gateway))

    assert first.first.body == b"ok"
    assert second.first.body == b"honest"
    assert upstream.connections == 2, "the connection with the extra response closed"


async def test_bytes_while_idle_close_connection(scripted_gateway):
    async def script(head: bytes, writer: asyncio.StreamWriter):
        if b" /api/1/chats/1/ " not in head:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhonest")
            return
        writer.write(OK)
        await writer.drain()
        # Sent once the connection is back in the pool, before any request.
        await asyncio.sleep(0.2)
        writer.write(SMUGGLED)

    upstream, gateway = await scripted_gateway(script, max_connections=1)

    first = await exchange(gateway.port, request(gateway, target="/api/1/chats/1/"))
    await asyncio.sleep(0.4)
    second = await exchange(gateway.port, request(gateway))

    assert first.first.body == b"ok"
    assert second.first.body == b"honest"
    assert upstream.connections == 2, "the connection that spoke while idle closed"


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", "/api/1/chats/1/messages/", b'{"text": "once"}'),
        ("PATCH", "/api/1/chats/1/", b'{"title": "once"}'),
    ],
)
async def test_write_not_resent_after_close(scripted_gateway, method, target, body):
    async def script(head: bytes, writer: asyncio.StreamWriter):
        if head.startswith(b"GET "):
            writer.write(OK)
            return
        # The kept-alive connection closes as the write arrives, with no response.
        return False

    upstream, gateway = await scripted_gateway(script, max_connections=1)

    await exchange(gateway.port, request(gateway))
    refused = await exchange(gateway.port, request(gateway, method, target, body))

    assert_problem(refused.first, 502)
    assert len(upstream.heads(method)) == 1, f"the {method} was sent once, never again"


async def test_read_resent_once_after_close(scripted_gateway):
    async def script(head: bytes, writer: asyncio.StreamWriter):
        if b" /api/1/chats/1/ " in head and len(upstream.heads("GET")) == 2:
            return False  # closes the reused connection instead of responding
        writer.write(OK)

    upstream, gateway = await scripted_gateway(script, max_connections=1)

    await exchange(gateway.port, request(gateway))
    retried = await exchange(gateway.port, request(gateway, target="/api/1/chats/1/"))

    assert retried.first.status == 200
    assert len(upstream.heads("GET /api/1/chats/1/")) == 2, "sent again once"
    assert upstream.connections == 2, "sent again on a new connection"


async def test_clients_gone_leave_pool_usable(scripted_gateway):
    async def script(head: bytes, writer: asyncio.StreamWriter):
        await asyncio.sleep(0.3)
        if b" /api/1/chats/1/ " in head:
            # Streamed to the client: no Content-Length.
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"2\r\nok\r\n0\r\n\r\n")
        else:
            writer.write(OK)

    upstream, gateway = await scripted_gateway(script, max_connections=2)

    async def send_and_leave(target: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(request(gateway, target=target))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    targets = ["/api/1/chats/", "/api/1/chats/1/"] * 10
    await asyncio.gather(*(send_and_leave(target) for target in targets))
    # 20 requests on 2 connections, 0.3 s each, get their responses within 3 s.
    await asyncio.sleep(3.5)
    started = time.monotonic()
    results = await asyncio.gather(*(exchange(gateway.port, request(gateway))
                                     for _ in range(2)))

    assert [result.first.status for result in results] == [200, 200]
    assert time.monotonic() - started < 1.0, "both connection slots were free"


async def test_client_gone_before_stream_logs_no_error(scripted_gateway, caplog):
    client_gone = asyncio.Event()

    async def script(head: bytes, writer: asyncio.StreamWriter):
        await client_gone.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"2\r\nok\r\n0\r\n\r\n")

    upstream, gateway = await scripted_gateway(script)
    caplog.set_level(logging.ERROR, logger="gateway")

    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(request(gateway, target="/api/1/chats/1/"))
    await writer.drain()
    while not upstream.requests:
        await asyncio.sleep(0.01)
    writer.transport.abort()
    await asyncio.sleep(0.1)
    client_gone.set()
    await asyncio.sleep(0.3)
    after = await exchange(gateway.port, request(gateway, target="/api/1/chats/1/"))

    errors = [record.getMessage() for record in caplog.records
              if record.levelno >= logging.ERROR]
    assert errors == [], "a client that left is not a gateway failure"
    assert after.first.status == 200
