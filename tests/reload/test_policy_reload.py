"""Reloading config and policy files while the gateway serves.

Each gateway here reads a copy of `policies/`, so a test can edit it.  Chat
managers may not list templates under the shipped policy; the edit below
grants it, which flips that decision from 403 to 200.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio(loop_scope="session")

GRANT = "p, chat_manager, templates, list, all\n"
TEMPLATES = "/api/1/templates/"


@pytest_asyncio.fixture(loop_scope="session")
async def editable(gateway_factory, sample_api, tmp_path, request):
    policies = tmp_path / "policies"
    shutil.copytree(request.config.rootpath / "policies", policies)
    poll = getattr(request, "param", 0.05)
    gateway = await gateway_factory(sample_api.url, {
        ("policy", "model"): policies / "model.conf",
        ("policy", "roles"): policies / "roles.csv",
        ("reload", "poll_seconds"): poll,
    })
    return gateway, policies / "roles.csv"


async def status_of(http, gateway, path: str, user: str = "u-manager") -> int:
    async with http.get(gateway.url + path, headers=gateway.bearer(user)) as response:
        await response.read()
        return response.status


async def ready(http, gateway) -> dict:
    port = gateway.running.admin_port
    async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
        return {"status_code": response.status} | await response.json()


async def wait_for(predicate, seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():
            await asyncio.sleep(0.05)


async def test_edited_roles_file_changes_decision(editable, http):
    gateway, roles = editable
    before = await status_of(http, gateway, TEMPLATES)

    roles.write_text(roles.read_text() + GRANT)
    await wait_for(lambda: _is(status_of(http, gateway, TEMPLATES), 200))

    assert before == 403
    assert (await ready(http, gateway))["reloads"] == 1


async def test_broken_edit_keeps_running_policy(editable, http):
    gateway, roles = editable
    revision = (await ready(http, gateway))["policy_revision"]

    roles.write_text(roles.read_text() + GRANT + "p, chat_manager, templates\n")
    await wait_for(lambda: _has_error(ready(http, gateway)))
    state = await ready(http, gateway)

    assert await status_of(http, gateway, TEMPLATES) == 403, "the old policy serves"
    assert state["status_code"] == 200
    assert state["policy_revision"] == revision
    assert f"{roles}:" in state["last_reload_error"], "the error names file and line"
    assert "5 fields" in state["last_reload_error"]


async def test_fixed_edit_clears_reload_error(editable, http):
    gateway, roles = editable
    shipped = roles.read_text()
    roles.write_text(shipped + "p, broken\n")
    await wait_for(lambda: _has_error(ready(http, gateway)))

    roles.write_text(shipped + GRANT)
    await wait_for(lambda: _is(status_of(http, gateway, TEMPLATES), 200))

    assert (await ready(http, gateway))["last_reload_error"] is None


async def test_symlink_swap_is_noticed(editable, http, tmp_path):
    gateway, roles = editable
    edited = tmp_path / "roles-v2.csv"
    edited.write_text(roles.read_text() + GRANT)
    swapped = tmp_path / "swap"
    swapped.symlink_to(edited)

    swapped.replace(roles)  # roles.csv is now a link to the edited copy
    await wait_for(lambda: _is(status_of(http, gateway, TEMPLATES), 200))

    assert roles.is_symlink()


async def test_health_endpoints_answer(editable, http):
    gateway, _ = editable
    port = gateway.running.admin_port

    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
        alive = await response.json()
    state = await ready(http, gateway)

    assert alive == {"status": "alive"}
    assert state["status"] == "ready"
    assert state["policy_revision"] == gateway.running.gateway.snapshot.policy.revision


@pytest.mark.parametrize("editable", [3600], indirect=True)
async def test_reload_under_load_mixes_no_revisions(editable, http, caplog):
    gateway, roles = editable
    shipped = roles.read_text()
    reloader = gateway.running.reloader
    caplog.set_level(logging.INFO, logger="gateway.decision")

    flipped = asyncio.Event()

    async def load() -> list[int]:
        # At least 40 requests each, and on until the last reload is done, so
        # requests meet more than one revision however fast the reloads are.
        statuses = []
        while len(statuses) < 40 or not flipped.is_set():
            statuses.append(await status_of(http, gateway, TEMPLATES))
        return statuses

    async def flip() -> None:
        for number in range(6):
            roles.write_text(shipped + (GRANT if number % 2 == 0 else ""))
            assert await reloader.reload("test")
            await asyncio.sleep(0.02)
        flipped.set()

    results = await asyncio.gather(*(load() for _ in range(8)), flip())
    statuses = [status for batch in results[:-1] for status in batch]
    allowed = {record.policy_revision: record.status
               for record in caplog.records if record.name == "gateway.decision"}

    assert set(statuses) <= {200, 403}, "no request failed during the reloads"
    assert len(statuses) >= 320
    assert len(set(allowed.values())) == 2, "both revisions served requests"
    for record in caplog.records:
        if record.name == "gateway.decision":
            assert record.status == allowed[record.policy_revision], (
                "each decision follows the one revision it was made with"
            )


async def _is(awaitable, expected) -> bool:
    return await awaitable == expected


async def _has_error(awaitable) -> bool:
    return (await awaitable)["last_reload_error"] is not None
