"""Per-caller limits: a noisy AccessKeyId alone is answered Throttling.User, everyone else goes on.

End to end through the real proxy in front of a kit that answers two seconds late (tests/kit_faults.py),
with raw V1 calls (as pop-core sends them) and the Tea SDK; the token bucket itself with a fake clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_tea_openapi.exceptions import ThrottlingException

from proxy.aliyun.errors import AliyunError
from proxy.config import CallerLimit, ConfigError, load_settings
from proxy.limits import CallerLimits
from tests import raw, sdk
from tests.harness import AppServer, ProxyServer
from tests.kit_faults import remote_kit_proxy

KEYS = "testid:testsecret,busy:busysecret,noisy:noisysecret"
OCR = ("RecognizeCharacter", "2019-12-30")


@pytest.fixture(scope="module")
def limited(kit) -> Iterator[ProxyServer]:
    with remote_kit_proxy(kit_url=kit[1].url, caller_keys=KEYS,
                          caller_limits={"busy": {"concurrency": 2}, "noisy": {"qps": 0.01}}) as server:
        yield server


def ocr(proxy: ProxyServer, images: AppServer, key: str) -> tuple[int, dict]:
    secret = "testsecret" if key == "testid" else f"{key}secret"
    params = raw.v1_params(*OCR, {"ImageURL": f"{images.url}/text.png", "MinHeight": "10",
                                  "OutputProbability": "true"}, key=key, secret=secret)
    return raw.post_v1(proxy.port, params)


def test_concurrency_limit_refuses_only_that_caller(kit, limited, images):
    kit[0].fault = "slow"  # every kit call takes two seconds: requests overlap
    results: dict[str, list[tuple[int, str]]] = {"busy": [], "testid": []}

    def one(key: str) -> None:
        status, body = ocr(limited, images, key)
        results[key].append((status, body.get("Code", "OK")))

    threads = [threading.Thread(target=one, args=(key,)) for key in ["busy"] * 5 + ["testid"] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    kit[0].fault = "ok"
    assert sorted(results["busy"]) == [(200, "OK")] * 2 + [(400, "Throttling.User")] * 3
    assert results["testid"] == [(200, "OK")] * 3  # the other caller is unaffected
    assert ocr(limited, images, "busy")[0] == 200  # finished requests give their place back


def test_qps_limit_answers_throttling_the_sdk_understands(kit, limited, images):
    kit[0].fault = "ok"
    status, body = ocr(limited, images, "noisy")
    assert status == 200, body
    client = sdk.ocr(limited.endpoint, key="noisy", secret="noisysecret")
    with pytest.raises(ThrottlingException) as exc:
        client.recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
    assert exc.value.code == "Throttling.User" and exc.value.status_code == 400
    assert exc.value.retry_after >= 1
    assert "user flow control" in exc.value.message
    assert ocr(limited, images, "testid")[0] == 200


def test_token_bucket_with_a_fake_clock():
    now = [0.0]
    limits = CallerLimits(CallerLimit(qps=2), {"vip": CallerLimit(qps=10, concurrency=1)}, lambda: now[0])
    assert limits.admit(None) is None  # open mode (no keys): nothing to count
    admitted = [limits.admit("a") for _ in range(2)]  # a burst of one second's worth
    with pytest.raises(AliyunError) as exc:
        limits.admit("a")
    assert exc.value.code == "Throttling.User" and exc.value.headers["x-acs-retry-after"] == "1"
    now[0] += 0.5  # half a second refills one token
    assert limits.admit("a") is not None
    for admission in admitted:
        assert admission is not None
        admission.release()
        admission.release()  # idempotent
    vip = limits.admit("vip")
    with pytest.raises(AliyunError):
        limits.admit("vip")  # its own concurrency of 1
    assert vip is not None
    vip.release()
    assert limits.admit("vip") is not None


def test_limits_for_unknown_callers_are_a_config_error():
    with pytest.raises(ConfigError, match="not in caller_keys: nobody"):
        load_settings(None, caller_keys="testid:testsecret", caller_limits={"nobody": {"qps": 1}})
    with pytest.raises(ConfigError, match="qps"):
        load_settings(None, caller_keys="testid:testsecret", caller_limits={"testid": {"qps": 0}})
