"""Load `config.yaml`: schema check, then the checks a schema cannot make."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import jsonschema
from yarl import URL

from gateway.authz.user_admin import USER_ADMIN_RESOURCES
from gateway.config.model import (
    AdminConfig,
    Config,
    EmbedConfig,
    GatewayApiConfig,
    FilterConfig,
    ForwardingConfig,
    JWTConfig,
    LimitsConfig,
    ReloadConfig,
    ResolverConfig,
    RouteConfig,
    UpstreamConfig,
)
from gateway.config.schema import SCHEMA
from gateway.config.source import SourceDocument, load_yaml_document
from gateway.routing.template import parse_template

DEFAULT_ROLES = ("owner", "administrator", "chat_manager", "chat_operator")
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def load_config(file: str | os.PathLike) -> Config:
    """Read and validate a config file; raise ConfigError naming line and key."""
    path = Path(file).resolve()
    document = load_yaml_document(path)
    _check_schema(document)
    return _build(document)


def _check_schema(document: SourceDocument) -> None:
    # At one place, an unknown key comes first: a misspelt required key is
    # both unknown and missing, and its spelling is what the author must fix.
    errors = sorted(
        _VALIDATOR.iter_errors(document.data),
        key=lambda e: (document.line_of(tuple(e.absolute_path)) or 0,
                       e.validator != "additionalProperties"),
    )
    if not errors:
        return

    error = errors[0]
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        unknown = sorted((key for key in error.instance if key not in known),
                         key=lambda key: document.line_of(path + (key,)) or 0)
        path += (unknown[0],)
        allowed = ", ".join(known) or "none"
        message = (f"unknown key {unknown[0]!r}; allowed here: {allowed}")
    elif error.validator == "oneOf" and path and "routes" in path:
        message = "a route needs exactly one of 'method' or 'methods'"
    else:
        message = error.message
    raise document.error(path, message)


def _build(document: SourceDocument) -> Config:
    data = document.data
    base = document.file.parent
    see_unassigned = data.get("operators", {}).get("see_unassigned_chats", False)
    resolvers = _build_resolvers(document, see_unassigned)
    policy = data.get("policy", {})
    listen = data.get("listen", {})
    store = data.get("store", {})

    return Config(
        file=document.file,
        listen_host=listen.get("host", "127.0.0.1"),
        listen_port=listen.get("port", 8080),
        upstream=_build_upstream(data["upstream"]),
        store_path=base / store.get("sqlite", ".gateway/gateway.db"),
        model_path=base / policy.get("model", "policies/model.conf"),
        roles_path=base / policy.get("roles", "policies/roles.csv"),
        roles=tuple(data.get("roles", DEFAULT_ROLES)),
        jwt=_build_jwt(document, base),
        api_key_header=data["authentication"].get("api_key", {}).get(
            "header", "X-API-Key"
        ),
        forwarding=_build_forwarding(document),
        limits=_build_limits(data.get("limits", {})),
        stream_recheck_seconds=float(
            data.get("streams", {}).get("recheck_seconds", 5)
        ),
        stream_max_open=data.get("streams", {}).get("max_open", 100),
        stream_max_per_user=data.get("streams", {}).get("max_per_user", 5),
        stream_subprotocols=frozenset(
            data.get("streams", {}).get("websocket_subprotocols", ())
        ),
        admin=_build_admin(data.get("admin")),
        gateway_api=_build_gateway_api(data.get("gateway_api", {}), listen),
        embed=_build_embed(document),
        masked_log_fields=frozenset(data.get("decision_log", {}).get("mask", [])),
        reload=ReloadConfig(
            watch=data.get("reload", {}).get("watch", True),
            poll_seconds=float(data.get("reload", {}).get("poll_seconds", 1)),
        ),
        see_unassigned_chats=see_unassigned,
        resolvers=resolvers,
        routes=_build_routes(document, resolvers, see_unassigned),
        log_level=data.get("log_level", "INFO"),
    )


def _build_upstream(data: dict[str, Any]) -> UpstreamConfig:
    return UpstreamConfig(
        url=URL(data["url"].rstrip("/")),
        connect_timeout=float(data.get("connect_timeout", 2.0)),
        read_timeout=float(data.get("read_timeout", 30.0)),
        max_connections=data.get("max_connections", 100),
    )


def _build_jwt(document: SourceDocument, base: Path) -> JWTConfig:
    key_path = ("authentication", "jwt")
    data = document.data["authentication"]["jwt"]
    algorithms = tuple(data["algorithms"])

    # One key family per gateway: an HMAC secret next to public-key algorithms
    # is how "sign HS256 with the public key" attacks start.
    families = {"HS" if a.startswith("HS") else "PK" for a in algorithms}
    if len(families) > 1:
        raise document.error(
            key_path + ("algorithms",),
            "mixes HMAC (HS*) and public-key algorithms; choose one family",
        )

    sources = [k for k in ("secret_file", "secret_env", "public_key_file", "jwks_url")
               if k in data]
    if len(sources) != 1:
        raise document.error(
            key_path,
            "set exactly one key source: secret_file, secret_env, "
            f"public_key_file or jwks_url (found {sources or 'none'})",
        )
    hmac_source = sources[0] in ("secret_file", "secret_env")
    if hmac_source != ("HS" in families):
        raise document.error(
            key_path + (sources[0],),
            f"{sources[0]} does not fit algorithms {list(algorithms)}",
        )

    def optional_path(name: str) -> Path | None:
        return base / data[name] if name in data else None

    return JWTConfig(
        issuer=data["issuer"],
        audience=data["audience"],
        algorithms=algorithms,
        secret_file=optional_path("secret_file"),
        secret_env=data.get("secret_env"),
        public_key_file=optional_path("public_key_file"),
        private_key_file=optional_path("private_key_file"),
        jwks_url=data.get("jwks_url"),
        jwks_cache_seconds=float(data.get("jwks_cache_seconds", 300)),
        leeway=float(data.get("leeway", 30)),
        token_lifetime=int(data.get("token_lifetime", 3600)),
    )


def _build_forwarding(document: SourceDocument) -> ForwardingConfig:
    data = document.data.get("forwarding", {})
    identity = data.get("identity_headers", {})
    networks = []
    for index, text in enumerate(data.get("trusted_proxies", [])):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise document.error(
                ("forwarding", "trusted_proxies", index),
                f"{text!r} is not an IP address or network",
            ) from None

    return ForwardingConfig(
        user_header=identity.get("user", "X-Gateway-User"),
        role_header=identity.get("role", "X-Gateway-Role"),
        user_type_header=identity.get("user_type", "X-Gateway-User-Type"),
        trusted_proxies=tuple(networks),
        request_id_header=data.get("request_id_header", "X-Request-ID"),
        max_body_bytes=data.get("max_body_bytes", 10 * 1024 * 1024),
        max_inspected_body_bytes=data.get("max_inspected_body_bytes", 4 * 1024 * 1024),
        max_path_bytes=data.get("max_path_bytes", 2048),
        allowed_hosts=frozenset(
            host.lower() for host in data.get("allowed_hosts",
                                              ["127.0.0.1", "localhost", "::1"])
        ),
        body_content_types=frozenset(
            media.lower() for media in data.get("body_content_types",
                                                ["application/json"])
        ),
    )


def _build_admin(data: dict[str, Any] | None) -> AdminConfig | None:
    if data is None:
        return None
    return AdminConfig(host=data.get("host", "127.0.0.1"), port=data["port"])


def _build_gateway_api(data: dict[str, Any], listen: dict[str, Any]) -> GatewayApiConfig:
    host = listen.get("host", "127.0.0.1")
    if ":" in host:
        host = f"[{host}]"
    return GatewayApiConfig(
        prefix=data.get("prefix", "/gateway/"),
        public_url=data.get("public_url"),
        listen_url=f"http://{host}:{listen.get('port', 8080)}",
        login_link_seconds=float(data.get("login_link_seconds", 300)),
        session_seconds=float(data.get("session_seconds", 8 * 3600)),
    )


def _build_embed(document: SourceDocument) -> EmbedConfig:
    data = document.data.get("embed", {})
    embed = EmbedConfig(
        start_path=data.get("start_path", "/embed/start"),
        view_path=data.get("view", "/app/"),
        code_seconds=float(data.get("code_seconds", 120)),
        session_seconds=float(data.get("session_seconds", 3600)),
        max_session_seconds=float(data.get("max_session_seconds", 8 * 3600)),
        token_seconds=float(data.get("token_seconds", 900)),
    )
    if embed.session_seconds > embed.max_session_seconds:
        raise document.error(("embed", "session_seconds"),
                             "is longer than embed.max_session_seconds")
    return embed


def _build_limits(data: dict[str, Any]) -> LimitsConfig:
    return LimitsConfig(
        max_line_bytes=data.get("max_line_bytes", 8190),
        max_headers=data.get("max_headers", 100),
        head_timeout=float(data.get("head_timeout", 10)),
        body_timeout=float(data.get("body_timeout", 30)),
        keepalive_timeout=float(data.get("keepalive_timeout", 75)),
        max_connections_per_client=data.get("max_connections_per_client", 256),
    )


def _build_resolvers(
    document: SourceDocument, see_unassigned: bool
) -> dict[str, ResolverConfig]:
    resolvers = {}
    for name, data in document.data.get("resolvers", {}).items():
        key_path = ("resolvers", name)
        template = _parse_template(document, key_path + ("path",), data["path"])
        if len(template.parameters) != 1:
            raise document.error(
                key_path + ("path",), "a resolver path needs exactly one parameter"
            )

        resolvers[name] = ResolverConfig(
            name=name,
            path=template,
            owners_field=data["owners_field"],
            cache_seconds=float(data.get("cache_seconds", 0)),
            unassigned_value=data.get("unassigned_value") if see_unassigned else None,
        )

    return resolvers


def _build_routes(
    document: SourceDocument,
    resolvers: dict[str, ResolverConfig],
    see_unassigned: bool,
) -> tuple[RouteConfig, ...]:
    routes = []
    for index, data in enumerate(document.data["routes"]):
        key_path: tuple = ("routes", index)
        template = _parse_template(document, key_path + ("path",), data["path"])
        methods = tuple(data.get("methods") or [data["method"]])

        resolver = None
        object_parameter = None
        if "object" in data:
            resolver = _lookup_resolver(document, resolvers, key_path + ("object",),
                                        data["object"])
            object_parameter = resolver.path.parameters[0]
            if object_parameter not in template.parameters:
                raise document.error(
                    key_path + ("path",),
                    f"resolver {resolver.name!r} needs the parameter "
                    f"{{{object_parameter}}} in this path",
                )

        invalidates = tuple(
            _lookup_resolver(document, resolvers, key_path + ("invalidates", i), name)
            for i, name in enumerate(data.get("invalidates", []))
        )
        for i, invalidated in enumerate(invalidates):
            if invalidated.path.parameters[0] not in template.parameters:
                raise document.error(
                    key_path + ("invalidates", i),
                    f"the path has no {{{invalidated.path.parameters[0]}}} parameter",
                )

        routes.append(
            RouteConfig(
                index=index,
                line=document.line_of(key_path),
                methods=methods,
                path=template,
                resource=data["resource"],
                action=data["action"],
                object=resolver,
                object_parameter=object_parameter,
                filter=_build_filter(data.get("filter"), see_unassigned),
                invalidates=invalidates,
                guarded_fields=_build_guarded_fields(data.get("guarded_fields", {})),
                content_types=_optional_media_types(data.get("content_types")),
                stream=data.get("stream"),
                embed=data.get("embed"),
            )
        )

    _check_guarded_fields(document, routes)
    _check_reserved(document, routes)
    _check_embed_routes(document, routes)
    for route in routes:
        if route.stream is not None and route.methods != ("GET",):
            raise document.error(("routes", route.index, "stream"),
                                 "a stream route takes GET only")
    return tuple(routes)


def _check_reserved(document: SourceDocument, routes: list[RouteConfig]) -> None:
    """Keep routes off the gateway's own paths and user-admin resources."""
    prefix = document.data.get("gateway_api", {}).get("prefix", "/gateway/")
    for route in routes:
        if route.resource in USER_ADMIN_RESOURCES:
            raise document.error(
                ("routes", route.index, "resource"),
                f"resource {route.resource!r} is the gateway's own user "
                "administration; name the upstream's resource otherwise",
            )
        start = document.data.get("embed", {}).get("start_path", "/embed/start")
        if route.path.text.rstrip("/") == start:
            raise document.error(
                ("routes", route.index, "path"),
                f"{start} is served by the gateway itself (embed.start_path)",
            )
        if (route.path.text + "/").startswith(prefix):
            raise document.error(
                ("routes", route.index, "path"),
                f"paths under {prefix} are served by the gateway itself "
                "(gateway_api.prefix)",
            )


def _check_embed_routes(document: SourceDocument, routes: list[RouteConfig]) -> None:
    """Keep embed sessions inside their scope and the start page on a view route."""
    for route in routes:
        if route.embed == "view" and (route.object is not None or route.filter):
            raise document.error(
                ("routes", route.index, "embed"),
                "a view route serves the embedded page, which holds no data, and "
                "ignores a session's scope; use embed: api for routes with an "
                "object or a filter",
            )

    settings = document.data.get("embed", {})
    view = settings.get("view", "/app/")
    if not any(route.embed == "view" and route.path.text == view for route in routes):
        raise document.error(("embed", "view"),
                             f"no route with embed: view has the path {view}")
    start = settings.get("start_path", "/embed/start")
    prefix = document.data.get("gateway_api", {}).get("prefix", "/gateway/")
    if (start + "/").startswith(prefix):
        raise document.error(("embed", "start_path"),
                             f"is under gateway_api.prefix {prefix}")


def _optional_media_types(media_types: list[str] | None) -> frozenset[str] | None:
    if media_types is None:
        return None
    return frozenset(media.lower() for media in media_types)


def _build_guarded_fields(data: dict) -> tuple[tuple[str, str], ...]:
    pairs = []
    for field, actions in data.items():
        for action in [actions] if isinstance(actions, str) else actions:
            pairs.append((field, action))

    return tuple(pairs)


def _check_guarded_fields(document: SourceDocument, routes: list[RouteConfig]) -> None:
    actions = {(route.resource, route.action) for route in routes}
    for route in routes:
        for field, action in route.guarded_fields:
            if (route.resource, action) not in actions:
                raise document.error(
                    ("routes", route.index, "guarded_fields", field),
                    f"no route names action {action!r} on {route.resource!r}",
                )


def _build_filter(data: dict | None, see_unassigned: bool) -> FilterConfig | None:
    if data is None:
        return None

    return FilterConfig(
        param=data["param"],
        check=data["check"],
        owners_field=data["owners_field"],
        items_field=data.get("items_field", "results"),
        unassigned_value=data.get("unassigned_value") if see_unassigned else None,
    )


def _lookup_resolver(document, resolvers, key_path, name) -> ResolverConfig:
    if name not in resolvers:
        known = ", ".join(sorted(resolvers)) or "none"
        raise document.error(key_path, f"unknown resolver {name!r} (known: {known})")
    return resolvers[name]


def _parse_template(document: SourceDocument, key_path: tuple, text: str):
    try:
        return parse_template(text)
    except ValueError as error:
        raise document.error(key_path, str(error)) from None
