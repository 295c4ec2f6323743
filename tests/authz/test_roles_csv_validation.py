"""`roles.csv` is read strictly: every bad row is a ConfigError naming its line.

Casbin's own file adapter would drop, split or keep such rows without a word,
so each case here is one that plain Casbin loads differently from its text.
"""

from pathlib import Path

import pytest

from gateway.authz.policy import load_policy
from gateway.errors import ConfigError

# Bad rows go in at this line of the shipped file, between two `p` rows.
BAD_ROW_LINE = 20

BAD_ROWS = [
    pytest.param(
        b"p, owner, account, read", "a 'p' row has 5 fields", id="p-too-few-fields"
    ),
    pytest.param(
        b"p, owner, account, read, all, all",
        "a 'p' row has 5 fields",
        id="p-too-many-fields",
    ),
    pytest.param(b"g, owner", "a 'g' row has 3 fields", id="g-too-few-fields"),
    pytest.param(
        b"g, owner, administrator, chat_manager",
        "a 'g' row has 3 fields",
        id="g-too-many-fields",
    ),
    pytest.param(
        b"p, superuser, account, read, all",
        "unknown role 'superuser'",
        id="unknown-role",
    ),
    pytest.param(b"g, owner, root", "unknown role 'root'", id="g-unknown-role"),
    pytest.param(
        b"p, owner, payroll, read, all",
        "unknown resource 'payroll'",
        id="unknown-resource",
    ),
    pytest.param(
        b"p, owner, account, delete, all",
        "unknown action 'delete' on 'account'",
        id="action-not-routed-for-resource",
    ),
    pytest.param(
        b"p, owner, chats, destroy, all",
        "unknown action 'destroy' on 'chats'",
        id="unknown-action",
    ),
    pytest.param(
        b"p, owner, account, read, mine", "scope must be 'all' or 'own'", id="bad-scope"
    ),
    pytest.param(
        b"p, owner, account, read, ALL", "field 5 is 'ALL'", id="upper-case-scope"
    ),
    pytest.param(
        b'p, owner, "account", read, all',
        "character '\"' is not allowed",
        id="double-quotes",
    ),
    pytest.param(
        b'p, owner, "account, billing", read, all',
        "character '\"' is not allowed",
        id="quoted-comma",
    ),
    pytest.param(
        b"p, owner, 'account', read, all",
        'character "\'" is not allowed',
        id="single-quotes",
    ),
    pytest.param(
        b"p, owner, account, read, all # owner only",
        "character '#' is not allowed",
        id="inline-comment",
    ),
    pytest.param(
        b"p,\towner, account, read, all", "character '\\t' is not allowed", id="tab"
    ),
    pytest.param(b"P, owner, account, read, all", "field 1 is 'P'", id="upper-case-p"),
    pytest.param(
        b"p, Owner, account, read, all", "field 2 is 'Owner'", id="upper-case-role"
    ),
    pytest.param(
        b"x, owner, account, read, all",
        "row type must be 'p' or 'g'",
        id="unknown-row-type",
    ),
    pytest.param(
        b"p2, owner, account, read, all",
        "row type must be 'p' or 'g'",
        id="second-policy-type",
    ),
    pytest.param(b"p, owner, , read, all", "field 3 is ''", id="empty-field"),
    pytest.param(
        b"p, owner, account, read, all,", "field 6 is ''", id="trailing-comma"
    ),
    pytest.param(
        b"p, owner, account, re ad, all", "field 4 is 're ad'", id="space-inside-name"
    ),
    pytest.param(b"p; owner; account; read; all", "field 1 is", id="semicolons"),
    pytest.param(
        b"p, owner, account, read, all()",
        "character '(' is not allowed",
        id="parentheses",
    ),
    pytest.param(
        b"p, owner, account, eval(1), all",
        "character '(' is not allowed",
        id="eval-expression",
    ),
    pytest.param(
        b"p, owner, [account], read, all", "character '[' is not allowed", id="brackets"
    ),
    pytest.param(
        b"g, owner, owner", "role 'owner' inherits from itself", id="self-inheritance"
    ),
    pytest.param(
        b"p, owner, account, read, \xff", "not valid UTF-8", id="non-utf8-byte"
    ),
    pytest.param(
        "p, owner, account, réad, all".encode("latin-1"),
        "not valid UTF-8",
        id="latin-1-text",
    ),
]


def insert_line(data: bytes, line_number: int, row: bytes) -> bytes:
    lines = data.split(b"\n")
    return b"\n".join(lines[: line_number - 1] + [row] + lines[line_number - 1 :])


def load(policy_dir: Path, config):
    return load_policy(
        policy_dir / "model.conf",
        policy_dir / "roles.csv",
        roles=config.roles,
        actions=config.actions,
    )


def line_of(data: bytes, row: bytes) -> int:
    return data.split(b"\n").index(row) + 1


def test_shipped_roles_csv_loads(policy_dir, shipped_config):
    policy = load(policy_dir, shipped_config)

    rows = (policy_dir / "roles.csv").read_text().splitlines()
    assert len(policy.rules) == sum(row.startswith("p,") for row in rows)
    assert len(policy.inheritance) == 3


@pytest.mark.parametrize("row, reason", BAD_ROWS)
def test_bad_row_rejected_with_line(policy_dir, shipped_config, row, reason):
    roles_file = policy_dir / "roles.csv"
    roles_file.write_bytes(insert_line(roles_file.read_bytes(), BAD_ROW_LINE, row))

    with pytest.raises(ConfigError) as caught:
        load(policy_dir, shipped_config)

    assert caught.value.file == str(roles_file)
    assert caught.value.line == BAD_ROW_LINE
    assert reason in caught.value.message
    assert str(caught.value).startswith(f"{roles_file}:{BAD_ROW_LINE}: ")


@pytest.mark.parametrize(
    "copy",
    [
        pytest.param(b"p, chat_operator, chats, list, own", id="exact-copy"),
        pytest.param(b"p,chat_operator,chats,list,own", id="other-spacing"),
        pytest.param(b"  p ,  chat_operator , chats , list , own  ", id="padded"),
    ],
)
def test_duplicate_row_rejected_with_both_lines(policy_dir, shipped_config, copy):
    roles_file = policy_dir / "roles.csv"
    shipped = roles_file.read_bytes()
    original_line = line_of(shipped, b"p, chat_operator, chats, list, own")
    assert original_line < BAD_ROW_LINE
    roles_file.write_bytes(insert_line(shipped, BAD_ROW_LINE, copy))

    with pytest.raises(ConfigError) as caught:
        load(policy_dir, shipped_config)

    assert caught.value.line == BAD_ROW_LINE
    assert caught.value.message == f"duplicate of line {original_line}"


def test_byte_order_mark_rejected_on_line_one(policy_dir, shipped_config):
    roles_file = policy_dir / "roles.csv"
    roles_file.write_bytes(b"\xef\xbb\xbf" + roles_file.read_bytes())

    with pytest.raises(ConfigError) as caught:
        load(policy_dir, shipped_config)

    assert caught.value.line == 1
    assert "byte order mark" in caught.value.message


def test_inheritance_cycle_rejected_on_cycle_row(policy_dir, shipped_config):
    roles_file = policy_dir / "roles.csv"
    shipped = roles_file.read_bytes()
    closing_row = b"g, chat_operator, owner"
    roles_file.write_bytes(shipped + closing_row + b"\n")
    written = roles_file.read_bytes()
    cycle_rows = {
        line_of(written, row)
        for row in (
            b"g, chat_manager, chat_operator",
            b"g, administrator, chat_manager",
            b"g, owner, administrator",
            closing_row,
        )
    }

    with pytest.raises(ConfigError) as caught:
        load(policy_dir, shipped_config)

    assert caught.value.line == line_of(written, closing_row)
    assert "inheritance cycle" in caught.value.message
    assert "chat_operator -> owner" in caught.value.message
    listed = ", ".join(str(line) for line in sorted(cycle_rows))
    assert f"(rows on lines {listed})" in caught.value.message


def test_two_role_cycle_rejected_on_second_row(policy_dir, shipped_config):
    roles_file = policy_dir / "roles.csv"
    roles_file.write_text(
        "g, chat_manager, chat_operator\ng, chat_operator, chat_manager\n"
    )

    with pytest.raises(ConfigError) as caught:
        load(policy_dir, shipped_config)

    assert caught.value.line == 2
    assert "chat_manager -> chat_operator -> chat_manager" in caught.value.message


def test_too_deep_inheritance_rejected_with_line(policy_dir):
    # Ten roles in one chain: nine hops, one more than the reader accepts.
    roles = tuple(f"role_{i}" for i in range(10))
    roles_file = policy_dir / "roles.csv"
    rows = [f"g, {roles[i]}, {roles[i + 1]}" for i in range(len(roles) - 1)]
    roles_file.write_text("\n".join(rows) + "\n")

    with pytest.raises(ConfigError) as caught:
        load_policy(
            policy_dir / "model.conf",
            roles_file,
            roles=roles,
            actions=frozenset({("chats", "read")}),
        )

    assert "deeper than 9 levels" in caught.value.message
    assert caught.value.line in range(1, len(rows) + 1)


def test_missing_roles_file_rejected(policy_dir, shipped_config):
    (policy_dir / "roles.csv").unlink()

    with pytest.raises(ConfigError) as caught:
        load(policy_dir, shipped_config)

    assert "cannot read file" in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("p,owner,account,read,all\n", id="no-spaces"),
        pytest.param("p, owner, account, read, all\r\n", id="crlf"),
        pytest.param("  p , owner , account , read , all  \n", id="padded"),
        pytest.param(
            "\n# comment, with a comma\n\np, owner, account, read, all", id="comments"
        ),
        pytest.param("", id="empty-file"),
    ],
)
def test_layout_variants_load(policy_dir, shipped_config, text):
    (policy_dir / "roles.csv").write_text(text, newline="")

    policy = load(policy_dir, shipped_config)

    assert len(policy.rules) == (1 if text else 0)
