"""Decide a request offline, from the config and policy files, as the gateway would.

The steps and their order follow `Gateway._authorize` and `apply_scope` in
the running gateway: parse the target, match a route, check the subject's
role, look up the policy, then confine an "own" grant.  The upstream is never
asked who owns an object, so the caller passes the object (`obj`), or the
decision stays "needs_object" when an "own" grant depends on it.

Not modelled here: the Host header, credentials and request bodies beyond
the set of top-level fields they set (`fields`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from gateway.authz.fields import authorize_fields
from gateway.authz.ownership import is_own, owners_of
from gateway.authz.policy import Policy, load_policy
from gateway.authz.scope import force_filter
from gateway.config import load_config
from gateway.config.model import Config
from gateway.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    GatewayError,
    NotFound,
)
from gateway.routing.guards import reject_overrides_and_url_credentials
from gateway.routing.table import RouteConflict, RouteTable
from gateway.routing.target import parse_target

class ObjectError(ValueError):
    """The given object lacks the owner field that the route's resolver reads."""


ALLOW = "allow"
DENY = "deny"
# An "own" grant on an object route when the object's owners were not given.
NEEDS_OBJECT = "needs_object"


@dataclass(frozen=True)
class Subject:
    """The sender of a request: a role, and the user id that "own" scopes compare.

    `refusal` is the reason id of an authentication failure (an unknown or
    inactive user), which the gateway reports only after routing.
    """

    role: str
    user_id: str | None = None
    refusal: str | None = None


@dataclass
class Decision:
    """The gateway's decision on one request, with the facts that led to it."""

    decision: str
    reason: str
    status: int | None
    method: str
    target: str
    role: str
    user_id: str | None = None
    route: str | None = None
    resource: str | None = None
    action: str | None = None
    policy_line: str | None = None
    role_chain: tuple[str, ...] = ()
    scope: str | None = None
    # "own", "other", "needs the object", or None when no object is checked.
    object_check: str | None = None
    # The forced filter parameter of a list route: name -> value or values.
    filter: dict[str, str | list[str]] | None = None
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW

    def to_dict(self) -> dict:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "status": self.status,
            "request": f"{self.method} {self.target}",
            "role": self.role,
            "user": self.user_id,
            "route": self.route,
            "resource": self.resource,
            "action": self.action,
            "policy_line": self.policy_line,
            "role_chain": list(self.role_chain),
            "scope": self.scope,
            "object_check": self.object_check,
            "filter": self.filter,
            "detail": self.detail,
        }


class OfflineDecider:
    """The gateway's decision steps over one config and one policy tree."""

    def __init__(self, config: Config, policy: Policy,
                 routes: RouteTable | None = None) -> None:
        self.config = config
        self.policy = policy
        self.routes = routes if routes is not None else build_routes(config)

    def decide(
        self,
        subject: Subject,
        method: str,
        target: str,
        *,
        obj: Mapping | None = None,
        fields: frozenset[str] = frozenset(),
    ) -> Decision:
        """Decide `method target` for `subject`.

        `obj` is the object as the upstream returns it, or at least its owner
        field (`{"assignee": null}` for an unassigned chat); None means unknown.
        Raises ObjectError when `obj` lacks the resolver's owner field.
        """
        decision = Decision(DENY, "", None, method, target, subject.role,
                            subject.user_id)
        try:
            self._decide(decision, subject, obj, fields)
        except GatewayError as error:
            decision.decision = DENY
            decision.reason = error.reason
            decision.status = error.status
            decision.detail = error.detail

        return decision

    def _decide(self, decision: Decision, subject: Subject, obj,
                fields: frozenset[str]) -> None:
        if not decision.method.isupper():
            # llhttp, aiohttp's C parser, rejects the request line of "get".
            raise BadRequest(f"Methods are case-sensitive: the gateway rejects "
                             f"{decision.method!r}; use {decision.method.upper()!r}.",
                             reason="method_invalid")
        parsed = parse_target(decision.target, self.config.forwarding.max_path_bytes)
        reject_overrides_and_url_credentials({}, parsed.query_string)

        match = self.routes.match(decision.method, parsed.segments)
        route = match.route
        decision.route = f"{decision.method} {route.path.text}"
        decision.resource = route.resource
        decision.action = route.action

        if subject.refusal is not None:
            raise Forbidden("The user cannot be authenticated.",
                            reason=subject.refusal)
        if subject.role not in self.policy.roles:
            raise Forbidden(f"Role {subject.role!r} is not configured.",
                            reason="role_unknown")

        grant = self.policy.authorize(subject.role, route.resource, route.action)
        if grant is None:
            decision.role_chain = (subject.role,)
            raise Forbidden(
                f"Role {subject.role!r} may not do {route.action} on {route.resource}.",
                reason="policy_denied",
            )
        decision.policy_line = grant.rule.location()
        decision.role_chain = role_chain(self.policy, subject.role, grant.rule.role)

        scope = grant.scope
        field_grants = authorize_fields(self.policy, subject.role, route, fields)
        if any(field_grant.scope == "own" for field_grant in field_grants):
            scope = "own"
        decision.scope = scope

        if scope == "own":
            self._confine(decision, route, subject, obj)
        if decision.decision != NEEDS_OBJECT:
            decision.decision = ALLOW
            decision.reason = "allowed"

    def _confine(self, decision: Decision, route, subject: Subject, obj) -> None:
        if route.object is not None:
            if obj is None:
                decision.object_check = "needs the object"
                decision.decision = NEEDS_OBJECT
                decision.reason = "object_needed"
                decision.detail = (
                    f"The grant is limited to own objects; give the object's "
                    f"{route.object.owners_field!r} field to decide."
                )
                return

            owners = _owners(obj, route.object.owners_field)
            user_id = _user_id(subject)
            unassigned_visible = route.object.unassigned_value is not None
            if not is_own(owners, user_id, unassigned_visible):
                decision.object_check = "other"
                raise NotFound("The object does not exist or is not yours.",
                               reason="object_not_own")
            decision.object_check = "own"
            return

        if route.filter is not None:
            query = force_filter(decision.target.partition("?")[2], route.filter,
                                 _user_id(subject))
            decision.filter = forced_filter_values(query, route.filter.param)
            return

        raise Forbidden("This route cannot be limited to your own objects.",
                        reason="scope_unverifiable")




def load_decider(config_file: str | os.PathLike) -> OfflineDecider:
    """Load the config and its policy files into a decider, or raise ConfigError."""
    config = load_config(config_file)
    policy = load_policy(config.model_path, config.roles_path,
                         roles=config.roles, actions=config.actions)
    return OfflineDecider(config, policy)


def load_policy_tree(config: Config, folder: Path) -> Policy:
    """Load `folder`/model.conf and `folder`/roles.csv with the config's names."""
    return load_policy(folder / "model.conf", folder / "roles.csv",
                       roles=config.roles, actions=config.actions)


def build_routes(config: Config) -> RouteTable:
    try:
        return RouteTable(config.routes)
    except RouteConflict as error:
        raise ConfigError(config.file, str(error), line=error.route.line,
                          key=f"routes[{error.route.index}]") from None


def role_chain(policy: Policy, role: str, granting_role: str) -> tuple[str, ...]:
    """Return the inheritance path from `role` to the role whose row grants.

    The path follows the `g` rows breadth first, so it is a shortest one when
    several exist.
    """
    parents: dict[str, list[str]] = {}
    for row in policy.inheritance:
        parents.setdefault(row.role, []).append(row.parent)

    paths = [(role,)]
    seen = {role}
    while paths:
        path = paths.pop(0)
        if path[-1] == granting_role:
            return path
        for parent in parents.get(path[-1], ()):
            if parent not in seen:
                seen.add(parent)
                paths.append(path + (parent,))

    # Casbin's role manager found a link that the rows do not show directly.
    return (role, granting_role)


def forced_filter_values(query: str, param: str) -> dict[str, str | list[str]]:
    """Return the values of the forced filter `param` in `query`."""
    values = [value for key, value in parse_qsl(query, keep_blank_values=True)
              if key == param]
    return {param: values[0] if len(values) == 1 else values}


def _user_id(subject: Subject) -> str:
    if subject.user_id is None:
        raise Forbidden("The grant is limited to own objects, which needs a user id.",
                        reason="user_needed")
    return subject.user_id


def _owners(obj: Mapping, owners_field: str) -> frozenset[str]:
    if owners_field not in obj:
        raise ObjectError(f"the object has no {owners_field!r} field, which the "
                          f"route's resolver reads as its owners")
    try:
        return owners_of(obj[owners_field])
    except ValueError:
        raise ObjectError(f"the object's {owners_field!r} must be null, one user id "
                          f"or a list of user ids, not {obj[owners_field]!r}") from None
