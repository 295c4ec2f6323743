"""A chat operator sees and changes only the chats and contacts assigned to them.

Seed data (sample_api/data.py): chat n has assignee u-op-1, u-op-2, u-op-3 or
none as (n - 1) % 4 is 0, 1, 2 or 3.  Contact n has the operator
OPERATORS[(n - 1) % 3], plus the next one when n is a multiple of 10, and none
when n is a multiple of 25.  The operator in these tests is u-op-1.
"""

from __future__ import annotations

import pytest
from yarl import URL

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = "u-op-1"

# Objects of other operators or of no operator, read and written.
OTHERS_OBJECTS = [
    pytest.param("GET", "/api/1/chats/2/", None, id="chat-of-op-2-read"),
    pytest.param("GET", "/api/1/chats/3/messages/", None, id="chat-of-op-3-messages"),
    pytest.param("GET", "/api/1/chats/4/", None, id="unassigned-chat-read"),
    pytest.param("PATCH", "/api/1/chats/2/", {"status": "closed"},
                 id="chat-of-op-2-update"),
    pytest.param("POST", "/api/1/chats/3/messages/", {"text": "hi"},
                 id="chat-of-op-3-send"),
    pytest.param("POST", "/api/1/chats/4/messages/", {"text": "hi"},
                 id="unassigned-chat-send"),
    pytest.param("GET", "/api/1/contacts/2/", None, id="contact-of-op-2-read"),
    pytest.param("GET", "/api/1/contacts/50/", None, id="contact-of-nobody-read"),
    pytest.param("PATCH", "/api/1/contacts/3/", {"email": "x@example.com"},
                 id="contact-of-op-3-update"),
    pytest.param("DELETE", "/api/1/contacts/2/", None, id="contact-of-op-2-delete"),
    pytest.param("POST", "/api/1/contacts/5/tags/", {"tag": 1},
                 id="contact-of-op-2-tag"),
    pytest.param("DELETE", "/api/1/contacts/3/tags/4/", None,
                 id="contact-of-op-3-untag"),
]


def owners(item: dict) -> list:
    """Return the owners of a chat (its assignee) or of a contact (its operators)."""
    if "assignee" in item:
        return [item["assignee"]]
    return item["operators"]


async def problem(response) -> dict:
    assert response.content_type == "application/problem+json"
    return await response.json()


@pytest.mark.parametrize(("method", "path", "body"), OTHERS_OBJECTS)
async def test_others_objects_are_not_found(gateway, sample_api, http, method, path,
                                             body):
    async with http.request(method, gateway.url + path, json=body,
                            headers=gateway.bearer(OPERATOR)) as response:
        document = await problem(response)

    assert response.status == 404
    assert document["detail"] == "The object does not exist or is not yours."
    assert await sample_api.forwarded() == [], "the request reached the upstream"

    # The resolver's GET of the object is all the upstream may see, and a
    # cached owner lookup skips even that.
    object_path = "/".join(path.split("/")[:5]) + "/"
    seen = {(entry["method"], entry["path"]) for entry in await sample_api.recorded()}
    assert seen <= {("GET", object_path)}


async def test_others_chat_looks_like_missing(gateway, http):
    """A chat of another operator gets the response of a chat that does not exist."""
    responses = []
    for path in ("/api/1/chats/2/", "/api/1/chats/99999/"):
        async with http.get(gateway.url + path,
                            headers=gateway.bearer(OPERATOR)) as response:
            responses.append((response.status, await problem(response)))

    (other_status, other), (missing_status, missing) = responses
    assert other_status == missing_status == 404
    assert other["detail"] == missing["detail"]
    assert other["type"] == missing["type"]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/1/chats/1/", id="own-chat"),
        pytest.param("/api/1/contacts/1/", id="own-contact"),
        pytest.param("/api/1/contacts/10/", id="contact-shared-with-op-2"),
    ],
)
async def test_own_objects_are_readable(gateway, sample_api, http, path):
    async with http.get(gateway.url + path,
                        headers=gateway.bearer(OPERATOR)) as response:
        assert response.status == 200

    assert [entry["path"] for entry in await sample_api.forwarded()] == [path]


LIST_ROUTES = {
    "chats": ("/api/1/chats/", "assignee"),
    "contacts": ("/api/1/contacts/", "operator"),
    "list-members": ("/api/1/lists/1/contacts/", "operator"),
}

# (route, query the client sends, query the upstream must receive)
FORCED_FILTERS = [
    ("chats", "assignee=u-op-2", {}),
    ("chats", "assignee=u-op-2&assignee=u-op-3", {}),
    ("chats", "assignee=u-op-1&assignee=u-op-2", {}),
    ("chats", "Assignee=u-op-2", {}),
    ("chats", "ASSIGNEE=u-op-2", {}),
    ("chats", "assignee[]=u-op-2", {}),
    ("chats", "assignee%5B%5D=u-op-2", {}),
    ("chats", "%61ssignee=u-op-2", {}),
    ("chats", "%41SSIGNEE=u-op-2", {}),
    ("chats", "assignee%20=u-op-2", {}),
    ("chats", "assignee+=u-op-2", {}),
    ("chats", "assignee__in=u-op-2,u-op-3", {}),
    ("chats", "assignee=null", {}),
    ("chats", "assignee=", {}),
    ("chats", "status=open&assignee=u-op-2", {"status": ["open"]}),
    ("chats", "status=open%3Bassignee=u-op-2", {"status": ["open;assignee=u-op-2"]}),
    ("chats", "search=a%26assignee%3Du-op-2", {"search": ["a&assignee=u-op-2"]}),
    ("contacts", "operator=u-op-2", {}),
    ("contacts", "operator=u-op-2&operator=u-op-3", {}),
    ("contacts", "Operator=u-op-2", {}),
    ("contacts", "operator[]=u-op-2", {}),
    ("contacts", "%6Fperator=u-op-2", {}),
    ("list-members", "operator=u-op-2", {}),
    ("list-members", "OPERATOR=u-op-2&page_size=5", {"page_size": ["5"]}),
]


@pytest.mark.parametrize(
    ("route", "query", "kept"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in FORCED_FILTERS],
)
async def test_client_filter_copies_are_replaced(gateway, sample_api, http, route,
                                                 query, kept):
    path, param = LIST_ROUTES[route]
    url = URL(gateway.url + path + "?" + query, encoded=True)

    async with http.get(url, headers=gateway.bearer(OPERATOR)) as response:
        assert response.status == 200
        document = await response.json()

    forwarded = await sample_api.forwarded()
    assert len(forwarded) == 1
    assert forwarded[0]["query"] == {**kept, param: [OPERATOR]}

    for item in document["results"]:
        assert OPERATOR in owners(item)


@pytest.mark.parametrize("route", list(LIST_ROUTES))
async def test_unfiltered_upstream_still_scoped(gateway, sample_api, http, route):
    """With an upstream that ignores filters, only own items come back."""
    path, _ = LIST_ROUTES[route]
    await sample_api.ignore_filters(True)

    async with http.get(gateway.url + path + "?page_size=100",
                        headers=gateway.bearer(OPERATOR)) as response:
        assert response.status == 200
        document = await response.json()

    results = document["results"]
    assert results, "the first page holds items of u-op-1"
    assert [item for item in results if OPERATOR not in owners(item)] == []
    assert document["count"] == len(results), "count reveals dropped items"
    assert document["next"] is None
    assert document["previous"] is None


async def test_unfiltered_upstream_hides_unassigned(gateway, sample_api, http):
    await sample_api.ignore_filters(True)

    async with http.get(gateway.url + "/api/1/chats/?page_size=100",
                        headers=gateway.bearer(OPERATOR)) as response:
        document = await response.json()

    assert [c for c in document["results"] if c["assignee"] is None] == []


async def test_list_never_asks_for_unassigned(gateway, sample_api, http):
    async with http.get(gateway.url + "/api/1/chats/?page_size=100",
                        headers=gateway.bearer(OPERATOR)) as response:
        document = await response.json()

    assert document["count"] == 75
    assert (await sample_api.forwarded())[0]["query"] == {
        "assignee": [OPERATOR], "page_size": ["100"],
    }


@pytest.mark.parametrize(
    "query",
    ["", "?operator=u-op-2", "?operator=u-op-2&operator=u-op-3", "?Operator=",
     "?%6Fperator=u-op-3"],
)
async def test_dashboard_shows_own_figures(gateway, sample_api, http, query):
    async with http.get(URL(gateway.url + "/api/1/dashboards/summary/" + query,
                            encoded=True),
                        headers=gateway.bearer(OPERATOR)) as response:
        assert response.status == 200
        summary = await response.json()

    assert (await sample_api.forwarded())[0]["query"] == {"operator": [OPERATOR]}
    assert summary["operator"] == OPERATOR

    async with http.get(gateway.url + "/api/1/dashboards/summary/?operator=u-op-1",
                        headers=gateway.credentials("chat_manager")) as response:
        assert summary == await response.json()


async def test_manager_dashboard_is_unfiltered(gateway, sample_api, http):
    async with http.get(gateway.url + "/api/1/dashboards/summary/",
                        headers=gateway.credentials("chat_manager")) as response:
        summary = await response.json()

    assert (await sample_api.forwarded())[0]["query"] == {}
    assert summary["operator"] is None


@pytest.mark.parametrize("ignore_filters", [False, True], ids=["filtering", "fault"])
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/1/chats/?search=Chat%202", id="chats"),
        pytest.param("/api/1/contacts/?search=rossi", id="contacts"),
    ],
)
async def test_search_stays_scoped(gateway, sample_api, http, path, ignore_filters):
    await sample_api.ignore_filters(ignore_filters)

    async with http.get(gateway.url + path,
                        headers=gateway.bearer(OPERATOR)) as response:
        assert response.status == 200
        document = await response.json()

    forwarded = (await sample_api.forwarded())[0]
    assert "search" in forwarded["query"]
    assert document["results"], "the search matches some items of u-op-1"
    assert [item for item in document["results"] if OPERATOR not in owners(item)] == []


# (change sent by the chat manager, object read by operators, operator who
# loses access, operator who gains it)
OWNERSHIP_CHANGES = [
    pytest.param("/api/1/chats/1/assign/", {"operator": "u-op-2"},
                 "/api/1/chats/1/", "u-op-1", "u-op-2", id="chat-assign"),
    pytest.param("/api/1/chats/1/unassign/", {}, "/api/1/chats/1/", "u-op-1", None,
                 id="chat-unassign"),
    pytest.param("/api/1/chats/4/assign/", {"operator": "u-op-1"},
                 "/api/1/chats/4/", None, "u-op-1", id="unassigned-chat-assign"),
    pytest.param("/api/1/contacts/1/add_operator/", {"operator": "u-op-2"},
                 "/api/1/contacts/1/", None, "u-op-2", id="contact-add-operator"),
    pytest.param("/api/1/contacts/1/remove_operator/", {"operator": "u-op-1"},
                 "/api/1/contacts/1/", "u-op-1", None, id="contact-remove-operator"),
]


async def status_for(http, gateway, path: str, user_id: str) -> int:
    headers = gateway.bearer(user_id)
    async with http.get(gateway.url + path, headers=headers) as response:
        return response.status


@pytest.mark.parametrize(("change", "body", "path", "loser", "gainer"),
                         OWNERSHIP_CHANGES)
async def test_ownership_change_applies_at_once(sample_api, http, gateway_factory,
                                                change, body, path, loser, gainer):
    # This test starts its own gateway, so its resolver cache ends with the test.
    gateway = await gateway_factory(sample_api.url)
    assert gateway.config.resolvers["chat"].cache_seconds > 0

    # Both reads fill the resolver cache with the owners before the change.
    if loser is not None:
        assert await status_for(http, gateway, path, loser) == 200
    if gainer is not None:
        assert await status_for(http, gateway, path, gainer) == 404

    async with http.post(gateway.url + change, json=body,
                         headers=gateway.credentials("chat_manager")) as response:
        assert response.status == 200

    if loser is not None:
        assert await status_for(http, gateway, path, loser) == 404
    if gainer is not None:
        assert await status_for(http, gateway, path, gainer) == 200


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/api/1/chats/", 200, id="chats-list"),
        pytest.param("/api/1/contacts/", 200, id="contacts-list"),
        pytest.param("/api/1/dashboards/summary/", 200, id="dashboard"),
        pytest.param("/api/1/chats/1/", 200, id="own-chat"),
        pytest.param("/api/1/chats/2/", 404, id="other-chat"),
    ],
)
async def test_head_scoped_like_get(gateway, sample_api, http, path, expected):
    """HEAD is authorized and scoped as the GET of the same route."""
    async with http.head(gateway.url + path,
                         headers=gateway.bearer(OPERATOR)) as response:
        assert response.status == expected


async def test_reassignment_covers_id_spellings(sample_api, http, gateway_factory):
    """Losing a chat ends access under every spelling of its id, such as 01."""
    gateway = await gateway_factory(sample_api.url)
    assert await status_for(http, gateway, "/api/1/chats/01/", OPERATOR) == 200

    async with http.post(gateway.url + "/api/1/chats/1/assign/",
                         json={"operator": "u-op-2"},
                         headers=gateway.credentials("chat_manager")) as response:
        assert response.status == 200
    await sample_api.clear()

    async with http.post(gateway.url + "/api/1/chats/01/messages/",
                         json={"text": "still mine?"},
                         headers=gateway.bearer(OPERATOR)) as response:
        assert response.status == 404

    assert await sample_api.forwarded() == [], "the write reached the upstream"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/api/1/chats/4/", 200), ("/api/1/chats/2/", 404)],
)
async def test_unassigned_chats_visible_when_configured(sample_api, http,
                                                        gateway_factory, path,
                                                        expected):
    gateway = await gateway_factory(sample_api.url,
                                    {("operators", "see_unassigned_chats"): True})

    assert await status_for(http, gateway, path, OPERATOR) == expected


async def test_raw_semicolon_in_query_refused(gateway, sample_api, http):
    # Some frameworks split queries on ";", so "status=open;assignee=u-op-2"
    # would carry a second filter past the gateway's reading of one parameter.
    url = gateway.url + "/api/1/chats/?status=open;assignee=u-op-2"
    async with http.get(URL(url, encoded=True),
                        headers=gateway.bearer(OPERATOR)) as response:
        document = await problem(response)

    assert response.status == 400
    assert document["status"] == 400
    assert await sample_api.forwarded() == []
