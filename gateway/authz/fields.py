"""Guarded body fields: writes that change more than their route's action names.

A contact update that sets `operators` hands the contact to other operators,
which is the `add_operator` action, not `update`.  A route lists such fields
with the action each one needs; the body is read (within the body limit) and
every guarded field it sets must be granted to the role as well.
"""

from __future__ import annotations

import json

from aiohttp import web

from gateway.authz.policy import Grant, Policy
from gateway.config.model import LimitsConfig, RouteConfig
from gateway.forward.body import RequestBody
from gateway.errors import BadRequest, Forbidden, PayloadTooLarge


def authorize_fields(
    policy: Policy, role: str, route: RouteConfig, fields: frozenset[str]
) -> list[Grant]:
    """Return the grants for the guarded fields the body sets, or raise Forbidden."""
    grants = []
    for field, action in route.guarded_fields:
        if field not in fields:
            continue
        grant = policy.authorize(role, route.resource, action)
        if grant is None:
            raise Forbidden(
                f"Role {role!r} may not set {field!r} on {route.resource}: "
                f"that needs the {action!r} permission.",
                reason="field_denied",
            )
        grants.append(grant)

    return grants


async def read_body(request: web.BaseRequest, limits: LimitsConfig,
                    max_bytes: int) -> bytes:
    """Read the whole request body within the size limit and the body deadline."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")

    body = RequestBody(request.content, max_bytes=max_bytes,
                       timeout=limits.body_timeout)
    return await body.read()


def fields_set(body: bytes) -> frozenset[str]:
    """Return the top-level keys of a JSON object body, or raise BadRequest.

    A body the gateway cannot read the way the upstream will is rejected:
    non-JSON, and objects that repeat a key (parsers disagree on which copy
    wins).  Compressed bodies never get here (`check_body_headers`).
    """
    if not body.strip():
        return frozenset()

    return frozenset(parse_json_object(body))


def parse_json_object(body: bytes) -> dict:
    """Parse a JSON object that repeats no key, or raise BadRequest."""
    try:
        document = json.loads(body, object_pairs_hook=_reject_repeated_keys,
                               parse_constant=_reject_constant)
    except _RepeatedKey as error:
        raise BadRequest(f"The request body repeats the key {error.key!r}.",
                         reason="body_repeated_key") from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.",
                         reason="body_invalid_json") from None
    except RecursionError:
        raise BadRequest("The request body nests too deeply.",
                         reason="body_too_deep") from None
    if not isinstance(document, dict):
        raise BadRequest("The request body must be a JSON object.",
                         reason="body_not_object")

    return document


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"repeated key {key!r}")
        self.key = key


def _reject_constant(name: str) -> None:
    # NaN, Infinity and -Infinity are not JSON (RFC 8259), though Python's
    # json reads them, and every comparison with NaN is false, so a NaN
    # would pass any minimum or maximum that a schema sets.
    raise ValueError(f"{name} is not a JSON value")


def _reject_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
    document = {}
    for key, value in pairs:
        if key in document:
            raise _RepeatedKey(key)
        document[key] = value

    return document
