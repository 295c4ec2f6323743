"""The validated, immutable form of `config.yaml`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from gateway.authz.user_admin import USER_ADMIN_ACTIONS
from gateway.routing.template import PathTemplate

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class UpstreamConfig:
    url: URL
    connect_timeout: float
    read_timeout: float
    max_connections: int


@dataclass(frozen=True)
class JWTConfig:
    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    secret_file: Path | None
    secret_env: str | None
    public_key_file: Path | None
    private_key_file: Path | None
    jwks_url: str | None
    jwks_cache_seconds: float
    leeway: float
    token_lifetime: int

    @property
    def uses_hmac(self) -> bool:
        return self.algorithms[0].startswith("HS")


@dataclass(frozen=True)
class ForwardingConfig:
    user_header: str
    role_header: str
    user_type_header: str
    trusted_proxies: tuple[IPNetwork, ...]
    request_id_header: str
    max_body_bytes: int
    max_inspected_body_bytes: int
    max_path_bytes: int
    body_content_types: frozenset[str]
    allowed_hosts: frozenset[str]  # "*" allows any Host


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what one client connection may send, and how slowly."""

    max_line_bytes: int
    max_headers: int
    head_timeout: float
    body_timeout: float
    keepalive_timeout: float
    max_connections_per_client: int = 256  # open at once from one address; 0: no cap


@dataclass(frozen=True)
class AdminConfig:
    """The gateway's own listener for health checks, apart from the proxy."""

    host: str
    port: int


@dataclass(frozen=True)
class GatewayApiConfig:
    """The gateway's own API and pages, served under `prefix`, never forwarded."""

    prefix: str  # "/gateway/": the API under /gateway/v1/, the page /gateway/users/
    # Origin of login links and of the users page.  None: login links name the
    # listen address, and the page's origin is the request's Host.
    public_url: str | None
    listen_url: str
    login_link_seconds: float
    session_seconds: float

    @property
    def link_base(self) -> str:
        return self.public_url or self.listen_url

    @property
    def api_prefix(self) -> str:
        return self.prefix + "v1/"


@dataclass(frozen=True)
class EmbedConfig:
    """Iframe sessions of service users: where they start, what they show, how long."""

    start_path: str  # served by the gateway: consumes a code, sets the cookie
    view_path: str  # where the started session is sent: an upstream route
    code_seconds: float
    session_seconds: float
    max_session_seconds: float
    token_seconds: float  # bearer tokens of the postMessage path


@dataclass(frozen=True)
class ReloadConfig:
    watch: bool
    poll_seconds: float


@dataclass(frozen=True)
class ResolverConfig:
    """How to learn who owns one object: fetch it and read one field."""

    name: str
    path: PathTemplate
    owners_field: str
    cache_seconds: float
    unassigned_value: str | None


@dataclass(frozen=True)
class FilterConfig:
    """How to confine a collection or a report to the subject's own objects.

    `param` is forced to the subject's id in the query.  `check` names what is
    verified in the upstream's answer: every element of `items_field` ("items"),
    or the answer itself ("object").
    """

    param: str
    check: str
    owners_field: str
    items_field: str
    unassigned_value: str | None


@dataclass(frozen=True)
class RouteConfig:
    index: int
    line: int | None
    methods: tuple[str, ...]
    path: PathTemplate
    resource: str
    action: str
    object: ResolverConfig | None
    object_parameter: str | None
    filter: FilterConfig | None
    invalidates: tuple[ResolverConfig, ...]
    # (body field, action on the same resource that setting the field needs)
    guarded_fields: tuple[tuple[str, str], ...] = ()
    # Media types of request bodies; None means forwarding.body_content_types.
    content_types: frozenset[str] | None = None
    # "websocket" or "events" for long-lived responses that stay authorized.
    stream: str | None = None
    # Open to embed sessions: "api", or "view" when the response may also be
    # framed by the session's partner origin.  None: closed to them.
    embed: str | None = None

    @property
    def name(self) -> str:
        return f"{'|'.join(self.methods)} {self.path.text}"


@dataclass(frozen=True)
class Config:
    file: Path
    listen_host: str
    listen_port: int
    upstream: UpstreamConfig
    store_path: Path
    model_path: Path
    roles_path: Path
    roles: tuple[str, ...]
    jwt: JWTConfig
    api_key_header: str
    forwarding: ForwardingConfig
    limits: LimitsConfig
    stream_recheck_seconds: float
    stream_max_open: int
    stream_max_per_user: int
    admin: AdminConfig | None
    gateway_api: GatewayApiConfig
    embed: EmbedConfig
    reload: ReloadConfig
    masked_log_fields: frozenset[str]
    see_unassigned_chats: bool
    resolvers: dict[str, ResolverConfig]
    routes: tuple[RouteConfig, ...]
    log_level: str
    # WebSocket subprotocols a client may ask for; others get 400.
    stream_subprotocols: frozenset[str] = frozenset()

    @property
    def resources(self) -> frozenset[str]:
        return frozenset(route.resource for route in self.routes)

    @property
    def routed_actions(self) -> frozenset[tuple[str, str]]:
        """Return the (resource, action) pairs of the proxied routes."""
        return frozenset((route.resource, route.action) for route in self.routes)

    @property
    def actions(self) -> frozenset[tuple[str, str]]:
        """Every (resource, action) the policy may name: routes' and user admin's."""
        return self.routed_actions | USER_ADMIN_ACTIONS
