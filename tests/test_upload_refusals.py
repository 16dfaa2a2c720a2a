"""AuthorizeFileUpload's answer (V1 and V3) and the PostObject endpoint's refusals, OSS-style.

The form is sent as a real multipart POST (requests) to the proxy with the `{Bucket}.{upload_host}` Host,
the way an SDK reaches it once the name resolves to the proxy. Policies that only a holder of the signing key
could make (expired, a smaller size range) are made with the proxy's own authority.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol
from urllib.parse import urlencode

import pytest
import requests
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_openplatform20191219 import models as op_models
from alibabacloud_openplatform20191219.client import Client as OpenPlatformClient
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from urllib3 import encode_multipart_formdata

from tests import imagegen, raw, sdk
from tests.conftest import CALLER_KEYS
from tests.harness import ProxyServer

UPLOAD_HOST = "up.vision.internal"  # the default upload_host
TTL = 2


class Reachable(Protocol):
    """A proxy in this process (ProxyServer) or a `serve` process (ProxyProcess)."""

    endpoint: str
    url: str


@pytest.fixture(scope="module")
def uproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    with ProxyServer(caller_keys=CALLER_KEYS, data_dir=tmp_path_factory.mktemp("uploads"),
                     upload_host=UPLOAD_HOST) as server:
        yield server


def grant(proxy: Reachable) -> dict[str, Any]:
    body = OpenPlatformClient(sdk.config(proxy.endpoint)).authorize_file_upload(
        op_models.AuthorizeFileUploadRequest(product="ocr", region_id="cn-shanghai")).body
    return dict(body.to_map())


def form(g: dict[str, Any], **change: str) -> dict[str, str]:
    fields = {"OSSAccessKeyId": g["AccessKeyId"], "policy": g["EncodedPolicy"], "Signature": g["Signature"],
              "key": g["ObjectKey"], "success_action_status": "201"}
    return {**fields, **change}


def post(proxy: Reachable, fields: dict[str, str], data: bytes, bucket: str = "vision-upload") -> requests.Response:
    return requests.post(proxy.url, headers={"Host": f"{bucket}.{UPLOAD_HOST}"}, data=fields,
                         files={"file": ("upload.png", data, "image/png")}, timeout=30)


def oss_error(resp: requests.Response) -> tuple[int, str, str]:
    root = ET.fromstring(resp.content)
    assert root.tag == "Error" and root.findtext("RequestId") and resp.headers["x-oss-request-id"]
    return resp.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def authority(proxy: ProxyServer) -> Any:
    return proxy.services.backends.uploads


def test_v3_answer_has_every_field_and_a_real_boolean(uproxy):
    g = grant(uproxy)
    assert g["Bucket"] == "vision-upload" and g["Endpoint"] == UPLOAD_HOST and g["UseAccelerate"] is False
    assert g["AccessKeyId"].startswith("STS.") and g["RequestId"]
    policy = json.loads(base64.b64decode(g["EncodedPolicy"]))
    assert ["eq", "$key", g["ObjectKey"]] in policy["conditions"]
    assert ["content-length-range", 0, authority(uproxy).max_bytes] in policy["conditions"]


def test_v1_answer_through_the_core_sdk(uproxy):
    request = CommonRequest(domain=uproxy.endpoint, version="2019-12-19", action_name="AuthorizeFileUpload")
    request.set_method("GET")
    request.set_protocol_type("http")
    request.add_query_param("Product", "imageseg")
    doc = json.loads(AcsClient(sdk.KEY, sdk.SECRET, "cn-shanghai", timeout=15).do_action_with_exception(request))
    assert doc["UseAccelerate"] is False and doc["Endpoint"] == UPLOAD_HOST and doc["ObjectKey"]


@pytest.mark.parametrize("fmt", ["XML", None, "JSON"])
def test_v1_with_java_cores_acs_headers_answers_in_its_signed_format(uproxy, fmt):
    """Java's core SDK (>= 4.5.9) adds x-acs-action/x-acs-version to V1 requests: the answer follows the
    V1 signature and its signed Format (XML when asked or absent), not those headers."""
    params = raw.v1_params("AuthorizeFileUpload", "2019-12-19", {"Product": "ocr"}, method="GET", fmt=fmt)
    status, headers, body = raw.request(uproxy.port, "GET", "/?" + urlencode(params), headers={
        "x-acs-action": "AuthorizeFileUpload", "x-acs-version": "2019-12-19"})
    assert status == 200
    if fmt == "JSON":
        assert headers["content-type"].startswith("application/json") and json.loads(body)["UseAccelerate"] is False
    else:
        root = ET.fromstring(body)
        assert headers["content-type"] == "text/xml;charset=utf-8"
        assert root.tag == "AuthorizeFileUploadResponse" and root.findtext("UseAccelerate") == "false"


def test_upload_answers_201_then_the_action_reads_it_and_a_replay_is_refused(uproxy):
    g = grant(uproxy)
    resp = post(uproxy, form(g), imagegen.text_image("PNG"))
    assert resp.status_code == 201, resp.text
    root = ET.fromstring(resp.content)
    assert (root.tag, root.findtext("Bucket")) == ("PostResponse", "vision-upload")
    assert root.findtext("Key") == g["ObjectKey"]
    assert resp.headers["ETag"] == root.findtext("ETag")
    replay = post(uproxy, form(g), imagegen.blank_image(20, 20))
    assert oss_error(replay)[:2] == (409, "FileAlreadyExists")
    url = f"http://{g['Bucket']}.{g['Endpoint']}/{g['ObjectKey']}"  # the URL the SDKs build
    results = sdk.ocr(uproxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=url, min_height=10, output_probability=True)).body.data.results
    assert results  # the first upload's text, not the replay's blank image


def race(ports: list[int], g: dict[str, Any], files: list[bytes]) -> list[tuple[int, bytes, str]]:
    """Upload `files[i]` to `ports[i]` at once with one policy, over real HTTP; each upload is held after its
    fields and the file's first bytes until all have got that far (so all are past the store's `exists`
    check before any is stored). (status, body, ETag) of each."""
    all_started = threading.Barrier(len(files))

    def upload(port: int, data: bytes) -> tuple[int, bytes, str]:
        body, content_type = encode_multipart_formdata([*form(g).items(), ("file", ("a.png", data, "image/png"))])
        cut = body.index(data) + 16
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.putrequest("POST", "/", skip_host=True)
            for name, value in (("Host", f"vision-upload.{UPLOAD_HOST}"), ("Content-Type", content_type),
                                ("Content-Length", str(len(body)))):
                conn.putheader(name, value)
            conn.endheaders()
            conn.send(body[:cut])
            all_started.wait(timeout=30)
            conn.send(body[cut:])
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.getheader("ETag") or ""
        finally:
            conn.close()

    with ThreadPoolExecutor(len(files)) as pool:
        return list(pool.map(upload, ports, files))


def one_stored(answers: list[tuple[int, bytes, str]], files: list[bytes]) -> bytes:
    """Exactly one 201, every other OSS's replay refusal; the winner's bytes."""
    assert sorted(status for status, _, _ in answers) == [201] + [409] * (len(answers) - 1), answers
    for status, body, _ in answers:
        if status == 409:
            root = ET.fromstring(body)
            assert (root.tag, root.findtext("Code")) == ("Error", "FileAlreadyExists")
    winner = next(i for i, (status, _, _) in enumerate(answers) if status == 201)
    assert answers[winner][2] == f'"{hashlib.md5(files[winner], usedforsecurity=False).hexdigest().upper()}"'
    return files[winner]


def test_uploads_racing_with_one_policy_store_exactly_one(uproxy):
    """N uploads with one policy at once: exactly one is stored (201, its own bytes), the others refused."""
    g = grant(uproxy)
    files = [imagegen.blank_image(20 + i, 20) for i in range(6)]  # each its own bytes: the winner is known
    winner = one_stored(race([uproxy.port] * len(files), g, files), files)
    assert (uproxy.settings.data_dir / "results" / g["ObjectKey"]).read_bytes() == winner


@pytest.mark.parametrize("change, expected", [
    ({"Signature": "AAAA" + "=" * 24}, (403, "SignatureDoesNotMatch")),
    ({"OSSAccessKeyId": "LTAI5tSomethingElse"}, (403, "InvalidAccessKeyId")),
    ({"key": "upload/9999999999/00000000000000000000000000000000"}, (403, "AccessDenied")),
    ({"policy": ""}, (403, "AccessDenied")),
])
def test_forged_and_wrong_key_forms_are_refused(uproxy, change, expected):
    resp = post(uproxy, form(grant(uproxy), **change), imagegen.blank_image(20, 20))
    assert oss_error(resp)[:2] == expected


def test_a_policy_that_is_not_json_is_an_invalid_policy_document(uproxy):
    g = grant(uproxy)
    bad = base64.b64encode(b"not json").decode()
    resp = post(uproxy, form(g, policy=bad, Signature=authority(uproxy).sign(g["AccessKeyId"], bad)), b"x")
    assert oss_error(resp)[:2] == (400, "InvalidPolicyDocument")


def test_an_expired_policy_is_refused(uproxy):
    old = authority(uproxy).grant(sdk.KEY, now=time.time() - authority(uproxy).ttl - 5)
    fields = form({"AccessKeyId": old.access_key_id, "EncodedPolicy": old.encoded_policy,
                   "Signature": old.signature, "ObjectKey": old.object_key})
    status, code, message = oss_error(post(uproxy, fields, imagegen.blank_image(20, 20)))
    assert (status, code) == (403, "AccessDenied") and "expired" in message


def test_an_upload_over_the_cap_is_entity_too_large(uproxy):
    cap = authority(uproxy).max_bytes
    resp = post(uproxy, form(grant(uproxy)), b"\0" * (cap + 1))
    assert oss_error(resp)[:2] == (400, "EntityTooLarge")


def test_wrong_bucket_and_method(uproxy):
    assert oss_error(post(uproxy, form(grant(uproxy)), b"x", bucket="other"))[:2] == (404, "NoSuchBucket")
    resp = requests.get(uproxy.url, headers={"Host": f"vision-upload.{UPLOAD_HOST}"}, timeout=10)
    assert oss_error(resp)[:2] == (405, "MethodNotAllowed")


def test_an_upload_with_no_later_call_is_deleted_after_its_ttl(tmp_path):
    """A short TTL (policy 2 s, object 2 s more) and a frequent cleanup: the file goes, the URL then fails."""
    with ProxyServer(caller_keys=CALLER_KEYS, data_dir=tmp_path, upload_host=UPLOAD_HOST,
                     upload_ttl_seconds=TTL, result_cleanup_interval_seconds=0.3) as short:
        _deleted_after_ttl(short)


def _deleted_after_ttl(uproxy: ProxyServer) -> None:
    g = grant(uproxy)
    assert post(uproxy, form(g), imagegen.text_image("PNG")).status_code == 201
    path = uproxy.settings.data_dir / "results" / g["ObjectKey"]
    assert path.is_file()
    deadline = time.monotonic() + 15
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not path.exists()
    with pytest.raises(ClientException) as exc:
        sdk.ocr(uproxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"http://{g['Bucket']}.{g['Endpoint']}/{g['ObjectKey']}", min_height=10,
            output_probability=True))
    assert exc.value.code == "InvalidImage.Download"


def test_other_private_addresses_stay_refused(uproxy):
    """Not the proxy's object (a bad signature, a key never issued): fetched behind the guard, or refused."""
    ocr = sdk.ocr(uproxy.endpoint)
    forged = f"{uproxy.url}/results/ocr/x.png?Expires={int(time.time()) + 600}&Signature=AAAA"
    with pytest.raises(ClientException) as exc:
        ocr.recognize_character(ocr_models.RecognizeCharacterRequest(image_url=forged, min_height=10,
                                                                     output_probability=True))
    assert exc.value.code == "InvalidImage.URL"
    never = f"http://vision-upload.{UPLOAD_HOST}/upload/abc"
    with pytest.raises(ClientException) as exc:
        ocr.recognize_character(ocr_models.RecognizeCharacterRequest(image_url=never, min_height=10,
                                                                        output_probability=True))
    assert exc.value.code == "InvalidImage.Download"


def test_an_oversized_form_field_is_refused_before_it_is_read_whole(uproxy):
    resp = post(uproxy, form(grant(uproxy), policy="A" * (128 * 1024)), b"x")
    assert oss_error(resp)[:2] == (400, "InvalidArgument")


def test_an_api_call_whose_host_ends_in_the_upload_name_still_reaches_the_api(uproxy):
    """The API never routes by Host: an Action names an API call even at `x.{upload_host}`."""
    params = raw.v1_params("AuthorizeFileUpload", "2019-12-19", {"Product": "ocr"}, method="GET")
    status, _, body = raw.request(uproxy.port, "GET", "/?" + urlencode(params),
                                  headers={"host": f"vision-upload.{UPLOAD_HOST}"})
    assert status == 200 and json.loads(body)["Endpoint"] == UPLOAD_HOST
