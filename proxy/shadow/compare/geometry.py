"""Plane geometry for OCR boxes: Aliyun's rotated rectangles as corners, and the IoU of two quads."""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 (axis-aligned, image coordinates)


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
