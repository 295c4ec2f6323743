"""Refusals as HTML pages, for links that a person opens in a browser or a frame."""

from __future__ import annotations

import html

from aiohttp import web

from gateway.api.call import SECURITY_HEADERS, Call
from gateway.errors import GatewayError

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{heading}</h1><p>{detail}</p></body></html>
"""


def refusal_page(call: Call, error: GatewayError, heading: str, *,
                 frame_ancestors: str | None = None) -> web.Response:
    """Render `error` as a page; `frame_ancestors` is the one origin that may frame it."""
    call.record.reason = error.reason
    body = _PAGE.format(title=html.escape(error.title), heading=html.escape(heading),
                        detail=html.escape(error.detail))
    headers = dict(SECURITY_HEADERS)
    if frame_ancestors is not None:
        del headers["X-Frame-Options"]
    ancestors = frame_ancestors or "'none'"
    headers["Content-Security-Policy"] = f"default-src 'none'; frame-ancestors {ancestors}"
    return web.Response(status=error.status, text=body, content_type="text/html",
                        headers=headers)
