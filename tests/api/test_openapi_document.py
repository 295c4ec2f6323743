"""The OpenAPI document the gateway serves: valid, complete, with the running roles."""

from __future__ import annotations

import pytest
import pytest_asyncio
from openapi_spec_validator import validate

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def document(gateway, http) -> dict:
    async with http.get(gateway.url + "/gateway/v1/openapi.json") as response:
        assert response.status == 200
        return await response.json()


async def test_served_document_is_valid_openapi(document):
    validate(document)


async def test_document_lists_the_configured_roles(document, gateway):
    assert document["components"]["schemas"]["Role"]["enum"] == list(gateway.config.roles)


async def test_document_describes_every_api_endpoint(document, gateway):
    api = gateway.running.gateway._own_api
    served = {
        (endpoint.method.lower(), "/" + endpoint.path.removeprefix("v1/"))
        for endpoint in api._endpoints
        if endpoint.path.startswith("v1/")
    }

    described = {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert described == served
