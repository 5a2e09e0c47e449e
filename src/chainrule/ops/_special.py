"""Special functions NumPy lacks (erf), accurate to float64 round-off, vectorised."""

from __future__ import annotations

import numpy as np

from .._backend import array_module

_SERIES_TERMS = 64
_FRACTION_TERMS = 40
_SWITCH = 3.0


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in x's floating dtype.

    |x| < 3: erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (2n+1)!!  (all terms positive, so
    no cancellation); |x| >= 3: erfc from its continued fraction, evaluated bottom-up.
    """
    xp = array_module(x)
    if xp is not np:
        return _erf_device(xp, x)
    x = np.asarray(x)
    if x.ndim == 0:  # NumPy ufuncs turn 0-d arrays into scalars, which the masked writes below need
        return erf(x.reshape(1)).reshape(())
    dtype = x.dtype if x.dtype.kind in "fV" else np.float64
    if dtype != np.float64:
        return _erf_single(x).astype(dtype, copy=False)
    z = np.abs(x.astype(np.float64))
    result = np.empty_like(z)
    small = z < _SWITCH
    if small.any():
        zs = z[small]
        z2 = zs * zs
        term = zs.copy()
        total = zs.copy()
        for n in range(1, _SERIES_TERMS):
            term = term * (2.0 * z2) / (2 * n + 1)
            total += term
        result[small] = 2.0 / np.sqrt(np.pi) * np.exp(-z2) * total
    large = ~small & ~np.isnan(z)
    if large.any():
        zl = z[large]
        # erfc(z) = e^{-z^2}/sqrt(pi) * 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
        fraction = zl.copy()
        for k in range(_FRACTION_TERMS, 0, -1):
            fraction = zl + (k / 2.0) / fraction
        result[large] = 1.0 - np.exp(-zl * zl) / np.sqrt(np.pi) / fraction
    result[np.isnan(z)] = np.nan
    return np.copysign(result, x).astype(dtype, copy=False)  # erf(-0.0) = -0.0, as torch's


def _erf_device(xp, x):
    """erf on a device array, branch-free: both formulas evaluated everywhere and selected with
    ``where``, so nothing waits on the host (no ``.any()``, no data-dependent shapes)."""
    dtype = x.dtype if x.dtype.kind in "fV" else np.float64
    z = xp.abs(x.astype(np.float64))
    small = z < _SWITCH
    zs = xp.where(small, z, 0.0)
    z2 = zs * zs
    term = zs.copy()
    total = zs.copy()
    for n in range(1, _SERIES_TERMS):
        term = term * (2.0 * z2) / (2 * n + 1)
        total += term
    series = 2.0 / np.sqrt(np.pi) * xp.exp(-z2) * total
    zl = xp.where(small, _SWITCH, z)
    fraction = zl.copy()
    for k in range(_FRACTION_TERMS, 0, -1):
        fraction = zl + (k / 2.0) / fraction
    tail = 1.0 - xp.exp(-zl * zl) / np.sqrt(np.pi) / fraction
    result = xp.where(small, series, xp.where(xp.isnan(z), z, tail))
    return xp.copysign(result, x).astype(dtype, copy=False)


# _erf_single works through the input this many elements at a time, so that its dozen float64
# temporaries (256 KiB each) stay in cache across its ~40 passes; each element's arithmetic is the
# same in any block. (983,040 float32 elements, GELU's size in decision_transformer, one thread:
# 34-38 ms unblocked with boolean-mask indexing, 14.7-16.4 ms in blocks of 2^13-2^16.)
_ERF_SINGLE_BLOCK = 1 << 15
_A_S_COEFFICIENTS = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)


def _erf_single(x: np.ndarray) -> np.ndarray:
    """erf for float32/float16, in float64: |error| <= 1.5e-7 (below float32's resolution near 1).

    |x| < 0.5: the Maclaurin series (10 terms, exact to float64 there, so small inputs keep their
    relative accuracy); elsewhere Abramowitz & Stegun 7.1.26, a 5-term rational fit.
    """
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float64)
    for start in range(0, flat.size, _ERF_SINGLE_BLOCK):
        stop = start + _ERF_SINGLE_BLOCK
        _erf_single_block(flat[start:stop], out[start:stop])
    if x.flags.c_contiguous:
        return out.reshape(x.shape)
    # in x's memory layout, as elementwise NumPy results are (gelu's output keeps its input's strides)
    laid_out = np.empty_like(x, dtype=np.float64)
    laid_out[...] = out.reshape(x.shape)
    return laid_out


def _erf_single_block(x: np.ndarray, out: np.ndarray) -> None:
    """``_erf_single`` of a 1-D block into ``out``: in place, each operation the one the formulas
    name (the same roundings as evaluating them expression by expression)."""
    z = np.abs(x.astype(np.float64))
    t = np.multiply(z, 0.3275911)
    t += 1.0
    np.divide(1.0, t, out=t)
    poly = np.multiply(t, _A_S_COEFFICIENTS[0])
    for coefficient in _A_S_COEFFICIENTS[1:]:  # Horner: t (c + t (...))
        poly += coefficient
        poly *= t
    result = t  # 1 - poly e^{-z^2}, in t's buffer
    np.multiply(z, z, out=result)
    np.negative(result, out=result)
    np.exp(result, out=result)
    result *= poly
    np.subtract(1.0, result, out=result)
    # integer positions: a boolean mask's gather and scatter cost 4 ms each on 10^6 elements
    small = np.flatnonzero(z < 0.5)
    if small.size:
        zs = z.take(small)
        neg_z2 = zs * zs
        np.negative(neg_z2, out=neg_z2)
        # erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        term = zs.copy()
        total = zs
        piece = np.empty_like(zs)
        for n in range(1, 10):
            term *= neg_z2
            term /= n
            np.divide(term, 2 * n + 1, out=piece)
            total += piece
        total *= _TWO_OVER_SQRT_PI
        result[small] = total
    np.copysign(result, x, out=out)
