"""Guarded body fields: an update that changes ownership needs the ownership action.

Contact 1 lists u-op-1 as its operator and chat 1 is assigned to u-op-1, so
the operator may update both; rewriting `operators` or `assignee` is another
action (add_operator, assign), which operators do not hold.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

JSON = {"Content-Type": "application/json"}

GUARDED_WRITES = [
    pytest.param("chat_operator", "PATCH", "/api/1/contacts/1/",
                 {"operators": ["u-op-1", "u-op-2"]}, 403, id="operator-sets-operators"),
    pytest.param("chat_operator", "PATCH", "/api/1/contacts/1/",
                 {"operators": []}, 403, id="operator-clears-operators"),
    pytest.param("chat_operator", "PATCH", "/api/1/chats/1/",
                 {"assignee": "u-op-2"}, 403, id="operator-sets-assignee"),
    pytest.param("chat_operator", "PATCH", "/api/1/contacts/1/",
                 {"first_name": "Ann"}, 200, id="operator-sets-plain-field"),
    pytest.param("chat_manager", "PATCH", "/api/1/contacts/1/",
                 {"operators": ["u-op-1", "u-op-2"]}, 200, id="manager-sets-operators"),
    pytest.param("service_user", "PATCH", "/api/1/contacts/1/",
                 {"operators": ["u-op-2"]}, 200, id="service-manager-sets-operators"),
]


@pytest.mark.parametrize(("principal", "method", "path", "body", "status"),
                         GUARDED_WRITES)
async def test_guarded_field_needs_its_action(gateway, sample_api, http, principal,
                                               method, path, body, status):
    async with http.request(method, gateway.url + path, json=body,
                            headers=gateway.credentials(principal)) as response:
        await response.read()

    assert response.status == status
    forwarded = await sample_api.forwarded()
    if status == 403:
        assert forwarded == [], "a refused write must not reach the upstream"
    else:
        assert [entry["method"] for entry in forwarded] == [method]


UNREADABLE_BODIES = [
    pytest.param(b'{"first_name": "A", "first_name": "B"}', JSON, 400,
                 id="repeated-key"),
    pytest.param(b'{"operators": ["u-op-2"], "operators": ["u-op-1"]}', JSON, 400,
                 id="repeated-guarded-key"),
    pytest.param(b"{not json", JSON, 400, id="invalid-json"),
    pytest.param(b'{"first_name": NaN}', JSON, 400, id="nan"),
    pytest.param(b'["operators"]', JSON, 400, id="not-an-object"),
    pytest.param(b'{"\\u006fperators": ["u-op-2"]}', JSON, 403, id="escaped-key"),
    pytest.param(b"\x1f\x8b\x08\x00", JSON | {"Content-Encoding": "gzip"}, 415,
                 id="compressed"),
]

# `{"first_name":"A+ACIALAAi-..."}`: one key read as UTF-8, and as UTF-7 a
# string that closes early and adds "operators" before "last_name".
UTF7_BODY = (b'{"first_name":"A+ACIALAAiAG8AcABlAHIAYQB0AG8AcgBzACIAOgBbACIAdQAtAG8'
             b'AcAAtADEAIgAsACIAdQAtAG8AcAAtADIAIgBdACwAIgBsAGEAcwB0AF8AbgBhAG0AZQA'
             b'iADoAIg-"}')
CHARSET_SPELLINGS = [
    pytest.param("application/json; charset=utf-7", id="plain"),
    pytest.param('application/json; charset="UTF-7"', id="quoted"),
    pytest.param('application/json; charset*="utf-7"', id="extended"),
    pytest.param("application/json; charset*=utf-8''utf-7", id="extended-encoded"),
    pytest.param("application/json; charset*0=utf-7", id="continued"),
    pytest.param("application/json;(c)charset=utf-7", id="comment"),
    pytest.param("application/json; charset=utf-8; charset=utf-7", id="repeated"),
    pytest.param('application/json; x="a;charset=utf-7"', id="quoted-semicolon"),
    pytest.param('application/json; a="=?utf-8?q?=5C?="; '
                 'b="=?utf-8?q?=3Bcharset=3Dutf-7=3B?="', id="encoded-words"),
    pytest.param("application/json; charset=utf-7\u00a0", id="non-ascii-space"),
]


async def test_utf7_body_hides_a_guarded_key():
    assert set(json.loads(UTF7_BODY)) == {"first_name"}
    assert "operators" in json.loads(UTF7_BODY.decode("utf-7"))


@pytest.mark.parametrize("content_type", CHARSET_SPELLINGS)
async def test_charset_other_than_utf8_rejected(gateway, sample_api, http,
                                                content_type):
    headers = {"Content-Type": content_type} | gateway.bearer("u-op-1")

    async with http.patch(gateway.url + "/api/1/contacts/1/", data=UTF7_BODY,
                          headers=headers) as response:
        document = await response.json(content_type=None)

    assert response.status == 415
    assert document["status"] == 415
    assert await sample_api.forwarded() == [], "the upstream never saw the body"


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8",
    'application/json; charset="UTF-8"',
    "application/json;",
])
async def test_utf8_spellings_accepted(gateway, sample_api, http, content_type):
    headers = {"Content-Type": content_type} | gateway.bearer("u-op-1")

    async with http.patch(gateway.url + "/api/1/contacts/1/",
                          data=b'{"first_name": "Ann"}', headers=headers) as response:
        await response.read()

    assert response.status == 200


@pytest.mark.parametrize(("body", "headers", "status"), UNREADABLE_BODIES)
async def test_unreadable_guarded_body_rejected(gateway, sample_api, http, body,
                                                headers, status):
    headers = headers | gateway.bearer("u-op-1")

    async with http.patch(gateway.url + "/api/1/contacts/1/", data=body,
                          headers=headers) as response:
        document = await response.json(content_type=None)

    assert response.status == status
    assert document["status"] == status
    assert await sample_api.forwarded() == [], "the upstream never saw the body"


async def test_manager_operators_change_applies_at_once(gateway, sample_api, http):
    path = gateway.url + "/api/1/contacts/2/"
    operator = gateway.bearer("u-op-1")
    async with http.get(path, headers=operator) as before:
        await before.read()

    manager = JSON | gateway.bearer("u-manager")
    body = json.dumps({"operators": ["u-op-1"]})
    async with http.patch(path, data=body, headers=manager):
        pass
    try:
        async with http.get(path, headers=operator) as after:
            await after.read()
    finally:
        # Restored through the gateway, so its cached owners are dropped too.
        restore = json.dumps({"operators": ["u-op-2"]})
        async with http.patch(path, data=restore, headers=manager):
            pass

    assert before.status == 404, "contact 2 belongs to u-op-2 in the seed data"
    assert after.status == 200, "the update through the gateway drops the cached owners"
