"""Shadow comparison: comparators (compare), the bounded record store (records), the HTML report (report)."""

from .compare import (
    DEFAULT_THRESHOLDS,
    Difference,
    Line,
    Outcome,
    Scores,
    apply_noise_floor,
    compare_images,
    compare_masks,
    compare_ocr,
    error_outcome,
    evaluate,
    family_of,
    ocr_lines,
    thresholds_for,
)
from .records import Record, RecordStore
from .report import render_report, write_report

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Difference",
    "Line",
    "Outcome",
    "Record",
    "RecordStore",
    "Scores",
    "apply_noise_floor",
    "compare_images",
    "compare_masks",
    "compare_ocr",
    "error_outcome",
    "evaluate",
    "family_of",
    "ocr_lines",
    "render_report",
    "thresholds_for",
    "write_report",
]
