"""The users API against hostile input: slow bodies, races, odd text, probes."""

from __future__ import annotations

import asyncio
import base64

import pytest

from gateway.store import StoreConflict

from .helpers import new_email

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_key_revoked_while_the_body_arrives_is_refused(api, gateway):
    created = await api.call("owner", "POST", "/users",
                             {"name": "Robot", "email": new_email(),
                              "role": "administrator", "type": "service"})
    key = created.body["api_key"]
    email = new_email("backdoor")
    body = (f'{{"name": "Backdoor", "email": "{email}", "role": "administrator", '
            '"type": "service"}').encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"POST /gateway/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"X-API-Key: " + key.encode() + b"\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:1])
    await writer.drain()
    await asyncio.sleep(0.2)

    await gateway.store.revoke_api_key(key)
    writer.write(body[1:])
    await writer.drain()
    status_line = await reader.readline()
    writer.close()

    assert status_line.split()[1] == b"401"
    assert email not in [user.email for user in await gateway.store.list_users()]


async def test_stale_role_change_is_refused(gateway):
    user = await gateway.store.add_user(name="Target", email=new_email(),
                                        role="chat_operator", type="standard")
    await gateway.store.set_role(user.id, "owner")

    with pytest.raises(StoreConflict):
        await gateway.store.delete_user(user.id, expect_role="chat_operator")

    assert await gateway.store.get_user(user.id) is not None


@pytest.mark.parametrize("name", ["Eve\nu-ghost\towner", "Bob\x1b[31m", "\u202eevil",
                                  "\u200b", "a" * 400])
async def test_name_with_hidden_characters_gets_422(api, name):
    response = await api.call("owner", "POST", "/users",
                              {"name": name, "email": new_email(),
                               "role": "chat_operator", "type": "standard"})

    assert response.status == 422
    assert response.body["field"] == "name"


async def test_composed_and_decomposed_emails_are_one(api):
    local = new_email("emile").split("@")[0]
    first = await api.call("owner", "POST", "/users",
                           {"name": "Émile", "email": f"\u00c9{local}@example.com",
                            "role": "chat_operator", "type": "standard"})

    second = await api.call("owner", "POST", "/users",
                            {"name": "Émile", "email": f"e\u0301{local}@example.com",
                             "role": "chat_operator", "type": "standard"})

    assert (first.status, second.status) == (201, 409)


async def test_deleted_user_id_is_not_given_again(gateway):
    user = await gateway.store.add_user(name="Gone", email=new_email(),
                                        role="chat_operator", type="standard",
                                        user_id="u-reused")
    await gateway.store.delete_user(user.id)

    with pytest.raises(StoreConflict):
        await gateway.store.add_user(name="New", email=new_email(),
                                     role="administrator", type="standard",
                                     user_id="u-reused")


@pytest.mark.parametrize(("method", "path"), [
    ("DELETE", "/users/u-owner"),
    ("DELETE", "/users/u-nobody"),
    ("GET", "/users/u-service/keys"),
    ("GET", "/users/u-owner/keys"),
])
async def test_operator_learns_nothing_of_other_users(api, method, path):
    response = await api.call("chat_operator", method, path)

    assert response.status == 403
    assert "u-" not in response.body["detail"]


@pytest.mark.parametrize("query", ["active=false", "type=service"])
async def test_manager_cannot_filter_by_state_or_type(api, query):
    response = await api.call("chat_manager", "GET", f"/users?{query}")

    assert response.status == 403


async def test_manager_directory_lists_active_users_only(api, gateway):
    user = await gateway.store.add_user(name="Away", email=new_email(),
                                        role="chat_operator", type="standard")
    await gateway.store.set_active(user.id, False)

    listed = await api.call("chat_manager", "GET", "/users?limit=500")

    assert user.id not in [item["id"] for item in listed.body["items"]]


OVERFLOW_CURSOR = base64.urlsafe_b64encode(str(2**63).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("path", "field"), [
    ("/users?limit=%C2%B2", "limit"),
    ("/users?limit=%D9%A1", "limit"),
    ("/audit?limit=%C2%B2", "limit"),
    (f"/audit?cursor={OVERFLOW_CURSOR}", "cursor"),
    ("/users?cursor=" + "A" * 300, "cursor"),
    ("/users?role=bogus", "role"),
    ("/users?type=robot", "type"),
])
async def test_bad_query_value_gets_422_naming_it(api, path, field):
    response = await api.call("owner", "GET", path)

    assert response.status == 422
    assert response.body["field"] == field


async def test_deeply_nested_body_gets_400(api, gateway, http):
    body = b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    async with http.post(gateway.url + "/gateway/v1/users", data=body,
                         headers={**gateway.credentials("owner"),
                                  "Content-Type": "application/json"}) as response:
        assert response.status == 400


async def test_lone_surrogate_in_body_gets_400(api, gateway, http):
    body = (b'{"name": "\\ud800", "email": "s@example.com", "role": "chat_operator",'
            b' "type": "standard"}')
    async with http.post(gateway.url + "/gateway/v1/users", data=body,
                         headers={**gateway.credentials("owner"),
                                  "Content-Type": "application/json"}) as response:
        assert response.status == 400


async def test_huge_integer_gets_400_naming_it(api, gateway, http):
    body = b'{"origin": "https://partner.example", "lifetime": ' + b"9" * 25 + b"}"
    async with http.post(gateway.url + "/gateway/v1/embed/sessions", data=body,
                         headers={**gateway.credentials("service_user"),
                                  "Content-Type": "application/json"}) as response:
        problem = await response.json(content_type=None)

    assert response.status == 400
    assert "integer outside the 64-bit range" in problem["detail"]


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
async def test_non_json_number_gets_400(api, gateway, http, constant):
    body = b'{"origin": "https://partner.example", "lifetime": ' + constant + b"}"
    async with http.post(gateway.url + "/gateway/v1/embed/sessions", data=body,
                         headers={**gateway.credentials("service_user"),
                                  "Content-Type": "application/json"}) as response:
        problem = await response.json(content_type=None)

    assert response.status == 400
    assert problem["detail"] == "The request body is not valid JSON."


async def test_whole_key_in_revoke_path_is_refused(api):
    created = await api.call("owner", "POST", "/users",
                             {"name": "Robot", "email": new_email(),
                              "role": "chat_manager", "type": "service"})

    response = await api.call("owner", "DELETE",
                              f"/users/{created.body['id']}/keys/{created.body['api_key']}")

    assert response.status in (400, 404)
