"""torch.distributions.von_mises: VonMises(loc, concentration), the circular normal on angles
(any real, read modulo 2π); sampled by Best and Fisher's rejection method (no rsample)."""

from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..ops.elementwise import where
from ..ops.random import rand
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution, broadcast_all
from .utils import lazy_property

__all__ = ["VonMises"]

# log I₀ and log I₁ by torch's (Abramowitz and Stegun 9.8.1-9.8.4) polynomials, so that log_prob
# and variance are torch's to the last digit (and differentiable: they are ops on the tensor)
_I0_COEF_SMALL = (1.0, 3.5156229, 3.0899424, 1.2067492, 0.2659732, 0.360768e-1, 0.45813e-2)
_I0_COEF_LARGE = (0.39894228, 0.1328592e-1, 0.225319e-2, -0.157565e-2, 0.916281e-2, -0.2057706e-1, 0.2635537e-1,
                  -0.1647633e-1, 0.392377e-2)
_I1_COEF_SMALL = (0.5, 0.87890594, 0.51498869, 0.15084934, 0.2658733e-1, 0.301532e-2, 0.32411e-3)
_I1_COEF_LARGE = (0.39894228, -0.3988024e-1, -0.362018e-2, 0.163801e-2, -0.1031555e-1, 0.2282967e-1, -0.2895312e-1,
                  0.1787654e-1, -0.420059e-2)


def _eval_poly(y: Tensor, coefficients) -> Tensor:
    result = coefficients[-1]
    for coefficient in reversed(coefficients[:-1]):
        result = coefficient + y * result
    return result


def _log_modified_bessel_fn(x: Tensor, order: int = 0) -> Tensor:
    """log Iₒ(x) for x > 0, order 0 or 1."""
    small = _eval_poly((x / 3.75) ** 2, _I0_COEF_SMALL if order == 0 else _I1_COEF_SMALL)
    if order == 1:
        small = x.abs() * small
    large = x - 0.5 * x.log() + _eval_poly(3.75 / x, _I0_COEF_LARGE if order == 0 else _I1_COEF_LARGE).log()
    return where(x < 3.75, small.log(), large)


def _rejection_sample(loc: Tensor, concentration: Tensor, proposal_r: Tensor, shape: tuple) -> Tensor:
    """Best & Fisher (1979): draw until every element is accepted. Each round draws for every
    element and an element accepted again takes the new angle, as torch's loop does, so that a
    seeded draw is torch's (any accepted angle has the right law)."""
    x = loc.new_zeros(shape)
    done = x != x  # all False
    while not bool(done.all()):
        u1, u2, u3 = rand((3,) + tuple(shape), dtype=loc.dtype, device=loc.device).unbind(0)
        z = (math.pi * u1).cos()
        f = (1 + proposal_r * z) / (proposal_r + z)
        c = concentration * (proposal_r - f)
        accept = ((c * (2 - c) - u2) > 0) | ((c / u2).log() + 1 - c >= 0)
        x = where(accept, (u3 - 0.5).sign() * f.acos(), x)
        done = done | accept
    return (x + math.pi + loc) % (2 * math.pi) - math.pi


class VonMises(Distribution):
    """torch.distributions.VonMises(loc, concentration): density exp(κ cos(x - μ)) / (2π I₀(κ))."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None) -> None:
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, (), validate_args=validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return (self.concentration * (value - self.loc).cos() - math.log(2 * math.pi)
                - _log_modified_bessel_fn(self.concentration, order=0))

    @lazy_property
    def _proposal_r(self) -> Tensor:
        # in float64 whatever the parameters' dtype: in float32 the acceptance test never passes
        # for concentrations near 1e-4 (torch's issue 88443)
        kappa = self.concentration.double()
        tau = 1 + (1 + 4 * kappa ** 2).sqrt()
        rho = (tau - (2 * tau).sqrt()) / (2 * kappa)
        # below 1e-5, its second-order Taylor expansion about κ = 0
        return where(kappa < 1e-5, 1 / kappa + kappa, (1 + rho ** 2) / (2 * rho))

    def sample(self, sample_shape=()) -> Tensor:
        with no_grad():
            shape = self._extended_shape(sample_shape)
            drawn = _rejection_sample(self.loc.double(), self.concentration.double(), self._proposal_r, shape)
            return drawn.to(self.loc.dtype)

    @property
    def mean(self) -> Tensor:
        """The circular mean."""
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        """The circular variance 1 - I₁(κ)/I₀(κ)."""
        return 1 - (_log_modified_bessel_fn(self.concentration, order=1)
                    - _log_modified_bessel_fn(self.concentration, order=0)).exp()
