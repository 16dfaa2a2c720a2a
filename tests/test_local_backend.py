"""The embedded backend behaves like the kit behind API Gateway with IAM auth: it checks SigV4 itself."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from botocore.credentials import Credentials

from proxy.config import KitLimits, KitRoutes
from proxy.kit import budget
from proxy.kit.local.server import LocalBackend
from proxy.kit.sigv4 import sign, verify
from tests import imagegen
from tests.harness import LoopThread
from tests.test_sdk_ocr import assert_lines_found


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LoopThread() as lt, lt.started(LocalBackend("cn-northwest-1", "prod", KitRoutes())) as local:
        yield local


def post(backend: LocalBackend, body: bytes, path: str = "/prod/lite-ocr", creds: Credentials | None = None,
         region: str = "cn-northwest-1", tamper: bytes | None = None) -> requests.Response:
    url = backend.base_url + path
    headers = sign(url, body, hashlib.sha256(body).hexdigest(), creds or backend.credentials, region,
                   {"Content-Type": "application/json"})
    return requests.post(url, data=tamper or body, headers=headers, timeout=30)


def img_body(data: bytes) -> bytes:
    return json.dumps({"img": base64.b64encode(data).decode()}).encode()


def test_signed_request_gets_kit_shaped_lines(backend):
    resp = post(backend, img_body(imagegen.text_image("PNG")))
    assert resp.status_code == 200 and "rapidocr" in resp.headers["x-local-model"]
    lines = resp.json()
    assert_lines_found([line["words"] for line in lines])
    assert all(set(line) == {"words", "location", "score"} for line in lines)
    assert [line["location"]["top"] for line in lines] == sorted(line["location"]["top"] for line in lines)


@pytest.mark.parametrize("case", ["wrong-secret", "wrong-region", "tampered-body", "unsigned", "undeployed"])
def test_signature_and_route_refusals_are_api_gateway_403s(backend, case):
    body = img_body(imagegen.blank_image(32, 32))
    if case == "unsigned":
        resp = requests.post(backend.base_url + "/prod/lite-ocr", data=body, timeout=10)
    elif case == "wrong-secret":
        resp = post(backend, body, creds=Credentials(backend.credentials.access_key, "not-the-secret"))
    elif case == "wrong-region":
        resp = post(backend, body, region="cn-north-1")
    elif case == "tampered-body":
        resp = post(backend, body, tamper=img_body(imagegen.blank_image(33, 33)))
    else:
        resp = post(backend, body, path="/prod/face-detection")
    assert resp.status_code == 403 and "message" in resp.json()


@pytest.mark.parametrize(("body", "text"), [
    (b"{not json", "invalid param"),
    (b'{"url": "http://x/a.png", "img": "AAAA"}', "`url` and `img` cannot be used at the same time"),
    (b'{"img": "!!!not base64!!!"}', "`parameter `img` illegal"),
    (b'{"img": "aGVsbG8="}', "`parameter `img` illegal"),  # base64 of "hello": not an image
    (b'{"url": "ftp://x/a.png"}', "`parameter `url` illegal"),
])
def test_bad_bodies_get_the_kits_plain_text_400s(backend, body, text):
    resp = post(backend, body)
    assert (resp.status_code, resp.text) == (400, text)


def test_verify_rejects_a_stale_signature(backend):
    url = backend.base_url + "/prod/lite-ocr"
    body = b"{}"
    digest = hashlib.sha256(body).hexdigest()
    headers = sign(url, body, digest, backend.credentials, "cn-northwest-1", {"Content-Type": "application/json"})
    from multidict import CIMultiDict

    later = datetime.now(UTC) + timedelta(minutes=6)
    with pytest.raises(Exception, match="expired"):
        verify("POST", url, CIMultiDict(headers), digest, backend.credentials.access_key,
               backend.credentials.secret_key, "cn-northwest-1", now=later)
    verify("POST", url, CIMultiDict(headers), digest, backend.credentials.access_key,
           backend.credentials.secret_key, "cn-northwest-1")


def _sized_body(total: int) -> bytes:
    """`{"img": "<A...>"}` of exactly `total` bytes (not an image: only the gates before decoding matter)."""
    wrap = len(b'{"img": ""}')
    return b'{"img": "' + b"A" * (total - wrap) + b'"}'


@pytest.mark.parametrize(("size", "status"), [
    (6_200_000, 400),  # the event fits: the handler runs and refuses the bytes as the kit does
    (6_291_000, 413),  # the body alone is under 6,291,456 but the event around it (headers, context) is not
    (9_000_000, 413),  # under API Gateway's 10 MiB, over Lambda's event limit
    (10 * 1024 * 1024 + 1, 413),  # over API Gateway's body limit: refused before the body is read
])
def test_request_limits_are_api_gateway_and_lambdas(backend, size, status):
    resp = post(backend, _sized_body(size))
    assert resp.status_code == status
    if status == 413:
        assert resp.json() == {"message": "Request Too Long"}
    else:
        assert resp.text == "`parameter `img` illegal"


def test_an_answer_over_the_lambda_limit_is_api_gateways_502():
    """The limit lowered (a 6 MB OCR answer would need tens of thousands of lines): the same gate."""
    limits = KitLimits.model_construct(max_response_bytes=300)
    with LoopThread() as lt, lt.started(LocalBackend("cn-northwest-1", "prod", KitRoutes(), limits=limits)) as small:
        resp = post(small, img_body(imagegen.text_image("PNG")))
        assert (resp.status_code, resp.json()) == (502, {"message": "Internal server error"})
        resp = post(small, b'{"img": "aGVsbG8="}')  # a short 400 still fits
        assert (resp.status_code, resp.text) == (400, "`parameter `img` illegal")


@pytest.mark.parametrize("size", [(800, 16), (16, 300), (2000, 30)])
def test_a_side_the_detector_rounds_to_nothing_crashes_like_the_kit(backend, size):
    """main.py DetResizeForTest rounds each side to a multiple of 32 with round(): 16 px (or under 17 after
    the 960-px scaling) becomes 0 and the kit's Lambda fails: API Gateway's 502."""
    resp = post(backend, img_body(imagegen.blank_image(*size)))
    assert (resp.status_code, resp.json()) == (502, {"message": "Internal server error"})
    assert post(backend, img_body(imagegen.blank_image(800, 17))).status_code == 200


def test_the_largest_image_the_budget_allows_reaches_the_handler(backend):
    """The proxy's budget (proxy/kit/budget.py) and the gateway's event arithmetic agree: the biggest image
    the proxy would send passes the 6,291,456-byte event limit, with its SigV4 headers and all."""
    raw = budget.max_image_bytes(KitLimits())
    resp = post(backend, img_body(b"\0" * raw))
    assert (resp.status_code, resp.text) == (400, "`parameter `img` illegal")  # the handler ran: not a 413
    assert post(backend, img_body(b"\0" * (raw + 30_000))).status_code == 413
