"""Warnings about config and policy files that load but do not do what they seem.

`gateway check` prints them after the files pass validation: routes that no
role may use, route templates that another route's literal segment takes a
value from, "own" grants on routes that have no way to learn ownership, and
rows that let a role other than the highest change users of the highest role.
"""

from __future__ import annotations

from pathlib import Path

from gateway.authz.user_admin import USER_ADMIN_ACTIONS, USER_RESOURCES
from gateway.config.model import RouteConfig
from gateway.snapshot import Snapshot


def find_problems(snapshot: Snapshot) -> list[str]:
    routes = snapshot.config.routes
    return [
        *_routes_no_role_may_use(snapshot, routes),
        *_shadowed_parameters(snapshot, routes),
        *_unverifiable_own_grants(snapshot, routes),
        *_non_owners_changing_owners(snapshot),
    ]


def _where(snapshot: Snapshot, route: RouteConfig) -> str:
    return f"{snapshot.config.file}:{route.line}: routes[{route.index}]"


def _routes_no_role_may_use(snapshot, routes) -> list[str]:
    policy = snapshot.policy
    return [
        f"{_where(snapshot, route)}: no role may {route.action} {route.resource}, "
        f"so {route.name} always gets 403"
        for route in routes
        if all(policy.authorize(role, route.resource, route.action) is None
               for role in policy.roles)
    ]


def _shadowed_parameters(snapshot, routes) -> list[str]:
    found = []
    for route in routes:
        for other in routes:
            taken = _literal_taken(route, other)
            if taken is not None and set(route.methods) & set(other.methods):
                found.append(
                    f"{_where(snapshot, route)}: {route.path.text} never sees "
                    f"{taken!r} as {{{_parameter_at(route, other)}}}: "
                    f"routes[{other.index}] {other.path.text} takes that path"
                )

    return found


def _literal_taken(route: RouteConfig, other: RouteConfig) -> str | None:
    """Return the literal of `other` that wins over a parameter of `route`."""
    mine, theirs = route.path.segments, other.path.segments
    if route is other or len(mine) != len(theirs):
        return None

    taken = None
    for segment, rival in zip(mine, theirs):
        if segment.is_parameter and not rival.is_parameter:
            if not rival.text:
                return None  # a parameter never matches the empty segment anyway
            taken = taken or rival.text
        elif segment.is_parameter != rival.is_parameter or (
            not segment.is_parameter and segment.text != rival.text
        ):
            return None

    return taken


def _parameter_at(route: RouteConfig, other: RouteConfig) -> str:
    for segment, rival in zip(route.path.segments, other.path.segments):
        if segment.is_parameter and not rival.is_parameter:
            return segment.text
    return ""


def _unverifiable_own_grants(snapshot, routes) -> list[str]:
    found = []
    for route in routes:
        if route.object is not None or route.filter is not None:
            continue
        for rule in snapshot.policy.rules:
            if (rule.resource, rule.action, rule.scope) == (
                route.resource, route.action, "own"
            ):
                found.append(
                    f"{Path(rule.file)}:{rule.line}: the 'own' grant of {rule.role} "
                    f"cannot be checked on {route.name}, which has no object or "
                    "filter, so it always gets 403"
                )

    return found


# Operations that change a user or its keys; reading and listing do not.
_CHANGES = sorted(
    (resource, action)
    for resource, action in USER_ADMIN_ACTIONS
    if resource in USER_RESOURCES and action not in ("list", "read")
)


def _non_owners_changing_owners(snapshot) -> list[str]:
    policy = snapshot.policy
    owner = snapshot.config.roles[0]
    found = []
    for role in snapshot.config.roles[1:]:
        for resource, action in _CHANGES:
            rule = policy.targets(role, resource, action).get(owner)
            if rule is not None:
                targets = "users" if resource == "users" else "API keys of users"
                found.append(
                    f"{Path(rule.file)}:{rule.line}: {role} may {action} {targets} "
                    f"with role {owner}; only the {owner} role should change "
                    f"{owner}s"
                )

    return found
