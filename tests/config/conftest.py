"""Fixtures for the config tests: a folder holding a config file and its policies."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = PROJECT_ROOT / "config.yaml"


@pytest.fixture
def shipped_text() -> str:
    return SHIPPED_CONFIG.read_text()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Return a function that writes config text next to a copy of `policies/`.

    The shipped config names its policy files by relative paths, so the copy
    loads the same policy from the temporary folder.
    """
    shutil.copytree(PROJECT_ROOT / "policies", tmp_path / "policies")

    def write(text: str) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        return path

    return write
