"""Time: a waiting caller's budget bounds every kit call made for it, async jobs wait as long as the kit
itself allows, and the opt-in keep-warm sends tiny signed calls that a SigV4-checking backend accepts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_tea_openapi.exceptions import ClientException

from proxy.config import KitRoutes, Settings
from proxy.kit.local.server import LocalBackend
from tests import sdk
from tests.harness import LoopThread, ProxyServer, metric_value, proxy_with_aws_keys, serve_files
from tests.imagegen import texture_png
from tests.kit_faults import remote_kit_proxy
from tests.test_sdk_vision import download, poll

ROUTES = ("ocr", "segmentation", "super_resolution")


def keep_warm_calls(route: str, outcome: str) -> float:
    """vision_proxy_kit_keep_warm_calls, as Prometheus would scrape it (the proxies run in this process)."""
    return metric_value("vision_proxy_kit_keep_warm_calls_total", route=route, outcome=outcome)


def wait_for(condition, seconds: float = 90) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture(scope="module")
def local_kit() -> Iterator[LocalBackend]:
    """The embedded backend on its own, so the proxy's AWS keys can be chosen: it checks SigV4 like API Gateway."""
    with LoopThread() as lt, lt.started(LocalBackend("cn-northwest-1", "prod", KitRoutes())) as backend:
        yield backend


def test_keep_warm_calls_every_route_signed(local_kit):
    before = {r: keep_warm_calls(r, "ok") for r in ROUTES}
    keys = local_kit.credentials
    with proxy_with_aws_keys(keys.access_key, keys.secret_key, kit_url=local_kit.base_url,
                             aws_region="cn-northwest-1", kit_keep_warm_seconds=0.5):
        # every route, at least twice: it repeats, and the backend accepted each signature
        assert wait_for(lambda: all(keep_warm_calls(r, "ok") >= before[r] + 2 for r in ROUTES))


def test_keep_warm_counts_a_refused_call_by_its_code(local_kit):
    before = keep_warm_calls("ocr", "ServiceUnavailable")
    with proxy_with_aws_keys("AKIDWRONGKEY", "not-the-backends-secret", kit_url=local_kit.base_url,
                             aws_region="cn-northwest-1", kit_keep_warm_seconds=0.5):
        # the backend's 403 for a bad signature is the kit refusing the proxy: ServiceUnavailable
        assert wait_for(lambda: keep_warm_calls("ocr", "ServiceUnavailable") >= before + 1)


def test_keep_warm_is_off_by_default():
    assert Settings().kit_keep_warm_seconds is None


# ---------------------------------------------------------------- timeouts


@pytest.fixture(scope="module")
def picture() -> Iterator[str]:
    with serve_files({"/t.png": texture_png(160, 96)}) as server:  # one tile at either factor
        yield f"{server.url}/t.png"


@pytest.fixture(scope="module")
def slow_proxy(kit) -> Iterator[ProxyServer]:
    """A caller budget of 1 s; a kit that needs 2 s per enlargement."""
    with remote_kit_proxy(kit_url=kit[1].url, kit_timeout_seconds=1) as server:
        yield server


def test_a_waiting_caller_gets_timeout_within_its_budget(kit, slow_proxy, picture):
    kit[0].fault = "slow-sr"
    with pytest.raises(ClientException) as exc:
        sdk.imageenhan(slow_proxy.endpoint).make_super_resolution_image(enhan.MakeSuperResolutionImageRequest(
            url=picture, upscale_factor=2))
    assert (exc.value.code, exc.value.status_code) == ("Timeout", 408)


def test_an_async_job_waits_as_long_as_the_kit_allows(kit, slow_proxy, picture):
    kit[0].fault = "slow-sr"
    client = sdk.imageenhan(slow_proxy.endpoint)
    job = client.generate_super_resolution_image(enhan.GenerateSuperResolutionImageRequest(
        image_url=picture, scale=2))
    data = poll(client, job.body.request_id, timeout=60)
    assert data.status == "PROCESS_SUCCESS", (data.error_code, data.error_message)
    assert download(json.loads(data.result)["ResultUrl"]).width > 0


def test_a_route_limit_bounds_an_async_jobs_kit_calls(kit, picture):
    kit[0].fault = "slow-sr"
    with remote_kit_proxy(kit_url=kit[1].url, kit_route_timeouts={"super_resolution": 1}) as proxy:
        client = sdk.imageenhan(proxy.endpoint)
        job = client.generate_super_resolution_image(enhan.GenerateSuperResolutionImageRequest(
            image_url=picture, scale=2))
        data = poll(client, job.body.request_id, timeout=60)
        assert (data.status, data.error_code) == ("PROCESS_FAILED", "Timeout")
