"""Which headers cross the gateway, in each direction.

Everything the upstream uses to learn who is calling, from where, or for which
URL and method is set by the gateway alone.  Client copies are dropped however
they are spelled, including when the client lists them in `Connection` in the
hope that a proxy removes the gateway's own copies after setting them (the
gateway's copies are added after this filtering, so they survive).
"""

from __future__ import annotations

import ipaddress

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.model import ForwardingConfig

HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)

# Headers that could tell the upstream a different identity, address, URL or
# method than the one the gateway checked.
_SPOOFABLE = frozenset(
    (
        "authorization",
        "cookie",
        "host",
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-cluster-client-ip",
        "remote-user",
        "x-user",
        "x-authenticated-user",
        "x-original-url",
        "x-original-uri",
        "x-original-method",
        "x-rewrite-url",
        "x-request-id",
        "expect",
    )
)
# Sent instead of the upstream's and aiohttp's Server headers, which name versions.
SERVER_NAME = "chat-gateway"
_SPOOFABLE_PREFIXES = ("x-forwarded-", "x-gateway-", "x-original-", "x-envoy-",
                       "x-remote-", "x-auth-request-")


def connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    tokens = set()
    for value in headers.getall("Connection", []):
        tokens.update(token.strip().lower() for token in value.split(","))
    return tokens


class HeaderPolicy:
    def __init__(self, config: ForwardingConfig, api_key_header: str) -> None:
        self._config = config
        self._dropped = (
            HOP_BY_HOP
            | _SPOOFABLE
            | {
                api_key_header.lower(),
                config.user_header.lower(),
                config.role_header.lower(),
                config.user_type_header.lower(),
                config.request_id_header.lower(),
            }
        )

    def is_trusted_proxy(self, peer: str | None) -> bool:
        if not self._config.trusted_proxies or not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._config.trusted_proxies)

    def upstream_request_headers(
        self,
        client_headers: CIMultiDictProxy[str],
        *,
        peer: str | None,
        scheme: str,
        identity: dict[str, str],
        request_id: str,
        inspect: bool,
    ) -> CIMultiDict[str]:
        named_in_connection = connection_tokens(client_headers)
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in client_headers.items():
            lowered = name.lower()
            # Servers behind CGI-style gateways read `X_Gateway_User` as
            # `X-Gateway-User`, so no name with an underscore passes.
            if (
                lowered in self._dropped
                or lowered in named_in_connection
                or lowered.startswith(_SPOOFABLE_PREFIXES)
                or "_" in lowered
            ):
                continue
            headers.add(name, value)

        self._add_forwarded(headers, client_headers, peer, scheme)
        headers[self._config.request_id_header] = request_id
        headers.update(identity)
        if inspect:
            # The response is read and checked, so it must arrive uncompressed.
            headers["Accept-Encoding"] = "identity"
        return headers

    def _add_forwarded(self, headers, client_headers, peer, scheme) -> None:
        host = client_headers.get("Host", "")
        forwarded_for = peer or ""
        if self.is_trusted_proxy(peer):
            earlier = client_headers.getall("X-Forwarded-For", [])
            if earlier:
                forwarded_for = ", ".join(earlier + [forwarded_for])
            scheme = client_headers.get("X-Forwarded-Proto", scheme)
            host = client_headers.get("X-Forwarded-Host", host)

        headers["X-Forwarded-For"] = forwarded_for
        headers["X-Forwarded-Proto"] = scheme
        if host:
            headers["X-Forwarded-Host"] = host


def client_response_headers(
    upstream_headers: CIMultiDictProxy[str], frame_ancestors: str = "'none'"
) -> CIMultiDict:
    """Return the upstream's response headers as the client gets them.

    Only `frame_ancestors` may frame the response.  The gateway's CSP is added
    next to any the upstream sent, and browsers enforce every CSP header, so
    an upstream cannot widen it.
    """
    named_in_connection = connection_tokens(upstream_headers)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream_headers.items():
        lowered = name.lower()
        if (lowered in HOP_BY_HOP or lowered in named_in_connection
                or lowered in ("server", "x-frame-options")):
            continue
        headers.add(name, value)

    headers["Server"] = SERVER_NAME
    headers.add("Content-Security-Policy", f"frame-ancestors {frame_ancestors}")
    if frame_ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"
    return headers
