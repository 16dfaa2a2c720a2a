"""What the SRE relies on: /metrics that track real traffic, probes that mean something, a drain that
loses nothing. The proxy runs as a real `python -m proxy serve` process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests import raw, sdk
from tests.harness import AppServer, metric_value
from tests.kit_faults import ACCESS_KEY, REGION, SECRET_KEY, FaultKit
from tests.processes import ProxyProcess, proxy_process


@pytest.fixture
def kit() -> Iterator[FaultKit]:
    fault = FaultKit()
    with AppServer(fault.app) as server:
        fault.url = server.url  # type: ignore[attr-defined]
        yield fault


@pytest.fixture
def served(kit, tmp_path) -> Iterator[ProxyProcess]:
    with proxy_process({"VISION_PROXY_CALLER_KEYS": "testid:testsecret", "VISION_PROXY_FETCH_ALLOW": "127.0.0.1/32",
                        "VISION_PROXY_KIT_URL": kit.url,  # type: ignore[attr-defined]
                        "VISION_PROXY_AWS_REGION": REGION, "VISION_PROXY_DATA_DIR": str(tmp_path),
                        "VISION_PROXY_DRAIN_GRACE_SECONDS": "10",
                        "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}) as proc:
        yield proc


def recognize(served: ProxyProcess, images, **kw):
    return sdk.ocr(served.endpoint, **kw).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=True))


def test_metrics_track_real_traffic(served, images):
    assert served.admin_get("/healthz").json() == {"status": "ok"}
    before = served.metrics()
    recognize(served, images)
    with pytest.raises(ClientException):
        recognize(served, images, secret="forged")
    with pytest.raises(ClientException):
        sdk.ocr(served.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{images.url}/notimage.txt", min_height=10, output_probability=True))
    with pytest.raises(ClientException):  # ocr-api answers its own code; the metric still says what failed
        sdk.ocr_api(served.endpoint).recognize_general(
            api_models.RecognizeGeneralRequest(url=f"{images.url}/missing.png"))
    after = served.metrics()

    def moved(name: str, **labels: str) -> float:
        return metric_value(name, after, **labels) - metric_value(name, before, **labels)

    ok = {"action": "RecognizeCharacter", "product": "ocr", "version": "2019-12-30", "signature": "v3"}
    assert moved("vision_proxy_requests_total", **ok, code="OK") == 1
    assert moved("vision_proxy_requests_total", code="SignatureDoesNotMatch") == 1
    assert moved("vision_proxy_signature_rejections_total", reason="SignatureDoesNotMatch") == 1
    assert moved("vision_proxy_image_fetch_failures_total", reason="format") == 1
    assert moved("vision_proxy_requests_total", product="ocr-api", code="illegalImageUrl") == 1
    assert moved("vision_proxy_image_fetch_failures_total", reason="download") == 1
    assert moved("vision_proxy_kit_calls_total", route="ocr", status="200") == 1
    assert moved("vision_proxy_request_duration_seconds_count", action="RecognizeCharacter") == 3
    assert metric_value("vision_proxy_requests_in_flight", after) == 0
    assert metric_value("process_cpu_seconds_total", after) > 0 and metric_value("python_info", after) == 1


def test_probes(served):
    assert served.admin_get("/readyz").json() == {"ready": True, "reasons": []}
    assert served.admin_get("/healthz").status_code == 200


def test_sigterm_under_load_loses_nothing(kit, served, images):
    """Requests in flight when SIGTERM lands all complete; readiness drops at once; the listener then closes."""
    kit.fault = "slow"  # each kit call takes 2 s, so these are all in flight at SIGTERM
    outcomes: list[object] = []

    def one() -> None:
        params = raw.v1_params("RecognizeCharacter", "2019-12-30", {
            "ImageURL": f"{images.url}/text.png", "MinHeight": "10", "OutputProbability": "true"})
        try:
            outcomes.append(raw.post_v1(served.port, params)[0])
        except OSError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.8)
    served.sigterm()
    time.sleep(0.3)
    ready = served.admin_get("/readyz")
    assert (ready.status_code, ready.json()["reasons"]) == (503, ["draining"])
    with pytest.raises(OSError):  # no new connections during the drain
        socket.create_connection(("127.0.0.1", served.port), timeout=2).close()
    for t in threads:
        t.join(30)
    assert outcomes == [200] * 8, outcomes
    assert served.proc.wait(30) == 0
    log = served.output()
    assert '"event": "server.draining"' in log and "testsecret" not in log
