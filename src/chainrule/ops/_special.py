"""Special functions NumPy lacks (erf), accurate to float64 round-off, vectorised."""

from __future__ import annotations

import numpy as np

_SERIES_TERMS = 64
_FRACTION_TERMS = 40
_SWITCH = 3.0


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in x's floating dtype.

    |x| < 3: erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (2n+1)!!  (all terms positive, so
    no cancellation); |x| >= 3: erfc from its continued fraction, evaluated bottom-up.
    """
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.float64
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
    return (np.sign(x) * result).astype(dtype, copy=False)
