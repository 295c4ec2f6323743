"""Measure the gateway's throughput against a bare pass-through proxy.

Starts, as subprocesses on free loopback ports, the sample chat API, the
pass-through proxy of bench/passthrough.py in front of it, and the gateway
with a config derived from config.yaml.  Then it sends the same request mix to
each target in turn, never to both at once.  For the mix and for each request
kind alone it prints requests per second, p50 and p99 latency, the CPU time
per request of each process, and the gateway's rate over the pass-through's.

Run from the repository: ``.venv/bin/python bench/run.py``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from loaders import (
    LoadResult,
    LoadSettings,
    children_cpu_seconds,
    choose_loader,
    run_loader,
)
from report import (
    GATEWAY,
    PASS_THROUGH,
    Measurement,
    print_report,
    print_warnings,
    write_json,
)
from servers import (
    LOOPBACK,
    Server,
    cpu_seconds,
    free_port,
    log_tail,
    machine_busy_seconds,
    pin,
    reset_sample_api,
    resetting_periodically,
    send_once,
    start_server,
    stop_server,
)

from gateway.config.derive import derive_config

BENCH_DIR = Path(__file__).resolve().parent
REPOSITORY = BENCH_DIR.parent
# py-spy samples per second.  Each sample pauses the gateway briefly, so the
# profiled run is slower than the measured ones and kept out of the table.
PROFILE_RATE_HZ = 250
# Shortest lifetime of the minted tokens.  Without --lifetime, `gateway token`
# uses the config's token_lifetime, which could end inside a long benchmark.
MIN_TOKEN_LIFETIME_SECONDS = 3600


@dataclass(frozen=True)
class RequestKind:
    name: str
    user_id: str
    method: str
    path: str
    body: str | None
    expected_status: int


@dataclass(frozen=True)
class BenchUser:
    user_id: str
    name: str
    email: str
    role: str


@dataclass(frozen=True)
class Scenario:
    name: str
    kinds: tuple[RequestKind, ...]


# In the sample API's seed data chat 1 is assigned to u-op-1, so the operator's
# "own" grant allows the read.  The owner's grant on messages is "all".
REQUEST_KINDS = (
    RequestKind("operator reads chat", "u-op-1", "GET", "/api/1/chats/1/", None, 200),
    RequestKind(
        "manager lists chats",
        "u-manager",
        "GET",
        "/api/1/chats/?page_size=20",
        None,
        200,
    ),
    RequestKind(
        "owner sends message",
        "u-owner",
        "POST",
        "/api/1/chats/5/messages/",
        '{"text": "hi"}',
        201,
    ),
)
BENCH_USERS = (
    BenchUser("u-op-1", "Bench Operator", "op1@bench.example", "chat_operator"),
    BenchUser("u-manager", "Bench Manager", "manager@bench.example", "chat_manager"),
    BenchUser("u-owner", "Bench Owner", "owner@bench.example", "owner"),
)
SCENARIOS = (Scenario("mix", REQUEST_KINDS),) + tuple(
    Scenario(kind.name, (kind,)) for kind in REQUEST_KINDS
)


@dataclass(frozen=True)
class Settings:
    duration: float
    warmup: float
    rounds: int
    scenarios: tuple[Scenario, ...]
    gateway_log_level: str | None
    server_cpus: set[int] | None
    load: LoadSettings
    profile_path: Path | None

    def describe(self) -> str:
        pinning = "none, the kernel schedules every process on both CPUs"
        if self.server_cpus is not None:
            pinning = (
                f"load generator on CPUs {sorted(self.load.cpus)}, "
                f"servers on CPUs {sorted(self.server_cpus)}"
            )
        return (
            f"loader {self.load.loader}, {self.load.concurrency} connections, "
            f"{self.rounds} rounds of {self.duration:g} s per target and "
            f"scenario after {self.warmup:g} s warm-up each; CPU pinning: "
            f"{pinning}; gateway log level: "
            f"{self.gateway_log_level or 'as in config.yaml'}"
        )

    def planned_seconds(self) -> float:
        runs = len(self.scenarios) * 2 * self.rounds + 1
        return runs * (self.duration + self.warmup)


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


# Requests


def request_specs(kinds: tuple[RequestKind, ...], tokens: dict[str, str]) -> list:
    """Build the wire form of each request.  Both targets get the same headers."""
    specs = []
    for kind in kinds:
        headers = {"Authorization": f"Bearer {tokens[kind.user_id]}"}
        if kind.body is not None:
            headers["Content-Type"] = "application/json"

        specs.append(
            {
                "method": kind.method,
                "path": kind.path,
                "headers": headers,
                "body": kind.body,
                "expected_status": kind.expected_status,
            }
        )

    return specs


def check_statuses(server: Server, specs: list[dict]) -> None:
    """Raise unless each request gets its expected status, so no refusal is timed."""
    for spec in specs:
        status = send_once(server.port, spec)
        if status != spec["expected_status"]:
            raise RuntimeError(
                f"{server.name}: {spec['method']} {spec['path']} returned {status}, "
                f"expected {spec['expected_status']}:\n{log_tail(server)}"
            )


# Running


def start_servers(
    stack: contextlib.ExitStack, settings: Settings
) -> tuple[Server, Server, Server, Path]:
    """Start the sample API, the pass-through and the gateway, stopped on exit."""
    work_dir = settings.load.work_dir

    def start(name: str, argv: list[str], port: int) -> Server:
        server = start_server(name, argv, port, work_dir, REPOSITORY)
        stack.callback(stop_server, server)
        pin(server.process, settings.server_cpus)
        return server

    port = free_port()
    upstream = start(
        "sample API", [sys.executable, "-m", "sample_api", "--port", str(port)], port
    )

    port = free_port()
    passthrough_argv = [sys.executable, str(BENCH_DIR / "passthrough.py")]
    passthrough_argv += ["--upstream", upstream.url, "--port", str(port)]
    passthrough = start(PASS_THROUGH, passthrough_argv, port)

    config_path = write_gateway_config(
        work_dir, upstream.url, settings.gateway_log_level
    )
    port = free_port()
    gateway_argv = [sys.executable, "-m", "gateway.cli", "serve"]
    gateway_argv += ["-c", str(config_path), "--host", LOOPBACK, "--port", str(port)]
    gateway = start(GATEWAY, gateway_argv, port)

    return upstream, passthrough, gateway, config_path


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds used so far by each process of a run and by the whole machine."""

    target: float
    upstream: float
    loader: float
    machine: float


def read_cpu_times(target: Server, upstream: Server) -> CpuTimes:
    return CpuTimes(
        target=cpu_seconds(target.process.pid),
        upstream=cpu_seconds(upstream.process.pid),
        loader=children_cpu_seconds(),
        machine=machine_busy_seconds(),
    )


def measure(
    target: Server, upstream: Server, specs: list[dict], settings: Settings
) -> tuple[LoadResult, CpuTimes]:
    """Warm up, run the loader once, and return its result and the CPU used."""
    reset_sample_api(upstream)
    with resetting_periodically(upstream):
        if settings.warmup > 0:
            run_loader(target.url, specs, settings.load, settings.warmup)

        before = read_cpu_times(target, upstream)
        load = run_loader(target.url, specs, settings.load, settings.duration)
        after = read_cpu_times(target, upstream)

    used = CpuTimes(
        target=after.target - before.target,
        upstream=after.upstream - before.upstream,
        loader=after.loader - before.loader,
        machine=after.machine - before.machine,
    )
    return load, used


def run_scenarios(
    targets: list[Server],
    upstream: Server,
    tokens: dict[str, str],
    settings: Settings,
) -> list[Measurement]:
    measurements = []
    # Targets take turns under the same settings and never run at once, so
    # neither competes with the other's load for the two CPUs.  Each round
    # measures both back to back, which keeps slow drifts of the machine's
    # speed out of their ratio.
    for scenario in settings.scenarios:
        specs = request_specs(scenario.kinds, tokens)
        for round_number in range(1, settings.rounds + 1):
            for target in targets:
                load, used = measure(target, upstream, specs, settings)
                # Whatever else ran on the machine, such as a test suite, took
                # CPU from the benchmark's processes.
                others = used.machine - used.target - used.upstream - used.loader
                measurements.append(
                    Measurement(
                        target=target.name,
                        scenario=scenario.name,
                        round=round_number,
                        load=load,
                        target_cpu_seconds=used.target,
                        upstream_cpu_seconds=used.upstream,
                        loader_cpu_seconds=used.loader,
                        other_cpu_seconds=max(0.0, others),
                    )
                )
                print(
                    f"  {scenario.name}, round {round_number}, {target.name}: "
                    f"{load.rate:.0f} req/s",
                    flush=True,
                )

    return measurements


def find_py_spy() -> str | None:
    beside_python = Path(sys.executable).with_name("py-spy")
    if beside_python.exists():
        return str(beside_python)

    return shutil.which("py-spy")


def profile_gateway(
    gateway: Server, upstream: Server, tokens: dict[str, str], settings: Settings
) -> None:
    """Send the mix to the gateway once more while py-spy records its stacks."""
    specs = request_specs(REQUEST_KINDS, tokens)
    argv = [find_py_spy(), "record", "--pid", str(gateway.process.pid)]
    argv += ["--duration", str(max(1, int(settings.duration)))]
    argv += ["--rate", str(PROFILE_RATE_HZ), "--format", "raw"]
    argv += ["--output", str(settings.profile_path)]

    reset_sample_api(upstream)
    with resetting_periodically(upstream):
        run_loader(gateway.url, specs, settings.load, settings.warmup or 1)
        profiler = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        run_loader(gateway.url, specs, settings.load, settings.duration)
        _, errors = profiler.communicate(timeout=settings.duration + 60)

    if profiler.returncode != 0:
        raise RuntimeError(f"py-spy failed with status {profiler.returncode}: {errors}")

    print(f"gateway profile of the mix (folded stacks): {settings.profile_path}")


def run_benchmark(settings: Settings) -> list[Measurement]:
    with contextlib.ExitStack() as stack:
        upstream, passthrough, gateway, config_path = start_servers(stack, settings)
        add_users(config_path)
        lifetime = max(MIN_TOKEN_LIFETIME_SECONDS, 2 * settings.planned_seconds())
        tokens = mint_tokens(config_path, round(lifetime))

        targets = [passthrough, gateway]
        for target in targets:
            check_statuses(target, request_specs(REQUEST_KINDS, tokens))

        print(settings.describe(), flush=True)
        measurements = run_scenarios(targets, upstream, tokens, settings)
        if settings.profile_path is not None:
            profile_gateway(gateway, upstream, tokens, settings)

        return measurements


# Command line


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=5.0, help="measured seconds per run"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of unmeasured load before each run (0: none)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="open client connections"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="runs per target and scenario, alternating the targets",
    )
    parser.add_argument(
        "--scenarios",
        choices=("all", "mix"),
        default="all",
        help="the mix and then each request kind alone, or the mix only",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=1_000_000,
        help="upper bound on the requests of one run, on top of --duration",
    )
    parser.add_argument(
        "--loader",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="load generator: wrk, bench/load.py, or auto (wrk when installed)",
    )
    parser.add_argument(
        "--loader-cpu",
        type=int,
        help="pin the load generator to this CPU and the servers to the others "
        "(default: no pinning)",
    )
    parser.add_argument(
        "--gateway-log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log_level of the gateway.  WARNING turns off its per-request "
        "decision line (default: as in config.yaml)",
    )
    parser.add_argument(
        "--json", type=Path, help="also write every run and summary to this file"
    )
    parser.add_argument(
        "--profile-gateway",
        type=Path,
        metavar="FILE",
        help="after the measured runs, profile the gateway under the mix with "
        "py-spy and write its folded stacks to FILE (summarize them with "
        "bench/profile_summary.py)",
    )
    options = parser.parse_args(argv)

    for name in ("duration", "concurrency", "rounds", "max_requests"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if options.warmup < 0:
        parser.error("--warmup must be 0 or more")

    return options


def split_cpus(loader_cpu: int | None) -> tuple[set[int] | None, set[int] | None]:
    """Return the CPUs of the loader and of the servers, or (None, None) unpinned."""
    if loader_cpu is None:
        return None, None

    available = os.sched_getaffinity(0)
    if loader_cpu not in available or len(available) < 2:
        raise SystemExit(
            f"Error: --loader-cpu {loader_cpu} must be one of at least two "
            f"usable CPUs; usable: {sorted(available)}"
        )

    return {loader_cpu}, available - {loader_cpu}


def build_settings(options: argparse.Namespace, work_dir: Path) -> Settings:
    loader_cpus, server_cpus = split_cpus(options.loader_cpu)
    scenarios = SCENARIOS if options.scenarios == "all" else SCENARIOS[:1]
    load = LoadSettings(
        loader=choose_loader(options.loader),
        concurrency=options.concurrency,
        max_requests=options.max_requests,
        work_dir=work_dir,
        cpus=loader_cpus,
    )
    if options.profile_gateway is not None and find_py_spy() is None:
        raise SystemExit(
            "Error: --profile-gateway needs py-spy, which is not installed. "
            "Install it with `.venv/bin/pip install py-spy`."
        )

    return Settings(
        duration=options.duration,
        warmup=options.warmup,
        rounds=options.rounds,
        scenarios=scenarios,
        gateway_log_level=options.gateway_log_level,
        server_cpus=server_cpus,
        load=load,
        profile_path=options.profile_gateway,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as work_dir:
        settings = build_settings(options, Path(work_dir))
        try:
            measurements = run_benchmark(settings)
        except RuntimeError as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1

    scenario_names = [scenario.name for scenario in settings.scenarios]
    print()
    print_report(measurements, scenario_names)
    if options.json is not None:
        write_json(options.json, settings.describe(), measurements, scenario_names)

    found_errors = print_warnings(
        measurements, settings.load.max_requests, settings.load.loader
    )
    return 1 if found_errors else 0


if __name__ == "__main__":
    sys.exit(main())
