"""The offline decider against the shipped config and policy."""

from __future__ import annotations

import pytest

from gateway.authz.reference import RELATIONS, compiled_allows
from gateway.policytools.offline import ObjectError, Subject

MANAGER = Subject(role="chat_manager", user_id="u-manager")
OPERATOR = Subject(role="chat_operator", user_id="u-op-1")
OWNER = Subject(role="owner", user_id="u-owner")


@pytest.mark.parametrize(
    ("subject", "request_line", "obj", "decision", "reason"),
    [
        (OWNER, "GET /api/1/account/billing/", None, "allow", "allowed"),
        (MANAGER, "GET /api/1/account/", None, "deny", "policy_denied"),
        (OWNER, "GET /api/1/unknown/", None, "deny", "no_route"),
        (OWNER, "POST /api/1/account/", None, "deny", "method_not_allowed"),
        (OWNER, "get /api/1/account/", None, "deny", "method_invalid"),
        (OWNER, "GET /api/1/chats/%2e%2e/account/", None, "deny", "path_ambiguous"),
        (OWNER, "GET /api/1/chats/?access_token=x", None, "deny", "token_in_url"),
        (OPERATOR, "GET /api/1/chats/1/", {"assignee": "u-op-1"}, "allow", "allowed"),
        (OPERATOR, "GET /api/1/chats/2/", {"assignee": "u-op-2"}, "deny",
         "object_not_own"),
        (OPERATOR, "GET /api/1/chats/4/", {"assignee": None}, "deny", "object_not_own"),
        (OPERATOR, "GET /api/1/chats/1/", None, "needs_object", "object_needed"),
        (OPERATOR, "GET /api/1/contacts/1/", {"operators": ["u-op-3", "u-op-1"]},
         "allow", "allowed"),
        (OPERATOR, "POST /api/1/chats/1/assign/", None, "deny", "policy_denied"),
        (OPERATOR, "POST /api/1/messages/send_by_phone/", None, "deny",
         "policy_denied"),
        (Subject(role="guest", user_id="u-x"), "GET /api/1/lists/", None, "deny",
         "role_unknown"),
        (Subject(role="", user_id="u-x", refusal="user_unknown"), "GET /api/1/lists/",
         None, "deny", "user_unknown"),
    ],
)
def test_decision_table(decider, subject, request_line, obj, decision, reason):
    method, target = request_line.split()
    result = decider.decide(subject, method, target, obj=obj)
    assert result.decision == decision
    assert result.reason == reason


def test_policy_denial_names_action_and_resource(decider):
    result = decider.decide(OPERATOR, "POST", "/api/1/lists/1/contacts/")

    assert result.reason == "policy_denied"
    assert result.detail == "Role 'chat_operator' may not do add_member on lists."


def test_own_grant_reports_line_and_scope(decider):
    result = decider.decide(OPERATOR, "GET", "/api/1/chats/1/",
                            obj={"assignee": "u-op-1"})
    assert result.route == "GET /api/1/chats/{id}/"
    assert (result.resource, result.action) == ("chats", "read")
    assert result.policy_line == "roles.csv:16"
    assert result.scope == "own"
    assert result.object_check == "own"
    assert result.role_chain == ("chat_operator",)


def test_inherited_grant_shows_role_chain(decider):
    result = decider.decide(OWNER, "GET", "/api/1/tags/")
    assert result.decision == "allow"
    assert result.role_chain == ("owner", "administrator", "chat_manager",
                                 "chat_operator")


def test_list_filter_is_forced(decider):
    result = decider.decide(OPERATOR, "GET", "/api/1/chats/?assignee=u-op-2&page=2")
    assert result.decision == "allow"
    assert result.filter == {"assignee": "u-op-1"}


def test_manager_list_is_not_filtered(decider):
    result = decider.decide(MANAGER, "GET", "/api/1/chats/?assignee=u-op-2")
    assert result.scope == "all"
    assert result.filter is None


def test_guarded_field_needs_its_action(decider):
    result = decider.decide(OPERATOR, "PATCH", "/api/1/chats/1/",
                            obj={"assignee": "u-op-1"}, fields=frozenset({"assignee"}))
    assert result.decision == "deny"
    assert result.reason == "field_denied"


def test_object_without_owner_field(decider):
    with pytest.raises(ObjectError, match="'assignee'"):
        decider.decide(OPERATOR, "GET", "/api/1/chats/1/", obj={"owner": "u-op-1"})


def test_own_scope_without_user_id(decider):
    result = decider.decide(Subject(role="chat_operator"), "GET", "/api/1/chats/")
    assert result.decision == "deny"
    assert result.reason == "user_needed"


def _object_for(route, relation: str) -> dict | None:
    if route.object is None:
        return None
    owner = "u-op-1" if relation == "own" else "u-op-2"
    if route.object.owners_field == "operators":
        return {"operators": [owner]}
    return {route.object.owners_field: owner}


def test_agrees_with_casbin_on_every_route(decider):
    """Every route, role and relation: the decider, the index and plain Casbin agree."""
    policy = decider.policy
    checked = 0
    for route in decider.config.routes:
        target = "/" + "/".join(
            "7" if segment.is_parameter else segment.text
            for segment in route.path.segments
        )
        for role in policy.roles:
            for relation in RELATIONS:
                subject = Subject(role=role, user_id="u-op-1")
                result = decider.decide(subject, route.methods[0], target,
                                        obj=_object_for(route, relation))
                casbin = policy.enforce_reference(role, route.resource, route.action,
                                                  relation)
                index = compiled_allows(policy, role, route.resource, route.action,
                                        relation)
                label = f"{role} {route.name} ({relation})"
                assert index == casbin, label
                if route.object is None and result.scope == "own":
                    # A filtered list is allowed and narrowed, whatever the relation.
                    assert result.decision == "allow", label
                else:
                    assert (result.decision == "allow") == casbin, label
                checked += 1

    assert checked == len(decider.config.routes) * len(policy.roles) * 2
