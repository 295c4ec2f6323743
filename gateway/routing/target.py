"""The request target, reduced to one reading before any decision.

A proxy and its upstream must never read a path two ways.  Forms that a
legitimate client of a JSON API never sends are rejected with 400 rather than
repaired: dot segments (raw or percent-encoded), empty segments, backslashes,
control characters, `#`, `;`, encoded `/`, `\\` or `%`, and malformed escapes.
What remains is decoded per segment for routing and encoded again in one
canonical way; that canonical path is the one forwarded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from gateway.errors import BadRequest, URITooLong

# Unreserved characters plus the sub-delimiters that carry no meaning to
# common upstream frameworks; a path made only of these needs no decoding.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9\-_~!$&'()*+,=:@.]+)*/?")
_SAFE_IN_SEGMENT = "-_~!$&'()*+,=:@."
_FORBIDDEN_DECODED = re.compile(r"[\x00-\x1f\x7f/\\%;#]")
_QUERY_FORBIDDEN = re.compile(r"[\x00-\x20\x7f#\\]|[^\x00-\x7f]")
_DOT_SEGMENTS = ("", ".", "..")


@dataclass(frozen=True, slots=True)
class Target:
    path: str
    segments: tuple[str, ...]
    query_string: str


def parse_target(raw_target: str, max_path_bytes: int) -> Target:
    """Parse an origin-form request target, or raise BadRequest / URITooLong."""
    if not raw_target.startswith("/"):
        raise BadRequest("The request target must be a path starting with '/'.",
                         reason="target_not_origin_form")

    path, question_mark, query = raw_target.partition("?")
    if len(path) > max_path_bytes:
        raise URITooLong(f"The path is longer than {max_path_bytes} bytes.")
    if question_mark and _QUERY_FORBIDDEN.search(query):
        raise BadRequest("The query string contains a character that must be "
                         "percent-encoded.", reason="query_invalid")

    if _PLAIN_PATH.fullmatch(path):
        segments = path[1:].split("/")
        _check_segments(segments)
        return Target(path, tuple(segments), query)

    segments = [_decode_segment(raw) for raw in path[1:].split("/")]
    _check_segments(segments)
    canonical = "/" + "/".join(encode_segment(segment) for segment in segments)
    return Target(canonical, tuple(segments), query)


def encode_segment(segment: str) -> str:
    """Percent-encode a decoded segment the one way the gateway forwards it."""
    return quote(segment, safe=_SAFE_IN_SEGMENT)


def _check_segments(segments: list[str]) -> None:
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment in _DOT_SEGMENTS and not (segment == "" and index == last):
            raise BadRequest(
                "The path contains an empty, '.' or '..' segment (raw or "
                "percent-encoded).",
                reason="path_ambiguous",
            )


def _decode_segment(raw: str) -> str:
    if not raw.isascii() or _FORBIDDEN_DECODED.search(raw.replace("%", "")):
        raise BadRequest("The path contains a character that is not allowed: "
                         "control characters, '\\', ';', '#' and non-ASCII bytes "
                         "are rejected.", reason="path_invalid_character")

    data = bytearray()
    index = 0
    while index < len(raw):
        character = raw[index]
        if character != "%":
            data += character.encode()
            index += 1
            continue

        pair = raw[index + 1 : index + 3]
        if len(pair) != 2 or not all(c in "0123456789abcdefABCDEF" for c in pair):
            raise BadRequest("The path contains a malformed percent-escape.",
                             reason="path_bad_escape")
        data.append(int(pair, 16))
        index += 3

    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("A percent-encoded path segment is not valid UTF-8.",
                         reason="path_bad_escape") from None

    if _FORBIDDEN_DECODED.search(decoded):
        raise BadRequest("The path encodes a character that is not allowed in a "
                         "segment: '/', '\\', '%', ';', '#' or a control "
                         "character.", reason="path_encoded_separator")

    return decoded
