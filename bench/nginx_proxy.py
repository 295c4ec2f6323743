"""nginx as a reference reverse proxy: its config and its command line.

The config is a plain `proxy_pass` to the sample API over pooled keep-alive
connections, with one worker process, so it compares with one gateway process.
nginx runs in the foreground (`daemon off`) with its prefix, pid file, logs and
temporary folders in a folder of the benchmark, and stops on SIGTERM.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
NGINX_PATHS = (
    "/usr/sbin/nginx",
    "/usr/local/sbin/nginx",
    "/usr/local/nginx/sbin/nginx",
)
# Idle upstream connections each worker keeps open.  The load generator keeps
# 32 requests in flight, and the aiohttp proxies pool up to 100 connections.
UPSTREAM_KEEPALIVE = 64
# nginx closes a keep-alive connection after a number of requests: by default
# 1,000 on client connections since 1.19.10 (its changelog), and the upstream
# keepalive module has a limit of its own.  The aiohttp proxies and the sample
# API have no such limit, so it is lifted to keep reconnects out of the
# comparison.
KEEPALIVE_REQUESTS = 1_000_000

CONFIG_TEMPLATE = """\
daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests {keepalive_requests};

    upstream sample_api {{
        server {upstream_host}:{upstream_port};
        keepalive {upstream_keepalive};
        keepalive_requests {keepalive_requests};
    }}

    server {{
        listen {host}:{port};

        location / {{
            proxy_pass http://sample_api;
            # HTTP/1.1 without "Connection: close" lets the upstream connections
            # stay open for the next request.
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host {upstream_host}:{upstream_port};
            # Bodies stay in memory, as in the aiohttp proxies.  The worker
            # runs as "nobody" when nginx starts as root, and may not be
            # allowed to write in the benchmark's folder.
            client_body_buffer_size 256k;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    """Return the path of the nginx binary, or None when it is not installed."""
    on_path = shutil.which("nginx")
    if on_path is not None:
        return on_path

    for candidate in NGINX_PATHS:
        if Path(candidate).is_file():
            return candidate

    return None


def nginx_version(binary: str) -> str:
    """Return the output of `nginx -v`, such as "nginx/1.22.1"."""
    completed = subprocess.run(
        [binary, "-v"], capture_output=True, text=True, check=False
    )
    # nginx prints "nginx version: nginx/1.22.1" on stderr.
    return completed.stderr.strip().removeprefix("nginx version: ")


def write_nginx_config(
    prefix: Path,
    host: str,
    port: int,
    upstream_host: str,
    upstream_port: int,
    workers: int = 1,
) -> Path:
    """Write the config into `prefix`, created if missing, and return its path."""
    prefix.mkdir(parents=True, exist_ok=True)
    config_path = prefix / "nginx.conf"
    config_path.write_text(
        CONFIG_TEMPLATE.format(
            workers=workers,
            prefix=prefix,
            host=host,
            port=port,
            upstream_host=upstream_host,
            upstream_port=upstream_port,
            upstream_keepalive=UPSTREAM_KEEPALIVE,
            keepalive_requests=KEEPALIVE_REQUESTS,
        )
    )
    return config_path


def nginx_command(binary: str, prefix: Path, config_path: Path) -> list[str]:
    # -e: the error log before the config is read, which would otherwise be
    # the compiled-in path under /var/log.
    return [binary, "-p", str(prefix), "-c", str(config_path), "-e", "stderr"]
