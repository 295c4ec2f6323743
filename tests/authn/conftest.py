"""Key material and JWT settings for the authentication tests.

Both gateways are derived from the shipped config.yaml: one verifies HS256
with a secret file, the other RS256 with a public key file.
"""

import dataclasses
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config import load_config
from gateway.config.derive import derive_config
from gateway.config.model import JWTConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def write_rsa_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """Write a new 2048-bit RSA key pair as PEM files; return (private, public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_file = folder / f"{name}-private.pem"
    public_file = folder / f"{name}-public.pem"
    private_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_file.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    return private_file, public_file


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory) -> tuple[Path, Path]:
    return write_rsa_key_pair(tmp_path_factory.mktemp("keys"), "gateway")


@pytest.fixture(scope="session")
def other_rsa_keys(tmp_path_factory) -> tuple[Path, Path]:
    return write_rsa_key_pair(tmp_path_factory.mktemp("keys"), "other")


@pytest.fixture(scope="session")
def shipped_jwt_config(tmp_path_factory) -> JWTConfig:
    folder = tmp_path_factory.mktemp("shipped")
    config_file = derive_config(
        PROJECT_ROOT / "config.yaml",
        folder / "config.yaml",
        {
            ("authentication", "jwt", "secret_file"): folder / "jwt-secret",
            ("store", "sqlite"): folder / "gateway.db",
        },
    )
    return load_config(config_file).jwt


@pytest.fixture
def hmac_config(tmp_path: Path, shipped_jwt_config) -> JWTConfig:
    """Return the shipped JWT settings, with a secret file of this test's own."""
    return dataclasses.replace(shipped_jwt_config, secret_file=tmp_path / "jwt-secret")


@pytest.fixture(scope="session")
def rsa_config(tmp_path_factory, rsa_keys) -> JWTConfig:
    """Return the shipped issuer and audience with RS256 and the test key pair."""
    private_file, public_file = rsa_keys
    folder = tmp_path_factory.mktemp("rsa")
    config_file = derive_config(
        PROJECT_ROOT / "config.yaml",
        folder / "config.yaml",
        {
            ("authentication", "jwt"): {
                "issuer": "chat-gateway",
                "audience": "chat-api",
                "algorithms": ["RS256"],
                "public_key_file": str(public_file),
                "private_key_file": str(private_file),
                "leeway": 30,
            },
            ("store", "sqlite"): folder / "gateway.db",
        },
    )
    return load_config(config_file).jwt


@pytest.fixture
async def session():
    # JWTAuthenticator.verify needs a session only for JWKS keys; the static
    # keys used here never open a connection.
    async with aiohttp.ClientSession() as opened:
        yield opened
