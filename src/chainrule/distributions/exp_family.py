"""torch.distributions.exp_family: ExponentialFamily, the base of the families with density
p(x; θ) = h(x) exp(⟨t(x), θ⟩ - F(θ)), whose entropy and KL divergence follow from the log
normaliser F alone (Bregman divergences of F)."""

from __future__ import annotations

from ..autograd import grad
from ..tensor import Tensor
from .distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """torch.distributions.ExponentialFamily: a subclass gives ``_natural_params`` (θ),
    ``_log_normalizer(*θ)`` (F) and ``_mean_carrier_measure`` (E[log h(x)])."""

    @property
    def _natural_params(self) -> tuple:
        raise NotImplementedError(f"{type(self).__name__} does not give its natural parameters")

    def _log_normalizer(self, *natural_params):
        raise NotImplementedError(f"{type(self).__name__} does not give its log normaliser")

    @property
    def _mean_carrier_measure(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not give its mean carrier measure")

    def entropy(self) -> Tensor:
        """H = F(θ) - ⟨θ, ∇F(θ)⟩ - E[log h(x)], with ∇F from autograd (kept in the graph)."""
        natural_params = [p.detach().requires_grad_() for p in self._natural_params]
        log_normalizer = self._log_normalizer(*natural_params)
        gradients = grad(log_normalizer.sum(), natural_params, create_graph=True)
        result = log_normalizer - self._mean_carrier_measure
        for param, gradient in zip(natural_params, gradients):
            result = result - (param * gradient).reshape(tuple(self._batch_shape) + (-1,)).sum(-1)
        return result
