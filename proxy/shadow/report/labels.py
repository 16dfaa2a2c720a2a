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
