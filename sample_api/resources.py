"""Generic create, read, update and delete endpoints for one table.

Each collection is served at ``/api/1/<table>/`` and each record at
``/api/1/<table>/{id}/``. Collections with cross-record rules (contacts, lists,
tags) plug them in through the hooks of ``Resource``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .data import Record
from .errors import not_found
from .pagination import paginate
from .schema import Fields, read_fields
from .store import Store, get_store

# Check a create (record id None) or update before it is stored. Raise 400 to reject.
Validator = Callable[[Store, Mapping[str, Any], int | None], None]
# Narrow a collection by the request's filter parameters.
ListFilter = Callable[[web.Request, list[Record]], list[Record]]
# Remove references to a record that is being deleted.
DeleteHook = Callable[[Store, int], None]


def no_validation(
    store: Store,
    values: Mapping[str, Any],
    record_id: int | None,
) -> None:
    return None


def no_filter(request: web.Request, records: list[Record]) -> list[Record]:
    return records


def no_cleanup(store: Store, record_id: int) -> None:
    return None


@dataclass(frozen=True)
class Resource:
    """Description of one table served with the generic endpoints."""

    table: str
    fields: Fields
    validate: Validator = no_validation
    filter: ListFilter = no_filter
    on_delete: DeleteHook = no_cleanup


def get_record_or_404(request: web.Request, table: str) -> Record:
    """Return the record whose id is the ``id`` path parameter, or raise 404."""
    record = get_store(request).find(table, int(request.match_info["id"]))
    if record is None:
        raise not_found()

    return record


class ResourceHandlers:
    """Request handlers of one ``Resource``, bound so aiohttp can route to them."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource

    async def list_records(self, request: web.Request) -> web.Response:
        records = list(get_store(request).table(self.resource.table).values())

        return paginate(request, self.resource.filter(request, records))

    async def create_record(self, request: web.Request) -> web.Response:
        store = get_store(request)
        values = await read_fields(request, self.resource.fields)
        self.resource.validate(store, values, None)

        record = store.insert(self.resource.table, values)

        return web.json_response(record, status=201)

    async def get_record(self, request: web.Request) -> web.Response:
        return web.json_response(get_record_or_404(request, self.resource.table))

    async def update_record(self, request: web.Request) -> web.Response:
        store = get_store(request)
        record = get_record_or_404(request, self.resource.table)
        values = await read_fields(request, self.resource.fields, partial=True)
        self.resource.validate(store, values, record["id"])

        record.update(values)

        return web.json_response(record)

    async def delete_record(self, request: web.Request) -> web.Response:
        store = get_store(request)
        record = get_record_or_404(request, self.resource.table)

        del store.table(self.resource.table)[record["id"]]
        self.resource.on_delete(store, record["id"])

        return web.Response(status=204)


def resource_routes(resource: Resource) -> list[web.RouteDef]:
    """Return the collection and record routes of ``resource``."""
    handlers = ResourceHandlers(resource)
    collection = f"/api/1/{resource.table}/"
    item = collection + r"{id:\d+}/"

    return [
        web.get(collection, handlers.list_records),
        web.post(collection, handlers.create_record),
        web.get(item, handlers.get_record),
        web.patch(item, handlers.update_record),
        web.delete(item, handlers.delete_record),
    ]
