"""Shapes the kit's handlers can take, and payloads that fit its limits: every image the proxy sends is made
safe here, so no input a mapping admits reaches a crash in the kit.

- human-segmentation (human-image-segmentation/model/human_seg_app.py) resizes to 720 px height and
  `int(720 * w / h)` px width: 0 (a Lambda crash, 502) for an image over 720 times taller than wide, and a
  gigantic model input for a very wide one (a 1999x1 image would be 1,439,280 px wide). The copy sent is
  padded (centred, neutral grey) to an aspect ratio within MATTE_MAX_ASPECT; the matte is cropped back.
- super-resolution (image-super-resolution/model/super_resolution_app.py) resizes to
  `(w // s * s, h // s * s)`: 0 (a ModelError) for a side below the scale, a stretch for any other side not a
  multiple of it. Each tile sent is padded (edge pixels repeated) to a multiple of the scale, at least
  MIN_TILE_SIDE, and its enlargement cropped back.
- Both answer a base64 PNG inside JSON, capped like the request (Settings.kit_limits): the matting copy and
  the tile side are chosen so even an incompressible PNG answer fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import KitLimits
from ..kit.budget import max_answer_image_bytes, max_image_bytes

MATTE_MAX_ASPECT = 4.0  # the kit's model then sees at most 720 x 2880 px
MATTE_PAD = (127, 127, 127)  # flat grey: no edges, nothing a person model takes for a person
MIN_TILE_SIDE = 16
PNG_OVERHEAD = 4096  # signature, IHDR/IEND, zlib headers of an incompressible PNG


def png_worst_bytes(width: int, height: int, channels: int) -> int:
    """An incompressible PNG: a filter byte per row, zlib's stored blocks (5 B per 64 KB), fixed chunks."""
    raw = height * (1 + width * channels)
    return raw + 5 * math.ceil(raw / 65535) + PNG_OVERHEAD


def sr_tile_side(limits: KitLimits, scale: int, configured: int, overlap: int) -> int:
    """The tile side (input px) to use: the configured one, or less when its RGB PNG answer at `scale` (or its
    request) might not fit the budget; a multiple of 4, so every kit factor divides it."""
    side = configured
    while side > 2 * overlap + 4 and (
            png_worst_bytes(side * scale, side * scale, 3) > max_answer_image_bytes(limits)
            or png_worst_bytes(side, side, 3) > max_image_bytes(limits)):
        side -= 4
    return max(side - side % 4, 2 * overlap + 4)


def sr_padded_side(side: int, scale: int) -> int:
    """A tile side the kit resizes to itself: a multiple of `scale`, at least MIN_TILE_SIDE."""
    return max(MIN_TILE_SIDE, math.ceil(side / scale) * scale)


def pad_tile(pixels: np.ndarray, scale: int) -> np.ndarray:
    """Repeat the right and bottom edge pixels so both sides are kit-safe (see sr_padded_side)."""
    h, w = pixels.shape[:2]
    ph, pw = sr_padded_side(h, scale) - h, sr_padded_side(w, scale) - w
    if not ph and not pw:
        return pixels
    return np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="edge")


@dataclass(frozen=True)
class MattePlan:
    """How the matting copy is made from a w x h image: padded to `canvas` with the image at `offset`, then
    scaled by `ratio` (<= 1) so its pixels and PNG matte fit the budget."""

    canvas: tuple[int, int]
    offset: tuple[int, int]
    ratio: float
    size: tuple[int, int]  # the copy sent to the kit

    @classmethod
    def plan(cls, width: int, height: int, limits: KitLimits, max_side: int) -> MattePlan:
        cw = max(width, math.ceil(height / MATTE_MAX_ASPECT))
        ch = max(height, math.ceil(width / MATTE_MAX_ASPECT))
        ratio = min(1.0, max_side / max(cw, ch))
        budget = max_answer_image_bytes(limits)
        while png_worst_bytes(round(cw * ratio), round(ch * ratio), 1) > budget:  # the 'L' matte answer
            ratio *= 0.95
        size = (max(1, round(cw * ratio)), max(1, round(ch * ratio)))
        return cls((cw, ch), ((cw - width) // 2, (ch - height) // 2), ratio, size)

    @property
    def changes_image(self) -> bool:
        return self.offset != (0, 0) or self.canvas != self.size

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The original image's place in the copy (and so in the kit's matte), at least 1 px each way."""
        sx, sy = self.size[0] / self.canvas[0], self.size[1] / self.canvas[1]
        left = min(self.size[0] - 1, round(self.offset[0] * sx))  # each edge within half a pixel of its place
        top = min(self.size[1] - 1, round(self.offset[1] * sy))
        right = max(left + 1, min(self.size[0], round((self.offset[0] + width) * sx)))
        bottom = max(top + 1, min(self.size[1], round((self.offset[1] + height) * sy)))
        return left, top, right, bottom
