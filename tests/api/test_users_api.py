"""The users API beyond the role table: fields, pages, owners, keys, the audit trail."""

from __future__ import annotations

import pytest

from .helpers import new_email

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROLES = ["owner", "administrator", "chat_manager", "chat_operator"]


def new_user(role: str = "chat_operator", type: str = "standard", **changes) -> dict:
    return {"name": "New user", "email": new_email(), "role": role, "type": type,
            **changes}


INVALID_BODIES = [
    pytest.param(new_user(role="boss"), "role", ROLES, id="unknown-role"),
    pytest.param(new_user(type="robot"), "type", ["standard", "service"],
                 id="unknown-type"),
    pytest.param({**new_user(), "is_admin": True}, "is_admin",
                 ["name", "email", "role", "type"], id="unknown-field"),
    pytest.param({"name": "No email", "role": "chat_operator", "type": "standard"},
                 "email", None, id="missing-field"),
    pytest.param(new_user(email="not-an-address"), "email", None, id="bad-email"),
    pytest.param(new_user(name=""), "name", None, id="empty-name"),
    pytest.param(new_user(role=["owner"]), "role", None, id="role-not-a-string"),
]


@pytest.mark.parametrize(("body", "field", "allowed"), INVALID_BODIES)
async def test_invalid_new_user_gets_422_naming_the_field(api, gateway, body, field,
                                                          allowed):
    before = await gateway.store.list_users()

    response = await api.call("owner", "POST", "/users", body)

    assert response.status == 422
    assert response.body["field"] == field
    assert response.body.get("allowed") == allowed
    assert await gateway.store.list_users() == before, "a refused user was stored"


async def test_role_change_to_unknown_role_names_allowed_roles(api, gateway):
    response = await api.call("owner", "PUT", "/users/u-op-3/role", {"role": "root"})

    assert response.status == 422
    assert response.body["allowed"] == ROLES


async def test_body_that_is_not_json_gets_400(api, gateway, http):
    async with http.post(
        gateway.url + "/gateway/v1/users",
        data=b"{name: 1}",
        headers={**gateway.credentials("owner"), "Content-Type": "application/json"},
    ) as response:
        assert response.status == 400


async def test_form_body_gets_415(api, gateway, http):
    async with http.post(
        gateway.url + "/gateway/v1/users",
        data={"name": "Form", "email": new_email(), "role": "chat_operator",
              "type": "standard"},
        headers=gateway.credentials("owner"),
    ) as response:
        assert response.status == 415


async def test_email_is_unique_without_regard_to_case(api):
    email = new_email("Case")
    first = await api.call("owner", "POST", "/users", new_user(email=email))

    second = await api.call("owner", "POST", "/users",
                            new_user(email=email.upper()))

    assert first.status == 201
    assert second.status == 409


async def test_email_uniqueness_folds_non_ascii_case(api):
    first = await api.call("owner", "POST", "/users",
                           new_user(email=f"ÉLODIE-{new_email()}"))

    second = await api.call("owner", "POST", "/users",
                            new_user(email=first.body["email"].lower()))

    assert second.status == 409


async def test_listing_pages_cover_every_user_once(api, gateway):
    listed = []
    cursor = None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await api.call("owner", "GET", "/users" + query)
        assert len(page.body["items"]) <= 3
        listed += [user["id"] for user in page.body["items"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break

    # Users whose role the config does not name (other tests add some) are
    # never listed.
    roles = gateway.running.gateway.snapshot.config.roles
    stored = [user.id for user in await gateway.store.list_users(roles=roles)]
    assert listed == stored


@pytest.mark.parametrize(("query", "check"), [
    ("role=chat_operator", lambda user: user["role"] == "chat_operator"),
    ("type=service", lambda user: user["type"] == "service"),
    ("active=false", lambda user: user["active"] is False),
])
async def test_listing_filters(api, gateway, query, check):
    await gateway.store.add_user(name="Gone", email=new_email(), role="chat_operator",
                                 type="standard")
    inactive = await gateway.store.add_user(name="Gone", email=new_email(),
                                            role="chat_operator", type="standard")
    await gateway.store.set_active(inactive.id, False)

    response = await api.call("owner", "GET", f"/users?{query}&limit=500")

    assert response.body["items"], "the filter matched no user"
    assert all(check(user) for user in response.body["items"])


async def test_chat_manager_lists_only_directory_fields(api):
    response = await api.call("chat_manager", "GET", "/users")

    assert {tuple(user) for user in response.body["items"]} == {
        ("id", "name", "email", "role")
    }


@pytest.mark.parametrize("query", ["bogus=1", "limit=0", "limit=501", "cursor=%%%",
                                   "active=yes", "limit=1&limit=2"])
async def test_bad_listing_query_is_refused(api, query):
    response = await api.call("owner", "GET", f"/users?{query}")

    assert response.status in (400, 422)


async def test_unknown_user_gets_404(api):
    response = await api.call("owner", "GET", "/users/u-nobody")

    assert response.status == 404


@pytest.mark.parametrize("change", ["demote", "deactivate", "delete"])
async def test_last_active_owner_cannot_be_removed(api_for, gateway_factory, sample_api,
                                                   change):
    gateway = await gateway_factory(sample_api.url)
    api = await api_for(gateway)
    requests = {
        "demote": ("PUT", "/users/u-owner/role", {"role": "administrator"}),
        "deactivate": ("POST", "/users/u-owner/deactivate", None),
        "delete": ("DELETE", "/users/u-owner", None),
    }

    response = await api.call("owner", *requests[change])

    assert response.status == 409
    assert "last active owner" in response.body["detail"]
    stored = await gateway.store.get_user("u-owner")
    assert (stored.role, stored.active) == ("owner", True)


async def test_owner_can_step_down_once_another_owner_exists(api, gateway):
    second = await api.call("owner", "POST", "/users", new_user(role="owner"))
    token = {"Authorization": f"Bearer {gateway.token(second.body['id'])}"}

    response = await api.call(token, "PUT", f"/users/{second.body['id']}/role",
                              {"role": "administrator"})

    assert response.status == 200


async def test_role_change_applies_to_the_next_request(api, gateway):
    created = await api.call("owner", "POST", "/users", new_user("chat_operator"))
    token = {"Authorization": f"Bearer {gateway.token(created.body['id'])}"}
    before = await api.call(token, "GET", "/users")

    await api.call("owner", "PUT", f"/users/{created.body['id']}/role",
                   {"role": "chat_manager"})
    after = await api.call(token, "GET", "/users")

    assert (before.status, after.status) == (403, 200)


async def test_deactivation_applies_to_the_next_proxied_request(api, gateway, http):
    created = await api.call("owner", "POST", "/users", new_user("chat_manager"))
    token = {"Authorization": f"Bearer {gateway.token(created.body['id'])}"}

    async with http.get(gateway.url + "/api/1/chats/", headers=token) as response:
        assert response.status == 200
    await api.call("administrator", "POST", f"/users/{created.body['id']}/deactivate")
    async with http.get(gateway.url + "/api/1/chats/", headers=token) as response:
        assert response.status == 403


async def test_new_service_user_gets_its_key_once(api, gateway, http):
    created = await api.call("administrator", "POST", "/users",
                             new_user("chat_manager", type="service"))
    key = created.body["api_key"]

    fetched = await api.call("administrator", "GET", f"/users/{created.body['id']}")
    async with http.get(gateway.url + "/api/1/chats/",
                        headers={"X-API-Key": key}) as response:
        assert response.status == 200
    assert "api_key" not in fetched.body


async def test_rotated_key_replaces_the_old_one(api, gateway, http):
    created = await api.call("owner", "POST", "/users",
                             new_user("chat_manager", type="service"))
    user_id, old_key = created.body["id"], created.body["api_key"]

    rotated = await api.call("owner", "POST", f"/users/{user_id}/keys")

    statuses = []
    for key in (old_key, rotated.body["api_key"]):
        async with http.get(gateway.url + "/api/1/chats/",
                            headers={"X-API-Key": key}) as response:
            statuses.append(response.status)
    assert statuses == [401, 200]


async def test_revoked_key_stops_working(api, gateway, http):
    created = await api.call("owner", "POST", "/users",
                             new_user("chat_manager", type="service"))
    user_id, key = created.body["id"], created.body["api_key"]
    prefix = key.split("_")[1]

    revoked = await api.call("owner", "DELETE", f"/users/{user_id}/keys/{prefix}")

    async with http.get(gateway.url + "/api/1/chats/",
                        headers={"X-API-Key": key}) as response:
        assert response.status == 401
    assert revoked.body["revoked_at"] is not None


async def test_key_listing_shows_prefixes_never_keys(api):
    created = await api.call("owner", "POST", "/users",
                             new_user("chat_manager", type="service"))
    await api.call("owner", "POST", f"/users/{created.body['id']}/keys")

    listed = await api.call("owner", "GET", f"/users/{created.body['id']}/keys")

    assert [key["revoked_at"] is None for key in listed.body["items"]] == [False, True]
    assert created.body["api_key"] not in str(listed.body)


async def test_revoke_key_of_other_user_gets_404(api, gateway):
    first = await api.call("owner", "POST", "/users", new_user(type="service"))
    second = await api.call("owner", "POST", "/users", new_user(type="service"))
    prefix = second.body["api_key"].split("_")[1]

    response = await api.call("owner", "DELETE",
                              f"/users/{first.body['id']}/keys/{prefix}")

    assert response.status == 404
    keys = await gateway.store.list_api_keys(second.body["id"])
    assert keys[0].revoked_at is None


async def test_manager_service_user_cannot_add_users(api):
    response = await api.call("service_user", "POST", "/users",
                              new_user("chat_manager", type="service"))

    assert response.status == 403


async def test_audit_entry_has_request_id(api, gateway):
    created = await api.call("owner", "POST", "/users", new_user("chat_operator"))

    changed = await api.call("administrator", "PUT",
                             f"/users/{created.body['id']}/role",
                             {"role": "chat_manager"})

    entries = (await api.call("owner", "GET", "/audit?limit=5")).body["items"]
    entry = next(item for item in entries if item["action"] == "user.update_role")
    assert entry["actor"] == "u-admin"
    assert entry["target"] == created.body["id"]
    assert (entry["before"]["role"], entry["after"]["role"]) == (
        "chat_operator", "chat_manager")
    assert entry["request_id"] == changed.headers["X-Request-ID"]


async def test_refused_change_writes_no_audit_row(api):
    before = (await api.call("owner", "GET", "/audit?limit=1")).body["items"]

    await api.call("administrator", "DELETE", "/users/u-owner")

    after = (await api.call("owner", "GET", "/audit?limit=1")).body["items"]
    assert after == before


async def test_audit_pages_go_back_in_time(api):
    first = await api.call("owner", "GET", "/audit?limit=2")

    second = await api.call("owner", "GET",
                            f"/audit?limit=2&cursor={first.body['next_cursor']}")

    ids = [entry["id"] for entry in first.body["items"] + second.body["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 4


async def test_api_requests_never_reach_the_upstream(api, sample_api):
    await sample_api.clear()

    await api.call("owner", "GET", "/users")
    await api.call("owner", "POST", "/users", new_user())
    await api.call("chat_operator", "GET", "/users")
    await api.call("administrator", "DELETE", "/users/u-owner")

    assert await sample_api.recorded() == []


async def test_unknown_path_under_the_prefix_gets_404(api, gateway, http):
    async with http.get(gateway.url + "/gateway/v2/users",
                        headers=gateway.credentials("owner")) as response:
        assert response.status == 404


async def test_wrong_method_gets_405_with_allow(api, gateway, http):
    async with http.patch(gateway.url + "/gateway/v1/users/u-op-1",
                          headers=gateway.credentials("owner")) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, HEAD, DELETE"


async def test_missing_credentials_get_401(api, gateway, http):
    async with http.get(gateway.url + "/gateway/v1/users") as response:
        assert response.status == 401
