"""The Gamma family: Gamma, Chi2, Beta, Dirichlet and StudentT. Their ``rsample`` rests on
Gamma draws differentiable in the concentration (``ops.gamma_sampling``), their densities on
lgamma/digamma."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..ops.elementwise import log, log1p, xlogy
from ..ops.gamma_sampling import dirichlet_sample, standard_gamma
from ..ops.random import randn
from ..ops.shape import stack
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution, broadcast_all
from .exp_family import ExponentialFamily

__all__ = ["Beta", "Chi2", "Dirichlet", "Gamma", "StudentT"]


def _tiny(t: Tensor) -> float:
    return float(np.finfo(t._data.dtype).tiny)


class Gamma(ExponentialFamily):
    """torch.distributions.Gamma(concentration, rate): density βᵅ xᵅ⁻¹ e^(-βx) / Γ(α) on x > 0."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None) -> None:
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        value = standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        return value.clamp(min=_tiny(value))  # a draw of exactly 0 has no finite log-density

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        # in the parameters' dtype, as torch's as_tensor(value, dtype=rate.dtype)
        value = value.to(self.rate.dtype) if isinstance(value, Tensor) else self.rate.new_tensor(value)
        return (xlogy(self.concentration, self.rate) + xlogy(self.concentration - 1, value)
                - self.rate * value - self.concentration.lgamma())

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        from .. import special

        return special.gammainc(self.concentration, self.rate * value)

    def entropy(self) -> Tensor:
        alpha = self.concentration
        return alpha - log(self.rate) + alpha.lgamma() + (1.0 - alpha) * alpha.digamma()

    # as an exponential family: θ = (α - 1, -β), F(θ) = lgamma(θ₁ + 1) + (θ₁ + 1) log(-1/θ₂)
    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return self.concentration - 1, -self.rate

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return (x + 1).lgamma() + (x + 1) * log(-y.reciprocal())


class Chi2(Gamma):
    """torch.distributions.Chi2(df): Gamma(df / 2, 1 / 2)."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None) -> None:
        if not isinstance(df, (Tensor, numbers.Number)):  # torch's 0.5 * df fails on it so
            raise TypeError(f"df must be a number or a Tensor, got {type(df).__name__} {df!r}")
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, df.new_full(tuple(df.shape), 0.5), validate_args=validate_args)

    @property
    def df(self) -> Tensor:
        return self.concentration * 2

    def expand(self, batch_shape, _instance=None) -> Chi2:
        # df is derived: expand Gamma's concentration and rate, as torch's Chi2.expand (via Gamma's) does
        new = super().expand(batch_shape, _instance)
        for name in ("concentration", "rate"):
            new.__dict__[name] = self.__dict__[name].expand(tuple(batch_shape))
        return new

    def __repr__(self) -> str:
        return f"Chi2(df: {self.df.item() if self.df.dim() == 0 else tuple(self.df.shape)})"


class Dirichlet(ExponentialFamily):
    """torch.distributions.Dirichlet(concentration): points of the simplex; density ∝ Π xᵢ^(αᵢ - 1)."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None) -> None:
        if not isinstance(concentration, Tensor):  # torch fails on concentration.dim() (AttributeError)
            raise TypeError(f"`concentration` must be a Tensor (at least one-dimensional), got "
                            f"{type(concentration).__name__} {concentration!r}")
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        shape = tuple(concentration.shape)
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self) -> Tensor:
        alpha_minus_one = (self.concentration - 1).clamp(min=0.0)
        mode = alpha_minus_one / alpha_minus_one.sum(-1, keepdim=True)
        # where every αᵢ < 1 the density is unbounded at the corners: torch takes the argmax of that
        # row's mode, all 0/0 = NaN, so always the first corner (a Beta's mode is then 1)
        below_one = (self.concentration < 1).all(-1)
        if bool(below_one.any()):
            corner = Tensor._make(np.eye(self._event_shape[0], dtype=mode._data.dtype)[0])
            mode = mode.masked_fill(below_one.unsqueeze(-1), 0) + corner * below_one.unsqueeze(-1).to(mode.dtype)
        return mode

    @property
    def variance(self) -> Tensor:
        total = self.concentration.sum(-1, keepdim=True)
        return self.concentration * (total - self.concentration) / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()) -> Tensor:
        # torch's _sample_dirichlet values, with torch's implicit-reparameterisation gradient
        # (_Dirichlet): not the gradient through the internal Gamma draws, which differs
        return dirichlet_sample(self.concentration.expand(self._extended_shape(sample_shape)))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        alpha = self.concentration
        return xlogy(alpha - 1.0, value).sum(-1) + alpha.sum(-1).lgamma() - alpha.lgamma().sum(-1)

    def entropy(self) -> Tensor:
        alpha = self.concentration
        k = alpha.shape[-1]
        total = alpha.sum(-1)
        return (alpha.lgamma().sum(-1) - total.lgamma() - (k - total) * total.digamma()
                - ((alpha - 1.0) * alpha.digamma()).sum(-1))

    # as an exponential family: θ = α, F(θ) = Σ lgamma(θᵢ) - lgamma(Σ θᵢ)
    @property
    def _natural_params(self) -> tuple:
        return (self.concentration,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return x.lgamma().sum(-1) - x.sum(-1).lgamma()


class Beta(ExponentialFamily):
    """torch.distributions.Beta(concentration1, concentration0): a Dirichlet over (x, 1 - x)."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None) -> None:
        concentration1, concentration0 = broadcast_all(concentration1, concentration0)
        self._dirichlet = Dirichlet(stack([concentration1, concentration0], -1), validate_args=validate_args)
        super().__init__(self._dirichlet.batch_shape, validate_args=validate_args)

    @property
    def concentration1(self) -> Tensor:
        return self._dirichlet.concentration[..., 0]

    @property
    def concentration0(self) -> Tensor:
        return self._dirichlet.concentration[..., 1]

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()) -> Tensor:
        return self._dirichlet.rsample(sample_shape)[..., 0]

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return self._dirichlet.log_prob(stack([value, 1.0 - value], -1))

    def entropy(self) -> Tensor:
        return self._dirichlet.entropy()

    # as an exponential family: θ = (α, β), F(θ) = log B(θ₁, θ₂)
    @property
    def _natural_params(self) -> tuple:
        return self.concentration1, self.concentration0

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return x.lgamma() + y.lgamma() - (x + y).lgamma()


class StudentT(Distribution):
    """torch.distributions.StudentT(df, loc=0, scale=1)."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None) -> None:
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = Chi2(self.df)
        super().__init__(self.df.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc.masked_fill(self.df <= 1, math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        df = self.df
        finite = self.scale.pow(2) * df / (df - 2)
        return finite.masked_fill((df <= 2) & (df > 1), math.inf).masked_fill(df <= 1, math.nan)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        x = randn(shape, dtype=self.df.dtype, device=self.df.device)
        z = self._chi2.rsample(sample_shape)
        return self.loc + self.scale * x * (z / self.df).rsqrt()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        y = (value - self.loc) / self.scale
        normaliser = (log(self.scale) + 0.5 * log(self.df) + 0.5 * math.log(math.pi)
                      + (0.5 * self.df).lgamma() - (0.5 * (self.df + 1.0)).lgamma())
        return -0.5 * (self.df + 1.0) * log1p(y.pow(2) / self.df) - normaliser

    def entropy(self) -> Tensor:
        df = self.df
        lbeta = (0.5 * df).lgamma() + math.lgamma(0.5) - (0.5 * (df + 1)).lgamma()
        return (log(self.scale) + 0.5 * (df + 1) * ((0.5 * (df + 1)).digamma() - (0.5 * df).digamma())
                + 0.5 * log(df) + lbeta)
