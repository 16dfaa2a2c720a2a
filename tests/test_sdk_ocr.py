"""The proof that counts: unchanged Aliyun SDKs read the text of a real image through the proxy and the
embedded backend's real OCR model (rapidocr), SigV4 and all."""

from __future__ import annotations

import io
import json

import pytest
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests import imagegen, sdk

EXPECTED = [text for text, _, _ in imagegen.LINES]


def _norm(text: str) -> str:
    return text.replace(" ", "")


def assert_lines_found(found: list[str]) -> None:
    """Every drawn line is read exactly (spaces aside: PP-OCR may merge or split a space)."""
    normalised = {_norm(t) for t in found}
    for line in EXPECTED:
        assert _norm(line) in normalised, f"{line!r} not in {found!r}"


@pytest.mark.parametrize("signature", ["v3", "v2"])
def test_recognize_character(proxy, images, signature):
    extra = {"signature_algorithm": "v2"} if signature == "v2" else {}
    client = sdk.ocr(proxy.endpoint, **extra)
    resp = client.recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
    results = resp.body.data.results
    assert_lines_found([r.text for r in results])
    assert resp.body.request_id and resp.status_code == 200
    for r in results:
        assert 0.3 <= r.probability <= 1
        box = r.text_rectangles
        assert box.angle == 0 and box.width > box.height > 20  # horizontal lines, 48 px font
    # boxes sit where the lines were drawn (x, y of each line's top-left)
    first = next(r for r in results if _norm(r.text) == _norm(EXPECTED[0]))
    _, x, y = imagegen.LINES[0]
    assert abs(first.text_rectangles.left - x) < 15 and abs(first.text_rectangles.top - y) < 25


def test_recognize_character_min_height_and_probability(proxy, images):
    client = sdk.ocr(proxy.endpoint)
    resp = client.recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=200, output_probability=False))
    assert resp.body.data.results == []  # every line is ~50 px high: all below MinHeight 200
    resp = client.recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/text.png", min_height=10, output_probability=False))
    assert resp.body.data.results and all(r.probability is None for r in resp.body.data.results)


def test_exif_orientation_applied(proxy, images):
    """A photo stored sideways with EXIF orientation 6 reads as upright text."""
    client = sdk.ocr_api(proxy.endpoint)
    resp = client.recognize_general(api_models.RecognizeGeneralRequest(url=f"{images.url}/rotated.jpg"))
    data = json.loads(resp.body.data)
    assert_lines_found([w["word"] for w in data["prism_wordsInfo"]])
    assert (data["width"], data["height"]) == imagegen.SIZE
    assert (data["orgWidth"], data["orgHeight"]) == imagegen.SIZE[::-1]


@pytest.mark.parametrize("source", ["url", "body"])
def test_ocr_api_recognize_general(proxy, images, source):
    client = sdk.ocr_api(proxy.endpoint)
    if source == "url":
        request = api_models.RecognizeGeneralRequest(url=f"{images.url}/text.jpg")
    else:
        request = api_models.RecognizeGeneralRequest(body=io.BytesIO(imagegen.text_image("JPEG")))
    resp = client.recognize_general(request)
    assert isinstance(resp.body.data, str)  # ocr-api's Data is a JSON string
    data = json.loads(resp.body.data)
    words = data["prism_wordsInfo"]
    assert_lines_found([w["word"] for w in words])
    assert data["prism_wnum"] == len(words) == len(EXPECTED)
    assert (data["width"], data["height"]) == (data["orgWidth"], data["orgHeight"]) == imagegen.SIZE
    assert data["content"] == "".join(f"{w['word']} " for w in words)
    for w in words:
        assert isinstance(w["prob"], int) and 30 <= w["prob"] <= 100
        corners = [(p["x"], p["y"]) for p in w["pos"]]
        assert corners[0] == (w["x"], w["y"]) and corners[2] == (w["x"] + w["width"], w["y"] + w["height"])


def test_ocr_api_basic_and_advanced_accept_their_options(proxy, images):
    client = sdk.ocr_api(proxy.endpoint)
    basic = client.recognize_basic(api_models.RecognizeBasicRequest(
        url=f"{images.url}/text.png", need_rotate=True))
    advanced = client.recognize_advanced(api_models.RecognizeAdvancedRequest(
        url=f"{images.url}/text.png", output_char_info=True, need_rotate=True, output_table=True,
        need_sort_page=True, output_figure=False, no_stamp=False, paragraph=True, row=False))
    for resp in (basic, advanced):
        assert_lines_found([w["word"] for w in json.loads(resp.body.data)["prism_wordsInfo"]])


@pytest.mark.parametrize("source", ["url", "body"])
def test_ocr_api_recognize_handwriting(proxy, images, source):
    """Added by its mapping file alone: the same prism answer as RecognizeGeneral, its options accepted."""
    client = sdk.ocr_api(proxy.endpoint)
    options = {"output_char_info": True, "need_rotate": True, "output_table": True, "need_sort_page": True,
               "paragraph": True}
    if source == "url":
        request = api_models.RecognizeHandwritingRequest(url=f"{images.url}/text.png", **options)
    else:
        request = api_models.RecognizeHandwritingRequest(body=io.BytesIO(imagegen.text_image("PNG")), **options)
    resp = client.recognize_handwriting(request)
    assert resp.status_code == 200 and isinstance(resp.body.data, str)
    data = json.loads(resp.body.data)
    words = data["prism_wordsInfo"]
    assert_lines_found([w["word"] for w in words])
    assert data["prism_wnum"] == len(words) and data["content"] == "".join(f"{w['word']} " for w in words)
    assert (data["width"], data["height"]) == imagegen.SIZE


@pytest.mark.parametrize(("source", "kind"), [("url", "General"), ("body", "HandWriting")])
def test_ocr_api_recognize_all_text_serves_the_text_types(proxy, images, source, kind):
    client = sdk.ocr_api(proxy.endpoint)
    options = {"type": kind, "output_coordinate": "points", "output_qrcode": True, "page_no": 1,
               "advanced_config": api_models.RecognizeAllTextRequestAdvancedConfig(output_row=True)}
    if source == "url":
        request = api_models.RecognizeAllTextRequest(url=f"{images.url}/text.png", **options)
    else:
        request = api_models.RecognizeAllTextRequest(body=io.BytesIO(imagegen.text_image("PNG")), **options)
    data = client.recognize_all_text(request).body.data  # an object here, not a JSON string
    assert (data.width, data.height, data.sub_image_count) == (*imagegen.SIZE, 1)
    blocks = data.sub_images[0].block_info.block_details
    assert_lines_found([b.block_content for b in blocks])
    assert data.sub_images[0].block_info.block_count == len(blocks) == len(EXPECTED)
    assert data.content == "".join(f"{b.block_content} " for b in blocks)
    first = next(b for b in blocks if _norm(b.block_content) == _norm(EXPECTED[0]))
    _, x, y = imagegen.LINES[0]
    corners = [(p.x, p.y) for p in first.block_points]
    assert abs(corners[0][0] - x) < 15 and abs(corners[0][1] - y) < 25
    assert corners[2][0] > corners[0][0] and corners[2][1] > corners[0][1]  # clockwise from the top-left
    assert 30 <= first.block_confidence <= 100 and first.block_angle == 0


def test_ocr_api_recognize_all_text_rectangles_or_no_coordinates(proxy, images):
    client = sdk.ocr_api(proxy.endpoint)
    url = f"{images.url}/text.png"
    boxed = client.recognize_all_text(api_models.RecognizeAllTextRequest(url=url, type="Advanced",
                                                                         output_coordinate="rectangle")).body.data
    rect = boxed.sub_images[0].block_info.block_details[0].block_rect
    assert rect.width > rect.height > 20 and rect.center_x > rect.width / 2 - 15
    plain = client.recognize_all_text(api_models.RecognizeAllTextRequest(url=url, type="Commerce")).body.data
    assert all(not b.block_points and b.block_rect is None for b in plain.sub_images[0].block_info.block_details)


@pytest.mark.parametrize("kind", ["IdCard", "Table", "MultiLang", "QrCode", "Invoice"])
def test_ocr_api_recognize_all_text_refuses_types_the_kit_cannot_honour(proxy, images, kind):
    client = sdk.ocr_api(proxy.endpoint)
    with pytest.raises(ClientException) as exc:
        client.recognize_all_text(api_models.RecognizeAllTextRequest(url=f"{images.url}/text.png", type=kind))
    assert exc.value.code == "invalidInputParameter" and exc.value.status_code == 400
    assert f"Type={kind} is not supported" in exc.value.message and "lite-ocr" in exc.value.message


def test_ocr_api_recognize_all_text_type_is_checked(proxy, images):
    client = sdk.ocr_api(proxy.endpoint)
    with pytest.raises(ClientException) as exc:
        client.recognize_all_text(api_models.RecognizeAllTextRequest(url=f"{images.url}/text.png", type="Poster"))
    assert exc.value.code == "InvalidParameter" and exc.value.status_code == 400
    with pytest.raises(ClientException) as exc:
        client.recognize_all_text(api_models.RecognizeAllTextRequest(url=f"{images.url}/text.png"))
    assert exc.value.code == "MissingType"


def test_legacy_core_sdk_v1(proxy, images):
    body = sdk.legacy_recognize_character(f"{images.url}/text.png", proxy.endpoint)
    assert_lines_found([r["Text"] for r in body["Data"]["Results"]])
    assert set(body) == {"RequestId", "Data"}  # no Code on success


def test_legacy_core_sdk_through_http_proxy(proxy, images, monkeypatch):
    """An app that sets HTTP_PROXY and changes nothing else: the proxy gets absolute-form targets."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "")
    body = sdk.legacy_recognize_character(f"{images.url}/text.png", endpoint=None)
    assert_lines_found([r["Text"] for r in body["Data"]["Results"]])


def test_redirect_followed(proxy, images):
    client = sdk.ocr(proxy.endpoint)
    resp = client.recognize_character(ocr_models.RecognizeCharacterRequest(
        image_url=f"{images.url}/redirect-ok", min_height=10, output_probability=True))
    assert_lines_found([r.text for r in resp.body.data.results])
