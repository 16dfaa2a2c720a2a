"""One admission budget for decoded pixels: the proxy's memory is bounded by what images decode to, not by
how many requests are in flight (a 726-byte JPEG can declare 8000×8000 pixels).

Every full decode the proxy itself makes (EXIF rotation, OCR's fitting and tilt measurement, matting
composition, enlargement, shadow scoring of result images) first reserves
its cost here, computed from the header-declared dimensions before any pixel is decoded. Reservations are
granted first come, first served; a caller that cannot get its share within `wait` seconds gets Aliyun's
`Throttling`, and one whose cost alone exceeds the whole budget is refused at once (it could never fit).

The costs are peak bytes per pixel measured with VmHWM on the code as it is (Pillow keeps RGB as 4 bytes a
pixel, numpy as 3; blending keeps rows of 8-bit tiles and weighs only overlaps in float), rounded up.
Not counted: the embedded backend's own decodes (it stands in for the kit, whose memory is not the
proxy's) and encoded bytes (capped elsewhere).
"""

from __future__ import annotations

import asyncio
import ctypes
import io
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from PIL import Image

from .aliyun.errors import Err
from .observability import metrics

ROTATION_PER_PX = 14  # decode (4) + transposed copy (4) + re-encoded output (at most 4) + slack
MATTING_PER_PX = 18  # decode (4) + RGB copy (4) + full-size matte (1) + composed copy (4) + PNG (4) + slack
INPUT_PER_PX = 12  # enlargement input: decode (4) + RGB copy (4) + numpy array (3) + slack
OUTPUT_PER_PX = 10  # enlarged output: 8-bit canvas (4) + encoded buffer and its copy (at most 6); a PNG
# result is encoded by stripes (no canvas: 127 MB peak growth in all for a 1920x1080 x4), so this over-counts it
STRIP_PER_PX = 16  # a row of tiles' height: up to three rows of tiles (9) + the stripe (3) + tile decodes (4)
# Estimated from the same parts, not yet measured with VmHWM:
FIT_PER_PX = 12  # OCR's payload fitting: decode (4) + RGB copy (4) + a resized copy (at most 4)
TILT_PER_PX = 6  # OCR's tilt measurement: decode (4) + grey copy (1) + slack (JPEGs decode smaller, drafted)
COMPARE_PER_PX = {"super_resolution": 64, "matting": 24}  # shadow scoring: both decodes, PSNR/SSIM arrays
M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 1024 * 1024
TOP_PAD = 32 * 1024 * 1024


def tune_malloc() -> bool:
    """Make a released reservation a release of memory too, without paying for fresh pages on every request.

    glibc raises its mmap threshold after the first large free (up to 32 MB); pixel buffers then come from
    per-thread arenas that keep what is freed, so RSS grows to several budgets across the decode threads
    (the load test measured a 435 MB peak for a 256 MB budget, 220 MB with this). A fixed threshold keeps
    every buffer over 1 MiB mmapped. But an arena whose top is trimmed to glibc's 128 KB pad mmaps each
    multi-MB buffer afresh, and every new 4 KB page faults (~1.2 µs each: a 4 MB body's decode for the OCR
    tilt spent 4.5 ms of its 10 in the kernel). A 32 MB pad lets each arena serve a request's big buffers
    from its top: no faults, and the load test's peak moved from 214 to 222 MB. Off glibc: nothing to do,
    False."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(M_TOP_PAD, TOP_PAD))
    except (OSError, AttributeError):
        return False


def rotation_bytes(width: int, height: int) -> int:
    return ROTATION_PER_PX * width * height


def fitting_bytes(width: int, height: int) -> int:
    return FIT_PER_PX * width * height


def tilt_bytes(width: int, height: int) -> int:
    return TILT_PER_PX * width * height


def matting_bytes(width: int, height: int) -> int:
    return MATTING_PER_PX * width * height


def enlargement_bytes(width: int, height: int, factor: int, tile: int, max_short: int | None = None) -> int:
    """`width`×`height` as declared; `max_short`: the input is first reduced so its short side fits."""
    cost = INPUT_PER_PX * width * height
    if max_short and min(width, height) > max_short:
        ratio = max_short / min(width, height)
        width, height = round(width * ratio), round(height * ratio)
        cost += INPUT_PER_PX * width * height
    scale = 4 if factor >= 3 else 2  # the kit's factor (imageenhan.kit_factor)
    out = width * height * max(factor, scale) ** 2
    strip = min(height, tile) * scale * width * scale
    return cost + OUTPUT_PER_PX * out + STRIP_PER_PX * strip


def comparison_bytes(family: str | None, *images: bytes | None) -> int:
    """Shadow scoring of two result images (proxy/shadow/compare/pictures.py), by the larger one's header."""
    per_px = COMPARE_PER_PX.get(family or "", 0)
    if not per_px or any(image is None for image in images):
        return 0
    try:
        pixels = max(w * h for w, h in (Image.open(io.BytesIO(image)).size for image in images if image))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 0  # not an image: scoring fails on its own, before decoding anything
    return per_px * pixels


class PixelBudget:
    """A FIFO weighted semaphore over bytes of decoded pixels."""

    def __init__(self, capacity: int, wait: float) -> None:
        self.capacity = capacity
        self.wait = wait
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """Callers queued for their share."""
        return len(self._waiters)

    @asynccontextmanager
    async def hold(self, cost: int) -> AsyncIterator[None]:
        """Reserve `cost` bytes for the body of the `async with`; raises Throttling when none come in time."""
        if cost > self.capacity:
            metrics.DECODE_REFUSALS.labels("too_large").inc()
            raise Err.IMAGE_RESOLUTION(f"decoding it needs {cost >> 20} MB, more than this service's image "
                                       f"memory budget ({self.capacity >> 20} MB)")
        await self._acquire(cost)
        try:
            yield
        finally:
            self._release(cost)

    async def _acquire(self, cost: int) -> None:
        if cost == 0 or (not self._waiters and self.used + cost <= self.capacity):
            self._grant(cost)
            return
        entry = (cost, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(self.wait):
                await asyncio.shield(entry[1])
        except (TimeoutError, asyncio.CancelledError) as exc:
            if entry[1].done():  # granted just as the wait ended: give it back
                self._release(cost)
            else:
                self._waiters.remove(entry)
                entry[1].cancel()
                self._wake()  # a big waiter leaving the head may let smaller ones in
            if isinstance(exc, TimeoutError):
                metrics.DECODE_REFUSALS.labels("throttled").inc()
                raise Err.THROTTLING() from None
            raise

    def _grant(self, cost: int) -> None:
        self.used += cost
        metrics.DECODE_BYTES.set(self.used)

    def _release(self, cost: int) -> None:
        self.used -= cost
        metrics.DECODE_BYTES.set(self.used)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.capacity:
            cost, future = self._waiters.popleft()
            self._grant(cost)
            future.set_result(None)
