"""Gamma draws that carry a gradient to their concentration (torch._standard_gamma), the
building block of Gamma, Beta, Dirichlet, Chi2 and StudentT's ``rsample``.

A draw x ~ Gamma(α, 1) is x = F⁻¹(u; α) for a uniform u, so at fixed u the implicit function
theorem gives dx/dα = -(∂F/∂α)(x; α) / f(x; α), with F the regularised lower incomplete gamma
function P(α, x) and f the density (Figurnov et al., 2018, "Implicit reparameterization
gradients"). P is evaluated by its power series below x < α + 1 and by the continued fraction of
1 - P above, in float64, and ∂P/∂α by a central difference of it.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module
from ..autograd.function import Function
from ..tensor import Tensor
from . import random as _random

__all__ = ["standard_gamma"]
__not_methods__ = set(__all__)

_ITERATIONS = 2000  # enough for the series to converge for α up to ~1e5


def _lgamma(a: np.ndarray) -> np.ndarray:
    return np.frompyfunc(math.lgamma, 1, 1)(a).astype(np.float64) if a.size else a.astype(np.float64)


def _regularized_lower_gamma(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(a, x) = γ(a, x) / Γ(a), elementwise, float64 (a > 0, x ≥ 0)."""
    a, x = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(x, np.float64))
    out = np.zeros(a.shape)
    log_prefix = a * np.log(np.where(x > 0, x, 1.0)) - x - _lgamma(a)
    series = (x < a + 1) & (x > 0)
    if series.any():
        aa, xx = a[series], x[series]
        term = 1.0 / aa
        total = term.copy()
        for n in range(1, _ITERATIONS):
            term = term * xx / (aa + n)
            total += term
            if np.all(term < total * 1e-16):
                break
        out[series] = np.exp(log_prefix[series]) * total
    fraction = x >= a + 1
    if fraction.any():
        # Q(a, x) by the modified Lentz continued fraction (Numerical Recipes' gcf)
        aa, xx = a[fraction], x[fraction]
        tiny = 1e-300
        b = xx + 1 - aa
        c = np.full(aa.shape, 1 / tiny)
        d = 1 / b
        h = d.copy()
        for n in range(1, _ITERATIONS):
            an = -n * (n - aa)
            b = b + 2
            d = an * d + b
            d = np.where(np.abs(d) < tiny, tiny, d)
            c = b + an / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            d = 1 / d
            delta = d * c
            h = h * delta
            if np.all(np.abs(delta - 1) < 1e-15):
                break
        out[fraction] = 1 - np.exp(log_prefix[fraction]) * h
    return out


def standard_gamma_grad(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """dx/dα of a Gamma(α, 1) draw x at fixed uniform noise (float64 math, x's dtype out)."""
    a = np.asarray(alpha, np.float64)
    xx = np.asarray(x, np.float64)
    step = 1e-5 * np.maximum(a, 1.0)
    step = np.minimum(step, a / 2)  # stay inside α > 0
    d_cdf = (_regularized_lower_gamma(a + step, xx) - _regularized_lower_gamma(a - step, xx)) / (2 * step)
    log_density = (a - 1) * np.log(np.maximum(xx, 1e-300)) - xx - _lgamma(a)
    grad = -d_cdf / np.exp(log_density)
    return np.where(xx > 0, grad, 0.0).astype(np.asarray(x).dtype)


class StandardGamma(Function):
    """x ~ Gamma(α, 1), differentiable in α through the implicit reparameterisation gradient."""

    _array_forward = True
    node_name = "StandardGammaBackward0"
    label = "standard_gamma"
    rule = "dx/dα = -(∂P(α, x)/∂α) / f(x; α) at fixed noise (implicit reparameterisation)"
    formula = "Gamma({0}, 1) draw"

    @staticmethod
    def forward(ctx, alpha):
        xp = array_module(alpha)
        draws = _random._rng(None, xp).standard_gamma(alpha).astype(alpha.dtype)
        # a float32 draw can round to 0 for small α: torch keeps it at the smallest normal number
        draws = xp.maximum(draws, np.finfo(alpha.dtype).tiny)
        ctx.save_for_backward(draws, alpha)
        return draws

    @staticmethod
    def backward(ctx, grad):
        x, alpha = ctx.saved_tensors
        xp = array_module(x._data)
        if xp is np:
            local = standard_gamma_grad(x._data, alpha._data)
        else:  # the series runs on the host: a device array's gradient costs one round trip
            local = xp.asarray(standard_gamma_grad(xp.asnumpy(x._data), xp.asnumpy(alpha._data)))
        return grad * Tensor._make(local)


def standard_gamma(concentration: Tensor) -> Tensor:
    """torch._standard_gamma: one Gamma(α, 1) draw per element of ``concentration``, whose
    gradient with respect to α is the implicit reparameterisation gradient."""
    if concentration._data.dtype.kind != "f":
        raise RuntimeError(f"_standard_gamma: expected a floating-point concentration, got {concentration.dtype}")
    return StandardGamma.apply(concentration)
