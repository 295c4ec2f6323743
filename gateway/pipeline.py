"""The request pipeline: parse, route, authenticate, authorize, scope, forward.

Every step raises a GatewayError to refuse; nothing reaches the upstream
unless every step before `forward` has passed.  An unexpected exception is a
refusal too (500), logged with the request id.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from aiohttp import web

from gateway.api import GatewayApi
from gateway.authn import VIEWER, Authenticator, Principal
from gateway.authz.embed_scope import check_embed_origin, check_embed_route
from gateway.authz.fields import authorize_fields, fields_set, read_body
from gateway.authz.ownership import OwnershipResolver
from gateway.authz.scope import FilterTrust, ScopedRequest, apply_scope
from gateway.errors import Forbidden, GatewayError, InternalError, RequestTimeout
from gateway.forward.body import check_body_headers
from gateway.forward.forwarder import StreamInterrupted, UpstreamForwarder
from gateway.observe.decision_log import DecisionRecord, redact_path
from gateway.observe.metrics import GatewayMetrics
from gateway.observe.request_id import new_request_id
from gateway.problem import problem_response
from gateway.routing.guards import (
    check_framing,
    check_host,
    reject_overrides_and_url_credentials,
)
from gateway.routing.origin import own_origin
from gateway.routing.table import RouteMatch
from gateway.routing.target import Target, parse_target
from gateway.snapshot import Snapshot
from gateway.streams.registry import LiveStream, StreamRegistry

log = logging.getLogger("gateway.pipeline")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,128}")
# Responses to embed sessions: no Referer carries the view's URL on, and no
# cache keeps what one session saw.
EMBED_RESPONSE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Authorized:
    """A request that passed routing, authentication and the policy."""

    target: Target
    match: RouteMatch
    principal: Principal
    scope: str


class Gateway:
    def __init__(
        self,
        snapshot: Snapshot,
        authenticator: Authenticator,
        resolver: OwnershipResolver,
        forwarder: UpstreamForwarder,
        streams: StreamRegistry,
        metrics: GatewayMetrics,
    ) -> None:
        self.snapshot = snapshot
        self._own_api: GatewayApi | None = None
        self._authenticator = authenticator
        self._resolver = resolver
        self._forwarder = forwarder
        self._streams = streams
        self._filter_trust = FilterTrust()
        self._metrics = metrics

    @property
    def metrics(self) -> GatewayMetrics:
        return self._metrics

    async def close_streams(self) -> None:
        await self._streams.close()

    async def close_upstream(self) -> None:
        await self._forwarder.close()

    def attach_api(self, own_api: GatewayApi) -> None:
        """Serve the gateway's own API and pages under their prefix."""
        self._own_api = own_api

    async def recheck_streams(self) -> None:
        """Recheck every open stream, after a change to users outside a route."""
        await self._streams.recheck_all()

    async def replace_snapshot(self, snapshot: Snapshot) -> None:
        """Serve new requests from `snapshot` and recheck every open stream on it."""
        self.snapshot = snapshot
        await self._streams.recheck_all()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await self._handle(request)
        finally:
            # The connection's next bytes belong to a new request head, which
            # has its own deadline (gateway.protocol).
            response_sent = getattr(request.protocol, "response_sent", None)
            if response_sent is not None:
                response_sent(request)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        snapshot = self.snapshot  # one snapshot for the whole request
        request_id = self._request_id(request, snapshot)
        record = DecisionRecord(request_id, request.method, "",
                                policy_revision=snapshot.policy.revision,
                                started_at=started)
        try:
            response = await self._process(request, snapshot, record)
        except GatewayError as error:
            record.reason = error.reason
            response = problem_response(error, request_id)
            # Unread body bytes cannot be distinguished from the next request's head.
            unread = request.body_exists and not request.content.is_eof()
            if unread or error.close:
                response.force_close()
            if unread and isinstance(error, RequestTimeout):
                stop_reading = getattr(request.protocol, "stop_reading", None)
                if stop_reading is not None:
                    stop_reading()
        except StreamInterrupted as error:
            # Part of the answer is already sent; re-raising makes aiohttp close
            # the connection, so the client cannot take a cut body as whole.
            record.reason = error.reason
            record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            record.emit(snapshot.config.masked_log_fields)
            self._metrics.observe(record)
            raise
        except Exception:
            record.reason = "internal_error"
            log.exception("request failed inside the gateway",
                          extra={"request_id": request_id})
            response = problem_response(
                InternalError("The gateway failed to process the request."),
                request_id,
            )

        if not response.prepared:
            response.headers[snapshot.config.forwarding.request_id_header] = request_id
        record.status = response.status
        record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        record.emit(snapshot.config.masked_log_fields)
        self._metrics.observe(record)
        return response

    async def _process(self, request, snapshot: Snapshot, record: DecisionRecord):
        config = snapshot.config
        # A body still arriving when the decision begins is decided again once
        # it is whole: whatever changed meanwhile applies to it.
        late_body = request.body_exists and not request.content.is_eof()
        check_framing(request.version, request.headers)
        target = self._screen(snapshot, request.raw_path, request.headers, record)
        if self._own_api is not None and self._own_api.serves(target, snapshot):
            return await self._own_api.handle(request, target, snapshot, record)

        decided = await self._decide(snapshot, request.method, target,
                                     request.headers, record)
        target, match, principal = decided.target, decided.match, decided.principal
        route = match.route
        scope = decided.scope
        if principal.embed is not None:
            origin = own_origin(request.scheme, request.host,
                                config.gateway_api.public_url)
            check_embed_origin(principal.embed, principal.credential, request.method,
                               request.headers, origin)
        if request.body_exists:
            check_body_headers(request.headers, route.content_types
                               or config.forwarding.body_content_types)

        body = None
        if route.guarded_fields and request.body_exists:
            body = await read_body(request, config.limits,
                                   config.forwarding.max_body_bytes)
            if late_body:
                # The rest of the request follows the snapshot of this decision,
                # so a policy reloaded meanwhile applies to the fields too.
                snapshot = self.snapshot
                config = snapshot.config
                record.policy_revision = snapshot.policy.revision
                decided = await self._authorize(snapshot, request.method,
                                                request.raw_path, request.headers,
                                                record)
                target, match, principal = (decided.target, decided.match,
                                            decided.principal)
                route = match.route
                scope = decided.scope
            fields = fields_set(body)
            grants = authorize_fields(snapshot.policy, principal.role, route, fields)
            # The request is as narrow as the narrowest permission it needs.
            if any(field_grant.scope == "own" for field_grant in grants):
                scope = "own"
        record.scope = scope

        scoped = ScopedRequest(target.query_string)
        if scope == "own":
            scoped = await apply_scope(route, match.params, principal,
                                       target.query_string, self._resolver,
                                       record.request_id, self._filter_trust)

        if route.stream is not None:
            return await self._open_stream(request, snapshot, record, decided, scoped)

        async def authorize_late_body() -> None:
            try:
                await self._authorize_again(request.method, request.raw_path,
                                            request.headers, record.request_id)
            except GatewayError:
                record.decision = "deny"  # _forward had recorded "allow"
                raise

        return await self._forward(request, snapshot, record, target.path, match,
                                   principal, scoped, body,
                                   on_late_body=authorize_late_body if late_body
                                   else None)

    async def _authorize_again(self, method: str, raw_path: str, headers,
                               request_id: str) -> None:
        """Decide an authorized request again on the current snapshot, or raise.

        The owners of an "own" object are looked up again too, through the
        owner cache, because the object may have changed hands since.
        """
        again = await self._authorize(self.snapshot, method, raw_path, headers,
                                      DecisionRecord(request_id, method, ""))
        if again.scope == "own":
            await apply_scope(again.match.route, again.match.params, again.principal,
                              again.target.query_string, self._resolver, request_id,
                              self._filter_trust)

    async def _authorize(self, snapshot: Snapshot, method: str, raw_path: str,
                         headers, record: DecisionRecord) -> Authorized:
        """Parse, route, authenticate and authorize one request, or raise."""
        target = self._screen(snapshot, raw_path, headers, record)
        return await self._decide(snapshot, method, target, headers, record)

    def _screen(self, snapshot: Snapshot, raw_path: str, headers,
                record: DecisionRecord) -> Target:
        """Parse the target and refuse what no endpoint may receive."""
        forwarding = snapshot.config.forwarding
        target = parse_target(raw_path, forwarding.max_path_bytes)
        record.path = redact_path(target.path)
        check_host(headers, forwarding.allowed_hosts)
        reject_overrides_and_url_credentials(headers, target.query_string)
        return target

    async def _decide(self, snapshot: Snapshot, method: str, target: Target,
                      headers, record: DecisionRecord) -> Authorized:
        """Route, authenticate and authorize a screened request, or raise."""
        match = snapshot.routes.match(method, target.segments)
        route = match.route
        record.route = route.name
        record.resource = route.resource
        record.action = route.action
        if route.embed == "view" and not self._authenticator.has_credentials(
            headers, snapshot.config.api_key_header
        ):
            # The embedded page contains no data until a session gives it some.
            return Authorized(target, match, VIEWER, "all")

        principal = await self._authenticator.authenticate(
            headers,
            snapshot.jwt,
            api_key_header=snapshot.config.api_key_header,
            roles=snapshot.roles,
            allow_embed=True,
        )
        record.subject = principal.user_id
        record.role = principal.role
        record.user_type = principal.user_type
        if principal.embed is not None:
            record.embed_session = principal.embed.id

        grant = snapshot.policy.authorize(principal.role, route.resource, route.action)
        if grant is None:
            raise Forbidden(
                f"Role {principal.role!r} may not do {route.action} on "
                f"{route.resource}.",
                reason="policy_denied",
            )
        record.policy_line = grant.rule.location()
        if principal.embed is not None:
            check_embed_route(principal.embed, route, match.params)
        return Authorized(target, match, principal, grant.scope)

    async def _open_stream(self, request, snapshot, record, decided: Authorized,
                           scoped: ScopedRequest) -> web.StreamResponse:
        """Forward a long-lived response that stays open only while it is allowed."""
        method, raw_path, headers = request.method, request.raw_path, request.headers

        async def recheck() -> None:
            await self._authorize_again(method, raw_path, headers, record.request_id)

        watched = decided.match.route
        resolvers = frozenset(
            resolver.name for resolver in (watched.object,) if resolver is not None
        )
        def client_gone() -> bool:
            transport = request.transport
            return transport is None or transport.is_closing()

        def log_open(status: int) -> None:
            opened = dataclasses.replace(
                record, reason="stream_opened", status=status,
                duration_ms=round((time.perf_counter() - record.started_at) * 1000, 3),
            )
            opened.emit(snapshot.config.masked_log_fields)

        stream = LiveStream(record.request_id, decided.principal, recheck, resolvers,
                            client_gone, on_open=log_open)
        with self._streams.watch(stream):
            self._metrics.open_streams.inc()
            try:
                response = await self._forward(request, snapshot, record,
                                               decided.target.path, decided.match,
                                               decided.principal, scoped, None,
                                               stream=stream)
            finally:
                self._metrics.open_streams.dec()
        if stream.end_reason is not None:
            record.reason = stream.end_reason
        return response

    async def _forward(self, request, snapshot, record, path, match: RouteMatch,
                       principal: Principal, scoped: ScopedRequest,
                       body: bytes | None, stream: LiveStream | None = None,
                       on_late_body=None):
        forwarding = snapshot.config.forwarding
        identity = {}
        if principal is not VIEWER:
            identity = {
                forwarding.user_header: principal.user_id,
                forwarding.role_header: principal.role,
                forwarding.user_type_header: principal.user_type,
            }
        headers = snapshot.headers.upstream_request_headers(
            request.headers,
            peer=request.remote,
            scheme=request.scheme,
            identity=identity,
            request_id=record.request_id,
            inspect=scoped.body_check is not None,
        )

        record.decision = "allow"
        record.reason = "allowed"
        record.decision_ms = round((time.perf_counter() - record.started_at) * 1000, 3)
        response_headers = {forwarding.request_id_header: record.request_id}
        frame_ancestors = "'none'"
        if principal.embed is not None:
            response_headers.update(EMBED_RESPONSE_HEADERS)
            if match.route.embed == "view":
                frame_ancestors = principal.embed.origin
        elif principal is VIEWER:
            response_headers.update(EMBED_RESPONSE_HEADERS)
            frame_ancestors = self._viewer_frame_ancestors(scoped.query_string)
        response, upstream_status = await self._forwarder.forward(
            request,
            path=path,
            query_string=scoped.query_string,
            headers=headers,
            body_check=scoped.body_check,
            body=body,
            response_headers=response_headers,
            frame_ancestors=frame_ancestors,
            stream=stream,
            on_late_body=on_late_body,
        )
        record.upstream_status = upstream_status

        if 200 <= upstream_status < 300:
            for resolver in match.route.invalidates:
                self._resolver.invalidate(resolver)
                # Before the change is confirmed to the client, so no later
                # message reaches a stream that lost its permission.
                await self._streams.recheck_resolver(resolver.name)
        return response

    def _viewer_frame_ancestors(self, query_string: str) -> str:
        """Let the page named by `?parent=` frame the bare view, if some user allows it."""
        parents = parse_qs(query_string).get("parent", [])
        if len(parents) == 1 and self._authenticator.origin_may_embed(parents[0]):
            return parents[0]
        return "'none'"

    def _request_id(self, request: web.BaseRequest, snapshot: Snapshot) -> str:
        header = snapshot.config.forwarding.request_id_header
        incoming = request.headers.get(header)
        if (
            incoming
            and _REQUEST_ID.fullmatch(incoming)
            and snapshot.headers.is_trusted_proxy(request.remote)
        ):
            return incoming
        return new_request_id()
