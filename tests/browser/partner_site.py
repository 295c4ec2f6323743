"""A partner's web site that embeds the gateway's chat view, for the browser tests.

Run as a script: `python partner_site.py --port P [--port P2] --gateway-api URL
--gateway-origin ORIGIN --embed-origin ORIGIN --chat ID`, with the service
user's API key in the environment variable PARTNER_API_KEY.  Its backend
requests launch codes from the gateway as a partner's server would, always for
`--embed-origin` and a session scoped to chat `--chat`, whichever port served
the page.  A page served on a second port is therefore on an origin that the
session is not bound to.

- `GET /` frames the launch URL of a new session.
- `GET /post-message` frames the view at `GATEWAY/app/?parent=ORIGIN` and posts
  it a code from `POST /embed-code` when the view posts that it is ready.
- `GET /frame?src=URL` frames a given URL on the gateway's origin.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import logging
import os

import aiohttp
from aiohttp import web
from yarl import URL

logger = logging.getLogger("partner_site")

API_KEY_VARIABLE = "PARTNER_API_KEY"
LAUNCH_PATH = "/gateway/v1/embed/sessions"
LAUNCH_TIMEOUT = aiohttp.ClientTimeout(total=10)

SETTINGS_KEY = web.AppKey("settings", dict)
CLIENT_KEY = web.AppKey("client", aiohttp.ClientSession)

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Partner CRM</title></head>
<body>
<h1>Partner CRM</h1>
<iframe id="embedded-view" title="Chat" src="{src}" width="760" height="560"></iframe>
{script}
</body>
</html>
"""

# The embedding page's side of the postMessage exchange.  It handles messages
# from the framed view on the gateway's origin only, and posts the code to
# that origin only.
POST_MESSAGE_SCRIPT = """<script>
"use strict";
const GATEWAY_ORIGIN = {gateway_origin};
const frame = document.getElementById("embedded-view");
window.addEventListener("message", async (event) => {{
  if (event.origin !== GATEWAY_ORIGIN || event.source !== frame.contentWindow) {{
    return;
  }}
  if (event.data === null || event.data.type !== "gateway-embed-ready") {{
    return;
  }}
  const response = await fetch("/embed-code", {{ method: "POST" }});
  const {{ code }} = await response.json();
  frame.contentWindow.postMessage({{ type: "gateway-embed-code", code }},
                                  GATEWAY_ORIGIN);
}});
</script>"""

routes = web.RouteTableDef()


async def launch(app: web.Application) -> dict:
    """Open an embed session at the gateway and return its JSON response."""
    settings = app[SETTINGS_KEY]
    body = {"origin": settings["embed_origin"], "scope": {"chat": settings["chat"]}}
    async with app[CLIENT_KEY].post(
        settings["gateway_api"] + LAUNCH_PATH,
        json=body,
        headers={"X-API-Key": settings["api_key"]},
    ) as response:
        text = await response.text()
        if response.status != 201:
            reason = f"the gateway returned {response.status} for the launch: {text}"
            logger.warning("launch failed: %s", reason)
            raise web.HTTPBadGateway(text=reason)

    launched = json.loads(text)
    if not launched["url"].startswith(settings["gateway_origin"] + "/"):
        reason = f"the launch URL {launched['url']!r} is not on the gateway's origin"
        logger.warning("launch failed: %s", reason)
        raise web.HTTPBadGateway(text=reason)

    return launched


def page(src: str, script: str = "") -> web.Response:
    return web.Response(
        text=PAGE.format(src=html.escape(src), script=script),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


@routes.get("/")
async def launch_page(request: web.Request) -> web.Response:
    launched = await launch(request.app)
    return page(launched["url"])


@routes.get("/post-message")
async def post_message_page(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    own_origin = f"{request.scheme}://{request.host}"
    src = str(URL(settings["gateway_origin"] + "/app/").with_query(parent=own_origin))
    script = POST_MESSAGE_SCRIPT.format(
        gateway_origin=json.dumps(settings["gateway_origin"])
    )
    return page(src, script)


@routes.post("/embed-code")
async def embed_code(request: web.Request) -> web.Response:
    launched = await launch(request.app)
    return web.json_response({"code": launched["code"]})


@routes.get("/frame")
async def frame_page(request: web.Request) -> web.Response:
    src = request.query.get("src", "")
    if not src.startswith(request.app[SETTINGS_KEY]["gateway_origin"] + "/"):
        logger.warning("invalid src %r: not on the gateway's origin", src)
        raise web.HTTPBadRequest(text=f"src {src!r} is not on the gateway's origin")

    return page(src)


async def open_client(app: web.Application):
    async with aiohttp.ClientSession(timeout=LAUNCH_TIMEOUT) as client:
        app[CLIENT_KEY] = client
        yield


async def serve(settings: dict, ports: list[int]) -> None:
    app = web.Application()
    app[SETTINGS_KEY] = settings
    app.add_routes(routes)
    app.cleanup_ctx.append(open_client)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        for port in ports:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            print(f"partner site on http://127.0.0.1:{port}", flush=True)

        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, action="append", required=True,
                        help="TCP port on 127.0.0.1 to serve on; repeat for more")
    parser.add_argument("--gateway-api", required=True,
                        help="URL the backend calls the gateway's API at")
    parser.add_argument("--gateway-origin", required=True,
                        help="origin of the gateway as the browser opens it")
    parser.add_argument("--embed-origin", required=True,
                        help="origin that every embed session is bound to")
    parser.add_argument("--chat", required=True, help="id of the chat in scope")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    settings = {
        "api_key": os.environ[API_KEY_VARIABLE],
        "gateway_api": options.gateway_api,
        "gateway_origin": options.gateway_origin,
        "embed_origin": options.embed_origin,
        "chat": options.chat,
    }
    asyncio.run(serve(settings, options.port))


if __name__ == "__main__":
    main()
