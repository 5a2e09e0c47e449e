"""KL(p || q) between members of different univariate families, for the pairs torch registers.

Most follow from KL(p || q) = -H(p) - E_p[log q(x)], with the expectation of q's log density in
closed form from p's moments: E[x] and Var[x] for a normal q, E[x] and E[log x] for a gamma or
exponential q, E[exp(-x / β)] (p's moment generating function) for a Gumbel q. A pair where p puts
mass outside q's support is infinite there.
"""

from __future__ import annotations

import math

from ..ops.elementwise import where, xlogy
from ..tensor import Tensor
from .bernoulli import Bernoulli
from .discrete import Binomial, Poisson
from .exponential import Exponential, Laplace
from .gamma import Beta, Gamma
from .kl import _infinite_like, register_kl
from .normal import Normal
from .transformed_families import _EULER_GAMMA, Gumbel
from .uniform import Uniform

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ---- E_p[log q] pieces: -E_p[log q(x)] for each q, given what it needs of p --------------------

def _normal_cross_entropy(mean: Tensor, variance: Tensor, q: Normal) -> Tensor:
    # -E log N(x; μ, σ) = log σ + ½ log 2π + (Var x + (E x - μ)²) / 2σ²
    return q.scale.log() + _HALF_LOG_2PI + (variance + (mean - q.loc).square()) / (2 * q.scale.square())


def _exponential_cross_entropy(mean: Tensor, q: Exponential) -> Tensor:
    # -E log (λ e^{-λx}) = λ E x - log λ
    return q.rate * mean - q.rate.log()


def _gamma_cross_entropy(mean: Tensor, mean_log: Tensor, q: Gamma) -> Tensor:
    # -E log Gamma(x; α, β) = lgamma α - α log β - (α - 1) E log x + β E x
    alpha, beta = q.concentration, q.rate
    return alpha.lgamma() - alpha * beta.log() - (alpha - 1) * mean_log + beta * mean


def _gumbel_cross_entropy(mean: Tensor, mean_exp: Tensor, q: Gumbel) -> Tensor:
    # -E log Gumbel(x; μ, β) = log β + (E x - μ)/β + e^{μ/β} E[e^{-x/β}]; mean_exp = E[e^{-x/β}] e^{μ/β}
    return q.scale.log() + (mean - q.loc) / q.scale + mean_exp


def _uniform_mean_log(p: Uniform) -> Tensor:
    # E log x for x ~ U(l, h), 0 <= l: (h log h - l log l) / (h - l) - 1
    return (xlogy(p.high, p.high) - xlogy(p.low, p.low)) / (p.high - p.low) - 1


def _outside(result: Tensor, condition) -> Tensor:
    return where(condition, float("inf"), result)


# ---- q normal ---------------------------------------------------------------------------------

def _register_normal_targets() -> None:
    for family in (Beta, Exponential, Gamma, Gumbel, Laplace, Uniform):
        register_kl(family, Normal)(lambda p, q: -p.entropy() + _normal_cross_entropy(p.mean, p.variance, q))


# ---- q exponential or gamma (support x > 0) ----------------------------------------------------

def _register_positive_targets() -> None:
    @register_kl(Beta, Exponential)
    @register_kl(Gamma, Exponential)
    def _kl_positive_exponential(p, q):
        return -p.entropy() + _exponential_cross_entropy(p.mean, q)

    @register_kl(Uniform, Exponential)
    def _kl_uniform_exponential(p, q):
        return _outside(-p.entropy() + _exponential_cross_entropy(p.mean, q), p.low < 0)

    @register_kl(Beta, Gamma)
    def _kl_beta_gamma(p, q):
        # E log x = ψ(a) - ψ(a + b) for x ~ Beta(a, b)
        a, b = p.concentration1, p.concentration0
        return -p.entropy() + _gamma_cross_entropy(p.mean, a.digamma() - (a + b).digamma(), q)

    @register_kl(Exponential, Gamma)
    def _kl_exponential_gamma(p, q):
        # E log x = -γ - log λ for x ~ Exp(λ)
        return -p.entropy() + _gamma_cross_entropy(p.mean, -_EULER_GAMMA - p.rate.log(), q)

    @register_kl(Uniform, Gamma)
    def _kl_uniform_gamma(p, q):
        return _outside(-p.entropy() + _gamma_cross_entropy(p.mean, _uniform_mean_log(p), q), p.low < 0)


# ---- q Gumbel ---------------------------------------------------------------------------------

def _register_gumbel_targets() -> None:
    @register_kl(Exponential, Gumbel)
    def _kl_exponential_gumbel(p, q):
        # E e^{-x/β} = λβ / (λβ + 1) for x ~ Exp(λ)
        rate_scale = p.rate * q.scale
        return -p.entropy() + _gumbel_cross_entropy(p.mean, (q.loc / q.scale).exp() * rate_scale / (rate_scale + 1), q)

    @register_kl(Gamma, Gumbel)
    def _kl_gamma_gumbel(p, q):
        # E e^{-x/β} = (1 + 1/(βr))^{-α} for x ~ Gamma(α, r)
        moment = (q.loc / q.scale - p.concentration * (1 + (q.scale * p.rate).reciprocal()).log()).exp()
        return -p.entropy() + _gumbel_cross_entropy(p.mean, moment, q)

    @register_kl(Gumbel, Gumbel)
    def _kl_gumbel_gumbel(p, q):
        # E e^{-x/β} = e^{-μp/β} Γ(1 + βp/β) for x ~ Gumbel(μp, βp)
        moment = ((q.loc - p.loc) / q.scale + (1 + p.scale / q.scale).lgamma()).exp()
        return -p.entropy() + _gumbel_cross_entropy(p.mean, moment, q)

    @register_kl(Normal, Gumbel)
    def _kl_normal_gumbel(p, q):
        # E e^{-x/β} = e^{-m/β + s²/2β²} for x ~ N(m, s)
        moment = ((q.loc - p.loc) / q.scale + 0.5 * (p.scale / q.scale).square()).exp()
        return -p.entropy() + _gumbel_cross_entropy(p.mean, moment, q)

    @register_kl(Uniform, Gumbel)
    def _kl_uniform_gumbel(p, q):
        # E e^{-x/β} = β (e^{-l/β} - e^{-h/β}) / (h - l) for x ~ U(l, h)
        moment = q.scale * (((q.loc - p.low) / q.scale).exp() - ((q.loc - p.high) / q.scale).exp()) / (p.high - p.low)
        return -p.entropy() + _gumbel_cross_entropy(p.mean, moment, q)


# ---- q Laplace, Uniform, Beta; discrete -------------------------------------------------------

def _register_other_targets() -> None:
    @register_kl(Normal, Laplace)
    def _kl_normal_laplace(p, q):
        # -E log Laplace(x; μ, b) = log 2b + E|x - μ| / b; for x ~ N(m, s), with d = m - μ,
        # E|x - μ| = s √(2/π) e^{-d²/2s²} + d erf(d / s√2)
        shift = p.loc - q.loc
        mean_abs = (p.scale * math.sqrt(2 / math.pi) * (-0.5 * (shift / p.scale).square()).exp()
                    + shift * (shift / (p.scale * math.sqrt(2))).erf())
        return -p.entropy() + (2 * q.scale).log() + mean_abs / q.scale

    @register_kl(Beta, Uniform)
    def _kl_beta_uniform(p, q):
        # finite only where U(l, h) covers Beta's [0, 1]
        return _outside(-p.entropy() + (q.high - q.low).log(), (q.low > 0) | (q.high < 1))

    @register_kl(Uniform, Beta)
    def _kl_uniform_beta(p, q):
        # -E log Beta(x; a, b) = lbeta(a, b) - (a - 1) E log x - (b - 1) E log(1 - x), x ~ U(l, h) in [0, 1]
        a, b, width = q.concentration1, q.concentration0, p.high - p.low
        mean_log = (xlogy(p.high, p.high) - xlogy(p.low, p.low)) / width - 1
        mean_log_complement = (xlogy(1 - p.low, 1 - p.low) - xlogy(1 - p.high, 1 - p.high)) / width - 1
        log_beta = a.lgamma() + b.lgamma() - (a + b).lgamma()
        result = -p.entropy() + log_beta - (a - 1) * mean_log - (b - 1) * mean_log_complement
        return _outside(result, (p.high > 1) | (p.low < 0))

    @register_kl(Bernoulli, Poisson)
    def _kl_bernoulli_poisson(p, q):
        # -E log Poisson(k; λ) over k in {0, 1}: λ - P(k = 1) log λ (log k! = 0 at both)
        return -p.entropy() + q.rate - p.probs * q.rate.log()

    @register_kl(Binomial, Binomial)
    def _kl_binomial_binomial(p, q):
        # the same number of trials: n KL(Bernoulli(p) || Bernoulli(q)); q with fewer trials cannot
        # reach p's top counts (infinite); q with more is not implemented, as torch
        if bool((p.total_count < q.total_count).any()):
            raise NotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
        per_trial = p.probs * (p.logits - q.logits) + (-p.probs).log1p() - (-q.probs).log1p()
        return _outside(p.total_count * per_trial, p.total_count > q.total_count)

    for type_q in (Bernoulli, Binomial):
        register_kl(Poisson, type_q)(lambda p, q: _infinite_like(p.rate))
    for type_p, first_parameter in ((Exponential, "rate"), (Gamma, "concentration"), (Gumbel, "loc"),
                                    (Laplace, "loc"), (Normal, "loc")):
        # mass outside [0, 1] (Beta) and outside any bounded interval (Uniform)
        for type_q in (Beta, Uniform):
            register_kl(type_p, type_q)(lambda p, q, name=first_parameter: _infinite_like(getattr(p, name)))
    for type_p, first_parameter in ((Gumbel, "loc"), (Laplace, "loc"), (Normal, "loc")):
        # mass on negative numbers
        for type_q in (Exponential, Gamma):
            register_kl(type_p, type_q)(lambda p, q, name=first_parameter: _infinite_like(getattr(p, name)))


_register_normal_targets()
_register_positive_targets()
_register_gumbel_targets()
_register_other_targets()
