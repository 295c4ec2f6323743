"""The account of the API key's owner and its billing summary."""

from aiohttp import web

from .schema import Field, read_fields
from .store import get_store

PLANS = ("free", "pro", "enterprise")
ACCOUNT_FIELDS = {
    "id": Field(str, read_only=True),
    "name": Field(str),
    "plan": Field(str, choices=PLANS),
}

routes = web.RouteTableDef()


@routes.get("/api/1/account/")
async def get_account(request: web.Request) -> web.Response:
    return web.json_response(get_store(request).account)


@routes.patch("/api/1/account/")
async def update_account(request: web.Request) -> web.Response:
    account = get_store(request).account
    values = await read_fields(request, ACCOUNT_FIELDS, partial=True)

    account.update(values)

    return web.json_response(account)


@routes.get("/api/1/account/billing/")
async def get_billing(request: web.Request) -> web.Response:
    store = get_store(request)

    # The billed plan is the account's plan, including after a PATCH changes it.
    return web.json_response({**store.billing, "plan": store.account["plan"]})
