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
from .mappings import ActionSpec
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


def _drop(reason: str) -> None:
    metrics.SHADOW_DROPS.labels(reason).inc()
