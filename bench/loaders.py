"""The load generators: wrk with bench/wrk_mix.lua, or bench/load.py on aiohttp,
and bench/paced_load.py for a fixed rate.

wrk and load.py run as a subprocess of their own and send a request mix over N
keep-alive connections in a closed loop: each connection waits for its
response before it sends again.  They stop after a duration or a request
count, and print one JSON summary that `run_loader` returns as a LoadResult.
paced_load.py sends the mix open-loop at a fixed rate instead, to one or
more targets at once, and `run_paced_loader` returns a summary per target.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from servers import pin

BENCH_DIR = Path(__file__).resolve().parent
# Time allowed for one request.  Slower requests count as failed.
REQUEST_TIMEOUT_SECONDS = 10
# Time a loader may take beyond its duration to start, drain and report.
EXIT_GRACE_SECONDS = 60


@dataclass(frozen=True)
class LoadSettings:
    loader: str  # "wrk" or "aiohttp"
    concurrency: int
    max_requests: int
    work_dir: Path
    cpus: set[int] | None  # CPUs the loader is pinned to, or None


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    unexpected_status: int
    failed: int
    first_error: str | None
    # p99 of how late the open-loop loader sent its requests, None from the others.
    late_p99_ms: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def choose_loader(requested: str) -> str:
    """Resolve "auto" to wrk when it is on PATH, else to the aiohttp loader."""
    has_wrk = shutil.which("wrk") is not None
    if requested == "auto":
        return "wrk" if has_wrk else "aiohttp"
    if requested == "wrk" and not has_wrk:
        raise SystemExit(
            "Error: --loader wrk was given, but wrk is not on PATH. Install it "
            "(apt-get install wrk) or use --loader aiohttp."
        )

    return requested


def children_cpu_seconds() -> float:
    """Return the CPU time of all children that have exited and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lua_string(text: str) -> str:
    """Quote `text` as a Lua string literal, escaping every byte outside ASCII."""
    escaped = []
    for byte in text.encode():
        character = chr(byte)
        if 32 <= byte < 127 and character not in '"\\':
            escaped.append(character)
        else:
            escaped.append(f"\\{byte}")

    return '"' + "".join(escaped) + '"'


def write_wrk_requests(specs: list[dict], path: Path) -> None:
    entries = []
    for spec in specs:
        headers = ", ".join(
            f"[{lua_string(name)}] = {lua_string(value)}"
            for name, value in spec["headers"].items()
        )
        body = lua_string(spec["body"]) if spec["body"] is not None else "nil"
        entries.append(
            f"  {{method = {lua_string(spec['method'])}, "
            f"path = {lua_string(spec['path'])}, headers = {{{headers}}}, "
            f"body = {body}}},"
        )

    path.write_text("return {\n" + "\n".join(entries) + "\n}\n")


def wrk_command(
    url: str, specs_file: Path, settings: LoadSettings, duration: float
) -> list[str]:
    # One wrk thread, because it needs 14 to 20 us of CPU per request here, far
    # less than the servers, and a second one would only take CPU from them.
    return [
        "wrk",
        "-t1",
        f"-c{settings.concurrency}",
        # wrk takes whole seconds.  Rates use the duration that wrk reports.
        f"-d{max(1, round(duration))}s",
        "--timeout",
        f"{REQUEST_TIMEOUT_SECONDS}s",
        "-s",
        str(BENCH_DIR / "wrk_mix.lua"),
        url,
        "--",
        str(specs_file),
        str(settings.max_requests),
    ]


def aiohttp_command(
    url: str, specs_file: Path, settings: LoadSettings, duration: float
) -> list[str]:
    return [
        sys.executable,
        str(BENCH_DIR / "load.py"),
        "--url",
        url,
        "--requests",
        str(specs_file),
        "--duration",
        str(duration),
        "--concurrency",
        str(settings.concurrency),
        "--max-requests",
        str(settings.max_requests),
        "--timeout",
        str(REQUEST_TIMEOUT_SECONDS),
    ]


def paced_command(
    urls: list[str],
    specs_file: Path,
    settings: LoadSettings,
    rate: float,
    duration: float,
) -> list[str]:
    argv = [sys.executable, str(BENCH_DIR / "paced_load.py")]
    for url in urls:
        argv += ["--url", url]

    return argv + [
        "--requests",
        str(specs_file),
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--connections",
        str(settings.concurrency),
        "--timeout",
        str(REQUEST_TIMEOUT_SECONDS),
    ]


def write_json_requests(specs: list[dict], settings: LoadSettings) -> Path:
    specs_file = settings.work_dir / "requests.json"
    specs_file.write_text(json.dumps(specs))
    return specs_file


def loader_command(
    url: str, specs: list[dict], settings: LoadSettings, duration: float
) -> list[str]:
    """Write the request mix in the loader's format and return its command."""
    if settings.loader == "wrk":
        specs_file = settings.work_dir / "requests.lua"
        write_wrk_requests(specs, specs_file)
        return wrk_command(url, specs_file, settings, duration)

    specs_file = write_json_requests(specs, settings)
    return aiohttp_command(url, specs_file, settings, duration)


def run_loader(
    url: str, specs: list[dict], settings: LoadSettings, duration: float
) -> LoadResult:
    """Send the mix to `url` for `duration` seconds and return the summary."""
    argv = loader_command(url, specs, settings, duration)
    return run_load_command(argv, settings, duration)[0]


def run_paced_loader(
    urls: list[str],
    specs: list[dict],
    settings: LoadSettings,
    rate: float,
    duration: float,
) -> list[LoadResult]:
    """Send the mix to each URL at `rate` requests per second, open-loop.

    The requests to the URLs alternate, so all are measured over the same time.
    """
    specs_file = write_json_requests(specs, settings)
    argv = paced_command(urls, specs_file, settings, rate, duration)
    results = run_load_command(argv, settings, duration)
    if len(results) != len(urls):
        raise RuntimeError(
            f"paced_load.py printed {len(results)} summaries for {len(urls)} URLs"
        )

    return results


def run_load_command(
    argv: list[str], settings: LoadSettings, duration: float
) -> list[LoadResult]:
    """Run a loader's command on the loader's CPUs and return its summaries."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    pin(process, settings.cpus)
    try:
        output, errors = process.communicate(timeout=duration + EXIT_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(
            f"the load generator ran {EXIT_GRACE_SECONDS} s past its duration "
            f"and was killed: {' '.join(argv)}"
        ) from None

    if process.returncode != 0:
        raise RuntimeError(
            f"the load generator failed with status {process.returncode}: "
            f"{errors.strip()}"
        )

    return parse_loader_output(output)


def parse_loader_output(output: str) -> list[LoadResult]:
    """Return the JSON summaries in the loader's output, one a line."""
    # wrk prints its own report first, and the script's line starts with BENCH_JSON.
    results = []
    for line in output.splitlines():
        line = line.removeprefix("BENCH_JSON ")
        if line.startswith("{"):
            results.append(LoadResult(**json.loads(line)))

    if not results:
        raise RuntimeError(f"the load generator printed no JSON summary:\n{output}")

    return results
