"""Inline SVG charts: a metric's histogram with its threshold drawn in, and a stacked bar of outcomes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .labels import OUTCOMES, _e


def histogram_svg(values: Sequence[float], lo: float, hi: float, bound: Mapping[str, float] | None,
                  title: str, bins: int = 10) -> str:
    """A small histogram; bars on the failing side of the threshold are drawn in the warning colour."""
    w, h, pad_l, pad_b, pad_t = 280, 132, 28, 20, 34
    counts = [0] * bins
    for v in values:
        if v is None or math.isnan(v):
            continue
        i = int((v - lo) / (hi - lo) * bins) if hi > lo else 0
        counts[min(bins - 1, max(0, i))] += 1
    top = max(counts) or 1
    bw = (w - pad_l - 8) / bins
    parts = [f'<svg class="hist" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
             f'aria-label="{_e(title)}"><text x="{pad_l}" y="14" class="ht">{_e(title)}</text>']
    base_y = h - pad_b
    parts.append(f'<line x1="{pad_l}" y1="{base_y}" x2="{w - 8}" y2="{base_y}" class="axis"/>')
    for i, c in enumerate(counts):
        x0 = lo + (hi - lo) * i / bins
        x1 = lo + (hi - lo) * (i + 1) / bins
        mid = (x0 + x1) / 2
        limits = bound or {}
        failing = ("min" in limits and mid < limits["min"]) or ("max" in limits and mid > limits["max"])
        bh = (base_y - pad_t) * c / top
        cls = "bar bad" if failing else "bar"
        x = pad_l + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{base_y - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                     f'class="{cls}"><title>{x0:.3g}–{x1:.3g}: {c}</title></rect>')
        if c:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{base_y - bh - 3:.1f}" class="hc">{c}</text>')
    for value in (bound or {}).values():
        if lo <= value <= hi:
            x = pad_l + (value - lo) / (hi - lo) * (w - pad_l - 8)
            parts.append(f'<line x1="{x:.1f}" y1="{pad_t - 4}" x2="{x:.1f}" y2="{base_y}" class="thr"/>')
    parts.append(f'<text x="{pad_l}" y="{h - 5}" class="hl">{lo:g}</text>'
                 f'<text x="{w - 8}" y="{h - 5}" class="hl" text-anchor="end">{hi:g}</text>'
                 f'<text x="4" y="{pad_t + 8}" class="hl">{top}</text></svg>')
    return "".join(parts)


def outcome_bar(counts: Mapping[str, int], width: int = 160) -> str:
    """A stacked bar of outcomes (inline SVG)."""
    total = sum(counts.values()) or 1
    x = 0.0
    rects = []
    for name in OUTCOMES:
        n = counts.get(name, 0)
        if not n:
            continue
        w = width * n / total
        rects.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="12" class="o-{name}">'
                     f'<title>{name}: {n}</title></rect>')
        x += w
    return f'<svg class="obar" width="{width}" height="12" viewBox="0 0 {width} 12">{"".join(rects)}</svg>'
