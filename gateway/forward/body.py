"""The client's request body, read within a size limit and one deadline.

The deadline covers the whole body, not each read, so a client that trickles
one byte at a time cannot hold a connection open past it.  A body that breaks
a rule records why in `failure`: aiohttp's client wraps errors raised while it
sends a body, so the forwarder reads the cause from here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import ClientError, StreamReader
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from multidict import CIMultiDictProxy

from gateway.errors import (
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)


def check_body_headers(
    headers: CIMultiDictProxy[str], allowed_media_types: frozenset[str]
) -> None:
    """Reject a body of a media type the route does not take, or a compressed one.

    The gateway never inflates a request body, so it forwards only bodies it
    could read itself; a JSON API's clients do not need compressed uploads.
    """
    for name in ("Content-Type", "Content-Encoding"):
        if len(headers.getall(name, ())) > 1:
            raise BadRequest(f"The request repeats the {name} header.",
                             reason="body_headers_repeated")

    encoding = headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMediaType("Compressed request bodies are not accepted.",
                                   reason="body_encoded")

    media_type, _, parameters = headers.get("Content-Type", "").partition(";")
    media_type = media_type.strip(" \t").lower()
    if media_type not in allowed_media_types:
        raise UnsupportedMediaType(
            f"Request bodies on this route must be "
            f"{' or '.join(sorted(allowed_media_types))}, not "
            f"{media_type or 'without a Content-Type'}.",
            reason="body_media_type",
        )

    # The gateway reads bodies as UTF-8; an upstream that honours another
    # charset (UTF-7 turns "+AG8-" into "o") would read other field names.
    charset = _media_type_parameters(parameters).get("charset")
    if charset is not None and charset.lower() != "utf-8":
        raise UnsupportedMediaType(
            f"Request bodies must be UTF-8, not {charset!r}.", reason="body_charset"
        )


# RFC 9110 section 5.6.2: a token is one or more of these characters.  "*" is
# one of them, but a name ending in "*" is an RFC 2231 extended parameter
# (charset*=utf-8''utf-7), which parsers such as aiohttp's read as "charset".
_NAME = r"[A-Za-z0-9!#$%&'+.^_`|~-]+"
# A quoted value without "?": aiohttp 3.14 decodes RFC 2047 encoded words
# ("=?utf-8?q?=3Bcharset=3Dutf-7?=") inside quoted values, and the decoded
# text can add a parameter.  No quote, backslash or ";" either.
_QUOTED = r'"[A-Za-z0-9!#$%&\'*+.^_`|~()/:,= -]*"'
_PARAMETER = re.compile(
    rf"[ \t]*({_NAME})[ \t]*=[ \t]*({_NAME}|{_QUOTED})[ \t]*\Z", re.ASCII
)


def _media_type_parameters(parameters: str) -> dict[str, str]:
    """Return the Content-Type parameters by lower-case name, or raise 415.

    Only `name=token` and `name="plain text"` are taken, each name once.  An
    upstream could read any other spelling (comments, extended parameters,
    escapes, a repeated name) as a charset that the gateway did not check.
    """
    found: dict[str, str] = {}
    for parameter in parameters.split(";"):
        if not parameter.strip(" \t"):
            continue
        match = _PARAMETER.match(parameter)
        if match is None:
            raise UnsupportedMediaType(
                f"The Content-Type parameter {parameter.strip()!r} is not a plain "
                f"name=value pair.",
                reason="body_media_type",
            )
        name = match[1].lower()
        if name in found:
            raise UnsupportedMediaType(
                f"The Content-Type header repeats the parameter {name!r}.",
                reason="body_media_type",
            )
        found[name] = match[2].strip('"')

    return found


class RequestBody:
    """A request body to forward, read as it arrives.

    `on_late_end`, when given, runs once the body has arrived whole and before
    its last bytes are handed on.  The pipeline gives it for a body that had
    not arrived whole when the decision began.  It decides the request again
    and raises a GatewayError to refuse it, so a change made while a slow
    body arrived (a revoked key, a reassigned chat) applies before the
    upstream has a whole request to act on.
    """

    def __init__(self, stream: StreamReader, *, max_bytes: int, timeout: float,
                 on_late_end: Callable[[], Awaitable[None]] | None = None) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._on_late_end = on_late_end
        self.failure: GatewayError | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        deadline = asyncio.get_running_loop().time() + self._timeout
        received = 0
        pending = b""  # the newest chunk, sent on once the next one or the end arrives
        while True:
            chunk = await self._read_chunk(deadline)
            if not chunk:
                await self._late_end()
                if pending:
                    yield pending
                return

            received += len(chunk)
            if received > self._max_bytes:
                raise self._too_large()
            if pending:
                yield pending
            pending = chunk

    async def read(self) -> bytes:
        """Return the whole body, or raise the GatewayError that stopped it."""
        stream = self._stream
        if stream.is_eof() and stream.exception() is None:
            # All of it has arrived, usually with the request head.
            body = stream.read_nowait(-1)
            if len(body) > self._max_bytes:
                raise self._too_large()
            if self._on_late_end is not None:
                await self._late_end()
            return body
        return b"".join([chunk async for chunk in self])

    async def _late_end(self) -> None:
        if self._on_late_end is None:
            return
        try:
            await self._on_late_end()
        except GatewayError as error:
            raise self._fail(error) from None

    async def _read_chunk(self, deadline: float) -> bytes:
        try:
            async with asyncio.timeout_at(deadline):
                return await self._stream.readany()
        except TimeoutError:
            raise self._fail(RequestTimeout(
                f"The request body did not arrive within {self._timeout:g} seconds."
            )) from None
        except (HttpProcessingError, RequestPayloadError, ClientError,
                ConnectionError) as error:
            raise self._fail(BadRequest(
                "The request body is malformed or ended early.",
                reason="body_malformed",
            )) from error

    def _too_large(self) -> GatewayError:
        return self._fail(PayloadTooLarge(
            f"The request body is larger than {self._max_bytes} bytes."
        ))

    def _fail(self, error: GatewayError) -> GatewayError:
        self.failure = error
        return error
