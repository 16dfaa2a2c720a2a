"""Local-file uploads through the real Python Tea SDKs' `*_advance` methods, and chained calls.

Each `*_advance` call asks AuthorizeFileUpload (openplatform) for a policy, uploads the file with OSS
PostObject over HTTPS (the current SDKs force HTTPS for it) to `{Bucket}.{upload_host}`, then calls the
action with that URL. The proxy terminates TLS itself (a throwaway CA the SDK is given); the upload host and,
for the "no code change" way, Aliyun's own names resolve to 127.0.0.1 inside this process only
(tests/tlsnames.py). `fetch_allow` is unset throughout: every image the actions read comes from the store
(the SSRF guard would refuse the proxy's loopback address), which the assertions on `own.reads` confirm.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_util.models import RuntimeOptions
from matplotlib import cbook
from PIL import Image

from proxy.tls import start_tls_site
from tests import imagegen, sdk
from tests.conftest import CALLER_KEYS
from tests.harness import ProxyServer, free_port
from tests.s3server import BUCKET, REGION, S3_KEY_ID, S3_SECRET, s3_client
from tests.test_sdk_ocr import assert_lines_found
from tests.tlsnames import ALIYUN_NAMES, UPLOAD_NAME, make_ca_and_cert, resolve_to

SIGNING_KEY = "upload-tests-signing-key-0123456789"


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_ca_and_cert(tmp_path_factory.mktemp("tls"), (UPLOAD_NAME, f"*.{UPLOAD_NAME}", *ALIYUN_NAMES))


def upload_proxy(tls_files: tuple[Path, Path, Path], data_dir: Path, tls_port: int | None = None,
                 upload_port: int | None = None, **extra: Any) -> ProxyServer:
    """A proxy with `fetch_allow` unset, serving TLS too (as `serve` does with tls_cert_file set); its
    AuthorizeFileUpload names `upload_port` (default: its own TLS port)."""
    _, cert, key = tls_files
    tls_port = tls_port or free_port()
    server = ProxyServer(caller_keys=CALLER_KEYS, data_dir=data_dir,
                         upload_host=f"{UPLOAD_NAME}:{upload_port or tls_port}", result_signing_key=SIGNING_KEY,
                         **extra)
    assert server.runner is not None
    server.lt.run(start_tls_site(server.runner, "127.0.0.1", cert, key, tls_port))
    server.tls_port = tls_port  # type: ignore[attr-defined]
    return server


@pytest.fixture(scope="module", params=["local", "s3"])
def uproxy(request: pytest.FixtureRequest, tls_files: tuple[Path, Path, Path],
           tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    extra: dict[str, Any] = {}
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        monkeypatch_module.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
        monkeypatch_module.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        extra = {"result_store": "s3", "s3_bucket": BUCKET, "s3_endpoint_url": endpoint, "s3_region": REGION,
                 "s3_addressing_style": "path"}
    with upload_proxy(tls_files, tmp_path_factory.mktemp("uploads"), **extra) as server:
        ports = {443: server.tls_port, 80: server.port}  # type: ignore[attr-defined]
        with resolve_to(ALIYUN_NAMES, (UPLOAD_NAME,), ports):
            yield server


@pytest.fixture(scope="module")
def portrait() -> bytes:
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return bytes(f.read())


def own_reads(server: ProxyServer) -> int:
    own = server.services.backends.images.own
    return int(own.__self__.reads)  # type: ignore[union-attr]


def client(factory: Any, server: ProxyServer, ca: Path, way: str) -> Any:
    """A real SDK client, redirected one of the three ways; the SDK's code untouched."""
    if way == "endpoint":  # (a) one line in the app
        c = factory(server.endpoint, ca=str(ca))
        c._open_platform_endpoint = server.endpoint
        return c
    cls = type(factory(server.endpoint))
    if way == "http_proxy":  # (b) HTTP_PROXY (set by the fixture), the client's protocol http, Aliyun's endpoints
        return cls(Config(access_key_id=sdk.KEY, access_key_secret=sdk.SECRET, region_id="cn-shanghai",
                          protocol="http", ca=str(ca), read_timeout=30000))
    # (c) no code change: Aliyun's names resolve to the proxy (a private DNS zone), HTTPS, the private CA in
    # the bundle the host's SDK trusts (the fixture adds it to certifi's), the client built as the app builds it
    return cls(Config(access_key_id=sdk.KEY, access_key_secret=sdk.SECRET, region_id="cn-shanghai",
                      read_timeout=30000))


def fetch(url: str, ca: Path) -> Image.Image:
    """Download a result as the app would (no proxy from the environment)."""
    with requests.Session() as session:
        session.trust_env = False
        resp = session.get(url, timeout=60, verify=str(ca))
    assert resp.status_code == 200, resp.text[:300]
    img = Image.open(io.BytesIO(resp.content))
    img.load()
    return img


@pytest.fixture(params=["endpoint", "http_proxy", "private_dns"])
def way(request: pytest.FixtureRequest, uproxy: ProxyServer, monkeypatch: pytest.MonkeyPatch,
        tls_files: tuple[Path, Path, Path], tmp_path: Path) -> str:
    if request.param == "http_proxy":
        monkeypatch.setenv("HTTP_PROXY", uproxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
    if request.param == "private_dns":  # the app host trusts the private CA: Tea reads certifi's bundle
        bundle = tmp_path / "trusted.pem"
        bundle.write_bytes(Path(certifi.where()).read_bytes() + tls_files[0].read_bytes())
        monkeypatch.setattr(certifi, "where", lambda: str(bundle))
    return str(request.param)


def test_recognize_character_advance(uproxy, tls_files, way):
    before = own_reads(uproxy)
    c = client(sdk.ocr, uproxy, tls_files[0], way)
    resp = c.recognize_character_advance(ocr_models.RecognizeCharacterAdvanceRequest(
        image_urlobject=io.BytesIO(imagegen.text_image("PNG")), min_height=10, output_probability=True),
        RuntimeOptions())
    assert_lines_found([r.text for r in resp.body.data.results])
    assert own_reads(uproxy) == before + 1  # read from the store: with fetch_allow unset, a fetch is refused


def test_segment_body_advance(uproxy, tls_files, portrait, way):
    before = own_reads(uproxy)
    c = client(sdk.imageseg, uproxy, tls_files[0], way)
    resp = c.segment_body_advance(seg.SegmentBodyAdvanceRequest(image_urlobject=io.BytesIO(portrait),
                                                                return_form="mask"), RuntimeOptions())
    mask = fetch(resp.body.data.image_url, tls_files[0])
    assert mask.size == Image.open(io.BytesIO(portrait)).size
    assert own_reads(uproxy) == before + 1


def test_make_super_resolution_image_advance(uproxy, tls_files, way):
    small = imagegen.texture_png(96, 64)
    before = own_reads(uproxy)
    c = client(sdk.imageenhan, uproxy, tls_files[0], way)
    resp = c.make_super_resolution_image_advance(enhan.MakeSuperResolutionImageAdvanceRequest(
        url_object=io.BytesIO(small), upscale_factor=2), RuntimeOptions())
    big = fetch(resp.body.data.url, tls_files[0])
    assert big.size == (192, 128)
    assert own_reads(uproxy) == before + 1


def test_chained_call_reads_the_earlier_result_from_the_store(uproxy, tls_files, portrait):
    """SegmentBody's result URL handed to MakeSuperResolutionImage, fetch_allow unset: read, not fetched."""
    assert not uproxy.settings.fetch_allow and not os.environ.get("VISION_PROXY_FETCH_ALLOW")
    small = io.BytesIO()  # small enough to enlarge within the kit's timeout on a shared test machine
    Image.open(io.BytesIO(portrait)).resize((128, 150)).save(small, "JPEG")
    seg_client = client(sdk.imageseg, uproxy, tls_files[0], "endpoint")
    cut = seg_client.segment_body_advance(seg.SegmentBodyAdvanceRequest(image_urlobject=io.BytesIO(small.getvalue()),
                                                                        return_form="crop"), RuntimeOptions())
    before = own_reads(uproxy)
    resp = sdk.imageenhan(uproxy.endpoint).make_super_resolution_image(enhan.MakeSuperResolutionImageRequest(
        url=cut.body.data.image_url, upscale_factor=2))
    assert resp.body.data.url and own_reads(uproxy) == before + 1
    enlarged, cut_img = fetch(resp.body.data.url, tls_files[0]), fetch(cut.body.data.image_url, tls_files[0])
    assert enlarged.size == (cut_img.width * 2, cut_img.height * 2)


def _poll(c: Any, models: Any, job_id: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = c.get_async_job_result(models.GetAsyncJobResultRequest(job_id=job_id)).body.data
        if data.status not in ("QUEUING", "PROCESSING"):
            return data
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def test_segment_common_image_advance(uproxy, tls_files, portrait, way):
    before = own_reads(uproxy)
    c = client(sdk.imageseg, uproxy, tls_files[0], way)
    resp = c.segment_common_image_advance(seg.SegmentCommonImageAdvanceRequest(
        image_urlobject=io.BytesIO(portrait), return_form="mask"), RuntimeOptions())
    assert fetch(resp.body.data.image_url, tls_files[0]).size == Image.open(io.BytesIO(portrait)).size
    assert own_reads(uproxy) == before + 1


def test_segment_hd_common_image_advance_async(uproxy, tls_files, portrait, way):
    before = own_reads(uproxy)
    c = client(sdk.imageseg, uproxy, tls_files[0], way)
    submitted = c.segment_hdcommon_image_advance(seg.SegmentHDCommonImageAdvanceRequest(
        image_url_object=io.BytesIO(portrait)), RuntimeOptions())
    data = _poll(c, seg, submitted.body.request_id)
    assert data.status == "PROCESS_SUCCESS", (data.error_code, data.error_message)
    result = fetch(json.loads(data.result)["ImageUrl"], tls_files[0])
    assert (result.mode, result.size) == ("RGBA", Image.open(io.BytesIO(portrait)).size)
    assert own_reads(uproxy) == before + 1


def test_generate_super_resolution_image_advance_async(uproxy, tls_files, way):
    small = imagegen.texture_png(80, 48)
    before = own_reads(uproxy)
    c = client(sdk.imageenhan, uproxy, tls_files[0], way)
    submitted = c.generate_super_resolution_image_advance(enhan.GenerateSuperResolutionImageAdvanceRequest(
        image_url_object=io.BytesIO(small), scale=2), RuntimeOptions())
    data = _poll(c, enhan, submitted.body.request_id)
    assert data.status == "PROCESS_SUCCESS", (data.error_code, data.error_message)
    assert fetch(json.loads(data.result)["ResultUrl"], tls_files[0]).size == (160, 96)
    assert own_reads(uproxy) == before + 1


@pytest.mark.parametrize("store", ["local", "s3"])
def test_two_replicas_authorize_and_act_on_one_upload_to_the_other(tls_files, tmp_path, store, request, monkeypatch):
    """Replica A answers AuthorizeFileUpload and the action; the upload lands on replica B (as a load
    balancer may send it). They share the store (one data volume, or one S3 bucket and prefix) and the
    signing key, nothing else (each its own data_dir with S3)."""
    a_port, b_port = free_port(), free_port()
    extra: dict[str, Any] = {}
    if store == "s3":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        endpoint = request.getfixturevalue("s3_endpoint")
        prefix = f"replicas-{secrets.token_hex(4)}"
        extra = {"result_store": "s3", "s3_bucket": BUCKET, "s3_endpoint_url": endpoint, "s3_region": REGION,
                 "s3_addressing_style": "path", "s3_prefix": prefix}
    a_dir, b_dir = (tmp_path, tmp_path) if store == "local" else (tmp_path / "a", tmp_path / "b")
    with upload_proxy(tls_files, b_dir, tls_port=b_port, **extra) as b, \
            upload_proxy(tls_files, a_dir, tls_port=a_port, upload_port=b_port, **extra) as a:
        with resolve_to((), (UPLOAD_NAME,), {}):
            c = client(sdk.ocr, a, tls_files[0], "endpoint")
            resp = c.recognize_character_advance(ocr_models.RecognizeCharacterAdvanceRequest(
                image_urlobject=io.BytesIO(imagegen.text_image("PNG")), min_height=10, output_probability=True),
                RuntimeOptions())
        assert_lines_found([r.text for r in resp.body.data.results])
        assert own_reads(a) == 1 and own_reads(b) == 0
    if store == "local":
        assert list((tmp_path / "results" / "upload").rglob("*"))  # B stored it where A read it
    else:  # B put it in the shared bucket, under the prefix both replicas use; neither wrote a local copy
        listed = s3_client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/results/")
        assert [o["Key"] for o in listed.get("Contents", []) if "/upload/" in o["Key"]]
        assert not list(tmp_path.rglob("upload/*"))
