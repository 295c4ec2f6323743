"""Authentication: credentials in, a principal out."""

from gateway.authn.authenticator import Authenticator
from gateway.authn.principal import Principal

__all__ = ["Authenticator", "Principal"]
