"""Fixtures that drive the "Users and roles" page in headless Chromium.

The sample API and the gateway run as subprocesses on free loopback ports, set
up with the `gateway` commands as in tests/e2e, and Playwright's sync API
drives Chromium against the gateway.  People sign in the way a person does:
`gateway login-link` prints a single-use link and the browser opens it.

The sync API keeps its own event loop marked as running in the main thread
while Playwright is started (playwright 1.65, `wait_for_future` in
`playwright/_impl/_greenlets.py`).  A pytest-asyncio test that ran meanwhile
could not start the session loop, so Playwright lives in a package-scoped
fixture: pytest stops it after the last test of this folder, before any test
of another folder starts.

`GATEWAY_CHROMIUM` names the browser executable (default /usr/bin/chromium).
When it does not exist, or the playwright package is not installed, the tests
are skipped, unless `GATEWAY_BROWSER_REQUIRED=1`, which makes them fail.
`GATEWAY_SCREENSHOT_DIR` is where screenshots of the pages are saved (default:
the test's tmp_path).

The embedded chat view runs against a stack of its own (`embed_stack`).  Its
gateway has `gateway_api.public_url` http://localhost:PORT and a sample API of
its own.  A partner site on 127.0.0.1 (tests/browser/partner_site.py) frames
the view, and its backend opens embed sessions with a service user's API key.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from gateway.config.derive import derive_config

from .embedding import EmbedStack, http_json
from .pages import UsersPage, sign_in_with_link

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the browser tests are optional, see the module docstring
    sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE_CONFIG = REPOSITORY / "config.yaml"
START_TIMEOUT = 15.0  # seconds for a process to accept connections
PAGE_TIMEOUT_MS = 10_000  # for each Playwright action; expect() waits its own 5 s
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}

# Users seeded before the gateway starts: id, display name, role.  Tests that
# change a user change one of their own, so that the others stay as listed.
# u-owner stays the only owner throughout.
SEEDED_USERS = [
    ("u-owner", "Olivia Owner", "owner"),
    ("u-admin", "Adam Administrator", "administrator"),
    ("u-manager", "Mia Manager", "chat_manager"),
    ("u-op-1", "Otto Operator", "chat_operator"),
    ("u-op-2", "Pia Operator", "chat_operator"),
]
SEEDED_SERVICE_USER = ("u-bot", "Reporting bot", "chat_manager")

# The embed stack's users: the owner sets the service user's allowed origins,
# and the service user opens the embed sessions, each scoped to EMBED_CHAT.
EMBED_OWNER = ("u-owner", "Olivia Owner", "owner")
EMBED_SERVICE_USER = ("u-partner-bot", "Partner CRM bot", "chat_manager")
EMBED_CHAT = "1"
PARTNER_SITE = Path(__file__).with_name("partner_site.py")


def skip_or_fail(reason: str) -> None:
    if os.environ.get("GATEWAY_BROWSER_REQUIRED") == "1":
        pytest.fail(f"{reason}, and GATEWAY_BROWSER_REQUIRED=1", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli_ok(*arguments: str) -> str:
    """Run a `gateway` command that must succeed, and return its standard output."""
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
    )
    assert result.returncode == 0, (
        f"gateway {' '.join(arguments)} exited with {result.returncode}:\n"
        f"{result.stderr}"
    )
    return result.stdout


def wait_until_listening(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"process exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)

    pytest.fail(
        f"nothing listened on port {port} within {START_TIMEOUT} s:\n{log.read_text()}"
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Stack:
    """The sample API and the gateway as running processes, with their config."""

    folder: Path
    config: Path
    gateway_port: int
    gateway_log: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def login_link(self, user_id: str) -> str:
        """Return a fresh single-use sign-in link for `user_id` from the CLI."""
        output = run_cli_ok(
            "login-link", "--user", user_id, "--config", str(self.config)
        ).strip()
        assert output and not any(character.isspace() for character in output), (
            f"gateway login-link printed more than one URL: {output!r}"
        )

        # The link is opened in a browser: it must lead to this gateway only.
        link = urlsplit(output)
        assert link.scheme == "http", output
        assert link.hostname in LOOPBACK_HOSTS, output
        assert link.port == self.gateway_port, output
        return output

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> Reply:
        """Send a request to the gateway from outside the browser."""
        connection = http.client.HTTPConnection("127.0.0.1", self.gateway_port,
                                                timeout=10)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, response.read())
        finally:
            connection.close()

    def add_user(self, user_id: str, name: str, role: str) -> None:
        """Add a standard user with the CLI, with the email USER_ID@example.com."""
        run_cli_ok(
            "users", "add", "-c", str(self.config), "--id", user_id, "--name", name,
            "--email", f"{user_id}@example.com", "--role", role,
        )

    def add_service_user(self, user_id: str, name: str, role: str) -> str:
        """Add a service user with the CLI and return its API key."""
        return run_cli_ok(
            "service-users", "add", "-c", str(self.config), "--id", user_id,
            "--name", name, "--email", f"{user_id}@example.com", "--role", role,
        ).strip()


@pytest.fixture(scope="package", autouse=True)
def chromium_executable() -> str:
    """Path of the Chromium executable.

    Without one, the tests of this folder are skipped, or fail when
    GATEWAY_BROWSER_REQUIRED=1.
    """
    if sync_playwright is None:
        skip_or_fail("the playwright package is not installed")

    configured = os.environ.get("GATEWAY_CHROMIUM", "/usr/bin/chromium")
    executable = shutil.which(configured)
    if executable is None:
        skip_or_fail(f"no Chromium executable at {configured!r} (set GATEWAY_CHROMIUM)")

    return executable


@pytest.fixture(scope="package")
def browser(chromium_executable: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("browser")
    sample_port = free_port()
    gateway_port = free_port()
    config = derive_config(
        SOURCE_CONFIG,
        folder / "config.yaml",
        {
            # listen.port also sets the origin of the links `gateway login-link`
            # prints.
            ("listen", "port"): gateway_port,
            ("upstream", "url"): f"http://127.0.0.1:{sample_port}",
            ("store", "sqlite"): folder / "gateway.db",
            ("authentication", "jwt", "secret_file"): folder / "jwt-secret",
            ("admin", "port"): 0,
        },
    )
    started: list[subprocess.Popen] = []
    try:
        sample_log = folder / "sample_api.log"
        with sample_log.open("w") as log:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "sample_api", "--port", str(sample_port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=folder,
            ))
        wait_until_listening(sample_port, started[-1], sample_log)

        gateway_log = folder / "gateway.log"
        running = Stack(folder, config, gateway_port, gateway_log)
        for user in SEEDED_USERS:
            running.add_user(*user)
        running.add_service_user(*SEEDED_SERVICE_USER)
        with gateway_log.open("w") as log:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "-c", str(config),
                 "--port", str(gateway_port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=folder,
            ))
        wait_until_listening(gateway_port, started[-1], gateway_log)
        yield running
    finally:
        for process in reversed(started):
            stop(process)


@dataclass
class BrowserProblems:
    """Script errors and Content-Security-Policy violations seen in a context."""

    messages: list[str]

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.messages.append(f"script: {error}"))
        page.on("console", self._record_console)

    def _record_console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.messages.append(f"console: {message.text}")


@pytest.fixture
def browser_problems() -> Iterator[BrowserProblems]:
    """Fail the test if a page had a script error or broke the CSP."""
    problems = BrowserProblems([])
    yield problems
    assert problems.messages == []


ContextFactory = Callable[[], "BrowserContext"]


@pytest.fixture
def new_context(
    browser: Browser, stack: Stack, browser_problems: BrowserProblems
) -> Iterator[ContextFactory]:
    """Open fresh browser contexts (cookie jars) for one test, and close them after."""
    opened: list[BrowserContext] = []

    def open_context() -> BrowserContext:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=stack.origin
        )
        context.on("page", browser_problems.watch)
        opened.append(context)
        return context

    yield open_context

    for context in opened:
        context.close()


SignIn = Callable[[str], UsersPage]


@pytest.fixture
def sign_in(stack: Stack, new_context: ContextFactory) -> SignIn:
    """Sign a user in with a login link in a fresh context, and return the page."""

    def open_signed_in(user_id: str) -> UsersPage:
        page = new_context().new_page()
        sign_in_with_link(page, stack.login_link(user_id))
        users_page = UsersPage(page)
        users_page.wait_until_loaded()
        return users_page

    return open_signed_in


@pytest.fixture
def screenshot_folder(tmp_path: Path) -> Path:
    folder = os.environ.get("GATEWAY_SCREENSHOT_DIR")
    target = Path(folder) if folder else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def screenshot_path(screenshot_folder: Path) -> Path:
    return screenshot_folder / "users-and-roles.png"


def start_logged(
    command: list[str],
    log: Path,
    port: int,
    started: list[subprocess.Popen],
    env: dict[str, str] | None = None,
) -> None:
    """Start `command` with its output in `log`, and wait until `port` listens.

    The process is appended to `started` before the wait, so that the caller
    stops it also when it never listens.
    """
    with log.open("w") as output:
        started.append(subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=log.parent, env=env,
        ))
    wait_until_listening(port, started[-1], log)


@pytest.fixture(scope="package")
def embed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedStack]:
    folder = tmp_path_factory.mktemp("embed")
    sample_port, gateway_port = free_port(), free_port()
    partner_port, other_port = free_port(), free_port()
    config = derive_config(
        SOURCE_CONFIG,
        folder / "config.yaml",
        {
            ("listen", "port"): gateway_port,
            # Launch URLs name this origin, which is a site apart from the
            # partner's 127.0.0.1.
            ("gateway_api", "public_url"): f"http://localhost:{gateway_port}",
            ("forwarding", "allowed_hosts"): ["127.0.0.1", "localhost"],
            ("upstream", "url"): f"http://127.0.0.1:{sample_port}",
            ("store", "sqlite"): folder / "gateway.db",
            ("authentication", "jwt", "secret_file"): folder / "jwt-secret",
            ("admin", "port"): 0,
        },
    )
    running = EmbedStack(
        folder=folder,
        config=config,
        gateway_port=gateway_port,
        sample_port=sample_port,
        partner_origin=f"http://127.0.0.1:{partner_port}",
        other_origin=f"http://127.0.0.1:{other_port}",
        service_user=EMBED_SERVICE_USER[0],
        chat_id=EMBED_CHAT,
    )
    run_cli_ok("users", "add", *user_options(config, EMBED_OWNER))
    api_key = run_cli_ok(
        "service-users", "add", *user_options(config, EMBED_SERVICE_USER)
    ).strip()

    started: list[subprocess.Popen] = []
    try:
        start_logged(
            [sys.executable, "-m", "sample_api", "--port", str(sample_port)],
            folder / "sample_api.log", sample_port, started,
        )
        start_logged(
            [sys.executable, "-m", "gateway.cli", "serve", "-c", str(config),
             "--port", str(gateway_port)],
            folder / "gateway.log", gateway_port, started,
        )
        allow_embed_origins(running, [running.partner_origin])
        start_logged(
            [sys.executable, str(PARTNER_SITE),
             "--port", str(partner_port), "--port", str(other_port),
             "--gateway-api", f"http://127.0.0.1:{gateway_port}",
             "--gateway-origin", running.gateway_origin,
             "--embed-origin", running.partner_origin,
             "--chat", EMBED_CHAT],
            folder / "partner_site.log", partner_port, started,
            env={**os.environ, "PARTNER_API_KEY": api_key},
        )
        wait_until_listening(other_port, started[-1], folder / "partner_site.log")
        yield running
    finally:
        for process in reversed(started):
            stop(process)


def user_options(config: Path, user: tuple[str, str, str]) -> list[str]:
    """Return the options of `gateway users add` for an (id, name, role) triple."""
    user_id, name, role = user
    return ["-c", str(config), "--id", user_id, "--name", name,
            "--email", f"{user_id}@example.com", "--role", role]


def allow_embed_origins(stack: EmbedStack, origins: list[str]) -> None:
    """Set the service user's allowed origins, as its owner does with the API."""
    token = run_cli_ok(
        "token", "--user", EMBED_OWNER[0], "--config", str(stack.config)
    ).strip()
    status, body = http_json(
        stack.gateway_port,
        "PUT",
        f"/gateway/v1/users/{stack.service_user}/embed/origins",
        {"origins": origins},
        {"Authorization": f"Bearer {token}"},
    )
    assert status == 200, body
    assert body == {"origins": origins}


@pytest.fixture
def new_embed_context(
    browser: Browser, embed_stack: EmbedStack, browser_problems: BrowserProblems
) -> Iterator[ContextFactory]:
    """Open fresh browser contexts for the embed tests, and close them after.

    The sample API's record is cleared first, so that a test reads only the
    requests it caused.
    """
    embed_stack.clear_sample_requests()
    opened: list[BrowserContext] = []

    def open_context() -> BrowserContext:
        context = browser.new_context(viewport={"width": 900, "height": 720})
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        context.on("page", browser_problems.watch)
        opened.append(context)
        return context

    yield open_context

    for context in opened:
        context.close()


@pytest.fixture
def embed_screenshot_path(screenshot_folder: Path) -> Path:
    return screenshot_folder / "embedded-view.png"
