"""`gateway service-users origins|sessions|end-sessions` on a real store file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.config.derive import derive_config
from gateway.store import SQLiteEmbedStore

REPOSITORY = Path(__file__).resolve().parents[2]


def gateway(config: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *arguments,
                           "-c", str(config)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    config = derive_config(REPOSITORY / "config.yaml", tmp_path / "config.yaml", {
        ("store", "sqlite"): tmp_path / "gateway.db",
        ("authentication", "jwt", "secret_file"): tmp_path / "jwt-secret",
    })
    added = gateway(config, "service-users", "add", "--name", "Help desk",
                    "--email", "desk@example.com", "--role", "chat_manager",
                    "--id", "svc-desk")
    assert added.returncode == 0, added.stderr
    return config


def test_origins_are_replaced_and_listed(config):
    gateway(config, "service-users", "origins", "svc-desk",
            "https://crm.example.com", "http://127.0.0.1:9000")

    listed = gateway(config, "service-users", "origins", "svc-desk")

    assert listed.stdout.split() == ["http://127.0.0.1:9000", "https://crm.example.com"]


def test_no_origins_listed_as_none(config):
    listed = gateway(config, "service-users", "origins", "svc-desk")

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "(none)\n"


def test_cleared_origins_listed_as_none(config):
    gateway(config, "service-users", "origins", "svc-desk", "https://crm.example.com")

    cleared = gateway(config, "service-users", "origins", "svc-desk", "--clear")

    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout == "(none)\n"


def test_origin_with_a_path_is_refused(config):
    result = gateway(config, "service-users", "origins", "svc-desk",
                     "https://crm.example.com/app")

    assert result.returncode == 2
    assert "is not an origin" in result.stderr


def test_origins_of_a_standard_user_are_refused(config):
    gateway(config, "users", "add", "--name", "Ana", "--email", "ana@example.com",
            "--role", "owner", "--id", "u-ana")

    result = gateway(config, "service-users", "origins", "u-ana")

    assert result.returncode == 1
    assert result.stderr.startswith("Error: no service user")


def test_unknown_session_cannot_be_ended(config):
    result = gateway(config, "service-users", "end-sessions", "svc-desk",
                     "--session", "es-0000")

    assert result.returncode == 1


@pytest.mark.parametrize(
    ("sessions", "expected"),
    [
        (0, "ended 0 embed sessions of svc-desk\n"),
        (1, "ended 1 embed session of svc-desk\n"),
        (2, "ended 2 embed sessions of svc-desk\n"),
    ],
)
def test_ended_sessions_counted(config, sessions, expected):
    embeds = SQLiteEmbedStore(load_config(config).store_path)
    try:
        for _ in range(sessions):
            embeds.create("svc-desk", key_prefix=None, origin="https://crm.example.com",
                          scope=None, lifetime=600, code_lifetime=60)
    finally:
        embeds.close()

    result = gateway(config, "service-users", "end-sessions", "svc-desk")

    assert result.returncode == 0, result.stderr
    assert result.stdout == expected
