"""Make an image fit the kit's request budget (proxy/kit/budget.py), costing as little quality as possible.

An image that fits is sent as it is: one length comparison, no decoding. One that does not is re-encoded
before it is shrunk: the pixels the kit reads (`convert('RGB')`, as its aikits_utils.readimg does) as a
high-quality JPEG, q92 then q85 at full size; only if that is still too big, shrunk at q85 by the factor
the JPEG's size says, and again by what is left, until it fits. `sx`/`sy` map the kit's coordinates back
to the caller's image exactly (original pixels per sent pixel, each axis on its own).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

from PIL import Image

from ..images import LoadedImage

QUALITIES = (92, 85)  # full-size JPEG attempts, best first
SHRINK_QUALITY = 85
SHRINK_MARGIN = 0.97  # aim a little under the budget: a JPEG's size is not exactly proportional to its area
MAX_SHRINKS = 8


class CannotFit(ValueError):
    """Even a thumbnail is over the budget (a budget configured absurdly small)."""


@dataclass(frozen=True)
class Fitted:
    image: LoadedImage  # what the kit is sent
    sx: float = 1.0  # caller's pixels per sent pixel, horizontally
    sy: float = 1.0  # and vertically
    how: str = "as-is"  # as-is | jpeg | jpeg-shrunk


def fits(image: LoadedImage, max_bytes: int) -> bool:
    return image.data is None or len(image.data) <= max_bytes


def fit(image: LoadedImage, max_bytes: int) -> Fitted:
    """Blocking (decodes and encodes): run it in a worker thread."""
    if fits(image, max_bytes):
        return Fitted(image)
    assert image.data is not None
    with Image.open(io.BytesIO(image.data)) as img:
        rgb = img.convert("RGB")
    width, height = rgb.size
    size = 0
    for quality in QUALITIES:
        data = _jpeg(rgb, quality)
        size = len(data)
        if size <= max_bytes:
            return Fitted(replace(image, data=data, format="jpeg"), how="jpeg")
    scale = 1.0
    for _ in range(MAX_SHRINKS):
        scale *= math.sqrt(max_bytes / size) * SHRINK_MARGIN
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        data = _jpeg(rgb.resize((w, h), Image.Resampling.LANCZOS), SHRINK_QUALITY)
        size = len(data)
        if size <= max_bytes:
            return Fitted(replace(image, data=data, format="jpeg"), width / w, height / h, "jpeg-shrunk")
    raise CannotFit(f"{len(image.data)} bytes do not fit in {max_bytes}")


def _jpeg(rgb: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()
