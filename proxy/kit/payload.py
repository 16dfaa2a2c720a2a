"""The kit request body for an image, `{"img":"<base64>", ...}`, without ever building it whole.

SigV4 signs the body's SHA-256, so the body is read twice: hashed, then sent. A multi-MB base64 held
between the two cost more than making it twice: the fresh memory it needs (5.6 MB for a 4 MB image,
page-faulted in on every request) cost about 2 ms of CPU here, where pybase64 encodes 4 MB in 0.3 ms.
So the base64 is made in slices of PACE_BYTES, once for the hash (on the loop, see image_body) and again,
slice by slice, as the body is written to the socket: each slice is
freed before the next is made, so the same cache-sized memory serves the whole body, and a request in
flight holds no copy of its image but the caller's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pybase64

from ..images import LoadedImage

PACE_BYTES = 64 * 1024  # a body larger than this is written in slices of this size
YIELD_BYTES = 4 * PACE_BYTES  # written between two turns of the loop (~0.1 ms of work)
RAW_SLICE = PACE_BYTES // 4 * 3  # raw bytes whose base64 is one slice (a multiple of 3: no padding inside)


@dataclass(frozen=True)
class ImageBody:
    """`head`, the base64 of `image`, `tail`: the body in order; `sha256` is its hash, `size` its length."""

    head: bytes
    image: bytes
    tail: bytes
    sha256: str = ""
    size: int = 0

    def slices(self) -> Iterator[bytes]:
        """The body as pieces of at most PACE_BYTES, the base64 made as it is asked for."""
        yield self.head
        view = memoryview(self.image)
        for start in range(0, len(view), RAW_SLICE):
            yield pybase64.b64encode(view[start:start + RAW_SLICE])
        yield self.tail


async def image_body(image: LoadedImage, **extra: Any) -> bytes | ImageBody:
    """The body for `image` (its URL, or its bytes as base64) and `extra` fields, hashed on the loop with a
    turn every YIELD_BYTES. Not in the worker pool: for OCR the pool is decoding the same image for the
    tilt meanwhile, and there the hash (5.6 MB of base64 for a 4 MB image, ~3.5 ms) queued behind or ahead
    of that decode, adding one to the other; hashlib and pybase64 let go of the GIL, so the two run at once
    on two cores (a 4 MB body's OCR step: 16.5 -> 13.2 ms)."""
    tail = b"".join(b"," + json.dumps(k).encode() + b":" + json.dumps(v).encode() for k, v in extra.items())
    if image.data is None:
        return b'{"url":' + json.dumps(image.url).encode() + tail + b"}"
    unhashed = ImageBody(b'{"img":"', image.data, b'"' + tail + b"}")
    digest, size = hashlib.sha256(), 0
    async for chunk in paced(unhashed):  # the slices the body is sent in, with the same turns of the loop
        digest.update(chunk)
        size += len(chunk)
    return replace(unhashed, sha256=digest.hexdigest(), size=size)


def digest(body: bytes | ImageBody) -> str:
    """The hex SHA-256 SigV4 signs: an image body's was made with it, a small body's is made now."""
    return hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else body.sha256


def body_size(body: bytes | ImageBody) -> int:
    return len(body) if isinstance(body, bytes) else body.size


def pieces(body: bytes | ImageBody) -> Iterable[bytes]:
    return (body,) if isinstance(body, bytes) else body.slices()


async def paced(body: bytes | ImageBody) -> AsyncIterator[memoryview]:
    """The body in slices of at most PACE_BYTES, no copies, and a turn of the loop every YIELD_BYTES, as it
    is hashed (image_body) and as it is sent: a socket that takes every slice at once (loopback, a fast
    link) never makes aiohttp wait, and a 4 MB image's 5.6 MB body then held the loop ~5 ms in one go (in
    one write, about 30 ms)."""
    sent = 0
    for piece in pieces(body):
        view = memoryview(piece)
        for start in range(0, len(view), PACE_BYTES):
            chunk = view[start:start + PACE_BYTES]
            yield chunk
            sent += len(chunk)
            if sent >= YIELD_BYTES:
                sent = 0
                await asyncio.sleep(0)
