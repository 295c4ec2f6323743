"""Turn a request's credentials into a Principal from the users store."""

from __future__ import annotations

import aiohttp
from multidict import CIMultiDictProxy

from gateway.authn.jwt_authenticator import JWTAuthenticator
from gateway.authn.principal import Principal
from gateway.errors import Forbidden, Unauthenticated
from gateway.store import User, UserStore


class Authenticator:
    """Credentials checked with the keys and names of the snapshot in use."""

    def __init__(self, store: UserStore, session: aiohttp.ClientSession) -> None:
        self._store = store
        self._session = session

    async def authenticate(
        self,
        headers: CIMultiDictProxy[str],
        jwt_authenticator: JWTAuthenticator,
        *,
        api_key_header: str,
        roles: frozenset[str],
    ) -> Principal:
        authorizations = headers.getall("Authorization", [])
        api_keys = headers.getall(api_key_header, [])
        if len(authorizations) + len(api_keys) == 0:
            raise Unauthenticated("Credentials are missing: send a bearer token "
                                  "or an API key.", reason="credentials_missing")
        if len(authorizations) + len(api_keys) > 1:
            raise Unauthenticated("Send exactly one credential.",
                                  reason="credentials_ambiguous")

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

    def principal(self, user: User, credential: str, roles: frozenset[str], *,
                  expires_at: float | None = None) -> Principal:
        """The principal of a user whose credential was checked, if it may act."""
        if not user.active:
            raise Forbidden("The user is deactivated.", reason="user_inactive")
        if user.role not in roles:
            raise Forbidden("The user's role is not a configured role.",
                            reason="role_unknown")

        return Principal(user.id, user.role, user.type, credential, expires_at)
