"""`load_config` rejects a bad config file with its file, line and key path.

Each case edits one spot of the shipped config.yaml text, so the line the
error must name is known exactly.
"""

import re

import pytest

from gateway.config import load_config
from gateway.errors import ConfigError

# old text, new text, the start of the edited file's line that the error must
# name (leading blanks ignored), the key path it must name (None: no key path),
# and a part of the message.
BAD_CONFIGS = [
    pytest.param(
        "  view: /app/                   # where a started session is sent (an embed: view route)\n",
        "  view: //evil.example/\n",
        "view: //evil.example/",
        "embed.view",
        "no route with embed: view has the path //evil.example/",
        id="embed-view-not-a-view-route",
    ),
    pytest.param(
        "  start_path: /embed/start      # served by the gateway: trades the code for a cookie\n",
        "  start_path: /gateway/v1/users\n",
        "start_path: /gateway/v1/users",
        "embed.start_path",
        "is under gateway_api.prefix",
        id="embed-start-under-api-prefix",
    ),
    pytest.param(
        "    object: chat\n    embed: api\n",
        "    object: chat\n    embed: view   # on an object route\n",
        "embed: view   # on an object route",
        "routes[1].embed",
        "a view route serves the embedded page",
        id="view-route-with-object",
    ),
    pytest.param(
        "  port: 8080\n",
        "  port: 8080\n  colour: blue\n",
        "colour:",
        "listen.colour",
        "unknown key 'colour'",
        id="unknown-nested-key",
    ),
    pytest.param(
        "listen:\n",
        "colour: blue\nlisten:\n",
        "colour:",
        "colour",
        "unknown key 'colour'",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "  port: 8080\n",
        "  port: eighty\n",
        "port: eighty",
        "listen.port",
        "'eighty' is not of type 'integer'",
        id="port-not-integer",
    ),
    pytest.param(
        "  port: 8080\n",
        "  port: 70000\n",
        "port: 70000",
        "listen.port",
        "70000 is greater than the maximum of 65535",
        id="port-out-of-range",
    ),
    pytest.param(
        "see_unassigned_chats: false",
        'see_unassigned_chats: "no"',
        "see_unassigned_chats:",
        "operators.see_unassigned_chats",
        "'no' is not of type 'boolean'",
        id="flag-not-boolean",
    ),
    pytest.param(
        "max_path_bytes: 2048",
        "max_path_bytes: 10",
        "max_path_bytes:",
        "forwarding.max_path_bytes",
        "10 is less than the minimum of 64",
        id="limit-below-minimum",
    ),
    pytest.param(
        "roles: [owner, administrator, chat_manager, chat_operator]",
        "roles: [owner, Administrator, chat_manager, chat_operator]",
        "roles: [owner, Administrator",
        "roles[1]",
        "'Administrator' does not match",
        id="role-name-upper-case",
    ),
    pytest.param(
        "url: http://127.0.0.1:8081",
        "url: http://127.0.0.1:8081/api",
        "url:",
        "upstream.url",
        "does not match",
        id="upstream-url-with-path",
    ),
    pytest.param(
        "  url: http://127.0.0.1:8081\n",
        "",
        "upstream:",
        "upstream",
        "'url' is a required property",
        id="upstream-url-missing",
    ),
    pytest.param(
        "upstream:\n",
        "upstreaam:\n",
        "upstreaam:",
        "upstreaam",
        "unknown key 'upstreaam'",
        id="required-key-misspelt",
    ),
    pytest.param(
        "  port: 8080\n",
        "  port: 8080\n  port: 8081\n",
        "port: 8081",
        "listen.port",
        "duplicate key 'port'",
        id="duplicate-nested-key",
    ),
    pytest.param(
        "authentication:\n",
        "roles: [owner]\nauthentication:\n",
        "roles: [owner]",
        "roles",
        "duplicate key 'roles'",
        id="duplicate-top-level-key",
    ),
    pytest.param(
        "    path: /api/1/chats/{id}/\n    resource: chats\n    action: read",
        "    path: /api/1/chats/{id}x/\n    resource: chats\n    action: read",
        "path: /api/1/chats/{id}x/",
        "routes[1].path",
        "must be a literal or one whole parameter",
        id="route-parameter-with-suffix",
    ),
    pytest.param(
        "    path: /api/1/chats/{id}/messages/\n    resource: messages\n"
        "    action: list",
        "    path: /api/1/chats//messages/\n    resource: messages\n    action: list",
        "path: /api/1/chats//messages/",
        "routes[3].path",
        "has an empty segment",
        id="route-empty-segment",
    ),
    pytest.param(
        "    path: /api/1/contacts/{id}/tags/{tag_id}/",
        "    path: /api/1/contacts/{id}/tags/{id}/",
        "path: /api/1/contacts/{id}/tags/{id}/",
        "routes[16].path",
        "repeats parameter 'id'",
        id="route-repeated-parameter",
    ),
    pytest.param(
        "    path: /api/1/tags/\n    resource: tags\n    action: list",
        "    path: /api/1/tags/.hidden/\n    resource: tags\n    action: list",
        "path: /api/1/tags/.hidden/",
        "routes[24].path",
        "may not start with '.'",
        id="route-dot-segment",
    ),
    pytest.param(
        "    path: /api/1/tags/\n    resource: tags\n    action: list",
        "    path: api/1/tags/\n    resource: tags\n    action: list",
        "path: api/1/tags/",
        "routes[24].path",
        "does not match '^/'",
        id="route-relative-path",
    ),
    pytest.param(
        "    action: read\n    object: chat\n",
        "    action: read\n    object: chatroom\n",
        "object: chatroom",
        "routes[1].object",
        "unknown resolver 'chatroom' (known: chat, contact)",
        id="route-unknown-resolver",
    ),
    pytest.param(
        "    invalidates: [chat]\n",
        "    invalidates: [chatroom]\n",
        "invalidates: [chatroom]",
        "routes[5].invalidates[0]",
        "unknown resolver 'chatroom'",
        id="route-invalidates-unknown-resolver",
    ),
    pytest.param(
        "    action: send_by_phone\n",
        "    action: send_by_phone\n    object: chat\n",
        "path: /api/1/messages/send_by_phone/",
        "routes[7].path",
        "needs the parameter {id} in this path",
        id="route-object-without-parameter",
    ),
    pytest.param(
        "  - method: POST\n    path: /api/1/messages/send_by_phone/\n",
        "  - methods: [POST]\n    method: POST\n"
        "    path: /api/1/messages/send_by_phone/\n",
        "- methods: [POST]",
        "routes[7]",
        "exactly one of 'method' or 'methods'",
        id="route-method-and-methods",
    ),
    pytest.param(
        "  - method: GET\n    path: /api/1/chats/\n",
        "  - method: TRACE\n    path: /api/1/chats/\n",
        "- method: TRACE",
        "routes[0].method",
        "'TRACE' is not one of",
        id="route-unknown-method",
    ),
    pytest.param(
        "    path: /api/1/chats/{id}/\n    owners_field: assignee",
        "    path: /api/1/chats/{id}/{part}/\n    owners_field: assignee",
        "path: /api/1/chats/{id}/{part}/",
        "resolvers.chat.path",
        "exactly one parameter",
        id="resolver-two-parameters",
    ),
    pytest.param(
        "algorithms: [HS256]",
        "algorithms: [HS256, RS256]",
        "algorithms:",
        "authentication.jwt.algorithms",
        "mixes HMAC (HS*) and public-key",
        id="hmac-and-rsa-algorithms",
    ),
    pytest.param(
        "    secret_file: .gateway/jwt-secret",
        "    secret_env: GATEWAY_JWT_SECRET\n    secret_file: .gateway/jwt-secret",
        "jwt:",
        "authentication.jwt",
        "set exactly one key source",
        id="two-key-sources",
    ),
    pytest.param(
        "algorithms: [HS256]",
        "algorithms: [RS256]",
        "secret_file:",
        "authentication.jwt.secret_file",
        "does not fit algorithms ['RS256']",
        id="hmac-secret-for-rsa",
    ),
    pytest.param(
        "trusted_proxies: []",
        "trusted_proxies: [10.0.0.1, not-an-ip]",
        "trusted_proxies:",
        "forwarding.trusted_proxies[1]",
        "'not-an-ip' is not an IP address or network",
        id="bad-trusted-proxy",
    ),
    pytest.param(
        "trusted_proxies: []",
        "trusted_proxies: [10.0.0.0/33]",
        "trusted_proxies:",
        "forwarding.trusted_proxies[0]",
        "is not an IP address or network",
        id="bad-trusted-network",
    ),
    pytest.param(
        "  port: 8080\n",
        "  port: 8080: x\n",
        "port: 8080: x",
        None,
        "invalid YAML: mapping values are not allowed",
        id="invalid-yaml",
    ),
    pytest.param(
        "  port: 8080\n",
        "\tport: 8080\n",
        "port: 8080",
        None,
        "invalid YAML",
        id="tab-indentation",
    ),
]


def line_starting_with(text: str, marker: str) -> int:
    """Return the number of the one line of `text` that starts with `marker`."""
    numbers = [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip().startswith(marker.strip())
    ]
    assert len(numbers) == 1, f"{marker!r} starts lines {numbers}, expected one"
    return numbers[0]


def with_route_index(key: str, text: str, line: int) -> str:
    """Replace the route index in `key` with that of the route around `line`.

    The table names routes by their index in the shipped file.  Counting the
    route items above the error's line keeps it right when routes are added.
    """
    above = text.splitlines()[:line]
    index = sum(1 for row in above if row.startswith("  - method")) - 1
    return re.sub(r"^routes\[\d+\]", f"routes[{index}]", key)


def test_shipped_config_loads(write_config, shipped_text):
    config = load_config(write_config(shipped_text))

    assert config.roles == ("owner", "administrator", "chat_manager", "chat_operator")
    assert len(config.routes) == shipped_text.count("\n  - method")


@pytest.mark.parametrize("old, new, marker, key, reason", BAD_CONFIGS)
def test_bad_config_rejected_with_location(
    write_config, shipped_text, old, new, marker, key, reason
):
    assert old in shipped_text
    config_file = write_config(shipped_text.replace(old, new, 1))
    edited_text = config_file.read_text()

    with pytest.raises(ConfigError) as caught:
        load_config(config_file)

    error = caught.value
    assert error.file == str(config_file)
    assert reason in error.message
    line = line_starting_with(edited_text, marker)
    expected_key = with_route_index(key, edited_text, line) if key else key
    assert error.key == expected_key
    assert error.line == line


def test_error_text_starts_with_file_line_key(write_config, shipped_text):
    config_file = write_config(shipped_text.replace("  port: 8080\n", "  port: x\n"))

    with pytest.raises(ConfigError) as caught:
        load_config(config_file)

    assert str(caught.value) == (
        f"{config_file}:6: listen.port: 'x' is not of type 'integer'"
    )


@pytest.mark.parametrize(
    "text, reason",
    [
        pytest.param(
            "- listen\n- routes\n",
            "the top level must be a mapping",
            id="top-level-list",
        ),
        pytest.param("", "the top level must be a mapping", id="empty-file"),
    ],
)
def test_non_mapping_document_rejected(write_config, text, reason):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(text))

    assert caught.value.line == 1
    assert reason in caught.value.message


def test_missing_config_file_rejected(tmp_path):
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(missing)

    assert caught.value.file == str(missing)
    assert "cannot read file" in caught.value.message
