"""The embedded backend's human-segmentation and super-resolution routes: the kit's contract, real models.

The person photo is Grace Hopper's portrait, shipped inside matplotlib's wheel (a dependency of the `local`
extra, because `import mediapipe` needs it), so no data is fetched or committed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import requests
from matplotlib import cbook
from PIL import Image

from proxy.config import KitRoutes
from proxy.kit.local import superres
from proxy.kit.local.server import LocalBackend
from proxy.kit.sigv4 import sign
from tests.harness import LoopThread
from tests.imagegen import texture

SEG = "/prod/human-segmentation"
SR = "/prod/super-resolution-ml"


@contextmanager
def running_backend(routes: KitRoutes | None = None) -> Iterator[LocalBackend]:
    """A new embedded backend (models load on first use) on its own loop, closed on the way out."""
    with LoopThread() as lt, lt.started(LocalBackend("cn-northwest-1", "prod", routes or KitRoutes())) as local:
        yield local


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with running_backend() as local:
        yield local


def call(backend: LocalBackend, path: str, body: bytes | dict[str, Any]) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = backend.base_url + path
    headers = sign(url, data, hashlib.sha256(data).hexdigest(), backend.credentials, "cn-northwest-1",
                   {"Content-Type": "application/json"})
    return requests.post(url, data=data, headers=headers, timeout=60)


def b64png(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def result_image(resp: requests.Response) -> Image.Image:
    assert resp.status_code == 200, (resp.status_code, resp.text, dict(resp.headers))
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"result"} and body["result"].startswith("iVBORw0KGgo")  # base64 of a PNG
    image = Image.open(io.BytesIO(base64.b64decode(body["result"])))
    assert image.format == "PNG"
    image.load()
    return image


@pytest.fixture(scope="module")
def person() -> Image.Image:
    with cbook.get_sample_data("grace_hopper.jpg") as f:  # 512×600, head and shoulders on flag and sky
        return Image.open(f).convert("RGB").resize((128, 150), Image.Resampling.BILINEAR)


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255.0**2 / np.mean(diff**2)))


# ---------------------------------------------------------------- human-segmentation


@pytest.mark.parametrize("kind", [None, "mask", "Foreground"])  # only the exact "foreground" changes anything
def test_segmentation_matte_marks_the_person(backend, person, kind):
    body: dict[str, Any] = {"img": b64png(person)}
    if kind is not None:
        body["type"] = kind
    resp = call(backend, SEG, body)
    matte = result_image(resp)
    assert "mediapipe" in resp.headers["x-local-model"]
    assert (matte.mode, matte.size) == ("L", person.size)
    m = np.asarray(matte)
    assert m[60:140, 30:100].mean() > 200  # face and uniform
    assert m[:20, :20].mean() < 30 and m[:20, -20:].mean() < 30  # flag, sky
    assert m.max() == 255 and m.min() == 0


def test_segmentation_foreground_is_the_rgb_input_with_the_matte_as_alpha(backend, person):
    matte = result_image(call(backend, SEG, {"img": b64png(person)}))
    cutout = result_image(call(backend, SEG, {"img": b64png(person), "type": "foreground"}))
    assert (cutout.mode, cutout.size) == ("RGBA", person.size)
    assert cutout.convert("RGB").tobytes() == person.tobytes()
    assert cutout.getchannel("A").tobytes() == matte.tobytes()


def test_segmentation_drops_the_inputs_alpha_like_the_kit(backend, person):
    rgba = person.copy()
    rgba.putalpha(128)
    matte = result_image(call(backend, SEG, {"img": b64png(rgba)}))
    assert matte.mode == "L" and np.asarray(matte)[60:140, 30:100].mean() > 200


# ---------------------------------------------------------------- super-resolution-ml


@pytest.mark.parametrize(("scale", "model"), [(None, "x2"), (2, "x2"), (4, "x4"), ("4", "x4"), (3, "x2"), (1, "x2")])
def test_super_resolution_gives_exactly_w_h_times_scale(backend, scale, model):
    small = texture()
    body: dict[str, Any] = {"img": b64png(small)}
    if scale is not None:
        body["scale"] = scale
    resp = call(backend, SR, body)
    out = result_image(resp)
    s = int(scale or 2)
    assert (out.mode, out.size) == ("RGB", (small.width * s, small.height * s))
    assert f"animevideov3-{model}" in resp.headers["x-local-model"]
    bicubic = small.resize(out.size, Image.Resampling.BICUBIC)
    assert psnr(out, bicubic) > 20  # a real upscale of this image, not noise or a blank


@pytest.mark.parametrize("scale", [0, -2, 2.5, "abc", "", None, True, [4]])
def test_super_resolution_bad_scale_is_invalid_param(backend, scale):
    resp = call(backend, SR, {"img": b64png(texture(16, 16)), "scale": scale})
    assert wrapped_model_error(resp) == (400, "invalid param")


def test_super_resolution_integral_float_scale_is_accepted(backend):
    out = result_image(call(backend, SR, {"img": b64png(texture(32, 24)), "scale": 2.0}))
    assert out.size == (64, 48)


def test_super_resolution_output_beyond_the_limit_fails_like_the_kit(backend):
    resp = call(backend, SR, {"img": b64png(texture(32, 24)), "scale": 1000})
    assert resp.status_code == 504 and resp.json() == {"message": "Endpoint request timed out"}
    assert "x-local-model-limit" in resp.headers and "x-local-model" not in resp.headers


# ---------------------------------------------------------------- shared request contract


@pytest.mark.parametrize("path", [SEG, SR])
@pytest.mark.parametrize(("body", "text"), [
    (b"{not json", "invalid param"),
    (b"[1]", "invalid param"),
    (b'{"url": "http://x/a.png", "img": "AAAA"}', "`url` and `img` cannot be used at the same time"),
    (b'{"img": "!!!not base64!!!"}', "`parameter `img` illegal"),
    (b'{"img": "aGVsbG8="}', "`parameter `img` illegal"),  # base64 of "hello": not an image
    (b'{"url": "ftp://x/a.png"}', "`parameter `url` illegal"),
    (b"{}", "`parameter `url` illegal"),
])
def test_bad_bodies_get_the_kits_plain_text_400s(backend, path, body, text):
    resp = call(backend, path, body)
    if path == SR:  # the container's 400 as a SageMaker ModelError, which the AwsIntegration answers as 200
        assert wrapped_model_error(resp) == (400, text)
    else:
        assert (resp.status_code, resp.text) == (400, text)


def wrapped_model_error(resp: requests.Response) -> tuple[int, str]:
    """The kit's `-ml` route: SageMaker's ModelError body arrives as HTTP 200 (sagemaker-feature-construct.ts)."""
    body = resp.json()
    assert resp.status_code == 200 and "x-amzn-ErrorType" not in resp.headers and "result" not in body
    assert body["ErrorCode"].endswith("_ERROR_FROM_MODEL")
    return body["OriginalStatusCode"], body["OriginalMessage"]


@pytest.mark.parametrize(("size", "scale"), [((1, 9), 2), ((9, 3), 4), ((3, 3), 4)])
def test_super_resolution_side_below_the_scale_crashes_like_the_kit(backend, size, scale):
    # super_resolution_app.py resizes to (w // scale * scale, h // scale * scale): 0 px, a Flask 500
    resp = call(backend, SR, {"img": b64png(texture(*size)), "scale": scale})
    assert wrapped_model_error(resp) == (500, "Internal Server Error")


def test_super_resolution_odd_sides_are_stretched_back_like_the_kit(backend):
    out = result_image(call(backend, SR, {"img": b64png(texture(9, 6)), "scale": 4}))
    assert out.size == (36, 24)


def test_routes_follow_the_configured_paths():
    with running_backend(KitRoutes(segmentation="seg-x", super_resolution="sr-x")) as local:
        assert call(local, "/prod/seg-x", {"img": b64png(texture(32, 32))}).status_code == 200
        assert call(local, "/prod/sr-x", {"img": b64png(texture(16, 16))}).status_code == 200
        assert call(local, SEG, {"img": b64png(texture(32, 32))}).status_code == 403


# ---------------------------------------------------------------- a model that cannot run answers an error


def test_missing_native_libraries_give_503_with_the_reason_not_a_fake_image(monkeypatch):
    monkeypatch.setattr(superres, "NATIVE_LIBS", {"libvulkan.so.1": "libvulkan1", "libnot-here.so.7": "libnothere7"})
    with running_backend() as local:  # a new backend: models load on first use
        resp = call(local, SR, {"img": b64png(texture(16, 16))})  # SageMaker's 503, passed through as 200
        assert (resp.status_code, resp.json()) == (200, {"message": "Service Unavailable"})
        assert "x-local-model" not in resp.headers
        assert "libnothere7" in resp.headers["x-local-model-unavailable"]
        monkeypatch.undo()  # the libraries "arrive": the next call loads the model, no restart needed
        assert result_image(call(local, SR, {"img": b64png(texture(16, 16))})).size == (32, 32)


def test_missing_mediapipe_gives_503_with_the_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)  # makes the import fail
    with running_backend() as local:
        resp = call(local, SEG, {"img": b64png(texture(32, 32))})
        assert resp.status_code == 503 and "x-local-model" not in resp.headers
        assert "mediapipe" in resp.headers["x-local-model-unavailable"]


# ---------------------------------------------------------------- the kit's crash shapes

@pytest.mark.parametrize("size", [(1, 721), (1, 1000), (9, 20000), (5761, 720), (1999, 1)])
def test_segmentation_crashes_where_the_kit_resize_does(backend, size):
    # human_seg_app.py: 720 px high, int(720 * w / h) wide: 0 is a Lambda crash, a huge width runs out of memory
    resp = call(backend, SEG, {"img": b64png(texture(*size))})
    assert (resp.status_code, resp.json()) == (502, {"message": "Internal server error"})
    assert "x-local-crash" in resp.headers


@pytest.mark.parametrize("size", [(1, 720), (3, 5), (5760, 720)])
def test_segmentation_takes_the_shapes_the_kit_takes(backend, size):
    assert result_image(call(backend, SEG, {"img": b64png(texture(*size))})).size == size
