"""The resources and actions of the gateway's own user administration.

Besides users, API keys and the audit trail, `policy explain` lets a role ask
how the policy decides a request for any user.  A service user opens embed
sessions for itself, so `embed_sessions create` is decided on its own role.

These are decided by the same policy files as the proxied routes.  Actions on
`users` and `api_keys` are aimed at one user, and the Casbin request's `rel`
is that user's role, so a `p` row's scope is either `all` or the role of the
users it may act on:

    p, administrator, users, delete, chat_operator

Listing users is filtered the same way: a role gets the users whose role it
may `list`.
"""

from __future__ import annotations

# Resources whose objects are users; their scope is a role name or "all".
USER_RESOURCES = frozenset({"users", "api_keys", "embed_sessions", "embed_origins"})

USER_ADMIN_ACTIONS = frozenset(
    {
        ("users", "list"),
        ("users", "read"),
        ("users", "create"),
        ("users", "update_role"),
        ("users", "deactivate"),
        ("users", "activate"),
        ("users", "delete"),
        ("api_keys", "list"),
        ("api_keys", "create"),
        ("api_keys", "revoke"),
        ("audit", "list"),
        ("policy", "explain"),
        ("embed_sessions", "create"),
        ("embed_sessions", "list"),
        ("embed_sessions", "revoke"),
        ("embed_origins", "read"),
        ("embed_origins", "update"),
    }
)

USER_ADMIN_RESOURCES = frozenset(resource for resource, _ in USER_ADMIN_ACTIONS)
