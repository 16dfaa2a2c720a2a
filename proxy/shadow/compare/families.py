"""Which comparison family an Aliyun action belongs to, and each family's default thresholds."""

from __future__ import annotations

OCR_ACTIONS = frozenset({"RecognizeCharacter", "RecognizeGeneral", "RecognizeBasic", "RecognizeAdvanced"})
MATTING_ACTIONS = frozenset({"SegmentBody", "SegmentHDBody", "SegmentCommonImage", "SegmentHDCommonImage"})
SR_ACTIONS = frozenset({"MakeSuperResolutionImage", "GenerateSuperResolutionImage"})


# Starting points, to be calibrated with the noise mode (Aliyun against itself). `min`: higher is better.
DEFAULT_THRESHOLDS: dict[str, dict[str, dict[str, float]]] = {
    "ocr": {"cer": {"max": 0.10}, "f1": {"min": 0.85}},
    "matting": {"iou": {"min": 0.90}, "mad": {"max": 0.05}},
    "super_resolution": {"size_equal": {"min": 1.0}, "ssim": {"min": 0.85}, "psnr": {"min": 25.0}},
}


def family_of(action: str) -> str | None:
    """The comparison family of an Aliyun action ("ocr", "matting", "super_resolution"), None if not compared."""
    if action in OCR_ACTIONS:
        return "ocr"
    if action in MATTING_ACTIONS:
        return "matting"
    if action in SR_ACTIONS:
        return "super_resolution"
    return None


def thresholds_for(action: str) -> dict[str, dict[str, float]]:
    """A copy of the default thresholds for the action's family (empty when the action is not compared)."""
    family = family_of(action)
    return {k: dict(v) for k, v in DEFAULT_THRESHOLDS.get(family or "", {}).items()}
