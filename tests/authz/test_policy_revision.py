"""The policy revision: a git commit for committed files, else a content hash."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gateway.authz.revision import policy_revision

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def copy_policies(folder: Path) -> tuple[Path, Path]:
    shutil.copytree(POLICIES, folder, dirs_exist_ok=True)
    return folder / "model.conf", folder / "roles.csv"


def git(folder: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=Test", "-c",
         "user.email=test@example.com", *arguments],
        check=True, capture_output=True, text=True,
    ).stdout


def test_revision_outside_git_is_content_hash(tmp_path):
    model, roles = copy_policies(tmp_path / "policies")

    first = policy_revision(model, roles)
    roles.write_text(roles.read_text() + "p, owner, billing, read, all\n")
    second = policy_revision(model, roles)

    assert first.startswith("sha256:")
    assert second != first, "another content is another revision"


def test_revision_of_committed_files_is_commit(tmp_path):
    model, roles = copy_policies(tmp_path / "policies")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "Add policies")
    commit = git(tmp_path, "rev-parse", "HEAD").strip()

    assert policy_revision(model, roles) == f"git:{commit[:12]}"


def test_revision_of_edited_files_is_content_hash(tmp_path):
    model, roles = copy_policies(tmp_path / "policies")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "Add policies")

    roles.write_text(roles.read_text() + "\n")

    assert policy_revision(model, roles).startswith("sha256:"), (
        "an uncommitted edit is not the commit's policy"
    )
