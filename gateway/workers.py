"""`gateway serve --workers N`: N gateway processes on one port.

Each worker is a `gateway serve` process of its own that binds the listen
port with SO_REUSEPORT, so the kernel spreads new connections over them and
every core serves.  Worker 0 also runs the admin listener; its `/metrics`
adds up every worker's values through prometheus_client's multiprocess mode.
Every worker watches the files and reloads on its own; SIGHUP to this
supervisor reaches them all.  A worker that exits on its own is started
again; SIGINT or SIGTERM stops them all.  On Linux a worker also gets SIGTERM
when the supervisor dies without stopping it, as on SIGKILL.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("gateway.workers")

RESTART_DELAY = 1.0  # seconds before a worker that exited is started again
# `gateway serve` exits with this when it cannot bind its ports.  Such a worker
# is not started again: it would fail the same way every second.
EXIT_CANNOT_LISTEN = 3
STOP_TIMEOUT = 10.0  # seconds a worker has to finish before it is killed
PR_SET_PDEATHSIG = 1  # prctl option from <linux/prctl.h>


class Supervisor:
    def __init__(self, config_file: Path, *, host: str | None, port: int,
                 workers: int) -> None:
        self._config_file = config_file
        self._host = host
        self._port = port
        self._count = workers
        self._metrics_dir = tempfile.TemporaryDirectory(prefix="gateway-metrics-")
        self._processes: dict[int, subprocess.Popen] = {}
        self._stopping = False
        self._status = 0

    def run(self) -> int:
        """Start the workers and keep them running until a stop signal."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)
        try:
            for index in range(self._count):
                self._start(index)
            self._watch()
        finally:
            self._stop_all()
            self._metrics_dir.cleanup()
        return self._status

    def _command(self, index: int) -> list[str]:
        command = [sys.executable, "-m", "gateway.cli", "serve",
                   "-c", str(self._config_file), "--port", str(self._port),
                   "--reuse-port"]
        if self._host is not None:
            command += ["--host", self._host]
        if index > 0:
            command.append("--no-admin")
        return command

    def _start(self, index: int) -> None:
        environment = os.environ | {"PROMETHEUS_MULTIPROC_DIR": self._metrics_dir.name}
        process = subprocess.Popen(self._command(index), env=environment,
                                   preexec_fn=_end_with_parent(os.getpid()))
        self._processes[index] = process
        log.info("worker %d started, pid %d", index, process.pid)

    def _watch(self) -> None:
        while not self._stopping:
            time.sleep(0.2)
            for index, process in list(self._processes.items()):
                status = process.poll()
                if status is None or self._stopping:
                    continue
                if status == EXIT_CANNOT_LISTEN:
                    log.error("worker %d (pid %d) cannot listen; stopping every "
                              "worker", index, process.pid)
                    self._status = 1
                    self._stopping = True
                    break
                log.warning("worker %d (pid %d) exited with %d; starting it again",
                            index, process.pid, status)
                _forget_metrics(process.pid, self._metrics_dir.name)
                time.sleep(RESTART_DELAY)
                self._start(index)

    def _stop(self, signum, frame) -> None:
        self._stopping = True

    def _reload(self, signum, frame) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGHUP)

    def _stop_all(self) -> None:
        self._stopping = True
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self._processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def check_port_free(host: str, port: int) -> None:
    """Raise OSError when something listens on `host:port` already.

    The workers bind with SO_REUSEPORT, so they would share the port with the
    workers of another gateway instead of failing.  This bind has no such
    option, and SO_REUSEADDR lets it pass over connections in TIME_WAIT.
    """
    for family, kind, protocol, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)


def _end_with_parent(parent: int):
    """Return a function for `preexec_fn` that ties a worker's life to `parent`.

    The kernel sends the worker SIGTERM once its parent exits, which stops it
    as the supervisor would.  Without prctl (not Linux) there is nothing to set.
    The supervisor starts no threads, so running Python between fork and exec
    is safe here.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_parent_death_signal() -> None:
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_parent_death_signal


def _forget_metrics(pid: int, folder: str) -> None:
    # Live gauges (open streams) of a dead worker must stop counting.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, folder)
