"""Counting distributions: Geometric, Poisson, Binomial, Multinomial, and OneHotCategorical
(with its straight-through variant). Their log-probabilities are differentiable in the
parameters; samples are drawn outside the graph, as torch's."""

from __future__ import annotations

import math

import numpy as np

from .._naming import in_torchs_words
from ..autograd.grad_mode import no_grad
from ..nn.functional import binary_cross_entropy_with_logits, one_hot
from ..ops.compat import binomial, poisson
from ..ops.creation import arange
from ..ops.elementwise import log, log1p, xlogy
from ..ops.random import rand
from ..tensor import Tensor
from . import constraints
from .bernoulli import ProbsOrLogits
from .categorical import Categorical
from .distribution import Distribution, broadcast_all
from .exp_family import ExponentialFamily

__all__ = ["Binomial", "Geometric", "Multinomial", "OneHotCategorical", "OneHotCategoricalStraightThrough",
           "Poisson"]


def _clamp_by_zero(x: Tensor) -> Tensor:
    # max(x, 0), with gradient 1/2 at 0 (as torch's helper)
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


class Geometric(ProbsOrLogits, Distribution):
    """torch.distributions.Geometric(probs | logits): failures before the first success, k = 0, 1, ..."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        given = self._given(probs, logits)
        super().__init__(given.shape, validate_args=validate_args)
        # torch's extra check beyond unit_interval, in its own words, showing only the values refused
        valid = self.probs.detach() > 0 if self._validate_args and probs is not None else None
        if valid is not None and not bool(valid.all()):
            raise ValueError(f"Expected parameter probs (Tensor of shape {tuple(self.probs.shape)}) of distribution "
                             f"{self!r} to be positive but found invalid values:\n{self.probs.detach()[~valid]}")

    @property
    def mean(self) -> Tensor:
        return 1.0 / self.probs - 1.0

    @property
    def mode(self) -> Tensor:
        return self.probs.new_zeros(tuple(self.probs.shape))

    @property
    def variance(self) -> Tensor:
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()) -> Tensor:
        with no_grad():
            probs = self.probs.detach()
            tiny = float(np.finfo(probs._data.dtype).tiny)
            u = rand(self._extended_shape(sample_shape), dtype=probs.dtype, device=probs.device).clamp(min=tiny)
            return (log(u) / log1p(-probs)).floor()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        value, probs = broadcast_all(value, self.probs)
        # a sure success (p = 1) at k = 0 has probability 1: 0 · log(0) must read as 0
        probs = probs.masked_fill((probs == 1) & (value == 0), 0)
        return value * log1p(-probs) + log(self.probs)

    def entropy(self) -> Tensor:
        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none") / self.probs


class Poisson(ExponentialFamily):
    """torch.distributions.Poisson(rate): counts k with probability rateᵏ e^(-rate) / k!."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None) -> None:
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.floor()

    @property
    def variance(self) -> Tensor:
        return self.rate

    def sample(self, sample_shape=()) -> Tensor:
        # torch.poisson of the expanded rates, as torch draws it
        return poisson(self.rate.detach().expand(self._extended_shape(sample_shape)))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return xlogy(value, rate) - rate - (value + 1).lgamma()

    # as an exponential family: θ = log rate, F(θ) = e^θ
    @property
    def _natural_params(self) -> tuple:
        return (log(self.rate),)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return x.exp()


class Binomial(ProbsOrLogits, Distribution):
    """torch.distributions.Binomial(total_count=1, probs | logits): successes in total_count trials."""

    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise in_torchs_words(ValueError("Either `probs` or `logits` must be specified, but not both."))
        if probs is not None:
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.to(self.probs.dtype)
            shape = self.probs.shape
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.to(self.logits.dtype)
            shape = self.logits.shape
        super().__init__(shape, validate_args=validate_args)

    @property
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def mode(self) -> Tensor:
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        # torch.binomial of the expanded count and probabilities, as torch draws it
        shape = self._extended_shape(sample_shape)
        probs = self.probs.detach()
        count = self.total_count.detach().to(device=probs.device, dtype=probs.dtype)
        return binomial(count.expand(shape), probs.expand(shape))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        n = self.total_count
        log_factorial_n = (n + 1).lgamma()
        log_factorial_k = (value + 1).lgamma()
        log_factorial_nmk = (n - value + 1).lgamma()
        # n · log(1 + e^logit), stably: n · max(logit, 0) + n · log1p(e^-|logit|)
        normalize_term = n * _clamp_by_zero(self.logits) + n * log1p((-self.logits.abs()).exp()) - log_factorial_n
        return value * self.logits - log_factorial_k - log_factorial_nmk - normalize_term

    def enumerate_support(self, expand: bool = True) -> Tensor:
        counts = np.unique(self.total_count._data)
        if counts.size != 1:
            raise NotImplementedError("Inhomogeneous total count not supported by `enumerate_support`.")
        values = Tensor._make(np.arange(int(counts[0]) + 1, dtype=self.probs._data.dtype)).to(self.probs.device)
        values = values.reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + tuple(self.batch_shape)) if expand else values

    def entropy(self) -> Tensor:
        if np.unique(self.total_count._data).size != 1:  # torch's check names entropy, not the enumeration
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        values = self.enumerate_support(expand=False)
        log_prob = self.log_prob(values)
        return -(log_prob.exp() * log_prob).sum(0)


class Multinomial(Distribution):
    """torch.distributions.Multinomial(total_count=1, probs | logits): counts over K categories."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count: int = 1, probs=None, logits=None, validate_args=None) -> None:
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        # as torch's: a Binomial of the default validation, so a negative total_count raises (naming
        # Binomial) whatever validate_args says
        self._binomial = Binomial(total_count=total_count, probs=self.probs)
        batch_shape = self._categorical.batch_shape
        super().__init__(batch_shape, (self._categorical.param_shape[-1],), validate_args=validate_args)

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def mean(self) -> Tensor:
        return self.probs * self.total_count

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        with no_grad():
            sample_shape = tuple(sample_shape)
            draws = self._categorical.sample((self.total_count,) + sample_shape)  # (n, *sample, *batch)
            k = self._event_shape[0]
            return one_hot(draws, k).to(self.probs.dtype).sum(0)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        log_factorial_n = (value.sum(-1) + 1).lgamma()
        log_factorial_xs = (value + 1).lgamma().sum(-1)
        # a category with probability 0 that was not drawn contributes 0, not 0 · -inf
        logits = logits.masked_fill((value == 0) & (logits == -math.inf), 0)
        return log_factorial_n - log_factorial_xs + (logits * value).sum(-1)

    def entropy(self) -> Tensor:
        # H = n H(Categorical) - log n! + Σ_i E[log x_i!], each count x_i ~ Binomial(n, p_i): the
        # expectation summed over k = 1..n (log 0! = 0)
        n = self.total_count
        probs = self.probs
        counts = arange(1, n + 1, dtype=probs.dtype, device=probs.device).reshape((n,) + (1,) * probs.dim())
        count_probs = Binomial(n, probs=probs, validate_args=False).log_prob(counts).exp()
        expected_log_factorials = (count_probs * (counts + 1).lgamma()).sum((0, -1))
        return n * self._categorical.entropy() - math.lgamma(n + 1) + expected_log_factorials


class OneHotCategorical(Distribution):
    """torch.distributions.OneHotCategorical(probs | logits): a Categorical whose samples are one-hot vectors."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        # validated by the default, whatever validate_args says, as torch's Categorical(probs, logits)
        self._categorical = Categorical(probs=probs, logits=logits)
        batch_shape = self._categorical.batch_shape
        super().__init__(batch_shape, (self._categorical.param_shape[-1],), validate_args=validate_args)

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        return one_hot(self.probs.argmax(-1), self._event_shape[0]).to(self.probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        with no_grad():
            indices = self._categorical.sample(sample_shape)
            return one_hot(indices, self._event_shape[0]).to(self.probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = self._event_shape[0]
        values = Tensor._make(np.eye(n, dtype=self.probs._data.dtype)).to(self.probs.device)
        values = values.reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        return values.expand((n,) + tuple(self.batch_shape) + (n,)) if expand else values


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """OneHotCategorical whose ``rsample`` passes gradients straight through: the one-hot sample
    in the forward pass, the probabilities' gradient in the backward pass."""

    _torch_init_owner = "OneHotCategorical"  # torch's inherits its __init__ too (_naming._name_the_call)
    has_rsample = True

    def rsample(self, sample_shape=()) -> Tensor:
        samples = self.sample(sample_shape)
        probs = self._categorical.probs
        return samples + (probs - probs.detach())
