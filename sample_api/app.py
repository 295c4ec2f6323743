"""Application factory of the sample chat API."""

from aiohttp import web

from . import (
    account,
    app_view,
    chats,
    contacts,
    dashboards,
    hooks,
    lists,
    messages,
    streams,
)
from .catalog import CATALOG_RESOURCES
from .errors import json_error_middleware
from .recorder import RECORDER_KEY, RequestRecorder, recording_middleware
from .resources import resource_routes
from .store import STORE_KEY, Store


def create_app(*, ignore_filters: bool = False) -> web.Application:
    """Build the API with fresh seed data.

    ``ignore_filters`` starts the app in the fault mode in which list endpoints
    ignore their filter parameters. ``POST /_sample/reset`` turns it off again.
    """
    # The error middleware comes first so it also turns errors raised while
    # recording, such as 413 for an oversized body, into JSON.
    app = web.Application(middlewares=[json_error_middleware, recording_middleware])
    app[STORE_KEY] = Store(ignore_filters=ignore_filters)
    app[RECORDER_KEY] = RequestRecorder()

    modules = (
        chats,
        messages,
        streams,
        contacts,
        lists,
        account,
        dashboards,
        hooks,
        app_view,
    )
    for module in modules:
        app.add_routes(module.routes)

    for resource in (contacts.CONTACTS, lists.LISTS, *CATALOG_RESOURCES):
        app.add_routes(resource_routes(resource))

    return app
