"""Page-number pagination in the ``{"count", "next", "previous", "results"}`` shape."""

import math
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from .errors import not_found

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


def parse_positive_int(raw: str) -> int | None:
    # isdigit() alone would accept digits such as "²" that int() rejects.
    if not (raw.isascii() and raw.isdigit()):
        return None

    try:
        value = int(raw)
    except ValueError:  # more digits than int() converts by default
        return None

    return value if value >= 1 else None


def parse_page_size(request: web.Request) -> int:
    """Return ``page_size`` from the query, capped at the maximum.

    A missing, non-numeric or non-positive value falls back to the default rather
    than failing, as Django REST framework's PageNumberPagination does.
    """
    page_size = parse_positive_int(request.query.get("page_size", ""))
    if page_size is None:
        return DEFAULT_PAGE_SIZE

    return min(page_size, MAX_PAGE_SIZE)


def parse_page(request: web.Request, page_count: int) -> int:
    """Return the requested page number, or raise 404 when no such page exists.

    Page 1 always exists, even for an empty result, so an empty list is not an error.
    """
    page = parse_positive_int(request.query.get("page", "1"))
    if page is None or page > max(page_count, 1):
        raise not_found("Invalid page.")

    return page


def page_url(request: web.Request, page: int) -> str:
    """Build the absolute URL of another page of this request.

    Path and every other query parameter come from the request itself, and only
    ``page`` changes. Scheme and host come from ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` when the gateway sets them, so the links point at the
    gateway, and from the request otherwise.
    """
    relative = request.rel_url.update_query(page=page)
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    host = request.headers.get("X-Forwarded-Host", request.host)

    return f"{scheme}://{host}{relative}"


def paginate(request: web.Request, items: Sequence[Any]) -> web.Response:
    """Return one page of ``items`` with links to the neighbouring pages."""
    page_size = parse_page_size(request)
    page_count = math.ceil(len(items) / page_size)
    page = parse_page(request, page_count)
    start = (page - 1) * page_size

    body = {
        "count": len(items),
        "next": page_url(request, page + 1) if page < page_count else None,
        "previous": page_url(request, page - 1) if page > 1 else None,
        "results": list(items[start : start + page_size]),
    }

    return web.json_response(body)
