"""torch.nn.utils.parametrizations: weight norm and spectral norm as parametrizations
(``nn.utils.parametrize``), the forms torch recommends over the older hook-based ones.

- ``weight_norm``: ``weight = g · v / ‖v‖`` with ``g`` = ``original0``, ``v`` = ``original1``.
- ``spectral_norm``: ``weight = W / σ(W)``, σ estimated by power iteration on the buffers
  ``_u``/``_v`` (one step per forward in training mode, none in eval mode), as torch's.
- ``orthogonal``: ``weight = base · map(X)``, ``map`` sending the unconstrained ``X`` to an
  orthogonal matrix (matrix exponential or Cayley transform of a skew-symmetric matrix, or a
  product of Householder reflections); ``base`` is the assigned weight made orthogonal.
"""

from __future__ import annotations

from ..._dtype import finfo_of
from ...autograd.grad_mode import no_grad
from ...ops import creation as _creation
from ...ops import decompositions as _decompositions
from ...ops import linalg as _linalg
from ...ops import random as _random
from ...ops import shape as _shape
from ...ops.elementwise import allclose
from ...ops.nn_toplevel import _weight_norm, norm_except_dim
from ...tensor import Tensor
from .. import functional as F
from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..modules.module import Module
from . import parametrize

__all__ = ["orthogonal", "weight_norm", "spectral_norm"]


def weight_as_matrix(weight, dim: int):
    """``weight`` as the matrix whose spectral norm is taken: ``dim`` first, the rest flattened."""
    if dim != 0:
        weight = weight.permute(dim, *(d for d in range(weight.dim()) if d != dim))
    return weight.reshape(weight.shape[0], -1)


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as magnitude × direction; returns the module. A state_dict
    saved under the older ``nn.utils.weight_norm`` (``<name>_g``, ``<name>_v``) still loads."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def load_older_keys(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module._register_load_state_dict_pre_hook(load_older_keys)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.dim()
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            matrix = self._as_matrix(weight)
            rows, cols = matrix.shape
            u = matrix.new_empty(rows).normal_(0, 1)
            v = matrix.new_empty(cols).normal_(0, 1)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            self._power_method(matrix, 15)  # start from a converged estimate

    def _as_matrix(self, weight: Tensor) -> Tensor:
        return weight_as_matrix(weight, self.dim)

    def _power_method(self, matrix: Tensor, iterations: int) -> None:
        # out=, as torch writes it: torch's grad transforms (jacrev of a module in training mode)
        # accept an out= write into these captured buffers, where they refuse an in-place copy_
        with no_grad():
            for _ in range(iterations):
                F.normalize(_linalg.mv(matrix, self._v), dim=0, eps=self.eps, out=self._u)
                F.normalize(_linalg.mv(matrix.t(), self._u), dim=0, eps=self.eps, out=self._v)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.dim() == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        matrix = self._as_matrix(weight)
        if self.training:
            self._power_method(matrix, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = _linalg.vdot(u, _linalg.mv(matrix, v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its largest singular value (Miyato et al., 2018); ``dim``
    defaults to the output-channel dim (1 for transposed convolutions, else 0)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


def _orthogonal_factor(matrix: Tensor) -> Tensor:
    """The Q of ``matrix = QR`` (a tall matrix, or a batch) with R's diagonal made non-negative,
    so that the factor is unique: Householder reflectors from geqrf, columns signed by diag(R)."""
    reflectors, tau = _linalg.geqrf(matrix)
    q = _decompositions.linalg_householder_product(reflectors, tau)
    return q * reflectors.diagonal(dim1=-2, dim2=-1).sgn().unsqueeze(-2)


class _Orthogonal(Module):
    """``forward(X)``: an orthogonal matrix of X's shape; with ``use_trivialization`` it is
    ``base @ map(X)``, where ``base`` (a buffer) is the last weight assigned, made orthogonal, and
    X starts at the point the map sends to the identity — so assigning a weight keeps it."""

    def __init__(self, weight: Tensor, orthogonal_map: str, *, use_trivialization: bool = True) -> None:
        super().__init__()
        if weight.is_complex() and orthogonal_map == "householder":
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        transposed = X.size(-2) < X.size(-1)
        if transposed:  # work on the tall form n ≥ k
            X = X.mT
        n, k = X.size(-2), X.size(-1)
        if self.orthogonal_map == "householder":
            reflectors = X.tril(diagonal=-1)
            # each column v_i below the unit diagonal gives the reflection I - 2 v vᴴ / (vᴴ v)
            tau = 2.0 / (1.0 + (reflectors * reflectors).sum(dim=-2))
            Q = _decompositions.linalg_householder_product(reflectors, tau)
            # X's diagonal (±1, never trained through) chooses each column's sign
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        else:
            X = X.tril()
            if n != k:  # the n×k lower trapezoid embedded in an n×n matrix
                X = _shape.cat([X, X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)], dim=-1)
            skew = X - _linalg._adjoint(X)
            if self.orthogonal_map == "matrix_exp":
                Q = _decompositions.matrix_exp(skew)
            else:  # Cayley: (I - A/2)⁻¹ (I + A/2)
                identity = _creation.eye(n, dtype=skew.dtype, device=skew.device)
                Q = _linalg.solve(identity - 0.5 * skew, identity + 0.5 * skew)
            if n != k:
                Q = Q[..., :k]
        if hasattr(self, "base"):
            Q = self.base @ Q
        return Q.mT if transposed else Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        with no_grad():
            return self._right_inverse(Q)

    def _right_inverse(self, Q: Tensor) -> Tensor:
        if Q.shape != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {Q.shape}.")
        given = Q
        if Q.size(-2) < Q.size(-1):
            Q = Q.mT
        n, k = Q.size(-2), Q.size(-1)
        if not hasattr(self, "base"):
            if self.orthogonal_map != "householder":
                raise NotImplementedError("It is not possible to assign to the matrix exponential "
                                          "or the Cayley parametrizations when use_trivialization=False.")
            reflectors, tau = _linalg.geqrf(Q)
            # forward reads the diagonal as column signs: R's diagonal signs, flipped where LAPACK
            # used no reflection (tau exactly 0), so that forward gives back Q
            diagonal = reflectors.diagonal(dim1=-2, dim2=-1)
            diagonal.copy_(diagonal.sign() * (1 - 2 * (tau == 0.0).to(diagonal.dtype)))
            return reflectors.mT if given.size(-2) < given.size(-1) else reflectors
        if n == k:
            identity = _creation.eye(k, dtype=Q.dtype, device=Q.device)
            tolerance = 10.0 * n * float(finfo_of(Q._data.dtype).eps)
            Q = Q.clone() if allclose(_linalg._adjoint(Q) @ Q, identity, atol=tolerance) else _orthogonal_factor(Q)
        else:  # completed to a square matrix by random columns, then made orthogonal
            completion = _random.randn(*(Q.shape[:-2] + (n, n - k)), dtype=Q.dtype, device=Q.device)
            Q = _orthogonal_factor(_shape.cat([Q, completion], dim=-1))
        self.base = Q
        # the map sends -I (in the weight's own shape) to the identity: householder's signs are X's diagonal
        start = _creation.zeros_like(given)
        start.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
        return start


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Constrain ``module.<name>`` (a matrix or a batch of matrices) to be orthogonal (unitary when
    complex): ``orthogonal_map`` is ``"matrix_exp"`` (the default for square or complex weights),
    ``"cayley"`` or ``"householder"`` (the default otherwise). torch.nn.utils.parametrizations.orthogonal."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        square = weight.size(-2) == weight.size(-1)
        orthogonal_map = "matrix_exp" if square or weight.is_complex() else "householder"
    if orthogonal_map not in ORTHOGONAL_MAPS:
        raise ValueError('orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    parametrization = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, parametrization, unsafe=True)
    return module
