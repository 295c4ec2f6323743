"""Fixtures for the policy tests: the shipped config and editable policy copies."""

import shutil
from pathlib import Path

import pytest

from gateway.config import Config, load_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shipped_config() -> Config:
    return load_config(PROJECT_ROOT / "config.yaml")


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """Return a copy of the shipped `policies/` folder that a test may edit."""
    target = tmp_path / "policies"
    shutil.copytree(PROJECT_ROOT / "policies", target)
    return target
