"""Shadow comparators: known differences between two Aliyun-shaped answers score as they should."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFilter

from proxy.shadow.compare import (
    DEFAULT_THRESHOLDS,
    Scores,
    apply_noise_floor,
    compare_images,
    compare_masks,
    compare_ocr,
    error_outcome,
    evaluate,
    full_text,
    ocr_lines,
    polygon_iou,
    reading_order,
    rotated_rect_corners,
    ssim,
    thresholds_for,
)
from tests.harness import mapping


def family_of(action: str) -> str | None:
    """The action's comparison family, from its mapping (the one place that says it)."""
    spec = mapping(action).compare
    return spec.family if spec else None


def lines_of(action: str) -> str | None:
    """Where the action's answers carry their OCR lines, from its mapping."""
    spec = mapping(action).compare
    return spec.lines if spec else None

# (text, left, top, width, height) of horizontal lines
LINES = [
    ("Hello World 2024", 60, 60, 400, 40),
    ("中文识别测试：白板", 60, 200, 380, 44),
    ("fabrie 无边界AI白板", 60, 340, 420, 42),
]


def character(lines: Sequence[tuple[str, float, float, float, float]], angle: float = 0) -> dict[str, Any]:
    """A RecognizeCharacter answer; angle -90 gives Aliyun's other form (W and H swapped, same centre)."""
    results = []
    for text, left, top, w, h in lines:
        if angle == -90:
            cx, cy = left + w / 2, top + h / 2
            rect = {"Left": cx - h / 2, "Top": cy - w / 2, "Width": h, "Height": w, "Angle": -90}
        else:
            rect = {"Left": left, "Top": top, "Width": w, "Height": h, "Angle": angle}
        results.append({"TextRectangles": rect, "Text": text, "Probability": 0.99})
    return {"RequestId": "r", "Data": {"Results": results}}


def general(lines: Sequence[tuple[str, float, float, float, float]]) -> dict[str, Any]:
    """An ocr-api RecognizeGeneral answer: Data is a JSON string, pos the 4 corners clockwise from top-left."""
    words = [{"word": t, "prob": 99, "angle": 0, "x": x, "y": y, "width": w, "height": h,
              "pos": [{"x": x, "y": y}, {"x": x + w, "y": y}, {"x": x + w, "y": y + h}, {"x": x, "y": y + h}]}
             for t, x, y, w, h in lines]
    data = {"content": "".join(f"{w['word']} " for w in words), "prism_wnum": len(words), "prism_wordsInfo": words}
    return {"RequestId": "r", "Data": json.dumps(data, ensure_ascii=False)}


def kinds(scores: Scores) -> list[str]:
    return [d.kind for d in scores.differences]


# -- OCR ------------------------------------------------------------------------------------------------------

def test_identical_ocr_answers_agree_fully() -> None:
    lines = ocr_lines(lines_of("RecognizeCharacter"), character(LINES))
    s = compare_ocr(lines, lines)
    assert s.metrics["cer"] == 0
    assert s.metrics["f1"] == s.metrics["precision"] == s.metrics["recall"] == 1
    assert s.metrics["mean_iou"] == pytest.approx(1)
    assert s.differences == []


def test_missing_line_lowers_recall_and_is_listed() -> None:
    primary = ocr_lines(lines_of("RecognizeCharacter"), character(LINES))
    secondary = ocr_lines(lines_of("RecognizeCharacter"), character(LINES[:2]))
    s = compare_ocr(primary, secondary)
    assert s.metrics["recall"] == pytest.approx(2 / 3)
    assert s.metrics["precision"] == 1
    assert s.metrics["f1"] == pytest.approx(0.8)
    assert kinds(s) == ["missing"]
    assert s.differences[0].primary == LINES[2][0]
    # the lost line and its line break, over the primary's text
    lost = len("fabrie无边界AI白板") + 1
    assert s.metrics["cer"] == pytest.approx(lost / len(full_text(primary)))
    extra = compare_ocr(secondary, primary)
    assert kinds(extra) == ["extra"] and extra.metrics["precision"] == pytest.approx(2 / 3)


def test_box_moved_beyond_iou_is_shifted_not_missing_and_costs_f1_not_cer() -> None:
    moved = [LINES[0], ("中文识别测试：白板", 60 + 250, 200, 380, 44), LINES[2]]  # IoU 130/630 < 0.5
    s = compare_ocr(ocr_lines(lines_of("RecognizeCharacter"), character(LINES)),
                    ocr_lines(lines_of("RecognizeCharacter"), character(moved)))
    assert kinds(s) == ["box_shifted"]
    d = s.differences[0]
    assert d.shift_px == pytest.approx(250) and d.iou is not None and d.iou < 0.5
    assert "shifted by 250 px" in d.message
    assert s.metrics["cer"] == 0  # the text is all there, in the same order
    assert s.metrics["recall"] == pytest.approx(2 / 3)  # but a box-drawing app would be wrong there


def test_small_shift_within_iou_still_matches_and_is_reported_only_past_the_noise() -> None:
    nudged = [("Hello World 2024", 62, 61, 400, 40), *LINES[1:]]  # 2.2 px: rounding noise
    s = compare_ocr(ocr_lines(lines_of("RecognizeCharacter"), character(LINES)),
                    ocr_lines(lines_of("RecognizeCharacter"), character(nudged)))
    assert s.differences == [] and s.metrics["f1"] == 1
    shifted = [("Hello World 2024", 60, 70, 400, 40), *LINES[1:]]  # 10 px down: IoU 30/50
    s = compare_ocr(ocr_lines(lines_of("RecognizeCharacter"), character(LINES)),
                    ocr_lines(lines_of("RecognizeCharacter"), character(shifted)))
    assert kinds(s) == ["box_shifted"] and s.differences[0].shift_px == pytest.approx(10)
    assert s.metrics["f1"] == 1  # same place by IoU, same text


def test_one_different_character_raises_cer_by_one_over_the_reference_length() -> None:
    lines = [("abcdefghij", 10, 10, 200, 30), ("klmnopqrst", 10, 60, 200, 30)]
    changed = [("abcdefghij", 10, 10, 200, 30), ("klmnoPqrst", 10, 60, 200, 30)]
    prism = lines_of("RecognizeGeneral")
    s = compare_ocr(ocr_lines(prism, general(lines)), ocr_lines(prism, general(changed)))
    assert s.metrics["cer"] == pytest.approx(1 / len("abcdefghij\nklmnopqrst"))
    assert kinds(s) == ["text_changed"]
    assert s.differences[0].similarity == pytest.approx(0.9)
    assert s.metrics["f1"] == 1  # 90 % similar: found, and CER carries the character


def test_width_and_space_variants_are_not_differences() -> None:
    a = [("中文：白板 AI", 10, 10, 200, 30)]
    b = [("中文:白板AI", 10, 10, 200, 30)]  # half-width colon, no space
    prism = lines_of("RecognizeGeneral")
    s = compare_ocr(ocr_lines(prism, general(a)), ocr_lines(prism, general(b)))
    assert s.metrics["cer"] == 0 and s.differences == []


def test_recognize_character_and_ocr_api_parse_to_the_same_lines() -> None:
    for angle in (0, -90):
        rc = ocr_lines(lines_of("RecognizeCharacter"), character(LINES, angle))
        api = ocr_lines(lines_of("RecognizeGeneral"), general(LINES))
        assert [ln.text for ln in rc] == [ln.text for ln in api]
        for a, b in zip(rc, api, strict=True):
            assert a.bbox == pytest.approx(b.bbox, abs=1e-6)
            assert a.prob == pytest.approx(0.99) and b.prob == pytest.approx(0.99)
        s = compare_ocr(rc, api)
        assert s.metrics["f1"] == 1 and s.metrics["mean_iou"] == pytest.approx(1)


def test_real_capture_geometry_rotated_rect_matches_pos() -> None:
    """Q2's real ocr-api capture: angle -90, width 21, height 878, x 438, y -376 and its pos corners."""
    corners = rotated_rect_corners(438, -376, 21, 878, -90)
    pos = [(10, 52), (889, 51), (889, 73), (10, 74)]
    assert polygon_iou(corners, pos) > 0.9
    body = {"Data": {"Results": [{"Text": "B126", "TextRectangles": {
        "Top": "568.66717529296875", "Angle": -89.4033203125, "Height": "214.72618103027344",
        "Width": "29.135915756225586", "Left": "244.80532836914062"}}]}}  # Q1 capture B: floats as strings
    (line,) = ocr_lines(lines_of("RecognizeCharacter"), body)
    assert 655 < line.bbox[1] < line.bbox[3] < 695  # a horizontal lot number at y 660-692, not a tall box
    assert line.prob is None


def test_tilted_rect_rotates_about_its_centre() -> None:
    pts = rotated_rect_corners(0, 0, 100, 20, 90)
    assert pts[0] == pytest.approx((60, -40))  # top-left of the unrotated box turns to the top-right
    assert polygon_iou(rotated_rect_corners(0, 0, 100, 20, 30), rotated_rect_corners(0, 0, 100, 20, 30)) \
        == pytest.approx(1)
    assert polygon_iou(rotated_rect_corners(0, 0, 100, 20, 0), rotated_rect_corners(0, 0, 100, 20, 90)) \
        == pytest.approx(400 / 3600)


def test_reading_order_keeps_a_row_left_to_right() -> None:
    lines = ocr_lines(lines_of("RecognizeCharacter"), character([
        ("world", 300, 58, 100, 40), ("hello", 50, 62, 100, 40), ("next", 50, 140, 100, 40)]))
    assert [ln.text for ln in reading_order(lines)] == ["hello", "world", "next"]


def test_empty_answers() -> None:
    empty = compare_ocr([], [])
    assert empty.metrics["f1"] == 1 and empty.metrics["cer"] == 0
    lines = ocr_lines(lines_of("RecognizeBasic"), general(LINES))
    assert compare_ocr(lines, []).metrics["f1"] == 0
    assert compare_ocr([], lines).metrics["cer"] == 1
    with pytest.raises(ValueError):
        ocr_lines(None, {})


# -- Matting --------------------------------------------------------------------------------------------------

def _mask(box: tuple[int, int, int, int], size: tuple[int, int] = (200, 160)) -> Image.Image:
    img = Image.new("L", size, 0)
    ImageDraw.Draw(img).ellipse(box, fill=255)
    return img


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_masks_identical_eroded_and_shifted() -> None:
    ref = _mask((40, 20, 160, 140))
    same = compare_masks(_png(ref), _png(ref))
    assert same.metrics["iou"] == 1 and same.metrics["mad"] == 0
    eroded = compare_masks(_png(ref), _png(_mask((50, 30, 150, 130))))
    shifted = compare_masks(_png(ref), _png(_mask((70, 20, 190, 140))))
    for worse in (eroded, shifted):
        assert 0.5 < worse.metrics["iou"] < 0.8
        assert worse.metrics["mad"] > 0.05
    assert eroded.metrics["iou"] == pytest.approx((100 / 120) ** 2, abs=0.02)


def test_mask_forms_read_the_same_foreground() -> None:
    ref = _mask((40, 20, 160, 140))
    photo = Image.new("RGB", ref.size, (30, 90, 160))
    rgba = photo.copy()
    rgba.putalpha(ref)
    white = Image.composite(photo, Image.new("RGB", ref.size, "white"), ref)
    s = compare_masks(_png(ref), _png(rgba))
    assert s.metrics["iou"] == 1 and "alpha channel" in s.notes[1]
    s = compare_masks(_png(ref), _png(white))
    assert s.metrics["iou"] > 0.99 and "non-white" in s.notes[1]
    half = compare_masks(_png(ref), _png(ref.resize((100, 80))))  # another resolution: resized, still the same
    assert half.metrics["iou"] > 0.97 and any("resized" in n for n in half.notes)


# -- Super-resolution -----------------------------------------------------------------------------------------

def _picture(size: tuple[int, int] = (256, 192)) -> Image.Image:
    img = Image.new("RGB", size, (240, 235, 225))
    draw = ImageDraw.Draw(img)
    for i in range(0, size[0], 16):
        draw.line([(i, 0), (size[0] - i, size[1])], fill=(20 + i % 200, 60, 120), width=2)
    draw.ellipse((60, 40, 180, 160), outline=(200, 30, 30), width=5)
    return img


def test_identical_images_have_capped_psnr_and_ssim_one() -> None:
    png = _png(_picture())
    s = compare_images(png, png)
    assert s.metrics["size_equal"] == 1
    assert s.metrics["psnr"] == 100  # infinite, capped so records stay JSON
    assert s.metrics["ssim"] == pytest.approx(1)


def test_blurred_image_scores_lower() -> None:
    img = _picture()
    soft = compare_images(_png(img), _png(img.filter(ImageFilter.GaussianBlur(1))))
    blurred = compare_images(_png(img), _png(img.filter(ImageFilter.GaussianBlur(3))))
    assert 10 < blurred.metrics["psnr"] < soft.metrics["psnr"] < 100
    assert blurred.metrics["ssim"] < soft.metrics["ssim"] < 0.99
    assert blurred.metrics["ssim"] < 0.85


def test_size_mismatch_is_flagged_and_aligned() -> None:
    img = _picture()
    s = compare_images(_png(img), _png(img.resize((128, 96), Image.Resampling.LANCZOS)))
    assert s.metrics["size_equal"] == 0 and s.metrics["ssim"] > 0.5
    assert "second resized to first" in s.notes[0]


def test_ssim_known_values() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (64, 64)).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1)
    assert ssim(a, 255 - a) < 0  # anti-correlated structure
    assert 0.9 < ssim(a, np.clip(a.astype(int) + 5, 0, 255).astype(np.uint8)) < 1  # a brightness offset


# -- Verdicts -------------------------------------------------------------------------------------------------

def test_thresholds_give_mismatched_with_the_failed_names() -> None:
    s = Scores("ocr", {"cer": 0.2, "f1": 0.95})
    out = evaluate(s, {"f1": {"min": 0.9}, "cer": {"max": 0.1}})
    assert out.outcome == "mismatched" and out.failed == ["cer"]
    assert out.reasons == ["cer 0.2 > max 0.1"]
    assert evaluate(Scores("ocr", {"cer": 0.05, "f1": 0.95}), DEFAULT_THRESHOLDS["ocr"]).outcome == "matched"
    missing = evaluate(Scores("ocr", {"cer": 0.0}), {"f1": {"min": 0.9}})
    assert missing.failed == ["f1"]
    nan = evaluate(Scores("super_resolution", {"ssim": math.nan}), {"ssim": {"min": 0.5}})
    assert nan.outcome == "mismatched"


def test_error_outcomes() -> None:
    assert error_outcome(200, {"Data": {}}, 200, {"Data": {}}) is None
    out = error_outcome(200, {"Data": {}}, 503, {"Code": "ServiceUnavailable"})
    assert out is not None and out.outcome == "error" and out.failed == ["secondary_error"]
    both = error_outcome(400, {"Code": "InvalidImage.Format"}, 400, {"Code": "InvalidImage.Format"})
    assert both is not None and both.failed == ["primary_error", "secondary_error"]
    assert both.reasons == ["both failed with InvalidImage.Format"]
    assert error_outcome(200, {"Code": "Throttling", "Message": "x"}, 200, {}) is not None


def test_noise_floor_excuses_only_failures_aliyun_shows_against_itself() -> None:
    thresholds = {"f1": {"min": 0.9}, "cer": {"max": 0.1}}
    raw = Scores("ocr", {"f1": 0.8, "cer": 0.3})
    out = evaluate(raw, thresholds)
    assert out.failed == ["f1", "cer"]
    noisy = Scores("ocr", {"f1": 0.8, "cer": 0.1})  # Aliyun vs Aliyun: f1 as low, cer better
    partly = apply_noise_floor(out, thresholds, noise=noisy, raw=raw)
    assert partly.outcome == "mismatched" and partly.failed == ["cer"] and partly.within_noise == ["f1"]
    noisier = Scores("ocr", {"f1": 0.75, "cer": 0.35})
    fully = apply_noise_floor(out, thresholds, noise=noisier, raw=raw)
    assert fully.outcome == "ignored" and fully.failed == [] and fully.within_noise == ["f1", "cer"]
    matched = evaluate(Scores("ocr", {"f1": 1.0, "cer": 0.0}), thresholds)
    assert apply_noise_floor(matched, thresholds, noisier, raw) is matched


def test_families_and_default_thresholds() -> None:
    assert family_of("RecognizeAdvanced") == "ocr"
    assert family_of("SegmentHDCommonImage") == "matting"
    assert family_of("GenerateSuperResolutionImage") == "super_resolution"
    assert family_of("GetAsyncJobResult") is None
    assert thresholds_for(family_of("GetAsyncJobResult")) == {}
    t = thresholds_for(family_of("SegmentBody"))
    t["iou"]["min"] = 0  # a copy: the defaults stay
    assert DEFAULT_THRESHOLDS["matting"]["iou"]["min"] == 0.9


def test_all_text_blocks_by_points_rectangle_or_no_place() -> None:
    """RecognizeAllText's blocks: corners from BlockPoints or from BlockRect (centre and sides) agree, and a
    block without coordinates has no place, so it cannot be matched by position."""
    text, x, y, w, h = LINES[0]

    def answer(block: dict[str, Any]) -> dict[str, Any]:
        return {"Data": {"SubImages": [{"BlockInfo": {"BlockDetails": [
            {"BlockContent": text, "BlockConfidence": 97, "BlockAngle": 0, **block}]}}]}}

    shape = lines_of("RecognizeAllText")
    points = answer({"BlockPoints": [{"X": x, "Y": y}, {"X": x + w, "Y": y}, {"X": x + w, "Y": y + h},
                                     {"X": x, "Y": y + h}]})
    rect = answer({"BlockRect": {"CenterX": x + w / 2, "CenterY": y + h / 2, "Width": w, "Height": h}})
    (a,), (b,), (c,) = ocr_lines(shape, points), ocr_lines(shape, rect), ocr_lines(shape, answer({}))
    assert a.text == text and a.prob == 0.97 and a.bbox == (x, y, x + w, y + h)
    assert polygon_iou(a.poly, b.poly) > 0.99
    assert c.bbox == (0, 0, 0, 0)
    assert compare_ocr([a], [b]).metrics["f1"] == 1.0
