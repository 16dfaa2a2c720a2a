"""The matting copy and every super-resolution tile fit the kit's payload limits (Settings.kit_limits), their
answers included: with limits far below Lambda's 6 MB, every request the kit sees and every answer it gives
(an incompressible PNG: noise) stays inside them, and the caller still gets a full-size result."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_imageseg20191230 import models as seg
from PIL import Image

from proxy.actions.kitshapes import MattePlan, sr_tile_side
from proxy.config import KitLimits
from tests import sdk
from tests.harness import ProxyServer, serve_files
from tests.kit_faults import remote_kit_proxy
from tests.test_sdk_vision import download

LIMITS = {"max_request_bytes": 400_000, "max_response_bytes": 300_000}


def _noise(w: int, h: int, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def pictures() -> Iterator[str]:
    with serve_files({"/sr.png": _noise(400, 300, "PNG"), "/seg.png": _noise(1400, 900, "PNG")}) as server:
        yield server.url


@pytest.fixture(scope="module")
def small_kit_proxy(kit) -> Iterator[ProxyServer]:
    with remote_kit_proxy(kit_url=kit[1].url, kit_limits=LIMITS, kit_timeout_seconds=30) as server:
        yield server


def test_every_tile_and_its_answer_fit(kit, small_kit_proxy, pictures):
    kit[0].fault, kit[0].fail_after, kit[0].calls, kit[0].largest = "ok", 10_000, 0, (0, 0)
    resp = sdk.imageenhan(small_kit_proxy.endpoint).make_super_resolution_image(
        enhan.MakeSuperResolutionImageRequest(url=f"{pictures}/sr.png", upscale_factor=2))
    assert download(resp.body.data.url).size == (800, 600)
    request, answer = kit[0].largest
    assert 0 < request <= LIMITS["max_request_bytes"] and 0 < answer <= LIMITS["max_response_bytes"]
    assert kit[0].calls > 4  # the budget, not the configured 512 px, chose the tile size


def test_the_matting_copy_and_its_matte_fit(kit, small_kit_proxy, pictures):
    kit[0].fault, kit[0].largest = "matte", (0, 0)
    resp = sdk.imageseg(small_kit_proxy.endpoint).segment_hdbody(
        seg.SegmentHDBodyRequest(image_url=f"{pictures}/seg.png"))
    assert download(resp.body.data.image_url).size == (1400, 900)
    request, answer = kit[0].largest
    assert 0 < request <= LIMITS["max_request_bytes"] and 0 < answer <= LIMITS["max_response_bytes"]


def test_default_limits_keep_the_configured_tiles():
    limits = KitLimits()
    assert (sr_tile_side(limits, 2, 512, 16), sr_tile_side(limits, 4, 256, 16)) == (512, 256)
    assert sr_tile_side(limits, 4, 512, 16) < 512  # a 2048 px RGB answer could not fit 6 MB
    assert MattePlan.plan(1999, 1999, limits, 2048).size == (1999, 1999)  # a 4 MP matte fits as it is
