"""Sign-in to the users page: login links, the session cookie, CSRF, sign-out."""

from __future__ import annotations

import asyncio
import sys
from http.cookies import SimpleCookie

import aiohttp
import pytest

from .helpers import new_email

pytestmark = pytest.mark.asyncio(loop_scope="session")

COOKIE = "__Host-gateway-session"


async def show_link(http, gateway, code: str) -> tuple[aiohttp.ClientResponse, str]:
    """Open a login link as a browser or a link preview would: GET, no redirect."""
    async with http.get(gateway.url + f"/gateway/login?code={code}",
                        allow_redirects=False) as response:
        return response, await response.text()


async def press_sign_in(http, gateway, code: str, *, headers=None, data=None):
    """POST the sign-in form of a login link's page, from the gateway's origin."""
    headers = {"Origin": gateway.url} if headers is None else headers
    async with http.post(gateway.url + "/gateway/login", headers=headers,
                         data={"code": code} if data is None else data,
                         allow_redirects=False) as response:
        await response.read()
        return response


async def open_link(http, gateway, code: str):
    """Open a login link and press its sign-in button; return the POST's response."""
    await show_link(http, gateway, code)
    return await press_sign_in(http, gateway, code)


async def sign_in(http, gateway, user_id: str = "u-owner") -> dict[str, str]:
    """Sign `user_id` in with a login code; return the headers the page would send."""
    code = gateway.running.sessions.create_login_code(user_id, 60)
    response = await open_link(http, gateway, code)
    token = response.cookies[COOKIE].value
    headers = {"Cookie": f"{COOKIE}={token}"}
    async with http.get(gateway.url + "/gateway/v1/session", headers=headers) as answer:
        csrf = (await answer.json())["csrf_token"]
    return {**headers, "Origin": gateway.url, "X-CSRF-Token": csrf}


async def test_login_link_sets_a_strict_host_only_cookie(http, gateway):
    code = gateway.running.sessions.create_login_code("u-owner", 60)

    response = await open_link(http, gateway, code)

    assert response.status == 303
    assert response.headers["Location"] == "/gateway/users/"
    cookie = SimpleCookie(response.headers["Set-Cookie"])[COOKIE]
    assert cookie["path"] == "/"
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["domain"] == ""


async def test_login_response_is_not_referred_or_cached(http, gateway):
    code = gateway.running.sessions.create_login_code("u-owner", 60)

    response = await open_link(http, gateway, code)

    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


async def test_login_link_works_once(http, gateway):
    code = gateway.running.sessions.create_login_code("u-owner", 60)

    first = await open_link(http, gateway, code)
    second = await open_link(http, gateway, code)

    assert (first.status, second.status) == (303, 401)
    assert COOKIE not in second.cookies


async def test_login_page_does_not_use_up_the_link(http, gateway):
    code = gateway.running.sessions.create_login_code("u-owner", 60)

    previews = [(await show_link(http, gateway, code))[0] for _ in range(3)]
    signed_in = await press_sign_in(http, gateway, code)

    assert [preview.status for preview in previews] == [200, 200, 200]
    assert all(COOKIE not in preview.cookies for preview in previews)
    assert signed_in.status == 303


async def test_login_page_names_the_account_it_opens(http, gateway):
    user = await gateway.store.add_user(name="Ann <b>Bold</b> & Co",
                                        email=new_email("page"),
                                        role="chat_manager", type="standard")
    code = gateway.running.sessions.create_login_code(user.id, 60)

    page, text = await show_link(http, gateway, code)

    assert page.content_type == "text/html"
    assert "Ann &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in text
    assert user.email in text
    assert "chat_manager" in text
    assert '<form method="post" action="login">' in text


async def test_login_page_lets_only_its_own_origin_submit(http, gateway):
    code = gateway.running.sessions.create_login_code("u-owner", 60)

    page, _ = await show_link(http, gateway, code)

    policy = page.headers["Content-Security-Policy"]
    assert "form-action 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src" not in policy, "the page runs no script"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"


async def test_login_page_serves_head_without_using_the_link(http, gateway):
    code = gateway.running.sessions.create_login_code("u-owner", 60)

    async with http.head(gateway.url + f"/gateway/login?code={code}",
                         allow_redirects=False) as response:
        assert response.status == 200
    signed_in = await press_sign_in(http, gateway, code)

    assert signed_in.status == 303


SIGN_IN_ORIGIN_FAULTS = [
    pytest.param({}, id="no-origin"),
    pytest.param({"Origin": "http://evil.test"}, id="foreign-origin"),
    pytest.param({"Origin": "null"}, id="null-origin"),
]


@pytest.mark.parametrize("headers", SIGN_IN_ORIGIN_FAULTS)
async def test_sign_in_from_another_origin_is_refused(http, gateway, headers):
    code = gateway.running.sessions.create_login_code("u-owner", 60)

    forged = await press_sign_in(http, gateway, code, headers=headers)
    genuine = await press_sign_in(http, gateway, code)

    assert forged.status == 403
    assert COOKIE not in forged.cookies
    assert genuine.status == 303, "a refused sign-in must not use up the code"


SIGN_IN_FORM_FAULTS = [
    pytest.param({"json": {"code": "x"}}, 415, id="json-body"),
    pytest.param({"data": b""}, 400, id="empty-form"),
    pytest.param({"data": {"code": ""}}, 400, id="empty-code"),
    pytest.param({"data": {"code": "x", "user": "u-owner"}}, 400, id="extra-field"),
    pytest.param({"data": "code=a&code=b"}, 400, id="repeated-code"),
    pytest.param({"data": "code=" + "A" * 2000}, 413, id="too-large"),
]


@pytest.mark.parametrize(("body", "status"), SIGN_IN_FORM_FAULTS)
async def test_sign_in_form_faults_are_refused(http, gateway, body, status):
    headers = {"Origin": gateway.url}
    if isinstance(body.get("data"), (str, bytes)):
        headers["Content-Type"] = "application/x-www-form-urlencoded"

    async with http.post(gateway.url + "/gateway/login", headers=headers,
                         allow_redirects=False, **body) as response:
        await response.read()

    assert response.status == status
    assert COOKIE not in response.cookies


async def test_refused_login_link_gets_a_page_saying_why(http, gateway):
    async with http.get(gateway.url + "/gateway/login?code=" + "B" * 43) as response:
        text = await response.text()

    assert response.content_type == "text/html"
    assert "invalid, used or expired" in text


async def test_expired_login_link_is_refused(http, gateway):
    code = gateway.running.sessions.create_login_code("u-owner", 0.05)
    await asyncio.sleep(0.1)

    page, _ = await show_link(http, gateway, code)
    response = await press_sign_in(http, gateway, code)

    assert page.status == 401
    assert response.status == 401


async def test_made_up_login_code_is_refused(http, gateway):
    response = await open_link(http, gateway, "A" * 43)

    assert response.status == 401


async def test_session_shows_user_and_csrf_token(http, gateway):
    headers = await sign_in(http, gateway, "u-admin")

    async with http.get(gateway.url + "/gateway/v1/session",
                        headers={"Cookie": headers["Cookie"]}) as response:
        body = await response.json()

    assert body["user"]["id"] == "u-admin"
    assert body["csrf_token"] == headers["X-CSRF-Token"]
    assert "owner" not in body["permissions"]["users.create"]


CSRF_FAULTS = [
    pytest.param({"Origin": None}, id="no-origin"),
    pytest.param({"Origin": "http://evil.test"}, id="foreign-origin"),
    pytest.param({"Origin": "null"}, id="null-origin"),
    pytest.param({"X-CSRF-Token": None}, id="no-token"),
    pytest.param({"X-CSRF-Token": "0" * 64}, id="wrong-token"),
]


@pytest.mark.parametrize("fault", CSRF_FAULTS)
async def test_cookie_change_without_origin_and_token_is_refused(http, gateway, fault):
    headers = await sign_in(http, gateway)
    for name, value in fault.items():
        headers.pop(name)
        if value is not None:
            headers[name] = value
    email = new_email("csrf")

    async with http.post(gateway.url + "/gateway/v1/users", headers=headers,
                         json={"name": "Forged", "email": email,
                               "role": "owner", "type": "standard"}) as response:
        assert response.status == 403

    assert email not in [user.email for user in await gateway.store.list_users()]


async def test_cookie_change_from_the_page_is_accepted(http, gateway):
    headers = await sign_in(http, gateway)

    async with http.post(gateway.url + "/gateway/v1/users", headers=headers,
                         json={"name": "From the page", "email": new_email(),
                               "role": "chat_operator",
                               "type": "standard"}) as response:
        assert response.status == 201


async def test_sign_out_ends_the_session(http, gateway):
    headers = await sign_in(http, gateway)

    async with http.delete(gateway.url + "/gateway/v1/session",
                           headers=headers) as response:
        assert response.status == 204
    async with http.get(gateway.url + "/gateway/v1/session",
                        headers={"Cookie": headers["Cookie"]}) as response:
        assert response.status == 401


async def test_deactivation_ends_page_sessions_for_good(http, gateway):
    user = await gateway.store.add_user(name="Leaving", email=new_email(),
                                        role="administrator", type="standard")
    headers = await sign_in(http, gateway, user.id)

    await gateway.store.set_active(user.id, False)
    await gateway.store.set_active(user.id, True)

    async with http.get(gateway.url + "/gateway/v1/users",
                        headers={"Cookie": headers["Cookie"]}) as response:
        assert response.status == 401


async def test_session_cookie_is_no_credential_for_proxied_routes(http, gateway,
                                                                  sample_api):
    headers = await sign_in(http, gateway)
    await sample_api.clear()

    async with http.get(gateway.url + "/api/1/chats/",
                        headers={"Cookie": headers["Cookie"]}) as response:
        assert response.status == 401

    assert await sample_api.recorded() == []


@pytest.mark.parametrize(
    ("path", "names_cookie"),
    [
        pytest.param("/gateway/v1/users", True, id="gateway-api"),
        pytest.param("/api/1/chats/", False, id="proxied-route"),
    ],
)
async def test_missing_credentials_name_cookie_where_accepted(http, gateway, path,
                                                             names_cookie):
    async with http.get(gateway.url + path) as response:
        problem = await response.json(content_type=None)

    assert response.status == 401
    assert problem["detail"].startswith("Credentials are missing: send a bearer token")
    assert ("session cookie" in problem["detail"]) == names_cookie


async def test_cookie_and_bearer_together_are_refused(http, gateway):
    headers = await sign_in(http, gateway, "u-manager")

    async with http.get(gateway.url + "/gateway/v1/audit",
                        headers={"Cookie": headers["Cookie"],
                                 **gateway.bearer("u-owner")}) as response:
        assert response.status == 401


async def login_link_command(gateway, user_id: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "login-link", "--user", user_id,
        "-c", str(gateway.config_file),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    return process.returncode, stdout.decode(), stderr.decode()


async def test_login_link_command_prints_a_working_link(http, gateway):
    status, stdout, stderr = await login_link_command(gateway, "u-admin")
    link = stdout.strip()

    response = await open_link(http, gateway, link.partition("code=")[2])

    assert status == 0, stderr
    assert "/gateway/login?code=" in link
    assert response.status == 303


@pytest.mark.parametrize("user_id", ["u-nobody", "u-service"])
async def test_login_link_command_refuses_unknown_and_service_users(gateway, user_id):
    status, stdout, stderr = await login_link_command(gateway, user_id)

    assert status == 1
    assert stderr.startswith("Error: ")


@pytest.mark.parametrize("prefix", ["\u00a0", "\u3000", "\u0085"])
async def test_look_alike_session_cookie_is_no_credential(http, gateway, prefix):
    headers = await sign_in(http, gateway)
    token = headers["Cookie"].partition("=")[2]
    async with http.get(gateway.url + "/gateway/v1/session",
                        headers={"Cookie": f"{prefix}{COOKIE}={token}"}) as response:
        assert response.status == 401
