"""Sign-in for the users page: login links, the session cookie, sign-out.

`gateway login-link` stores a single-use code and prints a URL holding it.
Opening the URL (GET) only shows whose account the link signs in to, with a
button, so a chat app or mail scanner that fetches the link to preview it
uses up nothing.  The button POSTs the code from the gateway's own origin,
which consumes it, sets the session cookie and redirects to the page.  So
the code is neither left in the address bar nor sent on in a Referer, and
another site cannot sign a visitor in to an account of its choosing.  The
cookie is `__Host-` prefixed (Secure, Path=/, no Domain: no subdomain can
set or overwrite it), HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qsl

from aiohttp import web

from gateway.api.call import (
    SECURITY_HEADERS,
    Call,
    empty_response,
    iso_time,
    json_response,
)
from gateway.api.caller import SESSION_COOKIE, check_own_origin
from gateway.api.document import ApiDocument
from gateway.api.refusal import refusal_page
from gateway.api.rules import UserAdminRules
from gateway.authn import Authenticator
from gateway.authz.fields import read_body
from gateway.errors import BadRequest, Forbidden, GatewayError, Unauthenticated
from gateway.forward.body import check_body_headers
from gateway.store import SQLiteSessionStore, User, UserStore

_NOT_SIGNED_IN = "Not signed in"
_FORM = frozenset({"application/x-www-form-urlencoded"})
MAX_FORM_BYTES = 1024  # a code is 47 characters
_CONFIRM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to the users page</title>
<link rel="stylesheet" href="static/users.css"></head>
<body><main>
<h1>Sign in to the users page</h1>
<p>This link signs you in as <strong>{name}</strong> ({email}), role {role}.
If that is not your account, close this page.</p>
<form method="post" action="login">
<input type="hidden" name="code" value="{code}">
<button type="submit">Sign in</button>
</form>
</main></body></html>
"""
_CONFIRM_POLICY = ("default-src 'none'; style-src 'self'; form-action 'self'; "
                   "frame-ancestors 'none'; base-uri 'none'")


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

    async def confirm_login(self, call: Call, document: ApiDocument) -> web.Response:
        """Show whose account a login link opens, with a button that signs in."""
        code = call.query("code").get("code")
        if not code:
            raise BadRequest("The login code is missing; open the whole link.",
                             reason="login_code_missing")

        user_id = self._sessions.find_login_code(code)
        user = await self._login_user(call, user_id)
        if isinstance(user, web.Response):
            return user

        body = _CONFIRM_PAGE.format(name=html.escape(user.name),
                                    email=html.escape(user.email),
                                    role=html.escape(user.role),
                                    code=html.escape(code))
        headers = dict(SECURITY_HEADERS)
        headers["Content-Security-Policy"] = _CONFIRM_POLICY
        # Under no-referrer the Fetch standard (and Chromium) sends "Origin: null"
        # on the form's POST, which the POST refuses.  same-origin sends this
        # page's URL, code included, only to the gateway itself.
        headers["Referrer-Policy"] = "same-origin"
        return web.Response(text=body, content_type="text/html", headers=headers)

    async def login(self, call: Call, document: ApiDocument) -> web.Response:
        """Consume a login code sent by the sign-in button and open a session."""
        call.query()
        try:
            check_own_origin(call.request, call.snapshot,
                             detail="Sign in with the button on the login link's "
                                    "page at {origin}.")
        except Forbidden as error:
            return refusal_page(call, error, _NOT_SIGNED_IN)
        code = await _form_code(call)

        user_id = self._sessions.consume_login_code(code)
        user = await self._login_user(call, user_id)
        if isinstance(user, web.Response):
            return user

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

    async def _login_user(self, call: Call, user_id: str | None) -> User | web.Response:
        """Return the standard, active user of a login code, or a refusal page."""
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

        return user

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


async def _form_code(call: Call) -> str:
    """Return the `code` field of the sign-in form, or raise 400, 413 or 415."""
    request = call.request
    check_body_headers(request.headers, _FORM)
    body = await read_body(request, call.snapshot.config.limits, MAX_FORM_BYTES)
    try:
        fields = parse_qsl(body.decode("ascii"), keep_blank_values=True,
                           strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The sign-in form is not a valid form body.",
                         reason="body_invalid") from None

    if [name for name, _ in fields] != ["code"] or not fields[0][1]:
        raise BadRequest("The sign-in form takes exactly one field, code.",
                         reason="login_code_missing")
    return fields[0][1]
