"""Authentication: credentials in, a principal out."""

from gateway.authn.authenticator import Authenticator
from gateway.authn.principal import VIEWER, Principal

__all__ = ["VIEWER", "Authenticator", "Principal"]
