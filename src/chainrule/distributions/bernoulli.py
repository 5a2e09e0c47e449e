"""Bernoulli(probs | logits): 0/1 outcomes; not reparameterisable (use log_prob)."""

from __future__ import annotations

import math

from .._naming import in_torchs_words
from ..autograd.grad_mode import enable_grad
from ..nn.functional import binary_cross_entropy_with_logits
from ..ops.elementwise import sigmoid
from ..ops.random import _check_probabilities, rand
from ..ops.special_functions import logit
from ..tensor import Tensor
from .distribution import boolean, broadcast_all, real, unit_interval
from .exp_family import ExponentialFamily
from .utils import probs_to_logits

__all__ = ["Bernoulli"]


class ProbsOrLogits:
    """For the families given ``probs`` or ``logits`` (Bernoulli, Geometric, Binomial): the one
    not given is derived on first use and cached, as torch's lazy_property."""

    def _given(self, probs, logits) -> Tensor:
        """Store whichever of ``probs``/``logits`` was given (exactly one) and return it."""
        if (probs is None) == (logits is None):
            raise in_torchs_words(ValueError("Either `probs` or `logits` must be specified, but not both."))
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            return self.probs
        (self.logits,) = broadcast_all(logits)
        return self.logits

    def __getattr__(self, name: str):
        # computed with grad enabled: a first use inside no_grad (say, by sample()) must not cache
        # a value cut off from the parameters' graph
        with enable_grad():
            if name == "probs" and "logits" in self.__dict__:
                self.probs = sigmoid(self.__dict__["logits"])
                return self.probs
            if name == "logits" and "probs" in self.__dict__:
                self.logits = probs_to_logits(self.__dict__["probs"], is_binary=True)
                return self.logits
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")


class Bernoulli(ProbsOrLogits, ExponentialFamily):
    """torch.distributions.Bernoulli(probs=None, logits=None, validate_args=None): exactly one."""

    arg_constraints = {"probs": unit_interval, "logits": real}
    support = boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        super().__init__(self._given(probs, logits).shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        # the likelier outcome; at p = 1/2 neither is, and torch answers NaN
        probs = self.probs
        return (probs >= 0.5).to(probs.dtype).masked_fill(probs == 0.5, math.nan)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        probs = self.probs.detach()
        _check_probabilities(probs)  # torch.bernoulli's refusal of a probability outside [0, 1] (unvalidated)
        return (rand(self._extended_shape(sample_shape), dtype=probs.dtype, device=probs.device) < probs).to(probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        # log p(x) = x log p + (1 - x) log(1 - p) = -BCEWithLogits(logits, x), stable for any logit
        self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self) -> Tensor:
        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """0 and 1 along a new leading dim (broadcast over the batch dims when ``expand``)."""
        param = self.__dict__.get("probs", self.__dict__.get("logits"))
        values = param.new_tensor([0.0, 1.0]).reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values

    # as an exponential family: θ = logit(p), F(θ) = log(1 + e^θ)
    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return (logit(self.probs),)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return x.exp().log1p()
