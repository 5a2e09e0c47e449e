"""Uniform(low, high): uniform on [low, high), reparameterisable (rsample = low + u (high - low))."""

from __future__ import annotations

import math

from ..ops.elementwise import log
from ..ops.random import rand
from ..tensor import Tensor
from . import constraints
from .distribution import Constraint, Distribution, broadcast_all

__all__ = ["Uniform"]


class Uniform(Distribution):
    """torch.distributions.Uniform(low, high, validate_args=None); needs low < high."""

    has_rsample = True

    @property
    def arg_constraints(self) -> dict:
        # torch's: each bounded by the other, low checked first, so an invalid pair (a NaN on either
        # side included) is always reported as low's LessThan(upper_bound=high)
        return {"low": constraints.less_than(self.high), "high": constraints.greater_than(self.low)}

    def __init__(self, low, high, validate_args=None) -> None:
        self.low, self.high = broadcast_all(low, high)
        super().__init__(self.low.shape, validate_args=validate_args)

    @property
    def support(self) -> Constraint:
        return constraints.interval(self.low, self.high)

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def mode(self) -> Tensor:
        # every point of [low, high] is one: NaN, as torch's (in the graph of high, as there)
        return self.high * math.nan

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low) ** 2 / 12

    def rsample(self, sample_shape=()) -> Tensor:
        u = rand(self._extended_shape(sample_shape), dtype=self.low.dtype, device=self.low.device)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value: Tensor) -> Tensor:
        # log(1 / (high - low)) inside [low, high), -inf outside (reachable without validation); as
        # torch's log(inside) - log(high - low), so that high <= low gives NaN as there
        self._validate_sample(value)
        inside = ((self.low <= value) & (value < self.high)).to(self.low.dtype)
        return log(inside) - log(self.high - self.low)

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return ((value - self.low) / (self.high - self.low)).clamp(0, 1)

    def icdf(self, value: Tensor) -> Tensor:
        return value * (self.high - self.low) + self.low

    def entropy(self) -> Tensor:
        return log(self.high - self.low)
