"""Credentials the gateway must reject, and changes in the store that apply at once.

Every rejected request is checked twice: the status and problem body the client
gets, and an upstream request record that stays empty.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable

import jwt
import pytest
from multidict import CIMultiDict

pytestmark = pytest.mark.asyncio(loop_scope="session")

PATH = "/api/1/chats/1/"
OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256"


def secret_of(gateway) -> str:
    return gateway.config.jwt.secret_file.read_text().strip()


def claims_for(gateway, **changes) -> dict:
    """Return valid claims for u-owner with `changes` applied. None drops a claim."""
    now = int(time.time())
    claims = {
        "sub": "u-owner",
        "iss": gateway.config.jwt.issuer,
        "aud": gateway.config.jwt.audience,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def signed(gateway, *, key: str | None = None, algorithm: str = "HS256",
           **changes) -> str:
    return jwt.encode(claims_for(gateway, **changes), key or secret_of(gateway),
                      algorithm=algorithm)


def unsigned(gateway, algorithm: str) -> str:
    """Build a token whose header names `algorithm` and whose signature is empty."""

    def encode(part: dict) -> str:
        raw = json.dumps(part, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = {"alg": algorithm, "typ": "JWT"}
    return f"{encode(header)}.{encode(claims_for(gateway))}."


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def now() -> int:
    return int(time.time())


# Each case builds the request headers for the shared gateway.
HeaderBuilder = Callable[[object], list[tuple[str, str]]]
REJECTED: list[tuple[str, HeaderBuilder, int]] = [
    ("missing", lambda g: [], 401),
    ("empty-authorization", lambda g: [("Authorization", "")], 401),
    ("basic-scheme", lambda g: [("Authorization", "Basic dXNlcjpwYXNz")], 401),
    ("bearer-without-token", lambda g: [("Authorization", "Bearer")], 401),
    ("malformed-token", lambda g: bearer("not-a-jwt"), 401),
    ("three-garbage-parts", lambda g: bearer("a.b.c"), 401),
    ("expired", lambda g: bearer(signed(g, exp=now() - 120)), 401),
    ("not-yet-valid", lambda g: bearer(signed(g, nbf=now() + 120)), 401),
    ("wrong-audience", lambda g: bearer(signed(g, aud="other-api")), 401),
    ("audience-list-without-ours", lambda g: bearer(signed(g, aud=["other-api"])),
     401),
    ("empty-audience-list", lambda g: bearer(signed(g, aud=[])), 401),
    ("missing-audience", lambda g: bearer(signed(g, aud=None)), 401),
    ("wrong-issuer", lambda g: bearer(signed(g, iss="https://idp.test")), 401),
    ("issuer-substring", lambda g: bearer(signed(g, iss="chat-gate")), 401),
    ("issuer-with-suffix", lambda g: bearer(signed(g, iss="chat-gateway/")), 401),
    ("issuer-empty", lambda g: bearer(signed(g, iss="")), 401),
    ("missing-issuer", lambda g: bearer(signed(g, iss=None)), 401),
    ("missing-expiry", lambda g: bearer(signed(g, exp=None)), 401),
    ("string-expiry", lambda g: bearer(signed(g, exp="9999999999")), 401),
    ("missing-subject", lambda g: bearer(signed(g, sub=None)), 401),
    ("alg-none", lambda g: bearer(unsigned(g, "none")), 401),
    ("alg-None", lambda g: bearer(unsigned(g, "None")), 401),
    ("alg-NONE", lambda g: bearer(unsigned(g, "NONE")), 401),
    ("alg-HS256-without-signature", lambda g: bearer(unsigned(g, "HS256")), 401),
    ("signature-stripped",
     lambda g: bearer(g.token("u-owner").rsplit(".", 1)[0] + "."), 401),
    ("unknown-critical-header",
     lambda g: bearer(jwt.encode(claims_for(g), secret_of(g), algorithm="HS256",
                                 headers={"crit": ["x-policy"], "x-policy": 1})),
     401),
    ("wrong-key", lambda g: bearer(signed(g, key=OTHER_SECRET)), 401),
    ("unaccepted-algorithm", lambda g: bearer(signed(g, algorithm="HS512")), 401),
    ("two-bearer-tokens",
     lambda g: bearer(g.token("u-owner")) + bearer(g.token("u-owner")), 401),
    ("token-and-api-key",
     lambda g: bearer(g.token("u-owner")) + [("X-API-Key", g.service_api_key)], 401),
    ("two-api-keys",
     lambda g: [("X-API-Key", g.service_api_key), ("X-API-Key", g.service_api_key)],
     401),
    ("unknown-api-key",
     lambda g: [("X-API-Key", "gwk_000000000000_" + "A" * 43)], 401),
    ("malformed-api-key", lambda g: [("X-API-Key", "secret")], 401),
    ("api-key-as-bearer", lambda g: bearer(g.service_api_key), 401),
    ("unknown-user", lambda g: bearer(g.token("u-nobody")), 403),
]


# The HS512 case signs with the gateway's 43-byte secret, which PyJWT warns about.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(
    ("build_headers", "expected"),
    [pytest.param(build, status, id=name) for name, build, status in REJECTED],
)
async def test_bad_credentials_are_rejected(gateway, sample_api, http, build_headers,
                                            expected):
    headers = CIMultiDict(build_headers(gateway))

    async with http.get(gateway.url + PATH, headers=headers) as response:
        assert response.status == expected
        assert response.content_type == "application/problem+json"
        document = await response.json()

    assert document["status"] == expected
    assert await sample_api.recorded() == [], "the upstream saw the request"

    challenge = response.headers.get("WWW-Authenticate")
    if expected == 401:
        assert challenge is not None
        assert challenge.startswith('Bearer realm="gateway"')
    else:
        assert challenge is None


async def test_missing_credentials_challenge_has_no_error(gateway, http):
    async with http.get(gateway.url + PATH) as response:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="gateway"'


async def test_invalid_token_challenge_names_error(gateway, http):
    async with http.get(gateway.url + PATH, headers=bearer("a.b.c")) as response:
        challenge = response.headers["WWW-Authenticate"]

    assert challenge == 'Bearer realm="gateway", error="invalid_token"'


@pytest.mark.parametrize("parameter", ["access_token", "token", "api_key"])
async def test_credential_in_query_is_ignored(gateway, sample_api, http, parameter):
    """Credentials count only in headers, never in the URL."""
    credential = gateway.token("u-owner")
    if parameter == "api_key":
        credential = gateway.service_api_key

    async with http.get(gateway.url + PATH,
                        params={parameter: credential}) as response:
        assert response.status == 401

    assert await sample_api.recorded() == []


ACCEPTED = [
    pytest.param(lambda g: bearer(g.token("u-owner")), id="issued-token"),
    pytest.param(lambda g: [("Authorization", "bearer " + g.token("u-owner"))],
                 id="lowercase-scheme"),
    pytest.param(lambda g: bearer(signed(g, exp=now() - 10)),
                 id="expired-within-leeway"),
    pytest.param(lambda g: bearer(signed(g, aud=["other-api", "chat-api"])),
                 id="audience-list-with-ours"),
    pytest.param(lambda g: [("X-API-Key", g.service_api_key)], id="api-key"),
]


@pytest.mark.parametrize("build_headers", ACCEPTED)
async def test_valid_credentials_are_accepted(gateway, sample_api, http,
                                              build_headers):
    headers = CIMultiDict(build_headers(gateway))

    async with http.get(gateway.url + PATH, headers=headers) as response:
        assert response.status == 200

    assert len(await sample_api.forwarded()) == 1


async def add_user(gateway, role: str, user_type: str = "standard") -> str:
    user_id = "u-test-" + uuid.uuid4().hex[:8]
    await gateway.store.add_user(name=user_id, email=f"{user_id}@example.com",
                                 role=role, type=user_type, user_id=user_id)
    return user_id


async def get_status(http, gateway, path: str, headers) -> int:
    async with http.get(gateway.url + path, headers=headers) as response:
        return response.status


async def test_deactivated_user_is_forbidden(gateway, sample_api, http):
    user_id = await add_user(gateway, "owner")
    headers = gateway.bearer(user_id)
    assert await get_status(http, gateway, PATH, headers) == 200

    await gateway.store.set_active(user_id, False)
    await sample_api.clear()

    assert await get_status(http, gateway, PATH, headers) == 403
    assert await sample_api.recorded() == []


async def test_deactivated_service_user_is_forbidden(gateway, sample_api, http):
    user_id = await add_user(gateway, "chat_manager", "service")
    headers = {"X-API-Key": await gateway.store.add_api_key(user_id)}
    assert await get_status(http, gateway, PATH, headers) == 200

    await gateway.store.set_active(user_id, False)
    await sample_api.clear()

    assert await get_status(http, gateway, PATH, headers) == 403
    assert await sample_api.recorded() == []


async def test_reactivated_user_is_let_in(gateway, http):
    user_id = await add_user(gateway, "owner")
    await gateway.store.set_active(user_id, False)
    await gateway.store.set_active(user_id, True)

    assert await get_status(http, gateway, PATH, gateway.bearer(user_id)) == 200


async def test_role_change_applies_at_once(gateway, sample_api, http):
    """The role comes from the store on every request, not from the token."""
    user_id = await add_user(gateway, "chat_manager")
    headers = gateway.bearer(user_id)  # one token for the whole test
    assert await get_status(http, gateway, "/api/1/templates/", headers) == 403

    await gateway.store.set_role(user_id, "administrator")
    assert await get_status(http, gateway, "/api/1/templates/", headers) == 200

    await gateway.store.set_role(user_id, "chat_operator")
    await sample_api.clear()
    assert await get_status(http, gateway, "/api/1/chats/2/", headers) == 404
    assert await sample_api.forwarded() == []


async def test_unconfigured_role_is_forbidden(gateway, sample_api, http):
    user_id = await add_user(gateway, "superuser")

    assert await get_status(http, gateway, PATH, gateway.bearer(user_id)) == 403
    assert await sample_api.recorded() == []


async def test_revoked_api_key_is_rejected(gateway, sample_api, http):
    user_id = await add_user(gateway, "chat_manager", "service")
    key = await gateway.store.add_api_key(user_id)
    kept_key = await gateway.store.add_api_key(user_id)
    assert await get_status(http, gateway, PATH, {"X-API-Key": key}) == 200

    await gateway.store.revoke_api_key(key.split("_")[1])
    await sample_api.clear()

    assert await get_status(http, gateway, PATH, {"X-API-Key": key}) == 401
    assert await sample_api.recorded() == []
    assert await get_status(http, gateway, PATH, {"X-API-Key": kept_key}) == 200


async def test_api_key_with_altered_secret_is_rejected(gateway, sample_api, http):
    """A key whose prefix exists but whose secret differs is not accepted."""
    key = gateway.service_api_key
    altered = key[:-1] + ("A" if key[-1] != "A" else "B")

    assert await get_status(http, gateway, PATH, {"X-API-Key": altered}) == 401
    assert await sample_api.recorded() == []
