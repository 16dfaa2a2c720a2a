"""Bad input gets Aliyun's error: the code and status the SDKs surface, never a trace or a hang."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests import imagegen, raw, sdk
from tests.harness import ProxyServer


@pytest.fixture(scope="module")
def strict_proxy() -> Iterator[ProxyServer]:
    """No fetch allow-list (loopback is refused) and a small body cap."""
    with ProxyServer(caller_keys="testid:testsecret", max_body_bytes=64 * 1024, fetch_timeout_seconds=2) as server:
        yield server


def recognize_character(endpoint: str, url: str, min_height: int | None = 10) -> ClientException:
    with pytest.raises(ClientException) as exc:
        sdk.ocr(endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=url, min_height=min_height, output_probability=True))
    return exc.value


def recognize_general(endpoint: str, **kw) -> ClientException:
    with pytest.raises(ClientException) as exc:
        sdk.ocr_api(endpoint).recognize_general(api_models.RecognizeGeneralRequest(**kw))
    return exc.value


def test_error_envelope_is_aliyuns(proxy):
    status, headers, body = raw.request(proxy.port, body=b"Action=Nope&Version=2019-12-30&Format=JSON",
                                        headers={"content-type": "application/x-www-form-urlencoded"})
    answer = json.loads(body)
    assert status == 404 and headers["content-type"] == "application/json;charset=utf-8"
    assert list(answer) == ["RequestId", "HostId", "Code", "Message", "Recommend"]
    assert answer["Code"] == "InvalidAction.NotFound" and headers["x-acs-request-id"] == answer["RequestId"]
    assert "q=InvalidAction.NotFound" in answer["Recommend"]


def test_unknown_action_and_wrong_version(proxy):
    status, body = raw.post_v1(proxy.port, raw.v1_params("RecognizeEverything", "2019-12-30", {}))
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")
    status, body = raw.post_v1(proxy.port, raw.v1_params("RecognizeCharacter", "2018-01-01", {}))
    assert (status, body["Code"]) == (400, "InvalidVersion")


def test_missing_parameter_named_in_the_code(proxy, images):
    err = recognize_character(proxy.endpoint, f"{images.url}/text.png", min_height=None)
    assert (err.code, err.status_code) == ("MissingMinHeight", 400)
    assert err.data["Message"] == "MinHeight is mandatory for this action."


@pytest.mark.parametrize(("name", "value"), [("MinHeight", "2"), ("MinHeight", "ten"),
                                             ("OutputProbability", "maybe")])
def test_invalid_parameter(proxy, images, name, value):
    params = {"ImageURL": f"{images.url}/text.png", "MinHeight": "10", "OutputProbability": "TRUE", name: value}
    status, body = raw.post_v1(proxy.port, raw.v1_params("RecognizeCharacter", "2019-12-30", params))
    assert (status, body["Code"]) == (400, "InvalidParameter")
    assert name in body["Message"]


@pytest.mark.parametrize(("path", "code"), [
    ("/notimage.txt", "InvalidImage.Format"),
    ("/big.png", "InvalidImage.Size"),
    ("/tiny.png", "InvalidImage.Resolution"),
    ("/missing.png", "InvalidImage.Download"),
    ("/slow.png", "InvalidImage.Timeout"),
])
def test_bad_images(proxy, images, path, code):
    err = recognize_character(proxy.endpoint, f"{images.url}{path}")
    assert (err.code, err.status_code) == (code, 400)


def test_ocr_api_limits_and_codes(proxy, images):
    assert recognize_general(proxy.endpoint, url=f"{images.url}/wide.png").code == "InvalidImage.Resolution"
    assert recognize_general(proxy.endpoint, url=f"{images.url}/missing.png").code == "illegalImageUrl"
    assert recognize_general(proxy.endpoint).code == "MissingUrl"


def test_ocr_api_url_and_body_together(proxy, images):
    body = imagegen.text_image("PNG")
    headers = raw.v3_headers("RecognizeGeneral", "2021-07-07", host=proxy.endpoint, body=body,
                             query={"Url": f"{images.url}/text.png"}, content_type="application/octet-stream")
    from urllib.parse import urlencode

    status, _, answer = raw.request(proxy.port, target="/?" + urlencode({"Url": f"{images.url}/text.png"}),
                                    headers=headers, body=body)
    assert (status, json.loads(answer)["Code"]) == (400, "InvalidParameter")


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",  # instance metadata
    "http://127.0.0.1:{port}/text.png",          # loopback literal
    "http://localhost:{port}/text.png",          # a name that resolves to loopback
    "http://[::1]:{port}/text.png",
    "http://10.0.0.1/x.png",                     # private range: refused before any connection
    "ftp://127.0.0.1/x.png",
])
def test_ssrf_targets_refused(strict_proxy, images, url):
    err = recognize_character(strict_proxy.endpoint, url.format(port=images.port))
    assert (err.code, err.status_code) == ("InvalidImage.URL", 400)


def test_redirect_to_metadata_refused(proxy, images):
    err = recognize_character(proxy.endpoint, f"{images.url}/redirect-private")
    assert err.code == "InvalidImage.URL"


def test_oversized_body_answered_not_dropped(strict_proxy):
    err = recognize_general(strict_proxy.endpoint, body=__import__("io").BytesIO(imagegen.noise_image(200, 200)))
    assert (err.code, err.status_code) == ("InvalidImage.Size", 400)


@pytest.mark.parametrize("url", ["http://localhost:{port}/text.png", "http://[64:ff9b::a9fe:a9fe]/latest/",
                                 "http://[::1/x.png"])
def test_pass_url_mode_guards_urls_too(images, url):
    """In pass-url mode the kit fetches the URL, so the proxy refuses what its own fetcher would."""
    with ProxyServer(caller_keys="testid:testsecret", image_mode="pass-url") as server:
        err = recognize_character(server.endpoint, url.format(port=images.port))
    assert (err.code, err.status_code) == ("InvalidImage.URL", 400)


def test_result_url_with_a_unicode_digit_expiry_is_refused(proxy):
    status, headers, _ = raw.request(proxy.port, method="GET", target="/results/x?Expires=%C2%B2&Signature=a")
    assert status == 403 and "xml" in headers["content-type"]
