"""Closed-loop HTTP load generator on aiohttp, for machines without wrk.

Each of N workers owns one keep-alive connection and sends the requests of the
mix in turn, one at a time, until the duration or the request count runs out.
It prints one JSON object with the count, the elapsed time, the latency
percentiles and the responses whose status was not the expected one.

Run: ``python bench/load.py --url http://127.0.0.1:8090 --requests mix.json``
where mix.json is a list of ``{"method", "path", "headers", "body",
"expected_status"}`` objects, as bench/run.py writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    expected_status: int


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    unexpected_status: int = 0
    failed: int = 0
    first_error: str | None = None


def read_requests(path: str) -> list[Request]:
    with open(path, encoding="utf-8") as file:
        entries = json.load(file)

    return [
        Request(
            entry["method"],
            entry["path"],
            entry["headers"],
            entry["body"].encode() if entry["body"] is not None else None,
            entry["expected_status"],
        )
        for entry in entries
    ]


async def send(
    session: aiohttp.ClientSession, base_url: str, request: Request, tally: Tally
) -> None:
    started = time.perf_counter()
    try:
        async with session.request(
            request.method,
            base_url + request.path,
            headers=request.headers,
            data=request.body,
        ) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        tally.failed += 1
        tally.first_error = tally.first_error or repr(error)
        return

    tally.latencies.append(time.perf_counter() - started)
    if status != request.expected_status:
        tally.unexpected_status += 1
        tally.first_error = tally.first_error or (
            f"{request.method} {request.path}: status {status}, "
            f"expected {request.expected_status}"
        )


async def worker(
    session: aiohttp.ClientSession,
    base_url: str,
    requests: list[Request],
    offset: int,
    budget: itertools.count,
    max_requests: int,
    deadline: float,
    tally: Tally,
) -> None:
    # Workers start at different places in the mix, so every kind is in flight
    # at once, as with many clients.
    for index in itertools.count(offset):
        if time.perf_counter() >= deadline or next(budget) >= max_requests:
            return
        await send(session, base_url, requests[index % len(requests)], tally)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(tally: Tally, seconds: float) -> dict:
    latencies = sorted(tally.latencies)
    summary = {
        "requests": len(latencies) + tally.failed,
        "seconds": seconds,
        "p50_ms": None,
        "p99_ms": None,
        "unexpected_status": tally.unexpected_status,
        "failed": tally.failed,
        "first_error": tally.first_error,
    }
    if latencies:
        summary["p50_ms"] = percentile(latencies, 0.50) * 1000
        summary["p99_ms"] = percentile(latencies, 0.99) * 1000

    return summary


async def run(options: argparse.Namespace) -> dict:
    requests = read_requests(options.requests)
    connector = aiohttp.TCPConnector(limit=options.concurrency)
    timeout = aiohttp.ClientTimeout(total=options.timeout)
    tally = Tally()
    budget = itertools.count()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + options.duration
        await asyncio.gather(
            *(
                worker(
                    session,
                    options.url.rstrip("/"),
                    requests,
                    offset,
                    budget,
                    options.max_requests,
                    deadline,
                    tally,
                )
                for offset in range(options.concurrency)
            )
        )
        elapsed = time.perf_counter() - started

    return summarize(tally, elapsed)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, loopback only")
    parser.add_argument(
        "--requests", required=True, help="JSON file with the request mix"
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds to send for"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="open connections (workers)"
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=1_000_000,
        help="stop after this many requests even if time is left",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds allowed per request"
    )
    return parser.parse_args(argv)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    options = parse_arguments(argv)
    if not is_loopback_url(options.url):
        sys.exit(f"Error: --url must name a loopback address, got {options.url!r}")

    json.dump(asyncio.run(run(options)), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
