"""Shadow traffic through the real SDKs: the caller gets the primary's answer, unchanged and undelayed;
the other side runs in the background; the comparison lands in metrics, the log and the record store.

"Aliyun" is tests/fake_aliyun.py (checks V1 arrives byte for byte and V3 is re-signed); AWS is the
embedded backend with its real models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_ocr20191230 import models as ocr_models
from matplotlib import cbook

from proxy import pixels
from proxy.shadow.records import STORE_SUBDIR, RecordStore
from proxy.shadow.report import write_report
from tests import imagegen, raw, sdk
from tests.conftest import CALLER_KEYS
from tests.fake_aliyun import ALIYUN_KEY, FakeAliyun
from tests.harness import AppServer, ProxyServer, mapped, metric_value
from tests.kit_faults import remote_kit_proxy

PRODUCTS = ("ocr", "ocr-api", "imageseg", "imageenhan")


@pytest.fixture(scope="module")
def aliyun() -> Iterator[FakeAliyun]:
    fake = FakeAliyun()
    with AppServer(fake.app) as server:
        fake.base_url = server.url
        yield fake


def shadow_proxy(aliyun: FakeAliyun, tmp: Path, make: Callable[..., ProxyServer] = ProxyServer,
                 **settings: Any) -> ProxyServer:
    defaults = {"shadow_mode": "shadow", "shadow_sample": 1}
    return make(caller_keys=CALLER_KEYS, fetch_allow="127.0.0.1/32", data_dir=tmp,
                aliyun_endpoints={p: aliyun.base_url for p in PRODUCTS},
                shadow_keys=f"testid={ALIYUN_KEY[0]}:{ALIYUN_KEY[1]}", **{**defaults, **settings})


@pytest.fixture
def fresh(aliyun: FakeAliyun) -> FakeAliyun:
    aliyun.flaw = None
    aliyun.throttle_after = None
    aliyun.received.clear()
    return aliyun


@pytest.fixture(scope="module")
def shadowed(aliyun, tmp_path_factory) -> Iterator[ProxyServer]:
    with shadow_proxy(aliyun, tmp_path_factory.mktemp("shadow")) as server:
        yield server


def wait_for_records(proxy: ProxyServer, count: int, timeout: float = 60) -> list[Any]:
    store = RecordStore(Path(proxy.settings.data_dir) / STORE_SUBDIR)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store.reload()
        if len(store) >= count:
            return list(store.records())
        time.sleep(0.2)
    raise AssertionError(f"{len(store)} of {count} comparisons recorded after {timeout} s")


def recognize(proxy: ProxyServer, images: AppServer, **kw: Any) -> Any:
    return sdk.ocr(proxy.endpoint, **kw).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=True))


def test_caller_gets_aliyuns_answer_and_the_comparison_lands_everywhere(shadowed, fresh, images, capfd):
    before = metric_value("vision_proxy_shadow_comparisons_total", action="RecognizeCharacter")
    resp = recognize(shadowed, images)
    # Aliyun's own answer: its -90° form for the second line is something the AWS side never produces
    assert [r.text_rectangles.angle for r in resp.body.data.results] == [0, -90, 0]
    assert fresh.received[-1]["verdict"] == "ok" and fresh.received[-1]["kind"] == "v3"  # re-signed correctly
    record = wait_for_records(shadowed, 1)[-1]
    assert (record.action, record.mode, record.outcome) == ("RecognizeCharacter", "shadow", "matched")
    assert record.scores["f1"] == 1.0 and record.scores["cer"] < 0.05
    matched = metric_value("vision_proxy_shadow_comparisons_total", action="RecognizeCharacter", outcome="matched")
    assert matched > before
    assert metric_value("vision_proxy_shadow_score_count", action="RecognizeCharacter", metric="f1") >= 1
    logged = capfd.readouterr().out
    assert "shadow.compared" in logged and "testsecret" not in logged


OCR_MAPPINGS = mapped(lambda s: s.shadow_safe and s.compare is not None and s.compare.family == "ocr")


@pytest.mark.parametrize("spec", OCR_MAPPINGS, ids=lambda s: f"{s.product}/{s.action}")
def test_every_ocr_mapping_is_mirrored_and_compared(shadowed, fresh, images, spec):
    """Read from the mappings, not a list: a new OCR mapping is compared (and tested) with no edit here.
    A V3 call signed as the SDKs sign it, with the mapping's own offline parameters."""
    seen = len(RecordStore(Path(shadowed.settings.data_dir) / STORE_SUBDIR))
    assert spec.image is not None
    query = {spec.image.url_param: f"{images.url}/text.png", **spec.offline.params}
    headers = raw.v3_headers(spec.action, spec.version, host=shadowed.endpoint, query=query)
    status, _, answer = raw.request(shadowed.port, target="/?" + urlencode(query), headers=headers)
    assert status == 200, answer
    assert fresh.received[-1]["action"] == spec.action and fresh.received[-1]["verdict"] == "ok"
    record = wait_for_records(shadowed, seen + 1)[-1]
    assert (record.action, record.family, record.outcome) == (spec.action, "ocr", "matched"), record.details
    assert record.scores["f1"] == 1.0


def test_v1_goes_to_aliyun_byte_for_byte(shadowed, fresh, images):
    body = sdk.legacy_recognize_character(f"{images.url}/text.png", shadowed.endpoint)
    assert len(body["Data"]["Results"]) == len(imagegen.LINES)
    last = fresh.received[-1]
    assert (last["kind"], last["verdict"]) == ("v1", "ok")  # the caller's own signature verified at "Aliyun"


@pytest.mark.parametrize(("flaw", "failed", "kind"), [("missing-line", "f1", "extra"),
                                                       ("shifted-box", "f1", "box_shifted")])
def test_known_ocr_differences_are_scored(aliyun, fresh, images, tmp_path, flaw, failed, kind):
    with shadow_proxy(aliyun, tmp_path) as proxy:
        fresh.flaw = flaw
        recognize(proxy, images)
        record = wait_for_records(proxy, 1)[-1]
    assert record.outcome == "mismatched" and failed in record.failed
    assert kind in {d["kind"] for d in record.details["differences"]}


def test_a_worse_mask_is_scored(aliyun, fresh, tmp_path, pictures_url):
    with shadow_proxy(aliyun, tmp_path) as proxy:
        fresh.flaw = "worse-mask"
        url = sdk.imageseg(proxy.endpoint).segment_body(seg.SegmentBodyRequest(
            image_url=f"{pictures_url}/person.jpg", return_form="mask")).body.data.image_url
        assert url.startswith(aliyun.base_url)  # Aliyun's answer reached the caller
        record = wait_for_records(proxy, 1)[-1]
    assert record.outcome == "mismatched" and "iou" in record.failed
    assert record.images  # both masks kept for the report


def test_async_jobs_are_followed_on_both_sides(shadowed, fresh, pictures_url):
    client = sdk.imageseg(shadowed.endpoint)
    seen = len(RecordStore(Path(shadowed.settings.data_dir) / STORE_SUBDIR))
    submitted = client.segment_hdcommon_image(seg.SegmentHDCommonImageRequest(image_url=f"{pictures_url}/person.jpg"))
    job = submitted.body.request_id
    data = client.get_async_job_result(seg.GetAsyncJobResultRequest(job_id=job)).body.data
    assert (data.job_id, data.status) == (job, "PROCESS_SUCCESS")  # Aliyun's job, polled at Aliyun
    record = wait_for_records(shadowed, seen + 1)[-1]
    assert record.action == "SegmentHDCommonImage" and record.outcome == "matched", record.details
    assert record.secondary["body"]["Data"]["Status"] == "PROCESS_SUCCESS"  # AWS's job, followed too


def test_reverse_shadow_follows_the_callers_own_aws_job(aliyun, fresh, tmp_path, pictures_url):
    """AWS answers the caller with a JobId; the mirror takes the job's result image once it has finished."""
    with shadow_proxy(aliyun, tmp_path, shadow_mode="reverse-shadow") as proxy:
        client = sdk.imageseg(proxy.endpoint)
        job = client.segment_hdcommon_image(seg.SegmentHDCommonImageRequest(
            image_url=f"{pictures_url}/person.jpg")).body.request_id
        record = wait_for_records(proxy, 1)[-1]
        data = client.get_async_job_result(seg.GetAsyncJobResultRequest(job_id=job)).body.data
    assert data.status == "PROCESS_SUCCESS"  # the caller's job, at AWS
    assert (record.action, record.mode, record.family, record.outcome) == (
        "SegmentHDCommonImage", "reverse-shadow", "matting", "matched"), record.details
    assert record.primary["body"]["Data"]["JobId"] == job and record.scores["iou"] > 0.9


def test_reverse_shadow_is_not_delayed_by_a_slow_aliyun(aliyun, fresh, images, tmp_path):
    with shadow_proxy(aliyun, tmp_path, shadow_mode="reverse-shadow") as proxy:
        recognize(proxy, images)  # warm the model
        fresh.flaw = "slow"  # "Aliyun" takes 3 s
        started = time.monotonic()
        resp = recognize(proxy, images)
        elapsed = time.monotonic() - started
        assert elapsed < 2.5 and all(r.text_rectangles.angle == 0 for r in resp.body.data.results)  # AWS's
        records = wait_for_records(proxy, 2)
    assert records[-1].mode == "reverse-shadow" and records[-1].latency_ms["secondary"] >= 3000


def test_failing_shadow_side_is_an_error_outcome_not_the_callers_problem(aliyun, fresh, images, tmp_path):
    with shadow_proxy(aliyun, tmp_path, shadow_mode="reverse-shadow") as proxy:
        fresh.flaw = "error"
        assert recognize(proxy, images).body.data.results
        record = wait_for_records(proxy, 1)[-1]
    assert record.outcome == "error" and "secondary_error" in record.failed


def test_queue_overflow_drops_and_counts(aliyun, fresh, images, kit, tmp_path):
    """Five callers answered at once by an instant kit (the embedded model's pace on a busy machine spreads
    the answers out, or times them out, so nothing would overflow); a slow Aliyun keeps one mirror running
    and one waiting: the rest are dropped and counted."""
    fault, server = kit
    fault.fault = "ok"
    with shadow_proxy(aliyun, tmp_path, make=remote_kit_proxy, kit_url=server.url, shadow_mode="reverse-shadow",
                      shadow_queue_size=1, shadow_concurrency=1) as proxy:
        before = metric_value("vision_proxy_shadow_drops_total", reason="queue_full")
        fresh.flaw = "slow"
        threads = [threading.Thread(target=recognize, args=(proxy, images)) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert proxy.services.mirror.queue.qsize() <= 1
    assert metric_value("vision_proxy_shadow_drops_total", reason="queue_full") - before >= 2


def test_sampling_zero_mirrors_nothing(aliyun, fresh, images, tmp_path):
    with shadow_proxy(aliyun, tmp_path, shadow_sample=0) as proxy:
        before = metric_value("vision_proxy_shadow_drops_total", reason="sampled_out")
        assert recognize(proxy, images).body.data.results
    assert metric_value("vision_proxy_shadow_drops_total", reason="sampled_out") - before == 1
    assert not (tmp_path / STORE_SUBDIR).exists() or not list((tmp_path / STORE_SUBDIR).glob("*.json"))


def test_report_from_real_comparisons(shadowed, tmp_path):
    wait_for_records(shadowed, 1)
    out = write_report(Path(shadowed.settings.data_dir) / STORE_SUBDIR, tmp_path / "report.html")
    html = out.read_text()
    assert "RecognizeCharacter" in html and "<svg" in html


@pytest.fixture(scope="module")
def pictures_url(aliyun) -> Iterator[str]:
    """The portrait for matting, and the matte "Aliyun" answers with (made by the local model, so equal)."""
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        portrait = f.read()

    def app() -> Any:
        from aiohttp import web

        async def serve(_: web.Request) -> web.Response:
            return web.Response(body=portrait)

        application = web.Application()
        application.router.add_get("/{tail:.*}", serve)
        return application

    with AppServer(app) as server:
        with ProxyServer(caller_keys=CALLER_KEYS, fetch_allow="127.0.0.1/32") as plain:
            url = sdk.imageseg(plain.endpoint).segment_body(seg.SegmentBodyRequest(
                image_url=f"{server.url}/person.jpg", return_form="mask")).body.data.image_url
            aliyun.mask = requests.get(url, timeout=30).content
        yield server.url




def test_noise_floor_asks_the_primary_twice(aliyun, fresh, images, tmp_path):
    """With the noise floor on, the primary (here Aliyun, re-signed so its nonce is fresh) is asked again,
    and its agreement with itself is recorded beside the comparison."""
    with shadow_proxy(aliyun, tmp_path, shadow_noise=True) as proxy:
        fresh.flaw = "missing-line"
        recognize(proxy, images)
        record = wait_for_records(proxy, 1)[-1]
    assert sum(1 for r in fresh.received if r["action"] == "RecognizeCharacter") == 2
    assert all(r["verdict"] == "ok" for r in fresh.received)
    assert record.noise is not None and record.noise["f1"] == 1.0  # "Aliyun" agrees with itself
    assert record.outcome == "mismatched"  # so AWS's extra line is not excused as noise


def test_scoring_that_would_not_fit_the_decode_budget_is_dropped_and_counted(aliyun, fresh, tmp_path,
                                                                              pictures_url, monkeypatch):
    """Scoring two result images reserves from the decode budget; one that could never fit is not scored
    (and the pod not risked): counted as a `decode_budget` drop, while the caller's answer is unaffected.
    The per-pixel cost is raised here so that a small picture stands for a huge one."""
    monkeypatch.setitem(pixels.COMPARE_PER_PX, "matting", 10**6)
    with shadow_proxy(aliyun, tmp_path) as proxy:
        before = metric_value("vision_proxy_shadow_drops_total", reason="decode_budget")
        url = sdk.imageseg(proxy.endpoint).segment_body(seg.SegmentBodyRequest(
            image_url=f"{pictures_url}/person.jpg", return_form="mask")).body.data.image_url
        assert url
        deadline = time.monotonic() + 60
        while metric_value("vision_proxy_shadow_drops_total", reason="decode_budget") == before:
            assert time.monotonic() < deadline, "the comparison was neither dropped nor counted"
            time.sleep(0.2)
        assert proxy.services.backends.budget.used == 0


def test_a_throttled_noise_reask_leaves_a_real_mismatch_mismatched(aliyun, fresh, images, tmp_path):
    """The re-ask that measures Aliyun against itself is refused (Throttling.User): that is an error of the
    noise measurement, not Aliyun disagreeing with itself, so AWS's real difference is not excused."""
    before = metric_value("vision_proxy_shadow_noise_total", outcome="error")
    with shadow_proxy(aliyun, tmp_path, shadow_noise=True) as proxy:
        fresh.flaw = "missing-line"
        fresh.throttle_after = 1  # the caller's call is answered, the re-ask is throttled
        recognize(proxy, images)
        record = wait_for_records(proxy, 1)[-1]
    assert [r["action"] for r in fresh.received].count("RecognizeCharacter") == 2
    assert record.outcome == "mismatched" and "f1" in record.failed, record.details
    assert record.noise is None and "Throttling.User" in record.details["noise_error"]
    assert any("noise re-ask failed" in r for r in record.details["reasons"])
    assert metric_value("vision_proxy_shadow_noise_total", outcome="error") - before == 1


def test_reverse_shadow_compares_v1_xml_callers(aliyun, fresh, images, tmp_path):
    """A V1 caller asking Format=XML gets XML from AWS (the proxy) and from Aliyun; both are read back
    into the JSON shape and compared: no drop, no comparator crash."""
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkocr.request.v20191230.RecognizeCharacterRequest import RecognizeCharacterRequest

    failed_before = metric_value("vision_proxy_shadow_drops_total", reason="failed")
    with shadow_proxy(aliyun, tmp_path, shadow_mode="reverse-shadow") as proxy:
        request = RecognizeCharacterRequest()
        request.set_ImageURL(f"{images.url}/text.png")
        request.set_MinHeight(10)
        request.set_OutputProbability(True)
        request.set_accept_format("XML")
        request.set_endpoint(proxy.endpoint)
        answer = AcsClient(sdk.KEY, sdk.SECRET, "cn-shanghai", timeout=30).do_action(request)  # keeps the Format
        assert answer.lstrip().startswith(b"<?xml") and b"<Results>" in answer
        record = wait_for_records(proxy, 1)[-1]
    assert fresh.received[-1]["params"]["Format"] == "XML" and fresh.received[-1]["verdict"] == "ok"
    assert (record.mode, record.outcome) == ("reverse-shadow", "matched"), (record.details, record.secondary)
    assert record.scores["f1"] == 1.0
    assert metric_value("vision_proxy_shadow_drops_total", reason="failed") == failed_before


def test_unmapped_actions_are_forwarded_to_aliyun_in_shadow_mode(shadowed, fresh):
    """shadow mode: an action no mapping knows still works (Aliyun answers it, unchanged), V3 re-signed and
    V1 byte for byte, to the product its name and version point to; in aws mode it stays InvalidAction."""
    import json

    headers = raw.v3_headers("RecognizeTable", "2019-12-30", host=shadowed.endpoint, query={"ImageURL": "x"})
    status, _, body = raw.request(shadowed.port, target="/?ImageURL=x", headers=headers)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["Data"] == {"Action": "RecognizeTable", "Params": ["ImageURL"]}  # the fake's own answer
    assert (fresh.received[-1]["action"], fresh.received[-1]["verdict"]) == ("RecognizeTable", "ok")

    params = raw.v1_params("RecognizeTable", "2019-12-30", {"ImageURL": "y"})
    status, v1_answer = raw.post_v1(shadowed.port, params)
    assert status == 200 and v1_answer["Data"]["Action"] == "RecognizeTable", v1_answer
    assert (fresh.received[-1]["kind"], fresh.received[-1]["verdict"]) == ("v1", "ok")


def test_unmapped_actions_stay_invalid_outside_shadow_mode(aliyun, fresh, tmp_path):
    with shadow_proxy(aliyun, tmp_path, shadow_mode="reverse-shadow") as proxy:
        headers = raw.v3_headers("RecognizeTable", "2019-12-30", host=proxy.endpoint)
        status, _, _ = raw.request(proxy.port, headers=headers)
    assert status == 404 and not fresh.received
