"""`RouteTable.match` finds the one route for a decoded path, or 404 / 405."""

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.config.model import RouteConfig
from gateway.errors import MethodNotAllowed, NotFound
from gateway.routing.table import RouteTable
from gateway.routing.target import parse_target
from gateway.routing.template import parse_template

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def route(index: int, methods: tuple[str, ...], path: str, action: str) -> RouteConfig:
    return RouteConfig(
        index=index,
        line=None,
        methods=methods,
        path=parse_template(path),
        resource="things",
        action=action,
        object=None,
        object_parameter=None,
        filter=None,
        invalidates=(),
    )


def segments(path: str) -> tuple[str, ...]:
    return tuple(path[1:].split("/"))


@pytest.fixture(scope="module")
def shipped_table() -> RouteTable:
    return RouteTable(load_config(PROJECT_ROOT / "config.yaml").routes)


@pytest.fixture(scope="module")
def sibling_table() -> RouteTable:
    """Routes where a literal and a parameter compete for the same segment."""
    return RouteTable(
        (
            route(0, ("GET",), "/things/{id}/", "read"),
            route(1, ("GET",), "/things/unread/", "list_unread"),
            route(2, ("GET",), "/things/special/x/", "special_x"),
            route(3, ("GET",), "/things/{id}/y/", "read_y"),
        )
    )


# method, path, resource, action, parameters
SHIPPED_MATCHES = [
    pytest.param("GET", "/api/1/chats/", "chats", "list", {}, id="chat-list"),
    pytest.param(
        "GET", "/api/1/chats/c-100/", "chats", "read", {"id": "c-100"}, id="chat-read"
    ),
    pytest.param(
        "PATCH",
        "/api/1/chats/c-100/",
        "chats",
        "update",
        {"id": "c-100"},
        id="chat-patch",
    ),
    pytest.param(
        "PUT", "/api/1/chats/c-100/", "chats", "update", {"id": "c-100"}, id="chat-put"
    ),
    pytest.param(
        "HEAD",
        "/api/1/chats/c-100/",
        "chats",
        "read",
        {"id": "c-100"},
        id="head-as-get",
    ),
    pytest.param(
        "POST",
        "/api/1/chats/c-100/assign/",
        "chats",
        "assign",
        {"id": "c-100"},
        id="chat-assign",
    ),
    pytest.param(
        "GET",
        "/api/1/chats/c-100/messages/",
        "messages",
        "list",
        {"id": "c-100"},
        id="message-list",
    ),
    pytest.param(
        "POST",
        "/api/1/messages/send_by_phone/",
        "messages",
        "send_by_phone",
        {},
        id="send-by-phone",
    ),
    pytest.param(
        "DELETE",
        "/api/1/contacts/k-100/tags/t-7/",
        "contacts",
        "untag",
        {"id": "k-100", "tag_id": "t-7"},
        id="two-parameters",
    ),
    pytest.param(
        "GET",
        "/api/1/webhooks/w-1/",
        "integrations",
        "read",
        {"id": "w-1"},
        id="webhook-read",
    ),
    pytest.param(
        "GET", "/api/1/account/billing/", "billing", "read", {}, id="billing-read"
    ),
    pytest.param(
        "GET",
        "/api/1/chats/a b/",
        "chats",
        "read",
        {"id": "a b"},
        id="decoded-parameter",
    ),
]

# method, path: no route has this path
NO_ROUTE = [
    pytest.param("GET", "/api/1/chats", id="missing-trailing-slash"),
    pytest.param("GET", "/api/1/chats/c-100", id="object-missing-trailing-slash"),
    pytest.param("GET", "/api/1/chats/c-100/messages", id="nested-missing-slash"),
    pytest.param("GET", "/api/1/chats/c-100/extra/", id="unknown-suffix"),
    pytest.param("GET", "/api/2/chats/", id="unknown-version"),
    pytest.param("GET", "/API/1/chats/", id="case-differs"),
    pytest.param("GET", "/", id="root"),
    pytest.param("GET", "/api/1/", id="prefix-only"),
    pytest.param("GET", "/api/1/chats//", id="empty-parameter"),
    pytest.param("DELETE", "/api/1/contacts//tags/t-7/", id="empty-first-parameter"),
    pytest.param("DELETE", "/api/1/contacts/k-100/tags//", id="empty-last-parameter"),
    pytest.param("GET", "/api/1/chats/c-100/messages/m-1/", id="deeper-than-routes"),
]

# method, path, the Allow header the 405 must carry
WRONG_METHOD = [
    pytest.param(
        "POST", "/api/1/chats/c-100/", "GET, PATCH, PUT, HEAD", id="object-post"
    ),
    pytest.param("DELETE", "/api/1/chats/", "GET, HEAD", id="collection-delete"),
    pytest.param("GET", "/api/1/chats/c-100/assign/", "POST", id="post-only-get"),
    pytest.param("HEAD", "/api/1/chats/c-100/assign/", "POST", id="post-only-head"),
    pytest.param("OPTIONS", "/api/1/contacts/", "GET, POST, HEAD", id="options"),
    pytest.param("get", "/api/1/chats/", "GET, HEAD", id="lower-case-method"),
]


@pytest.mark.parametrize("method, path, resource, action, params", SHIPPED_MATCHES)
def test_shipped_route_matches(shipped_table, method, path, resource, action, params):
    match = shipped_table.match(method, segments(path))

    assert match.route.resource == resource
    assert match.route.action == action
    assert match.params == params


@pytest.mark.parametrize("method, path", NO_ROUTE)
def test_unrouted_path_is_not_found(shipped_table, method, path):
    with pytest.raises(NotFound) as caught:
        shipped_table.match(method, segments(path))

    assert caught.value.reason == "no_route"
    assert caught.value.status == 404


@pytest.mark.parametrize("method, path, allow", WRONG_METHOD)
def test_wrong_method_lists_allowed(shipped_table, method, path, allow):
    with pytest.raises(MethodNotAllowed) as caught:
        shipped_table.match(method, segments(path))

    assert caught.value.status == 405
    assert caught.value.reason == "method_not_allowed"
    assert caught.value.headers == {"Allow": allow}


@pytest.mark.parametrize(
    "path, action, params",
    [
        pytest.param("/things/unread/", "list_unread", {}, id="literal-wins"),
        pytest.param("/things/42/", "read", {"id": "42"}, id="parameter-otherwise"),
        pytest.param("/things/special/x/", "special_x", {}, id="deep-literal"),
        pytest.param(
            "/things/special/y/",
            "read_y",
            {"id": "special"},
            id="falls-back-to-parameter",
        ),
        pytest.param(
            "/things/unread/y/",
            "read_y",
            {"id": "unread"},
            id="literal-name-as-parameter",
        ),
    ],
)
def test_literal_tried_before_parameter(sibling_table, path, action, params):
    match = sibling_table.match("GET", segments(path))

    assert match.route.action == action
    assert match.params == params


def test_failed_literal_branch_leaves_no_parameters(sibling_table):
    with pytest.raises(NotFound):
        sibling_table.match("GET", segments("/things/special/z/"))

    match = sibling_table.match("GET", segments("/things/special/y/"))

    assert match.params == {"id": "special"}


def test_matches_segments_from_parse_target(shipped_table):
    target = parse_target("/api/1/contacts/k%2D100/tags/t-7/", 2048)

    match = shipped_table.match("DELETE", target.segments)

    assert match.params == {"id": "k-100", "tag_id": "t-7"}


def test_conflicting_parameter_names_rejected():
    routes = (
        route(0, ("GET",), "/things/{id}/", "read"),
        route(1, ("DELETE",), "/things/{thing_id}/", "delete"),
    )

    with pytest.raises(ValueError, match=r"names parameter \{thing_id\}"):
        RouteTable(routes)


def test_duplicate_method_and_path_rejected():
    routes = (
        route(0, ("GET", "PUT"), "/things/{id}/", "read"),
        route(1, ("PUT",), "/things/{id}/", "update"),
    )

    with pytest.raises(ValueError, match=r"PUT '/things/\{id\}/' is already routed"):
        RouteTable(routes)
