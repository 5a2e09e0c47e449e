"""torch.distributions.negative_binomial: NegativeBinomial(total_count, probs | logits), the
number of successes before ``total_count`` failures; sampled as a Gamma-Poisson mixture."""

from __future__ import annotations

from .._naming import in_torchs_words
from ..autograd.grad_mode import no_grad
from ..ops.activation import logsigmoid
from ..tensor import Tensor
from . import constraints
from .discrete import Poisson
from .distribution import Distribution, broadcast_all
from .gamma import Gamma
from .utils import lazy_property, logits_to_probs, probs_to_logits

__all__ = ["NegativeBinomial"]


class NegativeBinomial(Distribution):
    """torch.distributions.NegativeBinomial(total_count, probs=None, logits=None): exactly one of
    probs/logits (probs is the success probability of each trial)."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0), "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise in_torchs_words(ValueError("Either `probs` or `logits` must be specified, but not both."))
        if probs is not None:
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self._param = self.probs
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self._param = self.logits
        self.total_count = self.total_count.to(self._param.dtype)
        super().__init__(self._param.shape, validate_args=validate_args)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self):
        return self._param.shape

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.logits.exp()

    @property
    def mode(self) -> Tensor:
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self) -> Tensor:
        return self.mean / (-self.logits).sigmoid()

    @lazy_property
    def _gamma(self) -> Gamma:
        return Gamma(concentration=self.total_count, rate=(-self.logits).exp(), validate_args=False)

    def sample(self, sample_shape=()) -> Tensor:
        with no_grad():
            return Poisson(self._gamma.sample(sample_shape), validate_args=False).sample()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        log_unnormalized = self.total_count * logsigmoid(-self.logits) + value * logsigmoid(self.logits)
        log_normalization = -(self.total_count + value).lgamma() + (1.0 + value).lgamma() + self.total_count.lgamma()
        # total_count = value = 0 is the point mass at 0: log p = 0 there, not lgamma(0)'s infinities
        log_normalization = log_normalization.masked_fill(self.total_count + value == 0.0, 0.0)
        return log_unnormalized - log_normalization
