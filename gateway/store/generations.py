"""Generations of the owner caches, shared by every process on one store file.

Each gateway process caches object owners by resolver, object id and the
resolver's generation.  An ownership change through any worker bumps the
generation in the store, so every worker's next lookup through that resolver
misses its cache, not only the lookups of the worker that made the change.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.schema import open_database


class SQLiteGenerations:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_database(path)
        self._as_of: tuple[int, int] | None = None
        self._values: dict[str, int] = {}

    def current(self, resolver: str) -> int:
        """Return the resolver's generation, read again only after the file changed."""
        # data_version changes with every commit of another connection, and
        # total_changes with every one of this connection.
        as_of = (self._db.execute("PRAGMA data_version").fetchone()[0],
                 self._db.total_changes)
        if as_of != self._as_of:
            rows = self._db.execute("SELECT resolver, generation FROM generations")
            self._values = dict(rows.fetchall())
            self._as_of = as_of

        return self._values.get(resolver, 0)

    def bump(self, resolver: str) -> None:
        """Start a new generation of `resolver`, in one statement."""
        self._db.execute(
            "INSERT INTO generations (resolver, generation) VALUES (?, 1) "
            "ON CONFLICT (resolver) DO UPDATE SET generation = generation + 1",
            (resolver,),
        )

    def close(self) -> None:
        self._db.close()
