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
    report = commands.add_parser("report", help="write the shadow comparison report (one self-contained HTML file)")
    report.add_argument("--store", type=Path, help="record store directory (default <VISION_PROXY_DATA_DIR>/shadow)")
    report.add_argument("--out", type=Path, default=Path("shadow-report.html"),
                        help="HTML file to write (default shadow-report.html)")
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args.store, args.out)

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


def _report(store: Path | None, out: Path) -> int:
    """`vision-proxy report`: render the shadow record store; needs no settings beyond the data dir."""
    import os

    from .shadow.records import STORE_SUBDIR
    from .shadow.report import write_report

    store = store or Path(os.environ.get("VISION_PROXY_DATA_DIR") or "data") / STORE_SUBDIR
    if not store.is_dir():
        print(f"no record store at {store}", file=sys.stderr)
        return 2
    print(write_report(store, out))
    return 0
