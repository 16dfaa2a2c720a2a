"""A bounded load test on loopback: 64 concurrent callers mixing valid calls, image bombs and upstream
faults against the proxy as a real `python -m proxy serve` process.

Every request must get exactly one Aliyun-shaped answer, and the process's peak RSS (VmHWM) must stay under
its baseline (after start-up and a warm-up) plus the configured decode budget. Nothing here is timed.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from PIL import Image

from tests import imagegen, raw
from tests.harness import AppServer, metric_value, serve_files
from tests.kit_faults import ACCESS_KEY, FAULTS, REGION, SECRET_KEY, FaultKit
from tests.processes import ProxyProcess, proxy_process

MiB = 1024 * 1024
BUDGET = 256 * MiB
CALLERS, ROUNDS = 64, 8


class CyclingKit(FaultKit):
    """The fault kit, answering each OCR/matting call with the next fault in turn (concurrent calls may
    share one: any fault will do); super-resolution tiles are always enlarged."""

    def __init__(self) -> None:
        super().__init__()
        self.cycle = itertools.cycle(["ok", "ok", *(f for f in FAULTS if f != "ok"), "close", "slow"])
        self.fail_after = 10**9

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.fault = next(self.cycle)
        return await super().handle(request)


def memory(proc: ProxyProcess, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of the proxy process, in bytes."""
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{proc.proc.pid}/status")


@pytest.fixture(scope="module")
def kit() -> Iterator[tuple[CyclingKit, AppServer]]:
    fault = CyclingKit()
    with AppServer(fault.app) as server:
        yield fault, server


def _upright_bomb() -> bytes:
    """A real 3000×3000 picture in a small PNG, EXIF-rotated: turning it decodes ~100 MB of pixels."""
    img = Image.new("RGB", (3000, 3000), "white")
    img.paste(Image.new("RGB", (1000, 200), "black"), (500, 500))
    out, exif = io.BytesIO(), Image.Exif()
    exif[0x0112] = 6
    img.save(out, "PNG", exif=exif)
    return out.getvalue()


@pytest.fixture(scope="module")
def files() -> Iterator[AppServer]:
    with serve_files({"/text.png": imagegen.text_image("PNG"), "/small.png": imagegen.blank_image(64, 48),
                      "/truncated.png": imagegen.truncated("PNG")}) as server:
        yield server


Request = Callable[[int], tuple[int, dict[str, str], bytes]]


def _v1(action: str, version: str, params: dict[str, str]) -> Request:
    def send(port: int) -> tuple[int, dict[str, str], bytes]:
        body = urlencode(raw.v1_params(action, version, params)).encode()
        return raw.request(port, body=body, headers={"content-type": "application/x-www-form-urlencoded"})
    return send


def _raw_body(image: bytes) -> Request:
    def send(port: int) -> tuple[int, dict[str, str], bytes]:
        headers = raw.v3_headers("RecognizeGeneral", "2021-07-07", host=f"127.0.0.1:{port}", body=image,
                                 content_type="application/octet-stream")
        return raw.request(port, headers=headers, body=image)
    return send


def _mix(files: AppServer) -> dict[str, tuple[Request, set[str] | None]]:
    """kind -> (request, the codes it may answer; None: whatever the kit fault makes of it)."""
    ocr = {"MinHeight": "10", "OutputProbability": "true"}
    return {
        "ocr-url": (_v1("RecognizeCharacter", "2019-12-30", {"ImageURL": f"{files.url}/text.png", **ocr}), None),
        "ocr-body": (_raw_body(imagegen.text_image("JPEG")), None),
        "matting": (_v1("SegmentBody", "2019-12-30", {"ImageURL": f"{files.url}/small.png"}), None),
        "enlarge": (_v1("MakeSuperResolutionImage", "2019-09-30", {"Url": f"{files.url}/small.png"}),
                    {"OK", "Throttling"}),
        "declared-bomb": (_raw_body(imagegen.declaring(8000, 8000, "JPEG", exif_orientation=6)),
                          {"InvalidImage.Resolution"}),
        "rotation-bomb": (_raw_body(_upright_bomb()), None),
        "truncated": (_v1("MakeSuperResolutionImage", "2019-09-30", {"Url": f"{files.url}/truncated.png"}),
                      {"InvalidImage.Format", "Throttling"}),
        "ssrf": (_v1("RecognizeCharacter", "2019-12-30", {"ImageURL": f"http://１２７.０.０.１:{files.port}/x", **ocr}),
                 {"InvalidImage.URL"}),
    }


def _one_answer(status: int, headers: dict[str, str], payload: bytes) -> dict[str, Any]:
    """Exactly one response on the connection, shaped as Aliyun shapes it."""
    assert headers.get("transfer-encoding") == "chunked" or len(payload) == int(headers["content-length"])
    assert headers["content-type"].startswith("application/json"), headers
    answer = json.loads(payload)
    assert answer["RequestId"] == headers["x-acs-request-id"]
    if status == 200:
        assert "Code" not in answer and answer.get("Data") is not None, answer
    else:
        assert answer["Code"] and answer["Message"] and status in (400, 403, 404, 408, 500, 503), answer
    return dict(answer)


def test_64_callers_mixing_valid_calls_bombs_and_faults(kit, files, tmp_path):
    with proxy_process({"VISION_PROXY_CALLER_KEYS": "testid:testsecret", "VISION_PROXY_FETCH_ALLOW": "127.0.0.1/32",
                        "VISION_PROXY_KIT_URL": kit[1].url, "VISION_PROXY_AWS_REGION": REGION,
                        "VISION_PROXY_DATA_DIR": str(tmp_path / "data"),
                        "VISION_PROXY_DECODE_BUDGET_BYTES": str(BUDGET), "VISION_PROXY_DECODE_WAIT_SECONDS": "3",
                        "VISION_PROXY_LOG_LEVEL": "warning", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                        "AWS_SECRET_ACCESS_KEY": SECRET_KEY}) as proxy:
        mix = _mix(files)
        for kind in ("ocr-url", "ocr-body", "enlarge", "ssrf"):  # warm-up: imports, connections, pools
            _one_answer(*mix[kind][0](proxy.port))
        baseline = memory(proxy, "VmRSS")
        kinds = list(mix)
        answers: list[tuple[str, int, dict[str, Any]]] = []
        lock = threading.Lock()

        def caller(index: int) -> None:
            for round_ in range(ROUNDS):
                kind = kinds[(index + round_) % len(kinds)]
                status, headers, payload = mix[kind][0](proxy.port)
                answer = _one_answer(status, headers, payload)
                with lock:
                    answers.append((kind, status, answer))

        with ThreadPoolExecutor(CALLERS) as pool:
            for future in [pool.submit(caller, i) for i in range(CALLERS)]:
                future.result(timeout=120)
        peak = memory(proxy, "VmHWM")

        assert len(answers) == CALLERS * ROUNDS
        assert len({a["RequestId"] for _, _, a in answers}) == len(answers)  # one answer per request
        for kind, _, answer in answers:
            expected = mix[kind][1]
            assert expected is None or answer.get("Code", "OK") in expected, (kind, answer)
        codes = {a.get("Code", "OK") for _, _, a in answers}
        assert {"OK", "InvalidImage.Resolution", "InvalidImage.URL", "InvalidImage.Format"} <= codes
        assert peak < baseline + BUDGET, f"peak {peak >> 20} MB, baseline {baseline >> 20} MB"
        # every reservation returned
        assert metric_value("vision_proxy_decode_budget_bytes_in_use", proxy.metrics()) == 0
        assert proxy.proc.poll() is None
