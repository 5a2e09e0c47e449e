"""kl_divergence(p, q) with a registry of closed forms, as torch.distributions.kl."""

from __future__ import annotations

import math

import numpy as np

from ..ops.elementwise import log, where
from ..tensor import Tensor

__all__ = ["kl_divergence", "register_kl"]

_KL_RULES: dict = {}


def register_kl(type_p: type, type_q: type):
    """Decorator registering ``fn(p, q)`` as KL(p || q) for the pair of distribution types."""
    def register(fn):
        _KL_RULES[(type_p, type_q)] = fn
        return fn

    return register


# torch's event-shape messages continue their string literal with a backslash, so the next source
# line's indent (26 spaces) stands where the space between "with" and "different" would be
_TORCH_SOURCE_INDENT = " " * 26


def kl_divergence(p, q) -> Tensor:
    """KL(p || q), batched over the distributions' batch shape. Of the registered rules whose
    types p and q are instances of, the most specific (nearest in both MROs) is used, as torch's."""
    matches = [((type(p).__mro__.index(type_p), type(q).__mro__.index(type_q)), rule)
               for (type_p, type_q), rule in _KL_RULES.items() if isinstance(p, type_p) and isinstance(q, type_q)]
    if not matches:
        raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} "
                                  f"and q type {type(q).__name__}")
    return min(matches, key=lambda match: match[0])[1](p, q)


def _register_closed_forms() -> None:
    from .bernoulli import Bernoulli
    from .categorical import Categorical
    from .independent import Independent
    from .normal import Normal
    from .uniform import Uniform

    @register_kl(Normal, Normal)
    def _kl_normal_normal(p, q):
        # 1/2 (s_p^2/s_q^2 + (mu_p - mu_q)^2/s_q^2 - 1 - log(s_p^2/s_q^2))
        var_ratio = (p.scale / q.scale) ** 2
        mean_term = ((p.loc - q.loc) / q.scale) ** 2
        return 0.5 * (var_ratio + mean_term - 1 - log(var_ratio))

    @register_kl(Categorical, Categorical)
    def _kl_categorical_categorical(p, q):
        terms = p.probs * (p.logits - q.logits)
        return terms.masked_fill(q.probs == 0, float("inf")).masked_fill(p.probs == 0, 0).sum(-1)

    @register_kl(Bernoulli, Bernoulli)
    def _kl_bernoulli_bernoulli(p, q):
        from ..nn.functional import softplus

        # p log(p/q) + (1-p) log((1-p)/(1-q)) in logits, stable: softplus(-l) = -log sigmoid(l).
        # The logits of a probability 0 or 1 are clamped (finite), so the edges are set as torch
        # sets them: a term is inf where q gives its outcome probability 0, and 0 where p does
        inf = float("inf")
        t1 = p.probs * (softplus(-q.logits) - softplus(-p.logits))
        t1 = where(p.probs == 0, 0.0, where(q.probs == 0, inf, t1))
        t2 = (1 - p.probs) * (softplus(q.logits) - softplus(p.logits))
        t2 = where(p.probs == 1, 0.0, where(q.probs == 1, inf, t2))
        return t1 + t2

    @register_kl(Independent, Independent)
    def _kl_independent_independent(p, q):
        if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
            raise NotImplementedError  # (torch's bare error)
        return p._sum_rightmost(kl_divergence(p.base_dist, q.base_dist))

    from .discrete import Geometric, OneHotCategorical, Poisson
    from .exponential import Cauchy, Exponential, Laplace
    from .transformed_distribution import TransformedDistribution

    @register_kl(Exponential, Exponential)
    def _kl_exponential_exponential(p, q):
        rate_ratio = q.rate / p.rate
        return -log(rate_ratio) + rate_ratio - 1

    @register_kl(Laplace, Laplace)
    def _kl_laplace_laplace(p, q):
        scale_ratio = p.scale / q.scale
        loc_abs_diff = (p.loc - q.loc).abs()
        return -log(scale_ratio) + loc_abs_diff / q.scale + scale_ratio * (-loc_abs_diff / p.scale).exp() - 1

    @register_kl(Cauchy, Cauchy)
    def _kl_cauchy_cauchy(p, q):
        # (Chyzak & Nielsen, 2019)
        return log(((p.scale + q.scale) ** 2 + (p.loc - q.loc) ** 2) / (4 * p.scale * q.scale))

    @register_kl(Poisson, Poisson)
    def _kl_poisson_poisson(p, q):
        return p.rate * (log(p.rate) - log(q.rate)) - (p.rate - q.rate)

    @register_kl(Geometric, Geometric)
    def _kl_geometric_geometric(p, q):
        return -p.entropy() - (-q.probs).log1p() / p.probs - q.logits

    @register_kl(OneHotCategorical, OneHotCategorical)
    def _kl_onehotcategorical_onehotcategorical(p, q):
        return kl_divergence(p._categorical, q._categorical)

    from .gamma import Beta, Dirichlet, Gamma
    from .multivariate_normal import MultivariateNormal, _batch_mahalanobis

    @register_kl(Gamma, Gamma)
    def _kl_gamma_gamma(p, q):
        t1 = q.concentration * log(p.rate / q.rate)
        t2 = q.concentration.lgamma() - p.concentration.lgamma()
        t3 = (p.concentration - q.concentration) * p.concentration.digamma()
        t4 = (q.rate - p.rate) * (p.concentration / p.rate)
        return t1 + t2 + t3 + t4

    @register_kl(Beta, Beta)
    def _kl_beta_beta(p, q):
        return kl_divergence(p._dirichlet, q._dirichlet)

    @register_kl(Dirichlet, Dirichlet)
    def _kl_dirichlet_dirichlet(p, q):
        sum_p = p.concentration.sum(-1)
        sum_q = q.concentration.sum(-1)
        t1 = sum_p.lgamma() - sum_q.lgamma()
        t2 = (p.concentration.lgamma() - q.concentration.lgamma()).sum(-1)
        t3 = p.concentration - q.concentration
        t4 = p.concentration.digamma() - sum_p.digamma().unsqueeze(-1)
        return t1 - t2 + (t3 * t4).sum(-1)

    @register_kl(MultivariateNormal, MultivariateNormal)
    def _kl_mvn_mvn(p, q):
        from ..ops.decompositions import linalg_solve_triangular as solve_triangular

        if p.event_shape != q.event_shape:
            raise ValueError(f"KL-divergence between two Multivariate Normals with{_TORCH_SOURCE_INDENT}different "
                             "event shapes cannot be computed")
        p_tril, q_tril = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
        half_term1 = (q_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
                      - p_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1))
        n = p.event_shape[0]
        batch = tuple(np.broadcast_shapes(tuple(q_tril.shape[:-2]), tuple(p_tril.shape[:-2])))
        solved = solve_triangular(q_tril.expand(batch + (n, n)), p_tril.expand(batch + (n, n)), upper=False)
        term2 = solved.pow(2).sum((-2, -1))  # tr(Σq⁻¹ Σp)
        term3 = _batch_mahalanobis(q_tril, q.loc - p.loc)
        return half_term1 + 0.5 * (term2 + term3 - n)

    @register_kl(TransformedDistribution, TransformedDistribution)
    def _kl_transformed_transformed(p, q):
        # the same bijection applied to both leaves the divergence unchanged
        if p.transforms != q.transforms or p.event_shape != q.event_shape:
            raise NotImplementedError  # (torch's bare error)
        return kl_divergence(p.base_dist, q.base_dist)

    @register_kl(Uniform, Uniform)
    def _kl_uniform_uniform(p, q):
        inside = (q.low <= p.low) & (p.high <= q.high)
        return log((q.high - q.low) / (p.high - p.low)).masked_fill(~inside, float("inf"))



def _infinite_like(tensor: Tensor) -> Tensor:
    """KL = ∞: p puts mass where q has none."""
    return tensor.new_full(tuple(tensor.shape), float("inf"))


def _batch_trace_xxt(matrix: Tensor) -> Tensor:
    """tr(X Xᵀ) over the last two dims."""
    return matrix.pow(2).sum((-2, -1))


def _register_later_families() -> None:
    """The pairs torch registers for ContinuousBernoulli, Pareto, the low-rank normal and any two
    members of one exponential family (the Bregman divergence of its log normaliser)."""
    from ..autograd import grad
    from ..ops.decompositions import linalg_solve_triangular as solve_triangular
    from ..ops.elementwise import where, xlogy
    from .continuous_bernoulli import ContinuousBernoulli
    from .exp_family import ExponentialFamily
    from .exponential import Exponential, Laplace
    from .gamma import Beta, Gamma
    from .lowrank_multivariate_normal import (
        LowRankMultivariateNormal,
        _batch_lowrank_logdet,
        _batch_lowrank_mahalanobis,
    )
    from .multivariate_normal import MultivariateNormal, _batch_mahalanobis
    from .normal import Normal
    from .pareto import Pareto
    from .transformed_distribution import _sum_rightmost
    from .transformed_families import Gumbel
    from .uniform import Uniform

    @register_kl(ExponentialFamily, ExponentialFamily)
    def _kl_expfamily_expfamily(p, q):
        # the Bregman divergence of the log normaliser F: F(θq) - F(θp) - ⟨θq - θp, ∇F(θp)⟩
        if type(p) is not type(q):
            raise NotImplementedError("The cross KL-divergence between different exponential families cannot be "
                                      "computed using Bregman divergences")
        p_params = [param.detach().requires_grad_() for param in p._natural_params]
        q_params = q._natural_params
        log_normalizer = p._log_normalizer(*p_params)
        gradients = grad(log_normalizer.sum(), p_params, create_graph=True)
        result = q._log_normalizer(*q_params) - log_normalizer
        for p_param, q_param, gradient in zip(p_params, q_params, gradients):
            result = result - _sum_rightmost((q_param - p_param) * gradient, len(q.event_shape))
        return result

    @register_kl(ContinuousBernoulli, ContinuousBernoulli)
    def _kl_continuous_bernoulli_continuous_bernoulli(p, q):
        t1 = p.mean * (p.logits - q.logits)
        t2 = p._cont_bern_log_norm() + (-p.probs).log1p()
        t3 = -q._cont_bern_log_norm() - (-q.probs).log1p()
        return t1 + t2 + t3

    def _check_event_shapes(p, q, names: str) -> None:
        if p.event_shape != q.event_shape:
            raise ValueError(f"KL-divergence between two {names} with{_TORCH_SOURCE_INDENT}different event shapes "
                             "cannot be computed")

    def _woodbury_factor(q):
        # A = L_C⁻¹ Wᵀ D⁻¹, so that Σq⁻¹ = D⁻¹ - Aᵀ A
        q_wt_dinv = q._unbroadcasted_cov_factor.mT / q._unbroadcasted_cov_diag.unsqueeze(-2)
        return solve_triangular(q._capacitance_tril, q_wt_dinv, upper=False)

    def _lowrank_logdet(d):
        return _batch_lowrank_logdet(d._unbroadcasted_cov_factor, d._unbroadcasted_cov_diag, d._capacitance_tril)

    def _lowrank_mahalanobis(q, diff):
        return _batch_lowrank_mahalanobis(q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, diff,
                                          q._capacitance_tril)

    @register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
    def _kl_lowrank_lowrank(p, q):
        _check_event_shapes(p, q, "Low Rank Multivariate Normals")
        term1 = _lowrank_logdet(q) - _lowrank_logdet(p)
        term3 = _lowrank_mahalanobis(q, q.loc - p.loc)
        # tr(Σq⁻¹ Σp) with Σq⁻¹ = D_q⁻¹ - Aᵀ A and Σp = D_p + W_p W_pᵀ
        a = _woodbury_factor(q)
        term21 = (p._unbroadcasted_cov_diag / q._unbroadcasted_cov_diag).sum(-1)
        term22 = _batch_trace_xxt(p._unbroadcasted_cov_factor * q._unbroadcasted_cov_diag.rsqrt().unsqueeze(-1))
        term23 = _batch_trace_xxt(a * p._unbroadcasted_cov_diag.sqrt().unsqueeze(-2))
        term24 = _batch_trace_xxt(a @ p._unbroadcasted_cov_factor)
        return 0.5 * (term1 + term21 + term22 - term23 - term24 + term3 - p.event_shape[0])

    @register_kl(MultivariateNormal, LowRankMultivariateNormal)
    def _kl_mvn_lowrank(p, q):
        _check_event_shapes(p, q, "(Low Rank) Multivariate Normals")
        term1 = _lowrank_logdet(q) - 2 * p._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        term3 = _lowrank_mahalanobis(q, q.loc - p.loc)
        a = _woodbury_factor(q)
        term21 = _batch_trace_xxt(p._unbroadcasted_scale_tril * q._unbroadcasted_cov_diag.rsqrt().unsqueeze(-1))
        term22 = _batch_trace_xxt(a @ p._unbroadcasted_scale_tril)
        return 0.5 * (term1 + term21 - term22 + term3 - p.event_shape[0])

    @register_kl(LowRankMultivariateNormal, MultivariateNormal)
    def _kl_lowrank_mvn(p, q):
        _check_event_shapes(p, q, "(Low Rank) Multivariate Normals")
        term1 = 2 * q._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) - _lowrank_logdet(p)
        term3 = _batch_mahalanobis(q._unbroadcasted_scale_tril, q.loc - p.loc)
        n = p.event_shape[0]
        batch = tuple(np.broadcast_shapes(tuple(q._unbroadcasted_scale_tril.shape[:-2]),
                                          tuple(p._unbroadcasted_cov_factor.shape[:-2])))
        q_tril = q._unbroadcasted_scale_tril.expand(batch + (n, n))
        p_factor = p._unbroadcasted_cov_factor.expand(batch + (n, p.cov_factor.shape[-1]))
        p_diag_sqrt = p._unbroadcasted_cov_diag.sqrt().diag_embed().expand(batch + (n, n))
        term21 = _batch_trace_xxt(solve_triangular(q_tril, p_factor, upper=False))
        term22 = _batch_trace_xxt(solve_triangular(q_tril, p_diag_sqrt, upper=False))
        return 0.5 * (term1 + term21 + term22 + term3 - n)

    @register_kl(Pareto, Pareto)
    def _kl_pareto_pareto(p, q):
        scale_ratio = p.scale / q.scale
        alpha_ratio = q.alpha / p.alpha
        result = q.alpha * scale_ratio.log() - alpha_ratio.log() + alpha_ratio - 1
        return where(p.support.lower_bound < q.support.lower_bound, float("inf"), result)

    def _cont_bern_cross_entropy_part(p, q):
        # -E_p[log q(x)] for q continuous Bernoulli and any p on [0, 1], less p's entropy
        return -p.entropy() - p.mean * q.logits - (-q.probs).log1p() - q._cont_bern_log_norm()

    @register_kl(Beta, ContinuousBernoulli)
    def _kl_beta_continuous_bernoulli(p, q):
        return _cont_bern_cross_entropy_part(p, q)

    @register_kl(Uniform, ContinuousBernoulli)
    def _kl_uniform_continuous_bernoulli(p, q):
        result = _cont_bern_cross_entropy_part(p, q)
        return where((p.high >= q.support.upper_bound) | (p.low <= q.support.lower_bound), float("inf"), result)

    @register_kl(ContinuousBernoulli, Exponential)
    def _kl_continuous_bernoulli_exponential(p, q):
        return -p.entropy() - log(q.rate) + q.rate * p.mean

    @register_kl(ContinuousBernoulli, Normal)
    def _kl_continuous_bernoulli_normal(p, q):
        t2 = 0.5 * (math.log(2.0 * math.pi) + (q.loc / q.scale).square()) + log(q.scale)
        t3 = (p.variance + p.mean.square() - 2.0 * q.loc * p.mean) / (2.0 * q.scale.square())
        return -p.entropy() + t2 + t3

    @register_kl(ContinuousBernoulli, Uniform)
    def _kl_continuous_bernoulli_uniform(p, q):
        result = -p.entropy() + (q.high - q.low).log()
        return where((q.low >= p.support.lower_bound) | (q.high <= p.support.upper_bound), float("inf"), result)

    @register_kl(Pareto, Exponential)
    def _kl_pareto_exponential(p, q):
        scale_rate = p.scale * q.rate
        result = (p.alpha / scale_rate).log() - p.alpha.reciprocal() + p.alpha * scale_rate / (p.alpha - 1) - 1
        return where(p.alpha <= 1, float("inf"), result)

    @register_kl(Pareto, Gamma)
    def _kl_pareto_gamma(p, q):
        common = p.scale.log() + p.alpha.reciprocal()
        t1 = p.alpha.log() - common
        t2 = q.concentration.lgamma() - q.concentration * q.rate.log()
        t3 = (1 - q.concentration) * common
        t4 = q.rate * p.alpha * p.scale / (p.alpha - 1)
        return where(p.alpha <= 1, float("inf"), t1 + t2 + t3 + t4 - 1)

    @register_kl(Pareto, Normal)
    def _kl_pareto_normal(p, q):
        var_normal = 2 * q.scale.pow(2)
        common = p.scale / (p.alpha - 1)
        t1 = (math.sqrt(2 * math.pi) * q.scale * p.alpha / p.scale).log()
        t3 = p.alpha * common.pow(2) / (p.alpha - 2)
        t4 = (p.alpha * common - q.loc).pow(2)
        return where(p.alpha <= 2, float("inf"), t1 - p.alpha.reciprocal() + (t3 + t4) / var_normal - 1)

    @register_kl(Uniform, Pareto)
    def _kl_uniform_pareto(p, q):
        width = p.high - p.low
        t1 = (q.alpha * q.scale.pow(q.alpha) * width).log()
        t2 = (xlogy(p.high, p.high) - xlogy(p.low, p.low) - width) / width
        return where(p.low < q.support.lower_bound, float("inf"), t2 * (q.alpha + 1) - t1)

    # pairs whose supports make the divergence infinite everywhere (p has mass outside q's support)
    infinite_pairs = {
        Beta: (Pareto,), ContinuousBernoulli: (Pareto,), Exponential: (ContinuousBernoulli, Pareto),
        Gamma: (ContinuousBernoulli, Pareto), Gumbel: (ContinuousBernoulli, Pareto),
        Laplace: (ContinuousBernoulli, Pareto), Normal: (ContinuousBernoulli, Pareto),
        Pareto: (Beta, ContinuousBernoulli, Uniform),
    }
    first_parameter = {Beta: "concentration1", ContinuousBernoulli: "probs", Exponential: "rate",
                       Gamma: "concentration", Gumbel: "loc", Laplace: "loc", Normal: "loc", Pareto: "scale"}
    for type_p, types_q in infinite_pairs.items():
        for type_q in types_q:
            register_kl(type_p, type_q)(lambda p, q, name=first_parameter[type_p]: _infinite_like(getattr(p, name)))


_register_closed_forms()
_register_later_families()
