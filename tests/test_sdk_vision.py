"""Matting and super-resolution through the unchanged Aliyun SDKs: every action, sync and async, with the
returned URL downloaded and checked. The upstream is the embedded backend's real models; the result store
is the local one and the S3 one (a real S3-API server), through the same tests."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkimageenhan.request.v20190930.MakeSuperResolutionImageRequest import MakeSuperResolutionImageRequest
from aliyunsdkimageseg.request.v20191230.SegmentBodyRequest import SegmentBodyRequest
from matplotlib import cbook
from PIL import Image

from tests import sdk
from tests.conftest import CALLER_KEYS
from tests.harness import AppServer, ProxyServer, serve_files
from tests.imagegen import texture
from tests.s3server import BUCKET, REGION, S3_KEY_ID, S3_SECRET

FACE = (slice(240, 560), slice(120, 400))  # rows, cols of face and uniform in the 512x600 portrait


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def pictures() -> Iterator[AppServer]:
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        portrait = f.read()
    files = {"/person.jpg": portrait, "/small.png": _png(texture(160, 96)),
             "/alpha.png": _png(texture(64, 48).convert("RGBA")),
             "/hd.jpg": _png(texture(1920, 1080), "JPEG"), "/toowide.png": _png(texture(1930, 200))}

    with serve_files(files) as server:
        yield server


@pytest.fixture(scope="module", params=["local", "s3"])
def vproxy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           monkeypatch_module: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    settings: dict[str, Any] = {"caller_keys": CALLER_KEYS, "fetch_allow": "127.0.0.1/32",
                                "data_dir": tmp_path_factory.mktemp("vision-results")}
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        monkeypatch_module.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
        monkeypatch_module.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        settings.update(result_store="s3", s3_bucket=BUCKET, s3_endpoint_url=endpoint, s3_region=REGION,
                        s3_addressing_style="path")
    with ProxyServer(**settings) as server:
        yield server


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def download(url: str) -> Image.Image:
    resp = requests.get(url, timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    img = Image.open(io.BytesIO(resp.content))
    img.load()
    return img


def poll(client: Any, job_id: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get_async_job_result(seg.GetAsyncJobResultRequest(job_id=job_id)
                                           if "imageseg" in type(client).__module__
                                           else enhan.GetAsyncJobResultRequest(job_id=job_id)).body.data
        assert data.job_id == job_id
        if data.status not in ("QUEUING", "PROCESSING"):
            return data
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


# ---------------------------------------------------------------- matting


@pytest.mark.parametrize("signature", ["v3", "v2"])
@pytest.mark.parametrize("form", ["mask", "crop", "whiteBK", None, "somethingElse"])
def test_segment_body_forms(vproxy, pictures, signature, form):
    client = sdk.imageseg(vproxy.endpoint, **({"signature_algorithm": "v2"} if signature == "v2" else {}))
    resp = client.segment_body(seg.SegmentBodyRequest(image_url=f"{pictures.url}/person.jpg", return_form=form))
    img = download(resp.body.data.image_url)
    pixels = np.asarray(img)
    if form == "mask":
        assert (img.mode, img.size) == ("L", (512, 600))
        assert pixels[FACE].mean() > 200 and pixels[:80, :80].mean() < 40
    elif form == "whiteBK":
        assert (img.mode, img.size) == ("RGB", (512, 600))
        assert pixels[:40, :40].min() > 200  # flag replaced by white
    elif form == "crop":
        assert img.mode == "RGBA" and img.width * img.height < 512 * 600  # background cut away
        alpha = pixels[..., 3]
        for edge in (alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]):
            assert edge.max() >= 16  # tight: every edge touches the subject
    else:  # no ReturnForm, or one Aliyun does not know: RGBA at the same size (Aliyun's documented default)
        assert (img.mode, img.size) == ("RGBA", (512, 600))
        alpha = pixels[..., 3]
        assert alpha[FACE].mean() > 200 and alpha[:80, :80].mean() < 40


def test_segment_hd_body_and_common_image(vproxy, pictures):
    client = sdk.imageseg(vproxy.endpoint)
    hd = download(client.segment_hdbody(seg.SegmentHDBodyRequest(
        image_url=f"{pictures.url}/person.jpg")).body.data.image_url)
    common = download(client.segment_common_image(seg.SegmentCommonImageRequest(
        image_url=f"{pictures.url}/person.jpg", return_form="mask")).body.data.image_url)
    assert (hd.mode, hd.size) == ("RGBA", (512, 600))
    assert (common.mode, common.size) == ("L", (512, 600))


def test_segment_hd_common_image_async(vproxy, pictures):
    client = sdk.imageseg(vproxy.endpoint)
    submitted = client.segment_hdcommon_image(seg.SegmentHDCommonImageRequest(image_url=f"{pictures.url}/person.jpg"))
    assert submitted.body.data is None and "GetAsyncJobResult" in submitted.body.message
    data = poll(client, submitted.body.request_id)
    assert data.status == "PROCESS_SUCCESS" and data.error_code is None
    result = json.loads(data.result)
    assert result["ImageUrl"] == result["imageUrl"]
    img = download(result["ImageUrl"])
    assert (img.mode, img.size) == ("RGBA", (512, 600))


def test_unified_viapi_poller_answers_for_imageseg_jobs(vproxy, pictures):
    """Aliyun's current docs send async callers to viapi 2023-01-17 GetAsyncJobResult."""
    from alibabacloud_viapi20230117 import models as viapi
    from alibabacloud_viapi20230117.client import Client

    submitted = sdk.imageseg(vproxy.endpoint).segment_hdcommon_image(
        seg.SegmentHDCommonImageRequest(image_url=f"{pictures.url}/person.jpg"))
    poller = Client(sdk.config(vproxy.endpoint))
    deadline = time.monotonic() + 60
    while (data := poller.get_async_job_result(viapi.GetAsyncJobResultRequest(
            job_id=submitted.body.request_id)).body.data).status in ("QUEUING", "PROCESSING"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert data.status == "PROCESS_SUCCESS"
    assert download(json.loads(data.result)["ImageUrl"]).mode == "RGBA"


def test_legacy_segment_body_v1(vproxy, pictures):
    request = SegmentBodyRequest()
    request.set_ImageURL(f"{pictures.url}/person.jpg")
    request.set_ReturnForm("mask")
    body = sdk.legacy(request, vproxy.endpoint)
    assert download(body["Data"]["ImageURL"]).mode == "L"


# ---------------------------------------------------------------- super-resolution


@pytest.mark.parametrize(("factor", "fmt"), [(2, "png"), (3, "jpg"), (1, "bmp"), (4, "png")])
def test_make_super_resolution(vproxy, pictures, factor, fmt):
    client = sdk.imageenhan(vproxy.endpoint)
    resp = client.make_super_resolution_image(enhan.MakeSuperResolutionImageRequest(
        url=f"{pictures.url}/small.png", upscale_factor=factor, output_format=fmt, output_quality=90, mode="base"))
    img = download(resp.body.data.url)
    assert img.size == (160 * factor, 96 * factor)
    assert img.format == {"png": "PNG", "jpg": "JPEG", "bmp": "BMP"}[fmt]


def test_rgba_input_forces_png(vproxy, pictures):
    resp = sdk.imageenhan(vproxy.endpoint).make_super_resolution_image(enhan.MakeSuperResolutionImageRequest(
        url=f"{pictures.url}/alpha.png", upscale_factor=2, output_format="jpg"))
    assert download(resp.body.data.url).format == "PNG"


def test_generate_super_resolution_async(vproxy, pictures):
    client = sdk.imageenhan(vproxy.endpoint)
    submitted = client.generate_super_resolution_image(enhan.GenerateSuperResolutionImageRequest(
        image_url=f"{pictures.url}/small.png", scale=4))
    data = poll(client, submitted.body.request_id)
    assert data.status == "PROCESS_SUCCESS", (data.error_code, data.error_message)
    result = json.loads(data.result)
    assert download(result["ResultUrl"]).size == (640, 384) and result["resultUrl"] == result["ResultUrl"]


def test_legacy_make_super_resolution_v1(vproxy, pictures):
    request = MakeSuperResolutionImageRequest()
    request.set_Url(f"{pictures.url}/small.png")
    request.set_UpscaleFactor(2)
    body = sdk.legacy(request, vproxy.endpoint)
    assert download(body["Data"]["Url"]).size == (320, 192)


@pytest.mark.parametrize(("params", "code"), [
    ({"upscale_factor": 5}, "InvalidParameter"),
    ({"output_format": "gif"}, "InvalidParameter"),
    ({"output_quality": 10}, "InvalidParameter"),
    ({"url": "{base}/toowide.png"}, "InvalidImage.Resolution"),
])
def test_super_resolution_refusals(vproxy, pictures, params, code):
    request = {"url": f"{pictures.url}/small.png", **params}
    request["url"] = request["url"].format(base=pictures.url)
    with pytest.raises(ClientException) as exc:
        sdk.imageenhan(vproxy.endpoint).make_super_resolution_image(
            enhan.MakeSuperResolutionImageRequest(**request))
    assert (exc.value.code, exc.value.status_code) == (code, 400)


def test_unknown_job_id(vproxy):
    with pytest.raises(ClientException) as exc:
        sdk.imageseg(vproxy.endpoint).get_async_job_result(seg.GetAsyncJobResultRequest(job_id="NO-SUCH-JOB"))
    assert (exc.value.code, exc.value.status_code) == ("InvalidParameter.JobId", 400)


def test_tampered_result_url_refused(vproxy, pictures):
    resp = sdk.imageseg(vproxy.endpoint).segment_body(seg.SegmentBodyRequest(
        image_url=f"{pictures.url}/person.jpg", return_form="mask"))
    url = resp.body.data.image_url
    assert requests.get(url.replace("Signature=", "Signature=A"), timeout=10).status_code == 403


# ---------------------------------------------------------------- the customer's case: 1920x1080, x4


def test_full_hd_enlarged_four_times_end_to_end(proxy, pictures):
    """Async, because 33 MP on two CPU cores takes longer than a caller's 10 s read timeout."""
    client = sdk.imageenhan(proxy.endpoint)
    submitted = client.generate_super_resolution_image(enhan.GenerateSuperResolutionImageRequest(
        image_url=f"{pictures.url}/hd.jpg", scale=4, output_format="jpg", output_quality=85))
    data = poll(client, submitted.body.request_id, timeout=400)
    assert data.status == "PROCESS_SUCCESS", (data.error_code, data.error_message)
    img = download(json.loads(data.result)["ResultUrl"])
    assert img.size == (7680, 4320)
    # the enlargement still shows the picture: compare with a plain resize at low resolution
    small = np.asarray(img.convert("RGB").resize((192, 108)), dtype=float)
    reference = np.asarray(texture(1920, 1080).resize((192, 108)), dtype=float)
    assert np.abs(small - reference).mean() < 12


def test_result_files_live_in_the_data_dir(proxy, pictures):
    """An SDK call's result image is a file under data_dir/results (the local store), and its URL serves
    exactly that file's bytes."""
    url = sdk.imageseg(proxy.endpoint).segment_body(seg.SegmentBodyRequest(
        image_url=f"{pictures.url}/person.jpg", return_form="mask")).body.data.image_url
    path = urlsplit(url).path
    assert path.startswith("/results/"), url
    stored = Path(proxy.settings.data_dir) / "results" / path.removeprefix("/results/")
    assert stored.is_file(), sorted(p.name for p in Path(proxy.settings.data_dir).rglob("*"))
    resp = requests.get(url, timeout=60)
    assert resp.status_code == 200 and resp.content == stored.read_bytes()
    assert Image.open(io.BytesIO(resp.content)).size == (512, 600)
