"""The chat view's page, script and stylesheet, read from the package.

The view is served with `Content-Security-Policy: default-src 'self'`, so
these checks look for what that policy would block and for what the view
must never do: inline code, external URLs, markup sinks, browser storage.
"""

from __future__ import annotations

import re

import pytest

from .markup import parse_page, static_text

# Element ids and data-testid values that browser tests find the view by.
TEST_IDS = [
    "status",
    "embed-required",
    "chat-list",
    "chat-title",
    "message-list",
    "message-input",
    "send-button",
    "contact-name",
]


def test_page_has_no_inline_code():
    markup = parse_page(static_text("index.html"))

    assert None not in markup.scripts
    assert markup.inline_script_text.strip() == ""
    assert markup.style_elements == 0
    for tag, name, value in markup.attributes:
        assert not name.startswith("on"), f"<{tag} {name}>"
        assert name != "style", f"<{tag} style>"
        assert not (value or "").lower().startswith("javascript:"), f"<{tag} {name}>"


def test_page_loads_nothing_from_elsewhere():
    for tag, name, value in parse_page(static_text("index.html")).attributes:
        if name in {"src", "href", "action", "formaction"}:
            assert "//" not in (value or ""), f"<{tag} {name}={value!r}>"


def test_page_has_test_ids():
    markup = parse_page(static_text("index.html"))

    for test_id in TEST_IDS:
        assert test_id in markup.test_ids, test_id
        assert test_id in markup.ids, test_id


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"\.innerHTML\b|\.outerHTML\b", "API text must reach the DOM as text"),
        (r"insertAdjacentHTML|document\.write|createContextualFragment", "markup"),
        (r"\beval\s*\(|new\s+Function\b", "the CSP forbids eval"),
        (r"\b(?:setTimeout|setInterval)\s*\(\s*['\"`]", "a string run as code"),
        (r"localStorage|sessionStorage|indexedDB", "the token lives in memory only"),
        (r"document\.cookie", "the session cookie is the gateway's alone"),
        (r"://", "every request goes to the page's own origin"),
        (r"postMessage\([^)]*['\"]\*['\"]", "the embed message names its target"),
    ],
)
def test_script_avoids_forbidden_call(pattern, reason):
    script = static_text("app.js")

    match = re.search(pattern, script)

    assert match is None, f"{match.group(0)!r}: {reason}"


def test_stylesheet_loads_nothing_from_elsewhere():
    stylesheet = static_text("app.css")

    assert "@import" not in stylesheet
    assert "url(" not in stylesheet
