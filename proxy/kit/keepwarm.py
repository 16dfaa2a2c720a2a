"""Opt-in keep-warm (`Settings.kit_keep_warm_seconds`): every N seconds one tiny signed call per kit route
the mappings use, so the kit's Lambdas (and a scaled-in SageMaker endpoint) are already loaded when a caller
arrives; a cold start loads the models and runs warm-up passes (human_seg_app.py runs one at import), which
would otherwise land on a caller's 10 s budget. It keeps one execution environment per route warm, not a
fleet: bursts still meet cold starts beyond the first.

Each call goes the production path (KitClient: SigV4, the route's transport, its own timeout limit, no
caller deadline) and is counted in `vision_proxy_kit_keep_warm_calls{route,outcome}`: `ok`, or the Aliyun
code the failure maps to, so an alert can tell a route that went away from one that is merely slow.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable
from typing import Any

import structlog
from PIL import Image

from ..aliyun.errors import AliyunError
from ..images import LoadedImage
from ..observability import metrics
from .client import KitClient

log = structlog.get_logger("kit.keep_warm")
SIDE = 32  # square: the kit's segmentation resize is 720x720, super-resolution's w // s * s stays 32


def _tiny() -> LoadedImage:
    buf = io.BytesIO()
    Image.new("RGB", (SIDE, SIDE), (127, 127, 127)).save(buf, "PNG")
    return LoadedImage(buf.getvalue(), "png", SIDE, SIDE, SIDE, SIDE)


TINY = _tiny()
EXTRA: dict[str, dict[str, Any]] = {"super_resolution": {"scale": 2}}


async def warm_once(kit: KitClient, route: str) -> str:
    """One keep-warm call on `route`; the outcome as counted."""
    try:
        await kit.invoke_image(route, TINY, **EXTRA.get(route, {}))
        outcome = "ok"
    except AliyunError as err:
        outcome = err.code
        log.warning("kit.keep_warm_failed", route=route, code=err.code)
    except Exception:  # never let the loop die; say why
        log.exception("kit.keep_warm_error", route=route)
        outcome = "error"
    metrics.KIT_KEEP_WARM.labels(route, outcome).inc()
    return outcome


async def keep_warm(kit: KitClient, routes: Iterable[str], interval: float) -> None:
    """Warm every route at once, then again every `interval` seconds, until cancelled."""
    names = sorted(set(routes))
    log.info("kit.keep_warm", routes=names, interval=interval)
    while True:
        await asyncio.gather(*(warm_once(kit, route) for route in names))
        await asyncio.sleep(interval)
