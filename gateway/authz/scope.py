"""Confine a request to the subject's own objects when its grant is "own".

Object routes: the object's owners are resolved before anything is forwarded;
an object that is not the subject's gets 404, as if it did not exist.
Collection and report routes: the filter parameter is forced to the subject's
id, whatever the client sent, and the upstream's answer is checked again, so an
upstream that ignores the filter still shows nothing of anyone else's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from gateway.authn.principal import Principal
from gateway.authz.ownership import OwnershipResolver, is_own, owners_of
from gateway.config.model import FilterConfig, RouteConfig
from gateway.errors import BadRequest, Forbidden, NotFound, UpstreamError

log = logging.getLogger("gateway.scope")

# Inspects a whole upstream answer (status, body) and returns the body to send.
BodyCheck = Callable[[int, bytes], bytes]


@dataclass(frozen=True, slots=True)
class ScopedRequest:
    query_string: str
    body_check: BodyCheck | None = None


class FilterTrust:
    """Routes whose upstream was seen ignoring a forced filter.

    Once a response of a route held another user's item, the route's counts
    and page links are never passed on again, for any caller, because they
    describe a collection the caller may not see.
    """

    def __init__(self) -> None:
        self._ignored: set[str] = set()

    def is_ignored(self, route: RouteConfig) -> bool:
        return route.path.text in self._ignored

    def mark_ignored(self, route: RouteConfig) -> None:
        self._ignored.add(route.path.text)


async def apply_scope(
    route: RouteConfig,
    params: dict[str, str],
    principal: Principal,
    query_string: str,
    resolver: OwnershipResolver,
    request_id: str,
    trust: FilterTrust,
) -> ScopedRequest:
    """Confine an "own"-scope request, or raise NotFound / Forbidden."""
    if route.object is not None:
        object_id = params[route.object_parameter]
        owners = await resolver.owners(route.object, object_id, request_id)
        unassigned_visible = route.object.unassigned_value is not None
        if not is_own(owners, principal.user_id, unassigned_visible):
            raise NotFound("The object does not exist or is not yours.",
                           reason="object_not_own")
        return ScopedRequest(query_string)

    if route.filter is not None:
        query = force_filter(query_string, route.filter, principal.user_id)
        check = _body_check(route, principal, request_id, trust)
        return ScopedRequest(query, check)

    # An "own" grant on a route with no way to learn ownership (for example an
    # endpoint addressed by phone number) cannot be honoured safely.
    raise Forbidden("This route cannot be limited to your own objects.",
                    reason="scope_unverifiable")


def force_filter(query_string: str, config: FilterConfig, user_id: str) -> str:
    """Drop every client copy of the filter parameter and add the subject's id."""
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False,
                          errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("The query string is not valid UTF-8.",
                         reason="query_invalid") from None

    kept = [(key, value) for key, value in pairs
            if not _names_filter(key, config.param)]
    kept.append((config.param, user_id))
    if config.unassigned_value is not None:
        kept.append((config.param, config.unassigned_value))
    return urlencode(kept)


def _names_filter(key: str, param: str) -> bool:
    # Upstream frameworks read `assignee[]`, `Assignee ` or `assignee__in` as
    # the same filter; all such spellings are dropped.
    normalized = key.strip().lower().removesuffix("[]")
    param = param.lower()
    return normalized == param or normalized.startswith(param + "__")


def _body_check(route: RouteConfig, principal: Principal, request_id: str,
                trust: FilterTrust):
    config = route.filter
    unassigned_visible = config.unassigned_value is not None

    def check(status: int, body: bytes) -> bytes:
        if not 200 <= status < 300:
            return body
        try:
            document = json.loads(body)
        except ValueError:
            raise UpstreamError("The upstream's response could not be checked.",
                                reason="scope_body_not_json") from None

        if config.check == "object":
            _check_object(document, config, principal, unassigned_visible)
            return body
        return _filter_items(document, route, principal, unassigned_visible,
                             request_id, body, trust)

    return check


def _check_object(document, config, principal, unassigned_visible) -> None:
    try:
        owners = owners_of(document[config.owners_field])
    except (KeyError, TypeError, ValueError):
        raise UpstreamError("The upstream's response has no usable owner field.",
                            reason="scope_bad_owner_field") from None
    if not is_own(owners, principal.user_id, unassigned_visible):
        raise NotFound("The upstream's response is outside your scope.",
                       reason="scope_object_mismatch")


def _filter_items(document, route, principal, unassigned_visible, request_id,
                  body: bytes, trust: FilterTrust) -> bytes:
    config = route.filter
    items = document.get(config.items_field) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise UpstreamError("The upstream's response could not be checked.",
                            reason="scope_items_missing")

    kept = []
    for item in items:
        try:
            owners = owners_of(item[config.owners_field])
        except (KeyError, TypeError, ValueError):
            continue
        if is_own(owners, principal.user_id, unassigned_visible):
            kept.append(item)

    dropped = len(items) - len(kept)
    if dropped:
        log.warning(
            "dropped %d items outside the scope of %s; the upstream ignored "
            "filter %r, so this route's counts and page links are dropped from now on",
            dropped, principal.user_id, config.param,
            extra={"request_id": request_id, "route": route.path.text},
        )
        trust.mark_ignored(route)
    elif not trust.is_ignored(route):
        return body

    # NOTE: an upstream that ignores the filter is only noticed on the first
    # response that holds another user's item.  Until then its count passes.
    document[config.items_field] = kept
    document["count"] = len(kept)
    for link in ("next", "previous"):
        if link in document:
            document[link] = None
    return json.dumps(document).encode()
