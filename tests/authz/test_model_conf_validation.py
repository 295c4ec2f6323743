"""`model.conf` must be the one model the compiled index implements.

Any other matcher, effect or definition is a ConfigError naming its line, so
the index never decides under rules it does not implement.
"""

from pathlib import Path

import pytest

from gateway.authz.policy import load_policy
from gateway.authz.policy_file import read_model
from gateway.errors import ConfigError

MATCHER = (
    "m = g(r.sub, p.sub) && r.res == p.res && r.act == p.act"
    ' && (p.scope == "all" || p.scope == r.rel)'
)
EFFECT = "e = some(where (p.eft == allow))"

# old text, new text, a marker inside the new text whose line the error must
# name ("" is where the new text starts, None means no line), and a part of
# the message.
BAD_MODELS = [
    pytest.param(
        "r.act == p.act &&",
        "r.act == p.act ||",
        "",
        "[matchers] m is not the supported model",
        id="matcher-or",
    ),
    pytest.param(
        '(p.scope == "all" || p.scope == r.rel)',
        "true",
        "",
        "[matchers] m is not the supported model",
        id="matcher-without-scope",
    ),
    pytest.param(
        "r.res == p.res",
        "keyMatch2(r.res, p.res)",
        "",
        "[matchers] m is not the supported model",
        id="matcher-key-match",
    ),
    pytest.param(
        "g(r.sub, p.sub)",
        "r.sub == p.sub",
        "",
        "[matchers] m is not the supported model",
        id="matcher-without-roles",
    ),
    pytest.param(
        MATCHER,
        MATCHER + ' || r.sub == "owner"',
        "m = ",
        "[matchers] m is not the supported model",
        id="matcher-extra-clause",
    ),
    pytest.param(
        EFFECT,
        "e = !some(where (p.eft == deny))",
        "e = ",
        "[policy_effect] e is not the supported model",
        id="effect-deny-override",
    ),
    pytest.param(
        EFFECT,
        "e = priority(p.eft) || deny",
        "e = ",
        "[policy_effect] e is not the supported model",
        id="effect-priority",
    ),
    pytest.param(
        EFFECT,
        EFFECT + "  # allow wins",
        "e = ",
        "[policy_effect] e is not the supported model",
        id="inline-comment",
    ),
    pytest.param(
        "r = sub, res, act, rel",
        "r = sub, res, act, rel, ip",
        "r = ",
        "[request_definition] r is not the supported model",
        id="request-extra-field",
    ),
    pytest.param(
        "p = sub, res, act, scope",
        "p = sub, act, res, scope",
        "p = ",
        "[policy_definition] p is not the supported model",
        id="policy-fields-reordered",
    ),
    pytest.param(
        "p = sub, res, act, scope",
        "p = sub, res, act, scope, eft",
        "p = ",
        "[policy_definition] p is not the supported model",
        id="policy-with-effect-field",
    ),
    pytest.param(
        "g = _, _",
        "g = _, _, _",
        "g = ",
        "[role_definition] g is not the supported model",
        id="roles-with-domain",
    ),
    pytest.param(
        "[policy_effect]\n" + EFFECT + "\n",
        "",
        None,
        "missing 'e = ...' in section [policy_effect]",
        id="missing-effect",
    ),
    pytest.param(
        "[matchers]\n" + MATCHER,
        "",
        None,
        "missing 'm = ...' in section [matchers]",
        id="missing-matchers",
    ),
    pytest.param(
        "[role_definition]\ng = _, _\n",
        "",
        None,
        "missing 'g = ...' in section [role_definition]",
        id="missing-role-definition",
    ),
    pytest.param(
        "[matchers]",
        "[matcher]",
        None,
        "missing 'm = ...' in section [matchers]",
        id="misspelt-section",
    ),
    pytest.param(
        "g = _, _\n",
        "g = _, _\ng2 = _, _\n",
        "g2 = ",
        "unsupported entry 'g2' in [role_definition]",
        id="unknown-key",
    ),
    pytest.param(
        MATCHER,
        MATCHER + "\n\n[policy_definition2]\np2 = sub, obj",
        "p2 = ",
        "unsupported entry 'p2' in [policy_definition2]",
        id="unknown-section",
    ),
    pytest.param(
        "g = _, _",
        "g _, _",
        "g _",
        "expected 'key = value' in a section",
        id="entry-without-equals",
    ),
    pytest.param(
        "[request_definition]",
        "x = 1\n[request_definition]",
        "x = 1",
        "expected 'key = value' in a section",
        id="entry-before-section",
    ),
    pytest.param(
        "[request_definition]",
        "; note\n[request_definition]",
        "; note",
        "expected 'key = value' in a section",
        id="semicolon-comment",
    ),
    # Casbin keeps the spaces in the next three: the literal "a ll" never
    # equals "all", and "re l" and "= =" do not parse.
    pytest.param(
        'p.scope == "all"',
        'p.scope == "a ll"',
        "",
        "[matchers] m is not the supported model",
        id="space-inside-string-literal",
    ),
    pytest.param(
        "r = sub, res, act, rel",
        "r = sub, res, act, re l",
        "r = ",
        "[request_definition] r is not the supported model",
        id="space-inside-field-name",
    ),
    pytest.param(
        "r.act == p.act",
        "r.act = = p.act",
        "",
        "[matchers] m is not the supported model",
        id="space-inside-operator",
    ),
]


def expected_line(text: str, old: str, new: str, marker: str | None) -> int | None:
    """Return the line of `marker` inside `new` once `new` replaces `old` in `text`."""
    if marker is None:
        return None

    start = text.index(old)
    return text[:start].count("\n") + new[: new.index(marker)].count("\n") + 1


def test_shipped_model_accepted(policy_dir):
    text = read_model(policy_dir / "model.conf")

    assert MATCHER in text
    assert EFFECT in text


@pytest.mark.parametrize("old, new, marker, reason", BAD_MODELS)
def test_bad_model_rejected_with_line(
    policy_dir, shipped_config, old, new, marker, reason
):
    model_file = policy_dir / "model.conf"
    shipped = model_file.read_text()
    assert old in shipped
    model_file.write_text(shipped.replace(old, new, 1))

    with pytest.raises(ConfigError) as caught:
        load_policy(
            model_file,
            policy_dir / "roles.csv",
            roles=shipped_config.roles,
            actions=shipped_config.actions,
        )

    assert caught.value.file == str(model_file)
    assert caught.value.line == expected_line(shipped, old, new, marker)
    assert reason in caught.value.message


@pytest.mark.parametrize(
    "prefix, reason",
    [
        pytest.param(b"\xef\xbb\xbf", "byte order mark", id="byte-order-mark"),
        pytest.param(b"# caf\xe9\n", "not valid UTF-8", id="non-utf8-comment"),
    ],
)
def test_bad_encoding_rejected_on_line_one(policy_dir, prefix, reason):
    model_file = policy_dir / "model.conf"
    model_file.write_bytes(prefix + model_file.read_bytes())

    with pytest.raises(ConfigError) as caught:
        read_model(model_file)

    assert caught.value.line == 1
    assert reason in caught.value.message


@pytest.mark.parametrize(
    "old, new",
    [
        pytest.param("r = sub, res, act, rel", "r=sub,res,act,rel", id="no-spaces"),
        pytest.param(EFFECT, "e  =  some(where (p.eft == allow))  ", id="padded"),
        pytest.param("[matchers]", "# matcher below\n\n[matchers]", id="extra-comment"),
    ],
)
def test_spacing_variants_accepted(policy_dir, shipped_config, old, new):
    model_file = policy_dir / "model.conf"
    model_file.write_text(model_file.read_text().replace(old, new, 1))

    policy = load_policy(
        model_file,
        policy_dir / "roles.csv",
        roles=shipped_config.roles,
        actions=shipped_config.actions,
    )

    assert policy.enforce_reference("chat_operator", "chats", "read", "own") is True


def test_missing_model_file_rejected(policy_dir):
    missing = policy_dir / "absent.conf"

    with pytest.raises(ConfigError) as caught:
        read_model(missing)

    assert caught.value.file == str(missing)
    assert "cannot read file" in caught.value.message


def test_model_path_folder_rejected(policy_dir: Path):
    with pytest.raises(ConfigError) as caught:
        read_model(policy_dir)

    assert "cannot read file" in caught.value.message
