"""Odd shapes through every matting and super-resolution action, sync and async, with the real SDKs.

The embedded backend crashes where the kit's handlers crash (a 0-px or giant resize, see
proxy/kit/local/segment.py and superres.py), so these pass only because the proxy never sends such a
shape. Each input either comes back correct (right size and mode, the picture still there) or is refused
as Aliyun refuses it (InvalidImage.Resolution, the action's documented limits); never InternalError or 5xx.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_tea_openapi.exceptions import ClientException
from PIL import Image

from tests import sdk
from tests.harness import AppServer, serve_files
from tests.imagegen import texture, texture_png
from tests.test_sdk_vision import download, poll

ISSUE_SIZES = [(1, 1000), (1000, 1), (3, 5), (20000, 200)]  # the shapes issue 10 names
# (action, size) -> admitted by Aliyun's documented limits (mappings/): the issue's sizes ...
ADMITTED = {
    "SegmentBody": {(1, 1000), (1000, 1), (3, 5), (1999, 1), (1, 1999)},  # sides 1-1999
    "SegmentCommonImage": {(33, 1999), (1999, 33)},  # sides 33-1999
    "SegmentHDBody": {(6000, 33), (33, 6000)},  # sides 33-6000
    "SegmentHDCommonImage": {(9999, 33)},  # sides 33-9999
    "MakeSuperResolutionImage": {(1920, 32), (32, 1080), (33, 37)},  # 32-1920, short side <= 1080
    "GenerateSuperResolutionImage": {(3, 5), (1, 1), (1, 2), (2, 1), (7, 5)},  # 1-5000, aspect <= 2
}
# ... plus the extreme shapes each action admits, which the kit could not take as they are
CASES = [(action, size) for action, extra in ADMITTED.items() for size in sorted({*ISSUE_SIZES, *extra})]


@pytest.fixture(scope="module")
def shapes() -> Iterator[AppServer]:
    with serve_files({f"/{w}x{h}.png": texture_png(w, h) for _, (w, h) in CASES}) as server:
        yield server


def run(action: str, endpoint: str, url: str) -> tuple[Image.Image | None, str | None]:
    """The result image, or the Aliyun error code (raised at once or reported by the job)."""
    imageseg, imageenhan = sdk.imageseg(endpoint), sdk.imageenhan(endpoint)
    try:
        if action == "SegmentBody":
            out = imageseg.segment_body(seg.SegmentBodyRequest(image_url=url)).body.data.image_url
        elif action == "SegmentCommonImage":
            out = imageseg.segment_common_image(seg.SegmentCommonImageRequest(
                image_url=url, return_form="mask")).body.data.image_url
        elif action == "SegmentHDBody":
            out = imageseg.segment_hdbody(seg.SegmentHDBodyRequest(image_url=url)).body.data.image_url
        elif action == "MakeSuperResolutionImage":
            out = imageenhan.make_super_resolution_image(enhan.MakeSuperResolutionImageRequest(
                url=url, upscale_factor=3)).body.data.url
        else:
            client: Any = imageseg if action == "SegmentHDCommonImage" else imageenhan
            if action == "SegmentHDCommonImage":
                job = imageseg.segment_hdcommon_image(seg.SegmentHDCommonImageRequest(image_url=url))
            else:
                job = imageenhan.generate_super_resolution_image(enhan.GenerateSuperResolutionImageRequest(
                    image_url=url, scale=4))
            data = poll(client, job.body.request_id)
            if data.status != "PROCESS_SUCCESS":
                return None, data.error_code
            result = json.loads(data.result)
            out = result.get("ImageUrl") or result["ResultUrl"]
    except ClientException as exc:  # a 4xx; a 5xx would be a ServerException and fail the test
        assert exc.status_code == 400, exc
        return None, exc.code
    return download(out), None


@pytest.mark.parametrize(("action", "size"), CASES, ids=[f"{a}-{w}x{h}" for a, (w, h) in CASES])
def test_every_shape_gets_a_correct_answer_or_aliyuns_refusal(proxy, shapes, action, size):
    image, code = run(action, proxy.endpoint, f"{shapes.url}/{size[0]}x{size[1]}.png")
    if size not in ADMITTED[action]:
        assert (image, code) == (None, "InvalidImage.Resolution")
        return
    assert code is None and image is not None
    if action.startswith("Segment"):
        mode = "L" if action == "SegmentCommonImage" else "RGBA"
        assert (image.mode, image.size) == (mode, size)
        return
    factor = 3 if action == "MakeSuperResolutionImage" else 4
    assert image.size == (size[0] * factor, size[1] * factor)
    # the enlargement is of this picture: brought back to the input's size it matches it closely
    back = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BOX), dtype=float)
    assert np.abs(back - np.asarray(texture(*size), dtype=float)).mean() < 20


@pytest.mark.parametrize("size", [(1, 1000), (1000, 1), (3, 5), (1999, 1), (9999, 33), (33, 9999), (6000, 4000)])
def test_the_matting_copy_is_a_shape_the_kit_takes_and_holds_the_image(size):
    from proxy.actions.kitshapes import MATTE_MAX_ASPECT, MattePlan
    from proxy.config import KitLimits
    from proxy.kit.local.segment import kit_resize_width

    plan = MattePlan.plan(*size, KitLimits(), 2048)
    w, h = plan.size
    assert max(w, h) / min(w, h) <= MATTE_MAX_ASPECT + 0.01 and max(w, h) <= 2048
    kit_resize_width(w, h)  # the kit's own resize of the copy does not crash
    left, top, right, bottom = plan.box(*size)
    assert 0 <= left < right <= w and 0 <= top < bottom <= h
    if plan.ratio == 1:  # not reduced: the box is the image exactly
        assert (right - left, bottom - top) == size
    else:  # reduced: the box has the image's proportions, to a pixel
        assert abs((right - left) - size[0] * plan.ratio) <= 1 and abs((bottom - top) - size[1] * plan.ratio) <= 1


def test_a_person_in_a_padded_panorama_is_still_found(proxy):
    """A 3600x600 strip (6:1, padded to 4:1 for the kit) with the portrait in it: the matte still finds her."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        portrait = Image.open(f).convert("RGB")  # 512x600
    strip = Image.new("RGB", (3600, 600), (40, 110, 60))
    strip.paste(portrait, (1500, 0))
    out = io.BytesIO()
    strip.save(out, "JPEG")
    with serve_files({"/strip.jpg": out.getvalue()}) as server:
        request = seg.SegmentHDBodyRequest(image_url=f"{server.url}/strip.jpg")
        resp = sdk.imageseg(proxy.endpoint).segment_hdbody(request)
        alpha = np.asarray(download(resp.body.data.image_url))[..., 3]
    assert alpha.shape == (600, 3600)
    face = alpha[240:560, 1500 + 120:1500 + 400]
    assert face.mean() > 150 and alpha[:, :1000].mean() < 60  # her, not the green background
