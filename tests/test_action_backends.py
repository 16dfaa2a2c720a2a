"""A backend per action: one setting sends SegmentCommonImage to a second backend while SegmentBody stays on
the kit. Both backends are FaultKits (tests/kit_faults.py) verifying SigV4 on their own ports; the calls come
through the real imageseg SDK."""

from __future__ import annotations

import io
import json

import pytest
from alibabacloud_imageseg20191230 import models as seg

from proxy.config import ConfigError, load_settings
from tests import sdk
from tests.harness import AppServer, serve_files
from tests.imagegen import texture
from tests.kit_faults import FaultKit, remote_kit_proxy


def _png(width: int = 96, height: int = 80) -> bytes:
    out = io.BytesIO()
    texture(width, height).save(out, "PNG")
    return out.getvalue()


def test_common_image_goes_to_its_own_backend_and_body_stays_on_the_kit() -> None:
    kit, own = FaultKit(), FaultKit()
    kit.fault = own.fault = "matte"
    with AppServer(kit.app) as kit_server, AppServer(own.app) as own_server, \
            serve_files({"/photo.png": _png()}) as pictures, \
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
    with AppServer(kit.app) as kit_server, serve_files({"/photo.png": _png()}) as pictures, \
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
