"""chainrule/ops/special_polynomials.py: torch.special's Bessel, Airy and orthogonal-polynomial
functions. torch gives them no derivative (their results never require grad), so no input is
differentiated and the entries say ``supports_autograd=False``; the degree ``n`` is sampled as a
tensor of integers (exact) and of non-integers (truncated, as torch's kernels cast it), and as a
Python number."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, rng


def _uniform(low: float, high: float, *shape, seed: int = 0) -> np.ndarray:
    return rng(seed).uniform(low, high, shape)


def _special(name: str, *cases: OpCase) -> OpInfo:
    return OpInfo(f"special.{name}", "special_polynomials", lambda: list(cases), supports_autograd=False)


def _bessel(name: str, low: float, high: float) -> OpInfo:
    x = _uniform(low, high, 3, 4)
    call = lambda lib, x: getattr(lib.special, name)(x)  # noqa: E731
    return _special(name, OpCase(name, call, [x], grad=[False]),
                    OpCase(f"{name}_0d", call, [x.reshape(-1)[:1].reshape(())], grad=[False]),
                    OpCase(f"{name}_float32", call, [x.astype(np.float32)], grad=[False]))


def _polynomial(name: str, low: float, high: float) -> OpInfo:
    x = _uniform(low, high, 3, 4)
    degrees = np.arange(-1, 11).reshape(3, 4).astype(np.float64)
    call = lambda lib, x, n: getattr(lib.special, name)(x, n)  # noqa: E731
    return _special(name, OpCase(name, call, [x, degrees], grad=[False, False]),
                    OpCase(f"{name}_broadcast", call, [x[:, :1], np.array([0.0, 2.5, 7.9, 12.0])],
                           grad=[False, False]),
                    OpCase(f"{name}_number_n", lambda lib, x: getattr(lib.special, name)(x, 5), [x], grad=[False]))


op_db: list[OpInfo] = [
    _bessel("airy_ai", -6, 6),
    _bessel("bessel_j0", -12, 12),
    _bessel("bessel_j1", -12, 12),
    _bessel("bessel_y0", 0.1, 12),
    _bessel("bessel_y1", 0.1, 12),
    _bessel("modified_bessel_i0", -10, 10),
    _bessel("modified_bessel_i1", -10, 10),
    _bessel("modified_bessel_k0", 0.1, 10),
    _bessel("modified_bessel_k1", 0.1, 10),
    _bessel("scaled_modified_bessel_k0", 0.1, 10),
    _bessel("scaled_modified_bessel_k1", 0.1, 10),
    _bessel("spherical_bessel_j0", -10, 10),
    _polynomial("chebyshev_polynomial_t", -1, 1),
    _polynomial("chebyshev_polynomial_u", -1, 1),
    _polynomial("chebyshev_polynomial_v", -1, 1),
    _polynomial("chebyshev_polynomial_w", -1, 1),
    _polynomial("shifted_chebyshev_polynomial_t", 0, 1),
    _polynomial("shifted_chebyshev_polynomial_u", 0, 1),
    _polynomial("shifted_chebyshev_polynomial_v", 0, 1),
    _polynomial("shifted_chebyshev_polynomial_w", 0, 1),
    _polynomial("hermite_polynomial_h", -2, 2),
    _polynomial("hermite_polynomial_he", -2, 2),
    _polynomial("laguerre_polynomial_l", 0, 5),
    _polynomial("legendre_polynomial_p", -1, 1),
]
