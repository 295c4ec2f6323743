"""Bearer JWT verification against the configured issuer, audience and keys."""

from __future__ import annotations

import time
from collections import OrderedDict

import aiohttp
import jwt

from gateway.authn.keys import JWKSKeys, read_hmac_secret, read_pem
from gateway.config.model import JWTConfig
from gateway.errors import Unauthenticated

_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# Bounds on remembered tokens.  The time bound also limits how long a token
# signed by a key that a JWKS refresh removed stays accepted.
_CACHE_SECONDS = 60.0
_CACHE_SIZE = 10_000
_DATE_CLAIMS = ("exp", "nbf", "iat")


class JWTAuthenticator:
    def __init__(self, config: JWTConfig, *, create_secret: bool = True) -> None:
        """Load the verification key; without `create_secret`, a missing secret
        file stays missing and every token is rejected."""
        self._config = config
        self._static_key = None
        self._jwks = None
        # token -> (time the entry expires, its claims); oldest entries go first
        self._verified: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        if config.uses_hmac:
            if create_secret or config.secret_env or config.secret_file.exists():
                self._static_key = read_hmac_secret(config, create=create_secret)
        elif config.public_key_file:
            self._static_key = read_pem(config.public_key_file, "JWT public key")
        else:
            self._jwks = JWKSKeys(config)

    async def verify(self, token: str, session: aiohttp.ClientSession) -> dict:
        """Return the token's claims, or raise Unauthenticated.

        A verified token is remembered by its exact text, signature included,
        until its `exp` or for `_CACHE_SECONDS`, whichever comes first: a
        client sends the same token many times, and parsing and checking it
        costs more than the rest of the decision.
        """
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]

        claims = await self._verify(token, session)
        expiry = min(float(claims["exp"]), now + _CACHE_SECONDS)
        if expiry > now:
            self._verified[token] = (expiry, claims)
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    async def _verify(self, token: str, session: aiohttp.ClientSession) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is malformed.",
                                  reason="token_malformed") from None

        # The algorithm list comes from config alone; the token's `alg` only
        # has to be one of them, and PyJWT checks it again below.
        if header.get("alg") not in self._config.algorithms:
            raise Unauthenticated("The token's algorithm is not accepted.",
                                  reason="token_algorithm")

        key = self._static_key
        if self._jwks is not None:
            key = await self._jwks.key_for(header.get("kid"), session)
        if key is None:
            raise Unauthenticated("The token's key id is unknown.",
                                  reason="token_unknown_key")

        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self._config.algorithms),
                audience=self._config.audience,
                issuer=self._config.issuer,
                leeway=self._config.leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired.",
                                  reason="token_expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("The token is not valid yet.",
                                  reason="token_not_yet_valid") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The token is for another audience.",
                                  reason="token_audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("The token is from another issuer.",
                                  reason="token_issuer") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"The token lacks the {error.claim!r} claim.",
                                  reason="token_claims") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The token's signature or format is invalid.",
                                  reason="token_invalid") from None

        _check_numeric_dates(claims)
        return claims


def _check_numeric_dates(claims: dict) -> None:
    # RFC 7519 makes these JSON numbers; PyJWT 2.15 also accepts numeric
    # strings, which other verifiers of the same token may read differently.
    for name in _DATE_CLAIMS:
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Unauthenticated(f"The token's {name!r} claim is not a number.",
                                  reason="token_claims")
