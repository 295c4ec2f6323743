"""The embedded chat view as the browser tests see it, and the processes behind it.

The browser opens the gateway as http://localhost:PORT and the partner site
on 127.0.0.1.  These are two sites, so the view runs in a third-party frame
and its session cookie is partitioned by the partner's site.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

try:
    from playwright.sync_api import expect
except ImportError:  # conftest.chromium_executable skips or fails the tests
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Frame, Page

    from .conftest import BrowserProblems

FRAME_SELECTOR = "#embedded-view"
EMBED_COOKIE = "__Host-gateway-embed"
LAUNCH_PATH = "/embed/start"
VIEW_PATH = "/app/"
API_CHAT_PATH = "/api/1/chats/{id}/"
API_MESSAGES_PATH = "/api/1/chats/{id}/messages/"
DECISION_WAIT = 5.0  # seconds for a decision line to reach the gateway's log


def http_json(
    port: int,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, object]:
    """Send a request to a loopback port and return the status and parsed JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        sent_headers = dict(headers or {})
        if payload is not None:
            sent_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=sent_headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        connection.close()


@dataclass
class EmbedStack:
    """The sample API, a gateway and a partner site that embeds the chat view.

    `partner_origin` is the one origin the service user may embed the view on.
    `other_origin` is served by the same partner site on another port, so its
    pages are same-site with the partner's but on an origin that no session
    is bound to.
    """

    folder: Path
    config: Path
    gateway_port: int
    sample_port: int
    partner_origin: str
    other_origin: str
    service_user: str
    chat_id: str

    @property
    def gateway_origin(self) -> str:
        return f"http://localhost:{self.gateway_port}"

    @property
    def gateway_log(self) -> Path:
        return self.folder / "gateway.log"

    @property
    def chat_path(self) -> str:
        return API_CHAT_PATH.format(id=self.chat_id)

    @property
    def messages_path(self) -> str:
        return API_MESSAGES_PATH.format(id=self.chat_id)

    def frame_page(self, src: str, origin: str | None = None) -> str:
        """Return the URL of a partner page on `origin` that frames `src`."""
        return f"{origin or self.partner_origin}/frame?{urlencode({'src': src})}"

    def sample_requests(self) -> list[dict]:
        """Return what the sample API received since the last clear, oldest first."""
        status, body = http_json(self.sample_port, "GET", "/_sample/requests")
        assert status == 200, body
        return body["requests"]

    def clear_sample_requests(self) -> None:
        status, body = http_json(self.sample_port, "DELETE", "/_sample/requests")
        assert status == 204, body

    def sample_paths(self) -> list[str]:
        return [entry["path"] for entry in self.sample_requests()]

    def log_position(self) -> int:
        """Return the size of the gateway's log, where the next line will start."""
        return self.gateway_log.stat().st_size

    def decisions_since(self, position: int, method: str, path: str) -> list[dict]:
        """Return the decision lines for `method` `path` logged after `position`.

        The gateway buffers decision lines for a moment, so this waits until
        at least one such line is written or DECISION_WAIT seconds pass.
        """
        deadline = time.monotonic() + DECISION_WAIT
        while True:
            with self.gateway_log.open("rb") as log:
                log.seek(position)
                text = log.read().decode(errors="replace")

            # A line still being written is read on the next pass.
            lines = text[: text.rfind("\n") + 1].splitlines()
            records = [json.loads(line) for line in lines if line.startswith("{")]
            decisions = [
                record
                for record in records
                if record.get("message") == "decision"
                and record.get("method") == method
                and record.get("path") == path
            ]
            if decisions or time.monotonic() > deadline:
                return decisions

            time.sleep(0.05)

    def message_posts(self) -> list[dict]:
        """Return the recorded POSTs to the scoped chat's messages."""
        return [
            entry
            for entry in self.sample_requests()
            if entry["method"] == "POST" and entry["path"] == self.messages_path
        ]


class EmbeddedView:
    """The chat view in the partner page's iframe."""

    def __init__(self, page: Page) -> None:
        self.page = page
        frame = page.frame_locator(FRAME_SELECTOR)
        self.status = frame.get_by_test_id("status")
        self.embed_required = frame.get_by_test_id("embed-required")
        self.chat_list = frame.get_by_test_id("chat-list")
        self.chat_list_items = frame.get_by_test_id("chat-list-item")
        self.chat_title = frame.get_by_test_id("chat-title")
        self.messages = frame.get_by_test_id("message")
        self.message_texts = frame.get_by_test_id("message-text")
        self.message_input = frame.get_by_test_id("message-input")
        self.send_button = frame.get_by_test_id("send-button")
        self.back_to_list = frame.get_by_test_id("back-to-list")
        self.session_info = frame.get_by_test_id("session-info")
        self.heading = frame.get_by_role("heading", level=1)

    @property
    def frame(self) -> Frame:
        """The iframe's current frame, for its URL."""
        frame = self.page.locator(FRAME_SELECTOR).element_handle().content_frame()
        assert frame is not None, "the partner page has no embedded frame"
        return frame

    @property
    def src(self) -> str:
        return self.page.locator(FRAME_SELECTOR).get_attribute("src")

    def wait_until_chat_loaded(self) -> None:
        """Wait until the view shows a chat with its messages and no status line."""
        expect(self.chat_title).to_be_visible()
        expect(self.messages).not_to_have_count(0)
        expect(self.status).to_be_hidden()

    def send_message(self, text: str) -> None:
        self.message_input.fill(text)
        self.send_button.click()


def launch_code(src: str) -> str:
    """Return the code of a launch URL, which the partner page frames."""
    path, _, query = src.partition("?")
    assert path.endswith(LAUNCH_PATH), src
    assert query.startswith("code="), src
    return query.removeprefix("code=")


def take_frame_ancestors_violations(problems: BrowserProblems) -> list[str]:
    """Remove and return the CSP frame-ancestors violations that `problems` recorded.

    A test that expects the browser to block a frame takes those messages, so
    that the browser_problems fixture still fails on any other.
    """
    violations = [
        message for message in problems.messages if "frame-ancestors" in message
    ]
    problems.messages[:] = [
        message for message in problems.messages if message not in violations
    ]
    return violations
