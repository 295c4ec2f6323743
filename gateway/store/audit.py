"""The audit trail's one writer: a row per change, in the change's transaction."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone

from gateway.store.base import Actor


def write_audit(db: sqlite3.Connection, by: Actor, action: str, target: str,
                before, after) -> None:
    """Insert one audit row; call it inside the transaction of the change."""
    db.execute(
        "INSERT INTO audit (at, actor, action, target, before, after, request_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            by.user_id,
            action,
            target,
            None if before is None else json.dumps(before, sort_keys=True),
            None if after is None else json.dumps(after, sort_keys=True),
            by.request_id,
        ),
    )
