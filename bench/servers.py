"""Server subprocesses of the benchmark: start, wait, stop, and read CPU time."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# The sample API gives each new message the highest id plus one, found by a scan
# of the messages table, and records every request it gets.  Both grow with the
# load, so its cost per request would keep rising during a run.  A reset every
# half second keeps both small; one reset takes about 2.5 ms of its CPU.
RESET_INTERVAL_SECONDS = 0.5


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def free_port() -> int:
    # The kernel picks a free port.  Another process could take it before the
    # server binds it, and the server then exits, which start_server reports.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def start_server(
    name: str,
    argv: list[str],
    port: int,
    work_dir: Path,
    cwd: Path,
    listeners: int = 1,
) -> Server:
    """Start `argv` with its output in WORK_DIR/NAME.log and wait until it listens.

    A server whose processes each bind the port with SO_REUSEPORT is ready when
    `listeners` sockets listen on it.
    """
    log_path = work_dir / f"{name.replace(' ', '-').replace(',', '')}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )

    server = Server(name, process, port, log_path)
    try:
        wait_until_listening(server, listeners)
    except RuntimeError:
        stop_server(server)
        raise

    return server


def wait_until_listening(server: Server, listeners: int = 1) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with status {server.process.returncode} "
                f"before listening on port {server.port}:\n{log_tail(server)}"
            )

        if listeners == 1:
            with contextlib.suppress(OSError):
                socket.create_connection((LOOPBACK, server.port), timeout=1).close()
                return
        elif listening_sockets(server.port) >= listeners:
            return

        time.sleep(0.1)

    raise RuntimeError(
        f"{server.name} did not listen on port {server.port} with {listeners} "
        f"sockets within {READY_TIMEOUT_SECONDS:g} s:\n{log_tail(server)}"
    )


def listening_sockets(port: int) -> int:
    """Count the IPv4 TCP sockets that listen on `port` of 127.0.0.1."""
    # proc(5), /proc/net/tcp: local_address is the address and the port in hex,
    # with the address in network byte order.  State 0A is TCP_LISTEN.
    local_address = f"0100007F:{port:04X}"
    count = 0
    with open("/proc/net/tcp", encoding="ascii") as file:
        next(file)
        for line in file:
            fields = line.split()
            if fields[1] == local_address and fields[3] == "0A":
                count += 1

    return count


def stop_server(server: Server) -> None:
    """Send SIGTERM to the server's own process, then SIGKILL if it lingers."""
    if server.process.poll() is not None:
        return

    server.process.terminate()
    try:
        server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        print(
            f"{server.name} did not stop within {STOP_TIMEOUT_SECONDS:g} s of "
            "SIGTERM, so it is killed",
            file=sys.stderr,
        )
        server.process.kill()
        server.process.wait()


def log_tail(server: Server, lines: int = 20) -> str:
    text = server.log_path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def read_stat_fields(pid: int) -> list[str]:
    """Return the fields of /proc/PID/stat that follow the command name."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
        stat = file.read()

    # The command name is in brackets and may contain spaces and brackets, so
    # the fields start after the last closing bracket.  Field 3 of proc(5), the
    # state, is the first item here.
    return stat.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time that a running process has used."""
    # proc(5): utime and stime are fields 14 and 15, in clock ticks.
    fields = read_stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


def process_tree(pid: int) -> list[int]:
    """Return `pid` and the ids of all its running descendants, `pid` first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue

        try:
            parent = int(read_stat_fields(int(entry))[1])  # proc(5) field 4, ppid
        except (OSError, IndexError):
            continue  # the process ended while the folder was read

        children.setdefault(parent, []).append(int(entry))

    tree = [pid]
    for member in tree:
        tree.extend(sorted(children.get(member, ())))

    return tree


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """Return the CPU seconds used so far by `pid` and each of its descendants.

    A server such as nginx or `gateway serve --workers N` does its work in
    child processes, whose CPU time /proc/PID/stat of the parent does not
    contain while they run.
    """
    used = {}
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            used[member] = cpu_seconds(member)

    return used


def machine_busy_seconds() -> float:
    """Return the user and system CPU time of all processes since boot.

    Interrupt and softirq time are left out because the benchmark's own
    loopback traffic causes most of them.
    """
    with open("/proc/stat", encoding="ascii") as file:
        fields = file.readline().split()

    # proc(5): the "cpu" line starts with user, nice and system, in clock ticks.
    user, nice, system = (int(value) for value in fields[1:4])
    return (user + nice + system) / CLOCK_TICKS_PER_SECOND


def pin(process: subprocess.Popen, cpus: set[int] | None) -> None:
    """Pin every thread of the process and of its descendants to `cpus`.

    sched_setaffinity(2) sets the CPUs of one thread, and threads and processes
    started later inherit them from the thread that starts them.
    """
    if cpus is None:
        return

    for member in process_tree(process.pid):
        with contextlib.suppress(FileNotFoundError):
            for thread in os.listdir(f"/proc/{member}/task"):
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setaffinity(int(thread), cpus)


def send_once(port: int, spec: dict) -> int:
    """Send one request, in the wire form of bench/run.py, and return its status."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        body = spec["body"].encode() if spec["body"] is not None else None
        connection.request(spec["method"], spec["path"], body, spec["headers"])
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def reset_sample_api(upstream: Server) -> None:
    """Restore the seed data and empty the request record of the sample API."""
    spec = {"method": "POST", "path": "/_sample/reset", "headers": {}, "body": None}
    status = send_once(upstream.port, spec)
    if status != 200:
        raise RuntimeError(f"POST /_sample/reset returned {status}, expected 200")


@contextlib.contextmanager
def resetting_periodically(upstream: Server):
    """Reset the sample API every RESET_INTERVAL_SECONDS while the block runs."""
    stop = threading.Event()
    failures: list[Exception] = []

    def reset_until_stopped() -> None:
        while not stop.wait(RESET_INTERVAL_SECONDS):
            try:
                reset_sample_api(upstream)
            except (OSError, RuntimeError) as error:
                failures.append(error)
                return

    thread = threading.Thread(target=reset_until_stopped, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

    if failures:
        raise RuntimeError(f"resetting the sample API failed: {failures[0]}")
