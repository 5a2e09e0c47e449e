"""Matrix decompositions and what is built on them: cholesky, triangular solves, qr, eigh, svd, lu,
pinv, lstsq, matrix_rank, cond, matrix_exp, vander.

Forwards run on the array module's LAPACK (``xp.linalg``) and return torch's layouts (LAPACK's
column-major factors). Each rule is torch's (tools/autograd/derivatives.yaml and
FunctionsManual.cpp) written with chainrule ops, so ``create_graph=True`` records it and second
derivatives come for free. Complex matrices follow torch's convention (``.grad`` is dL/d conj(A)):
the holomorphic maps (triangular solves, LU) take conjugate transposes where real ones transpose,
and the rules of the factorisations that conjugate (cholesky, qr, svd, eigh, pinv) are torch's
complex forms, which reduce to the real ones for real input.

torch's top-level names (``torch.cholesky``, ``torch.qr``, ``torch.svd``, ...) are in ``__all__``;
the ``linalg_*`` functions are exposed by ``chainrule.linalg`` under torch.linalg's names.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _config, _dtype, return_types
from .._backend import array_module, broadcast_solve, checked_linalg, has_values
from .._opmath import cpu_autocast_policy
from ..autograd import function as _function
from ..autograd.function import Function, SavedValue, ctx_value, name_node, saved
from ..tensor import Tensor, _check_tensor, honours_out, write_composite_out, write_out
from ._arg_parser import check_as, check_bool, check_int, check_str, out_rule
from .elementwise import conjugate_rule
from .linalg import (
    _INV_LOW_PRECISION,
    _LU_CPU,
    _SLOGDET_LOW_PRECISION,
    _adjoint,
    _broadcast_batch,
    _check_square,
    _checked_lu_pivots,
    _column_major,
    _cross,
    _kernel_refusal,
    _mat,
    _refuses_low_precision,
    matmul,
)

_SVD_CPU = _kernel_refusal("linalg_svd_cpu")
_FLOAT_AND_DOUBLE_ONLY = (RuntimeError, "This function doesn't handle types other than float and double")
_PINV_LOW_PRECISION = (RuntimeError, "linalg.pinv({dtype}{{{shape}}}): expected a tensor with 2 or more dimensions of float, "
                                     "double, cfloat or cdouble types")

__all__ = ["cholesky", "cholesky_solve", "cholesky_inverse", "qr", "svd", "pinverse", "matrix_exp", "orgqr", "lu_unpack",
           "lu", "lu_solve", "triangular_solve", "nuclear_norm", "frobenius_norm", "svd_lowrank", "pca_lowrank"]
__not_methods__ = {"lu_unpack", "nuclear_norm", "frobenius_norm", "svd_lowrank", "pca_lowrank"}
# torch removed Tensor.solve and Tensor.lstsq in 1.9: they raise its message
__tensor_methods__ = {"solve": "_removed_solve", "lstsq": "_removed_lstsq", "lu": "_lu_method"}


def _linalg_error(message: str) -> Exception:
    from ..linalg import LinAlgError  # the namespace module defines torch.linalg.LinAlgError

    return LinAlgError(message)


def _const(array) -> Tensor:
    return Tensor._make(array)


def _eye_like(x: Tensor, n: int) -> Tensor:
    xp = array_module(x._data)
    return _const(xp.eye(n, dtype=x._data.dtype))


def _adjoint_array(xp, matrices):
    """The conjugate transpose of the last two axes (the transpose, without a copy, when real)."""
    swapped = matrices.swapaxes(-1, -2)
    return xp.conj(swapped) if swapped.dtype.kind == "c" else swapped


def _diag_embed(v: Tensor) -> Tensor:
    """(..., k) -> (..., k, k) with v on the diagonal (differentiable: a product with the identity)."""
    return v.unsqueeze(-1) * _eye_like(v, v._data.shape[-1])


def _check_float(A: Tensor, op: str) -> None:
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}(): argument 'A' must be Tensor, not {type(A).__name__}")
    if A._data.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if A._data.dtype.kind not in "fVc":
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got "
                           f"{_dtype.scalar_name(A.dtype)}")





def _check_same_dtype(A: Tensor, B: Tensor) -> None:
    """torch's message for cholesky_solve's B and A of two dtypes."""
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type "
                           f"{_dtype.scalar_name(B.dtype)} and A of type {_dtype.scalar_name(A.dtype)} instead.")


def _copy_out(result, out, op: str, composite: bool = False):
    """torch's ``out=`` (``write_out``) for one result or a tuple of them; returns ``out``.
    ``composite``: torch's op is composite, its out= a differentiable copy (``write_composite_out``)."""
    if out is None:
        return result
    if composite and not isinstance(result, tuple):
        return write_composite_out(result, out, op)
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise TypeError(f"{op}(): argument 'out' must be a tuple of {len(result)} Tensors")
        for target, value in zip(out, result):
            write_out(value, target, op)
        return type(result)(*out)
    return write_out(result, out, op)


# ---------------------------------------------------------------- triangular solves
def _solve_triangular_array(xp, A, B, upper: bool, left: bool, unitriangular: bool):
    """X with op(A) X = B (left) or X op(A) = B, reading only A's triangle (and ones on its
    diagonal when unitriangular); batch dims broadcast."""
    tri = xp.triu(A) if upper else xp.tril(A)
    if unitriangular:
        n = A.shape[-1]
        tri = tri * (1 - xp.eye(n, dtype=A.dtype)) + xp.eye(n, dtype=A.dtype)
    if left:
        return _triangular_solve_array(xp, tri, B, upper)
    # X A = B is Aᵀ Xᵀ = Bᵀ, and Aᵀ has the other triangle
    return _triangular_solve_array(xp, tri.swapaxes(-1, -2), B.swapaxes(-1, -2), not upper).swapaxes(-1, -2)


def _triangular_solve_array(xp, tri, B, upper: bool):
    """X with tri X = B. LAPACK's general solve refuses a singular matrix, but torch's triangular
    kernel (BLAS trsm) never checks: a zero on the diagonal gives inf and nan. So a singular
    triangle is solved by substitution, dividing by its zeros as trsm does."""
    try:
        return broadcast_solve(xp, tri, B)
    except xp.linalg.LinAlgError:
        pass
    batch = xp.broadcast_shapes(tri.shape[:-2], B.shape[:-2])
    tri = xp.broadcast_to(tri, batch + tri.shape[-2:])
    x = xp.array(xp.broadcast_to(B, batch + B.shape[-2:]), dtype=xp.result_type(tri, B))
    n = tri.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in (range(n - 1, -1, -1) if upper else range(n)):
            solved = slice(i + 1, n) if upper else slice(0, i)
            x[..., i, :] = (x[..., i, :] - (tri[..., i:i + 1, solved] @ x[..., solved, :])[..., 0, :]) / tri[..., i, i, None]
    return x


def _triangle(x: Tensor, upper: bool, strict: bool) -> Tensor:
    offset = (1 if upper else -1) if strict else 0
    return x.triu(offset) if upper else x.tril(offset)


class SolveTriangular(Function):
    _array_forward = True
    node_name = "LinalgSolveTriangularBackward0"
    label = "solve_triangular"
    rule = "X = A⁻¹B: ∂/∂B = A⁻ᵀ G, ∂/∂A = -tri((∂/∂B) Xᵀ) (X = BA⁻¹: ∂/∂B = G A⁻ᵀ, ∂/∂A = -tri(Xᵀ ∂/∂B))"
    formula = "solve_triangular({0}, {1})"
    saved_attributes = {"_saved_left": SavedValue(lambda node: node.options[1]), "_saved_result": saved(1),
                        "_saved_self": saved(0), "_saved_unitriangular": SavedValue(lambda node: node.options[2]),
                        "_saved_upper": SavedValue(lambda node: node.options[0])}

    @staticmethod
    def forward(ctx, A, B, upper, left, unitriangular):
        xp = array_module(A)
        # torch's kernel solves in A's dtype, whatever B's (B's gradient returns in B's dtype)
        out = _column_major(_solve_triangular_array(xp, A, B.astype(A.dtype, copy=False), upper, left, unitriangular))
        ctx.options = (upper, left, unitriangular)
        ctx.save_for_backward(A, out)  # (X whatever needs a gradient, as torch's node keeps it)
        return out

    @staticmethod
    @conjugate_rule  # holomorphic in A and B: for complex ones, Aᵀ becomes Aᴴ and Xᵀ becomes Xᴴ
    def backward(ctx, grad):
        A, x = ctx.saved_values
        upper, left, unitriangular = ctx.options
        # the transposed system has the other triangle
        grad_b = SolveTriangular.apply(A.mT, grad, upper=not upper, left=left, unitriangular=unitriangular)
        grad_a = None
        if ctx.needs_input_grad[0]:
            # only A's triangle was read (without its diagonal when unitriangular)
            product = _mat(grad_b, x.mT) if left else _mat(x.mT, grad_b)
            grad_a = -_triangle(product, upper, unitriangular)
        return grad_a, (grad_b if ctx.needs_input_grad[1] else None)


@_refuses_low_precision(_kernel_refusal("triangular_solve_cpu"))
def linalg_solve_triangular(input: Tensor, B: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False,
                            out=None) -> Tensor:
    """torch.linalg.solve_triangular: X with ``A X = B`` (``X A = B`` when ``left=False``) for a
    triangular A (its other triangle is not read); A (..., n, n), B (..., n, k) or (..., k, n),
    batch dims broadcast."""
    check_bool(upper, "linalg_solve_triangular", "upper")
    check_bool(left, "linalg_solve_triangular", "left")
    check_bool(unitriangular, "linalg_solve_triangular", "unitriangular")
    A = input  # torch's Python binding takes these keyword names
    _check_tensor(B, "linalg_solve_triangular", "B", 2)
    _check_square(A, "linalg.solve_triangular", kernel="triangular_solve_cpu")
    if not isinstance(B, Tensor) or B._data.ndim < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 dimensions.")
    n, (rows, cols) = A._data.shape[-1], B._data.shape[-2:]
    if (rows if left else cols) != n:
        equation = "AX = B" if left else "XA = B"
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the equation {equation} "
                           f"({n}x{n} and {rows}x{cols})")
    result = SolveTriangular.apply(A, B, upper=bool(upper), left=bool(left), unitriangular=bool(unitriangular))
    return _copy_out(result, out, "linalg.solve_triangular")


# ---------------------------------------------------------------- cholesky
def _first_failing_order(xp, matrix) -> int:
    """The order k of the first leading minor that is not positive-definite (what LAPACK's potrf
    reports). A principal submatrix of a PD matrix is PD, so failure is monotone in k: bisect."""
    low, high = 1, matrix.shape[-1]
    while low < high:
        middle = (low + high) // 2
        if _factor(xp, matrix[:middle, :middle]) is None:
            high = middle
        else:
            low = middle + 1
    return low


def _factor(xp, matrix):
    """The lower Cholesky factor reading ``matrix``'s lower triangle, or None if not PD."""
    lower = xp.tril(matrix)
    symmetric = lower + _adjoint_array(xp, xp.tril(matrix, -1))  # Hermitian, for complex input
    try:
        with checked_linalg(xp):  # CuPy checks potrf's info only when asked; its failed factor is finite
            factor = xp.linalg.cholesky(symmetric)
    except xp.linalg.LinAlgError:
        return None
    # LAPACK stops at a NaN pivot (torch reports it as not positive-definite), NumPy returns the NaNs;
    # an infinite entry is left to _unblocked_factor, which follows torch's kernel through it
    if has_values(factor) and not bool(xp.isfinite(factor).all()):
        if bool(xp.isnan(factor).any()) or not bool(xp.isfinite(lower).all()):
            return None
    return factor


def _unblocked_factor(xp, matrix):
    """(factor, info) of one matrix with inf or NaN entries, column by column as LAPACK's potf2
    does, so the non-finite values spread as in torch: a NaN pivot fails, an infinite one roots to
    inf and scales its column by 1/inf = 0 (inf · 0 = NaN where that column holds an inf). The
    failing pivot stays unrooted and the rest of the lower triangle untouched, as _partial_factor."""
    factor = xp.tril(matrix).copy()
    for j in range(factor.shape[-1]):
        row = factor[j, :j]
        pivot = factor[j, j] - (row * xp.conj(row)).sum()
        if not bool(pivot.real > 0):  # False for NaN too
            factor[j, j] = pivot
            return factor, j + 1
        factor[j, j] = xp.sqrt(pivot.real)
        scale = 1 / factor[j, j]
        if factor.dtype == np.float32 and not bool(xp.isfinite(pivot)):
            scale = np.float32("nan")  # MKL's spotrf: its refined reciprocal of inf is NaN (0 · (2 - inf · 0))
        factor[j + 1:, j] = (factor[j + 1:, j] - factor[j + 1:, :j] @ xp.conj(row)) * scale
    return factor, 0


def _partial_factor(xp, matrix, k: int):
    """What unblocked LAPACK (potf2, which torch's CPU cholesky_ex runs for matrices up to about 100
    rows) leaves in a matrix whose minor of order ``k`` is not positive-definite: the first k - 1
    columns of the factor (down to the last row), the failing pivot a_kk - |l_k|² unrooted, and the
    input's lower triangle untouched below and right of it. Larger matrices go through torch's
    blocked potrf, whose leftovers differ (torch documents the factor as undefined there)."""
    partial = xp.tril(matrix).copy()
    j = k - 1
    if j > 0:
        leading = _factor(xp, matrix[:j, :j])
        below = xp.linalg.solve(leading, _adjoint_array(xp, matrix[j:, :j]))  # L21 = A21 L11⁻ᴴ
        partial[:j, :j] = leading
        partial[j:, :j] = _adjoint_array(xp, below)
        row = partial[j, :j]
        partial[j, j] = matrix[j, j] - (row * xp.conj(row)).sum()
    return partial


def _cholesky_with_info(xp, A):
    """(L, info) for a batch: info[i] = 0, or the order of the failing minor of matrix i, whose
    factor then holds LAPACK's partial result, as torch leaves it (see _partial_factor)."""
    batch = A.shape[:-2]
    factor = _factor(xp, A)
    info = np.zeros(batch, dtype=np.int32)
    if factor is not None:
        return factor, info
    flat = A.reshape((math.prod(A.shape[:-2]),) + A.shape[-2:])  # an explicit batch: -1 fails on size 0
    factors = xp.zeros_like(flat)
    flat_info = info.reshape(-1)
    for i in range(flat.shape[0]):
        one = _factor(xp, flat[i])
        if one is None and not bool(xp.isfinite(xp.tril(flat[i])).all()):
            factors[i], flat_info[i] = _unblocked_factor(xp, flat[i])
        elif one is None:
            k = flat_info[i] = _first_failing_order(xp, flat[i])
            factors[i] = _partial_factor(xp, flat[i], k)
        else:
            factors[i] = one
    return factors.reshape(A.shape), info


class Cholesky(Function):
    _array_forward = True
    node_name = "LinalgCholeskyExBackward0"
    label = "cholesky"
    rule = "∂/∂A = L⁻ᴴ Φ(Lᴴ G) L⁻¹, Φ makes the lower triangle Hermitian and halves the diagonal"
    formula = "cholesky({0})"
    saved_attributes = {"_saved_L": saved(0), "_saved_upper": ctx_value("upper")}

    @staticmethod
    def forward(ctx, A, upper, raise_errors, op):
        xp = array_module(A)
        # upper=True reads A's upper triangle: the lower factor of Aᴴ, conjugate-transposed
        factor, info = _cholesky_with_info(xp, _adjoint_array(xp, A) if upper else A)
        if raise_errors and info.any():
            where, order = _first_failure(info, A.ndim > 2)
            raise _linalg_error(
                f"{op}: {where}The factorization could not be completed because the input is not positive-definite "
                f"(the leading minor of order {order} is not positive-definite).")
        out = _column_major(_adjoint_array(xp, factor) if upper else factor)
        # (built on the device without a copy from the host when every factor exists)
        info = xp.asarray(info) if info.any() else xp.zeros(info.shape, dtype=info.dtype)
        ctx.upper = upper
        ctx.save_for_backward(out)
        ctx.mark_non_differentiable(info)
        return out, info

    @staticmethod
    def backward(ctx, grad, grad_info):
        (factor,) = ctx.saved_values
        lower, grad_lower = (_adjoint(factor), _adjoint(grad)) if ctx.upper else (factor, grad)
        # tril(Lᴴ G) sees only G's lower triangle; make it Hermitian, halving the diagonal
        phi = _mat(_adjoint(lower), grad_lower).tril()
        phi = 0.5 * (phi + _adjoint(phi.tril(-1)))
        grad_a = linalg_solve_triangular(_adjoint(lower), phi, upper=True, left=True)
        return linalg_solve_triangular(lower, grad_a, upper=False, left=False)


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("cholesky_cpu"))
def linalg_cholesky_ex(input: Tensor, *, upper: bool = False, check_errors: bool = False, out=None):
    """torch.linalg.cholesky_ex: ``(L, info)``; info (int32, batch shape) is 0 where the factor
    exists and the order of the first leading minor that is not positive-definite elsewhere."""
    check_bool(upper, "linalg_cholesky_ex", "upper")
    check_bool(check_errors, "linalg_cholesky_ex", "check_errors")
    A = input  # torch's Python binding takes these keyword names
    check_bool(upper, "linalg_cholesky_ex", "upper")
    _check_square(A, "linalg.cholesky")
    L, info = Cholesky.apply(A, upper=bool(upper), raise_errors=bool(check_errors), op="linalg.cholesky_ex")
    return _copy_out(return_types.linalg_cholesky_ex(L, info), out, "linalg.cholesky_ex")


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("cholesky_cpu"))
def linalg_cholesky(input: Tensor, *, upper: bool = False, out=None) -> Tensor:
    """torch.linalg.cholesky: L (..., n, n) lower triangular with ``A = L Lᵀ`` (U = Lᵀ with
    upper=True), reading only A's lower (upper) triangle; raises torch.linalg.LinAlgError when A
    is not positive-definite."""
    check_bool(upper, "linalg_cholesky", "upper")
    A = input  # torch's Python binding takes these keyword names
    check_bool(upper, "linalg_cholesky", "upper")
    _check_square(A, "linalg.cholesky")
    return _copy_out(Cholesky.apply(A, upper=bool(upper), raise_errors=True, op="linalg.cholesky")[0], out, "linalg.cholesky")


_CHOLESKY_SAVED = {"_saved_result": saved(0), "_saved_upper": ctx_value("upper")}


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("cholesky_cpu"))
def cholesky(input: Tensor, upper: bool = False, *, out=None) -> Tensor:
    """torch.cholesky (deprecated in torch for torch.linalg.cholesky, and warns once as torch does)."""
    check_bool(upper, "cholesky", "upper")
    _config.warn_once("torch.cholesky is deprecated in favor of torch.linalg.cholesky and will be removed in a "
                      "future PyTorch release.\nL = torch.cholesky(A)\nshould be replaced with\n"
                      "L = torch.linalg.cholesky(A)\nand\nU = torch.cholesky(A, upper=True)\nshould be replaced with\n"
                      "U = torch.linalg.cholesky(A).mH\nThis transform will produce equivalent results for all valid "
                      "(symmetric positive definite) inputs.")
    check_bool(upper, "cholesky", "upper")
    _check_square(input, "linalg.cholesky", kernel="cholesky_cpu")
    result = name_node(Cholesky.apply(input, upper=bool(upper), raise_errors=True, op="cholesky")[0],
                       "CholeskyBackward0", saved=_CHOLESKY_SAVED)
    return _copy_out(result, out, "cholesky")


class CholeskySolve(Function):
    _array_forward = True
    node_name = "CholeskySolveBackward0"
    label = "cholesky_solve"
    rule = "X = (LLᴴ)⁻¹B: ∂/∂B = (LLᴴ)⁻¹G, ∂/∂L = -(∂B Xᴴ + X ∂Bᴴ) L"
    formula = "cholesky_solve({0}, {1})"
    saved_attributes = {"_saved_input2": saved(1), "_saved_result": saved(2), "_saved_self": saved(0),
                        "_saved_upper": ctx_value("upper")}

    @staticmethod
    def forward(ctx, B, L, upper):
        xp = array_module(B)
        # A = Uᴴ U or L Lᴴ: two triangular solves
        first = _solve_triangular_array(xp, _adjoint_array(xp, L), B, not upper, True, False) if upper else \
            _solve_triangular_array(xp, L, B, False, True, False)
        out = _solve_triangular_array(xp, L, first, True, True, False) if upper else \
            _solve_triangular_array(xp, _adjoint_array(xp, L), first, True, True, False)
        out = _column_major(out)
        ctx.upper = upper
        ctx.save_for_backward(B, L, out)  # (B as torch's node keeps it, though its rule reads L and X only)
        return out

    @staticmethod
    def backward(ctx, grad):
        # torch's rule: L is treated as a full matrix with A = L Lᴴ (or Uᴴ U)
        _, L, x = ctx.saved_values
        grad_b = CholeskySolve.apply(grad, L, upper=ctx.upper)
        grad_l = None
        if ctx.needs_input_grad[1]:
            common = _mat(grad_b, _adjoint(x))
            common = common + _adjoint(common)
            grad_l = -_mat(L, common) if ctx.upper else -_mat(common, L)
        return (grad_b if ctx.needs_input_grad[0] else None), grad_l


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("cholesky_solve_cpu"))
def cholesky_solve(input: Tensor, input2: Tensor, upper: bool = False, *, out=None) -> Tensor:
    """torch.cholesky_solve: X with ``A X = B`` given A's Cholesky factor (``input2``, lower, or
    upper with upper=True); B (..., n, k), batch dims broadcast."""
    check_bool(upper, "cholesky_solve", "upper")
    B, L = input, input2
    _check_square(L, "cholesky_solve", kernel="cholesky_solve_cpu")
    if B._data.ndim < 2:
        raise RuntimeError(f"b should have at least 2 dimensions, but has {B._data.ndim} dimensions instead")
    _check_same_dtype(L, B)
    if B._data.shape[-2] != L._data.shape[-1]:
        raise RuntimeError(f"Incompatible matrix sizes for cholesky_solve: each A matrix is {L._data.shape[-1]} by "
                           f"{L._data.shape[-1]} but each b matrix is {B._data.shape[-2]} by {B._data.shape[-1]}")
    return _copy_out(CholeskySolve.apply(B, L, upper=bool(upper)), out, "cholesky_solve")


class CholeskyInverse(Function):
    _array_forward = True
    node_name = "CholeskyInverseBackward0"
    label = "cholesky_inverse"
    rule = "Y = (LLᴴ)⁻¹: ∂/∂L = -Y (G + Gᴴ) Y L"
    formula = "cholesky_inverse({0})"
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0), "_saved_upper": ctx_value("upper")}

    @staticmethod
    def forward(ctx, L, upper):
        xp = array_module(L)
        zero_diagonal = xp.diagonal(L, axis1=-2, axis2=-1) == 0
        if has_values(L) and zero_diagonal.any():  # torch's check of the factor, before NumPy's solver refuses it
            info = xp.where(zero_diagonal.any(-1), zero_diagonal.argmax(-1) + 1, 0)
            raise _inversion_error("cholesky_inverse", info, L.ndim > 2)
        identity = xp.broadcast_to(xp.eye(L.shape[-1], dtype=L.dtype), L.shape)
        ctx.upper = upper
        out = CholeskySolve.forward(ctx, identity, L, upper)
        ctx.save_for_backward(L, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        L, inverse = ctx.saved_values
        common = _mat(_mat(inverse, grad + _adjoint(grad)), inverse)
        return -_mat(L, common) if ctx.upper else -_mat(common, L)


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("cholesky_inverse_out_cpu"))
def cholesky_inverse(input: Tensor, upper: bool = False, *, out=None) -> Tensor:
    """torch.cholesky_inverse: ``A⁻¹`` from A's Cholesky factor (lower, or upper with upper=True)."""
    check_bool(upper, "cholesky_inverse", "upper")
    _check_square(input, "cholesky_inverse", kernel="cholesky_inverse_out_cpu")
    return _copy_out(CholeskyInverse.apply(input, upper=bool(upper)), out, "cholesky_inverse")


# ---------------------------------------------------------------- qr
def _qr_square_backward(Q: Tensor, R: Tensor, grad_q: Tensor, grad_r: Tensor) -> Tensor:
    # A = QR with R square: M = R Gᵣᴴ - G_Qᴴ Q, ∂/∂A = (G_Q + Q copyltu(M)) R⁻ᴴ, copyltu(M) the
    # Hermitian matrix of M's lower triangle; R's diagonal is real, so only Re diag(M) counts
    m = _mat(R, _adjoint(grad_r)) - _mat(_adjoint(grad_q), Q)
    if m.is_complex():
        strict = m.tril(-1)
        copyltu = strict + _adjoint(strict) + _diag_embed(m.diagonal(0, -2, -1).real)
    else:
        copyltu = m.tril() + m.tril(-1).mT
    b = grad_q + _mat(Q, copyltu)
    return linalg_solve_triangular(_adjoint(R), b, upper=False, left=False)


class Qr(Function):
    _array_forward = True
    node_name = "LinalgQrBackward0"
    label = "qr"
    rule = "∂/∂A = (G_Q + Q copyltu(R Gᵣᴴ - G_Qᴴ Q)) R⁻ᴴ (wide A: split A = [X|Y], R = [U|V])"
    formula = "qr({0})"
    saved_attributes = {"_saved_Q": saved(1), "_saved_R": saved(2), "_saved_mode": ctx_value("mode")}

    @staticmethod
    def forward(ctx, A, mode):
        xp = array_module(A)
        m, n = A.shape[-2:]
        k = m if mode == "complete" else min(m, n)
        if A.size == 0:  # LAPACK is not called: the factors of no matrices, or of empty ones
            Q = xp.broadcast_to(xp.eye(m, k, dtype=A.dtype), A.shape[:-2] + (m, k)).copy()
            R = xp.zeros(A.shape[:-2] + (k, n), dtype=A.dtype)
        elif mode == "r":
            R, Q = xp.linalg.qr(A, mode="r"), None
        else:
            Q, R = xp.linalg.qr(A, mode=mode)
        # mode 'r' returns an empty Q, as torch does
        Q = xp.zeros((0,), dtype=A.dtype) if mode == "r" else _column_major(Q.astype(A.dtype, copy=False))
        R = _column_major(R.astype(A.dtype, copy=False))
        ctx.mode = mode
        ctx.save_for_backward(A, Q, R)
        return Q, R

    @staticmethod
    def backward(ctx, grad_q, grad_r):
        A, Q, R = ctx.saved_values
        m, n = A.shape[-2:]
        if ctx.mode == "r":
            raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
                               "Please use linalg.qr(A, mode='reduced') if you are going to differentiate "
                               "through linalg.qr.")
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        if m >= n:
            return _qr_square_backward(Q, R, grad_q, grad_r)
        # A = [X | Y] with X = Q U square: Y = Q V passes G_V to Y and Y G_Vᴴ to Q
        from .shape import cat

        U, grad_u, grad_v = R[..., :, :m], grad_r[..., :, :m], grad_r[..., :, m:]
        Y = A[..., :, m:]
        grad_x = _qr_square_backward(Q, U, grad_q + _mat(Y, _adjoint(grad_v)), grad_u)
        return cat([grad_x, _mat(Q, grad_v)], -1)


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("geqrf_cpu"))
def linalg_qr(A: Tensor, mode: str = "reduced", *, out=None):
    """torch.linalg.qr: ``(Q, R)`` with A = QR; mode 'reduced' (Q (..., m, k), R (..., k, n),
    k = min(m, n)), 'complete' (Q square) or 'r' (R only; Q is an empty tensor)."""
    _check_float(A, "linalg.qr")
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
                           "'r', or 'complete'")
    Q, R = Qr.apply(A, mode=mode)
    return _copy_out(return_types.linalg_qr(Q, R), out, "linalg.qr")


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("geqrf_cpu"))
def qr(input: Tensor, some: bool = True, *, out=None):
    """torch.qr (deprecated in torch): linalg.qr with mode 'reduced' (some=True) or 'complete'."""
    check_bool(some, "qr", "some")
    Q, R = linalg_qr(input, "reduced" if some else "complete")
    return _copy_out(return_types.qr(Q, R), out, "qr")


# ---------------------------------------------------------------- eigh
_EIGH_PHASE = ("linalg_eigh_backward: The eigenvectors in the complex case are specified up to multiplication by "
               "e^{i phi}. The specified loss function depends on this quantity, so it is ill-defined.")
_SVD_PHASE = ("svd_backward: The singular vectors in the complex case are specified up to multiplication by "
              "e^{i phi}. The specified loss function depends on this phase term, making it ill-defined.")


def _refuse_phase_dependence(imag_diagonal: Tensor, expected: Tensor, message: str) -> None:
    """Complex eigen/singular vectors are fixed only up to a phase each; a loss whose gradient turns
    them (a nonzero Im diag of Vᴴ G_V) has no gradient. torch's check, with its lax tolerances
    (rtol = atol = 1e-2) so that rounding does not refuse a gauge-invariant loss."""
    if not imag_diagonal.allclose(expected, rtol=1e-2, atol=1e-2):
        raise RuntimeError(message)


class Eigh(Function):
    _array_forward = True
    node_name = "LinalgEighBackward0"
    label = "eigh"
    rule = "∂/∂A = V (diag(G_λ) + skew(Vᵀ G_V) / (λⱼ - λᵢ)) Vᵀ"
    formula = "eigh({0})"
    saved_attributes = {"_saved_eigenvalues": saved(0), "_saved_eigenvectors": saved(1)}

    @staticmethod
    def forward(ctx, A, UPLO):
        xp = array_module(A)
        values, vectors = xp.linalg.eigh(A, UPLO=UPLO)
        # a Hermitian matrix's eigenvalues are real: float64 for complex128, as torch's
        values = values.astype(A.real.dtype, copy=False)
        vectors = _column_major(vectors.astype(A.dtype, copy=False))
        ctx.save_for_backward(values, vectors)
        return values, vectors

    @staticmethod
    def backward(ctx, grad_values, grad_vectors):
        values, vectors = ctx.saved_values
        # project Vᴴ G_V onto the skew-Hermitian matrices (the tangent space of the unitary group)
        vhgv = _mat(_adjoint(vectors), grad_vectors)
        if vhgv.is_complex():
            _refuse_phase_dependence(vhgv.diagonal(0, -2, -1).imag, 0 * values, _EIGH_PHASE)
        vhgv = 0.5 * (vhgv - _adjoint(vhgv))
        n = values.shape[-1]
        gaps = values.unsqueeze(-2) - values.unsqueeze(-1) + _eye_like(values, n)  # λⱼ - λᵢ, 1 on the diagonal
        inner = vhgv / gaps + _diag_embed(grad_values)
        return _mat(_mat(vectors, inner), _adjoint(vectors))


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("linalg_eigh_cpu"))
def linalg_eigh(input: Tensor, UPLO: str = "L", *, out=None):
    """torch.linalg.eigh: ``(eigenvalues, eigenvectors)`` of a symmetric matrix, eigenvalues
    ascending, reading A's lower (UPLO='L') or upper ('U') triangle. Eigenvectors are defined up
    to sign (and within a repeated eigenvalue's eigenspace only as a basis), and the sign each
    LAPACK build picks differs: torch's (MKL) and NumPy's (OpenBLAS) disagreed on 901 of 1906
    simple eigenvalues' eigenvectors of 300 small normalised graph Laplacians, so a loss or a test
    must not depend on it (compare V diag(L) Vᵀ, or |V| where the eigenvalues are simple)."""
    A = input  # torch's Python binding takes these keyword names
    check_str(UPLO, "linalg_eigh", "UPLO")
    _check_square(A, "linalg.eigh", kernel="linalg_eigh_cpu")
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    values, vectors = Eigh.apply(A, UPLO=UPLO)
    return _copy_out(return_types.linalg_eigh(values, vectors), out, "linalg.eigh")


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("linalg_eigh_cpu"))
def linalg_eigvalsh(input: Tensor, UPLO: str = "L", *, out=None) -> Tensor:
    """torch.linalg.eigvalsh: the eigenvalues of a symmetric matrix, ascending."""
    A = input  # torch's Python binding takes these keyword names
    check_str(UPLO, "linalg_eigvalsh", "UPLO")
    _check_square(A, "linalg.eigvalsh", kernel="linalg_eigh_cpu")
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return _copy_out(Eigh.apply(A, UPLO=UPLO)[0], out, "linalg.eigvalsh")


# ---------------------------------------------------------------- svd
def _singular_value_count(node) -> int:
    # (kept by torch as a number, read from A's sizes: it outlives the freed graph)
    return min(node._input_meta[0][0][-2:])


class Svd(Function):
    _array_forward = True
    node_name = "LinalgSvdBackward0"
    label = "svd"
    rule = ("∂/∂A = U (diag(G_S) + (skew(Uᴴ G_U) S + S skew(Vᴴ G_V)) / (Sⱼ² - Sᵢ²) + i Im diag(Uᴴ G_U) / S) Vᴴ "
            "(+ the parts outside U's and V's span)")
    formula = "svd({0})"
    saved_attributes = {"_saved_S": saved(1), "_saved_S_sym_argsize_minus_1": SavedValue(_singular_value_count),
                        "_saved_U": saved(0), "_saved_Vh": saved(2), "_saved_full_matrices": ctx_value("full_matrices")}

    @staticmethod
    def forward(ctx, A, full_matrices):
        xp = array_module(A)
        m, n = A.shape[-2:]
        if A.size == 0:  # LAPACK is not called for empty matrices
            k = min(m, n)
            rows, cols = (m, n) if full_matrices else (k, k)
            U = xp.broadcast_to(xp.eye(m, rows, dtype=A.dtype), A.shape[:-2] + (m, rows)).copy()
            Vh = xp.broadcast_to(xp.eye(cols, n, dtype=A.dtype), A.shape[:-2] + (cols, n)).copy()
            S = xp.zeros(A.shape[:-2] + (k,), dtype=A.real.dtype)
        elif _takes_qr_path(xp, A):
            U, S, Vh = _svd_through_qr(xp, A, full_matrices)
        else:
            U, S, Vh = _svd_array(xp, A, full_matrices=full_matrices)
        # singular values are real: float64 for complex128, as torch's
        U, S, Vh = (_column_major(U.astype(A.dtype, copy=False)), S.astype(A.real.dtype, copy=False),
                    _column_major(Vh.astype(A.dtype, copy=False)))
        ctx.full_matrices = full_matrices
        ctx.save_for_backward(U, S, Vh)
        ctx.set_materialize_grads(False)  # (torch's svd_backward tells an unused U or Vh from a zero gradient)
        return U, S, Vh

    @staticmethod
    def backward(ctx, grad_u, grad_s, grad_vh):
        U, S, Vh = ctx.saved_values
        m, n = U.shape[-2], Vh.shape[-1]
        k = S.shape[-1]
        if ctx.full_matrices:  # only the first k singular vectors enter the rule
            U, Vh = U[..., :, :k], Vh[..., :k, :]
        if grad_u is None and grad_vh is None:
            if grad_s is None:
                return None
            # torch's case of the singular values alone (svdvals, the nuclear and spectral norms):
            # U diag(G_S) Vᴴ, with no division by the gaps, so a rank-deficient A (a zero matrix,
            # repeated singular values) gets a finite gradient
            return _mat(U, grad_s.unsqueeze(-1) * Vh) if m >= n else _mat(U * grad_s.unsqueeze(-2), Vh)
        xp = array_module(U._data)
        if grad_s is None:
            grad_s = _const(xp.zeros(S._data.shape, dtype=S._data.dtype))
        if grad_u is None:
            grad_u = _const(xp.zeros(U._data.shape, dtype=U._data.dtype))
        elif ctx.full_matrices:
            grad_u = grad_u[..., :, :k]
        if grad_vh is None:
            grad_vh = _const(xp.zeros(Vh._data.shape, dtype=Vh._data.dtype))
        elif ctx.full_matrices:
            grad_vh = grad_vh[..., :k, :]
        squares = S * S
        gaps = squares.unsqueeze(-2) - squares.unsqueeze(-1) + _eye_like(S, k)  # Sⱼ² - Sᵢ², 1 on the diagonal
        uhgu = _mat(_adjoint(U), grad_u)
        skew_u = uhgu - _adjoint(uhgu)
        vhgv = _mat(Vh, _adjoint(grad_vh))
        if uhgu.is_complex():
            _refuse_phase_dependence(uhgu.diagonal(0, -2, -1).imag, -vhgv.diagonal(0, -2, -1).imag, _SVD_PHASE)
        inner = (skew_u * S.unsqueeze(-2) + S.unsqueeze(-1) * (vhgv - _adjoint(vhgv))) / gaps
        inner = inner + _diag_embed(grad_s)
        if skew_u.is_complex():
            # a phase on a singular pair moves diag(Uᴴ dA V) by i Im(...): with V's phase held (torch's
            # gauge), that is U's, i Im diag(Uᴴ G_U) / S = diag(skew(Uᴴ G_U)) / 2S
            inner = inner + _diag_embed(skew_u.diagonal(0, -2, -1) / (2 * S))
        if m > n:
            # the part of G_U outside U's span: (I - UUᴴ) G_U S⁻¹
            grad_u_over_s = grad_u / S.unsqueeze(-2)
            grad_a = _mat(U, inner) + grad_u_over_s - _mat(U, _mat(_adjoint(U), grad_u_over_s))
            return _mat(grad_a, Vh)
        if m < n:
            s_inv_grad_vh = grad_vh / S.unsqueeze(-1)
            grad_a = _mat(inner, Vh) + s_inv_grad_vh - _mat(_mat(s_inv_grad_vh, _adjoint(Vh)), Vh)
            return _mat(U, grad_a)
        return _mat(_mat(U, inner), Vh)


@cpu_autocast_policy("float32")
@_refuses_low_precision(_SVD_CPU)
def linalg_svd(A: Tensor, full_matrices: bool = True, *, driver=None, out=None):
    """torch.linalg.svd: ``(U, S, Vh)`` with A = U diag(S) Vh, S descending; U (..., m, m) and
    Vh (..., n, n) with full_matrices (the default), else (..., m, k) and (..., k, n). Singular
    vectors are defined up to sign (a phase for complex A), and the sign each LAPACK build picks
    differs: torch's (MKL) and NumPy's (OpenBLAS) disagree on some columns, most often for wide
    matrices, so a loss or a test must not depend on it (compare U diag(S) Vh, or |U|)."""
    check_bool(full_matrices, "linalg_svd", "full_matrices")
    _check_float(A, "linalg.svd")
    U, S, Vh = Svd.apply(A, full_matrices=bool(full_matrices))
    return _copy_out(return_types.linalg_svd(U, S, Vh), out, "linalg.svd")


@cpu_autocast_policy("float32")
@_refuses_low_precision(_SVD_CPU)
def linalg_svdvals(A: Tensor, *, driver=None, out=None) -> Tensor:
    """torch.linalg.svdvals: the singular values (..., min(m, n)), descending."""
    _check_float(A, "linalg.svd")  # torch's checks name linalg.svd
    return _copy_out(Svd.apply(A, full_matrices=False)[1], out, "linalg.svdvals")


@cpu_autocast_policy("float32")
@_refuses_low_precision(_SVD_CPU)
def svd(input: Tensor, some: bool = True, compute_uv: bool = True, *, out=None):
    """torch.svd: ``(U, S, V)`` (V, not Vh) with reduced U and V when ``some``; with
    compute_uv=False, U and V are zero-filled (m, m) and (n, n) matrices, as in torch. The singular
    vectors' signs are LAPACK's choice, not torch's (see ``linalg_svd``)."""
    check_bool(some, "svd", "some")
    check_bool(compute_uv, "svd", "compute_uv")
    _check_float(input, "linalg.svd")
    if not compute_uv:
        xp = array_module(input._data)
        m, n = input._data.shape[-2:]
        batch = input._data.shape[:-2]
        S = linalg_svdvals(input)
        # (torch's V is the transpose of a column-major Vh, U is row-major)
        result = (_const(xp.zeros(batch + (m, m), dtype=input._data.dtype)), S,
                  _const(_column_major(xp.zeros(batch + (n, n), dtype=input._data.dtype))))
    else:
        U, S, Vh = Svd.apply(input, full_matrices=not some)
        result = (U, S, _adjoint(Vh))
    return _copy_out(return_types.svd(*result), out, "svd")


# ---------------------------------------------------------------- pinv, lstsq, rank, cond
def _tolerance_array(xp, value, dtype):
    if value is None:
        return None
    return (value._data if isinstance(value, Tensor) else xp.asarray(value)).astype(dtype, copy=False)


def _cutoff(xp, S, m: int, n: int, atol, rtol, dtype):
    """torch's threshold max(atol, rtol·σ₁) on singular values (batch shape + (1,)); rtol defaults
    to eps·max(m, n) when neither is given, and to 0 when only atol is."""
    atol_arr = _tolerance_array(xp, atol, dtype)
    rtol_arr = _tolerance_array(xp, rtol, dtype)
    if rtol_arr is None:
        rtol_arr = xp.asarray(0.0 if atol_arr is not None else np.finfo(dtype).eps * max(m, n), dtype=dtype)
    if atol_arr is None:
        atol_arr = xp.asarray(0.0, dtype=dtype)
    largest = S[..., :1] if S.shape[-1] else xp.zeros(S.shape[:-1] + (1,), dtype=dtype)
    return xp.maximum(atol_arr[..., None] if atol_arr.ndim else atol_arr,
                      (rtol_arr[..., None] if rtol_arr.ndim else rtol_arr) * largest)


class Pinv(Function):
    _array_forward = True
    node_name = "LinalgPinvBackward0"
    label = "pinv"
    rule = "∂/∂A = -A⁺ᴴ G A⁺ᴴ + (I - AA⁺) Gᴴ A⁺A⁺ᴴ + A⁺ᴴA⁺ Gᴴ (I - A⁺A) (Golub and Pereyra)"
    formula = "pinv({0})"
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, A, atol, rtol, hermitian):
        xp = array_module(A)
        m, n = A.shape[-2:]
        if A.size == 0:
            out = xp.zeros(A.shape[:-2] + (n, m), dtype=A.dtype)
        elif hermitian:
            values, vectors = xp.linalg.eigh(A)
            magnitudes = xp.abs(values)
            order = xp.flip(xp.argsort(magnitudes, axis=-1), -1)
            tolerance = _cutoff(xp, xp.take_along_axis(magnitudes, order, -1), m, n, atol, rtol, A.real.dtype)
            inverted = xp.where(magnitudes > tolerance, 1 / xp.where(values == 0, 1, values), 0).astype(A.dtype)
            out = xp.matmul(vectors * inverted[..., None, :], _adjoint_array(xp, vectors))
        else:
            U, S, Vh = _svd_array(xp, A, full_matrices=False)
            tolerance = _cutoff(xp, S, m, n, atol, rtol, A.real.dtype)
            inverted = xp.where(S > tolerance, 1 / xp.where(S == 0, 1, S), 0).astype(A.dtype)
            out = xp.matmul(_adjoint_array(xp, Vh) * inverted[..., None, :], _adjoint_array(xp, U))
        out = xp.ascontiguousarray(out.astype(A.dtype, copy=False))
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        A, pinv_a = ctx.saved_values
        return _pinv_backward(grad, pinv_a, A)


def _pinv_backward(grad: Tensor, pinv_a: Tensor, A: Tensor) -> Tensor:
    """torch's pinv_backward, arranged to multiply the smallest matrices."""
    m, n = A.shape[-2:]
    pinv_t, grad_t = _adjoint(pinv_a), _adjoint(grad)
    if m <= n:
        K = _mat(grad_t, pinv_a)
        k_pinv_t = _mat(K, pinv_t)
        return (-_adjoint(_mat(pinv_a, K)) + k_pinv_t - _mat(_mat(A, pinv_a), k_pinv_t)
                + _mat(_mat(pinv_t, pinv_a), grad_t - _mat(K, A)))
    K = _mat(pinv_a, grad_t)
    pinv_t_k = _mat(pinv_t, K)
    return (-_adjoint(_mat(K, pinv_a)) + _mat(_mat(grad_t - _mat(A, K), pinv_a), pinv_t) + pinv_t_k
            - _mat(_mat(pinv_t_k, pinv_a), A))


def _check_tolerances(op: str, atol, rtol) -> None:
    """torch's parser takes atol/rtol as a number or a tensor (or None), nothing else."""
    for value in (atol, rtol):
        if value is not None and not isinstance(value, (Tensor, int, float, np.number)):
            raise _dtype.invalid_combination(op, value)


@_refuses_low_precision(_PINV_LOW_PRECISION)
def linalg_pinv(input: Tensor, rcond=None, hermitian: bool = False, *, atol=None, rtol=None, out=None) -> Tensor:
    """torch.linalg.pinv: the Moore-Penrose pseudoinverse (..., n, m); singular values at most
    max(atol, rtol·σ₁) count as zero (rtol defaults to eps·max(m, n)); ``rcond`` is torch's old
    name for rtol; hermitian=True uses an eigendecomposition of the (symmetric) input."""
    check_bool(hermitian, "linalg_pinv", "hermitian")
    A = input  # torch's Python binding takes these keyword names
    if not isinstance(A, Tensor):
        raise _dtype.invalid_combination("linalg_pinv", A)
    _check_tolerances("linalg_pinv", atol, rtol)
    if not isinstance(A, Tensor) or A._data.ndim < 2 or A._data.dtype.kind not in "fVc":
        described = f"{_dtype.scalar_name(A.dtype)}{{{list(A.shape)}}}" if isinstance(A, Tensor) else type(A).__name__
        raise RuntimeError(f"linalg.pinv({described}): expected a tensor with 2 or more dimensions of float, double, "
                           "cfloat or cdouble types")
    if rcond is not None:
        if rtol is not None:
            raise RuntimeError("linalg.pinv: rcond and rtol cannot both be given (rcond is rtol's old name)")
        rtol = rcond
    if hermitian:
        _check_square(A, "linalg.pinv")
    return _copy_out(Pinv.apply(A, atol=atol, rtol=rtol, hermitian=bool(hermitian)), out, "linalg.pinv")


@cpu_autocast_policy("float32")  # (torch lists pinverse, not linalg.pinv)
@_refuses_low_precision(_PINV_LOW_PRECISION)
def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """torch.pinverse: linalg.pinv with ``rtol=rcond`` (default 1e-15)."""
    return linalg_pinv(input, rtol=rcond)


_LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


class Lstsq(Function):
    _array_forward = True
    node_name = "LinalgLstsqBackward0"
    label = "lstsq"
    rule = "X = A⁺B: ∂/∂A = pinv's rule applied to G Bᴴ, ∂/∂B = A⁺ᴴ G"
    formula = "lstsq({0}, {1})"
    saved_attributes = {"_saved_b": saved(1), "_saved_self": saved(0), "_saved_solution": saved(2)}

    @staticmethod
    def forward(ctx, A, B, rtol):
        xp = array_module(A)
        pinv_a = Pinv.forward(ctx, A, None, rtol, False)
        ctx.rtol = rtol
        # LAPACK's solution is column-major, as torch returns it
        solution = _column_major(xp.matmul(pinv_a, B))
        ctx.save_for_backward(A, B, solution)  # (the solution as torch's node keeps it: its rule reads A and B)
        return solution

    @staticmethod
    def backward(ctx, grad):
        # torch recomputes pinv(A) in the rule (so it is differentiable again under create_graph)
        A, B, _ = ctx.saved_values
        pinv_a = Pinv.apply(A, atol=None, rtol=ctx.rtol, hermitian=False)
        grad_a = _pinv_backward(matmul(grad, _adjoint(B)), pinv_a, A) if ctx.needs_input_grad[0] else None
        grad_b = matmul(_adjoint(pinv_a), grad) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class EmptyLstsqResiduals(Function):
    """lstsq's empty residuals: they require grad with A or B, as torch's do, and pass nothing back."""
    _array_forward = True
    node_name = "LinalgLstsqBackward0"
    label = "lstsq"
    rule = "no gradient: torch's rule differentiates the solution only"
    formula = "lstsq({0}, {1}).residuals"

    @staticmethod
    def forward(ctx, A, B, residuals):
        return residuals

    @staticmethod
    def backward(ctx, grad):
        return None, None


@honours_out
@cpu_autocast_policy("float32")
@_refuses_low_precision(_FLOAT_AND_DOUBLE_ONLY)
def linalg_lstsq(input: Tensor, b: Tensor, rcond=None, *, driver=None):
    """torch.linalg.lstsq on CPU: the minimum-norm least-squares solution of ``A X = B`` (A
    (..., m, n), B (..., m, k), batch dims broadcast; B (m,) or of A's shape less its last dim is a
    vector right-hand side) with torch's extra outputs for each driver:
    residuals ‖AX - B‖² per column (when m > n, every A has full rank and the driver is not
    'gelsy'), rank (not for 'gels'), singular_values ('gelsd', 'gelss'); the rest are empty.
    The gradient is torch's: through pinv(A) B (the residuals pass none back)."""
    A, B = input, b  # torch's Python binding takes these keyword names
    if driver is not None:
        check_str(driver, "linalg_lstsq", "driver")
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.lstsq(): argument 'A' must be Tensor, not {type(A).__name__}")
    if A._data.ndim < 2:
        raise RuntimeError("torch.linalg.lstsq: input must have at least 2 dimensions.")
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.lstsq(): argument 'B' must be Tensor, not {type(B).__name__}")
    driver = "gelsy" if driver is None else driver
    if driver not in _LSTSQ_DRIVERS:
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)")
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"torch.linalg.lstsq: Expected input and other to have the same dtype, but got input's "
                           f"dtype {_dtype.scalar_name(A.dtype)} and other's dtype {_dtype.scalar_name(B.dtype)}")
    if A._data.dtype.kind not in "fVc":  # torch's LAPACK-backed lstsq names no op here
        raise RuntimeError("This function doesn't handle types other than float and double")
    if B._data.ndim < 1:
        raise RuntimeError("torch.linalg.lstsq: other must have at least 1 dimension.")
    dim_diff = A._data.ndim - B._data.ndim
    if not 0 <= dim_diff <= 1:
        raise RuntimeError("torch.linalg.lstsq: input.dim() must be greater or equal to other.dim() and "
                           "(input.dim() - other.dim()) <= 1")
    # torch's vector case: other is (m,) or has input's shape without its last dim
    vector = B._data.ndim == 1 or (dim_diff == 1 and B._data.shape == A._data.shape[:-1])
    rhs = B.unsqueeze(-1) if vector else B
    m, n = A._data.shape[-2:]
    if rhs._data.shape[-2] != m:
        raise RuntimeError(f"torch.linalg.lstsq: input.size(-2) should match other.size({-1 if vector else -2})")
    if dim_diff == 1 and not vector:
        # torch reads the batch of such an other as all its dims but the last, its matrix as its last two
        batch = _broadcast_batch(A._data.shape[:-2], B._data.shape[:-1])
        rhs = B.expand(*batch, *B._data.shape[-2:])
    if _function.active_dispatch is not None:  # (the rank and singular values are read from A's array)
        made = _function.argument_dispatch("linalg_lstsq", linalg_lstsq, (A, B, rcond),
                                           {"driver": None if driver == "gelsy" else driver})
        if made is not _function.RUN_UNDISPATCHED:
            return return_types.linalg_lstsq(*made)
    xp = array_module(A._data)
    dtype = A._data.real.dtype  # of the singular values and residuals (real for complex A)
    rtol = np.finfo(dtype).eps * max(m, n) if rcond is None or rcond < 0 else rcond
    solution = Lstsq.apply(A, rhs, rtol=rtol)
    if vector:
        solution = name_node(solution.squeeze(-1), "LinalgLstsqBackward0")
    S = _svd_array(xp, A._data, compute_uv=False) if A._data.size else xp.zeros(A._data.shape[:-2] + (0,), dtype=dtype)
    tolerance = _cutoff(xp, S, m, n, None, rtol, dtype)
    rank = (S > tolerance).sum(-1).astype(np.int64)
    empty = _const(xp.zeros((0,), dtype=dtype))
    if driver != "gelsy" and m > n and bool((rank == n).all()):
        # ‖AX - B‖² per column, differentiated as torch does (X itself depends on A and B)
        fitted = matmul(A, solution.unsqueeze(-1) if vector else solution)
        misfit = fitted - rhs
        squares = misfit.abs() ** 2 if misfit.is_complex() else misfit ** 2
        residuals = name_node(squares.sum(-2), "LinalgLstsqBackward0")
    else:
        residuals = EmptyLstsqResiduals.apply(A, B, residuals=xp.zeros((0,), dtype=dtype))
    return return_types.linalg_lstsq(
        solution, residuals,
        _const(rank) if driver != "gels" else _const(xp.zeros((0,), dtype=np.int64)),
        _const(S) if driver in ("gelsd", "gelss") else empty)


@cpu_autocast_policy("float32")
@_refuses_low_precision(_FLOAT_AND_DOUBLE_ONLY)
def linalg_matrix_rank(input: Tensor, tol=None, hermitian: bool = False, *, atol=None, rtol=None, out=None) -> Tensor:
    """torch.linalg.matrix_rank: the number of singular values above max(atol, rtol·σ₁) (int64,
    batch shape); ``tol`` is torch's old name for atol."""
    check_bool(hermitian, "linalg_matrix_rank", "hermitian")
    A = input  # torch's Python binding takes these keyword names
    _check_tolerances("linalg_matrix_rank", atol, rtol)
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.matrix_rank(): argument 'input' must be Tensor, not {type(A).__name__}")
    if A._data.ndim < 2:
        raise RuntimeError("torch.linalg.matrix_rank: The input tensor input must have at least 2 dimensions.")
    if A._data.dtype.kind not in "fVc":  # torch's matrix_rank names no op here
        raise RuntimeError("This function doesn't handle types other than float and double")
    if tol is not None:
        atol = tol
    if _function.active_dispatch is not None:  # (the singular values are found from the array)
        made = _function.argument_dispatch(
            "linalg_matrix_rank.atol_rtol_tensor" if isinstance(atol, Tensor) or isinstance(rtol, Tensor) else
            "linalg_matrix_rank.atol_rtol_float", linalg_matrix_rank, (A,),
            {"atol": atol, "rtol": rtol, "hermitian": hermitian})
        if made is not _function.RUN_UNDISPATCHED:
            return _copy_out(made, out, "linalg.matrix_rank")
    xp = array_module(A._data)
    m, n = A._data.shape[-2:]
    a = A._data
    if a.size == 0:
        S = xp.zeros(a.shape[:-2] + (0,), dtype=a.real.dtype)
    elif hermitian:
        if m != n:  # torch's rank of a hermitian matrix goes through eigvalsh
            raise RuntimeError(f"linalg.eigh: A must be batches of square matrices, but they are {m} by {n} matrices")
        S = xp.flip(xp.sort(xp.abs(xp.linalg.eigvalsh(a)), axis=-1), -1)
    else:
        S = _svd_array(xp, a, compute_uv=False)
    rank = (S > _cutoff(xp, S, m, n, atol, rtol, a.real.dtype)).sum(-1).astype(np.int64)
    return _copy_out(_const(xp.asarray(rank)), out, "linalg.matrix_rank")


_COND_ORDERS = (1.0, -1.0, 2.0, -2.0, math.inf, -math.inf)


def _scalar_text(value) -> str:
    """A Python number as torch's C++ Scalar prints it (ostream: 3, 3.5, 1e+20, nan)."""
    return str(int(value)) if isinstance(value, (bool, int)) else format(value, "g")


@cpu_autocast_policy("float32")
def linalg_cond(input: Tensor, p=None, *, out=None) -> Tensor:
    """torch.linalg.cond: σ₁/σₙ for p None/2 (σₙ/σ₁ for -2); Σσ · Σ1/σ for 'nuc'; else ‖A‖ₚ‖A⁻¹‖ₚ
    (square A) for 'fro', inf, -inf, 1, -1, infinite for a singular A (torch's inv_ex with the
    failed inverses filled with inf, 0·inf read as inf). Empty matrices give 0."""
    A = input  # torch's Python binding takes these keyword names
    from .linalg import matrix_norm

    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.cond(): argument 'A' must be Tensor, not {type(A).__name__}")
    if A._data.ndim < 2:
        raise RuntimeError("linalg.cond: The input tensor must have at least 2 dimensions.")
    rows, cols = A._data.shape[-2:]
    by_name = isinstance(p, str)
    if by_name:
        # torch checks the shape before the name, and a number's value before the shape
        if rows != cols:
            raise RuntimeError(f"linalg.cond(ord={p}): A must be batches of square matrices, but they are "
                               f"{rows} by {cols} matrices")
        if p not in ("fro", "nuc"):
            raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    elif p is not None and float(p) not in _COND_ORDERS:
        raise RuntimeError(f"linalg.cond got an invalid norm type: {_scalar_text(p)}")
    if A._data.size == 0:
        xp = array_module(A._data)
        empty = xp.zeros(A._data.shape[:-2], dtype=A._data.real.dtype)
        return _copy_out(_const(empty), out, "linalg.cond", composite=True)
    if p is None or (not by_name and abs(float(p)) == 2):
        _check_float(A, "linalg.svd")  # through svdvals, whose checks name linalg.svd
        S = linalg_svdvals(A)
        ratio = S[..., 0] / S[..., -1] if p is None or float(p) > 0 else S[..., -1] / S[..., 0]
        # torch takes the first and last values through a keepdim reduction, then squeezes
        return _copy_out(name_node(ratio, "SqueezeBackward1"), out, "linalg.cond", composite=True)
    if p == "nuc":
        # torch's own definition, finite where an inverse's norm would not be
        S = linalg_svdvals(A)
        return _copy_out(S.sum(-1) * S.reciprocal().sum(-1), out, "linalg.cond", composite=True)
    if rows != cols:
        # (std::to_string of the order: 1 for an int, 1.000000 for a float, inf)
        shown = f"{p:f}" if isinstance(p, float) else str(int(p))
        raise RuntimeError(f"linalg.cond(ord={shown}): A must be batches of square matrices, but they are "
                           f"{rows} by {cols} matrices")
    inverse, info = linalg_inv_ex(A)
    inverse = inverse.masked_fill((info > 0)[..., None, None], math.inf)
    result = matrix_norm(A, p) * matrix_norm(inverse, p)
    # 0 · inf (a zero matrix) is inf, as NumPy's cond
    return _copy_out(result.nan_to_num(math.inf, math.inf, -math.inf), out, "linalg.cond", composite=True)


# ---------------------------------------------------------------- lu
def _lu_array(xp, A):
    """LAPACK getrf's partial pivoting for a batch: (LU packed, pivots (1-based, int32), info).

    Column j takes the row of largest magnitude (the first, on ties) at or below the diagonal, the
    magnitude of a complex number being |Re| + |Im| as LAPACK's izamax measures it; a
    zero pivot leaves its column unscaled and sets info to its 1-based index (the first such).
    The k = min(m, n) steps are vectorised over the batch.
    """
    m, n = A.shape[-2:]
    k = min(m, n)
    flat = A.reshape((math.prod(A.shape[:-2]), m, n)).astype(A.dtype, copy=True)
    count = flat.shape[0]
    rows = xp.arange(count)
    pivots = xp.zeros((count, k), dtype=np.int32)
    info = xp.zeros(count, dtype=np.int32)
    magnitude = (lambda x: xp.abs(x.real) + xp.abs(x.imag)) if A.dtype.kind == "c" else xp.abs
    for j in range(k):
        p = xp.argmax(magnitude(flat[:, j:, j]), axis=-1) + j
        pivots[:, j] = (p + 1).astype(np.int32)
        row_j, row_p = flat[rows, j].copy(), flat[rows, p].copy()
        flat[rows, p] = row_j
        flat[rows, j] = row_p
        pivot = flat[:, j, j]
        zero = pivot == 0
        info = xp.where(zero & (info == 0), j + 1, info).astype(np.int32)
        scale = xp.where(zero, 1, pivot)[:, None]
        flat[:, j + 1:, j] = flat[:, j + 1:, j] / scale
        flat[:, j + 1:, j + 1:] -= flat[:, j + 1:, j:j + 1] * flat[:, j:j + 1, j + 1:]
    batch = A.shape[:-2]
    return flat.reshape(A.shape), pivots.reshape(batch + (k,)), info.reshape(batch)


def _permutation_array(xp, pivots, m: int, dtype):
    """P (..., m, m) with A = P L U, from getrf's sequence of row swaps."""
    batch = pivots.shape[:-1]
    order = xp.broadcast_to(xp.arange(m), batch + (m,)).reshape(math.prod(batch), m).copy()
    rows = xp.arange(order.shape[0])
    flat_pivots = pivots.reshape(math.prod(pivots.shape[:-1]), pivots.shape[-1]) - 1
    for j in range(flat_pivots.shape[-1]):
        p = flat_pivots[:, j]
        at_j, at_p = order[rows, j].copy(), order[rows, p].copy()
        order[rows, j], order[rows, p] = at_p, at_j
    # row i of PᵀA is row order[i] of A, so P[order[i], i] = 1
    eye = xp.eye(m, dtype=dtype)
    return eye[order].swapaxes(-1, -2).reshape(batch + (m, m))


def _unpack_lu(LU: Tensor, m: int, n: int):
    """L (..., m, k) unit lower and U (..., k, n) upper from LAPACK's packed factors (differentiable)."""
    k = min(m, n)
    L = LU[..., :, :k].tril(-1) + _const(array_module(LU._data).eye(m, k, dtype=LU._data.dtype))
    return L, LU[..., :k, :].triu()


def _lu_backward(P: Tensor, L: Tensor, U: Tensor, grad_l: Tensor, grad_u: Tensor) -> Tensor:
    """torch's linalg_lu_backward: A = P L U with unit-lower L and upper U (LU is holomorphic: for
    complex factors the transposes are conjugate transposes)."""
    from .shape import cat

    m, n = L.shape[-2], U.shape[-1]
    k = min(m, n)
    if m <= n:
        # wide (and square): ∂A₁ = P L⁻ᴴ [tril(Lᴴ G_L - triu(G_U) Uᴴ, -1) U₁⁻ᴴ + triu(G_U₁)], ∂A₂ = P L⁻ᴴ G_U₂
        grad = (_mat(_adjoint(L), grad_l) - _mat(grad_u.triu(), _adjoint(U))).tril(-1)
        grad = linalg_solve_triangular(_adjoint(U[..., :, :k]), grad, upper=False, left=False)
        grad = cat([grad + grad_u[..., :, :k].triu(), grad_u[..., :, k:]], -1)
        grad = linalg_solve_triangular(_adjoint(L), grad, upper=True, left=True, unitriangular=True)
    else:
        # tall: ∂A₁ = P [L₁⁻ᴴ triu(G_U Uᴴ - Lᴴ tril(G_L, -1)) + tril(G_L₁, -1)] U⁻ᴴ, ∂A₂ = P G_L₂ U⁻ᴴ
        grad = (_mat(grad_u, _adjoint(U)) - _mat(_adjoint(L), grad_l.tril(-1))).triu()
        grad = linalg_solve_triangular(_adjoint(L[..., :k, :]), grad, upper=True, left=True, unitriangular=True)
        grad = cat([grad + grad_l[..., :k, :].tril(-1), grad_l[..., k:, :]], -2)
        grad = linalg_solve_triangular(_adjoint(U), grad, upper=False, left=False)
    return _mat(P, grad)


def _takes_qr_path(xp, A) -> bool:
    """Whether torch's CPU LAPACK (MKL) factors a tall real ``A`` (m, n) through a QR first where
    NumPy's (OpenBLAS, reference LAPACK) does not: gesdd takes its QR path from m >= int(11n/6) in
    reference LAPACK, from m >= int(3n/2) in MKL (measured against torch: every n from 3 to 12).
    In between the two builds' singular vectors differ in sign; the QR path gives torch's."""
    m, n = A.shape[-2:]
    return (xp is np and A.dtype.kind == "f" and n >= 3 and (3 * n) // 2 <= m < (11 * n) // 6
            and bool(np.isfinite(A).all()))


def _svd_through_qr(xp, A, full_matrices: bool):
    """gesdd's QR path: A = QR, then R's SVD, U = Q U_R (with full_matrices, Q's complement after)."""
    n = A.shape[-1]
    factors = _qr_and_svd_by_gufuncs(A, full_matrices) if _LAPACK is not None and A.dtype in _LAPACK_DTYPES else None
    if factors is not None:
        Q, U_R, S, Vh = factors
    else:
        Q, R = xp.linalg.qr(A, mode="complete" if full_matrices else "reduced")
        U_R, S, Vh = _svd_array(xp, R[..., :n, :], full_matrices=False)
    U = Q[..., :, :n] @ U_R
    if full_matrices:
        U = xp.concatenate([U, Q[..., :, n:]], axis=-1)
    return U, S, Vh


# NumPy's LAPACK gufuncs, which numpy.linalg.qr and svd call (None where a NumPy lacks them)
_LAPACK = getattr(np.linalg, "_umath_linalg", None)
if not all(hasattr(_LAPACK, name) for name in ("qr_r_raw", "qr_reduced", "qr_complete", "svd_s")):
    _LAPACK = None
_LAPACK_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _qr_and_svd_by_gufuncs(A, full_matrices: bool):
    """``(Q, U_R, S, Vh)`` of _svd_through_qr exactly as numpy.linalg.qr (mode reduced, or complete
    with full_matrices) and numpy.linalg.svd of R compute them: in float64, each result cast back to
    ``A``'s dtype, but calling their gufuncs without the wrappers' Python around each (which cost
    more than LAPACK itself on a small matrix). None where the SVD did not converge (NaN), for
    numpy.linalg.svd to raise its error as before."""
    m, n = A.shape[-2:]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore", under="ignore"):
        a = A.astype(np.float64)  # (a copy: geqrf factors it in place)
        tau = _LAPACK.qr_r_raw(a, signature="d->d")
        Q = (_LAPACK.qr_complete if full_matrices and m > n else _LAPACK.qr_reduced)(a, tau, signature="dd->d")
        R = np.triu(a[..., :n, :]).astype(A.dtype, copy=False)
        U_R, S, Vh = _LAPACK.svd_s(R, signature="d->ddd")
    if np.isnan(S).any():
        return None
    return (Q.astype(A.dtype, copy=False), U_R.astype(A.dtype, copy=False), S.astype(A.dtype, copy=False),
            Vh.astype(A.dtype, copy=False))


def _svd_array(xp, A, **options):
    """``xp.linalg.svd(A, **options)``, raising torch's LinAlgError where LAPACK gives up on a matrix
    holding a NaN (NumPy's words were "SVD did not converge"), naming the batch element as torch does."""
    try:
        return xp.linalg.svd(A, **options)
    except xp.linalg.LinAlgError:
        finite = xp.isfinite(A).all(axis=(-2, -1))
        if bool(finite.all()):
            raise
        with_nan = xp.isnan(A).any(axis=(-2, -1))
        where = _first_failure(with_nan if bool(with_nan.any()) else ~finite, A.ndim > 2)[0]
        raise _linalg_error(f"linalg.svd: {where}The algorithm failed to converge because the input matrix "
                            "contained non-finite values.") from None


def _first_failure(info, batched: bool) -> tuple:
    """(torch's "(Batch element i): " prefix for a batched input, or "", and LAPACK's info value) of
    the first matrix whose info is non-zero (info: an array of the batch shape, on any device)."""
    flat = info.reshape(-1)
    host = flat.get() if hasattr(flat, "get") else flat
    failing = int(np.flatnonzero(host)[0])
    return (f"(Batch element {failing}): " if batched else ""), int(host[failing])


def _zero_pivot_error(op: str, info, batched: bool) -> RuntimeError:
    where, k = _first_failure(info, batched)
    return RuntimeError(f"{op}: {where}U[{k},{k}] is zero and using it on lu_solve would result in a division by zero. "
                        "If you still want to perform the factorization, consider calling linalg.lu(A, pivot) or "
                        "linalg.lu_factor_ex(A, pivot)")


class LuFactor(Function):
    _array_forward = True
    node_name = "LinalgLuFactorExBackward0"
    label = "lu_factor"
    rule = "LU = tril(L, -1) + U: L's and U's gradients from the packed one, then lu's rule"
    formula = "lu_factor({0})"
    # (pivot=False has no CPU kernel in torch: the node's pivot is always True)
    saved_attributes = {"_saved_LU": saved(0), "_saved_pivot": True,
                        "_saved_pivots": ctx_value("pivots", Tensor._make, tensor=True)}

    @staticmethod
    def forward(ctx, A, raise_op):
        xp = array_module(A)
        LU, pivots, info = _lu_array(xp, A)
        if raise_op and has_values(info) and bool(info.any()):
            raise _zero_pivot_error(raise_op, info, A.ndim > 2)
        LU = _column_major(LU)
        ctx.pivots = pivots
        ctx.save_for_backward(LU)
        ctx.mark_non_differentiable(pivots, info)
        return LU, pivots, info

    @staticmethod
    def backward(ctx, grad, grad_pivots, grad_info):
        (LU,) = ctx.saved_values
        m, n = LU.shape[-2:]
        L, U = _unpack_lu(LU, m, n)
        k = min(m, n)
        P = _const(_permutation_array(array_module(LU._data), ctx.pivots, m, LU._data.dtype))
        return _lu_backward(P, L, U, grad[..., :, :k].tril(-1), grad[..., :k, :].triu())


def _check_lu_input(A: Tensor, op: str, pivot: bool) -> None:
    # torch's parser first (A a tensor, pivot a bool), then its checks of the shape and its kernel's dtype
    binding = op.replace(".", "_")
    if not isinstance(A, Tensor):
        raise TypeError(f"{binding}(): argument 'A' (position 1) must be Tensor, not {type(A).__name__}")
    check_bool(pivot, binding, "pivot")
    if A._data.ndim < 2:
        raise RuntimeError(f"torch.lu_factor: Expected tensor with 2 or more dimensions. Got size: "
                           f"{list(A.shape)} instead")
    if A._data.dtype.kind in "biu":
        raise NotImplementedError(f"\"lu_cpu\" not implemented for '{_dtype.scalar_name(A.dtype)}'")
    _check_float(A, op)
    if not pivot:
        raise RuntimeError(f"{op}: LU without pivoting is not implemented on the CPU")


@_refuses_low_precision(_LU_CPU)
def linalg_lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False, out=None):
    """torch.linalg.lu_factor_ex: ``(LU, pivots, info)``, LAPACK's packed factors of A = P L U
    (L unit lower, U upper), the 1-based row swaps (int32, (..., min(m, n))) and info (int32):
    0, or the 1-based index of U's first zero diagonal entry."""
    _check_lu_input(A, "linalg.lu_factor_ex", pivot)
    LU, pivots, info = LuFactor.apply(A, raise_op="torch.linalg.lu_factor_ex" if check_errors else None)
    return _copy_out(return_types.linalg_lu_factor_ex(LU, pivots, info), out, "linalg.lu_factor_ex")


@_refuses_low_precision(_LU_CPU)
def linalg_lu_factor(A: Tensor, *, pivot: bool = True, out=None):
    """torch.linalg.lu_factor: ``(LU, pivots)`` as lu_factor_ex; a zero on U's diagonal raises."""
    _check_lu_input(A, "linalg.lu_factor", pivot)
    LU, pivots, _ = LuFactor.apply(A, raise_op="torch.linalg.lu_factor")
    return _copy_out(return_types.linalg_lu_factor(LU, pivots), out, "linalg.lu_factor")


class Lu(Function):
    _array_forward = True
    node_name = "LinalgLuBackward0"
    label = "lu"
    rule = "A = PLU: ∂/∂A = P L⁻ᴴ (tril(Lᴴ G_L, -1) + triu(G_U Uᴴ)) U⁻ᴴ (square; wide and tall split)"
    formula = "lu({0})"
    saved_attributes = {"_saved_L": saved(1), "_saved_P": saved(0, then=Tensor.detach), "_saved_U": saved(2), "_saved_pivot": True}

    @staticmethod
    def forward(ctx, A):
        xp = array_module(A)
        m, n = A.shape[-2:]
        k = min(m, n)
        LU, pivots, _ = _lu_array(xp, A)
        P = xp.ascontiguousarray(_permutation_array(xp, pivots, m, A.dtype))
        L = xp.tril(LU[..., :, :k], -1) + xp.eye(m, k, dtype=A.dtype)
        U = xp.ascontiguousarray(xp.triu(LU[..., :k, :]))
        ctx.save_for_backward(P, L, U)
        ctx.mark_non_differentiable(P)
        return P, L, U

    @staticmethod
    def backward(ctx, grad_p, grad_l, grad_u):
        P, L, U = ctx.saved_values
        return _lu_backward(P, L, U, grad_l, grad_u)


@_refuses_low_precision(_LU_CPU)
def linalg_lu(A: Tensor, *, pivot: bool = True, out=None):
    """torch.linalg.lu: ``(P, L, U)`` with A = P L U, P a permutation (..., m, m), L unit lower
    (..., m, k), U upper (..., k, n), k = min(m, n)."""
    _check_lu_input(A, "linalg.lu", pivot)
    P, L, U = Lu.apply(A)
    return _copy_out(return_types.linalg_lu(P, L, U), out, "linalg.lu")


@_refuses_low_precision(_kernel_refusal("linalg.lu_solve_cpu"))
def linalg_lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False,
                    out=None) -> Tensor:
    """torch.linalg.lu_solve: X with ``A X = B`` (``X A = B`` when left=False; Aᴴ for adjoint)
    from lu_factor's ``(LU, pivots)``; composed of triangular solves, so its gradient reaches
    LU through L's and U's triangles."""
    check_bool(left, "linalg_lu_solve", "left")
    check_bool(adjoint, "linalg_lu_solve", "adjoint")
    _check_square(LU, "linalg.lu_solve")
    if isinstance(pivots, Tensor) and pivots.dtype is not _dtype.int32:  # lu_factor's pivots are int32
        raise RuntimeError("linalg.lu_solve: pivots should be a Tensor of scalar type torch.int32")
    if B._data.ndim < 2:
        raise RuntimeError("linalg.lu_solve: The input tensor B must have at least 2 dimensions.")
    n, (rows, cols) = LU._data.shape[-1], B._data.shape[-2:]
    if (rows if left else cols) != n:
        equation = "AX = B" if left else "XA = B"
        raise RuntimeError(f"linalg.lu_solve: Incompatible shapes of A and B for the equation {equation} "
                           f"({n}x{n} and {rows}x{cols})")
    if _function.active_dispatch is not None and out is None:  # (the pivots' array is read: a wrapper's handler)
        made = _function.argument_dispatch("linalg_lu_solve", linalg_lu_solve, (LU, pivots, B),
                                           {"left": left, "adjoint": adjoint})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    xp = array_module(LU._data)
    L, U = _unpack_lu(LU, n, n)
    P = _const(_permutation_array(xp, pivots._data, n, LU._data.dtype))
    if not left:  # X A = B  <=>  Aᴴ Xᴴ = Bᴴ
        return _copy_out(name_node(_adjoint(linalg_lu_solve(LU, pivots, _adjoint(B), adjoint=not adjoint)),
                                   "LinalgLuSolveBackward0"), out, "linalg.lu_solve")
    if adjoint:  # Aᴴ X = B with Aᴴ = Uᴴ Lᴴ Pᵀ: X = P L⁻ᴴ U⁻ᴴ B
        y = linalg_solve_triangular(_adjoint(U), B, upper=False)
        X = matmul(P, linalg_solve_triangular(_adjoint(L), y, upper=True, unitriangular=True))
        X = X.mT.contiguous().mT  # LAPACK's column-major layout, which torch returns
    else:  # X = U⁻¹ L⁻¹ Pᵀ B
        y = linalg_solve_triangular(L, matmul(P.mT, B), upper=False, unitriangular=True)
        X = linalg_solve_triangular(U, y, upper=True)
    return _copy_out(name_node(X, "LinalgLuSolveBackward0"), out, "linalg.lu_solve")


# ---------------------------------------------------------------- matrix exponential
# Taylor coefficients 1/k! up to degree 18, and the 1-norm up to which the degree-18 remainder
# (‖X‖^19 / 19!) stays below the dtype's unit roundoff: 1.09 in double, 3.01 in single precision.
# Like torch's (an optimised Taylor polynomial, Bader, Blanes & Casas 2019), the polynomial takes
# matmuls and sums only, no solve, so structural zeros and ones survive exactly: the bottom block of
# exp([[A, B], [0, 0]]) is exactly I, a triangular input gives a triangular result.
_TAYLOR_18 = tuple(1.0 / math.factorial(k) for k in range(19))
_THETA_18 = {np.dtype(np.float64): 1.09, np.dtype(np.complex128): 1.09,
             np.dtype(np.float32): 3.01, np.dtype(np.complex64): 3.01}


def _expm_array(xp, A):
    """exp(A) for a batch by scaling and squaring a degree-18 Taylor polynomial, evaluated by
    Paterson-Stockmeyer in powers of X⁴; each matrix is scaled by its own 2^-s and squared s times."""
    n = A.shape[-1]
    if A.size == 0:
        return A.copy()
    norms = xp.abs(A).sum(-2).max(-1)  # 1-norms
    theta = _THETA_18.get(A.dtype, 1.09)
    exponents = xp.maximum(0, xp.ceil(xp.log2(xp.maximum(norms, 1e-300) / theta))).astype(np.int64)
    X = A / (2.0 ** exponents)[..., None, None].astype(A.dtype)
    c = _TAYLOR_18
    identity = xp.eye(n, dtype=A.dtype)
    X2 = X @ X
    X3 = X2 @ X
    X4 = X2 @ X2

    def block(k):  # c_k I + c_{k+1} X + c_{k+2} X² + c_{k+3} X³, cut at degree 18
        terms = [c[k] * identity, c[k + 1] * X, c[k + 2] * X2] + ([c[k + 3] * X3] if k + 3 <= 18 else [])
        return sum(terms[1:], terms[0])

    result = block(16)
    for k in (12, 8, 4, 0):
        result = result @ X4 + block(k)
    if not has_values(A):
        return result.astype(A.dtype, copy=False)
    for step in range(int(exponents.max()) if exponents.size else 0):
        squared = result @ result
        result = xp.where((exponents > step)[..., None, None], squared, result)
    return result.astype(A.dtype, copy=False)


class MatrixExp(Function):
    _array_forward = True
    node_name = "LinalgMatrixExpBackward0"
    label = "matrix_exp"
    rule = "∂/∂A = the upper-right block of exp([[Aᴴ, G], [0, Aᴴ]]) (the Fréchet derivative at Aᴴ)"
    formula = "matrix_exp({0})"
    saved_attributes = {"_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        xp = array_module(A)
        if A.dtype == np.float16:  # torch computes a float16 exponential (by matmuls, no LAPACK); NumPy's solve has none
            return xp.ascontiguousarray(_expm_array(xp, A.astype(np.float32)).astype(np.float16))
        return xp.ascontiguousarray(_expm_array(xp, A))

    @staticmethod
    def backward(ctx, grad):
        from .shape import cat

        (A,) = ctx.saved_values
        n = A.shape[-1]
        top = cat([_adjoint(A), grad], -1)  # Aᴴ for complex A: the rule is holomorphic
        bottom = cat([grad * 0, _adjoint(A)], -1)
        return MatrixExp.apply(cat([top, bottom], -2))[..., :n, n:]


def matrix_exp(input: Tensor) -> Tensor:
    """torch.matrix_exp / torch.linalg.matrix_exp: the matrix exponential of a (batch of) square
    matrix, by scaling and squaring a degree-18 Taylor polynomial (torch names the tensor ``input`` in both)."""
    _check_square(input, "linalg.matrix_exp")
    return MatrixExp.apply(input)


@honours_out
def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """torch.linalg.cross: the 3-vector cross product along ``dim`` (the last by default; torch.cross's
    first dim of size 3 is not looked for); inputs of the same number of dims broadcast."""
    if input.dim() != other.dim():
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    return _cross(input, other, dim, "linalg.cross")


@_refuses_low_precision((RuntimeError, "linalg.vander supports floating point, complex, and integer tensors, but got {dtype}"))
def linalg_vander(x: Tensor, *, N: int | None = None) -> Tensor:
    """torch.linalg.vander: (..., n, N) with columns x⁰, x¹, ..., x^(N-1) (N defaults to n)."""
    from .creation import ones_like
    from .reduce import cumprod
    from .shape import cat

    N = (x._data.shape[-1] if x._data.ndim else 0) if N is None else check_int(N, "linalg_vander", "N")
    if N < 1:  # torch's message, also for a 0-d x without N
        raise RuntimeError("N must be greater than 1.")
    if x._data.ndim == 0:
        x = x.reshape(1)  # torch reads a 0-d x given N as one point: a (1, N) result
    if x._data.dtype.kind == "b":
        x = x.long()
    ones = ones_like(x).unsqueeze(-1)
    if N == 1:
        return ones
    # torch's construction: [1, cumprod of x repeated N-1 times]
    powers = cumprod(x.unsqueeze(-1).expand(*x._data.shape, N - 1), -1)
    return cat([ones, powers], -1)



# these write their out= themselves, through _copy_out (tests/ops/test_torch_compat.py checks the mark)
for _writes_out in (linalg_solve_triangular, linalg_cholesky_ex, linalg_cholesky, cholesky, cholesky_solve,
                    cholesky_inverse, linalg_qr, qr, linalg_eigh, linalg_eigvalsh, linalg_svd, linalg_svdvals, svd,
                    linalg_pinv, linalg_matrix_rank, linalg_cond, linalg_lu_factor_ex, linalg_lu_factor, linalg_lu,
                    linalg_lu_solve):
    _writes_out.honours_out = True
del _writes_out


# ---------------------------------------------------------------- the *_ex forms, tensor inverses, Householder
def _singular_mask(A: Tensor):
    """(info, singular): LAPACK getrf's info per matrix (0, or the 1-based index of U's first zero
    pivot) and where it is non-zero, as arrays of A's batch shape."""
    xp = array_module(A._data)
    _, _, info = _lu_array(xp, A._data)
    return info, info != 0


def _inversion_error(op: str, info, batched: bool) -> Exception:
    where, k = _first_failure(info, batched)
    return _linalg_error(f"{op}: {where}The diagonal element {k} is zero, the inversion could not be "
                         "completed because the input matrix is singular.")


def _on_nonsingular(A: Tensor, singular, compute, B: Tensor | None = None, left: bool = True):
    """``compute(A)`` where A is invertible; where it is singular, what torch's LAPACK leaves there:
    getrs run on getrf's factors of A with ``B`` (the identity when None: an inverse), dividing by
    U's zero pivots (see _through_zero_pivots). The singular matrices are swapped for the identity
    while computing, so that the recorded graph is that of the invertible ones."""
    from .elementwise import where

    if not has_values(singular) or not bool(singular.any()):
        return compute(A)
    mask = Tensor._make(singular.reshape(singular.shape + (1, 1)))
    safe = where(mask, _eye_like(A, A._data.shape[-1]), A)
    result = compute(safe)
    vector = result._data.ndim != A._data.ndim
    mask = mask if not vector else mask.squeeze(-1)
    right = B._data if B is not None else array_module(A._data).eye(A._data.shape[-1], dtype=A._data.dtype)
    filled = _through_zero_pivots(A._data, right[..., :, None] if vector else right, left, result._data.dtype)
    return where(mask, Tensor._make(filled[..., 0] if vector else filled), result)


def _through_zero_pivots(a, b, left: bool, dtype):
    """LAPACK getrs on getrf's factors of ``a`` (getrs with trans for ``X a = b``, on bᵀ), zero
    pivots and all, for every matrix of the broadcast batch: torch's solve_ex and inv_ex leave
    this where info says A is singular, the infinities and NaNs of dividing by U's zero diagonal.
    The substitutions run as reference BLAS's trsm orders them (measured against torch 2.13 on 134
    singular integer matrices of sizes 2 to 4: every solve, either side, and every inverse but one
    in float64 had torch's bits, in float32 and float64)."""
    xp = array_module(a)
    n = a.shape[-1]
    factors, pivots, _ = _lu_array(xp, a)
    b = b if left else xp.swapaxes(b, -1, -2)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    count = math.prod(batch)
    factors = xp.broadcast_to(factors, batch + (n, n)).reshape(count, n, n)
    pivots = xp.broadcast_to(pivots, batch + (n,)).reshape(count, n) - 1
    x = xp.broadcast_to(b, batch + b.shape[-2:]).reshape((count,) + b.shape[-2:]).astype(dtype, copy=True)
    rows = xp.arange(count)

    def swap(j):
        p = pivots[:, j]
        row_j, row_p = x[rows, j].copy(), x[rows, p].copy()
        x[rows, p], x[rows, j] = row_j, row_p

    with np.errstate(all="ignore"):
        if left:  # P L U x = b: the row swaps, then L (unit lower) and U column by column
            for j in range(n):
                swap(j)
            for k in range(n):
                x[:, k + 1:] -= factors[:, k + 1:, k:k + 1] * x[:, k:k + 1]
            for k in reversed(range(n)):
                x[:, k] /= factors[:, k, k:k + 1]
                x[:, :k] -= factors[:, :k, k:k + 1] * x[:, k:k + 1]
        else:  # Uᵀ Lᵀ Pᵀ x = bᵀ: Uᵀ (lower) and Lᵀ (unit upper) row by row, then the swaps undone
            for i in range(n):
                for k in range(i):
                    x[:, i] -= factors[:, k, i:i + 1] * x[:, k]
                x[:, i] /= factors[:, i, i:i + 1]
            for i in reversed(range(n)):
                for k in range(i + 1, n):
                    x[:, i] -= factors[:, k, i:i + 1] * x[:, k]
            for j in reversed(range(n)):
                swap(j)
    x = x.reshape(batch + x.shape[-2:])
    return x if left else xp.swapaxes(x, -1, -2)


@cpu_autocast_policy("float32")
@_refuses_low_precision(_INV_LOW_PRECISION)
def linalg_inv_ex(A: Tensor, *, check_errors: bool = False, out=None):
    """torch.linalg.inv_ex: ``(inverse, info)``; info (int32, A's batch shape) is 0 for an
    invertible matrix and LAPACK's index of the zero pivot otherwise, where the inverse is NaN
    (undefined in torch). ``check_errors=True`` raises torch's LinAlgError instead."""
    from .linalg import inv

    _check_square(A, "linalg.inv")  # torch's checks name linalg.inv
    _check_float(A, "linalg.inv")
    if _function.active_dispatch is not None and out is None:  # (info is read from A's array: a wrapper's handler)
        made = _function.argument_dispatch("linalg_inv_ex", linalg_inv_ex, (A,), {"check_errors": check_errors})
        if made is not _function.RUN_UNDISPATCHED:
            return return_types.linalg_inv_ex(*made)
    info, singular = _singular_mask(A)
    if check_errors and bool(singular.any()):
        raise _inversion_error("linalg.inv_ex", info, A._data.ndim > 2)
    inverse = _on_nonsingular(A, singular, inv)
    return _copy_out(return_types.linalg_inv_ex(inverse, _const(info)), out, "linalg.inv_ex")


@_refuses_low_precision(_LU_CPU)
def linalg_solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False, out=None):
    """torch.linalg.solve_ex: ``(result, info)`` as linalg.solve, with LAPACK's info per matrix
    (the result is NaN where A is singular) instead of an error unless ``check_errors``."""
    check_bool(left, "linalg_solve_ex", "left")
    check_bool(check_errors, "linalg_solve_ex", "check_errors")
    from .linalg import solve

    _check_square(A, "linalg.solve")  # torch's checks name linalg.solve
    _check_float(A, "linalg.solve")
    if _function.active_dispatch is not None and out is None:  # (info is read from A's array: a wrapper's handler)
        made = _function.argument_dispatch("linalg_solve_ex", linalg_solve_ex, (A, B),
                                           {"left": left, "check_errors": check_errors})
        if made is not _function.RUN_UNDISPATCHED:
            return return_types.linalg_solve_ex(*made)
    info, singular = _singular_mask(A)
    if check_errors and bool(singular.any()):
        batch_element, _ = _first_failure(info, A._data.ndim > 2)
        raise _linalg_error(f"torch.linalg.solve_ex: {batch_element}The solver failed because the input matrix is "
                            "singular.")
    result = _on_nonsingular(A, singular, lambda a: solve(a, B, left=left), B, left)
    return _copy_out(return_types.linalg_solve_ex(result, _const(info)), out, "linalg.solve_ex")


@out_rule("same")
@_refuses_low_precision(_LU_CPU)
def linalg_det(A: Tensor) -> Tensor:
    """torch.linalg.det: torch.det under the keyword name torch.linalg's binding takes (A, not input)."""
    from .linalg import det

    return det(A)


@out_rule("same")
@_refuses_low_precision(_SLOGDET_LOW_PRECISION)
def linalg_slogdet(A: Tensor):
    """torch.linalg.slogdet: torch.slogdet under the keyword name torch.linalg's binding takes (A), its
    result named ``linalg_slogdet`` as torch's is."""
    from .linalg import slogdet

    return return_types.linalg_slogdet(*slogdet(A))


@cpu_autocast_policy("float32")
@_refuses_low_precision(_INV_LOW_PRECISION)
def linalg_tensorinv(input: Tensor, ind: int = 2, *, out=None) -> Tensor:
    """torch.linalg.tensorinv: the inverse of A viewed as a (prod(shape[:ind]), prod(shape[ind:]))
    matrix, shaped ``shape[ind:] + shape[:ind]`` (so tensordot(inv, A, ind) is the identity)."""
    A = input  # torch's Python binding takes these keyword names
    from .linalg import inv

    ind = check_int(ind, "linalg_tensorinv", "ind")
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    shape = tuple(A._data.shape)
    rows, cols = int(np.prod(shape[:ind])), int(np.prod(shape[ind:]))
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == prod(self.shape[:ind]), "
                           f"but got {cols} != {rows}")
    result = inv(A.reshape(rows, cols)).reshape(shape[ind:] + shape[:ind])
    return _copy_out(result, out, "linalg.tensorinv", composite=True)


@cpu_autocast_policy("float32")
@_refuses_low_precision(_LU_CPU)
def linalg_tensorsolve(input: Tensor, other: Tensor, dims=None, *, out=None) -> Tensor:
    """torch.linalg.tensorsolve: X with ``tensordot(A, X, X.ndim) = B``; ``dims`` of A are moved
    to the end first. X has shape ``A.shape[B.ndim:]``."""
    A, B = input, other  # torch's Python binding takes these keyword names
    from .linalg import solve

    if dims is not None:
        dims = [d % A._data.ndim for d in dims]
        A = A.permute([d for d in range(A._data.ndim) if d not in dims] + dims)
    shape = tuple(A._data.shape)
    # torch compares with B's size, not A's leading dims
    rows, cols = B._data.size, int(np.prod(shape[B._data.ndim:]))
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
                           f"prod(self.shape[:other.ndim]), but got {cols} != {rows}")
    result = solve(A.reshape(rows, cols), B.reshape(rows)).reshape(shape[B._data.ndim:])
    return _copy_out(result, out, "linalg.tensorsolve", composite=True)


class NoReflectors(Function):
    """householder_product with an empty tau: the identity's first n columns, which torch still
    records on A and tau; its backward gives them no gradient (None, as torch's)."""
    label = "householder_product"
    rule = "no gradient to A or tau (the result does not depend on them)"
    formula = "householder_product({0}, {1})"
    _array_forward = True

    @staticmethod
    def forward(ctx, A, tau):
        xp = array_module(A)
        return xp.broadcast_to(xp.eye(*A.shape[-2:], dtype=A.dtype), A.shape).copy()

    @staticmethod
    def backward(ctx, grad):
        return None, None


@cpu_autocast_policy("float32")  # torch's CPU autocast lists orgqr
@_refuses_low_precision(_kernel_refusal("orgqr_cpu"))
def linalg_householder_product(input: Tensor, tau: Tensor, *, out=None) -> Tensor:
    """torch.linalg.householder_product (LAPACK orgqr): the first n columns of H₁ ⋯ H_k with
    Hᵢ = I - τᵢ vᵢ vᵢᴴ, vᵢ = (0, ..., 0, 1, A[i+1:, i]) — the Q of geqrf's packed reflectors.
    Composed of chainrule ops, so its gradient (to A and tau) comes from theirs."""
    A = input  # torch's Python binding takes these keyword names
    from .shape import cat

    if A._data.ndim < 2:
        raise RuntimeError("torch.linalg.householder_product: input must have at least 2 dimensions.")
    m, n = A._data.shape[-2:]
    k = tau._data.shape[-1] if tau._data.ndim else 0
    if m < n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-2] must be greater than or equal to "
                           "input.shape[-1]")
    if n < k:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-1] must be greater than or equal to "
                           "tau.shape[-1]")
    if tau._data.ndim != A._data.ndim - 1:
        raise RuntimeError("torch.linalg.householder_product: Expected tau to have one dimension less than input, "
                           f"but got tau.ndim equal to {tau._data.ndim} and input.ndim is equal to {A._data.ndim}")
    xp = array_module(A._data)
    batch = A._data.shape[:-2]
    Q = _const(xp.broadcast_to(xp.eye(m, n, dtype=A._data.dtype), batch + (m, n)))
    # applied right to left, Q = H₁ (H₂ (⋯ (H_k I))), each step a rank-one update of Q
    for i in reversed(range(k)):
        head = _const(xp.broadcast_to(xp.asarray([0.0] * i + [1.0], dtype=A._data.dtype), batch + (i + 1,)))
        v = cat([head, A[..., i + 1:, i]], -1).unsqueeze(-1)
        Q = Q - tau[..., i, None, None] * _mat(v, _mat(_adjoint(v), Q))
    if k == 0:
        Q = NoReflectors.apply(A, tau)
    Q = Q.mT.contiguous().mT  # LAPACK's column-major layout, which torch returns
    return _copy_out(name_node(Q, "LinalgHouseholderProductBackward0", label="householder_product"), out,
                     "linalg.householder_product")


@honours_out
def orgqr(input: Tensor, input2: Tensor) -> Tensor:
    """torch.orgqr: linalg.householder_product under LAPACK's name (torch's keyword for tau is input2)."""
    return linalg_householder_product(input, input2)


# ---------------------------------------------------------------- torch's older lu/solve names
@honours_out
def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True, unpack_pivots: bool = True):
    """torch.lu_unpack: ``(P, L, U)`` from lu_factor's packed ``(LU, pivots)``; a part not asked for
    is an empty tensor, as torch's."""
    if _function.active_dispatch is not None:  # (the pivots are read from their array: a wrapper's handler)
        made = _function.argument_dispatch("lu_unpack", lu_unpack, (LU_data, LU_pivots, unpack_data, unpack_pivots), {})
        if made is not _function.RUN_UNDISPATCHED:
            return return_types.lu_unpack(*made)
    pivots = _checked_lu_pivots(LU_data, LU_pivots, unpack_pivots)
    xp = array_module(LU_data._data)
    m, n = LU_data._data.shape[-2:]
    empty = _const(xp.zeros((0,), dtype=LU_data._data.dtype))
    L, U = _unpack_lu(LU_data, m, n) if unpack_data else (empty, empty)
    P = _const(xp.ascontiguousarray(_permutation_array(xp, pivots, m, LU_data._data.dtype))) \
        if unpack_pivots else empty
    return return_types.lu_unpack(P, name_node(L, "LuUnpackBackward0"), name_node(U, "LuUnpackBackward0"))


@_refuses_low_precision(_LU_CPU)
def lu(A: Tensor, pivot: bool = True, get_infos: bool = False, out=None):
    """torch.lu (deprecated): ``(LU, pivots)``, or ``(LU, pivots, infos)`` with ``get_infos``, as
    linalg.lu_factor_ex."""
    result = _lu_with_info(A, pivot, get_infos)
    if out is None:
        return result
    if not isinstance(out, (tuple, list)) or len(out) != len(result):
        raise TypeError(f"lu(): argument 'out' must be a tuple of {len(result)} Tensors")
    return tuple(_copy_out(value, target, "lu") for value, target in zip(result, out))


def _lu_method(self: Tensor, pivot: bool = True, get_infos: bool = False):
    """Tensor.lu: torch.lu without out=, its own Python method in torch."""
    return _lu_with_info(self, pivot, get_infos)


_lu_method.__name__, _lu_method.__qualname__ = "lu", "Tensor.lu"  # named as torch's in Python's refusals


def _lu_with_info(A, pivot, get_infos) -> tuple:
    """torch.lu's and Tensor.lu's shared body: torch's Python hands both to _lu_with_info, whose
    parser words their refusals and which then warns that torch.lu is deprecated."""
    check_as("_lu_with_info", A, pivot=pivot, check_errors=not get_infos)
    _config.warn_once("torch.lu is deprecated in favor of torch.linalg.lu_factor / torch.linalg.lu_factor_ex and "
                      "will be removed in a future PyTorch release.\nLU, pivots = torch.lu(A, compute_pivots)\n"
                      "should be replaced with\nLU, pivots = torch.linalg.lu_factor(A, compute_pivots)\nand\n"
                      "LU, pivots, info = torch.lu(A, compute_pivots, get_infos=True)\nshould be replaced with\n"
                      "LU, pivots, info = torch.linalg.lu_factor_ex(A, compute_pivots) (Triggered internally at "
                      "/__w/pytorch/pytorch/aten/src/ATen/native/BatchLinearAlgebra.cpp:2073.)")
    LU, pivots, info = linalg_lu_factor_ex(A, pivot=pivot)
    return (LU, pivots, info) if get_infos else (LU, pivots)


def lu_solve(input: Tensor, LU_data: Tensor, LU_pivots: Tensor, *, out=None) -> Tensor:
    """torch.lu_solve (deprecated): linalg.lu_solve with the arguments in the old order."""
    b = input  # torch's Python binding takes these keyword names
    _config.warn_once("torch.lu_solve is deprecated in favor of torch.linalg.lu_solveand will be removed in a "
                      "future PyTorch release.\nNote that torch.linalg.lu_solve has its arguments reversed.\n"
                      "X = torch.lu_solve(B, LU, pivots)\nshould be replaced with\nX = torch.linalg.lu_solve(LU, pivots, B)")
    return _copy_out(linalg_lu_solve(LU_data, LU_pivots, b), out, "lu_solve")


@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("triangular_solve_cpu"))
def triangular_solve(input: Tensor, A: Tensor, upper: bool = True, transpose: bool = False, unitriangular: bool = False,
                     *, out=None):
    """torch.triangular_solve (deprecated): ``(solution, cloned_coefficient)`` with op(A) X = b,
    op(A) = Aᵀ when ``transpose``."""
    check_bool(upper, "triangular_solve", "upper")
    check_bool(transpose, "triangular_solve", "transpose")
    check_bool(unitriangular, "triangular_solve", "unitriangular")
    b = input  # torch's Python binding takes these keyword names
    _config.warn_once("torch.triangular_solve is deprecated in favor of torch.linalg.solve_triangularand will be "
                      "removed in a future PyTorch release.\ntorch.linalg.solve_triangular has its arguments reversed "
                      "and does not return a copy of one of the inputs.\nX = torch.triangular_solve(B, A).solution\n"
                      "should be replaced with\nX = torch.linalg.solve_triangular(A, B).")
    if A._data.ndim < 2 or A._data.shape[-1] != A._data.shape[-2]:
        raise RuntimeError(f"A must be batches of square matrices, but they are {A._data.shape[-2]} by "
                           f"{A._data.shape[-1]} matrices")
    coefficient = A.mT if transpose else A
    solution = name_node(linalg_solve_triangular(coefficient, b, upper=upper != transpose, unitriangular=unitriangular),
                         "TriangularSolveBackward0")
    # torch's copy is column-major (LAPACK's), an output of the same node as the solution
    cloned = name_node(A.mT.contiguous().mT, "TriangularSolveBackward0")
    return _copy_out(return_types.triangular_solve(solution, cloned), out, "triangular_solve")


def nuclear_norm(input: Tensor, dim=None, keepdim: bool = False, *, out=None) -> Tensor:
    """torch.nuclear_norm (deprecated for linalg.matrix_norm(A, 'nuc')): the sum of the singular
    values over the two ``dim`` (the last two of a matrix by default)."""
    from .linalg import _matrix_norm_dims

    if isinstance(dim, bool):  # torch.nuclear_norm(input, keepdim)
        dim, keepdim = None, dim
    elif isinstance(dim, (int, np.integer)):  # its schema's int[2]: one int stands for both dims
        dim = (dim, dim)
    # torch's three overloads warn from three places, each once; then linalg.matrix_norm's checks
    _config.warn_once(_deprecated_norm("nuclear_norm", "matrix_norm(A, 'nuc', dim, keepdim)",
                                       3229 if out is None else 3217 if dim is None else 3241))
    dims = _matrix_norm_dims(input, (-2, -1) if dim is None else dim, low_precision=False)
    result = linalg_svdvals(input.movedim(dims, (-2, -1))).sum(-1)
    if keepdim:  # the two size-1 dims moved back where dim names them, as torch does
        result = result.unsqueeze(-1).unsqueeze(-1).movedim((-2, -1), dims)
    return _copy_out(result, out, "nuclear_norm", composite=True)


def frobenius_norm(input: Tensor, dim, keepdim: bool = False, *, out=None) -> Tensor:
    """torch.frobenius_norm (deprecated for linalg.vector_norm(A, 2, dim)): the 2-norm over ``dim``."""
    from .linalg import vector_norm

    _config.warn_once(_deprecated_norm("frobenius_norm", "vector_norm(A, 2., dim, keepdim)",
                                       3175 if out is None else 3195))
    return _copy_out(name_node(vector_norm(input, 2, dim, keepdim), "NormBackward1"), out, "frobenius_norm")


def _deprecated_norm(name: str, replacement: str, line: int) -> str:
    return (f"at::{name} is deprecated and it is just left for JIT compatibility. It will be removed in a future "
            f"PyTorch release. Please use `linalg.{replacement}` instead (Triggered internally at "
            f"/__w/pytorch/pytorch/aten/src/ATen/native/LinearAlgebra.cpp:{line}.)")


# ---------------------------------------------------------------- randomized low-rank SVD and PCA
_SKETCH_DTYPES = (_dtype.float16, _dtype.float32, _dtype.float64)


def _approximate_basis(A: Tensor, q: int, niter: int, M: Tensor | None) -> Tensor:
    """Q (..., m, q) with orthonormal columns spanning most of A - M's range: a Gaussian sketch
    refined by ``niter`` power iterations, each re-orthonormalised by QR (Halko, Martinsson and
    Tropp 2011, Algorithm 4.4). Differentiable: QR and matmuls only."""
    from .random import randn

    def apply(B, X):  # (torch.matmul's checks: the user's A and M meet the sketch here)
        return matmul(A if B is None else _adjoint(A), X) - (0 if M is None else matmul(M if B is None else _adjoint(M), X))

    # torch's sketch is float32 for any real A not float16/32/64 (its matmul then refuses the mix), and
    # q meets torch.randn's parser unchecked (a float q is its TypeError)
    dtype = A.dtype if A.dtype in _SKETCH_DTYPES or A.dtype.is_complex else _dtype.float32
    check_as("randn", A._data.shape[-1], q, dtype=dtype)
    Q = linalg_qr(apply(None, randn(A._data.shape[-1], q, dtype=dtype, device=A.device))).Q
    for _ in range(niter):
        Q = linalg_qr(apply("adjoint", Q)).Q
        Q = linalg_qr(apply(None, Q)).Q
    return Q


def _svd_lowrank(A: Tensor, q: int, niter: int, M: Tensor | None):
    m, n = A._data.shape[-2:]
    if M is not None:
        M = M.broadcast_to(A.shape)
    wide = m < n
    if wide:  # sketch the taller side
        A, M = _adjoint(A), (None if M is None else _adjoint(M))
    Q = _approximate_basis(A, q, niter, M)
    B = _mat(_adjoint(Q), A) - (0 if M is None else _mat(_adjoint(Q), M))
    U, S, Vh = linalg_svd(B, full_matrices=False)
    U, V = _mat(Q, U), _adjoint(Vh)
    return (V, S, U) if wide else (U, S, V)


def svd_lowrank(A: Tensor, q: int | None = 6, niter: int = 2, M: Tensor | None = None):
    """torch.svd_lowrank: ``(U, S, V)`` of a randomized rank-``q`` SVD of A - M (A ≈ U diag(S) Vᴴ),
    from a Gaussian sketch and ``niter`` power iterations; exact when rank(A - M) <= q. The sketch
    is torch's for a seed (torch's randn stream) and the steps are torch's, but the last SVD runs in
    NumPy's LAPACK, not torch's MKL: singular values agree, singular vectors may differ in sign.
    Like torch's Python, it checks neither ``q`` nor ``niter`` itself: randn's parser and range() do."""
    return _svd_lowrank(A, 6 if q is None else q, 2 if niter is None else niter, M)


def pca_lowrank(A: Tensor, q: int | None = None, center: bool = True, niter: int = 2):
    """torch.pca_lowrank: ``(U, S, V)`` of svd_lowrank on A with its column means removed
    (``center``); V's columns are the principal directions, S²/(m-1) the variances.
    ``q`` defaults to min(6, m, n). The principal directions' signs are LAPACK's choice, not
    torch's (see ``linalg_svd``): compare subspaces or |V|, not V."""
    m, n = A._data.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not (q >= 0 and q <= min(m, n)):  # (in torch's order: a list's q fails at its '>=')
        raise ValueError(f"q(={q}) must be non-negative integer and not greater than min(m, n)={min(m, n)}")
    if not niter >= 0:
        raise ValueError(f"niter(={niter}) must be non-negative integer")
    if center:
        A = A - A.mean(dim=-2, keepdim=True)
    return _svd_lowrank(A, q, niter, None)


# these write their out= themselves too, through _copy_out
for _writes_out in (linalg_inv_ex, linalg_solve_ex, linalg_tensorinv, linalg_tensorsolve, linalg_householder_product,
                    lu, lu_solve, triangular_solve, nuclear_norm, frobenius_norm):
    _writes_out.honours_out = True
del _writes_out


_REMOVED_SOLVE = ("This function was deprecated since version 1.9 and is now removed. `torch.solve` is deprecated in "
                  "favor of `torch.linalg.solve`. `torch.linalg.solve` has its arguments reversed and does not return "
                  "the LU factorization.\n\nTo get the LU factorization see `torch.lu`, which can be used with "
                  "`torch.lu_solve` or `torch.lu_unpack`.\nX = torch.solve(B, A).solution should be replaced with:\n"
                  "X = torch.linalg.solve(A, B)")
_REMOVED_LSTSQ = ("This function was deprecated since version 1.9 and is now removed. `torch.lstsq` is deprecated in "
                  "favor of `torch.linalg.lstsq`.\n`torch.linalg.lstsq` has reversed arguments and does not return the "
                  "QR decomposition in the returned tuple (although it returns other information about the problem)."
                  "\n\nTo get the QR decomposition consider using `torch.linalg.qr`.\n\nThe returned solution in "
                  "`torch.lstsq` stored the residuals of the solution in the last m - n columns of the returned value "
                  "whenever m > n. In torch.linalg.lstsq, the residuals are in the field 'residuals' of the returned "
                  "named tuple.\n\nThe unpacking of the solution, as in\nX, _ = torch.lstsq(B, A).solution[:A.size(1)]"
                  "\nshould be replaced with:\nX = torch.linalg.lstsq(A, B).solution")


def solve(input, A, *, out=None):
    """torch.solve: removed in torch 1.9 (torch keeps its Python signature, which binds first); raises
    torch's message pointing to linalg.solve."""
    raise RuntimeError(_REMOVED_SOLVE)


def lstsq(input, A, *, out=None):
    """torch.lstsq: removed in torch 1.9 (its Python signature binds first); raises torch's message
    pointing to linalg.lstsq."""
    raise RuntimeError(_REMOVED_LSTSQ)


solve.honours_out = lstsq.honours_out = True  # (they raise before any out= is written)


def _removed_solve(self, other):
    """Tensor.solve: removed in torch 1.9 (its Python signature binds first); raises torch's message
    pointing to linalg.solve."""
    raise RuntimeError(_REMOVED_SOLVE)


def _removed_lstsq(self, other):
    """Tensor.lstsq: removed in torch 1.9 (its Python signature binds first); raises torch's message
    pointing to linalg.lstsq."""
    raise RuntimeError(_REMOVED_LSTSQ)


# named as torch's in Python's refusals
_removed_solve.__name__, _removed_solve.__qualname__ = "solve", "Tensor.solve"
_removed_lstsq.__name__, _removed_lstsq.__qualname__ = "lstsq", "Tensor.lstsq"

