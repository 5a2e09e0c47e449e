"""torch.distributions.wishart: Wishart(df, covariance_matrix | precision_matrix | scale_tril),
the law of Σₖ xₖxₖᵀ for df Gaussian vectors of covariance Σ; reparameterised sampling by the
Bartlett decomposition (chi-square diagonal, Gaussian below it)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._naming import in_torchs_words
from ..ops.decompositions import cholesky_inverse, cholesky_solve
from ..ops.decompositions import linalg_cholesky as cholesky
from ..ops.elementwise import where
from ..ops.linalg import slogdet
from ..ops.random import randn
from ..ops.shape import broadcast_shapes
from ..ops.special_functions import mvlgamma
from ..tensor import Tensor
from . import constraints
from .exp_family import ExponentialFamily
from .gamma import Chi2
from .multivariate_normal import _precision_to_scale_tril
from .utils import lazy_property, vec_to_tril_matrix

__all__ = ["Wishart"]

_LOG_2 = math.log(2)
# the Bartlett draws that come out singular (possible for ndim - 1 < df < ndim) are redrawn up
# to this many times, as torch's default max_try_correction
_MAX_TRY_CORRECTION = 10


def _mvdigamma(x: Tensor, p: int) -> Tensor:
    """The multivariate digamma Σᵢ ψ(x - i/2), i = 0..p-1 (the derivative of mvlgamma)."""
    if not bool((x > (p - 1) / 2).all()):
        raise AssertionError("Wrong domain for multivariate digamma function.")
    halves = x.new_tensor(np.arange(p) / 2)
    return (x.unsqueeze(-1) - halves).digamma().sum(-1)


class Wishart(ExponentialFamily):
    """torch.distributions.Wishart(df, covariance_matrix=None, precision_matrix=None, scale_tril=None)."""

    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    @property
    def arg_constraints(self) -> dict:
        return {"covariance_matrix": constraints.positive_definite, "precision_matrix": constraints.positive_definite,
                "scale_tril": constraints.lower_cholesky, "df": constraints.greater_than(self.event_shape[-1] - 1)}

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None) -> None:
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise in_torchs_words(AssertionError(
                "Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified."))
        param = next(p for p in (covariance_matrix, precision_matrix, scale_tril) if p is not None)
        # torch's Wishart raises its refusals bare, as do its broadcast_shapes and the checks below
        if param.dim() < 2:
            raise in_torchs_words(
                ValueError("scale_tril must be at least two-dimensional, with optional leading batch dimensions"))
        if isinstance(df, Tensor):
            try:
                batch_shape = tuple(broadcast_shapes(param.shape[:-2], df.shape))
            except RuntimeError as error:
                raise in_torchs_words(error) from None
            self.df = df.expand(batch_shape)
        else:
            batch_shape = tuple(param.shape[:-2])
            self.df = param.new_tensor(df)
        event_shape = tuple(param.shape[-2:])
        if bool((self.df <= event_shape[-1] - 1).any()):
            raise in_torchs_words(
                ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {event_shape[-1] - 1}."))
        if scale_tril is not None:
            self.scale_tril = param.expand(batch_shape + (-1, -1))
        elif covariance_matrix is not None:
            self.covariance_matrix = param.expand(batch_shape + (-1, -1))
        else:
            self.precision_matrix = param.expand(batch_shape + (-1, -1))
        if bool((self.df < event_shape[-1]).any()):
            warnings.warn("Low df values detected. Singular samples are highly likely to occur for ndim - 1 < df < ndim.",
                          stacklevel=2)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)
        # the Bartlett factor's squared diagonal: χ²(df - i) for row i
        self._dist_chi2 = Chi2(df=self.df.unsqueeze(-1) - self.df.new_tensor(np.arange(event_shape[-1])))

    def _matrix_shape(self) -> tuple:
        return tuple(self._batch_shape) + tuple(self._event_shape)

    @lazy_property
    def scale_tril(self) -> Tensor:
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        tril = self._unbroadcasted_scale_tril
        return (tril @ tril.transpose(-2, -1)).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self) -> Tensor:
        return cholesky_inverse(self._unbroadcasted_scale_tril).expand(self._matrix_shape())

    def _df_matrix(self, df: Tensor) -> Tensor:
        return df.reshape(tuple(self._batch_shape) + (1, 1))

    @property
    def mean(self) -> Tensor:
        return self._df_matrix(self.df) * self.covariance_matrix

    @property
    def mode(self) -> Tensor:
        factor = self.df - self.covariance_matrix.shape[-1] - 1
        return self._df_matrix(where(factor <= 0, math.nan, factor)) * self.covariance_matrix

    @property
    def variance(self) -> Tensor:
        covariance = self.covariance_matrix
        diagonal = covariance.diagonal(dim1=-2, dim2=-1)
        return self._df_matrix(self.df) * (covariance.pow(2) + diagonal.unsqueeze(-1) * diagonal.unsqueeze(-2))

    def _bartlett_sampling(self, sample_shape=()) -> Tensor:
        eps = float(np.finfo(self._unbroadcasted_scale_tril._data.dtype).eps)
        diagonal = self._dist_chi2.rsample(sample_shape).sqrt().clamp(min=eps)
        # one normal per entry below the diagonal, drawn row by row, as torch draws them (a draw for
        # every entry of the matrix would leave torch's stream)
        p = self._event_shape[-1]
        normals = randn(tuple(sample_shape) + tuple(self._batch_shape) + (p * (p - 1) // 2,), dtype=diagonal.dtype,
                        device=diagonal.device)
        below = vec_to_tril_matrix(normals, diag=-1)
        chol = self._unbroadcasted_scale_tril @ (below + diagonal.diag_embed())
        return chol @ chol.transpose(-2, -1)

    def rsample(self, sample_shape=(), max_try_correction=None) -> Tensor:
        """Bartlett draws, redrawn up to ``max_try_correction`` times (default 10), with a warning,
        where torch's check calls them singular; a redraw may still be singular (log_prob -inf).

        torch 2.13 tests the first draw with ``support.check`` not negated: a valid draw (nearly
        every one) counts as singular, warns "Singular sample detected." and is replaced by a second
        draw, which is the sample it returns. This does the same, for torch's numbers and warning."""
        max_try_correction = _MAX_TRY_CORRECTION if max_try_correction is None else max_try_correction
        batch_dims = tuple(range(-1, -len(self._batch_shape) - 1, -1))
        sample = self._bartlett_sampling(sample_shape)
        is_singular = self.support.check(sample)
        if self._batch_shape:
            is_singular = is_singular.amax(batch_dims)
        if bool(is_singular.any()):
            warnings.warn("Singular sample detected.", stacklevel=2)
            for _ in range(max_try_correction):
                sample_new = self._bartlett_sampling(is_singular[is_singular].shape)
                # (a copy of the mask, which changes below: torch's index_put saves the mask itself,
                # so its backward refuses any rsample with a sample or batch shape; this one does not)
                sample[is_singular.clone()] = sample_new
                is_singular_new = ~self.support.check(sample_new)
                if self._batch_shape:
                    is_singular_new = is_singular_new.amax(batch_dims)
                is_singular[is_singular.clone()] = is_singular_new
                if not bool(is_singular.any()):
                    break
        return sample

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        nu = self.df
        p = self._event_shape[-1]
        half_log_det_scale = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        trace = cholesky_solve(value, self._unbroadcasted_scale_tril).diagonal(dim1=-2, dim2=-1).sum(-1)
        return (-nu * (p * _LOG_2 / 2 + half_log_det_scale) - mvlgamma(nu / 2, p)
                + (nu - p - 1) / 2 * slogdet(value)[1] - trace / 2)

    def entropy(self) -> Tensor:
        nu = self.df
        p = self._event_shape[-1]
        half_log_det_scale = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return ((p + 1) * (p * _LOG_2 / 2 + half_log_det_scale) + mvlgamma(nu / 2, p)
                - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p) + nu * p / 2)

    @property
    def _natural_params(self) -> tuple:
        p = self._event_shape[-1]
        return -self.precision_matrix / 2, (self.df - p - 1) / 2

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        p = self._event_shape[-1]
        return (y + (p + 1) / 2) * (-slogdet(-2 * x)[1] + _LOG_2 * p) + mvlgamma(y + (p + 1) / 2, p)
