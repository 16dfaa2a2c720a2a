"""`vision-proxy serve`: start the proxy. Flags override the environment, which overrides --config."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .config import ConfigError, load_settings
from .mappings import MappingError
from .observability import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vision-proxy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the Aliyun-compatible API")
    serve_cmd.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="listen port (default 8080)")
    serve_cmd.add_argument("--config", type=Path, help="YAML file with any of the settings")
    args = parser.parse_args(argv)

    try:
        settings = load_settings(args.config, host=args.host, port=args.port)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    from .server import serve

    try:
        asyncio.run(serve(settings))
    except MappingError as exc:
        print(f"mapping error: {exc}", file=sys.stderr)
        return 2
    return 0
