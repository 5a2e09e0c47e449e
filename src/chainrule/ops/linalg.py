"""Linear algebra: matmul in all its cases, mm/bmm/mv/dot, einsum with a general rule, and the
products, sums and diagonals built on them.

Matrix products call ``np.matmul`` on the arrays as they are (views, no copies) and their rules
are matmuls of transposed views. ``einsum``'s rule is again an einsum: the gradient of operand k
contracts the output gradient with every other operand, so it serves any equation, twice.
``chainrule.linalg.vector_norm`` / ``matrix_norm`` / ``norm`` live here too (as in torch.linalg).
"""

from __future__ import annotations

import builtins
import functools
import math
import string
import warnings

import numpy as np

from .. import _config, _dtype, _opmath, _sum_order, _torch_function, _vmap_frames, return_types
from .._backend import (
    array_module,
    autocast_unifies,
    broadcast_solve,
    checked_linalg,
    has_values,
    strided_view,
)
from .._layout import not_on_sparse
from .._opmath import cpu_autocast_policy
from ..autograd import forward_ad as _forward_ad
from ..autograd import function as _function_module
from ..autograd.engine import SumToSize
from ..autograd.engine import grad as autograd_grad
from ..autograd.function import (
    _NULL_CTX,
    QUIET,
    SAVED_STRIDES_ON_RELEASE,
    Function,
    SavedValue,
    as_uint64,
    ctx_value,
    input_sizes,
    input_strides,
    is_recording,
    kept_value,
    name_node,
    numpy_errstate,
    saved,
    unwatched_on_plain_arrays,
    without_derivative,
)
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..tensor import (
    Tensor,
    _wrap_dim,
    call_noting_out,
    honours_out,
    refuse_out_under_autograd,
    warn_resized_out,
    write_out,
)
from . import creation
from ._arg_parser import check_as, check_bool, out_rule
from .elementwise import (
    SPARSE_COO_TYPES,
    Mul,
    _conj,
    _one_device,
    _pair,
    conjugate_rule,
    refuse_kernel,
    where,
)
from .reduce import SumDim
from .shape import (
    Expand,
    Permute,
    Reshape,
    Transpose,
    UnsafeView,
    _infer_size,
    _share,
    _viewable,
    expanded_shape,
    reshaped,
    torch_empty_slice,
)

# the functions whose chainrule.<name> takes torch's out=, with torch's rule for the out's dtype
# (ops/_arg_parser.py namespace_with_out; chainrule/__init__.py wraps them)
__out_functions__ = {"diag": "same", "cross": "same"}
__all__ = ["matmul", "mm", "bmm", "mv", "dot", "vdot", "outer", "ger", "inner", "einsum", "tensordot",
           "addmm", "addmv", "baddbmm", "addbmm", "addr", "trace", "diag", "diagonal", "kron", "inverse",
           "det", "slogdet", "logdet", "cross", "cdist", "matrix_power", "chain_matmul", "geqrf", "ormqr", "vander"]
__not_methods__ = {"einsum", "tensordot", "cdist", "chain_matmul", "vander"}
# torch removed Tensor.eig and Tensor.symeig in 1.9: they raise its message
__tensor_methods__ = {"eig": "_removed_eig_method", "symeig": "_removed_symeig_method"}

_C_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16", "int64": "long int",
                 "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
                 "bool": "bool", "complex64": "c10::complex<float>", "complex128": "c10::complex<double>"}


def _exact_out(result: Tensor, out, op: str, vector_product: bool = False) -> Tensor:
    """torch's ``out=`` for the matrix products: BLAS writes straight into ``out``, so unlike an
    elementwise op's it takes no cast: ``out`` must already hold the result's dtype (torch words a
    1-D · 1-D product's refusal as dot's). Otherwise as ``write_out`` (resized, returned)."""
    if isinstance(out, Tensor) and out.dtype != result.dtype:
        if vector_product:
            raise RuntimeError(f"result dtype {_dtype.scalar_name(out.dtype)} does not match input dtype "
                               f"{_dtype.scalar_name(result.dtype)}")
        raise RuntimeError(f"Expected out tensor to have dtype {_C_TYPE_NAMES.get(result.dtype.name, result.dtype.name)}"
                           f", but got {_C_TYPE_NAMES.get(out.dtype.name, out.dtype.name)} instead")
    return write_out(result, out, op)


def _vector_product_out(out, input: Tensor) -> None:
    """dot_out's first steps (aten's Blas.cpp), before dot checks its operands: resize_output's
    warning for an ``out`` that is not 0-d, then its dtype checked against the input's. torch
    resizes ``out`` there, before refusing; chainrule only once every check has passed
    (``_write_vector_product``), so a refused call leaves it as it was."""
    if not isinstance(out, Tensor):
        return
    if out._data.shape != ():
        warn_resized_out(out, ())
    if out.dtype != input.dtype:
        raise RuntimeError(f"result dtype {_dtype.scalar_name(out.dtype)} does not match input dtype "
                           f"{_dtype.scalar_name(input.dtype)}")


def _write_vector_product(result: Tensor, out, op: str) -> Tensor:
    """``result`` (0-d) written into ``out``, already warned about by ``_vector_product_out``."""
    if isinstance(out, Tensor) and out._data.shape != ():
        out._data = array_module(out._data).empty((), dtype=out._data.dtype)
    return _exact_out(result, out, op, vector_product=True)


def _as_array(x) -> np.ndarray:
    xp = array_module(x)
    return x if type(x) is np.ndarray else xp.asarray(x)


# ---------------------------------------------------------------- matmul family
def _save_for_the_other(ctx, a, b, need_a: bool, need_b: bool) -> None:
    """Keep each matrix of a product only for the other's gradient, as torch does (its
    saved_tensors_hooks see only those); a matrix that needs a gradient but is not kept leaves its
    strides, which torch reports as ``_saved_<name>_sym_strides``."""
    ctx.save_for_backward(a if need_b else None, b if need_a else None)
    if need_a or need_b:
        if need_a != need_b:
            unsaved = a if need_a else b
            item, steps = unsaved.itemsize, unsaved.strides
            # a matrix's two strides built directly (every Linear's forward runs this; a generator
            # cost about twice as much)
            ctx.unsaved_strides = ((steps[0] // item, steps[1] // item) if len(steps) == 2
                                   else tuple(step // item for step in steps))
        if a.size and b.size:
            # torch keeps the strides as numbers that outlive the graph: noted now, as the arrays
            # have them, so that backward frees the saved matrices with a plain slot clear
            ctx.saved_strides = (a.strides, a.itemsize, b.strides, b.itemsize)
        else:  # (an empty matrix's strides are its tensor's, kept when backward frees it)
            ctx.torch_kept = SAVED_STRIDES_ON_RELEASE


def _matrix_strides(position: int, saved_position: int) -> SavedValue:
    """torch's ``_saved_<name>_sym_strides`` of a product's matrix: as ``input_strides``, or those
    the forward noted when it did not keep the matrix."""
    from_inputs = input_strides(position, saved_position).read

    def read(node):
        if node.needs_input_grad[position]:
            noted = getattr(node, "unsaved_strides", None)
            if noted is not None:
                return noted
            noted = getattr(node, "saved_strides", None)
            if noted is not None and node._freed:
                steps, itemsize = noted[2 * saved_position], noted[2 * saved_position + 1]
                return tuple(step // itemsize for step in steps)
        return from_inputs(node)

    return SavedValue(read)


class Matmul(Function):
    _array_forward = True
    node_name = "MatmulBackward0"
    saved_attributes = {"_saved_self": saved(1), "_saved_other": saved(0)}  # torch's matmul(self, other)
    label = "matmul"
    rule = "∂/∂A = G Bᵀ, ∂/∂B = Aᵀ G (summed over broadcast batch dims)"
    formula = "{0} @ {1}"

    @staticmethod
    def forward(ctx, a, b):
        # saved as (b, a): each only for the other's gradient
        xp = array_module(a)
        needs = ctx.needs_input_grad
        _save_for_the_other(ctx, b, a, needs[1], needs[0])
        ctx.ndims = (a.ndim, b.ndim)
        if b.ndim >= 3 and (a.ndim >= 3 or a.ndim == 2 and not needs[0]) and _small_product(a, b):
            return _in_order_product(a, b)
        if (a.ndim > 2 or b.ndim > 2) and not (needs[0] or needs[1]) and xp is np:
            return _unrecorded_batch_product(a, b)
        return _as_array(xp.matmul(_blas_ready(a), _blas_ready(b)))

    @staticmethod
    @conjugate_rule  # bilinear: for complex operands, grad_A = G Bᴴ
    def backward(ctx, grad):
        # d(A B) = dA B + A dB: grad_A = G B^T, grad_B = A^T G (1-D operands as a row / a column)
        b, a = ctx.saved_values
        a_ndim, b_ndim = ctx.ndims
        orders = _mm_orders(ctx, grad, a, b) if a_ndim == b_ndim == 2 else (False, False)
        if a_ndim >= 2 and b_ndim >= 2 and not (b_ndim == 2 and a_ndim > 2) and _products_on_arrays(grad, a, b):
            return _matrix_grads_on_arrays(grad._data, a, b, orders)
        grad_a = grad_b = None
        if a_ndim == 1 and b_ndim == 1:
            return (grad * b if b is not None else None), (grad * a if a is not None else None)
        if b_ndim == 1:
            g = grad.unsqueeze(-1)
            if b is not None:
                grad_a = _mat(g, b.unsqueeze(0))
            if a is not None:
                grad_b = _mat(a.mT, g).squeeze(-1)
                if a_ndim > 2:
                    grad_b = _as_rows(grad_b).sum(0)
            return grad_a, grad_b
        if a_ndim == 1:
            g = grad.unsqueeze(-2)
            if b is not None:
                grad_a = _mat(g, b.mT).squeeze(-2)
                if b_ndim > 2:
                    grad_a = _as_rows(grad_a).sum(0)
            if a is not None:
                grad_b = _mat(a.unsqueeze(-1), g)
            return grad_a, grad_b
        if a_ndim == b_ndim == 2:  # (torch's mm backward transposes with t(): TBackward0 under create_graph)
            return _mm_grads(grad, a, b, orders)
        if b is not None:
            grad_a = _mat(b, grad.mT).mT if orders[0] else _mat(grad, b.mT)
        if a is not None and orders[1]:
            grad_b = _mat(grad.mT, a).mT
        elif a is not None:
            if b_ndim == 2 and a_ndim > 2:
                # a weight shared over a batch: one big matmul instead of a batch summed afterwards
                grad_b = _mat(_as_rows(a).mT, _as_rows(grad))
            else:
                grad_b = _mat(a.mT, grad)
        return grad_a, grad_b


def _products_on_arrays(grad: Tensor, a, b) -> bool:
    """Whether a product's rule may run on the arrays: a plain backward (nothing records, nothing
    watches the ops, no mode would see ``mT``, NumPy's warnings off as the walk sets them) of real
    gradients (NumPy's, or a GPU's, on the GPU the walk made current) and plain saved tensors."""
    return (type(grad) is Tensor and grad._data.dtype.kind == "f"
            and (a is None or type(a) is Tensor) and (b is None or type(b) is Tensor)
            and unwatched_on_plain_arrays(grad) and not _torch_function.flags.modes_live
            and numpy_errstate.get() is QUIET)


def _mm_orders(ctx, grad, a, b) -> tuple:
    """Whether mm's gradients are torch's transposed products, (B Gᵀ)ᵀ for a column-major A and
    (Gᵀ A)ᵀ for a column-major B (strides (1, rows) exactly: its mm_mat1_backward and mm_mat2_backward
    return a column-major operand's gradient column-major, so that the leaf's keeps its layout). A
    matrix is kept only for the other's gradient; one not kept left its strides (``unsaved_strides``)."""
    needs = ctx.needs_input_grad
    # (A's gradient reads B, kept; B's reads A, kept, whose columns are B's rows)
    return (bool(needs[0]) and _is_column_major(a if a is not None else ctx.unsaved_strides, grad._data.shape[0]),
            bool(needs[1]) and _is_column_major(b if b is not None else ctx.unsaved_strides, a._data.shape[1]))


def _is_column_major(matrix, rows: int) -> bool:
    """Whether ``matrix`` (a Tensor, or its strides in elements) has strides (1, rows)."""
    if isinstance(matrix, Tensor):
        array = matrix._data
        return array.strides == (array.itemsize, rows * array.itemsize)
    return matrix == (1, rows)


def _matrix_grads_on_arrays(g, a, b, orders=(False, False)) -> tuple:
    """(G Bᵀ, Aᵀ G) of matrices or batches of one rank, as the Tensor rule computes them, on the
    arrays: each transpose the view ``mT`` makes (Transpose's forward), each product the forward
    of the node ``_mat`` would apply, unrecorded (one product node of the graph runs two); a
    column-major matrix's (``orders``, mm's) as torch's transposed product."""
    grad_a = grad_b = None
    if b is not None:
        grad_a = _transposed(_product_of_arrays(b._data, _last_two_swapped(g))) if orders[0] else \
            _product_of_arrays(g, _last_two_swapped(b._data))
    if a is not None:
        grad_b = _transposed(_product_of_arrays(_last_two_swapped(g), a._data)) if orders[1] else \
            _product_of_arrays(_last_two_swapped(a._data), g)
    return grad_a, grad_b


def _transposed(t: Tensor) -> Tensor:
    return Tensor._make(_last_two_swapped(t._data))


def _last_two_swapped(x):
    return Transpose.forward(_NULL_CTX, x, x.ndim - 2, x.ndim - 1)


def _product_of_arrays(x, y) -> Tensor:
    return Tensor._make(_NODE_BY_NDIM.get((x.ndim, y.ndim), Matmul).forward(_NULL_CTX, x, y))


def _small_product(a, b) -> bool:
    """Whether torch's bmm takes its plain loop for these float32/float64 matrices: fewer than 400
    multiply-adds per matrix product (its baddbmm_cpu_kernel; larger ones go to BLAS)."""
    return (a.dtype == b.dtype and a.dtype in (np.float32, np.float64) and type(a) is np.ndarray
            and a.shape[-1] * a.shape[-2] * b.shape[-1] < 400)


def _in_order_product(a, b):
    """The batched product as torch's small-bmm loop computes it: each dot product summed from
    k = 0 up, every product and sum rounded (no fused multiply-add). BLAS's blocked, fused sums
    differed from it in the last bit in 40% of such elements."""
    out = np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1]), a.dtype)
    for k in range(a.shape[-1]):
        out += a[..., :, k:k + 1] * b[..., k:k + 1, :]
    return out


def _rows_viewable(larger) -> bool:
    """ATen's should_fold test of the larger operand's batch dims (its last one stays): they view as rows."""
    if larger.size == 0:
        return True
    strides = [stride // larger.itemsize for stride in larger.strides]
    return all(strides[i] == strides[i + 1] * larger.shape[i + 1] for i in range(larger.ndim - 2))


def _unrecorded_batch_product(a, b):
    """A batched matmul that records nothing, computed as ``_recorded_matmul``'s decomposition computes it
    (torch's _matmul_impl, which a dispatch mode sees): a batch against a matrix or vector whose rows view
    folded into one mm/mv, any other batch expanded to 3-d for one bmm. Same bits with and without a mode."""
    d1, d2 = a.ndim, b.ndim
    larger = a if d1 >= d2 else b.swapaxes(-1, -2)
    if larger.ndim >= 3 and min(d1, d2) <= 2 and d1 != 2 and _rows_viewable(larger):
        smaller = b if d1 >= d2 else a
        folded = larger.reshape(math.prod(larger.shape[:-1]), larger.shape[-1])
        product = _as_array(np.matmul(_blas_ready(folded), _blas_ready(smaller)))
        return product.reshape(larger.shape[:-1] + smaller.shape[1:])
    n, p = (a.shape[-2],) if d1 > 1 else (), (b.shape[-1],) if d2 > 1 else ()
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    rows = math.prod(batch)
    a3 = np.broadcast_to(a if d1 > 1 else a[None], batch + (n[0] if n else 1, a.shape[-1])).reshape(
        (rows, n[0] if n else 1, a.shape[-1]))
    b3 = b[:, None] if d2 == 1 else b
    b3 = np.broadcast_to(b3, batch + b3.shape[-2:]).reshape((rows,) + b3.shape[-2:])
    product = _in_order_product(a3, b3) if _small_product(a3, b3) else _as_array(
        np.matmul(_blas_ready(a3), _blas_ready(b3)))
    return product.reshape(batch + n + p)


def _as_rows(t: Tensor) -> Tensor:
    """``t`` as a (rows, last dim) matrix; the row count is explicit, as -1 is ambiguous when empty."""
    shape = t._data.shape
    return t.reshape(math.prod(shape[:-1]), shape[-1])


def _mm_grads(grad, a, b, orders):
    """A 2-d product's gradients as torch's mm_mat1_backward / mm_mat2_backward form them: G Bᵀ and
    Aᵀ G, each computed transposed where ``orders`` says (a column-major operand), with ``t()``."""
    grad_a = grad_b = None
    if b is not None:
        grad_a = _mat(b, grad.t()).t() if orders[0] else _mat(grad, b.t())
    if a is not None:
        grad_b = _mat(grad.t(), a).t() if orders[1] else _mat(a.t(), grad)
    return grad_a, grad_b


class Mm(Matmul):
    node_name = "MmBackward0"
    torch_name = "mm"  # torch's mixed-device error names the kernel (a 2-d matmul folds into mm too)
    saved_attributes = {"_saved_self": saved(1), "_saved_self_sym_sizes": input_sizes(0),
                        "_saved_self_sym_strides": _matrix_strides(0, 1), "_saved_mat2": saved(0),
                        "_saved_mat2_sym_sizes": input_sizes(1), "_saved_mat2_sym_strides": _matrix_strides(1, 0)}
    label = "matmul"
    rule = "∂/∂A = G Bᵀ, ∂/∂B = Aᵀ G"
    formula = "{0} @ {1}"


class DenseSparseMm(Mm):
    """dense @ sparse COO as torch's kernel computes it, (sparseᵀ @ denseᵀ)ᵀ: a column-major product."""
    node_name = "MmBackward0"
    label = "matmul"
    rule = Mm.rule

    @staticmethod
    def forward(ctx, a, b):
        product = Matmul.forward(ctx, a, b)
        transposed = array_module(a).empty(product.shape[::-1], product.dtype).T  # (empty ones' strides too)
        transposed[...] = product
        return transposed


def _entry_by_entry_product(rows, cols, values, dense, start):
    """``start`` plus sparse @ dense as torch's CPU kernel of a COO operand adds it up
    (s_addmm_out_sparse_dense_worker): for each stored entry (r, c, v), in storage order (an uncoalesced
    tensor's duplicates one by one), row r gets ``v · dense[c]`` by one fused multiply-add (BLAS axpy).
    Rows are independent, so each round adds every row's next entry at once. float32 only: a step in
    float64 holds the product exactly and rounds the sum once before float32 (a fused multiply-add's
    value but for double rounding's rare ties). ``start`` is the result's memory, updated."""
    xp = array_module(dense)
    count = rows.shape[0]
    if count == 0:
        return start
    by_row = xp.argsort(rows, kind="stable")
    sorted_rows = rows[by_row]
    firsts = xp.concatenate([xp.zeros(1, xp.int64), xp.flatnonzero(sorted_rows[1:] != sorted_rows[:-1]) + 1])
    lengths = xp.diff(xp.concatenate([firsts, xp.asarray([count])]))
    rank = xp.empty(count, xp.int64)
    rank[by_row] = xp.arange(count) - xp.repeat(firsts, lengths)
    by_round = xp.argsort(rank, kind="stable")  # round k: every row's k-th entry, contiguous
    ends = xp.cumsum(xp.bincount(rank)).tolist()
    rows, cols, wide_values = rows[by_round], cols[by_round], values[by_round].astype(xp.float64)[:, None]
    begin = 0
    for end in ends:
        row = rows[begin:end]
        # (float32 times float64: the product exact, the sum rounded once in float64)
        start[row] = start[row] + wide_values[begin:end] * dense[cols[begin:end]]
        begin = end
    return start


class SparseDenseMm(Mm):
    """sparse COO @ dense with torch's CPU kernel's sums (see _entry_by_entry_product) for float32:
    the product, and the dense operand's gradient sparseᵀ @ grad, entry by entry in storage order."""
    node_name = "MmBackward0"
    label = "matmul"
    rule = Mm.rule

    @staticmethod
    def forward(ctx, a, b, entries):
        ctx.entries = entries
        if b.dtype != np.float32 or type(b) is not np.ndarray:  # (a GPU's sparse kernels sum otherwise)
            return Matmul.forward(ctx, a, b)
        needs = ctx.needs_input_grad
        _save_for_the_other(ctx, b, a, needs[1], needs[0])  # (as Matmul's forward)
        ctx.ndims = (2, 2)
        (rows, cols), values = entries
        return _entry_by_entry_product(rows, cols, values, b, np.zeros((a.shape[0], b.shape[1]), b.dtype))

    @staticmethod
    def backward(ctx, grad):
        b, a = ctx.saved_values
        if a is None or not _summed_entry_by_entry(grad):
            return Matmul.backward(ctx, grad)
        grad_a = None
        if b is not None:  # (Matmul's rule for the sparse operand's gradient)
            grad_a = _mat(b, grad.mT).mT if _mm_orders(ctx, grad, a, b)[0] else _mat(grad, b.mT)
        (rows, cols), values = ctx.entries
        return grad_a, _transposed_entries_product(rows, cols, values, grad, a.shape[1])


def _summed_entry_by_entry(grad: Tensor) -> bool:
    """Whether a COO product's backward sums sparseᵀ @ grad as torch's CPU kernel does: a plain float32
    NumPy gradient nothing records (see _entry_by_entry_product)."""
    return (type(grad) is Tensor and type(grad._data) is np.ndarray and grad._data.dtype == np.float32
            and unwatched_on_plain_arrays(grad))


def _transposed_entries_product(rows, cols, values, grad: Tensor, size: int) -> Tensor:
    """sparseᵀ @ grad for a (·, size) COO operand's entries, as torch's kernel adds it up: the transposed
    entries in the same storage order, one by one."""
    return Tensor._make(_entry_by_entry_product(cols, rows, values, grad._data,
                                                np.zeros((size, grad.shape[1]), np.float32)))


def _sparse_times_dense(sparse: Tensor, dense: Tensor) -> Tensor:
    indices, values, _ = sparse._coo
    if values.ndim != 1:  # (hybrid values: torch refuses them before this)
        return Mm.apply(sparse, dense)
    return SparseDenseMm.apply(sparse, dense, entries=((indices[0], indices[1]), values))


def _dense_times_sparse(dense: Tensor, sparse: Tensor) -> Tensor:
    product = DenseSparseMm.apply(dense, sparse)
    if product._data.size == 0:  # (NumPy zeroes an empty array's strides; torch's are column-major)
        product._numpy_empty_strides = (product._data.shape, (1, max(product._data.shape[0], 1)))
    return product


def _matrix_product(input: Tensor, other: Tensor) -> Tensor:
    """A recorded 2-D product (MmBackward0): by torch's kernels where an operand is sparse COO."""
    if input.__class__ in SPARSE_COO_TYPES:
        return _sparse_times_dense(input, other)
    if other.__class__ in SPARSE_COO_TYPES:
        return _dense_times_sparse(input, other)
    return Mm.apply(input, other)


class Bmm(Matmul):
    node_name = "BmmBackward0"
    saved_attributes = {"_saved_self": saved(1), "_saved_mat2": saved(0)}
    label = "bmm"
    rule = "per batch: ∂/∂A = G Bᵀ, ∂/∂B = Aᵀ G"
    formula = "bmm({0}, {1})"


class Mv(Matmul):
    node_name = "MvBackward0"
    saved_attributes = {"_saved_self": saved(1), "_saved_vec": saved(0)}
    label = "matmul"
    rule = "∂/∂A = g xᵀ (outer product), ∂/∂x = Aᵀ g"
    formula = "{0} @ {1}"


class _AlphaScaledProduct:
    """A product times alpha, for the add-a-product ops (addmm, addmv, baddbmm, addbmm): torch
    multiplies each factor's gradient by alpha after its product (``mm_mat1_backward(grad, mat2,
    ..., alpha)``: ``grad.mm(mat2.t()) * alpha``), where scaling the incoming gradient first
    rounds differently. The forward rounds the product, then its scaling, as ``mul`` did."""

    @staticmethod
    def forward(ctx, a, b, *, alpha):
        ctx.alpha = alpha
        return Matmul.forward(ctx, a, b) * alpha

    @staticmethod
    def backward(ctx, grad):
        alpha = ctx.alpha
        return tuple(None if g is None else g * alpha for g in Matmul.backward(ctx, grad))


class AlphaMm(_AlphaScaledProduct, Mm):
    label = "alpha·mm"
    rule = "∂/∂A = (G Bᵀ)·α, ∂/∂B = (Aᵀ G)·α: each product scaled after"


class AlphaBmm(_AlphaScaledProduct, Bmm):
    label = "alpha·bmm"
    rule = "per batch: ∂/∂A = (G Bᵀ)·α, ∂/∂B = (Aᵀ G)·α: each product scaled after"


class AlphaMv(_AlphaScaledProduct, Mv):
    label = "alpha·mv"
    rule = "∂/∂A = (g xᵀ)·α, ∂/∂x = (Aᵀ g)·α: each product scaled after"


class Dot(Matmul):
    node_name = "DotBackward0"
    saved_attributes = {"_saved_self": saved(1), "_saved_tensor": saved(0)}  # torch's dot(self, tensor)
    label = "dot"
    rule = "∂/∂a = g·b, ∂/∂b = g·a"
    formula = "{0} @ {1}"


def _blas_ready(x: np.ndarray) -> np.ndarray:
    """``x`` itself when BLAS can read it (row- or column-major in its last two dims), else a copy.

    np.matmul silently falls back to a slow loop for other layouts -- e.g. the stride-0
    gradients that ``sum().backward()`` expands -- which is 10-50x slower than copying first.
    """
    xp = array_module(x)
    item = x.itemsize
    if x.ndim == 1:
        return x if x.strides[0] == item or x.shape[0] <= 1 else xp.ascontiguousarray(x)
    if x.ndim == 0:
        return x
    (s0, s1), (n, m) = x.strides[-2:], x.shape[-2:]
    if (s1 == item or m <= 1) and s0 >= m * item or (s0 == item or n <= 1) and s1 >= n * item:
        return x
    return xp.ascontiguousarray(x)


_NODE_BY_NDIM = {(2, 2): Mm, (3, 3): Bmm, (2, 1): Mv, (1, 1): Dot}


def _adjoint(t: Tensor) -> Tensor:
    """tᴴ over the last two dims (no conj bit, unlike ``.mH``); for a real tensor its transpose."""
    return _conj(t.mT) if t._data.dtype.kind == "c" else t.mT


def _mat(a: Tensor, b: Tensor) -> Tensor:
    """matmul without argument checks (for rules, whose shapes are right by construction)."""
    return _NODE_BY_NDIM.get((a._data.ndim, b._data.ndim), Matmul).apply(a, b)


def _check_tensor(op: str, name: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument '{name}' (position {1 if name in ('input', 'self') else 2}) must be "
                        f"Tensor, not {_dtype.c_type_name(x)}")


def _check_sparse_product(kernel: str, sparse: Tensor, dense: Tensor, added: Tensor | None = None) -> None:
    """torch's refusals of a sparse COO left operand and a dense right operand that does not fit it,
    in the words of the sparse kernel the product reaches: every dense product (mm, mv, bmm, addmm,
    matmul, ``@``, the Tensor methods, torch.sparse.mm/addmm) checks a sparse left operand here,
    before it computes on the sparse tensor's dense backing.

    mm sizes a zero result by ``sparse.size(-2)`` and ``dense.size(-1)`` and adds the product to it
    by addmm, which expands the added tensor to ``(sparse.size(0), dense.size(1))`` before checking
    the operands; mv checks ranks and lengths, then runs the same addmm; bmm has its own kernel;
    matmul (composite in torch) reaches mv or mm, and refuses to reshape or expand a sparse operand
    in its batched paths. The dtypes are checked last, against the sparse operand's."""
    if dense.__class__ in SPARSE_COO_TYPES:
        if dense.dim() == 1 and kernel in ("mv", "matmul") and sparse.dim() == 2:
            raise NotImplementedError(not_on_sparse("as_strided"))  # torch's mv views a sparse vector as a column
        return  # sparse @ sparse has kernels of its own
    if kernel == "matmul":
        sparse_ndim, dense_ndim = sparse.dim(), dense.dim()
        if sparse_ndim == 0 or dense_ndim == 0 or (sparse_ndim == 1 and dense_ndim <= 2):
            return  # matmul's own rank error; a sparse vector is unsqueezed into mm, which works
        if sparse_ndim == 2 and dense_ndim <= 2:
            kernel = "mv" if dense_ndim == 1 else "mm"
        elif dense_ndim <= 2:  # a batch against a matrix or vector folds into one mm/mv by reshaping
            raise RuntimeError("reshape is not implemented for sparse tensors")
        else:
            _broadcast_batch(sparse.shape[:-2], dense.shape[:-2])
            raise RuntimeError("expand is unsupported for Sparse tensors")
    if kernel == "bmm":
        if sparse.sparse_dim() != 3:
            raise RuntimeError(f"bmm_sparse: Tensor 'self' must have 3 sparse dims, but has {sparse.sparse_dim()}")
        if dense.dim() != 3:
            raise RuntimeError(f"bmm_sparse: Tensor 'mat2' must have 3 dims, but has {dense.dim()}")
        for first, second in ((0, 0), (2, 1)):
            if sparse.shape[first] != dense.shape[second]:
                raise RuntimeError(f"bmm_sparse: 'self.size({first})' and 'mat2.size({second})' must match")
        _check_sparse_product_dtypes(sparse, dense)
        if sparse.dtype in (_dtype.bool, _dtype.float16, _dtype.bfloat16):  # outside bmm_sparse's dispatch
            raise NotImplementedError(f"\"bmm_sparse_dense\" not implemented for '{_dtype.scalar_name(sparse.dtype)}'")
        return
    if kernel == "mv":
        if sparse.dim() != 2 or dense.dim() != 1:
            raise RuntimeError(f"mv: two tensor dim should be 2 and 1, but got SparseTensor Dim: {sparse.dim()}"
                               f"Tensor Dim: {dense.dim()}")
        if sparse.shape[-1] != dense.shape[-1]:
            raise RuntimeError("mv: expected self.size(-1) == vec.size(-1)")
        # the vector as a one-column matrix
        added_shape = product_shape = (sparse.shape[0], 1)
        added_dtype, dense_ndim = dense.dtype, 2
    else:
        if kernel == "mm":
            added_shape, added_dtype = (sparse.size(-2), dense.size(-1)), dense.dtype
        else:
            added_shape, added_dtype = tuple(added.shape), added.dtype
        product_shape, dense_ndim = (sparse.size(0), dense.size(1)), dense.dim()
    expanded_shape(added_shape, product_shape, added_dtype)
    if sparse.sparse_dim() != 2:
        raise RuntimeError(f"addmm: matrices expected, got {sparse.sparse_dim()}D tensor")
    if sparse.dense_dim() != 0:  # (a hybrid tensor's entries are no numbers)
        raise RuntimeError(f"addmm: scalar values expected, got {sparse.dense_dim()}D values")
    if dense_ndim != 2:
        raise RuntimeError(f"addmm: matrices expected, got {dense_ndim}D tensor")
    if dense.shape[0] != sparse.shape[1]:
        raise RuntimeError(f"addmm: Argument #3 (dense): Expected dim 0 size {sparse.shape[1]}, got {dense.shape[0]}")
    if sparse.dtype is _dtype.bool:  # outside addmm_sparse_dense's dispatch, which comes before its dtype checks
        raise NotImplementedError("\"addmm_sparse_dense\" not implemented for 'Bool'")
    if added is not None:
        _check_sparse_product_dtypes(sparse, added)
    _check_sparse_product_dtypes(sparse, dense)


def _refuse_sparse(kernel: str, *operands) -> None:
    """torch's NotImplementedError for an op with no sparse COO kernel when any operand is sparse:
    its dispatcher refuses before the kernel checks anything."""
    for operand in operands:
        if operand.__class__ in SPARSE_COO_TYPES:
            raise NotImplementedError(not_on_sparse(kernel))


def _check_dense_times_sparse(dense: Tensor, sparse: Tensor) -> None:
    """dense @ sparse COO: torch's kernel runs on the sparse operand (bool has none, whatever the dense
    one's dtype) and checks the dense operand's dtype against it."""
    if dense.dim() in (1, 2) and sparse.dim() == 2 and dense.__class__ not in SPARSE_COO_TYPES:
        if dense.dim() == 2 and dense.shape[1] != sparse.shape[0]:  # (its shapes those of sparseᵀ @ denseᵀ)
            raise RuntimeError(f"addmm: Argument #3 (dense): Expected dim 0 size {sparse.shape[0]}, "
                               f"got {dense.shape[1]}")
        if sparse.dtype is _dtype.bool:
            raise NotImplementedError("\"addmm_sparse_dense\" not implemented for 'Bool'")
        _check_sparse_product_dtypes(sparse, dense)


def _check_sparse_product_dtypes(sparse: Tensor, other: Tensor) -> None:
    if other.dtype is not sparse.dtype:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(sparse.dtype)} but found "
                           f"{_dtype.scalar_name(other.dtype)}")


def _check_same_dtype(a: Tensor, b: Tensor) -> None:
    if a._data.dtype != b._data.dtype and not autocast_unifies(a._data):
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {_C_TYPE_NAMES.get(a.dtype.name, a.dtype.name)} "
            f"!= {_C_TYPE_NAMES.get(b.dtype.name, b.dtype.name)}"
        )


_BOOL = np.dtype(np.bool_)
_BOOL_KERNELS = {"mm": "addmm_impl_cpu_", "mv": "addmv_impl_cpu", "dot": "dot"}


def _refuse_bool_product(kernel: str, result_size: int, inner: int) -> None:
    """torch's mm and mv have no bool kernel, but return before reaching it for an empty result or an
    empty inner dim (the result is then zeros, False); dot refuses bool whatever the lengths."""
    if kernel == "dot" or not _skips_bmm_kernel(result_size, inner):
        raise NotImplementedError(f"\"{_BOOL_KERNELS[kernel]}\" not implemented for 'Bool'")


def _skips_bmm_kernel(result_size: int, inner: int) -> bool:
    """Whether torch's bmm returns before its kernel, where the dtypes are checked: for an empty
    result, or zeros over an empty inner dim. The result then has mat2's dtype, whatever input's
    (bool included), so the caller casts input to it."""
    return result_size == 0 or inner == 0


def _check_product_dtypes(kernel: str, a: Tensor, b: Tensor) -> None:
    """torch's product kernels each word a dtype mismatch their own way: dot, mv (as addmv, naming the
    vector's dtype for the result it would add to), bmm, and mm's (``_check_same_dtype``)."""
    if a._data.dtype == b._data.dtype or autocast_unifies(a._data):
        return
    first, second = _dtype.scalar_name(a.dtype), _dtype.scalar_name(b.dtype)
    if kernel == "dot":
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {first} and {second}")
    if kernel == "mv":
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {second}, {first}, and {second}")
    if kernel == "bmm":
        raise RuntimeError(f"expected scalar type {first} but found {second}")
    _check_same_dtype(a, b)


def _check_added_product_dtypes(op: str, input, first, second) -> None:
    """torch's add-a-product ops neither promote the added input nor the factors; each names the
    mismatch its own way (checked in torch's order)."""
    operands = (input, first, second)
    if not builtins.all(isinstance(t, Tensor) for t in operands) or autocast_unifies(input._data):
        return
    dtypes = [t.dtype for t in operands]
    if op == "baddbmm" and dtypes[0] is _dtype.bool and dtypes[1] is _dtype.bool:
        raise NotImplementedError('"baddbmm" not implemented for \'Bool\'')
    if len(set(dtypes)) == 1:
        return
    names = [_dtype.scalar_name(d) for d in dtypes]
    if op == "addmv":
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {names[0]}, {names[1]}, and {names[2]}")
    if op == "baddbmm":
        if dtypes[0] != dtypes[1]:
            raise RuntimeError(f"Input dtypes must be the same, got: input {_dtype.cpp_type_name(dtypes[0])}, batch1: "
                               f"{_dtype.cpp_type_name(dtypes[1])}, batch2: {_dtype.cpp_type_name(dtypes[2])}")
        raise RuntimeError(f"expected scalar type {names[1]} but found {names[2]}")
    # addmm, addbmm: the added input against mat2 first, then the two factors
    if dtypes[0] != dtypes[2]:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {names[0]} and {names[2]}")
    raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {names[1]} and {names[2]}")


def _inconsistent(n: int, m: int) -> RuntimeError:
    return RuntimeError(f"inconsistent tensor size, expected tensor [{n}] and src [{m}] to have the same "
                        f"number of elements, but got {n} and {m} elements respectively")


def _mat_shapes(a: tuple, b: tuple) -> RuntimeError:
    return RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a[0]}x{a[1]} and {b[0]}x{b[1]})")


@cpu_autocast_policy("lower")  # its vector cases too (a dot product is on no list of its own)
def matmul(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """torch.matmul: dot (1-D·1-D), matrix-vector, vector-matrix (the added dim is removed again),
    matrix product, and batched products broadcasting the batch dims."""
    _check_tensor("matmul", "input", input)
    _check_tensor("matmul", "other", other)
    refuse_out_under_autograd("matmul", out, input, other)
    if input.__class__ in SPARSE_COO_TYPES:
        if other.__class__ in SPARSE_COO_TYPES and out is None and input.dim() == 2 == other.dim():
            return input.__matmul__(other)  # torch's sparse @ sparse kernel: a sparse product (MmBackward0)
        _check_sparse_product("matmul", input, other)
    elif other.__class__ in SPARSE_COO_TYPES:
        _check_dense_times_sparse(input, other)
    a, b = input._data, other._data
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {a.ndim}D and {b.ndim}D")
    if a.ndim == b.ndim == 1:  # torch's dot checks the dtypes before the lengths
        _refuse_sparse("dot", input, other)
        _vector_product_out(out, input)
        _check_product_dtypes("dot", input, other)
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        if a.ndim == 1 and b.ndim == 1:
            raise _inconsistent(a.shape[0], b.shape[0])
        if b.ndim == 1 and a.ndim == 2:
            raise RuntimeError(f"size mismatch, got input ({a.shape[0]}), mat ({a.shape[0]}x{a.shape[1]}), "
                               f"vec ({b.shape[0]})")
        if a.ndim <= 2 and b.ndim <= 2:
            raise _mat_shapes((1,) + a.shape if a.ndim == 1 else a.shape, b.shape)
        # torch folds a batch against a plain matrix/vector into one mm/mv; report its shapes
        if b.ndim <= 2:
            rows = int(np.prod(a.shape[:-1]))
            if b.ndim == 1:
                raise RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{k_a}), vec ({k_b})")
            raise _mat_shapes((rows, k_a), b.shape)
        if _folds_transposed(input, b):  # folded as (b^T a^T)^T for input's gradient; else bmm
            rows = int(np.prod(b.shape[:-2])) * b.shape[-1]
            if a.ndim == 1:
                raise RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{k_b}), vec ({k_a})")
            raise _mat_shapes((rows, k_b), (a.shape[1], a.shape[0]))
        batch = _broadcast_batch(a.shape[:-2] if a.ndim > 1 else (), b.shape[:-2] if b.ndim > 1 else ())
        n_batch = int(np.prod(batch)) if batch else 1
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{n_batch}, {k_a}] "
                           f"but got: [{n_batch}, {k_b}].")
    if a.ndim > 2 or b.ndim > 2:
        _broadcast_batch(a.shape[:-2], b.shape[:-2])
    # shapes first, then dtypes, in the words of the kernel torch's matmul reaches: a vector on the
    # right folds the rest into mv, a matrix on the right into mm, a batch on the right goes to bmm
    # (a batch on the right of an input that requires grad folds transposed: other's rows first)
    kernel = "dot" if a.ndim == b.ndim == 1 else "mv" if b.ndim == 1 else "mm" if b.ndim == 2 else "bmm"
    folds = kernel == "bmm" and _folds_transposed(input, b)
    if folds:
        _check_product_dtypes("mv" if a.ndim == 1 else "mm", other, input)
    if kernel == "bmm" and not folds and _skips_bmm_kernel(
            int(np.prod(_broadcast_batch(a.shape[:-2], b.shape[:-2]))) * (a.shape[-2] if a.ndim > 1 else 1) * b.shape[-1],
            k_a):
        input = input.to(other.dtype)
        a = input._data
    elif kernel == "bmm" and not folds and a.dtype == np.bool_:
        raise NotImplementedError('"bmm" not implemented for \'Bool\'')
    elif kernel != "dot":
        _check_product_dtypes(kernel, input, other)
    if a.dtype is _BOOL and kernel != "bmm":  # mm and mv fold the batch into rows; a 1-d input is one row
        _refuse_bool_product(kernel, int(np.prod(a.shape[:-1])) * (b.shape[-1] if kernel == "mm" else 1), k_a)
    _dtype.refuse_wide_unsigned(f"linalg.{kernel}", input._data)
    if out is None and (a.ndim > 2 or b.ndim > 2 or a.ndim < b.ndim) and (
            is_recording(input, other) or _function_module.active_dispatch is not None):
        return _recorded_matmul(input, other)  # (a mode sees torch's decomposition: _unrecorded_batch_product)
    node = _NODE_BY_NDIM.get((a.ndim, b.ndim), Matmul)
    if node is Mm:
        if out is None:
            return _matrix_product(input, other)
        if other.__class__ in SPARSE_COO_TYPES:
            node = DenseSparseMm
    if out is None:
        return node.apply(input, other)
    result = _noted_product(node, out, "matmul", input, other)
    return _write_vector_product(result, out, "matmul") if a.ndim == b.ndim == 1 else _exact_out(result, out, "matmul")


def _folds_transposed(input: Tensor, b) -> bool:
    """Whether torch's matmul folds a 1-d or 2-d input times a batch into one mv/mm of the batch's
    transposed rows: for the input's gradient, and for a vector times an empty batch."""
    return input._data.ndim <= 2 and (input.requires_grad or (input._data.ndim == 1 and b.size == 0))


def _recorded_matmul(t1: Tensor, t2: Tensor) -> Tensor:
    """matmul recorded as torch 2.13 decomposes it (ATen's _matmul_impl), so the graph users walk
    has torch's nodes: a vector times a matrix is SqueezeBackward4 over MmBackward0 over
    UnsqueezeBackward0; a batch against a matrix or vector is folded into one mm/mv between
    reshapes (UnsafeViewBackward0 over MmBackward0 over ViewBackward0); other batches are expanded
    to the broadcast batch, reshaped to 3-d and multiplied by one bmm. The shapes are checked."""
    d1, d2 = t1._data.ndim, t2._data.ndim
    if d1 == 1 and d2 == 2:
        product = Mm.apply(t1.unsqueeze(0), t2)
        if _function_module.active_dispatch is not None:  # (a mode sees torch's in-place squeeze_ of the product)
            _function_module.note_given(UnsafeView, product, aten_call=(("squeeze_", "dim"), (product, 0), {}))
        return name_node(UnsafeView.apply(product, shape=product._data.shape[1:]), "SqueezeBackward4",
                         saved=_SQUEEZED_SAVED)
    if d1 == 3 and d2 == 3:
        # torch drops a batch of one of an operand that requires grad, against a longer batch, and of any operand
        # under a mode (isTensorSubclassLike): here where the product that follows is the same expanded bmm, not
        # rows folded into one mm, whose sums would round otherwise than without a mode
        shown = _function_module.active_dispatch is not None
        if t1._data.shape[0] == 1 and t2._data.shape[0] != 1 and (t1._requires_grad or shown):
            return matmul(t1.squeeze(0), t2)
        if t2._data.shape[0] == 1 and t1._data.shape[0] != 1 and (
                t2._requires_grad or shown and not _rows_viewable(t1._data)):
            return matmul(t1, t2.squeeze(0))
    if d2 > d1 and _function_module.active_dispatch is not None:
        _ = t2.mT  # (ATen's should_fold looks at tensor2.mT first: a mode sees that transpose)
    if _should_fold(t1, t2):
        transpose = d2 > d1  # (b, m, p) against a matrix or vector: (t2ᵀ t1ᵀ)ᵀ
        larger = t2.mT if transpose else t1
        smaller = (t1.t() if d1 == 2 else t1) if transpose else t2
        sizes = larger._data.shape
        folded = reshaped(larger, (math.prod(sizes[:-1]), sizes[-1]))
        if smaller._data.ndim == 1:
            return UnsafeView.apply(Mv.apply(folded, smaller), shape=sizes[:-1])
        out = UnsafeView.apply(Mm.apply(folded, smaller), shape=sizes[:-1] + smaller._data.shape[1:])
        return out.mT.contiguous() if transpose else out
    a, b = t1._data.shape, t2._data.shape
    n, p = (a[-2],) if d1 > 1 else (), (b[-1],) if d2 > 1 else ()
    batch = _broadcast_batch(a[:-2], b[:-2])
    rows = math.prod(batch)

    def as_batch(t, size):  # torch expands (a node even when no dim grows), then reshapes to 3-d
        expanded = _share(Expand.apply(t, shape=batch + size), t)
        return reshaped(expanded, (rows,) + size)

    vector_rhs = d2 == 1  # (expanded and reshaped to rows before its unsqueeze, as torch)
    product = Bmm.apply(as_batch(t1, (n[0] if n else 1, a[-1])),
                        as_batch(t2, (b[-2], b[-1])) if p else as_batch(t2, b).unsqueeze(2))
    if vector_rhs:
        product = product.squeeze(-1)
    return UnsafeView.apply(product, shape=batch + n + p)


# torch's _saved_* of the squeeze(0) that ends a vector-matrix product: one dict for every call, as
# name_node keys its renamed node classes by the dict's identity (a dict per call made a class per call)
_SQUEEZED_SAVED = {"_saved_dim": 0, "_saved_self_sym_sizes": input_sizes(0)}


def _should_fold(t1: Tensor, t2: Tensor) -> bool:
    """torch's test (ATen's should_fold) for folding a batch against a matrix or vector into one
    mm/mv: always when the smaller operand requires grad (its gradient is then one product, not a
    sum over the batch), else when the larger one's batch dims can be viewed as rows."""
    larger_first = t1._data.ndim >= t2._data.ndim
    larger = t1._data if larger_first else t2._data.swapaxes(-1, -2)
    smaller = t2 if larger_first else t1
    if not (larger.ndim >= 3 and smaller._data.ndim <= 2):
        return False
    if smaller._requires_grad:
        return True
    if t1._data.ndim == 2:  # the result would need transposing back: a copy
        return False
    if larger.size == 0:
        return True
    strides = [stride // larger.itemsize for stride in larger.strides]
    return all(strides[i] == strides[i + 1] * larger.shape[i + 1] for i in range(larger.ndim - 2))


def _broadcast_batch(a: tuple, b: tuple) -> tuple:
    """Broadcast two batch shapes, with torch's error when they do not match."""
    n = max(len(a), len(b))
    a1, b1 = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    for i in reversed(range(n)):  # torch reports the last mismatching dim
        x, y = a1[i], b1[i]
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b ({y}) at "
                               f"non-singleton dimension {i}")
    return tuple(x if y == 1 else y for x, y in zip(a1, b1))


def _noted_product(node, out, op: str, *inputs) -> Tensor:
    """``node.apply(*inputs)`` for an ``out=`` call: a dispatch mode sees torch's out overload (aten.mm.out)."""
    if _function_module.active_dispatch is None:
        return node.apply(*inputs)
    return call_noting_out(node.apply, inputs, {}, out, op)


def _refuse_out_dtype(out_dtype, op: str) -> None:
    """torch 2.13's ``out_dtype=`` overloads of the matrix products (aten::mm.dtype, ...) have CUDA
    kernels only; on the CPU torch refuses them, and chainrule refuses them everywhere."""
    if out_dtype is not None:
        raise NotImplementedError(f"Could not run 'aten::{op}.dtype' with arguments from the 'CPU' backend: "
                                  f"{op}(out_dtype=) has CUDA kernels only in torch, and none in chainrule")


def mm(input: Tensor, mat2: Tensor, out_dtype=None, *, out=None) -> Tensor:
    """torch.mm: (n, m) @ (m, p) -> (n, p); no broadcasting."""
    _refuse_out_dtype(out_dtype, "mm")
    _check_tensor("mm", "input", input)
    _check_tensor("mm", "mat2", mat2)
    refuse_out_under_autograd("mm", out, input, mat2)
    if input.__class__ in SPARSE_COO_TYPES:
        if mat2.__class__ in SPARSE_COO_TYPES and out is None:
            return input.__matmul__(mat2)  # torch's sparse @ sparse kernel: a sparse product (MmBackward0)
        _check_sparse_product("mm", input, mat2)
    elif mat2.__class__ in SPARSE_COO_TYPES:
        _check_dense_times_sparse(input, mat2)
    if input._data.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2._data.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    if input._data.shape[1] != mat2._data.shape[0]:  # torch's mm checks the shapes before the dtypes
        raise _mat_shapes(input._data.shape, mat2._data.shape)
    _check_same_dtype(input, mat2)
    if input._data.dtype == np.bool_:
        _refuse_bool_product("mm", input._data.shape[0] * mat2._data.shape[1], input._data.shape[1])
    _dtype.refuse_wide_unsigned("linalg.mm", input._data)
    if out is None:
        return _matrix_product(input, mat2)
    node = DenseSparseMm if mat2.__class__ in SPARSE_COO_TYPES else Mm
    return _exact_out(_noted_product(node, out, "mm", input, mat2), out, "mm")


def bmm(input: Tensor, mat2: Tensor, out_dtype=None, *, out=None) -> Tensor:
    """torch.bmm: (b, n, m) @ (b, m, p) -> (b, n, p); no broadcasting."""
    _refuse_out_dtype(out_dtype, "bmm")
    _check_tensor("bmm", "input", input)
    _check_tensor("bmm", "mat2", mat2)
    refuse_out_under_autograd("bmm", out, input, mat2)
    if input.__class__ in SPARSE_COO_TYPES:
        _check_sparse_product("bmm", input, mat2)
    if input._data.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2._data.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    (b, n, m), (b2, m2, p) = input._data.shape, mat2._data.shape
    if (b, m) != (b2, m2):
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{b}, {m}] "
                           f"but got: [{b2}, {m2}].")
    if _skips_bmm_kernel(b * n * p, m):
        input = input.to(mat2.dtype)
    elif input._data.dtype == np.bool_:  # torch's bmm has no bool kernel, whatever mat2's dtype
        raise NotImplementedError('"bmm" not implemented for \'Bool\'')
    _check_product_dtypes("bmm", input, mat2)  # after the shapes, as torch's
    _dtype.refuse_wide_unsigned("linalg.bmm", input._data)
    result = Bmm.apply(input, mat2) if out is None else _noted_product(Bmm, out, "bmm", input, mat2)
    return result if out is None else _exact_out(result, out, "bmm")


def mv(input: Tensor, vec: Tensor, *, out=None) -> Tensor:
    """torch.mv: (n, m) @ (m,) -> (n,)."""
    _check_tensor("mv", "input", input)
    _check_tensor("mv", "vec", vec)
    refuse_out_under_autograd("mv", out, input, vec)
    if input.__class__ in SPARSE_COO_TYPES:
        _check_sparse_product("mv", input, vec)
    a, v = input._data, vec._data
    if a.ndim != 2 or v.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {a.ndim}, {v.ndim}")
    if a.shape[1] != v.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({a.shape[0]}), mat ({a.shape[0]}x{a.shape[1]}), vec ({v.shape[0]})")
    _check_product_dtypes("mv", input, vec)  # after the shapes, as torch's
    if a.dtype is _BOOL:
        _refuse_bool_product("mv", a.shape[0], a.shape[1])
    _dtype.refuse_wide_unsigned("linalg.mv", a)
    result = Mv.apply(input, vec) if out is None else _noted_product(Mv, out, "mv", input, vec)
    return result if out is None else _exact_out(result, out, "mv")


def dot(input: Tensor, tensor: Tensor, *, out=None) -> Tensor:
    """torch.dot: the inner product of two 1-D tensors of the same size (a 0-d result)."""
    _check_tensor("dot", "input", input)
    _check_tensor("dot", "tensor", tensor)
    _refuse_sparse("dot", input, tensor)
    refuse_out_under_autograd("dot", out, input, tensor)
    _vector_product_out(out, input)
    a, b = input._data, tensor._data
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.dtype != b.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{_dtype.scalar_name(input.dtype)} and {_dtype.scalar_name(tensor.dtype)}")
    if a.shape[0] != b.shape[0]:
        raise _inconsistent(a.shape[0], b.shape[0])
    if a.dtype == np.bool_:
        raise NotImplementedError("\"dot\" not implemented for 'Bool'")
    _dtype.refuse_wide_unsigned("linalg.dot", a)
    result = Dot.apply(input, tensor)
    return result if out is None else _write_vector_product(result, out, "dot")


def vdot(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """torch.vdot: ``dot`` with the first argument conjugated (the same for real tensors)."""
    _refuse_sparse("vdot", input, other)
    _one_device("vdot", input, other)
    refuse_out_under_autograd("vdot", out, input, other)
    _vector_product_out(out, input)
    result = name_node(dot(_conj(input), other), "VdotBackward0", label="vdot")
    return result if out is None else _write_vector_product(result, out, "vdot")


def outer(input: Tensor, vec2: Tensor, *, out=None) -> Tensor:
    """torch.outer: ``input[i] * vec2[j]`` for 1-D tensors, shape (n, m)."""
    from .elementwise import mul

    if input._data.ndim != 1 or vec2._data.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument self, but got {input._data.ndim}-D"
                           if input._data.ndim != 1 else
                           f"outer: Expected 1-D argument vec2, but got {vec2._data.ndim}-D")
    _one_device("outer", input, vec2, broadcasting=False)
    if type(input) is Tensor and type(vec2) is Tensor and not _torch_function.flags.modes_live:
        # (two plain tensors, no mode to see the inner calls: reshape's recording and Mul straight
        # away, what the public reshape and mul would run after their dispatch and parsing)
        result = Mul.apply(*_pair(reshaped(input, (input._data.shape[0], 1)), vec2))
    else:
        result = mul(input.reshape(input._data.shape[0], 1), vec2)  # as torch records it: a view, then mul
    return result if out is None else write_out(result, out, "outer")


def ger(input: Tensor, vec2: Tensor, *, out=None) -> Tensor:
    """torch.ger: ``outer`` under its deprecated name. torch 2.13 warns so only in its out= form, at
    every call (its TORCH_WARN, not _ONCE) and before any check of the operands."""
    if out is not None:
        warnings.warn("torch.ger is deprecated and will be removed in a future PyTorch release. Use torch.outer "
                      "instead. (Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/"
                      "LinearAlgebra.cpp:1270.)", UserWarning, stacklevel=_torch_function.user_stacklevel())
    return outer(input, vec2, out=out)


ger.honours_out = True  # (outer writes its out=)


@functools.partial(honours_out, composite=True)  # (torch's is composite: out= is a copy_)
def inner(input: Tensor, other: Tensor) -> Tensor:
    """torch.inner: contraction over the last dims (a product when either is 0-d)."""
    from .elementwise import mul

    if input._data.ndim == 0 or other._data.ndim == 0:
        return mul(input, other)
    if input._data.shape[-1] != other._data.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(input._data.shape)} and {list(other._data.shape)}")
    _one_device("inner", input, other, broadcasting=False)
    if input.__class__ in SPARSE_COO_TYPES or other.__class__ in SPARSE_COO_TYPES:
        # torch's tensordot takes a strided view of two vectors and reshapes anything else
        if input._data.ndim == other._data.ndim == 1:
            raise NotImplementedError(not_on_sparse("as_strided"))
        raise RuntimeError("reshape is not implemented for sparse tensors")
    return tensordot(input, other, dims=([-1], [-1]))


_KRON_VIEW_SAVED = {"_saved_self_sym_sizes": kept_value("sizes")}  # (the interleaved product's, as torch's)


def kron(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """torch.kron: the Kronecker product; shapes are right-aligned and multiplied."""
    from .elementwise import mul

    _one_device("kron", input, other, broadcasting=False)
    n = max(input._data.ndim, other._data.ndim)
    a_shape = (1,) * (n - input._data.ndim) + input._data.shape
    b_shape = (1,) * (n - other._data.ndim) + other._data.shape
    # interleave: a as (a0, 1, a1, 1, ...) times b as (1, b0, 1, b1, ...), then merge the pairs
    a = input.reshape(tuple(s for d in a_shape for s in (d, 1)))
    b = other.reshape(tuple(s for d in b_shape for s in (1, d)))
    product = mul(a, b)
    result = name_node(product.reshape(tuple(x * y for x, y in zip(a_shape, b_shape))), "UnsafeViewBackward0",
                       label="kron", saved=_KRON_VIEW_SAVED, kept={"sizes": tuple(product.shape)})
    return result if out is None else write_out(result, out, "kron")


# ---------------------------------------------------------------- fused multiply-adds
# the explainer's text for the add* ops, whose renamed last node is _scaled_add's sum (on
# bfloat16/float16, its rounding of the float32 result)
_SCALED_ADD_RULE = ("β·input + α·(%s), its last step the sum: copies the gradient to both terms "
                    "(the scalings by β and α are the steps below)")
_ROUNDED_SCALED_ADD_RULE = ("β·input + α·(%s) in float32, its last step the rounding to the inputs' dtype: "
                            "passes the gradient through, cast to float32")


def _scaled_add(input: Tensor, product_of, factors: tuple, beta, alpha, name: str, text: str,
                torch_args: tuple | None = None) -> Tensor:
    """``beta * input + alpha * product_of(*factors)``, named ``name`` for torch's node.

    On bfloat16/float16 the product, the scalings and the sum run in float32 and round once, as
    torch's fused gemm (``beta·C + alpha·A·B`` in float32) does; other dtypes round after each step.
    ``torch_args``: (beta, alpha, first, second) as the call gave them, where they differ from what
    is computed with, for torch's _saved_* names.
    """
    from .elementwise import rounded_once

    beta_given, alpha_given, first, second = torch_args or (beta, alpha, *factors)
    kept = {"alpha": alpha_given, "beta": beta_given, "factors": (first, second),
            "needs": (first.requires_grad, second.requires_grad)}
    # torch's gemm (BLAS or not) adds the scaled product to a zeroed result at beta 0, so a -0 product
    # is +0 there; only its small-bmm loop (baddbmm's) writes alpha·product as it is
    accumulated = name != "BaddbmmBackward0" or not _small_product(factors[0]._data, factors[1]._data)
    fused = rounded_once(lambda x, *f: _scaled_sum(x, product_of(*f), beta, alpha, accumulated), input, *factors)
    if fused is not None:
        return name_node(fused, name, label=name[:-len("Backward0")].lower(), rule=_ROUNDED_SCALED_ADD_RULE % text,
                         saved=_SCALED_ADD_SAVED[name], kept=kept)
    product = _alpha_scaled_product(product_of, factors, alpha)
    if product is None:
        product = product_of(*factors)
    else:
        alpha = 1  # (scaled already)
    return name_node(_scaled_sum(input, product, beta, alpha, accumulated), name,
                     label=name[:-len("Backward0")].lower(), rule=_SCALED_ADD_RULE % text,
                     saved=_SCALED_ADD_SAVED[name], kept=kept)


def _alpha_scaled_product(product_of, factors: tuple, alpha):
    """``alpha * product_of(*factors)`` as one node that scales each factor's gradient after its
    product, as torch's; None where alpha is 1, nothing records, or the factors are not two plain
    real float32/float64 CPU tensors of one dtype that multiply (``product_of`` then checks them)."""
    node = _ALPHA_PRODUCTS.get(product_of)
    if node is None or alpha == 1 or not is_grad_enabled():
        return None
    a, b = factors
    if not (type(a) is Tensor and type(b) is Tensor and (a.requires_grad or b.requires_grad)
            and type(a._data) is type(b._data) is np.ndarray and a._data.dtype == b._data.dtype
            and a._data.dtype in (np.float32, np.float64) and type(alpha) in (builtins.int, builtins.float)):
        return None
    (a_ndim, b_ndim), a_shape, b_shape = _ALPHA_PRODUCT_NDIMS[node], a._data.shape, b._data.shape
    if (a._data.ndim, b._data.ndim) != (a_ndim, b_ndim) or a_shape[a_ndim - 1] != b_shape[a_ndim - 2] \
            or (a_ndim == 3 and a_shape[0] != b_shape[0]):
        return None
    return node.apply(a, b, alpha=alpha)


def _factor(which: int) -> SavedValue:
    # torch keeps each factor of the product only for the other's gradient
    # (not kept: None, also once the graph is freed)
    return SavedValue(lambda node: node.torch_kept["factors"][which] if node.torch_kept["needs"][1 - which] else None,
                      tensor=True, undefined=lambda node: not node.torch_kept["needs"][1 - which])


def _factor_sizes(which: int) -> SavedValue:
    return SavedValue(lambda node: tuple(node.torch_kept["factors"][which].shape))


def _factor_strides(which: int) -> SavedValue:
    # and each one's strides only for its own
    return SavedValue(lambda node: tuple(node.torch_kept["factors"][which].stride())
                      if node.torch_kept["needs"][which] else ())


def _factor_size(which: int, dim: int) -> SavedValue:
    return SavedValue(lambda node: node.torch_kept["factors"][which].shape[dim])


def _add_product_saved(first: str, second: str, **more) -> dict:
    return {"_saved_alpha": kept_value("alpha"), "_saved_beta": kept_value("beta"),
            f"_saved_{first}": _factor(0), f"_saved_{second}": _factor(1), **more}


# torch's _saved_* of the add-a-product ops, read from what _scaled_add kept
_SCALED_ADD_SAVED = {
    "AddmmBackward0": _add_product_saved(
        "mat1", "mat2", _saved_mat1_sym_sizes=_factor_sizes(0), _saved_mat1_sym_strides=_factor_strides(0),
        _saved_mat2_sym_sizes=_factor_sizes(1), _saved_mat2_sym_strides=_factor_strides(1)),
    "AddmvBackward0": _add_product_saved("mat", "vec"),
    "BaddbmmBackward0": _add_product_saved("batch1", "batch2"),
    "AddbmmBackward0": _add_product_saved(
        "batch1", "batch2", _saved_batch1_sym_argsize_0=_factor_size(0, 0),
        _saved_batch1_sym_argsize_1=_factor_size(0, 1), _saved_batch2_sym_argsize_2=_factor_size(1, 2)),
    "AddrBackward0": _add_product_saved("vec1", "vec2"),
}


_ALPHA_PRODUCTS = {mm: AlphaMm, mv: AlphaMv, bmm: AlphaBmm}
_ALPHA_PRODUCT_NDIMS = {AlphaMm: (2, 2), AlphaMv: (2, 1), AlphaBmm: (3, 3)}


class ProductIgnoringInput(Function):
    """β·input + product at β = 0: the product itself, as torch's kernels give it (no input value
    read: NaN and inf ignored, a -0 product kept), input's gradient torch's maybe_multiply(grad, β),
    grad·0: NaN where grad is inf or NaN, -0 where it is negative."""

    _array_forward = True
    label = "add"
    rule = "passes the gradient to the product; input's is the gradient times β = 0"
    formula = "0·{0} + {1}"

    @staticmethod
    def forward(ctx, input, product, *, accumulated=False):
        # (accumulated: added to a zeroed result, as torch's gemm does, which makes a -0 product +0)
        return product + product.dtype.type(0) if accumulated else product.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad * 0, grad


def _scaled_sum(input: Tensor, product: Tensor, beta, alpha, accumulated: bool = False) -> Tensor:
    # torch's add-a-product kernels expand input to the product's shape first (not a broadcast of
    # the two), so a mismatch is refused in expand's words
    expanded_shape(input._data.shape, tuple(product.shape), input._data.dtype)
    xp = array_module(input)
    from .elementwise import add, mul, number_in_dtype, where

    if autocast_unifies(input._data) and input.dtype is not product.dtype and input.is_floating_point():
        input = input.to(product.dtype)  # autocast lowered the product: torch casts the added input too

    zero = 0.0
    if not (product.is_floating_point() or product.is_complex()):
        # torch's integer and bool kernels take beta and alpha in the tensors' dtype (2.6 -> 2,
        # 3 -> True), so the result keeps that dtype
        as_dtype = builtins.bool if product.dtype is _dtype.bool else builtins.int
        alpha, beta, zero = as_dtype(alpha), as_dtype(beta), as_dtype(0)
    if alpha != 1:
        product = mul(product, number_in_dtype(alpha, product))
    if beta == 0 and type(product._data) is np.ndarray and product._data.dtype.kind in "fc" \
            and input._data.dtype == product._data.dtype:
        if input.requires_grad and tuple(input.shape) != tuple(product.shape):
            input = input.expand(tuple(product.shape))  # (grad·0 summed to input's shape, as torch's)
        return ProductIgnoringInput.apply(input, product, accumulated=accumulated)
    if beta == 0:
        # torch ignores input's values (NaN and inf included) but still gives it a zero gradient
        input = where(Tensor._make(xp.zeros((), dtype=bool)), input, zero)
    elif beta != 1:
        if input.requires_grad and tuple(input.shape) != tuple(product.shape):
            # torch scales the gradient by beta, then sums it to input's shape: scaled after the sum it rounds otherwise
            input = input.expand(tuple(product.shape))
        input = mul(input, number_in_dtype(beta, input))
    return add(input, product)


def _meta_mix(*tensors) -> bool:
    """Whether a meta tensor meets tensors of another device (torch's add-a-product ops then check
    only some of them: what each checks is written beside it)."""
    devices = {t.device for t in tensors if isinstance(t, Tensor)}
    return len(devices) > 1 and any(d.type == "meta" for d in devices)


def _product_on_one_device(op: str, *operands) -> None:
    """torch's add-a-product kernels (addmm, addmv, addr, baddbmm, addbmm) check their operands' devices
    first, naming themselves, where the composition's product or add would name itself; tensors
    all on the CPU need no check, a meta one mixed in is left to the composition (torch's meta
    kernels mix it with other devices)."""
    if all(type(t._data) is np.ndarray for t in operands if isinstance(t, Tensor)):
        return
    if not _meta_mix(*operands):
        _one_device(op, *operands, broadcasting=False)


def _expect_device(tensor: Tensor, expected: Tensor) -> None:
    if tensor.device != expected.device:
        raise RuntimeError(f"Tensor on device {tensor.device} is not on the expected device {expected.device}!")


def _refuse_cross_device_out(input: Tensor, out, *others) -> None:
    """torch's add-a-product ops copy input into ``out`` first: across meta and another device that
    copy is refused, before any other check."""
    if isinstance(out, Tensor) and out.device != input.device and _meta_mix(input, out, *others):
        raise RuntimeError(f"Attempting to copy from device {input.device} to device {out.device}, but cross-device "
                           "copies are not allowed!")


def _on_device_of(input: Tensor, product_of):
    """``product_of`` with its product put on ``input``'s device, for torch's baddbmm and addbmm, which
    check no devices and compute on input's: a meta product moves to meta, and on the CPU a meta
    operand reads as zeros (torch reads whatever memory is there)."""
    def product(*factors):
        result = product_of(*factors)
        if result.device == input.device:
            return result
        if input.device.type == "meta":
            return result.to(input.device)
        return creation.zeros(result.shape, dtype=result.dtype, device=input.device)
    return product


def _check_addmm_shapes(input, mat1: Tensor, mat2: Tensor) -> None:
    """torch's addmm checks both factors are matrices that multiply, then expands ``input`` to the
    product's shape: an input with more dims or a wider shape is refused in expand's words, where a
    plain broadcast sum would have grown the result instead."""
    for name, factor in (("mat1", mat1), ("mat2", mat2)):
        if isinstance(factor, Tensor) and factor.dim() != 2:
            raise RuntimeError(f"{name} must be a matrix, got {factor.dim()}-D tensor")
    if not (isinstance(input, Tensor) and isinstance(mat1, Tensor) and isinstance(mat2, Tensor)):
        return
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x{mat1.shape[1]} and "
                           f"{mat2.shape[0]}x{mat2.shape[1]})")
    expanded_shape(input._data.shape, (mat1.shape[0], mat2.shape[1]), input._data.dtype)


def _bool_addmm_scales(input, mat1: Tensor, mat2: Tensor) -> bool:
    """Whether torch's addmm, over an empty inner dim, scales a bool ``input`` by its integer ``beta``
    into a non-empty result (which its in-place multiply cannot cast back to bool)."""
    return (isinstance(input, Tensor) and input.dtype is _dtype.bool and mat1.shape[1] == 0
            and mat1.shape[0] * mat2.shape[1] != 0)


def _batched_by_vmap(*tensors) -> bool:
    """Whether a running vmap holds any of ``tensors`` batched: torch's vmap then runs an add-a-product
    op (addmm, addmv, baddbmm, addbmm) as its decomposition, whose nodes its graph shows."""
    return bool(_vmap_frames._frames) and any(isinstance(t, Tensor) and _vmap_frames.batched_anywhere(t)
                                              for t in tensors)


def _vmap_scaled_add(input: Tensor, product: Tensor, beta, alpha, alpha_in_add: bool = False) -> Tensor:
    """torch's vmap decomposition of ``beta * input + alpha * product``: beta·input (MulBackward1, at
    any beta) plus the product, alpha given to the add (addmm's); or (addmv's, baddbmm's, addbmm's)
    alpha·product (MulBackward1, none at alpha 1), the product alone at beta 0."""
    from .elementwise import MulNumber, add

    if alpha_in_add:
        return add(MulNumber.apply(input, number=beta), product, alpha=alpha)
    if alpha != 1:
        product = MulNumber.apply(product, number=alpha)
    return product if beta == 0 else add(MulNumber.apply(input, number=beta), product)


def _one_gemm(input, mat1, mat2, beta, alpha) -> bool:
    """Whether addmm is F.linear's Addmm: unscaled, dense float32/float64 CPU matrices of one dtype
    and an added input of at most 2 dims (the same numbers and node as its composite)."""
    return (beta == 1 and alpha == 1 and type(input) is Tensor and type(mat1) is Tensor and type(mat2) is Tensor
            and input._data.ndim <= 2 and input.dtype is mat1.dtype is mat2.dtype
            and input.dtype in (_dtype.float32, _dtype.float64)
            and type(input._data) is type(mat1._data) is type(mat2._data) is np.ndarray)


@cpu_autocast_policy("lower")
def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, out_dtype=None, *, beta=1, alpha=1, out=None) -> Tensor:
    """torch.addmm: ``beta * input + alpha * (mat1 @ mat2)``."""
    _refuse_out_dtype(out_dtype, "addmm")
    _refuse_cross_device_out(input, out, mat1, mat2)
    if _meta_mix(input, mat1, mat2):
        _expect_device(input, mat1)  # torch checks input against mat1 only, and computes on mat1's device
    else:
        _product_on_one_device("addmm", input, mat1, mat2)
    _refuse_sparse_addmm_layouts(input, mat1, mat2)
    if mat1.__class__ in SPARSE_COO_TYPES and isinstance(input, Tensor) and isinstance(mat2, Tensor):
        _check_sparse_product("addmm", mat1, mat2, input)
    _check_added_product_dtypes("addmm", input, mat1, mat2)  # torch's addmm checks the dtypes first
    _check_addmm_shapes(input, mat1, mat2)
    if type(beta) is int and _bool_addmm_scales(input, mat1, mat2):
        raise RuntimeError("result type Long can't be cast to the desired output type Bool")
    if _batched_by_vmap(input, mat1, mat2):
        result = _vmap_scaled_add(input, mm(mat1, mat2), beta, alpha, alpha_in_add=True)
    elif _function_module.active_dispatch is not None and _one_gemm(input, mat1, mat2, beta, alpha):
        from .linear import Addmm

        # one op, as F.linear's: a dispatch mode sees torch's aten.addmm(input, mat1, mat2), not mm + add
        result = Addmm.apply(input, mat1, mat2) if out is None else _noted_product(Addmm, out, "addmm", input, mat1, mat2)
    elif _function_module.active_dispatch is not None and (made := _function_module.composite_dispatch(
            "addmm", _scaled_addmm, (input, mat1, mat2), {key: value for key, value in (("beta", beta), ("alpha", alpha))
                                                         if value != 1})) is not _function_module.RUN_UNDISPATCHED:
        result = made  # (a dispatch mode sees torch's one aten.addmm with beta and alpha as given)
    else:
        result = _scaled_add(input, mm, (mat1, mat2), beta, alpha, "AddmmBackward0", "mat1 @ mat2")
    return result if out is None else _exact_out(result, out, "addmm")


_LAYOUT_NAMES = {"strided": "Strided", "sparse_coo": "Sparse", "sparse_csr": "SparseCsr", "sparse_csc": "SparseCsc"}


def _refuse_sparse_addmm_layouts(input, mat1, mat2) -> None:
    """torch.addmm's refusals of a sparse COO operand its kernels take nowhere: with a compressed mat1, a COO
    mat2 has no CPU kernel; otherwise addmm_sparse_dense (the kernel any COO operand reaches) wants a
    strided result (``input``), then a COO mat1 and strided mat2."""
    if not (input.__class__ in SPARSE_COO_TYPES or mat1.__class__ in SPARSE_COO_TYPES
            or mat2.__class__ in SPARSE_COO_TYPES) or not all(isinstance(t, Tensor) for t in (input, mat1, mat2)):
        return  # (the common case: one look at each class)
    names = [_LAYOUT_NAMES.get(str(t.layout).rpartition(".")[2], "") for t in (input, mat1, mat2)]
    if "Sparse" not in names:
        return  # (a Parameter: one that holds a sparse tensor is in SPARSE_COO_TYPES)
    if names[1] in ("SparseCsr", "SparseCsc") and names[2] == "Sparse":
        raise RuntimeError(f"addmm: computation on CPU is not implemented for {names[0]} + {names[1]} @ {names[2]}")
    if "SparseCsr" in names or "SparseCsc" in names:
        return
    if names[0] != "Strided":
        raise RuntimeError(f"addmm_sparse_dense: expected strided result tensor, got tensor with layout {names[0]}")
    if names[2] != "Strided":
        raise RuntimeError(f"addmm_sparse_dense: expected either 'mat1' to have sparse layout and 'mat2' to have "
                           f"strided layout, got 'mat1' with layout {names[1]} and 'mat2' with layout {names[2]}")


def _scaled_addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """aten.addmm's func under a dispatch mode: the composite addmm computes."""
    return _scaled_add(input, mm, (mat1, mat2), beta, alpha, "AddmmBackward0", "mat1 @ mat2")


@cpu_autocast_policy("unlisted")
def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1, out=None) -> Tensor:
    """torch.addmv: ``beta * input + alpha * (mat @ vec)``."""
    _refuse_sparse("addmv", input, mat, vec)
    _refuse_cross_device_out(input, out, mat, vec)
    if _meta_mix(input, mat, vec):
        _expect_device(input, mat)  # torch checks input, then vec, against mat
        _expect_device(vec, mat)
    else:
        _product_on_one_device("addmv", input, mat, vec)
    _check_added_product_dtypes("addmv", input, mat, vec)
    dtype = _dtype.result_type(input, mat, vec)
    if dtype is _dtype.bool:
        raise NotImplementedError("\"addmv_impl_cpu\" not implemented for 'Bool'")
    if input.ndim == 1 and mat.ndim == 2 and vec.ndim == 1 and input.shape[0] not in (1, mat.shape[0]):
        raise RuntimeError(f"size mismatch, got input ({input.shape[0]}), mat ({mat.shape[0]}x{mat.shape[1]}), "
                           f"vec ({vec.shape[0]})")
    if _batched_by_vmap(input, mat, vec):
        result = _vmap_scaled_add(input, mv(mat, vec), beta, alpha)
        return result if out is None else _exact_out(result, out, "addmv")
    torch_args = (beta, alpha, mat, vec)
    if beta != 0 and _opmath.fused_compute_dtype(dtype) is not None:
        # torch's low-precision gemv takes beta and alpha in the tensors' dtype and rounds
        # beta·input before adding alpha·(mat @ vec) in float32
        from .elementwise import mul, number_in_dtype

        input = mul(input, number_in_dtype(beta, input)) if beta != 1 else input
        beta, alpha = 1, builtins.float(np.asarray(alpha, dtype=dtype.np).astype(np.float32))
    result = _scaled_add(input, mv, (mat, vec), beta, alpha, "AddmvBackward0", "mat @ vec", torch_args)
    return result if out is None else _exact_out(result, out, "addmv")


@cpu_autocast_policy("lower")
def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, out_dtype=None, *, beta=1, alpha=1, out=None) -> Tensor:
    """torch.baddbmm: ``beta * input + alpha * bmm(batch1, batch2)``."""
    _refuse_out_dtype(out_dtype, "baddbmm")
    _refuse_cross_device_out(input, out, batch1, batch2)
    _product_on_one_device("baddbmm", input, batch1, batch2)
    for batch, dim in ((batch1, 0), (batch2, 2)):  # torch reads these sizes before bmm's dimension checks
        if isinstance(batch, Tensor) and batch._data.ndim == 0:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    _check_added_product_dtypes("baddbmm", input, batch1, batch2)
    _dtype.refuse_wide_unsigned("linalg.baddbmm", input._data)
    product_of = _on_device_of(input, bmm) if _meta_mix(input, batch1, batch2) else bmm
    if _batched_by_vmap(input, batch1, batch2):
        result = _vmap_scaled_add(input, product_of(batch1, batch2), beta, alpha)
        return result if out is None else _exact_out(result, out, "baddbmm")
    result = _scaled_add(input, product_of, (batch1, batch2), beta, alpha, "BaddbmmBackward0", "bmm(batch1, batch2)")
    return result if out is None else _exact_out(result, out, "baddbmm")


@cpu_autocast_policy("lower")
def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1, out=None) -> Tensor:
    """torch.addbmm: ``beta * input + alpha * sum_b batch1[b] @ batch2[b]``."""
    _refuse_cross_device_out(input, out, batch1, batch2)
    _product_on_one_device("addbmm", input, batch1, batch2)
    if not isinstance(out, Tensor):
        return _addbmm(input, batch1, batch2, beta, alpha) if out is None else write_out(
            _addbmm(input, batch1, batch2, beta, alpha), out, "addbmm")
    # torch's kernel resizes out like the sum (silently), copies input into it and adds each batch's
    # product there: input takes out's dtype, which must then be the batches' ("self and mat2 ...")
    result = _addbmm(input.to(out.dtype), batch1, batch2, beta, alpha)
    if tuple(out.shape) != tuple(result.shape):
        out.resize_(result.shape)
    return write_out(result, out, "addbmm")


def _addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, beta, alpha) -> Tensor:
    _check_added_product_dtypes("addbmm", input, batch1, batch2)
    for batch, dim in ((batch1, 1), (batch2, 2)):  # torch reads these sizes before bmm's dimension checks
        if isinstance(batch, Tensor) and batch._data.ndim == 0:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    b, n, m = batch1._data.shape
    if batch2._data.ndim != 3 or batch2._data.shape[:2] != (b, m):
        bmm(batch1, batch2)  # raises torch's message
    if _batched_by_vmap(input, batch1, batch2):  # (torch's decomposition: the batch's products summed)
        return _vmap_scaled_add(input, bmm(batch1, batch2).sum(0), beta, alpha)
    if b and _opmath.fused_compute_dtype(_dtype.result_type(input, batch1, batch2)) is not None:
        # torch's kernel is one addmm per batch (beta on the first only), each rounding once
        out = input
        for i in range(b):
            out = addmm(out, batch1[i], batch2[i], beta=beta if i == 0 else 1, alpha=alpha)
        return name_node(out, "AddbmmBackward0", label="addbmm",
                         rule=_ROUNDED_SCALED_ADD_RULE % "Σ_b batch1_b @ batch2_b")
    # sum_b A_b B_b = [A_0 .. A_{b-1}] (n, b*m) @ [B_0; ..; B_{b-1}] (b*m, p)
    left = batch1.permute(1, 0, 2).reshape(n, b * m)
    right = batch2.reshape(b * m, batch2._data.shape[2])
    product_of = _on_device_of(input, mm) if _meta_mix(input, batch1, batch2) else mm
    return _scaled_add(input, product_of, (left, right), beta, alpha, "AddbmmBackward0", "Σ_b batch1_b @ batch2_b",
                       (beta, alpha, batch1, batch2))


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1, out=None) -> Tensor:
    """torch.addr: ``beta * input + alpha * outer(vec1, vec2)``.

    torch's kernel is elementwise, ``beta·self + alpha·vec1·vec2`` in the tensors' dtype, not a
    fused gemm: floating tensors take alpha into vec1 before the outer product, as it does, so a
    bfloat16 result rounds where torch's does.
    """
    _product_on_one_device("addr", input, vec1, vec2)
    _dtype.refuse_wide_unsigned("linalg.addr", input._data)
    beta, alpha = _checked_addr_scalars(input, vec1, vec2, beta, alpha)
    if input.dtype is not _dtype.bool and _batched_by_vmap(input, vec1, vec2):
        # torch's vmap runs addr as its decomposition (torch._refs.addr): input expanded to the outer
        # product's shape, beta·input + alpha·outer (numbers as wrapped tensors: MulBackward0), the outer
        # product vec1 made a column times vec2; at beta 0 alpha·outer alone
        expanded = input.expand(vec1.shape[0], vec2.shape[0])
        product = alpha * (vec1.reshape(vec1.shape[0], 1) * vec2)
        result = product if beta == 0 else beta * expanded + product
        return result if out is None else write_out(result, out, "addr")
    kept = {"alpha": alpha, "beta": beta, "factors": (vec1, vec2), "needs": (vec1.requires_grad, vec2.requires_grad)}
    if _outer_of_reals(vec1, vec2, alpha):
        product, alpha = AlphaOuter.apply(vec1, vec2, alpha=alpha), 1
    else:
        if alpha != 1 and vec1.is_floating_point():
            from .elementwise import mul, number_in_dtype

            vec1, alpha = mul(vec1, number_in_dtype(alpha, vec1)), 1
        product = outer(vec1, vec2)
    result = name_node(_scaled_sum(input, product, beta, alpha), "AddrBackward0", label="addr",
                       rule=_SCALED_ADD_RULE % "outer(vec1, vec2)", saved=_SCALED_ADD_SAVED["AddrBackward0"], kept=kept)
    return result if out is None else write_out(result, out, "addr")


_PLAIN_REALS = (builtins.int, builtins.float)


class AlphaOuter(Function):
    """addr's ``outer(alpha·vec1, vec2)`` (alpha taken into vec1 first, as torch's kernel computes),
    its gradients torch's matrix-vector products scaled after: ``grad.mv(vec2)·α``, ``grad.t().mv(vec1)·α``
    (a broadcast product's gradient, summed, then scaled by alpha before, rounds otherwise)."""

    _array_forward = True
    node_name = "MulBackward0"  # (the node it replaces: alpha·vec1's product with vec2)
    label = "alpha·outer"
    rule = "∂/∂vec1 = (G vec2)·α, ∂/∂vec2 = (Gᵀ vec1)·α"
    formula = "outer({0}, {1})"

    @staticmethod
    def forward(ctx, vec1, vec2, *, alpha):
        ctx.alpha = alpha
        needs = ctx.needs_input_grad
        ctx.save_for_backward(vec1 if needs[1] else None, vec2 if needs[0] else None)
        return (vec1 * alpha if alpha != 1 else vec1)[:, None] * vec2

    @staticmethod
    def backward(ctx, grad):
        vec1, vec2 = ctx.saved_values
        alpha = ctx.alpha
        grad1 = None if vec2 is None else mv(grad, vec2)
        grad2 = None if vec1 is None else mv(grad.mT, vec1)
        if alpha != 1:
            grad1, grad2 = (None if g is None else g * alpha for g in (grad1, grad2))
        return grad1, grad2


def _outer_of_reals(vec1, vec2, alpha) -> bool:
    """Whether addr's product is AlphaOuter's: a recorded product of two plain float32/float64 CPU
    vectors of one dtype and a real alpha."""
    return (is_grad_enabled() and type(vec1) is Tensor and type(vec2) is Tensor
            and (vec1.requires_grad or vec2.requires_grad) and type(vec1._data) is type(vec2._data) is np.ndarray
            and vec1._data.dtype == vec2._data.dtype and vec1._data.dtype in (np.float32, np.float64)
            and type(alpha) in _PLAIN_REALS)


def _checked_addr_scalars(input, vec1, vec2, beta, alpha) -> tuple:
    """(beta, alpha) after torch's build_addr_iter and check_addr_scalar, in their order: both vectors
    1-D (named as addr's, not outer's), then, once input expands to (len(vec1), len(vec2)), beta and
    alpha against the result's dtype: a bool only for a bool result, no fractional one for an integer
    result, no complex one with an imaginary part for a real floating result (one without is real)."""
    if not (isinstance(input, Tensor) and isinstance(vec1, Tensor) and isinstance(vec2, Tensor)):
        return beta, alpha  # (refused by the product)
    if vec1._data.ndim != 1 or vec2._data.ndim != 1:
        arg, vec = ("vec1", vec1) if vec1._data.ndim != 1 else ("vec2", vec2)
        raise RuntimeError(f"addr: Expected 1-D argument {arg}, but got {vec._data.ndim}-D")
    if type(beta) is builtins.int and type(alpha) is builtins.int:
        return beta, alpha  # (the common call: ints suit every dtype)
    if type(beta) in _PLAIN_REALS and type(alpha) in _PLAIN_REALS and (
            input._data.dtype.kind == vec1._data.dtype.kind == vec2._data.dtype.kind == "f"):
        return beta, alpha  # (real numbers suit a floating result)
    shape, product_shape = input._data.shape, (vec1._data.shape[0], vec2._data.shape[0])
    if len(shape) > 2 or not all(size in (1, wanted) for size, wanted in zip(reversed(shape), reversed(product_shape))):
        return beta, alpha  # (input does not expand to the product: that refusal comes first)
    dtype = _dtype.result_type(input, vec1, vec2)
    category = dtype._category  # bool 0, integer 1, floating 2, complex 3
    for value, name in ((beta, "beta"), (alpha, "alpha")):
        if isinstance(value, Tensor):  # (a 0-d tensor is a Number to torch's parser)
            value = value.item()
        if isinstance(value, (builtins.bool, np.bool_)) and category != 0:
            raise RuntimeError(f"Boolean {name} only supported for Boolean results.")
        if category < 2 and not isinstance(value, (builtins.int, np.integer, builtins.bool, np.bool_)):
            raise RuntimeError(f"For integral input tensors, argument {name} must not be a floating point number.")
    for value in (beta, alpha):  # read in a real floating dtype, a complex one with an imaginary part overflows
        if category == 2 and isinstance(value, (builtins.complex, np.complexfloating)) and value.imag != 0:
            raise RuntimeError(f"value cannot be converted to type {_dtype.cpp_type_name(dtype)} without overflow")
    if category == 2:
        beta, alpha = (v.real if isinstance(v, (builtins.complex, np.complexfloating)) else v for v in (beta, alpha))
    return beta, alpha


for _product in (matmul, mm, bmm, mv, dot, vdot, outer, kron, addmm, addmv, baddbmm, addbmm, addr):
    _product.honours_out = True  # each writes its out= itself (see _exact_out)
del _product


# ---------------------------------------------------------------- einsum
_LETTERS = string.ascii_letters


def _parse_einsum(equation: str, shapes: list) -> tuple:
    """Split ``equation`` into operand subscripts and an explicit output (torch's checks).

    Subscripts are lists of single letters and "..." tokens. Without "->" the output is the
    ellipsis (if any) followed by the letters used exactly once, in alphabetical order.
    """
    subs, output = _parsed_einsum(equation, tuple(shapes))
    return [list(sub) for sub in subs], list(output)  # (lists of its own: a caller may edit them)


def _operand_subscripts(lhs: str, count: int) -> list:
    """The subscripts of each of ``count`` operands in ``lhs`` (the equation before "->"), read as
    torch's parser reads them: one scan from the left, so the first fault met is the one reported
    (a bad character before a comma too many, an index counting the spaces)."""
    subs: list = [[]]
    ellipsis_found = False
    i = 0
    while i < len(lhs):
        c = lhs[i]
        if c == ".":
            if ellipsis_found:
                raise RuntimeError(f"einsum(): found '.' for operand {len(subs) - 1} for which an ellipsis was "
                                   "already found")
            if lhs[i:i + 3] != "...":
                raise RuntimeError(f"einsum(): found '.' for operand {len(subs) - 1} that is not part of any "
                                   "ellipsis")
            subs[-1].append("...")
            ellipsis_found = True
            i += 3
            continue
        if c == ",":
            if len(subs) == count:
                raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
            subs.append([])
            ellipsis_found = False
        elif c != " ":
            if c not in _LETTERS:
                raise RuntimeError(f"einsum(): invalid subscript given at index {i} in the equation string, "
                                   "subscripts must be in [a-zA-Z]")
            subs[-1].append(c)
        i += 1
    if len(subs) != count:
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    return subs


@functools.lru_cache(maxsize=256)  # a model calls the same equation on the same shapes each step
def _parsed_einsum(equation: str, shapes: tuple) -> tuple:
    """_parse_einsum's work, kept per (equation, shapes) as tuples: its checks cost more than the rest
    of a small einsum call. A refusal is raised again on each call (lru_cache keeps no exception)."""
    # torch finds the arrow and words an invalid subscript's index in the equation as written, spaces included
    lhs, arrow, out_written = equation.partition("->")
    subs = _operand_subscripts(lhs, len(shapes))

    def tokens(written: str, start: int, where: str) -> list:
        """The output's subscripts, read character by character as torch does."""
        result = []
        k = 0
        while k < len(written):
            char = written[k]
            if char == " ":
                k += 1
            elif char == ".":
                if "..." in result:
                    raise RuntimeError(f"einsum(): found '.' for {where} but an ellipsis (...) was already found")
                if written[k:k + 3] != "...":
                    raise RuntimeError(f"einsum(): found '.' for {where} that is not part of any ellipsis (...)")
                result.append("...")
                k += 3
            elif char not in _LETTERS:
                raise RuntimeError(f"einsum(): invalid subscript given at index {start + k} in the "
                                   f"equation string, subscripts must be in [a-zA-Z]")
            else:
                result.append(char)
                k += 1
        return result

    # torch checks every operand's count of subscripts, then the output, then the sizes: a size
    # error found here waits for the output's checks
    size_error = None
    sizes: dict = {}
    ell_sizes: dict = {}  # an ellipsis's dims by their distance from the end (they are right-aligned)
    for i, (sub, shape) in enumerate(zip(subs, shapes)):
        letters = [c for c in sub if c != "..."]
        if "..." in sub:
            if len(letters) > len(shape):
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(letters)}) is more "
                                   f"than the number of dimensions ({len(shape)}) for operand {i}")
        elif len(letters) != len(shape):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(letters)}) does not "
                               f"match the number of dimensions ({len(shape)}) for operand {i} and no ellipsis "
                               "was given")
        if size_error is not None:
            continue
        ell = len(shape) - len(letters)
        position = 0  # the dim of ``shape``
        dim = 0  # torch's: the dim once the repeated subscripts before it are taken as diagonals
        own_sizes: dict = {}  # a subscript repeated within one operand takes its diagonal: no broadcasting
        for c in sub:
            if c == "...":
                for j in range(ell, 0, -1):
                    size = shape[position]
                    position += 1
                    if size != 1:
                        seen = ell_sizes.get(j, 1)
                        if seen != 1 and seen != size:
                            # (torch's message lacks the space before "has")
                            size_error = (f"einsum(): dimension {dim} covered by ellipsis in operand {i}has size "
                                          f"{size} which does not broadcast with previously seen ellipsis with "
                                          f"size {seen} for the respective dimension")
                            break
                        ell_sizes[j] = size
                    dim += 1
                if size_error is not None:
                    break
                continue
            size = shape[position]
            position += 1
            first = own_sizes.get(c)
            if first is not None:  # repeated
                if first != size:
                    size_error = (f"einsum(): subscript {c} is repeated for operand {i} but the sizes don't match, "
                                  f"{size} != {first}")
                    break
                continue
            own_sizes[c] = size
            dim += 1
            seen = sizes.get(c)
            if seen is not None and seen != size and seen != 1 and size != 1:
                size_error = (f"einsum(): subscript {c} has size {size} for operand {i} which does not "
                              f"broadcast with previously seen size {seen}")
                break
            sizes[c] = size if seen is None or seen == 1 else seen
    has_ellipsis = any("..." in sub for sub in subs)
    if arrow:
        output = tokens(out_written, len(lhs) + 2, "output")
        for c in output:
            # (once a size error stopped the loop, ``sizes`` may lack a later operand's subscripts)
            if c != "..." and c not in sizes and (size_error is None or not any(c in sub for sub in subs)):
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation for any input operand")
            if output.count(c) > 1:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the output")
        if "..." in output and not has_ellipsis:
            output.remove("...")
    else:
        counts: dict = {}
        for sub in subs:
            for c in sub:
                if c != "...":
                    counts[c] = counts.get(c, 0) + 1
        output = (["..."] if has_ellipsis else []) + sorted(c for c, k in counts.items() if k == 1)
    if size_error is not None:
        raise RuntimeError(size_error)
    return tuple(tuple(sub) for sub in subs), tuple(output)


def _subscript_letter(n) -> str:
    """One subscript of torch's sublist form as its Python reads it: Ellipsis, 0-25 as 'A'-'Z', 26-51 as
    'a'-'z'. Anything else fails where torch's comparisons and chr() fail (a float at chr(), a
    several-element tensor at its truth value, a string at '>='), so in its words."""
    if n == Ellipsis:
        return "..."
    if n >= 0 and n < 26:
        return chr(ord("A") + n)
    if n >= 26 and n < 52:
        return chr(ord("a") + n - 26)
    raise ValueError("einsum(): subscript in subscript list is not within the valid range [0, 52)")


def _sublist_equation(args: tuple) -> tuple:
    """torch's sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as (equation, operands)."""
    equation = ",".join("".join(_subscript_letter(s) for s in sublist) for sublist in args[1::2])
    if len(args) % 2:  # an odd count: the last sublist is the output
        return equation + "->" + "".join(_subscript_letter(s) for s in args[-1]), args[:-1:2]
    return equation, args[::2]


def einsum(equation, *operands) -> Tensor:
    """torch.einsum: any equation NumPy accepts (ellipsis, implicit output, repeated subscripts,
    size-1 broadcasting); operands may also be passed as one list, or in torch's sublist form
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.

    It hands itself to ``__torch_function__`` as torch.functional.einsum does (so it is marked as
    dispatching, and the package's wiring leaves it as it is): after the sublist form is read, and for one list of operands only once the list is
    unpacked, so a handler (an fx Proxy) inside the list sees ``einsum(equation, a, b)``; an active
    mode still sees the list, as torch's."""
    if not operands:  # torch's Python wrapper counts its arguments first
        raise ValueError("einsum(): must specify the equation string and at least one operand, "
                         "or at least one operand and its subscripts list")
    if isinstance(equation, Tensor):
        equation, operands = _sublist_equation((equation,) + operands)
    one_list = len(operands) == 1 and isinstance(operands[0], (list, tuple))
    if _torch_function.has_torch_function(() if one_list else operands):
        return _torch_function.handle_torch_function(einsum, operands, equation, *operands)
    if one_list:
        return einsum(equation, *operands[0])
    if isinstance(equation, bytes):  # torch's parser reads bytes as a str
        equation = equation.decode()
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): argument 'equation' (position 1) must be str, not {type(equation).__name__}")
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 1, but got {type(t).__name__}")
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    if len(operands) == 1:
        return _one_operand_einsum(operands[0], *_one_operand_steps(equation, operands[0]._data.shape))
    subs, output = _parse_einsum(equation, [t._data.shape for t in operands])
    if _function_module.active_dispatch is None and not (is_grad_enabled() and any(t.requires_grad for t in operands)) \
            and all(_plain_on_cpu(t) for t in operands) \
            and len({t._data.dtype for t in operands}) == 1 and operands[0]._data.dtype.kind in "fc" \
            and not any(_forward_ad.carries_tangent(t) for t in operands) and not autocast_unifies(operands[0]._data):
        # nothing watches, records, carries a tangent or autocasts (bmm): the same steps on the
        # arrays (a node's cost each, saved), planned once per equation and shapes
        plan = _array_steps(equation, tuple(t._data.shape for t in operands))
        if plan is not None:
            steps, result = plan
            values = [t._data for t in operands]
            for step, at, argument in steps:
                values.append(step(values[at[0]], argument) if argument is not None else step(*(values[k] for k in at)))
            return Tensor._make(values[result])
    if _function_module.active_dispatch is None and is_grad_enabled() \
            and all(_plain_on_cpu(t) and t._data.size for t in operands) \
            and operands[0]._data.dtype in _STEPPED_DTYPES and len({t._data.dtype for t in operands}) == 1 \
            and _function_module.active_extension is None and _function_module.active_profiler is None \
            and not _function_module.func_transforms.active and not _function_module.tracing_ops \
            and not autocast_unifies(operands[0]._data):
        # the common training case: grad is recorded, and nothing watches the steps, carries a
        # tangent, batches (vmap) or autocasts: the same steps on the arrays, recorded as one node
        plan = _grad_plan(equation, tuple(t._data.shape for t in operands), tuple(t.requires_grad for t in operands))
        if plan.node is not None:
            return plan.node.apply(*operands, plan=plan)
    return _pairwise_einsum(subs, output, operands, _ON_TENSORS)


def _plain_on_cpu(t: Tensor) -> bool:
    """Whether einsum may take its steps on ``t``'s array: a CPU tensor, a plain one or of a subclass whose
    ops give plain Tensors (torch's disabled __torch_function__: a Parameter, a Buffer), as the recorded
    ops treat them."""
    return type(t._data) is np.ndarray and (
        t.__class__ is Tensor or t.__class__.__torch_function__ is _torch_function.disabled_torch_function_impl)


@functools.lru_cache(maxsize=256)  # a model calls the same equation on the same shapes each step
def _array_steps(equation: str, shapes: tuple) -> tuple | None:
    """_pairwise_einsum's steps for operands of ``shapes``: each as (array function, the positions of
    its inputs among the operands and the earlier steps' results, its one other argument or None), and
    the result's position; None when a step sums (only the sum op computes as torch does) or the
    result has a dim of size 0 or 1 (whose stride torch's views set, not NumPy's)."""
    subs, output = _parse_einsum(equation, list(shapes))
    planner = _Planner(shapes)
    try:
        result = _pairwise_einsum(subs, output, [_Planned(k, shape) for k, shape in enumerate(shapes)], planner)
    except _NeedsOps:
        return None
    if 0 in result.shape or 1 in result.shape:
        return None
    return planner.compacted(result)


# (float16 and bfloat16 steps compute in float32 through the ops' own hooks: recorded step by step)
_STEPPED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _GradPlan:
    """_pairwise_einsum's steps for operands of given shapes of which given ones require grad, each as
    the op the recorded route applies: (kind, the positions of its inputs among the operands and the
    earlier steps' results, its argument, which inputs need a gradient, the inputs' shapes). ``node``:
    the Function recording them as one node, named as torch's einsum's last node (None: recorded
    step by step)."""

    def __init__(self, subs, output, shapes: tuple, needs: tuple) -> None:
        self.subs, self.output, self.operand_count = subs, output, len(shapes)
        self.steps: list = []
        result = _pairwise_einsum(list(subs), list(output), [_Taped(k, shape, need) for k, (shape, need)
                                                             in enumerate(zip(shapes, needs))], self)
        # the steps a folded permute left out (None) dropped, the positions renumbered
        position = list(range(self.operand_count))
        steps = []
        for step in self.steps:
            position.append(self.operand_count + len(steps))
            if step is not None:
                steps.append(step[:1] + (tuple(position[k] for k in step[1]),) + step[2:])
        self.result = position[result.at]
        self.steps = tuple(steps)
        self.node = {"reshape": EinsumSteps, "mul": EinsumProductSteps}.get(self.steps[-1][0])

    def _step(self, kind, inputs, argument, shape):
        self.steps.append((kind, tuple(x.at for x in inputs), argument, tuple(x.needs for x in inputs),
                           tuple(x.shape for x in inputs)))
        return _Taped(self.operand_count + len(self.steps) - 1, shape, any(x.needs for x in inputs))

    @staticmethod
    def shape(x):
        return x.shape

    def diagonal(self, x, dim1, dim2):  # x.diagonal(0, dim1, dim2).movedim(-1, dim1)
        shape = [s for d, s in enumerate(x.shape) if d not in (dim1, dim2)] + [x.shape[dim1]]
        diagonal = self._step("diagonal", (x,), (dim1, dim2), tuple(shape))
        order = list(range(len(shape) - 1))
        order.insert(dim1, len(shape) - 1)
        return self.permute(diagonal, order)

    def sum(self, x, dims):  # reduce.sum(x, dims, keepdim=True)
        dims = tuple(sorted(dims))
        return self._step("sum", (x,), dims, tuple(1 if d in dims else s for d, s in enumerate(x.shape)))

    def mul(self, x, y):
        return self._step("mul", (x, y), None, np.broadcast_shapes(x.shape, y.shape))

    def bmm(self, x, y):
        return self._step("bmm", (x, y), None, (x.shape[0], x.shape[1], y.shape[2]))

    def unsqueeze(self, x, dim):
        return self._step("unsqueeze", (x,), dim, x.shape[:dim] + (1,) + x.shape[dim:])

    def permute(self, x, dims):
        # a permute of a permute is one permute, and the identity none: the same strides (of the
        # same memory) forward and back, with fewer steps
        dims = tuple(dims)
        shape = tuple(x.shape[d] for d in dims)
        producer = x.at - self.operand_count
        if producer >= 0 and self.steps[producer][0] == "permute":
            _, (at,), (before, _), _, (before_shape,) = self.steps[producer]
            self.steps[producer] = None
            x, dims = _Taped(at, before_shape, x.needs), tuple(before[d] for d in dims)
        if dims == tuple(range(len(dims))):
            return _Taped(x.at, shape, x.needs)
        return self._step("permute", (x,), (dims, tuple(sorted(range(len(dims)), key=dims.__getitem__))), shape)

    def reshape(self, x, *shape):
        return self._step("reshape", (x,), tuple(shape), tuple(shape))

    def view(self, x, shape):  # (a view of bmm's contiguous result: reshape's steps)
        return self._step("reshape", (x,), tuple(shape), tuple(shape))


class _Taped:
    """An operand or a step's result while _GradPlan plans: its position, shape and whether it needs a gradient."""

    __slots__ = ("at", "shape", "needs")

    def __init__(self, at: int, shape: tuple, needs: bool) -> None:
        self.at, self.shape, self.needs = at, tuple(shape), needs


@functools.lru_cache(maxsize=256)  # a model calls the same equation on the same shapes each step
def _grad_plan(equation: str, shapes: tuple, needs: tuple) -> _GradPlan:
    subs, output = _parse_einsum(equation, list(shapes))
    return _GradPlan(subs, output, shapes, needs)


def _reshaped_array(x, shape: tuple):
    """reshape's array on a plain tensor: a view where the strides allow, else a row-major copy
    viewed (UnsafeView of a Clone), as ``_reshape_to`` and a view node's plain backward compute it."""
    if not _viewable(x, shape):
        x = x.copy()
    return Reshape.forward(_NULL_CTX, x, shape)


def _unsqueezed_array(x, dim: int):
    """unsqueeze's view with torch's strides: x's, and for the new dim the extent of the dim it goes before."""
    shape = x.shape[:dim] + (1,) + x.shape[dim:]
    out = x.reshape(shape)  # (always a view: only a size-1 dim's stride is NumPy's own)
    strides = x.strides[:dim] + (x.shape[dim] * x.strides[dim] if dim < x.ndim else x.itemsize,) + x.strides[dim:]
    return out if out.strides == strides else strided_view(out, shape, strides)


class EinsumSteps(Function):
    """torch's einsum of several operands (_pairwise_einsum's steps, as _GradPlan lists them) recorded
    as one node: each step computed on the arrays as the recorded route's op computes it, so the values
    are that route's, and the rule runs each step's rule in reverse as its node's plain backward
    computes it (bmm's G Bᵀ and Aᵀ G as Bmm's rule, mul's products as Mul's, a broadcast gradient
    summed back as the engine's SumToSize, views undone), so the gradients are that route's too, with
    one node instead of about ten. Under create_graph, or where the backward's ops are watched, the
    rule is the recorded route's own backward, run on its steps recomputed.

    Named as torch's einsum's last node: a view of its last bmm (a product with nothing summed is
    EinsumProductSteps, a mul); unlike torch's, the result is not a view of that bmm's."""

    _array_forward = True
    node_name = "ViewBackward0"
    # torch's view node's: the shape of the last view's input (bmm's result, its dims spread)
    saved_attributes = {"_saved_self_sym_sizes": SavedValue(lambda node: tuple(node.plan.steps[-1][4][0]))}
    label = "einsum"
    rule = "torch's pairwise steps (views, sums, bmm or mul) in reverse, each step's vector-Jacobian product"

    @staticmethod
    def forward(ctx, *operands, plan):
        values = list(operands)
        # what the products' rules read: for each bmm or mul, the right operand where the left needs
        # a gradient and the left where the right does (saved with the operands: freed after the
        # walk, and the operands version-checked)
        kept = []
        for kind, at, argument, needs, _ in plan.steps:
            x = values[at[0]]
            if kind == "permute":
                out = x.transpose(argument[0])  # (Permute's forward of a non-empty array)
            elif kind == "reshape":
                out = _reshaped_array(x, argument)
            elif kind == "unsqueeze":
                out = _unsqueezed_array(x, argument)
            elif kind == "bmm" or kind == "mul":
                y = values[at[1]]
                # (Bmm's forward of two 3-d arrays of one batch, whether or not a gradient is needed)
                out = _array_bmm(x, y) if kind == "bmm" else Mul.forward(_NULL_CTX, x, y)
                if needs[0] or needs[1]:
                    kept.append(y if needs[0] else None)
                    kept.append(x if needs[1] else None)
            elif kind == "diagonal":
                out = Diagonal.forward(_NULL_CTX, x, 0, *argument)
            else:  # sum
                out = SumDim.forward(_NULL_CTX, x, argument, True, None)
            values.append(out)
        ctx.plan = plan
        ctx.save_for_backward(*operands, *kept)
        return values[plan.result]

    @staticmethod
    def backward(ctx, grad):
        plan = ctx.plan
        saved = ctx.saved_values
        if is_grad_enabled() or type(grad) is not Tensor or type(grad._data) is not np.ndarray \
                or _torch_function.flags.modes_live or not unwatched_on_plain_arrays(grad) \
                or numpy_errstate.get() is not QUIET:
            return _einsum_steps_by_ops(ctx, grad)
        grads = [None] * (plan.operand_count + len(plan.steps))
        grads[plan.result] = grad._data
        at_kept = len(saved)
        for position in range(len(plan.steps) - 1, -1, -1):
            kind, at, argument, needs, shapes = plan.steps[position]
            if kind == "bmm" or kind == "mul":
                if needs[0] or needs[1]:
                    at_kept -= 2
                    y, x = saved[at_kept], saved[at_kept + 1]
            g = grads[plan.operand_count + position]
            if g is None:  # (no operand needing a gradient reaches this step)
                continue
            if kind == "permute":
                grads[at[0]] = g.transpose(argument[1])
            elif kind == "reshape":
                grads[at[0]] = _reshaped_array(g, shapes[0])
            elif kind == "unsqueeze":  # (squeeze's view, as UnsqueezeBackward0: the other dims' strides kept)
                grads[at[0]] = g.squeeze(argument)
            elif kind == "bmm":  # d(A B) = dA B + A dB: G Bᵀ and Aᵀ G
                if needs[0]:
                    grads[at[0]] = _array_bmm(g, y._data.swapaxes(1, 2))
                if needs[1]:
                    grads[at[1]] = _array_bmm(x._data.swapaxes(1, 2), g)
            elif kind == "mul":  # d(a * b) = b da + a db, each summed back to its operand's shape
                for k, other in ((0, y), (1, x)):
                    if needs[k]:
                        g_k = g * other._data
                        grads[at[k]] = g_k if g_k.shape == shapes[k] else SumToSize.forward(_NULL_CTX, g_k,
                                                                                           shapes[k])
            elif kind == "diagonal":
                grads[at[0]] = DiagonalScatter.forward(_NULL_CTX, g, shapes[0], 0, *argument)
            else:  # sum: the gradient copied over the summed dims
                grads[at[0]] = np.broadcast_to(g, shapes[0])
        needs = ctx.needs_input_grad
        return tuple(Tensor._make(grads[k]) if needs[k] else None for k in range(plan.operand_count))


class EinsumProductSteps(EinsumSteps):
    # with nothing summed, torch's einsum of several operands ends with their broadcast product
    node_name = "MulBackward0"
    # torch's mul node's: its factors, each kept where the other needs a gradient (the last two saved)
    saved_attributes = {"_saved_other": saved(-2), "_saved_self": saved(-1)}


def _einsum_steps_by_ops(node, grad, batched: bool = False) -> tuple:
    """An EinsumSteps node's gradients as the recorded route's backward gives them: its steps
    recomputed through chainrule's ops from the saved operands, then differentiated (recorded under
    create_graph, so twice differentiable; ``batched``: a batch of output gradients, its rows'
    vector-Jacobian products). A tensor passed as several operands gets its whole gradient once."""
    plan = node.plan
    operands = node.saved_values[:plan.operand_count]
    wanted = []
    for k, t in enumerate(operands):
        if node.needs_input_grad[k] and not any(t is operands[j] for j in wanted):
            wanted.append(k)
    recording = is_grad_enabled()
    with enable_grad():
        out = _pairwise_einsum(list(plan.subs), list(plan.output), operands, _ON_TENSORS)
    grads = autograd_grad(out, [operands[k] for k in wanted], grad, create_graph=recording, allow_unused=True,
                          is_grads_batched=batched)
    result: list = [None] * plan.operand_count
    for k, g in zip(wanted, grads):
        result[k] = g
    return tuple(result)


class _NeedsOps(Exception):
    pass


class _OnTensors:
    """The steps of torch's einsum as chainrule's ops (a dispatch mode sees each, autograd records each)."""

    @staticmethod
    def shape(x):
        return x._data.shape

    @staticmethod
    def diagonal(x, dim1, dim2):  # moved back to dim1, as torch's movedim(-1, dim1)
        return x.diagonal(0, dim1, dim2).movedim(-1, dim1)

    @staticmethod
    def sum(x, dims):
        from .reduce import sum as reduce_sum

        return reduce_sum(x, dims, True)

    @staticmethod
    def mul(x, y):
        from .elementwise import mul

        return mul(x, y)

    @staticmethod
    def bmm(x, y):
        return bmm(x, y)

    @staticmethod
    def unsqueeze(x, dim):
        return x.unsqueeze(dim)

    @staticmethod
    def permute(x, dims):
        return x.permute(dims)

    @staticmethod
    def reshape(x, *shape):
        return x.reshape(shape)

    @staticmethod
    def view(x, shape):
        return x.view(shape)


def _array_diagonal(x: np.ndarray, dims: tuple) -> np.ndarray:
    return np.moveaxis(np.diagonal(x, 0, *dims), -1, dims[0])


def _array_mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return Mul.forward(_NULL_CTX, x, y)  # (laid out as torch's TensorIterator lays it out)


def _array_bmm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bmm's forward of two 3-d arrays of one batch when nothing records (the same bits), less its
    other cases' tests."""
    return _in_order_product(x, y) if _small_product(x, y) else _as_array(np.matmul(_blas_ready(x), _blas_ready(y)))


class _Planned:
    """An operand or a step's result while _array_steps plans: its position and shape."""

    def __init__(self, at: int, shape: tuple):
        self.at, self.shape = at, tuple(shape)


class _Planner:
    """Takes _pairwise_einsum's steps on _Planned stand-ins, noting each as the NumPy function that
    computes the op's values (views as NumPy's, bmm as Bmm's forward, so the same bits). Each value
    is used by one step only, so a view of a view folds into the first (transposes compose,
    reshapes replace, an unsqueeze is a reshape) and one that changes nothing is left out: the
    values and the result's strides are the same, with fewer Python calls."""

    def __init__(self, shapes: tuple):
        self.operand_count = len(shapes)
        self.steps: list = []  # (function, input positions, argument); None where folded away

    def _step(self, function, inputs, argument, shape):
        self.steps.append((function, tuple(x.at for x in inputs), argument))
        return _Planned(self.operand_count + len(self.steps) - 1, shape)

    def _view(self, function, x, argument, shape):
        producer = x.at - self.operand_count
        while producer >= 0 and self.steps[producer][0] is None:  # an identity folded away: its input
            x = _Planned(self.steps[producer][1][0], x.shape)
            producer = x.at - self.operand_count
        if producer >= 0 and self.steps[producer][0] is function and function is not _array_diagonal:
            _, (at,), before = self.steps[producer]
            if function is np.ndarray.transpose:  # permute(permute(x, p), q) is permute(x, p[q])
                argument = tuple(before[d] for d in argument)
            self.steps[producer] = (function, (at,), argument)
            if argument == (tuple(range(len(argument))) if function is np.ndarray.transpose else None):
                self.steps[producer] = (None, (at,), None)
            return _Planned(x.at, shape)
        if argument == (tuple(range(len(argument))) if function is np.ndarray.transpose else x.shape):
            return _Planned(x.at, shape)
        return self._step(function, (x,), argument, shape)

    def compacted(self, result: _Planned) -> tuple:
        """The steps without those folded away, their inputs renumbered, and the result's position."""
        position = list(range(self.operand_count))
        steps = []
        for function, at, argument in self.steps:
            if function is None:  # an identity: its value is its input's
                position.append(position[at[0]])
                continue
            steps.append((function, tuple(position[k] for k in at), argument))
            position.append(self.operand_count + len(steps) - 1)
        return tuple(steps), position[result.at]

    @staticmethod
    def shape(x):
        return x.shape

    def diagonal(self, x, dim1, dim2):
        shape = list(x.shape)
        del shape[dim2]
        return self._step(_array_diagonal, (x,), (dim1, dim2), tuple(shape))

    @staticmethod
    def sum(x, dims):
        raise _NeedsOps

    def mul(self, x, y):
        return self._step(_array_mul, (x, y), None, np.broadcast_shapes(x.shape, y.shape))

    def bmm(self, x, y):
        return self._step(_array_bmm, (x, y), None, (x.shape[0], x.shape[1], y.shape[2]))

    def unsqueeze(self, x, dim):
        shape = x.shape[:dim] + (1,) + x.shape[dim:]
        return self._view(np.ndarray.reshape, x, shape, shape)

    def permute(self, x, dims):
        return self._view(np.ndarray.transpose, x, tuple(dims), tuple(x.shape[d] for d in dims))

    def reshape(self, x, *shape):
        return self._view(np.ndarray.reshape, x, tuple(shape), tuple(shape))

    def view(self, x, shape):
        return self._view(np.ndarray.reshape, x, tuple(shape), tuple(shape))


_ON_TENSORS = _OnTensors()


def _pairwise_einsum(subs: list, output: list, operands, on):
    """torch's einsum of several operands (at::native::einsum with no path: opt_einsum is not
    installed with torch here, so it contracts left to right), step for step through chainrule's
    recorded ops, so a dispatch mode sees torch's aten calls, the graph is theirs and float32
    values are bmm's as torch's are.

    Every operand is aligned to one order of dims: the output's, then the ellipsis if the output
    drops it, then the summed labels in label order (A-Z, a-z); a repeated label takes a diagonal
    moved back to its first dim, a missing one is unsqueezed. The first two operands are then
    folded into one until one is left: the summed dims only one of them holds (with size > 1
    among the operands left) are summed first, then the pair is multiplied or contracted
    (_sumproduct_pair). The summed dims, now of size 1, are viewed away. ``on`` takes the steps
    (_ON_TENSORS, or _array_steps' _Planner)."""
    ell_num_dim = max((len(on.shape(t)) - (len(sub) - 1) for sub, t in zip(subs, operands) if "..." in sub), default=0)
    position: dict = {}
    at = 0
    ell_index = 0
    for label in output:
        if label == "...":
            ell_index = at
            at += ell_num_dim
        else:
            position[label] = at
            at += 1
    out_size = at
    if "..." not in output:
        ell_index = at
        at += ell_num_dim
    for label in sorted({label for sub in subs for label in sub if label != "..." and label not in position}):
        position[label] = at
        at += 1
    dims = at
    dim_counts = [0] * dims
    ops = []
    for sub, operand in zip(subs, operands):
        op = operand
        permutation = [-1] * dims
        dim = 0
        for label in sub:
            if label == "...":
                width = len(on.shape(operand)) - (len(sub) - 1)  # (the operand's, before any diagonal)
                for j in range(ell_num_dim - width, ell_num_dim):
                    if on.shape(op)[dim] != 1:
                        dim_counts[ell_index + j] += 1
                    permutation[ell_index + j] = dim
                    dim += 1
            elif permutation[position[label]] == -1:
                if on.shape(op)[dim] != 1:
                    dim_counts[position[label]] += 1
                permutation[position[label]] = dim
                dim += 1
            else:  # a repeated label: its diagonal, moved back to the label's first dim
                first = permutation[position[label]]
                op = on.diagonal(op, first, dim)
        for k in range(dims):
            if permutation[k] == -1:  # a label this operand lacks
                op = on.unsqueeze(op, dim)
                permutation[k] = dim
                dim += 1
        ops.append(on.permute(op, permutation))
    while len(ops) > 1:
        a, b = ops[0], ops[1]
        sum_dims, a_dims_to_sum, b_dims_to_sum = [], [], []
        for dim in range(out_size, dims):
            if on.shape(a)[dim] != 1 and on.shape(b)[dim] != 1:
                dim_counts[dim] -= 1
                if dim_counts[dim] == 1:
                    sum_dims.append(dim)
                    dim_counts[dim] = 0
            elif dim_counts[dim] == 1:
                if on.shape(a)[dim] != 1:
                    a_dims_to_sum.append(dim)
                    dim_counts[dim] = 0
                elif on.shape(b)[dim] != 1:
                    b_dims_to_sum.append(dim)
                    dim_counts[dim] = 0
        if a_dims_to_sum:
            a = on.sum(a, a_dims_to_sum)
        if b_dims_to_sum:
            b = on.sum(b, b_dims_to_sum)
        ops[:2] = [_sumproduct_pair(a, b, sum_dims, on)]
    if dims > out_size:  # every summed dim is now of size 1
        return on.view(ops[0], on.shape(ops[0])[:out_size])
    return ops[0]


def _sumproduct_pair(left, right, sum_dims: list, on):
    """torch's sumproduct_pair with keepdim: two operands of the same number of dims (size-1 dims
    broadcast), ``sum_dims`` summed over, as one bmm of (dims both hold, dims only the left holds,
    summed) by (both, summed, the rest) viewed back to the operands' order; a plain product (mul)
    when nothing is summed."""
    if not sum_dims:
        return on.mul(left, right)
    lro, lo, ro = [], [], []
    lro_size = lo_size = ro_size = sum_size = 1
    for i in range(len(on.shape(left))):
        in_left, in_right = on.shape(left)[i] != 1, on.shape(right)[i] != 1
        if i in sum_dims:
            if in_left and in_right:
                if on.shape(left)[i] != on.shape(right)[i]:
                    raise RuntimeError("non-broadcast dimensions must match")
                sum_size *= on.shape(left)[i]
            elif in_left:
                left = on.sum(left, [i])
            elif in_right:
                right = on.sum(right, [i])
        elif in_left and in_right:
            if on.shape(left)[i] != on.shape(right)[i]:
                raise RuntimeError("non-broadcast dimensions must match")
            lro.append(i)
            lro_size *= on.shape(left)[i]
        elif in_left:
            lo.append(i)
            lo_size *= on.shape(left)[i]
        else:
            ro.append(i)
            ro_size *= on.shape(right)[i]
    if lo and ro and ro[-1] < lo[0]:  # swapped, bmm's result is laid out in the output's order
        left, right, lo, ro, lo_size, ro_size = right, left, ro, lo, ro_size, lo_size
    out_shape = ([on.shape(left)[d] for d in lro] + [on.shape(left)[d] for d in lo] + [1] * len(sum_dims)
                 + [on.shape(right)[d] for d in ro])
    out_permutation = [0] * len(out_shape)
    for i, d in enumerate(lro + lo + sum_dims + ro):
        out_permutation[d] = i
    left = on.reshape(on.permute(left, lro + lo + sum_dims + ro), lro_size, lo_size, sum_size)
    right = on.reshape(on.permute(right, lro + sum_dims + ro + lo), lro_size, sum_size, ro_size)
    return on.permute(on.view(on.bmm(left, right), out_shape), out_permutation)


einsum.__torch_dispatching__ = True
einsum.__torch_owner__ = "torch"


@functools.lru_cache(maxsize=256)  # (a model sums with the same equation on the same shape each step)
def _one_operand_steps(equation: str, shape: tuple) -> tuple:
    """The steps of torch's einsum of one operand of ``shape``: for each repeated label in turn,
    the two dims whose diagonal it takes and the permutation (movedim's) that moves the diagonal
    back to the label's first dim; the permutation to the output's order followed by the summed
    dims; and how many dims are kept (the rest are summed)."""
    subs, output = _parse_einsum(equation, [shape])
    labels = subs[0]
    width = len(shape) - (len(labels) - 1) if "..." in labels else 0
    first_dim: dict = {}
    diagonals = []
    at = 0
    ndim = len(shape)
    for label in labels:
        if label == "...":
            first_dim[label] = list(range(at, at + width))
            at += width
        elif label in first_dim:
            dim = first_dim[label][0]
            ndim -= 1
            moved_back = list(range(ndim - 1))
            moved_back.insert(dim, ndim - 1)
            diagonals.append((dim, at, tuple(moved_back)))
        else:
            first_dim[label] = [at]
            at += 1
    summed = [label for label in first_dim if label not in output]
    order = tuple(d for label in list(output) + summed for d in first_dim[label])
    kept = sum(len(first_dim[label]) for label in output)
    return tuple(diagonals), order, kept


def _one_operand_einsum(operand: Tensor, diagonals: tuple, order: tuple, kept: int) -> Tensor:
    """torch's einsum of one operand, step by step as torch takes it, so the result is its view
    (strides, ``_base``, an in-place write reaching the operand) and its graph has torch's nodes:
    a repeated label takes a diagonal moved back to the label's first dim (DiagonalBackward0,
    PermuteBackward0), the dims are permuted to the output's order followed by the summed ones
    (PermuteBackward0), and the summed ones are summed (SumBackward1, int64 for integers).

    Each step is its node applied directly: the steps are already checked, and the public
    functions' argument parsing cost 'ij->i' on 256x256 more than the sum itself. With no graph to
    record, a permutation that leaves every dim in place is skipped (a node and nothing else: 'ii'
    took two), unless it is the view the result is."""
    if not diagonals and kept == len(order):  # a permutation only: the view the result is
        return _share(Permute.apply(operand, dims=order), operand)
    # a dispatch mode (or wrapper subclass) sees every step, as torch's
    watched = _function_module.active_dispatch is not None
    recording = watched or (operand.requires_grad and is_grad_enabled())
    for dim, later, moved_back in diagonals:
        diagonal = Diagonal.apply(operand, offset=0, dim1=dim, dim2=later)._share(operand)
        if recording or moved_back != tuple(range(len(moved_back))):
            diagonal = _share(Permute.apply(diagonal, dims=moved_back), diagonal)
        operand = diagonal
    result = operand
    if recording or order != tuple(range(len(order))):
        result = _share(Permute.apply(operand, dims=order), operand)
    if kept == len(order):
        return result
    if watched:  # as torch's sum(dims) call: sum.dim_IntList (bools and integers count in int64)
        from .reduce import sum as reduce_sum

        return reduce_sum(result, list(range(kept, len(order))))
    # torch sums bools and integers in int64, as sum does
    dtype = np.int64 if result._data.dtype.kind in "biu" else None
    return SumDim.apply(result, dims=tuple(range(kept, len(order))), keepdim=False, dtype=dtype)


@functools.partial(honours_out, composite=True)  # (torch's is composite: out= is a copy_)
def tensordot(a: Tensor, b: Tensor, dims=2, out=None) -> Tensor:
    """torch.tensordot: contract ``dims`` (an int: a's last and b's first dims; or two lists).
    ``out`` (torch's Python takes it fourth) is honours_out's."""
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > a._data.ndim or dims > b._data.ndim:
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        dims_a = list(range(a._data.ndim - dims, a._data.ndim))
        dims_b = list(range(dims))
    else:
        if not isinstance(dims, (list, tuple)) or len(dims) != 2:
            raise RuntimeError("tensordot expects dims to be int or tuple[list[int], list[int]] or list[list[int]] "
                               f"containing two lists, but got dims={dims}")
        dims_a, dims_b = ([d] if isinstance(d, int) else list(d) for d in dims)
        if len(dims_a) != len(dims_b):
            raise RuntimeError("both dimension lists should have same length")
        dims_a = [_wrap_dim(d, a._data.ndim, "tensordot") for d in dims_a]
        dims_b = [_wrap_dim(d, b._data.ndim, "tensordot") for d in dims_b]
    if a._data.dtype != b._data.dtype:
        raise RuntimeError("both inputs should have same dtype")
    for da, db in zip(dims_a, dims_b):
        size_a, size_b = a._data.shape[da], b._data.shape[db]
        # torch broadcasts a size-1 contracted dim: the other operand is summed over its dim first
        if size_b == 1:
            a = a.sum(da, keepdim=True, dtype=a.dtype)
        elif size_a == 1:
            b = b.sum(db, keepdim=True, dtype=b.dtype)
        elif size_a != size_b:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a._data.shape[da]} "
                               f"in dim {da} and second has size {b._data.shape[db]} in dim {db}")
    _dtype.refuse_wide_unsigned("linalg.mm", a._data)  # (torch multiplies the reshaped operands with mm)
    if a._data.dtype == np.bool_:  # ... which has no bool kernel; a 1x1 result goes to dot, which has none either
        size1 = math.prod(n for i, n in enumerate(a._data.shape) if i not in dims_a)
        size2 = math.prod(n for i, n in enumerate(b._data.shape) if i not in dims_b)
        _refuse_bool_product("dot" if size1 == size2 == 1 else "mm", size1 * size2,
                             math.prod(a._data.shape[d] for d in dims_a))
        shape = [n for i, n in enumerate(a._data.shape) if i not in dims_a] + \
            [n for i, n in enumerate(b._data.shape) if i not in dims_b]
        return a.new_zeros(shape)  # the empty product mm returns before its kernel: all False
    letters = iter(_LETTERS)
    sub_a = [next(letters) for _ in range(a._data.ndim)]
    sub_b = [next(letters) for _ in range(b._data.ndim)]
    for da, db in zip(dims_a, dims_b):
        sub_b[db] = sub_a[da]
    out = [c for i, c in enumerate(sub_a) if i not in dims_a] + [c for i, c in enumerate(sub_b) if i not in dims_b]
    equation = "".join(sub_a) + "," + "".join(sub_b) + "->" + "".join(out)
    # torch multiplies the reshaped operands with mm (lowered by CPU autocast), but contracts every dim
    # with a dot product, which is on no autocast list
    result = (_einsum_on_no_autocast_list if not out else einsum)(equation, a, b)
    if result.grad_fn is not None and result.grad_fn.name() == "ViewBackward0":
        # torch views its product as the result: mm's (size1, size2), or dot's () where both are 1
        size1 = math.prod(n for i, n in enumerate(a._data.shape) if i not in dims_a)
        size2 = math.prod(n for i, n in enumerate(b._data.shape) if i not in dims_b)
        name_node(result, "ViewBackward0", saved=_TENSORDOT_VIEW_SAVED,
                  kept={"sizes": () if size1 == size2 == 1 else (size1, size2)})
    return result


_TENSORDOT_VIEW_SAVED = {"_saved_self_sym_sizes": kept_value("sizes")}
_einsum_on_no_autocast_list = cpu_autocast_policy("unlisted")(einsum)


# ---------------------------------------------------------------- trace and diagonals
class Trace(Function):
    label = "trace"
    rule = "puts the gradient on the diagonal"
    formula = "trace({0})"
    saved_attributes = {"_saved_self_sym_sizes": input_sizes(0)}
    _array_forward = True

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        ctx.shape = x.shape
        return _as_array(xp.trace(x))

    @staticmethod
    def backward(ctx, grad):
        # d trace(X) = sum_i dX_ii: the gradient is grad times the identity
        xp = array_module(grad)
        return grad * Tensor._make(xp.eye(*ctx.shape, dtype=grad._data.dtype))


def trace(input: Tensor) -> Tensor:
    """torch.trace: the sum of a matrix's main diagonal."""
    xp = array_module(input)
    if input._data.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input._data.ndim}")
    if input._data.dtype == np.bool_:
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    _dtype.refuse_wide_unsigned("linalg.trace", input._data)
    if input._data.dtype.kind in "biu":
        return Tensor._make(xp.asarray(xp.trace(input._data), dtype=np.int64))
    return Trace.apply(input)


def _diagonal_index(xp, shape: tuple, offset: int, dim1: int, dim2: int):
    n = max(0, min(shape[dim1] + min(offset, 0), shape[dim2] - max(offset, 0)))
    i = xp.arange(n)
    return i - min(offset, 0), i + max(offset, 0)


class Diagonal(Function):
    label = "diagonal"
    rule = "puts the gradient back on the diagonal, zeros elsewhere"
    _array_forward = True
    # the dims as given (negative ones as the C++ node's unsigned)
    saved_attributes = {"_saved_dim1": SavedValue(lambda node: as_uint64(_given_plane(node)[0])),
                        "_saved_dim2": SavedValue(lambda node: as_uint64(_given_plane(node)[1])),
                        "_saved_offset": ctx_value("params", lambda params: as_uint64(params[1])),
                        "_saved_self_sym_sizes": input_sizes(0)}

    @staticmethod
    def forward(ctx, x, offset, dim1, dim2):
        xp = array_module(x)
        ctx.params = (x.shape, offset, dim1, dim2)
        view = xp.diagonal(x, offset, dim1, dim2)
        if xp is np and x.flags.writeable:
            view.flags.writeable = True  # torch's diagonal is a view that writes through
        if not view.size:  # torch moves no offset for an empty diagonal: it starts at x's first element
            view = torch_empty_slice(x, (), view)
        return view

    @staticmethod
    def backward(ctx, grad):
        return DiagonalScatter.apply(grad, shape=ctx.params[0], offset=ctx.params[1], dim1=ctx.params[2],
                                     dim2=ctx.params[3])


class DiagonalScatter(Function):
    """zeros(shape) with ``grad`` written on a diagonal: the adjoint of ``diagonal``."""

    _array_forward = True
    node_name = "DiagonalBackwardBackward0"
    label = "diagonal_backward"
    rule = "reads the gradient's diagonal back (diagonal's backward, recorded as an op under create_graph)"

    @staticmethod
    def forward(ctx, grad, shape, offset, dim1, dim2):
        xp = array_module(grad)
        ctx.params = (offset, dim1, dim2)
        out = xp.zeros(shape, dtype=grad.dtype)
        rows, cols = _diagonal_index(xp, shape, offset, dim1, dim2)
        xp.moveaxis(out, (dim1, dim2), (-2, -1))[..., rows, cols] = grad
        return out

    @staticmethod
    def backward(ctx, grad):
        offset, dim1, dim2 = ctx.params
        return Diagonal.apply(grad, offset=offset, dim1=dim1, dim2=dim2)


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """torch.diagonal: the ``offset`` diagonal of the (dim1, dim2) planes, as the last dim."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.diagonal(offset, dim1, dim2)  # sparse: refused, as torch
    ndim = input._data.ndim
    d1, d2 = _wrap_dim(dim1, ndim, "diagonal"), _wrap_dim(dim2, ndim, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    if _function_module.active_dispatch is not None:  # (a mode sees the dims as given)
        _function_module.note_given(Diagonal, input, given_dims=(offset, dim1, dim2))
    out = Diagonal.apply(input, offset=offset, dim1=d1, dim2=d2)._share(input)
    if out._grad_fn is not None and (dim1 < 0 or dim2 < 0):
        out._grad_fn.given_plane = (dim1, dim2)
    return out


def _given_plane(node) -> tuple:
    """The (dim1, dim2) a diagonal was given (kept where one is negative), else those it ran on."""
    return getattr(node, "given_plane", None) or node.params[2:4]


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """torch.diag: a 1-D tensor becomes a square matrix with it on the ``diagonal``-th diagonal;
    a 2-D tensor gives back that diagonal."""
    ndim = input._data.ndim
    if _function_module.active_dispatch is not None and ndim in (1, 2) and (made := _function_module.composite_dispatch(
            "diag_embed" if ndim == 1 else "diagonal_copy", diag, (input, diagonal) if diagonal else (input,),
            {})) is not _function_module.RUN_UNDISPATCHED:
        return made  # (a dispatch mode sees torch's one op: diag_embed of a vector, diagonal_copy of a matrix)
    if ndim == 2:  # a copy, unlike diagonal(): torch records it under this name
        return name_node(Diagonal.apply(input, offset=diagonal, dim1=0, dim2=1).clone(), "DiagonalBackward0_copy",
                         label="diag")
    if ndim != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {ndim}D")
    n = input._data.shape[0] + abs(diagonal)
    return name_node(DiagonalScatter.apply(input, shape=(n, n), offset=diagonal, dim1=0, dim2=1), "DiagEmbedBackward0",
                     label="diag", rule="puts the vector on a diagonal: the vector's gradient is the gradient's diagonal")


# ---------------------------------------------------------------- torch.linalg names
@out_rule("same")
def vector_norm(input: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.linalg.vector_norm: the ``ord``-norm of ``x`` over ``dim`` (all dims by default)."""
    x = input  # torch's Python binding takes these keyword names
    from .reduce import _vector_norm

    if not isinstance(ord, (int, float, np.number, Tensor)):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' must be Number, not {type(ord).__name__}")
    return _vector_norm(x, ord, dim, keepdim, dtype, "linalg.vector_norm")


def _matrix_norm_dims(A: Tensor, dim, low_precision: bool = True) -> tuple:
    """torch's _linalg_matrix_norm_checks, in its order (rank, dtype, two dims, distinct once wrapped):
    the two wrapped dims of the matrices whose norm linalg.matrix_norm (and nuclear_norm) take."""
    from .reduce import _check_norm_input

    if A._data.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    _check_norm_input(A, "linalg.matrix_norm")
    if not low_precision:  # (the orders from LAPACK's singular values: 2, -2, 'nuc')
        _refuse_low_precision(A, (RuntimeError, "linalg.matrix_norm: Low precision dtypes not supported. Got {dtype}"))
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if len(dims) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(str(d) for d in dims)}")
    d0, d1 = (_wrap_dim(d, A._data.ndim, "linalg.matrix_norm") for d in dims)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({d0}, {d1})")
    return d0, d1


def _check_matrix_norm_dtype(A: Tensor, dtype) -> None:
    from .reduce import _check_norm_dtype

    _check_norm_dtype(A.dtype, dtype, "linalg.matrix_norm")


@out_rule("same_norm", composite=True)  # (torch's is composite: out= is a copy_)
def matrix_norm(input: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.linalg.matrix_norm for ord 'fro', 1, -1, inf, -inf (max/min column or row abs sums),
    and 2, -2, 'nuc' (largest, smallest, summed singular values)."""
    A = input  # torch's Python binding takes these keyword names
    from .elementwise import abs as _abs
    from .reduce import amin
    from .reduce import sum as _sum

    # torch's two signatures take ord as a number or a str, dim as ints
    if not isinstance(ord, (str, int, float, np.number)) or isinstance(dim, bool) or not isinstance(
            dim, (tuple, list, int)):
        raise _dtype.invalid_combination("linalg_matrix_norm", A, ord, dim)
    d0, d1 = _matrix_norm_dims(A, dim, low_precision=ord not in (2, -2, "nuc"))
    _check_matrix_norm_dtype(A, dtype)
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim, dtype=dtype)
    if ord in (2, -2, "nuc"):
        return _spectral_matrix_norm(A, ord, d0, d1, keepdim, dtype)
    if ord not in (1, -1, float("inf"), float("-inf")):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    # ord 1: max over columns of the column abs sums; inf: max over rows of the row abs sums
    summed, other = (d0, d1) if abs(ord) == 1 else (d1, d0)
    sums = _sum(_abs(A if dtype is None else A.to(dtype)), summed, keepdim=keepdim)
    if not keepdim and summed < other:
        other -= 1  # (the summed dim is gone; torch's empty-dim error names this index)
    return (_max_or_zero if ord > 0 else amin)(sums, other, keepdim=keepdim)


def _max_or_zero(norms: Tensor, dim: int, keepdim: bool) -> Tensor:
    """amax of non-negative ``norms`` over ``dim``; over an empty dim torch's matrix norms of positive
    order give zeros (recording no graph) where amax would raise."""
    from .reduce import amax

    if norms._data.shape[dim] != 0:
        return amax(norms, dim, keepdim=keepdim)
    shape = list(norms._data.shape)
    if keepdim:
        shape[dim] = 1
    else:
        del shape[dim]
    return norms.detach().new_zeros(shape)


def _spectral_matrix_norm(A: Tensor, ord, d0: int, d1: int, keepdim: bool, dtype) -> Tensor:
    # as torch computes them: from the singular values of the matrices moved to the last two dims
    # (the spectral_norm parametrization's check is matrix_norm(W, ord=2) ~ 1)
    from .decompositions import linalg_svdvals
    from .reduce import amin
    from .reduce import sum as _sum
    from .shape import movedim

    if dtype is not None:
        A = A.to(dtype)
    singular_values = linalg_svdvals(movedim(A, (d0, d1), (-2, -1)))
    out = {2: _max_or_zero, -2: amin, "nuc": _sum}[ord](singular_values, -1, keepdim=keepdim)
    return movedim(out.unsqueeze(-1), (-2, -1), (d0, d1)) if keepdim else out


@out_rule("same_norm", composite=True)  # (torch's is composite: out= is a copy_)
def norm(input: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.linalg.norm: a vector norm (1-D input or an int dim) or a matrix norm (2-D / 2 dims).
    torch names its tensor ``input`` here (``A`` in matrix_norm). As torch's linalg_norm: an ``ord``
    without ``dim`` needs a 1-D or 2-D input, a ``dim`` has 1 or 2 entries, and a string ``ord``
    is always a matrix norm."""
    dims = None if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    if dims is not None and len(dims) not in (1, 2):
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {dims}")
    if dims is None and (ord is not None) and input._data.ndim not in (1, 2):
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                           f"Got {input._data.ndim}D.")
    if isinstance(ord, str):
        return matrix_norm(input, ord, (0, 1) if dim is None else dim, keepdim, dtype=dtype)
    if ord is not None and (len(dims) == 2 if dims is not None else input._data.ndim == 2):
        return matrix_norm(input, ord, (0, 1) if dim is None else dim, keepdim, dtype=dtype)
    return vector_norm(input, 2.0 if ord is None else ord, dim, keepdim, dtype=dtype)  # (torch's value_or(2.0))


# ---------------------------------------------------------------- low-precision refusals
_LU_CPU = (NotImplementedError, "\"lu_cpu\" not implemented for '{dtype}'")
_INV_LOW_PRECISION = (RuntimeError, "linalg.inv: Low precision dtypes not supported. Got {dtype}")
_SLOGDET_LOW_PRECISION = (RuntimeError, "linalg.slogdet: Low precision dtypes not supported. Got {dtype}")


def _kernel_refusal(kernel: str) -> tuple:
    return NotImplementedError, f"\"{kernel}\" not implemented for '{{dtype}}'"


def _is_low_precision(tensor) -> bool:
    """A float16 or bfloat16 tensor, which torch's LAPACK-backed linalg kernels do not take."""
    return isinstance(tensor, Tensor) and tensor._data.dtype.kind in "fV" and tensor._data.dtype.itemsize < 4


def _refuse_low_precision(tensor, refusal: tuple) -> None:
    """torch's error for a float16/bfloat16 ``tensor``: ``refusal`` is (type, message with {dtype}
    and {shape})."""
    if _is_low_precision(tensor):
        error, message = refusal
        raise error(message.format(dtype=_dtype.scalar_name(tensor.dtype), shape=list(tensor._data.shape)))


def _refuses_low_precision(refusal: tuple, argument: int = 0):
    """Decorates a linalg function whose torch kernel has no float16/bfloat16 version (LAPACK has
    none): such an argument at position ``argument`` gets torch's error before anything runs, where
    NumPy would compute in float64 (a silent upcast) or raise its own TypeError."""
    def decorate(function):
        @functools.wraps(function)
        def checked(*args, **kwargs):
            if len(args) > argument:
                _refuse_low_precision(args[argument], refusal)
            return function(*args, **kwargs)
        return checked
    return decorate


# ---------------------------------------------------------------- inverse, determinants, solve
def _check_square(A: Tensor, op: str, kernel: str | None = None) -> None:
    """A batch of square floating or complex matrices, or torch's error; ``kernel``: the op has no
    such dtype check of its own in torch, whose CPU kernel of that name refuses an integer or
    bool A (NotImplementedError) instead."""
    shape = A._data.shape
    if A._data.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if shape[-1] != shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are {shape[-2]} by "
                           f"{shape[-1]} matrices")
    if kernel is not None and A._data.dtype.kind in "biu":
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(A.dtype)}'")
    if A._data.dtype.kind not in "fVc":
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got "
                           f"{_dtype.scalar_name(A.dtype)}")


def _singular(op: str, A) -> Exception:
    """torch's LinAlgError for a singular A that LAPACK refused: the batch element and the 1-based
    index of LU's first zero pivot."""
    from .decompositions import _inversion_error, _linalg_error, _lu_array

    info = _lu_array(array_module(A), A)[2]
    if not (info != 0).any():  # NumPy's LAPACK saw a zero pivot where the vectorised LU did not
        return _linalg_error(f"{op}: The diagonal element is zero, the inversion could not be completed "
                             "because the input matrix is singular.")
    return _inversion_error(op, info, A.ndim > 2)


def _singular_solve(A) -> Exception:
    from .decompositions import _first_failure, _linalg_error, _lu_array

    info = _lu_array(array_module(A), A)[2]
    where = _first_failure(info, A.ndim > 2)[0] if (info != 0).any() else ""
    return _linalg_error(f"torch.linalg.solve: {where}The solver failed because the input matrix is singular.")


class Inverse(Function):
    _array_forward = True
    node_name = "LinalgInvExBackward0"
    label = "inv"
    rule = "∂/∂A = -A⁻ᴴ G A⁻ᴴ (A⁻ᵀ G A⁻ᵀ for real A)"
    formula = "inv({0})"
    saved_attributes = {"_saved_inverse": saved(0)}

    @staticmethod
    def forward(ctx, A):
        xp = array_module(A)
        try:
            with checked_linalg(xp):  # CuPy checks for a singular A only when asked
                out = _column_major(xp.linalg.inv(A))
        except xp.linalg.LinAlgError:
            raise _singular("linalg.inv", A) from None
        ctx.save_for_backward(out)
        return out

    @staticmethod
    @conjugate_rule  # holomorphic: for complex A, grad_A = -Yᴴ G Yᴴ
    def backward(ctx, grad):
        # d(A^-1) = -A^-1 dA A^-1, so grad_A = -Y^T G Y^T with Y = A^-1
        (y,) = ctx.saved_values
        y_t = y.mT
        return -_mat(_mat(y_t, grad), y_t)


def _column_major(matrices: np.ndarray) -> np.ndarray:
    """The same values with each matrix stored column by column: LAPACK's layout, which torch's
    inv and solve return (their outputs are not contiguous; ``.mT`` of them is)."""
    xp = array_module(matrices)
    return xp.ascontiguousarray(matrices.swapaxes(-1, -2)).swapaxes(-1, -2)


@out_rule("same")
@cpu_autocast_policy("float32")
@_refuses_low_precision(_INV_LOW_PRECISION)
def inv(A: Tensor) -> Tensor:
    """torch.linalg.inv: the inverse of a (batch of) square matrix; singular input raises."""
    _check_square(A, "linalg.inv")
    return Inverse.apply(A)


@out_rule("same")
@cpu_autocast_policy("float32")
@_refuses_low_precision(_INV_LOW_PRECISION)
def inverse(input: Tensor) -> Tensor:
    """torch.inverse (the same as torch.linalg.inv)."""
    return inv(input)


def _lu_of_saved_a(part: int, transposed: bool = True) -> SavedValue:
    """torch's ``_saved_LU`` (``part`` 0) or ``_saved_pivots`` (1) of det, slogdet and solve, whose
    kernels factor A: factored from the saved A when read (the forward here needs no LU), so
    recording pays nothing for them; torch's error once the graph is freed, as for A itself.
    det and slogdet factor Aᵀ where A is real and contiguous (no copy into LAPACK's column-major
    order; ``transposed``), solve A itself."""
    def read(node):
        from .decompositions import _lu_array

        A = node.saved_values[0]
        if transposed and A.is_contiguous() and not A.is_complex():
            A = A.mT
        LU, pivots, _ = _lu_array(array_module(A._data), A._data)
        return Tensor._make(_column_major(LU) if part == 0 else pivots)

    return SavedValue(read, tensor=True, position=0)


class Det(Function):
    _array_forward = True
    node_name = "LinalgDetBackward0"
    label = "det"
    rule = "∂/∂A = g·conj(det(A))·A⁻ᴴ"
    formula = "det({0})"
    saved_attributes = {"_saved_A": saved(0), "_saved_LU": _lu_of_saved_a(0), "_saved_pivots": _lu_of_saved_a(1),
                        "_saved_result": saved(1)}

    @staticmethod
    def forward(ctx, A):
        xp = array_module(A)
        out = _as_array(xp.linalg.det(A))
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    @conjugate_rule  # holomorphic: for complex A, grad_A = g conj(det A) A⁻ᴴ
    def backward(ctx, grad):
        # d det(A) = det(A) tr(A^-1 dA), so grad_A = grad det(A) A^-T where A is invertible
        A, out = ctx.saved_values
        singular = Tensor._make(out._data == 0)
        if not bool(singular._data.any()):
            return (grad * out).unsqueeze(-1).unsqueeze(-1) * inv(A).mT
        # At a singular A (det exactly 0) torch's plain backward solves A^H X = det(A) g = 0 by LU and
        # returns zeros; a recorded (create_graph) backward returns the cofactor matrix from an SVD,
        # the gradient's limit there. The invertible matrices of a batch keep the formula above.
        from ..autograd.grad_mode import is_grad_enabled

        each_matrix = singular.unsqueeze(-1).unsqueeze(-1)
        invertible = where(each_matrix, creation.eye(A.shape[-1], dtype=A.dtype), A)
        gradient = where(each_matrix, 0.0, (grad * out).unsqueeze(-1).unsqueeze(-1) * inv(invertible).mT)
        if not is_grad_enabled():
            return gradient
        if A.ndim == 2:
            return _cofactors_by_svd(A, grad)
        cofactors = creation.zeros_like(gradient)
        cofactors[singular] = _cofactors_by_svd(A[singular], grad[singular])
        return where(each_matrix, cofactors, gradient)


def _cofactors_by_svd(A: Tensor, grad: Tensor) -> Tensor:
    """grad times the cofactor matrix det(A) A^-T of (a batch of) A, singular or not: with
    A = U diag(S) Vh it is det(U) det(Vh) conj(U) diag(prod of the other S) conj(Vh), whose product
    of the other singular values needs no division (torch's singular-matrix det gradient)."""
    from .decompositions import linalg_svd
    from .reduce import cumprod
    from .shape import cat

    U, S, Vh = linalg_svd(A)
    phase = det(U) * det(Vh)
    if A.is_complex():
        U, Vh = _conj(U), _conj(Vh)
    ones = creation.ones_like(S[..., :1])
    before = cumprod(cat([ones, S[..., :-1]], -1), -1)  # S_0 ... S_{i-1}
    after = cumprod(cat([ones, S.flip(-1)[..., :-1]], -1), -1).flip(-1)  # S_{i+1} ... S_{n-1}
    others = (grad * phase).unsqueeze(-1) * before * after
    return _mat(U * others.unsqueeze(-2), Vh)


@_refuses_low_precision(_LU_CPU)
def det(input: Tensor) -> Tensor:
    """torch.det (torch.linalg.det, whose binding names the matrix A, calls it). At a singular matrix
    the gradient is torch's: zeros from a plain backward, the cofactor matrix from a recorded one."""
    A = input
    _check_square(A, "linalg.det")
    return Det.apply(A)


class Slogdet(Function):
    _array_forward = True
    node_name = "LinalgSlogdetBackward0"
    label = "slogdet"
    rule = "∂/∂A = (g + i·Im(G_sign·conj(sign)))·A⁻ᴴ; a real A's sign gets no gradient"
    saved_attributes = {"_saved_A": saved(0), "_saved_LU": _lu_of_saved_a(0), "_saved_pivots": _lu_of_saved_a(1),
                        "_saved_sign": saved(1)}

    @staticmethod
    def forward(ctx, A):
        xp = array_module(A)
        sign, logabsdet = xp.linalg.slogdet(A)
        # a complex A's sign is complex (det / |det|), its log|det| real
        sign, logabsdet = _as_array(sign).astype(A.dtype, copy=False), _as_array(logabsdet).astype(A.real.dtype, copy=False)
        ctx.save_for_backward(A, sign)  # (a real one too, as torch's node keeps it; its rule reads a complex one)
        return sign, logabsdet  # a real sign is piecewise constant: its gradient is ignored, as in torch

    @staticmethod
    def backward(ctx, grad_sign, grad_logabsdet):
        # d log|det A| = Re tr(A^-1 dA): grad_A = g A^-H; a complex sign = e^{iθ} moves with
        # dθ = Im tr(A^-1 dA), so its real loss adds i Im(G_sign conj(sign)) to g (torch's slogdet_backward)
        A, sign = ctx.saved_values
        scale = grad_logabsdet
        if sign._data.dtype.kind == "c":
            scale = scale + 1j * (grad_sign * _conj(sign)).imag
            return scale.unsqueeze(-1).unsqueeze(-1) * _adjoint(inv(A))
        from ..autograd.grad_mode import is_grad_enabled
        from .decompositions import linalg_lu_factor_ex, linalg_lu_solve
        from .structural import diag_embed

        # grad_A = A^-T diag(g), solved as torch solves it, so that a singular A gives torch's numbers
        scaled_eye = diag_embed(scale.unsqueeze(-1).expand(*scale.shape, A.shape[-1]))
        if is_grad_enabled():  # a recorded backward: torch's linalg.solve, which refuses a singular A
            return solve(A.mT, scaled_eye)
        # a plain one: the LU of A^T (the layout torch's forward factors), whose zero pivot leaves the
        # infs and NaNs torch returns at a singular A rather than an error
        LU, pivots, _ = linalg_lu_factor_ex(A.mT)
        return linalg_lu_solve(LU, pivots, scaled_eye)


@honours_out
@_refuses_low_precision(_SLOGDET_LOW_PRECISION)
def slogdet(input: Tensor):
    """torch.slogdet (torch.linalg.slogdet, whose binding names the matrix A, calls it): ``(sign,
    logabsdet)`` of the determinant, without overflow."""
    A = input
    _check_square(A, "linalg.slogdet")
    sign, logabsdet = Slogdet.apply(A)
    return return_types.slogdet(sign, logabsdet)


@_refuses_low_precision((RuntimeError, "logdet: Low precision dtypes not supported. Got {dtype}"))
def logdet(input: Tensor) -> Tensor:
    """torch.logdet: ``log(det(A))`` (NaN for a negative determinant, -inf for a singular matrix;
    for complex A, log(sign) + log|det A|)."""
    _check_square(input, "logdet")  # torch's checks name logdet, not the slogdet it calls
    sign, logabsdet = slogdet(input)
    if sign.is_complex():
        return sign.log() + logabsdet
    return where(Tensor._make(sign._data < 0), float("nan"), logabsdet)


class Solve(Function):
    _array_forward = True
    node_name = "LinalgSolveExBackward0"
    label = "solve"
    rule = "X = A⁻¹B: ∂/∂B = A⁻ᵀ G, ∂/∂A = -(∂/∂B) Xᵀ"
    # (the matrix form: a vector B and left=False are composites of it, whose nodes declare none)
    saved_attributes = {"_saved_A": saved(0), "_saved_LU": _lu_of_saved_a(0, transposed=False), "_saved_left": True,
                        "_saved_pivots": _lu_of_saved_a(1, transposed=False), "_saved_result": saved(1)}

    @staticmethod
    def forward(ctx, A, B):
        xp = array_module(A)
        try:
            with checked_linalg(xp):
                out = _column_major(broadcast_solve(xp, A, B))
        except xp.linalg.LinAlgError:
            raise _singular_solve(A) from None
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    @conjugate_rule  # holomorphic in A and B: for complex ones, grad_B = A⁻ᴴ G (eig's backward solves so)
    def backward(ctx, grad):
        # X = A^-1 B: grad_B = A^-T G, grad_A = -grad_B X^T
        A, x = ctx.saved_values
        grad_b = Solve.apply(A.mT, grad)
        grad_a = -_mat(grad_b, x.mT) if ctx.needs_input_grad[0] else None
        return grad_a, grad_b


@out_rule("same")
@cpu_autocast_policy("float32")
@_refuses_low_precision(_LU_CPU)
def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """torch.linalg.solve: X with ``A X = B`` (``X A = B`` when ``left=False``); B may be a
    (batch of) vector(s) of A's size, and batch dims broadcast."""
    check_bool(left, "linalg_solve", "left")
    _check_square(A, "linalg.solve")
    if B._data.ndim == 0:  # (a 1-d B is a vector, as in torch)
        raise RuntimeError("linalg.solve: The input tensor B must have at least 2 dimensions.")
    if B._data.dtype != A._data.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{_dtype.scalar_name(A.dtype)} and B of type {_dtype.scalar_name(B.dtype)} instead")
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return name_node(solve(A.mT, B.mT).mT, "LinalgSolveExBackward0")
    a, b = A._data, B._data
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    rows = b.shape[-1] if vector else b.shape[-2]
    if rows != a.shape[-1]:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({a.shape[-2]}x{a.shape[-1]} and {b.shape[-2] if b.ndim > 1 and not vector else b.shape[-1]}x"
                           f"{b.shape[-1] if not vector else 1})")
    if vector:
        return name_node(Solve.apply(A, B.unsqueeze(-1)).squeeze(-1), "LinalgSolveExBackward0")
    return Solve.apply(A, B)


# ---------------------------------------------------------------- eig: general (non-symmetric) matrices
_EIG_GAUGE = ("The eigenvectors in the complex case are specified up to multiplication by e^{i phi}. The specified "
              "loss function depends on this quantity, so it is ill-defined.")


def _check_eig_input(A: Tensor, op: str):
    """torch's checks for eig/eigvals, in its order; the complex dtype of the results."""
    if A.__class__ in SPARSE_COO_TYPES:  # (refused by torch's dispatcher, before any check)
        raise NotImplementedError(not_on_sparse("linalg_eig"))
    if A._data.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    kind = A._data.dtype.kind
    if kind not in "fcV":  # torch finds no complex type for an integer or bool input
        raise RuntimeError(f"Unknown Complex ScalarType for {_dtype.scalar_name(A.dtype)}")
    if A._data.shape[-1] != A._data.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are {A._data.shape[-2]} by "
                           f"{A._data.shape[-1]} matrices")
    if A._data.dtype.itemsize < 4 or kind == "V":  # LAPACK's geev has no half-precision kernel
        raise NotImplementedError(f'"linalg_eig_out_cpu" not implemented for \'{_dtype.scalar_name(A.dtype)}\'')
    xp = array_module(A._data)
    if A._data.size and has_values(A._data) and not bool(xp.isfinite(A._data).all()):  # one sync on the device, as torch's check
        raise RuntimeError(f"torch.{op}: input tensor should not contain infs or NaNs.")
    return np.complex64 if A._data.dtype in (np.float32, np.complex64) else np.complex128


class Eig(Function):
    _array_forward = True
    node_name = "LinalgEigBackward0"
    label = "eig"
    rule = "∂/∂A = V⁻ᴴ (diag(G_λ) + (Vᴴ G_V - Vᴴ V Re diag(Vᴴ G_V)) / (λ̄ⱼ - λ̄ᵢ)) Vᴴ"
    formula = "eig({0})"
    saved_attributes = {"_saved_eigenvalues": saved(0), "_saved_eigenvectors": saved(1)}

    @staticmethod
    def forward(ctx, A, complex_dtype):
        xp = array_module(A)
        try:
            values, vectors = xp.linalg.eig(A)
        except xp.linalg.LinAlgError:
            raise RuntimeError("linalg.eig: The algorithm failed to converge because the input matrix is "
                               "ill-conditioned or has too many repeated eigenvalues.") from None
        # LAPACK's geev returns real arrays when every eigenvalue of a real A is real; torch is always complex
        values = values.astype(complex_dtype, copy=False)
        vectors = _column_major(vectors.astype(complex_dtype, copy=False))
        ctx.save_for_backward(values, vectors)
        return values, vectors

    @staticmethod
    def backward(ctx, grad_values, grad_vectors):
        values, vectors = ctx.saved_values
        return _eig_backward(values, vectors, grad_values, grad_vectors)


def _eig_backward(values: Tensor, vectors: Tensor, grad_values: Tensor, grad_vectors: Tensor) -> Tensor:
    """torch's linalg_eig_backward. From A V = V diag(λ) with unit columns of V:
    grad_A = V⁻ᴴ (diag(G_λ) + (Vᴴ G_V - Vᴴ V Re diag(Vᴴ G_V)) / Ē) Vᴴ with Ēᵢⱼ = λ̄ⱼ - λ̄ᵢ; the second
    term removes the part of G_V along each column's own norm, which the normalisation fixes. The
    gradient is complex; the engine keeps its real part for a real A."""
    from .complex import real

    n = values._data.shape[-1]
    vh = _adjoint(vectors)
    vhgv = _mat(vh, grad_vectors)
    diagonal = vhgv.diagonal(0, -2, -1)
    xp = array_module(diagonal._data)
    # a loss that changes when a column is multiplied by e^{iφ} has no gradient: torch's check, its tolerance
    if diagonal._data.size and bool((xp.abs(diagonal._data.imag) > 1e-2).any()):
        raise RuntimeError(f"linalg_eig_backward: {_EIG_GAUGE}")
    eye = Tensor._make(xp.eye(n, dtype=values._data.dtype))
    conj = _conj(values)
    gaps = conj.unsqueeze(-2) - conj.unsqueeze(-1) + eye  # λ̄ⱼ - λ̄ᵢ off the diagonal, 1 on it
    inner = (vhgv - _mat(vh, vectors * real(diagonal).unsqueeze(-2))) / gaps
    inner = inner * (1 - eye) + grad_values.unsqueeze(-1) * eye
    return Solve.apply(vh, _mat(inner, vh))


@honours_out
@cpu_autocast_policy("float32")
def eig(input: Tensor):
    """torch.linalg.eig: ``(eigenvalues, eigenvectors)`` of a general square matrix, both complex
    (complex64 for float32 input, complex128 for float64), eigenvectors of unit norm in columns.
    Each eigenvector is defined up to a phase e^{iφ}; a loss that depends on it raises in backward,
    as torch's does."""
    A = input  # torch's Python binding takes these keyword names
    complex_dtype = _check_eig_input(A, "linalg.eig")
    values, vectors = Eig.apply(A, complex_dtype=complex_dtype)
    return return_types.linalg_eig(values, vectors)


@out_rule("castable_eigenvalues")
@cpu_autocast_policy("float32")
def eigvals(input: Tensor) -> Tensor:
    """torch.linalg.eigvals: the (complex) eigenvalues of a general square matrix. Differentiable
    through eig's rule (the node is LinalgEigBackward0, as torch's); without a gradient, LAPACK
    computes the eigenvalues alone, as torch does."""
    A = input  # torch's Python binding takes these keyword names
    from ..autograd.grad_mode import is_grad_enabled

    complex_dtype = _check_eig_input(A, "linalg.eigvals")
    if (A._requires_grad and is_grad_enabled()) or _forward_ad.carries_tangent(A):
        return Eig.apply(A, complex_dtype=complex_dtype)[0]
    xp = array_module(A._data)
    try:
        values = xp.linalg.eigvals(A._data)
    except xp.linalg.LinAlgError:
        raise RuntimeError("linalg.eigvals: The algorithm failed to converge because the input matrix is "
                           "ill-conditioned or has too many repeated eigenvalues.") from None
    return Tensor._make(values.astype(complex_dtype, copy=False))


_REMOVED_EIG = ("This function was deprecated since version 1.9 and is now removed. `torch.linalg.eig` returns complex "
                "tensors of dtype `cfloat` or `cdouble` rather than real tensors mimicking complex tensors.\n\nL, _ = "
                "torch.eig(A) should be replaced with:\nL_complex = torch.linalg.eigvals(A)\n\nand\n\nL, V = "
                "torch.eig(A, eigenvectors=True) should be replaced with:\nL_complex, V_complex = torch.linalg.eig(A)")
_REMOVED_SYMEIG = ("This function was deprecated since version 1.9 and is now removed. The default behavior has changed "
                   "from using the upper triangular portion of the matrix by default to using the lower triangular "
                   "portion.\n\nL, _ = torch.symeig(A, upper=upper) should be replaced with:\nL = "
                   "torch.linalg.eigvalsh(A, UPLO='U' if upper else 'L')\n\nand\n\nL, V = torch.symeig(A, "
                   "eigenvectors=True) should be replaced with:\nL, V = torch.linalg.eigh(A, UPLO='U' if upper else 'L')")
_REMOVED_MATRIX_RANK = ("This function was deprecated since version 1.9 and is now removed.\nPlease use the "
                        "`torch.linalg.matrix_rank` function instead. The parameter 'symmetric' was renamed in "
                        "`torch.linalg.matrix_rank()` to 'hermitian'.")


# torch keeps the removed functions' Python signatures, so a call they do not bind is refused in
# Python's words, naming torch's function, before the message pointing to torch.linalg


def _removed_eig(self, eigenvectors=False, *, e=None, v=None):
    """torch.eig: removed in torch 1.9; raises torch's message pointing to linalg.eig."""
    raise RuntimeError(_REMOVED_EIG)


def _removed_eig_method(self, eigenvectors=False):
    """Tensor.eig: removed in torch 1.9; raises torch's message pointing to linalg.eig."""
    raise RuntimeError(_REMOVED_EIG)


def _removed_symeig(input, eigenvectors=False, upper=True, *, out=None):
    """torch.symeig: removed in torch 1.9; raises torch's message pointing to linalg.eigh."""
    raise RuntimeError(_REMOVED_SYMEIG)


def _removed_symeig_method(self, eigenvectors=False):
    """Tensor.symeig: removed in torch 1.9; raises torch's message pointing to linalg.eigh."""
    raise RuntimeError(_REMOVED_SYMEIG)


def _removed_matrix_rank(input, tol=None, symmetric=False, *, out=None):
    """torch.matrix_rank: removed in torch 1.9; raises torch's message pointing to linalg.matrix_rank."""
    raise RuntimeError(_REMOVED_MATRIX_RANK)


# named as torch's in Python's refusals (torch.symeig is its _linalg_utils._symeig)
_removed_eig.__name__ = _removed_eig.__qualname__ = "eig"
_removed_symeig.__name__ = _removed_symeig.__qualname__ = "_symeig"
_removed_matrix_rank.__name__ = _removed_matrix_rank.__qualname__ = "matrix_rank"
_removed_symeig.honours_out = _removed_matrix_rank.honours_out = True  # (they raise before any out= is written)
_removed_eig_method.__name__, _removed_eig_method.__qualname__ = "eig", "Tensor.eig"
_removed_symeig_method.__name__, _removed_symeig_method.__qualname__ = "symeig", "Tensor.symeig"


# ---------------------------------------------------------------- LDLᵀ (LAPACK sytrf/sytrs, Bunch-Kaufman)
_BUNCH_KAUFMAN_ALPHA = (1 + math.sqrt(17)) / 8  # LAPACK's: bounds the growth of the 1x1 and 2x2 pivots


def _sytrf_lower(xp, a, hermitian: bool = False):
    """LAPACK's dsytf2 on the lower triangle of the square matrix ``a`` (a copy, overwritten): the
    Bunch-Kaufman P L D Lᵀ Pᵀ with 1x1 and 2x2 diagonal blocks. Returns (a, pivots, info) in LAPACK's
    conventions: pivots 1-based, a 2x2 block marked by the negated row swapped into it on both of its
    entries; info the 1-based column of the first zero pivot, 0 if none. One step per column, each
    vectorised over the trailing block; the pivot choices read scalars (a sync per step on a device).
    Complex entries are ranked by |Re| + |Im|, as zsytf2 does; ``hermitian`` (complex) is zhetf2's
    P L D Lᴴ Pᵀ, which reads the diagonal's real part and conjugates what it reflects."""
    n = a.shape[0]
    pivots = [0] * n
    info = 0
    k = 0
    is_complex = a.dtype.kind == "c"
    conjugated = hermitian and is_complex
    magnitude = (lambda x: xp.abs(x.real) + xp.abs(x.imag)) if is_complex else xp.abs
    diagonal_of = (lambda x: abs(float(x.real))) if conjugated else (lambda x: float(magnitude(x)))
    if conjugated:
        a[xp.arange(n), xp.arange(n)] = a.diagonal().real
    while k < n:
        step = 1
        diagonal = diagonal_of(a[k, k])
        if k < n - 1:
            below = magnitude(a[k + 1:, k])
            i_max = k + 1 + int(below.argmax())
            column_max = float(below[i_max - k - 1])
        else:
            i_max, column_max = k, 0.0
        if max(diagonal, column_max) == 0 or math.isnan(diagonal) or math.isnan(column_max):
            info = info or k + 1  # a zero column: D is singular here, the factorization goes on
            swap_with = k
        elif diagonal >= _BUNCH_KAUFMAN_ALPHA * column_max:
            swap_with = k
        else:
            row_max = float(magnitude(a[i_max, k:i_max]).max())
            if i_max < n - 1:
                row_max = max(row_max, float(magnitude(a[i_max + 1:, i_max]).max()))
            if diagonal * row_max >= _BUNCH_KAUFMAN_ALPHA * column_max * column_max:
                swap_with = k
            elif diagonal_of(a[i_max, i_max]) >= _BUNCH_KAUFMAN_ALPHA * row_max:
                swap_with = i_max
            else:
                swap_with, step = i_max, 2
        last = k + step - 1
        if swap_with != last:  # swap rows and columns ``last`` and ``swap_with`` of the trailing lower triangle
            p = swap_with
            a[p + 1:, [last, p]] = a[p + 1:, [p, last]]
            between = a[last + 1:p, last].copy()
            a[last + 1:p, last] = a[p, last + 1:p]
            a[p, last + 1:p] = between
            if conjugated:  # the reflected entries of a Hermitian matrix are conjugates
                a[last + 1:p, last] = xp.conj(a[last + 1:p, last])
                a[p, last + 1:p] = xp.conj(a[p, last + 1:p])
                a[p, last] = xp.conj(a[p, last])
            a[[last, p], [last, p]] = a[[p, last], [p, last]]
            if step == 2:
                a[[k + 1, p], [k, k]] = a[[p, k + 1], [k, k]]
        if step == 1 and k < n - 1 and a[k, k] != 0:
            # A₂₂ ← A₂₂ - x xᵀ / d (x xᴴ / d when hermitian), then L's column x / d (the lower
            # triangle is all LAPACK keeps)
            x = a[k + 1:, k].copy()
            a[k + 1:, k + 1:] -= xp.tril(xp.outer(x, (xp.conj(x) if conjugated else x) / a[k, k]))
            a[k + 1:, k] = x / a[k, k]
        elif step == 2 and k < n - 2 and conjugated:
            # L's two columns W D⁻¹ with D = [[d₁₁, conj(d₂₁)], [d₂₁, d₂₂]], then A₂₂ ← A₂₂ - W D⁻¹ Wᴴ
            # (zhetf2's update, unscaled); the trailing diagonal stays real
            d11, d21, d22 = a[k, k].real, a[k + 1, k], a[k + 1, k + 1].real
            determinant = d11 * d22 - (d21 * xp.conj(d21)).real
            w, w1 = a[k + 2:, k].copy(), a[k + 2:, k + 1].copy()
            l0 = (w * d22 - w1 * d21) / determinant
            l1 = (w1 * d11 - w * xp.conj(d21)) / determinant
            a[k + 2:, k + 2:] -= xp.tril(xp.outer(l0, xp.conj(w)) + xp.outer(l1, xp.conj(w1)))
            a[k + 2:, k] = l0
            a[k + 2:, k + 1] = l1
            trailing = xp.arange(k + 2, n)
            a[trailing, trailing] = a[trailing, trailing].real
        elif step == 2 and k < n - 2:
            # the 2x2 block's inverse applied to the two columns, in dsytf2's scaled form
            d21 = a[k + 1, k]
            d11 = a[k + 1, k + 1] / d21
            d22 = a[k, k] / d21
            t = 1 / (d11 * d22 - 1)
            d21 = t / d21
            wk = d21 * (d11 * a[k + 2:, k] - a[k + 2:, k + 1])
            wk1 = d21 * (d22 * a[k + 2:, k + 1] - a[k + 2:, k])
            a[k + 2:, k + 2:] -= xp.tril(xp.outer(a[k + 2:, k], wk) + xp.outer(a[k + 2:, k + 1], wk1))
            a[k + 2:, k] = wk
            a[k + 2:, k + 1] = wk1
        if step == 1:
            pivots[k] = swap_with + 1
        else:
            pivots[k] = pivots[k + 1] = -(swap_with + 1)
        k += step
    return xp.tril(a), pivots, info


def _sytrs_lower(xp, ld, pivots, b, hermitian: bool = False):
    """LAPACK's dsytrs for the lower factor: X with P L D Lᵀ Pᵀ X = B, ``b`` (n, k) overwritten; with
    ``hermitian`` (complex), zhetrs's P L D Lᴴ Pᵀ, D Hermitian (its 2x2 blocks' upper entry conjugated)."""
    n = ld.shape[0]
    conjugated = hermitian and ld.dtype.kind == "c"
    adjoint = xp.conj if conjugated else (lambda x: x)
    k = 0
    while k < n:  # L D Y = P B
        if pivots[k] > 0:
            p = pivots[k] - 1
            b[[k, p]] = b[[p, k]]
            b[k + 1:] -= xp.outer(ld[k + 1:, k], b[k])
            b[k] = b[k] / (ld[k, k].real if conjugated else ld[k, k])
            k += 1
        else:
            p = -pivots[k] - 1
            b[[k + 1, p]] = b[[p, k + 1]]
            b[k + 2:] -= xp.outer(ld[k + 2:, k], b[k]) + xp.outer(ld[k + 2:, k + 1], b[k + 1])
            off = ld[k + 1, k]
            d11, d22 = ld[k, k] / adjoint(off), ld[k + 1, k + 1] / off
            denominator = d11 * d22 - 1
            first, second = b[k] / adjoint(off), b[k + 1] / off
            b[k], b[k + 1] = (d22 * first - second) / denominator, (d11 * second - first) / denominator
            k += 2
    k = n - 1
    while k >= 0:  # Lᵀ Pᵀ X = Y (Lᴴ when hermitian)
        if pivots[k] > 0:
            b[k] -= adjoint(ld[k + 1:, k]) @ b[k + 1:]
            p = pivots[k] - 1
            b[[k, p]] = b[[p, k]]
            k -= 1
        else:
            b[k] -= adjoint(ld[k + 1:, k]) @ b[k + 1:]
            b[k - 1] -= adjoint(ld[k + 1:, k - 1]) @ b[k + 1:]
            p = -pivots[k] - 1
            b[[k, p]] = b[[p, k]]
            k -= 2
    return b


class LdlFactor(without_derivative("aten::linalg_ldl_factor_ex")):
    node_name = "torch::autograd::NotImplemented"
    label = "ldl_factor"
    rule = "no derivative (torch defines none): backward raises"
    formula = "ldl_factor({0})"

    @staticmethod
    def forward(ctx, A, hermitian):
        xp = array_module(A)
        batch, n = A.shape[:-2], A.shape[-1]
        if not has_values(A):  # the pivots are chosen by value: only the shapes
            return A.copy(), xp.empty(batch + (n,), dtype=xp.int32), xp.empty(batch, dtype=xp.int32)
        flat = A.reshape((math.prod(A.shape[:-2]), n, n))
        factors, pivots, infos = [], [], []
        for matrix in flat:  # each matrix pivots its own way
            ld, p, info = _sytrf_lower(xp, matrix.copy(), hermitian)
            factors.append(ld)
            pivots.append(p)
            infos.append(info)
        ld = xp.stack(factors).reshape(A.shape) if factors else xp.zeros(A.shape, dtype=A.dtype)
        return (_column_major(ld), xp.asarray(pivots, dtype=xp.int32).reshape(batch + (n,)),
                xp.asarray(infos, dtype=xp.int32).reshape(batch))


def _check_ldl_input(A: Tensor, op: str) -> None:
    if A._data.ndim < 2:
        raise RuntimeError(f"torch.linalg.{op}: The input tensor A must have at least 2 dimensions.")
    if A._data.shape[-1] != A._data.shape[-2]:
        raise RuntimeError(f"torch.linalg.{op}: A must be batches of square matrices, but they are "
                           f"{A._data.shape[-2]} by {A._data.shape[-1]} matrices")
    if A._data.dtype.kind not in "fc":
        raise RuntimeError(f"torch.linalg.{op}: Expected a floating point or complex tensor as input. Got "
                           f"{_dtype.scalar_name(A.dtype)}")


@honours_out
@_refuses_low_precision(_kernel_refusal("ldl_factor_kernel_cpu"))
def ldl_factor_ex(input: Tensor, *, hermitian: bool = False, check_errors: bool = False):
    """torch.linalg.ldl_factor_ex: ``(LD, pivots, info)`` of the symmetric A's lower triangle,
    A = P L D Lᵀ Pᵀ with D of 1x1 and 2x2 blocks (LAPACK's sytrf, Bunch-Kaufman pivoting): L below LD's
    diagonal, D on and beside it, pivots as LAPACK's (1-based, negative pairs for a 2x2 block), info
    the first zero pivot's column (0: none). A complex A with ``hermitian`` is factored as
    P L D Lᴴ Pᵀ (LAPACK's hetrf), else as complex-symmetric; no derivative, as torch's."""
    A = input  # torch's Python binding takes these keyword names
    check_bool(hermitian, "linalg_ldl_factor_ex", "hermitian")
    _check_ldl_input(A, "ldl_factor_ex")
    ld, pivots, info = LdlFactor.apply(A, hermitian=bool(hermitian))
    pivots, info = pivots.detach(), info.detach()
    if check_errors and bool((info._data != 0).any()):
        raise RuntimeError("torch.linalg.ldl_factor_ex: The factorization could not be completed because the "
                           "input is singular (a zero pivot in D).")
    return return_types.linalg_ldl_factor_ex(ld, pivots, info)


@honours_out
@_refuses_low_precision(_kernel_refusal("ldl_factor_kernel_cpu"))
def ldl_factor(input: Tensor, *, hermitian: bool = False):
    """torch.linalg.ldl_factor: ldl_factor_ex's ``(LD, pivots)``; a singular A raises (torch 2.13 fails
    an internal assert there)."""
    A = input  # torch's Python binding takes these keyword names
    check_bool(hermitian, "linalg_ldl_factor", "hermitian")
    _check_ldl_input(A, "ldl_factor_ex")  # torch's ldl_factor calls ldl_factor_ex, whose checks name it
    ld, pivots, info = LdlFactor.apply(A, hermitian=bool(hermitian))
    if has_values(info._data) and bool((info._data != 0).any()):
        raise RuntimeError("torch.linalg.ldl_factor: The factorization could not be completed because the input "
                           "is singular (a zero pivot in D).")
    return return_types.linalg_ldl_factor(ld, pivots.detach())


class LdlSolve(without_derivative("aten::linalg_ldl_solve")):
    node_name = "torch::autograd::NotImplemented"
    label = "ldl_solve"
    rule = "no derivative (torch defines none): backward raises"
    formula = "ldl_solve({0}, {1})"

    @staticmethod
    def forward(ctx, LD, B, pivots, hermitian):
        xp = array_module(LD)
        n = LD.shape[-1]
        batch = xp.broadcast_shapes(LD.shape[:-2], B.shape[:-2])
        LD = xp.broadcast_to(LD, batch + LD.shape[-2:]).reshape((math.prod(batch), n, n))
        pivots = xp.broadcast_to(pivots, batch + (n,)).reshape((math.prod(batch), n))
        B = xp.broadcast_to(B, batch + B.shape[-2:]).reshape((math.prod(batch),) + B.shape[-2:])
        out = xp.empty(B.shape, dtype=xp.result_type(LD.dtype, B.dtype))
        for i in range(B.shape[0] if has_values(out) else 0):
            out[i] = _sytrs_lower(xp, LD[i], [int(p) for p in pivots[i].tolist()], B[i].astype(out.dtype, copy=True),
                                  hermitian)
        return _column_major(out.reshape(batch + out.shape[-2:]))


@out_rule("same")
@_refuses_low_precision(_kernel_refusal("ldl_solve_kernel_cpu"))
def ldl_solve(LD: Tensor, pivots: Tensor, B: Tensor, *, hermitian: bool = False) -> Tensor:
    """torch.linalg.ldl_solve: X with A X = B from ldl_factor's ``(LD, pivots)``; batch dims broadcast."""
    check_bool(hermitian, "linalg_ldl_solve", "hermitian")
    op = "torch.linalg.ldl_solve"
    # torch's checks in its order: LD square and floating, then B against LD (linearSolveCheckInputs:
    # dtype, square, rows; a 1-d B fails reading its size(-2)), then the pivots' shape and dtype
    _check_square(LD, op)
    if B.dtype != LD.dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type {_dtype.scalar_name(B.dtype)} "
                           f"and A of type {_dtype.scalar_name(LD.dtype)} instead.")
    n = LD._data.shape[-1]
    if B._data.ndim < 2:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(B._data.ndim, 1)}, "
                         f"{max(B._data.ndim, 1) - 1}], but got -2)")
    if B._data.shape[-2] != n:
        raise RuntimeError(f"Incompatible matrix sizes for {op}: each A matrix is {n} by {n} but "
                           f"each b matrix is {B._data.shape[-2]} by {B._data.shape[-1]}")
    if pivots._data.shape != LD._data.shape[:-1]:
        raise RuntimeError(f"{op}: Expected LD.shape[:-1] and pivots.shape to be the same, but got pivots with shape "
                           f"{list(pivots._data.shape)} instead")
    if pivots._data.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: Expected pivots to be integers. Got {_dtype.scalar_name(pivots.dtype)}")
    _broadcast_batch_dims(B._data.shape[:-2], LD._data.shape[:-2])
    if _function_module.active_dispatch is not None:  # (the pivots are read from their array: a wrapper's handler)
        made = _function_module.argument_dispatch("linalg_ldl_solve", ldl_solve, (LD, pivots, B),
                                                  {"hermitian": hermitian})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    return LdlSolve.apply(LD, B, pivots=pivots._data, hermitian=bool(hermitian))


def _broadcast_batch_dims(a: tuple, b: tuple) -> tuple:
    """The broadcast of two batch shapes, or torch's infer_size error (its dims counted from the left
    of the broadcast shape, as torch's message counts them)."""
    ndim = max(len(a), len(b))
    a, b = (1,) * (ndim - len(a)) + tuple(a), (1,) * (ndim - len(b)) + tuple(b)
    for dim, (size_a, size_b) in enumerate(zip(a, b)):
        if size_a != size_b and 1 not in (size_a, size_b):
            raise RuntimeError(f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) at "
                               f"non-singleton dimension {dim}")
    return tuple(builtins.max(size_a, size_b) for size_a, size_b in zip(a, b))


def _checked_lu_pivots(LU_data: Tensor, LU_pivots: Tensor, unpack_pivots: bool):
    """lu_unpack's checks (torch's, before anything is unpacked): LU a batch of matrices, pivots an
    int32 tensor of at least min(m, n) 1-based row numbers each in [1, m]; the min(m, n) used (torch
    reads no more)."""
    if LU_data._data.ndim < 2:
        raise RuntimeError(f"torch.lu_unpack: Expected tensor with 2 or more dimensions. Got size: "
                           f"{list(LU_data._data.shape)} instead")
    if not unpack_pivots:
        return LU_pivots._data
    if LU_pivots.dtype is not _dtype.int32:
        raise RuntimeError("torch.lu_unpack: LU_pivots is expected to be a contiguous tensor of torch.int32 dtype.\n"
                           "Note: this function is intended to be used with the output produced by "
                           "torch.linalg.lu_factor")
    m, n = LU_data._data.shape[-2:]
    pivots = LU_pivots._data
    k = builtins.min(m, n)
    if pivots.ndim < 1 or pivots.shape[-1] < k or (has_values(pivots) and k and not (
            (pivots[..., :k] >= 1).all() and (pivots[..., :k] <= m).all())):
        raise RuntimeError("pivots passed to lu_unpack must be between 1 and LU.size(-2) inclusive.Did you properly "
                           "pass the result of lu_factor?")
    return pivots[..., :k]


# ---------------------------------------------------------------- Householder QR (LAPACK geqrf/ormqr), vander
class Geqrf(Function):
    _array_forward = True
    node_name = "GeqrfBackward0"
    label = "geqrf"
    rule = "no derivative (torch defines none): backward raises NotImplementedError"
    formula = "geqrf({0})"

    @staticmethod
    def forward(ctx, A):
        xp = array_module(A)
        # NumPy's and CuPy's 'raw' mode return geqrf's output transposed (Fortran order seen from C)
        packed, tau = xp.linalg.qr(A, mode="raw")
        return _column_major(packed.swapaxes(-1, -2)), tau

    @staticmethod
    def backward(ctx, grad_a, grad_tau):
        raise NotImplementedError("the derivative for 'geqrf' is not implemented.")


@honours_out
@cpu_autocast_policy("float32")
def geqrf(input: Tensor):
    """torch.geqrf: LAPACK's QR in packed form, ``(a, tau)``: R on and above a's diagonal, below it
    the Householder vectors whose product (with tau) is Q — see linalg.householder_product and
    ormqr. Its outputs are recorded but, as torch's, have no derivative: backward raises."""
    if input._data.ndim < 2:
        raise RuntimeError("torch.geqrf: input must have at least 2 dimensions.")
    if input._data.dtype.kind not in "fc" or _is_low_precision(input):
        raise NotImplementedError(f'"geqrf_cpu" not implemented for \'{_dtype.scalar_name(input.dtype)}\'')
    return return_types.geqrf(*Geqrf.apply(input))


@honours_out
@cpu_autocast_policy("float32")
@_refuses_low_precision(_kernel_refusal("ormqr_cpu"))
def ormqr(input: Tensor, input2: Tensor, input3: Tensor, left: bool = True, transpose: bool = False) -> Tensor:
    """torch.ormqr: ``input3`` (C) multiplied by the Q of geqrf's ``(input, input2)`` (its tau) — Q C,
    Qᴴ C (transpose), C Q or C Qᴴ (left=False) — with Q the full square product of the Householder
    reflectors (torch's keywords input2 and input3; its messages say tau and other). Composed of
    chainrule ops (the reflectors through linalg.householder_product), so it is differentiable in
    all three arguments, as torch's."""
    check_bool(left, "ormqr", "left")
    check_bool(transpose, "ormqr", "transpose")
    from .decompositions import linalg_householder_product
    from .shape import cat

    tau, other = input2, input3

    for name, tensor in (("input", input), ("other", other)):
        if tensor._data.ndim < 2:
            raise RuntimeError(f"torch.ormqr: {name} must have at least 2 dimensions.")
    mn = input._data.shape[-2]
    side = -2 if left else -1
    if other._data.shape[side] != mn:
        raise RuntimeError(f"torch.ormqr: other.shape[{side}] must be equal to input.shape[-2]")
    if input._data.dtype != other._data.dtype or input._data.dtype != tau._data.dtype:
        raise RuntimeError(f"torch.ormqr: Expected input, tau and other to have the same dtype, but got "
                           f"{_dtype.scalar_name(input.dtype)}, {_dtype.scalar_name(tau.dtype)} and "
                           f"{_dtype.scalar_name(other.dtype)}")
    k = tau._data.shape[-1]
    if k > min(mn, input._data.shape[-1]):
        # (other.shape[side] equals input.shape[-2] by now; torch words the bound by other's)
        raise RuntimeError(f"torch.ormqr: tau.shape[-1] must be equal to min(other.shape[{side}], input.shape[-1])")
    xp = array_module(input._data)
    # the k reflectors in an mn x mn matrix; zero columns and zero taus add identity reflectors
    reflectors = input[..., :, :k]
    if k < mn:
        batch = input._data.shape[:-2]
        zeros = Tensor._make(xp.zeros(batch + (mn, mn - k), dtype=input._data.dtype))
        reflectors = cat([reflectors, zeros], -1)
        tau = cat([tau, Tensor._make(xp.zeros(tau._data.shape[:-1] + (mn - k,), dtype=tau._data.dtype))], -1)
    q = linalg_householder_product(reflectors, tau)
    if transpose:
        q = _adjoint(q)
    result = matmul(q, other) if left else matmul(other, q)
    result = result.mT.contiguous().mT  # LAPACK's column-major layout, which torch returns
    return name_node(result, "OrmqrBackward0", label="ormqr")


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """torch.vander: the Vandermonde matrix of a 1-D ``x``, columns x^(N-1), ..., x, 1 (N defaults to
    len(x)), or x⁰ first when ``increasing``; integers and bools compute in int64, as torch's."""
    from .decompositions import linalg_vander

    if x._data.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    if N is not None and N < 0:
        raise RuntimeError("N must be non-negative.")
    if x._data.dtype.kind in "biu":
        x = x.long()
    if N == 0:
        return Tensor._make(array_module(x._data).zeros((x._data.shape[0], 0), dtype=x._data.dtype))
    result = linalg_vander(x, N=N)
    return result if increasing else result.flip(-1)


# ---------------------------------------------------------------- cross products and distances
def _cross(input: Tensor, other: Tensor, dim: int, op: str) -> Tensor:
    from .elementwise import mul, sub
    from .shape import broadcast_tensors, roll

    sizes = [t._data.shape[dim] if -t._data.ndim <= dim < t._data.ndim else None for t in (input, other)]
    if None not in sizes and sizes != [3, 3]:  # torch checks the sizes before broadcasting
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {sizes[0]} and {sizes[1]}")
    a, b = broadcast_tensors(input, other)
    d = _wrap_dim(dim, a._data.ndim, op)
    if a._data.shape[d] != 3:
        raise RuntimeError(f"{op}: input.size({dim}) must be 3, but got {a._data.shape[d]}")
    # torch's cross kernel neither promotes nor has a bool instance
    if input.dtype is _dtype.bool:
        raise NotImplementedError("\"cross\" not implemented for 'Bool'")
    if input.dtype != other.dtype:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(input.dtype)} but found "
                           f"{_dtype.scalar_name(other.dtype)}")
    # (a x b)_i = a_{i+1} b_{i+2} - a_{i+2} b_{i+1}, indices mod 3: cyclic shifts along dim
    return name_node(sub(mul(roll(a, -1, d), roll(b, -2, d)), mul(roll(a, -2, d), roll(b, -1, d))),
                     "LinalgCrossBackward0", saved=_CROSS_SAVED,
                     kept={"dim": dim, "other": other if input.requires_grad else None,
                           "self": input if other.requires_grad else None})


# torch's linalg_cross node keeps each input as given where the other's gradient reads it, and the
# dim as given (a negative one as the C++ node's unsigned)
_CROSS_SAVED = {"_saved_dim": SavedValue(lambda node: as_uint64(node.torch_kept["dim"])),
                "_saved_other": kept_value("other", tensor=True), "_saved_self": kept_value("self", tensor=True)}


def cross(input: Tensor, other: Tensor, dim=None) -> Tensor:
    """torch.cross: the 3-vector cross product along ``dim`` (default: the first dim of size 3);
    inputs of the same number of dims broadcast."""
    if dim is None:  # torch's TORCH_WARN_ONCE, before any check
        _config.warn_once("Using torch.cross without specifying the dim arg is deprecated.\nPlease either pass the dim "
                          "explicitly or simply use torch.linalg.cross.\nThe default value of dim will change to agree "
                          "with that of linalg.cross in a future release. (Triggered internally at "
                          "/__w/pytorch/pytorch/aten/src/ATen/native/Cross.cpp:63.)")
    if input._data.ndim != other._data.ndim:
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    _one_device("cross", input, other)
    _dtype.refuse_wide_unsigned("linalg.cross", input._data)
    if dim is None:
        try:
            sizes = np.broadcast_shapes(input._data.shape, other._data.shape)
        except ValueError:  # torch looks in the input's sizes; the broadcast fails below
            sizes = input._data.shape
        dim = next((i for i, n in enumerate(sizes) if n == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    return _cross(input, other, dim, "linalg.cross")


_CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")


class EuclideanDist(Function):
    """torch's _euclidean_dist: the p=2 cdist of (B, P, M) and (B, R, M) as one matrix product of
    padded rows, ``[-2 a, |a|², 1] · [b, 1, |b|²]`` = ``|a - b|²``, clamped at 0, square-rooted.
    torch takes it past 25 rows (or with compute_mode='use_mm_for_euclid_dist'); its cancellation
    is torch's rounding: a distance far below the points' norms comes out of the order of
    sqrt(eps)·|a| rather than exactly (torch.cdist(x, x)'s diagonal is not all 0)."""

    _array_forward = True
    label = "cdist"
    rule = "r = g / dist (0 where dist = 0): ∂/∂x1 = x1·Σⱼ r - r x2, ∂/∂x2 = x2·Σᵢ r - rᵀ x1"
    formula = "cdist({0}, {1})"

    @staticmethod
    def forward(ctx, x1, x2):
        xp = array_module(x1)
        dtype = x1.dtype
        # bfloat16/float16: each step rounded to the dtype, its sums and products accumulated in
        # float32, as torch's kernels do
        wide = np.float32 if dtype.kind == "V" or dtype == np.float16 else dtype

        length = x1.shape[-1]
        if dtype == np.float32 and type(x1) is np.ndarray and 0 < length < _sum_order.GRAIN_SIZE:
            # torch's x.pow(2).sum(-1, True): each row in its float32 order, however many rows
            # (NumPy's pairwise order rounds 4 in 10 of these norms differently, and the product
            # carries them into 16-22% of the distances); both operands' rows in one call
            rows = np.concatenate([x1.reshape(-1, length), x2.reshape(-1, length)])
            norms = _sum_order.inner_sum(rows * rows)
            split = x1.size // length
            x1_norm = norms[:split].reshape(x1.shape[:-1] + (1,))
            x2_norm = norms[split:].reshape(x2.shape[:-1] + (1,))
        else:
            x1_norm, x2_norm = (
                (x * x).astype(wide, copy=False).sum(-1, keepdims=True).astype(dtype, copy=False) for x in (x1, x2))
        x1_padded = xp.concatenate([x1 * dtype.type(-2), x1_norm, xp.ones_like(x1_norm)], -1)
        x2_padded = xp.concatenate([x2, xp.ones_like(x2_norm), x2_norm], -1)
        squared = xp.matmul(x1_padded.astype(wide, copy=False),
                            xp.swapaxes(x2_padded, -1, -2).astype(wide, copy=False)).astype(dtype, copy=False)
        result = xp.sqrt(xp.maximum(squared.astype(wide, copy=False), 0)).astype(dtype, copy=False)
        ctx.save_for_backward(x1, x2, result)
        return result

    @staticmethod
    def backward(ctx, grad):
        x1, x2, result = ctx.saved_values
        # d|a - b| = (a - b)·(da - db) / |a - b|, a subgradient 0 where the distance is 0
        ratio = where(result == 0, 0.0, grad / result)
        return (x1 * ratio.sum(-1, keepdim=True) - ratio.matmul(x2),
                x2 * ratio.sum(-2).unsqueeze(-1) - ratio.mT.matmul(x1))


def _euclidean_cdist(x1: Tensor, x2: Tensor) -> Tensor:
    """p=2 cdist by torch's matrix-product path: both operands broadcast over their batch dims and
    flattened to one batch, the distances viewed back to the result's shape (as torch does, so its
    graph is EuclideanDistBackward0 under a ViewBackward0)."""
    batch = _infer_size(tuple(x1.shape[:-2]), tuple(x2.shape[:-2]))
    (p, m), r = x1.shape[-2:], x2.shape[-2]
    count = math.prod(batch)
    x1 = x1.expand(batch + (p, m)).reshape(count, p, m)
    x2 = x2.expand(batch + (r, m)).reshape(count, r, m)
    return EuclideanDist.apply(x1, x2).view(batch + (p, r))


@cpu_autocast_policy("float32")
def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """torch.cdist: p-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M),
    shape (..., P, R). The gradient at a zero distance is 0, as in torch."""
    if compute_mode not in _CDIST_MODES:  # torch's Python front refuses it (None included) with ValueError
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    if x1._data.ndim < 2 or x2._data.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X{1 if x1._data.ndim < 2 else 2} got: "
                           f"{min(x1._data.ndim, x2._data.ndim)}D")
    if x1._data.shape[-1] != x2._data.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1._data.shape[-1]} "
                           f"X2: {x2._data.shape[-1]}")
    for i, x in ((1, x1), (2, x2)):  # torch's dtype checks come after the shapes'
        if not x.dtype.is_floating_point:
            raise RuntimeError(f"cdist only supports floating-point dtypes, X{i} got: {_dtype.scalar_name(x.dtype)}")
    if not p >= 0:  # (NaN too)
        raise RuntimeError("cdist only supports non-negative p values")
    if x1.dtype != x2.dtype:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(x1.dtype)} but found {_dtype.scalar_name(x2.dtype)}")
    rows = (x1._data.shape[-2], x2._data.shape[-2])
    # (an empty operand keeps the direct path in torch, whose graph is then CdistBackward0)
    if p == 2 and x1._data.size and x2._data.size and (
            compute_mode == "use_mm_for_euclid_dist"
            or compute_mode == "use_mm_for_euclid_dist_if_necessary" and max(rows) > 25):
        return _euclidean_cdist(x1, x2)
    return Cdist.apply(x1, x2, p=float(p))


class Cdist(Function):
    """torch's _cdist_forward (the direct path: every pair's difference, then its p-norm). Its
    backward is torch's _cdist_backward, a node of its own that cannot be differentiated again (torch
    twice-differentiates cdist only on the p=2 matrix-product path, EuclideanDist)."""

    _array_forward = True
    label = "cdist"
    rule = "∂/∂x1ᵢ = Σⱼ g·∂|x1ᵢ - x2ⱼ|ₚ/∂x1ᵢ (0 where the distance is 0), ∂/∂x2 likewise; no second derivative"
    formula = "cdist({0}, {1})"
    saved_attributes = {"_saved_p": ctx_value("p"), "_saved_result": saved(2), "_saved_x1": saved(0),
                        "_saved_x2": saved(1)}

    @staticmethod
    def forward(ctx, x1, x2, p):
        result = _cdist_values(Tensor._make(x1), Tensor._make(x2), p)._data
        ctx.p = p
        ctx.save_for_backward(x1, x2, result)
        return result

    @staticmethod
    def backward(ctx, grad):
        x1, x2, result = ctx.saved_values
        needs = ctx.needs_input_grad
        return (CdistBackward.apply(grad, x1, x2, result, p=ctx.p) if needs[0] else None,
                CdistBackward.apply(grad.mT, x2, x1, result.mT, p=ctx.p) if needs[1] else None)


class CdistBackward(Function):
    """torch's _cdist_backward(grad, x1, x2, p, dist): row i of x1 gets Σⱼ of pair (i, j)'s
    contribution (pdist's per-pair map); it has no derivative."""

    _array_forward = True
    label = "cdist_backward"
    rule = "none: torch defines no derivative for _cdist_backward (backward raises)"

    @staticmethod
    def forward(ctx, grad, x1, x2, dist, p):
        xp = array_module(x1)
        diff = x1[..., :, None, :] - x2[..., None, :, :]
        contribution = _pdist_pair_gradient(xp, diff, grad.astype(x1.dtype, copy=False)[..., None],
                                            dist.astype(x1.dtype, copy=False)[..., None], p)
        return contribution.sum(-2)

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("the derivative for '_cdist_backward' is not implemented.")


def _cdist_values(x1: Tensor, x2: Tensor, p: float) -> Tensor:
    """The direct path's distances (no graph): torch's float32 rounding where it is known
    (_cdist_kernel_values), else the norm of every pair's difference."""
    from .reduce import _vector_norm

    if type(x1._data) is np.ndarray and x1._data.dtype == np.float32 and p not in (0, 1, math.inf):
        return Tensor._make(_cdist_kernel_values(x1._data, x2._data, float(p)))
    # every pair's difference (..., P, R, M), then its norm over M
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == math.inf and not diff.shape[-1]:  # no coordinates: distance 0 (torch's), where the norm has no identity
        return diff.abs().sum(-1)
    return _vector_norm(diff, p, (-1,), False, None, "cdist")


def _cdist_kernel_values(x1: np.ndarray, x2: np.ndarray, p: float) -> np.ndarray:
    """float32 p-norm distances between the rows of ``x1`` (..., P, M) and ``x2`` (..., R, M) as
    torch's run_parallel_cdist rounds them (DistanceOpsKernel.cpp, its AVX2 build): one float32
    accumulator per distance adding its terms in order, ``d * d`` for p = 2 (the compiler's loop
    unrolled by four adds those unfused, the ``M % 4`` left over as fused multiply-adds, the
    float64 sum of the exact square here), else ``powf(|d|, p)`` (float64's power rounded, within
    an ulp of it); then ``sqrt``, or ``pow(total, 1.0 / p)`` taken in double. (The norm's kernel
    orders its 2-norm in lanes, and takes its root with a float32 exponent.) Measured: p = 2 on
    27,930 distances (M = 1 to 19) all matched torch 2.13."""
    length = x1.shape[-1]
    batch = np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    x1, x2 = np.broadcast_to(x1, batch + x1.shape[-2:]), np.broadcast_to(x2, batch + x2.shape[-2:])
    # the differences coordinate first, (M, ..., P, R) C-contiguous: NumPy adds along the first
    # axis of such an array in order (of any other layout, pairwise)
    columns = np.subtract(np.moveaxis(x1, -1, 0)[..., :, None], np.moveaxis(x2, -1, 0)[..., None, :], order="C")
    with np.errstate(over="ignore"):  # powf's and the square's overflow to inf, quietly
        if p == 2:
            terms = np.square(columns)
            unfused = length - length % 4
        else:
            terms = np.power(np.abs(columns).astype(np.float64), p).astype(np.float32)
            unfused = length
        total = np.zeros(columns.shape[1:], np.float32)
        if unfused:
            total = np.add.reduce(terms[:unfused], axis=0) if total.size > 1 else np.cumsum(
                terms[:unfused].reshape(unfused))[-1:].reshape(total.shape)
        for k in range(unfused, length):
            total = (total + np.square(columns[k], dtype=np.float64)).astype(np.float32)
        return np.sqrt(total) if p == 2 else np.power(total.astype(np.float64), 1.0 / p).astype(np.float32)


class Pdist(Function):
    """torch.pdist's one node: the p-norm distance of every pair of rows i < j of an (N, M) input,
    in row-major pair order, shape (N·(N - 1)/2,)."""

    _array_forward = True
    label = "pdist"
    rule = "each pair's distance gradient, torch's _pdist_backward, added to row i and taken from row j"
    formula = "pdist({0})"
    saved_attributes = {"_saved_p": ctx_value("p"), "_saved_result": saved(1), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, p):
        from .reduce import _vector_norm

        xp = array_module(x)
        rows, cols = (xp.asarray(pairs) for pairs in np.triu_indices(x.shape[0], 1))  # (on x's device)
        if x.shape[1]:
            # (chainrule's norm of the pairs' differences, whose values the composed op gave)
            result = _vector_norm(Tensor._make(x[rows] - x[cols]), p, (-1,), False, None, "pdist")._data
        else:  # no coordinates: every distance 0, as torch's kernel gives for any p
            result = xp.zeros(len(rows), x.dtype)
        ctx.p = p
        ctx.save_for_backward(x, result)
        return result

    @staticmethod
    def backward(ctx, grad):
        x, result = ctx.saved_values
        # (a node of its own under create_graph, which a second differentiation refuses, as torch's)
        return PdistBackward.apply(grad, x, result, p=ctx.p)


class PdistBackward(Function):
    """torch's _pdist_backward, which has no derivative: row r's gradient adds, in torch's order,
    -c(i, r) for i < r, then c(r, j) for j > r, where c(i, j) is pair (i, j)'s contribution."""

    _array_forward = True
    label = "pdist_backward"
    rule = "none: torch defines no derivative for _pdist_backward (backward raises)"

    @staticmethod
    def forward(ctx, grad, x, dist, p):
        xp = array_module(x)
        n = x.shape[0]
        rows, cols = (xp.asarray(pairs) for pairs in np.triu_indices(n, 1))
        contribution = _pdist_pair_gradient(xp, x[rows] - x[cols], grad.astype(x.dtype, copy=False)[:, None],
                                            dist[:, None], p)
        # signed[r, k]: what pair (r, k) or (k, r) adds to row r, in the k order torch adds them
        signed = xp.zeros((n, n) + x.shape[1:], x.dtype)
        signed[rows, cols] = contribution
        signed[cols, rows] = -contribution
        return xp.cumsum(signed, axis=1, dtype=x.dtype)[:, -1] if n else xp.zeros_like(x)

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("the derivative for '_pdist_backward' is not implemented.")


def _pdist_pair_gradient(xp, diff, grad, dist, p: float):
    """torch's per-pair pdist backward (DistanceOpsKernel's map of each norm), in the input's dtype."""
    dtype = diff.dtype.type
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == 0:
            return xp.zeros_like(diff)
        sign = xp.sign(diff)
        if p == 1:
            return grad * sign
        if p == math.inf:  # the coordinates at the maximum, each with the whole gradient
            return grad * sign * (dtype(1) - xp.minimum(dtype(1), xp.ceil(xp.abs(xp.abs(diff) - dist))))
        if p == 2:
            out = grad * diff / dist
        elif p < 2:
            out = sign * xp.abs(diff) ** dtype(p - 1) * grad / dist ** dtype(p - 1)
            if p < 1:
                out = xp.where(diff == 0, dtype(0), out)
        else:
            out = diff * xp.abs(diff) ** dtype(p - 2) * grad / dist ** dtype(p - 1)
        return xp.where(dist == 0, dtype(0), out)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """torch.pdist / F.pdist: the p-norm distance of every pair of rows i < j of an (N, M) input."""
    if input._data.ndim != 2:  # at::pdist's checks, in its order
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input._data.ndim}D")
    if not input.dtype.is_floating_point:
        raise RuntimeError("pdist only supports floating-point dtypes")
    if not p >= 0:
        raise RuntimeError("pdist only supports non-negative p values")
    if input.dtype.itemsize == 2:  # torch's CPU kernel has float32 and float64 instances only
        refuse_kernel(input, "pdist")
    return Pdist.apply(input, p=float(p))


# ---------------------------------------------------------------- products of several matrices
def matrix_power(input: Tensor, n: int, *, out=None) -> Tensor:
    """torch.matrix_power / torch.linalg.matrix_power: A^n by repeated squaring (n < 0 inverts,
    n = 0 gives identities)."""
    if out is None or not isinstance(out, Tensor):
        result = _matrix_power(input, n)
        return result if out is None else write_out(result, out, "matrix_power")
    # torch's linalg_matrix_power_out: the square check, a castable out, out resized to A's shape
    # (its warning), then per n: eye copied in (0), A copied in (1), linalg.inv's out= (-1), else
    # matmul's out= for the last product, which refuses autograd and takes no cast
    _check_matrix_power_input(input)
    if input.dtype._category > out.dtype._category:
        raise RuntimeError(f"matrix_power: Expected result to be safely castable from "
                           f"{_dtype.scalar_name(input.dtype)} dtype, but got result with dtype "
                           f"{_dtype.scalar_name(out.dtype)}")
    if out._data.shape != input._data.shape:
        warn_resized_out(out, input.shape)
        out._data = array_module(out).empty(input._data.shape, dtype=out._data.dtype)
    if n == 0:
        return out.copy_(_matrix_power(input.detach(), 0))
    if n == 1:
        return out.copy_(input)
    if n == -1:
        refuse_out_under_autograd("linalg_inv_ex", out, input)
    result = _matrix_power(input, n)
    refuse_out_under_autograd("matmul", out, input)
    return _exact_out(result, out, "matrix_power")


matrix_power.honours_out = True  # (it writes its out= itself)


def _check_matrix_power_input(A: Tensor) -> None:
    if A._data.ndim < 2:
        raise RuntimeError("linalg.matrix_power: The input tensor A must have at least 2 dimensions.")
    if A._data.shape[-1] != A._data.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but they are "
                           f"{A._data.shape[-2]} by {A._data.shape[-1]} matrices")


def _matrix_power(input: Tensor, n: int) -> Tensor:
    xp = array_module(input)
    A = input
    _check_matrix_power_input(A)
    if n == 0:
        # identities that still depend on A (zero gradient), as torch's result does
        eye = Tensor._make(xp.eye(A._data.shape[-1], dtype=A._data.dtype))
        return where(Tensor._make(xp.zeros((), dtype=bool)), A, eye)
    if n < 0:
        A, n = inv(A), -n
    if n > 1 and A._data.dtype == np.bool_ and A._data.size:  # its products have no bool kernel
        raise NotImplementedError(f"\"{'addmm_impl_cpu_' if A._data.ndim == 2 else 'bmm'}\" not implemented for 'Bool'")
    result = None
    square = A
    while n:
        if n & 1:
            result = square if result is None else _mat(result, square)
        n >>= 1
        if n:
            square = _mat(square, square)
    return result


@out_rule("same_multi_dot")
def multi_dot(tensors) -> Tensor:
    """torch.linalg.multi_dot: the product of a chain of matrices (the first may be a row vector
    and the last a column vector: their added dims are removed), multiplied left to right."""
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"linalg_multi_dot(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        f"{type(tensors).__name__}")
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        ndim = t._data.ndim
        allowed = (1, 2) if i in (0, len(tensors) - 1) else (2,)
        if ndim not in allowed:
            position = "first" if i == 0 else "last" if i == len(tensors) - 1 else None
            raise RuntimeError(f"multi_dot(): the {position} tensor must be 1D or 2D but got {ndim}D"
                               if position else f"multi_dot(): tensor {i} must be 2D but got {ndim}D")
    # torch checks each neighbour pair before it multiplies, naming the shapes as given
    for i in range(1, len(tensors)):
        if tensors[i].dtype is not tensors[0].dtype:
            raise RuntimeError(f"multi_dot(): all tensors must have be the same dtype but tensor 0 is "
                               f"{_dtype.cpp_type_name(tensors[0].dtype)} and tensor {i} "
                               f"{_dtype.cpp_type_name(tensors[i].dtype)}")
        if tensors[i - 1]._data.shape[-1] != tensors[i]._data.shape[0]:
            raise RuntimeError(f"multi_dot(): tensors {i - 1} and {i} with shapes {list(tensors[i - 1].shape)} and "
                               f"{list(tensors[i].shape)} cannot be multiplied")
    # torch multiplies 2-d matrices in the cheapest order (its rounding follows that order): a row
    # vector first and a column vector last are made matrices and their dims removed at the end
    first_vector, last_vector = tensors[0]._data.ndim == 1, tensors[-1]._data.ndim == 1
    if first_vector:
        tensors[0] = tensors[0].unsqueeze(0)
    if last_vector:
        tensors[-1] = tensors[-1].unsqueeze(-1)
    out = _chain_product(tensors, _chain_order([t._data.shape[0] for t in tensors] + [tensors[-1]._data.shape[1]]),
                         0, len(tensors) - 1)
    # (torch ends with a view to the output's shape: its ViewBackward0)
    return out.view(tuple(n for n, dropped in zip(out._data.shape, (first_vector, last_vector)) if not dropped))


def _chain_order(sizes: list) -> list:
    """split[i][j]: where torch's matrix-chain order splits the product of matrices i..j (matrix k
    is sizes[k] x sizes[k + 1]); three matrices compare the two costs as torch does."""
    n = len(sizes) - 1
    split = [[0] * n for _ in range(n)]
    if n == 3:
        a, b, c, d = sizes
        split[0][2] = 0 if (a * c) * (b + d) > (b * d) * (a + c) else 1
        split[1][2] = 1
        split[0][1] = 0
        return split
    cost = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                q = cost[i][k] + cost[k + 1][j] + sizes[i] * sizes[k + 1] * sizes[j + 1]
                if cost[i][j] is None or q < cost[i][j]:
                    cost[i][j], split[i][j] = q, k
    return split


def _chain_product(tensors: list, split: list, i: int, j: int) -> Tensor:
    if i == j:
        return tensors[i]
    k = split[i][j]
    return matmul(_chain_product(tensors, split, i, k), _chain_product(tensors, split, k + 1, j))


@out_rule("same_multi_dot")
def chain_matmul(*matrices) -> Tensor:
    """torch.chain_matmul (deprecated in torch): ``multi_dot`` of 2-D matrices."""
    check_as("chain_matmul", matrices)
    # torch's TORCH_WARN_ONCE, before its checks
    _config.warn_once("torch.chain_matmul is deprecated and will be removed in a future PyTorch release. Use "
                      "torch.linalg.multi_dot instead, which accepts a list of two or more tensors rather than "
                      "multiple parameters. (Triggered internally at "
                      "/__w/pytorch/pytorch/aten/src/ATen/native/LinearAlgebra.cpp:1102.)")
    for matrix in matrices:
        if matrix.ndim != 2:
            raise RuntimeError(f"Tensor dimension is {matrix.ndim}, expected 2 instead.")
    if not matrices:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    if len(matrices) == 1:
        return matrices[0].clone()  # (torch's result is never its argument)
    return multi_dot(matrices)


@out_rule("same_vecdot")
@cpu_autocast_policy("lower")
def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """torch.linalg.vecdot: ``sum(conj(x) * y, dim)`` with broadcasting."""
    for position, (name, value) in enumerate((("x", x), ("y", y)), 1):
        if not isinstance(value, Tensor):
            raise TypeError(f"linalg_vecdot(): argument '{name}' (position {position}) must be Tensor, not "
                            f"{type(value).__name__}")
    if not (x.is_floating_point() or x.is_complex()):
        raise RuntimeError(f"linalg.vecdot: Expected a floating point or complex tensor as input. Got "
                           f"{_dtype.scalar_name(x.dtype)}")
    if x.dtype != y.dtype:
        raise RuntimeError(f"linalg.vecdot: Expected x and y to have the same dtype, but found x of type "
                           f"{_dtype.scalar_name(x.dtype)} and y of type {_dtype.scalar_name(y.dtype)} instead")
    from .elementwise import mul
    from .reduce import sum as _sum

    return _sum(mul(_conj(x), y), dim)
