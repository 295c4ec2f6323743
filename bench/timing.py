"""Per-call timing, percentiles and the machine description of a benchmark run."""

from __future__ import annotations

import gc
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Summary:
    """Percentiles of one timed operation, in microseconds per call."""

    count: int
    median_us: float
    p99_us: float
    max_us: float


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of `values`, `fraction` within [0, 1].

    Raises ValueError for an empty sequence.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction!r}")

    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(samples_ns: Sequence[int]) -> Summary:
    """Summarize per-call times given in nanoseconds."""
    return Summary(
        count=len(samples_ns),
        median_us=percentile(samples_ns, 0.5) / 1000,
        p99_us=percentile(samples_ns, 0.99) / 1000,
        max_us=max(samples_ns) / 1000,
    )


def time_each(call: Callable[..., object], arguments: Iterable[tuple]) -> list[int]:
    """Call `call(*args)` once per tuple and return each call's time in ns.

    Each sample includes one `perf_counter_ns` call and the argument
    unpacking, which `time_each(noop, ...)` measures on its own.
    """
    clock = time.perf_counter_ns
    samples = []
    for args in arguments:
        started = clock()
        call(*args)
        samples.append(clock() - started)

    return samples


class GCPauses:
    """Durations of the garbage collector's runs, recorded while in a `with` block.

    A collection holds the GIL, so every thread of the process, the event
    loop included, waits for its whole duration.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started: float | None = None

    def __enter__(self) -> GCPauses:
        gc.callbacks.append(self._observe)
        return self

    def __exit__(self, *exception: object) -> None:
        gc.callbacks.remove(self._observe)

    def _observe(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds.append(time.perf_counter() - self._started)
            self._started = None


def noop(*arguments: object) -> None:
    """Do nothing: the timing floor of `time_each`."""


def cpu_model() -> str:
    """Return the first `model name` of /proc/cpuinfo, or the platform's name."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass

    return platform.processor() or "unknown"


def describe_machine() -> str:
    """Return one line naming CPUs, CPU model, Python and the key packages."""
    packages = []
    for name in ("pycasbin", "aiohttp", "PyYAML"):
        try:
            packages.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            packages.append(f"{name} not installed")

    return (
        f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
        f"{cpu_model()}, Python {platform.python_version()}, "
        f"{', '.join(packages)}, Linux {platform.release()}"
    )


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Return a Markdown table; numbers are printed as given by the caller."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")

    return "\n".join(lines)
