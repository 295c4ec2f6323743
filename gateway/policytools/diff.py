"""`gateway diff`: replay recorded requests against two policy trees.

A requests file contains one JSON object a line, either a decision line of
`gateway serve` (fields method, path, role, subject) or a plain
`{"role": ..., "method": ..., "path": ..., "object": {...}}`, where `user`
and `object` are optional.  A flip is any change of the decision between the
trees: allow, deny, or needs_object (an "own" grant on an object route whose
owners the line does not carry, as in every decision line).  A request allowed
by both trees flips too when its scope changes ("all" to "own" or back),
since that changes which objects and list items it reaches.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from gettext import ngettext
from pathlib import Path

from gateway.errors import ConfigError
from gateway.policytools.offline import (
    DENY,
    Decision,
    ObjectError,
    OfflineDecider,
    Subject,
)

PROGRESS_EVERY = 10_000


@dataclass(frozen=True)
class Replayed:
    line: int
    subject: Subject
    method: str
    path: str
    obj: dict | None


@dataclass
class Flip:
    """One distinct request whose decision differs, and how often it was seen."""

    first_line: int
    request: Replayed
    old: Decision
    new: Decision
    count: int = 1

    @property
    def direction(self) -> str:
        if self.old.decision == self.new.decision:
            return (f"{self.old.decision} scope {self.old.scope} -> "
                    f"{self.new.scope}")
        return f"{self.old.decision} -> {self.new.decision}"


@dataclass
class DiffReport:
    replayed: int = 0
    skipped: int = 0
    # (subject, method, path, object) -> the first flip seen for that request
    flips: dict[tuple, Flip] = field(default_factory=dict)

    def directions(self) -> Counter:
        counts: Counter = Counter()
        for flip in self.flips.values():
            counts[flip.direction] += flip.count
        return counts


def read_requests(file: Path) -> Iterator[Replayed | None]:
    """Yield each line as a request, or None for a JSON line that is not one.

    Raises ConfigError naming the line when a line is not a JSON object.
    """
    with file.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                entry = json.loads(text)
            except ValueError as error:
                raise ConfigError(file, f"not a JSON line: {error}", line=number) \
                    from None
            if not isinstance(entry, dict):
                raise ConfigError(file, "expected a JSON object", line=number)
            yield _request_from(entry, number)


def _request_from(entry: dict, number: int) -> Replayed | None:
    # Other log messages, and decisions refused before the role was known
    # (no route, bad credentials), carry no role to replay.
    if entry.get("message", "decision") != "decision":
        return None
    # A stream's second line, at its end, is the one replayed.
    if entry.get("reason") == "stream_opened":
        return None
    role, method, path = entry.get("role"), entry.get("method"), entry.get("path")
    if not all(isinstance(value, str) and value for value in (role, method, path)):
        return None

    user = entry.get("user", entry.get("subject"))
    obj = entry.get("object")
    return Replayed(
        line=number,
        subject=Subject(role=role, user_id=str(user) if user is not None else None),
        method=method,
        path=path,
        obj=obj if isinstance(obj, dict) else None,
    )


def diff_policies(
    old: OfflineDecider,
    new: OfflineDecider,
    file: Path,
    progress: Callable[[int], None] | None = None,
) -> DiffReport:
    """Decide every request of `file` with both deciders and collect the flips."""
    report = DiffReport()
    for request in read_requests(file):
        if request is None:
            report.skipped += 1
            continue

        try:
            old_decision = _decide(old, request)
            new_decision = _decide(new, request)
        except ObjectError as error:
            raise ConfigError(file, f"object: {error}", line=request.line) from None

        report.replayed += 1
        if progress is not None and report.replayed % PROGRESS_EVERY == 0:
            progress(report.replayed)
        if not _flipped(old_decision, new_decision):
            continue

        key = (request.subject, request.method, request.path,
               json.dumps(request.obj, sort_keys=True))
        if key in report.flips:
            report.flips[key].count += 1
        else:
            report.flips[key] = Flip(request.line, request, old_decision, new_decision)

    return report


def _flipped(old: Decision, new: Decision) -> bool:
    if old.decision != new.decision:
        return True
    return old.decision != DENY and old.scope != new.scope


def _decide(decider: OfflineDecider, request: Replayed) -> Decision:
    return decider.decide(request.subject, request.method, request.path,
                          obj=request.obj)


def format_flip(flip: Flip) -> str:
    request = flip.request
    who = request.subject.role
    if request.subject.user_id is not None:
        who += f" ({request.subject.user_id})"
    seen = f", seen {flip.count} times" if flip.count > 1 else ""
    obj = f" object {json.dumps(request.obj)}" if request.obj is not None else ""
    return (
        f"{flip.direction}: {request.method} {request.path} as {who}{obj} "
        f"(line {flip.first_line}{seen})\n"
        f"    old: {_describe(flip.old)}\n"
        f"    new: {_describe(flip.new)}"
    )


def _describe(decision: Decision) -> str:
    line = decision.policy_line or "no rule"
    return f"{decision.decision} ({decision.reason}), {line}, scope {decision.scope or '-'}"


def format_summary(report: DiffReport) -> str:
    directions = report.directions()
    flipped = sum(directions.values())
    parts = [f"{count} {direction}" for direction, count in sorted(directions.items())]
    detail = f" ({', '.join(parts)})" if parts else ""
    replayed = ngettext("{count} request replayed", "{count} requests replayed",
                        report.replayed).format(count=report.replayed)
    skipped = ngettext("{count} line skipped", "{count} lines skipped",
                       report.skipped).format(count=report.skipped)
    distinct = len(report.flips)
    summary = f"{replayed}, {flipped} flipped{detail}, {distinct} distinct; {skipped}"
    if report.skipped:
        summary += (" (other log lines, requests refused before their role was "
                    "known, and stream openings)")
    return summary
