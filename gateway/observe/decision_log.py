"""One structured line per request: who asked for what, and what was decided."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from gateway.observe.decision_writer import DecisionWriter

log = logging.getLogger("gateway.decision")
MASK = "***"

# API keys (gwk_), embed tokens (gwe_), launch and login codes (gwc_, gwl_)
# and JWTs, should a client put one in a path.
_CREDENTIAL = re.compile(r"gw[kecl]_[A-Za-z0-9_\-]+|eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_.\-]*")


def redact_path(path: str) -> str:
    """Return `path` with anything that looks like a credential replaced."""
    if "gw" not in path and "eyJ" not in path:
        return path
    return _CREDENTIAL.sub(MASK, path)


# When set, decision lines bypass `logging` (see gateway.observe.decision_writer).
_writer: DecisionWriter | None = None


def use_writer(writer: DecisionWriter | None) -> None:
    """Send decision lines to `writer`, or back through `logging` with None."""
    global _writer
    _writer = writer


@dataclass(slots=True)
class DecisionRecord:
    request_id: str
    method: str
    path: str
    subject: str | None = None
    role: str | None = None
    user_type: str | None = None
    embed_session: str | None = None
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
    decision_ms: float | None = None
    duration_ms: float = 0.0
    started_at: float = 0.0  # time.perf_counter() at arrival; not logged

    def emit(self, masked: frozenset[str] = frozenset()) -> None:
        """Log the record once, with the values of `masked` fields replaced."""
        if not log.isEnabledFor(logging.INFO):
            return

        # Every field is a plain value, so a shallow copy is enough; asdict
        # would copy each field recursively.
        fields = {name: getattr(self, name) for name in self.__slots__
                  if name != "started_at"}
        for name in masked:
            if fields.get(name) is not None:
                fields[name] = MASK
        if _writer is not None:
            _writer.write(fields)
        else:
            log.info("decision", extra=fields)
