"""Send an authorized request upstream over a pooled session and relay the answer.

Request bodies stream through.  Answers stream back, except small ones, which
are read whole and sent in one write, and answers that a scope check must read
(capped at `max_inspected_body_bytes`).  Requests whose body is at hand in
full go through the gateway's own pooled client (gateway.forward.upstream);
HEAD requests, streamed bodies and long-lived streams go through aiohttp's,
whose errors become UpstreamError or UpstreamTimeout here and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway.authz.scope import BodyCheck
from gateway.config.model import ForwardingConfig, LimitsConfig, UpstreamConfig
from gateway.errors import GatewayError, PayloadTooLarge, UpstreamError, UpstreamTimeout
from gateway.forward.body import RequestBody
from gateway.forward.headers import client_response_headers
from gateway.forward.upstream import UpstreamPool
from gateway.forward.upstream_connection import UpstreamResponse
from gateway.forward.websocket import is_websocket_upgrade, relay_websocket
from gateway.routing.guards import reject_method_in_body
from gateway.streams.registry import LiveStream

_WHOLE_BODY_MAX = 256 * 1024
_STREAM_END_SECONDS = 2.0
_CHUNK_SIZE = 64 * 1024


class UpstreamForwarder:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        stream_session: aiohttp.ClientSession,
        upstream: UpstreamConfig,
        forwarding: ForwardingConfig,
        limits: LimitsConfig,
        subprotocols: frozenset[str] = frozenset(),
    ) -> None:
        self._session = session
        self._subprotocols = subprotocols
        self._stream_session = stream_session
        self._origin = str(upstream.url)
        self._max_body = forwarding.max_body_bytes
        self._max_inspected = forwarding.max_inspected_body_bytes
        self._body_timeout = limits.body_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=upstream.read_timeout, sock_connect=upstream.connect_timeout
        )
        # A stream stays open as long as it is allowed; only its start is timed.
        self._stream_timeout = aiohttp.ClientTimeout(
            sock_connect=upstream.connect_timeout
        )
        self._upstream = upstream
        self._pool = UpstreamPool(upstream.url,
                                  max_connections=upstream.max_connections,
                                  connect_timeout=upstream.connect_timeout)

    async def close(self) -> None:
        await self._pool.close()

    async def forward(
        self,
        request: web.BaseRequest,
        *,
        path: str,
        query_string: str,
        headers: CIMultiDict[str],
        body_check: BodyCheck | None,
        body: bytes | None = None,
        response_headers: dict[str, str] | None = None,
        frame_ancestors: str = "'none'",
        stream: LiveStream | None = None,
        on_late_body: Callable[[], Awaitable[None]] | None = None,
    ) -> tuple[web.StreamResponse, int]:
        """Forward and relay; return the response sent and the upstream status.

        `body` is the request body when the gateway has already read it;
        otherwise the body streams from the client, and `on_late_body` decides
        the request again if the body arrives after the decision (RequestBody).
        `stream` marks a long-lived response, relayed until it ends or the
        registry ends it.  `frame_ancestors` names the pages that may frame
        the response.
        """
        target = path + "?" + query_string if query_string else path
        url = URL(self._origin + target, encoded=True)
        response_headers = response_headers or {}
        if stream is not None and is_websocket_upgrade(request.headers):
            socket = await relay_websocket(
                request,
                self._stream_session,
                url,
                headers,
                handshake_timeout=self._upstream.read_timeout,
                max_message_bytes=self._max_inspected,
                response_headers=response_headers,
                stream=stream,
                subprotocols=self._subprotocols,
            )
            return socket, 101

        if body is None:
            body = self._request_body(request, on_late_body)
        length = request.content_length
        if isinstance(body, RequestBody) and length is not None and (
            length <= _WHOLE_BODY_MAX
        ):
            # A small body goes upstream in one write with the request head.
            body = await body.read()
        if isinstance(body, bytes):
            reject_method_in_body(body, request.headers.get("Content-Type", ""))
        # NOTE: a body that streams through (chunked, or over 256 KiB) is not
        # searched for a `_method` field.

        # A HEAD response carries the headers of the checked body, Content-Length
        # among them, so the body to check is fetched with GET.
        method = request.method
        if method == "HEAD" and body_check is not None:
            method = "GET"

        if stream is None and method != "HEAD" and not isinstance(body, RequestBody):
            upstream = await self._pool.request(method, target, headers, body,
                                                timeout=self._upstream.read_timeout)
            try:
                response = await self._relay(request, upstream, body_check,
                                             response_headers, frame_ancestors, None)
            finally:
                upstream.release()
            return response, upstream.status

        try:
            session = self._session if stream is None else self._stream_session
            async with session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._timeout if stream is None else self._stream_timeout,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            ) as upstream:
                response = await self._relay(request, upstream, body_check,
                                             response_headers, frame_ancestors,
                                             stream)
                return response, upstream.status
        except (asyncio.TimeoutError, aiohttp.ClientError, GatewayError) as error:
            # aiohttp 3.14 wraps an error raised while it sends the body in a
            # ClientConnectionError; the upstream then saw an unfinished body.
            if isinstance(body, RequestBody) and body.failure is not None:
                raise body.failure from None
            if isinstance(error, GatewayError):
                raise
            if isinstance(error, asyncio.TimeoutError):
                raise UpstreamTimeout("The upstream did not respond in time.") from None
            raise UpstreamError(
                "The upstream refused or dropped the connection.",
                reason="upstream_" + type(error).__name__,
            ) from error

    def _request_body(
        self,
        request: web.BaseRequest,
        on_late_end: Callable[[], Awaitable[None]] | None,
    ) -> RequestBody | None:
        if not request.body_exists:
            return None

        length = request.content_length
        if length is not None and length > self._max_body:
            raise PayloadTooLarge(
                f"The request body is larger than {self._max_body} bytes."
            )
        return RequestBody(request.content, max_bytes=self._max_body,
                           timeout=self._body_timeout, on_late_end=on_late_end)

    async def _relay(self, request, upstream, body_check, response_headers,
                     frame_ancestors: str,
                     stream: LiveStream | None) -> web.StreamResponse:
        headers = client_response_headers(upstream.headers, frame_ancestors)
        headers.update(response_headers)

        if body_check is not None:
            body = await _read_capped(upstream, self._max_inspected)
            body = body_check(upstream.status, body)
            headers.popall("Content-Length", None)
            return web.Response(status=upstream.status, body=body, headers=headers)

        length = upstream.content_length
        if request.method == "HEAD" or upstream.status in (204, 304):
            return web.Response(status=upstream.status, headers=headers)
        if length is not None and length <= _WHOLE_BODY_MAX:
            body = await upstream.read()
            headers.popall("Content-Length", None)
            return web.Response(status=upstream.status, body=body, headers=headers)

        response = web.StreamResponse(status=upstream.status, headers=headers)
        try:
            await response.prepare(request)
        except ConnectionResetError:
            # The client closed the connection while the upstream responded.
            upstream.close()
            return response
        if stream is not None:
            await stream.set_closer(lambda reason: _end_stream(upstream),
                                    upstream.status)
        try:
            async for chunk in _body_chunks(upstream):
                await response.write(chunk)
        except ConnectionResetError:
            # The client closed the connection, so the stream ends here.
            upstream.close()
            return response
        except (aiohttp.ClientError, asyncio.TimeoutError, GatewayError) as error:
            if stream is None or stream.end_reason is None:
                raise StreamInterrupted(upstream.status) from error

        if stream is None or stream.end_reason is None:
            await response.write_eof()
            return response

        # The client must not reconnect on a keep-alive connection as if the
        # stream had ended on its own, nor hold the end up by not reading.
        response.force_close()
        try:
            async with asyncio.timeout(_STREAM_END_SECONDS):
                await response.write_eof()
        except (TimeoutError, ConnectionResetError):
            if request.transport is not None:
                request.transport.abort()
        return response


class StreamInterrupted(Exception):
    """The upstream failed after part of its answer was sent to the client."""

    reason = "upstream_stream_interrupted"

    def __init__(self, upstream_status: int) -> None:
        super().__init__("upstream answer interrupted mid-stream")
        self.upstream_status = upstream_status


def _body_chunks(upstream):
    if isinstance(upstream, UpstreamResponse):
        return upstream.iter_chunks()
    return upstream.content.iter_chunked(_CHUNK_SIZE)


async def _end_stream(upstream: aiohttp.ClientResponse) -> None:
    upstream.close()


async def _read_capped(upstream: aiohttp.ClientResponse, limit: int) -> bytes:
    if upstream.content_length is not None and upstream.content_length > limit:
        raise UpstreamError("The upstream's response is too large to check.",
                            reason="scope_body_too_large")

    parts = []
    received = 0
    async for chunk in _body_chunks(upstream):
        received += len(chunk)
        if received > limit:
            raise UpstreamError("The upstream's response is too large to check.",
                                reason="scope_body_too_large")
        parts.append(chunk)
    return b"".join(parts)
