"""Two `python -m proxy serve` processes behind one (imagined) load balancer, sharing a real Redis for
nonces and one result store: the S3 one (a real S3-API server) or the local one (a shared data_dir and
signing key). A replay to the other replica is refused; an async job submitted to one is answered by
the other; a result URL minted by one is downloadable (S3 presigned, or served by the other replica); a file
uploaded (OSS PostObject) to one is read by an action on the other, and uploads racing with one policy
across both store one object (the claim is Redis's)."""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_ocr20191230 import models as ocr_models
from matplotlib import cbook
from PIL import Image

from tests import imagegen, raw, sdk
from tests.conftest import CALLER_KEYS
from tests.harness import AppServer, clean_env, free_port, serve_files
from tests.processes import ProxyProcess
from tests.redisserver import RedisServer, running_redis
from tests.s3server import BUCKET, REGION, S3_KEY_ID, S3_SECRET
from tests.test_sdk_ocr import assert_lines_found
from tests.test_upload_refusals import UPLOAD_HOST, form, grant, one_stored, post, race


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def portrait() -> Iterator[AppServer]:
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        data = f.read()

    with serve_files({"/person.jpg": data}) as server:
        yield server


@pytest.fixture(scope="module", params=["s3", "local"])
def replicas(request: pytest.FixtureRequest, redis_server: RedisServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyProcess, ProxyProcess]]:
    tmp = tmp_path_factory.mktemp(f"replicas-{request.param}")
    port_a, port_b = free_port(), free_port()
    env = clean_env()
    # One signing key for both: it signs the local store's URLs and both stores' upload policies.
    env.update(VISION_PROXY_CALLER_KEYS=CALLER_KEYS, VISION_PROXY_FETCH_ALLOW="127.0.0.1/32",
               VISION_PROXY_REDIS_URL=redis_server.url, VISION_PROXY_DATA_DIR=str(tmp / "data"),
               VISION_PROXY_DRAIN_GRACE_SECONDS="2", VISION_PROXY_RESULT_SIGNING_KEY=secrets.token_urlsafe(32),
               VISION_PROXY_UPLOAD_HOST=UPLOAD_HOST)
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        env.update(VISION_PROXY_RESULT_STORE="s3", VISION_PROXY_S3_BUCKET=BUCKET, VISION_PROXY_S3_ENDPOINT_URL=endpoint,
                   VISION_PROXY_S3_REGION=REGION, VISION_PROXY_S3_ADDRESSING_STYLE="path",
                   VISION_PROXY_S3_PREFIX=f"replicas-{secrets.token_hex(4)}",
                   AWS_ACCESS_KEY_ID=S3_KEY_ID, AWS_SECRET_ACCESS_KEY=S3_SECRET)
    else:
        # One volume for both; the URL names the load balancer, played here by replica B.
        env.update(VISION_PROXY_PUBLIC_BASE_URL=f"http://127.0.0.1:{port_b}")
    # both start at once; both are stopped however the start-up ends
    with ProxyProcess(env, port=port_a) as a, ProxyProcess(env, port=port_b) as b:
        a.wait_ready(90)
        b.wait_ready(90)
        yield a, b


def test_a_request_replayed_to_the_other_replica_is_refused(replicas):
    a, b = replicas
    params = raw.v1_params("GetAsyncJobResult", "2019-12-30", {"JobId": "NO-SUCH-JOB"})
    status, body = raw.post_v1(a.port, params)
    assert (status, body["Code"]) == (400, "InvalidParameter.JobId")  # authenticated on A
    status, body = raw.post_v1(b.port, params)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


def poll(client: Any, job_id: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get_async_job_result(seg.GetAsyncJobResultRequest(job_id=job_id)).body.data
        if data.status not in ("QUEUING", "PROCESSING"):
            return data
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def test_a_job_submitted_to_one_replica_is_answered_by_the_other(replicas, portrait):
    a, b = replicas
    submitted = sdk.imageseg(a.endpoint).segment_hdcommon_image(
        seg.SegmentHDCommonImageRequest(image_url=f"{portrait.url}/person.jpg"))
    data = poll(sdk.imageseg(b.endpoint), submitted.body.request_id)
    assert (data.job_id, data.status) == (submitted.body.request_id, "PROCESS_SUCCESS")
    url = json.loads(data.result)["ImageUrl"]
    if "X-Amz-Signature=" not in url:  # the local store: minted by A, served by B
        assert url.startswith(f"http://{b.endpoint}/results/")
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200, resp.text[:300]
    img = Image.open(io.BytesIO(resp.content))
    assert (img.mode, img.size) == ("RGBA", (512, 600))


def test_a_file_uploaded_to_one_replica_is_read_by_the_other(replicas):
    """AuthorizeFileUpload on A, the PostObject on B, the action on A. The URL names the upload host, which
    resolves nowhere here: the action can only have read the object from the shared store."""
    a, b = replicas
    g = grant(a)
    resp = post(b, form(g), imagegen.text_image("PNG"))
    assert resp.status_code == 201, resp.text
    results = sdk.ocr(a.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"http://{g['Bucket']}.{g['Endpoint']}/{g['ObjectKey']}", min_height=10,
        output_probability=True)).body.data.results
    assert_lines_found([r.text for r in results])


def test_uploads_racing_with_one_policy_across_replicas_store_one(replicas):
    """Six uploads with one policy at once, three to each replica: one is stored, five refused."""
    a, b = replicas
    g = grant(a)
    files = [imagegen.blank_image(20 + i, 20) for i in range(6)]
    one_stored(race([a.port, b.port] * 3, g, files), files)
