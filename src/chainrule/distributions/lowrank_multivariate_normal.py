"""torch.distributions.lowrank_multivariate_normal: LowRankMultivariateNormal(loc, cov_factor,
cov_diag), the Gaussian with covariance W Wᵀ + diag(D) for a k x m factor W (m ≪ k).

Densities use the m x m capacitance matrix C = I + Wᵀ D⁻¹ W (Woodbury and the matrix
determinant lemma), so nothing k x k is factorised unless asked for (``scale_tril``)."""

from __future__ import annotations

import math

from .._naming import in_torchs_words
from ..ops.creation import eye
from ..ops.decompositions import linalg_cholesky as cholesky
from ..ops.decompositions import linalg_solve_triangular as solve_triangular
from ..ops.random import randn
from ..ops.shape import broadcast_tensors
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution
from .multivariate_normal import _batch_mahalanobis, _batch_mv
from .utils import lazy_property

__all__ = ["LowRankMultivariateNormal"]


def _with_identity_added(matrix: Tensor) -> Tensor:
    return matrix + eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)


def _batch_capacitance_tril(W: Tensor, D: Tensor) -> Tensor:
    """The Cholesky factor of C = I + Wᵀ D⁻¹ W."""
    Wt_Dinv = W.mT / D.unsqueeze(-2)
    return cholesky(_with_identity_added(Wt_Dinv @ W))


def _batch_lowrank_logdet(W: Tensor, D: Tensor, capacitance_tril: Tensor) -> Tensor:
    """log det(W Wᵀ + D) = log det C + log det D."""
    return 2 * capacitance_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) + D.log().sum(-1)


def _batch_lowrank_mahalanobis(W: Tensor, D: Tensor, x: Tensor, capacitance_tril: Tensor) -> Tensor:
    """xᵀ (W Wᵀ + D)⁻¹ x = xᵀ D⁻¹ x - ‖L_C⁻¹ Wᵀ D⁻¹ x‖² (Woodbury)."""
    Wt_Dinv = W.mT / D.unsqueeze(-2)
    return (x.pow(2) / D).sum(-1) - _batch_mahalanobis(capacitance_tril, _batch_mv(Wt_Dinv, x))


class LowRankMultivariateNormal(Distribution):
    """torch.distributions.LowRankMultivariateNormal(loc, cov_factor, cov_diag)."""

    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None) -> None:
        if loc.dim() < 1:
            raise in_torchs_words(ValueError("loc must be at least one-dimensional."))
        event_shape = tuple(loc.shape[-1:])
        if cov_factor.dim() < 2:
            raise in_torchs_words(ValueError(
                "cov_factor must be at least two-dimensional, with optional leading batch dimensions"))
        if tuple(cov_factor.shape[-2:-1]) != event_shape:
            raise in_torchs_words(ValueError(
                f"cov_factor must be a batch of matrices with shape {event_shape[0]} x m"))
        if tuple(cov_diag.shape[-1:]) != event_shape:
            raise in_torchs_words(ValueError(f"cov_diag must be a batch of vectors with shape {loc.shape[-1:]}"))
        try:
            loc_, self.cov_factor, cov_diag_ = broadcast_tensors(loc.unsqueeze(-1), cov_factor, cov_diag.unsqueeze(-1))
        except RuntimeError as error:
            raise ValueError(f"Incompatible batch shapes: loc {loc.shape}, cov_factor {cov_factor.shape}, "
                             f"cov_diag {cov_diag.shape}") from error
        self.loc = loc_[..., 0]
        self.cov_diag = cov_diag_[..., 0]
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        self._capacitance_tril = _batch_capacitance_tril(cov_factor, cov_diag)
        super().__init__(self.loc.shape[:-1], event_shape, validate_args=validate_args)

    def _expanded_matrix(self, matrix: Tensor) -> Tensor:
        return matrix.expand(tuple(self._batch_shape) + tuple(self._event_shape) * 2)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @lazy_property
    def variance(self) -> Tensor:
        variance = self._unbroadcasted_cov_factor.pow(2).sum(-1) + self._unbroadcasted_cov_diag
        return variance.expand(tuple(self._batch_shape) + tuple(self._event_shape))

    @lazy_property
    def scale_tril(self) -> Tensor:
        # W Wᵀ + D = D^½ (I + D^-½ W Wᵀ D^-½) D^½, and the middle factor's eigenvalues are at
        # least 1: a well-conditioned Cholesky however small D is (GPML, section 3.4.3)
        diag_sqrt = self._unbroadcasted_cov_diag.sqrt().unsqueeze(-1)
        scaled = self._unbroadcasted_cov_factor / diag_sqrt
        return self._expanded_matrix(diag_sqrt * cholesky(_with_identity_added(scaled @ scaled.mT)))

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        factor = self._unbroadcasted_cov_factor
        return self._expanded_matrix(factor @ factor.mT + self._unbroadcasted_cov_diag.diag_embed())

    @lazy_property
    def precision_matrix(self) -> Tensor:
        # Woodbury: (W Wᵀ + D)⁻¹ = D⁻¹ - D⁻¹ W C⁻¹ Wᵀ D⁻¹
        Wt_Dinv = self._unbroadcasted_cov_factor.mT / self._unbroadcasted_cov_diag.unsqueeze(-2)
        A = solve_triangular(self._capacitance_tril, Wt_Dinv, upper=False)
        return self._expanded_matrix(self._unbroadcasted_cov_diag.reciprocal().diag_embed() - A.mT @ A)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps_w = randn(shape[:-1] + tuple(self.cov_factor.shape[-1:]), dtype=self.loc.dtype, device=self.loc.device)
        eps_d = randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return (self.loc + _batch_mv(self._unbroadcasted_cov_factor, eps_w)
                + self._unbroadcasted_cov_diag.sqrt() * eps_d)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        mahalanobis = _batch_lowrank_mahalanobis(W, D, value - self.loc, self._capacitance_tril)
        log_det = _batch_lowrank_logdet(W, D, self._capacitance_tril)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + log_det + mahalanobis)

    def entropy(self) -> Tensor:
        log_det = _batch_lowrank_logdet(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag,
                                        self._capacitance_tril)
        entropy = 0.5 * (self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + log_det)
        return entropy if len(self._batch_shape) == 0 else entropy.expand(tuple(self._batch_shape))
