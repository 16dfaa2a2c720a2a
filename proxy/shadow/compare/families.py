"""Each comparison family's default thresholds. Which family an action belongs to is its mapping's
`compare.family` (proxy/mappings.py), never a list of names here."""

from __future__ import annotations

# Starting points, to be calibrated with the noise mode (Aliyun against itself). `min`: higher is better.
DEFAULT_THRESHOLDS: dict[str, dict[str, dict[str, float]]] = {
    "ocr": {"cer": {"max": 0.10}, "f1": {"min": 0.85}},
    "matting": {"iou": {"min": 0.90}, "mad": {"max": 0.05}},
    "super_resolution": {"size_equal": {"min": 1.0}, "ssim": {"min": 0.85}, "psnr": {"min": 25.0}},
}


def thresholds_for(family: str | None) -> dict[str, dict[str, float]]:
    """A copy of the family's default thresholds (empty for None: an action that is not compared)."""
    return {k: dict(v) for k, v in DEFAULT_THRESHOLDS.get(family or "", {}).items()}
