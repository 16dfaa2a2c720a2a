"""Odd shapes through every OCR action, with the real SDKs, by URL and (ocr-api) as the raw body.

The embedded backend crashes where the kit's lite-ocr crashes (a side its 960-px detector rounds to
nothing: a Lambda crash, API Gateway's 502), so an admitted thin strip passes only because the proxy
widens it first. Each input is either answered (200, lines or none) or refused as Aliyun refuses it (400,
the action's documented limits in mappings/); never InternalError or a 5xx (the SDK would raise a
ServerException, which fails the test).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests import sdk
from tests.harness import AppServer, serve_files
from tests.imagegen import texture_png

ISSUE_SIZES = [(1, 1000), (1000, 1), (3, 5), (20000, 200)]  # the shapes issue 10 names: none admitted
# the extremes each family admits (sides over 15 px; ocr-api: under 8192 px, aspect at most 50)
ADMITTED = {"ocr": [(16, 4095), (4095, 16), (16, 16)], "ocr-api": [(16, 800), (800, 16), (8191, 164)]}
API_ACTIONS = ["RecognizeGeneral", "RecognizeBasic", "RecognizeAdvanced", "RecognizeHandwriting",
               "RecognizeAllText"]


SIZES = sorted({*ISSUE_SIZES, *ADMITTED["ocr"], *ADMITTED["ocr-api"]})
PNGS = {size: texture_png(*size) for size in SIZES}


@pytest.fixture(scope="module")
def shapes() -> Iterator[AppServer]:
    with serve_files({f"/{w}x{h}.png": data for (w, h), data in PNGS.items()}) as server:
        yield server


def outcome(call: Callable[[], Any]) -> str:
    """"OK", or the Aliyun code of a 400 refusal."""
    try:
        call()
    except ClientException as exc:  # a 4xx; a 5xx is a ServerException and fails the test
        assert exc.status_code == 400, exc
        return str(exc.code)
    return "OK"


@pytest.mark.parametrize("size", sorted({*ISSUE_SIZES, *ADMITTED["ocr"]}), ids=lambda s: f"{s[0]}x{s[1]}")
def test_recognize_character_answers_or_refuses_every_shape(proxy, shapes, size):
    client = sdk.ocr(proxy.endpoint)
    code = outcome(lambda: client.recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{shapes.url}/{size[0]}x{size[1]}.png", min_height=10, output_probability=True)))
    assert code == ("OK" if size in ADMITTED["ocr"] else "InvalidImage.Resolution")


@pytest.mark.parametrize("source", ["url", "body"])
@pytest.mark.parametrize("action", API_ACTIONS)
@pytest.mark.parametrize("size", sorted({*ISSUE_SIZES, *ADMITTED["ocr-api"]}), ids=lambda s: f"{s[0]}x{s[1]}")
def test_ocr_api_answers_or_refuses_every_shape(proxy, shapes, action, source, size):
    client = sdk.ocr_api(proxy.endpoint)
    request_class = getattr(api_models, f"{action}Request")
    options: dict[str, Any] = {"type": "General"} if action == "RecognizeAllText" else {}
    if source == "url":
        request = request_class(url=f"{shapes.url}/{size[0]}x{size[1]}.png", **options)
    else:
        request = request_class(body=io.BytesIO(PNGS[size]), **options)
    method = getattr(client, "recognize_" + action.removeprefix("Recognize").lower().replace("alltext", "all_text"))
    code = outcome(lambda: method(request))
    if size in ADMITTED["ocr-api"]:
        assert code == "OK"
    else:
        assert code != "OK" and "Internal" not in code  # Aliyun's own refusal for the size
