from __future__ import annotations

from dataclasses import dataclass

from gateway.store.embed import EmbedSession


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user a request acts for, as the store has it now."""

    user_id: str
    role: str
    user_type: str
    credential: str  # "jwt", "api_key", "session", "embed_cookie" or "embed_bearer"
    expires_at: float | None = None  # the token's `exp`, in seconds since the epoch
    # The iframe session the request comes from, which narrows the role.
    embed: EmbedSession | None = None


# The sender of a request to an `embed: view` route with no credential: the
# embedded page itself, before the postMessage path gives it a token.
VIEWER = Principal(user_id="", role="", user_type="", credential="none")
