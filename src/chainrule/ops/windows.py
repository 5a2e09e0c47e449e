"""Window functions for spectral analysis: hann, hamming, blackman, bartlett and kaiser windows.

They are creation functions: values computed from a length, no input tensor and no gradient.
Each is the symmetric window of length N (``periodic=False``), or the first N points of the
symmetric window of length N + 1 (``periodic=True``, the default, for use with an FFT), as torch.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype, _layout
from .._backend import refuse_pinning
from .._opmath import fused_multiply_add_float32
from ..tensor import Tensor
from . import _special_math, creation

__all__ = ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]
__not_methods__ = set(__all__)


# torch's C++ names of the layouts, as its TensorOptions print them
_LAYOUT_NAMES = {"strided": "Strided", "sparse_coo": "Sparse", "sparse_csr": "SparseCsr", "sparse_csc": "SparseCsc",
                 "sparse_bsr": "SparseBsr", "sparse_bsc": "SparseBsc", "jagged": "Jagged"}


def _tensor_options(dtype: _dtype.dtype, dtype_given: bool, layout) -> str:
    """The window's options as torch's window checks print them: only dtype and layout are passed
    on (requires_grad is applied afterwards), and a dtype or layout left out prints as the default."""
    dtype_shown = _dtype.cpp_type_name(dtype) + ("" if dtype_given else " (default)")
    layout_shown = "Strided (default)" if layout is None else _LAYOUT_NAMES.get(layout._name, layout._name)
    return (f"TensorOptions(dtype={dtype_shown}, device=cpu, layout={layout_shown}, "
            "requires_grad=false (default), pinned_memory=false, memory_format=(nullopt))")


def _window(op: str, window_length: int, periodic: bool, dtype, layout, device, requires_grad: bool,
            formula) -> Tensor:
    # torch's hann_window checks the options as given; the other windows check them after filling in
    # the default dtype, so only hann_window's message calls a missing dtype the default
    dtype_given = dtype is not None or op != "hann_window"
    dtype = _dtype.get_default_dtype() if dtype is None else _dtype.to_dtype(dtype)
    # torch's order: sparse layout, then dtype (complex passes), then the length
    if layout is _layout.sparse_coo:
        raise RuntimeError(f"{op} is not implemented for sparse types, got: "
                           f"{_tensor_options(dtype, dtype_given, layout)}")
    if not (dtype.is_floating_point or dtype.is_complex):
        raise RuntimeError(f"{op} expects floating point dtypes, got: {_tensor_options(dtype, dtype_given, layout)}")
    creation._strided_only(layout, op)
    if window_length < 0:
        raise RuntimeError(f"{op} requires non-negative window_length, got window_length={window_length}")
    if dtype.is_complex and window_length > 1:
        # the checks admit complex windows, but torch's arange has no complex kernel
        raise NotImplementedError(f"\"arange_cpu\" not implemented for '{_dtype.scalar_name(dtype)}'")
    if window_length <= 1:
        values = np.ones(window_length)
    else:
        n = window_length + 1 if periodic else window_length
        # the symmetric window of n points, op by op in the window's dtype as torch's kernels go:
        # float32 rounds after each op; float16 and bfloat16 round each op's scalar to their dtype,
        # compute in float32 and round the result
        half = dtype.name in ("float16", "bfloat16")
        compute = np.float32 if dtype.np == np.float32 or half else np.float64

        def step(x: np.ndarray) -> np.ndarray:
            return x.astype(dtype.np).astype(np.float32) if half else x

        values = formula(step(np.arange(n, dtype=compute)), n, step)[:window_length]
    array = creation._xp(device).asarray(values.astype(dtype.np))
    return creation._finish(array, requires_grad)


def _cos(x: np.ndarray) -> np.ndarray:
    # torch's float32 cos (SLEEF, within one ulp) rounds as the double cosine rounded to float32
    # far more often than NumPy's float32 cos does
    return np.cos(x.astype(np.float64)).astype(x.dtype)


def _hamming(alpha: float, beta: float):
    # torch: arange(n).mul_(2π / (n - 1)).cos_().mul_(-beta).add_(alpha)
    def formula(k, n, step):
        real = k.dtype.type
        angle = step(k * step(real(2 * np.pi / (n - 1))))
        return step(step(_cos(angle)) * step(real(-beta))) + step(real(alpha))

    return formula


def _blackman(k, n, step):
    # torch: w = arange(n) * π / (n - 1); cos(4w) * 0.08 - cos(2w) * 0.5 + 0.42
    real = k.dtype.type
    phase = step(k * step(real(np.pi / (n - 1))))
    fourth = step(step(_cos(phase * real(4))) * step(real(0.08)))
    second = step(step(_cos(phase * real(2))) * real(0.5))
    return step(step(fourth - second) + step(real(0.42)))


def _bartlett(k, n, step):
    # torch: arange(n) * 2 / (n - 1), its second half mapped by 2 - w
    real = k.dtype.type
    window = step(k * step(real(2.0 / (n - 1))))
    first_half = ((n - 1) >> 1) + 1
    window[first_half:] = step(window[first_half:] * real(-1) + real(2))
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


# glibc's expf (sysdeps/ieee754/flt-32/e_expf.c), which torch's scalar float kernels call: in
# double, x·32/ln 2 = k + r, 2^(k/32) from a 32-entry table, a cubic in r. Correctly rounded
# but for a few inputs in 10⁴, where it and the double exponential rounded to float32 part
# (matched glibc on 500,000 of 500,000 values from -87 to 88).
_EXPF_TABLE_BITS = 5
_EXPF_SCALE = 1 << _EXPF_TABLE_BITS
_EXPF_TABLE = (np.exp2(np.arange(_EXPF_SCALE) / _EXPF_SCALE).view(np.uint64)
               - (np.arange(_EXPF_SCALE, dtype=np.uint64) << np.uint64(52 - _EXPF_TABLE_BITS)))
_EXPF_POLY = (float.fromhex("0x1.c6af84b912394p-5") / _EXPF_SCALE ** 3,
              float.fromhex("0x1.ebfce50fac4f3p-3") / _EXPF_SCALE ** 2,
              float.fromhex("0x1.62e42ff0c52d6p-1") / _EXPF_SCALE)
_EXPF_INV_LN2 = float.fromhex("0x1.71547652b82fep+0") * _EXPF_SCALE
_EXPF_SHIFT = float.fromhex("0x1.8p+52")
_EXPF_OVERFLOW = float.fromhex("0x1.62e42ep6")


def _glibc_expf(x: np.ndarray) -> np.ndarray:
    """float32 e^x for float32 x >= 0 (NaN passes), as glibc's expf rounds it."""
    z = _EXPF_INV_LN2 * x.astype(np.float64)
    shifted = z + _EXPF_SHIFT  # k in the low bits
    k = shifted.view(np.uint64)
    r = z - (shifted - _EXPF_SHIFT)
    scale = (_EXPF_TABLE[(k % np.uint64(_EXPF_SCALE)).astype(np.intp)]
             + (k << np.uint64(52 - _EXPF_TABLE_BITS))).view(np.float64)
    c0, c1, c2 = _EXPF_POLY
    y = (c0 * r + c1) * (r * r) + (c2 * r + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x > _EXPF_OVERFLOW, np.float32(np.inf), (y * scale).astype(np.float32))


def _kaiser_i0(x: np.ndarray) -> np.ndarray:
    """ATen's calc_i0 on float32 ``x`` >= 0 as its AVX2 build computes it: Cephes' Chebyshev
    series (chbevl's ``x·b1 - b2`` one fused multiply-add), glibc's expf."""
    def chbevl(y, coefficients):
        b0, b1, b2 = np.full_like(y, np.float32(coefficients[0])), np.zeros_like(y), np.zeros_like(y)
        for coefficient in coefficients[1:]:
            b2, b1 = b1, b0
            b0 = fused_multiply_add_float32(y, b1, -b2) + np.float32(coefficient)
        return np.float32(0.5) * (b0 - b2)

    with np.errstate(all="ignore"):
        growth = _glibc_expf(x)
        near = growth * chbevl(x / np.float32(2) - np.float32(2), _special_math._I0E_A)
        far = growth * chbevl(np.float32(32) / x - np.float32(2), _special_math._I0E_B) / np.sqrt(x)
    return np.where(x <= 8, near, far)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, layout=None,
                  device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.kaiser_window: I0(beta sqrt(1 - (2k/(N-1) - 1)²)) / I0(beta), I0 the modified Bessel
    function of order 0, computed as torch's CPU kernel in float32 for float32 and narrower windows
    (whose I0 overflows past beta = 88.7: NaN where both do, 0 where only I0(beta) does)."""
    refuse_pinning(pin_memory)
    resolved = _dtype.get_default_dtype() if dtype is None else _dtype.to_dtype(dtype)
    real = np.float64 if resolved.np == np.float64 else np.float32

    def formula(k, n, step):
        # torch's kaiser kernel computes in float32 from the arange and rounds once: no steps
        alpha = real((n - 1) / 2.0)
        # torch's arange is in the window's dtype: a float16/bfloat16 one rounds the positions
        ratio = (k.astype(resolved.np).astype(real) - alpha) / alpha
        with np.errstate(all="ignore"):
            if real is np.float32:
                # torch's kernel: calc_i0(β·sqrt(|1 - pow(r, 2)|)) / calc_i0(β), the compiler's r·r
                # for pow(r, 2) fused into 1 - r·r
                argument = np.float32(beta) * np.sqrt(np.abs(fused_multiply_add_float32(-ratio, ratio, np.float32(1))))
                return _kaiser_i0(np.abs(argument)) / _kaiser_i0(np.abs(np.asarray([beta], np.float32)))
            return _special_math.i0(real(beta) * np.sqrt(np.abs(real(1) - ratio * ratio))) / _special_math.i0(
                np.asarray(beta, dtype=real))

    return _window("kaiser_window", window_length, periodic, dtype, layout, device, requires_grad, formula)
