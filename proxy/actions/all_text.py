"""OCR: the kit's `lite-ocr` lines → ocr-api RecognizeAllText's `Data` (an object, not a JSON string).

One sub-image (the whole picture), one text block per kit line. Which `Type` values are served is the
mapping's (`served`); the others never reach here. Blocks carry coordinates only when the caller asks
(`OutputCoordinate`: points = the 4 corners, rectangle = centre and sides), as Aliyun's do. Lines are
read as the other OCR answers read them (`ocr.recognise`: the payload budget, the diagonal's centre, the
measured tilt), so a block's angle is the line's own.
"""

from __future__ import annotations

from typing import Any

from .call import Call
from .ocr import KitLine, recognise
from .ocr_geometry import Line


async def recognize_all_text(call: Call) -> dict[str, Any]:
    image, lines = await recognise(call)
    coordinate = call.params.get("OutputCoordinate")
    blocks = [_block(i, line, rect, coordinate) for i, (line, rect) in enumerate(lines)]
    sub_image: dict[str, Any] = {"SubImageId": 0, "Angle": 0,
                                 "BlockInfo": {"BlockCount": len(blocks), "BlockDetails": blocks}}
    if coordinate == "points":
        sub_image["SubImagePoints"] = _points(0, 0, image.width, image.height)
    elif coordinate == "rectangle":
        sub_image["SubImageRect"] = _rect(0, 0, image.width, image.height)
    return {"Data": {
        "Height": image.org_height,
        "Width": image.org_width,
        "Content": "".join(f"{line.words} " for line, _ in lines),
        "SubImageCount": 1,
        "SubImages": [sub_image],
    }}


def _block(index: int, line: KitLine, rect: Line, coordinate: str | None) -> dict[str, Any]:
    block: dict[str, Any] = {"BlockId": index, "BlockAngle": round(rect.angle), "BlockContent": line.words,
                             "BlockConfidence": round(line.score * 100)}
    if coordinate == "points":
        block["BlockPoints"] = [{"X": round(x), "Y": round(y)} for x, y in rect.corners()]
    elif coordinate == "rectangle":
        block["BlockRect"] = {"CenterX": round(rect.cx), "CenterY": round(rect.cy), "Width": round(rect.length),
                              "Height": round(rect.thickness)}
    return block


def _points(left: int, top: int, width: int, height: int) -> list[dict[str, int]]:
    """Clockwise from the top-left, as Aliyun lists them."""
    right, bottom = left + width, top + height
    return [{"X": left, "Y": top}, {"X": right, "Y": top}, {"X": right, "Y": bottom}, {"X": left, "Y": bottom}]


def _rect(left: int, top: int, width: int, height: int) -> dict[str, int]:
    return {"CenterX": round(left + width / 2), "CenterY": round(top + height / 2), "Width": width, "Height": height}
