"""Memory of reloads: snapshots free themselves, and reloads freeze them.

A reload freezes the new snapshot (`gc.freeze`) so that later collections skip
its objects, and the collector never frees a frozen reference cycle.  So a
snapshot must be freed by reference counting alone, and a reload must freeze
live objects only.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.observe.metrics import GatewayMetrics
from gateway.reload import SnapshotReloader
from gateway.server import serve_forever
from gateway.snapshot import Snapshot, load_snapshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPOSITORY = Path(__file__).resolve().parents[2]
# Objects that reloads of the same files may freeze besides the new snapshot,
# such as those of the test run.  A snapshot of the shipped files has about
# 1,200 tracked objects, so keeping each replaced one would exceed this.
FREEZE_GROWTH_SLACK = 200
# The shipped config checks its files for changes once a second.
RELOAD_WAIT_SECONDS = 15


class Node:
    """An object that can be part of a reference cycle and be watched."""

    def __init__(self) -> None:
        self.other: Node | None = None


class SnapshotHolder:
    """The part of `Gateway` that a reloader uses: the snapshot and its swap."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    async def replace_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """Return a copy of the shipped config next to a copy of `policies/`."""
    shutil.copytree(REPOSITORY / "policies", tmp_path / "policies")
    target = tmp_path / "config.yaml"
    shutil.copy(REPOSITORY / "config.yaml", target)
    return target


@pytest.fixture
def unfrozen_after():
    """Move the objects that the test froze back to the collected generations."""
    yield
    gc.unfreeze()


def cyclic_garbage(action: Callable[[], object]) -> list[str]:
    """Run `action` with the collector off and return the types of the cycles it left.

    Objects in reference cycles are the ones that reference counting cannot
    free, so only the collector would.
    """
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        action()
        gc.collect()
        return sorted(type(item).__qualname__ for item in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def is_frozen(item: object) -> bool:
    # In CPython 3.11, gc.get_objects() leaves out the permanent generation,
    # which contains the frozen objects.
    return gc.is_tracked(item) and not any(other is item for other in gc.get_objects())


async def test_snapshot_build_leaves_no_cycles(config_file):
    load_snapshot(config_file)  # imports and caches that later builds reuse
    built = []

    garbage = cyclic_garbage(lambda: built.append(load_snapshot(config_file)))

    assert garbage == []


async def test_dropped_snapshot_leaves_no_cycles(config_file):
    snapshots = [load_snapshot(config_file)]

    garbage = cyclic_garbage(snapshots.clear)

    assert garbage == [], "Casbin's role links must be cut when its enforcer is freed"


async def test_reload_freezes_new_snapshot(config_file, unfrozen_after):
    holder = SnapshotHolder(load_snapshot(config_file))
    reloader = SnapshotReloader(holder, config_file, GatewayMetrics())
    replaced = weakref.ref(holder.snapshot)
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()

    assert await reloader.reload("test")

    assert replaced() is None, "the replaced snapshot is still referenced"
    assert is_frozen(holder.snapshot)
    assert is_frozen(holder.snapshot.policy)
    assert sys.getswitchinterval() == interval
    assert gc.get_threshold() == thresholds


async def test_repeated_reloads_keep_frozen_count(config_file, unfrozen_after):
    holder = SnapshotHolder(load_snapshot(config_file))
    reloader = SnapshotReloader(holder, config_file, GatewayMetrics())
    counts = []

    for _ in range(4):
        assert await reloader.reload("test")
        counts.append(gc.get_freeze_count())

    assert counts[-1] - counts[0] < FREEZE_GROWTH_SLACK, f"frozen objects: {counts}"


async def test_reload_collects_old_garbage_first(config_file, unfrozen_after):
    holder = SnapshotHolder(load_snapshot(config_file))
    reloader = SnapshotReloader(holder, config_file, GatewayMetrics())
    assert await reloader.reload("test")
    first, second = Node(), Node()
    first.other, second.other = second, first
    watched = weakref.ref(first)
    gc.collect(1)  # the cycle survives into the oldest generation
    del first, second

    assert await reloader.reload("test")

    assert watched() is None, "a cycle that died before the reload was frozen"


async def test_failed_reload_freezes_nothing(config_file, unfrozen_after):
    holder = SnapshotHolder(load_snapshot(config_file))
    reloader = SnapshotReloader(holder, config_file, GatewayMetrics())
    assert await reloader.reload("test")
    frozen = gc.get_freeze_count()
    roles = config_file.parent / "policies" / "roles.csv"
    text = roles.read_text() + "p, chat_manager, templates\n"
    roles.write_text(text)
    broken_line = text.count("\n")

    assert not await reloader.reload("test")

    assert gc.get_freeze_count() <= frozen
    assert f"{roles}:{broken_line}:" in reloader.last_error


async def test_served_start_snapshot_freed_after_reload(config_file, unfrozen_after):
    snapshot = load_snapshot(config_file)
    start = weakref.ref(snapshot)
    start_policy = weakref.ref(snapshot.policy)
    serving = asyncio.create_task(serve_forever(snapshot, port=0, admin=False))
    del snapshot
    roles = config_file.parent / "policies" / "roles.csv"
    text = roles.read_text()

    try:
        for edit in range(int(RELOAD_WAIT_SECONDS / 0.2)):
            roles.write_text(f"{text}# edit {edit}\n")
            await asyncio.sleep(0.2)
            if start() is None:
                break
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving

    assert serving.done()
    assert start() is None, "the start snapshot outlives the reload"
    assert start_policy() is None, "the start snapshot's policy outlives the reload"
