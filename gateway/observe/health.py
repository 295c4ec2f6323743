"""`/healthz`, `/readyz` and `/metrics` on the admin listener, apart from the proxy.

`/healthz` returns 200 while the process runs.  `/readyz` returns 200 while a
valid snapshot serves and the users store responds, else 503, and shows the
running policy revision and the last reload error, if any.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.observe.metrics import GatewayMetrics
from gateway.pipeline import Gateway
from gateway.reload import SnapshotReloader
from gateway.store import UserStore

log = logging.getLogger("gateway.health")


def health_app(gateway: Gateway, store: UserStore, reloader: SnapshotReloader,
               metrics: GatewayMetrics) -> web.Application:
    async def alive(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def ready(request: web.Request) -> web.Response:
        body = {
            "policy_revision": gateway.snapshot.policy.revision,
            "reloads": reloader.reloads,
            "reload_failures": reloader.failures,
            "last_reload_error": reloader.last_error,
        }
        try:
            await store.ping()
        except Exception as error:  # any store fault makes the gateway unready
            log.warning("users store ping failed: %s", error)
            return web.json_response({"status": "unready", "store": "failing"} | body,
                                     status=503)

        return web.json_response({"status": "ready"} | body)

    async def export(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.export_registry()),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", alive)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", export)
    return app
