"""The caller of the gateway's API: a bearer token, an API key, or a page session.

A session cookie is a credential that the browser attaches by itself.  So a
request that changes state with it must also prove it comes from the
gateway's own page: an Origin header of the gateway's public URL, and the
session's CSRF token in X-CSRF-Token.  With no public URL configured, the
Origin must be the one of the Host the request was sent to.  Bearer tokens and API keys are sent
deliberately and need neither.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from aiohttp import web

from gateway.authn import Authenticator, Principal
from gateway.authn.authenticator import cookie_value
from gateway.errors import Forbidden, Unauthenticated
from gateway.routing.origin import own_origin
from gateway.snapshot import Snapshot
from gateway.store import Session, SQLiteSessionStore, UserStore

SESSION_COOKIE = "__Host-gateway-session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    session: Session | None = None
    session_token: str | None = None


class CallerAuthenticator:
    def __init__(
        self,
        authenticator: Authenticator,
        store: UserStore,
        sessions: SQLiteSessionStore,
    ) -> None:
        self._authenticator = authenticator
        self._store = store
        self._sessions = sessions

    async def authenticate(self, request: web.BaseRequest, snapshot: Snapshot, *,
                           embed: bool = False) -> Caller:
        """Return the caller, or raise 401/403.

        With `embed`, only an embed session's credential is taken; without,
        an embed session's credential is no credential at all.
        """
        if embed:
            principal = await self._authenticator.authenticate(
                request.headers, snapshot.jwt,
                api_key_header=snapshot.config.api_key_header,
                roles=snapshot.roles, allow_embed=True,
            )
            if principal.embed is None:
                raise Forbidden("This endpoint serves embed sessions only.",
                                reason="embed_only")
            return Caller(principal)

        token = _session_cookie(request)
        if token is None:
            principal = await self._authenticate_without_session(request, snapshot)
            return Caller(principal)

        if "Authorization" in request.headers or (
            snapshot.config.api_key_header in request.headers
        ):
            raise Unauthenticated("Send exactly one credential.",
                                  reason="credentials_ambiguous")
        session = self._sessions.find_session(token)
        if session is None:
            raise Unauthenticated("The session has ended; sign in again with a "
                                  "new login link.", reason="session_invalid")

        user = await self._store.get_user(session.user_id)
        if user is None:
            raise Unauthenticated("The session's user no longer exists.",
                                  reason="session_invalid")
        principal = self._authenticator.principal(user, "session", snapshot.roles,
                                                  expires_at=session.expires_at)
        return Caller(principal, session, token)

    async def _authenticate_without_session(
        self, request: web.BaseRequest, snapshot: Snapshot
    ) -> Principal:
        try:
            return await self._authenticator.authenticate(
                request.headers,
                snapshot.jwt,
                api_key_header=snapshot.config.api_key_header,
                roles=snapshot.roles,
            )
        except Unauthenticated as error:
            if error.reason != "credentials_missing":
                raise

            # The authenticator's message serves the proxied routes too, where
            # the page session cookie is not a credential, so it cannot name it.
            raise Unauthenticated(
                "Credentials are missing: send a bearer token, an API key or "
                "the users page's session cookie.",
                reason="credentials_missing",
            ) from None

    def check_same_origin(self, request: web.BaseRequest, snapshot: Snapshot,
                          caller: Caller) -> None:
        """Refuse a change made with the page session from anywhere but the page."""
        if caller.session is not None and request.method not in SAFE_METHODS:
            _check_same_origin(request, snapshot, caller.session)


def _session_cookie(request: web.BaseRequest) -> str | None:
    return cookie_value(request.headers, SESSION_COOKIE)


def check_own_origin(request: web.BaseRequest, snapshot: Snapshot, *,
                     detail: str) -> None:
    """Refuse a request whose Origin header is not the gateway's own origin.

    `detail` is the refusal's text, with `{origin}` for the expected origin.
    """
    expected = own_origin(request.scheme, request.host,
                          snapshot.config.gateway_api.public_url)
    origins = request.headers.getall("Origin", [])
    if origins != [expected]:
        raise Forbidden(detail.format(origin=expected), reason="csrf_origin")


def _check_same_origin(request: web.BaseRequest, snapshot: Snapshot,
                       session: Session) -> None:
    check_own_origin(request, snapshot,
                     detail="A change made with a session must come from {origin}.")

    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise Forbidden(f"A change made with a session needs the session's "
                        f"{CSRF_HEADER} header.", reason="csrf_token")
