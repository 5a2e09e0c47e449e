"""Window functions for spectral analysis: hann, hamming, blackman, bartlett and kaiser windows.

They are creation functions: values computed from a length, no input tensor and no gradient.
Each is the symmetric window of length N (``periodic=False``), or the first N points of the
symmetric window of length N + 1 (``periodic=True``, the default, for use with an FFT), as torch.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .._backend import refuse_pinning
from ..tensor import Tensor
from . import _special_math, creation

__all__ = ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]
__not_methods__ = set(__all__)


def _window(op: str, window_length: int, periodic: bool, dtype, layout, device, requires_grad: bool,
            formula) -> Tensor:
    creation._strided_only(layout, op)
    if window_length < 0:
        raise RuntimeError(f"{op} requires non-negative window_length, got window_length={window_length}")
    dtype = _dtype.get_default_dtype() if dtype is None else _dtype.to_dtype(dtype)
    if not dtype.is_floating_point:
        raise RuntimeError(f"{op} expects floating point dtypes, got: {dtype}")
    if window_length <= 1:
        values = np.ones(window_length)
    else:
        n = window_length + 1 if periodic else window_length
        # the symmetric window of n points, step by step in the window's dtype as torch's kernels
        # go (float32 rounds after each op); narrower dtypes are evaluated in float64 and rounded once
        compute = np.float32 if dtype.np == np.float32 else np.float64
        values = formula(np.arange(n, dtype=compute), n)[:window_length]
    array = creation._xp(device).asarray(values.astype(dtype.np))
    return creation._finish(array, requires_grad)


def _cos(x: np.ndarray) -> np.ndarray:
    # torch's float32 cos (SLEEF, within one ulp) rounds as the double cosine rounded to float32
    # far more often than NumPy's float32 cos does
    return np.cos(x.astype(np.float64)).astype(x.dtype)


def _hamming(alpha: float, beta: float):
    # torch: arange(n).mul_(2π / (n - 1)).cos_().mul_(-beta).add_(alpha)
    def formula(k, n):
        real = k.dtype.type
        return _cos(k * real(2 * np.pi / (n - 1))) * real(-beta) + real(alpha)

    return formula


def _blackman(k, n):
    # torch: w = arange(n) * π / (n - 1); cos(4w) * 0.08 - cos(2w) * 0.5 + 0.42
    real = k.dtype.type
    phase = k * real(np.pi / (n - 1))
    return _cos(phase * real(4)) * real(0.08) - _cos(phase * real(2)) * real(0.5) + real(0.42)


def _bartlett(k, n):
    # torch: arange(n) * 2 / (n - 1), its second half mapped by 2 - w
    real = k.dtype.type
    window = k * real(2.0 / (n - 1))
    first_half = ((n - 1) >> 1) + 1
    window[first_half:] = window[first_half:] * real(-1) + real(2)
    return window


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.hann_window: 0.5 - 0.5 cos(2πk/(N-1))."""
    refuse_pinning(pin_memory)
    return _window("hann_window", window_length, periodic, dtype, layout, device, requires_grad, _hamming(0.5, 0.5))


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, *,
                   dtype=None, layout=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.hamming_window: alpha - beta cos(2πk/(N-1))."""
    refuse_pinning(pin_memory)
    return _window("hamming_window", window_length, periodic, dtype, layout, device, requires_grad,
                   _hamming(alpha, beta))


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                    requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.blackman_window: 0.42 - 0.5 cos(2πk/(N-1)) + 0.08 cos(4πk/(N-1))."""
    refuse_pinning(pin_memory)
    return _window("blackman_window", window_length, periodic, dtype, layout, device, requires_grad,
                   _blackman)


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                    requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.bartlett_window: the triangle 1 - |2k/(N-1) - 1|."""
    refuse_pinning(pin_memory)
    return _window("bartlett_window", window_length, periodic, dtype, layout, device, requires_grad,
                   _bartlett)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, layout=None,
                  device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.kaiser_window: I0(beta sqrt(1 - (2k/(N-1) - 1)²)) / I0(beta), I0 the modified Bessel
    function of order 0, computed as torch's CPU kernel in float32 for float32 and narrower windows
    (whose I0 overflows past beta = 88.7: NaN where both do, 0 where only I0(beta) does)."""
    refuse_pinning(pin_memory)
    resolved = _dtype.get_default_dtype() if dtype is None else _dtype.to_dtype(dtype)
    real = np.float64 if resolved.np == np.float64 else np.float32

    def formula(k, n):
        alpha = real((n - 1) / 2.0)
        ratio = (k.astype(real) - alpha) / alpha
        with np.errstate(all="ignore"):
            return _special_math.i0(real(beta) * np.sqrt(np.abs(real(1) - ratio * ratio))) / _special_math.i0(
                np.asarray(beta, dtype=real))

    return _window("kaiser_window", window_length, periodic, dtype, layout, device, requires_grad, formula)
