"""kl_divergence(p, q) with a registry of closed forms, as torch.distributions.kl."""

from __future__ import annotations

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
    """KL(p || q), batched over the distributions' batch shape."""
    for (type_p, type_q), rule in _KL_RULES.items():
        if isinstance(p, type_p) and isinstance(q, type_q):
            return rule(p, q)
    raise NotImplementedError(f"No KL(p || q) is implemented for p = {type(p).__name__}, q = {type(q).__name__}")


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

    @register_kl(Uniform, Uniform)
    def _kl_uniform_uniform(p, q):
        inside = (q.low <= p.low) & (p.high <= q.high)
        return log((q.high - q.low) / (p.high - p.low)).masked_fill(~inside, float("inf"))


_register_closed_forms()
