"""TokenIssuer mints tokens that the gateway's own JWTAuthenticator accepts."""

import dataclasses
import stat

import jwt
import pytest

from gateway.authn.jwt_authenticator import JWTAuthenticator
from gateway.errors import ConfigError
from gateway.tokens.issuer import TokenIssuer


async def test_issued_token_verifies(hmac_config, session):
    token = TokenIssuer(hmac_config).issue("u-op-1")

    claims = await JWTAuthenticator(hmac_config).verify(token, session)

    assert claims["sub"] == "u-op-1"
    assert claims["iss"] == "chat-gateway"
    assert claims["aud"] == "chat-api"


def test_issued_token_uses_first_algorithm(hmac_config):
    token = TokenIssuer(hmac_config).issue("u-op-1")

    assert jwt.get_unverified_header(token)["alg"] == "HS256"


@pytest.mark.parametrize(
    "lifetime, expected",
    [
        pytest.param(None, 3600, id="configured-lifetime"),
        pytest.param(120, 120, id="lifetime-argument"),
    ],
)
def test_issued_token_lifetime(hmac_config, lifetime, expected):
    token = TokenIssuer(hmac_config).issue("u-op-1", lifetime=lifetime)
    claims = jwt.decode(token, options={"verify_signature": False})

    assert claims["exp"] - claims["iat"] == expected
    assert claims["nbf"] == claims["iat"]


def test_each_token_has_own_id(hmac_config):
    issuer = TokenIssuer(hmac_config)

    first = jwt.decode(issuer.issue("u-op-1"), options={"verify_signature": False})
    second = jwt.decode(issuer.issue("u-op-1"), options={"verify_signature": False})

    assert first["jti"] != second["jti"]


def test_missing_secret_file_created_private(hmac_config):
    assert not hmac_config.secret_file.exists()

    TokenIssuer(hmac_config)

    mode = stat.S_IMODE(hmac_config.secret_file.stat().st_mode)
    assert mode == 0o600
    assert len(hmac_config.secret_file.read_text().strip()) >= 32


async def test_existing_secret_file_reused(hmac_config, session):
    hmac_config.secret_file.parent.mkdir(parents=True, exist_ok=True)
    hmac_config.secret_file.write_text("s" * 40 + "\n")

    token = TokenIssuer(hmac_config).issue("u-op-1")

    assert hmac_config.secret_file.read_text() == "s" * 40 + "\n"
    assert jwt.decode(token, "s" * 40, algorithms=["HS256"], audience="chat-api")


def test_short_secret_rejected(hmac_config):
    hmac_config.secret_file.parent.mkdir(parents=True, exist_ok=True)
    hmac_config.secret_file.write_text("too-short\n")

    with pytest.raises(ConfigError, match="at least 32 characters"):
        TokenIssuer(hmac_config)


async def test_rsa_issuer_token_verifies(rsa_config, session):
    token = TokenIssuer(rsa_config).issue("u-mgr-1")

    claims = await JWTAuthenticator(rsa_config).verify(token, session)

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert claims["sub"] == "u-mgr-1"


def test_rsa_issuer_needs_private_key(rsa_config):
    public_only = dataclasses.replace(rsa_config, private_key_file=None)

    with pytest.raises(ConfigError, match="minting needs a local key"):
        TokenIssuer(public_only)
