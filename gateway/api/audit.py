"""The audit trail: every change to users and API keys, newest first."""

from __future__ import annotations

from aiohttp import web

from gateway.api.call import Call, json_response
from gateway.api.document import ApiDocument
from gateway.api.rules import UserAdminRules
from gateway.api.users import decode_cursor, encode_cursor, page_limit
from gateway.errors import UnprocessableContent
from gateway.store import AuditEntry, UserStore


def entry_json(entry: AuditEntry) -> dict:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
    }


class AuditEndpoints:
    def __init__(self, store: UserStore) -> None:
        self._store = store

    async def list_audit(self, call: Call, document: ApiDocument) -> web.Response:
        query = call.query("limit", "cursor")
        rules = UserAdminRules(call.snapshot.policy, call.snapshot.config.roles)
        allowed = rules.require_any(call.principal, "audit", "list")
        call.allowed_by(next(iter(allowed.values())))

        before_id = None
        if "cursor" in query:
            before_id = decode_cursor(query["cursor"])
            if not isinstance(before_id, int) or isinstance(before_id, bool) or not (
                0 < before_id < 2**63
            ):
                raise UnprocessableContent("The cursor is not one this API returned.",
                                           field="cursor")
        limit = page_limit(query.get("limit"))

        entries = await self._store.list_audit(before_id=before_id, limit=limit + 1)
        page = entries[:limit]
        next_cursor = encode_cursor(page[-1].id) if len(entries) > limit else None
        return json_response({"items": [entry_json(entry) for entry in page],
                              "next_cursor": next_cursor})
