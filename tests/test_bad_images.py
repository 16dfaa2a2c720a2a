"""Images that break Pillow in odd ways, and bodies that break aiohttp's inflater, answer a 4xx Aliyun
error with the right code, never a 500 (issue 11: these were answered InternalError)."""

from __future__ import annotations

import gzip
import io
import json
import struct
import zlib
from collections.abc import Iterator
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from alibabacloud_imageenhan20190930 import models as enhan
from alibabacloud_imageseg20191230 import models as seg
from alibabacloud_ocr20191230 import models as ocr_models
from alibabacloud_ocr_api20210707 import models as api_models
from alibabacloud_tea_openapi.exceptions import ClientException
from PIL import Image

from tests import imagegen, raw, sdk
from tests.harness import AppServer, serve_files


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunk(kind: bytes, data: bytes) -> bytes:
    """A valid 200×100 PNG with one extra chunk right after IHDR (before the pixel data)."""
    png = imagegen.blank_image(200, 100)
    return png[:33] + _chunk(kind, data) + png[33:]


def _encoded(fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (300, 200), bytes(range(256)) * 703 + bytes(232)).save(out, fmt, **options)
    return out.getvalue()


NOT_TIFF = b"garbage!garbage!"
BOMB = zlib.compress(b"\0" * 50_000_000, 9)  # ~49 KB inflating to 50 MB, past Pillow's text-chunk limit
BAD = {
    "/exif-not-tiff.png": png_with_chunk(b"eXIf", NOT_TIFF),
    "/exif-not-tiff.webp": _encoded("WEBP", exif=b"Exif\0\0" + NOT_TIFF),
    "/ztxt-bomb.png": png_with_chunk(b"zTXt", b"Comment\0\0" + BOMB),
    "/iccp-bomb.png": png_with_chunk(b"iCCP", b"icc\0\0" + BOMB),
    "/truncated.png": imagegen.truncated("PNG"),
    "/truncated.jpg": imagegen.truncated("JPEG"),
    "/truncated.bmp": imagegen.truncated("BMP"),
}


@pytest.fixture(scope="module")
def bad() -> Iterator[AppServer]:
    with serve_files(BAD) as server:
        yield server


def test_the_bombs_are_small():
    assert all(len(BAD[p]) < 60_000 for p in ("/ztxt-bomb.png", "/iccp-bomb.png"))


@pytest.mark.parametrize("path", ["/exif-not-tiff.png", "/ztxt-bomb.png", "/iccp-bomb.png"])
def test_recognize_character(proxy, bad, path):
    with pytest.raises(ClientException) as exc:
        sdk.ocr(proxy.endpoint).recognize_character(ocr_models.RecognizeCharacterRequest(
            image_url=f"{bad.url}{path}", min_height=10, output_probability=True))
    assert (exc.value.code, exc.value.status_code) == ("InvalidImage.Format", 400)


@pytest.mark.parametrize("path", ["/exif-not-tiff.png", "/exif-not-tiff.webp", "/ztxt-bomb.png", "/iccp-bomb.png"])
def test_ocr_api_raw_body(proxy, path):
    with pytest.raises(ClientException) as exc:
        sdk.ocr_api(proxy.endpoint).recognize_general(api_models.RecognizeGeneralRequest(body=io.BytesIO(BAD[path])))
    assert (exc.value.code, exc.value.status_code) == ("InvalidImage.Format", 400)


@pytest.mark.parametrize("path", ["/truncated.png", "/truncated.jpg", "/truncated.bmp"])
def test_truncated_images_on_super_resolution(proxy, bad, path):
    with pytest.raises(ClientException) as exc:
        sdk.imageenhan(proxy.endpoint).make_super_resolution_image(enhan.MakeSuperResolutionImageRequest(
            url=f"{bad.url}{path}", upscale_factor=2))
    assert (exc.value.code, exc.value.status_code) == ("InvalidImage.Format", 400)
    assert proxy.services.backends.budget.used == 0  # the reservation was given back


@pytest.mark.parametrize("path", ["/truncated.png", "/truncated.jpg"])
def test_truncated_images_on_matting(proxy, bad, path):
    with pytest.raises(ClientException) as exc:
        sdk.imageseg(proxy.endpoint).segment_body(seg.SegmentBodyRequest(image_url=f"{bad.url}{path}"))
    assert (exc.value.code, exc.value.status_code) == ("InvalidImage.Format", 400)


def _form_post(port: int, body: bytes, encoding: str) -> tuple[int, dict[str, str], bytes]:
    return raw.request(port, body=body, headers={
        "content-type": "application/x-www-form-urlencoded", "Content-Encoding": encoding})


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_content_encoding_over_a_plain_body(proxy, images, encoding):
    form = urlencode(raw.v1_params("RecognizeCharacter", "2019-12-30", {
        "ImageURL": f"{images.url}/text.png", "MinHeight": "10", "OutputProbability": "true"})).encode()
    status, headers, answer = _form_post(proxy.port, form, encoding)
    # the parameters (Format among them) were never read, so the error is Aliyun's default XML
    error = ElementTree.fromstring(answer)
    assert (status, error.findtext("Code")) == (400, "InvalidParameter")
    assert "Content-Encoding" in (error.findtext("Message") or "") and error.findtext("RequestId")
    assert headers["connection"] == "close"


def test_a_really_gzipped_form_body_is_still_read(proxy, images):
    form = urlencode(raw.v1_params("RecognizeCharacter", "2019-12-30", {
        "ImageURL": f"{images.url}/text.png", "MinHeight": "10", "OutputProbability": "true"})).encode()
    status, _, answer = _form_post(proxy.port, gzip.compress(form), "gzip")
    assert status == 200 and json.loads(answer)["Data"]["Results"], answer
