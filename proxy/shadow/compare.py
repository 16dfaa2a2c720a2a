"""Compare two Aliyun-shaped answers by meaning: OCR lines, matting masks, super-resolution images.

Shadow traffic sends one call to real Aliyun and to the AWS kit through the proxy; both answers are
Aliyun-shaped, so byte equality says nothing useful (RequestIds, URLs, float noise, another model).
These comparators score what an app relies on instead: the recognised text and where it is, the
cut-out, the enlarged picture. Everything here is pure and synchronous (CPU work: run it in a thread).

The first argument is always the reference ("primary"), the second the one under test ("secondary").
"""

from __future__ import annotations

import io
import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 (axis-aligned, image coordinates)

OCR_ACTIONS = frozenset({"RecognizeCharacter", "RecognizeGeneral", "RecognizeBasic", "RecognizeAdvanced"})
MATTING_ACTIONS = frozenset({"SegmentBody", "SegmentHDBody", "SegmentCommonImage", "SegmentHDCommonImage"})
SR_ACTIONS = frozenset({"MakeSuperResolutionImage", "GenerateSuperResolutionImage"})

# Lines whose boxes overlap at least this much are "the same place" (the usual detection criterion).
LINE_IOU_MIN = 0.5
# Normalised text similarity at or above which two lines say "the same thing" (CER measures the rest).
LINE_TEXT_MIN = 0.8
# A matched line whose centre moved at least this far is reported as shifted (smaller is rounding noise).
SHIFT_REPORT_PX = 4.0
# Identical images have an infinite PSNR; it is capped so records stay standard JSON and histograms finite.
PSNR_CAP_DB = 100.0
# Above this many pixels SSIM runs on a downscaled copy (a 4K x4 enlargement is 130 MP: gigabytes of floats).
SSIM_MAX_PIXELS = 4_000_000
MASK_THRESHOLD = 128
# An RGB pixel is "white background" when every channel is at least this (JPEG-safe margin).
WHITE_MIN = 245

# Starting points, to be calibrated with the noise mode (Aliyun against itself). `min`: higher is better.
DEFAULT_THRESHOLDS: dict[str, dict[str, dict[str, float]]] = {
    "ocr": {"cer": {"max": 0.10}, "f1": {"min": 0.85}},
    "matting": {"iou": {"min": 0.90}, "mad": {"max": 0.05}},
    "super_resolution": {"size_equal": {"min": 1.0}, "ssim": {"min": 0.85}, "psnr": {"min": 25.0}},
}


def family_of(action: str) -> str | None:
    """The comparison family of an Aliyun action ("ocr", "matting", "super_resolution"), None if not compared."""
    if action in OCR_ACTIONS:
        return "ocr"
    if action in MATTING_ACTIONS:
        return "matting"
    if action in SR_ACTIONS:
        return "super_resolution"
    return None


def thresholds_for(action: str) -> dict[str, dict[str, float]]:
    """A copy of the default thresholds for the action's family (empty when the action is not compared)."""
    family = family_of(action)
    return {k: dict(v) for k, v in DEFAULT_THRESHOLDS.get(family or "", {}).items()}


# ---------------------------------------------------------------------------------------------------------
# Result types (all JSON-ready through to_dict)


@dataclass
class Difference:
    """One thing that differs, for a human: kind is missing / extra / text_changed / box_shifted."""

    kind: str
    message: str
    primary: str | None = None
    secondary: str | None = None
    shift_px: float | None = None
    iou: float | None = None
    similarity: float | None = None
    primary_box: list[float] | None = None
    secondary_box: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Scores:
    """Metrics (name → number) plus the differences and notes that explain them."""

    family: str
    metrics: dict[str, float]
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "metrics": dict(self.metrics),
                "differences": [d.to_dict() for d in self.differences], "notes": list(self.notes)}


@dataclass
class Outcome:
    """matched / mismatched / error, or ignored (every failure within the noise floor, Scientist's term)."""

    outcome: str
    failed: list[str] = field(default_factory=list)
    within_noise: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------
# OCR


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


def rotated_rect_corners(left: float, top: float, width: float, height: float, angle: float) -> list[Point]:
    """Corners of an OpenCV-style rotated rect given as Aliyun's Left/Top/Width/Height/Angle.

    Left/Top are the centre minus half the sides, and Angle (degrees, clockwise on screen) turns the box
    about that centre, as cv2.boxPoints does. Returned as TL, TR, BR, BL of the unrotated box.
    """
    cx, cy = left + width / 2, top + height / 2
    rad = math.radians(angle)
    cos, sin = math.cos(rad), math.sin(rad)
    out = []
    for dx, dy in ((-width / 2, -height / 2), (width / 2, -height / 2), (width / 2, height / 2),
                   (-width / 2, height / 2)):
        out.append((cx + dx * cos - dy * sin, cy + dx * sin + dy * cos))
    return out


def _line(text: Any, prob: float | None, corners: Sequence[Point]) -> Line:
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    c = tuple((float(x), float(y)) for x, y in corners)
    return Line(str(text or ""), prob, (c[0], c[1], c[2], c[3]), (min(xs), min(ys), max(xs), max(ys)))


def _num(value: Any) -> float:
    """Older RecognizeCharacter backends sent the numbers as JSON strings."""
    return float(value)


def ocr_lines(action: str, body: Mapping[str, Any]) -> list[Line]:
    """The lines of an Aliyun OCR answer (the whole response body, or its Data), in the answer's order.

    RecognizeCharacter: Data.Results[] with Text, Probability (0..1) and TextRectangles (a rotated rect).
    ocr-api Recognize*: Data is a JSON string whose prism_wordsInfo[] has word, prob (0..100) and pos
    (4 corners in image coordinates; x/y/width/height/angle are the same box, rounded, so pos is used).
    """
    data: Any = body.get("Data", body)
    if action == "RecognizeCharacter":
        lines = []
        for item in (data or {}).get("Results") or []:
            rect = item.get("TextRectangles") or {}
            if isinstance(rect, list):  # XML-to-JSON converters turn a single child into a list
                rect = rect[0] if rect else {}
            corners = rotated_rect_corners(_num(rect.get("Left", 0)), _num(rect.get("Top", 0)),
                                           _num(rect.get("Width", 0)), _num(rect.get("Height", 0)),
                                           _num(rect.get("Angle", 0)))
            prob = item.get("Probability")
            lines.append(_line(item.get("Text"), None if prob is None else _num(prob), corners))
        return lines
    if action in OCR_ACTIONS:
        if isinstance(data, str):
            data = json.loads(data) if data.strip() else {}
        lines = []
        for word in (data or {}).get("prism_wordsInfo") or []:
            pos = word.get("pos") or []
            if len(pos) == 4:
                corners = [(_num(p["x"]), _num(p["y"])) for p in pos]
            else:  # no quad: fall back to the rotated box the same way RecognizeCharacter does
                corners = rotated_rect_corners(_num(word.get("x", 0)), _num(word.get("y", 0)),
                                               _num(word.get("width", 0)), _num(word.get("height", 0)),
                                               _num(word.get("angle", 0)))
            prob = word.get("prob")
            lines.append(_line(word.get("word"), None if prob is None else _num(prob) / 100, corners))
        return lines
    raise ValueError(f"not an OCR action: {action}")


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


def _hull(points: Sequence[Point]) -> list[Point]:
    """Convex hull, counter-clockwise in a y-up frame (monotone chain); quads from detectors may be bowed."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return pts

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    upper: list[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _area(poly: Sequence[Point]) -> float:
    return abs(sum(poly[i][0] * poly[i - 1][1] - poly[i - 1][0] * poly[i][1] for i in range(len(poly)))) / 2


def polygon_iou(a: Sequence[Point], b: Sequence[Point]) -> float:
    """Intersection over union of two quads (their convex hulls), by Sutherland-Hodgman clipping.

    Polygons rather than bounding boxes: for tilted text the bounding boxes overlap far more than the text.
    """
    pa, pb = _hull(a), _hull(b)
    if len(pa) < 3 or len(pb) < 3:
        return 0.0
    area_a, area_b = _area(pa), _area(pb)
    if area_a <= 0 or area_b <= 0:
        return 0.0

    def side(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    out = pa
    for i in range(len(pb)):
        p, q = pb[i], pb[(i + 1) % len(pb)]
        src, out = out, []
        for j in range(len(src)):
            cur, prev = src[j], src[j - 1]
            s_cur, s_prev = side(p, q, cur), side(p, q, prev)
            if (s_cur >= 0) != (s_prev >= 0):
                t = s_prev / (s_prev - s_cur)
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if s_cur >= 0:
                out.append(cur)
        if not out:
            return 0.0
    inter = _area(out) if len(out) >= 3 else 0.0
    return inter / (area_a + area_b - inter)


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


# ---------------------------------------------------------------------------------------------------------
# Matting


def mask_of(png: bytes) -> tuple[Image.Image, str]:
    """The foreground mask (mode L) of a matting result and how it was read.

    mask form → the L image itself; RGBA cut-outs → their alpha; an opaque colour image (whiteBK) has no
    alpha, so its foreground is taken as every pixel that is not (near) white, which also drops white
    parts of the subject.
    """
    img: Image.Image = Image.open(io.BytesIO(png))
    img.load()
    if img.mode in ("L", "1", "I", "I;16", "F"):
        return img.convert("L"), "grayscale mask"
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        return img.getchannel("A"), "alpha channel"
    rgb = np.asarray(img.convert("RGB"))
    fg = (rgb.min(axis=2) < WHITE_MIN).astype(np.uint8) * 255
    return Image.fromarray(fg, "L"), f"no alpha: foreground = non-white pixels (any channel < {WHITE_MIN})"


def compare_masks(primary_png: bytes, secondary_png: bytes) -> Scores:
    """IoU of the masks cut at MASK_THRESHOLD, and mean absolute difference of the soft masks (0..1).

    The secondary mask is resized (bilinear) to the primary's size when they differ: a crop form or a
    model working at a lower resolution must still be comparable.
    """
    a, how_a = mask_of(primary_png)
    b, how_b = mask_of(secondary_png)
    notes = [f"primary: {how_a}", f"secondary: {how_b}"]
    if b.size != a.size:
        notes.append(f"secondary mask resized from {b.width}x{b.height} to {a.width}x{a.height}")
        b = b.resize(a.size, Image.Resampling.BILINEAR)
    ma = np.asarray(a, dtype=np.float32) / 255.0
    mb = np.asarray(b, dtype=np.float32) / 255.0
    fa, fb = ma >= MASK_THRESHOLD / 255.0, mb >= MASK_THRESHOLD / 255.0
    union = int(np.count_nonzero(fa | fb))
    inter = int(np.count_nonzero(fa & fb))
    metrics = {
        "iou": inter / union if union else 1.0,
        "mad": float(np.abs(ma - mb).mean()),
        "foreground_primary": float(fa.mean()),
        "foreground_secondary": float(fb.mean()),
    }
    return Scores("matting", metrics, notes=notes)


# ---------------------------------------------------------------------------------------------------------
# Super-resolution

_GAUSS_RADIUS = 5
_GAUSS_SIGMA = 1.5


def _gaussian_kernel() -> np.ndarray:
    x = np.arange(-_GAUSS_RADIUS, _GAUSS_RADIUS + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * _GAUSS_SIGMA**2))
    return (k / k.sum()).astype(np.float32)


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' convolution: one shifted multiply-add per tap and axis (no SciPy needed)."""
    n = len(kernel)
    h, w = img.shape
    rows: np.ndarray = sum(kernel[k] * img[k:h - n + 1 + k, :] for k in range(n))
    out: np.ndarray = sum(kernel[k] * rows[:, k:w - n + 1 + k] for k in range(n))
    return out


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two equal-size grayscale arrays (0..255): Wang et al. 2004 with an 11x11 Gaussian
    window (sigma 1.5), K1 0.01, K2 0.03, L 255, over the valid region (as scikit-image's
    gaussian_weights=True, use_sample_covariance=False). Written in numpy because scikit-image would add
    scipy, networkx and more to the proxy's image for one function."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    if min(x.shape) < 2 * _GAUSS_RADIUS + 1:
        return 1.0 if np.array_equal(x, y) else float("nan")
    kern = _gaussian_kernel()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _filter(x, kern), _filter(y, kern)
    sxx = _filter(x * x, kern) - mx * mx
    syy = _filter(y * y, kern) - my * my
    sxy = _filter(x * y, kern) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float((num / den).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all channels (peak 255), capped at PSNR_CAP_DB (identical images)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10 * math.log10(255.0**2 / mse))


def compare_images(a: bytes, b: bytes) -> Scores:
    """Size equality, PSNR (RGB) and SSIM (grayscale) of two enlargements, the second resized to the first.

    Alpha is dropped (RGBA inputs force PNG output on both sides, and the enlarged colour is what counts).
    """
    ia = Image.open(io.BytesIO(a)).convert("RGB")
    ib = Image.open(io.BytesIO(b)).convert("RGB")
    notes: list[str] = []
    same = ia.size == ib.size
    if not same:
        notes.append(f"sizes differ: {ia.width}x{ia.height} vs {ib.width}x{ib.height}; second resized to first")
        ib = ib.resize(ia.size, Image.Resampling.BICUBIC)
    value_psnr = psnr(np.asarray(ia), np.asarray(ib))
    ga, gb = ia.convert("L"), ib.convert("L")
    pixels = ga.width * ga.height
    if pixels > SSIM_MAX_PIXELS:
        ratio = math.sqrt(SSIM_MAX_PIXELS / pixels)
        size = (max(1, round(ga.width * ratio)), max(1, round(ga.height * ratio)))
        notes.append(f"SSIM on a {size[0]}x{size[1]} copy (area-averaged) to bound memory")
        ga, gb = ga.resize(size, Image.Resampling.BOX), gb.resize(size, Image.Resampling.BOX)
    metrics = {
        "size_equal": 1.0 if same else 0.0,
        "psnr": value_psnr,
        "ssim": ssim(np.asarray(ga), np.asarray(gb)),
        "width_primary": float(ia.width),
        "height_primary": float(ia.height),
    }
    return Scores("super_resolution", metrics, notes=notes)


# ---------------------------------------------------------------------------------------------------------
# Verdicts


def _fails(value: float | None, bound: Mapping[str, float]) -> str | None:
    """Why value breaks its bound, or None when it passes. A missing or NaN value always fails."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if "min" in bound and value < bound["min"]:
        return f"{value:.4g} < min {bound['min']:.4g}"
    if "max" in bound and value > bound["max"]:
        return f"{value:.4g} > max {bound['max']:.4g}"
    return None


def evaluate(scores: Scores, thresholds: Mapping[str, Mapping[str, float]]) -> Outcome:
    """matched when every thresholded metric is within its bounds, else mismatched with the failed names.

    thresholds: {"f1": {"min": 0.9}, "cer": {"max": 0.1}}; a metric named there but absent fails.
    """
    failed, reasons = [], []
    for name, bound in thresholds.items():
        why = _fails(scores.metrics.get(name), bound)
        if why:
            failed.append(name)
            reasons.append(f"{name} {why}")
    return Outcome("mismatched" if failed else "matched", failed, reasons=reasons)


def _error_code(status: int, body: Any) -> str | None:
    """The Aliyun error code of an answer, "HTTP <status>" without one, None for a success."""
    code = body.get("Code") if isinstance(body, Mapping) else None
    if 200 <= status < 300 and not code:
        return None
    return str(code) if code else f"HTTP {status}"


def error_outcome(primary_status: int, primary_body: Any, secondary_status: int, secondary_body: Any) -> Outcome | None:
    """Outcome "error" when either side failed (non-2xx, or an Aliyun error body with Code), else None.

    failed names the side(s): "primary_error", "secondary_error". The reason says whether both sides
    failed with the same code, which is agreement worth knowing (e.g. both refuse a bad image).
    """
    p, s = _error_code(primary_status, primary_body), _error_code(secondary_status, secondary_body)
    if p is None and s is None:
        return None
    failed = [name for name, code in (("primary_error", p), ("secondary_error", s)) if code]
    if p and s:
        reason = f"both failed with {p}" if p == s else f"both failed: primary {p}, secondary {s}"
    else:
        reason = f"primary failed: {p}" if p else f"secondary failed: {s}"
    return Outcome("error", failed, reasons=[reason])


def apply_noise_floor(outcome: Outcome, thresholds: Mapping[str, Mapping[str, float]], noise: Scores,
                      raw: Scores) -> Outcome:
    """Excuse failures that Aliyun shows against itself too (Diffy's primary-vs-secondary noise).

    noise = scores(primary, primary called again); raw = scores(primary, secondary). A failed metric is
    "within noise" when raw is not worse than noise in the threshold's direction: raw >= noise for a
    `min` bound, raw <= noise for a `max` bound (1e-9 slack for float rounding; no relative slack, so
    the rule never hides a difference larger than Aliyun's own). Those metrics move from `failed` to
    `within_noise`; if none is left the outcome becomes "ignored" (not "matched": the lead should still
    see that the thresholds were broken). Errors and matches are returned unchanged.
    """
    if outcome.outcome != "mismatched":
        return outcome
    still: list[str] = []
    excused: list[str] = []
    for name in outcome.failed:
        bound = thresholds.get(name, {})
        r, n = raw.metrics.get(name), noise.metrics.get(name)
        ok = False
        if r is not None and n is not None and not (math.isnan(r) or math.isnan(n)):
            ok = (("min" not in bound or r >= n - 1e-9) and ("max" not in bound or r <= n + 1e-9))
        (excused if ok else still).append(name)
    reasons = [r for r in outcome.reasons if r.split(" ", 1)[0] in still]
    reasons += [f"{name} within noise (raw {raw.metrics[name]:.4g}, noise {noise.metrics[name]:.4g})"
                for name in excused]
    return Outcome("mismatched" if still else "ignored", still, excused, reasons)
