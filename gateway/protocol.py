"""aiohttp's HTTP/1.1 connection handler with the gateway's limits.

aiohttp's server lacks three things the gateway needs.  One is a deadline for
a request head (request line and headers), counted from its first byte, so a
client trickling one byte at a time cannot keep it open.  Another is a cap on
the connections one client address keeps open at once, so one client cannot
take every connection the process can serve.  The third is problem bodies for
the requests its parser rejects.  Everything else is aiohttp's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re

from aiohttp import StreamReader, web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.http_parser import HttpRequestParser
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from gateway.config.model import LimitsConfig
from gateway.errors import (
    BadRequest,
    GatewayError,
    HeaderFieldsTooLarge,
    InternalError,
    URITooLong,
)
from gateway.observe.decision_log import DecisionRecord
from gateway.observe.request_id import new_request_id
from gateway.problem import problem_response

log = logging.getLogger("gateway.protocol")

_REJECTION_LOG_INTERVAL = 10.0  # seconds between warnings about rejected connections

_REQUEST_LINE = re.compile(rb"/|[A-Z]+ ")


class GatewayRequestHandler(RequestHandler):
    def __init__(self, manager: web.Server, *, head_timeout: float, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self._awaiting_head = True
        # The body of a refused request that aiohttp still reads and discards.
        self._discarded_body: StreamReader | None = None
        # The client address counted against its cap, while the connection is open.
        self._client: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._client = self._manager.admit(transport)
        if self._client is None:
            _write_problem(transport, 429, "Too Many Requests",
                           "Too many connections from this address are open; close "
                           "some or retry later.", retry_after=1)
            self.force_close()
            transport.close()
            return
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        if self._discarded_body is not None and self._discarded_body.is_eof():
            self._discarded_body = None

        count = self._request_count
        queued = len(self._messages)
        super().data_received(data)
        if self._request_count != count:
            self._awaiting_head = False
            self._disarm_head_deadline()
        elif (
            self._awaiting_head
            and self._discarded_body is None
            and self._head_deadline is None
            and data
        ):
            # Only a head that did not arrive whole in one read needs a timer.
            self._arm_head_deadline()
        if len(self._messages) > queued:
            self._reject_other_target_forms(queued)
            self._fail_body_in_progress()

    def _reject_other_target_forms(self, first: int) -> None:
        # CONNECT and absolute-form targets never reach the pipeline: the
        # pure-Python parser treats CONNECT as an upgrade and keeps the
        # connection, and building a request from a non-ASCII authority raises
        # inside aiohttp before any handler runs.
        for index in range(first, len(self._messages)):
            message = self._messages[index][0]
            if isinstance(message, _ErrInfo):
                continue
            if message.method == "CONNECT" or not message.path.startswith("/"):
                # With an empty payload aiohttp closes at once instead of
                # reading the would-be tunnel until its lingering time ends.
                error = BadHttpMessage("only origin-form request targets are served")
                self._messages[index] = (
                    _ErrInfo(status=400, exc=error, message=error.message),
                    EMPTY_PAYLOAD,
                )

    def _fail_body_in_progress(self) -> None:
        # A framing error in the body of the request being handled reaches
        # aiohttp's queue as a new error message.  With the C parser the
        # body's reader gets no exception and would wait for bytes that never
        # come, so it gets one here.
        message = self._messages[-1][0]
        request = self._current_request
        if isinstance(message, _ErrInfo) and request is not None:
            request.content.set_exception(
                BadHttpMessage("the request body's framing is invalid")
            )

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_head_deadline()
        if self._client is not None:
            self._manager.release(self._client)
            self._client = None
        super().connection_lost(exc)

    def response_sent(self, request: web.BaseRequest) -> None:
        """Expect the next request head, once the body of `request` is read."""
        self._awaiting_head = not self._messages
        if request.body_exists and not request.content.is_eof():
            self._discarded_body = request.content

    def stop_reading(self) -> None:
        """Close after the response instead of reading the rest of the body.

        aiohttp otherwise reads and discards an unread body for up to its
        lingering time, which a client that trickles bytes would fill.
        """
        self._lingering_time = 0.0

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)

        error = _parse_error(status, exc, message)
        request_id = new_request_id()
        log.warning("rejected a request the HTTP parser cannot read: %s", error.detail,
                    extra={"request_id": request_id, "reason": error.reason,
                           "peer": request.remote})
        DecisionRecord(request_id, "", "", reason=error.reason,
                       status=error.status).emit()
        response = problem_response(error, request_id)
        response.force_close()
        return response

    def _arm_head_deadline(self) -> None:
        self._head_deadline = self._loop.call_later(self._head_timeout,
                                                    self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        transport = self.transport
        if transport is None or self._messages:
            return

        log.warning("closed a connection whose request head took over %g s",
                    self._head_timeout, extra={"reason": "head_timeout"})
        DecisionRecord(new_request_id(), "", "", reason="head_timeout",
                       status=408).emit()
        _write_problem(transport, 408, "Request Timeout",
                       f"The request head did not arrive within "
                       f"{self._head_timeout:g} seconds.")
        self.force_close()
        transport.close()


class GatewayServer(web.Server):
    """aiohttp's low-level server, creating GatewayRequestHandler connections."""

    def __init__(self, handler, limits: LimitsConfig) -> None:
        if HttpRequestParser.__module__ != "aiohttp._http_parser":
            log.warning("aiohttp's C HTTP parser is not in use; the pure-Python "
                        "parser accepts a bare CR in chunk extensions, which a "
                        "proxy in front of the gateway may read differently")
        super().__init__(
            handler,
            access_log=None,
            # Request bodies pass through as sent; the gateway never inflates one.
            auto_decompress=False,
            max_line_size=limits.max_line_bytes,
            max_field_size=limits.max_line_bytes,
            max_headers=limits.max_headers,
            keepalive_timeout=limits.keepalive_timeout,
        )
        self._head_timeout = limits.head_timeout
        self._max_per_client = limits.max_connections_per_client
        self._open_per_client: dict[str, int] = {}
        self._rejected = 0
        self._rejections_logged_at = float("-inf")

    def __call__(self) -> GatewayRequestHandler:
        return GatewayRequestHandler(self, loop=self._loop,
                                     head_timeout=self._head_timeout, **self._kwargs)

    def admit(self, transport: asyncio.BaseTransport) -> str | None:
        """Count a new connection against its address's cap; None when over it.

        The address is the peer's: behind a proxy every connection comes from
        the proxy, so set `limits.max_connections_per_client` for it, or 0.
        """
        if self._max_per_client == 0:
            return ""
        peer = transport.get_extra_info("peername")
        address = client_key(peer[0]) if peer else ""
        open_count = self._open_per_client.get(address, 0)
        if open_count >= self._max_per_client:
            self._log_rejection(address)
            return None

        self._open_per_client[address] = open_count + 1
        return address

    def release(self, address: str) -> None:
        if self._max_per_client == 0:
            return
        open_count = self._open_per_client.pop(address, 0) - 1
        if open_count > 0:
            self._open_per_client[address] = open_count

    def _log_rejection(self, address: str) -> None:
        # One warning per interval at most: a client that opens connections
        # in a loop must not flood the log.
        self._rejected += 1
        now = self._loop.time()
        if now - self._rejections_logged_at < _REJECTION_LOG_INTERVAL:
            return
        log.warning("rejected %d connections over the cap of %d per address, the "
                    "latest from %s", self._rejected, self._max_per_client, address,
                    extra={"reason": "too_many_connections"})
        self._rejected = 0
        self._rejections_logged_at = now


def client_key(address: str) -> str:
    """Return what the connection cap counts `address` under.

    An IPv6 client usually controls a whole /64 and can pick any address in
    it, so IPv6 addresses count by their /64 network.  IPv4-mapped IPv6
    addresses count as the IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address


def _write_problem(transport: asyncio.BaseTransport, status: int, title: str,
                   detail: str, *, retry_after: int | None = None) -> None:
    """Write a whole problem response to a connection that has no request object."""
    body = json.dumps({
        "type": "urn:gateway:problem:" + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
    }).encode()
    retry = b"Retry-After: %d\r\n" % retry_after if retry_after is not None else b""
    transport.write(
        b"HTTP/1.1 %d %s\r\n" % (status, title.encode())
        + b"Content-Type: application/problem+json\r\n" + retry
        + b"Connection: close\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


def _parse_error(status: int, exc: BaseException | None,
                 message: str | None) -> GatewayError:
    if status != 400:
        return InternalError("The gateway failed to process the request.")
    if isinstance(exc, LineTooLong):
        # The parsers pass the start of the line that was too long: the target
        # (or the whole request line) for a long URL, else a header.
        line = exc.args[0] if exc.args else b""
        line = line.encode("latin-1") if isinstance(line, str) else line
        if _REQUEST_LINE.match(line):
            return URITooLong("The request line is too long.")
        return HeaderFieldsTooLarge("A header line is too long.")
    if "Too many" in str(message or exc or ""):
        return HeaderFieldsTooLarge("The request has too many header fields.")

    return BadRequest("The request cannot be parsed as HTTP/1.1.",
                      reason="http_parse_error")
