"""`vision-proxy compare IMAGES_DIR`: the proof of concept on the customer's own images, before any traffic.

Each image goes to Aliyun (signed with the given Aliyun key) and to AWS (the configured kit, or the
embedded backend) for each chosen action; both answers are compared exactly as shadow traffic is, into
the same record store, and the same HTML report is written. ocr-api takes the image as the request body;
the other actions need the image at a URL Aliyun can fetch (`--url-prefix`, e.g. the OSS folder the
images were uploaded to), because Aliyun downloads them itself.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from urllib.parse import urlencode

from multidict import CIMultiDict, CIMultiDictProxy
from tqdm import tqdm

from .aliyun.errors import AliyunError
from .aliyun.request import FORM, InboundRequest
from .app import build_registry, start_services, stop_services
from .config import Settings
from .exchange import Exchange
from .mappings import ActionSpec, Registry
from .shadow.aliyun import Answer, NoAliyunKey
from .shadow.records import STORE_SUBDIR
from .shadow.report import write_report

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
CALLER = "offline"


def find_spec(registry: Registry, action: str) -> ActionSpec:
    for (name, _), spec in registry.specs.items():
        if name == action:
            return spec
    raise SystemExit(f"unknown action: {action}")


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
                             body_sha256=hashlib.sha256(body).hexdigest(), request_id=str(uuid.uuid4()).upper())
    inbound.params = dict(params)
    inbound.query = query
    inbound.form_merged = image is None
    return inbound


async def compare_folder(settings: Settings, folder: Path, actions: list[str] | None, url_prefix: str | None,
                         aliyun_key: tuple[str, str], out: Path) -> Path:
    registry = build_registry(settings)
    services = await start_services(settings, registry)
    aliyun = services.mirror.aliyun
    aliyun.keys[CALLER] = aliyun_key
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no images in {folder}")
    work = [(f, spec) for f in files for spec in chosen_specs(registry, actions)]
    try:
        for path, spec in tqdm(work, desc="comparing", unit="call"):
            image = path.read_bytes()
            assert spec.image is not None, f"{spec.action} takes no image"
            params = dict(spec.offline.params)
            raw = spec.image.raw_body  # ocr-api: the image itself as the body, as the SDKs send it
            if not raw:
                if not url_prefix:
                    raise SystemExit(f"{spec.action} needs --url-prefix: Aliyun fetches its images itself")
                params[spec.image.url_param] = url_prefix.rstrip("/") + "/" + path.name
            try:
                answer = await aliyun.call(spec.product, spec.action, spec.version, params, CALLER,
                                           image if raw else None)
            except (NoAliyunKey, AliyunError, OSError) as exc:
                answer = Answer(599, str(exc).encode(), "text/plain", 0.0)
            first = Exchange(_inbound(spec, params, image if raw else None), spec, CALLER, answer.status, answer.body,
                             answer.content_type, None, None, answer.seconds, primary="aliyun", mirror=True)
            await services.mirror.run(first, mode="offline")
    finally:
        await stop_services(services)
    return write_report(Path(settings.data_dir) / STORE_SUBDIR, out)
