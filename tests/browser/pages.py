"""The "Users and roles" page as the browser tests see it."""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.chromium_executable skips or fails the tests
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

USERS_PAGE = "/gateway/users/"
SESSION_API = "/gateway/v1/session"


def sign_in_with_link(page: Page, link: str) -> None:
    """Open a login link and press its sign-in button, as a person would."""
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**" + USERS_PAGE)


class UsersPage:
    """The "Users and roles" page open in one browser tab."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.account_name = page.locator("#account-name")
        self.account_role = page.locator("#account-role")
        self.signed_out = page.locator("#signed-out")
        self.users = page.locator("#users")
        self.table = page.locator("table.users-table")
        self.add_form = page.locator("#add-user")
        self.new_key = page.locator("#new-key")

    def wait_until_loaded(self) -> None:
        """Wait until the page has loaded the session and the users."""
        expect(self.account_name).to_be_visible()
        expect(self.users).to_be_visible()

    def reload(self) -> None:
        self.page.reload()
        self.wait_until_loaded()

    def row(self, user_id: str) -> Locator:
        return self.page.locator(f'tr[data-user-id="{user_id}"]')

    def role_select(self, user_id: str) -> Locator:
        return self.row(user_id).locator("select.role")

    def role_error(self, user_id: str) -> Locator:
        return self.row(user_id).locator(".role-error")

    def row_by_email(self, email: str) -> Locator:
        return self.page.locator("tbody tr").filter(
            has=self.page.get_by_role("cell", name=email, exact=True)
        )

    def open_add_form(self) -> None:
        self.page.get_by_role("button", name="Add user").click()
        expect(self.add_form).to_be_visible()

    def submit_new_user(self, name: str, email: str, role: str, type: str) -> None:
        self.open_add_form()
        self.add_form.get_by_label("Name").fill(name)
        self.add_form.get_by_label("Email").fill(email)
        # The role choices depend on the type, so the type comes first.
        self.add_form.get_by_label("Type").select_option(type)
        self.add_form.get_by_label("Role").select_option(role)
        self.add_form.get_by_role("button", name="Add", exact=True).click()

    def contains_text(self, text: str) -> bool:
        """Return whether `text` is anywhere in the DOM, input values included."""
        return self.page.evaluate(
            """text => document.documentElement.outerHTML.includes(text)
                || [...document.querySelectorAll("input, textarea")]
                    .some(field => field.value.includes(text))""",
            text,
        )
