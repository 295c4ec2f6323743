"""Errors raised inside the gateway.

GatewayError                      a request is refused before or while forwarding
├── BadRequest                    400: malformed or ambiguous request
├── Unauthenticated               401: credentials missing or invalid
├── Forbidden                     403: authenticated, but not allowed
├── NotFound                      404: no route, or an object outside the scope
├── MethodNotAllowed              405: the route exists, the method does not
├── RequestTimeout                408: the request did not arrive in time
├── Conflict                      409: the change contradicts the stored state
├── PayloadTooLarge               413: body over the configured limit
├── UnsupportedMediaType          415: a body the gateway must read but cannot
├── UnprocessableContent          422: a well-formed body with a bad field
├── TooManyRequests               429: a user's open streams at their limit
├── URITooLong                    414: path over the configured limit
├── HeaderFieldsTooLarge          431: a header line or the header count over the limit
├── InternalError                 500: a fault inside the gateway
├── UpstreamError                 502: the upstream refused, reset or sent garbage
├── ServiceUnavailable            503: all stream connections in use
└── UpstreamTimeout               504: the upstream did not respond in time
ConfigError                       a config or policy file is invalid

A GatewayError carries two texts: `detail` goes to the client in the problem
body, `reason` is a stable identifier for logs and metrics.  Neither may hold a
credential.  `extensions` are further members of the problem body.  `close` marks a request whose framing is in doubt, after which
the connection is closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class GatewayError(Exception):
    status = 500
    title = "Internal Server Error"
    reason = "internal_error"

    def __init__(
        self,
        detail: str,
        *,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if reason is not None:
            self.reason = reason
        self.headers = dict(headers or {})
        self.extensions: dict = {}
        # The connection cannot carry another request after this one.
        self.close = close

    @property
    def problem_type(self) -> str:
        return "urn:gateway:problem:" + self.title.lower().replace(" ", "-")


class BadRequest(GatewayError):
    status = 400
    title = "Bad Request"
    reason = "bad_request"


class Unauthenticated(GatewayError):
    status = 401
    title = "Unauthorized"
    reason = "unauthenticated"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        # RFC 6750 section 3: a 401 names the scheme, and the error code only
        # when credentials were presented.
        challenge = 'Bearer realm="gateway"'
        if reason != "credentials_missing":
            challenge += ', error="invalid_token"'
        super().__init__(detail, reason=reason, headers={"WWW-Authenticate": challenge})


class Forbidden(GatewayError):
    status = 403
    title = "Forbidden"
    reason = "policy_denied"


class NotFound(GatewayError):
    status = 404
    title = "Not Found"
    reason = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    title = "Method Not Allowed"
    reason = "method_not_allowed"

    def __init__(self, detail: str, *, allowed: list[str]) -> None:
        super().__init__(detail, headers={"Allow": ", ".join(allowed)})


class RequestTimeout(GatewayError):
    status = 408
    title = "Request Timeout"
    reason = "request_timeout"


class Conflict(GatewayError):
    status = 409
    title = "Conflict"
    reason = "conflict"


class UnprocessableContent(GatewayError):
    status = 422
    title = "Unprocessable Content"
    reason = "invalid_field"

    def __init__(self, detail: str, *, field: str, allowed=None) -> None:
        super().__init__(detail)
        self.extensions["field"] = field
        if allowed is not None:
            self.extensions["allowed"] = list(allowed)


class PayloadTooLarge(GatewayError):
    status = 413
    title = "Payload Too Large"
    reason = "body_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    title = "Unsupported Media Type"
    reason = "body_unsupported"


class TooManyRequests(GatewayError):
    status = 429
    title = "Too Many Requests"
    reason = "too_many_streams"


class ServiceUnavailable(GatewayError):
    status = 503
    title = "Service Unavailable"
    reason = "streams_full"


class URITooLong(GatewayError):
    status = 414
    title = "URI Too Long"
    reason = "path_too_long"


class HeaderFieldsTooLarge(GatewayError):
    status = 431
    title = "Request Header Fields Too Large"
    reason = "headers_too_large"


class InternalError(GatewayError):
    pass


class UpstreamError(GatewayError):
    status = 502
    title = "Bad Gateway"
    reason = "upstream_error"


class UpstreamTimeout(GatewayError):
    status = 504
    title = "Gateway Timeout"
    reason = "upstream_timeout"


class ConfigError(Exception):
    """A config or policy file that cannot be used, located by line or key path."""

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = str(file)
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        location = self.file
        if self.line is not None:
            location += f":{self.line}"
        if self.key:
            location += f": {self.key}"
        return f"{location}: {self.message}"
