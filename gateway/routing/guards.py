"""Request forms refused before routing: method overrides and credentials in URLs.

The method checked must be the method that runs: frameworks that honour an
override header or a `_method` parameter would run another one upstream.  A
bearer token in the query string ends up in logs, caches and `Referer`
headers, so the gateway takes tokens from the Authorization header only.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from multidict import CIMultiDictProxy

from gateway.errors import BadRequest, Unauthenticated

METHOD_OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method",
                           "X-Method-Override")
_METHOD_PARAMETER = "_method"
_TOKEN_PARAMETER = "access_token"


def reject_overrides_and_url_credentials(
    headers: CIMultiDictProxy[str], query_string: str
) -> None:
    """Raise BadRequest for a method override, Unauthenticated for a URL token."""
    for name in METHOD_OVERRIDE_HEADERS:
        if name in headers:
            raise BadRequest(f"The {name} header is not accepted.",
                             reason="method_override")

    # Both names contain "_", and every spelling of it is "_" or "%5F".
    if "_" not in query_string and "%5f" not in query_string.lower():
        return

    for key, _ in parse_qsl(query_string, keep_blank_values=True):
        name = key.strip().lower()
        if name == _METHOD_PARAMETER:
            raise BadRequest("The _method parameter is not accepted.",
                             reason="method_override")
        if name == _TOKEN_PARAMETER:
            raise Unauthenticated("Send the token in the Authorization header, "
                                  "never in the URL.", reason="token_in_url")
