"""Fixtures for the attack tests: a fresh upstream for every test.

The gateway, sample API and client fixtures come from tests/conftest.py.  The
suite must pass with aiohttp's C parser and with the pure-Python one, which
`AIOHTTP_NO_EXTENSIONS=1` selects, so run it once with each.
"""

import pytest_asyncio


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def fresh_upstream(sample_api):
    """Give every test the seed data, no faults and an empty request record."""
    await sample_api.reset()
    yield sample_api
