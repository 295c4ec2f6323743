"""The sample API and the gateway as real processes, set up with the command line.

`python -m sample_api` and `python -m gateway.cli serve` run on free loopback
ports.  Users, API keys and tokens come from the `gateway` commands, and the
tests send plain HTTP requests to both processes.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config.derive import derive_config

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE_CONFIG = REPOSITORY / "config.yaml"
SOURCE_ROLES = REPOSITORY / "policies" / "roles.csv"
START_TIMEOUT = 15.0  # seconds for a process to accept connections


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
    )


def run_cli_ok(*arguments: str) -> str:
    """Run a `gateway` command that must succeed, and return its standard output."""
    result = run_cli(*arguments)
    assert result.returncode == 0, result.stderr
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

    pytest.fail(f"nothing listened on port {port} within {START_TIMEOUT} s:\n"
                f"{log.read_text()}")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
            body: dict | None = None) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        sent_headers = dict(headers or {})
        if payload is not None:
            sent_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=sent_headers)
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


@dataclass
class Stack:
    """The two running processes and the credentials made for them."""

    folder: Path
    config: Path
    sample_port: int
    gateway_port: int
    tokens: dict[str, str]
    service_api_key: str

    def as_user(self, user_id: str, method: str, path: str,
                body: dict | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {self.tokens[user_id]}"}
        return request(self.gateway_port, method, path, headers, body)

    def upstream_record(self) -> list[dict]:
        return request(self.sample_port, "GET", "/_sample/requests").json()["requests"]

    def clear_upstream_record(self) -> None:
        assert request(self.sample_port, "DELETE", "/_sample/requests").status == 204


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("e2e")
    sample_port = free_port()
    gateway_port = free_port()
    config = derive_config(
        SOURCE_CONFIG,
        folder / "config.yaml",
        {
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

        for user_id, role in (("u-owner", "owner"), ("u-op-1", "chat_operator")):
            run_cli_ok("users", "add", "-c", str(config), "--id", user_id,
                       "--name", user_id, "--email", f"{user_id}@example.com",
                       "--role", role)
        api_key = run_cli_ok("service-users", "add", "-c", str(config),
                             "--id", "u-service", "--name", "Service user",
                             "--email", "u-service@example.com",
                             "--role", "chat_manager").strip()

        gateway_log = folder / "gateway.log"
        with gateway_log.open("w") as log:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "-c", str(config),
                 "--port", str(gateway_port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=folder,
            ))
        wait_until_listening(gateway_port, started[-1], gateway_log)

        tokens = {
            user_id: run_cli_ok("token", "-c", str(config), "--user", user_id).strip()
            for user_id in ("u-owner", "u-op-1")
        }
        yield Stack(folder, config, sample_port, gateway_port, tokens, api_key)
    finally:
        for process in reversed(started):
            stop(process)


@pytest.fixture
def stack_with_empty_record(stack: Stack) -> Stack:
    stack.clear_upstream_record()
    return stack


def test_owner_sees_every_chat(stack_with_empty_record):
    reply = stack_with_empty_record.as_user("u-owner", "GET",
                                            "/api/1/chats/?page_size=100")

    assert reply.status == 200
    assert reply.json()["count"] == 300


def test_operator_sees_own_chats(stack_with_empty_record):
    reply = stack_with_empty_record.as_user("u-op-1", "GET",
                                            "/api/1/chats/?page_size=100")

    assert reply.status == 200
    chats = reply.json()["results"]
    assert reply.json()["count"] == 75
    assert {chat["assignee"] for chat in chats} == {"u-op-1"}


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [("u-owner", 200), ("u-op-1", 404)],
)
def test_other_operators_chat_by_role(stack_with_empty_record, user_id, expected):
    reply = stack_with_empty_record.as_user(user_id, "GET", "/api/1/chats/2/")

    assert reply.status == expected


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        pytest.param("POST", "/api/1/chats/2/messages/", {"text": "hi"}, 404,
                     id="message-to-other-chat"),
        pytest.param("PATCH", "/api/1/contacts/2/", {"email": "x@example.com"}, 404,
                     id="update-other-contact"),
        pytest.param("GET", "/api/1/account/", None, 403, id="account"),
        pytest.param("POST", "/api/1/chats/1/assign/", {"operator": "u-op-1"}, 403,
                     id="assign-own-chat"),
    ],
)
def test_refused_request_never_reaches_upstream(stack_with_empty_record, method,
                                                path, body, expected):
    stack = stack_with_empty_record
    reply = stack.as_user("u-op-1", method, path, body)

    assert reply.status == expected
    assert reply.headers["Content-Type"] == "application/problem+json"
    client_requests = [
        entry for entry in stack.upstream_record()
        if "x-gateway-resolver" not in entry["headers"]
    ]
    assert client_requests == []


def test_allowed_request_reaches_upstream(stack_with_empty_record):
    stack = stack_with_empty_record
    reply = stack.as_user("u-op-1", "POST", "/api/1/chats/1/messages/",
                          {"text": "On its way."})

    assert reply.status == 201
    assert reply.json()["sent_by"] == "u-op-1"
    methods = [entry["method"] for entry in stack.upstream_record()]
    assert "POST" in methods


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/api/1/chats/2/", 200), ("/api/1/templates/", 403)],
)
def test_service_key_from_cli(stack_with_empty_record, path, expected):
    stack = stack_with_empty_record
    reply = request(stack.gateway_port, "GET", path,
                    {"X-API-Key": stack.service_api_key})

    assert reply.status == expected


def test_cli_deactivation_applies_at_once(stack):
    config = str(stack.config)
    run_cli_ok("users", "add", "-c", config, "--id", "u-leaver", "--name", "Leaver",
               "--email", "u-leaver@example.com", "--role", "owner")
    token = run_cli_ok("token", "-c", config, "--user", "u-leaver").strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert request(stack.gateway_port, "GET", "/api/1/account/", headers).status == 200

    run_cli_ok("users", "deactivate", "-c", config, "u-leaver")

    assert request(stack.gateway_port, "GET", "/api/1/account/", headers).status == 403


def test_cli_role_change_applies_at_once(stack):
    config = str(stack.config)
    run_cli_ok("users", "add", "-c", config, "--id", "u-promoted", "--name", "Promoted",
               "--email", "u-promoted@example.com", "--role", "chat_manager")
    token = run_cli_ok("token", "-c", config, "--user", "u-promoted").strip()
    headers = {"Authorization": f"Bearer {token}"}
    campaigns = "/api/1/campaigns/"
    assert request(stack.gateway_port, "GET", campaigns, headers).status == 403

    run_cli_ok("users", "set-role", "-c", config, "u-promoted", "administrator")

    assert request(stack.gateway_port, "GET", campaigns, headers).status == 200


def test_token_for_unknown_user_fails(stack):
    result = run_cli("token", "-c", str(stack.config), "--user", "u-nobody")

    assert result.returncode == 1
    assert "no user with id 'u-nobody'" in result.stderr


def test_check_accepts_repository_policy(stack):
    result = run_cli("check", "-c", str(stack.config))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")


def test_check_writes_no_secret(tmp_path):
    secret = tmp_path / "jwt-secret"
    config = derive_config(SOURCE_CONFIG, tmp_path / "config.yaml", {
        ("store", "sqlite"): tmp_path / "gateway.db",
        ("authentication", "jwt", "secret_file"): secret,
    })

    result = run_cli("check", "-c", str(config))

    assert result.returncode == 0, result.stderr
    assert not secret.exists(), "gateway check created the JWT secret"


BROKEN_LINE = 21  # line number of the broken row in the copy of roles.csv
BROKEN_ROWS = [
    pytest.param("p, chat_operator, chats, destroy, all", "unknown action",
                 id="unknown-action"),
    pytest.param("p, superuser, chats, read, all", "unknown role", id="unknown-role"),
    pytest.param("p, chat_operator, chats, read", "has 5 fields",
                 id="missing-field"),
    pytest.param('p, chat_operator, "chats", read, all', "is not allowed",
                 id="quoted-field"),
    pytest.param("p, chat_operator, chats, read, mine", "scope must be",
                 id="unknown-scope"),
    pytest.param("p, chat_operator, chats, list, own", "duplicate of line",
                 id="duplicate-row"),
    pytest.param("g, chat_operator, chat_operator", "inherits from itself",
                 id="self-inheritance"),
]


@pytest.mark.parametrize(("row", "message"), BROKEN_ROWS)
def test_check_names_broken_roles_line(tmp_path, row, message):
    lines = SOURCE_ROLES.read_text().splitlines()
    lines.insert(BROKEN_LINE - 1, row)
    roles = tmp_path / "roles.csv"
    roles.write_text("\n".join(lines) + "\n")
    config = derive_config(SOURCE_CONFIG, tmp_path / "config.yaml",
                           {("policy", "roles"): roles})

    result = run_cli("check", "-c", str(config))

    assert result.returncode == 1
    assert f"{roles}:{BROKEN_LINE}: " in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_sighup_reloads_edited_policy(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(REPOSITORY / "policies", policies)
    gateway_port, admin_port = free_port(), free_port()
    config = derive_config(SOURCE_CONFIG, tmp_path / "config.yaml", {
        # No upstream listens here: a forwarded request gets 502.
        ("upstream", "url"): f"http://127.0.0.1:{free_port()}",
        ("store", "sqlite"): tmp_path / "gateway.db",
        ("authentication", "jwt", "secret_file"): tmp_path / "jwt-secret",
        ("policy", "model"): policies / "model.conf",
        ("policy", "roles"): policies / "roles.csv",
        ("admin", "port"): admin_port,
        ("reload", "watch"): False,
    })
    run_cli_ok("users", "add", "-c", str(config), "--id", "u-manager", "--name", "M",
               "--email", "m@example.com", "--role", "chat_manager")
    token = run_cli_ok("token", "-c", str(config), "--user", "u-manager").strip()
    headers = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "gateway.log"
    with log.open("w") as output:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "-c", str(config),
             "--port", str(gateway_port)],
            stdout=output, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
    try:
        wait_until_listening(admin_port, gateway, log)
        before = request(gateway_port, "GET", "/api/1/templates/", headers).status
        roles = policies / "roles.csv"
        roles.write_text(roles.read_text() + "p, chat_manager, templates, list, all\n")

        gateway.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + START_TIMEOUT
        while request(admin_port, "GET", "/readyz").json()["reloads"] == 0:
            assert time.monotonic() < deadline, "no reload after SIGHUP"
            time.sleep(0.05)
        after = request(gateway_port, "GET", "/api/1/templates/", headers).status
    finally:
        stop(gateway)

    assert before == 403
    assert after == 502, "the new policy allows it, and no upstream answers"


def test_busy_admin_port_stops_start_without_listening_line(tmp_path):
    gateway_port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = derive_config(SOURCE_CONFIG, tmp_path / "config.yaml", {
            ("store", "sqlite"): tmp_path / "gateway.db",
            ("authentication", "jwt", "secret_file"): tmp_path / "jwt-secret",
            ("listen", "port"): gateway_port,
            ("admin", "port"): busy.getsockname()[1],
        })

        result = run_cli("serve", "-c", str(config))

    assert result.returncode == 3, "the exit status of a gateway that cannot listen"
    assert "Error: cannot listen" in result.stderr
    assert "gateway listening" not in result.stderr
