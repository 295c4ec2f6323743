"""Measure the gateway's throughput and latency against other proxies.

Starts, as subprocesses on free loopback ports, the sample chat API and, in
front of it, the pass-through proxy of bench/passthrough.py, nginx with one
worker (when installed), and the gateway with one worker and with several,
with a config derived from config.yaml.  Then it sends the same request mix to
each target in turn, never to two at once.  For the mix and for each request
kind alone it prints requests per second, p50 and p99 latency, the CPU time
per request of each process, each target's rate over the pass-through's, and
the rate of the gateway's workers over one worker's.  Last, it sends the mix
open-loop at a fixed rate and prints the latency that each target adds to the
pass-through's.

Run from the repository: ``.venv/bin/python bench/run.py``
"""

from __future__ import annotations

import argparse
import contextlib
import functools
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
    choose_loader,
    run_loader,
    run_paced_loader,
)
from measure import SendLoad, measure
from nginx_proxy import find_nginx
from report import (
    GATEWAY,
    PASS_THROUGH,
    Measurement,
    print_paced_report,
    print_report,
    print_spread_warnings,
    print_warnings,
    write_json,
)
from servers import (
    Server,
    log_tail,
    reset_sample_api,
    resetting_periodically,
    send_once,
)
from targets import TARGET_KEYS, add_users, mint_tokens, start_targets

BENCH_DIR = Path(__file__).resolve().parent
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
SCENARIOS = (Scenario("mix", REQUEST_KINDS),) + tuple(
    Scenario(kind.name, (kind,)) for kind in REQUEST_KINDS
)


@dataclass(frozen=True)
class Settings:
    duration: float
    warmup: float
    rounds: int
    scenarios: tuple[Scenario, ...]
    targets: tuple[str, ...]  # values of --targets, in TARGET_KEYS order
    gateway_workers: int
    paced_rate: float  # requests per second of the open-loop runs, 0 for none
    paced_rounds: int
    gateway_log_level: str | None
    server_cpus: set[int] | None
    load: LoadSettings
    profile_path: Path | None

    def describe(self) -> str:
        pinning = "none, the kernel schedules every process on all CPUs"
        if self.server_cpus is not None:
            pinning = (
                f"load generator on CPUs {sorted(self.load.cpus)}, "
                f"servers on CPUs {sorted(self.server_cpus)}"
            )
        paced = "none"
        if self.paced_rate > 0:
            paced = (
                f"the mix at {self.paced_rate:g} req/s, open-loop, to the "
                "pass-through and one other target at once, "
                f"{self.paced_rounds} rounds"
            )
        return (
            f"targets: {', '.join(self.targets)} (nginx with worker_processes "
            f"1, gateway-workers with {self.gateway_workers} workers); loader "
            f"{self.load.loader}, {self.load.concurrency} connections, "
            f"{self.rounds} rounds of {self.duration:g} s per target and "
            f"scenario after {self.warmup:g} s warm-up each; fixed-rate runs: "
            f"{paced}; CPU pinning: {pinning}; gateway log level: "
            f"{self.gateway_log_level or 'as in config.yaml'}"
        )

    def planned_seconds(self) -> float:
        runs = len(self.scenarios) * self.rounds * len(self.targets) + 1
        if self.paced_rate > 0:
            runs += self.paced_rounds * max(1, len(self.targets) - 1)
        return runs * (self.duration + self.warmup)


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


def run_rounds(
    scenario: str,
    rounds: int,
    groups: list[list[Server]],
    upstream: Server,
    send_load: SendLoad,
    settings: Settings,
) -> list[Measurement]:
    """Measure each group of targets once per round.

    The targets of a group are measured at once, and the groups in turn.
    """
    measurements = []
    run_number = 0
    for round_number in range(1, rounds + 1):
        for group in groups:
            run_number += 1
            measured = measure(
                scenario,
                round_number,
                group,
                upstream,
                send_load,
                settings.warmup,
                settings.duration,
                # The report pairs the targets of a shared run with each other
                # only, and those of single runs with the others of the round.
                shared_run=run_number if len(group) > 1 else None,
            )
            measurements += measured
            print_progress(scenario, round_number, measured)

    return measurements


def print_progress(
    scenario: str, round_number: int, measured: list[Measurement]
) -> None:
    for measurement in measured:
        load = measurement.load
        latency = f", p50 {load.p50_ms:.2f} ms" if load.p50_ms is not None else ""
        print(
            f"  {scenario}, round {round_number}, {measurement.target}: "
            f"{load.rate:.0f} req/s{latency}",
            flush=True,
        )


def send_closed_loop(
    specs: list[dict], load: LoadSettings, urls: list[str], seconds: float
) -> list[LoadResult]:
    return [run_loader(url, specs, load, seconds) for url in urls]


def run_scenarios(
    targets: list[Server],
    upstream: Server,
    tokens: dict[str, str],
    settings: Settings,
) -> list[Measurement]:
    """Measure each target under each scenario with the closed-loop loader.

    Targets take turns under the same settings and never run at once, so none
    competes with another's load for the CPUs.  Each round measures all of
    them back to back, which keeps slow drifts of the machine's speed out of
    their ratios.
    """
    measurements = []
    groups = [[target] for target in targets]
    for scenario in settings.scenarios:
        send_load = functools.partial(
            send_closed_loop, request_specs(scenario.kinds, tokens), settings.load
        )
        measurements += run_rounds(
            scenario.name, settings.rounds, groups, upstream, send_load, settings
        )

    return measurements


def paced_scenario_name(rate: float) -> str:
    return f"mix at {rate:g} req/s"


def run_paced(
    targets: list[Server],
    upstream: Server,
    tokens: dict[str, str],
    settings: Settings,
) -> list[Measurement]:
    """Measure each target next to the pass-through, open-loop at the fixed rate.

    One loader sends the mix to the pass-through and one other target, each at
    the rate, with their requests alternating.  Both see the same seconds of
    the machine, so the difference of their latencies does not move with the
    machine's speed.
    """
    specs = request_specs(REQUEST_KINDS, tokens)

    def send_load(urls: list[str], seconds: float) -> list[LoadResult]:
        return run_paced_loader(
            urls, specs, settings.load, settings.paced_rate, seconds
        )

    passthrough = next(target for target in targets if target.name == PASS_THROUGH)
    others = [target for target in targets if target is not passthrough]
    groups = [[passthrough, other] for other in others] or [[passthrough]]
    scenario = paced_scenario_name(settings.paced_rate)
    return run_rounds(
        scenario, settings.paced_rounds, groups, upstream, send_load, settings
    )


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
    # Full file names let bench/profile_summary.py --own tell the gateway's
    # frames from those of the libraries.
    argv += ["--full-filenames", "--output", str(settings.profile_path)]

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
    """Start the servers, measure them, and return every measured run."""
    with contextlib.ExitStack() as stack:
        targets = start_targets(
            stack,
            settings.targets,
            settings.load.work_dir,
            settings.server_cpus,
            settings.gateway_log_level,
            settings.gateway_workers,
        )
        add_users(targets.config_path)
        lifetime = max(MIN_TOKEN_LIFETIME_SECONDS, 2 * settings.planned_seconds())
        tokens = mint_tokens(targets.config_path, round(lifetime))

        for target in targets.measured:
            check_statuses(target, request_specs(REQUEST_KINDS, tokens))

        print(settings.describe(), flush=True)
        measurements = run_scenarios(
            targets.measured, targets.upstream, tokens, settings
        )
        if settings.paced_rate > 0:
            measurements += run_paced(
                targets.measured, targets.upstream, tokens, settings
            )
        if settings.profile_path is not None:
            gateway = targets.named(GATEWAY)
            profile_gateway(gateway, targets.upstream, tokens, settings)

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
        "--targets",
        default="all",
        help="comma-separated servers to measure, from "
        f"{', '.join(TARGET_KEYS)}; pass-through is required as the baseline "
        "(default: all, without nginx when it is not installed)",
    )
    parser.add_argument(
        "--gateway-workers",
        type=int,
        default=2,
        help="worker processes of the gateway-workers target (default: 2)",
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=300.0,
        help="requests per second of the open-loop latency runs of the mix, "
        "0 to skip them (default: 300)",
    )
    parser.add_argument(
        "--paced-rounds",
        type=int,
        default=5,
        help="runs per target of the open-loop latency runs, alternating the "
        "targets (default: 5)",
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

    for name in ("duration", "concurrency", "rounds", "paced_rounds", "max_requests"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if options.warmup < 0:
        parser.error("--warmup must be 0 or more")
    if options.paced_rate < 0:
        parser.error("--paced-rate must be 0 or more")
    if options.gateway_workers < 2:
        parser.error("--gateway-workers must be at least 2")

    options.targets = parse_targets(parser, options.targets)
    profiles = options.profile_gateway is not None
    if profiles and options.targets is not None and "gateway" not in options.targets:
        parser.error("--profile-gateway needs the target gateway in --targets")

    return options


def parse_targets(
    parser: argparse.ArgumentParser, text: str
) -> tuple[str, ...] | None:
    """Return the keys of --targets in TARGET_KEYS order, or None for "all"."""
    if text == "all":
        return None

    keys = {key.strip() for key in text.split(",") if key.strip()}
    unknown = sorted(keys - set(TARGET_KEYS))
    if unknown:
        parser.error(
            f"--targets: unknown target {unknown[0]!r}; choose from "
            f"{', '.join(TARGET_KEYS)}"
        )
    if "pass-through" not in keys:
        parser.error("--targets must contain pass-through, the baseline of the ratios")

    return tuple(key for key in TARGET_KEYS if key in keys)


def choose_targets(requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """Resolve "all" to every target, without nginx when it is not installed."""
    has_nginx = find_nginx() is not None
    if requested is None:
        if has_nginx:
            return TARGET_KEYS

        print("nginx is not installed, so it is not measured", file=sys.stderr)
        return tuple(key for key in TARGET_KEYS if key != "nginx")

    if "nginx" in requested and not has_nginx:
        raise SystemExit(
            "Error: --targets names nginx, which is not installed. Install it "
            "(apt-get install nginx) or leave it out of --targets."
        )

    return requested


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
        targets=choose_targets(options.targets),
        gateway_workers=options.gateway_workers,
        paced_rate=options.paced_rate,
        paced_rounds=options.paced_rounds,
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
    if settings.paced_rate > 0:
        paced = paced_scenario_name(settings.paced_rate)
        print()
        print_paced_report(measurements, paced)
        scenario_names.append(paced)
    if options.json is not None:
        write_json(options.json, settings.describe(), measurements, scenario_names)

    found_errors = print_warnings(
        measurements, settings.load.max_requests, settings.load.loader
    )
    print_spread_warnings(measurements, scenario_names)
    return 1 if found_errors else 0


if __name__ == "__main__":
    sys.exit(main())
