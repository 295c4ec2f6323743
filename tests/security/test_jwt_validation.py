"""Bearer tokens that a lenient verifier would accept.

The token must never choose how it is checked: the algorithm family comes
from configuration, so an HS256 token keyed with the RS256 public key, an
unsigned `alg: none` token or a token whose signature was cut off is
rejected.  Claims are checked strictly: `iss` by equality (not substring or
prefix), `aud` must contain the gateway's audience whether it is a string or
an array, `exp` is required, and date claims must be JSON numbers.

Most cases run against a gateway configured for RS256 with a key pair made
for this module, the issuer `https://idp.test/realms/acme` and the audience
`gateway.test`.  Every rejected token gets 401 with a problem body, and the
upstream receives nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .wire import assert_problem, build_request, exchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

ISSUER = "https://idp.test/realms/acme"
AUDIENCE = "gateway.test"
LEEWAY = 30
OPERATOR = "u-op-1"
OWN_CHAT = "/api/1/chats/1/"


@dataclass(frozen=True)
class KeyPair:
    private_file: Path
    public_file: Path
    private_key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> bytes:
        return self.public_file.read_bytes()

    @property
    def public_jwk(self) -> str:
        """Return the public key as the JWK JSON text a JWKS document would list."""
        document = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(
            self.private_key.public_key()))
        document.update({"kid": "k1", "alg": "RS256", "use": "sig"})
        return json.dumps(document)


def write_key_pair(folder: Path) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_file = folder / "private.pem"
    public_file = folder / "public.pem"
    private_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    public_file.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    ))
    return KeyPair(private_file, public_file, key)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> KeyPair:
    return write_key_pair(tmp_path_factory.mktemp("idp-keys"))


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory) -> KeyPair:
    """A key pair the gateway has never seen, such as an attacker holds."""
    return write_key_pair(tmp_path_factory.mktemp("attacker-keys"))


@pytest_asyncio.fixture(loop_scope="session")
async def rs_gateway(sample_api, gateway_factory, keys):
    return await gateway_factory(sample_api.url, {
        ("authentication", "jwt"): {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "algorithms": ["RS256"],
            "public_key_file": str(keys.public_file),
            "private_key_file": str(keys.private_file),
            "leeway": LEEWAY,
        },
    })


DROP = object()  # a claim value that removes the claim


@dataclass(frozen=True)
class FromNow:
    """A date claim `seconds` from the moment the token is built (negative: past)."""

    seconds: int


def claims(user_id: str = OPERATOR, **changes) -> dict:
    """Return valid claims for `user_id`, with `changes` applied."""
    now = int(time.time())
    values = {"sub": user_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
              "nbf": now, "exp": now + 300}
    values.update(changes)
    return {
        name: now + value.seconds if isinstance(value, FromNow) else value
        for name, value in values.items()
        if value is not DROP
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_part(part: dict) -> str:
    return b64url(json.dumps(part, separators=(",", ":")).encode())


def hmac_token(header: dict, payload: dict, secret: bytes, digest=hashlib.sha256):
    """Sign with HMAC by hand, because PyJWT rejects a PEM key as an HMAC secret."""
    signing_input = f"{encode_part(header)}.{encode_part(payload)}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def rs256(keys: KeyPair, payload: dict, headers: dict | None = None) -> str:
    """Sign `payload` as given, because `jwt.encode` would reject odd claim types."""
    return jwt.PyJWS().encode(json.dumps(payload).encode(), keys.private_key,
                              algorithm="RS256",
                              headers={"kid": "k1", **(headers or {})})


def unsigned(algorithm: str, payload: dict, signature: str = "") -> str:
    return f"{encode_part({'alg': algorithm, 'typ': 'JWT'})}.{encode_part(payload)}." + (
        signature
    )


async def send_token(gateway, token: str, path: str):
    request = build_request("GET", path, [("Authorization", f"Bearer {token}")])
    return (await exchange(gateway.port, request)).first


async def assert_rejected(gateway, sample_api, token: str, path: str) -> None:
    response = await send_token(gateway, token, path)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert await sample_api.recorded() == []


# Each builder takes the gateway's keys and an attacker's, and returns a token
# with the owner's claims, sent to the account that only the owner may read.
ALGORITHM_CONFUSION = {
    "hs256-keyed-by-public-pem": lambda k, o: hmac_token(
        {"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims("u-owner"), k.public_pem),
    "hs256-keyed-by-pem-without-newline": lambda k, o: hmac_token(
        {"alg": "HS256", "kid": "k1"}, claims("u-owner"), k.public_pem.strip()),
    "hs256-keyed-by-public-jwk": lambda k, o: hmac_token(
        {"alg": "HS256", "kid": "k1"}, claims("u-owner"), k.public_jwk.encode()),
    "hs384-keyed-by-public-pem": lambda k, o: hmac_token(
        {"alg": "HS384", "kid": "k1"}, claims("u-owner"), k.public_pem,
        hashlib.sha384),
    "rs256-header-hmac-signature": lambda k, o: hmac_token(
        {"alg": "RS256", "kid": "k1"}, claims("u-owner"), k.public_pem),
    "alg-none": lambda k, o: unsigned("none", claims("u-owner")),
    "alg-None": lambda k, o: unsigned("None", claims("u-owner")),
    "alg-NONE": lambda k, o: unsigned("NONE", claims("u-owner")),
    "alg-nOnE": lambda k, o: unsigned("nOnE", claims("u-owner")),
    "alg-none-with-signature": lambda k, o: unsigned(
        "none", claims("u-owner"), b64url(b"not a signature")),
    "alg-empty": lambda k, o: unsigned("", claims("u-owner")),
    "signature-stripped": lambda k, o: rs256(k, claims("u-owner")).rsplit(".", 1)[0]
    + ".",
    "signature-and-dot-stripped": lambda k, o: rs256(k, claims("u-owner")).rsplit(
        ".", 1)[0],
    "signed-by-other-key": lambda k, o: rs256(o, claims("u-owner")),
    "other-key-embedded-as-jwk": lambda k, o: rs256(
        o, claims("u-owner"), {"jwk": json.loads(o.public_jwk)}),
    "rs512-not-configured": lambda k, o: jwt.encode(
        claims("u-owner"), k.private_key, algorithm="RS512"),
    "ps256-not-configured": lambda k, o: jwt.encode(
        claims("u-owner"), k.private_key, algorithm="PS256"),
}


@pytest.mark.parametrize("case", list(ALGORITHM_CONFUSION))
async def test_token_cannot_choose_algorithm(rs_gateway, sample_api, keys,
                                             other_keys, case):
    token = ALGORITHM_CONFUSION[case](keys, other_keys)
    await assert_rejected(rs_gateway, sample_api, token, "/api/1/account/")


@pytest.mark.parametrize("algorithm", ["none", "None", "NONE", "nOnE"])
async def test_unsigned_token_rejected_by_hmac_gateway(gateway, sample_api,
                                                       algorithm):
    payload = {**claims("u-owner"), "iss": gateway.config.jwt.issuer,
               "aud": gateway.config.jwt.audience}
    await assert_rejected(gateway, sample_api, unsigned(algorithm, payload),
                          "/api/1/account/")


# Each row: a case id and the claim changes of an otherwise valid RS256 token.
INVALID_CLAIMS = [
    ("iss-host-only", {"iss": "https://idp.test"}),
    ("iss-substring", {"iss": "idp"}),
    ("iss-empty", {"iss": ""}),
    ("iss-trailing-slash", {"iss": ISSUER + "/"}),
    ("iss-longer-path", {"iss": ISSUER + "/extra"}),
    ("iss-prefix", {"iss": ISSUER[:-1]}),
    ("iss-with-leading-text", {"iss": "x" + ISSUER}),
    ("iss-uppercase", {"iss": ISSUER.upper()}),
    ("iss-as-array", {"iss": [ISSUER]}),
    ("iss-missing", {"iss": DROP}),
    ("aud-other-array", {"aud": ["other-api"]}),
    ("aud-empty-array", {"aud": []}),
    ("aud-missing", {"aud": DROP}),
    ("aud-null", {"aud": None}),
    ("aud-suffix-added", {"aud": AUDIENCE + ".evil.test"}),
    ("aud-substring", {"aud": "gateway"}),
    ("aud-uppercase", {"aud": AUDIENCE.upper()}),
    ("aud-substring-in-array", {"aud": ["gateway", "test"]}),
    ("exp-missing", {"exp": DROP}),
    ("exp-past-leeway", {"exp": FromNow(-120)}),
    ("exp-numeric-string", {"exp": "9999999999"}),
    ("exp-boolean", {"exp": True}),
    ("exp-null", {"exp": None}),
    ("exp-array", {"exp": [9999999999]}),
    ("nbf-ahead", {"nbf": FromNow(120)}),
    ("nbf-numeric-string", {"nbf": "0"}),
    ("iat-an-hour-ahead", {"iat": FromNow(3600)}),
    ("iat-numeric-string", {"iat": str(int(time.time()))}),
    ("sub-missing", {"sub": DROP}),
]


@pytest.mark.parametrize(
    "changes",
    [pytest.param(changes, id=case_id) for case_id, changes in INVALID_CLAIMS],
)
async def test_invalid_claim_rejected(rs_gateway, sample_api, keys, changes):
    await assert_rejected(rs_gateway, sample_api, rs256(keys, claims(**changes)),
                          OWN_CHAT)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"crit": ["x-unknown"], "x-unknown": 1}, id="unknown-extension"),
        pytest.param({"crit": ["exp"]}, id="registered-claim-name"),
        pytest.param({"crit": []}, id="empty-list"),
        pytest.param({"crit": "x-unknown", "x-unknown": 1}, id="not-a-list"),
        pytest.param({"crit": ["b64"], "b64": False}, id="unencoded-payload"),
    ],
)
async def test_critical_header_rejected(rs_gateway, sample_api, keys, headers):
    """RFC 7515 section 4.1.11: a `crit` extension the verifier lacks voids the token."""
    await assert_rejected(rs_gateway, sample_api, rs256(keys, claims(), headers),
                          OWN_CHAT)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="plain"),
        pytest.param({"aud": ["other-api", AUDIENCE]}, id="aud-array-containing-ours"),
        pytest.param({"exp": FromNow(-10)}, id="exp-within-leeway"),
        pytest.param({"nbf": FromNow(10)}, id="nbf-within-leeway"),
        pytest.param({"iat": DROP, "nbf": DROP}, id="only-required-dates"),
    ],
)
async def test_valid_token_accepted(rs_gateway, sample_api, keys, changes):
    """Controls for the cases above: the same token with valid claims passes."""
    response = await send_token(rs_gateway, rs256(keys, claims(**changes)), OWN_CHAT)
    assert response.status == 200

    forwarded = await sample_api.forwarded()
    assert [entry["headers"]["x-gateway-user"] for entry in forwarded] == [OPERATOR]
