"""Process trees, listening sockets and the nginx config of the benchmark."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from nginx_proxy import write_nginx_config
from servers import LOOPBACK, listening_sockets, pin, process_tree, tree_cpu_seconds

# A parent that starts one child and waits for it, so both are alive.
PARENT_WITH_CHILD = (
    "import subprocess, sys; "
    "subprocess.run([sys.executable, '-c', 'import time; time.sleep(30)'])"
)


@pytest.fixture
def parent_with_child():
    parent = subprocess.Popen([sys.executable, "-c", PARENT_WITH_CHILD])
    try:
        for _ in range(100):
            if len(process_tree(parent.pid)) == 2:
                break
            time.sleep(0.05)
        yield parent
    finally:
        for pid in reversed(process_tree(parent.pid)):
            os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_process_tree_lists_child(parent_with_child):
    tree = process_tree(parent_with_child.pid)

    assert tree[0] == parent_with_child.pid
    assert len(tree) == 2


def test_tree_cpu_seconds_has_every_process(parent_with_child):
    used = tree_cpu_seconds(parent_with_child.pid)

    assert list(used) == process_tree(parent_with_child.pid)
    assert all(seconds >= 0 for seconds in used.values())


def test_pin_reaches_child(parent_with_child):
    cpus = {sorted(os.sched_getaffinity(0))[0]}

    pin(parent_with_child, cpus)

    for pid in process_tree(parent_with_child.pid):
        assert os.sched_getaffinity(pid) == cpus


def test_listening_sockets_counts_reuse_port_listeners():
    first = socket.socket()
    second = socket.socket()
    try:
        for listener in (first, second):
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        first.bind((LOOPBACK, 0))
        port = first.getsockname()[1]
        second.bind((LOOPBACK, port))
        first.listen()
        assert listening_sockets(port) == 1

        second.listen()
        assert listening_sockets(port) == 2
    finally:
        first.close()
        second.close()


def test_nginx_config_proxies_with_keepalive(tmp_path):
    config = write_nginx_config(tmp_path / "nginx", LOOPBACK, 8090, LOOPBACK, 8081)
    text = config.read_text()

    assert "daemon off;" in text
    assert "worker_processes 1;" in text
    assert "listen 127.0.0.1:8090;" in text
    assert "server 127.0.0.1:8081;" in text
    assert "keepalive 64;" in text
    assert "proxy_http_version 1.1;" in text
    assert f"pid {tmp_path / 'nginx'}/nginx.pid;" in text
