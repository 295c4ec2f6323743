"""The shipped roles.csv grants what the product promises each role.

Roles rank owner > administrator > chat_manager > chat_operator.

- owner: everything, the account and billing included.
- administrator: everything except the account and billing.
- chat_manager: chats, messages, contacts, lists, tags and dashboards, with
  "all" scope, including assigning and unassigning chats and adding and
  removing a contact's operators.  No templates, campaigns, automations,
  integrations, account or billing.
- chat_operator: chats, messages and contacts with "own" scope only.  Lists
  and tags are read-only (list, read).  Tagging and untagging own contacts is
  allowed, and dashboards have "own" scope.  No assign or unassign, no adding
  or removing operators, no creating contacts, no sending by phone number.
"""

from itertools import pairwise
from pathlib import Path

import pytest

from gateway.authz.policy import load_policy

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ROLES = ("owner", "administrator", "chat_manager", "chat_operator")
ALL = "all"
OWN = "own"
DENY = None

# resource, action, then the scope each role gets, in the order of ROLES.
# DENY means no grant at all.
PERMISSIONS = [
    ("chats", "list", ALL, ALL, ALL, OWN),
    ("chats", "read", ALL, ALL, ALL, OWN),
    ("chats", "update", ALL, ALL, ALL, OWN),
    ("chats", "assign", ALL, ALL, ALL, DENY),
    ("chats", "unassign", ALL, ALL, ALL, DENY),
    ("messages", "list", ALL, ALL, ALL, OWN),
    ("messages", "create", ALL, ALL, ALL, OWN),
    ("messages", "send_by_phone", ALL, ALL, ALL, DENY),
    ("contacts", "list", ALL, ALL, ALL, OWN),
    ("contacts", "read", ALL, ALL, ALL, OWN),
    ("contacts", "create", ALL, ALL, ALL, DENY),
    ("contacts", "update", ALL, ALL, ALL, OWN),
    ("contacts", "delete", ALL, ALL, ALL, OWN),
    ("contacts", "tag", ALL, ALL, ALL, OWN),
    ("contacts", "untag", ALL, ALL, ALL, OWN),
    ("contacts", "add_operator", ALL, ALL, ALL, DENY),
    ("contacts", "remove_operator", ALL, ALL, ALL, DENY),
    ("lists", "list", ALL, ALL, ALL, ALL),
    ("lists", "read", ALL, ALL, ALL, ALL),
    ("lists", "create", ALL, ALL, ALL, DENY),
    ("lists", "update", ALL, ALL, ALL, DENY),
    ("lists", "delete", ALL, ALL, ALL, DENY),
    ("lists", "add_member", ALL, ALL, ALL, DENY),
    ("tags", "list", ALL, ALL, ALL, ALL),
    ("tags", "read", ALL, ALL, ALL, ALL),
    ("tags", "create", ALL, ALL, ALL, DENY),
    ("tags", "update", ALL, ALL, ALL, DENY),
    ("tags", "delete", ALL, ALL, ALL, DENY),
    ("dashboards", "read", ALL, ALL, ALL, OWN),
    ("templates", "list", ALL, ALL, DENY, DENY),
    ("templates", "read", ALL, ALL, DENY, DENY),
    ("templates", "create", ALL, ALL, DENY, DENY),
    ("templates", "update", ALL, ALL, DENY, DENY),
    ("templates", "delete", ALL, ALL, DENY, DENY),
    ("campaigns", "list", ALL, ALL, DENY, DENY),
    ("campaigns", "read", ALL, ALL, DENY, DENY),
    ("campaigns", "create", ALL, ALL, DENY, DENY),
    ("campaigns", "update", ALL, ALL, DENY, DENY),
    ("campaigns", "delete", ALL, ALL, DENY, DENY),
    ("automations", "list", ALL, ALL, DENY, DENY),
    ("automations", "read", ALL, ALL, DENY, DENY),
    ("automations", "create", ALL, ALL, DENY, DENY),
    ("automations", "update", ALL, ALL, DENY, DENY),
    ("automations", "delete", ALL, ALL, DENY, DENY),
    ("integrations", "list", ALL, ALL, DENY, DENY),
    ("integrations", "read", ALL, ALL, DENY, DENY),
    ("integrations", "create", ALL, ALL, DENY, DENY),
    ("integrations", "update", ALL, ALL, DENY, DENY),
    ("integrations", "delete", ALL, ALL, DENY, DENY),
    ("account", "read", ALL, DENY, DENY, DENY),
    ("account", "update", ALL, DENY, DENY, DENY),
    ("billing", "read", ALL, DENY, DENY, DENY),
    ("app", "read", ALL, ALL, ALL, ALL),
]

CASES = [
    pytest.param(
        role,
        resource,
        action,
        scopes[position],
        id=f"{role}-{action}-{resource}-{scopes[position] or 'deny'}",
    )
    for resource, action, *scopes in PERMISSIONS
    for position, role in enumerate(ROLES)
]


@pytest.fixture(scope="module")
def policy(shipped_config):
    return load_policy(
        shipped_config.model_path,
        shipped_config.roles_path,
        roles=shipped_config.roles,
        actions=shipped_config.actions,
    )


def test_table_covers_every_routed_action(shipped_config):
    listed = [(resource, action) for resource, action, *_ in PERMISSIONS]

    assert len(listed) == len(set(listed)), "a (resource, action) is listed twice"
    assert set(listed) == set(shipped_config.routed_actions)


def test_config_ranks_roles_highest_first(shipped_config):
    assert shipped_config.roles == ROLES


@pytest.mark.parametrize("role, resource, action, scope", CASES)
def test_shipped_policy_grants_product_scope(policy, role, resource, action, scope):
    grant = policy.authorize(role, resource, action)
    granted_scope = grant.scope if grant is not None else DENY

    assert granted_scope == scope
    assert policy.enforce_reference(role, resource, action, "own") == (
        scope is not DENY
    )
    assert policy.enforce_reference(role, resource, action, "other") == (scope == ALL)


@pytest.mark.parametrize("higher, lower", list(pairwise(ROLES)), ids=lambda role: role)
def test_higher_role_keeps_lower_permissions(policy, shipped_config, higher, lower):
    rank = {DENY: 0, OWN: 1, ALL: 2}
    narrower = []
    for resource, action in sorted(shipped_config.routed_actions):
        higher_grant = policy.authorize(higher, resource, action)
        lower_grant = policy.authorize(lower, resource, action)
        higher_scope = higher_grant.scope if higher_grant else DENY
        lower_scope = lower_grant.scope if lower_grant else DENY
        if rank[higher_scope] < rank[lower_scope]:
            narrower.append(f"{action} {resource}: {higher_scope} < {lower_scope}")

    assert narrower == []


def test_roles_inherit_down_the_ranking(policy):
    assert policy.inherited == {
        "owner": frozenset(ROLES),
        "administrator": frozenset(ROLES[1:]),
        "chat_manager": frozenset(ROLES[2:]),
        "chat_operator": frozenset(ROLES[3:]),
    }


def test_grant_names_its_roles_csv_row(policy):
    grant = policy.authorize("chat_operator", "chats", "read")
    row_number = grant.rule.line
    row = Path(grant.rule.file).read_text().splitlines()[row_number - 1]

    assert grant.rule.location() == f"roles.csv:{row_number}"
    assert row == "p, chat_operator, chats, read, own"
