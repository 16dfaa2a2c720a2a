"""Make an image fit the kit's request budget (proxy/kit/budget.py), costing as little quality as possible.

An image that fits is sent as it is: one length comparison, no decoding. One that does not is re-encoded
before it is shrunk: the pixels the kit reads (`convert('RGB')`, as its aikits_utils.readimg does) as a
high-quality JPEG, q92 then q85 at full size (each with standard Huffman tables first, optimized ones if
only those fit: the same pixels either way); only if that is still too big, shrunk at q85: by the factor
the JPEG's size suggests, then bisected to within 5% of the largest scale that fits. `sx`/`sy` map the
kit's coordinates back to the caller's image exactly (original pixels per sent pixel, each axis on its own).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

from PIL import Image

from ..images import LoadedImage

DET_LIMIT_SIDE = 960  # lite-ocr's detector input: longer side at most this (main.py DetResizeForTest)
QUALITIES = (92, 85)  # full-size JPEG attempts, best first
SHRINK_QUALITY = 85
SHRINK_MARGIN = 0.97  # aim a little under the budget: a JPEG's size is not exactly proportional to its area
MAX_SHRINKS = 8  # encodes at most, on the rare images a q85 JPEG cannot bring under the budget
CLOSE_ENOUGH = 1.05  # stop when the fitting scale is within 5% of one that does not fit


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
    rgb = _rgb(image.data)
    width, height = rgb.size
    size = 0
    for quality in QUALITIES:
        # Standard Huffman tables first: the same pixels as optimized ones, encoded ~3x faster (a 2 MP
        # noise image: 14 ms, not 45), the file 5-10% larger. Optimized only when that is what fits, and
        # always before shrinking, whose estimate starts from the optimized size, as it always has.
        data = _jpeg(rgb, quality, optimize=False)
        if len(data) <= max_bytes:
            return Fitted(replace(image, data=data, format="jpeg"), how="jpeg")
        data = _jpeg(rgb, quality)
        size = len(data)
        if size <= max_bytes:
            return Fitted(replace(image, data=data, format="jpeg"), how="jpeg")
    # Shrink: estimate the scale from the JPEG's size, then bisect between the largest scale that fits and
    # the smallest that did not (a shrunk JPEG is smaller than its area says: resampling smooths it).
    fitting: tuple[float, bytes] | None = None
    too_big, scale = 1.0, math.sqrt(max_bytes / size) * SHRINK_MARGIN
    for _ in range(MAX_SHRINKS):
        data = _shrunk(rgb, scale)
        if len(data) <= max_bytes:
            fitting = (scale, data)
        else:
            too_big = scale
        if fitting is not None and too_big / fitting[0] <= CLOSE_ENOUGH:
            break
        scale = (fitting[0] + too_big) / 2 if fitting else scale * math.sqrt(max_bytes / len(data)) * SHRINK_MARGIN
    if fitting is None:
        raise CannotFit(f"{len(image.data)} bytes do not fit in {max_bytes}")
    scale, data = fitting
    w, h = _side(width, scale), _side(height, scale)
    return Fitted(replace(image, data=data, format="jpeg"), width / w, height / h, "jpeg-shrunk")


def _rgb(data: bytes) -> Image.Image:
    """The pixels the kit reads. An RGB file's decoded image is used as it is: convert('RGB') would copy it
    (8 MB for the bench's 6 MB PNG, with its page faults), the same pixels."""
    img = Image.open(io.BytesIO(data))
    img.load()  # reads the whole (in-memory) file: nothing stays open
    return img if img.mode == "RGB" else img.convert("RGB")


def _side(side: int, scale: float) -> int:
    return max(1, round(side * scale))


def _shrunk(rgb: Image.Image, scale: float) -> bytes:
    size = (_side(rgb.width, scale), _side(rgb.height, scale))
    return _jpeg(rgb.resize(size, Image.Resampling.LANCZOS), SHRINK_QUALITY)


def detector_size(width: int, height: int) -> tuple[int, int]:
    """lite-ocr's detector input size (main.py `DetResizeForTest.resize_image_type0`, limit_type max):
    scaled so the longer side is at most 960, each side rounded to a multiple of 32 with Python's round(),
    which halves to even: a side of 16 px (or one the 960-px scaling brings under 17) becomes 0, and the
    kit's Lambda crashes."""
    ratio = DET_LIMIT_SIDE / max(width, height) if max(width, height) > DET_LIMIT_SIDE else 1.0
    return int(round(int(width * ratio) / 32) * 32), int(round(int(height * ratio) / 32) * 32)


def needs_padding(image: LoadedImage) -> bool:
    return image.data is not None and min(detector_size(image.width, image.height)) <= 0


def pad_for_detector(image: LoadedImage) -> LoadedImage:
    """Widen the thin side (at the bottom or right, so no coordinate moves) with the image's own border
    colour until the kit's detector gets a non-empty input. Blocking; only thin images get here."""
    assert image.data is not None
    width, height = image.width, image.height
    while detector_size(width, height)[0] <= 0:
        width += 1
    while detector_size(width, height)[1] <= 0:
        height += 1
    with Image.open(io.BytesIO(image.data)) as img:
        rgb = img.convert("RGB")
    edge = [rgb.getpixel((x, rgb.height - 1)) for x in range(0, rgb.width, max(1, rgb.width // 64))]
    edge += [rgb.getpixel((rgb.width - 1, y)) for y in range(0, rgb.height, max(1, rgb.height // 64))]
    fill = tuple(sorted(channel)[len(channel) // 2] for channel in zip(*edge, strict=True))  # median colour
    canvas = Image.new("RGB", (width, height), fill)
    canvas.paste(rgb, (0, 0))
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return replace(image, data=out.getvalue(), format="png")


def _jpeg(rgb: Image.Image, quality: int, optimize: bool = True) -> bytes:
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality, optimize=optimize)
    return out.getvalue()
