"""UserAdminRules: the policy's user rows, and no role given above the giver's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.api.rules import UserAdminRules
from gateway.authn import Principal
from gateway.authz.policy import load_policy
from gateway.config import load_config
from gateway.errors import Forbidden

REPOSITORY = Path(__file__).resolve().parents[2]
ADMIN = Principal("u-admin", "administrator", "standard", "jwt")


def rules_with(tmp_path: Path, extra_rows: str) -> UserAdminRules:
    folder = tmp_path / "policies"
    shutil.copytree(REPOSITORY / "policies", folder)
    roles_file = folder / "roles.csv"
    roles_file.write_text(roles_file.read_text() + extra_rows)
    config = load_config(REPOSITORY / "config.yaml")
    policy = load_policy(folder / "model.conf", roles_file, roles=config.roles,
                         actions=config.actions)
    return UserAdminRules(policy, config.roles)


def test_role_above_own_is_refused(tmp_path):
    rules = rules_with(tmp_path, "p, administrator, users, create, all\n")

    with pytest.raises(Forbidden) as refused:
        rules.require_giving(ADMIN, "create", "owner")

    assert refused.value.reason == "role_above_own"


def test_own_role_may_be_given(tmp_path):
    rules = rules_with(tmp_path, "")

    rule = rules.require_giving(ADMIN, "create", "administrator")

    assert rule.role == "administrator"


def test_permissions_leave_out_roles_above_own(tmp_path):
    rules = rules_with(tmp_path, "p, administrator, users, create, all\n")

    permissions = rules.permissions(ADMIN)

    assert permissions["users.create"] == ["administrator", "chat_manager",
                                           "chat_operator"]


def test_operator_permissions_are_empty(tmp_path):
    rules = rules_with(tmp_path, "")
    operator = Principal("u-op-1", "chat_operator", "standard", "jwt")

    permissions = rules.permissions(operator)

    # An operator service user may open embed sessions for itself, nothing more.
    assert permissions.pop("embed_sessions.create") == ["chat_operator"]
    assert not any(permissions.values())


def test_denial_names_action_and_resource(tmp_path):
    rules = rules_with(tmp_path, "")
    operator = Principal("u-op-1", "chat_operator", "standard", "jwt")

    with pytest.raises(Forbidden) as refused:
        rules.require_any(operator, "audit", "list")

    assert refused.value.detail == "Role 'chat_operator' may not do list on audit."


def test_denial_for_action_without_verb(tmp_path):
    rules = rules_with(tmp_path, "")
    operator = Principal("u-op-1", "chat_operator", "standard", "jwt")

    with pytest.raises(Forbidden) as refused:
        rules.require(operator, "embed_sessions", "create", "chat_manager")

    assert refused.value.detail == (
        "Role 'chat_operator' may not do create on embed_sessions of users "
        "with role 'chat_manager'."
    )
