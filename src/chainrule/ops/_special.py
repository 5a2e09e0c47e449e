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


def _erf_single(x: np.ndarray) -> np.ndarray:
    """erf for float32/float16: |error| <= 1.5e-7 (below float32's resolution near 1).

    |x| < 0.5: the Maclaurin series (10 terms, exact to float64 there, so small inputs keep their
    relative accuracy); elsewhere Abramowitz & Stegun 7.1.26, a 5-term rational fit.
    """
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    result = 1.0 - poly * np.exp(-z * z)
    small = z < 0.5
    if small.any():
        zs = z[small]
        z2 = zs * zs
        # erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        term = zs.copy()
        total = zs.copy()
        for n in range(1, 10):
            term = term * (-z2) / n
            total += term / (2 * n + 1)
        result[small] = 2.0 / np.sqrt(np.pi) * total
    return np.copysign(result, x)
