"""Rules of user management: the policy's user rows, plus the role ranking.

The policy decides every operation on the role of the user it is aimed at
(`gateway.authz.user_admin`).  One rule is kept in code on top of it, because
it applies whatever the policy grants: no one gives a role above their own.  So
a service user never outranks the person who created it.
"""

from __future__ import annotations

from gateway.authn import Principal
from gateway.authz.policy import Policy
from gateway.authz.policy_file import PolicyRule
from gateway.authz.user_admin import USER_ADMIN_ACTIONS, USER_RESOURCES
from gateway.errors import Forbidden

# Operations that give the target role to someone.
_GIVING = frozenset({("users", "create"), ("users", "update_role")})
# Wording of each action on users and API keys in a 403 detail.
_VERBS = {
    ("users", "read"): "read users",
    ("users", "create"): "add users",
    ("users", "update_role"): "change the role of users",
    ("users", "deactivate"): "deactivate users",
    ("users", "activate"): "reactivate users",
    ("users", "delete"): "delete users",
    ("api_keys", "list"): "list the API keys of users",
    ("api_keys", "create"): "issue API keys to users",
    ("api_keys", "revoke"): "revoke the API keys of users",
}


class UserAdminRules:
    def __init__(self, policy: Policy, roles: tuple[str, ...]) -> None:
        self._policy = policy
        self._roles = roles  # highest first
        self._rank = {role: rank for rank, role in enumerate(roles)}

    def require(
        self, principal: Principal, resource: str, action: str, target_role: str
    ) -> PolicyRule:
        """Return the row allowing `action` on a user with `target_role`, or raise."""
        rule = self._policy.targets(principal.role, resource, action).get(target_role)
        if rule is None:
            verb = _VERBS.get((resource, action), f"do {action} on {resource} of users")
            raise Forbidden(
                f"Role {principal.role!r} may not {verb} with role {target_role!r}.",
                reason="policy_denied",
            )
        return rule

    def require_giving(self, principal: Principal, action: str, role: str) -> PolicyRule:
        """Like `require` for a role being given, which must not outrank the giver."""
        rule = self._policy.targets(principal.role, "users", action).get(role)
        if rule is None:
            raise Forbidden(f"Role {principal.role!r} may not give the role {role!r}.",
                            reason="policy_denied")
        if not self.may_give(principal, role):
            raise Forbidden(
                f"Role {principal.role!r} may not give the higher role {role!r}.",
                reason="role_above_own",
            )
        return rule

    def require_any(self, principal: Principal, resource: str, action: str) -> dict:
        """Return {target role: row} for an action not aimed at one user, or raise."""
        if resource not in USER_RESOURCES:
            grant = self._policy.authorize(principal.role, resource, action)
            if grant is None:
                raise Forbidden(
                    f"Role {principal.role!r} may not do {action} on {resource}.",
                    reason="policy_denied",
                )
            return {role: grant.rule for role in self._roles}

        targets = self._policy.targets(principal.role, resource, action)
        if not targets:
            raise Forbidden(
                f"Role {principal.role!r} may not do {action} on {resource}.",
                reason="policy_denied",
            )
        return targets

    def may_give(self, principal: Principal, role: str) -> bool:
        return self._rank.get(role, -1) >= self._rank.get(principal.role, len(self._roles))

    def permissions(self, principal: Principal) -> dict[str, bool | list[str]]:
        """Return what the principal may do, in the terms the users page needs."""
        permissions: dict[str, bool | list[str]] = {}
        for resource, action in sorted(USER_ADMIN_ACTIONS):
            name = f"{resource}.{action}"
            if resource not in USER_RESOURCES:
                allowed = self._policy.authorize(principal.role, resource, action)
                permissions[name] = allowed is not None
                continue

            targets = self._policy.targets(principal.role, resource, action)
            roles = [role for role in self._roles if role in targets]
            if (resource, action) in _GIVING:
                roles = [role for role in roles if self.may_give(principal, role)]
            whole_list = resource == "users" and action in ("list", "read")
            permissions[name] = bool(roles) if whole_list else roles

        permissions["users.create_service"] = permissions["users.create"]
        return permissions
