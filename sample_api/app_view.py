"""The chat view: a plain-JS page and its two assets under ``/app/``.

- ``GET /app/`` serves ``static/index.html``.
- ``GET /app/{file}`` serves ``app.js`` and ``app.css`` and returns 404 for
  every other name, ``index.html`` included.

The page calls the chat API with relative URLs, so opened through the gateway
it shows what the gateway lets its session see.
"""

from functools import cache
from importlib import resources

from aiohttp import web

from .errors import not_found

# Only these files are served. The requested name is looked up here and never
# joined onto a filesystem path.
ASSET_TYPES = {
    "app.js": "text/javascript",
    "app.css": "text/css",
}
PAGE_FILE = "index.html"

# The page loads only its own files and calls only its own origin. Trusted Types
# make Chromium reject any string assigned to innerHTML and similar sinks.
# frame-ancestors is left out because partner sites embed the view in an iframe,
# and the partner origins allowed to do that are configured in the gateway.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'; "
    "require-trusted-types-for 'script'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

routes = web.RouteTableDef()


@cache
def read_static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def file_response(name: str, content_type: str) -> web.Response:
    return web.Response(
        body=read_static(name),
        content_type=content_type,
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


@routes.get("/app/")
async def view_page(request: web.Request) -> web.Response:
    return file_response(PAGE_FILE, "text/html")


@routes.get("/app/{file}")
async def view_asset(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    content_type = ASSET_TYPES.get(name)
    if content_type is None:
        raise not_found()

    return file_response(name, content_type)
