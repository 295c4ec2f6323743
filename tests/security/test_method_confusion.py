"""Requests whose method, as the upstream would run it, differs from the one checked.

Frameworks honour method override headers and `_method` parameters, so a
POST the gateway allowed could run upstream as a DELETE.  The gateway
rejects them with 400.  HEAD is authorized as the GET of the same route and
gets the status GET would.  Methods no route names get 405 and are never
forwarded.  Targets that name another host (absolute form, authority form,
`*`) get 400, and so does CONNECT, unless its target is a routed path (405).

As u-op-1, who may post messages in chat 1 but not delete anything there.
"""

from __future__ import annotations

import pytest
from yarl import URL

from .wire import assert_problem, build_request, exchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = "u-op-1"
MESSAGES = "/api/1/chats/1/messages/"
JSON_BODY = b'{"text": "hello"}'


def bearer(gateway, user_id: str = OPERATOR) -> list[tuple[str, str]]:
    return [("Authorization", "Bearer " + gateway.token(user_id))]


async def post_message(gateway, target: str, headers: list[tuple[str, str]],
                       body: bytes = JSON_BODY,
                       content_type: str = "application/json"):
    request = build_request("POST", target, bearer(gateway) + headers + [
        ("Content-Type", content_type)], body)
    return (await exchange(gateway.port, request)).first


OVERRIDE_HEADERS = [
    pytest.param([("X-HTTP-Method-Override", "DELETE")], id="x-http-method-override"),
    pytest.param([("x-http-method-override", "delete")], id="lowercase"),
    pytest.param([("X-HTTP-Method", "DELETE")], id="x-http-method"),
    pytest.param([("X-Method-Override", "DELETE")], id="x-method-override"),
    pytest.param([("X-HTTP-Method-Override", "GET/../account")], id="path-like-value"),
    pytest.param([("X-HTTP-Method-Override", "")], id="empty-value"),
    pytest.param([("X-HTTP-Method-Override", "DELETE"), ("X-Method-Override", "DELETE"),
                  ("X-HTTP-Method", "DELETE")], id="all-three"),
]


@pytest.mark.parametrize("headers", OVERRIDE_HEADERS)
async def test_override_header_rejected(gateway, sample_api, headers):
    response = await post_message(gateway, MESSAGES, headers)

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


async def test_override_header_on_read_rejected(gateway, sample_api):
    request = build_request("GET", "/api/1/chats/1/",
                            bearer(gateway) + [("X-HTTP-Method-Override", "PATCH")])
    response = (await exchange(gateway.port, request)).first

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


# Every way a query parser could read a parameter named `_method`.
METHOD_PARAMETERS = [
    pytest.param("?_method=DELETE", id="plain"),
    pytest.param("?_METHOD=delete", id="uppercase"),
    pytest.param("?_Method=DELETE", id="mixed-case"),
    pytest.param("?%5Fmethod=DELETE", id="underscore-encoded"),
    pytest.param("?%5fmethod=DELETE", id="underscore-encoded-lowercase"),
    pytest.param("?_%6Dethod=DELETE", id="letter-encoded"),
    pytest.param("?_meth%6Fd=DELETE", id="last-letters-encoded"),
    pytest.param("?%5F%6D%65%74%68%6F%64=DELETE", id="all-encoded"),
    pytest.param("?%5F%4D%45%54%48%4F%44=DELETE", id="all-encoded-uppercase"),
    pytest.param("?_method%20=DELETE", id="trailing-encoded-space"),
    pytest.param("?%20_method=DELETE", id="leading-encoded-space"),
    pytest.param("?+_method=DELETE", id="leading-plus"),
    pytest.param("?_method+=DELETE", id="trailing-plus"),
    pytest.param("?_method", id="no-value"),
    pytest.param("?_method=", id="empty-value"),
    pytest.param("?text=a&_method=PUT", id="second-parameter"),
    pytest.param("?_method=GET&_method=DELETE", id="repeated"),
    pytest.param("?x=1;_method=DELETE", id="semicolon-separator"),
]


@pytest.mark.parametrize("query", METHOD_PARAMETERS)
async def test_method_parameter_rejected(gateway, sample_api, query):
    response = await post_message(gateway, MESSAGES + query, [])

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


async def test_method_in_form_body_not_forwarded(gateway, sample_api):
    """A form body is not a media type the route takes, so `_method` never arrives."""
    response = await post_message(gateway, MESSAGES, [], b"_method=DELETE",
                                  "application/x-www-form-urlencoded")

    assert_problem(response, 415)
    assert await sample_api.recorded() == []


METHOD_FIELDS = [
    pytest.param(b'{"text": "hi", "_method": "DELETE"}', id="plain"),
    pytest.param(b'{"text": "hi", "_METHOD": "DELETE"}', id="uppercase"),
    pytest.param(b'{"text": "hi", "\\u005fmethod": "DELETE"}', id="escaped"),
    pytest.param(b'{"text": "hi", " _method ": "DELETE"}', id="spaces"),
]


@pytest.mark.parametrize("body", METHOD_FIELDS)
async def test_method_field_in_json_body_rejected(gateway, sample_api, body):
    response = await post_message(gateway, MESSAGES, [], body)

    assert_problem(response, 400)
    assert await sample_api.forwarded() == [], "only the owner lookup may reach it"


async def test_method_text_in_a_value_forwarded(gateway, sample_api):
    response = await post_message(gateway, MESSAGES, [],
                                  b'{"text": "set _method to DELETE"}')

    assert response.status == 201
    assert len(await sample_api.forwarded()) == 1


# Each row: the user, the path, and the status GET gets.
READS = [
    ("operator-account", OPERATOR, "/api/1/account/", 403),
    ("operator-billing", OPERATOR, "/api/1/account/billing/", 403),
    ("operator-automations", OPERATOR, "/api/1/automations/", 403),
    ("operator-other-chat", OPERATOR, "/api/1/chats/2/", 404),
    ("operator-other-contact", OPERATOR, "/api/1/contacts/2/", 404),
    ("manager-integrations", "u-manager", "/api/1/webhooks/1/", 403),
    ("manager-templates", "u-manager", "/api/1/templates/", 403),
    ("anonymous-chat", None, "/api/1/chats/1/", 401),
    ("operator-own-chat", OPERATOR, "/api/1/chats/1/", 200),
    ("operator-chat-list", OPERATOR, "/api/1/chats/", 200),
    ("operator-dashboard", OPERATOR, "/api/1/dashboards/summary/", 200),
]


@pytest.mark.parametrize(
    ("user_id", "path", "status"),
    [pytest.param(*row[1:], id=row[0]) for row in READS],
)
async def test_head_authorized_as_get(gateway, sample_api, user_id, path, status):
    credentials = bearer(gateway, user_id) if user_id else []
    get = (await exchange(gateway.port, build_request("GET", path, credentials))).first
    await sample_api.clear()
    head = (await exchange(gateway.port, build_request("HEAD", path, credentials),
                           head=True)).first

    assert get.status == status
    assert head.status == status
    forwarded = await sample_api.forwarded()
    if status >= 400:
        assert_problem(get, status)
        # A HEAD response has no body, so only its media type marks a problem.
        assert head.headers["Content-Type"].startswith("application/problem+json")
        assert forwarded == []
    else:
        # HEAD goes upstream as HEAD, or as GET where the response must be read
        # to scope it, and in both cases for the path that was authorized.
        assert [entry["method"] for entry in forwarded] in (["HEAD"], ["GET"])
        assert [entry["raw_path"].partition("?")[0] for entry in forwarded] == [path]


async def test_head_on_post_only_route_gets_405(gateway, sample_api):
    request = build_request("HEAD", "/api/1/chats/1/assign/", bearer(gateway))
    response = (await exchange(gateway.port, request, head=True)).first

    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert await sample_api.recorded() == []


# Methods that no route names.  405 comes before authentication, so these go
# with and without credentials.
UNROUTED_METHODS = [
    ("PROPFIND", "/api/1/chats/", []),
    ("TRACE", "/api/1/chats/", []),
    ("TRACE", "/api/1/chats/1/", [("Max-Forwards", "0")]),
    ("OPTIONS", "/api/1/account/", []),
    ("OPTIONS", "/api/1/account/", [("Origin", "https://evil.test"),
                                    ("Access-Control-Request-Method", "DELETE")]),
    ("MKCOL", "/api/1/chats/", []),
    ("PURGE", "/api/1/chats/1/", []),
    ("SEARCH", "/api/1/contacts/", []),
    ("PATCH", "/api/1/account/billing/", []),
    ("DELETE", "/api/1/chats/1/", []),
]


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "owner"])
@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}{'-' if row[2] else ''}"
                  f"{'-'.join(name for name, _ in row[2])}") for row in UNROUTED_METHODS],
)
async def test_unrouted_method_gets_405(gateway, sample_api, method, path, headers,
                                        authenticated):
    credentials = bearer(gateway, "u-owner") if authenticated else []
    request = build_request(method, path, credentials + headers)
    response = (await exchange(gateway.port, request)).first

    assert_problem(response, 405)
    allowed = {token.strip() for token in response.headers["Allow"].split(",")}
    assert method not in allowed
    assert await sample_api.recorded() == []


async def test_unknown_method_token_rejected(gateway, sample_api):
    """llhttp rejects unknown methods (400), the Python parser routes them (405)."""
    request = build_request("FOO", "/api/1/chats/", bearer(gateway, "u-owner"))
    response = (await exchange(gateway.port, request)).first

    assert response.status in (400, 405)
    assert_problem(response, response.status)
    assert await sample_api.recorded() == []


def other_host_targets(sample_api) -> dict[str, str]:
    upstream = URL(sample_api.url).raw_authority
    return {
        "absolute-form-other-host": "http://upstream.test/api/1/chats/1/",
        "absolute-form-upstream": f"http://{upstream}/api/1/chats/1/",
        "absolute-form-https": "https://127.0.0.1/api/1/chats/1/",
        "absolute-form-uppercase-scheme": "HTTP://127.0.0.1/api/1/chats/1/",
        "authority-form": "upstream.test:443",
        "asterisk-form": "*",
        "no-leading-slash": "api/1/chats/1/",
    }


@pytest.mark.parametrize("case", [
    "absolute-form-other-host", "absolute-form-upstream", "absolute-form-https",
    "absolute-form-uppercase-scheme", "authority-form", "asterisk-form",
    "no-leading-slash",
])
@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
async def test_non_origin_target_rejected(gateway, sample_api, method, case):
    target = other_host_targets(sample_api)[case]
    request = build_request(method, target, bearer(gateway, "u-owner"))
    response = (await exchange(gateway.port, request)).first

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


def connect_targets(sample_api) -> dict[str, tuple[str, int]]:
    """Return each CONNECT target with its status: 400, refused before routing."""
    return {
        "other-host": ("upstream.test:443", 400),
        "upstream-itself": (URL(sample_api.url).raw_authority, 400),
        "origin-form-path": ("/api/1/chats/1/", 400),
        "non-ascii-host": ("\u00e9.test:443", 400),
    }


@pytest.mark.parametrize("case", ["other-host", "upstream-itself", "origin-form-path",
                                  "non-ascii-host"])
async def test_connect_rejected_and_closed(gateway, sample_api, case):
    """A rejected CONNECT must not leave a connection that reads as a tunnel."""
    target, status = connect_targets(sample_api)[case]
    request = build_request("CONNECT", target, bearer(gateway, "u-owner"))
    result = await exchange(gateway.port, request, timeout=3)

    assert len(result.responses) == 1, result.data
    assert_problem(result.first, status)
    assert result.closed, "the gateway kept the connection open"
    assert await sample_api.recorded() == []
