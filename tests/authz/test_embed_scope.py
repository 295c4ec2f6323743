"""check_embed_origin: changes and WebSocket handshakes in cookie sessions."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.authz.embed_scope import check_embed_origin
from gateway.errors import Forbidden
from gateway.store import EmbedSession

OWN = "http://gateway.test"
SESSION = EmbedSession("es-1", "u-svc", "http://partner.test", "chat", "1", "cookie",
                       0.0, 0.0, 9e12, None, 0.0, csrf_token="t" * 64)
UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket"}


def headers(**values) -> CIMultiDictProxy:
    return CIMultiDictProxy(CIMultiDict(
        {name.replace("_", "-"): value for name, value in values.items()}))


@pytest.mark.parametrize("origin", ["http://partner.test", "http://evil.test", None])
def test_websocket_handshake_from_another_page_is_refused(origin):
    sent = dict(UPGRADE) | ({"Origin": origin} if origin else {})

    with pytest.raises(Forbidden):
        check_embed_origin(SESSION, "embed_cookie", "GET", headers(**sent), OWN)


def test_upgrade_in_second_connection_header_is_refused():
    sent = CIMultiDict({"Connection": "keep-alive", "Upgrade": "websocket",
                        "Origin": "http://evil.test"})
    sent.add("Connection", "Upgrade")

    with pytest.raises(Forbidden):
        check_embed_origin(SESSION, "embed_cookie", "GET", CIMultiDictProxy(sent), OWN)


def test_websocket_handshake_from_the_view_is_allowed():
    sent = dict(UPGRADE) | {"Origin": OWN}

    check_embed_origin(SESSION, "embed_cookie", "GET", headers(**sent), OWN)


def test_repeated_csrf_token_is_refused():
    sent = CIMultiDict({"Origin": OWN})
    sent.add("X-CSRF-Token", "t" * 64)
    sent.add("X-CSRF-Token", "x")

    with pytest.raises(Forbidden):
        check_embed_origin(SESSION, "embed_cookie", "POST", CIMultiDictProxy(sent), OWN)


def test_plain_read_needs_no_origin():
    check_embed_origin(SESSION, "embed_cookie", "GET", headers(), OWN)
