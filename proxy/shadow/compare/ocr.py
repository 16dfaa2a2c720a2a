"""OCR: the lines of an Aliyun OCR answer, their text in reading order, and line-by-line comparison."""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from .geometry import Box, Point, polygon_iou, rotated_rect_corners
from .results import Difference, Scores

# Lines whose boxes overlap at least this much are "the same place" (the usual detection criterion).
LINE_IOU_MIN = 0.5
# Normalised text similarity at or above which two lines say "the same thing" (CER measures the rest).
LINE_TEXT_MIN = 0.8
# A matched line whose centre moved at least this far is reported as shifted (smaller is rounding noise).
SHIFT_REPORT_PX = 4.0


@dataclass(frozen=True)
class Line:
    """One recognised line: its text, confidence (0..1, None if absent), corner polygon and bounding box."""

    text: str
    prob: float | None
    poly: tuple[Point, Point, Point, Point]
    bbox: Box

    @property
    def centre(self) -> Point:
        return (sum(p[0] for p in self.poly) / 4, sum(p[1] for p in self.poly) / 4)


def _line(text: Any, prob: float | None, corners: Sequence[Point]) -> Line:
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    c = tuple((float(x), float(y)) for x, y in corners)
    return Line(str(text or ""), prob, (c[0], c[1], c[2], c[3]), (min(xs), min(ys), max(xs), max(ys)))


def _num(value: Any) -> float:
    """Older RecognizeCharacter backends sent the numbers as JSON strings."""
    return float(value)


def _many(value: Any) -> list[Any]:
    """A list from a list, one object (XML's list of one), or nothing."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, Mapping) else []


def ocr_lines(lines: str | None, body: Mapping[str, Any] | None) -> list[Line]:
    """The lines of an Aliyun OCR answer (the whole response body, or its Data), in the answer's order.

    `lines` is the mapping's compare.lines, the shape the answer carries its lines in:
    - text_rectangles (ocr RecognizeCharacter): Data.Results[] with Text, Probability (0..1) and
      TextRectangles (a rotated rect);
    - prism_words (ocr-api Recognize*): Data is a JSON string whose prism_wordsInfo[] has word, prob
      (0..100) and pos (4 corners in image coordinates; x/y/width/height/angle are the same box,
      rounded, so pos is used);
    - all_text_blocks (ocr-api RecognizeAllText): see _all_text_blocks.
    """
    data: Any = body.get("Data", body) if isinstance(body, Mapping) else None
    if lines == "text_rectangles":
        found = []
        for item in _many((data or {}).get("Results")):
            rect = item.get("TextRectangles") or {}
            if isinstance(rect, list):  # XML-to-JSON converters turn a single child into a list
                rect = rect[0] if rect else {}
            corners = rotated_rect_corners(_num(rect.get("Left", 0)), _num(rect.get("Top", 0)),
                                           _num(rect.get("Width", 0)), _num(rect.get("Height", 0)),
                                           _num(rect.get("Angle", 0)))
            prob = item.get("Probability")
            found.append(_line(item.get("Text"), None if prob is None else _num(prob), corners))
        return found
    if lines == "prism_words":
        if isinstance(data, str):
            data = json.loads(data) if data.strip() else {}
        found = []
        for word in _many((data or {}).get("prism_wordsInfo")):
            pos = _many(word.get("pos"))
            if len(pos) == 4:
                corners = [(_num(p["x"]), _num(p["y"])) for p in pos]
            else:  # no quad: fall back to the rotated box the same way RecognizeCharacter does
                corners = rotated_rect_corners(_num(word.get("x", 0)), _num(word.get("y", 0)),
                                               _num(word.get("width", 0)), _num(word.get("height", 0)),
                                               _num(word.get("angle", 0)))
            prob = word.get("prob")
            found.append(_line(word.get("word"), None if prob is None else _num(prob) / 100, corners))
        return found
    if lines == "all_text_blocks":
        return _all_text_blocks(data)
    raise ValueError(f"not an OCR answer shape: {lines!r}")


def _all_text_blocks(data: Any) -> list[Line]:
    """ocr-api RecognizeAllText: Data.SubImages[].BlockInfo.BlockDetails[] with BlockContent, BlockConfidence
    (0..100) and, when the caller asked for OutputCoordinate, BlockPoints (4 corners) or BlockRect (centre,
    sides) turned by BlockAngle. Without coordinates a block has no place (a zero box)."""
    found = []
    for sub in _many((data or {}).get("SubImages")):
        for block in _many((sub.get("BlockInfo") or {}).get("BlockDetails")):
            points, rect = _many(block.get("BlockPoints")), block.get("BlockRect")
            if len(points) == 4:
                corners = [(_num(p["X"]), _num(p["Y"])) for p in points]
            elif rect:
                w, h = _num(rect.get("Width", 0)), _num(rect.get("Height", 0))
                left, top = _num(rect.get("CenterX", 0)) - w / 2, _num(rect.get("CenterY", 0)) - h / 2
                corners = rotated_rect_corners(left, top, w, h, _num(block.get("BlockAngle", 0)))
            else:
                corners = [(0.0, 0.0)] * 4
            conf = block.get("BlockConfidence")
            found.append(_line(block.get("BlockContent"), None if conf is None else _num(conf) / 100, corners))
    return found


def normalise_text(text: str) -> str:
    """NFKC and no whitespace: engines disagree on full/half-width forms (：/:) and on spaces between CJK
    characters, neither of which changes what the text says."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def reading_order(lines: Sequence[Line]) -> list[Line]:
    """Top-to-bottom rows, left-to-right inside a row.

    A plain sort on the top edge would flip two words of one row whose tops differ by a pixel; instead a
    line joins the current row when its vertical extent overlaps the row's by at least half of the
    smaller height.
    """
    rows: list[list[Line]] = []
    band: tuple[float, float] = (0.0, 0.0)
    for line in sorted(lines, key=lambda ln: (ln.centre[1], ln.centre[0])):
        y0, y1 = line.bbox[1], line.bbox[3]
        if rows:
            overlap = min(y1, band[1]) - max(y0, band[0])
            if overlap >= 0.5 * min(y1 - y0, band[1] - band[0]) and overlap > 0:
                rows[-1].append(line)
                band = (min(band[0], y0), max(band[1], y1))
                continue
        rows.append([line])
        band = (y0, y1)
    return [ln for row in rows for ln in sorted(row, key=lambda ln: ln.bbox[0])]


def full_text(lines: Sequence[Line]) -> str:
    """The normalised text in reading order, lines separated by a newline (a lost line costs its break too)."""
    return "\n".join(normalise_text(ln.text) for ln in reading_order(lines))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: Levenshtein distance over the reference length (1.0 for text out of nothing)."""
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return Levenshtein.distance(reference, hypothesis) / len(reference)


def text_similarity(a: str, b: str) -> float:
    """1 - normalised Levenshtein distance of the normalised texts (1.0 when both are empty)."""
    return float(Levenshtein.normalized_similarity(normalise_text(a), normalise_text(b)))


def _boxes_touch(a: Box, b: Box) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _distance(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _box(line: Line) -> list[float]:
    return [round(v, 1) for v in line.bbox]


def compare_ocr(primary: Sequence[Line], secondary: Sequence[Line]) -> Scores:
    """CER on the full text, and line matching → precision / recall / F1 plus a list of differences.

    Matching, in two passes:
    1. by place: pairs with polygon IoU >= LINE_IOU_MIN, best IoU first (each line used once);
    2. by text: of the lines left, pairs with text similarity >= LINE_TEXT_MIN, best first, nearest first.
    A line counts as found (a true positive for F1) only when it is in the same place AND says the same
    thing (pass 1 and similarity >= LINE_TEXT_MIN): an app that draws boxes needs both. A pass-2 pair is
    reported as "box shifted by N px" rather than as a missing plus an extra line, and since the text is
    scored by CER on the whole text, a moved line costs CER nothing unless it changes the reading order.
    """
    p_lines, s_lines = list(primary), list(secondary)
    iou = [[polygon_iou(p.poly, s.poly) if _boxes_touch(p.bbox, s.bbox) else 0.0 for s in s_lines] for p in p_lines]
    sim = [[0.0] * len(s_lines) for _ in p_lines]
    if p_lines and s_lines:  # one C call for the whole matrix: answers can have hundreds of lines
        matrix = cdist([normalise_text(p.text) for p in p_lines], [normalise_text(s.text) for s in s_lines],
                       scorer=Levenshtein.normalized_similarity, dtype=np.float64)
        sim = matrix.tolist()

    used_p: set[int] = set()
    used_s: set[int] = set()
    by_place: list[tuple[int, int]] = []
    for _, _, i, j in sorted(((iou[i][j], sim[i][j], i, j) for i in range(len(p_lines)) for j in range(len(s_lines))
                              if iou[i][j] >= LINE_IOU_MIN), reverse=True):
        if i not in used_p and j not in used_s:
            used_p.add(i)
            used_s.add(j)
            by_place.append((i, j))
    by_text: list[tuple[int, int]] = []
    candidates = sorted((-sim[i][j], _distance(p_lines[i].centre, s_lines[j].centre), i, j)
                         for i in range(len(p_lines)) if i not in used_p
                         for j in range(len(s_lines)) if j not in used_s and sim[i][j] >= LINE_TEXT_MIN)
    for _, _, i, j in candidates:
        if i not in used_p and j not in used_s:
            used_p.add(i)
            used_s.add(j)
            by_text.append((i, j))

    diffs: list[Difference] = []
    true_pos = 0
    ious: list[float] = []
    for i, j in sorted(by_place + by_text):
        p, s = p_lines[i], s_lines[j]
        shift = _distance(p.centre, s.centre)
        placed = (i, j) in by_place
        if placed:
            ious.append(iou[i][j])
            true_pos += sim[i][j] >= LINE_TEXT_MIN
        if normalise_text(p.text) != normalise_text(s.text):
            diffs.append(Difference("text_changed", f"text changed: {p.text!r} → {s.text!r}", p.text, s.text,
                                    similarity=round(sim[i][j], 3), iou=round(iou[i][j], 3),
                                    primary_box=_box(p), secondary_box=_box(s)))
        if not placed or shift >= SHIFT_REPORT_PX:
            diffs.append(Difference("box_shifted", f"box shifted by {shift:.0f} px: {p.text!r}", p.text, s.text,
                                    shift_px=round(shift, 1), iou=round(iou[i][j], 3),
                                    primary_box=_box(p), secondary_box=_box(s)))
    for i, p in enumerate(p_lines):
        if i not in used_p:
            diffs.append(Difference("missing", f"missing line: {p.text!r}", primary=p.text, primary_box=_box(p)))
    for j, s in enumerate(s_lines):
        if j not in used_s:
            diffs.append(Difference("extra", f"extra line: {s.text!r}", secondary=s.text, secondary_box=_box(s)))

    n_p, n_s = len(p_lines), len(s_lines)
    precision = true_pos / n_s if n_s else (1.0 if not n_p else 0.0)
    recall = true_pos / n_p if n_p else (1.0 if not n_s else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    metrics = {
        "cer": cer(full_text(p_lines), full_text(s_lines)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mean_iou": sum(ious) / len(ious) if ious else (1.0 if not n_p and not n_s else 0.0),
        "lines_primary": float(n_p),
        "lines_secondary": float(n_s),
    }
    return Scores("ocr", metrics, diffs)
