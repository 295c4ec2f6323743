"""Contacts: the generic endpoints plus operator and tag actions.

Routes beyond the generic ones:

- ``POST /api/1/contacts/{id}/add_operator/`` and ``.../remove_operator/`` with
  ``{"operator": user_id}``
- ``POST /api/1/contacts/{id}/tags/`` with ``{"tag": tag_id}``
- ``DELETE /api/1/contacts/{id}/tags/{tag_id}/``

Each returns the updated contact. Adding what is already there, or removing what
is not, leaves the contact unchanged and still succeeds.
"""

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .data import USERS, Record
from .errors import bad_request, not_found
from .filters import filter_contacts, filter_params
from .resources import Resource, get_record_or_404
from .schema import Field, read_fields
from .store import Store, get_store

OPERATOR_BODY = {"operator": Field(str, required=True)}
TAG_BODY = {"tag": Field(int, required=True)}

routes = web.RouteTableDef()


def check_users(user_ids: list[str]) -> None:
    for user_id in user_ids:
        if user_id not in USERS:
            raise bad_request(f"Unknown user {user_id!r}.")


def check_tags(store: Store, tag_ids: list[int]) -> None:
    for tag_id in tag_ids:
        if store.find("tags", tag_id) is None:
            raise bad_request(f"Tag {tag_id} does not exist.")


def check_phone_unique(store: Store, phone: str, record_id: int | None) -> None:
    # send_by_phone looks a contact up by phone, so two contacts may not share one.
    for contact in store.table("contacts").values():
        if contact["phone"] == phone and contact["id"] != record_id:
            raise bad_request(f"A contact with phone {phone!r} already exists.")


def check_contact(
    store: Store,
    values: Mapping[str, Any],
    record_id: int | None,
) -> None:
    if "phone" in values:
        check_phone_unique(store, values["phone"], record_id)

    check_users(values.get("operators", []))
    check_tags(store, values.get("tags", []))


def filter_contact_list(request: web.Request, records: list[Record]) -> list[Record]:
    return filter_contacts(records, filter_params(request))


def remove_contact_from_lists(store: Store, contact_id: int) -> None:
    for contact_list in store.table("lists").values():
        if contact_id in contact_list["contact_ids"]:
            contact_list["contact_ids"].remove(contact_id)


CONTACTS = Resource(
    table="contacts",
    fields={
        "id": Field(int, read_only=True),
        "first_name": Field(str, required=True),
        "last_name": Field(str, allow_blank=True, default=""),
        "phone": Field(str, required=True),
        "email": Field(str, allow_blank=True, default=""),
        "operators": Field(list, item_type=str, default=[]),
        "tags": Field(list, item_type=int, default=[]),
    },
    validate=check_contact,
    filter=filter_contact_list,
    on_delete=remove_contact_from_lists,
)


@routes.post(r"/api/1/contacts/{id:\d+}/add_operator/")
async def add_operator(request: web.Request) -> web.Response:
    contact = get_record_or_404(request, "contacts")
    operator = (await read_fields(request, OPERATOR_BODY))["operator"]
    check_users([operator])

    if operator not in contact["operators"]:
        contact["operators"].append(operator)

    return web.json_response(contact)


@routes.post(r"/api/1/contacts/{id:\d+}/remove_operator/")
async def remove_operator(request: web.Request) -> web.Response:
    contact = get_record_or_404(request, "contacts")
    operator = (await read_fields(request, OPERATOR_BODY))["operator"]
    check_users([operator])

    if operator in contact["operators"]:
        contact["operators"].remove(operator)

    return web.json_response(contact)


@routes.post(r"/api/1/contacts/{id:\d+}/tags/")
async def add_tag(request: web.Request) -> web.Response:
    contact = get_record_or_404(request, "contacts")
    tag_id = (await read_fields(request, TAG_BODY))["tag"]
    check_tags(get_store(request), [tag_id])

    if tag_id not in contact["tags"]:
        contact["tags"] = sorted([*contact["tags"], tag_id])

    return web.json_response(contact)


@routes.delete(r"/api/1/contacts/{id:\d+}/tags/{tag_id:\d+}/")
async def remove_tag(request: web.Request) -> web.Response:
    contact = get_record_or_404(request, "contacts")
    tag_id = int(request.match_info["tag_id"])
    if get_store(request).find("tags", tag_id) is None:
        raise not_found()

    if tag_id in contact["tags"]:
        contact["tags"].remove(tag_id)

    return web.json_response(contact)
