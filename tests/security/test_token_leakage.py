"""Credentials that could end up in URLs, logs or the upstream's hands.

A token in the query string is written to access logs, caches and `Referer`
headers, so the gateway takes bearer tokens from the Authorization header
only and rejects a URL token with 401, however the parameter name is
spelled.  No log record the gateway or aiohttp writes may hold a token, an
API key or the HMAC secret, whatever happens to the request, and the
upstream receives none of them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import jwt
import pytest

from gateway.observe.logs import JSONFormatter

from .wire import assert_problem, build_request, exchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = "u-op-1"

QUERY_SPELLINGS = [
    pytest.param("?access_token={token}", id="plain"),
    pytest.param("?ACCESS_TOKEN={token}", id="uppercase"),
    pytest.param("?Access_Token={token}", id="mixed-case"),
    pytest.param("?%61ccess_token={token}", id="first-letter-encoded"),
    pytest.param("?access%5Ftoken={token}", id="underscore-encoded"),
    pytest.param("?access%5ftoken={token}", id="underscore-encoded-lowercase"),
    pytest.param("?status=open&access_token={token}", id="second-parameter"),
    pytest.param("?access_token%20={token}", id="trailing-space"),
    pytest.param("?access_token", id="no-value"),
]


@pytest.mark.parametrize("query", QUERY_SPELLINGS)
@pytest.mark.parametrize("with_header", [False, True], ids=["alone", "with-header"])
async def test_query_token_rejected(gateway, sample_api, query, with_header):
    token = gateway.token(OPERATOR)
    headers = [("Authorization", f"Bearer {token}")] if with_header else []
    request = build_request("GET", "/api/1/chats/" + query.format(token=token),
                            headers)
    response = (await exchange(gateway.port, request)).first

    assert_problem(response, 401)
    assert "WWW-Authenticate" in response.headers
    assert token.encode() not in response.body
    assert await sample_api.recorded() == []


@dataclass(frozen=True)
class Credentials:
    """The credentials the logged requests carry, made once because each token differs."""

    token: str
    expired_token: str
    api_key: str
    hmac_secret: str

    def secrets(self) -> dict[str, str]:
        """Return each value no log may contain, by a name for failure messages."""
        return {
            "token": self.token,
            "token-signature": self.token.rsplit(".", 1)[1],
            "expired-token-signature": self.expired_token.rsplit(".", 1)[1],
            "api-key": self.api_key,
            "api-key-secret": self.api_key.split("_", 2)[2],
            "hmac-secret": self.hmac_secret,
        }


def credentials_of(gateway) -> Credentials:
    jwt_config = gateway.config.jwt
    secret = jwt_config.secret_file.read_text().strip()
    now = int(time.time())
    expired = {"sub": OPERATOR, "iss": jwt_config.issuer, "aud": jwt_config.audience,
               "iat": now - 600, "exp": now - 300}
    return Credentials(
        token=gateway.token(OPERATOR),
        expired_token=jwt.encode(expired, secret, algorithm="HS256"),
        api_key=gateway.service_api_key,
        hmac_secret=secret,
    )


def leaky_requests(credentials: Credentials) -> list[bytes]:
    """Build requests that carry credentials through every path a request can take."""
    token = credentials.token
    api_key = credentials.api_key
    bearer = [("Authorization", f"Bearer {token}")]
    return [
        build_request("GET", "/api/1/chats/1/", bearer),
        build_request("GET", "/api/1/chats/2/", bearer),
        build_request("GET", "/api/1/account/", bearer),
        build_request("GET", "/api/1/chats/1/", [("X-API-Key", api_key)]),
        build_request("GET", "/api/1/chats/1/", [("X-API-Key", api_key + "x")]),
        build_request("GET", "/api/1/chats/1/",
                      [("X-API-Key", api_key), ("Authorization", f"Bearer {token}")]),
        build_request("GET", "/api/1/chats/1/",
                      [("Authorization", f"Bearer {credentials.expired_token}")]),
        build_request("GET", "/api/1/chats/1/",
                      [("Authorization", f"Bearer {token[:-2]}xx")]),
        build_request("GET", "/api/1/chats/1/", [("Authorization", f"Basic {token}")]),
        build_request("GET", f"/api/1/chats/?access_token={token}", []),
        build_request("GET", f"/api/1/chats/?access_token={token}&x=%zz", bearer),
        build_request("GET", f"/api/1/chats/1/%2e%2e/?access_token={token}", bearer),
        build_request("GET", f"/api/1/chats/?access_token={token}&pad=" + "a" * 9000,
                      []),
        build_request("GET", "/api/1/chats/1/",
                      [("Authorization", f"Bearer {token}" + "a" * 9000)]),
        build_request("GET", "/api/1/chats/1/",
                      [("Authorization", f"Bearer {token}\x00")]),
        build_request("GET", "/api/1/chats/1/",
                      [("Authorization ", f"Bearer {token}")]),
        build_request("GET", "/api/1/chats/1/",
                      bearer + [("X-Forwarded-Access-Token", token),
                                ("Cookie", f"session={token}")]),
        build_request("POST", "/api/1/chats/1/messages/",
                      bearer + [("Content-Type", "application/json")],
                      b'{"text": "' + api_key.encode() + b'"}'),
        build_request("PATCH", "/api/1/chats/1/",
                      bearer + [("Content-Type", "application/json")],
                      b'{"assignee": "' + token.encode()),
    ]


def rendered(record: logging.LogRecord) -> str:
    """Return the record as the gateway writes it, with its traceback if any."""
    text = JSONFormatter().format(record)
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text + repr(record.args)


async def test_credentials_never_logged(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    credentials = credentials_of(gateway)
    requests = leaky_requests(credentials)
    for request in requests:
        result = await exchange(gateway.port, request)
        assert result.responses, request[:80]

    records = caplog.records
    decisions = [record for record in records if record.name == "gateway.decision"]
    assert decisions, "the log capture holds no decision records"
    for name, secret in credentials.secrets().items():
        leaking = [record.name for record in records if secret in rendered(record)]
        assert leaking == [], f"{name} logged by {leaking}"


@pytest.mark.parametrize("principal", ["chat_operator", "service_user"])
async def test_upstream_never_receives_credential(gateway, sample_api, principal):
    credentials = list(gateway.credentials(principal).items())
    request = build_request("GET", "/api/1/chats/1/?status=open", credentials)
    assert (await exchange(gateway.port, request)).first.status == 200

    secret = credentials[0][1].removeprefix("Bearer ")
    for entry in await sample_api.recorded():
        assert secret not in repr(entry), entry["raw_path"]
