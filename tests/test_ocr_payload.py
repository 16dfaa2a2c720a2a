"""Images past the kit's payload budget (a 6,291,456-byte Lambda event, so ~4.7 MB of raw image once
base64 and JSON are added) still read through real SDKs, the proxy and the embedded backend, which
enforces that limit as API Gateway and Lambda do: re-encoded, shrunk only if need be, and every box in
the caller's own pixels."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_ocr_api20210707.client import Client as OcrApiClient
from alibabacloud_tea_openapi.exceptions import ClientException

from proxy.config import KitLimits
from proxy.kit import budget
from tests import imagegen, sdk
from tests.harness import AppServer, ProxyServer, serve_files

TEXTS = ["Hello World 2024 OCR test", "中文识别测试：白板、便签", "fabrie 无边界白板 2025"]  # no I/l look-alikes
BUDGET = budget.max_image_bytes(KitLimits())


def _lines(scale: int) -> list[tuple[str, int, int, int]]:
    return [(text, 100 * scale, (100 + 300 * i) * scale, 64 * scale) for i, text in enumerate(TEXTS)]


# name -> (size, noise amplitude, format, JPEG quality, text scale), each over the budget, under 10 MB
CASES = {
    "png-8mb": ((2300, 1450), 60, "PNG", 95, 1),
    "jpeg-9.5mb": ((3400, 2350), 120, "JPEG", 98, 1),
    "photo-6000x4000": ((6000, 4000), 20, "JPEG", 92, 2),
}


@pytest.fixture(scope="module")
def made() -> dict[str, tuple[bytes, list[tuple[str, float, float]]]]:
    return {name: imagegen.board(_lines(scale), size, noise=noise, fmt=fmt, quality=quality)
            for name, (size, noise, fmt, quality, scale) in CASES.items()}


@pytest.fixture(scope="module")
def big_proxy() -> Iterator[ProxyServer]:
    with ProxyServer(caller_keys="testid:testsecret", fetch_allow="127.0.0.1/32", kit_timeout_seconds=60) as server:
        yield server


@pytest.fixture(scope="module")
def files(made) -> Iterator[AppServer]:
    with serve_files({f"/{name}": data for name, (data, _) in made.items()}) as server:
        yield server


def _client(proxy: ProxyServer) -> OcrApiClient:
    config = sdk.config(proxy.endpoint)
    config.read_timeout = 90_000  # a 24-megapixel photo on a shared 2-core machine
    return OcrApiClient(config)


def _check(data: dict[str, Any], size: tuple[int, int], drawn: list[tuple[str, float, float]]) -> None:
    """Every line read, centred where it was drawn in the caller's pixels: within 8 px, or 2 px of the kit's
    960-px detection copy when that is coarser (its boxes are whole pixels there, then scaled up)."""
    assert (data["width"], data["height"]) == size  # the caller's image, not what the kit was sent
    tolerance = max(8.0, 2 * max(size) / 960)
    found = {}
    for w in data["prism_wordsInfo"]:
        assert w["width"] > 0 and w["height"] > 0
        corners = [(p["x"], p["y"]) for p in w["pos"]]
        found[w["word"].replace(" ", "")] = (sum(x for x, _ in corners) / 4, sum(y for _, y in corners) / 4)
    for text, cx, cy in drawn:
        key = text.replace(" ", "")
        assert key in found, f"{text!r} not in {list(found)}"
        fx, fy = found[key]
        assert math.hypot(fx - cx, fy - cy) <= tolerance, \
            f"{text!r}: centre ({fx:.0f}, {fy:.0f}), drawn ({cx:.0f}, {cy:.0f})"


@pytest.mark.parametrize("name", ["png-8mb", "jpeg-9.5mb"])
def test_ocr_api_body_over_the_budget(big_proxy, made, name):
    data, drawn = made[name]
    assert BUDGET < len(data) <= 10 * 1024 * 1024  # really over the kit's budget, within Aliyun's 10 MB
    resp = _client(big_proxy).recognize_general(api_models.RecognizeGeneralRequest(body=io.BytesIO(data)))
    _check(json.loads(resp.body.data), CASES[name][0], drawn)


def test_photo_6000x4000_by_url(big_proxy, files, made):
    data, drawn = made["photo-6000x4000"]
    assert len(data) > BUDGET
    resp = _client(big_proxy).recognize_general(
        api_models.RecognizeGeneralRequest(url=f"{files.url}/photo-6000x4000"))
    _check(json.loads(resp.body.data), (6000, 4000), drawn)


def test_shrunk_only_as_far_as_needed_and_mapped_back(made):
    """A budget even a q85 JPEG misses (limits lowered to 1.2 MB, for the proxy and the embedded backend
    alike): the image is shrunk, and the boxes still land in the caller's 2300x1450 pixels."""
    limits = KitLimits(max_request_bytes=1_200_000)
    with ProxyServer(caller_keys="testid:testsecret", kit_timeout_seconds=60, kit_limits=limits) as server:
        data, drawn = made["png-8mb"]
        resp = _client(server).recognize_general(api_models.RecognizeGeneralRequest(body=io.BytesIO(data)))
        _check(json.loads(resp.body.data), CASES["png-8mb"][0], drawn)


def test_a_truncated_image_over_the_budget_is_invalid_format(big_proxy, made):
    """Its header reads fine (the size checks pass); its pixels do not, when the proxy re-encodes it."""
    cut = made["png-8mb"][0][:6_000_000]
    with pytest.raises(ClientException) as exc:
        _client(big_proxy).recognize_general(api_models.RecognizeGeneralRequest(body=io.BytesIO(cut)))
    assert (exc.value.code, exc.value.status_code) == ("InvalidImage.Format", 400)
