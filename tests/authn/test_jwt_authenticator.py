"""JWTAuthenticator accepts only tokens the configured issuer signed for this gateway.

Tokens are built by hand here, so a test can send what PyJWT's encoder would
refuse to make: a list as issuer, HS256 signed with a public key, `alg: none`.
"""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import jwt
import pytest

from gateway.authn.jwt_authenticator import JWTAuthenticator
from gateway.errors import Unauthenticated
from gateway.tokens.issuer import TokenIssuer

LEEWAY = 30  # authentication.jwt.leeway in the shipped config.yaml
DROP = object()


@dataclass(frozen=True)
class FromNow:
    """A time claim given as seconds from the moment the token is built."""

    seconds: int


def valid_claims(**changes) -> dict:
    now = int(time.time())
    claims = {
        "sub": "u-op-1",
        "iss": "chat-gateway",
        "aud": "chat-api",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    for name, value in changes.items():
        if value is DROP:
            del claims[name]
        elif isinstance(value, FromNow):
            claims[name] = now + value.seconds
        else:
            claims[name] = value

    return claims


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_hmac(claims: dict, key: bytes, *, algorithm="HS256", header=None) -> str:
    """Build an HMAC-signed JWT by hand, with any key bytes and header fields."""
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[algorithm]
    header = {"alg": algorithm, "typ": "JWT"} | (header or {})
    signing_input = (
        base64url(json.dumps(header).encode())
        + "."
        + base64url(json.dumps(claims).encode())
    )
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return signing_input + "." + base64url(signature)


def unsigned(claims: dict) -> str:
    header = base64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return header + "." + base64url(json.dumps(claims).encode()) + "."


def sign_rsa(claims: dict, private_file) -> str:
    return jwt.encode(claims, private_file.read_bytes(), algorithm="RS256")


@pytest.fixture
def secret(hmac_config) -> bytes:
    # TokenIssuer creates the secret file on first use, as the gateway does.
    TokenIssuer(hmac_config)
    return hmac_config.secret_file.read_text().strip().encode()


@pytest.fixture
def hmac_gateway(hmac_config, secret) -> JWTAuthenticator:
    return JWTAuthenticator(hmac_config)


@pytest.fixture
def rsa_gateway(rsa_config) -> JWTAuthenticator:
    return JWTAuthenticator(rsa_config)


async def rejection_reason(gateway: JWTAuthenticator, token: str, session) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await gateway.verify(token, session)

    return caught.value.reason


# claim changes, then the reason id of the rejection
REJECTED_CLAIMS = [
    pytest.param({"exp": FromNow(-(LEEWAY + 60))}, "token_expired", id="expired"),
    pytest.param(
        {"exp": FromNow(-(LEEWAY + 1))}, "token_expired", id="expired-just-past-leeway"
    ),
    pytest.param(
        {"nbf": FromNow(LEEWAY + 60)}, "token_not_yet_valid", id="nbf-beyond-leeway"
    ),
    pytest.param(
        {"iat": FromNow(LEEWAY + 60)}, "token_not_yet_valid", id="iat-in-future"
    ),
    pytest.param({"aud": "other-api"}, "token_audience", id="wrong-audience"),
    pytest.param({"aud": "chat"}, "token_audience", id="audience-prefix"),
    pytest.param(
        {"aud": ["other-api", "chat-api-2"]},
        "token_audience",
        id="audience-list-without-ours",
    ),
    pytest.param({"iss": "idp.example"}, "token_issuer", id="wrong-issuer"),
    pytest.param({"iss": "gateway"}, "token_issuer", id="issuer-substring"),
    pytest.param({"iss": "chat-gateway-evil"}, "token_issuer", id="issuer-superstring"),
    pytest.param({"iss": ["chat-gateway"]}, "token_issuer", id="issuer-list"),
    pytest.param({"sub": DROP}, "token_claims", id="missing-sub"),
    pytest.param({"exp": DROP}, "token_claims", id="missing-exp"),
    pytest.param({"iss": DROP}, "token_claims", id="missing-iss"),
    pytest.param({"aud": DROP}, "token_claims", id="missing-aud"),
    pytest.param({"sub": 123}, "token_invalid", id="sub-not-string"),
    pytest.param({"exp": "tomorrow"}, "token_invalid", id="exp-not-number"),
]

# claim changes the gateway accepts
ACCEPTED_CLAIMS = [
    pytest.param({}, id="all-claims"),
    pytest.param({"exp": FromNow(-10)}, id="expired-within-leeway"),
    pytest.param({"nbf": FromNow(10)}, id="nbf-within-leeway"),
    pytest.param({"iat": DROP, "nbf": DROP}, id="only-required-claims"),
    pytest.param({"aud": ["other-api", "chat-api"]}, id="audience-list-with-ours"),
]


@pytest.mark.parametrize("changes", ACCEPTED_CLAIMS)
async def test_valid_token_returns_claims(hmac_gateway, secret, session, changes):
    claims = valid_claims(**changes)

    verified = await hmac_gateway.verify(sign_hmac(claims, secret), session)

    assert verified == claims


@pytest.mark.parametrize("changes, reason", REJECTED_CLAIMS)
async def test_bad_claims_rejected_with_reason(
    hmac_gateway, secret, session, changes, reason
):
    token = sign_hmac(valid_claims(**changes), secret)

    assert await rejection_reason(hmac_gateway, token, session) == reason


async def test_alg_none_rejected(hmac_gateway, session):
    token = unsigned(valid_claims())

    assert await rejection_reason(hmac_gateway, token, session) == "token_algorithm"


async def test_wrong_secret_rejected(hmac_gateway, secret, session):
    token = sign_hmac(valid_claims(), b"another secret of at least 32 bytes!")

    assert await rejection_reason(hmac_gateway, token, session) == "token_invalid"


async def test_unconfigured_hmac_algorithm_rejected(hmac_gateway, secret, session):
    token = sign_hmac(valid_claims(), secret, algorithm="HS512")

    assert await rejection_reason(hmac_gateway, token, session) == "token_algorithm"


async def test_rs256_token_rejected_by_hmac_gateway(hmac_gateway, rsa_keys, session):
    token = sign_rsa(valid_claims(), rsa_keys[0])

    assert await rejection_reason(hmac_gateway, token, session) == "token_algorithm"


async def test_tampered_payload_rejected(hmac_gateway, secret, session):
    header, _, signature = sign_hmac(valid_claims(), secret).split(".")
    payload = base64url(json.dumps(valid_claims(sub="u-owner-1")).encode())

    token = f"{header}.{payload}.{signature}"

    assert await rejection_reason(hmac_gateway, token, session) == "token_invalid"


async def test_unknown_critical_header_rejected(hmac_gateway, secret, session):
    # PyJWT 2.15 rejects an unknown `crit` entry in get_unverified_header,
    # before any signature check.
    token = sign_hmac(valid_claims(), secret, header={"crit": ["x-unknown"]})

    assert await rejection_reason(hmac_gateway, token, session) == "token_malformed"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("garbage", id="one-word"),
        pytest.param("", id="empty"),
        pytest.param("a.b.c", id="three-bad-parts"),
        pytest.param("e30.e30", id="two-parts"),
        pytest.param(base64url(b"not json") + ".e30.", id="header-not-json"),
        pytest.param(base64url(b"[]") + ".e30.", id="header-not-object"),
    ],
)
async def test_malformed_token_rejected(hmac_gateway, session, token):
    assert await rejection_reason(hmac_gateway, token, session) == "token_malformed"


async def test_rejection_carries_bearer_challenge(hmac_gateway, session):
    with pytest.raises(Unauthenticated) as caught:
        await hmac_gateway.verify(unsigned(valid_claims()), session)

    assert caught.value.status == 401
    assert caught.value.headers == {
        "WWW-Authenticate": 'Bearer realm="gateway", error="invalid_token"'
    }


async def test_rsa_gateway_accepts_its_key(rsa_gateway, rsa_keys, session):
    claims = valid_claims()

    assert await rsa_gateway.verify(sign_rsa(claims, rsa_keys[0]), session) == claims


async def test_hmac_with_public_key_rejected(rsa_gateway, rsa_keys, session):
    # Key confusion: anyone can sign HS256 with the public key's PEM text,
    # because the public key is not secret.
    public_pem = rsa_keys[1].read_bytes()
    token = sign_hmac(valid_claims(), public_pem)

    assert await rejection_reason(rsa_gateway, token, session) == "token_algorithm"


async def test_alg_none_rejected_by_rsa_gateway(rsa_gateway, session):
    token = unsigned(valid_claims())

    assert await rejection_reason(rsa_gateway, token, session) == "token_algorithm"


async def test_other_rsa_key_rejected(rsa_gateway, other_rsa_keys, session):
    token = sign_rsa(valid_claims(), other_rsa_keys[0])

    assert await rejection_reason(rsa_gateway, token, session) == "token_invalid"


async def test_missing_secret_left_alone_without_create(hmac_config, session):
    verifier = JWTAuthenticator(hmac_config, create_secret=False)
    token = sign_hmac(valid_claims(), b"k" * 32)

    with pytest.raises(Unauthenticated):
        await verifier.verify(token, session)
    assert not hmac_config.secret_file.exists(), "checking files must not write one"
