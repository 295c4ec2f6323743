"""Test hooks under ``/_sample/``. They are not part of the product API.

- ``GET /_sample/health`` returns ``{"status": "ok"}``.
- ``GET /_sample/requests`` lists the recorded requests, ``DELETE`` clears them.
- ``GET|PUT /_sample/faults`` reads or sets ``{"ignore_filters": bool}``.
- ``POST /_sample/reset`` restores the seed data, clears faults and the record.
- ``GET /_sample/slow/?seconds=F`` waits F seconds (at most 30), then responds.
- Any method on ``/_sample/echo/...`` returns a description of the request.
"""

import asyncio
import math

from aiohttp import web

from .errors import bad_request
from .recorder import RECORDER_KEY, describe_request
from .schema import Field, read_fields
from .store import get_store

MAX_SLOW_SECONDS = 30.0
FAULT_FIELDS = {"ignore_filters": Field(bool)}

routes = web.RouteTableDef()


@routes.get("/_sample/health")
async def get_health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/_sample/requests")
async def list_requests(request: web.Request) -> web.Response:
    entries = request.app[RECORDER_KEY].entries

    return web.json_response({"count": len(entries), "requests": entries})


@routes.delete("/_sample/requests")
async def clear_requests(request: web.Request) -> web.Response:
    request.app[RECORDER_KEY].clear()

    return web.Response(status=204)


@routes.get("/_sample/faults")
async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"ignore_filters": get_store(request).ignore_filters})


@routes.put("/_sample/faults")
async def set_faults(request: web.Request) -> web.Response:
    store = get_store(request)
    values = await read_fields(request, FAULT_FIELDS, partial=True)
    store.ignore_filters = values.get("ignore_filters", store.ignore_filters)

    return web.json_response({"ignore_filters": store.ignore_filters})


@routes.post("/_sample/reset")
async def reset(request: web.Request) -> web.Response:
    store = get_store(request)
    store.load_seed()
    store.ignore_filters = False
    request.app[RECORDER_KEY].clear()

    return web.json_response({"status": "reset"})


def parse_seconds(raw: str | None) -> float:
    if raw is None:
        raise bad_request("Query parameter 'seconds' is required.")

    try:
        seconds = float(raw)
    except ValueError:
        raise bad_request(f"Query parameter 'seconds' must be a number, got {raw!r}.")

    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SLOW_SECONDS:
        raise bad_request(
            f"Query parameter 'seconds' must be between 0 and {MAX_SLOW_SECONDS:g},"
            f" got {raw!r}."
        )

    return seconds


@routes.get("/_sample/slow/")
async def respond_slowly(request: web.Request) -> web.Response:
    seconds = parse_seconds(request.query.get("seconds"))

    await asyncio.sleep(seconds)

    return web.json_response({"slept": seconds})


@routes.route("*", "/_sample/echo/{tail:.*}")
async def echo(request: web.Request) -> web.Response:
    return web.json_response(describe_request(request, await request.read()))
