"""Mint JWTs with the gateway's own key, for `gateway token` and the demo."""

from __future__ import annotations

import secrets
import time

import jwt

from gateway.authn.keys import read_hmac_secret, read_pem
from gateway.config.model import JWTConfig
from gateway.errors import ConfigError


class TokenIssuer:
    def __init__(self, config: JWTConfig) -> None:
        self._config = config
        self._algorithm = config.algorithms[0]
        if config.uses_hmac:
            self._key = read_hmac_secret(config, create=True)
        elif config.private_key_file:
            self._key = read_pem(config.private_key_file, "JWT private key")
        else:
            raise ConfigError(
                "authentication.jwt",
                "minting needs a local key: set secret_file, secret_env or "
                "private_key_file",
            )

    def issue(self, user_id: str, *, lifetime: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "iss": self._config.issuer,
            "aud": self._config.audience,
            "iat": now,
            "nbf": now,
            "exp": now + (lifetime or self._config.token_lifetime),
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._key, algorithm=self._algorithm)
