"""Text-line geometry from the kit's `location`, which is a diagonal, not a box.

lite-ocr writes `location` from the first and third corners of each line's quad after
`order_points_clockwise` (the kit's general-ocr/model-standard/infer_ocr_app.py `handler` and main.py):
`top/left` is the quad's top-left corner and `width/height` is bottom-right minus top-left. Those two
corners are always opposite corners of the line's rotated rectangle, so

- the diagonal's midpoint is the line's true centre, for any tilt;
- for level text, `width` is the length and `height` the thickness;
- for tilted text they are not: a line rising to the right gets `height = t·cos a − l·sin a` (negative
  once the tilt passes atan(t/l), a few degrees for a long line), a falling one `t·cos a + l·sin a`.

The diagonal alone cannot tell tilt from shape. When the image is at hand (fetch mode, raw bodies) the
tilt is measured: among the rectangles that share the diagonal, the one whose direction makes the ink's
projection profile sharpest (the classic deskew measure, on the ink within the diagonal's circle). Its
sides are then exact: length `l = D·u`, thickness `t = D·v`. Without the image (pass-url mode) a line is
the level box the diagonal spans: the right centre, non-negative sides, `Angle` 0.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyspng
from PIL import Image

from .pngstripes import SIGNATURE

MAX_ANALYSIS_SIDE = 2048  # the tilt is measured on a copy at most this large (an angle is scale-free)
MAX_INK_SAMPLES = 20_000  # ink pixels per line used to score an angle
COARSE_SAMPLES = 4_000  # of those, for the coarse pass (it only picks the neighbourhood to search finely)
PILLOW_HISTOGRAM_PX = 65_536  # a line's square larger than this is counted by Pillow (see _ink)
MIN_INK = 30  # fewer ink pixels than this within the line: no measurement, the level box stands
ANGLE_STEP = 0.5  # degrees; the grid always holds 0, so level text reads exactly 0
COARSE_STEP = 2.0  # degrees; the first pass of the search (a multiple of ANGLE_STEP, so it holds 0 too)
# libspng holds the GIL while it decodes (pyspng releases nothing): 2-6 ns a pixel in the server, so up to
# this many pixels the loop waits ~1 ms at most. Bigger PNGs go to Pillow, which decodes without the GIL:
# measured at 4 MB (1.4 MP), libspng's lower CPU (26 against 30 ms a request) cost 9-13 ms of loop lag
# under load against Pillow's 6.
SPNG_MAX_PIXELS = 250_000


@dataclass(frozen=True)
class Diagonal:
    """The kit's `location`, in the pixels of the image the kit was sent."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Line:
    """A text line as a rotated rectangle: centre, length along the text, thickness across it, and angle
    in degrees, clockwise positive (image coordinates, y down; Aliyun's "向右旋转为正")."""

    cx: float
    cy: float
    length: float
    thickness: float
    angle: float

    def corners(self) -> list[tuple[float, float]]:
        """Top-left, top-right, bottom-right, bottom-left of the text (clockwise from the text's top-left)."""
        a = math.radians(self.angle)
        ux, uy = math.cos(a) * self.length / 2, math.sin(a) * self.length / 2
        vx, vy = -math.sin(a) * self.thickness / 2, math.cos(a) * self.thickness / 2
        return [(self.cx - ux - vx, self.cy - uy - vy), (self.cx + ux - vx, self.cy + uy - vy),
                (self.cx + ux + vx, self.cy + uy + vy), (self.cx - ux + vx, self.cy - uy + vy)]

    def scaled(self, sx: float, sy: float) -> Line:
        """The same line in an image scaled by (sx, sy): corners mapped exactly, sides and angle re-read."""
        if sx == sy == 1:
            return self
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = [(x * sx, y * sy) for x, y in self.corners()]
        return Line((ax + cx) / 2, (ay + cy) / 2,
                    (math.hypot(bx - ax, by - ay) + math.hypot(cx - dx, cy - dy)) / 2,
                    (math.hypot(dx - ax, dy - ay) + math.hypot(cx - bx, cy - by)) / 2,
                    math.degrees(math.atan2(by - ay, bx - ax)) if self.angle else 0.0)


def level_box(d: Diagonal) -> Line:
    """Without the image: the level box the diagonal spans (exact for level text)."""
    return Line(d.left + d.width / 2, d.top + d.height / 2, abs(d.width), abs(d.height), 0.0)


def measured(d: Diagonal, angle: float) -> Line:
    """The rectangle with diagonal `d` whose text runs at `angle` degrees."""
    a = math.radians(angle)
    length = d.width * math.cos(a) + d.height * math.sin(a)
    thickness = -d.width * math.sin(a) + d.height * math.cos(a)
    return Line(d.left + d.width / 2, d.top + d.height / 2, length, thickness, angle)


def lines_from_image(data: bytes, diagonals: Sequence[Diagonal]) -> list[Line]:
    """Measure each line's tilt in the image the kit read (blocking: decodes the image once, in grey)."""
    if not diagonals:
        return []
    return tilted_lines(grey_for_tilt(data), diagonals)


def grey_for_tilt(data: bytes) -> tuple[np.ndarray, float]:
    """The image in grey, at most MAX_ANALYSIS_SIDE large, and its scale to the image (blocking). Needs no
    line: the caller may decode it while the kit is still reading the same image."""
    grey = _png_grey(data)
    if grey is not None:
        full_width = grey.size[0]
    else:
        with Image.open(io.BytesIO(data)) as img:
            full_width = img.size[0]
            factor = max(1, math.ceil(max(img.size) / MAX_ANALYSIS_SIDE))
            if img.format == "JPEG":  # its grey channel only (half the CPU), at 1/2, 1/4 or 1/8 when big
                img.draft("L", (img.size[0] // factor, img.size[1] // factor))
            grey = img.convert("L")
    if max(grey.size) > MAX_ANALYSIS_SIDE:
        grey = grey.reduce(math.ceil(max(grey.size) / MAX_ANALYSIS_SIDE))
    return np.asarray(grey), grey.size[0] / full_width


def _png_grey(data: bytes) -> Image.Image | None:
    """An 8-bit PNG of up to SPNG_MAX_PIXELS decoded by libspng (pyspng), then greyed by Pillow's own
    RGB→L: the same grey as Pillow's decode gives, for half its CPU (50 KB noise PNG: 56 against 112 µs).
    None for anything else (16-bit PNGs too: Pillow clips those where libspng scales them), which Pillow
    then decodes."""
    if not data.startswith(SIGNATURE) or len(data) < 33 or data[24] > 8:  # IHDR's bit depth
        return None
    if int.from_bytes(data[16:20]) * int.from_bytes(data[20:24]) > SPNG_MAX_PIXELS:  # IHDR's width, height
        return None
    try:
        rgba = pyspng.load(data, format="RGBA")  # RGBA, not RGB: Pillow takes it without a copy (RGB it unpacks)
    except RuntimeError:  # libspng refused it: Pillow decides (and raises the error the caller expects)
        return None
    height, width = rgba.shape[:2]
    return Image.frombuffer("RGBA", (width, height), rgba, "raw", "RGBA", 0, 1).convert("L")  # alpha ignored


def tilted_lines(grey: tuple[np.ndarray, float], diagonals: Sequence[Diagonal]) -> list[Line]:
    """Each line's rectangle, measured in `grey` (from grey_for_tilt)."""
    pixels, scale = grey
    out = []
    for d in diagonals:
        angle = _tilt(pixels, Diagonal(d.left * scale, d.top * scale, d.width * scale, d.height * scale))
        out.append(level_box(d) if angle is None else measured(d, angle))
    return out


def _tilt(pixels: np.ndarray, d: Diagonal) -> float | None:
    """The angle, on the 0.5° grid between the diagonal's own direction and 45° below it, at which the
    ink around the line projects most sharply across the text (sum of squared 1-px profile bins).

    Searched coarse to fine: every COARSE_STEP first, on at most COARSE_SAMPLES of the ink, then the 0.5°
    grid around the best coarse angle on all of it (the sharpness of a text line falls off smoothly on both
    sides of its peak, so the peak is found there; the coarse pass only has to find that neighbourhood:
    189 lines of 63 boards, ±30°, clean, noisy and JPEG, gave the same angles with all the ink)."""
    cx, cy = d.left + d.width / 2, d.top + d.height / 2
    r = math.hypot(d.width, d.height) / 2
    if r < 2:
        return None
    x0, x1 = max(0, int(cx - r)), min(pixels.shape[1], int(cx + r) + 1)
    y0, y1 = max(0, int(cy - r)), min(pixels.shape[0], int(cy + r) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    ys, xs = np.divmod(np.flatnonzero(_ink(pixels[y0:y1, x0:x1])), x1 - x0)  # nonzero's order, 6x faster
    fx, fy = xs + (x0 - cx), ys + (y0 - cy)
    inside = fx * fx + fy * fy <= r * r
    fx, fy = fx[inside], fy[inside]
    if fx.size < MIN_INK:
        return None
    if fx.size > MAX_INK_SAMPLES:  # an even, deterministic subsample (every k-th ink pixel in raster order)
        step = -(-fx.size // MAX_INK_SAMPLES)
        fx, fy = fx[::step], fy[::step]
    psi = math.degrees(math.atan2(d.height, d.width))
    lo, hi = math.ceil((psi - 45) / ANGLE_STEP), math.ceil(psi / ANGLE_STEP)  # the grid: k * ANGLE_STEP, lo <= k < hi
    if (hi - 1) * ANGLE_STEP >= psi:
        hi -= 1
    if hi <= lo:
        return None
    reach = math.ceil(r) + 1  # every projection lies within ±r of the centre
    every = round(COARSE_STEP / ANGLE_STEP)
    first = -(-lo // every) * every
    if first < hi:
        step = -(-fx.size // COARSE_SAMPLES)
        best = first + every * int(np.argmax(_sharpness(fx[::step], fy[::step], slice(first, hi, every), reach)))
        lo, hi = max(lo, best - every + 1), min(hi, best + every)
    return (lo + int(np.argmax(_sharpness(fx, fy, slice(lo, hi), reach)))) * ANGLE_STEP


_K0 = round(90 / ANGLE_STEP)  # grid angles lie within ±90°: _NSIN[k + _K0] is -sin(k * ANGLE_STEP)
_RAD = np.radians(np.arange(-_K0, _K0 + 1) * ANGLE_STEP)
_NSIN, _COS = -np.sin(_RAD), np.cos(_RAD)


def _sharpness(fx: np.ndarray, fy: np.ndarray, ks: slice, reach: int) -> np.ndarray:
    """For each grid angle k * ANGLE_STEP, k in `ks`, the sum of squared counts of the ink's 1-px
    projection bins across that direction."""
    at = slice(ks.start + _K0, ks.stop + _K0, ks.step)
    proj = np.multiply.outer(_NSIN[at], fx)
    proj += np.multiply.outer(_COS[at], fy)
    np.floor(proj, out=proj)
    n, width = proj.shape[0], 2 * reach + 1
    proj += np.arange(reach, n * width, width)[:, None]  # each angle's bins in its own row, none negative
    profile = np.bincount(proj.astype(np.intp).ravel(), minlength=n * width).reshape(n, width)
    return np.einsum("ij,ij->i", profile, profile)


def _ink(grey: np.ndarray) -> np.ndarray:
    """Otsu's threshold; the minority side is ink (dark on a whiteboard, light on a blackboard)."""
    if grey.size > PILLOW_HISTOGRAM_PX:  # Pillow counts 8-bit pixels as they are: 1.5x np.bincount's speed
        counts = np.array(Image.fromarray(np.ascontiguousarray(grey)).histogram(), dtype=np.int64)
    else:  # np.bincount widens each to 64 bits first, but has no image to make
        counts = np.bincount(grey.ravel(), minlength=256)
    hist = counts.astype(np.float64)
    p = hist / max(hist.sum(), 1)
    w = np.cumsum(p)
    mu = np.cumsum(p * _LEVELS)
    between = (mu[-1] * w - mu) ** 2 / np.maximum(w * (1 - w), 1e-12)
    threshold = int(np.argmax(between))
    dark = int(counts[:threshold + 1].sum())  # pixels at or below the threshold
    return grey <= threshold if 2 * dark <= grey.size else grey > threshold


_LEVELS = np.arange(256, dtype=np.float64)
