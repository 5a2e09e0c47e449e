"""quantile, nanmedian, histogram, cov, corrcoef, logcumsumexp, trapezoid, gradient, renorm and
the windows: torch's errors for bad input, numerically hostile values, and whole programs run on
chainrule and on torch and compared.

The forward/gradient comparisons of every sample live in the registry
(``chainrule/testing/opinfo/statistics.py``, run by ``test_op_db.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

from .harness import requires_torch
from .test_structural import _compare, _raises_like_torch

pytestmark = requires_torch

X = np.arange(12.0).reshape(3, 4)

ERRORS = {
    "quantile_q_above_one": (lambda lib, x: lib.quantile(x, 1.5), [X]),
    "quantile_q_tensor_out_of_range": (lambda lib, x, q: lib.quantile(x, q), [X, np.array([0.5, -0.1])]),
    "quantile_int_input": (lambda lib, x: lib.quantile(x, 0.5), [X.astype(np.int64)]),
    "quantile_interpolation": (lambda lib, x: lib.quantile(x, 0.5, interpolation="cubic"), [X]),
    "quantile_empty": (lambda lib, x: lib.quantile(x, 0.5), [np.zeros(0)]),
    "quantile_q_2d": (lambda lib, x, q: lib.quantile(x, q), [X, np.full((2, 2), 0.5)]),
    "quantile_q_dtype": (lambda lib, x, q: lib.quantile(x, q), [X, np.array([0.5], np.float32)]),
    "nanquantile_dim": (lambda lib, x: lib.nanquantile(x, 0.5, dim=2), [X]),
    "nanmedian_empty_dim": (lambda lib, x: lib.nanmedian(x, 1), [np.zeros((2, 0))]),
    "histogram_int": (lambda lib, x: lib.histogram(x, 3), [X.astype(np.int64)]),
    "histogram_bins": (lambda lib, x: lib.histogram(x, -1), [X]),
    "cov_3d": (lambda lib, x: lib.cov(x), [np.zeros((2, 2, 2))]),
    "cov_float_fweights": (lambda lib, x, f: lib.cov(x, fweights=f), [X, np.ones(4)]),
    "cov_fweights_count": (lambda lib, x, f: lib.cov(x, fweights=f), [X, np.ones(3, np.int64)]),
    "cov_negative_aweights": (lambda lib, x, a: lib.cov(x, aweights=a), [X, np.array([1.0, -1.0, 1.0, 1.0])]),
    "corrcoef_3d": (lambda lib, x: lib.corrcoef(x), [np.zeros((2, 2, 2))]),
    "logcumsumexp_int": (lambda lib, x: lib.logcumsumexp(x, 0), [X.astype(np.int64)]),
    "logcumsumexp_dim": (lambda lib, x: lib.logcumsumexp(x, 2), [X]),
    "trapezoid_x_length": (lambda lib, y, x: lib.trapezoid(y, x), [X, np.zeros(3)]),
    "gradient_edge_order": (lambda lib, f: lib.gradient(f, edge_order=3), [X]),
    "gradient_too_short": (lambda lib, f: lib.gradient(f, dim=1, edge_order=2), [X[:, :2]]),
    "gradient_spacing_length": (lambda lib, f: lib.gradient(f, spacing=[1.0, 2.0, 3.0]), [X]),
    "renorm_p": (lambda lib, x: lib.renorm(x, -1, 0, 1.0), [X]),
    "renorm_maxnorm": (lambda lib, x: lib.renorm(x, 2, 0, -1.0), [X]),
    "hann_window_negative": (lambda lib: lib.hann_window(-1), []),
    "kaiser_window_int_dtype": (lambda lib: lib.kaiser_window(4, dtype=lib.int64), []),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch(name):
    fn, arrays = ERRORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _raises_like_torch(fn, *arrays)


def test_logcumsumexp_does_not_overflow_or_underflow():
    # exp(±1000) is out of float range; the running log-add-exp (and its gradient) is not
    values = np.array([[-1000.0, 0.0, 1000.0, 1000.0], [1000.0, -1000.0, -1000.0, 0.0]], np.float32)

    def program(lib):
        x = lib.tensor(values, requires_grad=True)
        y = lib.logcumsumexp(x, 1)
        (y * lib.tensor([[1.0, -2.0, 3.0, 0.5]])).sum().backward()
        return [y, x.grad]

    _compare(program)
    assert np.isfinite(chainrule.logcumsumexp(chainrule.tensor(values), 1).numpy()).all()


def test_logcumsumexp_double_backward_matches_torch():
    values = np.random.default_rng(0).standard_normal(6)
    cotangent = np.random.default_rng(1).standard_normal(6)  # both signs: both log-space halves

    def program(lib):
        x = lib.tensor(values, requires_grad=True)
        g = lib.tensor(cotangent, requires_grad=True)
        (grad_x,) = lib.autograd.grad(lib.logcumsumexp(x, 0), x, g, create_graph=True)
        second = lib.autograd.grad((grad_x * lib.arange(6.0, dtype=lib.float64)).sum(), [x, g])
        return [grad_x, *second]

    _compare(program, rtol=1e-9, atol=1e-12)


def test_quantile_with_inf_and_nan_slices():
    # (the index nanmedian returns for an all-NaN row is not compared: torch's is wherever its
    # nth_element selection leaves it, 2 of 4 here; ours is the first)
    values = np.array([[1.0, np.inf, 2.0, 3.0], [np.nan, 1.0, 2.0, 0.0], [np.nan] * 4, [-np.inf, 0.0, 1.0, 2.0]])

    def program(lib):
        x = lib.tensor(values)
        return [lib.quantile(x, 0.5, dim=1), lib.nanquantile(x, lib.tensor([0.0, 0.5, 1.0], dtype=lib.float64), 1),
                lib.nanmedian(x, 1).values, lib.nanmedian(x, 1).indices[[0, 1, 3]], lib.nanmedian(x),
                lib.quantile(x[0], 0.9, interpolation="nearest")]

    _compare(program)


def test_program_summary_statistics():
    """What an analysis script computes of a batch of features: quartiles, robust centre, a histogram,
    the correlation matrix and a normalised covariance loss, with gradients."""
    rng = np.random.default_rng(2)
    features = rng.standard_normal((4, 30)).astype(np.float32)
    weights = rng.integers(1, 4, 30)

    def program(lib):
        x = lib.tensor(features, requires_grad=True)
        quartiles = x.quantile(lib.tensor([0.25, 0.5, 0.75]), dim=1)
        iqr = quartiles[2] - quartiles[0]
        centre = x.nanmedian(dim=1).values
        hist, edges = lib.histogram(x.detach().reshape(-1), bins=8, range=(-3.0, 3.0))
        counts = lib.histc(x.detach(), bins=8, min=-3, max=3)
        correlation = lib.corrcoef(x)
        covariance = lib.cov(x, fweights=lib.tensor(weights))
        loss = (covariance - lib.eye(4)).pow(2).sum() + iqr.sum() + centre.abs().sum() + correlation.triu(1).sum()
        loss.backward()
        return [quartiles, centre, hist, edges, counts, correlation, covariance, x.grad]

    _compare(program, rtol=1e-4, atol=1e-5)


def test_program_signal_processing():
    """A windowed signal, its numerical derivative and integrals, and embedding renorm as
    nn.Embedding(max_norm=...) does it."""
    t = np.linspace(0.0, 2.0, 16)
    rng = np.random.default_rng(3)
    table = (rng.standard_normal((5, 3)) * 2).astype(np.float32)

    def program(lib):
        times = lib.tensor(t, dtype=lib.float32)
        signal = (times * 3.0).sin().requires_grad_(True)
        windowed = signal * lib.hann_window(16) * lib.kaiser_window(16, True, 5.0)
        (slope,) = lib.gradient(windowed, spacing=[times])
        area = lib.trapezoid(windowed, times)
        running = lib.cumulative_trapezoid(windowed, dx=float(t[1] - t[0]))
        weight = lib.tensor(table, requires_grad=True)
        clipped = weight.renorm(2, 0, 1.0)
        (slope.pow(2).sum() + area + running.sum() + clipped.sum()).backward()
        windows = [lib.hamming_window(7, periodic=False), lib.blackman_window(8), lib.bartlett_window(5)]
        return [windowed, slope, area, running, clipped, signal.grad, weight.grad, *windows]

    _compare(program, rtol=1e-4, atol=1e-5)


def test_cov_without_degrees_of_freedom_warns_like_torch():
    # one observation with Bessel's correction: torch warns and returns NaN rather than raising
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        result = chainrule.cov(chainrule.ones(2, 1))
    assert np.isnan(result.numpy()).all() and tuple(result.shape) == (2, 2)


def test_histogram_of_nothing_spans_the_unit_range():
    _compare(lambda lib: list(lib.histogram(lib.zeros(0), 2)))
