"""How the report names, colours and formats things: the provider on each side, outcomes, family titles,
HTML escaping, numbers, times and latencies."""

from __future__ import annotations

import html
import math
from typing import Any

ALIYUN_RGB = (229, 72, 77)
AWS_RGB = (47, 111, 237)
OUTCOMES = ("matched", "ignored", "mismatched", "error")


FAMILY_TITLE = {"ocr": "OCR", "matting": "Matting", "super_resolution": "Super-resolution"}


def providers(mode: str) -> tuple[str, str]:
    """Who answered as primary and as secondary: in reverse-shadow AWS serves and Aliyun is the shadow."""
    return ("AWS", "Aliyun") if mode == "reverse-shadow" else ("Aliyun", "AWS")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if float(value).is_integer() and abs(value) >= 2:  # counts and sizes
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.{digits}f}"


def _when(iso: str) -> str:
    """ISO-8601 UTC as '2026-11-25 15:43:04 UTC' (seconds are enough for a reader)."""
    return iso[:19].replace("T", " ") + " UTC" if len(iso) >= 19 else iso


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


# One line under each score: what it measures and which way is better.
METRIC_HELP = {
    "cer": "character error rate of the whole text (edit distance / length); 0 = same text, lower is better",
    "f1": "lines found by both, balancing precision and recall; 1 = every line matched, higher is better",
    "precision": "share of AWS's lines that match an Aliyun line; higher is better",
    "recall": "share of Aliyun's lines that AWS found too; higher is better",
    "mean_iou": "average box overlap of matched lines (0..1); higher is better",
    "lines_primary": "number of lines the primary found (a count, not a score)",
    "lines_secondary": "number of lines the secondary found (a count, not a score)",
    "iou": "overlap of the two cut-out masks (intersection / union, 0..1); higher is better",
    "mad": "mean absolute difference of the two alpha mattes (0..1); lower is better",
    "foreground_primary": "share of the picture the primary kept as foreground (not a score)",
    "foreground_secondary": "share of the picture the secondary kept as foreground (not a score)",
    "size_equal": "1 when both enlarged pictures have the same size; must be 1",
    "psnr": "peak signal-to-noise ratio of the two pictures, in dB (capped); higher is better",
    "ssim": "structural similarity of the two pictures (0..1); higher is better",
    "width_primary": "width of the primary's picture, px (not a score)",
    "height_primary": "height of the primary's picture, px (not a score)",
}
