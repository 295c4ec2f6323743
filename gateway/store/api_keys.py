"""API keys for service users: generated here, stored only as a hash.

A key reads `gwk_<prefix>_<secret>`.  The prefix is public and indexes the
row; the secret carries 256 random bits, so a plain SHA-256 is enough to store
it (a slow password hash protects low-entropy secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_FORMAT = re.compile(r"gwk_([A-Za-z0-9]{12})_([A-Za-z0-9_\-]{43})")


def new_api_key() -> tuple[str, str, str]:
    """Return (key, prefix, hash) for a new key."""
    prefix = secrets.token_hex(6)
    key = f"gwk_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_api_key(key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_prefix(key: str) -> str | None:
    match = _FORMAT.fullmatch(key)
    return match.group(1) if match else None


def hashes_equal(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), stored_hash)
