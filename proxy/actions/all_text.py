"""OCR: the kit's `lite-ocr` lines → ocr-api RecognizeAllText's `Data` (an object, not a JSON string).

One sub-image (the whole picture), one text block per kit line. Which `Type` values are served is the
mapping's (`served`); the others never reach here. Blocks carry coordinates only when the caller asks
(`OutputCoordinate`: points = the 4 corners, rectangle = centre and sides), as Aliyun's do; the kit's
boxes are axis-aligned, so every angle is 0.
"""

from __future__ import annotations

from typing import Any

from .call import Call
from .ocr import KitLine, kit_lines


async def recognize_all_text(call: Call) -> dict[str, Any]:
    image = await call.image()
    lines = kit_lines(await call.kit.invoke_image(call.kit_route, image))
    coordinate = call.params.get("OutputCoordinate")
    blocks = [_block(i, line, coordinate) for i, line in enumerate(lines)]
    sub_image: dict[str, Any] = {"SubImageId": 0, "Angle": 0,
                                 "BlockInfo": {"BlockCount": len(blocks), "BlockDetails": blocks}}
    if coordinate == "points":
        sub_image["SubImagePoints"] = _points(0, 0, image.width, image.height)
    elif coordinate == "rectangle":
        sub_image["SubImageRect"] = _rect(0, 0, image.width, image.height)
    return {"Data": {
        "Height": image.org_height,
        "Width": image.org_width,
        "Content": "".join(f"{line.words} " for line in lines),
        "SubImageCount": 1,
        "SubImages": [sub_image],
    }}


def _block(index: int, line: KitLine, coordinate: str | None) -> dict[str, Any]:
    b = line.location
    block: dict[str, Any] = {"BlockId": index, "BlockAngle": 0, "BlockContent": line.words,
                             "BlockConfidence": round(line.score * 100)}
    if coordinate == "points":
        block["BlockPoints"] = _points(b.left, b.top, b.width, b.height)
    elif coordinate == "rectangle":
        block["BlockRect"] = _rect(b.left, b.top, b.width, b.height)
    return block


def _points(left: int, top: int, width: int, height: int) -> list[dict[str, int]]:
    """Clockwise from the top-left, as Aliyun lists them."""
    right, bottom = left + width, top + height
    return [{"X": left, "Y": top}, {"X": right, "Y": top}, {"X": right, "Y": bottom}, {"X": left, "Y": bottom}]


def _rect(left: int, top: int, width: int, height: int) -> dict[str, int]:
    return {"CenterX": round(left + width / 2), "CenterY": round(top + height / 2), "Width": width, "Height": height}
