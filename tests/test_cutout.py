"""Matting results made by stripes (cutout.py, bandresize.py) are the pictures Pillow made whole before:
every ReturnForm to the bit, the matte's band-by-band resize equal to Pillow's, the photo decoded alike."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from proxy.actions.bandresize import BandResize
from proxy.actions.cutout import CROP_THRESHOLD, Photo, compose, decode
from proxy.actions.imageseg import _reduced


def _reference(data: bytes, matte_png: bytes, form: str | None, box: tuple[int, int, int, int] | None) -> Image.Image:
    """compose as it was (Pillow, whole pictures): the reference."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    matte = Image.open(io.BytesIO(matte_png)).convert("L")
    if box is not None and box != (0, 0, *matte.size):
        matte = matte.crop(box)
    if matte.size != img.size:
        matte = matte.resize(img.size, Image.Resampling.BILINEAR)
    if form == "mask":
        return matte
    if form == "whiteBK":
        return Image.composite(img, Image.new("RGB", img.size, "white"), matte)
    img.putalpha(matte)
    if form == "crop":
        bbox = matte.point(lambda v: 255 if v >= CROP_THRESHOLD else 0).getbbox()
        if bbox:
            img = img.crop(bbox)
    return img


def _encoded(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def photo_and_matte() -> tuple[bytes, bytes]:
    """A 640x480 photo-like JPEG and a 300x240 matte with a soft-edged subject (as the kit's copy gives)."""
    rng = np.random.default_rng(3)
    small = Image.fromarray(rng.integers(0, 256, (15, 20, 3), dtype=np.uint8))
    photo = np.asarray(small.resize((640, 480), Image.Resampling.BICUBIC), dtype=np.int16)
    photo = np.clip(photo + rng.integers(-10, 11, photo.shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:240, 0:300]
    subject = np.clip(255 - np.hypot(yy - 130, xx - 170) * 3, 0, 255).astype(np.uint8)  # a disc, ramped edge
    return _encoded(Image.fromarray(photo), "JPEG", quality=90), _encoded(Image.fromarray(subject), "PNG")


@pytest.mark.parametrize("form", [None, "mask", "whiteBK", "crop"])
@pytest.mark.parametrize("box", [None, (0, 0, 300, 240), (6, 10, 290, 226)])
def test_every_form_is_the_whole_picture_pillow_made(photo_and_matte, form, box):
    data, matte = photo_and_matte
    with Image.open(io.BytesIO(compose(Photo(decode(data)), matte, form, box))) as ours:
        reference = _reference(data, matte, form, box)
        assert (ours.format, ours.mode, ours.size) == ("PNG", reference.mode, reference.size)
        assert np.array_equal(np.asarray(ours), np.asarray(reference))
    if form == "crop":
        assert reference.size != (640, 480)  # it really was cut to the subject


def test_a_matte_with_no_subject_crops_nothing(photo_and_matte):
    data, _ = photo_and_matte
    empty = _encoded(Image.new("L", (300, 240), 3), "PNG")
    with Image.open(io.BytesIO(compose(Photo(decode(data)), empty, "crop"))) as ours:
        assert ours.size == (640, 480) and np.asarray(ours)[..., 3].max() == 3


def test_band_resize_is_pillows_resize():
    rng = np.random.default_rng(11)
    for trial in range(60):
        h, w = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        height, width = h + int(rng.integers(0, 700)), w + int(rng.integers(0, 700))
        if trial % 4 == 0:
            height = h
        if trial % 9 == 0:  # a reduction: left to Pillow whole, still the same picture
            height, width = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        matte = rng.integers(0, 256, (h, w), dtype=np.uint8)
        whole = np.asarray(Image.fromarray(matte).resize((width, height), Image.Resampling.BILINEAR))
        bands, step = BandResize(matte, (width, height)), int(rng.integers(1, 90))
        made = np.concatenate([bands.rows(top, min(height, top + step)) for top in range(0, height, step)])
        assert np.array_equal(made, whole), (h, w, height, width, step)


def test_the_photo_decodes_as_pillow_decodes_it(photo_and_matte):
    data, _ = photo_and_matte
    with Image.open(io.BytesIO(data)) as img:
        assert np.array_equal(decode(data), np.asarray(img.convert("RGB")))
    gray = _encoded(Image.new("L", (40, 30), 90), "JPEG")
    png = _encoded(Image.new("RGBA", (40, 30), (1, 2, 3, 4)), "PNG")
    assert np.array_equal(decode(gray), np.full((30, 40, 3), 90, np.uint8))  # not YCbCr: Pillow's
    assert np.array_equal(decode(png), np.full((30, 40, 3), (1, 2, 3), np.uint8))
    with pytest.raises(OSError):
        decode(data[:200])  # simplejpeg refuses it; Pillow says why, as before


def test_the_kits_reduced_copy_is_the_whole_resize_within_a_level(photo_and_matte):
    data, _ = photo_and_matte
    pixels = decode(data)
    for size in ((320, 240), (333, 250), (639, 479)):
        banded = np.asarray(_reduced(pixels, size)).astype(int)
        whole = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
        assert np.abs(banded - whole).max() <= 1
