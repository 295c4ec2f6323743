"""`python -m sample_api` as a process: its banner and a port already in use."""

from __future__ import annotations

import socket
import subprocess
import sys

from .test_processes import REPOSITORY, free_port, stop


def test_banner_printed_once_listening():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sample_api", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    try:
        banner = process.stdout.readline()

        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        stop(process)

    assert banner == f"sample chat API on http://127.0.0.1:{port}\n"


def test_busy_port_fails_with_one_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        result = subprocess.run(
            [sys.executable, "-m", "sample_api", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPOSITORY,
        )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: cannot listen on 127.0.0.1:{port}: address already in use\n"
    )
