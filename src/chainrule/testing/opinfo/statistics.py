"""quantile, nanquantile, nanmedian, histogram, cov, corrcoef, logcumsumexp, trapezoid, trapz,
cumulative_trapezoid, gradient, renorm and the window functions, compared with torch and gradchecked."""

from __future__ import annotations

import numpy as np

from .complex import crandn
from .core import OpCase, OpInfo, distinct, noncontig, positive, randn

INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _with_nan(x: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[where] = np.nan
    return out


def _quantile_cases() -> list[OpCase]:
    x = distinct(3, 5)  # tie-free: sort's gradient routing is then unambiguous
    q = np.array([0.1, 0.35, 0.55, 0.9])  # no integer rank (a kink of the interpolation) in any slice
    cases = [
        OpCase("quantile_all", lambda lib, x: lib.quantile(x, 0.3), [x]),
        OpCase("quantile_dim", lambda lib, x: x.quantile(0.75, dim=1), [x]),
        OpCase("quantile_tensor_q", lambda lib, x, q: lib.quantile(x, q, dim=0, keepdim=True), [x, q[1:3]]),
        OpCase("quantile_tensor_q_all", lambda lib, x, q: lib.quantile(x, q), [x, q]),
        OpCase("quantile_keepdim_all", lambda lib, x: lib.quantile(x, 0.5, keepdim=True), [x]),
        OpCase("quantile_0d", lambda lib, x: lib.quantile(x, 0.5), [np.array(1.5)]),
        OpCase("quantile_noncontig", lambda lib, x: lib.quantile(x, 0.6, dim=-1), [noncontig(distinct(4, 3))]),
        # a NaN output has no finite difference: the gradient is compared with torch's only
        OpCase("quantile_nan", lambda lib, x: lib.quantile(x, 0.4, dim=1), [_with_nan(x, (1, 2))], gradcheck=False,
               gradgradcheck=False),
    ]
    cases += [OpCase(f"quantile_{mode}", lambda lib, x, mode=mode: lib.quantile(x, 0.4, dim=1, interpolation=mode),
                     [x]) for mode in INTERPOLATIONS[1:]]
    return cases


def _nanquantile_cases() -> list[OpCase]:
    x = _with_nan(distinct(3, 5), (np.array([0, 0, 2]), np.array([1, 4, 0])))
    all_nan = _with_nan(distinct(2, 3), (np.array([1, 1, 1]), np.array([0, 1, 2])))
    return [
        OpCase("nanquantile", lambda lib, x: lib.nanquantile(x, 0.3, dim=1), [x]),
        OpCase("nanquantile_all", lambda lib, x: x.nanquantile(0.8), [x]),
        OpCase("nanquantile_tensor_q", lambda lib, x, q: lib.nanquantile(x, q, dim=1),
               [x, np.array([0.3, 0.6])]),
        OpCase("nanquantile_all_nan_row", lambda lib, x: lib.nanquantile(x, 0.5, dim=1), [all_nan],
               gradcheck=False, gradgradcheck=False),
        OpCase("nanquantile_nearest", lambda lib, x: lib.nanquantile(x, 0.5, dim=1, interpolation="nearest"), [x]),
    ]


def _nanmedian_cases() -> list[OpCase]:
    x = _with_nan(distinct(3, 6), (np.array([0, 0, 2]), np.array([1, 4, 0])))
    all_nan = _with_nan(distinct(2, 3), (np.array([1, 1, 1]), np.array([0, 1, 2])))
    return [
        OpCase("nanmedian_all", lambda lib, x: lib.nanmedian(x), [x]),
        # ties: torch splits the gradient evenly between them (compared, not finite-differenced)
        OpCase("nanmedian_all_ties", lambda lib, x: x.nanmedian(), [np.array([1.0, np.nan, 2.0, 1.0, 3.0])],
               gradcheck=False, gradgradcheck=False),
        OpCase("nanmedian_dim", lambda lib, x: lib.nanmedian(x, 1), [x]),
        OpCase("nanmedian_dim_keepdim", lambda lib, x: x.nanmedian(dim=0, keepdim=True), [x]),
        OpCase("nanmedian_all_nan_row", lambda lib, x: lib.nanmedian(x, dim=1), [all_nan], gradcheck=False,
               gradgradcheck=False),
        OpCase("nanmedian_no_nan", lambda lib, x: lib.nanmedian(x, -1), [distinct(2, 5)]),
        OpCase("nanmedian_ints", lambda lib, x: lib.nanmedian(x, 0), [np.array([[3, 1], [2, 2], [1, 5]])]),
        OpCase("nanmedian_0d", lambda lib, x: lib.nanmedian(x, 0), [np.array(2.0)]),
    ]


def _histogram_cases() -> list[OpCase]:
    x = randn(40)
    return [
        OpCase("histogram", lambda lib, x: lib.histogram(x, 5), [x], grad=[False]),
        OpCase("histogram_range_density", lambda lib, x: x.histogram(4, range=(-1.0, 1.0), density=True), [x],
               grad=[False]),
        OpCase("histogram_weight", lambda lib, x, w: lib.histogram(x, bins=3, weight=w), [x, positive(40)],
               grad=[False, False]),
        OpCase("histogram_edges", lambda lib, x, b: lib.histogram(x, b), [x, np.array([-2.0, -0.5, 0.0, 3.0])],
               grad=[False, False]),
        OpCase("histogram_2d_input", lambda lib, x: lib.histogram(x, 6), [randn(5, 4)], grad=[False]),
        OpCase("histogram_constant", lambda lib, x: lib.histogram(x, 3), [np.full(4, 2.0)], grad=[False]),
    ]


def _cov_cases() -> list[OpCase]:
    x = randn(3, 6)
    fweights = np.array([1, 2, 0, 3, 1, 1])
    return [
        OpCase("cov", lambda lib, x: lib.cov(x), [x]),
        OpCase("cov_correction0", lambda lib, x: x.cov(correction=0), [x]),
        OpCase("cov_1d", lambda lib, x: lib.cov(x), [randn(5)]),
        OpCase("cov_fweights", lambda lib, x, f: lib.cov(x, fweights=f), [x, fweights]),
        OpCase("cov_aweights", lambda lib, x, a: lib.cov(x, aweights=a), [x, positive(6)]),
        OpCase("cov_both_weights", lambda lib, x, f, a: lib.cov(x, correction=2, fweights=f, aweights=a),
               [x, fweights, positive(6)]),
        OpCase("cov_noncontig", lambda lib, x: lib.cov(x), [noncontig(randn(4, 3))]),
        OpCase("cov_ints", lambda lib, x: lib.cov(x), [np.array([[1, 2, 4], [3, 0, 1]])]),
    ]


def _corrcoef_cases() -> list[OpCase]:
    return [
        OpCase("corrcoef", lambda lib, x: lib.corrcoef(x), [randn(3, 6)]),
        OpCase("corrcoef_method", lambda lib, x: x.corrcoef(), [randn(2, 5, seed=1)]),
        OpCase("corrcoef_1d", lambda lib, x: lib.corrcoef(x), [randn(5)]),
    ]


def _logcumsumexp_cases() -> list[OpCase]:
    return [
        OpCase("logcumsumexp", lambda lib, x: lib.logcumsumexp(x, 1), [randn(3, 5)]),
        OpCase("logcumsumexp_dim0", lambda lib, x: x.logcumsumexp(0), [randn(4, 3)]),
        OpCase("logcumsumexp_wide", lambda lib, x: lib.logcumsumexp(x, -1), [randn(2, 6) * 40]),
        OpCase("logcumsumexp_noncontig", lambda lib, x: lib.logcumsumexp(x, 0), [noncontig(randn(3, 4))]),
        OpCase("logcumsumexp_0d", lambda lib, x: lib.logcumsumexp(x, 0), [np.array(0.7)]),
        OpCase("logcumsumexp_empty", lambda lib, x: lib.logcumsumexp(x, 1), [np.zeros((2, 0))]),
        OpCase("logcumsumexp_complex", lambda lib, z: lib.logcumsumexp(z, 1), [crandn(3, 4) * 2]),
    ]


def _trapezoid_cases() -> list[OpCase]:
    y = randn(3, 5)
    x = np.cumsum(positive(5))
    return [
        OpCase("trapezoid", lambda lib, y: lib.trapezoid(y), [y]),
        OpCase("trapezoid_dx", lambda lib, y: lib.trapezoid(y, dx=0.5, dim=0), [y]),
        OpCase("trapezoid_x", lambda lib, y, x: lib.trapezoid(y, x), [y, x]),
        OpCase("trapezoid_x_full", lambda lib, y, x: lib.trapezoid(y, x, dim=1), [y, np.cumsum(positive(3, 5), 1)]),
        OpCase("trapezoid_one_sample", lambda lib, y: lib.trapezoid(y), [randn(3, 1)]),
        OpCase("trapezoid_ints", lambda lib, y: lib.trapezoid(y), [np.array([[1, 2, 4], [3, 0, 1]])]),
    ]


def _trapz_cases() -> list[OpCase]:
    y = randn(3, 5)
    return [
        OpCase("trapz", lambda lib, y, x: lib.trapz(y, x), [y, np.cumsum(positive(5))]),
        OpCase("trapz_dx", lambda lib, y: lib.trapz(y, dx=2.0, dim=0), [y]),
    ]


def _cumulative_trapezoid_cases() -> list[OpCase]:
    y = randn(3, 5)
    return [
        OpCase("cumulative_trapezoid", lambda lib, y: lib.cumulative_trapezoid(y), [y]),
        OpCase("cumulative_trapezoid_x", lambda lib, y, x: lib.cumulative_trapezoid(y, x, dim=0),
               [y, np.cumsum(positive(3))]),
        OpCase("cumulative_trapezoid_dx", lambda lib, y: lib.cumulative_trapezoid(y, dx=0.1), [y]),
    ]


def _gradient_cases() -> list[OpCase]:
    f = randn(4, 5)
    coordinates = np.cumsum(positive(5))
    return [
        OpCase("gradient", lambda lib, f: lib.gradient(f), [f]),
        OpCase("gradient_spacing_dim", lambda lib, f: lib.gradient(f, spacing=0.5, dim=1), [f]),
        OpCase("gradient_edge_order2", lambda lib, f: lib.gradient(f, spacing=[2.0, 0.5], edge_order=2), [f]),
        OpCase("gradient_coordinates", lambda lib, f, x: lib.gradient(f, spacing=[x], dim=-1), [f, coordinates]),
        OpCase("gradient_coordinates_edge_order2", lambda lib, f, x: lib.gradient(f, spacing=(x,), dim=[1],
                                                                                  edge_order=2), [f, coordinates]),
        OpCase("gradient_ints", lambda lib, f: lib.gradient(f), [np.array([[1, 2, 4, 8], [3, 5, 6, 9]])]),
        OpCase("gradient_noncontig", lambda lib, f: lib.gradient(f, dim=0), [noncontig(randn(3, 4))]),
    ]


def _renorm_cases() -> list[OpCase]:
    x = randn(3, 4) * 2
    return [
        OpCase("renorm", lambda lib, x: lib.renorm(x, 2, 0, 1.5), [x]),
        OpCase("renorm_method_dim1_p1", lambda lib, x: x.renorm(1, 1, 2.0), [x]),
        OpCase("renorm_3d", lambda lib, x: lib.renorm(x, 3, -1, 1.0), [randn(2, 3, 2)]),
        OpCase("renorm_nothing_scaled", lambda lib, x: lib.renorm(x, 2, 0, 100.0), [x]),
        OpCase("renorm_inplace", lambda lib, x: x.clone().renorm_(2, 0, 1.5), [x]),
    ]


def _window_cases() -> list[OpCase]:
    return [
        OpCase("hann_window", lambda lib: lib.hann_window(8), []),
        OpCase("hann_window_symmetric_f64", lambda lib: lib.hann_window(7, False, dtype=lib.float64), []),
        OpCase("hann_window_short", lambda lib: [lib.hann_window(1), lib.hann_window(0)], []),
        OpCase("hamming_window", lambda lib: lib.hamming_window(9), []),
        OpCase("hamming_window_alpha", lambda lib: lib.hamming_window(6, False, 0.5, 0.4), []),
        OpCase("blackman_window", lambda lib: [lib.blackman_window(6), lib.blackman_window(6, periodic=False)], []),
        OpCase("bartlett_window", lambda lib: [lib.bartlett_window(8), lib.bartlett_window(7, False)], []),
        OpCase("kaiser_window", lambda lib: [lib.kaiser_window(10), lib.kaiser_window(5, False, beta=3.0)], []),
    ]


_WINDOW_NAMES = ("hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window")


def _window_entry(name: str) -> OpInfo:
    return OpInfo(name, "statistics", lambda: [c for c in _window_cases() if c.name.startswith(name)],
                  supports_autograd=False)


op_db: list[OpInfo] = [
    OpInfo("quantile", "statistics", _quantile_cases, methods=("quantile",)),
    OpInfo("nanquantile", "statistics", _nanquantile_cases, methods=("nanquantile",)),
    OpInfo("nanmedian", "statistics", _nanmedian_cases, methods=("nanmedian",)),
    OpInfo("histogram", "statistics", _histogram_cases, methods=("histogram",), supports_autograd=False),
    OpInfo("cov", "statistics", _cov_cases, methods=("cov",)),
    OpInfo("corrcoef", "statistics", _corrcoef_cases, methods=("corrcoef",)),
    OpInfo("logcumsumexp", "statistics", _logcumsumexp_cases, methods=("logcumsumexp",)),
    OpInfo("trapezoid", "statistics", _trapezoid_cases),
    OpInfo("trapz", "statistics", _trapz_cases),
    OpInfo("cumulative_trapezoid", "statistics", _cumulative_trapezoid_cases),
    OpInfo("gradient", "statistics", _gradient_cases),
    OpInfo("renorm", "statistics", _renorm_cases, methods=("renorm", "renorm_")),
    *[_window_entry(name) for name in _WINDOW_NAMES],
]
