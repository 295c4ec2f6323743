"""Client headers that try to set the identity, address, URL or method upstream.

The upstream learns who is calling from the gateway's `X-Gateway-*` headers,
so a client copy of them must never reach it.  The same goes for the
forwarding headers proxies set and any header a framework might read as one
of those.  Three tricks get extra cases:

- naming a gateway header in `Connection`, so that a proxy removes the
  gateway's own copy after setting it;
- spelling a name with underscores, because CGI-style servers read
  `X_Gateway_User` as `X-Gateway-User`;
- headers that claim another path or method, so that a rule for that one
  applies.

Allowed requests go to `/api/1/tags/1/` as the chat operator u-op-1.  The
operator may read tags and the gateway makes no ownership lookup for them,
so the upstream record contains exactly the forwarded request.
"""

from __future__ import annotations

import pytest

from .wire import HOST, assert_problem, build_request, exchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = "u-op-1"
TAG = "/api/1/tags/1/"
GATEWAY_IDENTITY = {
    "x-gateway-user": OPERATOR,
    "x-gateway-role": "chat_operator",
    "x-gateway-user-type": "standard",
}
GATEWAY_FORWARDING = {
    "x-forwarded-for": "127.0.0.1",
    "x-forwarded-proto": "http",
    "x-forwarded-host": HOST,
}


def bearer(gateway, user_id: str = OPERATOR) -> list[tuple[str, str]]:
    return [("Authorization", "Bearer " + gateway.token(user_id))]


async def forwarded_headers(gateway, sample_api,
                            headers: list[tuple[str, str]]) -> dict[str, str]:
    """Send an allowed request with `headers` and return the headers the upstream got."""
    request = build_request("GET", TAG, bearer(gateway) + headers)
    response = (await exchange(gateway.port, request)).first
    assert response.status == 200, response.body

    recorded = await sample_api.recorded()
    assert len(recorded) == 1, recorded
    return recorded[0]["headers"]


# Each row: a header the client sends, its value, and what the upstream must
# see under that name (None: the header is absent).
SPOOFED = [
    ("X-Gateway-User", "u-owner", OPERATOR),
    ("x-gateway-user", "u-owner", OPERATOR),
    ("X-Gateway-Role", "owner", "chat_operator"),
    ("X-Gateway-User-Type", "service", "standard"),
    ("X-Gateway-Resolver", "chat", None),
    ("X-Forwarded-For", "10.20.1.5", "127.0.0.1"),
    ("X-Forwarded-Host", "partner.test", HOST),
    ("X-Forwarded-Proto", "https", "http"),
    ("X-Forwarded-Uri", "/api/1/account/", None),
    ("X-Forwarded-Path", "/api/1/account/", None),
    ("X-Forwarded-Prefix", "/api/1/account", None),
    ("X-Forwarded-Method", "DELETE", None),
    ("X-Forwarded-Port", "443", None),
    ("X-Forwarded-Server", "evil.test", None),
    ("X-Forwarded-User", "u-owner", None),
    ("X-Forwarded-Email", "owner@example.com", None),
    ("X-Forwarded-Groups", "owner", None),
    ("X-Forwarded-Access-Token", "stolen-token", None),
    ("Forwarded", "for=10.20.1.5;proto=https;host=partner.test", None),
    ("Forwarded", 'for="[2001:db8::1]";by=gateway', None),
    ("X-Real-IP", "10.20.1.5", None),
    ("X-Client-IP", "10.20.1.5", None),
    ("True-Client-IP", "10.20.1.5", None),
    ("X-Original-URL", "/api/1/account/", None),
    ("X-Original-URI", "/api/1/account/", None),
    ("X-Original-Method", "DELETE", None),
    ("X-Rewrite-URL", "/api/1/account/", None),
    ("X-Envoy-Original-Path", "/api/1/account/", None),
    ("X-Envoy-Internal", "true", None),
    ("X-Envoy-External-Address", "10.20.1.5", None),
    ("X-Envoy-Decorator-Operation", "account", None),
    ("Proxy-Authorization", "Basic dXNlcjpwYXNz", None),
    ("Client-IP", "10.20.1.5", None),
    ("CF-Connecting-IP", "10.20.1.5", None),
    ("Fastly-Client-IP", "10.20.1.5", None),
    ("X-Cluster-Client-IP", "10.20.1.5", None),
    ("Remote-User", "u-owner", None),
    ("X-Remote-User", "u-owner", None),
    ("X-Remote-Addr", "10.20.1.5", None),
    ("X-User", "u-owner", None),
    ("X-Authenticated-User", "u-owner", None),
    ("X-Auth-Request-User", "u-owner", None),
    ("X-Auth-Request-Email", "owner@example.com", None),
]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [pytest.param(name, value, expected, id=f"{name}={value}")
     for name, value, expected in SPOOFED],
)
async def test_spoofed_header_replaced_or_dropped(gateway, sample_api, name, value,
                                                  expected):
    received = await forwarded_headers(gateway, sample_api, [(name, value)])

    assert received.get(name.lower()) == expected
    for identity_name, identity_value in GATEWAY_IDENTITY.items():
        assert received[identity_name] == identity_value, identity_name


async def test_client_request_id_replaced(gateway, sample_api):
    received = await forwarded_headers(gateway, sample_api,
                                       [("X-Request-ID", "client-chosen-id")])

    assert received["x-request-id"] != "client-chosen-id"


UNDERSCORED = [
    ("X_Gateway_User", "u-owner"),
    ("x_gateway_user", "u-owner"),
    ("X-Gateway_User", "u-owner"),
    ("X_Gateway-Role", "owner"),
    ("X_Gateway_User_Type", "service"),
    ("X_Forwarded_For", "10.20.1.5"),
    ("X_Real_IP", "10.20.1.5"),
    ("X_Original_URL", "/api/1/account/"),
    ("X_Envoy_Original_Path", "/api/1/account/"),
    ("X_Request_ID", "client-chosen-id"),
    ("X_API_Key", "gwk_guess"),
]


@pytest.mark.parametrize(
    ("name", "value"),
    [pytest.param(name, value, id=name) for name, value in UNDERSCORED],
)
async def test_underscore_header_never_forwarded(gateway, sample_api, name, value):
    received = await forwarded_headers(gateway, sample_api, [(name, value)])

    assert [header for header in received if "_" in header] == []
    assert received["x-gateway-user"] == OPERATOR
    assert received["x-gateway-role"] == "chat_operator"


CONNECTION_OPTIONS = [
    pytest.param([("Connection", "close, X-Gateway-User, X-Gateway-Role, "
                                 "X-Gateway-User-Type")], id="identity-headers"),
    pytest.param([("Connection", "keep-alive, X-Forwarded-For, X-Forwarded-Host, "
                                 "X-Forwarded-Proto, close")], id="forwarding-headers"),
    pytest.param([("Connection", "close,x-gateway-user,X-REQUEST-ID")],
                 id="no-spaces-mixed-case"),
    pytest.param([("Connection", "close"), ("Connection", "X-Gateway-User")],
                 id="second-connection-header"),
    pytest.param([("Connection", "close, X-Gateway-User"),
                  ("X-Gateway-User", "u-owner")], id="named-and-sent"),
]


@pytest.mark.parametrize("headers", CONNECTION_OPTIONS)
async def test_connection_option_keeps_gateway_headers(gateway, sample_api,
                                                       headers):
    received = await forwarded_headers(gateway, sample_api, headers)

    for name, value in {**GATEWAY_IDENTITY, **GATEWAY_FORWARDING}.items():
        assert received.get(name) == value, name
    assert "x-request-id" in received


async def test_connection_option_drops_client_header(gateway, sample_api):
    received = await forwarded_headers(
        gateway, sample_api,
        [("Connection", "close, X-Internal-Auth"), ("X-Internal-Auth", "yes")],
    )

    assert "x-internal-auth" not in received


async def test_connection_option_keeps_body_framing(gateway, sample_api):
    """Naming Content-Length in Connection does not change the forwarded body."""
    body = b'{"text": "framed"}'
    request = build_request(
        "POST", "/api/1/chats/1/messages/",
        bearer(gateway, "u-owner") + [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close, Content-Length"),
        ],
        body,
    )
    response = (await exchange(gateway.port, request)).first
    assert response.status == 201

    recorded = await sample_api.recorded()
    assert [entry["body"] for entry in recorded] == [body.decode()]


# Rejected requests whose extra headers claim an allowed path, method,
# address or identity.  The decision uses only the request line and the
# credential.
OTHER_TARGET_HEADERS = [
    ("X-Forwarded-Uri", "/api/1/tags/"),
    ("X-Original-URL", "/api/1/tags/"),
    ("X-Rewrite-URL", "/api/1/tags/"),
    ("X-Envoy-Original-Path", "/api/1/tags/"),
    ("X-Forwarded-Prefix", "/api/1/tags"),
    ("User-Agent", "kube-probe/1.29"),
]
REJECTED_WITH_SPOOFING = [
    ("anonymous-claims-public-path", None, "GET", "/api/1/account/",
     OTHER_TARGET_HEADERS, 401),
    ("anonymous-claims-identity", None, "GET", "/api/1/tags/",
     [("X-Gateway-User", OPERATOR), ("X-Gateway-Role", "chat_operator")], 401),
    ("anonymous-underscore-identity", None, "GET", "/api/1/tags/",
     [("X_Gateway_User", OPERATOR)], 401),
    ("anonymous-connection-option", None, "GET", "/api/1/tags/",
     [("Connection", "close, Authorization, X-Gateway-User")], 401),
    ("operator-claims-read", OPERATOR, "DELETE", "/api/1/automations/1/",
     [("X-Forwarded-Uri", "/api/1/chats/1/"), ("X-Forwarded-Method", "GET"),
      ("X-Original-Method", "GET"), ("X-Original-URL", "/api/1/chats/1/")], 403),
    ("operator-claims-owner", OPERATOR, "GET", "/api/1/account/",
     [("X-Gateway-User", "u-owner"), ("X-Gateway-Role", "owner"),
      ("X_Gateway_Role", "owner")], 403),
    ("operator-claims-address", OPERATOR, "GET", "/api/1/account/billing/",
     [("X-Real-IP", "10.20.1.5"), ("X-Forwarded-For", "10.20.1.5"),
      ("Forwarded", "for=10.20.1.5"), ("True-Client-IP", "10.20.1.5")], 403),
]


@pytest.mark.parametrize(
    ("user_id", "method", "target", "headers", "status"),
    [pytest.param(*row[1:], id=row[0]) for row in REJECTED_WITH_SPOOFING],
)
async def test_spoofing_headers_change_no_decision(gateway, sample_api, user_id,
                                                   method, target, headers, status):
    credentials = bearer(gateway, user_id) if user_id else []
    request = build_request(method, target, credentials + headers)
    response = (await exchange(gateway.port, request)).first

    assert_problem(response, status)
    assert await sample_api.recorded() == []


async def test_spoofed_address_scoped_lookup_only(gateway, sample_api):
    """Another operator's chat stays hidden whatever address the client claims."""
    headers = [("X-Real-IP", "10.20.1.5"), ("X-Forwarded-For", "10.20.1.5"),
               ("Forwarded", "for=10.20.1.5"), ("X-Gateway-User", "u-op-2")]
    request = build_request("GET", "/api/1/chats/2/", bearer(gateway) + headers)
    response = (await exchange(gateway.port, request)).first

    assert_problem(response, 404)
    assert await sample_api.forwarded() == []


def as_wire_text(text: str) -> str:
    """Return `text` as its UTF-8 bytes, each as one character of a header value."""
    return text.encode("utf-8").decode("latin-1")


# The upstream builds absolute links from the forwarded host, so a Host the
# gateway does not serve would point them at another site.
REJECTED_HOSTS = [
    pytest.param([("Host", "evil.test")], id="other-name"),
    pytest.param([("Host", "evil.test:80")], id="other-name-with-port"),
    pytest.param([("Host", "127.0.0.1@evil.test")], id="userinfo-trick"),
    pytest.param([("Host", HOST), ("Host", "evil.test")], id="repeated"),
    pytest.param([("Host", "")], id="empty"),
    pytest.param([("Host", "localhost:x@evil.test")], id="userinfo-after-colon"),
    pytest.param([("Host", f"{HOST}:80,evil.test")], id="list-after-port"),
    pytest.param([("Host", f"{HOST}:80/evil.test")], id="path-after-port"),
    pytest.param([("Host", "[::1]evil.test")], id="name-after-literal"),
    pytest.param([("Host", f"{HOST}:")], id="empty-port"),
    pytest.param([("Host", f"{HOST} evil.test")], id="space"),
    pytest.param([("Host", as_wire_text("localhost\u00a0"))],
                 id="non-breaking-space"),
    pytest.param([("Host", as_wire_text("\u2028localhost"))], id="line-separator"),
    pytest.param([("Host", f"{HOST}:99999")], id="port-out-of-range"),
]


@pytest.mark.parametrize("hosts", REJECTED_HOSTS)
async def test_unserved_host_rejected(gateway, sample_api, hosts):
    request = build_request("GET", TAG, hosts + bearer(gateway))
    response = (await exchange(gateway.port, request)).first

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


async def test_missing_host_rejected(gateway, sample_api):
    request = (b"GET " + TAG.encode() + b" HTTP/1.1\r\nAuthorization: Bearer "
               + gateway.token(OPERATOR).encode() + b"\r\nConnection: close\r\n\r\n")
    response = (await exchange(gateway.port, request)).first

    assert_problem(response, 400)
    assert await sample_api.recorded() == []
