"""uint8 images resized as torch 2.13's CPU kernels resize them (bilinear and bicubic, plain and
antialiased): separable, the last dim first, each pass with fixed-point (int16) weights whose
sums are rounded and clamped back to 0..255 before the next pass (UpSampleKernel.cpp's uint8
path, after Pillow's). A float kernel rounded once at the end differs by up to ~10 levels.

Forward only: integer tensors carry no gradient.
"""

from __future__ import annotations

import math

import numpy as np

from ..ops.memory_format import in_suggested_format


def _triangle(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _keys_cubic(a: float):
    """Keys' cubic convolution kernel with parameter ``a``."""
    def kernel(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
        far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
        return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))
    return kernel


def _scale(in_size: int, out_size: int, align_corners: bool, scale_factor) -> float:
    """torch's area_pixel_compute_scale: input pixels per output pixel."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale_factor if scale_factor is not None and scale_factor > 0 else in_size / out_size


def _fixed_point_weights(in_size: int, out_size: int, scale_factor, mode: str, align_corners: bool,
                         antialias: bool):
    """(first, weights, precision): for each output position the first input index it reads and its
    int16 weights (a row per output, zero-padded), scaled by 2**precision."""
    scale = _scale(in_size, out_size, align_corners, scale_factor)
    half_width = 1.0 if mode == "bilinear" else 2.0
    stretched = antialias and scale >= 1.0  # antialiasing widens the filter when shrinking
    support = half_width * scale if stretched else half_width
    invscale = 1.0 / scale if stretched else 1.0
    # the plain bicubic uses a = -0.75 (as torch's float kernel), the antialiased one Pillow's -0.5
    kernel = _triangle if mode == "bilinear" else _keys_cubic(-0.5 if antialias else -0.75)
    delta = 0.5 if align_corners and not antialias else 0.0  # torch's align_corners_delta
    width = int(math.ceil(support)) * 2 + 1
    first = np.zeros(out_size, dtype=np.int64)
    weights = np.zeros((out_size, width))
    for i in range(out_size):
        if mode == "bicubic" and not antialias:
            first[i], size, row = _clamped_cubic_taps(i, in_size, scale, align_corners, kernel)
        else:
            center = scale * (i + 0.5 - delta)
            first[i] = max(int(center - support + 0.5 + delta), 0)  # int() truncates toward zero, as C's cast
            size = min(max(min(int(center + support + 0.5 + delta), in_size) - first[i], 0), width)
            row = kernel((np.arange(first[i], first[i] + size) - center + 0.5 - delta) * invscale)
            total = row.sum()
            row = row / total if total != 0.0 else row
        weights[i, :size] = row
    largest = weights.max() if weights.size else 0.0
    precision = 0
    while precision < 22 and int(0.5 + largest * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = weights * (1 << precision)
    return first, np.trunc(np.where(scaled < 0, scaled - 0.5, scaled + 0.5)).astype(np.int64), precision


def _clamped_cubic_taps(i: int, in_size: int, scale: float, align_corners: bool, kernel):
    """The plain bicubic's four taps around source position s (torch's float kernel: s = scale·i,
    or scale·(i + 1/2) - 1/2, not clamped), those outside the input moved onto its edge pixel and
    their weights merged: (first index, number of taps, weights)."""
    source = scale * i if align_corners else scale * (i + 0.5) - 0.5
    base = math.floor(source)
    taps = np.clip(np.arange(base - 1, base + 3), 0, in_size - 1)
    first = int(taps[0])
    row = np.zeros(int(taps[-1]) - first + 1)
    np.add.at(row, taps - first, kernel(source - np.arange(base - 1, base + 3)))
    return first, row.size, row


def _resample_axis(x: np.ndarray, axis: int, out_size: int, scale_factor, mode: str, align_corners: bool,
                   antialias: bool) -> np.ndarray:
    first, weights, precision = _fixed_point_weights(x.shape[axis], out_size, scale_factor, mode,
                                                     align_corners, antialias)
    moved = np.moveaxis(x, axis, -1).astype(np.int64)
    taps = np.minimum(first[:, None] + np.arange(weights.shape[1]), x.shape[axis] - 1)  # padded taps weigh 0
    total = (moved[..., taps] * weights).sum(-1) + (1 << (precision - 1) if precision else 0)
    return np.moveaxis(np.clip(total >> precision, 0, 255).astype(np.uint8), -1, axis)


def resample_uint8(x: np.ndarray, out_sizes, scales, mode: str, align_corners: bool, antialias: bool) -> np.ndarray:
    """``x`` (N, C, H, W) uint8 resized to ``out_sizes`` by torch's uint8 kernel; a dim whose size
    does not change is not resampled (torch skips it, whatever its scale). The result is laid out
    as torch's: channels-last for a channels-last input."""
    like, spatial = x, x.ndim - len(out_sizes)
    for axis in reversed(range(spatial, x.ndim)):
        size = out_sizes[axis - spatial]
        if size != x.shape[axis]:
            x = _resample_axis(x, axis, size, scales[axis - spatial], mode, align_corners, antialias)
    return np.array(in_suggested_format(x, like), copy=x is like)
