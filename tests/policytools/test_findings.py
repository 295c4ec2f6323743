"""`gateway check` warnings: files that load but do not do what they seem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]
EXPORT_ROUTE = (
    "  - method: GET\n"
    "    path: /api/1/lists/export/\n"
    "    resource: lists\n"
    "    action: export\n"
)
OWN_SEND_BY_PHONE = "p, chat_operator, messages, send_by_phone, own\n"
ADMIN_DEMOTES_OWNERS = "p, administrator, users, update_role, owner\n"
MANAGER_DELETES_ANYONE = "p, chat_manager, users, delete, all\n"


def write_files(folder: Path, *, routes: str = "", roles: str = "") -> Path:
    shutil.copytree(REPOSITORY / "policies", folder / "policies")
    roles_file = folder / "policies" / "roles.csv"
    roles_file.write_text(roles_file.read_text() + roles)
    config = folder / "config.yaml"
    config.write_text((REPOSITORY / "config.yaml").read_text() + routes)
    return config


def check(config: Path, *arguments: str):
    return CliRunner().invoke(main, ["check", "-c", str(config), *arguments])


WARNINGS = [
    pytest.param({"routes": EXPORT_ROUTE},
                 "no role may export lists, so GET /api/1/lists/export/ always gets 403",
                 id="route-no-role-may-use"),
    pytest.param({"routes": EXPORT_ROUTE},
                 "/api/1/lists/{id}/ never sees 'export' as {id}",
                 id="parameter-shadowed-by-literal"),
    pytest.param({"roles": OWN_SEND_BY_PHONE},
                 "the 'own' grant of chat_operator cannot be checked on "
                 "POST /api/1/messages/send_by_phone/",
                 id="own-grant-unverifiable"),
    pytest.param({"roles": ADMIN_DEMOTES_OWNERS},
                 "administrator may update_role users with role owner",
                 id="administrator-changes-owners"),
    pytest.param({"roles": MANAGER_DELETES_ANYONE},
                 "chat_manager may delete users with role owner",
                 id="scope-all-reaches-owners"),
]


@pytest.mark.parametrize(("files", "expected"), WARNINGS)
def test_check_warns_and_passes(tmp_path, files, expected):
    result = check(write_files(tmp_path, **files))

    assert result.exit_code == 0, result.output
    assert expected in result.stderr
    assert "warning: " in result.stderr


def test_check_warning_names_file_and_line(tmp_path):
    config = write_files(tmp_path, roles=OWN_SEND_BY_PHONE)
    roles = tmp_path / "policies" / "roles.csv"
    line = roles.read_text().count("\n")

    result = check(config)

    assert f"{roles}:{line}: " in result.stderr


def test_strict_check_fails_on_warning(tmp_path):
    result = check(write_files(tmp_path, roles=OWN_SEND_BY_PHONE), "--strict")

    assert result.exit_code == 1
    assert result.stderr.count("warning: ") == 1
    assert "Error: 1 warning, and --strict is set" in result.stderr


def test_strict_check_counts_warnings(tmp_path):
    result = check(write_files(tmp_path, routes=EXPORT_ROUTE), "--strict")

    assert result.exit_code == 1
    assert result.stderr.count("warning: ") == 2
    assert "Error: 2 warnings, and --strict is set" in result.stderr


def test_shipped_files_have_no_warnings():
    result = check(REPOSITORY / "config.yaml", "--strict")

    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
