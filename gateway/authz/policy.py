"""The policy snapshot: Casbin's reading of the files, compiled into an index.

Plain `casbin.Enforcer.enforce` parses its matcher again on every call and
scans policy rows one by one, which costs more than forwarding a request.
`Policy` asks Casbin's role manager for the role closure once, at load time,
and indexes the `p` rows by (role, resource, action).  A lookup then gives the
same answer as `enforce(role, resource, action, rel)` for the supported model;
tests/authz compare the two on generated requests.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from pathlib import Path

import casbin
from casbin.model import Model
from casbin.persist.adapters import FileAdapter

from gateway.authz.policy_file import (
    InheritanceRule,
    PolicyRule,
    read_model,
    read_roles,
)
from gateway.authz.revision import policy_revision
from gateway.authz.user_admin import USER_RESOURCES
from gateway.errors import ConfigError


@dataclass(frozen=True)
class Grant:
    """The widest permission a role has for one action: its scope and its row."""

    scope: str
    rule: PolicyRule


class Policy:
    def __init__(
        self,
        enforcer: casbin.Enforcer,
        rules: list[PolicyRule],
        inheritance: list[InheritanceRule],
        roles: tuple[str, ...],
        revision: str,
    ) -> None:
        self.enforcer = enforcer
        self.rules = rules
        self.inheritance = inheritance
        self.roles = roles
        self.revision = revision
        self.inherited = _role_closure(enforcer, roles)
        self._index = _index_grants(rules, self.inherited)
        self._targets = _index_targets(rules, self.inherited, roles)

    def authorize(self, role: str, resource: str, action: str) -> Grant | None:
        """Return the widest grant of `role` for `action` on `resource`, or None."""
        return self._index.get((role, resource, action))

    def targets(self, role: str, resource: str, action: str) -> dict[str, PolicyRule]:
        """For users and API keys: the target roles `role` may act on, with their rows.

        Casbin's request is (role, resource, action, target's role); a row
        with scope "all" covers every target role.
        """
        return self._targets.get((role, resource, action), {})

    def enforce_reference(self, role: str, resource: str, action: str, rel: str) -> bool:
        """Ask plain Casbin; slow, kept for tests and `gateway check`."""
        return self.enforcer.enforce(role, resource, action, rel)


def load_policy(
    model_file: Path,
    roles_file: Path,
    *,
    roles: tuple[str, ...],
    actions: frozenset[tuple[str, str]],
) -> Policy:
    """Validate both files, load them into Casbin and compile the index."""
    read_model(model_file)
    rules, inheritance = read_roles(roles_file, roles=roles, actions=actions)

    try:
        enforcer = _load_enforcer(model_file, roles_file)
    except Exception as error:  # Casbin raises bare Exceptions on bad input.
        raise ConfigError(model_file, f"Casbin cannot load the policy: {error}") \
            from error

    _check_casbin_agrees(roles_file, enforcer, rules, inheritance)
    # Casbin links each role to its parent and the parent back to it, so the
    # roles of a dropped enforcer are reference cycles.  Reloads freeze the
    # snapshots (gateway/reload.py) and the collector never frees frozen
    # cycles, so the links are cut once the enforcer is freed.
    weakref.finalize(enforcer, _unlink_roles, enforcer.get_role_manager(),
                     [(rule.role, rule.parent) for rule in inheritance])
    revision = policy_revision(model_file, roles_file)
    return Policy(enforcer, rules, inheritance, roles, revision)


def _load_enforcer(model_file: Path, roles_file: Path) -> casbin.Enforcer:
    model = _QuietModel()
    model.load_model(str(model_file))
    return casbin.Enforcer(model, FileAdapter(str(roles_file)))


def _unlink_roles(role_manager, links: list[tuple[str, str]]) -> None:
    for role, parent in links:
        role_manager.delete_link(role, parent)


class _QuietModel(Model):
    """Casbin's model, minus the policy dump that nothing logs.

    pycasbin 2.8's `Enforcer.load_policy` calls `print_policy`, which formats
    every row into one string even though the Enforcer has disabled its
    logger.  With the 10,000 rows of bench/reload_memory.py, that one C call
    held the GIL for 5 ms, and for 26 ms the first time in a process, while a
    reload built its snapshot in a thread.
    """

    def print_policy(self) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            super().print_policy()


def _check_casbin_agrees(roles_file, enforcer, rules, inheritance) -> None:
    # The strict reader and Casbin's adapter must see the same rows; if they
    # ever differ, the index would decide on rows Casbin does not have.
    expected_p = [rule.fields() for rule in rules]
    expected_g = [[rule.role, rule.parent] for rule in inheritance]
    if enforcer.get_policy() != expected_p or enforcer.get_grouping_policy() != expected_g:
        raise ConfigError(roles_file, "Casbin read this file differently from the "
                          "gateway's parser; simplify the rows")


def _role_closure(enforcer: casbin.Enforcer, roles: tuple[str, ...]) -> dict:
    role_manager = enforcer.get_role_manager()
    return {
        role: frozenset(other for other in roles if role_manager.has_link(role, other))
        for role in roles
    }


def _index_grants(rules: list[PolicyRule], inherited: dict) -> dict:
    index: dict[tuple[str, str, str], Grant] = {}
    for role, granted_roles in inherited.items():
        for rule in rules:
            if rule.role not in granted_roles:
                continue
            key = (role, rule.resource, rule.action)
            current = index.get(key)
            if current is None or (current.scope == "own" and rule.scope == "all"):
                index[key] = Grant(rule.scope, rule)

    return index


def _index_targets(rules: list[PolicyRule], inherited: dict, roles) -> dict:
    index: dict[tuple[str, str, str], dict[str, PolicyRule]] = {}
    # Rows of scope "all" first, so that they are the ones reported.
    ordered = sorted(rules, key=lambda rule: rule.scope != "all")
    for role, granted_roles in inherited.items():
        for rule in ordered:
            if rule.resource not in USER_RESOURCES or rule.role not in granted_roles:
                continue
            covered = roles if rule.scope == "all" else (rule.scope,)
            targets = index.setdefault((role, rule.resource, rule.action), {})
            for target in covered:
                targets.setdefault(target, rule)

    return index
