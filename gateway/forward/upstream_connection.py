"""One keep-alive connection to the upstream and the response it carries.

The connection parses with llhttp through httptools and hands each part of
the response (head, body parts, end, failure) to the UpstreamResponse of the
request in flight, which the caller reads.  Anything the upstream sends that
no request asked for ends the connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout

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


class ClosedBeforeResponse(Exception):
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

    def __init__(self, connection: UpstreamConnection,
                 give_back: Callable[[UpstreamConnection | None], None],
                 deadline: float) -> None:
        self.status = 0
        self.headers: CIMultiDictProxy[str] = _NO_HEADERS
        self.content_length: int | None = None
        self.received_any = False
        self.body_received = 0  # bytes, counted as llhttp delivers them
        self.bytes_without_body = 0  # received since the last body byte
        self._connection = connection
        self._give_back = give_back
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
            self._give_back(connection)
        else:
            connection.close()
            self._give_back(None)

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
            self._failure = ClosedBeforeResponse()
            self._wake()
        else:
            self.on_failure(UpstreamError(
                "The upstream closed the connection in the middle of its response.",
                reason="upstream_ClientPayloadError",
            ))


class UpstreamConnection(asyncio.Protocol):
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

    def send(self, head: bytes, body: bytes | None,
             give_back: Callable[[UpstreamConnection | None], None],
             deadline: float) -> UpstreamResponse:
        """Write one request; `give_back` receives the connection when it is done."""
        response = UpstreamResponse(self, give_back, deadline)
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
