"""kl_divergence(p, q) with a registry of closed forms, as torch.distributions.kl."""

from __future__ import annotations

import numpy as np

from ..ops.elementwise import log
from ..tensor import Tensor

__all__ = ["kl_divergence", "register_kl"]

_KL_RULES: dict = {}


def register_kl(type_p: type, type_q: type):
    """Decorator registering ``fn(p, q)`` as KL(p || q) for the pair of distribution types."""
    def register(fn):
        _KL_RULES[(type_p, type_q)] = fn
        return fn

    return register


def kl_divergence(p, q) -> Tensor:
    """KL(p || q), batched over the distributions' batch shape. Of the registered rules whose
    types p and q are instances of, the most specific (nearest in both MROs) is used, as torch's."""
    matches = [((type(p).__mro__.index(type_p), type(q).__mro__.index(type_q)), rule)
               for (type_p, type_q), rule in _KL_RULES.items() if isinstance(p, type_p) and isinstance(q, type_q)]
    if not matches:
        raise NotImplementedError(f"No KL(p || q) is implemented for p = {type(p).__name__}, q = {type(q).__name__}")
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

        # p log(p/q) + (1-p) log((1-p)/(1-q)) in logits, stable: softplus(-l) = -log sigmoid(l)
        return (p.probs * (softplus(-q.logits) - softplus(-p.logits))
                + (1 - p.probs) * (softplus(q.logits) - softplus(p.logits)))

    @register_kl(Independent, Independent)
    def _kl_independent_independent(p, q):
        if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
            raise NotImplementedError("KL between Independent distributions with different "
                                      "reinterpreted_batch_ndims is not implemented")
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
            raise ValueError("KL-divergence between two Multivariate Normals with different event shapes cannot "
                             "be computed")
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
            raise NotImplementedError(f"No KL(p || q) is implemented for p = {type(p).__name__}, "
                                      f"q = {type(q).__name__} with different transforms")
        return kl_divergence(p.base_dist, q.base_dist)

    @register_kl(Uniform, Uniform)
    def _kl_uniform_uniform(p, q):
        inside = (q.low <= p.low) & (p.high <= q.high)
        return log((q.high - q.low) / (p.high - p.low)).masked_fill(~inside, float("inf"))


_register_closed_forms()
