"""Pillow's bilinear resize of a grayscale picture, made band by band, to the bit.

A full-size matte for a 12 MP photo is 12 MB, and Pillow's whole resize holds its horizontal pass too
(6 MB for a 2048x1536 matte); Pillow's own band resize (`box=`) differs by one here and there (its float
box arithmetic shifts some windows). So `BandResize` makes both of Pillow's passes (libImaging Resample.c:
horizontal, then vertical, through an 8-bit intermediate) for any band of output rows, from just the input
rows that band needs: Resample.c's coefficients (`precompute_coeffs`, bilinear filter, support 1) rounded
to its fixed point (`normalize_coeffs_8bpc`, PRECISION_BITS 22), summed in int32 and clipped as it does.
Tested against Pillow's whole resize over many sizes. That holds for enlarging (or keeping) both sides,
which is what a matte from the kit's reduced copy needs; a reduction on either side (Pillow 13 then
matches neither pass order exactly) is left to Pillow whole, as before.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PRECISION_BITS = 32 - 8 - 2  # Resample.c


def coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel along one axis: the first input pixel (int64) and the fixed-point weights (int32,
    one per tap; 0 past the pixel's window)."""
    scale = float(np.float32(in_size)) / out_size  # (double)(in1 - in0) / outSize, the box in float
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # bilinear support 1.0
    ksize = int(np.ceil(support)) * 2 + 1
    center = 0.0 + (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    first = np.trunc(center - support + 0.5).astype(np.int64)  # (int) truncates toward zero
    first[first < 0] = 0
    count = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - first
    taps = np.arange(ksize)
    x = np.abs(((taps[None, :] + first[:, None]).astype(np.float64) - center[:, None] + 0.5) * (1.0 / filterscale))
    weights = np.where(x < 1.0, 1.0 - x, 0.0)
    weights[taps[None, :] >= count[:, None]] = 0.0
    total = np.zeros(out_size)
    for t in range(ksize):  # summed in order, as the C loop does
        total = total + weights[:, t]
    weights = np.where(total[:, None] != 0.0, weights / np.where(total == 0.0, 1.0, total)[:, None], weights)
    fixed = np.trunc(np.where(weights < 0, -0.5, 0.5) + weights * (1 << PRECISION_BITS)).astype(np.int32)
    return first, fixed


def _clip8(acc: np.ndarray) -> np.ndarray:
    acc >>= PRECISION_BITS
    return np.clip(acc, 0, 255).astype(np.uint8)


class BandResize:
    """`matte` (HxW uint8) as if Pillow resized it to `size` with Image.Resampling.BILINEAR; `rows(top,
    bottom)` gives any band of that picture, without the whole of it (or of Pillow's intermediate) existing
    when both sides are enlarged or kept."""

    def __init__(self, matte: np.ndarray, size: tuple[int, int]) -> None:
        self.width, self.height = size
        if self.width < matte.shape[1] or self.height < matte.shape[0]:  # a reduction: Pillow, whole
            matte = np.asarray(Image.fromarray(matte).resize(size, Image.Resampling.BILINEAR))
        self.matte = matte
        self.xs = coefficients(matte.shape[1], self.width) if self.width != matte.shape[1] else None
        self.ys = coefficients(matte.shape[0], self.height) if self.height != matte.shape[0] else None

    def rows(self, top: int, bottom: int) -> np.ndarray:
        if self.ys is None:  # Pillow skips the pass of an axis whose size is kept
            return self._horizontal(self.matte[top:bottom])
        first, fixed = self.ys[0][top:bottom], self.ys[1][top:bottom]
        low, high = int(first[0]), min(self.matte.shape[0], int(first[-1]) + fixed.shape[1])
        band = self._horizontal(self.matte[low:high])  # the input rows this band's windows read
        acc = np.full((bottom - top, band.shape[1]), 1 << (PRECISION_BITS - 1), dtype=np.int32)
        for t in range(fixed.shape[1]):  # a tap past a row's window weighs 0: any row will do
            acc += band[np.minimum(first - low + t, band.shape[0] - 1)] * fixed[:, t, None]
        return _clip8(acc)

    def _horizontal(self, band: np.ndarray) -> np.ndarray:
        if self.xs is None:
            return band
        first, fixed = self.xs
        acc = np.full((band.shape[0], self.width), 1 << (PRECISION_BITS - 1), dtype=np.int32)
        for t in range(fixed.shape[1]):
            acc += band[:, np.minimum(first + t, band.shape[1] - 1)] * fixed[None, :, t]
        return _clip8(acc)
