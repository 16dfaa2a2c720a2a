"""GO / NO-GO / NOT ENOUGH DATA, per action and overall, from explicit criteria (the
`shadow_verdict_*` settings, proxy/config/shadow.py), each printed beside the verdict with its value.

An action is NOT ENOUGH DATA below the minimum number of comparisons; otherwise NO-GO when any
criterion fails (agreement too low, error rate too high, AWS too slow against Aliyun), else GO.
Overall: NO-GO if any action is NO-GO, NOT ENOUGH DATA if any action lacks data (or there is none),
else GO. Agreement is the one definition in proxy/shadow/agreement.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .agreement import COMPARED, agreement, error_rate

GO, NO_GO, NOT_ENOUGH = "GO", "NO-GO", "NOT ENOUGH DATA"


@dataclass(frozen=True)
class Criteria:
    min_samples: int = 30
    min_agreement: float = 0.95
    max_error_rate: float = 0.05
    max_latency_ratio: float = 1.5

    @classmethod
    def from_settings(cls, settings: Any) -> Criteria:
        return cls(settings.shadow_verdict_min_samples, settings.shadow_verdict_min_agreement,
                   settings.shadow_verdict_max_error_rate, settings.shadow_verdict_max_latency_ratio)


@dataclass(frozen=True)
class Check:
    """One criterion: what it asks, the value found, whether it passed (None: could not be measured)."""

    name: str
    rule: str
    value: str
    passed: bool | None


@dataclass(frozen=True)
class Verdict:
    verdict: str
    checks: list[Check] = field(default_factory=list)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def judge(counts: Mapping[str, int], aws_p95_ms: float | None, aliyun_p95_ms: float | None,
          criteria: Criteria) -> Verdict:
    """One action's verdict from its outcome counts and both sides' p95 latency."""
    compared = sum(counts.get(o, 0) for o in COMPARED)
    agree, errors = agreement(counts), error_rate(counts)
    ratio = aws_p95_ms / aliyun_p95_ms if aws_p95_ms is not None and aliyun_p95_ms else None
    checks = [
        Check("samples", f"≥ {criteria.min_samples} comparisons", str(compared), compared >= criteria.min_samples),
        Check("agreement", f"≥ {criteria.min_agreement:.1%}", _pct(agree),
              None if agree is None else agree >= criteria.min_agreement),
        Check("error rate", f"≤ {criteria.max_error_rate:.1%}", _pct(errors),
              None if errors is None else errors <= criteria.max_error_rate),
        Check("latency ratio", f"AWS p95 ≤ {criteria.max_latency_ratio:g} × Aliyun p95",
              "–" if ratio is None else f"{ratio:.2f}×",
              None if ratio is None else ratio <= criteria.max_latency_ratio),
    ]
    if compared < criteria.min_samples:
        return Verdict(NOT_ENOUGH, checks)
    return Verdict(NO_GO if any(c.passed is False for c in checks) else GO, checks)


def overall(verdicts: Sequence[Verdict]) -> Verdict:
    names = [v.verdict for v in verdicts]
    if NO_GO in names:
        verdict = NO_GO
    elif not names or NOT_ENOUGH in names:
        verdict = NOT_ENOUGH
    else:
        verdict = GO
    counts = ", ".join(f"{names.count(n)} {n}" for n in (GO, NO_GO, NOT_ENOUGH) if n in names) or "no actions"
    return Verdict(verdict, [Check("actions", "every action GO", counts, verdict == GO if names else None)])
