"""`gateway explain`: one request decided offline, with every fact behind it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

from gateway.config import Config
from gateway.policytools.offline import Decision, Subject
from gateway.store import SQLiteUserStore, User, UserStoreError


def subject_from_store(config: Config, user_id: str) -> Subject:
    """Read the user's role from the configured store, which must exist already.

    An unknown or deactivated user becomes a Subject whose `refusal` is the
    reason id the gateway would log.
    """
    path = Path(config.store_path)
    if not path.exists():
        raise UserStoreError(f"no users store at {path}; add users with "
                             "`gateway users add`")

    async def read():
        store = SQLiteUserStore(path)
        try:
            return await store.get_user(user_id)
        finally:
            await store.close()

    return subject_of(asyncio.run(read()), user_id)


def subject_of(user: User | None, user_id: str) -> Subject:
    """Return the Subject that `user`, as stored under `user_id`, decides as."""
    if user is None:
        return Subject(role="", user_id=user_id, refusal="user_unknown")
    if not user.active:
        return Subject(role=user.role, user_id=user_id, refusal="user_inactive")
    return Subject(role=user.role, user_id=user_id)


def parse_json_object(text: str | None, option: str) -> Mapping | None:
    """Parse an option's JSON object, or raise ValueError naming the option."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{option} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{option} must be a JSON object, such as "
                         '\'{"assignee": "u-op-1"}\'')
    return value


def format_decision(decision: Decision) -> str:
    """Render a decision as aligned `name: value` lines."""
    route = "none"
    if decision.route is not None:
        route = f"{decision.route} ({decision.resource} {decision.action})"
    chain = " -> ".join(decision.role_chain) or decision.role or "-"
    lines = [
        ("decision", decision.decision),
        ("reason", decision.reason),
        ("request", f"{decision.method} {decision.target}"),
        ("user", f"{decision.user_id or '-'} (role {decision.role or '-'})"),
        ("route", route),
        ("policy line", decision.policy_line or "none"),
        ("role chain", chain),
        ("scope", decision.scope or "-"),
    ]
    if decision.object_check is not None:
        lines.append(("object", decision.object_check))
    if decision.filter is not None:
        lines.append(("forced filter", json.dumps(decision.filter)))
    if decision.status is not None:
        lines.append(("status", str(decision.status)))
    if decision.detail:
        lines.append(("detail", decision.detail))

    width = max(len(name) for name, _ in lines) + 1
    return "\n".join(f"{name + ':':<{width}} {value}" for name, value in lines)
