"""Super-resolution: Aliyun `imageenhan` enlargements made from tiled kit calls.

One kit call cannot carry a big enlargement back (6 MB responses, 29 s gateway timeout): a 1920x1080
×4 result is 33 MP. So the input is cut into overlapping tiles sized for the kit's limits, enlarged
concurrently (bounded), and blended (see tiles.py). The kit has ×2 and ×4 models; ×1 and ×3 are made
from the nearest useful kit factor plus a Lanczos resize: ×1 = ×2 then halved (an enhancement at the
same size), ×3 = ×4 then reduced.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
from PIL import Image

from .. import workers
from ..aliyun.errors import AliyunError, Err
from ..images import LoadedImage, undecodable
from ..pixels import enlargement_bytes
from .call import Call
from .kitshapes import pad_tile, sr_tile_side
from .pngdecode import rgb_tile
from .pngstripes import PngStripes
from .tiles import Sink, Stitcher, TilePlan

FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"), "bmp": ("BMP", "image/bmp")}


def kit_factor(factor: int) -> int:
    return 4 if factor >= 3 else 2


async def make_super_resolution_image(call: Call) -> dict[str, Any]:
    p = call.params
    url = await _enlarge_and_store(call, p["UpscaleFactor"], p["OutputFormat"], p["OutputQuality"])
    return {"Data": {"Url": url}}


async def generate_super_resolution_image(call: Call) -> dict[str, Any]:
    p = call.params

    async def work() -> dict[str, Any]:
        url = await _enlarge_and_store(call, p["Scale"], p["OutputFormat"], p["OutputQuality"])
        return {"ResultUrl": url, "resultUrl": url}

    return await call.submit(work)


async def _enlarge_and_store(call: Call, factor: int, fmt: str, quality: int) -> str:
    image = await call.image(need_pixels=True)
    assert image.data is not None and call.spec.image is not None
    max_short = call.spec.image.reduce_short_side  # the mapping's: Aliyun first reduces a larger input
    tile = call.settings.sr_tile_size_x4 if kit_factor(factor) == 4 else call.settings.sr_tile_size_x2
    async with call.backends.budget.hold(enlargement_bytes(image.width, image.height, factor, tile, max_short)):
        with undecodable(call.spec.image):  # truncated or corrupt pixel data: the caller's bad image
            src, has_alpha = await workers.cpu(_decode, image.data, max_short)
        if has_alpha:
            fmt = "png"  # Aliyun: an RGBA input forces PNG output
        height, width = src.shape[:2]
        scale = kit_factor(factor)
        if fmt == "png" and factor == scale:  # encoded as it is stitched: no full-size picture in memory
            png = PngStripes(width * scale, height * scale)
            await enlarge(call, src, factor, png.write)
            data = await workers.cpu(png.finish)
        else:  # JPEG, BMP, or a resize after the kit's factor: the picture is needed whole
            canvas = Image.new("RGB", (width * scale, height * scale))
            top = [0]

            def paste(stripe: np.ndarray) -> None:
                canvas.paste(Image.fromarray(stripe), (0, top[0]))
                top[0] += stripe.shape[0]

            await enlarge(call, src, factor, paste)
            if factor != scale:
                canvas = await workers.cpu(canvas.resize, (width * factor, height * factor),
                                           Image.Resampling.LANCZOS)
            data = await workers.cpu(_encode, canvas, fmt, quality)
    return await call.store(data, fmt, FORMATS[fmt][1])


async def enlarge(call: Call, src: np.ndarray, factor: int, sink: Sink) -> None:
    """Enlarge an RGB uint8 array by the kit's factor for `factor` (1-4), tile by tile, handing the
    result to `sink` as stripes, top to bottom.

    Rows of tiles are fetched one ahead of the row being stitched (each tile decoded as its answer
    arrives, kit calls bounded by `sr_tile_concurrency`), and stitched into the 8-bit canvas as soon as
    they are complete: the decoded tiles held are two or three rows, never the whole picture.
    """
    scale = kit_factor(factor)
    s = call.settings
    height, width = src.shape[:2]
    side = sr_tile_side(s.kit_limits, scale, s.sr_tile_size_x4 if scale == 4 else s.sr_tile_size_x2, s.sr_tile_overlap)
    plan = TilePlan.plan(width, height, side, s.sr_tile_overlap)
    limit = asyncio.Semaphore(s.sr_tile_concurrency)

    async def one(box: tuple[int, int, int, int]) -> np.ndarray:
        left, top, right, bottom = box
        async with limit:
            tile = await workers.cpu(_png_tile, src[top:bottom, left:right], scale)
            png = await call.kit.invoke_for_image(call.kit_route, tile, scale=scale)
            return await workers.cpu(_decode_tile, png, (tile.width * scale, tile.height * scale),
                                     (right - left) * scale, (bottom - top) * scale)

    async def row(boxes: list[tuple[int, int, int, int]]) -> list[np.ndarray]:
        async with asyncio.TaskGroup() as group:  # one failed tile cancels the rest: nothing half-made is kept
            tasks = [group.create_task(one(box)) for box in boxes]
        return [t.result() for t in tasks]

    rows = plan.boxes()
    stitcher = await workers.cpu(Stitcher, plan, scale, sink)
    pending = {i: asyncio.create_task(row(rows[i])) for i in range(min(2, len(rows)))}
    try:
        for i in range(len(rows)):
            tiles = await pending.pop(i)
            await workers.cpu(stitcher.add_row, i, tiles)
            del tiles
            if i + 2 < len(rows):  # row i+1 is already on its way: two rows in flight at most
                pending[i + 2] = asyncio.create_task(row(rows[i + 2]))
    except ExceptionGroup as group_error:  # the caller gets the first tile's own Aliyun error, not a 500
        raise first_error(group_error) from None
    finally:
        for task in pending.values():
            task.cancel()
        await asyncio.gather(*pending.values(), return_exceptions=True)


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first AliyunError inside a (possibly nested) exception group, else its first exception."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            exc = first_error(exc)
        if isinstance(exc, AliyunError):
            return exc
    return group.exceptions[0]


def _decode(data: bytes, max_short: int | None) -> tuple[np.ndarray, bool]:
    img = Image.open(io.BytesIO(data))
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    rgb = img.convert("RGB")
    if max_short and min(rgb.size) > max_short:
        ratio = max_short / min(rgb.size)
        rgb = rgb.resize((round(rgb.width * ratio), round(rgb.height * ratio)), Image.Resampling.LANCZOS)
    return np.asarray(rgb), has_alpha


def _png_tile(pixels: np.ndarray, scale: int) -> LoadedImage:
    """The tile as PNG, padded to a shape the kit's resize keeps (kitshapes.pad_tile)."""
    pixels = pad_tile(pixels, scale)
    h, w = pixels.shape[:2]
    png = PngStripes(w, h)  # half Pillow's CPU for the same size (one fixed filter)
    png.write(pixels)
    return LoadedImage(png.finish(), "png", w, h, w, h)


def _decode_tile(png: bytes, padded: tuple[int, int], width: int, height: int) -> np.ndarray:
    """The enlarged tile without its padding: `padded` is the size the kit was asked for.

    The kit's answer is an 8-bit RGB PNG of that size (super_resolution_app.py saves `Image.fromarray` of
    uint8 RGB): pngdecode reads it at about half Pillow's CPU, straight into an array. Any other PNG goes
    through Pillow, as before."""
    try:
        pixels = rgb_tile(png, *padded)
        if pixels is None:
            img: Image.Image = Image.open(io.BytesIO(png))
            img = img.convert("RGB") if img.mode != "RGB" else img
            if img.size != padded:  # the kit resizes to w·s × h·s itself; be exact regardless
                img = img.resize(padded, Image.Resampling.LANCZOS)
            pixels = np.asarray(img)
    except (OSError, ValueError):  # Pillow raises OSError, pngdecode ValueError, for a broken PNG
        raise Err.INTERNAL_ERROR() from None
    return pixels[:height, :width]


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    pil_format = FORMATS[fmt][0]
    options: dict[str, Any] = {"quality": quality} if pil_format == "JPEG" else {}
    if pil_format == "PNG":
        options["compress_level"] = 3
    image.save(buf, pil_format, **options)
    return buf.getvalue()
