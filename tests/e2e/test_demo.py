"""`gateway demo` as a process: what it prints, with and without `--once`.

The demo runs on a copy of the shipped config in a temporary folder, so its
store and logs stay there, and on free ports rather than `listen.port`.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

from gateway.config.derive import derive_config

from .test_processes import REPOSITORY, SOURCE_CONFIG, free_port, request, run_cli

STOP_TIMEOUT = 15.0  # seconds for the demo to stop both processes after SIGTERM


def copy_config(tmp_path):
    return derive_config(SOURCE_CONFIG, tmp_path / "config.yaml", {})


def test_once_omits_curl_lines(tmp_path):
    config = copy_config(tmp_path)

    result = run_cli("demo", "-c", str(config), "--once", "--port", str(free_port()))

    assert result.returncode == 0, result.stderr
    assert "curl -s" not in result.stdout
    assert "Try it yourself" not in result.stdout
    assert "Run the demo without --once" in result.stdout
    assert "/api/1/templates/" in result.stdout


def test_running_demo_prints_addresses(tmp_path):
    config = copy_config(tmp_path)
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "-c", str(config),
         "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    try:
        output = _read_until(demo, "Press Ctrl-C")
        sample_port = _port_after(output, "sample API")
        admin_port = _port_after(output, "admin")
        sample_reply = request(sample_port, "GET", "/_sample/requests")
        admin_reply = request(admin_port, "GET", "/healthz")
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=STOP_TIMEOUT)

    assert "curl -s -H" in output
    assert sample_reply.status == 200
    assert admin_reply.status == 200


def _read_until(demo: subprocess.Popen, marker: str) -> str:
    lines = []
    for line in demo.stdout:
        lines.append(line)
        if marker in line:
            return "".join(lines)

    raise AssertionError(f"demo exited before {marker!r}:\n{''.join(lines)}"
                         f"{demo.stderr.read()}")


def _port_after(output: str, name: str) -> int:
    match = re.search(rf"^  {name} +http://127\.0\.0\.1:(\d+)", output, re.MULTILINE)
    assert match is not None, output
    return int(match.group(1))
