"""Summaries of the measured runs: the table, the ratios, the warnings, JSON."""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from loaders import LoadResult

GATEWAY = "gateway"
PASS_THROUGH = "pass-through"
# CPUs that other processes may keep busy before a run is flagged.  At 0.1 the
# two CPUs lose 5% to them.
OTHER_CORES_WARNING = 0.1


@dataclass(frozen=True)
class Measurement:
    """One measured run: one target, one scenario, one round."""

    target: str
    scenario: str
    round: int
    load: LoadResult
    target_cpu_seconds: float
    upstream_cpu_seconds: float
    loader_cpu_seconds: float
    other_cpu_seconds: float  # used by processes outside the benchmark


@dataclass(frozen=True)
class Summary:
    """The rounds of one target and scenario taken together."""

    target: str
    scenario: str
    median_rate: float
    min_rate: float
    max_rate: float
    median_p50_ms: float | None
    median_p99_ms: float | None
    errors: int
    target_cpu_us: float  # CPU time per request, over all rounds
    upstream_cpu_us: float
    loader_cpu_us: float
    other_cores: float  # average CPUs kept busy by processes outside the benchmark


def median_or_none(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(target: str, scenario: str, runs: list[Measurement]) -> Summary:
    rates = [run.load.rate for run in runs]
    requests = max(sum(run.load.requests for run in runs), 1)
    elapsed = max(sum(run.load.seconds for run in runs), 1e-9)

    def cpu_us(seconds: float) -> float:
        return seconds / requests * 1e6

    return Summary(
        target=target,
        scenario=scenario,
        median_rate=statistics.median(rates),
        min_rate=min(rates),
        max_rate=max(rates),
        median_p50_ms=median_or_none([run.load.p50_ms for run in runs]),
        median_p99_ms=median_or_none([run.load.p99_ms for run in runs]),
        errors=sum(run.load.unexpected_status + run.load.failed for run in runs),
        target_cpu_us=cpu_us(sum(run.target_cpu_seconds for run in runs)),
        upstream_cpu_us=cpu_us(sum(run.upstream_cpu_seconds for run in runs)),
        loader_cpu_us=cpu_us(sum(run.loader_cpu_seconds for run in runs)),
        other_cores=sum(run.other_cpu_seconds for run in runs) / elapsed,
    )


def summaries(measurements: list[Measurement], scenarios: list[str]) -> list[Summary]:
    result = []
    for scenario in scenarios:
        for target in (PASS_THROUGH, GATEWAY):
            runs = [
                run
                for run in measurements
                if run.scenario == scenario and run.target == target
            ]
            if runs:
                result.append(summarize(target, scenario, runs))

    return result


def round_ratios(measurements: list[Measurement], scenario: str) -> list[float]:
    """Return gateway/pass-through req/s of each round, both measured back to back."""
    rates: dict[int, dict[str, float]] = {}
    for run in measurements:
        if run.scenario == scenario:
            rates.setdefault(run.round, {})[run.target] = run.load.rate

    return [
        pair[GATEWAY] / pair[PASS_THROUGH]
        for pair in rates.values()
        if pair.get(PASS_THROUGH) and GATEWAY in pair
    ]


def format_ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def print_table(rows: list[Summary]) -> None:
    print(
        f"{'scenario':<20} {'target':<12} {'req/s':>6} {'min-max':>12} "
        f"{'p50 ms':>6} {'p99 ms':>6} {'errors':>6} {'target':>6} "
        f"{'API':>5} {'loader':>6} {'other':>5}"
    )
    for row in rows:
        spread = f"{row.min_rate:.0f}-{row.max_rate:.0f}"
        print(
            f"{row.scenario:<20} {row.target:<12} {row.median_rate:>6.0f} "
            f"{spread:>12} {format_ms(row.median_p50_ms):>6} "
            f"{format_ms(row.median_p99_ms):>6} {row.errors:>6} "
            f"{row.target_cpu_us:>6.0f} {row.upstream_cpu_us:>5.0f} "
            f"{row.loader_cpu_us:>6.0f} {row.other_cores:>5.2f}"
        )


def print_ratios(measurements: list[Measurement], scenarios: list[str]) -> None:
    for scenario in scenarios:
        ratios = round_ratios(measurements, scenario)
        if not ratios:
            continue

        spread = ", ".join(f"{ratio:.0%}" for ratio in ratios)
        print(
            f"gateway/pass-through req/s, {scenario}: "
            f"{statistics.median(ratios):.0%} (median of rounds: {spread})"
        )


def print_report(measurements: list[Measurement], scenarios: list[str]) -> None:
    print("req/s, p50 and p99: medians of the rounds.")
    print(
        "target, API, loader: CPU microseconds per request of the target, the "
        "sample API and the load generator, over all rounds."
    )
    print("other: CPUs kept busy on average by processes outside the benchmark.")
    print_table(summaries(measurements, scenarios))
    print()
    print_ratios(measurements, scenarios)


def warn(run: Measurement, text: str) -> None:
    print(
        f"WARNING: {run.target}, {run.scenario}, round {run.round}: {text}",
        file=sys.stderr,
    )


def print_warnings(
    measurements: list[Measurement], max_requests: int, loader: str
) -> bool:
    """Warn about runs whose figures are suspect, and return whether any had errors."""
    found_errors = False
    for run in measurements:
        load = run.load
        if load.unexpected_status or load.failed:
            found_errors = True
            warn(
                run,
                f"{load.unexpected_status} unexpected statuses and {load.failed} "
                f"failed requests, the first: {load.first_error}",
            )

        if load.requests >= max_requests:
            # wrk still waits out --duration after its threads stop, and divides
            # by the whole of it.
            consequence = ", so its req/s is too low" if loader == "wrk" else ""
            warn(run, f"stopped at --max-requests {max_requests}{consequence}")

        other_cores = run.other_cpu_seconds / max(load.seconds, 1e-9)
        if other_cores > OTHER_CORES_WARNING:
            warn(
                run,
                f"processes outside the benchmark kept {other_cores:.2f} CPUs "
                "busy, so its figures understate the servers",
            )

    return found_errors


def write_json(
    path: Path, settings: str, measurements: list[Measurement], scenarios: list[str]
) -> None:
    document = {
        "settings": settings,
        "summaries": [asdict(row) for row in summaries(measurements, scenarios)],
        "ratios": {
            scenario: round_ratios(measurements, scenario) for scenario in scenarios
        },
        "runs": [
            {**asdict(run), "rate": run.load.rate} for run in measurements
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
