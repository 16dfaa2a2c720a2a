"""Pictures: matting masks (IoU, mean absolute difference) and super-resolution images (PSNR, SSIM)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from .results import Scores

# Identical images have an infinite PSNR; it is capped so records stay standard JSON and histograms finite.
PSNR_CAP_DB = 100.0
# Above this many pixels SSIM runs on a downscaled copy (a 4K x4 enlargement is 130 MP: gigabytes of floats).
SSIM_MAX_PIXELS = 4_000_000
MASK_THRESHOLD = 128
# An RGB pixel is "white background" when every channel is at least this (JPEG-safe margin).
WHITE_MIN = 245


# ---------------------------------------------------------------------------------------------------------
# Matting


def mask_of(png: bytes) -> tuple[Image.Image, str]:
    """The foreground mask (mode L) of a matting result and how it was read.

    mask form → the L image itself; RGBA cut-outs → their alpha; an opaque colour image (whiteBK) has no
    alpha, so its foreground is taken as every pixel that is not (near) white, which also drops white
    parts of the subject.
    """
    img: Image.Image = Image.open(io.BytesIO(png))
    img.load()
    if img.mode in ("L", "1", "I", "I;16", "F"):
        return img.convert("L"), "grayscale mask"
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        return img.getchannel("A"), "alpha channel"
    rgb = np.asarray(img.convert("RGB"))
    fg = (rgb.min(axis=2) < WHITE_MIN).astype(np.uint8) * 255
    return Image.fromarray(fg, "L"), f"no alpha: foreground = non-white pixels (any channel < {WHITE_MIN})"


def compare_masks(primary_png: bytes, secondary_png: bytes) -> Scores:
    """IoU of the masks cut at MASK_THRESHOLD, and mean absolute difference of the soft masks (0..1).

    The secondary mask is resized (bilinear) to the primary's size when they differ: a crop form or a
    model working at a lower resolution must still be comparable.
    """
    a, how_a = mask_of(primary_png)
    b, how_b = mask_of(secondary_png)
    notes = [f"primary: {how_a}", f"secondary: {how_b}"]
    if b.size != a.size:
        notes.append(f"secondary mask resized from {b.width}x{b.height} to {a.width}x{a.height}")
        b = b.resize(a.size, Image.Resampling.BILINEAR)
    ma = np.asarray(a, dtype=np.float32) / 255.0
    mb = np.asarray(b, dtype=np.float32) / 255.0
    fa, fb = ma >= MASK_THRESHOLD / 255.0, mb >= MASK_THRESHOLD / 255.0
    union = int(np.count_nonzero(fa | fb))
    inter = int(np.count_nonzero(fa & fb))
    metrics = {
        "iou": inter / union if union else 1.0,
        "mad": float(np.abs(ma - mb).mean()),
        "foreground_primary": float(fa.mean()),
        "foreground_secondary": float(fb.mean()),
    }
    return Scores("matting", metrics, notes=notes)


# ---------------------------------------------------------------------------------------------------------
# Super-resolution

_GAUSS_RADIUS = 5
_GAUSS_SIGMA = 1.5


def _gaussian_kernel() -> np.ndarray:
    x = np.arange(-_GAUSS_RADIUS, _GAUSS_RADIUS + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * _GAUSS_SIGMA**2))
    return (k / k.sum()).astype(np.float32)


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' convolution: one shifted multiply-add per tap and axis (no SciPy needed)."""
    n = len(kernel)
    h, w = img.shape
    rows: np.ndarray = sum(kernel[k] * img[k:h - n + 1 + k, :] for k in range(n))
    out: np.ndarray = sum(kernel[k] * rows[:, k:w - n + 1 + k] for k in range(n))
    return out


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two equal-size grayscale arrays (0..255): Wang et al. 2004 with an 11x11 Gaussian
    window (sigma 1.5), K1 0.01, K2 0.03, L 255, over the valid region (as scikit-image's
    gaussian_weights=True, use_sample_covariance=False). Written in numpy because scikit-image would add
    scipy, networkx and more to the proxy's image for one function."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    if min(x.shape) < 2 * _GAUSS_RADIUS + 1:
        return 1.0 if np.array_equal(x, y) else float("nan")
    kern = _gaussian_kernel()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _filter(x, kern), _filter(y, kern)
    sxx = _filter(x * x, kern) - mx * mx
    syy = _filter(y * y, kern) - my * my
    sxy = _filter(x * y, kern) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float((num / den).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all channels (peak 255), capped at PSNR_CAP_DB (identical images)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10 * math.log10(255.0**2 / mse))


def compare_images(a: bytes, b: bytes) -> Scores:
    """Size equality, PSNR (RGB) and SSIM (grayscale) of two enlargements, the second resized to the first.

    Alpha is dropped (RGBA inputs force PNG output on both sides, and the enlarged colour is what counts).
    """
    ia = Image.open(io.BytesIO(a)).convert("RGB")
    ib = Image.open(io.BytesIO(b)).convert("RGB")
    notes: list[str] = []
    same = ia.size == ib.size
    if not same:
        notes.append(f"sizes differ: {ia.width}x{ia.height} vs {ib.width}x{ib.height}; second resized to first")
        ib = ib.resize(ia.size, Image.Resampling.BICUBIC)
    value_psnr = psnr(np.asarray(ia), np.asarray(ib))
    ga, gb = ia.convert("L"), ib.convert("L")
    pixels = ga.width * ga.height
    if pixels > SSIM_MAX_PIXELS:
        ratio = math.sqrt(SSIM_MAX_PIXELS / pixels)
        size = (max(1, round(ga.width * ratio)), max(1, round(ga.height * ratio)))
        notes.append(f"SSIM on a {size[0]}x{size[1]} copy (area-averaged) to bound memory")
        ga, gb = ga.resize(size, Image.Resampling.BOX), gb.resize(size, Image.Resampling.BOX)
    metrics = {
        "size_equal": 1.0 if same else 0.0,
        "psnr": value_psnr,
        "ssim": ssim(np.asarray(ga), np.asarray(gb)),
        "width_primary": float(ia.width),
        "height_primary": float(ia.height),
    }
    return Scores("super_resolution", metrics, notes=notes)
