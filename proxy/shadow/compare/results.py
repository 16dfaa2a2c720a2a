"""What a comparison returns: Scores (metrics and the differences behind them) and an Outcome.

All JSON-ready through to_dict, so records can store them as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
