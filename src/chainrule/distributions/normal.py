"""Normal(loc, scale): the Gaussian, reparameterisable (rsample = loc + scale * eps)."""

from __future__ import annotations

import math

from ..ops.elementwise import erf, log
from ..ops.random import _check_std, randn
from ..ops.special_functions import erfinv
from ..tensor import Tensor
from .distribution import broadcast_all, positive, real
from .exp_family import ExponentialFamily

__all__ = ["Normal"]


class Normal(ExponentialFamily):
    """torch.distributions.Normal(loc, scale, validate_args=None)."""

    arg_constraints = {"loc": real, "scale": positive}
    support = real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale**2

    def sample(self, sample_shape=()) -> Tensor:
        _check_std(self.scale)  # torch samples with torch.normal, which refuses a negative or NaN scale
        return super().sample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        eps = randn(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        # log N(x; mu, sigma) = -(x - mu)^2 / (2 sigma^2) - log sigma - log sqrt(2 pi)
        self._validate_sample(value)
        return -((value - self.loc) ** 2) / (2 * self.variance) - log(self.scale) - math.log(math.sqrt(2 * math.pi))

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return 0.5 * (1 + erf((value - self.loc) * self.scale.reciprocal() / math.sqrt(2)))

    def icdf(self, value: Tensor) -> Tensor:
        probability = 2 * value - 1
        if not isinstance(probability, Tensor):  # torch.erfinv's parser refuses a number (icdf(0.95))
            raise TypeError(f"erfinv(): argument 'input' (position 1) must be Tensor, not {type(probability).__name__}")
        return self.loc + self.scale * erfinv(probability) * math.sqrt(2)

    def entropy(self) -> Tensor:
        return 0.5 + 0.5 * math.log(2 * math.pi) + log(self.scale)

    # as an exponential family: θ = (μ/σ², -1/(2σ²)), F(θ) = -θ₁²/(4θ₂) + ½ log(-π/θ₂)
    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return self.loc / self.scale.pow(2), -0.5 * self.scale.pow(2).reciprocal()

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return -0.25 * x.pow(2) / y + 0.5 * log(-math.pi / y)
