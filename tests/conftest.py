"""Fixtures that run the sample chat API and the gateway on loopback TCP ports.

Every server here speaks real HTTP: tests send requests to the gateway with an
aiohttp client or a raw socket, and the gateway forwards them over TCP to the
sample API, which records each request it receives.  The shared servers live
on the session's event loop, so test modules that use them are marked
`pytest.mark.asyncio(loop_scope="session")`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from gateway.config.derive import derive_config
from gateway.config.model import Config
from gateway.server import RunningGateway, start_gateway
from gateway.snapshot import load_snapshot
from gateway.store import SQLiteUserStore
from gateway.tokens.issuer import TokenIssuer
from sample_api.app import create_app

REPOSITORY = Path(__file__).resolve().parents[1]
SOURCE_CONFIG = REPOSITORY / "config.yaml"

# Standard users of every test gateway, by id, with their role.
STANDARD_USERS = {
    "u-owner": "owner",
    "u-admin": "administrator",
    "u-manager": "chat_manager",
    "u-op-1": "chat_operator",
    "u-op-2": "chat_operator",
    "u-op-3": "chat_operator",
}
SERVICE_USER = "u-service"
SERVICE_ROLE = "chat_manager"

# The user a test acts as, by the name test tables use for it.
PRINCIPALS = {
    "owner": "u-owner",
    "administrator": "u-admin",
    "chat_manager": "u-manager",
    "chat_operator": "u-op-1",
    "service_user": SERVICE_USER,
}

# Header the gateway's ownership resolver puts on its own upstream requests.
RESOLVER_HEADER = "x-gateway-resolver"


async def serve_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free loopback port and return its runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class SampleAPI:
    """The sample chat API on a loopback port, driven through its test hooks."""

    url: str
    session: aiohttp.ClientSession

    async def recorded(self) -> list[dict[str, Any]]:
        """Return every request received since the last clear, oldest first."""
        async with self.session.get(self.url + "/_sample/requests") as response:
            assert response.status == 200
            return (await response.json())["requests"]

    async def forwarded(self) -> list[dict[str, Any]]:
        """Return the recorded client requests, leaving out resolver lookups."""
        return [
            entry
            for entry in await self.recorded()
            if RESOLVER_HEADER not in entry["headers"]
        ]

    async def clear(self) -> None:
        async with self.session.delete(self.url + "/_sample/requests") as response:
            assert response.status == 204

    async def reset(self) -> None:
        """Restore the seed data, turn faults off and clear the record."""
        async with self.session.post(self.url + "/_sample/reset") as response:
            assert response.status == 200

    async def ignore_filters(self, enabled: bool) -> None:
        async with self.session.put(
            self.url + "/_sample/faults", json={"ignore_filters": enabled}
        ) as response:
            assert response.status == 200


@dataclass
class TestGateway:
    """A gateway started in this process, with its users and a token issuer."""

    __test__ = False  # keeps pytest from collecting this class

    url: str
    port: int
    running: RunningGateway
    config: Config
    config_file: Path
    issuer: TokenIssuer
    service_api_key: str

    @property
    def store(self) -> SQLiteUserStore:
        return self.running.store

    def token(self, user_id: str) -> str:
        return self.issuer.issue(user_id)

    @staticmethod
    def user_id(principal: str) -> str:
        """Return the user id of `principal`, a key of PRINCIPALS."""
        return PRINCIPALS[principal]

    def credentials(self, principal: str) -> dict[str, str]:
        """Return the headers that authenticate `principal`, a key of PRINCIPALS."""
        user_id = PRINCIPALS[principal]
        if user_id == SERVICE_USER:
            return {self.config.api_key_header: self.service_api_key}
        return self.bearer(user_id)

    def bearer(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}


async def add_test_users(store: SQLiteUserStore) -> str:
    """Add the standard users and the service user, and return the service API key."""
    for user_id, role in STANDARD_USERS.items():
        await store.add_user(
            name=user_id,
            email=f"{user_id}@example.com",
            role=role,
            type="standard",
            user_id=user_id,
        )

    await store.add_user(
        name="Service user",
        email=f"{SERVICE_USER}@example.com",
        role=SERVICE_ROLE,
        type="service",
        user_id=SERVICE_USER,
    )
    return await store.add_api_key(SERVICE_USER)


def write_gateway_config(
    folder: Path, upstream_url: str, changes: dict[tuple[str, ...], Any] | None = None
) -> Path:
    """Derive a config from config.yaml for `upstream_url`, with files in `folder`."""
    settings: dict[tuple[str, ...], Any] = {
        ("upstream", "url"): upstream_url,
        ("store", "sqlite"): folder / "gateway.db",
        ("authentication", "jwt", "secret_file"): folder / "jwt-secret",
        ("admin", "port"): 0,
        # Raw-socket tests name the gateway by a placeholder host.
        ("forwarding", "allowed_hosts"): ["127.0.0.1", "localhost", "gateway.test"],
    }
    settings.update(changes or {})
    return derive_config(SOURCE_CONFIG, folder / "config.yaml", settings)


async def start_test_gateway(
    folder: Path, upstream_url: str, changes: dict[tuple[str, ...], Any] | None = None
) -> TestGateway:
    config_file = write_gateway_config(folder, upstream_url, changes)
    snapshot = load_snapshot(config_file)
    running = await start_gateway(snapshot, host="127.0.0.1", port=0)
    try:
        api_key = await add_test_users(running.store)
    except BaseException:
        await running.close()
        raise

    return TestGateway(
        url=f"http://127.0.0.1:{running.port}",
        port=running.port,
        running=running,
        config=snapshot.config,
        config_file=config_file,
        issuer=TokenIssuer(snapshot.config.jwt),
        service_api_key=api_key,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that keeps no cookies and reads no proxy settings."""
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    ) as session:
        yield session


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sample_api(http: aiohttp.ClientSession) -> AsyncIterator[SampleAPI]:
    runner, url = await serve_app(create_app())
    yield SampleAPI(url, http)
    await runner.cleanup()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateway(
    sample_api: SampleAPI, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TestGateway]:
    """The gateway with the repository's config and policy, before the sample API."""
    folder = tmp_path_factory.mktemp("gateway")
    started = await start_test_gateway(folder, sample_api.url)
    yield started
    await started.running.close()


GatewayFactory = Callable[..., Awaitable[TestGateway]]


@pytest_asyncio.fixture(loop_scope="session")
async def gateway_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[GatewayFactory]:
    """Start extra gateways with config changes; each is closed after the test.

    Call it as `await gateway_factory(upstream_url, {key_path: value, ...})`.
    """
    started: list[TestGateway] = []

    async def start(
        upstream_url: str, changes: dict[tuple[str, ...], Any] | None = None
    ) -> TestGateway:
        folder = tmp_path_factory.mktemp("extra-gateway")
        started.append(await start_test_gateway(folder, upstream_url, changes))
        return started[-1]

    yield start

    for extra in started:
        await extra.running.close()
