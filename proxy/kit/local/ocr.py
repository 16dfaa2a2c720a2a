"""Lite-OCR stand-in: rapidocr's PP-OCR ONNX models, shipped inside the `rapidocr` wheel (no download).

Output matches the kit's `lite-ocr` contract: `[{words, location{top,left,width,height}, score}]`,
lines under `drop_score` removed, sorted top to bottom. Blocking; the server runs it in a worker thread.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
from PIL import Image

MODEL_NAME = "rapidocr PP-OCR (onnxruntime, CPU)"
DROP_SCORE = 0.3  # the kit's drop_score


class OcrEngine:
    def __init__(self) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                from rapidocr import RapidOCR

                # The kit's detector also limits the longest side to 960 px.
                self._engine = RapidOCR(params={"Global.log_level": "warning",
                                                "Det.limit_type": "max", "Det.limit_side_len": 960})
        return self._engine

    def recognise(self, data: bytes) -> list[dict[str, Any]]:
        rgb = Image.open(io.BytesIO(data)).convert("RGB")  # the kit drops alpha the same way
        out = self._load()(np.asarray(rgb)[:, :, ::-1])
        if out.boxes is None:
            return []
        lines = []
        for box, text, score in zip(out.boxes, out.txts, out.scores, strict=True):
            if score < DROP_SCORE:
                continue
            quad = np.asarray(box).round().astype(int)  # clockwise from top-left
            (left, top), (right, bottom) = quad[0], quad[2]
            lines.append({"words": text,
                          "location": {"top": int(top), "left": int(left),
                                       "width": int(right - left), "height": int(bottom - top)},
                          "score": float(score)})
        return sorted(lines, key=lambda line: line["location"]["top"])
