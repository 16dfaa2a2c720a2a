"""Compare two Aliyun-shaped answers by meaning: OCR lines, matting masks, super-resolution images.

Shadow traffic sends one call to real Aliyun and to the AWS kit through the proxy; both answers are
Aliyun-shaped, so byte equality says nothing useful (RequestIds, URLs, float noise, another model).
These comparators score what an app relies on instead: the recognised text and where it is, the
cut-out, the enlarged picture. Everything here is pure and synchronous (CPU work: run it in a thread).

The first argument is always the reference ("primary"), the second the one under test ("secondary").

One concern a module; this package is their public face:
- families: the default thresholds per family (an action's family is in its mapping);
- results: Scores, Difference and Outcome, the JSON-ready results;
- geometry: rotated rectangles and polygon IoU for OCR boxes;
- ocr: parsing OCR answers into lines and comparing them (CER, line matching, F1);
- pictures: matting masks (IoU, MAD) and super-resolution images (PSNR, SSIM);
- verdict: thresholds to matched / mismatched, failed calls to error, the noise floor to ignored.
"""

from .families import DEFAULT_THRESHOLDS, thresholds_for
from .geometry import Box, Point, polygon_iou, rotated_rect_corners
from .ocr import (
    LINE_IOU_MIN,
    LINE_TEXT_MIN,
    SHIFT_REPORT_PX,
    Line,
    cer,
    compare_ocr,
    full_text,
    normalise_text,
    ocr_lines,
    reading_order,
    text_similarity,
)
from .pictures import (
    MASK_THRESHOLD,
    PSNR_CAP_DB,
    SSIM_MAX_PIXELS,
    WHITE_MIN,
    compare_images,
    compare_masks,
    mask_of,
    psnr,
    ssim,
)
from .results import Difference, Outcome, Scores
from .verdict import apply_noise_floor, error_code, error_outcome, evaluate

__all__ = [
    "DEFAULT_THRESHOLDS",
    "LINE_IOU_MIN",
    "LINE_TEXT_MIN",
    "MASK_THRESHOLD",
    "PSNR_CAP_DB",
    "SHIFT_REPORT_PX",
    "SSIM_MAX_PIXELS",
    "WHITE_MIN",
    "Box",
    "Difference",
    "Line",
    "Outcome",
    "Point",
    "Scores",
    "apply_noise_floor",
    "cer",
    "compare_images",
    "compare_masks",
    "compare_ocr",
    "error_code",
    "error_outcome",
    "evaluate",
    "full_text",
    "mask_of",
    "normalise_text",
    "ocr_lines",
    "polygon_iou",
    "psnr",
    "reading_order",
    "rotated_rect_corners",
    "ssim",
    "text_similarity",
    "thresholds_for",
]
