"""Matting results at full size: the photo and the kit's matte composed into every Aliyun `ReturnForm`, and
encoded STRIPE_ROWS rows at a time (pngstripes.py).

The full-size pictures held are the decoded photo (one RGB array, 3 bytes a pixel) and the compressed file.
The matte is kept at the kit's size and resized a band at a time (bandresize.py); there is no RGBA copy and
no whole-image encoder buffer: each stripe is assembled in one reused buffer. A 12 MP cut-out peaks near
2.1x its raw RGB size (2.9x when Pillow composed and encoded it whole). Pixels are Pillow's to the bit:
the same decode, the same matte resize, and `Image.composite`'s own integer blend for the white
background (tested).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pyspng
import simplejpeg
from PIL import Image

from .bandresize import BandResize
from .pngstripes import PngStripes

CROP_THRESHOLD = 16  # alpha below this is background when cropping to the subject
STRIPE_ROWS = 64  # rows encoded at a time: 1 MB of RGBA for a 4000 px wide photo


def decode(data: bytes) -> np.ndarray:
    """The photo's pixels as an HxWx3 array. A colour JPEG (YCbCr, every camera's) is decoded by simplejpeg
    straight into one: Pillow keeps RGB at 4 bytes a pixel (48 MB for 12 MP, and 36 more to copy it out),
    the same libjpeg-turbo decode with the same defaults (the same pixels; tested). Anything else, or a
    JPEG simplejpeg finds damaged, is Pillow's to decode or refuse, as before."""
    if data[:2] == b"\xff\xd8":
        try:
            if simplejpeg.decode_jpeg_header(data)[2] == "YCbCr":
                pixels: np.ndarray = simplejpeg.decode_jpeg(data, colorspace="RGB")
                return pixels
        except ValueError:
            pass
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


class Photo:
    """The decoded photo handed to `compose`, which takes it out (`take`) so that the last reference to it is
    compose's own, dropped before the file is joined: otherwise the caller's reference (and the executor's
    copy of the call's arguments) would keep 36 MB alive under the join's 30 MB copy of a 12 MP result."""

    def __init__(self, pixels: np.ndarray) -> None:
        self._pixels: np.ndarray | None = pixels

    def take(self) -> np.ndarray:
        pixels, self._pixels = self._pixels, None
        if pixels is None:
            raise RuntimeError("the photo was already taken")
        return pixels


def compose(photo: Photo, matte_png: bytes, form: str | None, box: tuple[int, int, int, int] | None = None
            ) -> bytes:
    """`photo`: the decoded photo (decode). `form`: mask (the matte, gray), whiteBK (RGB on white), crop (RGBA
    cut to the subject), anything else RGBA. `box`: the image's place in the copy the matte was made from
    (padding and all)."""
    rgb = photo.take()
    height, width = rgb.shape[:2]
    alpha = BandResize(_matte(matte_png, box), (width, height))  # the full-size matte, made a band at a time
    left, top, right, bottom = 0, 0, width, height
    if form == "crop":  # to the subject; when nothing is, the whole picture
        left, top, right, bottom = _subject(alpha, width) or (left, top, right, bottom)
    channels = {"mask": 1, "whiteBK": 3}.get(form or "", 4)
    png = PngStripes(right - left, bottom - top, channels)
    make = _stripe_maker(form, right - left, channels)
    for y in range(top, bottom, STRIPE_ROWS):
        end = min(bottom, y + STRIPE_ROWS)
        png.write(make(rgb[y:end, left:right], alpha.rows(y, end)[:, left:right]))
    del rgb, alpha, make  # nothing full-size is left when the file is joined: its copy takes their place
    return png.finish()


def _matte(png: bytes, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """The kit's matte as an array, cropped to `box`; an 8-bit gray PNG (what the kit writes) is decoded
    by libspng straight into one, anything else by Pillow."""
    if png[12:16] == b"IHDR" and png[24:26] == bytes((8, 0)):  # bit depth 8, colour type 0 (grayscale)
        try:
            matte: np.ndarray = pyspng.load(png)
        except RuntimeError:
            raise OSError("undecodable matte") from None  # undecodable(): as Pillow's errors are
    else:
        with Image.open(io.BytesIO(png)) as img:
            matte = np.asarray(img if img.mode == "L" else img.convert("L"))
    height, width = matte.shape
    if box is None or box == (0, 0, width, height):
        return matte
    left, top, right, bottom = box
    if 0 <= left <= right <= width and 0 <= top <= bottom <= height:
        return matte[top:bottom, left:right]
    return np.asarray(Image.fromarray(matte).crop(box))  # Pillow fills outside the picture with 0


def _subject(alpha: BandResize, width: int) -> tuple[int, int, int, int] | None:
    """The box of the pixels whose alpha is at least CROP_THRESHOLD (as Image.getbbox of the thresholded
    matte), or None when there is none."""
    rows, cols = [], np.zeros(width, dtype=bool)
    for y in range(0, alpha.height, STRIPE_ROWS):
        solid = alpha.rows(y, min(alpha.height, y + STRIPE_ROWS)) >= CROP_THRESHOLD
        rows.append(solid.any(axis=1))
        cols |= solid.any(axis=0)
    ys, xs = np.flatnonzero(np.concatenate(rows)), np.flatnonzero(cols)
    if not ys.size:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


Stripe = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _stripe_maker(form: str | None, width: int, channels: int) -> Stripe:
    """Rows of the result from the same rows of the photo (HxWx3) and matte (HxW), in one reused buffer."""
    if form == "mask":
        return lambda rgb, alpha: alpha
    out = np.empty((STRIPE_ROWS, width, channels), dtype=np.uint8)
    if form == "whiteBK":
        wide = np.empty((STRIPE_ROWS, width, 3), dtype=np.uint32)

        def on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
            # Image.composite(photo, white, matte) is Pillow's paste with an L mask, per channel
            # DIV255(white * (255 - m) + photo * m) with DIV255(a) = ((a + 128 >> 8) + a + 128) >> 8
            n = rgb.shape[0]
            m, t = alpha[..., None].astype(np.uint32), wide[:n]
            np.multiply(rgb, m, out=t)
            t += 255 * (255 - m) + 128
            t += t >> 8
            t >>= 8
            np.copyto(out[:n], t, casting="unsafe")
            return out[:n]

        return on_white

    def cut_out(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        n = rgb.shape[0]
        out[:n, :, :3] = rgb
        out[:n, :, 3] = alpha
        return out[:n]

    return cut_out
