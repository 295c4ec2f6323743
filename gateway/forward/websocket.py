"""WebSocket relay: an authorized upgrade becomes two sockets and two pumps.

The gateway opens its own WebSocket to the upstream, with the filtered and
identity headers of any forwarded request, and only then accepts the
client's upgrade.  Frames pass through in both directions until either side
closes, or until the stream registry ends the stream (close code 1008).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import BadRequest, UpstreamError, UpstreamTimeout
from gateway.streams.registry import LiveStream

log = logging.getLogger("gateway.forward")

_HANDSHAKE_HEADERS = ("Sec-WebSocket-Key", "Sec-WebSocket-Version",
                      "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
                      "Sec-WebSocket-Accept")
_CLOSE_REASON_BYTES = 123  # RFC 6455 section 5.5: a close frame's payload ends at 125


def is_websocket_upgrade(headers) -> bool:
    connection = {token.strip().lower()
                  for value in headers.getall("Connection", ())
                  for token in value.split(",")}
    return "upgrade" in connection and headers.get("Upgrade", "").lower() == "websocket"


async def relay_websocket(
    request: web.BaseRequest,
    session: aiohttp.ClientSession,
    url: URL,
    headers: CIMultiDict[str],
    *,
    handshake_timeout: float,
    max_message_bytes: int,
    response_headers: dict[str, str],
    stream: LiveStream,
    subprotocols: frozenset[str] = frozenset(),
) -> web.WebSocketResponse:
    """Connect upstream, accept the client, and relay frames until one side ends.

    Only the subprotocols in `subprotocols` may be asked for: some clients
    carry a credential in one, which the upstream must never get from a
    client that the gateway authenticated as someone else.
    """
    for name in _HANDSHAKE_HEADERS:
        headers.popall(name, None)
    protocols = [protocol.strip()
                 for value in request.headers.getall("Sec-WebSocket-Protocol", ())
                 for protocol in value.split(",") if protocol.strip()]
    unlisted = [protocol for protocol in protocols if protocol not in subprotocols]
    if unlisted:
        raise BadRequest(f"The WebSocket subprotocol {unlisted[0]!r} is not "
                         f"accepted here.", reason="websocket_subprotocol")

    upstream = await _connect(session, url, headers, protocols, handshake_timeout,
                              max_message_bytes)
    client = web.WebSocketResponse(
        protocols=[upstream.protocol] if upstream.protocol else (),
        max_msg_size=max_message_bytes,
    )
    client.headers.update(response_headers)
    try:
        await client.prepare(request)

        async def end(reason: str) -> None:
            message = reason.encode()[:_CLOSE_REASON_BYTES]
            try:
                await client.close(code=WSCloseCode.POLICY_VIOLATION, message=message,
                                   drain=False)
            except asyncio.CancelledError:
                # The close frame sits behind frames a slow client never read,
                # and the registry's deadline passed: the connection ends.
                if request.transport is not None:
                    request.transport.abort()
                raise
            finally:
                await upstream.close()

        await stream.set_closer(end, 101)
        await _pump_both_ways(client, upstream)
    finally:
        await upstream.close()
        await client.close()

    return client


async def _connect(session, url, headers, protocols, handshake_timeout,
                   max_message_bytes) -> aiohttp.ClientWebSocketResponse:
    # The handshake has a deadline; an open socket has no read timeout.
    try:
        async with asyncio.timeout(handshake_timeout):
            return await session.ws_connect(
                url,
                headers=headers,
                protocols=protocols,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                max_msg_size=max_message_bytes,
            )
    except aiohttp.WSServerHandshakeError as error:
        raise UpstreamError(
            f"The upstream refused the WebSocket handshake with status {error.status}.",
            reason="upstream_websocket_refused",
        ) from None
    except TimeoutError:
        raise UpstreamTimeout("The upstream did not respond in time.") from None
    except aiohttp.ClientError as error:
        raise UpstreamError("The upstream refused or dropped the connection.",
                            reason="upstream_" + type(error).__name__) from error


async def _pump_both_ways(client: web.WebSocketResponse,
                          upstream: aiohttp.ClientWebSocketResponse) -> None:
    pumps = [asyncio.create_task(_pump(client, upstream)),
             asyncio.create_task(_pump(upstream, client))]
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


async def _pump(source, sink) -> None:
    async for frame in source:
        if frame.type == WSMsgType.TEXT:
            await sink.send_str(frame.data)
        elif frame.type == WSMsgType.BINARY:
            await sink.send_bytes(frame.data)
        else:
            return
