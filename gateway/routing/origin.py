"""The gateway's own origin, which its pages and embedded views run on."""

from __future__ import annotations

from yarl import URL


def own_origin(scheme: str, host: str, public_url: str | None) -> str:
    """Return the origin of `public_url`, or of the request's scheme and Host.

    The Host header has passed the allowed_hosts check before this is asked.
    Behind a proxy that terminates TLS the request's scheme is http, so such
    deployments set gateway_api.public_url.
    """
    if public_url is not None:
        return str(URL(public_url).origin())
    return f"{scheme}://{host}"
