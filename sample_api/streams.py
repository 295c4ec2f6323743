"""Live updates of a chat: a WebSocket and an event stream of its new messages.

- ``GET /api/1/chats/{id}/stream/`` upgrades to a WebSocket. The API sends
  ``{"type": "ready", "chat_id": N}``, then every message sent in the chat as
  ``{"type": "message", "message": {...}}``. A text frame ``ping`` is answered
  with ``pong``; other frames are ignored.
- ``GET /api/1/chats/{id}/events/`` is a ``text/event-stream`` with a ``ready``
  event, a ``message`` event per message sent in the chat, and a comment line
  every ``heartbeat`` seconds (query parameter, default 15).
"""

import asyncio
import json

from aiohttp import WSMsgType, web

from .resources import get_record_or_404
from .store import get_store

DEFAULT_HEARTBEAT_SECONDS = 15.0

routes = web.RouteTableDef()


@routes.get(r"/api/1/chats/{id:\d+}/stream/")
async def chat_websocket(request: web.Request) -> web.WebSocketResponse:
    chat = get_record_or_404(request, "chats")
    store = get_store(request)
    socket = web.WebSocketResponse()
    await socket.prepare(request)

    with store.subscribe(chat["id"]) as queue:
        await socket.send_json({"type": "ready", "chat_id": chat["id"]})
        forward = asyncio.create_task(send_messages(socket, queue))
        try:
            async for frame in socket:
                if frame.type == WSMsgType.TEXT and frame.data == "ping":
                    await socket.send_str("pong")
        finally:
            forward.cancel()

    return socket


async def send_messages(socket: web.WebSocketResponse, queue: asyncio.Queue) -> None:
    while True:
        message = await queue.get()
        await socket.send_json({"type": "message", "message": message})


@routes.get(r"/api/1/chats/{id:\d+}/events/")
async def chat_events(request: web.Request) -> web.StreamResponse:
    chat = get_record_or_404(request, "chats")
    store = get_store(request)
    heartbeat = float(request.query.get("heartbeat", DEFAULT_HEARTBEAT_SECONDS))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)

    with store.subscribe(chat["id"]) as queue:
        try:
            await response.write(event("ready", {"chat_id": chat["id"]}))
            while True:
                await response.write(await next_event(queue, heartbeat))
        except ConnectionResetError:
            return response  # The client went away.


async def next_event(queue: asyncio.Queue, heartbeat: float) -> bytes:
    try:
        message = await asyncio.wait_for(queue.get(), heartbeat)
    except TimeoutError:
        return b": heartbeat\n\n"

    return event("message", message)


def event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
