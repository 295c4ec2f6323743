"""One structured line per request: who asked for what, and what was decided."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("gateway.decision")


@dataclass(slots=True)
class DecisionRecord:
    request_id: str
    method: str
    path: str
    subject: str | None = None
    role: str | None = None
    user_type: str | None = None
    route: str | None = None
    resource: str | None = None
    action: str | None = None
    scope: str | None = None
    decision: str = "deny"
    reason: str = "internal_error"
    policy_line: str | None = None
    policy_revision: str | None = None
    status: int = 500
    upstream_status: int | None = None
    duration_ms: float = 0.0

    def emit(self) -> None:
        if log.isEnabledFor(logging.INFO):
            # Every field is a plain value, so a shallow copy is enough; asdict
            # would copy each field recursively.
            log.info("decision",
                     extra={name: getattr(self, name) for name in self.__slots__})
