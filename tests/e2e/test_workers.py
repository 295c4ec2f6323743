"""`gateway serve --workers 2`: two processes serve one port, and both take requests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from gateway.config.derive import derive_config

from .test_processes import (
    REPOSITORY,
    SOURCE_CONFIG,
    free_port,
    request,
    run_cli_ok,
    stop,
    wait_until_listening,
)

REQUESTS = 200


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@contextmanager
def running_workers(folder: Path, changes: dict | None = None):
    """Run the sample API and `gateway serve --workers 2`; yield what tests need."""
    sample_port, gateway_port, admin_port = free_port(), free_port(), free_port()
    config = derive_config(SOURCE_CONFIG, folder / "config.yaml", {
        ("upstream", "url"): f"http://127.0.0.1:{sample_port}",
        ("store", "sqlite"): folder / "gateway.db",
        ("authentication", "jwt", "secret_file"): folder / "jwt-secret",
        ("listen", "port"): gateway_port,
        ("admin", "port"): admin_port,
    } | (changes or {}))
    run_cli_ok("users", "add", "-c", str(config), "--name", "Manager",
               "--email", "manager@example.com", "--role", "chat_manager",
               "--id", "u-manager")
    token = run_cli_ok("token", "-c", str(config), "--user", "u-manager").strip()

    log = folder / "processes.log"
    with log.open("wb") as output:
        sample = subprocess.Popen([sys.executable, "-m", "sample_api", "--port",
                                   str(sample_port)], stdout=output, stderr=output,
                                  cwd=REPOSITORY)
        supervisor = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve",
                                       "-c", str(config), "--workers", "2"],
                                      stdout=output, stderr=output, cwd=REPOSITORY)
    try:
        wait_until_listening(sample_port, sample, log)
        wait_until_listening(gateway_port, supervisor, log)
        wait_until_listening(admin_port, supervisor, log)
        deadline = time.monotonic() + 15
        while len(children(supervisor.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield supervisor, gateway_port, admin_port, token
    finally:
        stop(supervisor)
        stop(sample)


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    with running_workers(tmp_path_factory.mktemp("workers")) as running:
        yield running


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_two_workers_run_under_the_supervisor(workers):
    supervisor, *_ = workers

    assert len(children(supervisor.pid)) == 2


def test_both_workers_serve_the_one_port(workers):
    supervisor, port, _, token = workers
    pids = children(supervisor.pid)
    before = {pid: cpu_ticks(pid) for pid in pids}

    statuses = [request(port, "GET", "/api/1/chats/1/",
                        {"Authorization": f"Bearer {token}"}).status
                for _ in range(REQUESTS)]

    assert set(statuses) == {200}
    busy = [pid for pid in pids if cpu_ticks(pid) > before[pid]]
    assert busy == pids, "a worker took no connection"


def test_metrics_add_up_every_worker(workers):
    supervisor, port, admin_port, token = workers
    for _ in range(20):
        request(port, "GET", "/api/1/no-such-route/")

    text = request(admin_port, "GET", "/metrics").body.decode()

    counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("gateway_requests_total{")
                  and 'status="404"' in line)
    assert counted >= 20


def test_sighup_reaches_every_worker(workers):
    supervisor, port, admin_port, token = workers
    before = request(admin_port, "GET", "/readyz").json()["reloads"]

    supervisor.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if request(admin_port, "GET", "/readyz").json()["reloads"] > before:
            break
        time.sleep(0.1)

    assert request(admin_port, "GET", "/readyz").json()["reloads"] > before
    assert request(port, "GET", "/api/1/chats/1/",
                   {"Authorization": f"Bearer {token}"}).status == 200


def test_worker_that_dies_is_started_again(workers):
    supervisor, port, _, token = workers
    victim = children(supervisor.pid)[1]

    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        current = children(supervisor.pid)
        if len(current) == 2 and victim not in current:
            break
        time.sleep(0.1)

    assert victim not in children(supervisor.pid)
    assert len(children(supervisor.pid)) == 2


def test_workers_stop_when_supervisor_is_killed(tmp_path):
    with running_workers(tmp_path) as (supervisor, port, _, _):
        pids = children(supervisor.pid)

        supervisor.kill()
        supervisor.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(map(is_running, pids)):
            time.sleep(0.1)

        left = [pid for pid in pids if is_running(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert len(pids) == 2
        assert left == [], "workers outlived their supervisor"


def test_reassignment_reaches_every_workers_cache(tmp_path):
    with running_workers(tmp_path) as (supervisor, port, _, manager_token):
        config = str(tmp_path / "config.yaml")
        run_cli_ok("users", "add", "-c", config, "--name", "Operator",
                   "--email", "op@example.com", "--role", "chat_operator",
                   "--id", "u-op-1")
        operator = {"Authorization": "Bearer "
                    + run_cli_ok("token", "-c", config, "--user", "u-op-1").strip()}
        manager = {"Authorization": f"Bearer {manager_token}"}

        # Each request opens a connection of its own, so both workers serve
        # some, and both cache chat 1's owner.
        before = [request(port, "GET", "/api/1/chats/1/", operator).status
                  for _ in range(REQUESTS // 4)]
        assigned = request(port, "POST", "/api/1/chats/1/assign/", manager,
                           {"operator": "u-op-2"})
        after = [request(port, "GET", "/api/1/chats/1/", operator).status
                 for _ in range(REQUESTS // 4)]

        assert set(before) == {200}
        assert assigned.status == 200
        assert set(after) == {404}, "a worker kept the owner from before"


async def open_streams(port: int, headers: dict[str, str], count: int):
    """Open `count` event streams on chat 1, each on a connection of its own."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    responses = []
    for _ in range(count):
        response = await session.get(f"http://127.0.0.1:{port}/api/1/chats/1/events/"
                                     "?heartbeat=30", headers=headers)
        assert response.status == 200
        await response.content.readline()
        responses.append(response)
    return session, responses


async def ended_within(response, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while await response.content.readany():
                pass
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize("change", ["reassign", "deactivate"])
def test_change_through_one_worker_ends_streams_on_all(tmp_path, change):
    # One worker may get all eight streams of the one user.
    more_streams = {("streams", "max_per_user"): 8}
    with running_workers(tmp_path, more_streams) as (supervisor, port, _,
                                                     manager_token):
        config = str(tmp_path / "config.yaml")
        run_cli_ok("users", "add", "-c", config, "--name", "Operator",
                   "--email", "op@example.com", "--role", "chat_operator",
                   "--id", "u-op-1")
        run_cli_ok("users", "add", "-c", config, "--name", "Owner",
                   "--email", "owner@example.com", "--role", "owner", "--id", "u-owner")
        operator = {"Authorization": "Bearer "
                    + run_cli_ok("token", "-c", config, "--user", "u-op-1").strip()}
        owner = {"Authorization": "Bearer "
                 + run_cli_ok("token", "-c", config, "--user", "u-owner").strip()}
        manager = {"Authorization": f"Bearer {manager_token}"}

        async def scenario() -> list[bool]:
            # Eight connections: both workers hold some of them, but for one
            # run in 128.
            session, streams = await open_streams(port, operator, 8)
            try:
                if change == "reassign":
                    changed = request(port, "POST", "/api/1/chats/1/assign/", manager,
                                      {"operator": "u-op-2"})
                else:
                    changed = request(port, "POST",
                                      "/gateway/v1/users/u-op-1/deactivate", owner)
                assert changed.status == 200, changed.body
                return [await ended_within(response, 2.0) for response in streams]
            finally:
                await session.close()

        ended = asyncio.run(scenario())

        assert ended == [True] * 8, "a stream on another worker outlived the change"


def workers_config(folder: Path, **ports: int) -> Path:
    return derive_config(SOURCE_CONFIG, folder / "config.yaml", {
        ("store", "sqlite"): folder / "gateway.db",
        ("authentication", "jwt", "secret_file"): folder / "jwt-secret",
        ("listen", "port"): ports["listen"],
        ("admin", "port"): ports["admin"],
    })


def test_workers_refuse_a_port_in_use(tmp_path):
    with socket.create_server(("127.0.0.1", 0), reuse_port=True) as taken:
        config = workers_config(tmp_path, listen=taken.getsockname()[1],
                                admin=free_port())

        result = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "-c",
                                 str(config), "--workers", "2"], capture_output=True,
                                text=True, timeout=30, cwd=REPOSITORY)

    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr


def test_supervisor_stops_when_a_worker_cannot_listen(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        config = workers_config(tmp_path, listen=free_port(),
                                admin=taken.getsockname()[1])

        result = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "-c",
                                 str(config), "--workers", "2"], capture_output=True,
                                text=True, timeout=30, cwd=REPOSITORY)

    assert result.returncode == 1
    assert "cannot listen; stopping every worker" in result.stderr
    assert "starting it again" not in result.stderr
