"""Chat messages: list and send in a chat, or send to a contact by phone number.

Sent messages have direction ``out``. ``sent_by`` is the ``X-Gateway-User``
request header, or null without it: the API trusts the gateway to set it.
"""

from datetime import UTC, datetime

from aiohttp import web

from .data import Record, format_timestamp
from .errors import not_found
from .pagination import paginate
from .resources import get_record_or_404
from .schema import Field, read_fields
from .store import Store, get_store

GATEWAY_USER_HEADER = "X-Gateway-User"
MESSAGE_BODY = {"text": Field(str, required=True)}
SEND_BY_PHONE_BODY = {
    "phone": Field(str, required=True),
    "text": Field(str, required=True),
}

routes = web.RouteTableDef()


def add_outgoing_message(
    store: Store,
    chat: Record,
    text: str,
    sent_by: str | None,
) -> Record:
    """Store an outgoing message in ``chat`` and make it the chat's last message."""
    message = store.insert(
        "messages",
        {
            "chat_id": chat["id"],
            "direction": "out",
            "text": text,
            "created_at": format_timestamp(datetime.now(UTC)),
            "sent_by": sent_by,
        },
    )
    chat["last_message"] = text
    store.publish(chat["id"], message)

    return message


def find_contact_by_phone(store: Store, phone: str) -> Record | None:
    for contact in store.table("contacts").values():
        if contact["phone"] == phone:
            return contact

    return None


def latest_chat_of(store: Store, contact: Record) -> Record:
    """Return the contact's newest chat, opening an unassigned one if it has none."""
    chats = [
        chat
        for chat in store.table("chats").values()
        if chat["contact_id"] == contact["id"]
    ]
    if chats:
        return max(chats, key=lambda chat: chat["id"])

    return store.insert(
        "chats",
        {
            "contact_id": contact["id"],
            "assignee": None,
            "status": "open",
            "title": f"Chat with Contact {contact['id']}",
            "last_message": None,
            "created_at": format_timestamp(datetime.now(UTC)),
        },
    )


@routes.get(r"/api/1/chats/{id:\d+}/messages/")
async def list_messages(request: web.Request) -> web.Response:
    chat = get_record_or_404(request, "chats")
    messages = [
        message
        for message in get_store(request).table("messages").values()
        if message["chat_id"] == chat["id"]
    ]

    return paginate(request, messages)


@routes.post(r"/api/1/chats/{id:\d+}/messages/")
async def send_message(request: web.Request) -> web.Response:
    chat = get_record_or_404(request, "chats")
    text = (await read_fields(request, MESSAGE_BODY))["text"]
    sent_by = request.headers.get(GATEWAY_USER_HEADER)

    message = add_outgoing_message(get_store(request), chat, text, sent_by)

    return web.json_response(message, status=201)


@routes.post("/api/1/messages/send_by_phone/")
async def send_by_phone(request: web.Request) -> web.Response:
    store = get_store(request)
    values = await read_fields(request, SEND_BY_PHONE_BODY)
    contact = find_contact_by_phone(store, values["phone"])
    if contact is None:
        raise not_found(f"No contact has phone {values['phone']!r}.")

    chat = latest_chat_of(store, contact)
    sent_by = request.headers.get(GATEWAY_USER_HEADER)
    message = add_outgoing_message(store, chat, values["text"], sent_by)

    return web.json_response(message, status=201)
