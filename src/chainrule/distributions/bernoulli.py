"""Bernoulli(probs | logits): 0/1 outcomes; not reparameterisable (use log_prob)."""

from __future__ import annotations

from ..autograd.grad_mode import enable_grad
from ..nn.functional import binary_cross_entropy_with_logits
from ..ops.elementwise import log, log1p, sigmoid
from ..ops.random import rand
from ..tensor import Tensor
from .distribution import Distribution, boolean, broadcast_all, real, unit_interval

__all__ = ["Bernoulli"]


def _probs_to_logits(probs: Tensor) -> Tensor:
    # clamp as torch does so that probs of exactly 0 or 1 give finite logits
    eps = 1.1920928955078125e-07 if probs.dtype.itemsize == 4 else 2.220446049250313e-16
    p = probs.clamp(eps, 1 - eps)
    return log(p) - log1p(-p)


class Bernoulli(Distribution):
    """torch.distributions.Bernoulli(probs=None, logits=None, validate_args=None): exactly one."""

    arg_constraints = {"probs": unit_interval, "logits": real}
    support = boolean

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            shape = self.probs.shape
        else:
            (self.logits,) = broadcast_all(logits)
            shape = self.logits.shape
        super().__init__(shape, validate_args=validate_args)

    def __getattr__(self, name: str):
        # computed with grad enabled, as torch's lazy_property: a first use inside no_grad (say,
        # by sample()) must not cache a value cut off from the parameters' graph
        with enable_grad():
            return self._lazy_parameter(name)

    def _lazy_parameter(self, name: str):
        # the parameter not given is derived on first use and cached, as torch's lazy_property
        if name == "probs":
            self.probs = sigmoid(self.__dict__["logits"])
            return self.probs
        if name == "logits":
            self.logits = _probs_to_logits(self.__dict__["probs"])
            return self.logits
        raise AttributeError(f"'Bernoulli' object has no attribute '{name}'")

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        probs = self.probs.detach()
        return (rand(self._extended_shape(sample_shape), dtype=probs.dtype) < probs).to(probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        # log p(x) = x log p + (1 - x) log(1 - p) = -BCEWithLogits(logits, x), stable for any logit
        self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self) -> Tensor:
        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")
