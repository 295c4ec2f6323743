"""Run the sample chat API: ``python -m sample_api --port 8081``."""

import argparse
import logging
import os
import socket
import sys

from aiohttp import web

from .app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="sample-chat-api",
        description="Serve the sample customer-chat API with fresh seed data.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="TCP port to listen on")
    parser.add_argument(
        "--ignore-filters",
        action="store_true",
        help="start in the fault mode in which list endpoints ignore their filters",
    )
    options = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    app = create_app(ignore_filters=options.ignore_filters)
    address = f"{options.host}:{options.port}"

    def print_banner(_aiohttp_banner: str) -> None:
        # aiohttp 3.14's run_app calls this once the socket is bound, so a failed
        # bind prints no banner.
        print(f"sample chat API on http://{address}", flush=True)

    try:
        web.run_app(
            app,
            host=options.host,
            port=options.port,
            print=print_banner,
            access_log=None,
        )
    except OSError as error:
        sys.exit(f"Error: cannot listen on {address}: {_bind_error_reason(error)}")


def _bind_error_reason(error: OSError) -> str:
    """Return the reason a bind failed, such as 'address already in use'.

    asyncio prefixes the reason with the address tuple, so the text is looked
    up again from the errno, except for host names that do not resolve.
    """
    if isinstance(error, socket.gaierror) or not error.errno:
        return error.strerror or str(error)

    return os.strerror(error.errno).lower()


if __name__ == "__main__":
    main()
