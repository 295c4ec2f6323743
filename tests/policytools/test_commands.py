"""`gateway explain`, `gateway test` and `gateway diff` through click's CliRunner."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main

from .conftest import INACTIVE_USER, PROJECT_ROOT, SHIPPED_CONFIG


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("user", "request_line", "obj", "exit_code", "decision", "reason"),
    [
        ("u-owner", "GET /api/1/account/", None, 0, "allow", "allowed"),
        ("u-manager", "GET /api/1/account/", None, 1, "deny", "policy_denied"),
        ("u-owner", "GET /api/1/none/", None, 1, "deny", "no_route"),
        ("u-op-1", "GET /api/1/chats/1/", '{"assignee": "u-op-1"}', 0, "allow",
         "allowed"),
        ("u-op-1", "GET /api/1/chats/2/", '{"assignee": "u-op-2"}', 1, "deny",
         "object_not_own"),
        ("u-op-1", "GET /api/1/chats/1/", None, 3, "needs_object", "object_needed"),
        ("u-nobody", "GET /api/1/lists/", None, 1, "deny", "user_unknown"),
        (INACTIVE_USER, "GET /api/1/lists/", None, 1, "deny", "user_inactive"),
    ],
)
def test_explain_table(store_config, user, request_line, obj, exit_code, decision,
                       reason):
    method, path = request_line.split()
    args = ["explain", "-c", str(store_config), "--as", user, method, path, "--json"]
    if obj is not None:
        args += ["--object", obj]
    result = run(*args)
    assert result.exit_code == exit_code, result.output
    output = json.loads(result.output)
    assert output["decision"] == decision
    assert output["reason"] == reason


def test_explain_text_names_line_and_chain(store_config):
    result = run("explain", "-c", str(store_config), "--as", "u-manager",
                 "GET", "/api/1/tags/")
    assert result.exit_code == 0
    assert "decision:" in result.output
    assert "GET /api/1/tags/ (tags list)" in result.output
    assert "roles.csv:28" in result.output
    assert "chat_manager -> chat_operator" in result.output
    assert "scope:       all" in result.output


def test_explain_filter_shown(store_config):
    result = run("explain", "-c", str(store_config), "--as", "u-op-1", "--json",
                 "GET", "/api/1/contacts/?operator=u-op-2")
    assert result.exit_code == 0
    assert json.loads(result.output)["filter"] == {"operator": "u-op-1"}


def test_explain_rejects_bad_object(store_config):
    result = run("explain", "-c", str(store_config), "--as", "u-op-1",
                 "GET", "/api/1/chats/1/", "--object", "[1]")
    assert result.exit_code == 2
    assert "--object must be a JSON object" in result.output


def test_explain_without_store(tmp_path):
    from gateway.config.derive import derive_config

    config = derive_config(SHIPPED_CONFIG, tmp_path / "config.yaml", {
        ("store", "sqlite"): tmp_path / "missing.db",
        ("authentication", "jwt", "secret_file"): tmp_path / "jwt-secret",
    })
    result = run("explain", "-c", str(config), "--as", "u-op-1", "GET", "/api/1/lists/")
    assert result.exit_code == 1
    assert "no users store" in result.output
    assert not (tmp_path / "missing.db").exists()


CASES = """\
- name: operator reads own chat
  as: {role: chat_operator, user: u-op-1}
  request: GET /api/1/chats/1/
  object: {assignee: u-op-1}
  expect: allow
- name: operator list is filtered
  as: {role: chat_operator, user: u-op-1}
  request: GET /api/1/chats/?assignee=u-op-2
  expect: {decision: allow, filter: {assignee: u-op-1}}
- name: wrong expectation
  as: {role: chat_manager}
  request: GET /api/1/account/
  expect: allow
"""


def test_test_command_reports_failures(tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES)
    junit = tmp_path / "junit.xml"
    result = run("test", "-c", str(SHIPPED_CONFIG), str(cases), "--junit", str(junit))
    assert result.exit_code == 1
    assert f"PASS {cases}:1 operator reads own chat" in result.output
    assert f"FAIL {cases}:10 wrong expectation" in result.output
    assert "decision: expected allow, got deny" in result.output
    assert result.output.rstrip().endswith("2 passed, 1 failed")

    root = ElementTree.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == "3"
    assert root.get("failures") == "1"
    testcases = root.findall("testsuite/testcase")
    assert [case.get("name") for case in testcases] == [
        "operator reads own chat", "operator list is filtered", "wrong expectation"]
    failures = root.findall("testsuite/testcase/failure")
    assert len(failures) == 1
    assert "expected allow, got deny" in failures[0].get("message")


def test_test_command_quiet_prints_failures_only(tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES)

    result = run("test", "-c", str(SHIPPED_CONFIG), str(cases), "--quiet")

    assert "PASS" not in result.output
    assert f"FAIL {cases}:10 wrong expectation" in result.output


def test_test_command_progress_on_stderr(tmp_path):
    case = ("- name: manager reads chat {number}\n"
            "  as: {{role: chat_manager}}\n"
            "  request: GET /api/1/chats/{number}/\n"
            "  expect: allow\n")
    cases = tmp_path / "cases.yaml"
    cases.write_text("".join(case.format(number=n) for n in range(1, 1001)))

    result = CliRunner().invoke(main, ["test", "-c", str(SHIPPED_CONFIG), str(cases),
                                       "--quiet"])

    assert result.exit_code == 0, result.output
    assert "test: 1000 cases run, 0 failed" in result.stderr
    assert "test: 1000" not in result.stdout


def test_test_command_shipped_cases_pass():
    result = run("test", "-c", str(SHIPPED_CONFIG))
    assert result.exit_code == 0, result.output
    assert ", 0 failed" in result.output
    assert str(PROJECT_ROOT / "policies" / "tests" / "roles.yaml") in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- name: x\n  as: {role: owner}\n  request: GET\n  expect: allow\n",
         "[0].request: must be 'METHOD TARGET'"),
        ("- name: x\n  as: {role: owner}\n  request: get /\n  expect: allow\n",
         "[0].request: method 'get' must be upper case"),
        ("- name: x\n  as: {role: owner}\n  request: GET /\n  expect: maybe\n",
         "[0].expect.decision: must be one of"),
        ("- name: x\n  as: owner\n  request: GET /\n  expect: allow\n", "[0].as:"),
        ("- name: x\n  as: {role: owner}\n  request: GET /\n  expect: allow\n"
         "  colour: red\n", "unknown keys ['colour']"),
    ],
)
def test_test_command_invalid_case(tmp_path, text, message):
    cases = tmp_path / "bad.yaml"
    cases.write_text(text)
    result = run("test", "-c", str(SHIPPED_CONFIG), str(cases))
    assert result.exit_code == 1
    assert f"{cases}:1: " in result.output
    assert message in result.output


def _write_requests(file: Path, lines: list[dict]) -> None:
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _edit_roles(folder: Path, remove: str = "", add: str = "") -> None:
    roles = folder / "roles.csv"
    text = roles.read_text()
    if remove:
        assert remove + "\n" in text
        text = text.replace(remove + "\n", "")
    roles.write_text(text + add)


REQUESTS = [
    # A decision line of `gateway serve`, as the JSON formatter writes it.
    {"time": "2024-01-01T00:00:00.000Z", "level": "INFO", "logger": "gateway.decision",
     "message": "decision", "request_id": "r1", "method": "GET",
     "path": "/api/1/templates/", "subject": "u-manager", "role": "chat_manager",
     "decision": "deny", "reason": "policy_denied"},
    {"role": "administrator", "method": "GET", "path": "/api/1/tags/"},
    {"role": "chat_operator", "user": "u-op-1", "method": "GET",
     "path": "/api/1/chats/1/", "object": {"assignee": "u-op-1"}},
    # Another log message and a decision refused before the role was known.
    {"message": "reload done", "level": "INFO"},
    {"message": "decision", "method": "GET", "path": "/x", "role": None},
    # The line a stream gets when it opens; its line at the end is replayed.
    {"message": "decision", "method": "GET", "path": "/api/1/chats/1/events/",
     "role": "chat_operator", "subject": "u-op-1", "reason": "stream_opened"},
]


def test_diff_without_changes(tmp_path, policy_copy):
    requests = tmp_path / "requests.jsonl"
    _write_requests(requests, REQUESTS)
    result = run("diff", "-c", str(SHIPPED_CONFIG), str(PROJECT_ROOT / "policies"),
                 str(policy_copy), "--requests", str(requests))
    assert result.exit_code == 0, result.output
    assert "3 requests replayed, 0 flipped" in result.output
    assert "3 lines skipped" in result.output


def test_diff_summary_singular_counts(tmp_path, policy_copy):
    requests = tmp_path / "requests.jsonl"
    _write_requests(requests, [REQUESTS[1], REQUESTS[3]])
    result = run("diff", "-c", str(SHIPPED_CONFIG), str(PROJECT_ROOT / "policies"),
                 str(policy_copy), "--requests", str(requests))
    assert result.exit_code == 0, result.output
    assert "1 request replayed, 0 flipped" in result.output
    assert "; 1 line skipped" in result.output


def test_diff_lists_flips_both_ways(tmp_path, policy_copy):
    _edit_roles(policy_copy, remove="p, chat_operator, chats, read, own",
                add="p, chat_manager, templates, list, all\n")
    requests = tmp_path / "requests.jsonl"
    _write_requests(requests, REQUESTS + [REQUESTS[2]])
    result = run("diff", "-c", str(SHIPPED_CONFIG), str(PROJECT_ROOT / "policies"),
                 str(policy_copy), "--requests", str(requests))
    assert result.exit_code == 1
    assert ("deny -> allow: GET /api/1/templates/ as chat_manager (u-manager) "
            "(line 1)") in result.output
    assert "allow -> deny: GET /api/1/chats/1/ as chat_operator (u-op-1)" \
        in result.output
    assert "seen 2 times" in result.output
    assert "old: allow (allowed), roles.csv:16, scope own" in result.output
    assert "new: deny (policy_denied), no rule" in result.output
    assert "4 requests replayed, 3 flipped (2 allow -> deny, 1 deny -> allow)" \
        in result.output


def test_diff_lists_scope_change_of_allowed_request(tmp_path, policy_copy):
    _edit_roles(policy_copy, remove="p, chat_manager, dashboards, read, all")
    requests = tmp_path / "requests.jsonl"
    _write_requests(requests, [{"role": "chat_manager", "user": "u-manager",
                                "method": "GET", "path": "/api/1/dashboards/summary/"}])
    result = run("diff", "-c", str(SHIPPED_CONFIG), str(PROJECT_ROOT / "policies"),
                 str(policy_copy), "--requests", str(requests))
    assert result.exit_code == 1, result.output
    assert "allow scope all -> own: GET /api/1/dashboards/summary/ as chat_manager" \
        in result.output
    assert "1 request replayed, 1 flipped (1 allow scope all -> own)" in result.output


def test_diff_progress_on_stderr(tmp_path, policy_copy):
    requests = tmp_path / "requests.jsonl"
    _write_requests(requests, [REQUESTS[1]] * 10_000)
    result = CliRunner().invoke(main, ["diff", "-c", str(SHIPPED_CONFIG),
                                  str(PROJECT_ROOT / "policies"), str(policy_copy),
                                  "--requests", str(requests)])
    assert result.exit_code == 0
    assert "diff: 10000 requests replayed" in result.stderr
    assert "diff: 10000" not in result.stdout


def test_diff_rejects_non_json_line(tmp_path, policy_copy):
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"role": "owner", "method": "GET", "path": "/"}\nnot json\n')
    result = run("diff", "-c", str(SHIPPED_CONFIG), str(PROJECT_ROOT / "policies"),
                 str(policy_copy), "--requests", str(requests))
    assert result.exit_code == 1
    assert f"{requests}:2: not a JSON line" in result.output
