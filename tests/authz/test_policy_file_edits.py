"""A decision follows roles.csv: editing one row changes it with no code change.

Each case loads a full snapshot from a config that points at a copy of the
policy files, edits one row of the copy, loads again and compares.
"""

from pathlib import Path

import pytest

from gateway.config.derive import derive_config
from gateway.snapshot import load_snapshot

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# row removed ("" adds only), row added ("" removes only), the request, and its
# scope before and after the edit (None: denied).
EDITS = [
    pytest.param(
        "p, chat_operator, tags, read, all",
        "",
        ("chat_operator", "tags", "read"),
        "all",
        None,
        id="remove-operator-tag-reading",
    ),
    pytest.param(
        "p, owner, billing, read, all",
        "",
        ("owner", "billing", "read"),
        "all",
        None,
        id="remove-owner-billing",
    ),
    pytest.param(
        "",
        "p, chat_manager, templates, read, all",
        ("chat_manager", "templates", "read"),
        None,
        "all",
        id="add-manager-templates",
    ),
    pytest.param(
        "",
        "p, chat_operator, chats, assign, own",
        ("chat_operator", "chats", "assign"),
        None,
        "own",
        id="add-operator-assign-own",
    ),
    pytest.param(
        "p, chat_operator, chats, read, own",
        "p, chat_operator, chats, read, all",
        ("chat_operator", "chats", "read"),
        "own",
        "all",
        id="widen-operator-chat-reading",
    ),
    pytest.param(
        "p, chat_manager, contacts, delete, all",
        "",
        ("chat_manager", "contacts", "delete"),
        "all",
        "own",
        id="manager-falls-back-to-operator-row",
    ),
    pytest.param(
        "g, administrator, chat_manager",
        "",
        ("administrator", "chats", "assign"),
        "all",
        None,
        id="remove-inheritance",
    ),
    pytest.param(
        "g, owner, administrator",
        "g, owner, chat_manager",
        ("owner", "templates", "read"),
        "all",
        None,
        id="owner-inherits-lower-role",
    ),
]


@pytest.fixture
def config_file(tmp_path: Path, policy_dir: Path) -> Path:
    """Return a copy of config.yaml that reads the policy files in `policy_dir`."""
    return derive_config(
        PROJECT_ROOT / "config.yaml",
        tmp_path / "config.yaml",
        {
            ("policy", "model"): policy_dir / "model.conf",
            ("policy", "roles"): policy_dir / "roles.csv",
            ("store", "sqlite"): tmp_path / "gateway.db",
            ("authentication", "jwt", "secret_file"): tmp_path / "jwt-secret",
        },
    )


def edit_roles(roles_file: Path, removed: str, added: str) -> None:
    lines = roles_file.read_text().splitlines()
    if removed:
        assert lines.count(removed) == 1, f"{removed!r} is not one row of the file"
        lines.remove(removed)
    if added:
        lines.append(added)
    roles_file.write_text("\n".join(lines) + "\n")


def scope_of(snapshot, request: tuple[str, str, str]) -> str | None:
    grant = snapshot.policy.authorize(*request)
    return grant.scope if grant is not None else None


@pytest.mark.parametrize("removed, added, request_, before, after", EDITS)
def test_roles_row_edit_changes_decision(
    config_file, policy_dir, removed, added, request_, before, after
):
    old = load_snapshot(config_file)
    assert scope_of(old, request_) == before

    edit_roles(policy_dir / "roles.csv", removed, added)
    new = load_snapshot(config_file)

    assert scope_of(new, request_) == after
    assert new.policy.revision != old.policy.revision
    assert scope_of(old, request_) == before, "a loaded snapshot changed afterwards"


def test_reloading_unchanged_files_keeps_revision(config_file):
    first = load_snapshot(config_file)
    second = load_snapshot(config_file)

    assert first.policy.revision == second.policy.revision
