"""OCR: the kit's `lite-ocr` lines → `ocr` RecognizeCharacter and `ocr-api` Recognize* shapes.

The image is fitted to the kit's payload budget first (proxy/kit/fit.py; untouched when it fits). Each
line's `location` is the diagonal of its rotated rectangle (proxy/actions/ocr_geometry.py): its midpoint
is the centre; with the image at hand the tilt is measured and the sides are the true length and
thickness, else the line is the level box the diagonal spans. Every coordinate is mapped back to the
caller's image. Boxes use the form Aliyun itself uses for text near level: Width = length, Height =
thickness, Left/Top = centre minus half the sides, Angle clockwise positive.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import numpy as np
import structlog
from pydantic import BaseModel, ValidationError

from .. import workers
from ..aliyun.errors import AliyunError, Err
from ..aliyun.serialize import COMPACT
from ..images import LoadedImage
from ..kit import budget
from ..kit.fit import CannotFit, Fitted, fit, fits, needs_padding, pad_for_detector
from ..pixels import fitting_bytes, tilt_bytes
from .call import Call
from .ocr_geometry import Diagonal, Line, grey_for_tilt, level_box, lines_from_image, tilted_lines

log = structlog.get_logger("actions.ocr")
PRISM_VERSION = "1.0.9"
INLINE_TILT_PIXELS = 256 * 256  # a tilt measurement this small runs on the loop (~0.5 ms; the hop costs more)


class Location(BaseModel):
    top: int
    left: int
    width: int
    height: int


class KitLine(BaseModel):
    words: str
    location: Location
    score: float


def kit_lines(answer: Any) -> list[KitLine]:
    """Validate the kit's answer; anything but a list of lines (plus its optional timing entry) is an error."""
    if not isinstance(answer, list):
        log.warning("kit.unexpected_shape", route="ocr", type=type(answer).__name__)
        raise Err.INTERNAL_ERROR()
    try:
        return [KitLine.model_validate(item) for item in answer if not _is_duration(item)]
    except ValidationError:
        log.warning("kit.unexpected_shape", route="ocr")
        raise Err.INTERNAL_ERROR() from None


def _is_duration(item: Any) -> bool:
    return isinstance(item, dict) and item.keys() == {"duration"}


async def _fitted(call: Call, image: LoadedImage) -> Fitted:
    """The image as the kit may receive it: untouched when it fits the budget (no decoding at all); a
    side the kit's detector would round to nothing widened first (the kit's Lambda crashes on it)."""
    try:
        if needs_padding(image):
            image = await workers.cpu(pad_for_detector, image)
        max_bytes = budget.max_image_bytes(call.settings.kit_limits)
        if fits(image, max_bytes):
            return Fitted(image)
        async with call.backends.budget.hold(fitting_bytes(image.width, image.height)):  # a full decode
            fitted = await workers.cpu(fit, image, max_bytes)
    except CannotFit:
        log.warning("ocr.cannot_fit", bytes=len(image.data or b""), budget=max_bytes)
        raise Err.IMAGE_SIZE(f"the image does not fit the backend's {max_bytes}-byte limit") from None
    except (OSError, ValueError):  # its header read fine, its pixels do not (a truncated file)
        raise Err.IMAGE_FORMAT("the image cannot be decoded") from None
    log.info("ocr.fitted", how=fitted.how, bytes_in=len(image.data or b""), bytes_out=len(fitted.image.data or b""),
             scale=round(1 / fitted.sx, 4))
    return fitted


async def _settled(task: asyncio.Task[Any]) -> None:
    await asyncio.gather(task, return_exceptions=True)


async def recognise(call: Call) -> tuple[LoadedImage, list[tuple[KitLine, Line]]]:
    """The kit's lines, each with its rectangle in the caller's image."""
    image = await call.image()
    sent = await _fitted(call, image)
    data = sent.image.data
    async with contextlib.AsyncExitStack() as stack:
        grey: asyncio.Task[tuple[np.ndarray, float]] | None = None
        if data is not None and sent.image.width * sent.image.height > INLINE_TILT_PIXELS:
            # Decoded in grey while the kit reads the same image: the tilt then costs no added latency.
            await stack.enter_async_context(call.backends.budget.hold(tilt_bytes(sent.image.width,
                                                                                  sent.image.height)))
            grey = asyncio.create_task(workers.cpu(grey_for_tilt, data))
            stack.push_async_callback(_settled, grey)  # the decode ends before its reservation does
        try:
            answer = await call.kit.invoke_image(call.kit_route, sent.image)
        except AliyunError as err:
            if image.url is not None and err.kind is Err.IMAGE_DOWNLOAD and call.spec.image is not None:
                raise await call.backends.images.why_kit_refused(image.url, call.spec.image) from None
            raise
        lines = kit_lines(answer)
        diagonals = [Diagonal(b.left, b.top, b.width, b.height) for b in (line.location for line in lines)]
        rects = [level_box(d) for d in diagonals]
        try:
            if grey is not None and lines:
                rects = await workers.cpu(tilted_lines, await grey, diagonals)
            elif data is not None and lines:
                async with call.backends.budget.hold(tilt_bytes(sent.image.width, sent.image.height)):
                    rects = lines_from_image(data, diagonals)  # small (well under 1 ms): no thread hop
        except (OSError, ValueError):  # the kit read it, so this should not happen: keep the level boxes
            log.warning("ocr.tilt_unmeasured")
    return image, [(line, rect.scaled(sent.sx, sent.sy)) for line, rect in zip(lines, rects, strict=True)]


async def recognize_character(call: Call) -> dict[str, Any]:
    """ocr 2019-12-30: `Data.Results[]` with `TextRectangles`; lines thinner than MinHeight dropped."""
    _, lines = await recognise(call)
    min_height = call.params["MinHeight"]
    with_probability = call.params["OutputProbability"]
    results = []
    for line, rect in lines:
        if min(rect.length, rect.thickness) < min_height:
            continue
        item: dict[str, Any] = {
            "TextRectangles": {"Left": round(rect.cx - rect.length / 2), "Top": round(rect.cy - rect.thickness / 2),
                               "Width": round(rect.length), "Height": round(rect.thickness),
                               "Angle": round(rect.angle)},
            "Text": line.words,
        }
        if with_probability:
            item["Probability"] = round(line.score, 6)
        results.append(item)
    return {"Data": {"Results": results}}


async def recognize_general(call: Call) -> dict[str, Any]:
    """ocr-api 2021-07-07: `Data` is a JSON string of the prism result."""
    image, lines = await recognise(call)
    words = [_word(line, rect) for line, rect in lines]
    data = {
        "content": "".join(f"{line.words} " for line, _ in lines),
        "height": image.height,
        "orgHeight": image.org_height,
        "orgWidth": image.org_width,
        "prism_version": PRISM_VERSION,
        "prism_wnum": len(words),
        "prism_wordsInfo": words,
        "width": image.width,
    }
    return {"Data": COMPACT.encode(data)}


def _word(line: KitLine, rect: Line) -> dict[str, Any]:
    """prism's word: x/y = floor(centre − half the sides), as Aliyun computes them; pos = the four corners,
    clockwise from the text's top-left."""
    return {
        "angle": round(rect.angle),
        "direction": 0,
        "height": round(rect.thickness),
        "pos": [{"x": round(x), "y": round(y)} for x, y in rect.corners()],
        "prob": round(line.score * 100),
        "width": round(rect.length),
        "word": line.words,
        "x": math.floor(rect.cx - rect.length / 2),
        "y": math.floor(rect.cy - rect.thickness / 2),
    }
