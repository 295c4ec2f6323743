"""Users read for requests: a change is seen at once, from any connection.

The store keeps users it has read in memory.  These tests change a user
through the same store, through a second store on the same file (as another
worker process would), and with plain SQL, then read it right after.
"""

from __future__ import annotations

import sqlite3

import pytest

from gateway.store import SQLiteUserStore


@pytest.fixture
async def stores(tmp_path):
    path = tmp_path / "gateway.db"
    reader = SQLiteUserStore(path)
    writer = SQLiteUserStore(path)
    await reader.add_user(name="Owner", role="owner", type="standard",
                          email="owner@example.com")
    yield reader, writer, path
    await reader.close()
    await writer.close()


async def add_operator(store: SQLiteUserStore) -> str:
    user = await store.add_user(name="Op", role="chat_operator", type="standard",
                                email="op@example.com")
    return user.id


async def test_change_by_same_store_is_seen(stores):
    reader, _, _ = stores
    user_id = await add_operator(reader)
    assert (await reader.get_user(user_id)).active

    await reader.set_active(user_id, False)

    assert not (await reader.get_user(user_id)).active


async def test_change_by_other_connection_is_seen(stores):
    reader, writer, _ = stores
    user_id = await add_operator(writer)
    assert (await reader.get_user(user_id)).role == "chat_operator"

    await writer.set_role(user_id, "chat_manager")
    assert (await reader.get_user(user_id)).role == "chat_manager"

    await writer.delete_user(user_id)
    assert await reader.get_user(user_id) is None


async def test_user_added_elsewhere_after_a_miss_is_seen(stores):
    reader, writer, _ = stores
    assert await reader.get_user("u-later") is None, "an unknown id is a miss"

    await writer.add_user(name="Later", role="chat_operator", type="standard",
                          email="later@example.com", user_id="u-later")

    assert (await reader.get_user("u-later")).name == "Later"


async def test_plain_sql_update_is_seen(stores):
    reader, _, path = stores
    user_id = await add_operator(reader)
    await reader.get_user(user_id)

    with sqlite3.connect(path) as db:
        db.execute("UPDATE users SET active = 0 WHERE id = ?", (user_id,))

    assert not (await reader.get_user(user_id)).active
