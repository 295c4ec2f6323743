"""A client of the gateway's own API that checks every response against its document.

The OpenAPI document is the one the gateway serves; a response that does not
fit it fails the test that received it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest_asyncio
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse


API = "/gateway/v1"



@dataclass
class ApiResponse:
    status: int
    headers: Any
    body: Any


class ApiClient:
    def __init__(self, gateway, session: aiohttp.ClientSession,
                 document: dict) -> None:
        self.gateway = gateway
        self._session = session
        # Problem bodies are JSON too, under their own media type.
        config = Config(extra_media_type_deserializers={
            "application/problem+json": json.loads,
        })
        self._openapi = OpenAPI.from_dict(document, config=config)

    async def call(self, principal: str | dict[str, str], method: str, path: str,
                   body: Any = None) -> ApiResponse:
        """Call `path` (below /gateway/v1) as a PRINCIPALS key or with these headers."""
        headers = (self.gateway.credentials(principal) if isinstance(principal, str)
                   else dict(principal))
        async with self._session.request(method, self.gateway.url + API + path,
                                         json=body, headers=headers) as response:
            data = await response.read()
            content_type = response.headers.get("Content-Type", "")
            self._check(method, path, body, response.status, content_type, data)
            parsed = await response.json(content_type=None) if data else None
            return ApiResponse(response.status, response.headers, parsed)

    def _check(self, method, path, body, status, content_type, data) -> None:
        url = urlsplit(path)
        request = MockRequest(
            self.gateway.url,
            method.lower(),
            API + url.path,
            args=dict(parse_qsl(url.query)),
            data=None if body is None else aiohttp.JsonPayload(body)._value,
        )
        media_type = content_type.split(";")[0]
        response = MockResponse(data, status_code=status,
                                content_type=media_type or "application/json")
        self._openapi.validate_response(request, response)


@pytest_asyncio.fixture(loop_scope="session")
async def api_for(http: aiohttp.ClientSession):
    """Return a function that makes an ApiClient for a test gateway."""

    async def make(gateway) -> ApiClient:
        async with http.get(gateway.url + API + "/openapi.json") as response:
            assert response.status == 200
            document = await response.json()
        return ApiClient(gateway, http, document)

    return make


@pytest_asyncio.fixture(loop_scope="session")
async def api(gateway, api_for) -> ApiClient:
    return await api_for(gateway)
