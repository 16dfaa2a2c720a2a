"""Matting: the kit's `human-segmentation` matte → Aliyun `imageseg` result URLs.

The kit is asked only for the grayscale matte, from a copy no larger than MATTE_MAX_SIDE (its model
works at 720 px height anyway), so request and response stay far inside the kit's 6 MB limits even for
a 40 MB photo. Every `ReturnForm` is then composed here at the original size.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image

from ..budget import matting_bytes
from ..images import LoadedImage, undecodable
from .call import Call

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
            for_kit = await asyncio.to_thread(_kit_copy, image)
        matte = await call.kit.invoke_for_image("segmentation", for_kit)
        with undecodable(call.spec.image):
            png = await asyncio.to_thread(compose, image.data, matte, form)
    return await call.store(png, "png", "image/png")


def _kit_copy(image: LoadedImage) -> LoadedImage:
    """The image itself when small enough, else a JPEG no larger than MATTE_MAX_SIDE on its long side."""
    assert image.data is not None
    if max(image.width, image.height) <= MATTE_MAX_SIDE and len(image.data) <= 4 * 1024 * 1024:
        return image
    img = Image.open(io.BytesIO(image.data)).convert("RGB")
    img.thumbnail((MATTE_MAX_SIDE, MATTE_MAX_SIDE), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92)
    return LoadedImage(out.getvalue(), "jpeg", img.width, img.height, img.width, img.height)


def compose(data: bytes, matte_png: bytes, form: str | None) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    matte = Image.open(io.BytesIO(matte_png)).convert("L")
    if matte.size != img.size:
        matte = matte.resize(img.size, Image.Resampling.BILINEAR)
    if form == "mask":
        out: Image.Image = matte
    elif form == "whiteBK":
        out = Image.composite(img, Image.new("RGB", img.size, "white"), matte)
    else:
        out = img.copy()
        out.putalpha(matte)
        if form == "crop":
            box = matte.point(lambda v: 255 if v >= CROP_THRESHOLD else 0).getbbox()
            if box:
                out = out.crop(box)
    buf = io.BytesIO()
    out.save(buf, "PNG", compress_level=1)  # Aliyun's default form is an uncompressed PNG; speed over size
    return buf.getvalue()
