"""JSON error responses in the ``{"detail": "..."}`` shape of the real API."""

import json

from aiohttp import web
from aiohttp.typedefs import Handler

NOT_FOUND = "Not found."


def error_body(detail: str) -> str:
    return json.dumps({"detail": detail})


def not_found(detail: str = NOT_FOUND) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=error_body(detail), content_type="application/json")


def bad_request(detail: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=error_body(detail), content_type="application/json")


def default_detail(request: web.Request, error: web.HTTPException) -> str:
    if error.status == 404:
        return NOT_FOUND

    if error.status == 405:
        return f'Method "{request.method}" not allowed.'

    return f"{error.reason}."


@web.middleware
async def json_error_middleware(
    request: web.Request,
    handler: Handler,
) -> web.StreamResponse:
    """Convert aiohttp's plain-text errors, such as an unknown route, to JSON bodies.

    Errors that the handlers raise with a JSON body pass through unchanged.
    """
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or error.content_type == "application/json":
            raise

        error.text = error_body(default_detail(request, error))
        error.content_type = "application/json"
        raise
