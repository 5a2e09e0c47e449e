"""torch.distributions.logistic_normal: LogisticNormal(loc, scale), a Normal mapped onto the
simplex by the stick-breaking transform."""

from __future__ import annotations

from ..tensor import Tensor
from . import constraints
from .distribution import broadcast_all
from .normal import Normal
from .transformed_distribution import TransformedDistribution
from .transforms import StickBreakingTransform

__all__ = ["LogisticNormal"]


class LogisticNormal(TransformedDistribution):
    """torch.distributions.LogisticNormal(loc, scale): X with log(X / (1 - cumsum X))[..., :-1] ~
    Normal(loc, scale); K normal coordinates give a point of the K+1-simplex."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        loc, scale = broadcast_all(loc, scale)
        if loc.dim() == 0:  # one coordinate: a point of the 2-simplex, as torch's expand([1])
            loc, scale = loc.reshape(1), scale.reshape(1)
        base = Normal(loc, scale, validate_args=validate_args)
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    @property
    def loc(self) -> Tensor:
        return self.base_dist.base_dist.loc

    @property
    def scale(self) -> Tensor:
        return self.base_dist.base_dist.scale
