"""An HTTP/1.1 client for forwarded requests: pooled keep-alive connections.

aiohttp's ClientSession spends about as much CPU on each request as the rest
of a proxy's path together (URL objects, a request object, tracing, cookie
and redirect handling), none of which a forwarded request needs.  This client
writes the request head in one piece and parses the response with llhttp
through httptools, the parser uvicorn uses.

It carries requests whose body is at hand in full.  HEAD requests, streamed
request bodies, WebSockets and long-lived streams go through aiohttp.  Every
failure is an UpstreamError or UpstreamTimeout, and a connection that saw
one is closed, never reused.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator

import httptools
from aiohttp import encode_basic_auth
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout

# RFC 9110, 9.2.2: a request that may be sent twice with the effect of once.
IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))
# Methods whose request carries a Content-Length even with an empty body.
_METHODS_WITH_BODY = frozenset(("POST", "PUT", "PATCH"))
# Set here from the host and the body actually sent, whatever the caller passed.
_FRAMING_HEADERS = frozenset(("host", "content-length", "transfer-encoding"))
# A name or value with one of these would end the header early (response
# splitting) or be cut at the NUL by some servers.
_UNSAFE_IN_HEAD = re.compile(r"[\r\n\x00]")
# A streamed response stops being read from the upstream while the client is
# this far behind, and is read again once it has caught up.
_PAUSE_AT_BYTES = 1024 * 1024
_RESUME_AT_BYTES = 256 * 1024
# llhttp sets no limit on a response's header section, and httptools keeps a
# header field in memory until it ends, so an upstream could fill memory with
# one endless header, endless trailers or endless 1xx responses.  A response
# that sends more than this many bytes in a row without a body byte fails
# instead.  It is checked after each read, so one read may pass it.
_MAX_BYTES_WITHOUT_BODY = 64 * 1024
# Header fields of one response, trailer fields included: the default of
# aiohttp 3.14's client, which carried these requests before this client.
_MAX_HEADER_FIELDS = 128


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
        self._idle: deque[_Connection] = deque()
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
            except _ClosedBeforeResponse:
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
        except _ClosedBeforeResponse:
            raise UpstreamError(
                "The upstream closed the connection without responding.",
                reason="upstream_ServerDisconnectedError",
            ) from None

    async def _send(self, connection: _Connection, head: bytes, body: bytes | None,
                    deadline: float) -> UpstreamResponse:
        response = connection.send(head, body, self, deadline)
        try:
            await response.head_received()
        except BaseException:
            response.discard()
            raise
        return response

    def _reusable_connection(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if connection.is_open() and now - connection.idle_since < self._idle_seconds:
                return connection
            connection.close()
        return None

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl
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

    def _give_back(self, connection: _Connection | None) -> None:
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


class _ClosedBeforeResponse(Exception):
    """The connection closed before one byte of the response arrived."""


class _UnexpectedResponse(Exception):
    """The upstream sent a response after the one to the request in flight."""


class _TooManyHeaderFields(Exception):
    """The response has more than _MAX_HEADER_FIELDS header and trailer fields."""


_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class UpstreamResponse:
    """The response to one request: its head at once, its body read or streamed.

    One timer ends the exchange at the request's deadline, wherever it waits.
    """

    def __init__(self, connection: _Connection, pool: UpstreamPool,
                 deadline: float) -> None:
        self.status = 0
        self.headers: CIMultiDictProxy[str] = _NO_HEADERS
        self.content_length: int | None = None
        self.received_any = False
        self.body_received = 0  # bytes, counted as llhttp delivers them
        self.bytes_without_body = 0  # received since the last body byte
        self._connection = connection
        self._pool = pool
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._header_fields = 0
        self._parts: deque[bytes] = deque()
        self._buffered = 0
        self._keep_alive = False
        self._until_close = False
        self._complete = False
        self._failure: Exception | None = None
        self._waiter: asyncio.Future | None = None
        self._released = False
        self._timer = asyncio.get_running_loop().call_at(deadline, self._time_out)

    @property
    def complete(self) -> bool:
        return self._complete

    # Read by the caller

    async def head_received(self) -> None:
        while not self.status:
            await self._wait()

    async def read(self) -> bytes:
        """Return the whole body; the caller has checked its length."""
        while not self._complete:
            self._connection.resume_reading()  # all of it is wanted at once
            await self._wait()
        body = b"".join(self._parts)
        self._parts.clear()
        return body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives."""
        while True:
            if self._parts:
                part = self._parts.popleft()
                self._buffered -= len(part)
                if self._buffered <= _RESUME_AT_BYTES:
                    self._connection.resume_reading()
                yield part
            elif self._complete:
                return
            else:
                await self._wait()

    def release(self) -> None:
        """Give the connection back if the response was read to its end, else close it."""
        if self._released:
            return
        self._released = True
        self._timer.cancel()
        connection = self._connection
        if self._complete and self._keep_alive and self._failure is None:
            connection.finish()
            self._pool._give_back(connection)
        else:
            connection.close()
            self._pool._give_back(None)

    close = release

    def discard(self) -> None:
        """End an exchange that failed before the caller got the response."""
        self._released = True
        self._timer.cancel()
        self._connection.close()

    async def _wait(self) -> None:
        if self._failure is not None:
            raise self._failure
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._failure is not None:
            raise self._failure

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _time_out(self) -> None:
        if not self._complete:
            self._failure = UpstreamTimeout("The upstream did not respond in time.")
            self._connection.close()
            self._wake()

    # Called by the connection

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_fields += 1
        if self._header_fields > _MAX_HEADER_FIELDS:
            raise _TooManyHeaderFields()
        if not self.status:
            # Trailer fields arrive after the head and are not forwarded.
            self._raw_headers.append((name, value))

    def on_head(self, status: int, keep_alive: bool) -> None:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in self._raw_headers:
            headers.add(name.decode("utf-8", "surrogateescape"),
                        value.decode("utf-8", "surrogateescape"))
        self._raw_headers = []
        self.headers = CIMultiDictProxy(headers)
        length = headers.get("Content-Length")
        if length is not None and length.isdigit():
            self.content_length = int(length)
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        no_body = status in (204, 304)
        self._until_close = length is None and not chunked and not no_body
        self._keep_alive = keep_alive
        self.status = status
        self._wake()

    def on_informational(self) -> None:
        self._raw_headers = []
        self._header_fields = 0

    def on_body(self, part: bytes) -> None:
        self._parts.append(part)
        self._buffered += len(part)
        self.body_received += len(part)
        if self._buffered >= _PAUSE_AT_BYTES:
            self._connection.pause_reading()
        self._wake()

    def on_complete(self, keep_alive: bool) -> None:
        self._keep_alive = keep_alive
        self._complete = True
        self._wake()

    def on_failure(self, failure: GatewayError) -> None:
        if not self._complete:
            self._failure = failure
        self._wake()

    def on_connection_lost(self) -> None:
        if self._complete:
            return
        if self.status and self._until_close:
            # No length and no chunks: the body ends where the connection does.
            self.on_complete(keep_alive=False)
        elif not self.received_any:
            self._failure = _ClosedBeforeResponse()
            self._wake()
        else:
            self.on_failure(UpstreamError(
                "The upstream closed the connection in the middle of its response.",
                reason="upstream_ClientPayloadError",
            ))


class _Connection(asyncio.Protocol):
    """One TCP connection to the upstream, carrying one exchange at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._response: UpstreamResponse | None = None
        self._informational = False
        self._reading_paused = False
        self._lost = False
        self.idle_since = 0.0

    def is_open(self) -> bool:
        return not self._lost and self._transport is not None and (
            not self._transport.is_closing()
        )

    def send(self, head: bytes, body: bytes | None, pool: UpstreamPool,
             deadline: float) -> UpstreamResponse:
        response = UpstreamResponse(self, pool, deadline)
        self._response = response
        transport = self._transport
        if body:
            transport.writelines((head, body))
        else:
            transport.write(head)
        return response

    def finish(self) -> None:
        self._response = None
        # A body read in full while the caller lagged leaves reading paused,
        # and a paused connection would never read the next response.
        self.resume_reading()

    def close(self) -> None:
        self._response = None
        if self._transport is not None:
            self._transport.close()

    def pause_reading(self) -> None:
        if not self._reading_paused and self.is_open():
            self._reading_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.is_open():
            self._reading_paused = False
            self._transport.resume_reading()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        response = self._response
        if response is None:
            # Bytes no request asked for: the connection's framing is lost.
            self.close()
            return

        response.received_any = True
        body_before = response.body_received
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("The upstream switched protocols unasked.")
            return
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, _TooManyHeaderFields):
                self._fail(f"The upstream's response has more than "
                           f"{_MAX_HEADER_FIELDS} header fields.",
                           reason="upstream_headers_too_large")
            else:
                self._fail(f"The upstream's response is not valid HTTP/1.1 ({error}).")
            return

        if self._response is response and not response.complete:
            self._limit_bytes_without_body(response, len(data), body_before)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._response is not None:
            self._response.on_connection_lost()

    # httptools callbacks

    def on_message_begin(self) -> None:
        response = self._response
        if response is None or response.complete:
            # A second response to one request: whatever follows cannot be trusted.
            raise _UnexpectedResponse()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._response.on_header(name, value)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # 100 Continue and 103 Early Hints come before the final response.
            self._informational = True
            self._response.on_informational()
            return
        self._response.on_head(status, self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self._response.on_body(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._response.on_complete(self._parser.should_keep_alive())

    def _limit_bytes_without_body(self, response: UpstreamResponse, received: int,
                                  body_before: int) -> None:
        if response.body_received > body_before:
            response.bytes_without_body = 0
            return
        response.bytes_without_body += received
        if response.bytes_without_body > _MAX_BYTES_WITHOUT_BODY:
            self._fail(f"The upstream sent more than {_MAX_BYTES_WITHOUT_BODY} bytes "
                       f"of response headers, trailers or 1xx responses.",
                       reason="upstream_headers_too_large")

    def _fail(self, detail: str, reason: str = "upstream_invalid_response") -> None:
        response = self._response
        self.close()
        if response is not None:
            response.on_failure(UpstreamError(detail, reason=reason))
