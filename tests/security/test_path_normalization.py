"""Paths that a proxy and its upstream could read two ways.

A gateway that authorizes one reading of a path and forwards another lets a
client reach a route it may not use: `/chats/../automations/` passes a rule
for chats, and the upstream resolves it to automations.  The gateway rejects
every ambiguous form with 400 rather than repairing it, so the forwarded path
is always the one that was authorized.  Rejecting a dot segment with 400,
where resolving it first and rejecting the result with 403 would also be
safe, is the gateway's documented choice.

Every target goes over a raw socket exactly as written.  In the seed data the
chat manager may not use automations, campaigns or integrations (the
`/api/1/webhooks/` routes), chat 1 is assigned to u-op-1 and chat 2 to u-op-2.
"""

from __future__ import annotations

import pytest

from .wire import assert_problem, build_request, exchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

USERS = {"owner": "u-owner", "manager": "u-manager", "operator": "u-op-1"}


def credentials(gateway, user: str | None) -> list[tuple[str, str]]:
    if user is None:
        return []
    return [("Authorization", "Bearer " + gateway.token(USERS[user]))]


async def send(gateway, user: str | None, target: str | bytes):
    request = build_request("GET", target, credentials(gateway, user))
    return (await exchange(gateway.port, request)).first


def cases(rows):
    return [pytest.param(user, target, id=case_id) for case_id, user, target in rows]


DOT_SEGMENTS = [
    ("raw", "manager", "/api/1/chats/../automations/"),
    ("encoded-lowercase", "manager", "/api/1/chats/%2e%2e/campaigns/"),
    ("encoded-mixed-case", "manager", "/api/1/chats/.%2E/campaigns/"),
    ("encoded-first-dot", "manager", "/api/1/chats/%2E./campaigns/"),
    ("two-encoded-levels", "operator", "/api/1/chats/1/%2E%2E/%2e%2e/webhooks/"),
    ("other-operators-chat", "operator", "/api/1/chats/2/../1/"),
    ("three-levels-up", "manager", "/api/1/chats/1/messages/../../../webhooks/"),
    ("single-dot", "manager", "/api/1/chats/./1/"),
    ("single-dot-encoded", "manager", "/api/1/chats/%2e/1/"),
    ("last-segment", "manager", "/api/1/automations/.."),
    ("last-segment-encoded", "manager", "/api/1/automations/%2E%2E"),
    ("with-encoded-slashes", "manager", "/api/1/chats/..%2f..%2fwebhooks/"),
    ("double-encoded", "manager", "/api/1/chats/%252e%252e/webhooks/"),
    ("path-parameter", "manager", "/api/1/chats/..;/webhooks/"),
    ("percent-u-escape", "manager", "/api/1/chats/%u002e%u002e/webhooks/"),
    ("overlong-utf8", "manager", "/api/1/chats/%c0%ae%c0%ae/webhooks/"),
]


@pytest.mark.parametrize(("user", "target"), cases(DOT_SEGMENTS))
async def test_dot_segment_rejected(gateway, sample_api, user, target):
    response = await send(gateway, user, target)

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


ENCODED_SEPARATORS = [
    ("leading-double-slash", "manager", "//api/1/webhooks/"),
    ("triple-slash", "manager", "///api/1/webhooks/"),
    ("inner-double-slash", "manager", "/api//1/webhooks/"),
    ("double-slash-before-resource", "manager", "/api/1//webhooks/"),
    ("trailing-double-slash", "manager", "/api/1/webhooks//"),
    ("encoded-slash-uppercase", "manager", "/api%2F1/webhooks/"),
    ("encoded-slash-lowercase", "manager", "/api%2f1/webhooks/"),
    ("encoded-slash-trailing", "manager", "/api/1/webhooks%2F"),
    ("encoded-backslash-uppercase", "manager", "/api%5C1/webhooks/"),
    ("encoded-backslash-lowercase", "manager", "/api%5c1/webhooks/"),
    ("raw-backslash", "manager", "/api\\1/webhooks/"),
    ("encoded-slash-dot-dot", "operator", "/api/1/chats/1%2F..%2F..%2Fwebhooks/"),
    ("encoded-backslash-dot-dot", "operator",
     "/api/1/chats/1%5C..%5C..%5Cwebhooks/"),
    ("double-encoded-slash", "manager", "/api/1/chats/1%252F/"),
    ("encoded-double-slash-host", "manager", "/api/1/chats/%2F%2Fevil.test/"),
]


@pytest.mark.parametrize(("user", "target"), cases(ENCODED_SEPARATORS))
async def test_separator_spelling_rejected(gateway, sample_api, user, target):
    response = await send(gateway, user, target)

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


# Operators may not read the account.  A regex rule whose `.` or `$` stops at
# a newline would miss these, and a framework that trims them would serve
# them.
CONTROL_CHARACTERS = [
    ("encoded-lf", "operator", "/api/1/account/%0a"),
    ("encoded-crlf", "operator", "/api/1/account/u-admin%0d%0a"),
    ("encoded-tab", "operator", "/api/1/account/%09"),
    ("encoded-del", "operator", "/api/1/account/%7f"),
    ("encoded-nul", "operator", "/api/1/account%00/"),
    ("encoded-lf-in-id", "operator", "/api/1/chats/2%0a/"),
    ("encoded-lf-before-id", "operator", "/api/1/chats/%0a2/"),
    ("encoded-cr-segment", "operator", "/api/1/chats/1/%0d/"),
    ("encoded-unit-separator", "operator", "/api/1/chats/2%1f/"),
    ("raw-tab", "operator", "/api/1/chats/2\t/"),
    ("raw-vertical-tab", "operator", "/api/1/chats/2\x0b/"),
    ("raw-form-feed", "operator", "/api/1/chats/2\x0c/"),
    ("raw-del", "operator", "/api/1/chats/2\x7f/"),
    ("raw-nul", "operator", "/api/1/chats/2\x00/"),
    ("raw-space", "operator", "/api/1/chats/2 /"),
    ("raw-bare-cr", "operator", "/api/1/chats/2\r/"),
    ("raw-non-ascii", "operator", "/api/1/chats/\u00e9/"),
]


@pytest.mark.parametrize(("user", "target"), cases(CONTROL_CHARACTERS))
async def test_control_character_rejected(gateway, sample_api, user, target):
    response = await send(gateway, user, target)

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


async def test_encoded_space_not_trimmed_for_routing(gateway, sample_api):
    """`account%20` is not `account`: no route matches it."""
    response = await send(gateway, "owner", "/api/1/account%20/")

    assert_problem(response, 404)
    assert await sample_api.recorded() == []


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        pytest.param("/api/1/chats/1%20/", "/api/1/chats/1%20/", id="encoded-space"),
        pytest.param("/api/1/chats/%EF%BC%8E%EF%BC%8E/",
                     "/api/1/chats/%EF%BC%8E%EF%BC%8E/", id="fullwidth-dots"),
        pytest.param("/api/1/chats/%e2%80%a8/", "/api/1/chats/%E2%80%A8/",
                     id="line-separator"),
    ],
)
async def test_lookalike_forwarded_percent_encoded(gateway, sample_api, target,
                                                   forwarded):
    """Characters that only look like a space, dot or newline stay encoded upstream."""
    response = await send(gateway, "owner", target)
    assert response.status == 404  # the upstream has no such chat

    recorded = await sample_api.recorded()
    assert [entry["raw_path"] for entry in recorded] == [forwarded]


FRAGMENTS = [
    ("raw-hash-then-allowed-path", "manager", "/api/1/automations/#/api/1/chats/"),
    ("raw-hash-at-end", "operator", "/api/1/chats/1/#"),
    ("raw-hash-after-other-chat", "operator", "/api/1/chats/2/#/api/1/chats/1/"),
    ("encoded-hash", "manager", "/api/1/automations%23/"),
    ("encoded-hash-dot-dot", "manager", "/api/1/automations/..%23/"),
    ("raw-hash-in-query", "operator", "/api/1/chats/1/?x=#y"),
]


@pytest.mark.parametrize(("user", "target"), cases(FRAGMENTS))
async def test_fragment_in_target_rejected(gateway, sample_api, user, target):
    response = await send(gateway, user, target)

    assert_problem(response, 400)
    assert await sample_api.recorded() == []


# The query string never takes part in matching, so each of these is rejected as
# the path before `?` alone would be.
QUERY_CONFUSION = [
    ("next-parameter-anonymous", None, "/api/1/account/?next=/api/1/chats/", 401),
    ("bare-path-query-anonymous", None, "/api/1/account/?/api/1/chats/", 401),
    ("bare-path-query-operator", "operator", "/api/1/account/?/api/1/chats/1/", 403),
    ("path-parameter-manager", "manager", "/api/1/automations/?path=/api/1/chats/",
     403),
    ("encoded-dot-dot-query", "manager", "/api/1/webhooks/?%2F..%2Fchats%2F", 403),
]


@pytest.mark.parametrize(
    ("user", "target", "status"),
    [pytest.param(user, target, status, id=case_id)
     for case_id, user, target, status in QUERY_CONFUSION],
)
async def test_query_never_matched_as_path(gateway, sample_api, user, target,
                                           status):
    response = await send(gateway, user, target)

    assert_problem(response, status)
    assert await sample_api.recorded() == []


async def test_query_forwarded_unchanged(gateway, sample_api):
    target = "/api/1/automations/?next=/api/1/chats/&x=%2F..%2F"
    response = await send(gateway, "owner", target)
    assert response.status == 200

    recorded = await sample_api.recorded()
    assert [entry["raw_path"] for entry in recorded] == [target]
