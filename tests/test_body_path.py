"""The big-body path's pieces, against the plain forms they replace: the inbound body buffer against a join,
the kit body made in slices against the whole `{"img":"<base64>"}`, a big image's header read from its
head against the whole file. The end-to-end behaviour (the kit stand-in verifies every SigV4 payload hash)
is covered by test_ocr_payload.py and test_sdk_ocr.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import random
from collections.abc import Callable

import pytest
from PIL import Image, PngImagePlugin

from proxy.aliyun.errors import AliyunError
from proxy.aliyun.request import _Body
from proxy.images import PROBE_BYTES, LoadedImage, _inspect, _inspect_head
from proxy.kit.payload import PACE_BYTES, body_size, digest, image_body, pieces
from proxy.mappings import ImageSpec

from . import imagegen


@pytest.mark.parametrize("size", [1, 2, 1 << 20, (1 << 20) + 1, 3_000_001])
@pytest.mark.parametrize("announced", [True, False])
def test_the_body_buffer_holds_exactly_what_arrived(size: int, announced: bool) -> None:
    data = os.urandom(size)
    body = _Body(size if announced else None)
    rng = random.Random(size)
    at = 0
    while at < size:
        step = rng.randint(1, 300_000)
        body.add(data[at:at + step])
        at += step
    value = body.value(size)
    assert value == data and type(value) is bytes


def test_a_body_shorter_than_announced_is_what_arrived() -> None:
    body = _Body(100)
    body.add(b"abc")
    assert body.value(3) == b"abc"


@pytest.mark.parametrize("size", [0, 1, 2, 3, PACE_BYTES // 4 * 3, PACE_BYTES // 4 * 3 + 1, 2_000_003])
@pytest.mark.parametrize("extra", [{}, {"scale": 4, "type": "foreground"}])
def test_the_kit_body_in_slices_is_the_whole_body(size: int, extra: dict[str, object]) -> None:
    data = os.urandom(size)
    body = asyncio.run(image_body(LoadedImage(data, "png", 1, 1, 1, 1), **extra))
    whole = b"".join(pieces(body))
    assert json.loads(whole) == {"img": base64.b64encode(data).decode(), **extra}
    assert digest(body) == hashlib.sha256(whole).hexdigest() and body_size(body) == len(whole)
    assert all(len(piece) <= PACE_BYTES for piece in pieces(body))


def test_a_url_body_is_plain_bytes() -> None:
    body = asyncio.run(image_body(LoadedImage(None, "", 0, 0, 0, 0, url="http://example.com/a.png"), scale=2))
    assert body == b'{"url":"http://example.com/a.png","scale":2}'
    assert digest(body) == hashlib.sha256(body).hexdigest()


SPEC = ImageSpec(url_param="Url", formats=["png", "jpeg"], max_bytes=100 << 20, max_side=8000)
NARROW = ImageSpec(url_param="Url", formats=["png", "jpeg"], max_bytes=100 << 20, max_side=500)


def _outcome(found: tuple[LoadedImage, int] | None) -> tuple[object, ...] | None:
    if found is None:
        return None
    image, orientation = found
    return image.width, image.height, image.org_width, image.org_height, orientation, image.data


def _exif_jpeg() -> bytes:
    big = Image.frombytes("RGB", (1200, 900), os.urandom(1200 * 900 * 3))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    big.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


BIG_IMAGES: dict[str, Callable[[], bytes]] = {
    "png": lambda: imagegen.noise_image(900, 700),
    "jpeg": lambda: imagegen.noise_image(1200, 800, "JPEG"),
    "jpeg-exif": _exif_jpeg,
}


@pytest.mark.parametrize("name", BIG_IMAGES)
@pytest.mark.parametrize("spec", [SPEC, NARROW], ids=["fits", "too-wide"])
def test_a_big_images_head_reads_as_the_whole_file(name: str, spec: ImageSpec) -> None:
    data = BIG_IMAGES[name]()
    assert len(data) > PROBE_BYTES
    kind = "png" if data.startswith(b"\x89PNG") else "jpeg"
    try:
        whole = _outcome(_inspect(data, kind, spec))
    except AliyunError as err:
        with pytest.raises(AliyunError) as raised:
            _inspect_head(data, kind, spec)
        assert (raised.value.code, raised.value.message) == (err.code, err.message)
        return
    assert _outcome(_inspect_head(data, kind, spec)) == whole


def test_a_header_past_the_head_is_left_to_the_whole_file() -> None:
    info = PngImagePlugin.PngInfo()
    for i in range(30):
        info.add_text(f"note{i}", "x" * 4000)  # 120 KB of text chunks before the pixels
    out = io.BytesIO()
    Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3)).save(out, "PNG", pnginfo=info)
    data = out.getvalue()
    assert _inspect_head(data, "png", SPEC) is None
    whole = _outcome(_inspect(data, "png", SPEC))
    assert whole is not None and whole[:5] == (600, 600, 600, 600, 1)
