"""Request forms refused before routing: unknown hosts, method overrides and
credentials in URLs.

The method checked must be the method that runs: frameworks that honour an
override header or a `_method` parameter would run another one upstream.  A
bearer token in the query string ends up in logs, caches and `Referer`
headers, so the gateway takes tokens from the Authorization header only.
"""

from __future__ import annotations

import functools
import json
import re

from urllib.parse import parse_qsl

from multidict import CIMultiDictProxy

from gateway.errors import BadRequest, Unauthenticated

METHOD_OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method",
                           "X-Method-Override", "X-Method")
_METHOD_PARAMETER = "_method"
_METHOD_FIELD_HINT = re.compile(rb"(?i)_method|\\u|%")
_TOKEN_PARAMETER = "access_token"


def check_framing(version: tuple[int, int], headers: CIMultiDictProxy[str]) -> None:
    """Reject versions other than HTTP/1.0 and 1.1, and Transfer-Encoding on 1.0.

    RFC 9112 calls the framing of an HTTP/1.0 message with Transfer-Encoding
    faulty.
    """
    if version not in ((1, 0), (1, 1)):
        raise BadRequest("Only HTTP/1.0 and HTTP/1.1 are served.",
                         reason="http_version", close=True)
    if version < (1, 1) and "Transfer-Encoding" in headers:
        raise BadRequest("HTTP/1.0 requests cannot use Transfer-Encoding.",
                         reason="framing_invalid", close=True)


def check_host(headers: CIMultiDictProxy[str], allowed_hosts: frozenset[str]) -> None:
    """Reject a request whose Host is missing, repeated, malformed or not served.

    The upstream builds absolute links (page links, redirects) from the Host
    the gateway forwards in X-Forwarded-Host, so a forged Host would point them
    at another site.  The whole value must be a name or IP literal with an
    optional port: a name followed by anything else ("localhost:x@evil.test",
    "localhost:80,evil.test") would pass a check of the name alone.
    """
    hosts = headers.getall("Host", ())
    if len(hosts) != 1:
        raise BadRequest("The request needs exactly one Host header.",
                         reason="host_invalid")

    reason = _host_rejection(hosts[0], allowed_hosts)
    if reason == "host_invalid":
        raise BadRequest(f"Host {hosts[0]!r} is not a host name with an optional "
                         f"port.", reason=reason)
    if reason == "host_not_allowed":
        raise BadRequest(f"Host {hosts[0]!r} is not served here.", reason=reason)


# Clients send the same few Host values again and again; a bounded cache of
# the verdicts saves the parse on nearly every request.
@functools.lru_cache(maxsize=256)
def _host_rejection(host: str, allowed_hosts: frozenset[str]) -> str | None:
    match = _HOST.fullmatch(host.strip(" \t").lower())
    if match is None or int(match["port"] or 0) > 65535:
        return "host_invalid"
    if "*" in allowed_hosts or (match["literal"] or match["name"]) in allowed_hosts:
        return None
    return "host_not_allowed"


# RFC 9110 section 7.2 (Host = uri-host [":" port]), with registered names
# limited to the letters, digits, dots and hyphens of DNS names.
_HOST = re.compile(
    r"(?:\[(?P<literal>[0-9a-f:.]+)\]|(?P<name>[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?))"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII,
)


def reject_overrides_and_url_credentials(
    headers: CIMultiDictProxy[str], query_string: str
) -> None:
    """Raise BadRequest for a method override, Unauthenticated for a URL token."""
    for name in METHOD_OVERRIDE_HEADERS:
        if name in headers:
            raise BadRequest(f"The {name} header is not accepted.",
                             reason="method_override")

    # Some frameworks split the query on ";" as well as "&", Python does not:
    # a raw ";" would let the two read different parameters.
    if ";" in query_string:
        raise BadRequest("A raw ';' in the query string is not accepted; "
                         "encode it as %3B.", reason="query_semicolon")

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


def reject_method_in_body(body: bytes, content_type: str) -> None:
    """Raise BadRequest for a `_method` field at the top of a JSON or form body.

    Laravel, for one, reads `_method` from a JSON body as well as from a form.
    Only a body that contains "_method" in any case, a JSON escape or a
    percent escape (either could spell it) is parsed, so nearly every body
    costs one search.
    """
    if _METHOD_FIELD_HINT.search(body) is None:
        return

    media_type = content_type.partition(";")[0].strip(" \t").lower()
    names: list[str] = []
    if media_type == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", errors="replace")
        names = [key for key, _ in parse_qsl(text, keep_blank_values=True)]
    elif media_type == "application/json" or media_type.endswith("+json"):
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return  # not JSON the upstream could read a method from
        if isinstance(document, dict):
            names = list(document)

    if any(name.strip().lower() == _METHOD_PARAMETER for name in names):
        raise BadRequest("The _method field is not accepted in a request body.",
                         reason="method_override")
