"""A backend per action: one setting sends SegmentCommonImage to a second backend while SegmentBody stays on
the kit. Both backends are FaultKits (tests/kit_faults.py) verifying SigV4 on their own ports; the calls come
through the real imageseg SDK. The SageMaker transport is checked against the embedded backend's SageMaker
Runtime front."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_tea_openapi.exceptions import ServerException

from proxy.config import ConfigError, load_settings
from tests import sdk
from tests.conftest import CALLER_KEYS
from tests.harness import AppServer, ProxyServer, clean_env, free_port, metric_value, serve_files
from tests.imagegen import texture_png
from tests.kit_faults import FaultKit, remote_kit_proxy


def test_common_image_goes_to_its_own_backend_and_body_stays_on_the_kit() -> None:
    kit, own = FaultKit(), FaultKit()
    kit.fault = own.fault = "matte"
    with AppServer(kit.app) as kit_server, AppServer(own.app) as own_server, \
            serve_files({"/photo.png": texture_png(96, 80)}) as pictures, \
            remote_kit_proxy(kit_url=kit_server.url, action_backends={
                "SegmentCommonImage": {"url": own_server.url, "stage": "v1", "route": "object-segmentation"}}
            ) as proxy:
        client = sdk.imageseg(proxy.endpoint)
        url = f"{pictures.url}/photo.png"
        for _ in range(2):
            client.segment_body(seg.SegmentBodyRequest(image_url=url, return_form="mask"))
        common = client.segment_common_image(seg.SegmentCommonImageRequest(image_url=url, return_form="mask"))
        assert common.body.data.image_url
        assert kit.paths == ["/prod/human-segmentation"] * 2  # SegmentBody: the mapping's own route
        assert own.paths == ["/v1/object-segmentation"]  # SegmentCommonImage: the override, nothing else
        assert kit.rejected == own.rejected == 0  # each verified the proxy's SigV4
        assert json.loads(own.last_body).keys() == {"img"}  # the kit's segmentation request, as the kit gets it


def test_override_without_url_changes_only_the_route_on_the_kit() -> None:
    kit = FaultKit()
    kit.fault = "matte"
    with AppServer(kit.app) as kit_server, serve_files({"/photo.png": texture_png(96, 80)}) as pictures, \
            remote_kit_proxy(kit_url=kit_server.url,
                             action_backends={"SegmentBody": {"route": "general-segmentation"}}) as proxy:
        client = sdk.imageseg(proxy.endpoint)
        client.segment_body(seg.SegmentBodyRequest(image_url=f"{pictures.url}/photo.png", return_form="mask"))
        client.segment_hdbody(seg.SegmentHDBodyRequest(image_url=f"{pictures.url}/photo.png"))
        assert kit.paths == ["/prod/general-segmentation", "/prod/human-segmentation"]


def test_unknown_action_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(ConfigError, match="no action 'SegmentCommonImag'; did you mean SegmentCommonImage"):
        remote_kit_proxy(kit_url="http://127.0.0.1:9", action_backends={"SegmentCommonImag": {"route": "x"}})
    with pytest.raises(ConfigError, match="GetAsyncJobResult calls no kit route"):
        remote_kit_proxy(kit_url="http://127.0.0.1:9", action_backends={"GetAsyncJobResult": {"route": "x"}})


def test_one_environment_variable_and_its_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_PROXY_ACTION_BACKENDS", json.dumps({
        "SegmentCommonImage": {"transport": "sagemaker", "endpoint": "general-matting"},
        "SegmentBody": {"url": "https://abc.execute-api.cn-north-1.amazonaws.com.cn", "route": "seg"}}))
    settings = load_settings()
    assert settings.action_backends["SegmentCommonImage"].endpoint == "general-matting"
    assert str(settings.action_backends["SegmentBody"].url).startswith("https://abc.")
    for wrong, says in [({"transport": "sagemaker"}, "needs endpoint"),
                        ({"endpoint": "x"}, "set transport to sagemaker"),
                        ({"transport": "sagemaker", "endpoint": "e", "route": "r"}, "endpoint only"),
                        ({"url": "https://h/prod"}, "base URL only"),
                        ({"route": "/a b"}, "not a path")]:
        monkeypatch.setenv("VISION_PROXY_ACTION_BACKENDS", json.dumps({"SegmentBody": wrong}))
        with pytest.raises(ConfigError, match=says):
            load_settings()


def test_sagemaker_transport_signs_for_sagemaker_and_names_the_endpoint(tmp_path) -> None:
    """MakeSuperResolutionImage to a SageMaker endpoint by one setting: the embedded backend (no kit_url) plays
    SageMaker Runtime and checks the signature for service `sagemaker`; a wrong endpoint name is the operator's
    mistake, ServiceUnavailable to the caller."""
    def calls(route: str, status: str) -> float:
        return metric_value("vision_proxy_kit_calls_total", route=route, status=status)

    request = enhan.MakeSuperResolutionImageRequest(upscale_factor=2, output_format="png")
    with serve_files({"/small.png": texture_png(64, 48)}) as pictures:
        request.url = f"{pictures.url}/small.png"
        for endpoint, status in (("super-resolution", "200"), ("no-such-endpoint", "400")):
            before = calls("MakeSuperResolutionImage", status), calls("super_resolution", "200")
            with ProxyServer(caller_keys=CALLER_KEYS, fetch_allow="127.0.0.1/32", data_dir=tmp_path / endpoint,
                             action_backends={"MakeSuperResolutionImage": {"transport": "sagemaker",
                                                                           "endpoint": endpoint}}) as proxy:
                client = sdk.imageenhan(proxy.endpoint)
                if status == "200":
                    assert client.make_super_resolution_image(request).body.data.url
                else:
                    with pytest.raises(ServerException) as caught:
                        client.make_super_resolution_image(request)
                    assert caught.value.code == "ServiceUnavailable"
            assert calls("MakeSuperResolutionImage", status) - before[0] >= 1  # every tile on the override
            assert calls("super_resolution", "200") == before[1]  # none on the mapping's own route


def test_serve_refuses_an_unknown_action_before_listening() -> None:
    """`vision-proxy serve` as run: the name is checked against the mappings and the process exits 2."""
    proc = subprocess.run([sys.executable, "-m", "proxy", "serve", "--port", str(free_port())],
                          env=clean_env(VISION_PROXY_ACTION_BACKENDS='{"SegmentBdy": {"route": "x"}}'),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "no action 'SegmentBdy'; did you mean SegmentBody?" in proc.stderr
