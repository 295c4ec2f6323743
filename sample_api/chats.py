"""Chats: list with filters, read, update, and assign to an operator.

- ``GET /api/1/chats/`` accepts ``assignee``, ``status`` and ``search`` filters.
- ``PATCH /api/1/chats/{id}/`` changes ``status`` and ``title`` only.
- ``POST /api/1/chats/{id}/assign/`` with ``{"operator": user_id}`` and
  ``POST /api/1/chats/{id}/unassign/`` (body empty or ``{}``) return the chat.
"""

from aiohttp import web

from .data import CHAT_STATUSES, USERS
from .errors import bad_request
from .filters import filter_chats, filter_params
from .pagination import paginate
from .resources import get_record_or_404
from .schema import Field, read_fields
from .store import get_store

# Only status and title are writable. The other fields are listed so that a write
# to them is rejected as read-only, which tells the client more than "unknown".
CHAT_FIELDS = {
    "id": Field(int, read_only=True),
    "contact_id": Field(int, read_only=True),
    "assignee": Field(str, read_only=True),
    "status": Field(str, choices=CHAT_STATUSES),
    "title": Field(str),
    "last_message": Field(str, read_only=True),
    "created_at": Field(str, read_only=True),
}
ASSIGN_BODY = {"operator": Field(str, required=True)}

routes = web.RouteTableDef()


@routes.get("/api/1/chats/")
async def list_chats(request: web.Request) -> web.Response:
    store = get_store(request)
    chats = filter_chats(
        store.table("chats").values(),
        filter_params(request),
        store.table("contacts"),
    )

    return paginate(request, chats)


@routes.get(r"/api/1/chats/{id:\d+}/")
async def get_chat(request: web.Request) -> web.Response:
    return web.json_response(get_record_or_404(request, "chats"))


@routes.patch(r"/api/1/chats/{id:\d+}/")
async def update_chat(request: web.Request) -> web.Response:
    chat = get_record_or_404(request, "chats")
    values = await read_fields(request, CHAT_FIELDS, partial=True)

    chat.update(values)

    return web.json_response(chat)


@routes.post(r"/api/1/chats/{id:\d+}/assign/")
async def assign_chat(request: web.Request) -> web.Response:
    chat = get_record_or_404(request, "chats")
    operator = (await read_fields(request, ASSIGN_BODY))["operator"]
    if operator not in USERS:
        raise bad_request(f"Unknown user {operator!r}.")

    chat["assignee"] = operator

    return web.json_response(chat)


@routes.post(r"/api/1/chats/{id:\d+}/unassign/")
async def unassign_chat(request: web.Request) -> web.Response:
    chat = get_record_or_404(request, "chats")
    await read_fields(request, {}, allow_empty=True)

    chat["assignee"] = None

    return web.json_response(chat)
