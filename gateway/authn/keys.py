"""Key material for verifying and signing tokens, read from config sources."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from pathlib import Path

import aiohttp
import jwt

from gateway.config.model import JWTConfig
from gateway.errors import ConfigError

log = logging.getLogger("gateway.authn")

# An unknown `kid` may mean the issuer rotated keys; refetch at most this often
# so that tokens with random key ids cannot make the gateway hammer the JWKS URL.
_JWKS_MIN_REFETCH_SECONDS = 30.0


def read_hmac_secret(config: JWTConfig, *, create: bool) -> bytes:
    """Return the HMAC secret; create `secret_file` when it is missing and allowed."""
    if config.secret_env:
        value = os.environ.get(config.secret_env, "")
        if len(value) < 32:
            raise ConfigError(config.secret_env, "environment variable must hold "
                              "an HMAC secret of at least 32 characters")
        return value.encode()

    path = config.secret_file
    if not path.exists() and create:
        _create_secret_file(path)
    try:
        value = path.read_text().strip()
    except OSError as error:
        raise ConfigError(path, f"cannot read JWT secret: {error.strerror}") from None
    if len(value) < 32:
        raise ConfigError(path, "JWT secret must be at least 32 characters")

    return value.encode()


def _create_secret_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # Another process created it first; read theirs.

    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    log.info("created JWT secret file %s", path)


def read_pem(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(path, f"cannot read {what}: {error.strerror}") from None


class JWKSKeys:
    """Public keys from a JWKS URL, fetched in the background and cached."""

    def __init__(self, config: JWTConfig) -> None:
        self._config = config
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_for(self, key_id: str | None, session: aiohttp.ClientSession):
        if key_id is None:
            return None

        age = time.monotonic() - self._fetched_at
        stale = age > self._config.jwks_cache_seconds
        unknown = key_id not in self._keys and age > _JWKS_MIN_REFETCH_SECONDS
        if stale or unknown:
            await self._refresh(session)

        return self._keys.get(key_id)

    async def _refresh(self, session: aiohttp.ClientSession) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < _JWKS_MIN_REFETCH_SECONDS:
                return
            self._fetched_at = time.monotonic()
            try:
                async with session.get(
                    self._config.jwks_url,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    response.raise_for_status()
                    document = await response.json(content_type=None)
                key_set = jwt.PyJWKSet.from_dict(document)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError,
                    jwt.PyJWTError) as error:
                log.warning("JWKS fetch from %s failed, keeping %d cached keys: %s",
                            self._config.jwks_url, len(self._keys), error)
                return

            allowed = set(self._config.algorithms)
            self._keys = {
                key.key_id: key
                for key in key_set.keys
                if key.key_id and key.algorithm_name in allowed
            }
            log.info("loaded %d keys from JWKS %s", len(self._keys),
                     self._config.jwks_url)
