"""Configuration: `config.yaml` parsed, validated and frozen."""

from gateway.config.load import load_config
from gateway.config.model import Config, RouteConfig

__all__ = ["Config", "RouteConfig", "load_config"]
