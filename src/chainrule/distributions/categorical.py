"""Categorical(probs | logits): one of K classes along the last dim; not reparameterisable."""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from .._naming import in_torchs_words
from ..autograd.grad_mode import enable_grad
from ..ops.creation import full
from ..ops.random import multinomial
from ..ops.reduce import logsumexp, softmax
from ..tensor import Size, Tensor
from .constraints import integer_interval, real_vector
from .distribution import Constraint, Distribution, simplex
from .utils import probs_to_logits

__all__ = ["Categorical"]


class Categorical(Distribution):
    """torch.distributions.Categorical(probs=None, logits=None, validate_args=None): exactly one,
    over the last dim (probs are normalised to sum to 1, logits to log-probabilities)."""

    arg_constraints = {"probs": simplex, "logits": real_vector}

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise in_torchs_words(ValueError("Either `probs` or `logits` must be specified, but not both."))
        given = probs if probs is not None else logits
        if not isinstance(given, Tensor):  # torch fails on given.dim() (AttributeError)
            raise TypeError(f"`{'probs' if probs is not None else 'logits'}` must be a Tensor (at least "
                            f"one-dimensional), got {type(given).__name__} {given!r}")
        if given.dim() < 1:
            raise ValueError(f"`{'probs' if probs is not None else 'logits'}` parameter must be at least one-dimensional.")
        if probs is not None:
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            self.logits = logits - logsumexp(logits, -1, keepdim=True)
        self._num_events = given.shape[-1]
        super().__init__(given.shape[:-1], validate_args=validate_args)

    def __getattr__(self, name: str):
        # computed with grad enabled, as torch's lazy_property: a first use inside no_grad (say,
        # by sample()) must not cache a value cut off from the parameters' graph
        with enable_grad():
            return self._lazy_parameter(name)

    def _lazy_parameter(self, name: str):
        if name == "probs":
            self.probs = softmax(self.__dict__["logits"], -1)
            return self.probs
        if name == "logits":
            # torch clamps probs to [eps, 1 - eps] first, so a zero probability has a finite logit
            self.logits = probs_to_logits(self.__dict__["probs"])
            return self.logits
        raise AttributeError(f"'Categorical' object has no attribute '{name}'")

    @property
    def param_shape(self) -> Size:
        return Size(tuple(self.batch_shape) + (self._num_events,))

    @property
    def support(self) -> Constraint:
        return integer_interval(0, self._num_events - 1)

    @property
    def mean(self) -> Tensor:
        return full(tuple(self.batch_shape), math.nan, dtype=self.probs.dtype, device=self.probs.device)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    @property
    def variance(self) -> Tensor:
        # class indices are labels, not quantities: NaN, as torch's (and as the mean)
        return full(tuple(self.batch_shape), math.nan, dtype=self.probs.dtype, device=self.probs.device)

    def sample(self, sample_shape=()) -> Tensor:
        """Class indices (int64) of shape ``sample_shape + batch_shape``, drawn as torch draws them:
        ``multinomial`` with replacement of every draw from each row of probabilities, so the
        same seed gives torch's classes."""
        sample_shape = tuple(sample_shape)
        count = int(np.prod(sample_shape, dtype=np.int64))
        probs_2d = self.probs.detach().reshape(-1, self._num_events)
        drawn = multinomial(probs_2d, count, True).t()
        return drawn.reshape(sample_shape + tuple(self.batch_shape))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        value = value.to(_dtype.int64).unsqueeze(-1)
        shape = np.broadcast_shapes(tuple(value.shape), tuple(self.logits.shape[:-1]) + (1,))
        value = value.expand(shape)
        logits = self.logits.expand(shape[:-1] + (self._num_events,))
        return logits.gather(-1, value).squeeze(-1)

    def entropy(self) -> Tensor:
        # masked classes (logits of -inf, probability 0) would give -inf * 0 = NaN: torch clamps the
        # logits to the dtype's least finite value first, so they add 0 to the sum
        least = float(_dtype.finfo_of(self.logits._data.dtype).min)
        return -(self.logits.clamp(min=least) * self.probs).sum(-1)

    has_enumerate_support = True

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The class indices 0..K-1 (int64) along a new leading dim, broadcast over the batch dims
        when ``expand``."""
        param = self.__dict__.get("probs", self.__dict__.get("logits"))
        values = Tensor._make(np.arange(self._num_events, dtype=np.int64)).to(param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values
