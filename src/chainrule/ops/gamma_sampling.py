"""Gamma draws that carry a gradient to their concentration (torch._standard_gamma), the
building block of Gamma, Beta, Dirichlet, Chi2 and StudentT's ``rsample``.

A draw x ~ Gamma(α, 1) is x = F⁻¹(u; α) for a uniform u, so at fixed u the implicit function
theorem gives dx/dα = -(∂F/∂α)(x; α) / f(x; α), with F the regularised lower incomplete gamma
function P(α, x) and f the density (Figurnov et al., 2018, "Implicit reparameterization
gradients"). The formulas are torch's (aten/src/ATen/native/Distributions.h): series and
asymptotic expansions and fitted rational approximations of that ratio, for Gamma and for the
Beta marginals of a Dirichlet, so gradients equal torch's.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module
from ..autograd.function import Function, once_differentiable
from ..tensor import Tensor
from . import _special_math
from . import random as _random
from .mt19937_stream import from_double

__all__ = ["standard_gamma", "sample_dirichlet", "dirichlet_sample", "standard_gamma_grad_tensor",
           "dirichlet_grad_tensor"]
__not_methods__ = set(__all__)


def _series_branch(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """dx/dα for x < 0.8: P(α, x) and ∂P/∂α from six terms of the Taylor series of γ(α, x)."""
    numer, denom = np.ones_like(x), alpha.copy()
    series1, series2 = numer / denom, numer / (denom * denom)
    for i in range(1, 6):
        numer = numer * (-x / i)
        denom = denom + 1
        series1 = series1 + numer / denom
        series2 = series2 + numer / (denom * denom)
    pow_x_alpha = x ** alpha
    density = x ** (alpha - 1) * np.exp(-x)
    cdf = pow_x_alpha * series1
    # ∂P/∂α = (log x - ψ(α)) P - x^α Σ (-x)^i / (i! (α + i)²)
    cdf_alpha = (np.log(x) - _special_math.digamma(alpha)) * cdf - pow_x_alpha * series2
    result = -cdf_alpha / density
    return np.where(np.isnan(result), 0.0, result)


def _saddle_point_branch(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """dx/dα for α > 8 (x ≥ 0.8): Rice's saddle-point expansion, a polynomial near x = α."""
    numer_1 = 1 + 24 * alpha * (1 + 12 * alpha)
    numer_2 = 1440 * alpha * alpha + 6 * x * (53 - 120 * x) - 65 * x * x / alpha + alpha * (107 + 3600 * x)
    near_mean = numer_1 * numer_2 / (1244160 * alpha ** 4)
    denom = np.sqrt(8 * alpha)
    term2 = denom / (alpha - x)
    term3 = (x - alpha - alpha * np.log(x / alpha)) ** -1.5
    term23 = np.where(x < alpha, term2 - term3, term2 + term3)
    term1 = np.log(x / alpha) * term23 - np.sqrt(2 / alpha) * (alpha + x) / ((alpha - x) * (alpha - x))
    stirling = 1 + 1 / (12 * alpha) * (1 + 1 / (24 * alpha))
    away = -stirling * x * term1 / denom
    return np.where((0.9 * alpha <= x) & (x <= 1.1 * alpha), near_mean, away)


# the bivariate rational fit exp(p(u, v) / q(u, v)), u = log(x/α), v = log α, of torch's Distributions.h
_RATIONAL_UV = np.array([
    [0.16009398, -0.094634809, 0.025146376, -0.0030648343, 1, 0.32668115, 0.10406089, 0.0014179084],
    [0.53487893, 0.1298071, 0.065735949, -0.0015649758, 0.16639465, 0.020070113, -0.0035938915,
     -0.00058392623],
    [0.040121004, -0.0065914022, -0.0026286047, -0.0013441777, 0.017050642, -0.0021309326,
     0.00085092367, -1.5247877e-07],
])


def _rational_branch(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    u, v = np.log(x / alpha), np.log(alpha)
    c = [_RATIONAL_UV[0, i] + u * (_RATIONAL_UV[1, i] + u * _RATIONAL_UV[2, i]) for i in range(8)]
    p = c[0] + v * (c[1] + v * (c[2] + v * c[3]))
    q = c[4] + v * (c[5] + v * (c[6] + v * c[7]))
    return np.exp(p / q)


def standard_gamma_grad(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """dx/dα of a Gamma(α, 1) draw x at fixed uniform noise: torch's standard_gamma_grad_one
    (a Taylor series for x < 0.8, a saddle-point expansion for α > 8, else a rational fit), in
    double, cast to x's dtype."""
    dtype = np.result_type(np.asarray(x).dtype, np.asarray(alpha).dtype)
    xx, a = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(alpha, np.float64))
    with np.errstate(all="ignore"):  # each branch is evaluated everywhere and selected after
        grad = np.where(xx < 0.8, _series_branch(xx, a),
                        np.where(a > 8.0, _saddle_point_branch(xx, a), _rational_branch(xx, a)))
    return grad.astype(dtype)


def _digamma_in(v: np.ndarray) -> np.ndarray:
    """ψ in double, rounded to v's dtype: torch's digamma_one<scalar_t, double>."""
    return _special_math.digamma(v.astype(np.float64)).astype(v.dtype)


def _beta_grad_alpha_small(x, alpha, beta):
    """∂x/∂α of a Beta(α, β) draw x near 0 (scaled by 1/(1 - x)): a ten-term Taylor series."""
    factor = _digamma_in(alpha) - _digamma_in(alpha + beta) - np.log(x)
    numer = np.ones_like(x)
    series = numer / alpha * (factor + 1 / alpha)
    for i in range(1, 11):
        numer = numer * ((i - beta) * x / i)
        denom = alpha + i
        series = series + numer / denom * (factor + 1 / denom)
    result = x * (1 - x) ** -beta * series
    return np.where(np.isnan(result), 0.0, result)


def _beta_grad_beta_small(x, alpha, beta):
    """∂x/∂β of a Beta(α, β) draw x near 0 (scaled): an eight-term Taylor series."""
    factor = _digamma_in(alpha + beta) - _digamma_in(beta)
    numer, betas, dbetas, series = np.ones_like(x), np.ones_like(x), np.zeros_like(x), factor / alpha
    for i in range(1, 9):
        numer = numer * (-x / i)
        dbetas = dbetas * (beta - i) + betas
        betas = betas * (beta - i)
        series = series + numer / (alpha + i) * (dbetas + factor * betas)
    result = -(1 - x) ** (1 - beta) * series
    return np.where(np.isnan(result), 0.0, result)


def _beta_grad_alpha_mid(x, alpha, beta):
    """∂x/∂α of a Beta(α, β) draw for α, β > 6: Rice's saddle-point expansion."""
    total = alpha + beta
    mean = alpha / total
    std = np.sqrt(alpha * beta / (total + 1)) / total
    poly = 47 * x * beta ** 4 + alpha * (
        (43 + 20 * (16 + 27 * beta) * x) * beta ** 3 + alpha * (
            3 * (59 + 180 * beta - 90 * x) * beta * beta + alpha * (
                (453 + 1620 * beta * (1 - x) - 455 * x) * beta + alpha * (8 * (1 - x) * (135 * beta - 11)))))
    prefactor_num = (1 + 12 * alpha) * (1 + 12 * beta) / (total * total)
    prefactor_den = 12960 * alpha ** 3 * beta * beta * (1 + 12 * total)
    near_mean = prefactor_num / (1 - x) * poly / prefactor_den
    prefactor = -x / np.sqrt(2 * alpha * beta / total)
    stirling = ((1 + 1 / (12 * alpha) + 1 / (288 * alpha * alpha)) * (1 + 1 / (12 * beta) + 1 / (288 * beta * beta))
                / (1 + 1 / (12 * total) + 1 / (288 * total * total)))
    axbx = alpha * (x - 1) + beta * x
    term1 = ((2 * alpha * alpha * (x - 1) + alpha * beta * (x - 1) - x * beta * beta)
             / (np.sqrt(2 * alpha / beta) * total ** 1.5 * axbx * axbx))
    term2 = 0.5 * np.log(alpha / (total * x))
    term3 = np.sqrt(8 * alpha * beta / total) / axbx
    term4 = (beta * np.log(beta / (total * (1 - x))) + alpha * np.log(alpha / (total * x))) ** -1.5
    away = stirling * prefactor * (term1 + term2 * (term3 + np.where(x < mean, term4, -term4)))
    return np.where((mean - 0.1 * std <= x) & (x <= mean + 0.1 * std), near_mean, away)


# torch's rational correction p/q to x (ψ(total) - ψ(α)) / β, coefficients [p or q][u power][a power][b power]
_DIRICHLET_RATIONAL = np.array([
    [[[1.003668233, -0.01061107488, -0.0657888334, 0.01201642863],
      [0.6336835991, -0.3557432599, 0.05486251648, -0.001465281033],
      [-0.03276231906, 0.004474107445, 0.002429354597, -0.0001557569013]],
     [[0.221950385, -0.3187676331, 0.01799915743, 0.01074823814],
      [-0.2951249643, 0.06219954479, 0.01535556598, 0.001550077057],
      [0.02155310298, 0.004170831599, 0.001292462449, 6.976601077e-05]],
     [[-0.05980841433, 0.008441916499, 0.01085618172, 0.002319392565],
      [0.02911413504, 0.01400243777, -0.002721828457, 0.000751041181],
      [0.005900514878, -0.001936558688, -9.495446725e-06, 5.385558597e-05]]],
    [[[1, -0.02924021934, -0.04438342661, 0.007285809825],
      [0.6357567472, -0.3473456711, 0.05454656494, -0.002407477521],
      [-0.03301322327, 0.004845219414, 0.00231480583, -0.0002307248149]],
     [[0.5925320577, -0.1757678135, 0.01505928619, 0.000564515273],
      [0.1014815858, -0.06589186703, 0.01272886114, -0.0007316646956],
      [-0.007258481865, 0.001096195486, 0.0003934994223, -4.12701925e-05]],
     [[0.06469649321, -0.0236701437, 0.002902096474, -5.896963079e-05],
      [0.001925008108, -0.002869809258, 0.0008000589141, -6.063713228e-05],
      [-0.0003477407336, 6.959756487e-05, 1.097287507e-05, -1.650964693e-06]]],
])


def _dirichlet_rational(x, alpha, total):
    u = np.log(x)
    a = np.log(alpha) - u
    b = np.log(total) - a
    p = q = 0.0
    for i in range(3):
        for j in range(3):
            ua = u ** i * a ** j
            cp, cq = _DIRICHLET_RATIONAL[0, i, j], _DIRICHLET_RATIONAL[1, i, j]
            p = p + ua * (cp[0] + b * (cp[1] + b * (cp[2] + b * cp[3])))
            q = q + ua * (cq[0] + b * (cq[1] + b * (cq[2] + b * cq[3])))
    approx = x * (_special_math.digamma(total) - _special_math.digamma(alpha)) / (total - alpha)
    return p / q * approx


def dirichlet_grad(x: np.ndarray, alpha: np.ndarray, total: np.ndarray) -> np.ndarray:
    """torch's dirichlet_grad_one: -(∂/∂α of the Beta(α, total - α) CDF at x) / (density (1 - x)),
    the per-coordinate factor of a Dirichlet draw's reparameterised gradient; x's dtype out."""
    dtype = np.result_type(np.asarray(x).dtype, np.asarray(alpha).dtype, np.asarray(total).dtype)
    # as torch's: the branch choice and the two Taylor series in x's precision (float32 for
    # float32), the saddle-point and rational branches in double
    scalar = np.float32 if dtype == np.float32 else np.float64
    xs, a_s, t_s = np.broadcast_arrays(*(np.asarray(v, scalar) for v in (x, alpha, total)))
    beta_s = t_s - a_s
    boundary = t_s * xs * (1 - xs)
    xx, a, t = (v.astype(np.float64) for v in (xs, a_s, t_s))
    with np.errstate(all="ignore"):  # each branch is evaluated everywhere and selected after
        grad = np.where(
            (xs <= 0.5) & (boundary < 2.5), _beta_grad_alpha_small(xs, a_s, beta_s),
            np.where((xs >= 0.5) & (boundary < 0.75), -_beta_grad_beta_small(1 - xs, beta_s, a_s),
                     np.where((a_s > 6) & (beta_s > 6), _beta_grad_alpha_mid(xx, a, t - a),
                              _dirichlet_rational(xx, a, t))))
    return grad.astype(dtype)


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
        # (a node of its own under create_graph, which a second differentiation refuses, as torch's)
        return grad * StandardGammaGrad.apply(alpha, x)


class StandardGammaGrad(Function):
    """torch._standard_gamma_grad(α, x): d x / d α at fixed noise; torch defines no derivative of
    it, so a second differentiation of a Gamma sample raises rather than treating it as constant."""

    _array_forward = True
    label = "standard_gamma_grad"
    rule = "none: torch defines no derivative for _standard_gamma_grad (backward raises)"

    @staticmethod
    def forward(ctx, alpha, x):
        return _on_host(standard_gamma_grad, x, alpha)

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("the derivative for '_standard_gamma_grad' is not implemented.")


def _on_host(rule, *arrays):
    """A NumPy gradient rule on arrays of any device, its result on their device: a device array
    costs one round trip."""
    xp = array_module(arrays[0])
    if xp is np:
        return rule(*arrays)
    return xp.asarray(rule(*(xp.asnumpy(a) for a in arrays)))


def dirichlet_values(alpha: np.ndarray, generator=None) -> np.ndarray:
    """Dirichlet draws along the last dim, of α's dtype: on the CPU torch's values, Gamma draws in
    double divided by their sum, cast and kept within [smallest normal, largest value below 1]."""
    xp = array_module(alpha)
    if xp is np:
        gammas = torch_gamma_draws(_random._rng(generator), alpha, np.float64).reshape(alpha.shape)
        gammas = np.fmax(gammas, np.finfo(np.float64).tiny)
    else:
        gammas = gamma_values(alpha.astype(np.float64), generator)
    ratios = gammas / gammas.sum(axis=-1, keepdims=True)
    ratios = from_double(ratios, alpha.dtype) if xp is np else ratios.astype(alpha.dtype)
    below_one = np.nextafter(np.array(1, alpha.dtype), np.array(0, alpha.dtype))
    return xp.clip(ratios, np.finfo(alpha.dtype).tiny, below_one)


class DirichletSample(Function):
    """x ~ Dirichlet(α) along the last dim, differentiable in α as torch's _Dirichlet: each xᵢ
    through its marginal Beta(αᵢ, Σα - αᵢ), then projected so the gradient keeps Σx = 1."""

    _array_forward = True
    node_name = "_DirichletBackward"
    label = "dirichlet_sample"
    rule = "dα = g ⊙ (dy - Σ x ⊙ dy), g = _dirichlet_grad(x, α, Σα) (implicit reparameterisation)"
    formula = "Dirichlet({0}) draw"

    @staticmethod
    def forward(ctx, alpha, generator=None):
        draws = dirichlet_values(alpha, generator)
        ctx.save_for_backward(draws, alpha)
        return draws

    @staticmethod
    @once_differentiable  # (as torch's _Dirichlet: a second differentiation raises)
    def backward(ctx, grad):
        x, alpha = ctx.saved_values
        total = alpha.sum(-1, keepdim=True).expand(tuple(alpha.shape))
        local = Tensor._make(_on_host(dirichlet_grad, x._data, alpha._data, total._data))
        return local * (grad - (x * grad).sum(-1, keepdim=True))


def _check_floating(op: str, concentration: Tensor) -> None:
    if concentration._data.dtype.kind not in "fV":
        raise RuntimeError(f"{op}: expected a floating-point concentration, got {concentration.dtype}")


def standard_gamma(concentration: Tensor, generator=None) -> Tensor:
    """torch._standard_gamma: one Gamma(α, 1) draw per element of ``concentration``, whose
    gradient with respect to α is the implicit reparameterisation gradient."""
    _check_floating("_standard_gamma", concentration)
    return StandardGamma.apply(concentration, generator=generator)


def standard_gamma_grad_tensor(concentration: Tensor, output: Tensor) -> Tensor:
    """torch._standard_gamma_grad(self, output): d output / d concentration of Gamma(α, 1) draws
    ``output`` at fixed noise, elementwise; not itself differentiable (as torch's)."""
    _check_floating("_standard_gamma_grad", concentration)
    return StandardGammaGrad.apply(concentration, output)


def dirichlet_grad_tensor(x: Tensor, alpha: Tensor, total: Tensor) -> Tensor:
    """torch._dirichlet_grad(x, alpha, total): the per-coordinate factor of a Dirichlet draw's
    reparameterised gradient (see ``dirichlet_grad``), elementwise over equal shapes as torch's."""
    if not (tuple(x.shape) == tuple(alpha.shape) == tuple(total.shape)):
        raise RuntimeError(f"_dirichlet_grad: expected x, alpha and total of one shape, got "
                           f"{tuple(x.shape)}, {tuple(alpha.shape)} and {tuple(total.shape)}")
    return Tensor._make(_on_host(dirichlet_grad, x._data, alpha._data, total._data))


def dirichlet_sample(concentration: Tensor, generator=None) -> Tensor:
    """Dirichlet.rsample's draws: torch's _sample_dirichlet values, recorded with torch's
    _Dirichlet gradient."""
    _check_floating("_sample_dirichlet", concentration)
    return DirichletSample.apply(concentration, generator=generator)


def sample_dirichlet(concentration: Tensor, generator=None) -> Tensor:
    """torch._sample_dirichlet: Dirichlet draws along the last dim, not recorded (torch has no
    derivative for it; Dirichlet.rsample records ``dirichlet_sample``)."""
    _check_floating("_sample_dirichlet", concentration)
    return Tensor._make(dirichlet_values(concentration._data, generator))
