"""JSON Schema of `config.yaml`.

The schema checks shapes and value ranges; `gateway.config.load` checks what a
schema cannot express (a route naming a resolver that exists, a path template
that parses, key material that can be read).
"""

NAME = {"type": "string", "pattern": r"^[a-z][a-z0-9_]*\Z"}
HEADER_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9-]+\Z"}
SECONDS = {"type": "number", "exclusiveMinimum": 0}
PATH_TEMPLATE = {"type": "string", "pattern": r"^/", "maxLength": 1024}
METHOD = {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]}
MEDIA_TYPES = {
    "type": "array",
    "uniqueItems": True,
    "items": {"type": "string", "pattern": r"^[A-Za-z0-9.+\-]+/[A-Za-z0-9.+\-]+\Z"},
}


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


OWNERS_CHECK = _object(
    {
        "param": {"type": "string", "pattern": r"^[A-Za-z0-9_\-]+\Z"},
        "check": {"enum": ["items", "object"]},
        "owners_field": NAME,
        "items_field": NAME,
        "unassigned_value": {"type": "string", "minLength": 1},
    },
    required=("param", "check", "owners_field"),
)

ROUTE = _object(
    {
        "method": METHOD,
        "methods": {"type": "array", "items": METHOD, "minItems": 1},
        "path": PATH_TEMPLATE,
        "resource": NAME,
        "action": NAME,
        "object": NAME,
        "filter": OWNERS_CHECK,
        "invalidates": {"type": "array", "items": NAME},
        "content_types": MEDIA_TYPES,
        "stream": {"enum": ["websocket", "events"]},
        "embed": {"enum": ["api", "view"]},
        "guarded_fields": {
            "type": "object",
            "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*\Z"},
            "additionalProperties": {
                "oneOf": [NAME, {"type": "array", "items": NAME, "minItems": 1}]
            },
        },
    },
    required=("path", "resource", "action"),
) | {"oneOf": [{"required": ["method"]}, {"required": ["methods"]}]}

RESOLVER = _object(
    {
        "path": PATH_TEMPLATE,
        "owners_field": NAME,
        "cache_seconds": {"type": "number", "minimum": 0, "maximum": 300},
        "unassigned_value": {"type": "string", "minLength": 1},
    },
    required=("path", "owners_field"),
)

JWT = _object(
    {
        "issuer": {"type": "string", "minLength": 1},
        "audience": {"type": "string", "minLength": 1},
        "algorithms": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {
                "enum": [
                    "HS256", "HS384", "HS512",
                    "RS256", "RS384", "RS512",
                    "PS256", "PS384", "PS512",
                    "ES256", "ES384", "ES512",
                    "EdDSA",
                ]
            },
        },
        "secret_file": {"type": "string", "minLength": 1},
        "secret_env": {"type": "string", "pattern": r"^[A-Z_][A-Z0-9_]*\Z"},
        "public_key_file": {"type": "string", "minLength": 1},
        "private_key_file": {"type": "string", "minLength": 1},
        "jwks_url": {"type": "string", "pattern": r"^https?://"},
        "jwks_cache_seconds": SECONDS,
        "leeway": {"type": "number", "minimum": 0, "maximum": 300},
        "token_lifetime": {"type": "integer", "minimum": 60, "maximum": 86400},
    },
    required=("issuer", "audience", "algorithms"),
)

SCHEMA = _object(
    {
        "listen": _object(
            {
                "host": {"type": "string", "minLength": 1},
                "port": {"type": "integer", "minimum": 0, "maximum": 65535},
            }
        ),
        "upstream": _object(
            {
                "url": {"type": "string", "pattern": r"^https?://[^/?#]+/?\Z"},
                "connect_timeout": SECONDS,
                "read_timeout": SECONDS,
                "max_connections": {"type": "integer", "minimum": 1},
            },
            required=("url",),
        ),
        "store": _object({"sqlite": {"type": "string", "minLength": 1}}),
        "policy": _object(
            {
                "model": {"type": "string", "minLength": 1},
                "roles": {"type": "string", "minLength": 1},
            }
        ),
        "roles": {"type": "array", "items": NAME, "minItems": 1, "uniqueItems": True},
        "authentication": _object(
            {
                "jwt": JWT,
                "api_key": _object({"header": HEADER_NAME}),
            },
            required=("jwt",),
        ),
        "forwarding": _object(
            {
                "identity_headers": _object(
                    {"user": HEADER_NAME, "role": HEADER_NAME, "user_type": HEADER_NAME}
                ),
                "trusted_proxies": {"type": "array", "items": {"type": "string"}},
                "request_id_header": HEADER_NAME,
                "max_body_bytes": {"type": "integer", "minimum": 0},
                "max_inspected_body_bytes": {"type": "integer", "minimum": 1024},
                "max_path_bytes": {"type": "integer", "minimum": 64, "maximum": 65536},
                "body_content_types": MEDIA_TYPES,
                "allowed_hosts": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": r"^(\*|[A-Za-z0-9.:\-]+)\Z"},
                },
            }
        ),
        "limits": _object(
            {
                "max_line_bytes": {"type": "integer", "minimum": 1024,
                                   "maximum": 65536},
                "max_headers": {"type": "integer", "minimum": 8, "maximum": 1000},
                "head_timeout": SECONDS,
                "body_timeout": SECONDS,
                "keepalive_timeout": SECONDS,
                "max_connections_per_client": {"type": "integer", "minimum": 0},
            }
        ),
        "streams": _object(
            {
                "recheck_seconds": SECONDS,
                "max_open": {"type": "integer", "minimum": 1},
                "max_per_user": {"type": "integer", "minimum": 1},
                "websocket_subprotocols": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"type": "string",
                              "pattern": r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+\Z"},
                },
            }
        ),
        "admin": _object(
            {
                "host": {"type": "string", "minLength": 1},
                "port": {"type": "integer", "minimum": 0, "maximum": 65535},
            },
            required=("port",),
        ),
        "gateway_api": _object(
            {
                "prefix": {"type": "string", "pattern": r"^/[A-Za-z0-9_\-]+/\Z"},
                "public_url": {"type": "string",
                               "pattern": r"^https?://[A-Za-z0-9.\-\[\]:]+\Z"},
                "login_link_seconds": {"type": "number", "exclusiveMinimum": 0,
                                       "maximum": 3600},
                "session_seconds": {"type": "number", "exclusiveMinimum": 0,
                                    "maximum": 604800},
            }
        ),
        "embed": _object(
            {
                "start_path": {"type": "string", "pattern": r"^(/[A-Za-z0-9_\-]+)+\Z"},
                "view": PATH_TEMPLATE,
                "code_seconds": {"type": "number", "exclusiveMinimum": 0,
                                 "maximum": 300},
                "session_seconds": SECONDS,
                "max_session_seconds": {"type": "number", "exclusiveMinimum": 0,
                                        "maximum": 86400},
                "token_seconds": {"type": "number", "exclusiveMinimum": 0,
                                  "maximum": 900},
            }
        ),
        "reload": _object({"watch": {"type": "boolean"}, "poll_seconds": SECONDS}),
        "decision_log": _object(
            {
                "mask": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"enum": ["subject", "role", "user_type", "path", "route",
                                       "policy_line"]},
                }
            }
        ),
        "operators": _object({"see_unassigned_chats": {"type": "boolean"}}),
        "resolvers": {"type": "object", "additionalProperties": RESOLVER},
        "routes": {"type": "array", "items": ROUTE, "minItems": 1},
        "log_level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
    },
    required=("upstream", "authentication", "routes"),
)
