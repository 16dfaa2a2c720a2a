"""The blend is a partition of unity: tiles that agree reproduce the picture exactly, whatever the sizes,
including sides where three tiles overlap (just under two tiles long)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from proxy.actions.pngstripes import PngStripes
from proxy.actions.tiles import Grid, TilePlan, blend


@pytest.mark.parametrize(("width", "height", "tile", "overlap", "scale"), [
    (1920, 1080, 256, 16, 4),  # the customer's 4K case
    (1009, 300, 512, 16, 2),   # three tiles overlap on one axis
    (500, 497, 256, 16, 4),    # and on both
    (100, 70, 64, 8, 2),
    (50, 40, 64, 8, 2),        # one tile
])
def test_agreeing_tiles_reproduce_the_picture(width, height, tile, overlap, scale):
    rng = np.random.default_rng(width * height)
    picture = rng.integers(0, 256, (height * scale, width * scale, 3), dtype=np.uint8)
    plan = TilePlan.plan(width, height, tile, overlap)
    rows = [[picture[y0 * scale:y1 * scale, x0 * scale:x1 * scale] for x0, y0, x1, y1 in row]
            for row in plan.boxes()]
    assert np.array_equal(blend(plan, rows, scale), picture)
    flat = [[np.full_like(t, 200) for t in row] for row in rows]
    assert np.all(blend(plan, flat, scale) == 200)  # no bright or dark seam band anywhere


def test_grid_covers_the_side_with_overlap():
    grid = Grid.plan(1920, 256, 16)
    assert grid.starts[0] == 0 and grid.starts[-1] + grid.size == 1920
    assert all(b - a <= 256 - 16 for a, b in zip(grid.starts, grid.starts[1:], strict=False))


def _float_canvas_blend(plan: TilePlan, rows: list[list[np.ndarray]], scale: int) -> np.ndarray:
    """The blend as it was before the Stitcher (a float strip per row of tiles): the reference."""
    from proxy.actions.tiles import _totals

    width, height = plan.xs.length * scale, plan.ys.length * scale
    out = np.empty((height, width, 3), dtype=np.uint8)
    x_total, y_total = _totals(plan.xs, scale), _totals(plan.ys, scale)
    carry = None
    th = plan.ys.size * scale
    for i, row in enumerate(rows):
        strip = np.zeros((th, width, 3), dtype=np.float32)
        for j, tile in enumerate(row):
            x0 = plan.xs.starts[j] * scale
            span = slice(x0, x0 + tile.shape[1])
            strip[:, span] += tile * (plan.xs.weights(j, scale) / x_total[span])[None, :, None]
        top = plan.ys.starts[i] * scale
        strip *= (plan.ys.weights(i, scale) / y_total[top:top + th])[:, None, None]
        if carry is not None:
            strip[: carry.shape[0]] += carry
        keep = (plan.ys.starts[i + 1] * scale - top) if i + 1 < len(rows) else th
        out[top:top + keep] = np.clip(strip[:keep] + 0.5, 0, 255).astype(np.uint8)
        carry = strip[keep:]
    return out


@pytest.mark.parametrize(("width", "height", "tile", "overlap", "scale"), [
    (1920, 1080, 256, 16, 4), (1009, 300, 512, 16, 2), (500, 497, 256, 16, 4), (50, 40, 64, 8, 2)])
def test_stitcher_matches_the_float_canvas_blend(width, height, tile, overlap, scale):
    """Tiles that disagree (independent noise): every overlap is weighed, and the result is the float
    canvas's to within rounding (PSNR >= 50 dB; in practice a few values differ by one)."""
    rng = np.random.default_rng(width + height)
    plan = TilePlan.plan(width, height, tile, overlap)
    rows = [[rng.integers(0, 256, (plan.ys.size * scale, plan.xs.size * scale, 3), dtype=np.uint8) for _ in row]
            for row in plan.boxes()]
    ours, reference = blend(plan, rows, scale).astype(np.float64), _float_canvas_blend(plan, rows, scale)
    mse = float(np.mean((ours - reference) ** 2))
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) >= 50
    assert np.abs(ours - reference).max() <= 1


@pytest.mark.parametrize(("width", "height", "stripe"), [(7, 5, 2), (64, 48, 48), (300, 97, 10)])
def test_png_written_by_stripes_decodes_to_the_same_pixels(width, height, stripe):
    rng = np.random.default_rng(width)
    picture = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    png = PngStripes(width, height)
    for top in range(0, height, stripe):
        png.write(picture[top:top + stripe])
    with Image.open(io.BytesIO(png.finish())) as img:
        assert img.format == "PNG" and img.mode == "RGB" and np.array_equal(np.asarray(img), picture)


def test_png_refuses_a_short_picture():
    png = PngStripes(8, 8)
    png.write(np.zeros((4, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        png.finish()
