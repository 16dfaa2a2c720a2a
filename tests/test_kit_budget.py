"""The payload budget: the kit's limits from config, turned into image bytes that really fit; and fitting."""

from __future__ import annotations

import base64
import io
import json
import math

import pytest
from PIL import Image

from proxy.actions.ocr_geometry import Diagonal, Line, level_box, measured
from proxy.config import KitLimits, Settings
from proxy.images import LoadedImage
from proxy.kit import budget
from proxy.kit.fit import fit
from tests import imagegen


def test_defaults_are_the_kits_limits() -> None:
    limits = Settings().kit_limits
    assert (limits.max_request_bytes, limits.max_response_bytes) == (6_291_456, 6_291_556)
    assert limits.max_gateway_body_bytes == 10 * 1024 * 1024


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_PROXY_KIT_LIMITS__MAX_REQUEST_BYTES", "1048576")
    assert Settings().kit_limits.max_request_bytes == 1_048_576


@pytest.mark.parametrize("limits", [KitLimits(), KitLimits(max_request_bytes=1_000_000),
                                    KitLimits(max_gateway_body_bytes=500_000)])
def test_the_largest_image_fits_and_one_more_base64_quantum_does_not(limits: KitLimits) -> None:
    raw = budget.max_image_bytes(limits)
    body = json.dumps({"img": base64.b64encode(b"\0" * raw).decode(), "scale": 4}).encode()
    assert budget.request_fits(len(body), limits)
    assert len(body) + limits.event_overhead_bytes <= limits.max_request_bytes
    assert len(body) <= limits.max_gateway_body_bytes
    bigger = budget.base64_length(raw + 3) + budget.REQUEST_WRAP_BYTES
    assert not budget.request_fits(bigger, limits)


def test_answer_budget_and_read_cap() -> None:
    limits = KitLimits()
    png = budget.max_answer_image_bytes(limits)
    answer = json.dumps({"result": base64.b64encode(b"\0" * png).decode()})
    wrapped = json.dumps({"statusCode": 200, "headers": {"Access-Control-Allow-Headers": "*",
                          "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "*"},
                          "body": answer})
    assert len(wrapped) <= limits.max_response_bytes
    assert budget.answer_read_cap(limits) > limits.max_response_bytes


def _loaded(data: bytes) -> LoadedImage:
    with Image.open(io.BytesIO(data)) as img:
        w, h = img.size
    return LoadedImage(data, "png", w, h, w, h)


def test_an_image_that_fits_goes_untouched() -> None:
    image = _loaded(imagegen.text_image("PNG"))
    fitted = fit(image, budget.max_image_bytes(KitLimits()))
    assert fitted.image is image and (fitted.sx, fitted.sy, fitted.how) == (1, 1, "as-is")


def test_reencoded_before_shrunk() -> None:
    data = imagegen.noise_image(300, 200)  # ~180 KB of PNG; as a JPEG much less
    fitted = fit(_loaded(data), 150_000)
    assert fitted.how == "jpeg" and (fitted.sx, fitted.sy) == (1, 1)
    assert fitted.image.data is not None and fitted.image.data[:3] == b"\xff\xd8\xff"
    assert (fitted.image.width, fitted.image.height) == (300, 200)  # still the caller's size


def test_shrunk_only_as_far_as_needed_with_exact_ratios() -> None:
    image = _loaded(imagegen.noise_image(640, 480))
    fitted = fit(image, 60_000)
    assert fitted.how == "jpeg-shrunk" and fitted.image.data is not None
    assert 0.8 * 60_000 <= len(fitted.image.data) <= 60_000  # close to the budget, not far under it
    with Image.open(io.BytesIO(fitted.image.data)) as sent:
        assert (fitted.sx, fitted.sy) == (640 / sent.width, 480 / sent.height)


def test_a_line_maps_back_exactly() -> None:
    line = measured(Diagonal(100, 40, 300, -20), -8.0)
    back = line.scaled(2.0, 2.0)
    for (x, y), (bx, by) in zip(line.corners(), back.corners(), strict=True):
        assert math.isclose(bx, 2 * x) and math.isclose(by, 2 * y)
    assert math.isclose(back.angle, -8.0) and math.isclose(back.thickness, 2 * line.thickness)
    assert line.thickness > 0 and line.length > 0  # a rising line's diagonal, read with its measured angle
    assert level_box(Diagonal(100, 40, 300, -20)) == Line(250, 30, 300, 20, 0.0)
