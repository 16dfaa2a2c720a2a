"""Caller authentication as Aliyun's gateway does it: V1 and V3, clock window, nonce replay, STS."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException

from proxy.aliyun.signature import pct, v1_sign, v1_string_to_sign
from tests import imagegen, raw, sdk

OCR = ("RecognizeCharacter", "2019-12-30")
GENERAL = ("RecognizeGeneral", "2021-07-07")


def test_v1_worked_example_from_reference():
    params = {"AccessKeyId": "testid", "Action": "RecognizeCharacter", "Format": "JSON",
              "ImageURL": "https://viapi-test.oss-cn-shanghai.aliyuncs.com/demo dir/a*b~c.jpg",
              "MinHeight": "10", "OutputProbability": "true", "RegionId": "cn-shanghai",
              "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
              "SignatureVersion": "1.0", "Timestamp": "2024-01-01T12:00:00Z", "Version": "2019-12-30"}
    assert v1_sign("testsecret", v1_string_to_sign("POST", params)) == "m7yavB+KnRGdbsQu2ElHYONu8+w="
    assert v1_sign("testsecret", v1_string_to_sign("GET", params)) == "qOIwMjdVrbKpOl+5mGPtogAVObg="
    assert pct("a b*~") == "a%20b%2A~"


def _recognize(port: int, params: dict[str, str]) -> tuple[int, dict]:
    return raw.post_v1(port, params)


def _ocr_params(images, **kw) -> dict[str, str]:
    return raw.v1_params(*OCR, {"ImageURL": f"{images.url}/text.png", "MinHeight": "10",
                                "OutputProbability": "true"}, **kw)


def test_replayed_v1_request_is_refused(proxy, images):
    params = _ocr_params(images)
    status, first = _recognize(proxy.port, params)
    assert status == 200 and first["Data"]["Results"]
    status, again = _recognize(proxy.port, params)
    assert (status, again["Code"]) == (400, "SignatureNonceUsed")
    assert again["Message"] == "Specified signature nonce was used already."


def test_replayed_v3_request_is_refused(proxy):
    body = imagegen.text_image("JPEG")
    headers = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, content_type="application/octet-stream")
    assert raw.request(proxy.port, headers=headers, body=body)[0] == 200
    status, _, answer = raw.request(proxy.port, headers=headers, body=body)
    assert (status, json.loads(answer)["Code"]) == (400, "SignatureNonceUsed")


@pytest.mark.parametrize("skew", [-20, 20])
def test_stale_or_future_timestamp_is_refused(proxy, images, skew):
    status, body = _recognize(proxy.port, _ocr_params(images, skew_minutes=skew))
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_skew_inside_the_window_is_accepted(proxy, images):
    assert _recognize(proxy.port, _ocr_params(images, skew_minutes=-10))[0] == 200


def test_forged_secret_rejected_with_the_servers_string_to_sign(proxy, images):
    """aliyunsdkcore compares the message's string-to-sign with its own and then reports a wrong secret:
    proof that the proxy's V1 string-to-sign is byte-for-byte the SDK's."""
    with pytest.raises(ServerException) as exc:
        sdk.legacy_recognize_character(f"{images.url}/text.png", proxy.endpoint, secret="wrong")
    assert exc.value.get_error_code() == "InvalidAccessKeySecret"
    assert exc.value.get_http_status() == 400


def test_forged_v3_signature(proxy, images):
    client = sdk.ocr(proxy.endpoint, secret="wrong")
    with pytest.raises(ClientException) as exc:
        client.recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
    assert (exc.value.code, exc.value.status_code) == ("SignatureDoesNotMatch", 400)
    assert "server string to sign is:ACS3-HMAC-SHA256\n" in exc.value.data["Message"]


def test_unknown_access_key(proxy, images):
    client = sdk.ocr(proxy.endpoint, key="nobody")
    with pytest.raises(ClientException) as exc:
        client.recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
    assert (exc.value.code, exc.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)


def test_v3_body_must_match_its_declared_hash(proxy):
    body = imagegen.text_image("JPEG")
    headers = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, content_type="application/octet-stream")
    status, _, answer = raw.request(proxy.port, headers=headers, body=body[:-10] + b"0123456789")
    assert (status, json.loads(answer)["Code"]) == (400, "SignatureDoesNotMatch")


def test_v3_chunked_body_as_node_sends_it(proxy):
    body = imagegen.text_image("PNG")
    headers = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, content_type="application/octet-stream")
    status, _, answer = raw.request(proxy.port, headers=headers, body=body, chunked=True)
    assert status == 200, answer
    assert json.loads(json.loads(answer)["Data"])["prism_wnum"] == len(imagegen.LINES)


def test_host_with_scheme_as_python_sdk_sends_it(proxy, images):
    """Config(endpoint='http://host:port') makes the SDK send and sign Host 'http://host:port'."""
    client = sdk.ocr(f"http://{proxy.endpoint}")
    resp = client.recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
    assert resp.body.data.results


def test_sts_caller_maps_to_configured_key(proxy, images):
    ok = sdk.ocr(proxy.endpoint, key="STS.tempid", secret="tempsecret", security_token="the-sts-token")
    request = ocr_models.RecognizeCharacterRequest(image_url=f"{images.url}/text.png", min_height=10,
                                                   output_probability=True)
    assert ok.recognize_character(request).body.data.results
    wrong = sdk.ocr(proxy.endpoint, key="STS.tempid", secret="tempsecret", security_token="stolen")
    with pytest.raises(ClientException) as exc:
        wrong.recognize_character(request)
    assert exc.value.code == "InvalidSecurityToken.Mismatch"


def test_pop_core_styles_everything_in_body_or_query(proxy, images):
    for in_body in (True, False):
        method = "POST" if in_body else "GET"
        params = raw.v1_params(*OCR, {"ImageURL": f"{images.url}/text.png", "MinHeight": "10",
                                      "OutputProbability": "true"}, method=method, RegionId="cn-shanghai")
        if in_body:
            status, body = raw.post_v1(proxy.port, params)
        else:
            status, _, answer = raw.request(proxy.port, method="GET", target=f"/?{urlencode(params)}")
            body = json.loads(answer)
        assert status == 200 and body["Data"]["Results"], body


def test_unsigned_request_is_refused(proxy):
    status, body = raw.post_v1(proxy.port, {"Action": "RecognizeCharacter", "Version": "2019-12-30", "Format": "JSON"})
    assert (status, body["Code"]) == (400, "MissingAccessKeyId")


def test_xml_when_asked_and_when_format_is_absent(proxy, images):
    for fmt in ("XML", None):
        params = raw.v1_params(*OCR, {"ImageURL": f"{images.url}/text.png", "MinHeight": "10",
                                      "OutputProbability": "true"}, fmt=fmt)
        status, headers, answer = raw.request(proxy.port, body=urlencode(params).encode(),
                                              headers={"content-type": "application/x-www-form-urlencoded"})
        assert status == 200 and headers["content-type"] == "text/xml;charset=utf-8"
        root = ET.fromstring(answer)
        assert root.tag == "RecognizeCharacterResponse" and root.findtext("RequestId")
        assert len(root.findall("Data/Results")) == len(imagegen.LINES)
        assert root.find("Data/Results/TextRectangles/Left") is not None
    params = raw.v1_params("Nope", "2019-12-30", {}, fmt="XML")
    status, _, answer = raw.request(proxy.port, body=urlencode(params).encode(),
                                    headers={"content-type": "application/x-www-form-urlencoded"})
    error = ET.fromstring(answer)
    assert status == 404 and error.tag == "Error"
    assert [child.tag for child in error] == ["RequestId", "HostId", "Code", "Message", "Recommend"]
    assert error.findtext("Code") == "InvalidAction.NotFound"


def test_sdk_raw_body_via_ocr_api(proxy):
    """ocr-api's raw body is part of the signed payload hash."""
    resp = sdk.ocr_api(proxy.endpoint).recognize_general(
        api_models.RecognizeGeneralRequest(body=io.BytesIO(imagegen.text_image("PNG"))))
    assert json.loads(resp.body.data)["prism_wnum"] == len(imagegen.LINES)


def test_v1_routes_by_its_signed_parameters_not_by_added_headers(proxy, images):
    """An x-acs-action header added to a V1 request must not redirect it to another action."""
    params = _ocr_params(images)
    status, _, answer = raw.request(proxy.port, body=urlencode(params).encode(), headers={
        "content-type": "application/x-www-form-urlencoded", "x-acs-action": "SegmentBody",
        "x-acs-version": "2019-12-30"})
    assert status == 200 and "Results" in json.loads(answer)["Data"]
    params = _ocr_params(images, fmt="XML")
    status, headers, answer = raw.request(proxy.port, body=urlencode(params).encode(), headers={
        "content-type": "application/x-www-form-urlencoded", "x-acs-action": "RecognizeCharacter"})
    assert status == 200 and headers["content-type"] == "text/xml;charset=utf-8"  # its signed Format


def test_v3_signature_must_cover_routing_clock_and_nonce(proxy):
    """A signature over only host and body hash would let action, date and nonce change under it."""
    body = imagegen.text_image("PNG")
    headers = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, content_type="application/octet-stream")
    from types import SimpleNamespace

    from alibabacloud_tea_openapi.utils import Utils

    narrow = {"host": headers["host"], "x-acs-content-sha256": headers["x-acs-content-sha256"]}
    auth = Utils.get_authorization(SimpleNamespace(pathname="/", query={}, headers=narrow, method="POST"),
                                   "ACS3-HMAC-SHA256", narrow["x-acs-content-sha256"], raw.KEY, raw.SECRET)
    status, _, answer = raw.request(proxy.port, headers={**headers, "Authorization": auth}, body=body)
    assert (status, json.loads(answer)["Code"]) == (400, "IncompleteSignature")


@pytest.mark.parametrize("where", ["v1", "v3"])
def test_non_ascii_signature_is_a_mismatch_not_a_crash(proxy, images, where):
    if where == "v1":
        params = {**_ocr_params(images), "Signature": "é"}
        status, body = raw.post_v1(proxy.port, params)
        code = body["Code"]
    else:
        headers = raw.v3_headers(*GENERAL, host=proxy.endpoint)
        headers["Authorization"] = headers["Authorization"].rsplit("Signature=", 1)[0] + "Signature=é"
        status, _, answer = raw.request(proxy.port, headers=headers)
        code = json.loads(answer)["Code"]
    assert (status, code) == (400, "SignatureDoesNotMatch")


def _v3_then_add(proxy, add: dict[str, str], **sign: str) -> tuple[int, str]:
    """Sign a V3 request, then add headers the signature does not cover (as anyone on the path could)."""
    body = imagegen.text_image("PNG")
    headers = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, **sign)
    status, _, answer = raw.request(proxy.port, headers={**headers, **add}, body=body)
    return status, json.loads(answer)["Code"]


def test_v3_sts_token_must_be_signed(proxy):
    """The STS token is what makes a temporary key valid: an unsigned one could be swapped on the path."""
    status, code = _v3_then_add(proxy, {"x-acs-security-token": "the-sts-token"}, key="STS.tempid",
                                secret="tempsecret", content_type="application/octet-stream")
    assert (status, code) == (400, "IncompleteSignature")
    body = imagegen.text_image("PNG")
    signed = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, key="STS.tempid", secret="tempsecret",
                            content_type="application/octet-stream", **{"x-acs-security-token": "the-sts-token"})
    assert raw.request(proxy.port, headers=signed, body=body)[0] == 200


@pytest.mark.parametrize("added", [{"x-acs-whatever": "1"}, {"X-Acs-Accesskey-Id": "testid"}])
def test_v3_unsigned_acs_headers_are_refused(proxy, added):
    status, code = _v3_then_add(proxy, added, content_type="application/octet-stream")
    assert (status, code) == (400, "IncompleteSignature")


def test_v3_unsigned_content_type_is_refused(proxy):
    """Content-Type decides whether the body is read as form parameters or as the image itself."""
    status, code = _v3_then_add(proxy, {"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, code) == (400, "IncompleteSignature")
