"""Send requests at a steady rate and record when each was due, sent and done.

The load is open-loop: request N is due at start + N / rate, whatever became
of the earlier ones.  So a pause of the server shows in the latency of every
request due during it, and does not delay the requests after it.  The sender runs
until SIGTERM or --max-seconds, then writes one JSON object to --output:

    {"exchanges": [[due, sent, done, status], ...], "errors": {"...": count}}

Times are `time.monotonic()` seconds.  On Linux that clock is
CLOCK_MONOTONIC, which all processes of the machine share, so the caller can
compare them with its own.  A request that fails has status -1 and its error
is counted under `errors`.

Run: ``python bench/steady_load.py --url http://127.0.0.1:8080 --requests
requests.json --rate 200 --output exchanges.json``, where requests.json is a
list of ``{"method", "path", "headers"}`` objects, sent in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter

import aiohttp
from load import is_loopback_url

# Requests still open this long after the sender stops are given up.
DRAIN_SECONDS = 10.0


async def send(
    session: aiohttp.ClientSession,
    url: str,
    request: dict,
    due: float,
    exchanges: list,
    errors: Counter,
) -> None:
    sent = time.monotonic()
    try:
        async with session.request(
            request["method"], url + request["path"], headers=request["headers"]
        ) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        errors[repr(error)] += 1
        status = -1

    exchanges.append((due, sent, time.monotonic(), status))


async def run(options: argparse.Namespace) -> dict:
    with open(options.requests, encoding="utf-8") as file:
        requests = json.load(file)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connector = aiohttp.TCPConnector(limit=options.connections)
    exchanges: list = []
    errors: Counter = Counter()
    pending: set[asyncio.Task] = set()
    interval = 1.0 / options.rate

    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=options.timeout),
    ) as session:
        print("sending", flush=True)
        started = time.monotonic()
        deadline = started + options.max_seconds
        number = 0
        while not stop.is_set():
            due = started + number * interval
            if due > deadline:
                break

            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(
                send(session, options.url, requests[number % len(requests)], due,
                     exchanges, errors)
            )
            pending.add(task)
            task.add_done_callback(pending.discard)
            number += 1

        if pending:
            await asyncio.wait(pending, timeout=DRAIN_SECONDS)

    return {"exchanges": sorted(exchanges), "errors": dict(errors)}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, loopback only")
    parser.add_argument("--requests", required=True,
                        help="JSON file: a list of {method, path, headers}")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="requests per second")
    parser.add_argument("--connections", type=int, default=32,
                        help="maximum open connections")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds before one request is counted as failed")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="stop after this many seconds if no SIGTERM came")
    parser.add_argument("--output", required=True, help="JSON file to write")
    options = parser.parse_args(argv)

    for name in ("rate", "connections", "timeout", "max_seconds"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")

    return options


def main(argv: list[str] | None = None) -> None:
    options = parse_arguments(argv)
    if not is_loopback_url(options.url):
        sys.exit(f"Error: --url must name a loopback address, got {options.url!r}")

    result = asyncio.run(run(options))
    with open(options.output, "w", encoding="utf-8") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
