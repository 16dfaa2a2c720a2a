"""Tilted text through real SDKs, the proxy and the embedded backend, which writes `location` exactly as
the kit does (the diagonal of each line's quad: a negative height for a line rising to the right)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException
from PIL import Image

from tests import imagegen, sdk
from tests.harness import AppServer, ProxyServer, serve_files

BOARD = [(text, x, y, imagegen.FONT_SIZE) for text, x, y in imagegen.LINES]
SMALL = ("small print 12345", 60, 430, 20)  # a thin line under the three big ones
ANGLES = (12, -12)  # counter-clockwise: rising to the right, then falling


def _norm(text: str) -> str:
    return text.replace(" ", "")


@pytest.fixture(scope="module")
def boards() -> dict[str, tuple[bytes, list[tuple[str, float, float]]]]:
    made = {f"/tilt{a}.png": imagegen.board(BOARD, imagegen.SIZE, angle=a) for a in ANGLES}
    made |= {f"/thin{a}.png": imagegen.board([*BOARD, SMALL], (1000, 480), angle=a) for a in ANGLES}
    for a in ANGLES:  # the same boards as photos: a JPEG's tilt is read from its grey channel alone
        png, drawn = made[f"/tilt{a}.png"]
        out = io.BytesIO()
        Image.open(io.BytesIO(png)).convert("RGB").save(out, "JPEG", quality=85)
        made[f"/tilt{a}.jpg"] = (out.getvalue(), drawn)
    return made


@pytest.fixture(scope="module")
def files(boards) -> Iterator[AppServer]:
    thin = imagegen.board([("thin strip 2024", 10, 2, 20)], (2000, 30))[0]
    with serve_files({path: data for path, (data, _) in boards.items()}
                     | {"/notimage.txt": b"plain text\n" * 9, "/thin.png": thin}) as server:
        yield server


def _centres_match(found: list[tuple[str, float, float]], drawn: list[tuple[str, float, float]]) -> None:
    """Every drawn line is read, with its centre within 5 px of where it was drawn."""
    by_text = {_norm(text): (cx, cy) for text, cx, cy in found}
    for text, cx, cy in drawn:
        assert _norm(text) in by_text, f"{text!r} not in {list(by_text)}"
        fx, fy = by_text[_norm(text)]
        assert math.hypot(fx - cx, fy - cy) <= 5, f"{text!r}: centre ({fx:.0f}, {fy:.0f}), drawn ({cx:.0f}, {cy:.0f})"


@pytest.mark.parametrize("ext", ["png", "jpg"])
@pytest.mark.parametrize("angle", ANGLES)
def test_recognize_character_keeps_every_tilted_line(proxy, files, boards, angle, ext):
    resp = sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{files.url}/tilt{angle}.{ext}", min_height=10, output_probability=True))
    results = resp.body.data.results
    found = []
    for r in results:
        box = r.text_rectangles
        assert box.width > 0 and box.height > 0
        assert box.width > 5 * box.height and 30 <= box.height <= 80  # length and thickness, not a bounding box
        assert box.angle == -angle  # clockwise positive: a line rising to the right has a negative angle
        found.append((r.text, box.left + box.width / 2, box.top + box.height / 2))
    _centres_match(found, boards[f"/tilt{angle}.{ext}"][1])


def _general(proxy: ProxyServer, source: str, url: str, data: bytes) -> dict[str, Any]:
    client = sdk.ocr_api(proxy.endpoint)
    request = api_models.RecognizeGeneralRequest(url=url) if source == "url" else \
        api_models.RecognizeGeneralRequest(body=io.BytesIO(data))
    return json.loads(client.recognize_general(request).body.data)


@pytest.mark.parametrize("source", ["url", "body"])
@pytest.mark.parametrize("angle", ANGLES)
def test_ocr_api_tilted_words(proxy, files, boards, angle, source):
    data, drawn = boards[f"/tilt{angle}.png"]
    words = _general(proxy, source, f"{files.url}/tilt{angle}.png", data)["prism_wordsInfo"]
    found = []
    for w in words:
        assert w["width"] > 0 and w["height"] > 0 and w["angle"] == -angle
        corners = [(p["x"], p["y"]) for p in w["pos"]]
        cx, cy = sum(x for x, _ in corners) / 4, sum(y for _, y in corners) / 4
        # pos runs clockwise from the text's top-left: top edge along the text, at the reported angle
        (x0, y0), (x1, y1), (x2, y2), _ = corners
        assert math.isclose(math.degrees(math.atan2(y1 - y0, x1 - x0)), -angle, abs_tol=1.5)
        assert (x1 - x0) * (y2 - y1) - (y1 - y0) * (x2 - x1) > 0  # clockwise on screen (y down)
        assert abs(w["x"] + w["width"] / 2 - cx) <= 1.5 and abs(w["y"] + w["height"] / 2 - cy) <= 1.5
        found.append((w["word"], cx, cy))
    _centres_match(found, drawn)


@pytest.mark.parametrize("angle", ANGLES)
def test_min_height_filters_thin_lines_when_tilted(proxy, files, boards, angle):
    client = sdk.ocr(proxy.endpoint)

    def read(min_height: int) -> list[str]:
        resp = client.recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{files.url}/thin{angle}.png", min_height=min_height, output_probability=False))
        return [_norm(r.text) for r in resp.body.data.results]

    everything, big_only = read(10), read(40)
    assert _norm(SMALL[0]) in everything and _norm(SMALL[0]) not in big_only
    for text, _, _, _ in BOARD:
        assert _norm(text) in everything and _norm(text) in big_only


@pytest.fixture(scope="module")
def pass_url_proxy() -> Iterator[ProxyServer]:
    with ProxyServer(caller_keys="testid:testsecret", image_mode="pass-url", fetch_allow="127.0.0.1/32") as server:
        yield server


def test_pass_url_mode_tilted_lines_have_their_centres(pass_url_proxy, files, boards):
    """The kit fetches the image itself, so the proxy has only the diagonal: the right centre and a level
    box with non-negative sides."""
    words = _general(pass_url_proxy, "url", f"{files.url}/tilt12.png", b"")["prism_wordsInfo"]
    found = []
    for w in words:
        assert w["width"] >= 0 and w["height"] >= 0 and w["angle"] == 0
        found.append((w["word"], w["x"] + w["width"] / 2, w["y"] + w["height"] / 2))
    _centres_match(found, boards["/tilt12.png"][1])


@pytest.mark.parametrize(("path", "code"), [
    ("/notimage.txt", "InvalidImage.Format"),  # downloaded, but no image: the kit's same `url` illegal
    ("/missing.png", "InvalidImage.Download"),  # 404
])
def test_pass_url_mode_tells_download_from_format(pass_url_proxy, files, path, code):
    with pytest.raises(ClientException) as exc:
        sdk.ocr(pass_url_proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{files.url}{path}", min_height=10, output_probability=False))
    assert (exc.value.code, exc.value.status_code) == (code, 400)


def test_shapes_the_kits_detector_crashes_on_are_widened(proxy, files):
    """16 px high, or 30 px high and 2000 wide (under 17 px once scaled to 960): the kit's Lambda would crash
    (API Gateway's 502, the caller's InternalError). The proxy widens the thin side with the image's own
    background, at the bottom, so no coordinate moves."""
    resp = sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{files.url}/thin.png", min_height=5, output_probability=False))
    assert [_norm(r.text) for r in resp.body.data.results] == [_norm("thin strip 2024")]
    box = resp.body.data.results[0].text_rectangles
    assert box.top + box.height <= 30 and box.left < 40
    data = json.loads(sdk.ocr_api(proxy.endpoint).recognize_general(api_models.RecognizeGeneralRequest(
        body=io.BytesIO(imagegen.blank_image(800, 16)))).body.data)
    assert (data["prism_wnum"], data["width"], data["height"]) == (0, 800, 16)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "LA", "I;16"])
def test_the_tilts_grey_is_pillows_grey_whoever_decodes_it(mode: str) -> None:
    """libspng decodes 8-bit PNGs for the tilt (3x less CPU); the grey must still be Pillow's to the bit,
    and a 16-bit PNG (which the two would grey differently) stays with Pillow."""
    import numpy as np

    from proxy.actions.ocr_geometry import _png_grey, grey_for_tilt

    rng = np.random.default_rng(7)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, (90, 120), dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).convert(mode)
    out = io.BytesIO()
    img.save(out, "PNG")
    data = out.getvalue()
    pixels, scale = grey_for_tilt(data)
    assert scale == 1.0
    assert np.array_equal(pixels, np.asarray(Image.open(io.BytesIO(data)).convert("L")))
    assert (_png_grey(data) is None) == (mode == "I;16")
