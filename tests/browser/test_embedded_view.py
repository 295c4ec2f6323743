"""The chat view embedded in a partner's page, in headless Chromium.

The partner site (tests/browser/partner_site.py) on 127.0.0.1 frames the
launch URL that its backend gets from the gateway.  The browser opens the
gateway as localhost, so the view is a cross-site frame, as on a real
partner's site.  Every session is scoped to one chat.  Checks read what the
frame shows, the requests Chromium sent, the sample API's record of what
reached it and, where only the gateway can tell why, its decision lines.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest

from sample_api.data import build_seed

from .embedding import (
    EMBED_COOKIE,
    LAUNCH_PATH,
    VIEW_PATH,
    EmbeddedView,
    launch_code,
    take_frame_ancestors_violations,
)

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.chromium_executable skips or fails the tests
    expect = None

ERROR_PAGE_HEADING = "This view cannot be shown"
FORGED_TEXT = "forged"

# Scripts that the partner page runs to post a message with the session's
# cookie, each called with [messages URL, text].  Requests from the partner
# page carry the cookie, because Chromium keys it to the partner's site as the
# top-level site.  A form posted to a new tab would send none, so the form
# posts into a frame of the partner page.
FORGE_WITH_FETCH = """([url, text]) => fetch(url, {
    method: "POST",
    credentials: "include",
    mode: "no-cors",
    headers: {"Content-Type": "text/plain"},
    body: JSON.stringify({text}),
}).then(() => undefined)"""
# A text/plain form sends `name=value`, so the name opens a JSON string and
# the value closes it.  The body is {"text": "...", "padding": "="}.
FORGE_WITH_FORM = """([url, text]) => {
    const target = document.createElement("iframe");
    target.name = "forge-target";
    document.body.append(target);
    const form = document.createElement("form");
    form.method = "POST";
    form.action = url;
    form.enctype = "text/plain";
    form.target = target.name;
    const field = document.createElement("input");
    field.type = "hidden";
    field.name = `{"text": ${JSON.stringify(text)}, "padding": "`;
    field.value = '"}';
    form.append(field);
    document.body.append(form);
    form.submit();
}"""


def seeded_chat(chat_id: str) -> tuple[str, list[str]]:
    """Return the seeded title and message texts of a chat, oldest first."""
    seed = build_seed()
    chat = seed["chats"][int(chat_id)]
    texts = [
        message["text"]
        for message in seed["messages"].values()
        if message["chat_id"] == chat["id"]
    ]
    return chat["title"], texts


def open_partner_page(context, url: str) -> EmbeddedView:
    """Open a partner page in a new tab and wait until its frame shows the chat."""
    page = context.new_page()
    page.goto(url)
    view = EmbeddedView(page)
    view.wait_until_chat_loaded()
    return view


def unique_text(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_view_shows_only_scoped_chat(
    embed_stack, new_embed_context, embed_screenshot_path
):
    title, seeded_texts = seeded_chat(embed_stack.chat_id)

    view = open_partner_page(new_embed_context(), embed_stack.partner_origin + "/")

    expect(view.chat_title).to_have_text(title)
    # Earlier tests may have added messages after the seeded ones.
    expect(view.message_texts).to_contain_text(seeded_texts)
    expect(view.session_info).to_contain_text(embed_stack.partner_origin)
    expect(view.embed_required).to_be_hidden()
    expect(view.chat_list).to_be_hidden()
    expect(view.chat_list_items).to_have_count(0)
    expect(view.back_to_list).to_be_hidden()
    api_paths = {
        path for path in embed_stack.sample_paths() if path.startswith("/api/")
    }
    assert api_paths == {embed_stack.chat_path, embed_stack.messages_path}
    view.page.screenshot(path=str(embed_screenshot_path), full_page=True)


def test_start_sets_partitioned_host_cookie(embed_stack, new_embed_context):
    context = new_embed_context()

    open_partner_page(context, embed_stack.partner_origin + "/")

    cookies = [
        cookie for cookie in context.cookies() if cookie["name"] == EMBED_COOKIE
    ]
    assert len(cookies) == 1, context.cookies()
    cookie = cookies[0]
    assert cookie["domain"] == "localhost"
    assert cookie["path"] == "/"
    assert cookie["secure"] is True
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "None"
    # CHIPS keys the cookie to the top-level site: scheme and host, no port.
    assert cookie.get("partitionKey") == "http://127.0.0.1"


def test_cookie_not_sent_outside_partner_frame(embed_stack, new_embed_context):
    context = new_embed_context()
    open_partner_page(context, embed_stack.partner_origin + "/")
    page = context.new_page()

    response = page.goto(embed_stack.gateway_origin + VIEW_PATH)

    # The bare page loads, but outside the partner's frame it has no session.
    assert response.status == 200
    page.get_by_test_id("embed-required").wait_for(state="visible")


def test_frame_url_contains_no_code(embed_stack, new_embed_context):
    view = open_partner_page(new_embed_context(), embed_stack.partner_origin + "/")
    code = launch_code(view.src)

    frame_url = view.frame.url

    assert frame_url == embed_stack.gateway_origin + VIEW_PATH
    assert code not in frame_url


def test_no_referer_contains_code(embed_stack, new_embed_context):
    page = new_embed_context().new_page()
    requests = []
    page.on("request", lambda request: requests.append(request))

    page.goto(embed_stack.partner_origin + "/")
    view = EmbeddedView(page)
    view.wait_until_chat_loaded()

    code = launch_code(view.src)
    from_frame = [request for request in requests if request.frame != page.main_frame]
    assert {LAUNCH_PATH, VIEW_PATH, embed_stack.messages_path} <= {
        path_of(request.url) for request in from_frame
    }
    referers = {
        f"{request.method} {request.url}": request.all_headers().get("referer", "")
        for request in from_frame
    }
    # Chromium sends the partner page's URL as the launch request's Referer,
    # which shows that the headers of these requests are observed at all.
    assert any(referers.values()), referers
    for sent, referer in referers.items():
        assert code not in referer, f"{sent}: {referer!r}"

    assert code not in view.frame.evaluate("document.referrer")
    for entry in embed_stack.sample_requests():
        for name, value in entry["headers"].items():
            assert code not in value, f"{entry['path']}: {name}"


def test_other_origin_cannot_frame_launch(
    embed_stack, new_embed_context, browser_problems
):
    page = new_embed_context().new_page()

    # The partner site's backend launches for the allowed origin, but this page
    # is on the other one.
    with page.expect_console_message(
        lambda message: "frame-ancestors" in message.text
    ) as violation:
        page.goto(embed_stack.other_origin + "/")

    assert embed_stack.partner_origin in violation.value.text
    take_frame_ancestors_violations(browser_problems)
    view = EmbeddedView(page)
    # Chromium replaces a blocked frame's document with its own error page.
    assert not view.frame.url.startswith(embed_stack.gateway_origin)
    expect(view.chat_title).to_have_count(0)
    expect(view.message_input).to_have_count(0)
    paths = embed_stack.sample_paths()
    assert "/app/app.js" not in paths
    assert [path for path in paths if path.startswith("/api/")] == []


def test_other_origin_cannot_frame_session(
    embed_stack, new_embed_context, browser_problems
):
    context = new_embed_context()
    open_partner_page(context, embed_stack.partner_origin + "/")
    embed_stack.clear_sample_requests()
    page = context.new_page()
    framed_view = embed_stack.frame_page(
        embed_stack.gateway_origin + VIEW_PATH, origin=embed_stack.other_origin
    )

    with page.expect_response(
        lambda response: path_of(response.url) == VIEW_PATH
    ) as served, page.expect_console_message(
        lambda message: "frame-ancestors" in message.text
    ) as violation:
        page.goto(framed_view)

    # The other origin is on the partner's site too, so the partitioned cookie
    # went along and the gateway served the session's view.  The browser keeps
    # it out of the frame, because of the view's frame-ancestors.
    assert served.value.status == 200
    assert embed_stack.partner_origin in violation.value.text
    take_frame_ancestors_violations(browser_problems)
    view = EmbeddedView(page)
    expect(view.chat_title).to_have_count(0)
    assert "/app/app.js" not in embed_stack.sample_paths()


def test_message_from_frame_reaches_api(embed_stack, new_embed_context):
    view = open_partner_page(new_embed_context(), embed_stack.partner_origin + "/")
    text = unique_text("Sent from the frame")

    view.send_message(text)

    expect(view.message_texts.last).to_have_text(text)
    expect(view.message_input).to_have_value("")
    posts = embed_stack.message_posts()
    assert len(posts) == 1, posts
    assert json.loads(posts[0]["body"]) == {"text": text}
    assert posts[0]["headers"]["x-gateway-user"] == embed_stack.service_user


@pytest.mark.parametrize(
    ("script", "response_framed"),
    [(FORGE_WITH_FETCH, False), (FORGE_WITH_FORM, True)],
    ids=["fetch", "form"],
)
def test_partner_page_cannot_forge_message(
    embed_stack, new_embed_context, browser_problems, script, response_framed
):
    view = open_partner_page(new_embed_context(), embed_stack.partner_origin + "/")
    page = view.page
    url = embed_stack.gateway_origin + embed_stack.messages_path
    log_position = embed_stack.log_position()

    with page.expect_response(
        lambda response: response.url == url and response.request.method == "POST"
    ) as forged:
        if response_framed:
            # The 403 page lands in the form's frame, and Chromium blocks it
            # because of the gateway's frame-ancestors 'none'.
            with page.expect_console_message(
                lambda message: "frame-ancestors" in message.text
            ):
                page.evaluate(script, [url, FORGED_TEXT])
        else:
            page.evaluate(script, [url, FORGED_TEXT])

    # The cookie went along, so the gateway knew the session and rejected the
    # request because its Origin is the partner's, not the view's.
    assert forged.value.status == 403
    decisions = embed_stack.decisions_since(log_position, "POST",
                                            embed_stack.messages_path)
    assert len(decisions) == 1, decisions
    assert decisions[0]["embed_session"] is not None, decisions
    assert decisions[0]["reason"] == "csrf_origin", decisions
    take_frame_ancestors_violations(browser_problems)
    assert embed_stack.message_posts() == []
    for entry in embed_stack.sample_requests():
        assert FORGED_TEXT not in (entry["body"] or ""), entry


def test_post_message_code_opens_scoped_chat(embed_stack, new_embed_context):
    title, _ = seeded_chat(embed_stack.chat_id)
    page = new_embed_context().new_page()
    requests = []
    page.on("request", lambda request: requests.append(request))

    page.goto(embed_stack.partner_origin + "/post-message")

    view = EmbeddedView(page)
    expect(view.chat_title).to_have_text(title)
    expect(view.chat_list_items).to_have_count(0)
    text = unique_text("Sent with the bearer token")
    view.send_message(text)
    expect(view.message_texts.last).to_have_text(text)

    url = embed_stack.gateway_origin + embed_stack.messages_path
    sent = [
        request for request in requests
        if request.url == url and request.method == "POST"
    ]
    assert len(sent) == 1, [request.url for request in requests]
    headers = sent[0].all_headers()
    assert headers.get("authorization", "").startswith("Bearer ")
    assert "cookie" not in headers
    posts = embed_stack.message_posts()
    assert len(posts) == 1, posts
    assert json.loads(posts[0]["body"]) == {"text": text}
    assert posts[0]["headers"]["x-gateway-user"] == embed_stack.service_user


def test_replayed_launch_url_shows_error_page(embed_stack, new_embed_context):
    first = open_partner_page(new_embed_context(), embed_stack.partner_origin + "/")
    embed_stack.clear_sample_requests()
    page = new_embed_context().new_page()

    with page.expect_response(
        lambda response: path_of(response.url) == LAUNCH_PATH
    ) as start:
        page.goto(embed_stack.frame_page(first.src))

    assert start.value.status == 401
    view = EmbeddedView(page)
    expect(view.heading).to_have_text(ERROR_PAGE_HEADING)
    expect(view.chat_title).to_have_count(0)
    assert embed_stack.sample_paths() == []
