"""Matting: the kit's `human-segmentation` matte → Aliyun `imageseg` result URLs.

The kit is asked only for the grayscale matte, from a copy no larger than MATTE_MAX_SIDE (its model
works at 720 px height anyway) whose request and 'L' PNG answer fit the payload budget even for a 40 MB
photo, padded to an aspect ratio the kit's resize survives (see kitshapes.py). The matte is cropped back to
the image's place in the copy, and every `ReturnForm` is composed here at the original size.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image

from ..config import KitLimits
from ..images import LoadedImage, undecodable
from ..kit.budget import max_image_bytes
from ..pixels import matting_bytes
from .call import Call
from .kitshapes import MATTE_PAD, MattePlan

MATTE_MAX_SIDE = 2048
CROP_THRESHOLD = 16  # alpha below this is background when cropping to the subject


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
        with undecodable(call.spec.image):
            for_kit, box = await asyncio.to_thread(kit_copy, image, call.settings.kit_limits)
        matte = await call.kit.invoke_for_image(call.kit_route, for_kit)
        with undecodable(call.spec.image):
            png = await asyncio.to_thread(compose, image.data, matte, form, box)
    return await call.store(png, "png", "image/png")


def kit_copy(image: LoadedImage, limits: KitLimits) -> tuple[LoadedImage, tuple[int, int, int, int]]:
    """The image itself when the kit can take it as it is, else a padded and/or reduced JPEG copy; and the
    box of the image inside the copy (where to crop the kit's matte)."""
    assert image.data is not None
    plan = MattePlan.plan(image.width, image.height, limits, MATTE_MAX_SIDE)
    box = plan.box(image.width, image.height)
    if not plan.changes_image and len(image.data) <= max_image_bytes(limits):
        return image, box
    img = Image.open(io.BytesIO(image.data)).convert("RGB")
    if plan.canvas != img.size:
        canvas = Image.new("RGB", plan.canvas, MATTE_PAD)
        canvas.paste(img, plan.offset)
        img = canvas
    if plan.size != img.size:
        img = img.resize(plan.size, Image.Resampling.BILINEAR)
    for quality in (92, 80, 60, 40):  # a JPEG of a copy this size is far below the budget; be sure anyway
        out = io.BytesIO()
        img.save(out, "JPEG", quality=quality)
        if out.tell() <= max_image_bytes(limits):
            break
    return LoadedImage(out.getvalue(), "jpeg", img.width, img.height, img.width, img.height), box


def compose(data: bytes, matte_png: bytes, form: str | None, box: tuple[int, int, int, int] | None = None) -> bytes:
    """`box`: the image's place in the copy the matte was made from (padding and all)."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    matte = Image.open(io.BytesIO(matte_png)).convert("L")
    if box is not None and box != (0, 0, *matte.size):
        matte = matte.crop(box)
    if matte.size != img.size:
        matte = matte.resize(img.size, Image.Resampling.BILINEAR)
    if form == "mask":
        out: Image.Image = matte
    elif form == "whiteBK":
        out = Image.composite(img, Image.new("RGB", img.size, "white"), matte)
    else:
        out = img  # the decoded copy is ours and not needed after: no second full-size copy
        out.putalpha(matte)
        if form == "crop":
            box = matte.point(lambda v: 255 if v >= CROP_THRESHOLD else 0).getbbox()
            if box:
                out = out.crop(box)
    buf = io.BytesIO()
    out.save(buf, "PNG", compress_level=1)  # Aliyun's default form is an uncompressed PNG; speed over size
    return buf.getvalue()
