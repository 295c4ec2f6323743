"""Iframe sessions: launch codes for partner backends, the start page, tokens, admin.

1. The partner's backend calls `POST /gateway/v1/embed/sessions` with its
   service user's API key, naming an allowed origin and maybe a scope, and
   gets a single-use launch code and the URL to frame.
2. The iframe opens `embed.start_path?code=...`; the gateway consumes the
   code, sets a partitioned `__Host-` cookie and redirects to the view.
3. Where the browser keeps no such cookie, the view gets the code from the
   parent page by postMessage and trades it at `POST /gateway/v1/embed/token`
   for a bearer token of at most `embed.token_seconds`.
"""

from __future__ import annotations

import re

from aiohttp import web
from yarl import URL

from gateway.api.body import json_body
from gateway.api.call import (
    SECURITY_HEADERS,
    Call,
    empty_response,
    iso_time,
    json_response,
)
from gateway.api.document import ApiDocument
from gateway.api.refusal import refusal_page
from gateway.api.rules import UserAdminRules
from gateway.authn.authenticator import EMBED_COOKIE
from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    Unauthenticated,
    UnprocessableContent,
)
from gateway.store import EmbedSession, SQLiteEmbedStore, User, UserStore
from gateway.routing.origin import own_origin
from gateway.store.api_keys import parse_prefix


_CANNOT_SHOW = "This view cannot be shown"


def session_json(session: EmbedSession) -> dict:
    return {
        "id": session.id,
        "service_user": session.user_id,
        "origin": session.origin,
        "scope": session.scope,
        "credential": session.credential,
        "created_at": iso_time(session.created_at),
        "started_at": iso_time(session.started_at),
        "expires_at": iso_time(session.expires_at),
        "revoked_at": iso_time(session.revoked_at),
    }


# Scheme, a lower-case host name (ASCII; IDNs in punycode) or a bracketed IPv6
# address, and a port: nothing a CSP source list would read as a wildcard,
# a keyword or a second source.
_ORIGIN = re.compile(
    r"https?://(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?"
)


def check_origin(value: str, field: str) -> str:
    """Return `value` when it is a serialized origin such as https://crm.example."""
    try:
        url = URL(value) if _ORIGIN.fullmatch(value) else None
        valid = url is not None and str(url.origin()) == value and (
            url.explicit_port is None or 0 < url.explicit_port < 65536
        )
    except ValueError:
        valid = False
    if not valid:
        raise UnprocessableContent(
            f"{value[:100]!r} is not an origin: http or https, a lower-case host "
            "and an optional port that is not the default, such as "
            "https://crm.example.com, with no path or trailing slash.",
            field=field,
        )
    return value


class EmbedEndpoints:
    def __init__(self, store: UserStore, embeds: SQLiteEmbedStore) -> None:
        self._store = store
        self._embeds = embeds

    async def create_session(self, call: Call, document: ApiDocument) -> web.Response:
        principal = call.principal
        if principal.user_type != "service" or principal.credential != "api_key":
            raise Forbidden("Embed sessions are opened by a service user with its "
                            "API key.", reason="embed_service_only")
        rules = UserAdminRules(call.snapshot.policy, call.snapshot.config.roles)
        call.allowed_by(rules.require(principal, "embed_sessions", "create",
                                      principal.role))
        body = await json_body(call, document, "NewEmbedSession")

        settings = call.snapshot.config.embed
        origin = check_origin(body["origin"], "origin")
        if origin not in self._embeds.allowed_origins(principal.user_id):
            raise Forbidden(f"{origin} is not an allowed origin of this service user.",
                            reason="embed_origin_not_allowed")
        scope = self._scope(call, body.get("scope"))
        lifetime = body.get("lifetime", settings.session_seconds)
        if lifetime > settings.max_session_seconds:
            raise UnprocessableContent(
                f"lifetime is at most {settings.max_session_seconds:g} seconds.",
                field="lifetime",
            )

        key = call.request.headers[call.snapshot.config.api_key_header].strip()
        code, session = self._embeds.create(
            principal.user_id, key_prefix=parse_prefix(key), origin=origin,
            scope=scope, lifetime=lifetime, code_lifetime=settings.code_seconds,
        )
        base = call.snapshot.config.gateway_api.link_base
        return json_response({
            "session": session_json(session),
            "code": code,
            "url": f"{base}{settings.start_path}?code={code}",
            "code_expires_in": int(settings.code_seconds),
        }, status=201)

    def _scope(self, call: Call, scope: dict | None) -> tuple[str, str] | None:
        if scope is None:
            return None

        ((kind, object_id),) = scope.items()
        resolvers = sorted(call.snapshot.config.resolvers)
        if kind not in resolvers:
            raise UnprocessableContent(f"scope names {kind!r}, which is not a kind of "
                                       "object.", field="scope", allowed=resolvers)
        return kind, object_id

    async def start(self, call: Call, document: ApiDocument) -> web.Response:
        code = call.query("code").get("code")
        if not code:
            raise BadRequest("The embed code is missing; frame the whole URL.",
                             reason="embed_code_missing")

        # A launch URL opened as a page, not in the partner's frame, starts nothing.
        destination = call.request.headers.get("Sec-Fetch-Dest")
        if destination is not None and destination != "iframe":
            error = Forbidden("An embed link opens only inside the partner's page.",
                              reason="embed_not_framed")
            return refusal_page(call, error, _CANNOT_SHOW)

        started = self._embeds.start(code, credential="cookie")
        if started is None:
            origin = self._embeds.origin_of_code(code)
            error = Unauthenticated("This embed link was used already or has "
                                    "expired; the page that shows it must ask for a "
                                    "new one.", reason="embed_code_invalid")
            return refusal_page(call, error, _CANNOT_SHOW, frame_ancestors=origin)
        token, session = started
        user = await self._store.get_user(session.user_id)
        if not _may_embed(user):
            self._embeds.revoke(session.user_id, session.id, by=None)
            error = Forbidden("The service user of this embed link is deactivated.",
                              reason="user_inactive")
            return refusal_page(call, error, _CANNOT_SHOW,
                                frame_ancestors=session.origin)

        call.record.subject = session.user_id
        call.record.embed_session = session.id
        response = web.Response(status=303, headers=_frame_headers(session.origin))
        response.headers["Location"] = call.snapshot.config.embed.view_path
        lifetime = int(session.expires_at - session.started_at)
        # Written by hand: http.cookies before Python 3.14 has no Partitioned
        # attribute, so aiohttp's set_cookie(partitioned=True) fails there.  The
        # token is URL-safe base64, which needs no quoting in a cookie.
        response.headers.add(
            "Set-Cookie",
            f"{EMBED_COOKIE}={token}; Path=/; Max-Age={lifetime}; Secure; HttpOnly; "
            "SameSite=None; Partitioned",
        )
        return response

    async def trade_code(self, call: Call, document: ApiDocument) -> web.Response:
        # Only the embedded view, on the gateway's own origin, trades codes.
        settings = call.snapshot.config.gateway_api
        own = own_origin(call.request.scheme, call.request.host, settings.public_url)
        if call.request.headers.getall("Origin", []) != [own]:
            raise Forbidden("Codes are traded by the embedded view only.",
                            reason="csrf_origin")
        body = await json_body(call, document, "EmbedCode")
        origin = self._embeds.origin_of_code(body["code"])
        if origin is None or origin != body["origin"]:
            raise Unauthenticated("The embed code is unknown or was issued for "
                                  "another origin.", reason="embed_code_invalid")

        started = self._embeds.start(body["code"], credential="bearer",
                                     max_lifetime=call.snapshot.config.embed.token_seconds)
        if started is None:
            raise Unauthenticated("This embed code was used already or has expired.",
                                  reason="embed_code_invalid")
        token, session = started
        if not _may_embed(await self._store.get_user(session.user_id)):
            self._embeds.revoke(session.user_id, session.id, by=None)
            raise Forbidden("The service user is deactivated.", reason="user_inactive")

        call.record.subject = session.user_id
        call.record.embed_session = session.id
        return json_response({**_view_session(session), "token": token})

    async def view_session(self, call: Call, document: ApiDocument) -> web.Response:
        call.query()
        session = call.principal.embed
        if session is None:
            raise Forbidden("This endpoint serves embed sessions only.",
                            reason="embed_only")

        data = _view_session(session)
        if call.principal.credential == "embed_cookie":
            data["csrf_token"] = session.csrf_token
        return json_response(data)

    async def list_sessions(self, call: Call, document: ApiDocument) -> web.Response:
        call.query()
        user = await self._service_user(call, "embed_sessions", "list")
        call.allowed_by(_rules(call).require(call.principal, "embed_sessions", "list",
                                             user.role))
        sessions = self._embeds.list(user.id)
        return json_response({"items": [session_json(item) for item in sessions]})

    async def revoke_session(self, call: Call, document: ApiDocument) -> web.Response:
        user = await self._service_user(call, "embed_sessions", "revoke")
        call.allowed_by(_rules(call).require(call.principal, "embed_sessions",
                                             "revoke", user.role))
        if self._embeds.revoke(user.id, call.params["session"], by=call.actor) == 0:
            raise NotFound(f"No open embed session {call.params['session']!r} of "
                           f"{user.id!r}.", reason="embed_session_not_found")
        return empty_response()

    async def revoke_all(self, call: Call, document: ApiDocument) -> web.Response:
        user = await self._service_user(call, "embed_sessions", "revoke")
        call.allowed_by(_rules(call).require(call.principal, "embed_sessions",
                                             "revoke", user.role))
        ended = self._embeds.revoke(user.id, by=call.actor)
        return json_response({"revoked": ended})

    async def get_origins(self, call: Call, document: ApiDocument) -> web.Response:
        call.query()
        user = await self._service_user(call, "embed_origins", "read")
        call.allowed_by(_rules(call).require(call.principal, "embed_origins", "read",
                                             user.role))
        return json_response({"origins": self._embeds.allowed_origins(user.id)})

    async def set_origins(self, call: Call, document: ApiDocument) -> web.Response:
        body = await json_body(call, document, "EmbedOrigins")
        user = await self._service_user(call, "embed_origins", "update")
        call.allowed_by(_rules(call).require(call.principal, "embed_origins",
                                             "update", user.role))
        origins = [check_origin(origin, f"origins.{number}")
                   for number, origin in enumerate(body["origins"])]
        stored = self._embeds.set_origins(user.id, origins, by=call.actor)
        return json_response({"origins": stored})

    async def _service_user(self, call: Call, resource: str, action: str) -> User:
        # 403 first for roles that may do none of it, so they cannot probe ids.
        _rules(call).require_any(call.principal, resource, action)
        user = await self._store.get_user(call.params["id"])
        if user is None or user.type != "service":
            raise NotFound(f"No service user with id {call.params['id']!r}.",
                           reason="user_not_found")
        return user


def _rules(call: Call) -> UserAdminRules:
    return UserAdminRules(call.snapshot.policy, call.snapshot.config.roles)


def _may_embed(user: User | None) -> bool:
    return user is not None and user.active and user.type == "service"


def _view_session(session: EmbedSession) -> dict:
    return {
        "service_user": session.user_id,
        "origin": session.origin,
        "scope": session.scope,
        "expires_at": iso_time(session.expires_at),
    }


def _frame_headers(origin: str) -> dict[str, str]:
    """Headers of the start page: framed by the bound origin only, never cached."""
    headers = dict(SECURITY_HEADERS)
    del headers["X-Frame-Options"]
    headers["Content-Security-Policy"] = f"frame-ancestors {origin}"
    return headers
