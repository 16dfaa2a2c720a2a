"""`vision-proxy serve`: start the proxy. Flags override the environment, which overrides --config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiohttp import web

from .config import ConfigError, load_settings
from .mappings import MappingError
from .observability import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vision-proxy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the Aliyun-compatible API")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--config", type=Path, help="YAML file with any of the settings")
    args = parser.parse_args(argv)

    try:
        settings = load_settings(args.config, host=args.host, port=args.port)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    from .app import build_app

    try:
        app = build_app(settings)
    except MappingError as exc:
        print(f"mapping error: {exc}", file=sys.stderr)
        return 2
    web.run_app(app, host=settings.host, port=settings.port, access_log=None,
                print=lambda _: print(f"vision-proxy listening on http://{settings.host}:{settings.port}",
                                      file=sys.stderr))
    return 0
