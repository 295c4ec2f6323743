"""SQLiteUserStore on a real database file: users, roles, states and API keys."""

import hashlib
import sqlite3
from pathlib import Path

import pytest

from gateway.store import SQLiteUserStore, UserStoreError
from gateway.store.api_keys import hash_api_key


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "store" / "gateway.db"


@pytest.fixture
async def store(database: Path):
    opened = SQLiteUserStore(database)
    yield opened
    await opened.close()


async def add_operator(store, user_id="u-op-1", email="op1@example.com"):
    return await store.add_user(
        name="Operator One",
        email=email,
        role="chat_operator",
        type="standard",
        user_id=user_id,
    )


async def add_service(store, user_id="svc-1", email="svc1@example.com"):
    return await store.add_user(
        name="Service One",
        email=email,
        role="administrator",
        type="service",
        user_id=user_id,
    )


def read_rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def database_bytes(database: Path) -> bytes:
    """Return the bytes of the database file and of its write-ahead log.

    In WAL mode a new row reaches the main file only at a checkpoint.
    """
    files = [database, database.with_name(database.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


async def test_added_user_is_stored(store):
    user = await add_operator(store)

    assert user.id == "u-op-1"
    assert user.name == "Operator One"
    assert user.email == "op1@example.com"
    assert user.role == "chat_operator"
    assert user.type == "standard"
    assert user.active is True
    assert user.created_at == user.updated_at
    assert await store.get_user("u-op-1") == user


async def test_generated_ids_are_distinct(store):
    first = await store.add_user(
        name="A", email="a@example.com", role="chat_operator", type="standard"
    )
    second = await store.add_user(
        name="B", email="b@example.com", role="chat_operator", type="standard"
    )

    assert first.id.startswith("u-")
    assert first.id != second.id


async def test_list_users_in_creation_order(store, database):
    await add_operator(store, "u-b", "b@example.com")
    await add_operator(store, "u-a", "a@example.com")
    await add_service(store)
    # Fixed creation times: u-b first, then u-a and svc-1 in the same second.
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE users SET created_at = CASE id "
            "WHEN 'u-b' THEN '2026-01-01T00:00:00+00:00' "
            "ELSE '2026-01-01T00:00:01+00:00' END"
        )

    listed = await store.list_users()

    assert [user.id for user in listed] == ["u-b", "svc-1", "u-a"]


async def test_unknown_user_is_none(store):
    assert await store.get_user("u-nobody") is None


async def test_set_role_changes_role(store):
    await add_operator(store)

    changed = await store.set_role("u-op-1", "chat_manager")

    assert changed.role == "chat_manager"
    assert (await store.get_user("u-op-1")).role == "chat_manager"


@pytest.mark.parametrize("active", [False, True])
async def test_set_active_changes_state(store, active):
    await add_operator(store)
    await store.set_active("u-op-1", False)

    changed = await store.set_active("u-op-1", active)

    assert changed.active is active
    assert read_rows(store.path, "SELECT active FROM users") == [(int(active),)]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda store: store.set_role("u-nobody", "owner"), id="set-role"),
        pytest.param(
            lambda store: store.set_active("u-nobody", False), id="set-active"
        ),
        pytest.param(lambda store: store.add_api_key("u-nobody"), id="add-api-key"),
    ],
)
async def test_change_to_unknown_user_rejected(store, change):
    with pytest.raises(UserStoreError, match="no user with id 'u-nobody'"):
        await change(store)


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("op1@example.com", id="same-case"),
        pytest.param("OP1@Example.COM", id="other-case"),
    ],
)
async def test_duplicate_email_rejected_whole(store, database, email):
    await add_operator(store)

    with pytest.raises(UserStoreError, match="already exists"):
        await add_operator(store, "u-op-2", email)

    assert [user.id for user in await store.list_users()] == ["u-op-1"]
    assert read_rows(database, "SELECT id FROM users") == [("u-op-1",)]


async def test_duplicate_id_rejected_whole(store, database):
    await add_operator(store)

    with pytest.raises(UserStoreError, match="a user with id 'u-op-1' already exists"):
        await add_operator(store, "u-op-1", "other@example.com")

    assert read_rows(database, "SELECT email FROM users") == [("op1@example.com",)]


async def test_unknown_user_type_rejected(store, database):
    with pytest.raises(UserStoreError, match="type must be one of standard, service"):
        await store.add_user(
            name="X", email="x@example.com", role="owner", type="robot"
        )

    assert read_rows(database, "SELECT id FROM users") == []


async def test_store_survives_reopen(store, database):
    await add_operator(store)
    await store.set_role("u-op-1", "chat_manager")
    await store.close()

    reopened = SQLiteUserStore(database)
    try:
        user = await reopened.get_user("u-op-1")
    finally:
        await reopened.close()

    assert user.role == "chat_manager"


async def test_api_key_finds_service_user(store):
    service = await add_service(store)

    key = await store.add_api_key("svc-1")

    assert key.startswith("gwk_")
    assert await store.find_user_by_api_key(key) == service


async def test_api_key_stored_only_as_hash(store, database):
    await add_service(store)
    key = await store.add_api_key("svc-1")
    secret = key.split("_", 2)[2]  # gwk_PREFIX_SECRET; the secret may hold "_"

    rows = read_rows(database, "SELECT prefix, user_id, key_hash FROM api_keys")
    stored_text = "\n".join(str(value) for row in rows for value in row)
    raw = database_bytes(database)

    assert rows[0][2] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in stored_text
    assert secret not in stored_text
    assert key.encode() not in raw
    assert secret.encode() not in raw


async def test_api_key_listing_shows_prefix_only(store):
    await add_service(store)
    key = await store.add_api_key("svc-1")

    listed = await store.list_api_keys("svc-1")

    assert len(listed) == 1
    assert key.startswith(f"gwk_{listed[0].prefix}_")
    assert listed[0].revoked_at is None
    assert key not in repr(listed)


async def test_each_api_key_works(store):
    service = await add_service(store)

    first = await store.add_api_key("svc-1")
    second = await store.add_api_key("svc-1")

    assert first != second
    assert await store.find_user_by_api_key(first) == service
    assert await store.find_user_by_api_key(second) == service


async def test_standard_user_gets_no_api_key(store, database):
    await add_operator(store)

    with pytest.raises(UserStoreError, match="is not a service user"):
        await store.add_api_key("u-op-1")

    assert read_rows(database, "SELECT prefix FROM api_keys") == []


async def test_revoked_api_key_rejected(store, database):
    await add_service(store)
    key = await store.add_api_key("svc-1")
    prefix = (await store.list_api_keys("svc-1"))[0].prefix

    revoked = await store.revoke_api_key(prefix)

    assert revoked.revoked_at is not None
    assert await store.find_user_by_api_key(key) is None
    with pytest.raises(UserStoreError, match="no active API key"):
        await store.revoke_api_key(prefix)


def replace_secret(key: str) -> str:
    scheme, prefix, secret = key.split("_", 2)  # the secret may hold "_"
    changed = ("B" if secret[0] == "A" else "A") + secret[1:]
    return f"{scheme}_{prefix}_{changed}"


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda key: replace_secret(key), id="wrong-secret"),
        pytest.param(
            lambda key: "gwk_000000000000_" + key.split("_", 2)[2], id="unknown-prefix"
        ),
        pytest.param(lambda key: "gwk_000000000000_" + "A" * 43, id="unknown-key"),
        pytest.param(lambda key: key[:-1], id="truncated"),
        pytest.param(lambda key: key + "A", id="extended"),
        pytest.param(lambda key: key.upper(), id="upper-cased"),
        pytest.param(lambda key: " " + key, id="leading-space"),
        pytest.param(lambda key: key + "\n", id="trailing-newline"),
        pytest.param(lambda key: key.replace("gwk_", "gwx_"), id="wrong-scheme"),
        pytest.param(lambda key: hash_api_key(key), id="stored-hash"),
        pytest.param(lambda key: "", id="empty"),
        pytest.param(lambda key: "garbage", id="garbage"),
        pytest.param(lambda key: "gwk_' OR 1=1 --_" + "A" * 43, id="sql-in-prefix"),
    ],
)
async def test_invalid_api_key_rejected(store, make_key):
    await add_service(store)
    key = await store.add_api_key("svc-1")

    assert await store.find_user_by_api_key(make_key(key)) is None


async def test_deactivated_service_user_still_returned(store):
    # The store returns inactive users too, because the authenticator is the
    # component that rejects them.
    await add_service(store)
    key = await store.add_api_key("svc-1")
    await store.set_active("svc-1", False)

    user = await store.find_user_by_api_key(key)

    assert user.active is False


async def test_ping_succeeds_on_open_store(store):
    assert await store.ping() is None
