"""Everything the request pipeline reads from files, validated and frozen.

A snapshot is built completely before it is used, so a bad file never leaves a
half-loaded gateway; reloading means building a new one and swapping it in.
A reload freezes the new snapshot out of the garbage collector's reach
(gateway/reload.py), so a snapshot must hold no reference cycles: a frozen
cycle is never freed.  tests/reload/test_snapshot_memory.py checks this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gateway.authn.jwt_authenticator import JWTAuthenticator
from gateway.authz.policy import Policy, load_policy
from gateway.config import Config, load_config
from gateway.errors import ConfigError
from gateway.forward.headers import HeaderPolicy
from gateway.routing.table import RouteConflict, RouteTable


@dataclass(frozen=True)
class Snapshot:
    config: Config
    policy: Policy
    routes: RouteTable
    headers: HeaderPolicy
    jwt: JWTAuthenticator
    roles: frozenset[str]


def load_snapshot(config_file: str | os.PathLike, *,
                  create_secret: bool = True) -> Snapshot:
    """Load config and policy files, or raise ConfigError naming file and line.

    Without `create_secret`, as for checking files, a missing JWT secret file
    is not created, and the snapshot's JWT authenticator rejects every token.
    """
    config = load_config(config_file)
    policy = load_policy(
        config.model_path,
        config.roles_path,
        roles=config.roles,
        actions=config.actions,
    )
    try:
        routes = RouteTable(config.routes)
    except RouteConflict as error:
        raise ConfigError(Path(config.file), str(error), line=error.route.line,
                          key=f"routes[{error.route.index}]") from None

    return Snapshot(
        config=config,
        policy=policy,
        routes=routes,
        headers=HeaderPolicy(config.forwarding, config.api_key_header),
        jwt=JWTAuthenticator(config.jwt, create_secret=create_secret),
        roles=frozenset(config.roles),
    )
