"""vision-proxy: an Aliyun-compatible front for the AWS AI Solution Kit.

Commands:
  serve     serve the Aliyun-compatible API (the app changes one base URL)
  compare   compare Aliyun and AWS on a folder of images, then write the go/no-go report
  report    write the go/no-go report from a shadow record store
  coverage  which Aliyun actions and parameters the app sends, how often, and which are served
  cost      what the recorded traffic costs on Aliyun and on AWS, from a price table you edit

Settings come from VISION_PROXY_* variables and an optional --config YAML file (flags win). Every failure
is one line on stderr and exit status 2 (1: compare could compare nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib import metadata
from pathlib import Path

from .config import ConfigError, Settings, load_settings
from .hints import report_startup
from .mappings import MappingError
from .observability import configure_logging

COMPARE_EPILOG = """\
Aliyun key (never only on the command line, where other users' `ps` sees it): the environment variables
ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or --aliyun-key-file PATH (a file holding
AccessKeyId:Secret). --aliyun-key ID:SECRET still works for a quick try.

Each run writes a fresh record store (<data_dir>/compare/<time>-<id>) unless --store DIR is given,
and the report beside it unless --report PATH is given; the report path is printed on stdout.

Dry run, before any Aliyun key exists: `vision-proxy compare IMAGES --dry-run` compares the embedded backend
against itself (the proxy on a loopback port stands in for Aliyun and fetches the images from the folder),
so the report can be read on day one. It says loudly that neither side was Aliyun or the kit.

Exit status: 0 when at least one image was compared, 1 when nothing could be compared, 2 for bad input.
Actions (default: those marked offline.default in mappings/): {actions}
"""


def version() -> str:
    try:
        return metadata.version("vision-proxy")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _actions_help() -> str:
    try:
        from .app import CONVERTERS
        from .mappings import default_dir, load
        from .offline import comparable_actions

        registry = load(default_dir(), CONVERTERS)
        defaults = {s.action for s in registry.specs.values() if s.offline.default}
        return ", ".join(a + (" (default)" if a in defaults else "") for a in comparable_actions(registry))
    except Exception as exc:  # the help must print even when a mapping is broken
        return f"(mappings could not be read: {exc})"


def parser(compare_help: bool = True) -> argparse.ArgumentParser:
    """compare_help: read the mappings to list compare's actions (only worth it when help is asked for)."""
    top = argparse.ArgumentParser(prog="vision-proxy", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"vision-proxy {version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the Aliyun-compatible API",
                                description="Serve the Aliyun-compatible API and its admin listener (metrics, "
                                            "probes). Settings: VISION_PROXY_* variables, see README.md.")
    serve.add_argument("--host", help="listen address (default 127.0.0.1; another needs VISION_PROXY_CALLER_KEYS)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--config", type=Path, help="YAML file with any of the settings")
    report = commands.add_parser("report", help="write the go/no-go report from a record store",
                                 description="Render a shadow record store into one self-contained HTML file with "
                                             "a GO / NO-GO / NOT ENOUGH DATA verdict per action and overall "
                                             "(criteria: VISION_PROXY_SHADOW_VERDICT_*).")
    report.add_argument("--store", type=Path, help="record store directory (default <VISION_PROXY_DATA_DIR>/shadow)")
    report.add_argument("--out", "--report", dest="out", type=Path, default=Path("shadow-report.html"),
                        help="HTML file to write (default shadow-report.html)")
    report.add_argument("--config", type=Path, help="YAML file with any of the settings (verdict criteria)")
    report.add_argument("--prices", type=Path, help="price table (YAML) for the cost section; see `cost --help`")
    compare = commands.add_parser("compare", help="compare Aliyun and AWS on a folder of images, then report",
                                  description="Send each image to Aliyun and to AWS, compare the answers as shadow "
                                              "traffic is compared, and write the go/no-go report.",
                                  epilog=COMPARE_EPILOG.format(actions=_actions_help() if compare_help else "-"),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("images", type=Path, help="folder of images")
    compare.add_argument("--actions", help="comma-separated Aliyun actions (default: see below)")
    compare.add_argument("--url-prefix", help="where Aliyun can fetch the same images (URL of their folder); "
                                              "needed by every action but ocr-api's")
    compare.add_argument("--aliyun-key-file", type=Path, help="file holding AccessKeyId:Secret of the Aliyun account")
    compare.add_argument("--aliyun-key", help="AccessKeyId:Secret on the command line (visible to `ps`; prefer the "
                                              "environment or --aliyun-key-file)")
    compare.add_argument("--store", type=Path, help="record store directory (default: a fresh one for this run)")
    compare.add_argument("--report", "--out", dest="out", type=Path,
                         help="HTML report to write (default: beside the store)")
    compare.add_argument("--dry-run", action="store_true", help="no Aliyun: the embedded backend against itself")
    compare.add_argument("--config", type=Path, help="YAML file with any of the settings")
    coverage = commands.add_parser("coverage", help="which Aliyun actions and parameters the traffic used",
                                   description="Merge the coverage counts every proxy process wrote (<data_dir>/"
                                               "coverage) and print, per action and version, how often the app "
                                               "called it, what became of the calls, and which parameters it sent "
                                               "(ignored: accepted without effect; unknown: not in the mapping).")
    coverage.add_argument("--store", type=Path, help="coverage directory (default <VISION_PROXY_DATA_DIR>/coverage)")
    cost = commands.add_parser("cost", help="what the recorded traffic costs on Aliyun and on AWS",
                               description="Calls per action from the record store (scaled by each record's sample "
                                           "rate) times the price table: per 1000 calls and per month at the "
                                           "observed rate, per action and in total. A price not in the table is "
                                           "shown as not set. The table's format: proxy/shadow/cost.py, README.")
    cost.add_argument("--store", type=Path, help="record store directory (default <VISION_PROXY_DATA_DIR>/shadow)")
    cost.add_argument("--prices", type=Path, help="price table (YAML); none: every price not set")
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(compare_help="compare" in argv and bool({"-h", "--help"} & set(argv))).parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except MappingError as exc:
        print(f"mapping error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from .offline import CompareError

    if args.command == "report":
        return _report(args.store, args.out, args.config, args.prices)
    if args.command == "cost":
        return _cost(args.store, args.prices)
    if args.command == "coverage":
        from .coverage import coverage_command

        return coverage_command(args.store or Path(os.environ.get("VISION_PROXY_DATA_DIR") or "data") / "coverage")
    settings = load_settings(args.config, **({"host": args.host, "port": args.port}
                                             if args.command == "serve" else {}))
    # compare prints the report's path on stdout; its logs go to stderr with the progress bar
    configure_logging(settings.log_level, sys.stderr if args.command == "compare" else sys.stdout)
    for line in report_startup(settings):  # misspelt variables, shadow without keys, region vs kit host
        print(line, file=sys.stderr)
    if args.command == "compare":
        try:
            return _compare(settings, args)
        except CompareError as exc:
            print(f"compare: {exc}", file=sys.stderr)
            return 2
    from .server import serve

    try:
        asyncio.run(serve(settings))
    except OSError as exc:  # a busy port, an address not on this host
        print(f"serve: cannot listen on {settings.host}:{settings.port} (admin {settings.admin_port}): "
              f"{exc.strerror or exc}; set --port / VISION_PROXY_PORT or VISION_PROXY_ADMIN_PORT", file=sys.stderr)
        return 2
    return 0


def _store_dir(store: Path | None) -> Path:
    from .shadow.records import STORE_SUBDIR

    return store or Path(os.environ.get("VISION_PROXY_DATA_DIR") or "data") / STORE_SUBDIR


def _cost(store: Path | None, prices: Path | None) -> int:
    """`vision-proxy cost`: the cost table over the record store, as the report's cost section shows it."""
    from .shadow.cost import PriceError, cost_table, text
    from .shadow.records import RecordStore

    store = _store_dir(store)
    if not store.is_dir():
        print(f"cost: no record store at {store} (give --store DIR)", file=sys.stderr)
        return 2
    try:
        print(text(cost_table(list(RecordStore(store).records()), prices)))
    except PriceError as exc:
        print(f"cost: {exc}", file=sys.stderr)
        return 2
    return 0


def _report(store: Path | None, out: Path, config: Path | None, prices: Path | None = None) -> int:
    """`vision-proxy report`: render the shadow record store, with the verdict criteria from the settings."""
    from .shadow.records import STORE_SUBDIR
    from .shadow.report import write_report
    from .shadow.verdicts import Criteria

    store = store or Path(os.environ.get("VISION_PROXY_DATA_DIR") or "data") / STORE_SUBDIR
    if not store.is_dir():
        print(f"report: no record store at {store} (give --store DIR)", file=sys.stderr)
        return 2
    settings = load_settings(config)
    from .shadow.cost import PriceError

    try:
        print(write_report(store, out, criteria=Criteria.from_settings(settings), prices=prices))
    except PriceError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    return 0


def aliyun_key(args: argparse.Namespace) -> tuple[str, str] | None:
    """From --aliyun-key, --aliyun-key-file, or ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET (Aliyun's own names)."""
    from .offline import CompareError

    text = args.aliyun_key
    if text is None and args.aliyun_key_file is not None:
        try:
            text = args.aliyun_key_file.read_text().strip()
        except OSError as exc:
            raise CompareError(f"--aliyun-key-file {args.aliyun_key_file}: {exc.strerror or exc}") from None
    if text is not None:
        key_id, _, secret = text.partition(":")
        if not (key_id and secret):
            raise CompareError("the Aliyun key must be AccessKeyId:Secret (value not shown)")
        return key_id, secret
    key_id, secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if key_id and secret:
        return key_id, secret
    return None


def _compare(settings: Settings, args: argparse.Namespace) -> int:
    """`vision-proxy compare`: the offline proof of concept over a folder of the customer's images."""
    from .offline import compare_folder

    key = None if args.dry_run else aliyun_key(args)
    actions = [a.strip() for a in (args.actions or "").split(",") if a.strip()] or None
    run = asyncio.run(compare_folder(settings, args.images, actions, args.url_prefix, key, args.store, args.out,
                                     dry_run=args.dry_run))
    print(run.report)
    counts = " · ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
    print(f"compare: {counts}; records in {run.store}", file=sys.stderr)
    if run.compared == 0:
        print("compare: nothing could be compared (every call failed; the report lists why)", file=sys.stderr)
        return 1
    return 0
