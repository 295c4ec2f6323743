"""The generated policy of bench/synthetic.py loads and decides as Casbin does."""

import pytest
from decision import bind_users, decide, generate_shapes
from synthetic import (
    GENERATED_PREFIX,
    ROLES,
    SHIPPED_ROLES,
    SOURCE_CONFIG,
    build_roles_text,
    count_policy_rows,
    fill_store,
    user_roles,
    write_synthetic_config,
)

from gateway.authz.reference import compare_with_casbin
from gateway.config import load_config
from gateway.snapshot import load_snapshot
from gateway.store import SQLiteUserStore

SHIPPED_TEXT = SHIPPED_ROLES.read_text(encoding="utf-8")
POLICY_ROWS = 400


@pytest.fixture(scope="module")
def synthetic_snapshot(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    synthetic = write_synthetic_config(folder, POLICY_ROWS)
    return synthetic, load_snapshot(synthetic.config_file)


def test_roles_text_has_requested_row_count():
    text, _ = build_roles_text(SHIPPED_TEXT, 1_003)

    assert count_policy_rows(text) == 1_003


def test_roles_text_keeps_shipped_rows_first():
    text, _ = build_roles_text(SHIPPED_TEXT, 500)

    assert text.startswith(SHIPPED_TEXT.rstrip("\n"))


def test_roles_text_rejects_fewer_rows_than_shipped():
    with pytest.raises(ValueError, match="more than"):
        build_roles_text(SHIPPED_TEXT, 10)


def test_synthetic_config_loads_every_row(synthetic_snapshot):
    synthetic, snapshot = synthetic_snapshot

    assert len(snapshot.policy.rules) == POLICY_ROWS
    assert synthetic.generated_routes > 0
    assert snapshot.policy.roles == ROLES


def test_synthetic_policy_agrees_with_casbin(synthetic_snapshot):
    _, snapshot = synthetic_snapshot

    assert compare_with_casbin(snapshot.policy, snapshot.config.actions) == []


def test_bench_decision_agrees_with_casbin(synthetic_snapshot):
    _, snapshot = synthetic_snapshot
    users = [(f"u-{number}", role) for number, role in enumerate(user_roles(40))]
    shapes = generate_shapes(list(snapshot.config.routes), 500, seed=3)
    requests = bind_users(shapes, users, seed=3)

    for request in requests:
        expected = snapshot.policy.enforce_reference(
            request.role, request.resource, request.action, request.relation
        )
        assert decide(snapshot.policy, request) == expected, request


def test_generated_routes_match_their_requests(synthetic_snapshot):
    _, snapshot = synthetic_snapshot
    generated = [
        route
        for route in snapshot.config.routes
        if route.resource.startswith(GENERATED_PREFIX)
    ]

    for shape in generate_shapes(generated, 200, seed=5):
        match = snapshot.routes.match(shape.method, shape.segments)
        assert (match.route.resource, match.route.action) == (
            shape.resource,
            shape.action,
        )


def test_bind_users_keeps_shapes_across_user_sets():
    routes = list(load_config(SOURCE_CONFIG).routes)
    shapes = generate_shapes(routes, 300, seed=9)
    few = bind_users(shapes, list(enumerate_users(10)), seed=9)
    many = bind_users(shapes, list(enumerate_users(1_000)), seed=9)

    assert [r.role for r in few] == [r.role for r in many]
    assert [r.relation for r in few] == [r.relation for r in many]
    assert [r.relation for r in few] == [
        "own" if shape.own else "other" for shape in shapes
    ]


def test_user_roles_cover_every_role_first():
    roles = user_roles(50)

    assert len(roles) == 50
    assert tuple(roles[: len(ROLES)]) == ROLES
    assert set(roles) <= set(ROLES)
    assert user_roles(50) == roles


async def test_fill_store_reuses_recorded_users(tmp_path):
    store = SQLiteUserStore(tmp_path / "gateway.db")
    record = tmp_path / "users.json"
    roles = user_roles(6)
    try:
        users, added = await fill_store(store, roles, record)
        again, added_again = await fill_store(store, roles, record)
        stored = await store.get_user(users[-1][0])
    finally:
        await store.close()

    assert added is True
    assert added_again is False
    assert again == users
    assert [role for _, role in users] == roles
    assert stored.role == roles[-1]


def enumerate_users(count):
    return ((f"u-{number}", role) for number, role in enumerate(user_roles(count)))
