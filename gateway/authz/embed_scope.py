"""Limits of an embed session: its role's permission and its scope together.

An embed session acts as its service user, narrowed twice.  Only routes
marked `embed` in config.yaml are open to it.  And a session scoped to one
object (a chat, a contact: a resolver name and an id) reaches `api` routes of
that object only.  `view` routes serve the embedded page itself and are open to
every embed session.
"""

from __future__ import annotations

import hmac

from gateway.config.model import RouteConfig
from gateway.errors import Forbidden
from gateway.forward.websocket import is_websocket_upgrade
from gateway.store import EmbedSession

SAFE_METHODS = frozenset({"GET", "HEAD"})
CSRF_HEADER = "X-CSRF-Token"


def check_embed_route(session: EmbedSession, route: RouteConfig,
                      params: dict[str, str]) -> None:
    """Raise Forbidden unless the route is open to the session and within its scope."""
    if route.embed is None:
        raise Forbidden("Embed sessions may not use this route.",
                        reason="embed_route_closed")
    if route.embed == "view" or session.scope_kind is None:
        return

    resolver = route.object
    if resolver is None or resolver.name != session.scope_kind or (
        params.get(route.object_parameter) != session.scope_id
    ):
        raise Forbidden(f"This embed session may use only {session.scope_kind} "
                        f"{session.scope_id!r}.", reason="embed_scope")


def check_embed_origin(session: EmbedSession, credential: str, method: str,
                       headers, own_origin: str) -> None:
    """Refuse a change made with the embed cookie from anywhere but the view.

    The embedded view runs on the gateway's own origin, so its requests carry
    that Origin.  A page of the partner site (or any other) that sends the
    partitioned cookie along carries its own.  The session's CSRF token, which
    only the view can read, is required too.
    """
    # A WebSocket handshake is a GET that opens a two-way channel: from another
    # page, the partitioned cookie would let it read and send in the session.
    upgrade = is_websocket_upgrade(headers)
    if credential != "embed_cookie" or (method in SAFE_METHODS and not upgrade):
        return

    if headers.getall("Origin", []) != [own_origin]:
        raise Forbidden("A change in an embed session must come from the embedded "
                        "view.", reason="csrf_origin")
    if upgrade:
        return  # a browser cannot add headers to a WebSocket handshake
    sent = headers.getall(CSRF_HEADER, [])
    if len(sent) != 1 or not hmac.compare_digest(
        sent[0].encode(), (session.csrf_token or "").encode()
    ):
        raise Forbidden(f"A change in an embed session needs the session's "
                        f"{CSRF_HEADER} header.", reason="csrf_token")
