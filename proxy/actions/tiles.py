"""Tiled enlargement: cut an image into overlapping tiles small enough for one kit call each, and blend
the enlarged tiles back with linear ramps across every overlap, so no seam shows.

The weights form a partition of unity (in each overlap the left/top tile fades out exactly as its
neighbour fades in), separable in x and y. The Stitcher copies where one tile alone covers a block and
weighs only the overlaps, in small float blocks, into 8-bit stripes, a row of tiles at a time as they
arrive: no float canvas of the output (a 1920x1080 ×4 result is 7680x4320) ever exists, and a PNG
output is encoded stripe by stripe (pngstripes.py), so no full-size picture exists at all.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
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


@dataclass(frozen=True)
class Span:
    """Output pixels [start, end) along one axis, covered by exactly the tiles `tiles` (indices)."""

    start: int
    end: int
    tiles: tuple[int, ...]


def _spans(grid: Grid, scale: int) -> list[Span]:
    """The axis cut where any tile begins or ends: within a span the covering tiles do not change."""
    n = grid.size * scale
    cuts = sorted({0, grid.length * scale} | {s * scale for s in grid.starts} | {s * scale + n for s in grid.starts})
    return [Span(a, b, tuple(i for i, s in enumerate(grid.starts) if s * scale <= a and b <= s * scale + n))
            for a, b in itertools.pairwise(cuts)]


def _normalised(grid: Grid, scale: int) -> list[np.ndarray]:
    """Each tile's weights over its enlarged extent, divided by the axis totals (so they sum to 1)."""
    total, n = _totals(grid, scale), grid.size * scale
    return [grid.weights(i, scale) / total[s * scale:s * scale + n] for i, s in enumerate(grid.starts)]


Sink = Callable[[np.ndarray], None]


class Stitcher:
    """Blends rows of tiles, as they arrive, into 8-bit stripes of the output handed to `sink` top to
    bottom (a stripe is one span of rows, the full width).

    Where one tile alone covers a block (most of the picture) its pixels are copied; only the overlaps
    are weighted, in float, block by block. So no float canvas exists, and a row of tiles is dropped as
    soon as no stripe still needs it: memory is one stripe plus two or three rows of tiles.

    The stripe handed to `sink` is one reused buffer, valid only during the call (the sinks encode or
    paste it at once): a fresh 7680-wide stripe for every span would fault in new pages each time.
    """

    def __init__(self, plan: TilePlan, scale: int, sink: Sink) -> None:
        self.plan, self.scale, self.sink = plan, scale, sink
        self.x_spans, self.y_spans = _spans(plan.xs, scale), _spans(plan.ys, scale)
        self.wx, self.wy = _normalised(plan.xs, scale), _normalised(plan.ys, scale)
        self.wx3 = [np.repeat(w, 3) for w in self.wx]  # per byte of an RGB row: see _draw
        self.rows: dict[int, list[np.ndarray]] = {}
        self.next_span = 0  # the first y-span not yet drawn
        tallest = max(s.end - s.start for s in self.y_spans)
        self.buffer = np.empty((tallest, plan.xs.length * scale, 3), dtype=np.uint8)
        self.scratch = [np.empty(0, dtype=np.float32) for _ in range(3)]

    def add_row(self, index: int, tiles: Sequence[np.ndarray]) -> None:
        """Row `index` of tiles (rows arrive in order): draw every stripe it completes, drop what is done."""
        self.rows[index] = list(tiles)
        while self.next_span < len(self.y_spans) and max(self.y_spans[self.next_span].tiles) <= index:
            ys = self.y_spans[self.next_span]
            stripe = self.buffer[:ys.end - ys.start]
            for xs in self.x_spans:
                self._draw(ys, xs, stripe)
            self.sink(stripe)
            self.next_span += 1
        needed = min((min(s.tiles) for s in self.y_spans[self.next_span:]), default=len(self.y_spans) + index + 1)
        for r in [r for r in self.rows if r < needed]:
            del self.rows[r]

    def _draw(self, ys: Span, xs: Span, stripe: np.ndarray) -> None:
        """One block. Blocks are weighed as 2-D (rows, 3·columns) arrays, the weights repeated per channel:
        broadcasting an (h, w, 1) weight over (h, w, 3) pixels makes numpy loop 3 values at a time, 3.5x
        slower for the same float operations (and so the same result, bit for bit)."""
        s = self.scale
        into = stripe[:, xs.start:xs.end]
        if len(ys.tiles) == 1 and len(xs.tiles) == 1:
            r, c = ys.tiles[0], xs.tiles[0]
            tx, ty = self.plan.xs.starts[c] * s, self.plan.ys.starts[r] * s
            into[:] = self.rows[r][c][ys.start - ty:ys.end - ty, xs.start - tx:xs.end - tx]
            return
        h, w = ys.end - ys.start, (xs.end - xs.start) * 3
        acc, weight, term = (self._scratch(i, h * w).reshape(h, w) for i in range(3))
        first = True
        for r in ys.tiles:
            ty = self.plan.ys.starts[r] * s
            wy = self.wy[r][ys.start - ty:ys.end - ty]
            for c in xs.tiles:
                tx = self.plan.xs.starts[c] * s
                wx = self.wx3[c][(xs.start - tx) * 3:(xs.end - tx) * 3]
                tile = self.rows[r][c][ys.start - ty:ys.end - ty, xs.start - tx:xs.end - tx].reshape(h, w)
                np.multiply(wy[:, None], wx[None, :], out=weight)
                np.multiply(tile, weight, out=acc if first else term)
                if not first:
                    acc += term
                first = False
        acc += 0.5
        np.clip(acc, 0, 255, out=into.reshape(h, w), casting="unsafe")

    def _scratch(self, index: int, size: int) -> np.ndarray:
        """Float buffer `index` (accumulator, weights, one tile's term) of at least `size` values, kept
        between blocks: fresh multi-MB temporaries for every block faulted in ~200 MB of pages per job."""
        if self.scratch[index].size < size:
            self.scratch[index] = np.empty(size, dtype=np.float32)
        return self.scratch[index][:size]


def blend(plan: TilePlan, rows: Sequence[Sequence[np.ndarray]], scale: int) -> np.ndarray:
    """Stitch enlarged tiles (HxWx3 uint8, each exactly tile size × scale) into one uint8 array."""
    stripes: list[np.ndarray] = []
    stitcher = Stitcher(plan, scale, lambda stripe: stripes.append(stripe.copy()))
    for i, row in enumerate(rows):
        stitcher.add_row(i, row)
    return np.concatenate(stripes)
