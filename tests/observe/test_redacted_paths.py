"""Decision lines log paths with credential-looking segments replaced."""

import pytest

from gateway.observe.decision_log import redact_path


@pytest.mark.parametrize("path", [
    "/gateway/v1/users/svc/keys/gwk_0123456789ab_" + "x" * 43,
    "/api/1/chats/gwe_abcdefABCDEF-_1234/",
    "/api/1/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl/",
])
def test_credential_in_path_is_redacted(path):
    redacted = redact_path(path)

    assert "***" in redacted
    assert redacted.count("/") == path.count("/")


def test_plain_path_is_unchanged():
    assert redact_path("/api/1/chats/12/messages/") == "/api/1/chats/12/messages/"
