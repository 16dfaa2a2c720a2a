"""Tiled enlargement: cut an image into overlapping tiles small enough for one kit call each, and blend
the enlarged tiles back with linear ramps across every overlap, so no seam shows.

The weights form a partition of unity (in each overlap the left/top tile fades out exactly as its
neighbour fades in), separable in x and y. Blending runs strip by strip, so the only float buffer is
one row of tiles, not the whole output (a 1920x1080 ×4 result is 7680x4320).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Tile origins along one axis: tiles of `size` px starting at `starts`, covering `length` px."""

    length: int
    size: int
    starts: tuple[int, ...]

    @classmethod
    def plan(cls, length: int, tile: int, overlap: int) -> Grid:
        if length <= tile:
            return cls(length, length, (0,))
        if not 0 <= overlap < tile // 2:
            raise ValueError("overlap must be below half the tile size")
        count = math.ceil((length - overlap) / (tile - overlap))
        starts = tuple(round(i * (length - tile) / (count - 1)) for i in range(count))
        return cls(length, tile, starts)

    def weights(self, index: int, scale: int) -> np.ndarray:
        """1-D weights of tile `index` over its enlarged extent: ramps where it overlaps a neighbour."""
        n = self.size * scale
        w = np.ones(n, dtype=np.float32)
        start = self.starts[index] * scale
        if index > 0:  # fade in across the overlap with the previous tile
            end_prev = (self.starts[index - 1] + self.size) * scale
            ramp = end_prev - start
            w[:ramp] = (np.arange(ramp, dtype=np.float32) + 0.5) / ramp
        if index + 1 < len(self.starts):  # fade out across the overlap with the next tile
            ramp = (self.starts[index] + self.size - self.starts[index + 1]) * scale
            w[n - ramp:] = 1.0 - (np.arange(ramp, dtype=np.float32) + 0.5) / ramp
        return w


@dataclass(frozen=True)
class TilePlan:
    xs: Grid
    ys: Grid

    @classmethod
    def plan(cls, width: int, height: int, tile: int, overlap: int) -> TilePlan:
        return cls(Grid.plan(width, tile, overlap), Grid.plan(height, tile, overlap))

    def boxes(self) -> list[list[tuple[int, int, int, int]]]:
        """(left, top, right, bottom) input boxes, one row of tiles per list."""
        return [[(x, y, x + self.xs.size, y + self.ys.size) for x in self.xs.starts] for y in self.ys.starts]


def _totals(grid: Grid, scale: int) -> np.ndarray:
    """Sum of every tile's weights along one axis. Where three tiles overlap (a side just under two tiles
    long spreads three evenly), the ramps alone would sum above 1; dividing by this keeps it exactly 1."""
    total = np.zeros(grid.length * scale, dtype=np.float32)
    for i, start in enumerate(grid.starts):
        total[start * scale:(start + grid.size) * scale] += grid.weights(i, scale)
    return total


def blend(plan: TilePlan, rows: list[list[np.ndarray]], scale: int) -> np.ndarray:
    """Stitch enlarged tiles (uint8 HxWx3, each exactly tile size × scale) into one uint8 image."""
    width, height = plan.xs.length * scale, plan.ys.length * scale
    out = np.empty((height, width, 3), dtype=np.uint8)
    x_total, y_total = _totals(plan.xs, scale), _totals(plan.ys, scale)
    carry: np.ndarray | None = None  # weighted rows still owed a contribution from the next strip
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
