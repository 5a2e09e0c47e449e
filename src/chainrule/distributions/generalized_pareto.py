"""torch.distributions.generalized_pareto: GeneralizedPareto(loc, scale, concentration), the
limit law of threshold exceedances; concentration 0 is the shifted Exponential (each formula
takes that limit where the concentration is 0 to within 1e-8, as torch's isclose does)."""

from __future__ import annotations

import math

from ..ops.elementwise import where
from ..ops.random import rand
from ..ops.shape import broadcast_to
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution, broadcast_all

__all__ = ["GeneralizedPareto"]

# torch tests the concentration with isclose(c, 0): |c| <= atol + rtol·0
_ZERO_TOLERANCE = 1e-8


class GeneralizedPareto(Distribution):
    """torch.distributions.GeneralizedPareto(loc, scale, concentration): with z = (x - loc)/scale,
    density (1 + ξz)^(-1/ξ - 1) / scale, for z ≥ 0 (and z ≤ -1/ξ when ξ < 0)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None) -> None:
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def _safe_concentration(self):
        """(ξ near 0, ξ with 1 in its place there): the ξ ≠ 0 formulas evaluated safely everywhere."""
        eq_zero = self.concentration.abs() <= _ZERO_TOLERANCE
        return eq_zero, where(eq_zero, 1.0, self.concentration)

    def _z(self, x: Tensor) -> Tensor:
        return (x - self.loc) / self.scale

    def rsample(self, sample_shape=()) -> Tensor:
        u = rand(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.icdf(u)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        z = self._z(value)
        eq_zero, safe = self._safe_concentration()
        y = 1 / safe + 1.0
        where_nonzero = where(y == 0, y, y * (safe * z).log1p())
        return -self.scale.log() - where(eq_zero, z, where_nonzero)

    def log_survival_function(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        z = self._z(value)
        eq_zero, safe = self._safe_concentration()
        return where(eq_zero, -z, -(safe * z).log1p() / safe)

    def log_cdf(self, value: Tensor) -> Tensor:
        return (-self.log_survival_function(value).exp()).log1p()

    def cdf(self, value: Tensor) -> Tensor:
        return self.log_cdf(value).exp()

    def icdf(self, value: Tensor) -> Tensor:
        eq_zero, safe = self._safe_concentration()
        log_u = (-value).log1p()
        where_nonzero = self.loc + self.scale / safe * (-safe * log_u).expm1()
        return where(eq_zero, self.loc - self.scale * log_u, where_nonzero)

    @property
    def mean(self) -> Tensor:
        valid = self.concentration < 1
        safe = where(valid, self.concentration, 0.5)
        return where(valid, self.loc + self.scale / (1 - safe), math.nan)

    @property
    def variance(self) -> Tensor:
        valid = self.concentration < 0.5
        safe = where(valid, self.concentration, 0.25)
        return where(valid, self.scale ** 2 / ((1 - safe) ** 2 * (1 - 2 * safe)), math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    def entropy(self) -> Tensor:
        return broadcast_to(self.scale.log() + self.concentration + 1, tuple(self._batch_shape))

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        lower = self.loc
        upper = where(self.concentration < 0, lower - self.scale / self.concentration, math.inf)
        return constraints.interval(lower, upper)
