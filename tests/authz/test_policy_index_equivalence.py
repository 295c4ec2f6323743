"""The compiled policy index decides exactly as plain Casbin does.

The reference in every test is a fresh `casbin.Enforcer` built from the same
files, independent of the enforcer that `Policy` keeps.
"""

import random
from dataclasses import dataclass
from pathlib import Path

import casbin
import pytest

from gateway.authz.policy import Policy, load_policy
from gateway.authz.reference import RELATIONS, compare_with_casbin, compiled_allows
from gateway.authz.user_admin import USER_RESOURCES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL_FILE = PROJECT_ROOT / "policies" / "model.conf"
ROLES_FILE = PROJECT_ROOT / "policies" / "roles.csv"

RANDOM_POLICIES = 40
REQUESTS_PER_POLICY = 300
# The gateway accepts inheritance chains of at most 9 roles (8 hops), and
# pycasbin 2.8 resolves 9 hops.  A random policy has at most this many roles,
# so every chain it can contain is accepted.
MAX_ROLES = 9


def casbin_disagreements(
    policy: Policy,
    reference: casbin.Enforcer,
    requests: list[tuple[str, str, str, str]],
) -> list[str]:
    """Return every request on which the index and the reference enforcer differ."""
    mismatches = []
    for role, resource, action, relation in requests:
        expected = reference.enforce(role, resource, action, relation)
        actual = compiled_allows(policy, role, resource, action, relation)
        if expected != actual:
            mismatches.append(
                f"{role} {action} {resource} ({relation}): "
                f"Casbin {expected}, index {actual}"
            )

    return mismatches


def relations_of(resource: str, roles) -> tuple[str, ...]:
    """Object relations to ask about: for users and API keys, also every role."""
    if resource in USER_RESOURCES:
        return (*roles, *RELATIONS)
    return RELATIONS


def every_request(roles, actions) -> list[tuple[str, str, str, str]]:
    return [
        (role, resource, action, relation)
        for role in roles
        for resource, action in sorted(actions)
        for relation in relations_of(resource, roles)
    ]


def test_shipped_policy_matches_casbin_everywhere(shipped_config):
    policy = load_policy(
        MODEL_FILE,
        ROLES_FILE,
        roles=shipped_config.roles,
        actions=shipped_config.actions,
    )
    reference = casbin.Enforcer(str(MODEL_FILE), str(ROLES_FILE))
    requests = every_request(shipped_config.roles, shipped_config.actions)

    assert casbin_disagreements(policy, reference, requests) == []


def test_shipped_policy_denies_unknown_names(shipped_config):
    policy = load_policy(
        MODEL_FILE,
        ROLES_FILE,
        roles=shipped_config.roles,
        actions=shipped_config.actions,
    )
    reference = casbin.Enforcer(str(MODEL_FILE), str(ROLES_FILE))
    requests = [
        ("superuser", "chats", "read", "own"),
        ("owner", "payroll", "read", "own"),
        ("owner", "chats", "destroy", "own"),
        ("", "chats", "read", "own"),
        ("u-owner-1", "account", "read", "own"),
    ]

    granted = [request for request in requests if policy.authorize(*request[:3])]

    assert granted == []
    assert casbin_disagreements(policy, reference, requests) == []


def test_compare_with_casbin_passes_shipped_policy(shipped_config):
    policy = load_policy(
        MODEL_FILE,
        ROLES_FILE,
        roles=shipped_config.roles,
        actions=shipped_config.actions,
    )

    assert compare_with_casbin(policy, shipped_config.actions) == []


def test_compare_with_casbin_reports_disagreement(shipped_config):
    loaded = load_policy(
        MODEL_FILE,
        ROLES_FILE,
        roles=shipped_config.roles,
        actions=shipped_config.actions,
    )
    # An index built without the owner's billing row, next to an enforcer
    # that still has it.
    rules = [rule for rule in loaded.rules if rule.resource != "billing"]
    skewed = Policy(
        loaded.enforcer, rules, loaded.inheritance, loaded.roles, loaded.revision
    )

    mismatches = compare_with_casbin(skewed, shipped_config.actions)

    assert mismatches == [
        "owner read billing (own): Casbin allows, index denies",
        "owner read billing (other): Casbin allows, index denies",
    ]


@dataclass(frozen=True)
class Vocabulary:
    roles: tuple[str, ...]
    actions: frozenset[tuple[str, str]]


def synthetic_vocabulary(rng: random.Random) -> Vocabulary:
    roles = tuple(f"role_{i}" for i in range(rng.randint(1, MAX_ROLES)))
    actions = frozenset(
        (f"res_{resource_number}", f"act_{action_number}")
        for resource_number in range(rng.randint(1, 6))
        for action_number in range(rng.randint(1, 4))
    )
    return Vocabulary(roles, actions)


def scopes_of(resource: str, roles) -> tuple[str, ...]:
    if resource in USER_RESOURCES:
        return ("all", *roles)
    return ("all", "own")


def random_roles_csv(rng: random.Random, vocabulary: Vocabulary) -> str:
    """Return a valid roles.csv with random `p` and `g` rows and random layout.

    A role inherits only from roles listed after it, so the rows never form a
    cycle and no chain is longer than the list of roles.
    """
    roles = vocabulary.roles
    edge_probability = rng.choice([0.0, 0.2, 0.5, 0.9])
    inheritance = [
        ("g", roles[i], roles[j])
        for i in range(len(roles))
        for j in range(i + 1, len(roles))
        if rng.random() < edge_probability
    ]

    candidates = [
        ("p", role, resource, action, scope)
        for role in roles
        for resource, action in sorted(vocabulary.actions)
        for scope in scopes_of(resource, roles)
    ]
    permissions = rng.sample(candidates, rng.randint(0, min(80, len(candidates))))

    rows = inheritance + permissions
    rng.shuffle(rows)

    lines = ["# generated policy"]
    for row in rows:
        separator = rng.choice([", ", ",", " , ", ",   "])
        lines.append(
            rng.choice(["", "  "]) + separator.join(row) + rng.choice(["", " "])
        )
        if rng.random() < 0.1:
            lines.append(rng.choice(["", "# a comment, with commas", "   "]))

    line_ending = rng.choice(["\n", "\r\n"])
    return line_ending.join(lines) + line_ending


def random_requests(
    rng: random.Random, vocabulary: Vocabulary, count: int
) -> list[tuple[str, str, str, str]]:
    roles = list(vocabulary.roles) + ["nobody"]
    resources = sorted({resource for resource, _ in vocabulary.actions}) + ["res_none"]
    actions = sorted({action for _, action in vocabulary.actions}) + ["act_none"]
    return [
        (
            rng.choice(roles),
            resource,
            rng.choice(actions),
            rng.choice(relations_of(resource, vocabulary.roles)),
        )
        for resource in rng.choices(resources, k=count)
    ]


@pytest.mark.parametrize("seed", range(RANDOM_POLICIES))
@pytest.mark.parametrize("vocabulary_kind", ["synthetic", "shipped"])
def test_random_policy_matches_casbin(tmp_path, shipped_config, seed, vocabulary_kind):
    rng = random.Random(f"{vocabulary_kind}-{seed}")
    if vocabulary_kind == "synthetic":
        vocabulary = synthetic_vocabulary(rng)
    else:
        vocabulary = Vocabulary(shipped_config.roles, shipped_config.actions)
    roles_file = tmp_path / "roles.csv"
    roles_file.write_text(random_roles_csv(rng, vocabulary), newline="")

    policy = load_policy(
        MODEL_FILE, roles_file, roles=vocabulary.roles, actions=vocabulary.actions
    )
    reference = casbin.Enforcer(str(MODEL_FILE), str(roles_file))
    sampled = random_requests(rng, vocabulary, REQUESTS_PER_POLICY)
    exhaustive = every_request(vocabulary.roles, vocabulary.actions)

    assert casbin_disagreements(policy, reference, sampled) == []
    assert casbin_disagreements(policy, reference, exhaustive) == []


def test_longest_accepted_chain_matches_casbin(tmp_path):
    roles = tuple(f"role_{i}" for i in range(MAX_ROLES))
    actions = frozenset((f"res_{i}", "read") for i in range(MAX_ROLES))
    rows = [f"g, {roles[i]}, {roles[i + 1]}" for i in range(MAX_ROLES - 1)]
    rows += [f"p, {role}, res_{i}, read, own" for i, role in enumerate(roles)]
    roles_file = tmp_path / "roles.csv"
    roles_file.write_text("\n".join(rows) + "\n")

    policy = load_policy(MODEL_FILE, roles_file, roles=roles, actions=actions)
    reference = casbin.Enforcer(str(MODEL_FILE), str(roles_file))

    assert policy.authorize("role_0", f"res_{MAX_ROLES - 1}", "read") is not None
    assert casbin_disagreements(policy, reference, every_request(roles, actions)) == []
