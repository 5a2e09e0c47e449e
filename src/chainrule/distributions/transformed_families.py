"""Families torch builds as transformed distributions: LogNormal (exp of a Normal), Gumbel
(a double log of a Uniform), HalfNormal and HalfCauchy (|·| of a centred Normal / Cauchy)."""

from __future__ import annotations

import math

import numpy as np

from ..ops.elementwise import where
from ..tensor import Tensor
from . import constraints
from .distribution import broadcast_all
from .exponential import Cauchy
from .normal import Normal
from .transformed_distribution import TransformedDistribution
from .transforms import AbsTransform, AffineTransform, ExpTransform
from .uniform import Uniform

__all__ = ["Gumbel", "HalfCauchy", "HalfNormal", "LogNormal"]

_EULER_GAMMA = 0.57721566490153286060


class LogNormal(TransformedDistribution):
    """torch.distributions.LogNormal(loc, scale): exp(X) for X ~ Normal(loc, scale)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        base = Normal(loc, scale, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    @property
    def loc(self) -> Tensor:
        return self.base_dist.loc

    @property
    def scale(self) -> Tensor:
        return self.base_dist.scale

    @property
    def mean(self) -> Tensor:
        return (self.loc + self.scale.pow(2) / 2).exp()

    @property
    def mode(self) -> Tensor:
        return (self.loc - self.scale.square()).exp()

    @property
    def variance(self) -> Tensor:
        scale_sq = self.scale.pow(2)
        return scale_sq.expm1() * (2 * self.loc + scale_sq).exp()

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() + self.loc


class Gumbel(TransformedDistribution):
    """torch.distributions.Gumbel(loc, scale): loc - scale · log(-log U), U uniform."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        info = np.finfo(self.loc._data.dtype)
        base = Uniform(self.loc.new_full(tuple(self.loc.shape), float(info.tiny)),
                       self.loc.new_full(tuple(self.loc.shape), 1 - float(info.eps)), validate_args=validate_args)
        transforms = [ExpTransform().inv, AffineTransform(0, -1.0), ExpTransform().inv,
                      AffineTransform(self.loc, -self.scale)]
        super().__init__(base, transforms, validate_args=validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        z = (self.loc - value) / self.scale
        return (z - z.exp()) - self.scale.log()

    @property
    def mean(self) -> Tensor:
        return self.loc + self.scale * _EULER_GAMMA

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def entropy(self) -> Tensor:
        return self.scale.log() + (1 + _EULER_GAMMA)


class _Half(TransformedDistribution):
    """|X| for X ~ ``_family``(0, scale): HalfNormal and HalfCauchy share everything but the
    family and their moments (the density doubles on x ≥ 0; the entropy loses log 2)."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _family: type
    _value_in_scale_dtype = False  # torch's HalfCauchy.log_prob casts the value, HalfNormal's does not

    def __init__(self, scale, validate_args=None) -> None:
        base = self._family(0.0, scale, validate_args=False) if not isinstance(scale, Tensor) else \
            self._family(scale.new_zeros(tuple(scale.shape)), scale, validate_args=validate_args)
        super().__init__(base, AbsTransform(), validate_args=validate_args)

    @property
    def scale(self) -> Tensor:
        return self.base_dist.scale

    @property
    def mode(self) -> Tensor:
        return self.scale.new_zeros(tuple(self.scale.shape))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        if self._value_in_scale_dtype:
            value = value.to(self.scale.dtype)
        log_prob = self.base_dist.log_prob(value) + math.log(2)
        return where(value >= 0, log_prob, -math.inf)  # a NaN value too has no density, as torch's

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, prob: Tensor) -> Tensor:
        # |X| ≤ x has probability F(x) - F(-x) = 2 F(x) - 1 for the symmetric base
        return self.base_dist.icdf((prob + 1) / 2)

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() - math.log(2)


class HalfNormal(_Half):
    """torch.distributions.HalfNormal(scale): |X| for X ~ Normal(0, scale)."""

    _family = Normal

    @property
    def mean(self) -> Tensor:
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2) * (1 - 2 / math.pi)


class HalfCauchy(_Half):
    """torch.distributions.HalfCauchy(scale): |X| for X ~ Cauchy(0, scale)."""

    _family = Cauchy
    _value_in_scale_dtype = True

    @property
    def mean(self) -> Tensor:
        return self.scale.new_full(tuple(self.scale.shape), math.inf)

    @property
    def variance(self) -> Tensor:
        return self.scale.new_full(tuple(self.scale.shape), math.inf)
