"""Prometheus metrics on the admin listener, counted from real requests."""

from __future__ import annotations

import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def measured(gateway_factory, sample_api):
    await sample_api.reset()
    return await gateway_factory(sample_api.url)


async def metrics_text(http, gateway) -> str:
    port = gateway.running.admin_port
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        return await response.text()


async def get(http, gateway, path: str, user: str) -> int:
    async with http.get(gateway.url + path, headers=gateway.bearer(user)) as response:
        await response.read()
        return response.status


def sample(text: str, name: str, **labels: str) -> float:
    """Return the value of the sample `name` with exactly `labels`."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    raise AssertionError(f"no sample {prefix!r}")


async def test_requests_counted_by_route_and_decision(measured, http):
    assert await get(http, measured, "/api/1/chats/1/", "u-op-1") == 200
    assert await get(http, measured, "/api/1/chats/2/", "u-op-1") == 404
    assert await get(http, measured, "/api/1/templates/", "u-op-1") == 403

    text = await metrics_text(http, measured)

    assert sample(text, "gateway_requests_total", route="GET /api/1/chats/{id}/",
                  decision="allow", status="200") == 1
    assert sample(text, "gateway_requests_total", route="GET /api/1/chats/{id}/",
                  decision="deny", status="404") == 1
    assert sample(text, "gateway_requests_total", route="GET /api/1/templates/",
                  decision="deny", status="403") == 1


async def test_latency_histograms_observe_allowed_requests(measured, http):
    assert await get(http, measured, "/api/1/chats/1/", "u-op-1") == 200

    text = await metrics_text(http, measured)

    assert sample(text, "gateway_decision_seconds_count") == 1
    assert sample(text, "gateway_upstream_seconds_count") == 1


async def test_reloads_and_streams_reported(measured, http):
    assert await measured.running.reloader.reload("test")

    text = await metrics_text(http, measured)

    assert sample(text, "gateway_reloads_total", result="ok") == 1
    assert sample(text, "gateway_open_streams") == 0


async def test_upstream_errors_counted_by_reason(gateway_factory, http,
                                                 unused_tcp_port_factory):
    down = await gateway_factory(f"http://127.0.0.1:{unused_tcp_port_factory()}")

    assert await get(http, down, "/api/1/templates/", "u-owner") == 502
    text = await metrics_text(http, down)

    assert sample(text, "gateway_upstream_errors_total",
                  reason="upstream_ClientConnectorError") == 1
