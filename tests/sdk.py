"""Real Aliyun SDK clients pointed at a proxy, changed in nothing but the endpoint."""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_ocr20191230.client import Client as OcrClient
from alibabacloud_ocr_api20210707.client import Client as OcrApiClient
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.client import AcsClient
from aliyunsdkocr.request.v20191230.RecognizeCharacterRequest import RecognizeCharacterRequest

KEY, SECRET = "testid", "testsecret"


def config(endpoint: str, key: str = KEY, secret: str = SECRET, **extra: Any) -> Config:
    return Config(access_key_id=key, access_key_secret=secret, endpoint=endpoint, protocol="http",
                  read_timeout=15000, **extra)


def ocr(endpoint: str, **kw: Any) -> OcrClient:
    return OcrClient(config(endpoint, **kw))


def ocr_api(endpoint: str, **kw: Any) -> OcrApiClient:
    return OcrApiClient(config(endpoint, **kw))


def legacy_recognize_character(image_url: str, endpoint: str | None, key: str = KEY, secret: str = SECRET,
                               min_height: int = 10) -> dict[str, Any]:
    """aliyun-python-sdk-core + aliyun-python-sdk-ocr, V1; no endpoint means the SDK's own host."""
    client = AcsClient(key, secret, "cn-shanghai", timeout=15)
    request = RecognizeCharacterRequest()
    request.set_ImageURL(image_url)
    request.set_MinHeight(min_height)
    request.set_OutputProbability(True)
    if endpoint:
        request.set_endpoint(endpoint)
    return dict(json.loads(client.do_action_with_exception(request)))


def imageseg(endpoint: str, **kw: Any) -> Any:
    from alibabacloud_imageseg20191230.client import Client

    return Client(config(endpoint, **kw))


def imageenhan(endpoint: str, **kw: Any) -> Any:
    from alibabacloud_imageenhan20190930.client import Client

    return Client(config(endpoint, **kw))


def legacy(request: Any, endpoint: str, key: str = KEY, secret: str = SECRET) -> dict[str, Any]:
    """Send any aliyunsdk* request class through aliyun-python-sdk-core (V1) to the proxy."""
    request.set_endpoint(endpoint)
    return dict(json.loads(AcsClient(key, secret, "cn-shanghai", timeout=60).do_action_with_exception(request)))
