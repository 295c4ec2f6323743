"""`gateway explain` over HTTP: how the running policy decides a request for a user.

The request is decided offline on the snapshot in use, as the CLI does.  It
is never sent to the upstream, and nothing about the object is fetched.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.body import json_body
from gateway.api.call import Call, json_response
from gateway.api.document import ApiDocument
from gateway.api.rules import UserAdminRules
from gateway.errors import UnprocessableContent
from gateway.policytools.explain import subject_of
from gateway.policytools.offline import ObjectError, OfflineDecider
from gateway.store import UserStore


class ExplainEndpoint:
    def __init__(self, store: UserStore) -> None:
        self._store = store

    async def explain(self, call: Call, document: ApiDocument) -> web.Response:
        rules = UserAdminRules(call.snapshot.policy, call.snapshot.config.roles)
        allowed = rules.require_any(call.principal, "policy", "explain")
        call.allowed_by(next(iter(allowed.values())))
        body = await json_body(call, document, "ExplainRequest")

        user_id = body["user"]
        subject = subject_of(await self._store.get_user(user_id), user_id)
        snapshot = call.snapshot
        decider = OfflineDecider(snapshot.config, snapshot.policy, snapshot.routes)
        try:
            decision = decider.decide(subject, body["method"], body["path"],
                                      obj=body.get("object"),
                                      fields=frozenset(body.get("body") or ()))
        except ObjectError as error:
            raise UnprocessableContent(str(error), field="object") from None
        return json_response(decision.to_dict())
