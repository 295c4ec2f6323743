"""Assemble the gateway from a snapshot and run it on aiohttp's low-level server.

The low-level server hands every request straight to the pipeline: there is
no router or middleware chain in front of it that could read a request
differently from the gateway's own parser.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from gateway.authn import Authenticator
from gateway.authz.ownership import OwnershipResolver
from gateway.forward.forwarder import UpstreamForwarder
from gateway.observe.decision_log import use_writer
from gateway.observe.decision_writer import DecisionWriter
from gateway.pipeline import Gateway
from gateway.protocol import GatewayServer
from gateway.config.model import AdminConfig
from gateway.observe.health import health_app
from gateway.observe.metrics import GatewayMetrics
from gateway.reload import SnapshotReloader
from gateway.snapshot import Snapshot
from gateway.streams.registry import StreamRegistry
from gateway.api import GatewayApi
from gateway.store import (
    SQLiteEmbedStore,
    SQLiteSessionStore,
    SQLiteUserStore,
    UserStore,
)

log = logging.getLogger("gateway.server")


@dataclass
class RunningGateway:
    gateway: Gateway
    runner: web.ServerRunner
    session: aiohttp.ClientSession
    stream_session: aiohttp.ClientSession
    store: UserStore
    sessions: SQLiteSessionStore
    embeds: SQLiteEmbedStore
    port: int
    reloader: SnapshotReloader
    admin_runner: web.AppRunner | None = None
    admin_port: int | None = None
    watcher: asyncio.Task | None = None

    async def close(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        await self.gateway.close_streams()
        if self.admin_runner is not None:
            await self.admin_runner.cleanup()
        await self.runner.cleanup()
        await self.gateway.close_upstream()
        await self.session.close()
        await self.stream_session.close()
        await self.store.close()
        self.sessions.close()
        self.embeds.close()


def build_gateway(
    snapshot: Snapshot,
    store: UserStore,
    sessions: SQLiteSessionStore,
    embeds: SQLiteEmbedStore,
    session: aiohttp.ClientSession,
    stream_session: aiohttp.ClientSession,
) -> Gateway:
    config = snapshot.config
    authenticator = Authenticator(store, session, embeds)
    resolver_timeout = aiohttp.ClientTimeout(
        total=config.upstream.read_timeout, sock_connect=config.upstream.connect_timeout
    )
    resolver = OwnershipResolver(session, config.upstream.url, resolver_timeout,
                                 store)
    forwarder = UpstreamForwarder(session, stream_session, config.upstream,
                                  config.forwarding, config.limits,
                                  subprotocols=config.stream_subprotocols)
    streams = StreamRegistry(config.stream_recheck_seconds,
                             max_open=config.stream_max_open,
                             max_per_user=config.stream_max_per_user,
                             store_version=store.data_version)
    gateway = Gateway(snapshot, authenticator, resolver, forwarder, streams,
                      GatewayMetrics())
    gateway.attach_api(GatewayApi(store, sessions, embeds, authenticator,
                                  on_user_change=gateway.recheck_streams))
    return gateway


def new_client_session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=limit,
        keepalive_timeout=30,
        ttl_dns_cache=60,
    )
    # auto_decompress=False: compressed responses pass through as they are, and
    # the gateway never inflates a body it did not ask to read.
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )


async def start_gateway(
    snapshot: Snapshot,
    *,
    host: str | None = None,
    port: int | None = None,
    reuse_port: bool = False,
    admin: bool = True,
) -> RunningGateway:
    """Start the gateway; `reuse_port` lets worker processes share one port.

    Without `admin`, no admin listener starts (only one worker has it).
    """
    config = snapshot.config
    store = SQLiteUserStore(config.store_path, owner_role=config.roles[0])
    sessions = SQLiteSessionStore(config.store_path)
    embeds = SQLiteEmbedStore(config.store_path)
    session = new_client_session(config.upstream.max_connections)
    stream_session = new_client_session(config.stream_max_open)
    gateway = build_gateway(snapshot, store, sessions, embeds, session,
                            stream_session)

    server = GatewayServer(gateway.handle, config.limits)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner,
        host if host is not None else config.listen_host,
        port if port is not None else config.listen_port,
        reuse_address=True,
        reuse_port=reuse_port or None,
    )
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        await session.close()
        await stream_session.close()
        await store.close()
        sessions.close()
        embeds.close()
        raise
    bound_port = runner.addresses[0][1]
    running = RunningGateway(gateway, runner, session, stream_session, store,
                             sessions, embeds, bound_port,
                             SnapshotReloader(gateway, config.file, gateway.metrics))
    if config.reload.watch:
        running.watcher = asyncio.create_task(
            running.reloader.watch(config.reload.poll_seconds)
        )
    if config.admin is not None and admin:
        await _start_admin(running, config.admin)
    # Only once every listener is bound: a failed admin bind stops the start.
    log.info("gateway listening on http://%s:%d, upstream %s, policy revision %s",
             host or config.listen_host, bound_port, config.upstream.url,
             snapshot.policy.revision)
    return running


async def _start_admin(running: RunningGateway, admin: AdminConfig) -> None:
    app = health_app(running.gateway, running.store, running.reloader,
                     running.gateway.metrics)
    running.admin_runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await running.admin_runner.setup()
    site = web.TCPSite(running.admin_runner, admin.host, admin.port,
                       reuse_address=True)
    try:
        await site.start()
    except OSError:
        await running.close()
        raise
    running.admin_port = running.admin_runner.addresses[0][1]
    log.info("admin listener on http://%s:%d: /healthz, /readyz and /metrics",
             admin.host, running.admin_port)


async def serve_forever(snapshot: Snapshot, *, host=None, port=None,
                        reuse_port: bool = False, admin: bool = True) -> None:
    """Serve `snapshot` until SIGINT or SIGTERM; SIGHUP reloads the files.

    The caller must keep no reference to `snapshot`.  A reload replaces the
    gateway's reference, and any other would keep the start snapshot in memory.
    """
    writer = DecisionWriter(sys.stderr.buffer)
    writer.start()
    use_writer(writer)
    try:
        running = await start_gateway(snapshot, host=host, port=port,
                                      reuse_port=reuse_port, admin=admin)
        del snapshot
        await _serve(running)
    finally:
        use_writer(None)
        await writer.stop()


async def _serve(running: RunningGateway) -> None:
    # What exists now lives as long as the process; frozen, it is no longer
    # traversed by every full collection.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    reloads: set[asyncio.Task] = set()

    def reload_on_signal() -> None:
        task = loop.create_task(running.reloader.reload("SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_on_signal)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        log.info("gateway stopping")
        await running.close()
