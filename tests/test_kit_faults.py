"""Every failure shape of the AI Solution Kit becomes the Aliyun error an SDK understands."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator

import pytest
from alibabacloud_imageenhan20190930 import models as enhan_models
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException

from tests import imagegen, sdk
from tests.harness import AppServer, ProxyServer
from tests.kit_faults import remote_kit_proxy


@pytest.fixture(scope="module")
def kit_proxy(kit) -> Iterator[ProxyServer]:
    with remote_kit_proxy(kit_url=kit[1].url, kit_timeout_seconds=1.5, max_inflight=1) as server:
        yield server


def call(proxy: ProxyServer, images: AppServer):
    return sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=True))


def test_signed_call_succeeds_and_timing_entry_is_dropped(kit, kit_proxy, images):
    fault, _ = kit
    fault.fault = "ok"
    rejected = fault.rejected
    resp = call(kit_proxy, images)
    assert [r.text for r in resp.body.data.results] == ["hello"]
    assert fault.rejected == rejected  # the kit verified the proxy's SigV4


@pytest.mark.parametrize(("fault_name", "exc_type", "code", "status"), [
    ("400-img", ClientException, "InvalidImage.Format", 400),
    ("400-url", ClientException, "InvalidImage.Download", 400),
    ("400-param", ClientException, "InvalidParameter", 400),
    ("403", ServerException, "ServiceUnavailable", 503),
    ("413", ClientException, "InvalidImage.Size", 400),
    ("429", ThrottlingException, "Throttling", 400),
    ("502", ServerException, "InternalError", 500),
    ("504", ClientException, "Timeout", 408),
    ("200-model-error", ClientException, "InvalidImage.Format", 400),
    ("200-wrong-shape", ServerException, "InternalError", 500),
    ("200-not-json", ServerException, "InternalError", 500),
    ("close", ServerException, "ServiceUnavailable", 503),
    ("hang", ClientException, "Timeout", 408),
    ("oversized", ServerException, "InternalError", 500),  # over the kit's answer limit: never read whole
])
def test_kit_failure_shapes(kit, kit_proxy, images, fault_name, exc_type, code, status):
    kit[0].fault = fault_name
    with pytest.raises(exc_type) as exc:
        call(kit_proxy, images)
    assert (exc.value.code, exc.value.status_code) == (code, status)
    if fault_name == "429":
        assert exc.value.retry_after == 2


def test_an_image_within_the_budget_reaches_the_kit_byte_for_byte(kit, kit_proxy, images):
    """The payload budget costs an image that fits nothing: the kit gets the caller's own bytes."""
    kit[0].fault = "ok"
    call(kit_proxy, images)
    sent = base64.b64decode(json.loads(kit[0].last_body)["img"])
    assert sent == imagegen.text_image("PNG")


def test_oversized_answer_is_not_read_whole(kit, kit_proxy, images):
    """An answer past the kit's 6 MB answer limit (plus margin) is cut off, not buffered: 50 MB never arrive."""
    kit[0].fault, kit[0].streamed_mib = "oversized", 0
    with pytest.raises(ServerException) as exc:
        call(kit_proxy, images)
    assert exc.value.code == "InternalError"
    assert kit[0].streamed_mib < 30  # the proxy stopped after ~6 MiB; socket buffers hold a little more


def test_kit_unreachable(images):
    # the discard port: nothing listens
    with remote_kit_proxy(kit_url="http://127.0.0.1:9") as proxy, pytest.raises(ServerException) as exc:
        call(proxy, images)
    assert (exc.value.code, exc.value.status_code) == ("ServiceUnavailable", 503)


def test_inflight_cap_throttles_instead_of_queueing(kit, kit_proxy, images):
    kit[0].fault = "hang"
    outcomes: list[str] = []

    def one() -> None:
        try:
            call(kit_proxy, images)
            outcomes.append("ok")
        except (ClientException, ServerException) as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["Throttling", "Timeout"]


def test_no_aws_credentials_answers_service_unavailable(kit, images, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with ProxyServer(caller_keys="testid:testsecret", kit_url=kit[1].url, fetch_allow="127.0.0.1/32") as proxy:
        with pytest.raises(ServerException) as exc:
            call(proxy, images)
        assert (exc.value.code, exc.value.status_code) == ("ServiceUnavailable", 503)


# ---------------------------------------------------------------- the super-resolution route's 200s


@pytest.mark.parametrize(("fault_name", "exc_type", "code", "status"), [
    ("200-model-error", ClientException, "InvalidImage.Format", 400),
    ("200-model-error-500", ServerException, "InternalError", 500),
    ("200-model-timeout", ClientException, "Timeout", 408),
    ("200-throttling", ThrottlingException, "Throttling", 400),
    ("200-throttling-null", ThrottlingException, "Throttling", 400),
    ("200-throttling-typed", ThrottlingException, "Throttling", 400),
    ("200-not-ready", ThrottlingException, "Throttling", 400),
    ("200-unavailable", ServerException, "ServiceUnavailable", 503),
    ("200-validation", ServerException, "ServiceUnavailable", 503),
    ("200-internal", ServerException, "InternalError", 500),
])
def test_super_resolution_errors_wrapped_in_200_are_read_by_shape(kit, kit_proxy, images, fault_name, exc_type,
                                                                   code, status):
    kit[0].fault, kit[0].fail_after, kit[0].calls = fault_name, 0, 0
    with pytest.raises(exc_type) as exc:
        sdk.imageenhan(kit_proxy.endpoint).make_super_resolution_image(enhan_models.MakeSuperResolutionImageRequest(
            url=f"{images.url}/text.png", upscale_factor=2))
    assert (exc.value.code, exc.value.status_code) == (code, status)
    assert kit[0].calls >= 1  # the kit was asked: the answer's shape, not a refusal up front, made the error
