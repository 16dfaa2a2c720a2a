"""One answered request, as the observers beside the gateway see it (the log, the metrics, the mirror).

A frozen value: an observer reads what the caller sent and what was answered, never the request's
working parts (kit client, job runner, semaphores), and cannot change the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .aliyun.errors import Err
from .aliyun.request import InboundRequest
from .mappings import ActionSpec


@dataclass(frozen=True)
class Exchange:
    inbound: InboundRequest | None  # what the caller sent (None when not even that could be read)
    spec: ActionSpec | None  # the action it was routed to
    caller: str | None  # the authenticated AccessKeyId
    status: int  # what was answered: HTTP status, body, content type
    body: bytes
    content_type: str
    code: str | None  # the Aliyun error code answered, None for a success
    kind: Err | None  # the error's entry in the error table, when it has one
    seconds: float
    primary: str = "aws"  # who answered: "aws" or "aliyun"
    mirror: bool = False  # chosen for shadow comparison
    input_image: bytes | None = None  # kept for a mirrored AWS answer: the image the action read
    result_images: tuple[bytes, ...] = ()  # and the result images it made
    job_images: asyncio.Future[tuple[bytes, ...]] | None = None  # an async job's, once it has finished


Observer = Callable[[Exchange], None]
