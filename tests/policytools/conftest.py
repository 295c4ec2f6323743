"""Fixtures for the policy tools: a decider on the shipped files, a config with a store."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from gateway.config.derive import derive_config
from gateway.policytools.offline import OfflineDecider, load_decider
from gateway.store import SQLiteUserStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = PROJECT_ROOT / "config.yaml"

# Users added to the store of `store_config`, by id, with their role.
USERS = {
    "u-owner": "owner",
    "u-manager": "chat_manager",
    "u-op-1": "chat_operator",
    "u-op-2": "chat_operator",
}
INACTIVE_USER = "u-gone"


@pytest.fixture(scope="session")
def decider() -> OfflineDecider:
    return load_decider(SHIPPED_CONFIG)


@pytest.fixture
def store_config(tmp_path: Path) -> Path:
    """Return a copy of config.yaml whose store contains USERS and one inactive user."""
    config_file = derive_config(SHIPPED_CONFIG, tmp_path / "config.yaml", {
        ("store", "sqlite"): tmp_path / "gateway.db",
        ("authentication", "jwt", "secret_file"): tmp_path / "jwt-secret",
    })

    async def add_users() -> None:
        store = SQLiteUserStore(tmp_path / "gateway.db")
        try:
            for user_id, role in {**USERS, INACTIVE_USER: "owner"}.items():
                await store.add_user(name=user_id, email=f"{user_id}@example.com",
                                     role=role, type="standard", user_id=user_id)
            await store.set_active(INACTIVE_USER, False)
        finally:
            await store.close()

    asyncio.run(add_users())
    return config_file


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """Return a copy of the shipped policies/ folder that a test may edit."""
    target = tmp_path / "policies"
    shutil.copytree(PROJECT_ROOT / "policies", target)
    return target
