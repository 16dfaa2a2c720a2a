"""On the request path: who answers a call (the AWS kit, or in shadow mode Aliyun itself), and whether
a copy of it is mirrored to the other side for comparison (the mirror itself is an observer:
proxy/observers/mirror.py)."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web

from .aliyun.errors import Err
from .aliyun.request import InboundRequest
from .config import Settings
from .mappings import ActionSpec, Registry
from .observability import metrics
from .shadow.aliyun import AliyunClient, NoAliyunKey

log = structlog.get_logger("shadow")


@dataclass(frozen=True)
class Route:
    primary: str  # "aws" or "aliyun"
    mirror: bool


AWS_ONLY = Route("aws", False)


def _sampled(settings: Settings, caller: str | None) -> bool:
    if settings.shadow_sample >= 1:
        return True
    if settings.shadow_sample_by == "access-key" and caller:  # the same callers every time (GoReplay's hash)
        return zlib.crc32(caller.encode()) % 10_000 < settings.shadow_sample * 10_000
    return random.random() < settings.shadow_sample


class Sides:
    def __init__(self, settings: Settings, aliyun: AliyunClient) -> None:
        self.settings = settings
        self.aliyun = aliyun

    def route(self, spec: ActionSpec, inbound: InboundRequest, caller: str | None) -> Route:
        """The answering side and whether to mirror; every call not mirrored under a shadow mode is a
        drop counted by its reason."""
        mode = self.settings.shadow_mode
        if mode == "aws":
            return AWS_ONLY
        forwardable = self.aliyun.can_forward(inbound, caller)
        if not forwardable:
            _drop("no_aliyun_key")
        primary = "aliyun" if mode == "shadow" and forwardable else "aws"
        chosen = self.settings.shadow_actions
        eligible = spec.shadow_safe and (not chosen or spec.action in chosen)
        if not (eligible and forwardable):
            return Route(primary, False)
        if len(inbound.body) > self.settings.shadow_max_body_bytes:
            _drop("too_large")
            return Route(primary, False)
        if not _sampled(self.settings, caller):
            _drop("sampled_out")
            return Route(primary, False)
        return Route(primary, True)

    def unmapped_product(self, registry: Registry, inbound: InboundRequest) -> str | None:
        """shadow mode (Aliyun answers): the product to forward an action no mapping knows to, so the app
        keeps working while the coverage scan learns what it uses. None otherwise (answered InvalidAction)."""
        action, version = inbound.action, inbound.version
        if self.settings.shadow_mode != "shadow" or not action or not version:
            return None
        if (action, version) in registry.specs:
            return None
        product = _product_for(registry, action, version)
        if product is None:
            log.warning("shadow.unmapped_product_unknown", action=action, version=version)
        return product

    async def forward_unmapped(self, product: str, inbound: InboundRequest, caller: str | None) -> web.Response:
        """Aliyun's answer to an unmapped action, passed to the caller unchanged (never compared)."""
        try:
            answer = await self.aliyun.forward(inbound, product, caller, timeout=self.settings.kit_timeout_seconds)
        except (TimeoutError, OSError, aiohttp.ClientError, NoAliyunKey) as exc:
            log.warning("shadow.aliyun_unreachable", error=type(exc).__name__, unmapped=True)
            raise Err.SERVICE_UNAVAILABLE() from None
        log.info("shadow.unmapped_forwarded", action=inbound.action, product=product, status=answer.status)
        return web.Response(status=answer.status, body=answer.body,
                            headers={"Content-Type": answer.content_type or "application/json;charset=utf-8"})

    async def answer_from_aliyun(self, spec: ActionSpec, inbound: InboundRequest, caller: str | None) -> web.Response:
        """Aliyun's answer, passed to the caller unchanged."""
        try:  # the caller waits on this one: the kit's timeout, not the background one
            answer = await self.aliyun.forward(inbound, spec.product, caller, timeout=self.settings.kit_timeout_seconds)
        except (TimeoutError, OSError, aiohttp.ClientError, NoAliyunKey) as exc:
            log.warning("shadow.aliyun_unreachable", error=type(exc).__name__)
            raise Err.SERVICE_UNAVAILABLE() from None
        metrics.SHADOW_SECONDS.labels(spec.action, "aliyun").observe(answer.seconds)
        return web.Response(status=answer.status, body=answer.body,
                            headers={"Content-Type": answer.content_type or "application/json;charset=utf-8"})


def _product_for(registry: Registry, action: str, version: str) -> str | None:
    """The product of an action no mapping knows, from the mapped ones: the only product with that version,
    or, when several share it (ocr and imageseg: 2019-12-30), the one whose action names share the longest
    prefix with it (RecognizeTable: ocr's Recognize*, not imageseg's Segment*). None when still unclear."""
    same = [s for s in registry.specs.values() if s.version == version]
    products = {s.product for s in same}
    if len(products) <= 1:
        return next(iter(products), None)

    def shared(a: str, b: str) -> int:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    best = {p: max(shared(action, s.action) for s in same if s.product == p) for p in products}
    top = max(best.values())
    winners = [p for p, n in best.items() if n == top]
    return winners[0] if len(winners) == 1 and top >= 3 else None


def _drop(reason: str) -> None:
    metrics.SHADOW_DROPS.labels(reason).inc()
