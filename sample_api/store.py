"""In-memory state of the sample API: the tables, the singletons and the fault mode."""

from typing import Any

from aiohttp import web

from .data import Record, Table, build_seed


class Store:
    """Mutable copy of the seed data that the handlers read and change.

    ``ignore_filters`` is a fault mode: while it is set, every list endpoint
    ignores its filter parameters, so tests can check that the gateway does not
    rely on the upstream to filter.
    """

    def __init__(self, *, ignore_filters: bool = False) -> None:
        self.tables: dict[str, Table] = {}
        self.account: dict[str, Any] = {}
        self.billing: dict[str, Any] = {}
        self.ignore_filters = ignore_filters
        self.load_seed()

    def load_seed(self) -> None:
        """Replace every table and singleton with a fresh copy of the seed data."""
        seed = build_seed()
        self.account = seed.pop("account")
        self.billing = seed.pop("billing")
        self.tables = seed

    def table(self, name: str) -> Table:
        return self.tables[name]

    def find(self, table: str, record_id: int) -> Record | None:
        return self.tables[table].get(record_id)

    def insert(self, table: str, record: Record) -> Record:
        """Store a record under the next free id, which is one above the highest."""
        rows = self.tables[table]
        record_id = max(rows, default=0) + 1
        rows[record_id] = {"id": record_id, **record}

        return rows[record_id]


STORE_KEY = web.AppKey("store", Store)


def get_store(request: web.Request) -> Store:
    return request.app[STORE_KEY]
