"""Run the sample chat API: ``python -m sample_api --port 8081``."""

import argparse
import logging

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
    print(f"sample chat API on http://{options.host}:{options.port}", flush=True)
    web.run_app(app, host=options.host, port=options.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
