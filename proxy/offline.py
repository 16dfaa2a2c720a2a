"""`vision-proxy compare IMAGES_DIR`: the proof of concept on the customer's own images, before any traffic.

Each image goes to Aliyun (signed with the given Aliyun key) and to AWS (the configured kit, or the
embedded backend) for each chosen action; both answers are compared exactly as shadow traffic is, into
a record store of this run only (or `--store DIR`), and the same HTML report is written. ocr-api takes
the image as the request body; the other actions need the image at a URL Aliyun can fetch
(`--url-prefix`, e.g. the OSS folder the images were uploaded to), because Aliyun downloads them itself.

The dry run (`--dry-run`) needs no Aliyun key: "Aliyun" is the proxy itself on the embedded backend, on
a loopback port, and the images are served to it from the folder. Both sides are then the same demo
models: the report shows how it reads, not how AWS compares.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import SecretStr
from tqdm import tqdm

from .aliyun.errors import AliyunError
from .aliyun.request import FORM, InboundRequest
from .app import build_app, build_registry, start_services, stop_services
from .config import CallerKey, Settings
from .exchange import Exchange
from .mappings import ActionSpec, Registry
from .shadow.agreement import COMPARED
from .shadow.aliyun import DEFAULT_ENDPOINTS, AliyunClient, Answer, NoAliyunKey
from .shadow.records import RecordStore
from .shadow.report import write_report
from .shadow.verdicts import Criteria

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
CALLER = "offline"
DRY_RUN_SIDE = "dry run: the proxy's embedded backend standing in for Aliyun — not Aliyun"


class CompareError(Exception):
    """A problem with the command's input, said in one line."""


@dataclass
class Run:
    store: Path
    report: Path
    counts: Counter[str]

    @property
    def compared(self) -> int:
        return sum(self.counts.get(o, 0) for o in COMPARED)


def find_spec(registry: Registry, action: str) -> ActionSpec:
    for (name, _), spec in registry.specs.items():
        if name == action:
            if spec.image is None:
                raise CompareError(f"{action} takes no image, so there is nothing to compare; choose from: "
                                   + ", ".join(comparable_actions(registry)))
            return spec
    raise CompareError(f"unknown action {action!r}; choose from: " + ", ".join(comparable_actions(registry)))


def comparable_actions(registry: Registry) -> list[str]:
    return sorted({s.action for s in registry.specs.values() if s.image is not None and s.compare is not None})


def chosen_specs(registry: Registry, actions: list[str] | None) -> list[ActionSpec]:
    """The named actions, or those whose mapping says `offline.default`."""
    if actions:
        return [find_spec(registry, a) for a in actions]
    return sorted((s for s in registry.specs.values() if s.offline.default), key=lambda s: s.action)


def _inbound(spec: ActionSpec, params: dict[str, str], image: bytes | None) -> InboundRequest:
    """The request exactly as AliyunClient.call sent it (a raw image body with the parameters in the query,
    or the parameters as a form body), so a noise re-ask (AliyunClient.forward) repeats it whole."""
    headers = CIMultiDict({"x-acs-action": spec.action, "x-acs-version": spec.version})
    if image is not None:
        headers["Content-Type"] = "application/octet-stream"
        body, query = image, sorted(params.items())
    else:
        headers["Content-Type"] = FORM
        body, query = urlencode(params).encode(), []
    inbound = InboundRequest("POST", "/", urlencode(query), CIMultiDictProxy(headers), body=body,
                             request_id=str(uuid.uuid4()).upper())  # body_sha256: computed when asked
    inbound.params = dict(params)
    inbound.query = query
    inbound.form_merged = image is None
    return inbound


def images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CompareError(f"no such folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CompareError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def fresh_store(data_dir: Path) -> Path:
    """A new directory per run, so a second run never adds to the first's counts."""
    return data_dir / "compare" / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3))


@asynccontextmanager
async def _dry_run_sides(settings: Settings, folder: Path) -> AsyncIterator[tuple[Settings, str, tuple[str, str]]]:
    """The stand-in "Aliyun" (this proxy on the embedded backend, with a key made for the run) and a loopback
    server for the folder's images. Yields the settings to compare with, the images' URL and the key."""
    key = ("dryrun-" + secrets.token_hex(4), secrets.token_urlsafe(24))
    images = web.Application()
    images.router.add_static("/images/", folder)
    allow = [*settings.fetch_allow, "127.0.0.1/32"]
    stand_in = settings.model_copy(update={"kit_url": None, "shadow_mode": "aws", "fetch_allow": allow,
                                           "caller_keys": {key[0]: CallerKey(secret=SecretStr(key[1]))},
                                           "data_dir": Path(settings.data_dir) / "dry-run-aliyun"})
    runners = [web.AppRunner(images, access_log=None), web.AppRunner(build_app(stand_in), access_log=None)]
    try:
        urls = []
        for runner in runners:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        compare = settings.model_copy(update={"kit_url": None, "fetch_allow": allow,
                                              "aliyun_endpoints": dict.fromkeys(DEFAULT_ENDPOINTS, urls[1])})
        yield compare, urls[0] + "/images", key
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def compare_folder(settings: Settings, folder: Path, actions: list[str] | None, url_prefix: str | None,
                         aliyun_key: tuple[str, str] | None, store: Path | None = None, out: Path | None = None,
                         dry_run: bool = False) -> Run:
    files = images_in(folder)
    store = store or fresh_store(Path(settings.data_dir))
    out = out or store.parent / f"{store.name}-report.html"
    if dry_run:
        async with _dry_run_sides(settings, folder) as (dry, prefix, key):
            counts = await _compare(dry, files, actions, prefix, key, store, DRY_RUN_SIDE)
    else:
        if aliyun_key is None:
            raise CompareError("no Aliyun key: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, "
                               "or --aliyun-key-file PATH (or try --dry-run first)")
        counts = await _compare(settings, files, actions, url_prefix, aliyun_key, store, None)
    return Run(store, write_report(store, out, criteria=Criteria.from_settings(settings)), counts)


async def _compare(settings: Settings, files: list[Path], actions: list[str] | None, url_prefix: str | None,
                   aliyun_key: tuple[str, str], store: Path, aliyun_label: str | None) -> Counter[str]:
    registry = build_registry(settings)
    specs = chosen_specs(registry, actions)
    for spec in specs:
        if not (spec.image and spec.image.raw_body) and not url_prefix:
            raise CompareError(f"{spec.action} needs --url-prefix: Aliyun fetches its images itself")
    services = await start_services(settings, registry)
    mirror = services.mirror
    mirror.aliyun.keys[CALLER] = aliyun_key
    mirror.store = RecordStore(store, max_records=settings.shadow_store_max_records,
                               max_bytes=settings.shadow_store_max_bytes)
    mirror.aliyun_label = aliyun_label
    counts: Counter[str] = Counter()
    work = [(f, spec) for f in files for spec in specs]
    try:
        with tqdm(work, desc="comparing", unit="call") as bar:
            for path, spec in bar:
                record = await mirror.run(_first(await _ask_aliyun(mirror.aliyun, spec, path, url_prefix), spec,
                                                 path, url_prefix), mode="offline", label=path.name)
                counts[record.outcome] += 1
                note = " · ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                if record.outcome == "error":
                    reasons = "; ".join((record.details or {}).get("reasons") or [])
                    note += f" · last error: {path.name} {spec.action}: {reasons}"[:160]
                bar.set_postfix_str(note)
    finally:
        await stop_services(services)
    return counts


def _params(spec: ActionSpec, path: Path, url_prefix: str | None) -> dict[str, str]:
    params = dict(spec.offline.params)
    assert spec.image is not None
    if not spec.image.raw_body:  # ocr-api takes the image itself as the body, as the SDKs send it
        params[spec.image.url_param] = (url_prefix or "").rstrip("/") + "/" + path.name
    return params


async def _ask_aliyun(aliyun: AliyunClient, spec: ActionSpec, path: Path, url_prefix: str | None) -> Answer:
    assert spec.image is not None
    image = path.read_bytes() if spec.image.raw_body else None
    started = time.perf_counter()
    try:
        return await aliyun.call(spec.product, spec.action, spec.version, _params(spec, path, url_prefix), CALLER,
                                 image)
    except (NoAliyunKey, AliyunError, OSError, TimeoutError) as exc:  # 599: no answer, and why
        return Answer(599, f"{type(exc).__name__}: {exc}".encode(), "text/plain", time.perf_counter() - started)


def _first(answer: Answer, spec: ActionSpec, path: Path, url_prefix: str | None) -> Exchange:
    assert spec.image is not None
    image = path.read_bytes() if spec.image.raw_body else None
    return Exchange(_inbound(spec, _params(spec, path, url_prefix), image), spec, CALLER, answer.status, answer.body,
                    answer.content_type, None, None, answer.seconds, primary="aliyun", mirror=True)
