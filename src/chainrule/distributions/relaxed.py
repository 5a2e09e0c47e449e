"""The Concrete / Gumbel-softmax relaxations: RelaxedBernoulli and RelaxedOneHotCategorical,
reparameterisable stand-ins for Bernoulli and OneHotCategorical at a given temperature."""

from __future__ import annotations

import math

import numpy as np

from .._naming import in_torchs_words
from ..nn.functional import softplus
from ..ops.elementwise import log, log1p
from ..ops.random import rand
from ..ops.reduce import logsumexp
from ..tensor import Tensor
from . import constraints
from .categorical import Categorical
from .distribution import Distribution, broadcast_all
from .transformed_distribution import TransformedDistribution
from .transforms import ExpTransform, SigmoidTransform
from .utils import probs_to_logits

__all__ = ["LogitRelaxedBernoulli", "RelaxedBernoulli", "ExpRelaxedCategorical", "RelaxedOneHotCategorical"]


def _clamped_uniform(shape, like: Tensor) -> Tensor:
    info = np.finfo(like._data.dtype)
    return rand(shape, dtype=like.dtype, device=like.device).clamp(float(info.tiny), 1 - float(info.eps))


class LogitRelaxedBernoulli(Distribution):
    """The logit of a RelaxedBernoulli sample: (logit(u) + logits) / temperature."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise in_torchs_words(ValueError("Either `probs` or `logits` must be specified, but not both."))
        self.temperature = temperature
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            self.logits = probs_to_logits(self.probs, is_binary=True)
        else:
            (self.logits,) = broadcast_all(logits)
            self.probs = self.logits.sigmoid()
        super().__init__(self.logits.shape, validate_args=validate_args)

    def rsample(self, sample_shape=()) -> Tensor:
        u = _clamped_uniform(self._extended_shape(sample_shape), self.logits)
        return (log(u) - log1p(-u) + self.logits) / self.temperature

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        diff = logits - value * self.temperature
        return math.log(self.temperature) + diff - 2 * softplus(diff) if not isinstance(self.temperature, Tensor) \
            else self.temperature.log() + diff - 2 * softplus(diff)


class RelaxedBernoulli(TransformedDistribution):
    """torch.distributions.RelaxedBernoulli(temperature, probs | logits): values in (0, 1)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        # torch builds its base with the default validation, whatever validate_args says: an invalid
        # probs raises (naming LogitRelaxedBernoulli) even under validate_args=False
        base = LogitRelaxedBernoulli(temperature, probs, logits)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self) -> Tensor:
        return self.base_dist.logits

    @property
    def probs(self) -> Tensor:
        return self.base_dist.probs


class ExpRelaxedCategorical(Distribution):
    """The log of a RelaxedOneHotCategorical sample: log-softmax((logits + Gumbel noise) / temperature)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        self._categorical = Categorical(probs, logits)
        self.temperature = temperature
        super().__init__(self._categorical.batch_shape, (self._categorical.param_shape[-1],),
                         validate_args=validate_args)

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    def rsample(self, sample_shape=()) -> Tensor:
        u = _clamped_uniform(self._extended_shape(sample_shape), self.logits)
        gumbels = -log(-log(u))
        scores = (self.logits + gumbels) / self.temperature
        return scores - logsumexp(scores, -1, keepdim=True)

    def log_prob(self, value: Tensor) -> Tensor:
        k = self._event_shape[0]
        self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        temperature = self.temperature
        log_temperature = temperature.log() if isinstance(temperature, Tensor) else math.log(temperature)
        # log Γ(K) + (K - 1) log τ, the density's normaliser on the simplex
        log_scale = math.lgamma(k) + (k - 1) * log_temperature
        score = logits - value * temperature
        score = (score - logsumexp(score, -1, keepdim=True)).sum(-1)
        return score + log_scale


class RelaxedOneHotCategorical(TransformedDistribution):
    """torch.distributions.RelaxedOneHotCategorical(temperature, probs | logits): points of the simplex."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self) -> Tensor:
        return self.base_dist.logits

    @property
    def probs(self) -> Tensor:
        return self.base_dist.probs
