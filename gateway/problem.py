"""RFC 9457 problem responses for refused requests."""

from __future__ import annotations

import json

from aiohttp import web

from gateway.errors import GatewayError
from gateway.forward.headers import SERVER_NAME


def problem_response(error: GatewayError, request_id: str) -> web.Response:
    body = {
        "type": error.problem_type,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "request_id": request_id,
        **error.extensions,
    }
    response = web.Response(
        status=error.status,
        body=json.dumps(body).encode(),
        content_type="application/problem+json",
    )
    response.headers.update(error.headers)
    response.headers["Server"] = SERVER_NAME
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["X-Frame-Options"] = "DENY"
    return response
