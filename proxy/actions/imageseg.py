"""Matting: the kit's `human-segmentation` matte → Aliyun `imageseg` result URLs.

The kit is asked only for the grayscale matte, from a copy no larger than MATTE_MAX_SIDE (its model
works at 720 px height anyway) whose request and 'L' PNG answer fit the payload budget even for a 40 MB
photo, padded to an aspect ratio the kit's resize survives (see kitshapes.py). The matte is cropped back to
the image's place in the copy, and every `ReturnForm` is composed at the original size (cutout.py).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image

from .. import workers
from ..config import KitLimits
from ..images import LoadedImage, undecodable
from ..kit.budget import max_image_bytes
from ..pixels import matting_bytes
from .call import Call
from .cutout import Photo, compose, decode
from .kitshapes import MATTE_PAD, MattePlan

MATTE_MAX_SIDE = 2048
KIT_BAND = 64  # output rows resized at a time for the kit's copy


async def segment_body(call: Call) -> dict[str, Any]:
    """SegmentBody and SegmentCommonImage: `ReturnForm` mask / crop / whiteBK, anything else RGBA."""
    return {"Data": {"ImageURL": await _matting(call, call.params.get("ReturnForm"))}}


async def segment_hd_body(call: Call) -> dict[str, Any]:
    """SegmentHDBody has no ReturnForm: always the RGBA cut-out at full size."""
    return {"Data": {"ImageURL": await _matting(call, None)}}


async def segment_hd_common_image(call: Call) -> dict[str, Any]:
    """Async: the job's Result carries the URL under both key casings seen in the wild."""

    async def work() -> dict[str, Any]:
        url = await _matting(call, None)
        return {"ImageUrl": url, "imageUrl": url}

    return await call.submit(work)


async def _matting(call: Call, form: str | None) -> str:
    image = await call.image(need_pixels=True)
    assert image.data is not None
    async with call.backends.budget.hold(matting_bytes(image.width, image.height)):
        with undecodable(call.spec.image):  # decoded once: for the kit's copy, then for the result
            photo, for_kit, box = await workers.cpu(_prepare, image, call.settings.kit_limits)
        matte = await call.kit.invoke_for_image(call.kit_route, for_kit)
        with undecodable(call.spec.image):
            png = await workers.cpu(compose, photo, matte, form, box)
    return await call.store(png, "png", "image/png")


def _prepare(image: LoadedImage, limits: KitLimits) -> tuple[Photo, LoadedImage, tuple[int, int, int, int]]:
    assert image.data is not None
    pixels = decode(image.data)
    return (Photo(pixels), *kit_copy(image, limits, pixels))


def kit_copy(image: LoadedImage, limits: KitLimits, photo: np.ndarray
             ) -> tuple[LoadedImage, tuple[int, int, int, int]]:
    """The image itself when the kit can take it as it is, else a padded and/or reduced JPEG copy of
    `photo` (its decoded pixels); and the box of the image inside the copy (where to crop the kit's
    matte)."""
    assert image.data is not None
    plan = MattePlan.plan(image.width, image.height, limits, MATTE_MAX_SIDE)
    box = plan.box(image.width, image.height)
    if not plan.changes_image and len(image.data) <= max_image_bytes(limits):
        return image, box
    pixels = photo
    if plan.canvas != (photo.shape[1], photo.shape[0]):
        pixels = np.empty((plan.canvas[1], plan.canvas[0], 3), dtype=np.uint8)
        pixels[:] = MATTE_PAD
        x, y = plan.offset
        pixels[y:y + photo.shape[0], x:x + photo.shape[1]] = photo
    img = _reduced(pixels, plan.size) if plan.size != plan.canvas else Image.fromarray(pixels)
    for quality in (92, 80, 60, 40):  # a JPEG of a copy this size is far below the budget; be sure anyway
        out = io.BytesIO()
        img.save(out, "JPEG", quality=quality)
        if out.tell() <= max_image_bytes(limits):
            break
    return LoadedImage(out.getvalue(), "jpeg", img.width, img.height, img.width, img.height), box


def _reduced(pixels: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """`pixels` resized to `size` (bilinear) KIT_BAND output rows at a time, each from just the input rows
    its windows read: a whole resize would hold a Pillow copy of the photo (4 bytes a pixel) and Pillow's
    horizontal pass over every input row (2048x3000 RGB for a 12 MP photo). Pillow's box arithmetic may
    put values one level off the whole resize's (none for 4000x3000 to 2048x1536; tested within one): this
    is the model's input, JPEG-compressed next, so that is nothing."""
    out = Image.new("RGB", size)
    height, width = pixels.shape[:2]
    step = height / size[1]
    margin = math.ceil(step) + 2  # bilinear reads step rows either side of a row's centre
    for top in range(0, size[1], KIT_BAND):
        bottom = min(size[1], top + KIT_BAND)
        first, last = max(0, math.floor(top * step) - margin), min(height, math.ceil(bottom * step) + margin)
        box = (0, top * step - first, width, bottom * step - first)
        band = Image.fromarray(pixels[first:last]).resize((size[0], bottom - top), Image.Resampling.BILINEAR, box=box)
        out.paste(band, (0, top))
    return out
