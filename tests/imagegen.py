"""Test images made at run time with Pillow: text whose content is known, so OCR answers can be checked."""

from __future__ import annotations

import io
import math
import os
import subprocess
from functools import cache

from PIL import Image, ImageDraw, ImageFont

# (text, top-left x, top-left y) drawn at FONT_SIZE on a white canvas
LINES = [
    ("Hello World 2024 OCR test", 60, 60),
    ("中文识别测试：白板、便签", 60, 200),
    ("fabrie 无边界AI白板", 60, 340),
]
FONT_SIZE = 48
SIZE = (1000, 460)


@cache
def font_path() -> str:
    path = subprocess.run(["fc-match", "-f", "%{file}", "WenQuanYi Zen Hei"], capture_output=True,
                          text=True, check=True).stdout
    assert "wqy" in path.lower(), "install Debian fonts-wqy-zenhei (scripts/test does)"
    return path


def text_image(fmt: str = "PNG", exif_orientation: int | None = None) -> bytes:
    img = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(font_path(), FONT_SIZE)
    for text, x, y in LINES:
        draw.text((x, y), text, fill="black", font=font)
    if exif_orientation == 6:  # stored rotated: a viewer must turn it 90° clockwise to read it
        img = img.transpose(Image.Transpose.ROTATE_90)
    out = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    img.save(out, fmt, **({"exif": exif} if exif_orientation else {}))
    return out.getvalue()


def noise_image(width: int, height: int, fmt: str = "PNG") -> bytes:
    """Incompressible pixels: the encoded size tracks width x height."""
    img = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def blank_image(width: int, height: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, fmt)
    return out.getvalue()


def texture(w: int = 128, h: int = 96) -> Image.Image:
    """Shapes, edges and thin lines: enough structure for super-resolution to be judged on."""
    image = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse([w * 0.1, h * 0.1, w * 0.45, h * 0.7], fill=(200, 40, 40), outline="white", width=2)
    draw.rectangle([w * 0.55, h * 0.2, w * 0.9, h * 0.8], fill=(30, 90, 200))
    for x in range(int(w * 0.6), int(w * 0.85), 6):
        draw.line([x, h * 0.25, x, h * 0.75], fill="white", width=2)
    return image


def texture_png(w: int = 128, h: int = 96) -> bytes:
    """`texture(w, h)` as a PNG file."""
    out = io.BytesIO()
    texture(w, h).save(out, "PNG")
    return out.getvalue()


def board(lines: list[tuple[str, int, int, int]], size: tuple[int, int], angle: float = 0, noise: int = 0,
          fmt: str = "PNG", quality: int = 95, seed: int = 0) -> tuple[bytes, list[tuple[str, float, float]]]:
    """A whiteboard: each (text, x, y, font size) drawn black, optionally on grey noise of amplitude `noise`
    (incompressible, so the file is as big as its pixels), then the whole board turned `angle` degrees
    counter-clockwise (positive: lines rising to the right). Returns the file and each line's drawn centre
    (the middle of its ink box) in the final image's pixels."""
    import numpy as np

    if noise:
        rng = np.random.default_rng(seed)
        pixels = rng.integers(255 - noise, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        img = Image.fromarray(pixels, "RGB")
    else:
        img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    centres = []
    for text, x, y, font_size in lines:
        font = ImageFont.truetype(font_path(), font_size)
        draw.text((x, y), text, fill="black", font=font)
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        centres.append((text, (left + right) / 2, (top + bottom) / 2))
    if angle:
        w, h = img.size
        img = img.rotate(angle, expand=True, fillcolor="white", resample=Image.Resampling.BICUBIC)
        a = math.radians(angle)
        nx, ny = img.size[0] / 2, img.size[1] / 2
        centres = [(t, nx + (cx - w / 2) * math.cos(a) + (cy - h / 2) * math.sin(a),
                    ny - (cx - w / 2) * math.sin(a) + (cy - h / 2) * math.cos(a)) for t, cx, cy in centres]
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return out.getvalue(), centres


def declaring(width: int, height: int, fmt: str = "JPEG", exif_orientation: int | None = None) -> bytes:
    """A tiny file whose header declares `width`×`height` (a 16×16 image with its size fields rewritten):
    what the proxy must judge before decoding anything (decoding it would fail, truncated)."""
    import struct
    import zlib

    small = Image.new("RGB", (16, 16), "white")
    out = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    small.save(out, fmt, **({"exif": exif} if exif_orientation else {}))
    data = bytearray(out.getvalue())
    if fmt == "PNG":  # IHDR right after the signature: length, type, width, height, ..., CRC
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    else:  # JPEG: the SOF0 segment's height and width
        sof = data.index(b"\xff\xc0")
        data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def truncated(fmt: str) -> bytes:
    """A 300×200 image cut in half: the header (and its size) intact, half the pixel data gone."""
    out = io.BytesIO()
    Image.frombytes("RGB", (300, 200), bytes(range(256)) * 703 + bytes(232)).save(out, fmt)
    data = out.getvalue()
    return data[: len(data) // 2]
