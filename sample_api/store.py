"""In-memory state of the sample API: the tables, the singletons and the fault mode."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
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
        self.subscribers: dict[int, set[asyncio.Queue]] = {}
        self.load_seed()

    @contextmanager
    def subscribe(self, chat_id: int) -> Iterator[asyncio.Queue]:
        """Yield a queue that receives every message sent in the chat from now on."""
        queue: asyncio.Queue = asyncio.Queue()
        self.subscribers.setdefault(chat_id, set()).add(queue)
        try:
            yield queue
        finally:
            self.subscribers[chat_id].discard(queue)

    def publish(self, chat_id: int, message: Record) -> None:
        for queue in self.subscribers.get(chat_id, ()):
            queue.put_nowait(message)

    def load_seed(self) -> None:
        """Replace every table and singleton with a fresh copy of the seed data."""
        seed = build_seed()
        self.account = seed.pop("account")
        self.billing = seed.pop("billing")
        self.tables = seed
        # After the first insert into a table, its next id is kept, not searched for.
        self.next_ids: dict[str, int] = {}

    def table(self, name: str) -> Table:
        return self.tables[name]

    def find(self, table: str, record_id: int) -> Record | None:
        return self.tables[table].get(record_id)

    def insert(self, table: str, record: Record) -> Record:
        """Store a record under the next free id, which is one above the highest."""
        rows = self.tables[table]
        record_id = self.next_ids.get(table) or max(rows, default=0) + 1
        self.next_ids[table] = record_id + 1
        rows[record_id] = {"id": record_id, **record}

        return rows[record_id]


STORE_KEY = web.AppKey("store", Store)


def get_store(request: web.Request) -> Store:
    return request.app[STORE_KEY]
