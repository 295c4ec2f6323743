"""Generated requests against two invariants of the gateway.

Hypothesis builds request targets from the pieces that path-confusion faults
are made of and mixes them into real routes.  The pieces are dot segments,
slashes and backslashes (raw and percent-encoded), `;`, `#`, `?`, control
characters, non-ASCII text and malformed escapes.  Each request also gets
spoofing headers and one of a range of methods, and goes over a raw socket
as the chat operator u-op-1.

The invariants:

1. The gateway never responds with 500.
2. Whatever it forwards is exactly what it authorized.  The upstream's copy
   has the method and canonical path of the gateway's `allow` decision, and
   its identity headers name u-op-1.  That path is also the canonical form of
   the path sent, as a reference encoder written here computes it: each
   segment percent-decoded and encoded again.  Nothing is forwarded without
   an `allow` decision.

The run is deterministic (`derandomize=True`, no example database), so a
failure reproduces on every run.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .wire import HOST, exchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = "u-op-1"
JSON_BODY = b'{"text": "hi"}'
# Characters a path segment keeps unencoded (RFC 3986 unreserved and
# sub-delimiters, minus ";", plus ":" and "@").
SEGMENT_SAFE = "-_~!$&'()*+,=:@."

# Routes the operator may or may not use, with `{id}` where a generated
# segment goes.  Tags and lists need no ownership lookup, so most segments
# that parse are forwarded there.
ROUTE_TEMPLATES = [
    "/api/1/tags/{id}/",
    "/api/1/lists/{id}/",
    "/api/1/lists/{id}/contacts/",
    "/api/1/chats/{id}/",
    "/api/1/chats/{id}/messages/",
    "/api/1/chats/{id}/assign/",
    "/api/1/contacts/{id}/",
    "/api/1/contacts/1/tags/{id}/",
    "/api/1/automations/{id}/",
    "/api/1/webhooks/{id}/",
    "/api/1/chats/",
    "/api/1/dashboards/summary/",
    "/api/1/account/",
]
# Pieces of one segment: ids and characters a segment may hold raw or
# encoded, which the gateway forwards, then the separators and escapes that
# path-confusion faults use, which it must reject.
ACCEPTED_PIECES = [
    "1", "2", "01", "%31", "a", "Z", "%41", "%7E", "%7e", "~", "-", "_", "+", "!",
    "$", "&", "'", "(", ")", "*", ",", "=", ":", "@", "%20", "%C3%A9", "%c3%a9",
    "%E2%80%A8", "%E4%B8%AD", "%F0%9F%98%80", "%2B", "%40", "%21", "%3A",
]
REJECTED_PIECES = [
    ".", "..", "%2e", "%2E%2E", "%25", "%2F", "%5C", "%3B", "%3F", "%23", "%00",
    "%0A", "%zz", "%c0%ae", "%ff", ";", "\\", "\u00e9",
]
SEGMENT_PIECES = ACCEPTED_PIECES * 2 + REJECTED_PIECES
PIECES = SEGMENT_PIECES + [
    "/", "//", "#", "?", "%", "\t", "\n", "\r", "\x00", "\x7f", " ", "\u2028",
    "\u4e2d", "chats", "account", "messages", "api",
]
# Reads come up most often, because the operator may read tags and lists,
# so reads are what reaches the upstream.  CONNECT has tests of its own in
# test_method_confusion.py: under the pure-Python parser some CONNECT
# requests get no response at all, and each example that drew one would wait
# for the read timeout.
METHODS = ["GET"] * 6 + ["HEAD"] * 3 + ["POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                        "TRACE", "PROPFIND", "get"]
SPOOFING_HEADERS = [
    ("X-Gateway-User", "u-owner"),
    ("X_Gateway_User", "u-owner"),
    ("X-Gateway-Role", "owner"),
    ("x-gateway-user-type", "service"),
    ("X-Gateway-Resolver", "chat"),
    ("Connection", "X-Gateway-User, X-Gateway-Role"),
    ("X-Forwarded-For", "10.20.1.5"),
    ("X-Original-URL", "/api/1/account/"),
    ("X-Envoy-Original-Path", "/api/1/account/"),
    ("Forwarded", "for=10.20.1.5"),
    ("X-Real-IP", "10.20.1.5"),
]
HEADER_NAME = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1, max_size=12,
)
HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                       max_size=20)


@st.composite
def targets(draw) -> str:
    """Draw a request target from a route or from pieces alone.

    A route gets a generated segment in place of `{id}`, or pieces spliced in
    anywhere after its leading slash.
    """
    template = draw(st.sampled_from(ROUTE_TEMPLATES))
    kind = draw(st.sampled_from(["segment", "segment", "splice", "pieces"]))
    if kind == "segment":
        segment = "".join(draw(st.lists(st.sampled_from(SEGMENT_PIECES), min_size=1,
                                        max_size=4)))
        path = template.replace("{id}", segment)
    elif kind == "splice":
        path = template.replace("{id}", draw(st.sampled_from(["1", "2", "3"])))
        for _ in range(draw(st.integers(1, 3))):
            position = draw(st.integers(1, len(path)))
            path = path[:position] + draw(st.sampled_from(PIECES)) + path[position:]
    else:
        path = "/" + "".join(draw(st.lists(st.sampled_from(PIECES), max_size=8)))

    if draw(st.booleans()):
        path += "?" + "".join(draw(st.lists(st.sampled_from(PIECES + ["&", "="]),
                                            max_size=5)))
    return path


REQUESTS = st.tuples(
    st.sampled_from(METHODS),
    targets(),
    st.lists(st.sampled_from(SPOOFING_HEADERS), max_size=3, unique=True),
    st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=2),
)


def reference_canonical(path: str) -> str:
    """Decode each segment of `path` and percent-encode it again, independently."""
    segments = path[1:].split("/")
    return "/" + "/".join(quote(unquote(segment, errors="strict"), safe=SEGMENT_SAFE)
                          for segment in segments)


def encode_request(method: str, target: str, token: str,
                   headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode("utf-8"),
             f"Host: {HOST}".encode(),
             f"Authorization: Bearer {token}".encode()]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    body = b""
    if method.upper() in ("POST", "PUT", "PATCH"):
        body = JSON_BODY
        lines += [b"Content-Type: application/json",
                  b"Content-Length: " + str(len(body)).encode()]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class DecisionCapture(logging.Handler):
    """Log handler that keeps the decision records, one per request handled."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured_decisions():
    logger = logging.getLogger("gateway.decision")
    capture = DecisionCapture()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)


def is_ownership_lookup(entry: dict) -> bool:
    """Return whether `entry` is an ownership lookup the gateway made itself.

    Lookups carry the resolver header but no user, while a forwarded request
    always carries the user.
    """
    headers = entry["headers"]
    return "x-gateway-resolver" in headers and "x-gateway-user" not in headers


def check_forwarded(entry: dict, decision: logging.LogRecord, sent_path: str) -> None:
    headers = entry["headers"]
    forwarded_path = entry["raw_path"].partition("?")[0]

    assert decision.subject == OPERATOR
    assert forwarded_path == decision.path
    assert forwarded_path == reference_canonical(sent_path)
    assert entry["method"] in (decision.method,
                               "GET" if decision.method == "HEAD" else None)
    assert headers["x-gateway-user"] == OPERATOR
    assert headers["x-gateway-role"] == "chat_operator"
    assert headers["x-gateway-user-type"] == "standard"
    assert "x-gateway-resolver" not in headers
    assert [name for name in headers if "_" in name] == []


@settings(
    derandomize=True,
    database=None,
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=REQUESTS)
async def test_generated_requests_keep_invariants(gateway, sample_api, request):
    method, target, spoofing, extra = request
    token = gateway.token(OPERATOR)
    await sample_api.reset()

    # The capture stays open while the record is fetched, so a decision logged
    # just after the response was sent is not missed.
    with captured_decisions() as capture:
        result = await exchange(gateway.port,
                                encode_request(method, target, token, spoofing + extra),
                                head=method.upper() == "HEAD", first_only=True)
        recorded = await sample_api.recorded()

    statuses = [response.status for response in result.responses]
    assert statuses, f"no response: {result.data[:200]!r}"
    assert 500 not in statuses, result.data[:400]

    allowed = [record for record in capture.records if record.decision == "allow"]
    forwarded = [entry for entry in recorded if not is_ownership_lookup(entry)]
    assert len(forwarded) <= 1, forwarded
    if not forwarded:
        return

    assert len(allowed) == 1, [record.__dict__ for record in capture.records]
    check_forwarded(forwarded[0], allowed[0], target.partition("?")[0])
