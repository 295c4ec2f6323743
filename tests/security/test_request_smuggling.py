"""Request framing that a front proxy and the gateway could read differently.

When two HTTP parsers disagree on where a request ends, the bytes one of them
takes as body the other takes as a second request, which then skips the
checks of the first.  The gateway must reject every framing that is not
plain HTTP/1.1 with 400 and close the connection without reading another
request.  In each rejected case an owner's `DELETE` of contact 1 follows on
the same connection, and it must never get a response, be authorized or be
forwarded.

aiohttp has two request parsers, the C one (llhttp) and a pure-Python one
that `AIOHTTP_NO_EXTENSIONS=1` selects, and each has had faults of its own, so
run this module under both.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.http_parser import HttpRequestParser

from .wire import HOST, assert_problem, build_request, exchange, parse_responses

pytestmark = pytest.mark.asyncio(loop_scope="session")

PYTHON_PARSER = HttpRequestParser.__module__ == "aiohttp.http_parser"
OWNER = "u-owner"
MESSAGES = b"/api/1/chats/1/messages/"
BODY = b'{"text": "hi!!"}'  # 16 bytes, 0x10
CHUNKED = b"Transfer-Encoding: chunked\r\n"


def start(gateway, version: bytes = b"HTTP/1.1") -> bytes:
    """Return the request line and the headers every case shares."""
    return (
        b"POST " + MESSAGES + b" " + version + b"\r\n"
        b"Host: " + HOST.encode() + b"\r\n"
        b"Authorization: Bearer " + gateway.token(OWNER).encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
    )


def smuggled_delete(gateway) -> bytes:
    return build_request("DELETE", "/api/1/contacts/1/",
                         [("Authorization", "Bearer " + gateway.token(OWNER))])


# Each rejected case runs alone, and followed on the same connection by a
# request that must never run.  Alone shows that the framing itself is
# rejected and not the bytes after it.
FOLLOWERS = [pytest.param(False, id="alone"), pytest.param(True, id="then-delete")]


async def assert_rejected_and_closed(gateway, sample_api, request: bytes,
                                     followed: bool) -> None:
    if followed:
        request += smuggled_delete(gateway)
    result = await exchange(gateway.port, request, timeout=3)

    assert len(result.responses) == 1, result.data
    assert_problem(result.first, 400)
    assert result.closed, "the gateway left the connection open"
    assert await sample_api.recorded() == []


# Each row: the header lines after the shared ones, and the bytes after the
# blank line that ends the head.
HEADER_FRAMING = [
    ("bare-cr-hides-transfer-encoding",
     b"X-Pad: \rxTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"),
    ("bare-cr-before-line-end", b"X-Pad: a\r\r\nContent-Length: 16\r\n", BODY),
    ("bare-cr-in-header-name", b"X-P\rad: a\r\nContent-Length: 16\r\n", BODY),
    ("bare-lf-line-end", b"X-Pad: a\nContent-Length: 16\r\n", BODY),
    ("transfer-encoding-with-content-length",
     CHUNKED + b"Content-Length: 5\r\n", b"0\r\n\r\n"),
    ("content-length-with-transfer-encoding",
     b"Content-Length: 5\r\n" + CHUNKED, b"0\r\n\r\n"),
    ("content-length-with-identity-coding",
     b"Content-Length: 16\r\nTransfer-Encoding: identity\r\n", BODY),
    ("duplicate-content-length-equal",
     b"Content-Length: 16\r\nContent-Length: 16\r\n", BODY),
    ("duplicate-content-length-different",
     b"Content-Length: 16\r\nContent-Length: 17\r\n", BODY + b"x"),
    ("content-length-list", b"Content-Length: 16, 16\r\n", BODY),
    ("content-length-empty-repeat", b"Content-Length: 16\r\nContent-Length:\r\n",
     BODY),
    ("content-length-plus-sign", b"Content-Length: +16\r\n", BODY),
    ("content-length-hex", b"Content-Length: 0x10\r\n", BODY),
    ("content-length-arabic-digits", "Content-Length: \u0661\u0666\r\n".encode(),
     BODY),
    ("obs-fold-space", b"X-Folded: a\r\n b\r\nContent-Length: 16\r\n", BODY),
    ("obs-fold-tab", b"X-Folded: a\r\n\tb\r\nContent-Length: 16\r\n", BODY),
    ("transfer-encoding-unknown", b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
    ("transfer-encoding-chunked-not-last",
     b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"),
    ("transfer-encoding-repeated",
     CHUNKED + b"Transfer-Encoding: identity\r\n", b"0\r\n\r\n"),
    ("space-before-colon", b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"),
    ("tab-before-colon", b"Transfer-Encoding\t: chunked\r\n", b"0\r\n\r\n"),
    ("invalid-header-name", b"Content-Encoding?: chunked\r\nContent-Length: 16\r\n",
     BODY),
    ("nul-in-header-value", b"X-Pad: a\x00b\r\nContent-Length: 16\r\n", BODY),
]


@pytest.mark.parametrize(
    ("headers", "rest"),
    [pytest.param(headers, rest, id=case_id) for case_id, headers, rest in
     HEADER_FRAMING],
)
@pytest.mark.parametrize("followed", FOLLOWERS)
async def test_ambiguous_header_framing_rejected(gateway, sample_api, headers,
                                                 rest, followed):
    request = start(gateway) + headers + b"\r\n" + rest
    await assert_rejected_and_closed(gateway, sample_api, request, followed)


# Each row: the chunked body, sent with `Transfer-Encoding: chunked`.
CHUNK_FRAMING = [
    ("lf-in-chunk-extension", b"5;ext=a\nb\r\nhello\r\n0\r\n\r\n"),
    ("bare-cr-in-chunk-extension", b"10;a=b\rc\r\n" + BODY + b"\r\n0\r\n\r\n"),
    ("bare-lf-after-chunk-size", b"10\n" + BODY + b"\r\n0\r\n\r\n"),
    ("space-after-chunk-size", b"10 \r\n" + BODY + b"\r\n0\r\n\r\n"),
    ("hex-prefix-chunk-size", b"0x10\r\n" + BODY + b"\r\n0\r\n\r\n"),
    ("signed-chunk-size", b"+10\r\n" + BODY + b"\r\n0\r\n\r\n"),
    ("chunk-longer-than-size", b"10\r\n" + BODY + b"XX0\r\n\r\n"),
    ("request-line-in-trailers",
     b"5\r\nhello\r\n0\r\nDELETE /api/1/contacts/2/ HTTP/1.1\r\n"
     b"Host: " + HOST.encode() + b"\r\n\r\n"),
    ("trailer-without-colon", b"10\r\n" + BODY + b"\r\n0\r\nno colon here\r\n\r\n"),
    ("bare-cr-in-trailer", b"10\r\n" + BODY + b"\r\n0\r\nX-T: a\rb\r\n\r\n"),
    ("obs-fold-in-trailer", b"10\r\n" + BODY + b"\r\n0\r\nX-T: a\r\n b\r\n\r\n"),
]


@pytest.mark.parametrize(
    "chunks",
    [pytest.param(chunks, id=case_id) for case_id, chunks in CHUNK_FRAMING],
)
@pytest.mark.parametrize("followed", FOLLOWERS)
async def test_malformed_chunked_body_rejected(gateway, sample_api, chunks,
                                               followed):
    request = start(gateway) + CHUNKED + b"\r\n" + chunks
    if PYTHON_PARSER and b"\r" in chunks.partition(b"\r\n")[0]:
        await assert_reframed(gateway, sample_api, request)
        return

    await assert_rejected_and_closed(gateway, sample_api, request, followed)


async def assert_reframed(gateway, sample_api, request: bytes) -> None:
    """Check that a chunk extension with a bare CR never reaches the upstream.

    NOTE: aiohttp 3.14's pure-Python parser accepts a bare CR in a chunk
    extension, which llhttp rejects.  The gateway forwards the body in
    framing of its own, so the upstream never reads the extension; a front
    proxy that splits at the CR would still disagree with the gateway.
    """
    response = (await exchange(gateway.port, request)).first
    recorded = await sample_api.recorded()

    assert response.status == 201
    assert [entry["body"] for entry in recorded] == [BODY.decode()]


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("HTTP/1.\U0001d7d9".encode(), id="mathematical-digit-one"),
        pytest.param(b"HTTP/2.0", id="http-2-on-http-1-framing"),
        pytest.param(b"HTTP/0.9", id="http-0-9"),
        pytest.param("HTTP/1\u00f61".encode(), id="non-ascii-dot"),
        pytest.param(b"HTTP/1.1x", id="trailing-letter"),
        pytest.param(b"HTTP/1.10", id="two-digit-minor"),
        pytest.param(b"http/1.1", id="lowercase-name"),
    ],
)
@pytest.mark.parametrize("followed", FOLLOWERS)
async def test_malformed_http_version_rejected(gateway, sample_api, version,
                                               followed):
    request = start(gateway, version) + b"Content-Length: 16\r\n\r\n" + BODY
    await assert_rejected_and_closed(gateway, sample_api, request, followed)


@pytest.mark.parametrize("followed", FOLLOWERS)
async def test_http10_transfer_encoding_rejected(gateway, sample_api, followed):
    """HTTP/1.0 has no chunked coding, so RFC 9112 section 6.1 calls the framing faulty."""
    request = start(gateway, b"HTTP/1.0") + CHUNKED + b"\r\n10\r\n" + BODY + (
        b"\r\n0\r\n\r\n"
    )
    await assert_rejected_and_closed(gateway, sample_api, request, followed)


async def test_well_formed_trailer_not_forwarded(gateway, sample_api):
    request = start(gateway) + CHUNKED + b"Connection: close\r\n\r\n" + (
        b"10\r\n" + BODY + b"\r\n0\r\nX-T: 1\r\nX-Gateway-User: u-op-1\r\n\r\n"
    )
    response = (await exchange(gateway.port, request)).first
    assert response.status == 201

    recorded = await sample_api.recorded()
    assert len(recorded) == 1, recorded
    assert recorded[0]["body"] == BODY.decode()
    assert "x-t" not in recorded[0]["headers"]
    assert recorded[0]["headers"]["x-gateway-user"] == OWNER


async def test_pipelined_request_authorized_on_its_own(gateway, sample_api):
    """A second request on a connection needs its own credential."""
    first = build_request("GET", "/api/1/chats/1/",
                          [("Authorization", "Bearer " + gateway.token(OWNER))],
                          close=False)
    second = build_request("DELETE", "/api/1/contacts/1/", [])
    result = await exchange(gateway.port, first + second)

    assert [response.status for response in result.responses] == [200, 401]
    assert_problem(result.responses[1], 401)
    recorded = await sample_api.recorded()
    assert [(entry["method"], entry["raw_path"]) for entry in recorded] == [
        ("GET", "/api/1/chats/1/")
    ]


async def test_chunk_size_overflow_never_forwarded(sample_api, gateway_factory):
    """A chunk size beyond 64 bits gets 400, 408 or 413 and never reaches the upstream whole."""
    gateway = await gateway_factory(sample_api.url, {("limits", "body_timeout"): 1})
    request = start(gateway) + CHUNKED + b"\r\n" + (
        b"ffffffffffffffffff10\r\n" + BODY + b"\r\n0\r\n\r\n"
    )
    result = await exchange(gateway.port, request + smuggled_delete(gateway),
                            timeout=4)

    assert len(result.responses) == 1, result.data
    assert result.first.status in (400, 408, 413)
    assert_problem(result.first, result.first.status)
    assert result.closed, "the gateway left the connection open"
    assert await sample_api.recorded() == []


@pytest.mark.parametrize(
    ("method", "path", "first_chunk"),
    [
        pytest.param("POST", "/api/1/chats/1/messages/", b'a\r\n{"text": "\r\n',
                     id="streamed-body"),
        pytest.param("PATCH", "/api/1/chats/1/", b'e\r\n{"assignee": "\r\n',
                     id="guarded-body-read-whole"),
    ],
)
async def test_malformed_chunk_mid_body_gets_400(gateway, sample_api, method, path,
                                                 first_chunk):
    """A chunk that breaks the framing after the gateway began reading is a client error."""
    head = build_request(method, path, [
        ("Authorization", "Bearer " + gateway.token(OWNER)),
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
    ], close=False)
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(head + first_chunk)
        await asyncio.sleep(0.2)  # lets the gateway start on the body
        writer.write(b"2\r\nabXX0\r\n\r\n")
        async with asyncio.timeout(5):
            data = await reader.read()
    finally:
        writer.close()

    responses = parse_responses(data)
    assert len(responses) == 1, data
    assert_problem(responses[0], 400)
    assert await sample_api.recorded() == []
