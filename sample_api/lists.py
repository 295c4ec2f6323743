"""Contact lists: the generic endpoints plus the member contacts of a list.

- ``GET /api/1/lists/{id}/contacts/`` pages the member contacts and accepts the
  same filters as the contact list, ``operator`` among them.
- ``POST /api/1/lists/{id}/contacts/`` with ``{"contact": contact_id}`` adds a
  member and returns the list. Adding a member twice keeps one copy.
"""

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .errors import bad_request
from .filters import filter_contacts, filter_params
from .pagination import paginate
from .resources import Resource, get_record_or_404
from .schema import Field, read_fields
from .store import Store, get_store

MEMBER_BODY = {"contact": Field(int, required=True)}

routes = web.RouteTableDef()


def check_contacts_exist(store: Store, contact_ids: list[int]) -> None:
    for contact_id in contact_ids:
        if store.find("contacts", contact_id) is None:
            raise bad_request(f"Contact {contact_id} does not exist.")


def check_list(
    store: Store,
    values: Mapping[str, Any],
    record_id: int | None,
) -> None:
    check_contacts_exist(store, values.get("contact_ids", []))


LISTS = Resource(
    table="lists",
    fields={
        "id": Field(int, read_only=True),
        "name": Field(str, required=True),
        "contact_ids": Field(list, item_type=int, default=[]),
    },
    validate=check_list,
)


@routes.get(r"/api/1/lists/{id:\d+}/contacts/")
async def list_members(request: web.Request) -> web.Response:
    store = get_store(request)
    contact_list = get_record_or_404(request, "lists")

    members = [
        store.table("contacts")[contact_id]
        for contact_id in sorted(contact_list["contact_ids"])
    ]

    return paginate(request, filter_contacts(members, filter_params(request)))


@routes.post(r"/api/1/lists/{id:\d+}/contacts/")
async def add_member(request: web.Request) -> web.Response:
    contact_list = get_record_or_404(request, "lists")
    contact_id = (await read_fields(request, MEMBER_BODY))["contact"]
    check_contacts_exist(get_store(request), [contact_id])

    if contact_id not in contact_list["contact_ids"]:
        contact_list["contact_ids"] = sorted([*contact_list["contact_ids"], contact_id])

    return web.json_response(contact_list)
