"""`gateway demo`: the sample chat API and the gateway as two local processes.

The demo works in `.gateway/demo/` next to the config file, with a fresh
store, so it never touches the users of a real deployment.  It creates one
user per role and a service user, sends the same requests as each of them and
prints the status codes.  Unless it stops at once (`--once`), it then prints
the addresses of the gateway, the sample API and the admin listener, and curl
lines to repeat the requests.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import click

from gateway.config import load_config
from gateway.config.derive import derive_config
from gateway.store import SQLiteUserStore
from gateway.tokens.issuer import TokenIssuer

_READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class DemoUser:
    label: str
    user_id: str
    role: str
    type: str = "standard"


USERS = (
    DemoUser("owner", "u-owner", "owner"),
    DemoUser("administrator", "u-admin", "administrator"),
    DemoUser("chat manager", "u-manager", "chat_manager"),
    DemoUser("chat operator", "u-op-1", "chat_operator"),
    DemoUser("service user", "u-service", "chat_manager", type="service"),
)
# Sample data: chat 1 is assigned to u-op-1 and chat 2 to u-op-2.
QUESTIONS = (
    "/api/1/chats/1/",
    "/api/1/chats/2/",
    "/api/1/chats/?page_size=5",
    "/api/1/contacts/?page_size=5",
    "/api/1/tags/",
    "/api/1/dashboards/summary/",
    "/api/1/templates/",
    "/api/1/automations/",
    "/api/1/account/billing/",
)
_SHELL_NAMES = {
    "owner": "OWNER",
    "administrator": "ADMIN",
    "chat manager": "MANAGER",
    "chat operator": "OPERATOR",
    "service user": "SERVICE_KEY",
}


def run_demo(
    config_file: Path, *, port: int | None, upstream_port: int | None, once: bool
) -> None:
    source = load_config(config_file)
    folder = source.file.parent / ".gateway" / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)

    upstream_port = _choose_port(upstream_port, None, "sample API")
    port = _choose_port(port, source.listen_port, "gateway")
    admin_port = _choose_port(None, None, "admin listener")
    upstream = f"http://127.0.0.1:{upstream_port}"
    demo_config = derive_config(
        source.file,
        folder / "config.yaml",
        {
            ("listen", "host"): "127.0.0.1",
            ("listen", "port"): port,
            ("upstream", "url"): upstream,
            ("store", "sqlite"): folder / "gateway.db",
            ("admin", "host"): "127.0.0.1",
            ("admin", "port"): admin_port,
            **_demo_key_change(source, folder),
        },
    )
    config = load_config(demo_config)
    credentials = asyncio.run(_create_users(config))

    processes = []
    try:
        processes.append(_start(folder, "sample-api",
                                ["-m", "sample_api", "--port", str(upstream_port)]))
        processes.append(_start(folder, "gateway",
                                ["-m", "gateway.cli", "serve", "-c", str(demo_config)]))
        gateway = f"http://127.0.0.1:{port}"
        _wait_ready(processes, [upstream + "/_sample/health", gateway + "/"], folder)
        _check_running(processes, folder)

        _print_answers(gateway, credentials, config.api_key_header)
        if once:
            click.echo(f"\nDecision log: {folder / 'gateway.log'}")
            click.echo("Run the demo without --once to send requests by hand.")
            return

        _print_addresses(gateway, upstream, f"http://127.0.0.1:{admin_port}")
        _print_curl_lines(gateway, credentials, config.api_key_header, folder)
        click.echo("\nPress Ctrl-C to stop both processes.")
        _wait_for_interrupt(processes, folder)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _demo_key_change(source, folder: Path) -> dict:
    # The demo mints its tokens with a secret of its own, never the deployment's.
    if source.jwt.secret_file is not None:
        return {("authentication", "jwt", "secret_file"): folder / "jwt-secret"}
    return {}


async def _create_users(config) -> dict[str, str]:
    """Add the demo users; return each label's credential (token or API key)."""
    store = SQLiteUserStore(config.store_path)
    issuer = TokenIssuer(config.jwt)
    credentials = {}
    try:
        for user in USERS:
            await store.add_user(
                name=user.label.title(),
                email=f"{user.user_id}@demo.invalid",
                role=user.role,
                type=user.type,
                user_id=user.user_id,
            )
            if user.type == "service":
                credentials[user.label] = await store.add_api_key(user.user_id)
            else:
                credentials[user.label] = issuer.issue(user.user_id)
    finally:
        await store.close()

    return credentials


def _start(folder: Path, name: str, arguments: list[str]) -> subprocess.Popen:
    log = open(folder / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, *arguments],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=folder,
    )


def _wait_ready(processes, urls: list[str], folder: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    for url in urls:
        while not _answers(url):
            for process in processes:
                if process.poll() is not None:
                    raise click.ClickException(
                        f"a demo process exited early; see the logs in {folder}"
                    )
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"{url} did not respond within {_READY_TIMEOUT:g} s; "
                    f"see the logs in {folder}"
                )
            time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # Any HTTP response, a 404 included, means the server is up.
    except OSError:
        return False

    return True


def _ask(url: str, header: tuple[str, str]) -> str:
    request = urllib.request.Request(url, headers=dict([header]))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        return str(error.code)

    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and "count" in document:
        return f"{status} (count {document['count']})"
    if isinstance(document, dict) and "open_chats" in document:
        return f"{status} ({document['open_chats']} open)"
    return str(status)


def _header(label: str, credential: str, api_key_header: str) -> tuple[str, str]:
    if label == "service user":
        return api_key_header, credential
    return "Authorization", f"Bearer {credential}"


def _print_answers(gateway: str, credentials: dict, api_key_header: str) -> None:
    labels = list(credentials)
    width = max(len(question) for question in QUESTIONS) + 2
    click.echo(f"Gateway {gateway}: the same GET requests as each user\n")
    click.echo("".ljust(width) + "".join(label.ljust(16) for label in labels))
    for question in QUESTIONS:
        cells = [
            _ask(gateway + question, _header(label, credentials[label], api_key_header))
            for label in labels
        ]
        click.echo(question.ljust(width) + "".join(cell.ljust(16) for cell in cells))


def _print_addresses(gateway: str, upstream: str, admin: str) -> None:
    click.echo("\nWhile the demo runs:")
    click.echo(f"  gateway     {gateway}")
    click.echo(f"  sample API  {upstream}  (GET /_sample/requests: what it received)")
    click.echo(f"  admin       {admin}  (/healthz, /readyz, /metrics)")


def _print_curl_lines(gateway, credentials, api_key_header, folder: Path) -> None:
    click.echo("\nTry it yourself (the tokens expire; rerun the demo for new ones):\n")
    for label, credential in credentials.items():
        click.echo(f"export {_SHELL_NAMES[label]}={credential}")

    click.echo("")
    for label in credentials:
        name = _SHELL_NAMES[label]
        if label == "service user":
            header = f"{api_key_header}: ${name}"
        else:
            header = f"Authorization: Bearer ${name}"
        for question in ("/api/1/chats/2/", "/api/1/templates/"):
            click.echo(f"curl -s -H \"{header}\" '{gateway}{question}'")

    click.echo(f"\nDecision log: {folder / 'gateway.log'}")


def _check_running(processes, folder: Path) -> None:
    if any(process.poll() is not None for process in processes):
        raise click.ClickException(f"a demo process exited; see the logs in {folder}")


def _choose_port(requested: int | None, preferred: int | None, name: str) -> int:
    """Return `requested` if it is free, else `preferred` if free, else any port."""
    if requested:
        if not _port_is_free(requested):
            raise click.ClickException(f"port {requested} for the {name} is in use")
        return requested

    if preferred and _port_is_free(preferred):
        return preferred

    port = _free_port()
    if preferred:
        click.echo(f"Port {preferred} is in use; the {name} takes port {port}.")
    return port


def _wait_for_interrupt(processes, folder: Path) -> None:
    # SIGTERM stops the demo like Ctrl-C, so both processes are stopped too.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        return
    finally:
        signal.signal(signal.SIGTERM, previous)

    raise click.ClickException(f"a demo process stopped; see the logs in {folder}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: a port with connections in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
