"""The linear layer's op: y = x Wᵀ + b, recorded as torch records it (what torchviz draws and the
profiler counts): addmm(bias, input, weight.t()) (mm without a bias) over the weight's TBackward0,
and for other ranks the views torch folds the input into rows with.

Fused: one GEMM forward; the backward is one array-level ``LinearBackward`` Function (two GEMMs
and a row sum, nothing recorded) whose own backward is the second-order rule in Tensor ops.

Inputs of any rank run as one (rows, features) matrix, as torch folds them: NumPy's matmul of a
3-d array by a matrix runs one small GEMM per leading index (35 GEMMs of 20 rows for an LSTM
language model's decoder), 2.5x slower than the one GEMM of 700 rows. On the CPU the whole-array
passes beside the GEMMs (the bias add, the bias gradient's column sums) are split over the thread
budget; each element is computed as in one piece, so the result does not depend on the split.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype, _meta, _vmap_frames
from .._backend import array_module, autocast_unifies, on_one_device
from .._parallel import over_rows
from ..autograd import function as _function
from ..autograd.function import (
    Function,
    input_sizes,
    name_node,
    on_arrays_when_unrecorded,
    saved,
)
from ..autograd.profiler import composite_range
from ..tensor import Tensor, _check_tensor
from .linalg import _matrix_strides, _recorded_matmul, _save_for_the_other, _should_fold
from .shape import UnsafeView, expanded_shape, reshaped, viewed

__all__ = ["linear"]
__not_methods__ = set(__all__)


def _add_bias(out, b) -> None:
    """out (rows, n) += b (n,) in place, over row pieces on the CPU."""
    if array_module(out) is not np:
        out += b
        return

    def add(start, stop):
        out[start:stop] += b

    over_rows(add, out.shape[0], out.size)


def _column_sums(g):
    """g (rows, n) summed over its rows; on the CPU over column pieces (each column's sum is
    the same sequence of adds in any piece)."""
    xp = array_module(g)
    if xp is not np:
        return g.sum(0)
    sums = xp.empty(g.shape[1], g.dtype)

    def column_sum(start, stop):
        g[:, start:stop].sum(0, out=sums[start:stop])

    over_rows(column_sum, g.shape[1], g.size)
    return sums


class WeightT(Function):
    """``weight.t()`` as torch's linear records it: the TBackward0 node between the weight's
    AccumulateGrad and the matrix product (torchviz and the profiler show it). One node, not
    ``Tensor.t``'s transpose renamed, since every linear call builds it."""

    _array_forward = True
    node_name = "TBackward0"
    label = "t"
    rule = "transposes the gradient back"
    formula = "{0}ᵀ"
    saved_attributes = {}

    @staticmethod
    def forward(ctx, w):
        return w.T

    @staticmethod
    def backward(ctx, grad):
        return _transposed(grad, None, None)


# gᵀ: on the arrays in a plain backward, a recorded Tensor op under create_graph (torch's grad.t(),
# whose node is TBackward0)
_transposed = on_arrays_when_unrecorded(lambda g, x, y: g.T, "TBackward0")


def _weight_t(weight: Tensor) -> Tensor:
    """weight.t() through WeightT: a view of the weight, sharing its version counter (so an
    in-place change of the weight before backward is still caught)."""
    w_t = WeightT.apply(weight)
    w_t._vbox = weight._version_box
    w_t._base = weight if weight._base is None else weight._base
    return w_t


def _kept(x, w_t) -> tuple:
    """LinearBackward's matrices from what the forward kept: x (for W's gradient) and W (for x's)."""
    return ((x,) if x is not None else ()) + ((_transposed(w_t, None, None),) if w_t is not None else ())


class Addmm(Function):
    """y = b + x (Wᵀ) for x (rows, in): torch's addmm(bias, input, weight.t()), one GEMM forward and
    one LinearBackward (two GEMMs, a column sum) backward."""

    _array_forward = True
    node_name = "AddmmBackward0"
    label = "linear"
    rule = "y = x Wᵀ + b: ∂/∂x = G W, ∂/∂W = Gᵀ x, ∂/∂b = G summed over the batch"
    formula = "{1} @ {2} + {0}"
    # torch's names: addmm keeps each matrix only for the other's gradient, and each one's
    # strides only for its own
    saved_attributes = {"_saved_alpha": 1, "_saved_beta": 1, "_saved_mat1": saved(0, needed=2),
                        "_saved_mat1_sym_sizes": input_sizes(1), "_saved_mat1_sym_strides": _matrix_strides(1, 0),
                        "_saved_mat2": saved(1, needed=1), "_saved_mat2_sym_sizes": input_sizes(2),
                        "_saved_mat2_sym_strides": _matrix_strides(2, 1)}

    @staticmethod
    def forward(ctx, b, x, w_t):
        _save_for_the_other(ctx, x, w_t, ctx.needs_input_grad[1], ctx.needs_input_grad[2])
        out = x @ w_t
        if b.ndim <= 1:
            _add_bias(out, b)
        else:  # a bias of rows (addmm broadcasts it): not split over rows
            out += b
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w_t = ctx.saved_values
        need_b, need_x, need_w = ctx.needs_input_grad
        # a bias of rows takes G itself, which the engine sums to its shape
        sum_rows = need_b and len(ctx._input_meta[0][0]) <= 1
        grads = iter(_linear_backward(grad, x, w_t, (need_x, need_w, sum_rows), _operand_orders(ctx, x, w_t, 1)))
        grad_x = next(grads) if need_x else None
        grad_w = _transposed(next(grads), None, None) if need_w else None
        grad_b = (next(grads) if sum_rows else grad) if need_b else None
        return grad_b, grad_x, grad_w


class Mm(Function):
    """y = x (Wᵀ) for x (rows, in): torch's mm(input, weight.t()), a linear without bias."""

    _array_forward = True
    node_name = "MmBackward0"
    label = "matmul"
    rule = "∂/∂A = G Bᵀ, ∂/∂B = Aᵀ G"
    formula = "{0} @ {1}"
    saved_attributes = {"_saved_self": saved(0), "_saved_self_sym_sizes": input_sizes(0),
                        "_saved_self_sym_strides": _matrix_strides(0, 0), "_saved_mat2": saved(1),
                        "_saved_mat2_sym_sizes": input_sizes(1), "_saved_mat2_sym_strides": _matrix_strides(1, 1)}

    @staticmethod
    def forward(ctx, x, w_t):
        _save_for_the_other(ctx, x, w_t, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return x @ w_t

    @staticmethod
    def backward(ctx, grad):
        x, w_t = ctx.saved_values
        need_x, need_w = ctx.needs_input_grad
        grads = iter(_linear_backward(grad, x, w_t, (need_x, need_w, False), _operand_orders(ctx, x, w_t, 0)))
        grad_x = next(grads) if need_x else None
        return grad_x, (_transposed(next(grads), None, None) if need_w else None)


class LinearBackward(Function):
    """(G W, Gᵀ x, Σ G) for G (rows, out), x (rows, in): the linear's gradients that ``needs``
    (x's, W's, the bias's) asks for. Its inputs are G and the matrices those gradients read: x for
    W's, W for x's, as the forward kept only those."""

    _array_forward = True
    node_name = "MmBackward0"  # torch computes x's gradient G W as one matrix product
    label = "linear_backward"
    rule = "∂/∂G = Ūₓ W + x Ū_Wᵀ + Ū_b, ∂/∂x = G Ū_W, ∂/∂W = Ūₓᵀ G"
    formula = None

    @staticmethod
    def forward(ctx, grad, *matrices, needs, orders=(False, False)):
        if any(ctx.needs_input_grad):  # keep nothing on the shared no-grad ctx
            ctx.needs = needs
        x, w = _needed_matrices(matrices, needs)
        ctx.save_for_backward(grad, x, w)
        return _linear_grads(grad, x, w, needs, orders)

    @staticmethod
    def backward(ctx, *grad_grads):
        # gx = G W, gW = Gᵀ x, gb = Σ G are bilinear: each input's gradient pairs the other with Ū
        grad, x, w = ctx.saved_values
        remaining = iter(grad_grads)
        u_x, u_w, u_b = (next(remaining) if need else None for need in ctx.needs)
        needs = matrix_needs(ctx)
        grad_g = grad_x = grad_w = None
        if needs[0]:
            parts = []
            if u_x is not None:
                parts.append(u_x @ w.t())
            if u_w is not None:
                parts.append(x @ u_w.t())
            if u_b is not None:
                parts.append(u_b.expand(*grad.shape))
            grad_g = sum(parts[1:], parts[0]) if parts else None
        if needs[1] and u_w is not None:
            grad_x = grad @ u_w
        if needs[2] and u_x is not None:
            grad_w = grad.t() @ u_x
        return per_input(ctx, grad_g, grad_x, grad_w)


def _needed_matrices(matrices, needs) -> tuple:
    """(x, W) from LinearBackward's matrices: x given for W's gradient, W for x's (else None)."""
    matrices = iter(matrices)
    x = next(matrices) if needs[1] else None
    w = next(matrices) if needs[0] else None
    return x, w


def _linear_grads(grad, x, w, needs, orders) -> tuple:
    """The arrays (G W, Gᵀ x, Σ G) that ``needs`` asks for: LinearBackward's forward. Each product
    takes torch's operand order (``_operand_orders``): G W as (W G)ᵀ, Gᵀ x as (xᵀ G)ᵀ where it says."""
    grads = []
    if needs[0]:
        grads.append((w.T @ grad.T).T if orders[0] else grad @ w)
    if needs[1]:
        grads.append((x.T @ grad).T if orders[1] else grad.T @ x)
    if needs[2]:
        grads.append(_column_sums(grad))
    return tuple(grads)


def _column_major(matrix, ctx, position: int) -> bool:
    """torch's test of a product's matrix (kept, else the strides its forward noted) for column-major
    strides (1, rows), by which its mm_mat1_backward and mm_mat2_backward choose their operand order."""
    if matrix is not None:
        array = matrix._data
        return array.strides[0] == array.itemsize and array.strides[1] == array.shape[0] * array.itemsize
    return ctx.unsaved_strides == (1, ctx._input_meta[position][0][0])


def _operand_orders(ctx, x, w_t, x_position: int) -> tuple:
    """Whether x's gradient is torch's (W Gᵀ)ᵀ (a column-major x) and W's torch's xᵀ G (a weight whose
    t() is not column-major), not G W and (Gᵀ x)ᵀ: the same products in torch's order, so that a
    dispatch mode replaying torch's t and mm ops gets the rule's bits. A contiguous x and weight take
    neither."""
    need_x, need_w = ctx.needs_input_grad[x_position:x_position + 2]
    return (need_x and _column_major(x, ctx, x_position),
            need_w and not _column_major(w_t, ctx, x_position + 1))


def _linear_backward(grad: Tensor, x, w_t, needs, orders) -> tuple:
    """A product's gradients through LinearBackward. In a plain backward nothing records and no
    profiler, forward-AD level or low-precision hook would see the op, so its unrecorded apply
    would only wrap these arrays: its array forward is called directly (same arrays, same
    order), saving a node-less apply per linear layer. Otherwise (create_graph, half precision,
    a profiler counting the GEMMs) it is applied as an op."""
    if _function.unwatched_on_arrays(grad):
        kept = ((x._data,) if x is not None else ()) + ((w_t._data.T,) if w_t is not None else ())
        return tuple(Tensor._make(g) for g in _linear_grads(grad._data, *_needed_matrices(kept, needs), needs,
                                                            orders))
    return LinearBackward.apply(grad, *_kept(x, w_t), needs=needs, orders=orders)


def matrix_needs(node) -> tuple:
    """Whether a LinearBackward node's G, x and W need a gradient (False for a matrix it was not
    given)."""
    grad, x, w = node.saved_values
    needs = node.needs_input_grad
    return needs[0], x is not None and needs[1], w is not None and needs[-1]


def per_input(node, grad_g, grad_x, grad_w) -> tuple:
    """A LinearBackward node's gradients, one per input it was given."""
    grad, x, w = node.saved_values
    return (grad_g,) + ((grad_x,) if x is not None else ()) + ((grad_w,) if w is not None else ())


@composite_range("aten::linear", 3)
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear: ``input @ weight.T + bias`` for input (*, in_features), weight (out, in)."""
    if isinstance(input, Tensor) and isinstance(weight, Tensor) and isinstance(bias, Tensor):
        x, w, b = input._data, weight._data, bias._data
        if type(x) is np.ndarray and type(w) is np.ndarray and type(b) is np.ndarray and x.ndim == 2 and \
                w.ndim == 2 and b.ndim == 1 and x.dtype.kind == "f" and x.dtype == w.dtype == b.dtype and \
                x.shape[1] == w.shape[1] and b.shape[0] == w.shape[0]:
            # the commonest call (a batch of rows, a bias, one float dtype on the CPU): every check
            # below passes, and torch's graph is addmm(bias, input, weight.t())
            return Addmm.apply(bias, input, _weight_t(weight))
    _check_tensor(input, "linear", "input", 1)
    _check_tensor(weight, "linear", "weight", 2)
    _check_tensor(bias, "linear", "bias", 3, optional=True)
    if (type(weight._data) is not type(input._data) or (bias is not None and type(bias._data) is not type(input._data))) \
            and not any(type(t._data) is _meta.ndarray for t in (input, weight, bias) if t is not None):
        # torch checks the devices in argument order, the input's expected (its addmm puts bias first);
        # with a meta tensor among them its mm and addmm decide (_meta.on_meta)
        on_one_device([t._data for t in (input, weight, bias) if t is not None], "linear")
    x, w = input._data, weight._data  # (their arrays' shapes read directly: no Size made per read)
    # torch's linear is addmm(bias, input as rows, weight.t()) for a 2-d input with a bias, and for a
    # contiguous input with a 1-d bias; addmm refuses a 1-d weight (its t() is no matrix) and expands
    # the bias to the product's shape, refusing one that does not fit in expand's words
    # (inside vmap, where any of them is batched, torch's linear folds only a 2-d or a contiguous 3-d
    # input: its other fused path skips tensor-subclass-like operands, so a 1-d or 4-d input takes
    # matmul and then adds the bias)
    fused_any_rank = x.ndim in (2, 3) or not (_vmap_frames._frames and any(
        _vmap_frames.batched_anywhere(t) for t in (input, weight, bias) if t is not None))
    addmm_path = bias is not None and (x.ndim == 2 or (x.ndim > 0 and bias._data.ndim == 1 and input.is_contiguous()
                                                        and fused_any_rank))
    folded = bias is not None and (x.ndim <= 2 or input.is_contiguous()) and (x.ndim == 2 or fused_any_rank)  # addmm's
    if addmm_path and not autocast_unifies(x):
        _check_dtypes(input, weight, bias, folded)  # addmm checks the dtypes before any shape
    if addmm_path and w.ndim == 1:
        raise RuntimeError("mat2 must be a matrix, got 1-D tensor")
    if x.ndim == 0 or w.ndim not in (1, 2) or x.shape[-1] != w.shape[-1]:
        if x.ndim == 0 or w.ndim == 0:
            raise RuntimeError(f"both arguments to linear need to be at least 1D, but they are {x.ndim}D and "
                               f"{w.ndim}D")
        rows = math.prod(input.shape[:-1]) if input.ndim else 1
        cols = input.shape[-1] if input.ndim else 1
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{cols} and "
            f"{'x'.join(str(s) for s in reversed(tuple(weight.shape)))})"
        )
    if addmm_path:
        expanded_shape(bias._data.shape, (math.prod(x.shape[:-1]), w.shape[0]), bias._data.dtype)
    if not addmm_path and not autocast_unifies(x):
        _check_dtypes(input, weight, bias, folded)
    if x.dtype is _BOOL and w.ndim == 2 and w.dtype is _BOOL and math.prod(x.shape[:-1]) * w.shape[0]:
        _refuse_bool(w.shape[1], addmm_path and bias.dtype is _dtype.bool)
    if w.ndim == 1:
        out = (input * weight).sum(-1)
        return out + bias if bias is not None else out
    if x.dtype.kind == "c" or w.dtype.kind == "c":
        # the fused rules below are real GEMMs; matmul's conjugate, as torch's complex gradients do
        from .linalg import matmul

        out = matmul(input, weight.t())
        return out + bias if bias is not None else out
    if x.ndim == 2:  # torch's graph: addmm(bias, input, weight.t()), or mm(input, weight.t())
        w_t = _weight_t(weight)
        return Mm.apply(input, w_t) if bias is None else Addmm.apply(bias, input, w_t)
    rows = math.prod(x.shape[:-1])
    shape = x.shape[:-1] + (w.shape[0],)  # (plain tuples of ints, as view's parsing makes them)
    if bias is not None and bias._data.ndim == 1 and input.is_contiguous() and bias.is_contiguous() and fused_any_rank:
        # torch folds a contiguous input into one (rows, in) matrix for addmm, the result viewed back
        # (the input viewed before the weight's t(), in torch's order as a dispatch mode sees it)
        as_rows = viewed(input, (rows, x.shape[-1]))
        return viewed(Addmm.apply(bias, as_rows, _weight_t(weight)), shape)
    w_t = _weight_t(weight)
    # otherwise torch's matmul(input, weight.t()): the input as rows (a 1-d one unsqueezed), one mm,
    # its result viewed back without being a view (_unsafe_view; a 1-d one squeezed in place), then
    # the bias added; a batch whose rows are no view, against a weight that needs no gradient, is
    # torch's bmm against the expanded weight (matmul's should_fold)
    if x.ndim > 2 and not _should_fold(input, w_t):
        out = _recorded_matmul(input, w_t)
    elif x.ndim == 1:
        out = name_node(UnsafeView.apply(Mm.apply(input.unsqueeze(0), w_t), shape=shape), "SqueezeBackward4",
                        saved=_SQUEEZED_SAVED)
    else:
        out = UnsafeView.apply(Mm.apply(reshaped(input, (rows, x.shape[-1])), w_t), shape=shape)
    if bias is None:
        return out
    # torch adds the bias in place into the product: a bias of another dtype takes the product's
    return out + (bias if bias.dtype == out.dtype else bias.to(out.dtype))


_BOOL = np.dtype(np.bool_)


def _refuse_bool(inner: int, bool_bias: bool) -> None:
    """A non-empty bool product: torch's mm has no bool kernel; over an empty inner dim its addmm scales
    a bool bias by the integer beta, which it cannot cast back."""
    if inner:
        raise NotImplementedError("\"addmm_impl_cpu_\" not implemented for 'Bool'")
    if bool_bias:
        raise RuntimeError("result type Long can't be cast to the desired output type Bool")


def _check_dtypes(input: Tensor, weight: Tensor, bias: Tensor | None, folded: bool) -> None:
    """torch's dtype checks, which differ by the path its linear takes: addmm (a bias, and an input
    of at most 2 dims or contiguous), mm (no bias), or matmul of a non-contiguous input (whose
    bias is then added in place, so any float dtype passes)."""
    name = _dtype.scalar_name
    if folded:
        if bias.dtype != weight.dtype:
            raise RuntimeError(f"self and mat2 must have the same dtype, but got {name(bias.dtype)} and "
                               f"{name(weight.dtype)}")
        if input.dtype != weight.dtype:
            raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {name(input.dtype)} and "
                               f"{name(weight.dtype)}")
    elif input.dtype != weight.dtype:
        if input.ndim <= 2 or _matmul_folds(input, weight):
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {cpp_type_name(input.dtype)} "
                               f"!= {cpp_type_name(weight.dtype)}")
        raise RuntimeError(f"expected scalar type {name(input.dtype)} but found {name(weight.dtype)}")


def _matmul_folds(input: Tensor, weight: Tensor) -> bool:
    """Whether torch's matmul runs an N-d input by a matrix as one mm of its rows (else as bmm):
    always when a gradient is wanted, otherwise when the rows are a view without a copy."""
    if input.requires_grad or weight.requires_grad:
        return True
    shape, strides = input.shape, input.stride()
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(input.ndim - 2))


# the C++ names torch's messages print for a dtype (its TORCH_CHECKs stream a caffe2::TypeMeta)
cpp_type_name = _dtype.cpp_type_name  # (imported from here by the ops that name C++ types)


# torch's _saved_* of squeeze_(0) on the (1, out) product of a 1-d input
_SQUEEZED_SAVED = {"_saved_dim": 0, "_saved_self_sym_sizes": input_sizes(0)}
