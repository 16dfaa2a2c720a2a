"""General-object matting with no kit configured: SegmentCommonImage and SegmentHDCommonImage reach the
embedded backend's U²-Net-p route (through the per-action backend defaults, config/backends.py), SegmentBody
stays on the person model. The object is drawn by the test, so the true matte is known pixel for pixel."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from alibabacloud_imageseg20191230 import models as seg
from matplotlib import cbook
from PIL import Image, ImageDraw

from proxy.kit.local import general
from tests import sdk
from tests.conftest import CALLER_KEYS
from tests.harness import AppServer, ProxyServer, metric_value, serve_files
from tests.test_local_models import b64png, call, result_image, running_backend

BACKGROUND = (235, 232, 225)


def kit_calls(route: str) -> float:
    """Successful kit calls on `route` (an action's own backend is labelled with the action's name)."""
    return metric_value("vision_proxy_kit_calls_total", route=route, status="200")


def drawn_object(width: int = 400, height: int = 300) -> tuple[Image.Image, np.ndarray]:
    """A red mug with a yellow label and a handle (its hole shows the background) on a plain background, and
    the mask of exactly the pixels drawn as the object."""
    img = Image.new("RGB", (width, height), BACKGROUND)
    mask = Image.new("L", (width, height), 0)
    for draw, fill, hole in ((ImageDraw.Draw(img), (200, 40, 40), BACKGROUND), (ImageDraw.Draw(mask), 255, 0)):
        draw.rounded_rectangle((120, 70, 280, 240), 25, fill=fill)
        draw.ellipse((260, 110, 330, 190), fill=fill)
        draw.ellipse((280, 130, 310, 170), fill=hole)
    ImageDraw.Draw(img).rectangle((150, 120, 250, 150), fill=(250, 220, 60))
    return img, np.asarray(mask) > 127


def iou(matte: Image.Image, truth: np.ndarray) -> float:
    found = np.asarray(matte.convert("L")) > 127
    return float((found & truth).sum() / (found | truth).sum())


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _download(url: str) -> Image.Image:
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200
    return Image.open(io.BytesIO(resp.content))


@pytest.fixture(scope="module")
def pictures() -> Iterator[AppServer]:
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        portrait = f.read()
    with serve_files({"/mug.png": _png(drawn_object()[0]), "/person.jpg": portrait}) as server:
        yield server


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    with ProxyServer(caller_keys=CALLER_KEYS, fetch_allow="127.0.0.1/32",
                     data_dir=tmp_path_factory.mktemp("general")) as server:
        assert server.settings.kit_url is None  # no kit configured: the embedded backend
        yield server


def test_the_route_answers_the_kit_segmentation_contract_and_names_its_model() -> None:
    img, truth = drawn_object()
    with running_backend() as backend:
        resp = call(backend, f"/prod/{general.ROUTE}", {"img": b64png(img)})
        matte = result_image(resp)
        assert "u2netp" in resp.headers["x-local-model"]
        assert (matte.mode, matte.size) == ("L", img.size) and iou(matte, truth) >= 0.8
        cut = result_image(call(backend, f"/prod/{general.ROUTE}", {"img": b64png(img), "type": "foreground"}))
        assert cut.mode == "RGBA" and np.array_equal(np.asarray(cut)[..., :3], np.asarray(img))


def test_segment_common_image_cuts_out_a_drawn_object(embedded, pictures) -> None:
    _, truth = drawn_object()
    client = sdk.imageseg(embedded.endpoint)
    own, people = kit_calls("SegmentCommonImage"), kit_calls("segmentation")
    resp = client.segment_common_image(seg.SegmentCommonImageRequest(
        image_url=f"{pictures.url}/mug.png", return_form="mask"))
    matte = _download(resp.body.data.image_url)
    assert matte.size == (400, 300) and iou(matte, truth) >= 0.8
    assert (kit_calls("SegmentCommonImage") - own, kit_calls("segmentation") - people) == (1, 0)


def test_segment_hd_common_image_job_cuts_out_the_object(embedded, pictures) -> None:
    _, truth = drawn_object()
    client = sdk.imageseg(embedded.endpoint)
    own = kit_calls("SegmentHDCommonImage")
    job = client.segment_hdcommon_image(seg.SegmentHDCommonImageRequest(image_url=f"{pictures.url}/mug.png"))
    deadline = time.monotonic() + 60
    while True:
        data = client.get_async_job_result(seg.GetAsyncJobResultRequest(job_id=job.body.request_id)).body.data
        if data.status not in ("QUEUING", "PROCESSING") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert data.status == "PROCESS_SUCCESS", data
    cut = _download(json.loads(data.result)["ImageUrl"])
    assert cut.mode == "RGBA" and iou(cut.getchannel("A"), truth) >= 0.8
    assert kit_calls("SegmentHDCommonImage") - own == 1


def test_segment_body_stays_on_the_person_model(embedded, pictures) -> None:
    client = sdk.imageseg(embedded.endpoint)
    people, own = kit_calls("segmentation"), kit_calls("SegmentBody")
    resp = client.segment_body(seg.SegmentBodyRequest(image_url=f"{pictures.url}/person.jpg", return_form="mask"))
    matte = np.asarray(_download(resp.body.data.image_url))
    assert matte.shape == (600, 512)
    assert matte[240:560, 120:400].mean() > 200 and matte[:80, :80].mean() < 40  # face and uniform; flag
    assert (kit_calls("segmentation") - people, kit_calls("SegmentBody") - own) == (1, 0)
