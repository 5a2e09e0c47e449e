"""Gamma draws that carry a gradient to their concentration (torch._standard_gamma), the
building block of Gamma, Beta, Dirichlet, Chi2 and StudentT's ``rsample``.

A draw x ~ Gamma(α, 1) is x = F⁻¹(u; α) for a uniform u, so at fixed u the implicit function
theorem gives dx/dα = -(∂F/∂α)(x; α) / f(x; α), with F the regularised lower incomplete gamma
function P(α, x) and f the density (Figurnov et al., 2018, "Implicit reparameterization
gradients"). P is torch.igamma's kernel (``_special_math.igamma``, float64), and ∂P/∂α a central
difference of it.
"""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from ..autograd.function import Function
from ..tensor import Tensor
from . import _special_math
from . import random as _random

__all__ = ["standard_gamma"]
__not_methods__ = set(__all__)


def standard_gamma_grad(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """dx/dα of a Gamma(α, 1) draw x at fixed uniform noise (float64 math, x's dtype out)."""
    a = np.asarray(alpha, np.float64)
    xx = np.asarray(x, np.float64)
    step = 1e-5 * np.maximum(a, 1.0)
    step = np.minimum(step, a / 2)  # stay inside α > 0
    d_cdf = (_special_math.igamma(a + step, xx) - _special_math.igamma(a - step, xx)) / (2 * step)
    log_density = (a - 1) * np.log(np.maximum(xx, 1e-300)) - xx - _special_math.lgamma(a)
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
        x, alpha = ctx.saved_values
        xp = array_module(x._data)
        if xp is np:
            local = standard_gamma_grad(x._data, alpha._data)
        else:  # the series runs on the host: a device array's gradient costs one round trip
            local = xp.asarray(standard_gamma_grad(xp.asnumpy(x._data), xp.asnumpy(alpha._data)))
        return grad * Tensor._make(local)


def standard_gamma(concentration: Tensor) -> Tensor:
    """torch._standard_gamma: one Gamma(α, 1) draw per element of ``concentration``, whose
    gradient with respect to α is the implicit reparameterisation gradient."""
    if concentration._data.dtype.kind not in "fV":
        raise RuntimeError(f"_standard_gamma: expected a floating-point concentration, got {concentration.dtype}")
    return StandardGamma.apply(concentration)
