"""OCR: the kit's `lite-ocr` lines → `ocr` RecognizeCharacter and `ocr-api` Recognize* shapes.

The kit gives axis-aligned boxes, so every box is reported with angle 0, one of the two forms Aliyun
itself uses for horizontal text (Width = text length, Height = line thickness; Left/Top = centre minus
half the sides, which for angle 0 is the top-left corner).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError

from ..aliyun.errors import Err
from .call import Call

log = structlog.get_logger("actions.ocr")
PRISM_VERSION = "1.0.9"


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


async def _recognise(call: Call) -> tuple[Any, list[KitLine]]:
    image = await call.image()
    return image, kit_lines(await call.kit.invoke_image(call.kit_route, image))


async def recognize_character(call: Call) -> dict[str, Any]:
    """ocr 2019-12-30: `Data.Results[]` with `TextRectangles`; lines thinner than MinHeight dropped."""
    _, lines = await _recognise(call)
    min_height = call.params["MinHeight"]
    with_probability = call.params["OutputProbability"]
    results = []
    for line in lines:
        box = line.location
        if min(box.width, box.height) < min_height:
            continue
        item: dict[str, Any] = {
            "TextRectangles": {"Left": box.left, "Top": box.top, "Width": box.width,
                               "Height": box.height, "Angle": 0},
            "Text": line.words,
        }
        if with_probability:
            item["Probability"] = round(line.score, 6)
        results.append(item)
    return {"Data": {"Results": results}}


async def recognize_general(call: Call) -> dict[str, Any]:
    """ocr-api 2021-07-07: `Data` is a JSON string of the prism result."""
    image, lines = await _recognise(call)
    words = [_word(line) for line in lines]
    data = {
        "content": "".join(f"{line.words} " for line in lines),
        "height": image.height,
        "orgHeight": image.org_height,
        "orgWidth": image.org_width,
        "prism_version": PRISM_VERSION,
        "prism_wnum": len(words),
        "prism_wordsInfo": words,
        "width": image.width,
    }
    return {"Data": json.dumps(data, ensure_ascii=False, separators=(",", ":"))}


def _word(line: KitLine) -> dict[str, Any]:
    b = line.location
    right, bottom = b.left + b.width, b.top + b.height
    return {
        "angle": 0,
        "direction": 0,
        "height": b.height,
        "pos": [{"x": b.left, "y": b.top}, {"x": right, "y": b.top},
                {"x": right, "y": bottom}, {"x": b.left, "y": bottom}],
        "prob": round(line.score * 100),
        "width": b.width,
        "word": line.words,
        "x": b.left,
        "y": b.top,
    }
