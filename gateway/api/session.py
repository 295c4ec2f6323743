"""Sign-in for the users page: login links, the session cookie, sign-out.

`gateway login-link` stores a single-use code and prints a URL holding it.
Opening the URL consumes the code, sets the session cookie and redirects to
the page, so the code is neither left in the address bar nor sent on in a
Referer.  The cookie is `__Host-` prefixed (Secure, Path=/, no Domain: no
subdomain can set or overwrite it), HttpOnly and SameSite=Strict.
"""

from __future__ import annotations


from aiohttp import web

from gateway.api.call import (
    SECURITY_HEADERS,
    Call,
    empty_response,
    iso_time,
    json_response,
)
from gateway.api.caller import SESSION_COOKIE
from gateway.api.document import ApiDocument
from gateway.api.refusal import refusal_page
from gateway.api.rules import UserAdminRules
from gateway.authn import Authenticator
from gateway.errors import BadRequest, Forbidden, GatewayError, Unauthenticated
from gateway.store import SQLiteSessionStore, UserStore


_NOT_SIGNED_IN = "Not signed in"


class SessionEndpoints:
    def __init__(
        self,
        store: UserStore,
        sessions: SQLiteSessionStore,
        authenticator: Authenticator,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._authenticator = authenticator

    async def login(self, call: Call, document: ApiDocument) -> web.Response:
        code = call.query("code").get("code")
        if not code:
            raise BadRequest("The login code is missing; open the whole link.",
                             reason="login_code_missing")

        user_id = self._sessions.consume_login_code(code)
        user = await self._store.get_user(user_id) if user_id is not None else None
        if user is None:
            return refusal_page(call, Unauthenticated(
                "The login link is invalid, used or expired; print a new one with "
                "gateway login-link.", reason="login_code_invalid"), _NOT_SIGNED_IN)
        try:
            self._authenticator.principal(user, "session", call.snapshot.roles)
        except GatewayError as error:
            return refusal_page(call, error, _NOT_SIGNED_IN)
        if user.type != "standard":
            return refusal_page(call, Forbidden(
                "Service users authenticate with an API key.",
                reason="service_user_session"), _NOT_SIGNED_IN)

        settings = call.snapshot.config.gateway_api
        token, _ = self._sessions.create_session(user.id, settings.session_seconds)
        call.record.subject = user.id
        call.record.role = user.role
        response = web.Response(status=303, headers=SECURITY_HEADERS)
        response.headers["Location"] = settings.prefix + "users/"
        response.set_cookie(SESSION_COOKIE, token, path="/", secure=True,
                            httponly=True, samesite="Strict",
                            max_age=int(settings.session_seconds))
        return response

    async def get_session(self, call: Call, document: ApiDocument) -> web.Response:
        call.query()
        caller = call.caller
        principal = caller.principal
        user = await self._store.get_user(principal.user_id)
        rules = UserAdminRules(call.snapshot.policy, call.snapshot.config.roles)
        return json_response({
            "user": {"id": user.id, "name": user.name, "email": user.email,
                     "role": user.role, "type": user.type, "active": user.active},
            "csrf_token": caller.session.csrf_token if caller.session else None,
            "expires_at": iso_time(principal.expires_at),
            "roles": list(call.snapshot.config.roles),
            "permissions": rules.permissions(principal),
        })

    async def end_session(self, call: Call, document: ApiDocument) -> web.Response:
        caller = call.caller
        if caller.session_token is None:
            raise BadRequest("Only a page session can be ended; bearer tokens and "
                             "API keys are not sessions.", reason="not_a_session")

        self._sessions.end_session(caller.session_token)
        response = empty_response()
        response.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                            samesite="Strict")
        return response
