"""The gateway's own API and pages: matched before the proxied routes, never forwarded.

Paths under `gateway_api.prefix` (default `/gateway/`) and the embed start
page reach this service after the same target, Host and override checks as
every request.  Anything
under the prefix that is not an endpoint below gets 404 from the gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.api import pages
from gateway.api.audit import AuditEndpoints
from gateway.api.call import SECURITY_HEADERS, Call
from gateway.api.caller import CallerAuthenticator
from gateway.api.document import ApiDocument
from gateway.api.embed import EmbedEndpoints
from gateway.api.explain import ExplainEndpoint
from gateway.api.session import SessionEndpoints
from gateway.api.users import UserEndpoints
from gateway.authn import Authenticator
from gateway.errors import MethodNotAllowed, NotFound, Unauthenticated
from gateway.observe.decision_log import DecisionRecord
from gateway.routing.target import Target
from gateway.snapshot import Snapshot
from gateway.store import SQLiteEmbedStore, SQLiteSessionStore, UserStore

Handler = Callable[[Call, ApiDocument], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # below the prefix; "{name}" is one path segment
    handler: Handler
    resource: str | None = None
    action: str | None = None
    credentials: bool = True
    embed: bool = False  # takes an embed session's credential, and only that

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))


async def _redirect_to_page(call: Call, document: ApiDocument) -> web.Response:
    response = web.Response(status=308, headers=SECURITY_HEADERS)
    response.headers["Location"] = call.snapshot.config.gateway_api.prefix + "users/"
    return response


class GatewayApi:
    def __init__(
        self,
        store: UserStore,
        sessions: SQLiteSessionStore,
        embeds: SQLiteEmbedStore,
        authenticator: Authenticator,
        on_user_change: Callable[[], Awaitable[None]],
    ) -> None:
        self._callers = CallerAuthenticator(authenticator, store, sessions)
        self._documents: dict[tuple, ApiDocument] = {}
        users = UserEndpoints(store, on_user_change)
        session = SessionEndpoints(store, sessions, authenticator)
        audit = AuditEndpoints(store)
        explain = ExplainEndpoint(store)
        embed = EmbedEndpoints(store, embeds)
        self._embed_start = Endpoint("GET", "", embed.start, credentials=False)
        self._endpoints = (
            Endpoint("GET", "users/", pages.users_page, credentials=False),
            Endpoint("GET", "users", _redirect_to_page, credentials=False),
            Endpoint("GET", "static/{file}", pages.static_file, credentials=False),
            Endpoint("GET", "login", session.confirm_login, credentials=False),
            Endpoint("POST", "login", session.login, credentials=False),
            Endpoint("GET", "v1/openapi.json", pages.openapi_document,
                     credentials=False),
            Endpoint("GET", "v1/session", session.get_session),
            Endpoint("DELETE", "v1/session", session.end_session),
            Endpoint("GET", "v1/users", users.list_users, "users", "list"),
            Endpoint("POST", "v1/users", users.create_user, "users", "create"),
            Endpoint("GET", "v1/users/{id}", users.get_user, "users", "read"),
            Endpoint("DELETE", "v1/users/{id}", users.delete_user, "users", "delete"),
            Endpoint("PUT", "v1/users/{id}/role", users.change_role,
                     "users", "update_role"),
            Endpoint("POST", "v1/users/{id}/deactivate", users.deactivate,
                     "users", "deactivate"),
            Endpoint("POST", "v1/users/{id}/activate", users.activate,
                     "users", "activate"),
            Endpoint("GET", "v1/users/{id}/keys", users.list_keys, "api_keys", "list"),
            Endpoint("POST", "v1/users/{id}/keys", users.rotate_key,
                     "api_keys", "create"),
            Endpoint("DELETE", "v1/users/{id}/keys/{prefix}", users.revoke_key,
                     "api_keys", "revoke"),
            Endpoint("GET", "v1/audit", audit.list_audit, "audit", "list"),
            Endpoint("POST", "v1/explain", explain.explain, "policy", "explain"),
            Endpoint("POST", "v1/embed/sessions", embed.create_session,
                     "embed_sessions", "create"),
            Endpoint("POST", "v1/embed/token", embed.trade_code, credentials=False),
            Endpoint("GET", "v1/embed/session", embed.view_session, embed=True),
            Endpoint("GET", "v1/users/{id}/embed/sessions", embed.list_sessions,
                     "embed_sessions", "list"),
            Endpoint("DELETE", "v1/users/{id}/embed/sessions", embed.revoke_all,
                     "embed_sessions", "revoke"),
            Endpoint("DELETE", "v1/users/{id}/embed/sessions/{session}",
                     embed.revoke_session, "embed_sessions", "revoke"),
            Endpoint("GET", "v1/users/{id}/embed/origins", embed.get_origins,
                     "embed_origins", "read"),
            Endpoint("PUT", "v1/users/{id}/embed/origins", embed.set_origins,
                     "embed_origins", "update"),
        )

    def serves(self, target: Target, snapshot: Snapshot) -> bool:
        prefix = snapshot.config.gateway_api.prefix
        start = snapshot.config.embed.start_path
        return (target.path + "/").startswith(prefix) or target.path == start

    async def handle(self, request: web.BaseRequest, target: Target,
                     snapshot: Snapshot, record: DecisionRecord) -> web.StreamResponse:
        settings = snapshot.config.gateway_api
        if target.path == snapshot.config.embed.start_path:
            endpoint, params = self._match_start(request.method)
            record.route = f"{endpoint.method} {target.path}"
        else:
            relative = target.segments[len(settings.prefix.strip("/").split("/")):]
            endpoint, params = self._match(request.method, relative)
            record.route = f"{endpoint.method} {settings.prefix}{endpoint.path}"
        record.resource = endpoint.resource
        record.action = endpoint.action

        call = Call(request, snapshot, record, params, target.query_string)
        if endpoint.credentials:
            await self._authenticate(call, endpoint)
            self._callers.check_same_origin(request, snapshot, call.caller)

            async def recheck() -> None:
                user_id = call.principal.user_id
                await self._authenticate(call, endpoint)
                if call.principal.user_id != user_id:
                    raise Unauthenticated("The credential changed hands during the "
                                          "request.", reason="credentials_changed")

            call.recheck = recheck

        response = await endpoint.handler(call, self._document(snapshot))
        if response.status < 400:
            record.decision = "allow"
            record.reason = "allowed"
        return response

    async def _authenticate(self, call: Call, endpoint: Endpoint) -> None:
        call.caller = await self._callers.authenticate(call.request, call.snapshot,
                                                       embed=endpoint.embed)
        principal = call.caller.principal
        call.record.subject = principal.user_id
        call.record.role = principal.role
        call.record.user_type = principal.user_type

    def _match_start(self, method: str) -> tuple[Endpoint, dict]:
        if method != "GET":
            raise MethodNotAllowed("The embed start page takes GET.", allowed=["GET"])
        return self._embed_start, {}

    def _match(self, method: str, segments: tuple[str, ...]) -> tuple[Endpoint, dict]:
        allowed = []
        for endpoint in self._endpoints:
            params = _match_segments(endpoint.segments, segments)
            if params is None:
                continue
            # Every GET endpoint below the prefix also serves HEAD; none changes state.
            if endpoint.method == method or (method == "HEAD" and endpoint.method == "GET"):
                return endpoint, params
            allowed.append(endpoint.method)
            if endpoint.method == "GET":
                allowed.append("HEAD")

        if allowed:
            raise MethodNotAllowed(f"This endpoint takes {', '.join(allowed)}.",
                                   allowed=allowed)
        raise NotFound("No endpoint of the gateway's API has this path.",
                       reason="no_endpoint")

    def _document(self, snapshot: Snapshot) -> ApiDocument:
        key = (snapshot.config.roles, snapshot.config.gateway_api.api_prefix)
        document = self._documents.get(key)
        if document is None:
            document = self._documents[key] = ApiDocument(*key)
        return document


def _match_segments(template: tuple[str, ...],
                    segments: tuple[str, ...]) -> dict[str, str] | None:
    if len(template) != len(segments):
        return None

    params = {}
    for expected, actual in zip(template, segments):
        if expected.startswith("{"):
            if not actual:
                return None
            params[expected[1:-1]] = actual
        elif expected != actual:
            return None

    return params
