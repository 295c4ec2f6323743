"""The "Users and roles" page in headless Chromium against a real gateway.

Each test signs in with a link from `gateway login-link` and uses the page as
a person would: the form, the row drop-downs and buttons, the sign-out button.
Checks read what the page shows, and where the page cannot show it, what the
gateway then returns to the same cookie or key.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from .pages import SESSION_API, USERS_PAGE, UsersPage

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.chromium_executable skips or fails the tests
    expect = None

# Directives the page must be served with. The gateway may add stricter ones.
REQUIRED_CSP = {"default-src": "'self'", "frame-ancestors": "'none'"}


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def session_cookie(context) -> dict:
    cookies = host_cookies(context)
    assert len(cookies) == 1, f"expected one __Host- cookie, got {context.cookies()}"
    return cookies[0]


def host_cookies(context) -> list[dict]:
    return [c for c in context.cookies() if c["name"].startswith("__Host-")]


def test_login_link_signs_in_once(stack, new_context):
    link = stack.login_link("u-owner")
    context = new_context()
    page = context.new_page()

    page.goto(link)
    expect(page.locator("main")).to_contain_text("Olivia Owner")
    assert host_cookies(context) == [], "opening the link alone signs nobody in"
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**" + USERS_PAGE)

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(link))
    assert page.url == origin + USERS_PAGE
    users_page = UsersPage(page)
    expect(users_page.account_name).to_have_text("Olivia Owner")
    expect(users_page.account_role).to_have_text("Owner")
    cookie = session_cookie(context)
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"

    second = new_context()
    reuse = second.new_page().goto(link)

    assert reuse.status >= 400
    assert second.request.get(origin + SESSION_API).status == 401
    assert host_cookies(second) == []


def test_page_without_session_explains_sign_in(stack, new_context):
    page = new_context().new_page()

    page.goto(stack.origin + USERS_PAGE)

    signed_out = UsersPage(page).signed_out
    expect(signed_out).to_be_visible()
    expect(signed_out).to_contain_text("gateway login-link --user ID")
    expect(page.locator("#users")).to_be_hidden()


def csp_directives(header: str) -> dict[str, str]:
    directives = {}
    for directive in header.split(";"):
        name, _, value = directive.strip().partition(" ")
        if name:
            directives[name.lower()] = value.strip()

    return directives


def test_page_sent_with_content_security_policy(stack, new_context):
    page = new_context().new_page()

    response = page.goto(stack.origin + USERS_PAGE)

    assert response.status == 200
    directives = csp_directives(response.headers.get("content-security-policy", ""))
    for name, value in REQUIRED_CSP.items():
        assert directives.get(name) == value, f"{name}: {directives}"
    for value in directives.values():
        assert "unsafe" not in value, directives
    # The browser_problems fixture fails the test on any CSP violation.
    expect(UsersPage(page).signed_out).to_be_visible()


def test_add_form_creates_user(sign_in, screenshot_path):
    users_page = sign_in("u-owner")
    email = unique_email("rosa")

    users_page.submit_new_user("Rosa Recruit", email, "chat_operator", "standard")

    row = users_page.row_by_email(email)
    expect(row).to_have_count(1)
    expect(row.get_by_role("rowheader")).to_have_text("Rosa Recruit")
    expect(row.locator("select.role")).to_have_value("chat_operator")
    expect(row.get_by_role("cell", name="Standard", exact=True)).to_have_count(1)
    expect(users_page.add_form).to_be_hidden()
    users_page.reload()
    expect(users_page.row_by_email(email)).to_have_count(1)
    users_page.page.screenshot(path=str(screenshot_path), full_page=True)


def test_add_form_shows_invalid_email_at_field(sign_in):
    users_page = sign_in("u-owner")

    users_page.submit_new_user("Ivy Invalid", "not-an-email", "chat_operator",
                               "standard")

    email_error = users_page.page.locator("#add-email-error")
    expect(email_error).to_be_visible()
    expect(email_error).to_contain_text("not-an-email")
    expect(users_page.add_form.get_by_label("Email")).to_have_attribute(
        "aria-invalid", "true"
    )
    expect(users_page.add_form).to_be_visible()
    expect(users_page.page.locator("tbody tr", has_text="Ivy Invalid")).to_have_count(0)


def test_add_form_shows_duplicate_email(sign_in):
    users_page = sign_in("u-owner")

    users_page.submit_new_user("Second Otto", "u-op-1@example.com", "chat_operator",
                               "standard")

    # The error is shown at the email field when the 409 names the field, and
    # for the whole form when it does not.
    errors = users_page.add_form.locator(".error:visible")
    expect(errors).to_have_count(1)
    expect(errors).to_contain_text("u-op-1@example.com")
    email = users_page.add_form.get_by_label("Email")
    expect(email).to_have_value("u-op-1@example.com")
    expect(users_page.page.locator("tbody tr", has_text="Second Otto")).to_have_count(0)


def test_role_change_survives_reload(sign_in):
    users_page = sign_in("u-owner")
    select = users_page.role_select("u-op-2")
    expect(select).to_have_value("chat_operator")

    select.select_option("chat_manager")

    expect(users_page.page.locator("#status")).to_contain_text("Pia Operator")
    expect(users_page.role_error("u-op-2")).to_be_hidden()
    users_page.reload()
    expect(users_page.role_select("u-op-2")).to_have_value("chat_manager")


def test_last_owner_cannot_demote_self(sign_in):
    users_page = sign_in("u-owner")
    roles = users_page.page.locator("select.role").evaluate_all(
        "selects => selects.map(select => select.value)"
    )
    assert roles.count("owner") == 1, "the test needs u-owner to be the only owner"
    select = users_page.role_select("u-owner")

    select.select_option("administrator")
    users_page.page.get_by_role("button", name="Change my role").click()

    error = users_page.role_error("u-owner")
    expect(error).to_be_visible()
    expect(error).to_contain_text("last active owner", ignore_case=True)
    expect(select).to_have_value("owner")
    expect(users_page.account_role).to_have_text("Owner")
    users_page.reload()
    expect(users_page.role_select("u-owner")).to_have_value("owner")


def test_service_key_shown_once(stack, sign_in):
    users_page = sign_in("u-owner")
    page = users_page.page
    email = unique_email("bot")

    users_page.submit_new_user("Export bot", email, "chat_manager", "service")

    expect(users_page.new_key).to_be_visible()
    api_key = users_page.new_key.input_value()
    assert api_key != ""
    copy = page.get_by_role("button", name="Copy")
    expect(copy).to_be_visible()
    copy.click()
    expect(page.locator(".key-feedback")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == api_key
    reply = stack.request("GET", "/api/1/chats/?page_size=1", {"X-API-Key": api_key})
    assert reply.status == 200, reply.body

    page.get_by_role("button", name="Done").click()

    expect(users_page.new_key).to_have_count(0)
    assert not users_page.contains_text(api_key)
    expect(users_page.row_by_email(email)).to_have_count(1)
    users_page.reload()
    assert not users_page.contains_text(api_key)


def test_new_api_key_replaces_old(stack, sign_in):
    old_key = stack.add_service_user("u-rotated", "Rotated bot", "chat_manager")
    users_page = sign_in("u-owner")
    page = users_page.page

    users_page.row("u-rotated").get_by_role("button", name="New API key").click()
    page.locator("#confirm-accept").click()

    expect(users_page.new_key).to_be_visible()
    new_key = users_page.new_key.input_value()
    assert new_key not in ("", old_key)
    chats = "/api/1/chats/?page_size=1"
    assert stack.request("GET", chats, {"X-API-Key": new_key}).status == 200
    assert stack.request("GET", chats, {"X-API-Key": old_key}).status == 401
    page.get_by_role("button", name="Done").click()
    assert not users_page.contains_text(new_key)


def test_deactivate_and_activate_user(stack, sign_in):
    stack.add_user("u-leaver", "Lea Leaver", "chat_operator")
    users_page = sign_in("u-owner")
    row = users_page.row("u-leaver")

    row.get_by_role("button", name="Deactivate").click()

    expect(row).to_have_class("inactive")
    expect(row.get_by_role("cell", name="No", exact=True)).to_have_count(1)
    users_page.reload()
    row.get_by_role("button", name="Activate").click()
    expect(row).not_to_have_class("inactive")
    expect(row.get_by_role("cell", name="Yes", exact=True)).to_have_count(1)


def test_delete_asks_before_removing(stack, sign_in):
    stack.add_user("u-gone", "Gus Gone", "chat_operator")
    users_page = sign_in("u-owner")
    page = users_page.page
    row = users_page.row("u-gone")

    row.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Delete").click()
    page.locator("#confirm-accept").click()

    expect(row).to_have_count(0)
    users_page.reload()
    expect(users_page.row("u-gone")).to_have_count(0)


def test_administrator_not_offered_owner(sign_in):
    users_page = sign_in("u-admin")
    page = users_page.page

    users_page.open_add_form()

    role_choices = users_page.add_form.get_by_label("Role").locator("option")
    for user_type in ("standard", "service"):
        users_page.add_form.get_by_label("Type").select_option(user_type)
        values = role_choices.evaluate_all("options => options.map(o => o.value)")
        assert "owner" not in values, f"{user_type}: {values}"
        assert values != [], user_type

    enabled_choices = page.locator("select.role:enabled option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert "owner" not in enabled_choices
    assert "administrator" in enabled_choices
    owner_row = users_page.row("u-owner")
    expect(owner_row.locator("select.role")).to_be_disabled()
    buttons = owner_row.get_by_role("button")
    expect(buttons).not_to_have_count(0)
    for index in range(buttons.count()):
        expect(buttons.nth(index)).to_be_disabled()

    expect(users_page.role_select("u-op-1")).to_be_enabled()


def test_chat_manager_sees_table_without_controls(sign_in):
    users_page = sign_in("u-manager")

    expect(users_page.row("u-owner")).to_contain_text("Owner")
    expect(users_page.table.locator("select, button")).to_have_count(0)
    expect(users_page.page.get_by_role("button", name="Add user")).to_be_hidden()


def test_sign_out_ends_session(stack, sign_in):
    users_page = sign_in("u-admin")
    context = users_page.page.context
    cookie = session_cookie(context)
    old_cookie = {"Cookie": f"{cookie['name']}={cookie['value']}"}
    assert stack.request("GET", SESSION_API, old_cookie).status == 200

    users_page.page.get_by_role("button", name="Sign out").click()

    expect(users_page.signed_out).to_be_visible()
    expect(users_page.signed_out).to_contain_text("You are signed out.")
    assert stack.request("GET", SESSION_API, old_cookie).status == 401
    assert host_cookies(context) == []
