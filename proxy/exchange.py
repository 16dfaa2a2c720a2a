"""One answered request as the observers beside the path see it: the log, the metrics, the shadow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from .aliyun.errors import AliyunError
from .aliyun.request import InboundRequest
from .mappings import ActionSpec


@dataclass
class Exchange:
    request: web.Request
    inbound: InboundRequest | None
    spec: ActionSpec | None
    caller: str | None
    response: web.Response
    error: AliyunError | None
    seconds: float


Observer = Callable[[Exchange], None]
