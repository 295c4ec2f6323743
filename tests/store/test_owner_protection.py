"""The store keeps one active owner, also against racing changes from other connections.

Each racing change runs in its own thread with its own connection to the same
database file, as two gateway processes would.  A barrier releases them
together.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.store import LastOwner, SQLiteUserStore, StoreConflict
from gateway.store.schema import VERSION

ROUNDS = 30


async def add_owners(store: SQLiteUserStore, count: int) -> list[str]:
    ids = []
    for number in range(count):
        user = await store.add_user(name=f"Owner {number}", role="owner",
                                    type="standard",
                                    email=f"owner{number}@example.com")
        ids.append(user.id)
    return ids


CHANGES = {
    "demote": lambda store, user_id: store.set_role(user_id, "administrator"),
    "deactivate": lambda store, user_id: store.set_active(user_id, False),
    "delete": lambda store, user_id: store.delete_user(user_id),
}


def race(database: Path, change, user_ids: list[str]) -> list[str]:
    """Apply `change` to each user at once, each from its own connection."""
    barrier = threading.Barrier(len(user_ids))
    outcomes: list[str] = []

    def run(user_id: str) -> None:
        store = SQLiteUserStore(database)
        barrier.wait()
        try:
            asyncio.run(change(store, user_id))
            outcomes.append("changed")
        except LastOwner:
            outcomes.append("refused")
        finally:
            asyncio.run(store.close())

    threads = [threading.Thread(target=run, args=(user_id,)) for user_id in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("name", CHANGES)
async def test_racing_changes_leave_one_active_owner(tmp_path, name):
    for round_number in range(ROUNDS):
        database = tmp_path / f"round-{round_number}.db"
        store = SQLiteUserStore(database)
        owners = await add_owners(store, 2)

        outcomes = race(database, CHANGES[name], owners)

        remaining = [user for user in await store.list_users(roles=["owner"])
                     if user.active]
        await store.close()
        assert sorted(outcomes) == ["changed", "refused"]
        assert len(remaining) == 1


async def test_service_owner_is_not_a_remaining_owner(tmp_path):
    store = SQLiteUserStore(tmp_path / "gateway.db")
    (owner,) = await add_owners(store, 1)
    await store.add_service_user(name="Robot", email="robot@example.com", role="owner")

    with pytest.raises(LastOwner):
        await store.set_active(owner, False)
    await store.close()


async def test_failed_change_leaves_no_audit_row(tmp_path):
    store = SQLiteUserStore(tmp_path / "gateway.db")
    (owner,) = await add_owners(store, 1)
    before = await store.list_audit()

    with pytest.raises(LastOwner):
        await store.delete_user(owner)
    with pytest.raises(StoreConflict):
        await store.add_user(name="Twin", email="OWNER0@example.com",
                             role="owner", type="standard")

    assert await store.list_audit() == before
    await store.close()


async def test_service_user_without_its_key_is_never_stored(tmp_path):
    database = tmp_path / "gateway.db"
    store = SQLiteUserStore(database)
    # The key's INSERT, the second write of the transaction, fails in SQLite.
    with sqlite3.connect(database) as other:
        other.execute("CREATE TRIGGER no_keys BEFORE INSERT ON api_keys "
                      "BEGIN SELECT RAISE(ABORT, 'no room for keys'); END")

    with pytest.raises(sqlite3.IntegrityError):
        await store.add_service_user(name="Robot", email="robot@example.com",
                                     role="chat_manager")

    assert await store.list_users() == []
    assert await store.list_audit() == []
    await store.close()


def test_older_database_file_is_upgraded_in_place(tmp_path):
    database = tmp_path / "gateway.db"
    with sqlite3.connect(database) as old:
        old.executescript("""
            CREATE TABLE users (
                id TEXT PRIMARY KEY, name TEXT NOT NULL,
                email TEXT NOT NULL UNIQUE COLLATE NOCASE, role TEXT NOT NULL,
                type TEXT NOT NULL CHECK (type IN ('standard', 'service')),
                active INTEGER NOT NULL DEFAULT 1,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
            INSERT INTO users VALUES ('u-1', 'Élodie', 'ÉLODIE@example.com', 'owner',
                                      'standard', 1, '2026-01-01', '2026-01-01');
        """)

    store = SQLiteUserStore(database)
    twin = asyncio.run(_add(store, "élodie@example.com"))
    asyncio.run(store.close())

    with sqlite3.connect(database) as upgraded:
        (version,) = upgraded.execute("PRAGMA user_version").fetchone()
    assert version == VERSION
    assert isinstance(twin, StoreConflict)


async def _add(store, email):
    try:
        return await store.add_user(name="Twin", email=email, role="owner",
                                    type="standard")
    except StoreConflict as error:
        return error
