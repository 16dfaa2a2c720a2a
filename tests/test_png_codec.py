"""The fast PNG paths read and write exactly what Pillow does: tile answers decoded by pngdecode (ISA-L
inflate, libspng unfilter) give Pillow's pixels for any PNG of the kind the kit writes, leave every other
kind to Pillow, and refuse a broken or oversized stream; PngStripes writes gray, RGB and RGBA."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from proxy.actions.pngdecode import rgb_tile
from proxy.actions.pngstripes import PngStripes


def _png(pixels: np.ndarray, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", **options)
    return out.getvalue()


def _photo(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth fields plus grain, as the kit's enlargements: every PNG filter type gets chosen somewhere."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (max(1, height // 16), max(1, width // 16), 3), dtype=np.uint8))
    smooth = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    return np.clip(smooth + rng.integers(-12, 13, smooth.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("width", "height", "level"), [(1024, 1024, 6), (1024, 1024, 1), (300, 97, 9),
                                                        (7, 5, 0), (1, 1, 6)])
def test_rgb_tile_gives_pillows_pixels(width, height, level):
    pixels = _photo(width, height, width + level)
    png = _png(pixels, compress_level=level)
    filters = set(np.frombuffer(zlib.decompress(_idat(png)), np.uint8).reshape(height, -1)[:, 0].tolist())
    assert width < 100 or len(filters) >= 3  # a real mix of row filters was decoded, not only Up or None
    decoded = rgb_tile(png, width, height)
    assert decoded is not None and decoded.dtype == np.uint8
    with Image.open(io.BytesIO(png)) as img:
        assert np.array_equal(decoded, np.asarray(img))


def _idat(png: bytes) -> bytes:
    out, at = [], 8
    while at < len(png):
        (length,), kind = struct.unpack_from(">I", png, at), png[at + 4:at + 8]
        if kind == b"IDAT":
            out.append(png[at + 8:at + 8 + length])
        at += 12 + length
    return b"".join(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def test_other_kinds_of_png_are_left_to_pillow():
    rgb = _photo(32, 24, 1)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    assert rgb_tile(_png(rgba), 32, 24) is None
    assert rgb_tile(_png(rgb[..., 0]), 32, 24) is None  # grayscale
    assert rgb_tile(_png(rgb), 32, 25) is None  # not the size asked for
    out = io.BytesIO()
    Image.fromarray(rgb).convert("P").save(out, "PNG")
    assert rgb_tile(out.getvalue(), 32, 24) is None  # palette
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG", interlace=1)  # Pillow cannot write Adam7; make the header say it
    png = out.getvalue()
    interlaced = png[:8] + _chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 24, 8, 2, 0, 0, 1)) + png[33:]
    assert rgb_tile(interlaced, 32, 24) is None
    assert rgb_tile(b"GIF89a" + bytes(40), 32, 24) is None


def test_a_broken_or_oversized_stream_is_refused():
    pixels = _photo(64, 48, 2)
    png = _png(pixels)
    head, tail = png[:33], _chunk(b"IEND", b"")
    with pytest.raises(ValueError):
        rgb_tile(png[:len(png) // 2], 64, 48)  # truncated
    body = bytearray(png)
    body[60] ^= 0xFF
    with pytest.raises(ValueError):
        rgb_tile(bytes(body), 64, 48)  # a damaged IDAT (its CRC no longer matches)
    rows = zlib.decompress(_idat(png))
    with pytest.raises(ValueError):
        rgb_tile(head + _chunk(b"IDAT", zlib.compress(rows + bytes(10_000_000))) + tail, 64, 48)  # a bomb
    with pytest.raises(ValueError):
        rgb_tile(head + _chunk(b"IDAT", zlib.compress(rows[:-10])) + tail, 64, 48)  # rows missing
    bad_filter = bytearray(rows)
    bad_filter[0] = 9  # filter types are 0-4
    with pytest.raises(ValueError):
        rgb_tile(head + _chunk(b"IDAT", zlib.compress(bytes(bad_filter))) + tail, 64, 48)


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_png_stripes_write_every_kind_they_declare(channels, mode):
    rng = np.random.default_rng(channels)
    shape = (50, 33) if channels == 1 else (50, 33, channels)
    picture = rng.integers(0, 256, shape, dtype=np.uint8)
    png = PngStripes(33, 50, channels)
    for top in range(0, 50, 7):
        png.write(picture[top:top + 7])
    with Image.open(io.BytesIO(png.finish())) as img:
        assert img.mode == mode and np.array_equal(np.asarray(img), picture)


def test_an_enlargement_from_pillow_pngs_is_the_float_canvas_blend():
    """The whole ×4 path after the kit: Pillow-written tile answers (as the kit's), decoded here, stitched,
    written by stripes and read back by Pillow, against the float-canvas blend of Pillow's own decode of
    the same tiles (tests/test_tiles.py's reference): PSNR >= 50 dB, no value more than one level off."""
    from proxy.actions.imageenhan import _decode_tile
    from proxy.actions.tiles import Stitcher, TilePlan
    from tests.test_tiles import _float_canvas_blend

    plan, scale = TilePlan.plan(500, 497, 256, 16), 4  # two tiles each way, overlaps on both axes
    side = plan.xs.size * scale
    answers = [[_png(_photo(side, side, 10 * r + c), compress_level=6) for c in range(len(row))]
               for r, row in enumerate(plan.boxes())]
    png = PngStripes(500 * scale, 497 * scale)
    stitcher = Stitcher(plan, scale, png.write)
    for r, row in enumerate(answers):
        stitcher.add_row(r, [_decode_tile(answer, (side, side), side, side) for answer in row])
    with Image.open(io.BytesIO(png.finish())) as img:
        ours = np.asarray(img).astype(np.float64)
    pillow_tiles = [[np.asarray(Image.open(io.BytesIO(answer))) for answer in row] for row in answers]
    reference = _float_canvas_blend(plan, pillow_tiles, scale)
    mse = float(np.mean((ours - reference) ** 2))
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) >= 50
    assert np.abs(ours - reference).max() <= 1


def test_an_image_answer_is_decoded_in_place_and_anything_else_is_left_to_json():
    from proxy.kit.image_answer import result_image

    assert result_image(b'{"result":"aGVsbG8="}') == b"hello"
    assert result_image(b' {\n "result" : "aGVsbG8=" }\r\n') == b"hello"  # JSON's own whitespace
    assert result_image(b'{"result":""}') == b""
    for other in (b'{"result":"aGVs\\/bG8="}',  # a JSON escape: json.loads must read it
                  b'{"result":"aGVsbG8=","x":"y"}', b'{"x":"aGVsbG8="}', b'{"result":"aGVsbG8"}',  # bad padding
                  b'\x0c{"result":"aGVsbG8="}', b'{"result":"', b"[]", b"",
                  b'{"result":"aGVsbG8="}}', b'{"result":5}', b'[{"result":"aGVsbG8="}]', b'{"result":"aGV"sbG8="}'):
        assert result_image(other) is None, other
