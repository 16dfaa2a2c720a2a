"""One answered request as the observers beside the path see it: the log, the metrics, the shadow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from .aliyun.errors import AliyunError
from .aliyun.request import InboundRequest
from .mappings import ActionSpec

if TYPE_CHECKING:
    from .actions.call import Call


@dataclass
class Exchange:
    request: web.Request
    inbound: InboundRequest | None
    spec: ActionSpec | None
    caller: str | None
    response: web.Response
    error: AliyunError | None
    seconds: float
    call: Call | None = None  # the AWS side's work, when AWS answered
    primary: str = "aws"  # who answered: "aws" or "aliyun"
    mirror: bool = False  # chosen for shadow comparison


Observer = Callable[[Exchange], None]
