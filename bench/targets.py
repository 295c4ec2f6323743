"""The servers that bench/run.py measures, started on free loopback ports.

- the sample chat API (`python -m sample_api`), the upstream of all others,
  which is also measured on its own as "upstream direct";
- nginx with one worker process and a plain `proxy_pass` (bench/nginx_proxy.py);
- the bare pass-through proxy of bench/passthrough.py;
- the gateway (`gateway serve`) with one process, and with `--workers N`.

Each server is stopped, by its process handle, when the caller's ExitStack
closes.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nginx_proxy import find_nginx, nginx_command, write_nginx_config
from report import (
    GATEWAY,
    NGINX,
    PASS_THROUGH,
    UPSTREAM_DIRECT,
    gateway_workers_name,
)
from servers import LOOPBACK, Server, free_port, pin, start_server, stop_server

from gateway.config.derive import derive_config

BENCH_DIR = Path(__file__).resolve().parent
REPOSITORY = BENCH_DIR.parent
# The values of --targets, in the order in which each round measures them.  The
# pass-through comes right before the gateway, and one gateway worker right
# before several, so the runs of the ratios that matter most are adjacent.
TARGET_KEYS = ("upstream", "nginx", "pass-through", "gateway", "gateway-workers")


@dataclass(frozen=True)
class BenchUser:
    user_id: str
    name: str
    email: str
    role: str


BENCH_USERS = (
    BenchUser("u-op-1", "Bench Operator", "op1@bench.example", "chat_operator"),
    BenchUser("u-manager", "Bench Manager", "manager@bench.example", "chat_manager"),
    BenchUser("u-owner", "Bench Owner", "owner@bench.example", "owner"),
)


@dataclass(frozen=True)
class Targets:
    """The running servers: `measured` in the order of a round."""

    upstream: Server
    measured: list[Server]
    config_path: Path

    def named(self, name: str) -> Server | None:
        for server in self.measured:
            if server.name == name:
                return server

        return None


# Gateway set-up


def run_gateway_cli(config_path: Path, *arguments: str) -> str:
    """Run a `gateway` subcommand on the derived config and return its output."""
    argv = [sys.executable, "-m", "gateway.cli", *arguments, "-c", str(config_path)]
    completed = subprocess.run(
        argv, cwd=REPOSITORY, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"`gateway {' '.join(arguments)}` failed with status "
            f"{completed.returncode}: {completed.stderr.strip()}"
        )

    return completed.stdout.strip()


def write_gateway_config(
    work_dir: Path, upstream_url: str, log_level: str | None
) -> Path:
    changes = {
        ("upstream", "url"): upstream_url,
        ("store", "sqlite"): work_dir / "gateway.db",
        ("authentication", "jwt", "secret_file"): work_dir / "jwt-secret",
        ("admin", "port"): 0,
    }
    if log_level is not None:
        changes[("log_level",)] = log_level

    return derive_config(REPOSITORY / "config.yaml", work_dir / "gateway.yaml", changes)


def add_users(config_path: Path) -> None:
    for user in BENCH_USERS:
        run_gateway_cli(
            config_path,
            "users",
            "add",
            "--id",
            user.user_id,
            "--name",
            user.name,
            "--email",
            user.email,
            "--role",
            user.role,
        )


def mint_tokens(config_path: Path, lifetime_seconds: int) -> dict[str, str]:
    return {
        user.user_id: run_gateway_cli(
            config_path,
            "token",
            "--user",
            user.user_id,
            "--lifetime",
            str(lifetime_seconds),
        )
        for user in BENCH_USERS
    }


# Starting


def start_targets(
    stack: contextlib.ExitStack,
    keys: tuple[str, ...],
    work_dir: Path,
    server_cpus: set[int] | None,
    gateway_log_level: str | None,
    gateway_workers: int,
) -> Targets:
    """Start the sample API and the servers named by `keys`, stopped on exit."""

    def start(name: str, argv: list[str], port: int, listeners: int = 1) -> Server:
        server = start_server(name, argv, port, work_dir, REPOSITORY, listeners)
        stack.callback(stop_server, server)
        pin(server.process, server_cpus)
        return server

    port = free_port()
    upstream = start(
        "sample API", [sys.executable, "-m", "sample_api", "--port", str(port)], port
    )
    config_path = write_gateway_config(work_dir, upstream.url, gateway_log_level)
    measured = []

    if "upstream" in keys:
        # The same process under the name of its row.
        measured.append(
            Server(UPSTREAM_DIRECT, upstream.process, upstream.port, upstream.log_path)
        )

    if "nginx" in keys:
        port = free_port()
        prefix = work_dir / "nginx"
        nginx_config = write_nginx_config(
            prefix, LOOPBACK, port, LOOPBACK, upstream.port, workers=1
        )
        argv = nginx_command(find_nginx(), prefix, nginx_config)
        measured.append(start(NGINX, argv, port))

    if "pass-through" in keys:
        port = free_port()
        argv = [sys.executable, str(BENCH_DIR / "passthrough.py")]
        argv += ["--upstream", upstream.url, "--port", str(port)]
        measured.append(start(PASS_THROUGH, argv, port))

    gateway_argv = [sys.executable, "-m", "gateway.cli", "serve"]
    gateway_argv += ["-c", str(config_path), "--host", LOOPBACK]
    if "gateway" in keys:
        port = free_port()
        measured.append(start(GATEWAY, gateway_argv + ["--port", str(port)], port))

    if "gateway-workers" in keys:
        # Each worker binds the port with SO_REUSEPORT, so the port is fixed
        # here, and the server is ready once every worker listens.
        port = free_port()
        argv = gateway_argv + ["--port", str(port), "--workers", str(gateway_workers)]
        name = gateway_workers_name(gateway_workers)
        measured.append(start(name, argv, port, listeners=gateway_workers))

    return Targets(upstream, measured, config_path)
