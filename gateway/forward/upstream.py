"""An HTTP/1.1 client for forwarded requests: pooled keep-alive connections.

aiohttp's ClientSession spends about as much CPU on each request as the rest
of a proxy's path together (URL objects, a request object, tracing, cookie
and redirect handling), none of which a forwarded request needs.  This client
writes the request head in one piece and parses the response with llhttp
through httptools, the parser uvicorn uses.

The pool here owns the connections (gateway.forward.upstream_connection)
and serializes requests.  It carries requests whose body is at hand in full.  HEAD requests, streamed
request bodies, WebSockets and long-lived streams go through aiohttp.  Every
failure is an UpstreamError or UpstreamTimeout, and a connection that saw
one is closed, never reused.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque

from aiohttp import encode_basic_auth
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout
from gateway.forward.upstream_connection import (
    ClosedBeforeResponse,
    UpstreamConnection,
    UpstreamResponse,
)

# RFC 9110, 9.2.2: a request that may be sent twice with the effect of once.
IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))
# Methods whose request carries a Content-Length even with an empty body.
_METHODS_WITH_BODY = frozenset(("POST", "PUT", "PATCH"))
# Set here from the host and the body actually sent, whatever the caller passed.
_FRAMING_HEADERS = frozenset(("host", "content-length", "transfer-encoding"))
# A name or value with one of these would end the header early (response
# splitting) or be cut at the NUL by some servers.
_UNSAFE_IN_HEAD = re.compile(r"[\r\n\x00]")


class UpstreamPool:
    """Keep-alive connections to one upstream, at most `max_connections` at once."""

    def __init__(
        self,
        url: URL,
        *,
        max_connections: int,
        connect_timeout: float,
        idle_seconds: float = 30.0,
    ) -> None:
        self._host = url.host or ""
        self._port = url.port
        self._host_header = url.host_port_subcomponent
        # Credentials in `upstream.url` are the gateway's own, sent as aiohttp
        # would send them.
        self._authorization = (
            encode_basic_auth(url.user, url.password or "") if url.user else None
        )
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        self._connect_timeout = connect_timeout
        self._idle_seconds = idle_seconds
        self._idle: deque[UpstreamConnection] = deque()
        self._free_slots = max_connections
        self._slot_waiters: deque[asyncio.Future] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes | None,
        *,
        timeout: float,
    ) -> UpstreamResponse:
        """Send one request; return once the response's head has arrived.

        `timeout` bounds everything from here to the end of the response's body.
        The caller must `release` the response, also when it does not read it.
        """
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        head = request_head(method, target, self._host_header, headers, body)
        deadline = asyncio.get_running_loop().time() + timeout
        await self._take_slot(deadline)
        try:
            return await self._exchange(method, head, body, deadline)
        except BaseException:
            self._free_slot()
            raise

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        while self._idle:
            self._idle.pop().close()

    async def _take_slot(self, deadline: float) -> None:
        if self._free_slots > 0 and not self._slot_waiters:
            self._free_slots -= 1
            return

        waiter = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except BaseException as error:
            if waiter.done() and not waiter.cancelled():
                self._free_slot()  # handed over just as this request gave up
            else:
                waiter.cancel()
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)
            if isinstance(error, TimeoutError):
                raise UpstreamTimeout(
                    "No connection to the upstream became free in time."
                ) from None
            raise

    def _free_slot(self) -> None:
        # The slot passes straight to the longest-waiting request, if any.
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free_slots += 1

    async def _exchange(self, method: str, head: bytes, body: bytes | None,
                        deadline: float) -> UpstreamResponse:
        connection = self._reusable_connection()
        if connection is not None:
            try:
                return await self._send(connection, head, body, deadline)
            except ClosedBeforeResponse:
                # The upstream closed the idle connection as the request went
                # out; it did not read the request, so it may be sent again.
                if method not in IDEMPOTENT_METHODS:
                    raise UpstreamError(
                        "The upstream closed a kept-alive connection.",
                        reason="upstream_ServerDisconnectedError",
                    ) from None

        remaining = deadline - asyncio.get_running_loop().time()
        connection = await self._connect(min(self._connect_timeout, remaining))
        try:
            return await self._send(connection, head, body, deadline)
        except ClosedBeforeResponse:
            raise UpstreamError(
                "The upstream closed the connection without responding.",
                reason="upstream_ServerDisconnectedError",
            ) from None

    async def _send(self, connection: UpstreamConnection, head: bytes, body: bytes | None,
                    deadline: float) -> UpstreamResponse:
        response = connection.send(head, body, self._give_back, deadline)
        try:
            await response.head_received()
        except BaseException:
            response.discard()
            raise
        return response

    def _reusable_connection(self) -> UpstreamConnection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if connection.is_open() and now - connection.idle_since < self._idle_seconds:
                return connection
            connection.close()
        return None

    async def _connect(self, timeout: float) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    UpstreamConnection, self._host, self._port, ssl=self._ssl
                )
        except TimeoutError:
            raise UpstreamTimeout("The upstream did not accept a connection in time.",
                                  reason="upstream_connect_timeout") from None
        except OSError as error:
            raise UpstreamError(
                "The upstream refused the connection.",
                reason="upstream_ClientConnectorError",
            ) from error
        return connection

    def _give_back(self, connection: UpstreamConnection | None) -> None:
        """Free the slot of a finished exchange and keep its connection if it may serve again."""
        self._free_slot()
        if connection is None:
            return
        if self._closed or not connection.is_open():
            connection.close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.append(connection)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self._idle_seconds,
                                                                  self._sweep)

    def _sweep(self) -> None:
        # Connections idle past their time are closed even without new traffic;
        # the oldest are at the left.
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        while self._idle and now - self._idle[0].idle_since >= self._idle_seconds:
            self._idle.popleft().close()
        if self._idle:
            self._sweeper = asyncio.get_running_loop().call_later(self._idle_seconds,
                                                                  self._sweep)


def request_head(method: str, target: str, host: str, headers: CIMultiDict[str],
                 body: bytes | None) -> bytes:
    """Serialize the request line and headers, refusing any that could split them."""
    fields = [f"{name}: {value}" for name, value in headers.items()
              if name.lower() not in _FRAMING_HEADERS]
    if body is not None or method in _METHODS_WITH_BODY:
        fields.append(f"Content-Length: {len(body or b'')}")

    if _UNSAFE_IN_HEAD.search(target) or _UNSAFE_IN_HEAD.search("".join(fields)):
        raise GatewayError("A header to send upstream contains a line break or NUL.",
                           reason="unsafe_upstream_header")
    lines = "\r\n".join(fields)
    text = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{lines}\r\n\r\n"
    return text.encode("utf-8", "surrogateescape")
