"""Reload the config and policy files into a new snapshot, or keep the old one.

A reload builds a complete snapshot (config, policy index, routes, keys) off
the event loop and swaps one reference.  A file that fails to load leaves the
running snapshot serving and is reported with file, line and reason.  The
files are watched by polling their status, which also notices a symlink that
now points elsewhere, as when Kubernetes updates a mounted ConfigMap.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import ConfigError
from gateway.observe.metrics import GatewayMetrics
from gateway.pipeline import Gateway
from gateway.snapshot import Snapshot, load_snapshot

log = logging.getLogger("gateway.reload")

# Settings used only when the gateway starts: a reload that changes them
# logs that they wait for a restart.
_START_ONLY = ("listen_host", "listen_port", "upstream", "store_path", "limits",
               "stream_recheck_seconds", "stream_max_open", "stream_max_per_user",
               "stream_subprotocols", "admin", "reload")

Stamp = tuple[str, int, int, int] | None


class SnapshotReloader:
    def __init__(self, gateway: Gateway, config_file: str | os.PathLike,
                 metrics: GatewayMetrics) -> None:
        self._gateway = gateway
        self._metrics = metrics
        self._config_file = Path(config_file)
        self._lock = asyncio.Lock()
        self._stamps = _stamps(gateway.snapshot)
        self.reloads = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_reload_at: float | None = None
        self._froze_snapshot = False

    async def reload(self, cause: str) -> bool:
        """Load the files again and swap the snapshot; return whether it worked."""
        async with self._lock:
            current = self._gateway.snapshot
            loop = asyncio.get_running_loop()
            if self._froze_snapshot:
                # Free the garbage that is not frozen, so that the freeze after
                # this build keeps none.  Once a snapshot is frozen, this took
                # under 2 ms in bench/reload_memory.py.  Before the first
                # freeze it would go over the whole heap.
                gc.collect()
            try:
                with _yielding_build():
                    snapshot = await loop.run_in_executor(None, load_snapshot,
                                                          self._config_file)
                    _freeze_live_objects()
                    self._froze_snapshot = True
            except ConfigError as error:
                return self._failed(str(error), cause, current)
            except Exception as error:  # deny by default: keep the snapshot
                log.exception("reload failed inside the gateway")
                return self._failed(f"{type(error).__name__}: {error}", cause, current)

            _warn_start_only_changes(current, snapshot)
            await self._gateway.replace_snapshot(snapshot)
            self._stamps = _stamps(snapshot)
            self.reloads += 1
            self._metrics.reloads.labels("ok").inc()
            self.last_error = None
            self.last_reload_at = time.time()
            log.info("reloaded policy revision %s (was %s)", snapshot.policy.revision,
                     current.policy.revision, extra={"cause": cause})
            return True

    async def watch(self, poll_seconds: float) -> None:
        """Reload whenever a watched file changes, until cancelled."""
        while True:
            await asyncio.sleep(poll_seconds)
            if _stamps(self._gateway.snapshot) != self._stamps:
                # A failed reload keeps the old stamps, so it is retried only
                # after the next change instead of on every poll.
                self._stamps = _stamps(self._gateway.snapshot)
                await self.reload("file changed")

    def _failed(self, message: str, cause: str, current: Snapshot) -> bool:
        self.failures += 1
        self._metrics.reloads.labels("failed").inc()
        self.last_error = message
        log.error("reload failed, still serving policy revision %s: %s",
                  current.policy.revision, message, extra={"cause": cause})
        return False


def _stamps(snapshot: Snapshot) -> tuple[Stamp, ...]:
    config = snapshot.config
    return tuple(_stamp(path) for path in (config.file, config.model_path,
                                            config.roles_path))


def _stamp(path: Path) -> Stamp:
    try:
        status = os.stat(path)
    except OSError:
        return None

    return os.path.realpath(path), status.st_ino, status.st_mtime_ns, status.st_size


def _warn_start_only_changes(current: Snapshot, new: Snapshot) -> None:
    changed = [name for name in _START_ONLY
               if getattr(current.config, name) != getattr(new.config, name)]
    if changed:
        log.warning("changed settings take effect only after a restart: %s",
                    ", ".join(changed))


# While a snapshot builds in its thread, the event loop takes the GIL back from
# it after every wait for I/O, which can take the switch interval (5 ms by
# default), and a request spans several such waits.  bench/reload_memory.py
# measured this with 10,000 policy rows, 2,882 routes, 200 requests/s and the
# snapshot frozen as below, on 2 CPUs.  The maximum request latency during a
# reload was 31-75 ms with 0.5 ms (2 runs) and 9-29 ms with 0.1 ms (5 runs),
# and a reload took 0.5-0.9 s.  With the default interval and full collections
# during the build, requests had stalled for up to 2 s.
_BUILD_SWITCH_INTERVAL = 0.0001
# A threshold that a build never reaches, so that only the young generations
# are collected while it runs.  A full collection would go over everything the
# build has made so far.
_NO_FULL_COLLECTION = 1_000_000_000


@contextmanager
def _yielding_build() -> Iterator[None]:
    interval = sys.getswitchinterval()
    thresholds = gc.get_threshold()
    sys.setswitchinterval(_BUILD_SWITCH_INTERVAL)
    gc.set_threshold(thresholds[0], thresholds[1], _NO_FULL_COLLECTION)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)


# The collector must not go over a new snapshot once it serves.  When the
# collector was off during the build, the first collection after it went over
# the 61,000 objects of the snapshot in one pass and held the GIL for 18-32 ms
# (bench/reload_memory.py).  So the young generations are collected during the
# build in small steps, and what survives it is frozen: later collections skip
# frozen objects.  The collector never frees a frozen reference cycle, so
# snapshots hold none (tests/reload/test_snapshot_memory.py).  The young
# generations are collected just before the freeze, and the rest before the
# next build.
def _freeze_live_objects() -> None:
    gc.collect(1)
    gc.freeze()
