import pytest_asyncio


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def fresh_upstream(sample_api):
    """Give every test the seed data, no faults and an empty request record."""
    await sample_api.reset()
    yield sample_api
