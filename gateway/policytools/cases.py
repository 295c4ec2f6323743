"""`gateway test`: YAML test cases decided offline against the policy files.

A case file is a YAML list; each case is a mapping:

    - name: operator reads own chat        # required, unique within the file
      as: {role: chat_operator, user: u-op-1}   # role required; user for "own"
      request: GET /api/1/chats/1/         # METHOD and target, query included
      object: {assignee: u-op-1}           # optional: the object's owner field
      body: {assignee: u-op-2}             # optional: its top-level keys count
      expect: allow                        # or deny, needs_object, or a mapping

An `expect` mapping names `decision` and any of `reason`, `scope`,
`policy_line` (such as `roles.csv:16`), `role_chain` (such as
`[chat_manager, chat_operator]`) and `filter` (the forced query
parameter, such as `{assignee: u-op-1}`). Each named key must match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gateway.errors import ConfigError
from gateway.policytools.offline import (
    ALLOW,
    DENY,
    NEEDS_OBJECT,
    Decision,
    ObjectError,
    OfflineDecider,
    Subject,
)

DECISIONS = (ALLOW, DENY, NEEDS_OBJECT)
_CASE_KEYS = {"name", "as", "request", "object", "body", "expect"}
_EXPECT_KEYS = {"decision", "reason", "scope", "policy_line", "role_chain", "filter"}


@dataclass(frozen=True)
class Case:
    file: Path
    line: int
    name: str
    subject: Subject
    method: str
    target: str
    obj: dict | None
    fields: frozenset[str]
    expect: dict


@dataclass
class Result:
    case: Case
    decision: Decision | None
    # One "key: expected X, got Y" line per mismatch; empty when the case passed.
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(file: Path) -> list[Case]:
    """Read and validate one case file, or raise ConfigError naming file and line."""
    try:
        text = file.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except OSError as error:
        raise ConfigError(file, f"cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(file, f"invalid YAML: {error}", line=line) from None

    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(file, "expected a list of test cases")

    cases = []
    names: set[str] = set()
    for index, entry in enumerate(data):
        line = node.value[index].start_mark.line + 1
        case = _build_case(file, line, index, entry)
        if case.name in names:
            raise ConfigError(file, f"duplicate case name {case.name!r}", line=line,
                              key=f"[{index}].name")
        names.add(case.name)
        cases.append(case)

    return cases


def _build_case(file: Path, line: int, index: int, entry) -> Case:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(file, message, line=line, key=f"[{index}]{key}")

    if not isinstance(entry, dict):
        raise fail("", "a case must be a mapping with name, as, request and expect")
    unknown = set(entry) - _CASE_KEYS
    if unknown:
        raise fail("", f"unknown keys {sorted(unknown)}; allowed: {sorted(_CASE_KEYS)}")
    for key in ("name", "as", "request", "expect"):
        if key not in entry:
            raise fail(f".{key}", "missing")

    name = entry["name"]
    if not isinstance(name, str) or not name.strip():
        raise fail(".name", "must be a non-empty string")

    subject = entry["as"]
    if not isinstance(subject, dict) or not isinstance(subject.get("role"), str):
        raise fail(".as", "must be a mapping with a role, such as "
                   "{role: chat_operator, user: u-op-1}")
    if set(subject) - {"role", "user"}:
        raise fail(".as", "allowed keys are role and user")

    request = entry["request"]
    parts = request.split() if isinstance(request, str) else []
    if len(parts) != 2:
        raise fail(".request", "must be 'METHOD TARGET', such as "
                   "'GET /api/1/chats/1/'")

    if not parts[0].isupper():
        raise fail(".request", f"method {parts[0]!r} must be upper case, as the "
                   "gateway reads methods case-sensitively")

    for key in ("object", "body"):
        if entry.get(key) is not None and not isinstance(entry[key], dict):
            raise fail(f".{key}", "must be a mapping")

    return Case(
        file=file,
        line=line,
        name=name,
        subject=Subject(role=subject["role"], user_id=_text(subject.get("user"))),
        method=parts[0],
        target=parts[1],
        obj=entry.get("object"),
        fields=frozenset(entry.get("body") or ()),
        expect=_build_expect(entry["expect"], fail),
    )


def _build_expect(expect, fail) -> dict:
    if isinstance(expect, str):
        expect = {"decision": expect}
    if not isinstance(expect, dict) or "decision" not in expect:
        raise fail(".expect", f"must be one of {', '.join(DECISIONS)} or a mapping "
                   "with a decision")
    unknown = set(expect) - _EXPECT_KEYS
    if unknown:
        raise fail(".expect", f"unknown keys {sorted(unknown)}; allowed: "
                   f"{sorted(_EXPECT_KEYS)}")
    if expect["decision"] not in DECISIONS:
        raise fail(".expect.decision", f"must be one of {', '.join(DECISIONS)}, "
                   f"not {expect['decision']!r}")
    if "filter" in expect and not isinstance(expect["filter"], dict):
        raise fail(".expect.filter", "must be a mapping such as {assignee: u-op-1}")

    return expect


def _text(value) -> str | None:
    return None if value is None else str(value)


def run_case(decider: OfflineDecider, case: Case) -> Result:
    """Decide one case and compare every expected key with the decision."""
    try:
        decision = decider.decide(case.subject, case.method, case.target,
                                  obj=case.obj, fields=case.fields)
    except ObjectError as error:
        return Result(case, None, [f"object: {error}"])

    actual = decision.to_dict()
    failures = []
    for key, expected in case.expect.items():
        if key == "filter":
            expected = {name: _filter_value(value) for name, value in expected.items()}
        if actual[key] != expected:
            failures.append(f"{key}: expected {_show(expected)}, got {_show(actual[key])}")

    if failures and "reason" not in case.expect:
        failures.append(f"(reason {decision.reason}, line {decision.policy_line or 'none'})")
    return Result(case, decision, failures)


def _filter_value(value):
    if isinstance(value, list):
        return [_text(item) for item in value]
    return _text(value)


def _show(value) -> str:
    return "none" if value is None else str(value)
