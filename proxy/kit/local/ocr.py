"""Lite-OCR stand-in: rapidocr's PP-OCR ONNX models, shipped inside the `rapidocr` wheel (no download).

The models differ from the kit's; everything around them is the kit's own procedure
(src/containers/general-ocr/model-standard/, tag 1.4.0), so the geometry the proxy meets is production's:
- detection on the image resized to at most 960 px on its longer side, each side rounded to a multiple of
  32 (main.py `TextDetector`: `DetResizeForTest` limit_type max, limit_side_len 960), with DB thresholds
  0.3/0.3, unclip 1.6, dilation; boxes scaled back to the full image, and recognition on crops of the
  full image (not of the 960-px copy). rapidocr's own 2000-px pre-shrink and padding are switched off;
- each quad ordered by `order_points_clockwise` and clipped to whole pixels (main.py), sorted with the
  handler's `sorted_boxes`, lines under drop_score 0.3 dropped, then sorted by the quad's smallest y
  (infer_ocr_app.py `handler`);
- `location` is the diagonal of the ordered quad, first corner to third, truncated by `int()`:
  `top/left` = that first corner, `width/height` = third minus first (infer_ocr_app.py `handler`). For
  tilted text this is not a box: `height` goes negative for a line rising to the right.

Blocking; the server runs it in a worker thread.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
from PIL import Image

from ..fit import DET_LIMIT_SIDE, detector_size

MODEL_NAME = "rapidocr PP-OCR (onnxruntime, CPU)"
DROP_SCORE = 0.3  # infer_ocr_app.py TextSystem.drop_score
SAME_ROW_PX = 10  # infer_ocr_app.py sorted_boxes: boxes closer than this in y are one row


Row = tuple[np.ndarray, str, float]  # quad (4x2, clockwise from top-left), text, score


def sorted_boxes(rows: list[Row]) -> list[Row]:
    """infer_ocr_app.py `sorted_boxes`: by (y, x) of the first corner, then one pass swapping neighbours
    in the same row that are out of x order."""
    boxes = sorted(rows, key=lambda r: (float(r[0][0][1]), float(r[0][0][0])))
    for i in range(len(boxes) - 1):
        this, after = boxes[i][0][0], boxes[i + 1][0][0]
        if abs(after[1] - this[1]) < SAME_ROW_PX and after[0] < this[0]:
            boxes[i], boxes[i + 1] = boxes[i + 1], boxes[i]
    return boxes


class DetectorCrash(RuntimeError):
    """The kit's Lambda fails on this shape (proxy/kit/fit.py `detector_size`): the detector returns
    `(None, 0)`, which `TextSystem.__call__` then sorts, an AttributeError (API Gateway's 502)."""


def kit_location(quad: np.ndarray) -> dict[str, int]:
    """infer_ocr_app.py `handler`: the first and third corners of the clockwise quad, as the kit writes them."""
    return {"top": int(quad[0][1]), "left": int(quad[0][0]),
            "width": int(quad[2][0] - quad[0][0]), "height": int(quad[2][1] - quad[0][1])}


class OcrEngine:
    def __init__(self) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                from rapidocr import RapidOCR

                self._engine = RapidOCR(params={
                    "Global.log_level": "warning", "Global.text_score": DROP_SCORE,
                    "Global.use_preprocess_img": False, "Global.use_vertical_padding": False,
                    "Det.limit_type": "max", "Det.limit_side_len": DET_LIMIT_SIDE,
                    "Det.thresh": 0.3, "Det.box_thresh": 0.3, "Det.unclip_ratio": 1.6, "Det.use_dilation": True,
                })
        return self._engine

    def recognise(self, data: bytes) -> list[dict[str, Any]]:
        rgb = Image.open(io.BytesIO(data)).convert("RGB")  # aikits_utils.readimg: .convert('RGB')
        if min(detector_size(*rgb.size)) <= 0:
            raise DetectorCrash(f"{rgb.size[0]}x{rgb.size[1]}: the detector's input would be empty")
        out = self._load()(np.asarray(rgb)[:, :, ::-1])
        if out.boxes is None:
            return []
        # rapidocr's detector already orders each quad clockwise from top-left and clips it to whole pixels
        # exactly as main.py does (`order_points_clockwise`, `clip_det_res`).
        rows = [(np.asarray(box, dtype=np.float32), str(text), float(score))
                for box, text, score in zip(out.boxes, out.txts, out.scores, strict=True)]
        kept = [row for row in sorted_boxes(rows) if row[2] >= DROP_SCORE]
        kept.sort(key=lambda row: float(row[0].min(0)[1]))  # the handler's final sort: smallest y of the quad
        return [{"words": text, "location": kit_location(quad), "score": score} for quad, text, score in kept]
