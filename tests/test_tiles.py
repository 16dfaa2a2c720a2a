"""The blend is a partition of unity: tiles that agree reproduce the picture exactly, whatever the sizes,
including sides where three tiles overlap (just under two tiles long)."""

from __future__ import annotations

import numpy as np
import pytest

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
