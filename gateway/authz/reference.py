"""Plain Casbin as the reference for the compiled policy index.

`Policy.authorize` decides from an index, `casbin.Enforcer.enforce` from the
files.  Both must agree on every role, resource, action and object
relation, and `gateway check` and the tests ask both.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.authz.policy import Policy
from gateway.authz.user_admin import USER_RESOURCES

RELATIONS = ("own", "other")


def compiled_allows(policy: Policy, role: str, resource: str, action: str,
                    relation: str) -> bool:
    """Return the index's decision in the terms of the Casbin request."""
    if resource in USER_RESOURCES:
        targets = policy.targets(role, resource, action)
        covers_all = any(rule.scope == "all" for rule in targets.values())
        return covers_all or relation in targets

    grant = policy.authorize(role, resource, action)
    if grant is None:
        return False

    return grant.scope == "all" or relation == "own"


def compare_with_casbin(
    policy: Policy,
    actions: Iterable[tuple[str, str]],
    *,
    roles: Iterable[str] | None = None,
) -> list[str]:
    """Return every request on which the index and Casbin disagree."""
    mismatches = []
    for role in roles if roles is not None else policy.roles:
        for resource, action in sorted(actions):
            relations = policy.roles if resource in USER_RESOURCES else RELATIONS
            for relation in relations:
                expected = policy.enforce_reference(role, resource, action, relation)
                actual = compiled_allows(policy, role, resource, action, relation)
                if expected != actual:
                    mismatches.append(
                        f"{role} {action} {resource} ({relation}): Casbin "
                        f"{'allows' if expected else 'denies'}, index "
                        f"{'allows' if actual else 'denies'}"
                    )

    return mismatches
