"""Dashboard summary: chat counts by status and the number of messages sent.

``GET /api/1/dashboards/summary/?operator=USER`` counts only the chats assigned to
that user and the outgoing messages in them. Without ``operator`` it counts
everything. The ``ignore_filters`` fault mode does not apply here, because this is
not a list endpoint.
"""

from aiohttp import web

from .store import get_store

routes = web.RouteTableDef()


@routes.get("/api/1/dashboards/summary/")
async def get_summary(request: web.Request) -> web.Response:
    store = get_store(request)
    operator = request.query.get("operator") or None

    chats = [
        chat
        for chat in store.table("chats").values()
        if operator is None or chat["assignee"] == operator
    ]
    chat_ids = {chat["id"] for chat in chats}
    messages_sent = sum(
        1
        for message in store.table("messages").values()
        if message["direction"] == "out" and message["chat_id"] in chat_ids
    )

    summary = {
        "operator": operator,
        "open_chats": sum(1 for chat in chats if chat["status"] == "open"),
        "pending_chats": sum(1 for chat in chats if chat["status"] == "pending"),
        "closed_chats": sum(1 for chat in chats if chat["status"] == "closed"),
        "messages_sent": messages_sent,
    }

    return web.json_response(summary)
