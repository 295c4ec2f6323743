"""Time snapshot builds and reloads at size, the request pauses, and the memory.

With a generated roles.csv of 10,000 `p` rows, the routes it needs and
100,000 users in the store (bench/synthetic.py), this script

1. builds the snapshot in this process (`gateway.snapshot.load_snapshot`)
   a few times, and times it, its three parts and the garbage collector's
   runs within it;
2. starts the sample API and `gateway serve` as subprocesses on loopback
   ports, and bench/steady_load.py, which sends requests to the gateway at a
   steady rate;
3. reloads the gateway a few times: it changes a comment in roles.csv, so
   the policy revision changes, sends SIGHUP and polls `/readyz` on the
   admin listener until it shows the new revision;
4. prints a row for the time before the first reload and one for each
   reload.  A row has the latency of the requests that were due or open
   meanwhile, the longest time without a response, and the gateway's
   resident memory (VmRSS and its peak VmHWM, from /proc/PID/status).

The file watcher of the derived config is off, so SIGHUP is the only
trigger.  Run from the repository: ``.venv/bin/python bench/reload_memory.py``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pauses import WindowStats, read_exchanges, window_stats
from run import find_py_spy
from servers import (
    LOOPBACK,
    Server,
    cpu_seconds,
    free_port,
    log_tail,
    machine_busy_seconds,
    send_once,
    start_server,
    stop_server,
    wait_until_listening,
)
from synthetic import REPOSITORY, fill_store, user_roles, write_synthetic_config
from timing import GCPauses, describe_machine, format_table

from gateway.authz.policy import load_policy
from gateway.config import load_config
from gateway.routing.table import RouteTable
from gateway.snapshot import load_snapshot
from gateway.store import SQLiteUserStore
from gateway.tokens.issuer import TokenIssuer

BENCH_DIR = Path(__file__).resolve().parent
TARGET_RELOAD_SECONDS = 2.0
TARGET_PAUSE_MS = 50.0
TARGET_RSS_MB = 300.0
# Every role may list chats: operators get their own only, which the gateway
# enforces by forcing the filter, so each request is expected to get 200.
PROBE_PATH = "/api/1/chats/?page_size=5"
PROBE_STATUS = 200
READY_POLL_SECONDS = 0.01
# Longer than any run, so no probe token expires during one.
TOKEN_LIFETIME_SECONDS = 7200
RELOAD_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
# CPUs that other processes may keep busy before the figures are flagged.
OTHER_CPUS_WARNING = 0.1
# py-spy samples per second.  Each sample pauses the gateway briefly.
PROFILE_RATE_HZ = 200


@dataclass(frozen=True)
class Reload:
    number: int
    signalled: float  # time.monotonic() when SIGHUP was sent
    served: float  # when /readyz first showed the new revision
    revision: str
    rss_peak_mb: float  # highest VmRSS seen while polling
    rss_after_mb: float  # VmRSS after the settle time

    @property
    def seconds(self) -> float:
        return self.served - self.signalled


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    peak_mb: float


def read_memory(pid: int) -> Memory:
    """Return VmRSS and VmHWM of `pid` in MB (10**6 bytes), from /proc/PID/status."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as file:
        for line in file:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                # proc(5) gives both in kB, which are units of 1,024 bytes.
                values[key] = int(value.split()[0]) * 1024 / 1e6

    return Memory(values["VmRSS"], values["VmHWM"])


# In-process builds


def time_builds(config_file: Path, count: int) -> list[tuple[str, list[float]]]:
    """Build the snapshot `count` times and return the seconds of each part.

    One snapshot stays loaded meanwhile, as in a running gateway, and the
    garbage collector's runs during `load_snapshot` are recorded too.
    """
    parts: dict[str, list[float]] = {
        "load_config (YAML, schema, routes)": [],
        "load_policy (read, Casbin, index)": [],
        "RouteTable": [],
        "load_snapshot (all of it)": [],
        "garbage collection within load_snapshot": [],
        "longest single collection": [],
    }
    serving = load_snapshot(config_file)
    for _ in range(count):
        started = time.perf_counter()
        config = load_config(config_file)
        loaded = time.perf_counter()
        load_policy(config.model_path, config.roles_path, roles=config.roles,
                    actions=config.actions)
        compiled = time.perf_counter()
        RouteTable(config.routes)
        routed = time.perf_counter()
        with GCPauses() as pauses:
            serving = load_snapshot(config_file)
        finished = time.perf_counter()

        parts["load_config (YAML, schema, routes)"].append(loaded - started)
        parts["load_policy (read, Casbin, index)"].append(compiled - loaded)
        parts["RouteTable"].append(routed - compiled)
        parts["load_snapshot (all of it)"].append(finished - routed)
        parts["garbage collection within load_snapshot"].append(sum(pauses.seconds))
        parts["longest single collection"].append(max(pauses.seconds, default=0.0))

    del serving
    return list(parts.items())


@dataclass(frozen=True)
class OtherLoad:
    """CPU seconds of the machine and of the benchmark's own processes, at one time."""

    wall: float
    machine: float
    ours: float

    @classmethod
    def read(cls, pids: tuple[int, ...]) -> OtherLoad:
        ours = time.process_time() + sum(cpu_seconds(pid) for pid in pids)
        return cls(time.monotonic(), machine_busy_seconds(), ours)

    def cpus_since(self, earlier: OtherLoad) -> float:
        """Return how many CPUs other processes kept busy on average since `earlier`."""
        others = (self.machine - earlier.machine) - (self.ours - earlier.ours)
        return max(0.0, others) / (self.wall - earlier.wall)


# Servers and load


def read_ready(port: int) -> dict:
    """Return the JSON body of the admin listener's `/readyz`, or raise."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    if response.status != 200:
        raise RuntimeError(f"/readyz returned {response.status}: {body[:200]!r}")
    return json.loads(body)


def probe_requests(config_file: Path, users: list[tuple[str, str]], count: int,
                   seed: int) -> list[dict]:
    """Return `count` probe requests, each with the bearer token of a random user."""
    issuer = TokenIssuer(load_config(config_file).jwt)
    chooser = random.Random(seed)
    chosen = chooser.sample(users, min(count, len(users)))
    requests = []
    for user_id, _ in chosen:
        token = issuer.issue(user_id, lifetime=TOKEN_LIFETIME_SECONDS)
        requests.append({"method": "GET", "path": PROBE_PATH,
                         "headers": {"Authorization": f"Bearer {token}"}})

    return requests


def check_probe_requests(gateway: Server, requests: list[dict]) -> None:
    """Raise unless every probe request gets PROBE_STATUS, so no rejection is timed."""
    for request in requests:
        spec = {**request, "body": None}
        status = send_once(gateway.port, spec)
        if status != PROBE_STATUS:
            raise RuntimeError(
                f"GET {PROBE_PATH} returned {status}, expected {PROBE_STATUS}:\n"
                f"{log_tail(gateway)}"
            )


def start_probe(url: str, requests_file: Path, output: Path, rate: float,
                max_seconds: float) -> subprocess.Popen:
    argv = [sys.executable, str(BENCH_DIR / "steady_load.py"), "--url", url,
            "--requests", str(requests_file), "--rate", str(rate),
            "--max-seconds", str(max_seconds), "--output", str(output)]
    probe = subprocess.Popen(argv, cwd=REPOSITORY, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, text=True)
    line = probe.stdout.readline()
    if line.strip() != "sending":
        probe.kill()
        probe.wait()
        raise RuntimeError(f"steady_load.py did not start: {line!r}")

    return probe


def stop_probe(probe: subprocess.Popen) -> None:
    """Send SIGTERM to the probe and wait until it has written its output."""
    probe.send_signal(signal.SIGTERM)
    try:
        probe.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        probe.kill()
        probe.wait()
        raise RuntimeError("steady_load.py did not stop within "
                           f"{STOP_TIMEOUT_SECONDS:g} s of SIGTERM") from None

    if probe.returncode != 0:
        raise RuntimeError(f"steady_load.py exited with status {probe.returncode}")


# Reloads


def change_policy_comment(roles_file: Path, number: int) -> None:
    """Rewrite the last line of roles.csv, a comment, so the revision changes."""
    lines = roles_file.read_text(encoding="utf-8").splitlines()
    if lines and lines[-1].startswith("# bench reload "):
        lines.pop()
    lines.append(f"# bench reload {number}")
    roles_file.write_text("\n".join(lines) + "\n", encoding="utf-8")


def reload_once(gateway: Server, admin_port: int, roles_file: Path, number: int,
                settle_seconds: float) -> Reload:
    """Change roles.csv, send SIGHUP and wait until /readyz shows the new revision."""
    before = read_ready(admin_port)
    change_policy_comment(roles_file, number)
    rss_peak = read_memory(gateway.process.pid).rss_mb
    signalled = time.monotonic()
    os.kill(gateway.process.pid, signal.SIGHUP)

    deadline = signalled + RELOAD_TIMEOUT_SECONDS
    while True:
        rss_peak = max(rss_peak, read_memory(gateway.process.pid).rss_mb)
        ready = read_ready(admin_port)
        if ready["policy_revision"] != before["policy_revision"]:
            served = time.monotonic()
            break
        if ready["reload_failures"] != before["reload_failures"]:
            raise RuntimeError(f"reload {number} failed: {ready['last_reload_error']}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"reload {number} did not finish within "
                               f"{RELOAD_TIMEOUT_SECONDS:g} s:\n{log_tail(gateway)}")
        time.sleep(READY_POLL_SECONDS)

    time.sleep(settle_seconds)
    memory = read_memory(gateway.process.pid)
    return Reload(number, signalled, served, ready["policy_revision"],
                  max(rss_peak, memory.rss_mb), memory.rss_mb)


@contextlib.contextmanager
def profiling(gateway: Server, output: Path | None):
    """Record the gateway with py-spy while the block runs, if `output` is set.

    Only the thread holding the GIL is sampled (`--gil`), so the samples
    show what kept the event loop from running, thread by thread.
    """
    if output is None:
        yield
        return

    argv = [find_py_spy(), "record", "--pid", str(gateway.process.pid),
            "--rate", str(PROFILE_RATE_HZ), "--format", "raw", "--threads", "--gil",
            "--output", str(output)]
    profiler = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # time for py-spy to attach before the first reload
    try:
        yield
    finally:
        profiler.send_signal(signal.SIGINT)
        _, errors = profiler.communicate(timeout=STOP_TIMEOUT_SECONDS)

    if not output.exists():
        raise RuntimeError(f"py-spy wrote no profile (status {profiler.returncode}): "
                           f"{errors.strip()}")
    print(f"gateway profile of the reloads (folded stacks): {output}")


# Running


@dataclass
class Setup:
    config_file: Path
    roles_file: Path
    users: list[tuple[str, str]]
    sample_port: int
    gateway_port: int
    admin_port: int


def prepare(folder: Path, options: argparse.Namespace) -> Setup:
    sample_port, gateway_port, admin_port = free_port(), free_port(), free_port()
    synthetic = write_synthetic_config(
        folder,
        options.policy_rows,
        {
            ("upstream", "url"): f"http://{LOOPBACK}:{sample_port}",
            ("admin", "host"): LOOPBACK,
            ("admin", "port"): admin_port,
            ("reload", "watch"): False,
        },
    )
    config = load_config(synthetic.config_file)
    store = SQLiteUserStore(config.store_path, owner_role=config.roles[0])
    started = time.perf_counter()
    users, added = asyncio.run(
        fill_store(store, user_roles(options.users), folder / "users.json")
    )
    asyncio.run(store.close())
    if added:
        print(f"added {len(users):,} users in {time.perf_counter() - started:.1f} s",
              flush=True)

    return Setup(synthetic.config_file, synthetic.roles_file, users, sample_port,
                 gateway_port, admin_port)


def start_servers(stack: contextlib.ExitStack, setup: Setup,
                  folder: Path) -> tuple[Server, Server, float]:
    """Start the sample API and the gateway, and time how long the gateway takes."""
    sample_argv = [sys.executable, "-m", "sample_api", "--port", str(setup.sample_port)]
    sample = start_server("sample API", sample_argv, setup.sample_port, folder,
                          REPOSITORY)
    stack.callback(stop_server, sample)

    gateway_argv = [sys.executable, "-m", "gateway.cli", "serve",
                    "-c", str(setup.config_file),
                    "--host", LOOPBACK, "--port", str(setup.gateway_port)]
    started = time.monotonic()
    gateway = start_server("gateway", gateway_argv, setup.gateway_port, folder,
                           REPOSITORY)
    stack.callback(stop_server, gateway)
    start_seconds = time.monotonic() - started
    wait_until_listening(Server("gateway admin", gateway.process, setup.admin_port,
                                gateway.log_path))
    return sample, gateway, start_seconds


def measure(options: argparse.Namespace, folder: Path) -> dict:
    setup = prepare(folder, options)
    print(f"building the snapshot {options.builds} times in this process", flush=True)
    builds = time_builds(setup.config_file, options.builds)

    with contextlib.ExitStack() as stack:
        sample, gateway, start_seconds = start_servers(stack, setup, folder)
        requests = probe_requests(setup.config_file, setup.users,
                                  options.probe_users, options.seed)
        check_probe_requests(gateway, requests)
        requests_file = folder / "probe-requests.json"
        requests_file.write_text(json.dumps(requests), encoding="utf-8")
        started_memory = read_memory(gateway.process.pid)

        output = folder / "exchanges.json"
        max_seconds = (options.baseline + options.reloads
                       * (RELOAD_TIMEOUT_SECONDS + options.settle) + 60)
        probe = start_probe(gateway.url, requests_file, output, options.rate,
                            max_seconds)
        ours = (gateway.process.pid, sample.process.pid, probe.pid)
        try:
            time.sleep(1.0)  # the probe's first second warms up
            load_before = OtherLoad.read(ours)
            baseline_start = time.monotonic()
            time.sleep(options.baseline)
            baseline_end = time.monotonic()
            baseline_memory = read_memory(gateway.process.pid)
            with profiling(gateway, options.profile_gateway):
                reloads = []
                for number in range(1, options.reloads + 1):
                    reloads.append(reload_once(gateway, setup.admin_port,
                                               setup.roles_file, number,
                                               options.settle))
                    print(f"  reload {number}: {reloads[-1].seconds:.2f} s",
                          flush=True)
            other_cpus = OtherLoad.read(ours).cpus_since(load_before)
        finally:
            stop_probe(probe)

        final_memory = read_memory(gateway.process.pid)
        ready = read_ready(setup.admin_port)

    result = json.loads(output.read_text(encoding="utf-8"))
    return {
        "builds": builds,
        "start_seconds": start_seconds,
        "started_memory": started_memory,
        "baseline_memory": baseline_memory,
        "final_memory": final_memory,
        "baseline": (baseline_start, baseline_end),
        "reloads": reloads,
        "ready": ready,
        "exchanges": read_exchanges(result["exchanges"]),
        "errors": result["errors"],
        "other_cpus": other_cpus,
    }


def print_report(results: dict, options: argparse.Namespace) -> None:
    print()
    print("Snapshot builds in this process (seconds):")
    print(format_table(
        ("part", "median", "min", "max"),
        ((name, f"{statistics.median(values):.3f}", f"{min(values):.3f}",
          f"{max(values):.3f}") for name, values in results["builds"]),
    ))
    print(f"gateway start to listening: {results['start_seconds']:.2f} s")

    exchanges = results["exchanges"]
    windows: list[tuple[str, float, WindowStats, str, str]] = []
    start, end = results["baseline"]
    windows.append(("no reload", end - start,
                    window_stats(exchanges, start, end, PROBE_STATUS), "-",
                    f"{results['baseline_memory'].rss_mb:.0f}"))
    for item in results["reloads"]:
        stats = window_stats(exchanges, item.signalled, item.served, PROBE_STATUS)
        windows.append((f"reload {item.number}", item.seconds, stats,
                        f"{item.rss_peak_mb:.0f}", f"{item.rss_after_mb:.0f}"))

    print()
    print(f"Requests at {options.rate:g}/s during each window (latency from the "
          "time each request was due, in ms):")
    print(format_table(
        ("window", "seconds", "requests", "failed", "median", "p99", "max",
         "longest gap", "client late max", "RSS peak MB", "RSS after MB"),
        ((name, f"{seconds:.2f}", stats.requests, stats.failed,
          f"{stats.median_ms:.1f}", f"{stats.p99_ms:.1f}", f"{stats.max_ms:.1f}",
          f"{stats.max_gap_ms:.1f}", f"{stats.max_send_delay_ms:.1f}", peak, after)
         for name, seconds, stats, peak, after in windows),
    ))

    started, final = results["started_memory"], results["final_memory"]
    failed = sum(1 for item in exchanges if item.status != PROBE_STATUS)
    print()
    print(f"gateway memory: VmRSS {started.rss_mb:.0f} MB after start, "
          f"{final.rss_mb:.0f} MB after {len(results['reloads'])} reloads; "
          f"peak VmHWM {final.peak_mb:.0f} MB")
    print(f"probe: {len(exchanges):,} requests, {failed} not {PROBE_STATUS}, "
          f"errors: {results['errors'] or 'none'}; /readyz after the run: "
          f"{results['ready']['reloads']} reloads, "
          f"{results['ready']['reload_failures']} failed")

    reloads = results["reloads"]
    slowest = max(item.seconds for item in reloads)
    pause = max(stats.max_ms for name, _, stats, _, _ in windows if name != "no reload")
    checks = [
        (f"slowest reload {slowest:.2f} s < {TARGET_RELOAD_SECONDS:g} s",
         slowest < TARGET_RELOAD_SECONDS),
        (f"largest request latency during reloads {pause:.1f} ms < "
         f"{TARGET_PAUSE_MS:g} ms", pause < TARGET_PAUSE_MS),
        (f"peak RSS {final.peak_mb:.0f} MB < {TARGET_RSS_MB:g} MB",
         final.peak_mb < TARGET_RSS_MB),
    ]
    for text, met in checks:
        print(f"{'met' if met else 'MISSED'}: {text}")

    other_cpus = results["other_cpus"]
    print(f"other processes kept {other_cpus:.2f} CPUs busy during the probe run")
    if other_cpus > OTHER_CPUS_WARNING:
        print("warning: the machine was not quiet, so the latencies and reload "
              "times are too high; run again on a quiet machine")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy-rows", type=int, default=10_000,
                        help="p rows of the generated roles.csv")
    parser.add_argument("--users", type=int, default=100_000,
                        help="users in the store")
    parser.add_argument("--builds", type=int, default=5,
                        help="snapshot builds timed in this process")
    parser.add_argument("--reloads", type=int, default=5,
                        help="reloads of the running gateway")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="probe requests per second")
    parser.add_argument("--probe-users", type=int, default=1_000,
                        help="users whose tokens the probe sends, in turn")
    parser.add_argument("--baseline", type=float, default=5.0,
                        help="seconds of probe load measured before the first reload")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds after each reload before the next one")
    parser.add_argument("--seed", type=int, default=11, help="seed of the probe users")
    parser.add_argument("--work-dir", type=Path,
                        help="keep the generated files here and reuse its user "
                        "store on the next run (default: a temporary folder)")
    parser.add_argument("--profile-gateway", type=Path, metavar="FILE",
                        help="record the gateway with py-spy during the reloads and "
                        "write its folded stacks to FILE (summarize them with "
                        "bench/profile_summary.py); the reloads are then slower")
    options = parser.parse_args(argv)

    if options.profile_gateway is not None and find_py_spy() is None:
        parser.error("--profile-gateway needs py-spy: .venv/bin/pip install py-spy")
    for name in ("policy_rows", "users", "builds", "reloads", "rate", "probe_users",
                 "baseline"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if options.settle < 0:
        parser.error("--settle must be 0 or more")

    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    print(describe_machine(), flush=True)
    with contextlib.ExitStack() as stack:
        if options.work_dir is not None:
            folder = options.work_dir.resolve()
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="gateway-reload-")))
        try:
            results = measure(options, folder)
        except RuntimeError as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1

    print_report(results, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
