"""The go/no-go report from real records: a reverse-shadow run through the real SDK against the fake Aliyun
(tests/fake_aliyun.py) with matches, a mismatch (Aliyun misses a line) and an error (Aliyun fails), rendered
by `vision-proxy report` and opened in headless Chromium; the checks read the DOM Chromium built."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from proxy.cli import main as cli_main
from proxy.shadow.records import STORE_SUBDIR
from tests.test_report import _run_chromium, chromium  # noqa: F401 - the fixture, shared
from tests.test_shadow import aliyun, recognize, shadow_proxy, wait_for_records  # noqa: F401 - fixture too


class _Marked(HTMLParser):
    """Text inside each element carrying one of the attributes the report marks its parts with."""

    MARKS = ("data-verdict", "data-side", "data-record", "id")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, dict[str, str], list[str]]] = []
        self._open: list[tuple[str, int]] = []  # (tag, index into found) for marked elements still open
        self._depth: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("br", "img", "meta", "input", "hr", "link"):
            return
        self._depth.append(tag)
        if any(m in a for m in self.MARKS):
            self.found.append((tag, a.get("class", ""), a, []))
            self._open.append((tag, len(self._depth), len(self.found) - 1))  # type: ignore[arg-type]

    def handle_endtag(self, tag: str) -> None:
        if not self._depth:
            return
        depth = len(self._depth)
        self._open = [o for o in self._open if o[1] < depth]  # type: ignore[misc]
        self._depth.pop()

    def handle_data(self, data: str) -> None:
        for *_, index in self._open:  # type: ignore[misc]
            self.found[index][3].append(data)

    def text(self, **attrs: str) -> list[str]:
        return [" ".join("".join(t).split()) for _, _, a, t in self.found
                if all(a.get(k) == v for k, v in attrs.items())]

    def marked(self, attr: str) -> list[dict[str, Any]]:
        return [{**a, "text": " ".join("".join(t).split())} for _, _, a, t in self.found if attr in a]


@pytest.fixture(scope="module")
def report(aliyun, images, tmp_path_factory, monkeypatch_module) -> Path:  # noqa: F811
    data = tmp_path_factory.mktemp("verdict")
    proxy = shadow_proxy(aliyun, data, shadow_mode="reverse-shadow")
    try:
        for done, flaw in enumerate((None, None, "missing-line", "error"), 1):
            aliyun.flaw = flaw
            recognize(proxy, images)
            wait_for_records(proxy, done)
    finally:
        aliyun.flaw = None
        proxy.close()
    monkeypatch_module.setenv("VISION_PROXY_SHADOW_VERDICT_MIN_SAMPLES", "2")
    out = data / "report.html"
    assert cli_main(["report", "--store", str(data / STORE_SUBDIR), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_report_shows_verdicts_sides_and_every_failing_case(chromium, report, images, aliyun, tmp_path):  # noqa: F811
    dom = _run_chromium(chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _Marked()
    page.feed(dom.stdout)

    verdicts = {v["data-scope"]: v for v in page.marked("data-scope")}
    # 2 matched, 1 mismatched: agreement 67 % is under 95 %, so NO-GO, and the criteria are printed beside it
    assert verdicts["RecognizeCharacter"]["data-verdict"] == "NO-GO", verdicts
    assert verdicts["overall"]["data-verdict"] == "NO-GO"
    criteria = verdicts["RecognizeCharacter"]["text"]
    assert "agreement 66.7%" in criteria and "needs ≥ 95.0%" in criteria, criteria
    assert "samples 3" in criteria and "error rate 25.0%" in criteria, criteria

    sides = {s["data-side"]: s["text"] for s in page.marked("data-side")}
    assert sides["aws"] == "embedded demo models — not the kit", sides
    assert sides["aliyun"] == f"Aliyun {aliyun.base_url}", sides
    assert "not the kit" in " ".join(page.text(id="embedded-warning"))
    assert page.text(id="sample-rate") == ["100%"] and "→" in page.text(id="span")[0]

    failing = [r for r in page.marked("data-record") if r.get("class") == "failing"]
    assert sorted(r["data-outcome"] for r in failing) == ["error", "mismatched"], failing
    for row in failing:
        assert f"{images.url}/text.png" in row["text"], row  # the image
        assert "AWS: HTTP 200" in row["text"] and "ms" in row["text"], row  # both sides, both latencies
    error = next(r for r in failing if r["data-outcome"] == "error")
    assert "Aliyun: HTTP 500 · InternalError: boom" in error["text"] and "secondary failed" in error["text"], error
    mismatch = next(r for r in failing if r["data-outcome"] == "mismatched")
    assert "f1 " in mismatch["text"] and "Aliyun: HTTP 200" in mismatch["text"], mismatch
    # each score says what it measures and which way is better, under the histograms and in the case tables
    assert dom.stdout.count("character error rate of the whole text") >= 2
    assert "higher is better" in dom.stdout


def test_coinciding_boxes_show_both_colours() -> None:
    """Where Aliyun's and AWS's boxes coincide exactly, both colours stay visible (a band inside a band)."""
    from PIL import Image

    from proxy.shadow.compare import Line
    from proxy.shadow.report import ALIYUN_RGB, AWS_RGB, ocr_overlay

    box = Line("same", 0.9, ((40.0, 40.0), (360.0, 40.0), (360.0, 120.0), (40.0, 120.0)), (40, 40, 360, 120))
    drawn = ocr_overlay(Image.new("RGB", (400, 160), "white"), [box], [box], (ALIYUN_RGB, AWS_RGB))
    colours = set(drawn.getdata())
    assert ALIYUN_RGB in colours and AWS_RGB in colours
