"""One measured run of bench/run.py: the load, and the CPU time of each process.

A run warms the targets up, sends the measured load, and reads the CPU time
of each process before and after it: each target with its child processes,
the sample API, the load generator, and the whole machine.  A run measures
one target, or several at once when the open-loop loader alternates its
requests between them.  Then the sample API's and the loader's CPU time is
shared out by the requests of each target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loaders import LoadResult, children_cpu_seconds
from report import Measurement
from servers import (
    Server,
    cpu_seconds,
    machine_busy_seconds,
    reset_sample_api,
    resetting_periodically,
    tree_cpu_seconds,
)

# send_load(urls, seconds) runs one load generator against the URLs and
# returns a result per URL, in their order.
SendLoad = Callable[[list[str], float], list[LoadResult]]


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds used so far by each process of a run and by the whole machine."""

    targets: list[dict[int, float]]  # per target, by process id, parent first
    upstream: float
    loader: float
    machine: float


def read_cpu_times(targets: list[Server], upstream: Server) -> CpuTimes:
    return CpuTimes(
        targets=[tree_cpu_seconds(target.process.pid) for target in targets],
        upstream=cpu_seconds(upstream.process.pid),
        loader=children_cpu_seconds(),
        machine=machine_busy_seconds(),
    )


def process_seconds(
    before: dict[int, float], after: dict[int, float]
) -> tuple[float, ...]:
    # A process of the target that started during the run is counted from 0,
    # and one that ended is left out.
    return tuple(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def measure(
    scenario: str,
    round_number: int,
    targets: list[Server],
    upstream: Server,
    send_load: SendLoad,
    warmup: float,
    duration: float,
    shared_run: int | None = None,
) -> list[Measurement]:
    """Warm up, run the measured load, and return each target's run with its CPU."""
    urls = [target.url for target in targets]
    reset_sample_api(upstream)
    with resetting_periodically(upstream):
        if warmup > 0:
            send_load(urls, warmup)

        before = read_cpu_times(targets, upstream)
        loads = send_load(urls, duration)
        after = read_cpu_times(targets, upstream)

    upstream_seconds = after.upstream - before.upstream
    loader_seconds = after.loader - before.loader
    processes = [
        process_seconds(first, last)
        for first, last in zip(before.targets, after.targets)
    ]
    # The sample API as a target is counted once, as the upstream.
    target_seconds = sum(
        sum(seconds)
        for target, seconds in zip(targets, processes)
        if not is_upstream(target, upstream)
    )
    # Whatever else ran on the machine, such as a test suite, took CPU from
    # the benchmark's processes.
    others = max(
        0.0,
        (after.machine - before.machine)
        - target_seconds
        - upstream_seconds
        - loader_seconds,
    )

    requests = max(sum(load.requests for load in loads), 1)
    measurements = []
    for target, load, seconds in zip(targets, loads, processes):
        share = load.requests / requests
        own_seconds: float = sum(seconds)
        upstream_share: float | None = upstream_seconds * share
        if is_upstream(target, upstream):
            own_seconds, upstream_share = upstream_share, None
            seconds = (own_seconds,)

        measurements.append(
            Measurement(
                target=target.name,
                scenario=scenario,
                round=round_number,
                shared_run=shared_run,
                load=load,
                target_cpu_seconds=own_seconds,
                upstream_cpu_seconds=upstream_share,
                loader_cpu_seconds=loader_seconds * share,
                other_cpu_seconds=others,
                process_cpu_seconds=seconds,
            )
        )

    return measurements


def is_upstream(target: Server, upstream: Server) -> bool:
    return target.process.pid == upstream.process.pid
