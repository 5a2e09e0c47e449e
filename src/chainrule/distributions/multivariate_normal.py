"""MultivariateNormal(loc, covariance_matrix | precision_matrix | scale_tril): the Gaussian in
k dimensions, parameterised internally by the Cholesky factor L of its covariance (Σ = L Lᵀ)."""

from __future__ import annotations

import math

import numpy as np

from .._naming import in_torchs_words
from ..ops.creation import eye
from ..ops.decompositions import cholesky_inverse
from ..ops.decompositions import linalg_cholesky as cholesky
from ..ops.decompositions import linalg_solve_triangular as solve_triangular
from ..ops.random import randn
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution

__all__ = ["MultivariateNormal"]


def _batch_mv(matrix: Tensor, vector: Tensor) -> Tensor:
    return (matrix @ vector.unsqueeze(-1)).squeeze(-1)


def _batch_mahalanobis(scale_tril: Tensor, diff: Tensor) -> Tensor:
    """‖L⁻¹ diff‖² over the last dim, for a batch of lower-triangular L: diff's squared
    Mahalanobis length under Σ = L Lᵀ, by one triangular solve (no inverse)."""
    shape = tuple(diff.shape)
    k = shape[-1]
    tril = scale_tril.expand(shape[:-1] + (k, k))
    solved = solve_triangular(tril, diff.unsqueeze(-1), upper=False).squeeze(-1)
    return solved.pow(2).sum(-1)


def _precision_to_scale_tril(precision: Tensor) -> Tensor:
    # L with L Lᵀ = P⁻¹, without inverting P: from the Cholesky factor of P with reversed axes
    factor = cholesky(precision.flip(-2, -1))
    inverse_tril = factor.flip(-2, -1).transpose(-2, -1)
    identity = eye(precision.shape[-1], dtype=precision.dtype, device=precision.device)
    return solve_triangular(inverse_tril, identity.expand(tuple(inverse_tril.shape)), upper=False)


class MultivariateNormal(Distribution):
    """torch.distributions.MultivariateNormal(loc, covariance_matrix=None, precision_matrix=None, scale_tril=None)."""

    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None) -> None:
        if loc.dim() < 1:
            raise in_torchs_words(ValueError("loc must be at least one-dimensional."))
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise in_torchs_words(ValueError(
                "Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified."))
        matrix = next(m for m in (scale_tril, covariance_matrix, precision_matrix) if m is not None)
        if matrix.dim() < 2:
            # torch's three texts: only scale_tril's says "matrix"
            name = ("scale_tril matrix" if scale_tril is not None else
                    "covariance_matrix" if covariance_matrix is not None else "precision_matrix")
            raise in_torchs_words(ValueError(
                f"{name} must be at least two-dimensional, with optional leading batch dimensions"))
        batch_shape = tuple(np.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1])))
        k = loc.shape[-1]
        # the matrix keeps its own size (torch's expand(batch_shape + (-1, -1))): one that does not
        # fit loc fails the constraint check with torch's ValueError, not an expand error
        if scale_tril is not None:
            self.scale_tril = scale_tril.expand(batch_shape + (-1, -1))
        elif covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(batch_shape + (-1, -1))
        else:
            self.precision_matrix = precision_matrix.expand(batch_shape + (-1, -1))
        self.loc = loc.expand(batch_shape + (k,))
        super().__init__(batch_shape, (k,), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)

    def __getattr__(self, name: str):
        # the two matrices not given, derived from L on first use
        if name == "scale_tril":
            value = self._unbroadcasted_scale_tril.expand(self._batch_shape + self._event_shape * 2)
        elif name == "covariance_matrix":
            tril = self.__dict__["_unbroadcasted_scale_tril"]
            value = (tril @ tril.transpose(-2, -1)).expand(self._batch_shape + self._event_shape * 2)
        elif name == "precision_matrix":
            value = cholesky_inverse(self.__dict__["_unbroadcasted_scale_tril"]).expand(
                self._batch_shape + self._event_shape * 2)
        else:
            raise AttributeError(f"'MultivariateNormal' object has no attribute '{name}'")
        self.__dict__[name] = value
        return value

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(self._batch_shape + self._event_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        eps = randn(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + _batch_mv(self._unbroadcasted_scale_tril, eps)

    def _half_log_det(self) -> Tensor:
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        diff = value - self.loc
        mahalanobis = _batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        k = self._event_shape[0]
        return -0.5 * (k * math.log(2 * math.pi) + mahalanobis) - self._half_log_det()

    def entropy(self) -> Tensor:
        k = self._event_shape[0]
        entropy = 0.5 * k * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return entropy if not self._batch_shape else entropy.expand(self._batch_shape)
