"""torch.distributions.utils: the probability/logit conversions, ``lazy_property``, the
lower-triangle vectorisation and ``broadcast_all`` (which lives in ``distribution.py``)."""

from __future__ import annotations

import functools

import numpy as np

from ..autograd.grad_mode import enable_grad
from ..ops.creation import empty
from ..ops.elementwise import log, log1p, sigmoid
from ..ops.reduce import softmax
from ..tensor import Tensor
from .distribution import broadcast_all

__all__ = ["broadcast_all", "logits_to_probs", "clamp_probs", "probs_to_logits", "lazy_property",
           "tril_matrix_to_vec", "vec_to_tril_matrix"]


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities clamped to [eps, 1 - eps] (eps of their dtype), so that their logits are finite."""
    eps = float(np.finfo(probs._data.dtype).eps)
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities from logits: the sigmoid (``is_binary``) or the softmax over the last dim."""
    return sigmoid(logits) if is_binary else softmax(logits, -1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Logits from (clamped) probabilities: log(p / (1 - p)) when ``is_binary``, else log p."""
    clamped = clamp_probs(probs)
    return log(clamped) - log1p(-clamped) if is_binary else log(clamped)


class lazy_property:  # noqa: N801 - torch's name
    """A method computed once per instance on first access (with grad enabled, so a first use
    inside no_grad still records the graph) and then stored as the instance's attribute."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped
        functools.update_wrapper(self, wrapped)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        with enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value


def _sum_rightmost(value, dims: int):
    """``value`` summed over its rightmost ``dims`` dims (none: itself). torch keeps it here, and
    libraries built on torch.distributions (Pyro's transforms) import it from here."""
    if dims <= 0 or not isinstance(value, Tensor):
        return value
    return value.reshape(tuple(value.shape[:value.dim() - dims]) + (-1,)).sum(-1)


def _standard_normal(shape, dtype, device) -> Tensor:
    """A tensor of standard-normal draws of ``shape``: torch keeps this private helper here, and
    GPyTorch's ``MultivariateNormal.rsample`` imports it from here."""
    return empty(shape, dtype=dtype, device=device).normal_()


def _tril_mask(n: int, diag: int) -> np.ndarray:
    arange = np.arange(n)
    return arange < arange.reshape(-1, 1) + (diag + 1)


def tril_matrix_to_vec(mat: Tensor, diag: int = 0) -> Tensor:
    """The lower triangle (below diagonal ``diag``) of a (batch of) D x D matrices, row by row."""
    n = mat.shape[-1]
    if diag < -n or diag >= n:
        raise ValueError(f"diag ({diag}) provided is outside [{-n}, {n - 1}].")
    rows, cols = np.nonzero(_tril_mask(n, diag))
    return mat[..., Tensor._make(rows).to(mat.device), Tensor._make(cols).to(mat.device)]


def vec_to_tril_matrix(vec: Tensor, diag: int = 0) -> Tensor:
    """The inverse of ``tril_matrix_to_vec``: D x D matrices with the vector's entries in their
    lower triangle, row by row, zeros elsewhere."""
    # D from the positive root of D² + (1 + 2 diag) D - |diag| (diag + 1) - 2 len = 0
    length = vec.shape[-1]
    n = (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * length + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    if round(n) - n > float(np.finfo(vec._data.dtype).eps):
        raise ValueError(f"The size of last dimension is {length} which cannot be expressed as "
                         "the lower triangular part of a square D x D matrix.")
    n = round(n)
    flat = vec.new_zeros(tuple(vec.shape[:-1]) + (n * n,))
    index = Tensor._make(np.nonzero(_tril_mask(n, diag).reshape(-1))[0]).to(vec.device)
    flat = flat.index_copy(-1, index, vec)
    return flat.reshape(tuple(vec.shape[:-1]) + (n, n))
