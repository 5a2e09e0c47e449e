"""Gamma draws that carry a gradient to their concentration (torch._standard_gamma), the
building block of Gamma, Beta, Dirichlet, Chi2 and StudentT's ``rsample``.

A draw x ~ Gamma(α, 1) is x = F⁻¹(u; α) for a uniform u, so at fixed u the implicit function
theorem gives dx/dα = -(∂F/∂α)(x; α) / f(x; α), with F the regularised lower incomplete gamma
function P(α, x) and f the density (Figurnov et al., 2018, "Implicit reparameterization
gradients"). P is torch.igamma's kernel (``_incomplete_gamma.igamma``, float64), and ∂P/∂α a central
difference of it.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module
from ..autograd.function import Function
from ..tensor import Tensor
from . import _incomplete_gamma, _special_math
from . import random as _random
from .mt19937_stream import from_double

__all__ = ["standard_gamma", "sample_dirichlet"]
__not_methods__ = set(__all__)


def standard_gamma_grad(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """dx/dα of a Gamma(α, 1) draw x at fixed uniform noise (float64 math, x's dtype out)."""
    a = np.asarray(alpha, np.float64)
    xx = np.asarray(x, np.float64)
    step = 1e-5 * np.maximum(a, 1.0)
    step = np.minimum(step, a / 2)  # stay inside α > 0
    d_cdf = (_incomplete_gamma.igamma(a + step, xx) - _incomplete_gamma.igamma(a - step, xx)) / (2 * step)
    log_density = (a - 1) * np.log(np.maximum(xx, 1e-300)) - xx - _special_math.lgamma(a)
    grad = -d_cdf / np.exp(log_density)
    return np.where(xx > 0, grad, 0.0).astype(np.asarray(x).dtype)


def torch_gamma_draws(stream, alpha: np.ndarray, scalar_type) -> np.ndarray:
    """torch's CPU _standard_gamma: Marsaglia and Tsang's method per value, in order, on the
    stream's double uniforms and its scalar normal sampler (whose cached second value carries
    from one value to the next). α below 1 is boosted to α + 1 with a factor (1 - u)^(1/α).
    ``scalar_type`` (float32 or float64) is the type torch's sampler keeps α in: 1/α, α + 1 and
    d = α - 1/3 are computed in it (1/3 itself a float32 constant), the rest in double; the
    constant 0.0331 is a float32 value too. Returns doubles, before the cast.

    One Python loop (each value's number of draws shows only as it runs), with the uniforms
    read from a list by a local index and each α's constants worked out once."""
    scalar = np.float32 if np.dtype(scalar_type) == np.float32 else np.float64
    third = scalar(np.float32(1.0) / np.float32(3.0))
    squeeze = float(np.float32(0.0331))
    constants = {}  # α -> (1/α for the boost or None, d, c)
    alphas = np.asarray(alpha, dtype=scalar).reshape(-1).tolist()
    out = []
    cursor = stream.double_cursor(4 * len(alphas) + 16)
    uniforms, index, cached = cursor.values, 0, stream.cached_double_normal
    log, log1p, sqrt, cos, sin, two_pi = math.log, math.log1p, math.sqrt, math.cos, math.sin, 2.0 * math.pi
    try:
        for a in alphas:
            if a == 0.0:
                out.append(0.0)
                continue
            known = constants.get(a)
            if known is None:
                boost = float(scalar(1.0) / scalar(a)) if a < 1.0 else None
                shifted = scalar(a) + scalar(1.0) if boost is not None else scalar(a)
                d = float(shifted - third)
                # a negative or NaN α gives a NaN c, as torch's, whose draw then ends NaN
                known = constants[a] = (boost, d, 1.0 / sqrt(9.0 * d) if d >= 0 else math.nan)
            boost, d, c = known
            if index + 64 > len(uniforms):  # enough for any value but a long run of rejections
                uniforms = cursor.grow()
            scale = 1.0
            if boost is not None:
                scale *= (1.0 - uniforms[index]) ** boost
                index += 1
            while True:
                while True:
                    if cached is not None:
                        x, cached = cached, None
                    else:
                        if index + 2 > len(uniforms):
                            uniforms = cursor.grow()
                        radius = sqrt(-2.0 * log1p(-uniforms[index + 1]))
                        theta = two_pi * uniforms[index]
                        index += 2
                        x, cached = radius * cos(theta), radius * sin(theta)
                    y = 1.0 + c * x
                    if not y <= 0:  # NaN leaves too, as torch's do-while
                        break
                v = y * y * y
                if index + 1 > len(uniforms):
                    uniforms = cursor.grow()
                u = 1.0 - uniforms[index]
                index += 1
                xx = x * x
                if u < 1.0 - squeeze * xx * xx or log(u) < 0.5 * xx + d * (1.0 - v + log(v)):
                    out.append(scale * d * v)
                    break
    finally:
        stream.cached_double_normal = cached
        cursor.close(index)
    return np.array(out, dtype=np.float64)


def gamma_values(alpha: np.ndarray, generator=None) -> np.ndarray:
    """Gamma(α, 1) draws of α's dtype: on the CPU torch's values for float32 and float64 (half
    precision through float32), each at least the dtype's smallest normal number as torch keeps
    it; on a device the device stream's."""
    xp = array_module(alpha)
    if xp is np:
        scalar = np.float64 if alpha.dtype == np.float64 else np.float32
        draws = torch_gamma_draws(_random._rng(generator), alpha, scalar).reshape(alpha.shape)
        draws = from_double(draws.astype(scalar), alpha.dtype)
    else:
        draws = _random._rng(generator, xp).standard_gamma(alpha).astype(alpha.dtype)
    # a draw can round to 0 for small α: torch keeps it at the smallest normal number (NaN too,
    # as its std::max(smallest, draw))
    return xp.fmax(draws, np.finfo(alpha.dtype).tiny)


class StandardGamma(Function):
    """x ~ Gamma(α, 1), differentiable in α through the implicit reparameterisation gradient."""

    _array_forward = True
    node_name = "StandardGammaBackward0"
    label = "standard_gamma"
    rule = "dx/dα = -(∂P(α, x)/∂α) / f(x; α) at fixed noise (implicit reparameterisation)"
    formula = "Gamma({0}, 1) draw"

    @staticmethod
    def forward(ctx, alpha, generator=None):
        draws = gamma_values(alpha, generator)
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


def standard_gamma(concentration: Tensor, generator=None) -> Tensor:
    """torch._standard_gamma: one Gamma(α, 1) draw per element of ``concentration``, whose
    gradient with respect to α is the implicit reparameterisation gradient."""
    if concentration._data.dtype.kind not in "fV":
        raise RuntimeError(f"_standard_gamma: expected a floating-point concentration, got {concentration.dtype}")
    return StandardGamma.apply(concentration, generator=generator)


def sample_dirichlet(concentration: Tensor, generator=None) -> Tensor:
    """torch._sample_dirichlet: Dirichlet draws along the last dim, not recorded (torch has no
    derivative for it; Dirichlet.rsample differentiates through its draws). On the CPU torch's
    values: Gamma draws in double, divided by their sum, cast and kept within [smallest normal,
    largest value below 1]."""
    alpha = concentration._data
    if alpha.dtype.kind not in "fV":
        raise RuntimeError(f"_sample_dirichlet: expected a floating-point concentration, got {concentration.dtype}")
    xp = array_module(alpha)
    if xp is np:
        gammas = torch_gamma_draws(_random._rng(generator), alpha, np.float64).reshape(alpha.shape)
        gammas = np.fmax(gammas, np.finfo(np.float64).tiny)
    else:
        gammas = gamma_values(alpha.astype(np.float64), generator)
    ratios = gammas / gammas.sum(axis=-1, keepdims=True)
    ratios = from_double(ratios, alpha.dtype) if xp is np else ratios.astype(alpha.dtype)
    below_one = np.nextafter(np.array(1, alpha.dtype), np.array(0, alpha.dtype))
    return Tensor._make(xp.clip(ratios, np.finfo(alpha.dtype).tiny, below_one))
