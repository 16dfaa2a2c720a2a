"""`vision-proxy serve`: start the proxy. Flags override the environment, which overrides --config."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .config import ConfigError, Settings, load_settings
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
    compare = commands.add_parser("compare", help="compare Aliyun and AWS on a folder of images, then report")
    compare.add_argument("images", type=Path, help="folder of images")
    compare.add_argument("--actions", help="comma-separated Aliyun actions (default: those whose mapping sets "
                                           "offline.default)")
    compare.add_argument("--url-prefix", help="where Aliyun can fetch the same images (URL of their folder)")
    compare.add_argument("--aliyun-key", required=True, help="AccessKeyId:Secret of the Aliyun account to call")
    compare.add_argument("--out", type=Path, default=Path("shadow-report.html"), help="HTML report to write")
    compare.add_argument("--config", type=Path, help="YAML file with any of the settings")
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args.store, args.out)

    try:
        settings = load_settings(args.config, **({"host": args.host, "port": args.port}
                                                 if args.command == "serve" else {}))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    # compare prints the report's path on stdout; its logs go to stderr with the progress bar
    configure_logging(settings.log_level, sys.stderr if args.command == "compare" else sys.stdout)
    if args.command == "compare":
        return _compare(settings, args)

    from .server import serve

    try:
        asyncio.run(serve(settings))
    except MappingError as exc:
        print(f"mapping error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:  # checked against the mappings (action_backends)
        print(exc, file=sys.stderr)
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


def _compare(settings: Settings, args: argparse.Namespace) -> int:
    """`vision-proxy compare`: the offline proof of concept over a folder of the customer's images."""
    from .offline import compare_folder

    key_id, _, secret = args.aliyun_key.partition(":")
    if not secret:
        print("--aliyun-key must be AccessKeyId:Secret", file=sys.stderr)
        return 2
    actions = [a.strip() for a in (args.actions or "").split(",") if a.strip()] or None
    print(asyncio.run(compare_folder(settings, args.images, actions, args.url_prefix, (key_id, secret), args.out)))
    return 0
