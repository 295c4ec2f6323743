"""The gateway's own API and pages: users, API keys, audit trail, sign-in."""

from gateway.api.service import GatewayApi

__all__ = ["GatewayApi"]
