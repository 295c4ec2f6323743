"""Latencies and gaps of a steady request stream within a time window.

The exchanges come from bench/steady_load.py: (due, sent, done, status) in
seconds of one monotonic clock.  Latency is counted from the time a request
was due, so a client that was itself late to send adds to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from timing import percentile


@dataclass(frozen=True, slots=True)
class Exchange:
    due: float
    sent: float
    done: float
    status: int

    @property
    def latency(self) -> float:
        return self.done - self.due

    @property
    def send_delay(self) -> float:
        """How late the client sent the request, in seconds."""
        return self.sent - self.due


@dataclass(frozen=True)
class WindowStats:
    """The requests of one window, with latencies and gaps in milliseconds."""

    requests: int
    failed: int
    median_ms: float
    p99_ms: float
    max_ms: float
    max_gap_ms: float
    max_send_delay_ms: float


def read_exchanges(rows: Iterable[Sequence[float]]) -> list[Exchange]:
    return [Exchange(row[0], row[1], row[2], int(row[3])) for row in rows]


def overlapping(
    exchanges: Iterable[Exchange], start: float, end: float
) -> list[Exchange]:
    """Return the exchanges that were due or still open during [start, end]."""
    return [item for item in exchanges if item.due <= end and item.done >= start]


def largest_gap(exchanges: Sequence[Exchange], start: float, end: float) -> float:
    """Return the longest time in [start, end] in which no response arrived.

    The edges of the window count as arrivals, so a window without any
    response has a gap as long as the window.
    """
    arrivals = sorted(item.done for item in exchanges if start <= item.done <= end)
    edges = [start, *arrivals, end]
    return max(later - earlier for earlier, later in zip(edges, edges[1:]))


def window_stats(
    exchanges: Sequence[Exchange], start: float, end: float, expected_status: int
) -> WindowStats:
    """Summarize the exchanges that overlap [start, end].

    Raises ValueError when none overlaps it.
    """
    chosen = overlapping(exchanges, start, end)
    if not chosen:
        raise ValueError(f"no request overlaps the window {start:.3f}-{end:.3f}")

    latencies = [item.latency * 1000 for item in chosen]
    return WindowStats(
        requests=len(chosen),
        failed=sum(1 for item in chosen if item.status != expected_status),
        median_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies),
        max_gap_ms=largest_gap(exchanges, start, end) * 1000,
        max_send_delay_ms=max(item.send_delay for item in chosen) * 1000,
    )
