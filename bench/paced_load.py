"""Open-loop HTTP load at a fixed rate, on aiohttp, for latency at moderate load.

Request N of the mix is due at start + N / rate and is sent then, whether or
not the earlier ones have returned, as wrk2 paces its requests.  A slow
response therefore does not hold back the requests after it.

With several --url options, each URL gets the mix at --rate, and their
requests alternate: A, B, A, B, and so on, at even intervals.  All targets are
then measured over the same seconds, so a change in the machine's speed
reaches all of them alike, and the difference of their latencies stays.

Latency is counted from the time a request is handed to the client session to
the end of its response.  The event loop's timers have a resolution of about
1 ms, so a request may leave up to about 1 ms after it was due.  That delay is
reported on its own (`late_p99_ms`) and kept out of the latency, because it
would hide differences smaller than it.

It prints one JSON object per URL, one a line, in the order of the --url
options, each with the fields of bench/load.py's summary and `late_p99_ms`.

Run: ``python bench/paced_load.py --url http://127.0.0.1:8090 --requests
mix.json --rate 300 --duration 5``, where mix.json is the file of
bench/load.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp
from load import (
    Request,
    Tally,
    is_loopback_url,
    percentile,
    read_requests,
    send,
    summarize,
)


async def send_when_due(
    session: aiohttp.ClientSession,
    base_url: str,
    request: Request,
    due: float,
    tally: Tally,
    late: list[float],
) -> None:
    late.append(time.perf_counter() - due)
    await send(session, base_url, request, tally)


async def run(options: argparse.Namespace) -> list[dict]:
    """Send the mix to every URL at the rate and return one summary per URL."""
    requests = read_requests(options.requests)
    base_urls = [url.rstrip("/") for url in options.url]
    tallies = [Tally() for _ in base_urls]
    lates: list[list[float]] = [[] for _ in base_urls]
    targets = len(base_urls)
    connector = aiohttp.TCPConnector(
        limit=options.connections * targets, limit_per_host=options.connections
    )
    timeout = aiohttp.ClientTimeout(total=options.timeout)
    pending: set[asyncio.Task] = set()
    interval = 1.0 / (options.rate * targets)
    count = max(1, round(options.duration * options.rate)) * targets

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        for number in range(count):
            due = started + number * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

            # Every target gets the same sequence of requests.
            target, position = number % targets, number // targets
            request = requests[position % len(requests)]
            task = asyncio.create_task(
                send_when_due(
                    session,
                    base_urls[target],
                    request,
                    due,
                    tallies[target],
                    lates[target],
                )
            )
            pending.add(task)
            task.add_done_callback(pending.discard)

        # Each request has its own timeout, so the wait ends.
        if pending:
            await asyncio.wait(pending)

    summaries = []
    for tally, late in zip(tallies, lates):
        summary = summarize(tally, options.duration)
        summary["late_p99_ms"] = percentile(sorted(late), 0.99) * 1000
        summaries.append(summary)

    return summaries


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        required=True,
        action="append",
        help="base URL, loopback only; repeat it to measure several targets at once",
    )
    parser.add_argument(
        "--requests", required=True, help="JSON file with the request mix"
    )
    parser.add_argument(
        "--rate", type=float, default=300.0, help="requests per second to each URL"
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds to send for"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="maximum open connections per URL; a request waits when all are busy",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds allowed per request"
    )
    options = parser.parse_args(argv)

    for name in ("rate", "duration", "connections", "timeout"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name} must be positive")

    return options


def main(argv: list[str] | None = None) -> None:
    options = parse_arguments(argv)
    for url in options.url:
        if not is_loopback_url(url):
            sys.exit(f"Error: --url must name a loopback address, got {url!r}")

    for summary in asyncio.run(run(options)):
        json.dump(summary, sys.stdout)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
