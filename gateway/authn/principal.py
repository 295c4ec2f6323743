from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user a request acts for, as the store has it now."""

    user_id: str
    role: str
    user_type: str
    credential: str  # "jwt", "api_key" or "session"
    expires_at: float | None = None  # the token's `exp`, in seconds since the epoch
