"""Verdicts: scores against thresholds (matched / mismatched), failed calls (error), and the noise floor
that excuses what Aliyun shows against itself too (ignored)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .results import Outcome, Scores


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


def error_code(status: int, body: Any) -> str | None:
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
    p, s = error_code(primary_status, primary_body), error_code(secondary_status, secondary_body)
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
