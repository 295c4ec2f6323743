"""What crosses the gateway towards the upstream, and how upstream faults surface.

Header checks read the sample API's request record, which keeps each request's
headers as the upstream received them (names lowercased, repeats joined with
", ").  Requests whose exact bytes matter go over a raw socket, because HTTP
clients normalize paths and headers before sending.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from .http_helpers import free_port, raw_request, send_raw

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = "u-op-1"
OWN_CHAT = "/api/1/chats/1/"


async def forwarded_once(sample_api) -> dict:
    """Return the one client request the upstream received."""
    forwarded = await sample_api.forwarded()
    assert len(forwarded) == 1, forwarded
    return forwarded[0]


async def send_as_operator(gateway, headers: list[tuple[str, str]],
                           target: str = OWN_CHAT):
    credentials = [("Authorization", "Bearer " + gateway.token(OPERATOR))]
    return await send_raw(gateway.port, raw_request("GET", target,
                                                    credentials + headers))


# Each row is a header the client sends, its value, and the value the upstream
# must see.  None means the upstream must not see the header at all.
SPOOFED_HEADERS = [
    ("X-Gateway-User", "u-owner", OPERATOR),
    ("x-gateway-user", "u-owner", OPERATOR),
    ("X-GATEWAY-USER", "u-owner", OPERATOR),
    ("X-Gateway-Role", "owner", "chat_operator"),
    ("X-Gateway-User-Type", "service", "standard"),
    ("X-Gateway-Resolver", "chat", None),
    ("X-Forwarded-For", "10.20.1.5", "127.0.0.1"),
    ("X-Forwarded-Proto", "https", "http"),
    ("X-Forwarded-Host", "evil.test", "gateway.test"),
    ("X-Forwarded-Uri", "/api/1/account/", None),
    ("X-Forwarded-Prefix", "/admin", None),
    ("X-Forwarded-Method", "DELETE", None),
    ("Forwarded", "for=10.20.1.5;proto=https;host=evil.test", None),
    ("X-Real-IP", "10.20.1.5", None),
    ("X-Client-IP", "10.20.1.5", None),
    ("True-Client-IP", "10.20.1.5", None),
    ("X-Original-URL", "/api/1/account/", None),
    ("X-Original-URI", "/api/1/account/", None),
    ("X-Original-Method", "DELETE", None),
    ("X-Rewrite-URL", "/api/1/account/", None),
    ("X-Envoy-Original-Path", "/api/1/account/", None),
    ("Cookie", "session=stolen", None),
    ("Proxy-Authorization", "Basic dXNlcjpwYXNz", None),
]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [pytest.param(*row, id=row[0]) for row in SPOOFED_HEADERS],
)
async def test_spoofed_header_never_forwarded(gateway, sample_api, name, value,
                                              expected):
    response = await send_as_operator(gateway, [(name, value)])
    assert response.status == 200

    received = (await forwarded_once(sample_api))["headers"]
    assert received.get(name.lower()) == expected


async def test_repeated_identity_header_replaced(gateway, sample_api):
    response = await send_as_operator(
        gateway, [("X-Gateway-User", "u-owner"), ("X-Gateway-User", "u-admin")]
    )
    assert response.status == 200

    received = (await forwarded_once(sample_api))["headers"]
    assert received["x-gateway-user"] == OPERATOR


CONNECTION_TOKENS = [
    pytest.param("close, X-Gateway-User, X-Gateway-Role, X-Gateway-User-Type",
                 id="identity-headers"),
    pytest.param("close, x-forwarded-for, X-FORWARDED-PROTO, X-Forwarded-Host",
                 id="forwarded-headers"),
    pytest.param("close,X-Request-ID,X-Gateway-User", id="no-spaces"),
]


@pytest.mark.parametrize("connection", CONNECTION_TOKENS)
async def test_connection_tokens_keep_gateway_headers(gateway, sample_api,
                                                      connection):
    """Headers named in Connection are the client's hop-by-hop headers only."""
    response = await send_as_operator(gateway, [("Connection", connection)])
    assert response.status == 200

    received = (await forwarded_once(sample_api))["headers"]
    assert received["x-gateway-user"] == OPERATOR
    assert received["x-gateway-role"] == "chat_operator"
    assert received["x-gateway-user-type"] == "standard"
    assert received["x-forwarded-for"] == "127.0.0.1"
    assert received["x-forwarded-proto"] == "http"
    assert received["x-forwarded-host"] == "gateway.test"
    assert received["x-request-id"] == response.headers["X-Request-ID"]


async def test_connection_named_client_header_dropped(gateway, sample_api):
    response = await send_as_operator(
        gateway, [("Connection", "close, X-Internal-Auth"), ("X-Internal-Auth", "yes")]
    )
    assert response.status == 200

    received = (await forwarded_once(sample_api))["headers"]
    assert "x-internal-auth" not in received


async def test_ordinary_client_header_forwarded(gateway, sample_api):
    response = await send_as_operator(gateway, [("Accept-Language", "it-IT")])
    assert response.status == 200

    received = (await forwarded_once(sample_api))["headers"]
    assert received["accept-language"] == "it-IT"


@pytest.mark.parametrize(
    ("principal", "user", "role", "user_type"),
    [
        ("owner", "u-owner", "owner", "standard"),
        ("administrator", "u-admin", "administrator", "standard"),
        ("chat_manager", "u-manager", "chat_manager", "standard"),
        ("chat_operator", "u-op-1", "chat_operator", "standard"),
        ("service_user", "u-service", "chat_manager", "service"),
    ],
)
async def test_identity_headers_set_by_gateway(gateway, sample_api, http, principal,
                                               user, role, user_type):
    async with http.get(gateway.url + OWN_CHAT,
                        headers=gateway.credentials(principal)) as response:
        assert response.status == 200

    received = (await forwarded_once(sample_api))["headers"]
    assert received["x-gateway-user"] == user
    assert received["x-gateway-role"] == role
    assert received["x-gateway-user-type"] == user_type


@pytest.mark.parametrize("principal", ["chat_operator", "service_user"])
async def test_credentials_not_forwarded(gateway, sample_api, http, principal):
    async with http.get(gateway.url + OWN_CHAT,
                        headers=gateway.credentials(principal)) as response:
        assert response.status == 200

    received = (await forwarded_once(sample_api))["headers"]
    assert "authorization" not in received
    assert gateway.config.api_key_header.lower() not in received


async def test_forwarded_headers_from_connection(gateway, sample_api, http):
    async with http.get(gateway.url + OWN_CHAT,
                        headers=gateway.bearer(OPERATOR)) as response:
        assert response.status == 200

    received = (await forwarded_once(sample_api))["headers"]
    assert received["x-forwarded-for"] == "127.0.0.1"
    assert received["x-forwarded-proto"] == "http"
    assert received["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"
    assert received["host"] == URL(sample_api.url).raw_authority


async def test_client_request_id_replaced(gateway, sample_api, http):
    headers = {**gateway.bearer(OPERATOR), "X-Request-ID": "client-chosen-id"}
    async with http.get(gateway.url + OWN_CHAT, headers=headers) as response:
        returned = response.headers["X-Request-ID"]

    received = (await forwarded_once(sample_api))["headers"]
    assert returned != "client-chosen-id"
    assert received["x-request-id"] == returned


async def test_trusted_proxy_extends_forwarded_chain(sample_api, http,
                                                     gateway_factory):
    gateway = await gateway_factory(
        sample_api.url, {("forwarding", "trusted_proxies"): ["127.0.0.1/32"]}
    )
    headers = {
        **gateway.bearer(OPERATOR),
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Request-ID": "edge-request-1",
    }
    async with http.get(gateway.url + OWN_CHAT, headers=headers) as response:
        assert response.status == 200
        assert response.headers["X-Request-ID"] == "edge-request-1"

    received = (await forwarded_once(sample_api))["headers"]
    assert received["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert received["x-forwarded-proto"] == "https"
    assert received["x-request-id"] == "edge-request-1"


def check_problem(document: dict, status: int, request_id: str) -> None:
    assert set(document) == {"type", "title", "status", "detail", "request_id"}
    assert document["status"] == status
    assert document["type"].startswith("urn:gateway:problem:")
    assert document["request_id"] == request_id


@pytest.mark.parametrize(
    "principal",
    [pytest.param("owner", id="forwarded"), pytest.param("chat_operator",
                                                         id="resolver-lookup")],
)
async def test_upstream_down_gives_502(http, gateway_factory, principal):
    gateway = await gateway_factory(f"http://127.0.0.1:{free_port()}")

    async with http.get(gateway.url + OWN_CHAT,
                        headers=gateway.credentials(principal)) as response:
        assert response.status == 502
        assert response.content_type == "application/problem+json"
        check_problem(await response.json(), 502, response.headers["X-Request-ID"])


FaultWriter = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def answer_slowly(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")


async def reset_connection(writer: asyncio.StreamWriter) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    connection = writer.get_extra_info("socket")
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def answer_garbage(writer: asyncio.StreamWriter) -> None:
    writer.write(b"THIS IS NOT HTTP\r\n\r\n")


async def truncate_body(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"id\": 5, \"assignee\": \"u-op-1\"")


async def cut_long_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Length: 2000000\r\n\r\n" + b"x" * 600_000)
    await writer.drain()


async def add_hop_by_hop_headers(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close, X-Upstream-Secret\r\n"
                 b"X-Upstream-Secret: internal\r\nKeep-Alive: timeout=5\r\n"
                 b"X-Upstream-Visible: yes\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2\r\n\r\n{}")


async def redirect_elsewhere(writer: asyncio.StreamWriter) -> None:
    # A gateway that followed this redirect would get the garbage of chat 3.
    writer.write(b"HTTP/1.1 302 Found\r\nLocation: /api/1/chats/3/\r\n"
                 b"Content-Length: 0\r\n\r\n")


# Chat 1, 5 and 9 are u-op-1's in the seed, so operator requests to them reach
# the fault through the gateway's ownership lookup.
FAULTS: dict[str, FaultWriter] = {
    "/api/1/chats/1/": answer_slowly,
    "/api/1/chats/2/": reset_connection,
    "/api/1/chats/3/": answer_garbage,
    "/api/1/chats/5/": truncate_body,
    "/api/1/chats/6/": add_hop_by_hop_headers,
    "/api/1/chats/7/": cut_long_stream,
    "/api/1/chats/9/": reset_connection,
    "/api/1/chats/10/": redirect_elsewhere,
}


class FaultUpstream:
    """A raw TCP upstream that responds to each path in FAULTS with its fault."""

    def __init__(self) -> None:
        self.url = ""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        self._handlers.add(asyncio.current_task())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode().partition("?")[0]
            await FAULTS[path](writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._handlers.discard(asyncio.current_task())


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fault_upstream() -> AsyncIterator[FaultUpstream]:
    upstream = FaultUpstream()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest_asyncio.fixture(loop_scope="session")
async def fault_gateway(fault_upstream, gateway_factory):
    """A gateway before the fault upstream that waits at most 0.5 s for it."""
    return await gateway_factory(fault_upstream.url,
                                 {("upstream", "read_timeout"): 0.5})


@pytest.mark.parametrize(
    ("path", "principal", "expected"),
    [
        pytest.param("/api/1/chats/1/", "owner", 504, id="slow"),
        pytest.param("/api/1/chats/1/", "chat_operator", 504, id="slow-lookup"),
        pytest.param("/api/1/chats/2/", "owner", 502, id="reset"),
        pytest.param("/api/1/chats/9/", "chat_operator", 502, id="reset-lookup"),
        pytest.param("/api/1/chats/3/", "owner", 502, id="garbage"),
        pytest.param("/api/1/chats/5/", "owner", 502, id="truncated-body"),
        pytest.param("/api/1/chats/5/", "chat_operator", 502,
                     id="truncated-lookup"),
    ],
)
async def test_upstream_fault_gives_problem(fault_gateway, http, path, principal,
                                            expected):
    async with http.get(fault_gateway.url + path,
                        headers=fault_gateway.credentials(principal)) as response:
        assert response.status == expected
        assert response.content_type == "application/problem+json"
        check_problem(await response.json(), expected,
                      response.headers["X-Request-ID"])


async def test_cut_stream_is_not_whole(fault_gateway, http):
    """A response cut mid-stream reaches the client as an error, not a short body."""
    async with http.get(fault_gateway.url + "/api/1/chats/7/",
                        headers=fault_gateway.credentials("owner")) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_upstream_hop_by_hop_headers_dropped(fault_gateway, http):
    async with http.get(fault_gateway.url + "/api/1/chats/6/",
                        headers=fault_gateway.credentials("owner")) as response:
        assert response.status == 200
        headers = response.headers

    assert "X-Upstream-Secret" not in headers
    assert "Keep-Alive" not in headers
    assert headers["X-Upstream-Visible"] == "yes"


async def test_upstream_redirect_not_followed(fault_gateway, http):
    async with http.get(fault_gateway.url + "/api/1/chats/10/",
                        headers=fault_gateway.credentials("owner"),
                        allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/api/1/chats/3/"


@pytest.mark.parametrize(
    ("target", "forwarded_target"),
    [
        ("/api/1/chats/%31/", "/api/1/chats/1/"),
        ("/api/1/contacts/%31/tags/%32/", "/api/1/contacts/1/tags/2/"),
        ("/api/1/chats/1/?status=open&x=%2F", "/api/1/chats/1/?status=open&x=%2F"),
    ],
)
async def test_path_forwarded_in_canonical_form(gateway, sample_api, target,
                                                forwarded_target):
    method = "DELETE" if "tags" in target else "GET"
    credentials = [("Authorization", "Bearer " + gateway.token("u-owner"))]
    response = await send_raw(gateway.port, raw_request(method, target, credentials))
    assert response.status == 200

    assert (await forwarded_once(sample_api))["raw_path"] == forwarded_target


# Targets that match no route, or that could be read two ways, are refused
# before authentication, and nothing is forwarded.
REFUSED_TARGETS = [
    ("/api/1/users/", 404),
    ("/api/1/chats", 404),
    ("/api/1/chats/1", 404),
    ("/api/1/chats/1/extra/", 404),
    ("/API/1/chats/", 404),
    ("/api/2/chats/", 404),
    ("/", 404),
    ("/_sample/echo/api/1/chats/", 404),
    ("/_sample/requests", 404),
    ("/api/1/chats/../account/", 400),
    ("/api/1/chats/%2e%2e/account/", 400),
    ("/api/1/chats/./1/", 400),
    ("/api/1//chats/", 400),
    ("/api/1/chats%2F1/", 400),
    ("/api/1/chats/1%5C/", 400),
    ("/api/1/chats/1;x=1/", 400),
    ("/api/1/chats/1%00/", 400),
    ("/api/1/chats/%zz/", 400),
    ("http://upstream.test/api/1/account/", 400),
]


@pytest.mark.parametrize(
    ("target", "expected"),
    [pytest.param(target, status, id=target) for target, status in REFUSED_TARGETS],
)
async def test_refused_target_never_forwarded(gateway, sample_api, target, expected):
    credentials = [("Authorization", "Bearer " + gateway.token("u-owner"))]
    response = await send_raw(gateway.port, raw_request("GET", target, credentials))

    assert response.status == expected
    assert response.headers["Content-Type"] == "application/problem+json"
    assert await sample_api.recorded() == []


async def test_long_path_gets_414(gateway, sample_api):
    target = "/api/1/chats/" + "1" * 4000 + "/"
    response = await send_raw(gateway.port, raw_request("GET", target, []))

    assert response.status == 414
    assert await sample_api.recorded() == []


WRONG_METHODS = [
    ("DELETE", "/api/1/chats/1/", {"GET", "HEAD", "PATCH", "PUT"}),
    ("POST", "/api/1/account/billing/", {"GET", "HEAD"}),
    ("PUT", "/api/1/chats/", {"GET", "HEAD"}),
    ("PATCH", "/api/1/contacts/", {"GET", "HEAD", "POST"}),
    ("DELETE", "/api/1/dashboards/summary/", {"GET", "HEAD"}),
    ("GET", "/api/1/chats/1/assign/", {"POST"}),
    ("OPTIONS", "/api/1/chats/", {"GET", "HEAD"}),
    ("TRACE", "/api/1/chats/", {"GET", "HEAD"}),
    ("PROPFIND", "/api/1/chats/", {"GET", "HEAD"}),
]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in WRONG_METHODS],
)
async def test_wrong_method_gets_405(gateway, sample_api, http, method, path,
                                     allowed):
    async with http.request(method, gateway.url + path,
                            headers=gateway.credentials("owner")) as response:
        assert response.status == 405
        allow = response.headers["Allow"]

    assert {token.strip() for token in allow.split(",")} == allowed
    assert await sample_api.recorded() == []


MESSAGES = "/api/1/chats/1/messages/"
METHOD_OVERRIDES = [
    pytest.param([("X-HTTP-Method-Override", "DELETE")], "",
                 id="x-http-method-override"),
    pytest.param([("X-HTTP-Method", "DELETE")], "", id="x-http-method"),
    pytest.param([("X-Method-Override", "DELETE")], "", id="x-method-override"),
    pytest.param([("x-http-method-override", "GET/../users")], "",
                 id="path-like-override"),
    pytest.param([], "?_method=DELETE", id="query-method"),
    pytest.param([], "?_METHOD=delete", id="query-method-uppercase"),
    pytest.param([], "?%5Fmethod=DELETE", id="query-method-encoded"),
    pytest.param([], "?%5f%6d%65%74%68%6f%64=DELETE", id="query-method-all-encoded"),
    pytest.param([], "?text=a&_method=PUT", id="query-method-second"),
    pytest.param([], "?_method", id="query-method-blank"),
    pytest.param([], "?_method%20=DELETE", id="query-method-trailing-space"),
    pytest.param([], "?_%6Dethod=DELETE", id="query-method-partly-encoded"),
    pytest.param([], "?_meth%6Fd=DELETE", id="query-method-tail-encoded"),
]


@pytest.mark.parametrize(("headers", "query"), METHOD_OVERRIDES)
async def test_method_override_is_rejected(gateway, sample_api, headers, query):
    credentials = [("Authorization", "Bearer " + gateway.token("u-owner")),
                   ("Content-Type", "application/json")]
    request = raw_request("POST", MESSAGES + query, credentials + headers,
                          b'{"text": "hello"}')

    response = await send_raw(gateway.port, request)

    assert response.status == 400
    assert await sample_api.recorded() == []


async def test_method_word_in_value_is_allowed(gateway, sample_api, http):
    async with http.get(gateway.url + "/api/1/chats/?search=_method",
                        headers=gateway.credentials("owner")) as response:
        assert response.status == 200

    assert (await forwarded_once(sample_api))["query"] == {"search": ["_method"]}


@pytest_asyncio.fixture(loop_scope="session")
async def small_body_gateway(sample_api, gateway_factory):
    return await gateway_factory(sample_api.url,
                                 {("forwarding", "max_body_bytes"): 1024})


async def test_oversized_body_gets_413(small_body_gateway, sample_api, http):
    body = {"text": "x" * 2000}
    async with http.post(small_body_gateway.url + MESSAGES, json=body,
                         headers=small_body_gateway.credentials("owner")) as response:
        assert response.status == 413

    assert await sample_api.recorded() == []


async def test_oversized_chunked_body_gets_413(small_body_gateway, http):
    async def chunks():
        for _ in range(4):
            yield b"x" * 1000

    headers = small_body_gateway.credentials("owner") | {
        "Content-Type": "application/json"
    }
    async with http.post(small_body_gateway.url + MESSAGES, data=chunks(),
                         headers=headers) as response:
        assert response.status == 413


async def test_body_within_limit_forwarded(small_body_gateway, sample_api, http):
    async with http.post(small_body_gateway.url + MESSAGES, json={"text": "hello"},
                         headers=small_body_gateway.credentials("owner")) as response:
        assert response.status == 201

    assert (await forwarded_once(sample_api))["body"] == '{"text": "hello"}'
