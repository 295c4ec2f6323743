"""The chat view's files as the sample API serves them under /app/."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from yarl import URL

from .markup import csp_directives, parse_page, static_bytes

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAGE = "/app/"
ASSETS = {
    "app.js": "text/javascript",
    "app.css": "text/css",
}


async def test_page_served_as_html(sample_api, http):
    async with http.get(sample_api.url + PAGE) as response:
        body = await response.read()

    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert body == static_bytes("index.html")


@pytest.mark.parametrize("name", sorted(ASSETS))
async def test_asset_served_with_content_type(sample_api, http, name):
    async with http.get(f"{sample_api.url}/app/{name}") as response:
        body = await response.read()

    assert response.status == 200
    assert response.content_type == ASSETS[name]
    assert response.charset == "utf-8"
    assert body == static_bytes(name)


@pytest.mark.parametrize("path", [PAGE, "/app/app.js", "/app/app.css"])
async def test_view_files_carry_security_headers(sample_api, http, path):
    async with http.get(sample_api.url + path) as response:
        await response.read()

    directives = csp_directives(response.headers["Content-Security-Policy"])
    assert directives["default-src"] == "'self'"
    assert directives["require-trusted-types-for"] == "'script'"
    # Partner sites frame the view, and the gateway decides which ones.
    assert "frame-ancestors" not in directives
    assert "X-Frame-Options" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_head_returns_headers_only(sample_api, http):
    async with http.head(sample_api.url + "/app/app.js") as response:
        body = await response.read()

    assert response.status == 200
    assert response.content_type == "text/javascript"
    assert body == b""


@pytest.mark.parametrize(
    ("raw_path", "reason"),
    [
        ("/app/index.html", "the page is served at /app/ only"),
        ("/app/app_view.py", "a module next to the static folder"),
        ("/app/APP.JS", "names are matched exactly, case included"),
        ("/app/app.js.map", "a name that only starts with an allowed one"),
        ("/app/app.js/", "a trailing slash after an allowed name"),
        ("/app/static/app.js", "the folder is not part of the URL"),
        ("/app/..%2Fapp_view.py", "an encoded separator"),
        ("/app/%2e%2e%2f__init__.py", "an encoded parent segment"),
        ("/app/../sample_api/app.py", "a parent segment"),
        ("/app", "the page URL without its trailing slash"),
    ],
)
async def test_unlisted_path_not_found(sample_api, http, raw_path, reason):
    # encoded=True sends the path byte for byte, without normalizing "..".
    url = URL(sample_api.url + raw_path, encoded=True)
    async with http.get(url) as response:
        body = await response.json()

    assert response.status == 404, reason
    assert body == {"detail": "Not found."}, reason


async def test_view_files_read_only(sample_api, http):
    async with http.post(sample_api.url + "/app/app.js") as response:
        await response.read()

    assert response.status == 405


async def test_page_references_resolve_to_assets(sample_api, http):
    page_url = sample_api.url + PAGE
    async with http.get(page_url) as response:
        markup = parse_page(await response.text())

    referenced = {urljoin(page_url, src): "text/javascript" for src in markup.scripts}
    for href in markup.stylesheets:
        referenced[urljoin(page_url, href)] = "text/css"

    assert len(referenced) == len(ASSETS)
    for url, content_type in referenced.items():
        async with http.get(url) as response:
            await response.read()

        assert response.status == 200, url
        assert response.content_type == content_type, url
