"""The revision that names a policy in logs, metrics and `/readyz`.

It is the last git commit that touched the policy files when they are in a
repository and unchanged since that commit, else a hash of their content, so
a revision always names exactly the rows that decided.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

_GIT_TIMEOUT_SECONDS = 2.0


def policy_revision(model_file: Path, roles_file: Path) -> str:
    digest = hashlib.sha256(model_file.read_bytes() + b"\0" + roles_file.read_bytes())
    commit = _clean_commit(model_file, roles_file)
    if commit is not None:
        return f"git:{commit[:12]}"

    return f"sha256:{digest.hexdigest()[:12]}"


def _clean_commit(*files: Path) -> str | None:
    folder = files[0].parent
    names = [str(file.resolve()) for file in files]
    try:
        dirty = _git(folder, "status", "--porcelain", "--", *names)
        commit = _git(folder, "log", "-1", "--format=%H", "--", *names)
    except (OSError, subprocess.SubprocessError):
        return None

    if dirty is None or dirty.strip() or not commit:
        return None
    return commit.strip()


def _git(folder: Path, *arguments: str) -> str | None:
    # The repository's own settings may not run programs here.
    result = subprocess.run(
        ["git", "-C", str(folder), "-c", "core.fsmonitor=false", *arguments],
        capture_output=True, text=True, timeout=_GIT_TIMEOUT_SECONDS,
    )
    return result.stdout if result.returncode == 0 else None
