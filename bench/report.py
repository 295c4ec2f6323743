"""Summaries of the measured runs: the tables, the ratios, the warnings, JSON."""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from loaders import LoadResult

# Row names of the targets.  Ratios are taken against PASS_THROUGH, and the
# scaling of the gateway against GATEWAY.
UPSTREAM_DIRECT = "upstream direct"
PASS_THROUGH = "pass-through"
NGINX = "nginx, 1 worker"
GATEWAY = "gateway, 1 worker"
GATEWAY_WORKERS_PREFIX = "gateway, "
# CPUs that other processes may keep busy before a run is flagged.  At 0.1 the
# two CPUs lose 5% to them.
OTHER_CORES_WARNING = 0.1
# Range of a target's req/s over its rounds, as a share of the median, above
# which the summary is flagged.  The host of a virtual machine can take CPU
# time from it without any process of the guest showing it, and such a change
# of speed shows as a wide range.
RATE_SPREAD_WARNING = 0.25
# Goals of the one-worker gateway: the share of the pass-through's req/s it
# keeps on the mix, and the latency it may add to the pass-through's p50 at a
# moderate rate.
RATE_RATIO_GOAL = 0.9
ADDED_P50_GOAL_MS = 0.5


def gateway_workers_name(workers: int) -> str:
    return f"{GATEWAY_WORKERS_PREFIX}{workers} workers"


@dataclass(frozen=True)
class Measurement:
    """One measured run: one target, one scenario, one round."""

    target: str
    scenario: str
    round: int
    # Number of the run that measured this target at the same time as others,
    # or None when it was measured alone.
    shared_run: int | None
    load: LoadResult
    target_cpu_seconds: float  # all processes of the target together
    # None when the target is the sample API itself.
    upstream_cpu_seconds: float | None
    loader_cpu_seconds: float
    other_cpu_seconds: float  # used by processes outside the benchmark
    # CPU seconds of each process of the target, parent first.
    process_cpu_seconds: tuple[float, ...] = ()


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
    median_late_p99_ms: float | None
    errors: int
    target_cpu_us: float  # CPU time per request, over all rounds
    upstream_cpu_us: float | None
    loader_cpu_us: float
    other_cores: float  # average CPUs kept busy by processes outside the benchmark
    # Median over the rounds of the rate over the pass-through's in the same round.
    rate_ratio: float | None
    # Median over the rounds of the p50 minus the pass-through's, in ms.
    added_p50_ms: float | None
    # Share of the target's CPU time used by each of its processes, parent first.
    process_cpu_shares: tuple[float, ...]


def median_or_none(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def target_names(measurements: list[Measurement]) -> list[str]:
    """Return the targets in the order in which they were first measured."""
    return list(dict.fromkeys(run.target for run in measurements))


def runs_of(
    measurements: list[Measurement], scenario: str, target: str
) -> list[Measurement]:
    return [
        run
        for run in measurements
        if run.scenario == scenario and run.target == target
    ]


def paired_rounds(
    measurements: list[Measurement], scenario: str, target: str, baseline: str
) -> list[tuple[Measurement, Measurement]]:
    """Return (target run, baseline run) of each round that measured both.

    Targets measured in a shared run are paired within that run only.
    """
    by_round: dict[tuple[int, int], dict[str, Measurement]] = {}
    for run in measurements:
        if run.scenario == scenario and run.target in (target, baseline):
            key = (run.round, -1 if run.shared_run is None else run.shared_run)
            by_round.setdefault(key, {})[run.target] = run

    return [
        (pair[target], pair[baseline])
        for _, pair in sorted(by_round.items())
        if target in pair and baseline in pair
    ]


def round_ratios(
    measurements: list[Measurement],
    scenario: str,
    target: str = GATEWAY,
    baseline: str = PASS_THROUGH,
) -> list[float]:
    """Return target/baseline req/s of each round, both measured in that round."""
    return [
        run.load.rate / base.load.rate
        for run, base in paired_rounds(measurements, scenario, target, baseline)
        if base.load.rate > 0
    ]


def round_added_p50(
    measurements: list[Measurement],
    scenario: str,
    target: str = GATEWAY,
    baseline: str = PASS_THROUGH,
) -> list[float]:
    """Return target p50 minus baseline p50 of each round, in ms."""
    return [
        run.load.p50_ms - base.load.p50_ms
        for run, base in paired_rounds(measurements, scenario, target, baseline)
        if run.load.p50_ms is not None and base.load.p50_ms is not None
    ]


def process_shares(runs: list[Measurement]) -> tuple[float, ...]:
    counts = {len(run.process_cpu_seconds) for run in runs}
    if len(counts) != 1:
        return ()  # the target's processes changed between rounds

    totals = [sum(column) for column in zip(*(run.process_cpu_seconds for run in runs))]
    overall = sum(totals)
    return tuple(total / overall for total in totals) if overall > 0 else ()


def summarize(
    target: str, scenario: str, measurements: list[Measurement]
) -> Summary:
    runs = runs_of(measurements, scenario, target)
    rates = [run.load.rate for run in runs]
    requests = max(sum(run.load.requests for run in runs), 1)
    elapsed = max(sum(run.load.seconds for run in runs), 1e-9)

    def cpu_us(seconds: float) -> float:
        return seconds / requests * 1e6

    upstream_seconds = [run.upstream_cpu_seconds for run in runs]
    upstream_cpu_us = None
    if None not in upstream_seconds:
        upstream_cpu_us = cpu_us(sum(upstream_seconds))

    ratios = round_ratios(measurements, scenario, target)
    added = round_added_p50(measurements, scenario, target)
    return Summary(
        target=target,
        scenario=scenario,
        median_rate=statistics.median(rates),
        min_rate=min(rates),
        max_rate=max(rates),
        median_p50_ms=median_or_none([run.load.p50_ms for run in runs]),
        median_p99_ms=median_or_none([run.load.p99_ms for run in runs]),
        median_late_p99_ms=median_or_none([run.load.late_p99_ms for run in runs]),
        errors=sum(run.load.unexpected_status + run.load.failed for run in runs),
        target_cpu_us=cpu_us(sum(run.target_cpu_seconds for run in runs)),
        upstream_cpu_us=upstream_cpu_us,
        loader_cpu_us=cpu_us(sum(run.loader_cpu_seconds for run in runs)),
        other_cores=sum(run.other_cpu_seconds for run in runs) / elapsed,
        rate_ratio=statistics.median(ratios) if ratios else None,
        added_p50_ms=statistics.median(added) if added else None,
        process_cpu_shares=process_shares(runs),
    )


def summaries(measurements: list[Measurement], scenarios: list[str]) -> list[Summary]:
    result = []
    for scenario in scenarios:
        for target in target_names(measurements):
            if runs_of(measurements, scenario, target):
                result.append(summarize(target, scenario, measurements))

    return result


def gateway_scaling_pairs(measurements: list[Measurement]) -> list[str]:
    """Return the multi-worker gateway targets, each compared with GATEWAY."""
    return [
        name
        for name in target_names(measurements)
        if name.startswith(GATEWAY_WORKERS_PREFIX) and name != GATEWAY
    ]


# Printing


def format_ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def format_us(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "-"


def format_share(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "-"


def format_rounds(values: list[float], template: str) -> str:
    return ", ".join(template.format(value) for value in values)


def print_throughput_table(rows: list[Summary]) -> None:
    print(
        f"{'scenario':<20} {'target':<19} {'req/s':>6} {'min-max':>12} "
        f"{'ratio':>5} {'p50 ms':>6} {'p99 ms':>6} {'errors':>6} {'target':>6} "
        f"{'API':>5} {'loader':>6} {'other':>5}"
    )
    for row in rows:
        spread = f"{row.min_rate:.0f}-{row.max_rate:.0f}"
        print(
            f"{row.scenario:<20} {row.target:<19} {row.median_rate:>6.0f} "
            f"{spread:>12} {format_share(row.rate_ratio):>5} "
            f"{format_ms(row.median_p50_ms):>6} "
            f"{format_ms(row.median_p99_ms):>6} {row.errors:>6} "
            f"{row.target_cpu_us:>6.0f} {format_us(row.upstream_cpu_us):>5} "
            f"{row.loader_cpu_us:>6.0f} {row.other_cores:>5.2f}"
        )


def print_ratios(measurements: list[Measurement], scenarios: list[str]) -> None:
    for scenario in scenarios:
        for target in target_names(measurements):
            ratios = round_ratios(measurements, scenario, target)
            if target == PASS_THROUGH or not ratios:
                continue

            print(
                f"{target}/pass-through req/s, {scenario}: "
                f"{statistics.median(ratios):.0%} "
                f"(rounds: {format_rounds(ratios, '{:.0%}')})"
            )


def print_scaling(measurements: list[Measurement], scenarios: list[str]) -> None:
    for name in gateway_scaling_pairs(measurements):
        for scenario in scenarios:
            ratios = round_ratios(measurements, scenario, name, GATEWAY)
            if ratios:
                print(
                    f"{name}/{GATEWAY} req/s, {scenario}: "
                    f"{statistics.median(ratios):.2f}x "
                    f"(rounds: {format_rounds(ratios, '{:.2f}x')})"
                )


def print_process_shares(rows: list[Summary]) -> None:
    for row in rows:
        if len(row.process_cpu_shares) > 1:
            shares = " / ".join(f"{share:.0%}" for share in row.process_cpu_shares)
            print(
                f"CPU of {row.target}, {row.scenario}, by process (parent "
                f"first): {shares}"
            )


def print_report(measurements: list[Measurement], scenarios: list[str]) -> None:
    """Print the closed-loop table, the ratios, and the gateway's scaling."""
    rows = summaries(measurements, scenarios)
    print("req/s, p50 and p99: medians of the rounds.")
    print(
        "ratio: median over the rounds of the req/s over the pass-through's "
        "in the same round."
    )
    print(
        "target, API, loader: CPU microseconds per request of the target (all "
        "its processes), the sample API and the load generator, over all rounds."
    )
    print("other: CPUs kept busy on average by processes outside the benchmark.")
    print_throughput_table(rows)
    print()
    print_ratios(measurements, scenarios)
    print_scaling(measurements, scenarios)
    print_process_shares(rows)
    print_rate_goal(measurements, scenarios[0])


def print_rate_goal(measurements: list[Measurement], scenario: str) -> None:
    ratios = round_ratios(measurements, scenario)
    if ratios:
        median = statistics.median(ratios)
        verdict = "met" if median >= RATE_RATIO_GOAL else "MISSED"
        print(
            f"\n{GATEWAY} keeps {median:.0%} of the pass-through's req/s, "
            f"{scenario}; goal at least {RATE_RATIO_GOAL:.0%}: {verdict}"
        )


def print_paced_report(measurements: list[Measurement], scenario: str) -> None:
    """Print the latency table of the fixed-rate runs and the gateway's added p50."""
    rows = summaries(measurements, [scenario])
    if not rows:
        return

    print(f"{scenario}: p50, p99 and late p99 are medians of the rounds.")
    print(
        "added p50: median over the rounds of the p50 minus the pass-through's "
        "in the same run.  late p99: how late the loader sent its requests."
    )
    print(
        f"{'target':<19} {'req/s':>6} {'p50 ms':>6} {'p99 ms':>6} "
        f"{'added p50':>9} {'late p99':>8} {'errors':>6} {'target':>6} "
        f"{'API':>5} {'other':>5}"
    )
    for row in rows:
        print(
            f"{row.target:<19} {row.median_rate:>6.0f} "
            f"{format_ms(row.median_p50_ms):>6} {format_ms(row.median_p99_ms):>6} "
            f"{format_ms(row.added_p50_ms):>9} "
            f"{format_ms(row.median_late_p99_ms):>8} {row.errors:>6} "
            f"{row.target_cpu_us:>6.0f} {format_us(row.upstream_cpu_us):>5} "
            f"{row.other_cores:>5.2f}"
        )

    added = round_added_p50(measurements, scenario)
    if added:
        median = statistics.median(added)
        verdict = "met" if median < ADDED_P50_GOAL_MS else "MISSED"
        print(
            f"\n{GATEWAY} adds {median:.3f} ms to the pass-through's p50, "
            f"{scenario} (rounds: {format_rounds(added, '{:.3f}')}); goal "
            f"under {ADDED_P50_GOAL_MS} ms: {verdict}"
        )


# Warnings and JSON


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


def print_spread_warnings(
    measurements: list[Measurement], scenarios: list[str]
) -> None:
    """Warn about targets whose req/s varied widely over the rounds."""
    for row in summaries(measurements, scenarios):
        spread = (row.max_rate - row.min_rate) / max(row.median_rate, 1e-9)
        if spread > RATE_SPREAD_WARNING:
            print(
                f"WARNING: {row.target}, {row.scenario}: req/s ranged over "
                f"{spread:.0%} of the median across the rounds, so the machine's "
                "speed probably changed during the run",
                file=sys.stderr,
            )


def write_json(
    path: Path, settings: str, measurements: list[Measurement], scenarios: list[str]
) -> None:
    """Write the settings, the summaries, the per-round ratios and every run."""
    targets = target_names(measurements)
    document = {
        "settings": settings,
        "summaries": [asdict(row) for row in summaries(measurements, scenarios)],
        "ratios_to_pass_through": {
            scenario: {
                target: round_ratios(measurements, scenario, target)
                for target in targets
                if target != PASS_THROUGH
            }
            for scenario in scenarios
        },
        "gateway_scaling": {
            name: {
                scenario: round_ratios(measurements, scenario, name, GATEWAY)
                for scenario in scenarios
            }
            for name in gateway_scaling_pairs(measurements)
        },
        "added_p50_ms": {
            scenario: {
                target: round_added_p50(measurements, scenario, target)
                for target in targets
                if target != PASS_THROUGH
            }
            for scenario in scenarios
        },
        "runs": [{**asdict(run), "rate": run.load.rate} for run in measurements],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
