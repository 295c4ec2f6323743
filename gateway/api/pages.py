"""The users page and its two assets, served from the package."""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

from gateway.api.call import SECURITY_HEADERS, Call
from gateway.api.document import ApiDocument
from gateway.errors import NotFound

# Only these files are served; a name is never joined onto a path.
_FILES = {
    "users.html": "text/html",
    "users.js": "text/javascript",
    "users.css": "text/css",
}
_PAGE_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@cache
def _read(name: str) -> bytes:
    return resources.files("gateway.api").joinpath("static", name).read_bytes()


def _file_response(name: str) -> web.Response:
    if name not in _FILES:
        raise NotFound(f"No file {name!r} here.", reason="static_not_found")

    response = web.Response(body=_read(name), content_type=_FILES[name],
                            charset="utf-8", headers=SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = _PAGE_POLICY
    return response


async def users_page(call: Call, document: ApiDocument) -> web.Response:
    call.query()
    return _file_response("users.html")


async def static_file(call: Call, document: ApiDocument) -> web.Response:
    call.query()
    return _file_response(call.params["file"])


async def openapi_document(call: Call, document: ApiDocument) -> web.Response:
    call.query()
    return web.Response(body=document.json, content_type="application/json",
                        headers=SECURITY_HEADERS)
