"""The shadow HTML report, rendered in headless Chromium (the record store itself: tests/test_record_store.py).

A small store of synthetic records for each family (OCR, matting, super-resolution, plus errors) is built
with the real comparators, rendered, opened in Chromium, and checked on the DOM Chromium built; the
screenshot is kept in tests/artifacts/shadow-report.png for a human look.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from proxy.cli import main as cli_main
from proxy.shadow.compare import (
    compare_images,
    compare_masks,
    compare_ocr,
    error_outcome,
    evaluate,
    ocr_lines,
    thresholds_for,
)
from proxy.shadow.records import Record, RecordStore
from proxy.shadow.report import histogram_svg, percentile, render_report
from tests.harness import mapping

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = shutil.which("fc-match") and subprocess.run(
        ["fc-match", "-f", "%{file}", "WenQuanYi Zen Hei"], capture_output=True, text=True).stdout
    if path and "wqy" in path.lower():
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


# -- synthetic records ------------------------------------------------------------------------------------

OCR_TEXT = [("Invoice No. 2024-0117", 40, 30), ("中文识别测试：白板", 40, 110), ("Total amount 1,280.00", 40, 190),
            ("Thank you for your order", 40, 270)]


def _ocr_input() -> tuple[bytes, list[tuple[str, int, int, int, int]]]:
    img = Image.new("RGB", (720, 340), (252, 250, 244))
    draw = ImageDraw.Draw(img)
    font = _font(40)
    boxes = []
    for text, x, y in OCR_TEXT:
        draw.text((x, y), text, fill=(25, 25, 35), font=font)
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        boxes.append((text, round(left) - 4, round(top) - 4, round(right - left) + 8, round(bottom - top) + 8))
    return _png(img, "JPEG"), boxes


def _character(lines: list[tuple[str, int, int, int, int]]) -> dict[str, Any]:
    return {"RequestId": "A-1", "Data": {"Results": [
        {"Text": t, "Probability": 0.98, "TextRectangles": {"Left": x, "Top": y, "Width": w, "Height": h, "Angle": 0}}
        for t, x, y, w, h in lines]}}


def _general(lines: list[tuple[str, int, int, int, int]]) -> dict[str, Any]:
    words = [{"word": t, "prob": 97, "angle": 0, "x": x, "y": y, "width": w, "height": h,
              "pos": [{"x": x, "y": y}, {"x": x + w, "y": y}, {"x": x + w, "y": y + h}, {"x": x, "y": y + h}]}
             for t, x, y, w, h in lines]
    return {"RequestId": "B-1", "Data": json.dumps({"prism_wordsInfo": words, "width": 720, "height": 340})}


def _ocr_record(action: str, secondary_lines: list[tuple[str, int, int, int, int]],
                primary_lines: list[tuple[str, int, int, int, int]], rng: random.Random) -> Record:
    shape = _character if action == "RecognizeCharacter" else _general
    p_body, s_body = shape(primary_lines), shape(secondary_lines)
    spec = mapping(action)
    assert spec.compare is not None
    scores = compare_ocr(ocr_lines(spec.compare.lines, p_body), ocr_lines(spec.compare.lines, s_body))
    thresholds = thresholds_for(spec.compare.family)
    product = "ocr" if action == "RecognizeCharacter" else "ocr-api"
    return Record.build(action=action, product=product, mode="shadow", outcome=evaluate(scores, thresholds),
                        scores=scores, thresholds=thresholds, primary=(200, p_body), secondary=(200, s_body),
                        latency_ms=(rng.uniform(300, 700), rng.uniform(150, 900)), compare=spec.compare)


def _person(size: tuple[int, int], dx: int = 0, grow: int = 0) -> Image.Image:
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    w, h = size
    draw.ellipse((w // 2 - 45 + dx - grow, 40 - grow, w // 2 + 45 + dx + grow, 130 + grow), fill=255)
    draw.rounded_rectangle((w // 2 - 85 + dx - grow, 120 - grow, w // 2 + 85 + dx + grow, h + 20), 50, fill=255)
    return mask.filter(ImageFilter.GaussianBlur(2))


def _photo(size: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", size, (120, 170, 210))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, size[1] * 2 // 3, size[0], size[1]), fill=(90, 140, 80))
    person = Image.new("RGB", size, (230, 180, 150))
    ImageDraw.Draw(person).rectangle((0, 120, size[0], size[1]), fill=(200, 60, 70))
    return Image.composite(person, img, _person(size))


def _sr_source() -> Image.Image:
    img = Image.new("RGB", (160, 120), (245, 240, 228))
    draw = ImageDraw.Draw(img)
    for i in range(0, 160, 10):
        draw.line([(i, 0), (160 - i, 120)], fill=(30 + i, 80, 150), width=1)
    draw.ellipse((40, 20, 120, 100), outline=(200, 40, 40), width=3)
    draw.text((50, 52), "SR x2", fill=(10, 10, 10), font=_font(16))
    return img


def build_store(root: Path) -> RecordStore:
    """Records of each family: a few that agree, a few that do not, and errors."""
    rng = random.Random(7)
    store = RecordStore(root)
    ocr_png, lines = _ocr_input()
    changed = [(t.replace("1,280.00", "1,288.00"), x, y, w, h) for t, x, y, w, h in lines]
    moved = [(t, x + (120 if i == 3 else 0), y + (4 if i == 1 else 0), w, h) for i, (t, x, y, w, h) in enumerate(lines)]
    for action in ("RecognizeCharacter", "RecognizeGeneral"):
        for _ in range(4):
            store.add(_ocr_record(action, lines, lines, rng), {"input": ocr_png})
        for variant in (lines[:3], changed, [*moved[:3], ("Thank you", 40, 270, 120, 40)]):
            store.add(_ocr_record(action, variant, lines, rng), {"input": ocr_png})
    # matting: the AWS side shifted or grown on some
    size = (320, 360)
    photo = _png(_photo(size), "JPEG")
    aliyun = _person(size)
    for dx, grow in ((0, 0), (2, 0), (0, 1), (40, 0), (0, 18)):
        aws = Image.open(io.BytesIO(photo)).convert("RGB")
        aws.putalpha(_person(size, dx, grow))  # AWS returns an RGBA cut-out, Aliyun the mask form
        p_png, s_png = _png(aliyun), _png(aws)
        scores = compare_masks(p_png, s_png)
        thresholds = thresholds_for("matting")
        body = {"Data": {"ImageURL": "https://viapi.oss/x.png?Expires=1&OSSAccessKeyId=LTAI5t&Signature=abc%3D"}}
        store.add(Record.build(action="SegmentBody", product="imageseg", mode="shadow",
                               outcome=evaluate(scores, thresholds), scores=scores, thresholds=thresholds,
                               compare=mapping("SegmentBody").compare,
                               primary=(200, body), secondary=(200, body), latency_ms=(rng.uniform(800, 1500),
                               rng.uniform(600, 2500))),
                  {"input": photo, "primary": p_png, "secondary": s_png})
    # super-resolution in reverse-shadow (AWS serves, so AWS is primary): Aliyun as sharp, or blurred
    src = _sr_source()
    aws_big = src.resize((320, 240), Image.Resampling.LANCZOS)
    for blur in (0.0, 0.4, 2.5):
        aliyun_big = src.resize((320, 240), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(blur))
        p_png, s_png = _png(aws_big), _png(aliyun_big)
        scores = compare_images(p_png, s_png)
        thresholds = thresholds_for("super_resolution")
        store.add(Record.build(action="MakeSuperResolutionImage", product="imageenhan", mode="reverse-shadow",
                               outcome=evaluate(scores, thresholds), scores=scores, thresholds=thresholds,
                               compare=mapping("MakeSuperResolutionImage").compare,
                               primary=(200, {"Data": {"Url": "u"}}), secondary=(200, {"Data": {"Url": "u"}}),
                               latency_ms=(rng.uniform(1500, 3000), rng.uniform(2000, 6000))),
                  {"input": _png(src), "primary": p_png, "secondary": s_png})
    # errors
    for code in ("ServiceUnavailable", "ServiceUnavailable", "InvalidImage.Format"):
        status = 503 if code == "ServiceUnavailable" else 400
        err = error_outcome(200, {"Data": {}}, status, {"Code": code})
        assert err is not None
        store.add(Record.build(action="RecognizeCharacter", product="ocr", mode="shadow", outcome=err,
                               compare=mapping("RecognizeCharacter").compare,
                               primary=(200, {"Data": {"Results": []}}), secondary=(status, {"Code": code}),
                               latency_ms=(420.0, 9000.0)))
    return store


def test_helpers() -> None:
    assert percentile([], 50) is None
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 101)), 95) == 95
    svg = histogram_svg([0.1, 0.95, 0.97, 1.0], 0, 1, {"min": 0.9}, "f1")
    assert svg.count("<rect") == 10 and svg.count('class="bar bad"') == 9 and 'class="thr"' in svg


# -- the report in Chromium -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                       capture_output=True, timeout=900)
        exe = shutil.which("chromium")
    if not exe:
        pytest.skip("Chromium is not installed and cannot be (Debian package `chromium`, needs root and apt)")
    return exe


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RecordStore, Path]]:
    root = tmp_path_factory.mktemp("shadow")
    store = build_store(root / "store")
    out = root / "report.html"
    assert cli_main(["report", "--store", str(store.root), "--out", str(out)]) == 0
    yield store, out


class _Dom(HTMLParser):
    """The bits of Chromium's DOM the assertions look at."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.cases: list[dict[str, Any]] = []
        self.sections: list[str] = []
        self._row: str | None = None
        self._cell: str | None = None
        self._fig: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-action" in a:
            self._row = a["data-action"]
            self.rows[self._row] = {}
        elif tag == "td" and self._row and "data-outcome" in a:
            self._cell = a["data-outcome"]
        elif tag == "section" and "data-action" in a:
            self.sections.append(a["data-action"])
        elif tag == "article" and "data-record" in a:
            self.cases.append({"section": self.sections[-1], "outcome": a["data-outcome"], "images": []})
        elif tag == "figure" and self.cases:
            self._fig = a.get("class", "")
        elif tag == "img" and self.cases and self._fig is not None:
            self.cases[-1]["images"].append((self._fig, a.get("alt"), a.get("data-natural", ""),
                                             a.get("src", "")[:22]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "figure":
            self._fig = None

    def handle_data(self, data: str) -> None:
        if self._row and self._cell:
            self.rows[self._row][self._cell] = data.strip()


def _run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


def test_report_renders_in_chromium(chromium: str, rendered: tuple[RecordStore, Path],
                                    tmp_path: Path) -> None:
    store, out = rendered
    html_text = out.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html_text), "the report must not load anything"
    # A test-only copy that notes each image's decoded size in the DOM (the report itself has no script).
    probe = tmp_path / "probe.html"
    probe.write_text(html_text.replace("</body>", "<script>window.addEventListener('load',()=>{for(const i of "
                                       "document.images)i.dataset.natural=i.naturalWidth+'x'+i.naturalHeight})"
                                       "</script></body>"))
    dom = _run_chromium(chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Dom()
    parsed.feed(dom.stdout)

    rows = parsed.rows
    assert list(rows) == ["RecognizeCharacter", "RecognizeGeneral", "SegmentBody", "MakeSuperResolutionImage"]
    counts = {a: {o: int(v) for o, v in r.items()} for a, r in rows.items()}
    expected = {a: {"total": 0, "matched": 0, "ignored": 0, "mismatched": 0, "error": 0} for a in rows}
    for r in store.records():
        expected[r.action]["total"] += 1
        expected[r.action][r.outcome] += 1
    assert counts == expected
    # missing line and moved line mismatch; one changed digit in 80 characters stays within the thresholds
    assert counts["RecognizeCharacter"]["error"] == 3 and counts["RecognizeCharacter"]["mismatched"] == 2
    assert counts["SegmentBody"]["mismatched"] >= 2 and counts["SegmentBody"]["matched"] >= 2

    assert parsed.sections == list(rows)
    by_section: dict[str, list[dict[str, Any]]] = {}
    for case in parsed.cases:
        by_section.setdefault(case["section"], []).append(case)
    assert [c["outcome"] for c in by_section["RecognizeCharacter"]] == ["mismatched", "mismatched"]
    for section, cases in by_section.items():
        for case in cases:
            assert case["images"], f"{section}: a worst case without pictures"
            for _, alt, natural, src in case["images"]:
                assert src.startswith("data:image/"), alt
                width, height = (int(v) for v in natural.split("x"))
                assert width > 50 and height > 50, f"{section}: {alt} did not decode ({natural})"
    worst_matting = by_section["SegmentBody"][0]
    classes = [fig for fig, *_ in worst_matting["images"]]
    assert classes == ["input", "aliyun", "aws", "diff"]  # both masks side by side, and where they differ
    worst_sr = by_section["MakeSuperResolutionImage"][0]
    assert {"aws", "aliyun"} <= {fig for fig, *_ in worst_sr["images"]}
    assert "Aliyun boxes (red) and AWS boxes (blue)" in by_section["RecognizeGeneral"][0]["images"][0][1]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "shadow-report.png"
    shot.unlink(missing_ok=True)
    run = _run_chromium(chromium, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1400,2000",
                        "--hide-scrollbars", out.as_uri())
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1400, 2000)
        assert len(set(img.convert("RGB").resize((50, 50)).getdata())) > 20  # not a blank page
    shutil.copy(out, ARTIFACTS / "shadow-report.html")


def test_report_of_an_empty_store(tmp_path: Path) -> None:
    page = render_report(RecordStore(tmp_path))
    assert "The store holds no records yet." in page
    assert cli_main(["report", "--store", str(tmp_path / "absent"), "--out", str(tmp_path / "r.html")]) == 2


def test_an_action_with_only_errors_keeps_its_family(tmp_path: Path) -> None:
    """The family comes from the action's mapping when the record is made, not from scores, so a failed
    comparison is still filed under its family (before, an error-only action read "not compared")."""
    store = RecordStore(tmp_path)
    err = error_outcome(200, {"Data": {}}, 503, {"Code": "ServiceUnavailable"})
    assert err is not None
    store.add(Record.build(action="SegmentHDBody", product="imageseg", mode="shadow", outcome=err,
                           primary=(200, {"Data": {}}), secondary=(503, {"Code": "ServiceUnavailable"}),
                           compare=mapping("SegmentHDBody").compare))
    (record,) = store.records()
    assert record.family == "matting" and record.lines is None
    page = render_report(store)
    assert "imageseg · Matting" in page and "not compared" not in page
