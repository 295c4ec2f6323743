"""Request bodies of the gateway's API: small JSON objects checked by the document."""

from __future__ import annotations

import orjson

from gateway.api.call import Call
from gateway.api.document import ApiDocument
from gateway.authz.fields import parse_json_object, read_body
from gateway.errors import BadRequest
from gateway.forward.body import check_body_headers

MAX_BODY_BYTES = 64 * 1024
_JSON = frozenset({"application/json"})


async def json_body(call: Call, document: ApiDocument, schema: str) -> dict:
    """Return the request's JSON object, valid for `schema`, or raise 400, 413, 415 or 422."""
    request = call.request
    if not request.body_exists:
        raise BadRequest("This endpoint needs a JSON object in the request body.",
                         reason="body_missing")

    check_body_headers(request.headers, _JSON)
    body = await read_body(request, call.snapshot.config.limits, MAX_BODY_BYTES)
    document_value = parse_json_object(body)
    # Responses and audit rows are written with orjson, which takes neither.
    try:
        orjson.dumps(document_value)
    except orjson.JSONEncodeError:
        raise BadRequest("The request body contains a string that is not valid "
                         "Unicode, such as a lone surrogate escape, or an integer "
                         "outside the 64-bit range.",
                         reason="body_unencodable") from None
    await _recheck(call)
    return document.check(schema, document_value)


async def _recheck(call: Call) -> None:
    # The body may have taken up to limits.body_timeout to arrive; the caller
    # may have been deactivated, demoted or had its key revoked meanwhile.
    if call.recheck is not None:
        await call.recheck()


async def no_body(call: Call) -> None:
    """Refuse a body other than an empty one or `{}` on an endpoint that takes none."""
    request = call.request
    if not request.body_exists:
        return

    body = await read_body(request, call.snapshot.config.limits, MAX_BODY_BYTES)
    if body.strip() not in (b"", b"{}"):
        raise BadRequest("This endpoint takes no request body.", reason="body_unexpected")
    await _recheck(call)
