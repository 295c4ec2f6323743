"""JWKS keys: fetched from a real HTTP server on loopback, cached, never per request."""

from __future__ import annotations

import json
import time

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.authn.jwt_authenticator import JWTAuthenticator
from gateway.config.model import JWTConfig
from gateway.errors import Unauthenticated

ISSUER = "https://issuer.test"
AUDIENCE = "chat-api"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key, key_id: str, algorithm: str = "RS256") -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    return jwk | {"kid": key_id, "alg": algorithm, "use": "sig"}


def sign(private_key, key_id: str, **claims) -> str:
    now = int(time.time())
    payload = {"sub": "u-1", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60} | claims
    return jwt.encode(payload, private_key, algorithm="RS256",
                      headers={"kid": key_id})


@pytest.fixture
async def jwks_server(aiohttp_server):
    """Serve a JWKS document that the test can change, and count its fetches."""
    state = {"keys": [], "fetches": 0}

    async def jwks(request: web.Request) -> web.Response:
        state["fetches"] += 1
        return web.json_response({"keys": state["keys"]})

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    server = await aiohttp_server(app, host="127.0.0.1")
    state["url"] = str(server.make_url("/jwks.json"))
    return state


def authenticator_for(url: str) -> JWTAuthenticator:
    return JWTAuthenticator(
        JWTConfig(
            issuer=ISSUER,
            audience=AUDIENCE,
            algorithms=("RS256",),
            secret_file=None,
            secret_env=None,
            public_key_file=None,
            private_key_file=None,
            jwks_url=url,
            jwks_cache_seconds=300,
            leeway=0,
            token_lifetime=3600,
        )
    )


async def test_jwks_key_verifies_token(jwks_server):
    key = rsa_key()
    jwks_server["keys"] = [public_jwk(key, "k1")]
    authenticator = authenticator_for(jwks_server["url"])

    async with aiohttp.ClientSession() as session:
        claims = await authenticator.verify(sign(key, "k1"), session)

    assert claims["sub"] == "u-1"


async def test_jwks_fetched_once_for_many_requests(jwks_server):
    key = rsa_key()
    jwks_server["keys"] = [public_jwk(key, "k1")]
    authenticator = authenticator_for(jwks_server["url"])

    async with aiohttp.ClientSession() as session:
        for _ in range(5):
            await authenticator.verify(sign(key, "k1"), session)

    assert jwks_server["fetches"] == 1


async def test_jwks_unknown_key_id_rejected(jwks_server):
    key = rsa_key()
    jwks_server["keys"] = [public_jwk(key, "k1")]
    authenticator = authenticator_for(jwks_server["url"])

    async with aiohttp.ClientSession() as session:
        await authenticator.verify(sign(key, "k1"), session)
        with pytest.raises(Unauthenticated) as raised:
            await authenticator.verify(sign(key, "k-random"), session)

    assert raised.value.reason == "token_unknown_key"
    assert jwks_server["fetches"] == 1, "an unknown kid refetches at most every 30 s"


async def test_jwks_key_of_other_algorithm_ignored(jwks_server):
    key = rsa_key()
    jwks_server["keys"] = [public_jwk(key, "k1", algorithm="RS512")]
    authenticator = authenticator_for(jwks_server["url"])

    async with aiohttp.ClientSession() as session:
        with pytest.raises(Unauthenticated) as raised:
            await authenticator.verify(sign(key, "k1"), session)

    assert raised.value.reason == "token_unknown_key"


async def test_jwks_token_signed_by_other_key_rejected(jwks_server):
    published, forged = rsa_key(), rsa_key()
    jwks_server["keys"] = [public_jwk(published, "k1")]
    authenticator = authenticator_for(jwks_server["url"])

    async with aiohttp.ClientSession() as session:
        with pytest.raises(Unauthenticated) as raised:
            await authenticator.verify(sign(forged, "k1"), session)

    assert raised.value.reason == "token_invalid"


async def test_jwks_server_down_rejects_tokens(unused_tcp_port_factory):
    key = rsa_key()
    url = f"http://127.0.0.1:{unused_tcp_port_factory()}/jwks.json"
    authenticator = authenticator_for(url)

    async with aiohttp.ClientSession() as session:
        with pytest.raises(Unauthenticated) as raised:
            await authenticator.verify(sign(key, "k1"), session)

    assert raised.value.reason == "token_unknown_key"
