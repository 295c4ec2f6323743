"""Record of the requests the API received, for tests to inspect.

Every request is recorded before its handler runs, so requests that fail with
400, 404, 405 or a timeout on the client side are recorded too. The test hooks
under ``/_sample/`` are not, except ``/_sample/slow/`` and ``/_sample/echo/``,
which stand in for product endpoints in the gateway's tests.
"""

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDictProxy

TEST_HOOK_ROOT = "/_sample"
RECORDED_TEST_HOOK_PREFIXES = ("/_sample/slow/", "/_sample/echo/")


class RequestRecorder:
    """Requests received since the last ``clear``, oldest first.

    NOTE: the record grows without bound until it is cleared, which suits test
    runs and short demos but not a long-lived process under load.
    """

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)

    def clear(self) -> None:
        self.entries.clear()


RECORDER_KEY = web.AppKey("recorder", RequestRecorder)


def is_recorded(path: str) -> bool:
    if path.startswith(RECORDED_TEST_HOOK_PREFIXES):
        return True

    return path != TEST_HOOK_ROOT and not path.startswith(TEST_HOOK_ROOT + "/")


def collect_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Map lowercased header names to their values, joining repeats with ", "."""
    collected: dict[str, list[str]] = {}
    for name, value in headers.items():
        collected.setdefault(name.lower(), []).append(value)

    return {name: ", ".join(values) for name, values in collected.items()}


def describe_request(request: web.Request, body: bytes | None) -> dict[str, Any]:
    """Return the JSON description of a request used by the record and the echo.

    ``query_string`` is decoded as aiohttp decodes it, and ``query`` maps each
    parameter name to all its values in order. ``body`` is the body decoded as
    UTF-8, with undecodable bytes replaced by U+FFFD, or null when it is empty.
    """
    query = {name: request.query.getall(name) for name in request.query}
    text = body.decode("utf-8", errors="replace") if body else None

    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query_string": request.query_string,
        "query": query,
        "headers": collect_headers(request.headers),
        "body": text,
    }


@web.middleware
async def recording_middleware(
    request: web.Request,
    handler: Handler,
) -> web.StreamResponse:
    """Record the request, then pass it on.

    aiohttp caches the body that ``read`` returns, so the handler can read it again.
    A body over the app's ``client_max_size`` is recorded as null and answered
    with 413 here, since a second read would return only the unread rest of it.
    """
    if not is_recorded(request.path):
        return await handler(request)

    recorder = request.app[RECORDER_KEY]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        recorder.record(describe_request(request, None))
        raise

    recorder.record(describe_request(request, body))

    return await handler(request)
