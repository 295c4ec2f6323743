"""bench/paced_load.py against small local aiohttp servers."""

import argparse
import json

import pytest
from aiohttp import web
from paced_load import parse_arguments, run


async def start_server(aiohttp_server, status):
    async def created(request):
        return web.json_response({"ok": True}, status=status)

    app = web.Application()
    app.router.add_post("/items", created)
    return await aiohttp_server(app, host="127.0.0.1")


def write_requests(tmp_path):
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps([
        {"method": "POST", "path": "/items", "headers": {}, "body": "{}",
         "expected_status": 201},
        {"method": "POST", "path": "/items", "headers": {}, "body": "{}",
         "expected_status": 200},
    ]))
    return str(requests)


def paced_options(urls, requests):
    return argparse.Namespace(
        url=urls, requests=requests, rate=200.0, duration=0.1, connections=4,
        timeout=5.0,
    )


async def test_paced_load_sends_planned_count(aiohttp_server, tmp_path):
    server = await start_server(aiohttp_server, 201)
    options = paced_options([str(server.make_url("/"))], write_requests(tmp_path))

    (summary,) = await run(options)

    assert summary["requests"] == 20
    assert summary["failed"] == 0
    assert summary["unexpected_status"] == 10  # every second one expects 200
    assert summary["p50_ms"] is not None
    assert summary["late_p99_ms"] is not None


async def test_paced_load_gives_each_url_rate(aiohttp_server, tmp_path):
    created = await start_server(aiohttp_server, 201)
    ok = await start_server(aiohttp_server, 200)
    urls = [str(created.make_url("/")), str(ok.make_url("/"))]

    first, second = await run(paced_options(urls, write_requests(tmp_path)))

    assert first["requests"] == 20
    assert second["requests"] == 20
    # Both get the mix in the same order, so the statuses tell them apart.
    assert first["unexpected_status"] == 10
    assert second["unexpected_status"] == 10


def test_paced_load_rejects_zero_rate(capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_arguments(["--url", "http://127.0.0.1:1", "--requests", "x",
                         "--rate", "0"])

    assert stopped.value.code == 2
    assert "--rate must be positive" in capsys.readouterr().err


def test_paced_load_takes_several_urls():
    options = parse_arguments(["--url", "http://127.0.0.1:1", "--url",
                               "http://127.0.0.1:2", "--requests", "x"])

    assert options.url == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
