"""`parse_target` reduces a request target to one canonical reading or rejects it.

Every path a JSON API client legitimately sends is accepted.  Every form that a
proxy and an upstream could read two ways is rejected with 400 and a stable
reason id.
"""

import pytest

from gateway.errors import BadRequest, URITooLong
from gateway.routing.target import parse_target

MAX_PATH_BYTES = 2048

# raw target, canonical path, decoded segments, query string
ACCEPTED = [
    pytest.param("/", "/", ("",), "", id="root"),
    pytest.param(
        "/api/1/chats/", "/api/1/chats/", ("api", "1", "chats", ""), "", id="collection"
    ),
    pytest.param(
        "/api/1/chats/c-100/",
        "/api/1/chats/c-100/",
        ("api", "1", "chats", "c-100", ""),
        "",
        id="object",
    ),
    pytest.param(
        "/api/1/chats/c-100",
        "/api/1/chats/c-100",
        ("api", "1", "chats", "c-100"),
        "",
        id="no-trailing-slash",
    ),
    pytest.param(
        "/api/1/chats/?assignee=u-1&page=2",
        "/api/1/chats/",
        ("api", "1", "chats", ""),
        "assignee=u-1&page=2",
        id="query",
    ),
    pytest.param(
        "/api/1/chats/?",
        "/api/1/chats/",
        ("api", "1", "chats", ""),
        "",
        id="empty-query",
    ),
    pytest.param(
        "/api/1/chats/?next=/api/../x",
        "/api/1/chats/",
        ("api", "1", "chats", ""),
        "next=/api/../x",
        id="dots-in-query",
    ),
    pytest.param(
        "/api/1/tags/a.b~c_d-e/",
        "/api/1/tags/a.b~c_d-e/",
        ("api", "1", "tags", "a.b~c_d-e", ""),
        "",
        id="unreserved-characters",
    ),
    pytest.param(
        "/api/1/tags/...",
        "/api/1/tags/...",
        ("api", "1", "tags", "..."),
        "",
        id="three-dots",
    ),
    pytest.param(
        "/api/1/tags/%41%62/",
        "/api/1/tags/Ab/",
        ("api", "1", "tags", "Ab", ""),
        "",
        id="encoded-letters-decoded",
    ),
    pytest.param(
        "/api/1/tags/a%20b/",
        "/api/1/tags/a%20b/",
        ("api", "1", "tags", "a b", ""),
        "",
        id="encoded-space-kept",
    ),
    pytest.param(
        "/api/1/tags/%c3%a9/",
        "/api/1/tags/%C3%A9/",
        ("api", "1", "tags", "é", ""),
        "",
        id="utf8-escape-upper-cased",
    ),
    pytest.param(
        "/api/1/tags/%E2%82%AC/",
        "/api/1/tags/%E2%82%AC/",
        ("api", "1", "tags", "€", ""),
        "",
        id="utf8-three-bytes",
    ),
    pytest.param(
        "/api/1/tags/%2C/",
        "/api/1/tags/,/",
        ("api", "1", "tags", ",", ""),
        "",
        id="encoded-sub-delimiter",
    ),
]

# raw target, exception type, reason id
REJECTED = [
    pytest.param("api/1/chats/", BadRequest, "target_not_origin_form", id="relative"),
    pytest.param("*", BadRequest, "target_not_origin_form", id="asterisk-form"),
    pytest.param(
        "http://127.0.0.1/api/1/chats/",
        BadRequest,
        "target_not_origin_form",
        id="absolute-form",
    ),
    pytest.param("", BadRequest, "target_not_origin_form", id="empty"),
    pytest.param(
        "/api/1/chats/../automations/", BadRequest, "path_ambiguous", id="dot-dot"
    ),
    pytest.param("/api/1/chats/./", BadRequest, "path_ambiguous", id="dot"),
    pytest.param(
        "/api/1/chats/..", BadRequest, "path_ambiguous", id="trailing-dot-dot"
    ),
    pytest.param("/api/1/chats/.", BadRequest, "path_ambiguous", id="trailing-dot"),
    pytest.param(
        "/api/1/chats/%2e%2e/campaigns/",
        BadRequest,
        "path_ambiguous",
        id="encoded-dot-dot",
    ),
    pytest.param(
        "/api/1/chats/%2E%2E/campaigns/",
        BadRequest,
        "path_ambiguous",
        id="encoded-dot-dot-upper",
    ),
    pytest.param(
        "/api/1/chats/.%2E/campaigns/",
        BadRequest,
        "path_ambiguous",
        id="half-encoded-dot-dot",
    ),
    pytest.param("/api/1/chats/%2e/", BadRequest, "path_ambiguous", id="encoded-dot"),
    pytest.param(
        "/api/1/chats/c-100/%2E%2E/%2e%2e/integrations/",
        BadRequest,
        "path_ambiguous",
        id="two-encoded-dot-dots",
    ),
    pytest.param(
        "//api/1/chats/", BadRequest, "path_ambiguous", id="leading-double-slash"
    ),
    pytest.param("/api//1/chats/", BadRequest, "path_ambiguous", id="empty-segment"),
    pytest.param(
        "/api/1/chats//", BadRequest, "path_ambiguous", id="double-trailing-slash"
    ),
    pytest.param(
        "/api/1/chats%2Fc-100/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-slash-upper",
    ),
    pytest.param(
        "/api/1/chats%2fc-100/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-slash",
    ),
    pytest.param(
        "/api/1/chats/c-100%2F..%2F..%2Fintegrations/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-slash-traversal",
    ),
    pytest.param(
        "/api%5cintegrations/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-backslash",
    ),
    pytest.param(
        "/api%5Cintegrations/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-backslash-upper",
    ),
    pytest.param(
        "/api/1/chats/c-100%00/", BadRequest, "path_encoded_separator", id="encoded-nul"
    ),
    pytest.param(
        "/api/1/chats/c-100%0a/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-newline",
    ),
    pytest.param(
        "/api/1/chats/c-100%7f/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-delete",
    ),
    pytest.param(
        "/api/1/chats/%252e%252e/",
        BadRequest,
        "path_encoded_separator",
        id="double-encoded-dots",
    ),
    pytest.param(
        "/api/1/chats/%25/", BadRequest, "path_encoded_separator", id="encoded-percent"
    ),
    pytest.param(
        "/api/1/chats/c-100%3bx/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-semicolon",
    ),
    pytest.param(
        "/api/1/chats/c-100%23x/",
        BadRequest,
        "path_encoded_separator",
        id="encoded-hash",
    ),
    pytest.param(
        "/api/1/chats/c-100;jsessionid=1/",
        BadRequest,
        "path_invalid_character",
        id="semicolon",
    ),
    pytest.param(
        "/api/1/automations#/api/1/chats/",
        BadRequest,
        "path_invalid_character",
        id="hash",
    ),
    pytest.param(
        "/api\\integrations/", BadRequest, "path_invalid_character", id="backslash"
    ),
    pytest.param(
        "/api/1/chats/c-100\n", BadRequest, "path_invalid_character", id="newline"
    ),
    pytest.param(
        "/api/1/chats/c-100\r/",
        BadRequest,
        "path_invalid_character",
        id="carriage-return",
    ),
    pytest.param(
        "/api/1/chats/c-100\t/", BadRequest, "path_invalid_character", id="tab"
    ),
    pytest.param(
        "/api/1/chats/c-100\x00/", BadRequest, "path_invalid_character", id="nul"
    ),
    pytest.param(
        "/api/1/chats/c-100\x7f/", BadRequest, "path_invalid_character", id="delete"
    ),
    pytest.param(
        "/api/1/tags/é/", BadRequest, "path_invalid_character", id="raw-non-ascii"
    ),
    pytest.param("/api/1/chats/%/", BadRequest, "path_bad_escape", id="bare-percent"),
    pytest.param("/api/1/chats/%2/", BadRequest, "path_bad_escape", id="short-escape"),
    pytest.param(
        "/api/1/chats/c-100%2", BadRequest, "path_bad_escape", id="short-escape-at-end"
    ),
    pytest.param(
        "/api/1/chats/%zz/", BadRequest, "path_bad_escape", id="non-hex-escape"
    ),
    pytest.param(
        "/api/1/chats/%g0/", BadRequest, "path_bad_escape", id="half-hex-escape"
    ),
    pytest.param(
        "/api/1/chats/%+1/", BadRequest, "path_bad_escape", id="signed-escape"
    ),
    pytest.param(
        "/api/1/chats/%ff/", BadRequest, "path_bad_escape", id="invalid-utf8-byte"
    ),
    pytest.param(
        "/api/1/chats/%c3/", BadRequest, "path_bad_escape", id="truncated-utf8-sequence"
    ),
    pytest.param(
        "/api/1/chats/%c0%af/", BadRequest, "path_bad_escape", id="overlong-utf8-slash"
    ),
    pytest.param(
        "/api/1/chats/%c0%ae%c0%ae/",
        BadRequest,
        "path_bad_escape",
        id="overlong-utf8-dots",
    ),
    pytest.param(
        "/api/1/chats/%ed%a0%80/", BadRequest, "path_bad_escape", id="utf8-surrogate"
    ),
    pytest.param("/api/1/chats/?q=a b", BadRequest, "query_invalid", id="query-space"),
    pytest.param("/api/1/chats/?q=a#b", BadRequest, "query_invalid", id="query-hash"),
    pytest.param(
        "/api/1/chats/?q=a\\b", BadRequest, "query_invalid", id="query-backslash"
    ),
    pytest.param("/api/1/chats/?q=\n", BadRequest, "query_invalid", id="query-newline"),
    pytest.param(
        "/api/1/chats/?q=é", BadRequest, "query_invalid", id="query-non-ascii"
    ),
    pytest.param(
        "/" + "a" * MAX_PATH_BYTES, URITooLong, "path_too_long", id="path-over-limit"
    ),
    pytest.param(
        "/" + "%41" * MAX_PATH_BYTES,
        URITooLong,
        "path_too_long",
        id="encoded-path-over-limit",
    ),
]


@pytest.mark.parametrize("raw, path, segments, query", ACCEPTED)
def test_canonical_target_accepted(raw, path, segments, query):
    target = parse_target(raw, MAX_PATH_BYTES)

    assert target.path == path
    assert target.segments == segments
    assert target.query_string == query


@pytest.mark.parametrize("raw, error_type, reason", REJECTED)
def test_ambiguous_target_rejected(raw, error_type, reason):
    with pytest.raises(error_type) as caught:
        parse_target(raw, MAX_PATH_BYTES)

    assert caught.value.reason == reason


def test_rejected_targets_get_client_errors():
    assert BadRequest.status == 400
    assert URITooLong.status == 414


def test_two_spellings_share_canonical_path():
    plain = parse_target("/api/1/tags/Ab/", MAX_PATH_BYTES)
    encoded = parse_target("/api/1/tags/%41%62/", MAX_PATH_BYTES)

    assert encoded == plain


def test_canonical_path_parses_to_itself():
    first = parse_target("/api/1/tags/%c3%a9%20x/", MAX_PATH_BYTES)
    second = parse_target(first.path, MAX_PATH_BYTES)

    assert second == first


def test_path_at_limit_accepted():
    raw = "/" + "a" * (MAX_PATH_BYTES - 1)

    assert parse_target(raw, MAX_PATH_BYTES).path == raw


def test_long_query_not_counted_in_limit():
    raw = "/api/1/chats/?q=" + "a" * (MAX_PATH_BYTES * 2)

    assert parse_target(raw, MAX_PATH_BYTES).query_string == "q=" + "a" * (
        MAX_PATH_BYTES * 2
    )


def test_limit_comes_from_argument():
    with pytest.raises(URITooLong) as caught:
        parse_target("/api/1/chats/", 8)

    assert "8 bytes" in caught.value.detail
