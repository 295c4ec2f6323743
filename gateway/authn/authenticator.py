"""Turn a request's credentials into a Principal from the users store.

A request carries exactly one credential: a bearer token, an API key, or,
where the caller allows it, an embed session's cookie or bearer token.
"""

from __future__ import annotations

import dataclasses

import aiohttp
from multidict import CIMultiDictProxy

from gateway.authn.jwt_authenticator import JWTAuthenticator
from gateway.authn.principal import Principal
from gateway.errors import Forbidden, Unauthenticated
from gateway.store import SQLiteEmbedStore, User, UserStore
from gateway.store.embed import TOKEN_PREFIX as EMBED_TOKEN_PREFIX

EMBED_COOKIE = "__Host-gateway-embed"


def cookie_value(headers: CIMultiDictProxy[str], name: str) -> str | None:
    """Return the value of cookie `name` in any Cookie header, or None.

    The gateway's cookies hold URL-safe tokens, which need no quoting, so a
    value is taken as sent.  `http.cookies` is not used: its unquoting takes
    time quadratic in a quoted value's backslashes on Python 3.11.7
    (CVE-2024-7592), and that held the event loop for seconds per request.
    """
    for header in headers.getall("Cookie", []):
        if name not in header:
            continue  # most requests: no need to split the header
        for pair in header.split(";"):
            key, separator, value = pair.partition("=")
            # Only SP and HTAB: "\xa0__Host-..." is another name to a browser,
            # one that any subdomain may set.
            value = value.strip(" \t")
            if separator and key.strip(" \t") == name and value:
                return value

    return None


class Authenticator:
    """Credentials checked with the keys and names of the snapshot in use."""

    def __init__(
        self,
        store: UserStore,
        session: aiohttp.ClientSession,
        embeds: SQLiteEmbedStore | None = None,
    ) -> None:
        self._store = store
        self._session = session
        self._embeds = embeds

    async def authenticate(
        self,
        headers: CIMultiDictProxy[str],
        jwt_authenticator: JWTAuthenticator,
        *,
        api_key_header: str,
        roles: frozenset[str],
        allow_embed: bool = False,
    ) -> Principal:
        """Return the principal of the request's one credential, or raise 401/403.

        With `allow_embed`, an embed session's cookie or bearer token counts
        as a credential too; the caller must then narrow the principal to the
        session (`Principal.embed`).
        """
        authorizations = headers.getall("Authorization", [])
        api_keys = headers.getall(api_key_header, [])
        embed_cookie = None
        if allow_embed and self._embeds is not None:
            embed_cookie = cookie_value(headers, EMBED_COOKIE)
        count = len(authorizations) + len(api_keys) + (embed_cookie is not None)
        if count == 0:
            raise Unauthenticated("Credentials are missing: send a bearer token "
                                  "or an API key.", reason="credentials_missing")
        if count > 1:
            raise Unauthenticated("Send exactly one credential.",
                                  reason="credentials_ambiguous")

        if embed_cookie is not None:
            return await self._embed_principal(embed_cookie, "embed_cookie", roles)

        if api_keys:
            user = await self._store.find_user_by_api_key(api_keys[0].strip())
            if user is None:
                raise Unauthenticated("The API key is invalid or revoked.",
                                      reason="api_key_invalid")
            return self.principal(user, "api_key", roles)

        scheme, _, token = authorizations[0].partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("The Authorization header must be "
                                  "'Bearer <token>'.", reason="credentials_scheme")
        if token.startswith(EMBED_TOKEN_PREFIX) and allow_embed and self._embeds:
            return await self._embed_principal(token, "embed_bearer", roles)

        claims = await jwt_authenticator.verify(token, self._session)
        subject = claims["sub"]
        user = await self._store.get_user(subject) if isinstance(subject, str) else None
        if user is None:
            raise Forbidden("The token's user is not known to the gateway.",
                            reason="user_unknown")
        if user.type != "standard":
            raise Forbidden("Service users authenticate with an API key, not a "
                            "bearer token.", reason="service_user_token")
        return self.principal(user, "jwt", roles, expires_at=claims["exp"])

    def has_credentials(self, headers: CIMultiDictProxy[str], api_key_header: str) -> bool:
        """Return whether the request carries any credential, valid or not."""
        return ("Authorization" in headers or api_key_header in headers
                or cookie_value(headers, EMBED_COOKIE) is not None)

    def origin_may_embed(self, origin: str) -> bool:
        """Return whether some service user allows `origin` to embed its sessions."""
        return self._embeds is not None and self._embeds.origin_allowed(origin)

    async def _embed_principal(self, token: str, credential: str,
                               roles: frozenset[str]) -> Principal:
        session = self._embeds.find(token, "cookie" if credential == "embed_cookie"
                                    else "bearer")
        user = await self._store.get_user(session.user_id) if session else None
        if session is None or user is None or user.type != "service":
            raise Unauthenticated("The embed session has ended or is unknown; "
                                  "open the view from a new embed link.",
                                  reason="embed_session_invalid")

        principal = self.principal(user, credential, roles,
                                   expires_at=session.expires_at)
        return dataclasses.replace(principal, embed=session)

    def principal(self, user: User, credential: str, roles: frozenset[str], *,
                  expires_at: float | None = None) -> Principal:
        """Return the principal of a user whose credential was checked, if it may act."""
        if not user.active:
            raise Forbidden("The user is deactivated.", reason="user_inactive")
        if user.role not in roles:
            raise Forbidden("The user's role is not a configured role.",
                            reason="role_unknown")

        return Principal(user.id, user.role, user.type, credential, expires_at)
