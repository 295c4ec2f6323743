"""One call of the gateway's API: the request, its caller and its decision line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from gateway.api.caller import Caller
from gateway.authn import Principal
from gateway.authz.policy_file import PolicyRule
from gateway.errors import BadRequest
from gateway.forward.headers import SERVER_NAME
from gateway.observe.decision_log import DecisionRecord
from gateway.snapshot import Snapshot
from gateway.store import Actor

# Sent with every response of the gateway's API and pages.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Server": SERVER_NAME,
}


@dataclass
class Call:
    request: web.BaseRequest
    snapshot: Snapshot
    record: DecisionRecord
    params: dict[str, str]
    query_string: str
    caller: Caller | None = None
    # Authenticates the caller again; set for endpoints that take credentials.
    recheck: Callable[[], Awaitable[None]] | None = None

    @property
    def principal(self) -> Principal:
        assert self.caller is not None, "the endpoint takes no credentials"
        return self.caller.principal

    @property
    def actor(self) -> Actor:
        return Actor(self.principal.user_id, self.record.request_id)

    def allowed_by(self, rule: PolicyRule) -> None:
        """Record the policy row that allowed the call."""
        self.record.policy_line = rule.location()

    def query(self, *allowed: str) -> dict[str, str]:
        """Return the query parameters, which may be only `allowed` names, each once."""
        query: dict[str, str] = {}
        for key, value in parse_qsl(self.query_string, keep_blank_values=True):
            if key not in allowed:
                raise BadRequest(f"Unknown query parameter {key!r}; this endpoint "
                                 f"takes {', '.join(allowed) or 'none'}.",
                                 reason="query_unknown")
            if key in query:
                raise BadRequest(f"The query repeats {key!r}.", reason="query_repeated")
            query[key] = value

        return query


def iso_time(seconds: float | None) -> str | None:
    """Return seconds since the epoch as ISO 8601 in UTC, or None for None."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def json_response(data, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data),
                        content_type="application/json", headers=SECURITY_HEADERS)


def empty_response(status: int = 204) -> web.Response:
    return web.Response(status=status, headers=SECURITY_HEADERS)
