"""A bare pass-through reverse proxy: the baseline the gateway is measured against.

It does what any aiohttp reverse proxy must do and nothing the gateway adds:
no authentication, no policy, no header rewriting beyond dropping hop-by-hop
headers.  Like the gateway, it runs on aiohttp's low-level `web.Server`, sends
every request over one pooled keep-alive `ClientSession`, streams request
bodies, and reads small responses whole so they go out in one write.  Like
`gateway serve`, it runs its event loop on uvloop when uvloop is installed.

Run: ``python bench/passthrough.py --upstream http://127.0.0.1:8081 --port 8090``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

log = logging.getLogger("bench.passthrough")

# Headers that apply to one connection only, so a proxy must not forward them.
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)
# Host is set by the client session to the upstream's address.
_DROPPED_REQUEST_HEADERS = HOP_BY_HOP | {"host"}
# The same cut-off as the gateway's forwarder, so both send small responses alike.
WHOLE_BODY_MAX = 256 * 1024
CHUNK_SIZE = 64 * 1024
# Upstream errors are logged one by one up to this count, then every LOG_EVERY_NTH.
_LOGGED_ERRORS_MAX = 10
LOG_EVERY_NTH = 1000


def end_to_end_headers(headers: CIMultiDictProxy[str], dropped) -> CIMultiDict[str]:
    """Copy `headers` without hop-by-hop ones and those named in `Connection`."""
    named_in_connection = set()
    for value in headers.getall("Connection", []):
        named_in_connection.update(token.strip().lower() for token in value.split(","))

    copied: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered not in dropped and lowered not in named_in_connection:
            copied.add(name, value)

    return copied


class PassThroughProxy:
    def __init__(self, session: aiohttp.ClientSession, upstream: str) -> None:
        self._session = session
        self._origin = upstream.rstrip("/")
        self._error_count = 0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        url = URL(self._origin + request.raw_path, encoded=True)
        headers = end_to_end_headers(request.headers, _DROPPED_REQUEST_HEADERS)
        body = request.content if request.body_exists else None

        try:
            async with self._session.request(
                request.method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            ) as upstream:
                return await self._relay(request, upstream)
        except asyncio.TimeoutError:
            self._log_error(request, "timed out")
            return web.Response(status=504, text="upstream timed out\n")
        except aiohttp.ClientError as error:
            self._log_error(request, f"failed: {error!r}")
            return web.Response(status=502, text="upstream request failed\n")

    async def _relay(self, request, upstream: aiohttp.ClientResponse):
        headers = end_to_end_headers(upstream.headers, HOP_BY_HOP)
        length = upstream.content_length

        if request.method == "HEAD" or upstream.status in (204, 304):
            return web.Response(status=upstream.status, headers=headers)

        if length is not None and length <= WHOLE_BODY_MAX:
            body = await upstream.read()
            headers.popall("Content-Length", None)
            return web.Response(status=upstream.status, body=body, headers=headers)

        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_chunked(CHUNK_SIZE):
                await response.write(chunk)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            self._log_error(request, f"failed mid-stream: {error!r}")
            raise StreamInterrupted() from error
        await response.write_eof()

        return response

    def _log_error(self, request: web.BaseRequest, failure: str) -> None:
        self._error_count += 1
        count = self._error_count
        if count <= _LOGGED_ERRORS_MAX or count % LOG_EVERY_NTH == 0:
            log.warning(
                "upstream request %s %s %s (%d errors so far)",
                request.method,
                request.raw_path,
                failure,
                count,
            )


class StreamInterrupted(Exception):
    """The upstream failed after part of its response was sent.

    It is raised past the handler on purpose: aiohttp then closes the client
    connection, so the client cannot take the cut body for a whole one.
    """


def new_client_session(max_connections: int) -> aiohttp.ClientSession:
    # The same session settings as the gateway's, so the baseline pays the same
    # client costs: no cookies, no environment proxies, bodies left compressed.
    connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=30, sock_connect=2),
    )


async def serve(upstream: str, host: str, port: int, max_connections: int) -> None:
    session = new_client_session(max_connections)
    proxy = PassThroughProxy(session, upstream)
    runner = web.ServerRunner(web.Server(proxy.handle, access_log=None))
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    log.info("pass-through proxy on http://%s:%d, upstream %s", host, port, upstream)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    try:
        await stop.wait()
    finally:
        log.info("pass-through proxy stopping")
        await runner.cleanup()
        await session.close()


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upstream",
        required=True,
        help="origin to forward to, for example http://127.0.0.1:8081",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=100,
        help="pooled upstream connections (default: 100, as in config.yaml)",
    )
    return parser.parse_args(argv)


def use_uvloop_when_installed() -> None:
    """Pick the event loop by the rule of `gateway serve`, so both pay the same."""
    try:
        import uvloop
    except ImportError:
        log.info("event loop: asyncio's, because uvloop is not installed")
        return

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    log.info("event loop: uvloop %s", uvloop.__version__)


def main(argv: list[str] | None = None) -> None:
    options = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    use_uvloop_when_installed()
    asyncio.run(
        serve(options.upstream, options.host, options.port, options.max_connections)
    )


if __name__ == "__main__":
    main()
