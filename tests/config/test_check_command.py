"""`gateway check` exits 0 on good files and 1 with `Error: FILE:LINE` on bad ones."""

from click.testing import CliRunner

from gateway.cli import main


def run_check(config_file):
    return CliRunner().invoke(main, ["check", "--config", str(config_file)])


def test_check_accepts_shipped_config(write_config, shipped_text):
    config_file = write_config(shipped_text)

    result = run_check(config_file)

    routes = shipped_text.count("\n  - method")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK: {config_file}: {routes} routes, 4 roles, ")


def test_check_summary_singular_count(write_config, shipped_text, tmp_path):
    config_file = write_config(shipped_text)
    roles_file = tmp_path / "policies" / "roles.csv"
    removed = ("g, administrator, chat_manager", "g, owner, administrator")
    rows = roles_file.read_text().splitlines(keepends=True)
    roles_file.write_text("".join(row for row in rows if row.strip() not in removed))

    result = run_check(config_file)

    assert result.exit_code == 0, result.output
    assert " permissions, 1 inheritance row, policy revision " in result.output


def test_check_rejects_bad_config_with_line(write_config, shipped_text):
    config_file = write_config(shipped_text.replace("  port: 8080\n", "  port: x\n"))

    result = run_check(config_file)

    assert result.exit_code == 1
    assert f"Error: {config_file}:6: listen.port: " in result.output
    assert "Traceback" not in result.output


def test_check_rejects_bad_roles_row_with_line(write_config, shipped_text, tmp_path):
    config_file = write_config(shipped_text)
    roles_file = tmp_path / "policies" / "roles.csv"
    roles_file.write_text(
        roles_file.read_text() + "p, owner, account, read, everything\n"
    )
    last_line = len(roles_file.read_text().splitlines())

    result = run_check(config_file)

    assert result.exit_code == 1
    assert f"Error: {roles_file}:{last_line}: scope must be" in result.output


def test_check_rejects_changed_matcher_with_line(write_config, shipped_text, tmp_path):
    config_file = write_config(shipped_text)
    model_file = tmp_path / "policies" / "model.conf"
    model_file.write_text(model_file.read_text().replace("r.act == p.act", "true"))

    result = run_check(config_file)

    assert result.exit_code == 1
    assert f"Error: {model_file}:26: [matchers] m is not the supported model" in (
        result.output
    )


def test_check_rejects_unparsable_matcher_cleanly(write_config, shipped_text, tmp_path):
    # Without its spaces "= =" reads as "==", but Casbin cannot evaluate it.
    config_file = write_config(shipped_text)
    model_file = tmp_path / "policies" / "model.conf"
    model_file.write_text(
        model_file.read_text().replace("r.act == p.act", "r.act = = p.act")
    )

    result = run_check(config_file)

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"check raised {result.exception!r}"
    )
    assert f"Error: {model_file}:26: " in result.output


def test_check_rejects_duplicate_route(write_config, shipped_text):
    duplicate = (
        "  - method: GET\n"
        "    path: /api/1/chats/\n"
        "    resource: chats\n"
        "    action: read\n"
    )
    config_file = write_config(shipped_text + duplicate)

    result = run_check(config_file)

    assert result.exit_code == 1
    line = shipped_text.count("\n") + 1
    index = shipped_text.count("\n  - method")
    assert f"Error: {config_file}:{line}: routes[{index}]: " in result.output
    assert "GET '/api/1/chats/' is already routed" in result.output


def test_check_rejects_missing_config_file(tmp_path):
    missing = tmp_path / "absent.yaml"

    result = run_check(missing)

    assert result.exit_code == 1
    assert f"Error: {missing}: cannot read file" in result.output
