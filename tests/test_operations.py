"""What the SRE relies on: /metrics that track real traffic, probes that mean something, a drain that
loses nothing. The proxy runs as a real `python -m proxy serve` process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException
from prometheus_client.parser import text_string_to_metric_families

from tests import raw, sdk
from tests.harness import AppServer, clean_env, free_port
from tests.kit_faults import ACCESS_KEY, REGION, SECRET_KEY, FaultKit


class Served:
    def __init__(self, kit_url: str, tmp: str) -> None:
        self.port, self.admin = free_port(), free_port()
        env = clean_env()
        env.update(VISION_PROXY_CALLER_KEYS="testid:testsecret", VISION_PROXY_FETCH_ALLOW="127.0.0.1/32",
                   VISION_PROXY_KIT_URL=kit_url, VISION_PROXY_AWS_REGION=REGION, VISION_PROXY_DATA_DIR=tmp,
                   VISION_PROXY_ADMIN_PORT=str(self.admin), VISION_PROXY_DRAIN_GRACE_SECONDS="10",
                   AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        self.proc = subprocess.Popen([sys.executable, "-m", "proxy", "serve", "--port", str(self.port)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while not self.ready():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.output()
            time.sleep(0.2)

    def admin_get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.admin}{path}", timeout=5)

    def ready(self) -> bool:
        try:
            return self.admin_get("/readyz").status_code == 200
        except requests.ConnectionError:
            return False

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.admin_get("/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def output(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.communicate(timeout=10)[0]


@pytest.fixture
def kit() -> Iterator[FaultKit]:
    fault = FaultKit()
    server = AppServer(fault.app)
    fault.url = server.url  # type: ignore[attr-defined]
    yield fault
    server.close()


@pytest.fixture
def served(kit, tmp_path) -> Iterator[Served]:
    proc = Served(kit.url, str(tmp_path))  # type: ignore[attr-defined]
    yield proc
    if proc.proc.poll() is None:
        proc.proc.terminate()
        proc.proc.wait(30)


def sample(metrics, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == name and labels.items() <= dict(ls).items())


def recognize(served: Served, images, **kw):
    return sdk.ocr(f"127.0.0.1:{served.port}", **kw).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=True))


def test_metrics_track_real_traffic(served, images):
    assert served.admin_get("/healthz").json() == {"status": "ok"}
    before = served.metrics()
    recognize(served, images)
    with pytest.raises(ClientException):
        recognize(served, images, secret="forged")
    with pytest.raises(ClientException):
        sdk.ocr(f"127.0.0.1:{served.port}").recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{images.url}/notimage.txt", min_height=10, output_probability=True))
    with pytest.raises(ClientException):  # ocr-api answers its own code; the metric still says what failed
        sdk.ocr_api(f"127.0.0.1:{served.port}").recognize_general(
            api_models.RecognizeGeneralRequest(url=f"{images.url}/missing.png"))
    after = served.metrics()

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    ok = {"action": "RecognizeCharacter", "product": "ocr", "version": "2019-12-30", "signature": "v3"}
    assert moved("vision_proxy_requests_total", **ok, code="OK") == 1
    assert moved("vision_proxy_requests_total", code="SignatureDoesNotMatch") == 1
    assert moved("vision_proxy_signature_rejections_total", reason="SignatureDoesNotMatch") == 1
    assert moved("vision_proxy_image_fetch_failures_total", reason="format") == 1
    assert moved("vision_proxy_requests_total", product="ocr-api", code="illegalImageUrl") == 1
    assert moved("vision_proxy_image_fetch_failures_total", reason="download") == 1
    assert moved("vision_proxy_kit_calls_total", route="ocr", status="200") == 1
    assert moved("vision_proxy_request_duration_seconds_count", action="RecognizeCharacter") == 3
    assert sample(after, "vision_proxy_requests_in_flight") == 0
    assert sample(after, "process_cpu_seconds_total") > 0 and sample(after, "python_info") == 1


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
    served.proc.send_signal(signal.SIGTERM)
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
