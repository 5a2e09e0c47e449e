"""Reductions: sum (and the engine's sum_to_shape), mean, prod, var/std, max/min, logsumexp,
softmax, cumulative ops, norms, sorting and order statistics.

``dim`` accepts an int, a tuple of ints or None (all dims), negative dims included; ``keepdim``
keeps reduced dims as size 1. Gradients expand back over the reduced dims.

Tie policy (torch's): the full ``max()``/``min()``, ``amax``/``amin``, ``median()`` and the
inf-norm split the gradient evenly among tied elements; ``max(dim)``/``min(dim)``, ``sort``,
``topk``, ``median(dim)``, ``kthvalue`` and ``mode`` route it to the returned index only.
"""

from __future__ import annotations

import builtins
import math
import operator
import warnings

import numpy as np

from .. import _config, _dtype, _sum_order, _vmap_frames, return_types
from .._backend import accumulate, amax_with_initial, array_module, broadcast_refusal, ufunc_at
from .._parallel import over_rows
from .._torch_function import user_stacklevel
from ..autograd import function as _function_module
from ..autograd.engine import sum_to_shape  # re-exported: chainrule.sum_to_shape, Tensor.sum_to_shape
from ..autograd.function import (
    Function,
    SavedValue,
    as_uint64,
    ctx_value,
    input_sizes,
    is_recording,
    kept_value,
    name_node,
    on_arrays,
    saved,
)
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor, _check_tensor, _wrap_dim, honours_out, preserve_layout
from . import _cuda_kernels, cpu_features, cpu_norm_order, cpu_softmax_order, cpu_sort_order
from ._arg_parser import check_number, int_list
from .elementwise import SPARSE_COO_TYPES, DivNumber, MulNumber, _conj, _exp_array, _log_array, conjugate_rule
from .memory_format import iterator_layout, row_major

# the functions whose chainrule.<name> takes torch's out=, with torch's rule for the out's dtype
# (ops/_arg_parser.py namespace_with_out; chainrule/__init__.py wraps them)
__out_functions__ = {"sum": "computes_in", "prod": "computes_in", "cumsum": "computes_in", "cumprod": "computes_in",
                     "nansum": "computes_in", "mean": "mean", "nanmean": "cast", "std": "variance", "var": "variance",
                     "amax": "same_as_input", "amin": "same_as_input", "argmax": "same", "argmin": "same",
                     "norm": "same", "logsumexp": "floating", "max": "castable", "min": "castable", "sort": "cast",
                     "topk": "cast", "median": "cast", "all": "cast", "any": "cast", "softmax": "same",
                     "kthvalue": "values_and_long_indices", "aminmax": "same", "log_softmax": "same"}
# torch.norm's out= is a differentiable copy_ where torch's norm is composite: p="nuc" (the others
# write through linalg_vector_norm's out= kernel, which refuses autograd)
__composite_out__ = {"norm": lambda args, kwargs: isinstance(p := args[1] if len(args) > 1 else kwargs.get("p"), str)
                              and p == "nuc"}
__all__ = ["sum", "mean", "sum_to_shape", "prod", "var", "std", "var_mean", "std_mean", "max", "min",
           "amax", "amin", "argmax", "argmin", "logsumexp", "softmax", "log_softmax", "cumsum",
           "cumprod", "norm", "all", "any", "count_nonzero", "sort", "argsort", "topk", "median",
           "kthvalue", "mode", "nansum", "nanmean", "aminmax", "cummax", "cummin", "dist"]
__not_methods__ = {"sum_to_shape", "var_mean", "std_mean"}  # torch.Tensor has none of them
__tensor_methods__ = {"norm": "_norm_method"}


def _dims(dim, ndim: int, op: str) -> tuple:
    """Normalise ``dim`` (None, int, or sequence) to a sorted tuple of non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        if len(dim) == 0:
            return tuple(range(ndim))
        wrapped = [_wrap_dim(d, ndim, op) for d in dim]
        for i, d in enumerate(wrapped):
            if d in wrapped[:i]:  # torch names the first wrapped dim seen twice, and no op
                raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        return tuple(sorted(wrapped)) if ndim else ()
    wrapped = _wrap_dim(dim, ndim, op)  # checked on 0-d tensors too, which take -1 and 0
    return (wrapped,) if ndim else ()


_DIVIDE_FIRST = 1024  # a mean's backward divides its gradient before expanding it from this many elements


def _expand_back(grad: Tensor, shape: tuple, dims: tuple, keepdim: bool, divisor: int | None = None,
                 node=None) -> Tensor:
    """Undo a reduction's shape change: reinsert the reduced dims as 1, then broadcast (after
    dividing by ``divisor``, a mean's count, 1 too). In a plain backward this is the same reshape,
    broadcast view and division on the array: the Tensor ops would record nothing, and as views
    they cost a loss's backward more than the small ops around them. ``node``: the reduction's, which
    keeps the dims as the call gave them (negative, say) where they differ from ``dims``."""
    if not keepdim and dims:
        kept_shape = tuple(1 if i in dims else s for i, s in enumerate(shape))
    else:
        kept_shape = None
    if on_arrays(grad):
        data = grad._data
        if kept_shape is not None:
            data = data.reshape(kept_shape)
        expanded = array_module(data).broadcast_to(data, shape)
        if divisor is None:
            return Tensor._make(expanded)
        # torch's mean_backward divides the expanded gradient: a fresh tensor laid out from the
        # expanded one's strides, which a leaf's AccumulateGrad then takes over as it is. Each element
        # is its cell's quotient, so where the expansion repeats cells, dividing them first and copying
        # the quotients out gives the same bits for a division each cell (one thread, loaded 2-core EPYC: a
        # global average pool's backward on (32, 64, 8, 8) 36 µs instead of 52, (100, 1000).mean(1) 24 instead
        # of 39; from _DIVIDE_FIRST elements, below which it measured a few tenths of a µs slower)
        if divisor and expanded.size >= _DIVIDE_FIRST and expanded.size > data.size:
            xp = array_module(data)
            cells = data / divisor
            quotients = xp.empty(shape, cells.dtype)
            xp.copyto(quotients, cells)
        else:
            quotients = expanded / divisor
        return Tensor._make(iterator_layout(quotients, expanded, expanded.dtype.type(divisor)))
    if grad.is_sparse:  # a sparse reduction's gradient (torch.sparse.sum under a dispatch mode): its dense form
        grad = grad.to_dense()
    # torch's sum_backward: unsqueezed at each reduced dim in turn where dims were given (a 0-d gradient
    # too), else expanded as it is; a mean's count divides the expanded gradient (mean_backward)
    if kept_shape is not None and (grad._data.ndim or node is not None and node._forward_cls.dims_given
                                   and getattr(node, "given_dims", dims)):
        given = getattr(node, "given_dims", None)
        if len(dims) == 1 and given is not None and len(given) == 1:
            grad = grad.unsqueeze(given[0])  # (one dim: torch unsqueezes at it as given)
        else:
            for dim in sorted(dims):
                grad = grad.unsqueeze(dim)
    grad = grad.expand(shape)
    if divisor is None:
        return grad
    if _function_module.active_dispatch is not None:  # torch's mean_backward divides by the count as a Scalar
        _function_module.note_given(DivNumber, grad, aten_call=(("div", "Scalar"), (grad, divisor), {}))
    return DivNumber.apply(grad, number=divisor)


class Sum(Function):
    label = "sum"
    rule = "copies the gradient to every element (∂/∂aᵢ = 1)"
    formula = "sum({0})"
    _array_forward = True
    saved_attributes = {"_saved_self_sym_sizes": input_sizes(0)}  # torch's grad_fn._saved_* names

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        xp = array_module(x)
        ctx.shape = x.shape
        ctx.dims = dims
        ctx.keepdim = keepdim
        if dtype is not None and dtype != x.dtype and x.dtype.kind in "fV" and np.dtype(dtype).kind == "f":
            # torch's sum(dtype=) of a floating input casts it first, then sums in its own order in that dtype
            x = x.astype(dtype)
        # C order whatever the input's strides: torch's reductions return contiguous tensors
        if x.dtype in _sum_order.REPLAYED and type(x) is np.ndarray and (dtype is None or dtype == x.dtype):
            total = _sum_order.sum_dims(x, dims, keepdim)  # torch's float32/float64 order, to the bit
            if total is not None:
                return total
        # (np.sum of an ndarray is this add.reduce, reached through two Python-level wrappers)
        total = np.add.reduce(x, dims, dtype, None, keepdim) if type(x) is np.ndarray else xp.sum(
            x, axis=dims, keepdims=keepdim, dtype=dtype)
        return _as_array(total, x, xp)

    dims_given = False  # (sum(x): torch's formula expands a 0-d gradient without unsqueezing it)

    @staticmethod
    def backward(ctx, grad):
        # every input element contributes once to its sum: copy the gradient back over the dims
        return _expand_back(grad, ctx.shape, ctx.dims, ctx.keepdim, node=ctx)


def _numpy_names(op: str, dim, keepdim, axis, keepdims):
    """torch's argument parser takes NumPy's ``axis``/``keepdims`` for ``dim``/``keepdim``
    (``torch.sum(x, axis=0)``, ``torch.cumprod(a, axis=0)``) but not both spellings at once."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}() got an unexpected keyword argument 'axis'")
        dim = axis
    if keepdims is not None:
        if keepdim:
            raise TypeError(f"{op}() got an unexpected keyword argument 'keepdims'")
        keepdim = keepdims
    return dim, keepdim


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None) -> Tensor:
    """torch.sum; bool and integer inputs sum to int64 as in torch."""
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names("sum", dim, keepdim, axis, keepdims)
    np_dtype = _dtype.to_dtype(dtype).np if dtype is not None else (
        np.int64 if input._data.dtype.kind in "biu" else None)
    dims = _dims(dim, input._data.ndim, "sum")
    if dtype is not None:  # (summed in a uint16/32/64 asked for: torch's sum kernel has none)
        _dtype.refuse_wide_unsigned("reduce.sum", np.dtype(np_dtype))
    if dim is None:
        if _function_module.active_dispatch is not None and dtype is None and np_dtype is not None:
            # (a mode sees the dtype as given: an integer input's int64 sum is the kernel's, not an argument)
            _function_module.note_given(Sum, input, shown_dtype=None)
        return Sum.apply(input, dims=dims, keepdim=keepdim, dtype=np_dtype)
    if input.__class__ in SPARSE_COO_TYPES and not keepdim:
        return input.sum(dim, dtype=dtype)  # over some dims: sparse, as torch's
    if _function_module.active_dispatch is not None:
        shown = {"shown_dtype": None} if dtype is None and np_dtype is not None else {}
        _function_module.note_given(SumDim, input, given_dims=_dims_as_called(dim), **shown)
    return _keep_given_dims(SumDim.apply(input, dims=dims, keepdim=keepdim, dtype=np_dtype), dim, dims)


def _given_args(args: tuple, defaults: tuple) -> tuple:
    """``args`` without the trailing ones equal to their default (``defaults`` aligned at the end),
    as torch's dispatcher hands a call's arguments to a mode."""
    args = list(args)
    for default in reversed(defaults):
        if args and args[-1] == default and type(args[-1]) is type(default):
            args.pop()
        else:
            break
    return tuple(args)


def _dims_as_called(dim) -> tuple:
    return (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)


def _keep_given_dims(out: Tensor, dim, dims: tuple) -> Tensor:
    """``out`` with the dims as the call gave them kept on its node, where they differ from the
    normalised ``dims`` (negative, unsorted, empty): torch's _saved_dim reports them as given."""
    given = _dims_as_called(dim)
    if given != dims and out._grad_fn is not None:
        out._grad_fn.given_dims = given
    return out


def _dims_as_given(node) -> tuple:
    return tuple(as_uint64(int(d)) for d in getattr(node, "given_dims", node.dims))


class SumDim(Sum):
    node_name = "SumBackward1"  # torch's sum(dim) overload
    dims_given = True
    label = "sum"
    rule = "copies the gradient to every element along the summed dims (∂/∂aᵢ = 1)"
    formula = "sum({0})"
    saved_attributes = {"_saved_dim": SavedValue(_dims_as_given), "_saved_keepdim": ctx_value("keepdim"),
                        "_saved_self_sym_sizes": input_sizes(0)}


def empty_mean(total):
    """The mean of no elements as torch's ``sum / count`` leaves it: the zero ``total`` divided by a
    zero count, whose NaN carries the processor's sign (x86's default NaN is negative, 0xffc00000 in
    float32, where ``total * nan`` kept NaN's positive bits)."""
    with np.errstate(invalid="ignore"):
        return total / total.dtype.type(0)


class Mean(Function):
    label = "mean"
    rule = "shares the gradient equally: ∂/∂aᵢ = 1/n"
    formula = "mean({0})"
    _array_forward = True
    saved_attributes = {"_saved_self_sym_numel": SavedValue(lambda node: int(np.prod(node._input_meta[0][0]))),
                        "_saved_self_sym_sizes": input_sizes(0)}

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype=None):
        xp = array_module(x)
        if dtype is not None and x.dtype != dtype:  # (torch's mean(dtype=) sums the input cast to it)
            x = x.astype(dtype)
        ctx.shape = x.shape
        ctx.dims = dims
        ctx.keepdim = keepdim
        ctx.count = math.prod([x.shape[d] for d in dims])  # (1 for no dims; np.prod of a list costs µs)
        if ctx.count == 0:  # torch's mean of nothing: its sum / 0 (NumPy's mean warns "Mean of empty slice")
            return _as_array(empty_mean(xp.sum(x, axis=dims, keepdims=keepdim)), x, xp)
        if x.dtype in _sum_order.REPLAYED and type(x) is np.ndarray:
            total = _sum_order.sum_dims(x, dims, keepdim)  # torch's CPU mean: its sum / count
            if total is not None:
                return np.divide(total, np.float32(ctx.count), out=total)
            # NumPy's mean without its Python wrapper (6 µs of a (32, 64, 8, 8) pool's 77): the same sum, and
            # its division by the count in float64 rounds as one in x's dtype (53 bits ≥ 2·24 + 2)
            total = np.add.reduce(x, axis=dims, keepdims=keepdim)
            if type(total) is np.ndarray:
                return _as_array(np.divide(total, total.dtype.type(ctx.count), out=total), x, xp)
        return _as_array(xp.mean(x, axis=dims, keepdims=keepdim), x, xp)  # as Sum

    dims_given = False

    @staticmethod
    def backward(ctx, grad):
        # d mean = d sum / n
        return _expand_back(grad, ctx.shape, ctx.dims, ctx.keepdim, ctx.count, ctx)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None) -> Tensor:
    """torch.mean; integer inputs are an error unless ``dtype`` is floating, as in torch."""
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names("mean", dim, keepdim, axis, keepdims)
    np_dtype = None
    if dtype is not None:
        np_dtype = _dtype.to_dtype(dtype).np
        if np_dtype.kind not in "fcV" or input._data.dtype.kind == "c" != np_dtype.kind:
            # (an integral dtype is refused below as torch's; a complex input's real dtype is a cast's
            # refusal); else the dtype is the op's own, one MeanBackward1 on the input as torch's
            input, np_dtype = input.to(dtype), None
    if np_dtype is None and input._data.dtype.kind not in "fVc":
        raise RuntimeError(
            f"mean(): could not infer output dtype. {'Input' if dtype is None else 'Optional'} dtype must be either "
            f"a floating point or complex dtype. Got: {_dtype.scalar_name(input.dtype)}"
        )
    dims = _dims(dim, input._data.ndim, "mean")
    if dim is None:
        return Mean.apply(input, dims=dims, keepdim=keepdim, dtype=np_dtype)
    if _function_module.active_dispatch is not None:
        _function_module.note_given(MeanDim, input, given_dims=_dims_as_called(dim))
    return _keep_given_dims(MeanDim.apply(input, dims=dims, keepdim=keepdim, dtype=np_dtype), dim, dims)


class MeanDim(Mean):
    node_name = "MeanBackward1"  # torch's mean(dim) overload
    dims_given = True
    label = "mean"
    rule = "shares the gradient equally along the reduced dims: ∂/∂aᵢ = 1/n, n their size"
    formula = "mean({0})"
    saved_attributes = {**Mean.saved_attributes, "_saved_dim": SavedValue(_dims_as_given),
                        "_saved_keepdim": ctx_value("keepdim")}


class MeanBesideVariance(Mean):
    """The mean var_mean and std_mean return. torch takes it from the variance's Welford pass, which
    accumulates float32, float16 and bfloat16 in float64 and rounds once: torch.mean's float32 sum
    differs from it in the last bit for most inputs."""

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        if x.size == 0:  # torch fills both results of an empty input with a (positive) quiet NaN
            return _nan_filled(Mean.forward(ctx, x, dims, keepdim))
        if x.dtype == np.complex64:  # torch's complex var_mean takes each part's mean apart
            real = MeanBesideVariance.forward(ctx, x.real, dims, keepdim)
            return real + 1j * MeanBesideVariance.forward(ctx, x.imag, dims, keepdim)
        if x.dtype.itemsize > 4 or x.dtype.kind == "c":
            return Mean.forward(ctx, x, dims, keepdim)
        return Mean.forward(ctx, x.astype(np.float64), dims, keepdim).astype(x.dtype, copy=False)


# ---------------------------------------------------------------- helpers for the reductions below
def _as_array(x, reduced=None, xp=None) -> np.ndarray:
    """A reduction's result as a C-ordered ndarray: NumPy returns scalars for 0-d results, and
    keeps a transposed input's order (and a kept dim's stride) where torch's reductions return
    contiguous tensors. (NumPy's reduction of a 0-d, 1-d or row-major ``reduced`` needs no
    restriding; ``xp``, the caller's array module where it has one, spares looking it up.)"""
    if reduced is not None and (reduced.ndim < 2 or reduced.flags.c_contiguous):
        return (xp or array_module(reduced)).asarray(x, order="C")
    return row_major(x)


def _keep(t: Tensor, shape: tuple, dims: tuple, keepdim: bool) -> Tensor:
    """A reduced tensor with its reduced dims reinserted as size 1 (broadcasts against the input)."""
    if keepdim or not dims:
        return t
    return t.reshape(tuple(1 if i in dims else s for i, s in enumerate(shape)))


def _unsqueeze_multiple(t: Tensor, shape: tuple, dims: tuple | None, keepdim: bool) -> Tensor:
    """``t`` with the reduced ``dims`` reinserted as size 1, as torch's derivative formulas do it
    (unsqueeze_multiple: one unsqueeze per dim, ascending, so a recorded walk shows torch's
    UnsqueezeBackward0 nodes); ``dims`` None is torch's empty dim list (a reduction over all
    elements whose dim was not given: the 0-d ``t`` broadcasts as it is). Where nothing records,
    the one reshape of ``_keep``."""
    if keepdim or not dims or not shape:
        return t
    if not is_recording(t):
        return _keep(t, shape, dims, keepdim)
    for dim in sorted(dims):
        t = t.unsqueeze(dim)
    return t


def _float_dtype_input(input: Tensor, dtype, to_overload: str | None = None) -> Tensor:
    """Cast to ``dtype`` if given, else integer/bool inputs to the default float dtype (torch's rule).
    ``to_overload``: the ``Tensor.to`` overload torch's cast goes through, for a dispatch mode's log
    (softmax's ``toType`` is to.dtype_layout: its _to_copy shows the layout and device)."""
    if dtype is None and input._data.dtype.kind in "fVc":  # (before the import: a µs a call)
        return input
    from .elementwise import ToCopy, _cast

    if dtype is not None:
        if to_overload is not None and _function_module.active_dispatch is not None:
            _function_module.note_given(ToCopy, input, to_overload=to_overload)
        return _cast(input, _dtype.to_dtype(dtype))
    return _cast(input, _dtype.get_default_dtype())


def _check_nonempty(x: np.ndarray, dims: tuple, op: str) -> None:
    for d in dims:
        if x.shape[d] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")


def _check_nonempty_as_given(x: np.ndarray, dim, op: str) -> None:
    # amax/amin check each dim in the given order, before repeated dims, and name it as given (-1, not 1)
    for d in (dim if isinstance(dim, (list, tuple)) else (dim,)):
        if x.ndim and x.shape[_wrap_dim(d, x.ndim, op)] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")


def _single_dim(dim, ndim: int, op: str) -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}(): argument 'dim' must be int, not {type(dim).__name__}")
    return _wrap_dim(int(dim), ndim, op)


_RETURN_TYPES = {name: getattr(return_types, name) for name in
                 ("max", "min", "sort", "topk", "median", "nanmedian", "kthvalue", "mode", "cummax",
                                                     "cummin")}


# ---------------------------------------------------------------- prod
# torch's CPU prod of a contiguous run (binary_kernel_reduce_vec, Reduce.h's vectorized_reduction) keeps four
# Vectorized accumulators over blocks of 4 vectors, folds them ((a0 a1)(a2 a3)), multiplies the lanes left to
# right, then the tail beyond the last whole block left to right. A vector is 32 bytes (AVX2), 64 where torch
# dispatches to AVX512. A whole reduction of 32768 elements or more is split among threads: left to NumPy.
_PROD_VECTOR_BYTES = 64 if cpu_features.AVX512_CORE else 32
_PROD_SERIAL_LIMIT = 32768  # (torch's GRAIN_SIZE)


def _product_of_contiguous_runs(x: np.ndarray, dims, keepdim: bool, dtype) -> np.ndarray | None:
    """prod of a float32/float64 C-contiguous array over all its dims or its last one, multiplied in the order
    of torch's kernel (see above), or None where NumPy's order is left (other dims and dtypes, short runs)."""
    if type(x) is not np.ndarray or x.ndim == 0 or x.dtype not in (np.float32, np.float64):
        return None
    whole = dims is None or tuple(sorted(d % x.ndim for d in dims)) == tuple(range(x.ndim))
    if whole and x.size >= _PROD_SERIAL_LIMIT:
        return None
    if whole and x.flags.f_contiguous and not x.flags.c_contiguous:  # (torch's iterator: in memory order)
        x = x.ravel(order="F").reshape(x.shape[::-1])
    if not x.flags.c_contiguous or not whole and tuple(d % x.ndim for d in dims) != (x.ndim - 1,):
        return None
    data = x if dtype is None else x.astype(dtype)
    if data.dtype not in (np.float32, np.float64):
        return None
    lanes = _PROD_VECTOR_BYTES // data.itemsize
    length = x.size if whole else x.shape[-1]
    if length < 4 * lanes or x.size == 0:  # (left to right: NumPy's order too)
        return None
    rows = data.reshape(-1, length)
    blocks = length // (4 * lanes)
    # the blocks' running products, lane by lane (NumPy multiplies down a non-last axis in order)
    accumulators = np.multiply.reduce(rows[:, :blocks * 4 * lanes].reshape(len(rows), blocks, 4 * lanes), axis=1)
    a = accumulators.reshape(len(rows), 4, lanes)
    folded = (a[:, 0] * a[:, 1]) * (a[:, 2] * a[:, 3])
    # the lanes, then the tail, left to right (a reduction down the transposed rows keeps that order)
    ordered = np.concatenate([folded, rows[:, blocks * 4 * lanes:]], axis=1)
    if len(rows) == 1:  # (NumPy would reduce one column as a contiguous run: a running product instead)
        out = np.cumprod(ordered[0])[-1:]
    else:
        out = np.multiply.reduce(np.ascontiguousarray(ordered.T), axis=0)
    if whole:
        return out.reshape((1,) * x.ndim if keepdim else ())
    return out.reshape(x.shape[:-1] + ((1,) if keepdim else ()))


class Prod(Function):
    label = "prod"
    rule = "∂/∂aᵢ = the product of the other elements"
    formula = "prod({0})"
    _array_forward = True
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        xp = array_module(x)
        out = _product_of_contiguous_runs(x, dims, keepdim, dtype)
        if out is None:
            out = _as_array(xp.prod(x, axis=dims, keepdims=keepdim, dtype=dtype), x)
        ctx.save_for_backward(x, out)
        ctx.dims = dims
        ctx.keepdim = keepdim
        return out

    @staticmethod
    @conjugate_rule
    def backward(ctx, grad):
        # d prod = sum_i (prod_{k != i} x_k) dx_i; without zeros prod_{k != i} x_k = out / x_i
        xp = array_module(grad)
        x, out = ctx.saved_values
        shape, dims = x._data.shape, ctx.dims
        if not x._data.ndim:
            return grad
        if ctx._forward_cls is ProdDim and not ctx.keepdim:  # (torch's prod_backward unsqueezes both;
            grad, out = grad.unsqueeze(dims[0]), out.unsqueeze(dims[0])  # a whole prod's 0-d ones broadcast)
        zeros = int(xp.count_nonzero(x._data == 0))
        if not zeros:
            return grad * (out / x)  # (torch's order: out / x first)
        if ctx._forward_cls is ProdDim:
            return _prod_safe_zeros(grad, x, dims[0])
        # torch's whole prod: the flattened input's products of others; plain zeros where two elements are 0
        # and no graph is recorded (under create_graph the products, whose own gradient is not 0)
        if zeros > 1 and not is_grad_enabled():
            return Tensor._make(xp.zeros(shape, dtype=grad._data.dtype))
        return _prod_safe_zeros(grad, x.reshape(-1), 0).reshape(shape)


def _prod_safe_zeros(grad: Tensor, x: Tensor, dim: int) -> Tensor:
    """grad · prod_{k != i} x_k along ``dim`` as torch's prod_safe_zeros_backward rounds it: the product of
    the elements before i times the product of those after i, each an exclusive cumprod (exact with zeros)."""
    from .creation import ones
    from .shape import cat

    n = x._data.shape[dim]
    if not x._data.size:
        return grad.expand_as(x)
    one = ones(x._data.shape[:dim] + (1,) + x._data.shape[dim + 1:], dtype=grad.dtype, device=grad.device)
    before = cumprod(cat([one, x.narrow(dim, 0, n - 1)], dim), dim)
    after = cumprod(cat([one, x.narrow(dim, 1, n - 1).flip(dim)], dim), dim).flip(dim)
    return grad * (before * after)


def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.prod over all elements or one dim; the gradient is exact with zeros in the input."""
    np_dtype = _dtype.to_dtype(dtype).np if dtype is not None else (
        np.int64 if input._data.dtype.kind in "biu" else None)
    if dim is not None:
        d = _single_dim(dim, input._data.ndim, "prod")
        dims = (d,) if input._data.ndim else ()
    else:
        dims = tuple(range(input._data.ndim))
        keepdim = False
    if dtype is not None:
        _dtype.refuse_wide_unsigned("reduce.prod", np.dtype(np_dtype))
    if _function_module.active_dispatch is not None:
        # (a mode sees the dim and dtype as given, as sum's: an integer input's int64 is the kernel's)
        _function_module.note_given(Prod if dim is None else ProdDim, input, shown_dtype=dtype, given_dim=dim)
    if dim is None:
        return Prod.apply(input, dims=dims, keepdim=keepdim, dtype=np_dtype)
    return _note_given(ProdDim.apply(input, dims=dims, keepdim=keepdim, dtype=np_dtype), "given_dim", dim)


class ProdDim(Prod):
    node_name = "ProdBackward1"  # torch's prod(dim) overload
    saved_attributes = {"_saved_dim": SavedValue(lambda node: as_uint64(getattr(node, "given_dim", node.dims[0]))),
                        "_saved_keepdim": ctx_value("keepdim"), "_saved_result": saved(1), "_saved_self": saved(0)}
    label = "prod"
    rule = "∂/∂aᵢ = the product of the other elements along the dim"
    formula = "prod({0})"


# ---------------------------------------------------------------- var, std
def _given_dims(node):
    """torch's _saved_dim of a reduction over optional dims: None when none were given, else each
    as given (a negative one as the C++ node's unsigned)."""
    given = getattr(node, "given_dims", None)
    return None if given is None else tuple(as_uint64(d) for d in given)


class Var(Function):
    label = "var"
    rule = "∂/∂aᵢ = 2(aᵢ - mean)/(n - correction)"
    formula = "var({0})"
    _array_forward = True
    saved_attributes = {"_saved_correction": SavedValue(lambda node: getattr(node, "given_correction", None)),
                        "_saved_dim": SavedValue(_given_dims), "_saved_keepdim": ctx_value("keepdim"),
                        "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        ctx.save_for_backward(x)
        Var._note_reduction(ctx, x, dims, correction, keepdim)
        return _variance(x, dims, correction, keepdim, ctx.dof, take_sqrt=False)

    @staticmethod
    def _note_reduction(ctx, x, dims, correction, keepdim) -> None:
        ctx.dims = dims
        ctx.keepdim = keepdim
        n = math.prod(x.shape[d] for d in dims) if dims else 1
        ctx.dof = builtins.max(0, n - correction)  # torch divides by max(0, N - correction)
        ctx.n_minus_correction = n - correction  # ...but its gradient by N - correction itself

    @staticmethod
    def backward(ctx, grad):
        # d var = 2 (x - mean) / (n - correction) dx, in torch's var_backward's ops: with no dim given,
        # the mean of all elements (MeanBackward0); else the grad unsqueezed at each dim (an input of
        # more than one dim) and the mean over the dims kept
        x = ctx.saved_values[0]
        dims = ctx.dims
        given = getattr(ctx, "given_dims", dims)  # (None: no dim given; a node made inside another op keeps none)
        if given is None or not x._data.ndim:
            if ctx.n_minus_correction <= 0:
                # no degrees of freedom: 2 / dof is inf, and nan where x is its mean (inf · 0), as torch
                # (a complex input's gradient has imaginary 0)
                from .elementwise import where

                return (grad * where(x == mean(x), float("nan"), float("inf"))).to(x.dtype)
            centered = x - mean(x)
        else:
            centered = x - mean(x, dims, keepdim=True)
            if x._data.ndim > 1:  # (a 1-d input's 0-d grad broadcasts as it is)
                grad = _unsqueeze_multiple(grad, x._data.shape, dims, ctx.keepdim)
        # scale before multiplying by the centered values, so huge inputs do not overflow first (as torch)
        scale = 2.0 / ctx.n_minus_correction if ctx.n_minus_correction else float("inf")
        return MulNumber.apply(grad, number=scale) * centered


def _nan_filled(out):
    """``out`` (a reduction of an empty input) filled with a positive quiet NaN, as torch's
    ``result.fill_(quiet_NaN)`` for var, std, var_mean and std_mean of no elements."""
    return array_module(out).full_like(out, np.nan)


def _variance(x, dims: tuple, correction, keepdim: bool, dof: int, take_sqrt: bool):
    """var (or std) of ``x`` over ``dims`` in ``x``'s dtype. torch's CPU kernel accumulates float32,
    float16 and bfloat16 in float64 (Welford over dims; a float64 sum of squared deviations for a
    full reduction) and takes the root before rounding once to the dtype: a float32 two-pass
    variance differs from it in the last bit for most inputs."""
    xp = array_module(x)
    if x.dtype.kind == "c":
        # torch adds the parts' variances, each rounded to the real dtype, then takes the root
        out = (_variance(x.real, dims, correction, keepdim, dof, take_sqrt=False)
               + _variance(x.imag, dims, correction, keepdim, dof, take_sqrt=False))
        return _as_array(xp.sqrt(out), out) if take_sqrt else out
    wide = x.astype(np.float64) if x.dtype.itemsize <= 4 else x
    if x.size == 0:  # torch fills the variance of no elements instead of dividing 0 by 0 (and NumPy's
        # mean of them would warn "Mean of empty slice": silencing that with catch_warnings on every call
        # would reset each caller's once-per-line warning registry, so it is never computed)
        return _as_array(_nan_filled(xp.sum(wide, axis=dims, keepdims=keepdim)), x).astype(x.dtype, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        if x.dtype == np.float32 and x.size and x.size == math.prod(x.shape[d] for d in dims):
            # one result: torch centres on the float32 mean (its std_var_all_cpu), which moves the
            # last bit of a variance small against the mean
            center = xp.mean(x, axis=dims, keepdims=True).astype(np.float64)
        else:
            center = xp.mean(wide, axis=dims, keepdims=True)
        out = xp.sum((wide - center) ** 2, axis=dims, keepdims=keepdim) / wide.dtype.type(dof)
        if take_sqrt:
            out = xp.sqrt(out)
    return _as_array(out, x).astype(x.dtype, copy=False)


def _var_args(op: str, input: Tensor, dim, unbiased, keepdim, correction):
    if isinstance(dim, bool):  # legacy var(input, unbiased)
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise RuntimeError(f"{op}: can't specify both unbiased and correction")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    if input._data.dtype.kind not in "fVc":
        # torch's words: var and std share theirs, var_mean and std_mean each name itself
        raise RuntimeError(f"{'std and var' if op in ('var', 'std') else op} only support floating point and "
                           "complex dtypes")
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None
    dims = _dims(dim, input._data.ndim, op)
    n = math.prod(input._data.shape[d] for d in dims) if dims else 1
    if n - correction <= 0:
        warnings.warn(f"{op}(): degrees of freedom is <= 0. Correction should be strictly less than the "
                      "reduction factor (input numel divided by output numel). (Triggered internally at "
                      "/__w/pytorch/pytorch/aten/src/ATen/native/ReduceOps.cpp:1861.)", UserWarning,
                      stacklevel=user_stacklevel())
    return dims, correction, keepdim


def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """torch.var: ``sum((x - mean)^2) / (N - correction)``; ``unbiased=False`` means correction 0."""
    correction_given = correction is not None or unbiased is not None
    dims, correction, keepdim = _var_args("var", input, dim, unbiased, keepdim, correction)
    return _note_var_arguments(Var.apply(input, dims=dims, correction=correction, keepdim=keepdim), dim,
                               correction_given, correction)


def _note_var_arguments(out: Tensor, dim, correction_given: bool, correction: int) -> Tensor:
    """``out`` with var/std's arguments kept on its node as torch's reports them: the dims as given
    (None for none), and the correction only where torch's chosen overload keeps one (a dim,
    ``unbiased`` or ``correction`` given)."""
    node = out._grad_fn
    if node is not None:
        if isinstance(dim, bool):  # legacy var(input, unbiased): no dim, an unbiased
            dim, correction_given = None, True
        node.given_dims = None if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
        if correction_given or dim is not None:
            node.given_correction = correction
    return out


class Std(Var):
    """sqrt(var) fused, because torch's rule masks the gradient where std is 0 (a constant
    slice): 0 there, where sqrt's 1 / (2 std) times var's zero centered values would be NaN."""

    label = "std"
    rule = "∂/∂aᵢ = (aᵢ - mean)/((n - correction)·std), 0 where std = 0"
    formula = "std({0})"
    saved_attributes = {**Var.saved_attributes, "_saved_result": saved(1)}

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        Var._note_reduction(ctx, x, dims, correction, keepdim)
        out = _variance(x, dims, correction, keepdim, ctx.dof, take_sqrt=True)  # the root before rounding
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        # d std = d var / (2 std), taken as 0 where std is 0
        out = ctx.saved_values[1]
        # torch's std_backward: (grad / (result * 2)).masked_fill_(result == 0, 0)
        scaled = (grad / MulNumber.apply(out, number=2)).masked_fill(Tensor._make(out._data == 0), 0)
        return Var.backward(ctx, scaled)


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """torch.std: the square root of ``var`` (same ``correction`` / ``unbiased`` arguments)."""
    correction_given = correction is not None or unbiased is not None
    dims, correction, keepdim = _var_args("std", input, dim, unbiased, keepdim, correction)
    return _note_var_arguments(Std.apply(input, dims=dims, correction=correction, keepdim=keepdim), dim,
                               correction_given, correction)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """torch.var_mean: the tuple ``(var, mean)`` over the same dims."""
    correction_given = correction is not None or unbiased is not None
    dims, correction, keepdim = _var_args("var_mean", input, dim, unbiased, keepdim, correction)
    variance = _note_var_arguments(Var.apply(input, dims=dims, correction=correction, keepdim=keepdim), dim,
                                   correction_given, correction)
    # torch records one node with two outputs; ours are two, both named as torch's
    return name_node((variance, MeanBesideVariance.apply(input, dims=dims, keepdim=keepdim)), "VarMeanBackward0",
                     saved=_VAR_MEAN_SAVED, kept=_var_mean_kept(variance, input, keepdim))


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """torch.std_mean: the tuple ``(std, mean)`` over the same dims."""
    correction_given = correction is not None or unbiased is not None
    dims, correction, keepdim = _var_args("std_mean", input, dim, unbiased, keepdim, correction)
    deviation = _note_var_arguments(Std.apply(input, dims=dims, correction=correction, keepdim=keepdim), dim,
                                    correction_given, correction)
    return name_node((deviation, MeanBesideVariance.apply(input, dims=dims, keepdim=keepdim)), "StdMeanBackward0",
                     saved=_STD_MEAN_SAVED, kept=_var_mean_kept(deviation, input, keepdim))


# torch's one var_mean / std_mean node keeps its arguments as given, its input and (std_mean) its std
_VAR_MEAN_SAVED = {"_saved_correction": kept_value("correction"), "_saved_dim": kept_value("dim"),
                   "_saved_keepdim": kept_value("keepdim"), "_saved_self": kept_value("self", tensor=True)}
# (the std is read from the Std node's own saved output: kept there, the node would hold its output, a cycle)
_STD_MEAN_SAVED = {**_VAR_MEAN_SAVED, "_saved_result0": saved(1)}


def _var_mean_kept(first: Tensor, input: Tensor, keepdim: bool):
    node = first._grad_fn
    if node is None:
        return None
    return {"correction": getattr(node, "given_correction", None), "dim": _given_dims(node), "keepdim": keepdim,
            "self": input}


# ---------------------------------------------------------------- max, min and friends
class Amax(Function):
    """amax/amin (and the full max()/min()): ties share the gradient evenly, as in torch."""

    label = "amax"
    rule = "routes the gradient to the largest elements (split evenly among ties)"
    formula = "amax({0})"
    _array_forward = True
    saved_attributes = {"_saved_dim": SavedValue(lambda node: tuple(as_uint64(d) for d in getattr(node, "given_dims",
                                                                                                  node.dims))),
                        "_saved_keepdim": ctx_value("keepdim"), "_saved_result": saved(1), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, dims, keepdim, largest):
        xp = array_module(x)
        out = _as_array((xp.max if largest else xp.min)(x, axis=dims, keepdims=keepdim), x)
        ctx.save_for_backward(x, out)
        ctx.dims = dims
        ctx.keepdim = keepdim
        ctx.in_transform = _function_module.func_transforms.active > 0
        return out

    @staticmethod
    def backward(ctx, grad):
        # the gradient goes to the elements equal to the extremum, split evenly among them
        xp = array_module(grad)
        x, out = ctx.saved_values
        shape, dims = x._data.shape, ctx.dims
        value, kept_grad = _keep(out, shape, dims, ctx.keepdim), _keep(grad, shape, dims, ctx.keepdim)
        if ctx._forward_cls.nan_is_equal:
            return _split_among_equal(grad, x, value, kept_grad, dims, nan_is_equal=True,
                                      spread=_spreads(ctx, xp))
        # amax/amin: torch's mask * (grad / count), so a NaN extremum matches nothing and its
        # slice's gradient is 0 * (grad / 0) = NaN; max()/min()/median() give it to the NaNs
        if _function_module.tracing_ops:  # (in ops, which a vmap's replay runs on the batch: vmap(grad(amax)))
            from .elementwise import eq

            mask = eq(x, value)
            return kept_grad / mask.sum(dims, keepdim=True, dtype=grad.dtype) * mask.to(grad.dtype)
        mask = x._data == value._data
        count = xp.sum(mask, axis=dims, keepdims=True, dtype=grad._data.dtype)
        return kept_grad / Tensor._make(count) * Tensor._make(mask.astype(grad._data.dtype))

    nan_is_equal = False


def _spreads(ctx, xp) -> bool:
    """Whether a full max()/min()/median()'s backward takes torch's ``mask * (grad / count)`` (a NaN
    or infinite gradient reaching every element, 0 * inf = NaN) rather than its CPU fast path's
    zeros filled at the mask: torch's evenly_distribute_backward takes the product for functorch's
    wrapped tensors (inputs seen under grad/vjp/vmap/jacrev..., or a backward run under one) and for
    CUDA inputs."""
    return (getattr(ctx, "in_transform", False) or _function_module.func_transforms.active > 0
            or bool(_function_module.tracing_ops) or xp is not np)


def _split_among_equal(grad: Tensor, x: Tensor, value: Tensor, kept_grad: Tensor, dims: tuple,
                       nan_is_equal: bool = False, spread: bool = False) -> Tensor:
    """``kept_grad`` split evenly among the elements of ``x`` equal to ``value`` (NaN to NaN with
    ``nan_is_equal``); 0 elsewhere, or with ``spread`` torch's ``mask * share``, in which a NaN or
    infinite share makes the other elements NaN too (finite shares give the same bits either way)."""
    xp = array_module(grad)
    from .elementwise import mul, where

    if _function_module.tracing_ops:  # (in ops, which a vmap's replay runs on the batch: vmap(grad(max)))
        from .elementwise import eq, logical_and, logical_or, ne

        found = eq(x, value)
        if nan_is_equal and x._data.dtype.kind in "fV":
            found = logical_or(found, logical_and(ne(x, x), ne(value, value)))
        share = kept_grad / found.sum(dims, keepdim=True, dtype=grad.dtype) if dims else kept_grad
        return share * found.to(grad.dtype) if spread else where(found, share, 0.0)
    mask = x._data == value._data
    if nan_is_equal and x._data.dtype.kind in "fV":
        mask |= xp.isnan(x._data) & xp.isnan(value._data)
    if not spread and not grad._data.ndim and x._data.ndim:
        # a full reduction's 0-d gradient, as torch's evenly_distribute_backward takes it on the CPU:
        # zeros(x.shape).masked_fill_(mask, grad / mask.sum()), one MaskedFillBackward1 under create_graph
        share = grad / Tensor._make(xp.asarray(xp.count_nonzero(mask), dtype=grad._data.dtype))
        return Tensor._make(xp.zeros(x._data.shape, dtype=grad._data.dtype)).masked_fill(Tensor._make(mask), share)
    count = xp.sum(mask, axis=dims, keepdims=True, dtype=grad._data.dtype) if dims else None
    share = kept_grad / Tensor._make(count) if count is not None else kept_grad
    if spread:
        return mul(share, Tensor._make(mask.astype(grad._data.dtype)))
    return where(Tensor._make(mask), share, 0.0)


class AmaxAll(Amax):
    node_name = "MaxBackward1"
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}
    label = "max"
    rule = "routes the gradient to the largest element (split evenly among ties)"
    formula = "max({0})"
    nan_is_equal = True


class AminAll(Amax):
    node_name = "MinBackward1"
    saved_attributes = AmaxAll.saved_attributes
    label = "min"
    rule = "routes the gradient to the smallest element (split evenly among ties)"
    formula = "min({0})"
    nan_is_equal = True


class Amin(Amax):
    node_name = "AminBackward0"
    label = "amin"
    rule = "routes the gradient to the smallest elements (split evenly among ties)"
    formula = "amin({0})"


class Gather(Function):
    """Values picked along ``dim`` at ``index`` (unique per slice); the gradient goes back there."""

    label = "gather"
    rule = "writes the gradient back at the positions that were picked along the dim, zeros elsewhere"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, index, dim, keepdim):
        xp = array_module(x)
        ctx.index = index
        ctx.dim = dim
        ctx.keepdim = keepdim
        ctx.shape = x.shape
        # (1-d and 2-d inputs: the fancy index take_along_axis would build, without its Python-level checks)
        if x.ndim == 1:
            out = x[index]
        elif x.ndim == 2 and dim in (0, 1, -1, -2):
            out = x[index, xp.arange(x.shape[1])] if dim in (0, -2) else x[xp.arange(x.shape[0])[:, None], index]
        else:
            out = xp.take_along_axis(x, index, axis=dim)
        return out if keepdim else out.squeeze(dim)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdim:
            grad = grad.unsqueeze(ctx.dim)
        return ScatterAlong.apply(grad, index=ctx.index, dim=ctx.dim, shape=ctx.shape)


class ScatterAlong(Function):
    """zeros(shape) with ``grad`` written at ``index`` along ``dim``: Gather's adjoint."""

    _array_forward = True
    # torch's value-selecting reductions (max/min(dim), sort, topk, kthvalue, median, mode) record their
    # gradient as zeros(sizes).scatter(dim, indices, grad)
    node_name = "ScatterBackward0"
    label = "scatter"
    rule = "gathers the gradient at the same index (a value-selecting reduction's backward, recorded under create_graph)"

    @staticmethod
    def forward(ctx, grad, index, dim, shape):
        xp = array_module(grad)
        ctx.index = index
        ctx.dim = dim
        out = xp.zeros(shape, dtype=grad.dtype)
        xp.put_along_axis(out, index, grad, axis=dim)
        return out

    @staticmethod
    def backward(ctx, grad):
        return Gather.apply(grad, index=ctx.index, dim=ctx.dim, keepdim=True)


class ScatterAddAlong(ScatterAlong):
    """Like ScatterAlong, but indices may repeat along ``dim``: their gradients are summed."""

    node_name = "ScatterAddBackward0"  # (cummax/cummin's backward: torch's zeros.scatter_add(dim, indices, grad))
    label = "scatter_add"
    rule = "gathers the gradient at the same index (cummax/cummin's backward, recorded under create_graph)"

    @staticmethod
    def forward(ctx, grad, index, dim, shape):
        xp = array_module(grad)
        ctx.index = index
        ctx.dim = dim
        out = xp.zeros(shape, dtype=grad.dtype)
        full = tuple(index if d == dim else xp.arange(n).reshape((-1,) + (1,) * (len(shape) - d - 1))
                     for d, n in enumerate(shape))
        ufunc_at(xp, "add", out, full, grad)
        return out


def _kept_indices(node) -> Tensor:
    return Tensor._make((node.index if node.keepdim else node.index.squeeze(node.dim)).astype(np.int64, copy=False))


class CumExtremum(Gather):
    """cummax/cummin values: an index may repeat along ``dim``, so the gradient is summed there."""

    params_from_values = True  # (index: where the values are)

    label = "cumulative extremum"
    rule = "adds each gradient into the position of the running extremum it copied (repeats summed)"

    @staticmethod
    def backward(ctx, grad):
        return ScatterAddAlong.apply(grad, index=ctx.index, dim=ctx.dim, shape=ctx.shape)


class Cummax(CumExtremum):
    node_name = "CummaxBackward0"
    # torch's names: the dim as given, the indices, the input (handed over as torch_kept)
    saved_attributes = {"_saved_dim": SavedValue(lambda node: as_uint64(getattr(node, "given_dim", node.dim))),
                        "_saved_indices": SavedValue(_kept_indices, tensor=True),
                        "_saved_self": kept_value("self", tensor=True)}
    label = "cummax"
    rule = "adds each gradient into the position of the running maximum it copied (repeats summed)"


class Cummin(CumExtremum):
    node_name = "CumminBackward0"
    saved_attributes = Cummax.saved_attributes
    label = "cummin"
    rule = "adds each gradient into the position of the running minimum it copied (repeats summed)"


def _traced(op, **arguments):
    """Where a vmap records its ops (_vmap_batched): ``op`` (sort, topk, kthvalue, median, mode,
    max/min by dim, argmax, argmin: ops along one dim whose indices no Function computes) called
    as one recorded op, which the replay runs once on the batch with the dim behind the batch dim,
    as torch's batching rule of the op runs it; None where the op is to run on unrecorded (inside
    that call, or a call the record takes otherwise)."""
    return _function_module.traced_call(op, arguments)


class MaxDim(Gather):
    node_name = "MaxBackward0"
    # torch's names; the dim as given (a negative one as the C++ node's unsigned)
    saved_attributes = {"_saved_dim": SavedValue(lambda node: as_uint64(getattr(node, "given_dim", node.dim))),
                        "_saved_indices": SavedValue(_kept_indices, tensor=True),
                        "_saved_keepdim": ctx_value("keepdim"), "_saved_self_sym_sizes": input_sizes(0)}
    label = "max"
    rule = "routes the gradient to the largest element along the dim (the returned index)"
    formula = "max({0})"


class MinDim(Gather):
    node_name = "MinBackward0"
    saved_attributes = MaxDim.saved_attributes
    label = "min"
    rule = "routes the gradient to the smallest element along the dim (the returned index)"
    formula = "min({0})"


# torch's names for sort's and topk's nodes: the dim as given, the (full) indices, the input's sizes
_SORTED_SAVED = {"_saved_dim": SavedValue(lambda node: as_uint64(getattr(node, "given_dim", node.dim))),
                 "_saved_indices": SavedValue(lambda node: Tensor._make(node.index.astype(np.int64, copy=False)),
                                              tensor=True),
                 "_saved_self_sym_sizes": input_sizes(0)}


class SortValues(Gather):
    params_from_values = True  # (index: where the values are)
    node_name = "SortBackward0"
    saved_attributes = _SORTED_SAVED
    label = "sort"
    rule = "scatters the gradient back to the elements' original positions"

    @staticmethod
    def forward(ctx, x, index, dim, keepdim):
        # torch's sort writes into empty_like(input): a transposed input gives transposed values
        return preserve_layout(Gather.forward(ctx, x, index, dim, keepdim), x)


class TopkValues(Gather):
    params_from_values = True  # (index: where the values are)
    node_name = "TopkBackward0"
    saved_attributes = _SORTED_SAVED
    label = "topk"
    rule = "scatters the gradient to the k chosen positions, 0 elsewhere"


class MedianDim(Gather):
    params_from_values = True  # (index: where the values are)
    saved_attributes = MaxDim.saved_attributes
    node_name = "MedianBackward1"
    label = "median"
    rule = "routes the gradient to the median element along the dim"


class NanmedianDim(Gather):
    params_from_values = True  # (index: where the values are)
    saved_attributes = MaxDim.saved_attributes
    node_name = "NanmedianBackward1"
    label = "nanmedian"
    rule = "routes the gradient to the median of the non-NaN elements along the dim"


class KthvalueValues(Gather):
    params_from_values = True  # (index: where the values are)
    saved_attributes = MaxDim.saved_attributes
    node_name = "KthvalueBackward0"
    label = "kthvalue"
    rule = "routes the gradient to the k-th smallest element"


class ModeValues(Gather):
    params_from_values = True  # (index: where the values are)
    saved_attributes = MaxDim.saved_attributes
    node_name = "ModeBackward0"
    label = "mode"
    rule = "routes the gradient to the chosen element"


# what a 0-d input's renamed last node (a reshape back from the 1-element tensor) explains
_ZERO_D_RULE = "0-d input: reshapes the gradient back onto the 1-element tensor the op ran on (the step below)"


def _select_along(cls, input: Tensor, index: np.ndarray, dim: int, keepdim: bool, name: str, given_dim=None):
    """(values, indices) of ``input`` at ``index`` (keepdim-shaped) along ``dim``, torch-style;
    ``given_dim``: the dim as the caller gave it, for the node's ``_saved_dim``."""
    xp = array_module(input)
    if input._data.ndim == 0:
        values = cls.apply(input.reshape(1), index=index.reshape(1), dim=0, keepdim=True).reshape(())
        return _RETURN_TYPES[name](name_node(values, cls._node_cls.__name__, label=cls.label, rule=_ZERO_D_RULE),
                                   Tensor._make(xp.zeros((), np.int64)))
    values = cls.apply(input, index=index, dim=dim, keepdim=keepdim)
    if given_dim is not None and values._grad_fn is not None:
        values._grad_fn.given_dim = given_dim
    # (a handler's: index was found on a wrapper's placeholder, the handler's on its values)
    indices = _function_module.dispatched_indices(values) if _function_module.active_dispatch is not None else None
    if indices is None:
        indices = Tensor._make((index if keepdim else index.squeeze(dim)).astype(np.int64, copy=False))
    result = _RETURN_TYPES[name](values, indices)
    if _vmap_frames._frames:  # no Function saw the indices: batched where input is (``int(x.sort()[1][0])``)
        _vmap_frames.note_results((input,), None, result)
    return result


def _max_min(op: str, input: Tensor, dim, keepdim: bool, largest: bool):
    xp = array_module(input)
    from .elementwise import maximum, minimum

    if isinstance(dim, Tensor):  # torch.max(a, b) is maximum
        return maximum(input, dim) if largest else minimum(input, dim)
    x = input._data
    if x.dtype.kind == "c":
        raise NotImplementedError(f"\"{op}_all\" not implemented for '{_COMPLEX_NAMES[x.dtype.itemsize]}'")
    _dtype.refuse_wide_unsigned(f"reduce.{op}_all" if dim is None else f"reduce.{op}", x)
    if dim is None:
        if x.size == 0:
            raise RuntimeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0. "
                               "Specify the reduction dim with the 'dim' argument.")
        return (AmaxAll if largest else AminAll).apply(input, dims=tuple(range(x.ndim)), keepdim=False, largest=largest)
    d = _single_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return _select_along(MaxDim if largest else MinDim, input, xp.zeros((), np.int64), 0, keepdim, op)
    _check_nonempty(x, (d,), op)
    if input._wrapper_strides is not None and _function_module.active_dispatch is not None:
        return _max_min_of_wrapper(op, input, d, keepdim, largest)
    index = (xp.argmax if largest else xp.argmin)(x, axis=d, keepdims=True)
    result = _select_along(MaxDim if largest else MinDim, input, index, d, keepdim, op)
    node = result[0]._grad_fn
    if node is not None:
        node.given_dim = dim  # torch's _saved_dim
    return result


def _max_min_of_wrapper(op: str, input: Tensor, d: int, keepdim: bool, largest: bool):
    """max/min along ``d`` of a wrapper subclass, whose values are inside it: its handler answers
    ``aten.max.dim``; where a gradient is recorded, the values are taken again as the sum along ``d``
    of the input where the index points (zeros elsewhere), so the gradient reaches that index alone."""
    from .creation import arange, zeros_like
    from .elementwise import where

    found = _function_module.factory_dispatch(f"{op}.dim", max if largest else min, (input, d, keepdim), {})
    if found is _function_module.RUN_UNDISPATCHED or not (is_grad_enabled() and input.requires_grad):
        return found
    index = found.indices if keepdim else found.indices.unsqueeze(d)
    positions = arange(input.shape[d]).reshape([-1 if i == d else 1 for i in range(input.dim())])
    values = where(index == positions, input, zeros_like(input)).sum(d, keepdim=keepdim)
    return _RETURN_TYPES[op](values, found.indices)


def max(input: Tensor, dim=None, keepdim: bool = False, *, other=None):
    """torch.max: ``max()`` returns the largest value (ties share the gradient evenly);
    ``max(dim)`` returns ``(values, indices)`` with the first maximal index, which alone gets
    the gradient; ``max(a, b)`` and ``max(a, other=b)`` are ``maximum``."""
    if _function_module.tracing_ops and (
            found := _traced(max, input=input, dim=dim, keepdim=keepdim, other=other)) is not None:
        return found
    return _max_min("max", input, _other_or_dim("max", dim, keepdim, other), keepdim, True)


def min(input: Tensor, dim=None, keepdim: bool = False, *, other=None):
    """torch.min: like ``max`` (ties share the full reduction's gradient; ``min(dim)`` routes it
    to the returned first index)."""
    if _function_module.tracing_ops and (
            found := _traced(min, input=input, dim=dim, keepdim=keepdim, other=other)) is not None:
        return found
    return _max_min("min", input, _other_or_dim("min", dim, keepdim, other), keepdim, False)


def _other_or_dim(op: str, dim, keepdim: bool, other):
    """torch's ``max(input, other=t)`` overload names its tensor ``other``; it takes no dim or keepdim."""
    if other is None:
        return dim
    if dim is not None:
        raise TypeError(f"{op}() received an invalid combination of arguments - got (Tensor, other=Tensor, dim=int)")
    if keepdim:
        raise TypeError(f'{op}() missing 1 required positional arguments: "dim"')
    return other


_COMPLEX_NAMES = {8: "ComplexFloat", 16: "ComplexDouble"}


def _amax_amin(op: str, input: Tensor, dim, keepdim: bool, largest: bool) -> Tensor:
    x = input._data
    if x.dtype.kind == "c":
        raise NotImplementedError(f"\"{op[1:]}_values_cpu\" not implemented for '{_COMPLEX_NAMES[x.dtype.itemsize]}'")
    _dtype.refuse_wide_unsigned(f"reduce.{op}", x)
    if dim == () or dim == []:
        if x.size == 0:
            raise RuntimeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0. "
                               "Specify the reduction dim with the 'dim' argument.")
        dim = None
    if x.size == 0 and dim is not None:
        _check_nonempty_as_given(x, dim, op)
    dims = _dims(dim, x.ndim, op)
    out = (Amax if largest else Amin).apply(input, dims=dims, keepdim=keepdim, largest=largest)
    given = () if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    return _note_given(out, "given_dims", given)


def _note_given(out: Tensor, name: str, value) -> Tensor:
    """``out`` with the argument ``value`` as the user gave it kept on its node (if recorded):
    torch's _saved_dim reports a dim as given, a negative one as the C++ node's unsigned."""
    node = out._grad_fn
    if node is not None:
        setattr(node, name, value)
    return out


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """torch.amax over ``dim`` (all dims by default); ties split the gradient evenly, as in torch."""
    return _amax_amin("amax", input, dim, keepdim, True)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """torch.amin over ``dim`` (all dims by default); ties split the gradient evenly, as in torch."""
    return _amax_amin("amin", input, dim, keepdim, False)


def _arg_extremum(op: str, input: Tensor, dim, keepdim: bool, largest: bool) -> Tensor:
    if _function_module.active_dispatch is not None:
        # a mode, or a wrapper subclass (whose values are inside it), answers aten.argmax / aten.argmin,
        # given torch's arguments (those after the input up to the last one not left at its default)
        args = (input, dim, keepdim) if keepdim else (input,) if dim is None else (input, dim)
        made = _function_module.factory_dispatch(op, argmax if largest else argmin, args, {})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    xp = array_module(input)
    x = input._data
    if x.dtype.kind in "cb":
        raise RuntimeError(f"{op}(): does not support {'complex' if x.dtype.kind == 'c' else 'bool'} input")
    _dtype.refuse_float8(x.dtype, f"{op}_cpu")
    _dtype.refuse_wide_unsigned(f"reduce.{op}", x)
    find = xp.argmax if largest else xp.argmin
    if dim is None:
        if x.size == 0:
            raise IndexError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0.")
        index = find(x.reshape(-1))
        return Tensor._make(xp.asarray(index, dtype=np.int64).reshape((1,) * x.ndim if keepdim else ()))
    d = _single_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return Tensor._make(xp.zeros((), np.int64))
    _check_nonempty(x, (d,), op)
    return Tensor._make(find(x, axis=d, keepdims=keepdim).astype(np.int64, copy=False))


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """torch.argmax: the index of the first maximal value (flattened when ``dim`` is None)."""
    if _function_module.tracing_ops and (found := _traced(argmax, input=input, dim=dim, keepdim=keepdim)) is not None:
        return found
    out = _arg_extremum("argmax", input, dim, keepdim, True)
    if _vmap_frames._frames:  # no Function saw it: batched where input is (``int(x.argmax())``)
        _vmap_frames.note_results((input,), None, out)
    return out


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """torch.argmin: the index of the first minimal value (flattened when ``dim`` is None)."""
    if _function_module.tracing_ops and (found := _traced(argmin, input=input, dim=dim, keepdim=keepdim)) is not None:
        return found
    out = _arg_extremum("argmin", input, dim, keepdim, False)
    if _vmap_frames._frames:  # no Function saw it: batched where input is (``int(x.argmin())``)
        _vmap_frames.note_results((input,), None, out)
    return out


# ---------------------------------------------------------------- logsumexp, softmax
def _logsumexp_array(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    # shift by the max so exp never overflows; an infinite max is not shifted by. A complex x is
    # shifted by its real parts' max, as torch's (a complex max would move the log's branch by 2π)
    xp = array_module(x)
    m = xp.max(x.real if x.dtype.kind == "c" else x, axis=axis, keepdims=True) if x.size else xp.zeros(
        tuple(1 if i in (axis if isinstance(axis, tuple) else (axis,)) else s for i, s in enumerate(x.shape)), x.dtype)
    m = xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False)
    # torch's exp and log, rounded as its kernels round (NumPy's float32 ones are an ulp off often)
    with np.errstate(divide="ignore"):
        terms = _exp_array(x - m)
        total = None
        if terms.dtype in _sum_order.REPLAYED and type(terms) is np.ndarray and x.ndim:
            # torch's kernel sums the terms with its sum: in its order (_sum_order), to the bit
            dims = axis if isinstance(axis, tuple) else (axis,)
            total = _sum_order.sum_dims(terms, tuple(sorted({d % x.ndim for d in dims})), True)
        if total is None:
            total = xp.sum(terms, axis=axis, keepdims=True)
        out = _log_array(total) + m
    return _as_array(out if keepdims else xp.squeeze(out, axis=axis))


class Logsumexp(Function):
    label = "logsumexp"
    rule = "∂/∂a = softmax(a)"
    formula = "logsumexp({0})"
    _array_forward = True
    saved_attributes = Amax.saved_attributes  # the same names: dims as given, keepdim, result, self

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        out = _logsumexp_array(x, dims, keepdim)
        ctx.save_for_backward(x, out)
        ctx.dims = dims
        ctx.keepdim = keepdim
        return out

    @staticmethod
    def backward(ctx, grad):
        # d logsumexp = softmax(x) dx = exp(x - out) dx (conjugated for complex x: holomorphic)
        from .elementwise import exp

        x, out = ctx.saved_values
        shape, dims = x._data.shape, ctx.dims
        weights = exp(x - _unsqueeze_multiple(out, shape, dims, ctx.keepdim))
        return _unsqueeze_multiple(grad, shape, dims, ctx.keepdim) * _conj(weights)


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    """torch.logsumexp: ``log(sum(exp(x)))`` over ``dim``, computed without overflow."""
    if not isinstance(keepdim, (bool, np.bool_)):
        raise TypeError(f"logsumexp(): argument 'keepdim' (position 3) must be bool, not {type(keepdim).__name__}")
    input = _float_dtype_input(input, None)
    if not keepdim and isinstance(dim, (list, tuple)) and not dim and input.ndim and input.numel():
        # torch's kernel: the max is kept with all dims as 1s and added in place into a 0-d sum
        raise broadcast_refusal((), (1,) * input.ndim)
    dims = _dims(dim, input._data.ndim, "logsumexp")
    if _function_module.active_dispatch is not None:  # (a mode sees the dims as given)
        _function_module.note_given(Logsumexp, input, given_dims=_dims_as_called(dim))
    out = Logsumexp.apply(input, dims=dims, keepdim=keepdim)
    return _note_given(out, "given_dims", (dim,) if isinstance(dim, int) else tuple(dim))


class Softmax(Function):
    label = "softmax"
    rule = "∂/∂a = s ∘ (g - ⟨g, s⟩) with s the saved output"
    formula = "softmax({0})"
    _array_forward = True
    saved_attributes = {"_saved_dim": SavedValue(lambda node: as_uint64(int(getattr(node, "given_dim", node.dim)))),
                        "_saved_result": saved(0)}

    @staticmethod
    def forward(ctx, x, dim):
        xp = array_module(x)
        if xp is not np and dim in (-1, x.ndim - 1) and _cuda_kernels.available(x):
            e = _cuda_kernels.softmax(x, dim)  # CuPy: one fused launch instead of five passes
        else:
            # subtracting the max keeps exp in range: huge logits give no inf/NaN
            x = xp.asarray(x, order="C")  # torch's softmax output is contiguous whatever the input's strides
            if xp is np and x.size and x.ndim and dim in (-1, x.ndim - 1):
                e = _softmax_last_dim(x)
            else:
                e = x - xp.max(x, axis=dim, keepdims=True) if x.size else x.copy()
                xp.exp(e, out=e)
                e /= xp.sum(e, axis=dim, keepdims=True)
        ctx.save_for_backward(e)
        ctx.dim = dim
        return e

    @staticmethod
    def forward_widened(ctx, low, x, dim):
        """forward on a float32 ``x`` widened from the half-precision ``low`` (``_opmath.run``):
        torch's CPU kernel along any dim but the last (``_vec_softmax``) divides each exp by the
        float32 sum of the exps, but in its scalar columns writes the exp to the half-precision
        output first (``cpu_softmax_order.half_softmax_vectorized`` says which columns)."""
        if type(x) is not np.ndarray or not x.size or dim in (-1, x.ndim - 1):
            return Softmax.forward(ctx, x, dim)
        shape = x.shape
        outer, inner = math.prod(shape[:dim]), math.prod(shape[dim + 1:])
        e = x - np.max(x, axis=dim, keepdims=True)
        np.exp(e, out=e)
        sums = np.add.reduce(e, axis=dim, keepdims=True)
        vectorized = cpu_softmax_order.half_softmax_vectorized(outer, inner, _config.torch_intra_op_threads())
        e = np.where(vectorized.reshape(outer, 1, inner), e.reshape(outer, shape[dim], inner),
                     e.astype(low).astype(np.float32).reshape(outer, shape[dim], inner)).reshape(shape)
        e /= sums
        ctx.save_for_backward(e)
        ctx.dim = dim
        return e

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_values
        return SoftmaxBackward.apply(grad, y, dim=ctx.dim)


class SoftmaxBackward(Function):
    """z = y * (g - sum(g * y)) along ``dim``: softmax's gradient, y its output."""

    _array_forward = True
    node_name = "SoftmaxBackwardDataBackward0"
    label = "softmax_backward"
    rule = "∂/∂g = y ∘ (u - ⟨u, y⟩), ∂/∂y = u ∘ (g - ⟨g, y⟩) - g·⟨u, y⟩"
    formula = None

    @staticmethod
    def forward(ctx, grad, y, dim):
        ctx.dim = dim
        ctx.save_for_backward(grad, y)
        xp = array_module(grad)
        if xp is not np or grad.shape != y.shape or grad.dtype != y.dtype:
            return y * (grad - xp.sum(grad * y, axis=dim, keepdims=True))
        # y·(g - Σ g·y) with one buffer, a cached block of rows at a time along a last dim: the same
        # products, sums and roundings as the expression above
        if dim in (-1, y.ndim - 1) and y.ndim and y.size:  # (an empty one: its rows cannot be reshaped)
            return _backward_by_row_blocks(_softmax_backward_block, grad, y)
        out = np.multiply(grad, y)
        sums = np.add.reduce(out, axis=dim, keepdims=True)
        np.subtract(grad, sums, out=out)
        out *= y
        return out

    @staticmethod
    def backward(ctx, u):
        # z is bilinear in (g, y): ∂z/∂g is softmax's own Jacobian (so ḡ = SoftmaxBackward(u, y))
        grad, y = ctx.saved_values
        dim = ctx.dim
        needs = ctx.needs_input_grad
        grad_g = SoftmaxBackward.apply(u, y, dim=dim) if needs[0] else None
        grad_y = None
        if needs[1]:
            grad_y = u * (grad - sum(grad * y, dim, keepdim=True)) - grad * sum(u * y, dim, keepdim=True)
        return grad_g, grad_y


class LogSoftmax(Function):
    """Fused for stability: ``x - logsumexp(x)`` in the forward, ``g - softmax * sum(g)`` back."""

    label = "log_softmax"
    rule = "∂/∂a = g - softmax(a)·Σg"
    formula = "log_softmax({0})"
    _array_forward = True
    saved_attributes = {"_saved_dim": SavedValue(lambda node: as_uint64(int(getattr(node, "given_dim", node.dim)))),
                        "_saved_result": saved(0)}
    forward_state = ("softmax",)  # (without it the backward takes exp of the saved output)

    @staticmethod
    def forward(ctx, x, dim):
        xp = array_module(x)
        if xp is not np and dim in (-1, x.ndim - 1) and _cuda_kernels.available(x):
            out = _cuda_kernels.log_softmax(x, dim)  # CuPy: one fused launch
        elif xp is np and dim in (-1, x.ndim - 1) and x.size:
            # the CPU's exp is the costly pass: the softmax it yields is kept for the backward
            # (one array more) instead of being recomputed there as exp(out)
            out, softmax = _log_softmax_last_dim(x, keep_softmax=ctx.needs_input_grad[0])
            if softmax is not None:
                ctx.softmax = softmax
        else:
            x = xp.asarray(x, order="C")  # as Softmax
            out = x - xp.max(x, axis=dim, keepdims=True) if x.size else x.copy()
            terms = xp.exp(out)
            if xp is np and x.dtype == np.float32 and x.size:
                # torch adds down the dim in order; NumPy does so too unless the dims after it
                # are all of size 1 (then it adds pairwise, as along a last dim)
                if math.prod(x.shape[dim:][1:]) == 1 and x.shape[dim] >= 8:
                    rows = np.moveaxis(terms, dim, -1).reshape(-1, x.shape[dim])
                    sums = cpu_softmax_order.add_in_order(rows).reshape(out.shape[:dim] + (1,) + out.shape[dim + 1:])
                else:
                    sums = np.add.reduce(terms, axis=dim, keepdims=True)
                out -= cpu_softmax_order.logf(sums)
            else:
                out -= xp.log(xp.sum(terms, axis=dim, keepdims=True))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def forward_widened(ctx, low, x, dim):
        """forward on a float32 ``x`` widened from the half-precision ``low`` (``_opmath.run``):
        torch's CPU kernel along the last dim (``_vec_log_softmax_lastdim``) keeps each row's sum,
        then its log, in the half-precision dtype."""
        if type(x) is not np.ndarray or not x.size or dim not in (-1, x.ndim - 1):
            return LogSoftmax.forward(ctx, x, dim)
        # (no softmax kept: torch's backward takes exp of the half-precision output)
        out, _ = _log_softmax_last_dim(x, keep_softmax=False, low=low)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_values
        return LogSoftmaxBackward.apply(grad, y, dim=ctx.dim, softmax=getattr(ctx, "softmax", None))


# The CPU softmax paths work through blocks of rows of about this many elements, so that a
# block's arrays (three of 128 KiB) stay in the core's cache between the passes over it (max,
# subtract, exp, sum, log), and split the rows over the thread budget. Every row is computed by
# the same sequence of NumPy calls as in one whole-array pass, so the log-softmax is
# bit-identical to it.
_SOFTMAX_BLOCK_ELEMENTS = 1 << 15


# NumPy reduces a short last axis one row at a time (about 80 ns a row, 11 µs for 128 rows of
# 10 classes); over the rows of a transposed copy the same maximum is a handful of whole-row
# vector maximums, 4x faster there. The copy is made a cached block of rows at a time (a whole
# large array transposed at once misses the cache); wider rows, or few, reduce faster in place.
_NARROW_ROW = 64
_MANY_ROWS = 64


def _row_max(rows: np.ndarray) -> np.ndarray:
    """The maximum of each row of a 2-d NumPy array, as an (n, 1) column. A maximum is exact, so
    either route gives the same values."""
    count, cols = rows.shape
    if cols > _NARROW_ROW or count < _MANY_ROWS:
        return np.maximum.reduce(rows, axis=1, keepdims=True)
    out = np.empty((count, 1), rows.dtype)
    step = _SOFTMAX_BLOCK_ELEMENTS // cols
    for first in range(0, count, step):
        block = np.ascontiguousarray(rows[first:first + step].T)
        np.maximum.reduce(block, axis=0, out=out[first:first + step, 0])
    return out


def _over_row_blocks(work, rows: int, cols: int) -> None:
    """``work(start, stop)`` over blocks of rows of ``_SOFTMAX_BLOCK_ELEMENTS``, the blocks split
    over the thread budget."""
    if rows * cols <= _SOFTMAX_BLOCK_ELEMENTS:  # one block, one piece: no split to plan
        work(0, rows)
        return
    step = builtins.max(1, _SOFTMAX_BLOCK_ELEMENTS // builtins.max(cols, 1))

    def piece(start, stop):
        for first in range(start, stop, step):
            work(first, builtins.min(first + step, stop))

    over_rows(piece, rows, rows * cols)


def _softmax_last_dim(x: np.ndarray) -> np.ndarray:
    """softmax of a C-contiguous NumPy array along its last dim, one cached block of rows at a time
    (the passes over a block find it in the cache: 128 x 1000 float32, 1.3x faster than whole-array
    passes); every row the same operations as a whole-array pass, so the same bits."""
    cols = x.shape[-1]
    x_rows = x.reshape(-1, cols)
    out = np.empty(x.shape, x.dtype)
    out_rows = out.reshape(-1, cols)

    def block(start, stop):
        eb = out_rows[start:stop]
        xb = x_rows[start:stop]
        np.subtract(xb, _row_max(xb), out=eb)
        np.exp(eb, out=eb)
        # torch's _vec_softmax_lastdim adds each row in its vector lanes and multiplies by the
        # sum's reciprocal (rows of 8 to 15 floats: 62 % of elements an ulp off its, 38 % with
        # these two; the rest is its exp_u20, NumPy's exp here)
        sums = cpu_softmax_order.row_sum(eb) if eb.dtype == np.float32 else np.add.reduce(eb, axis=1, keepdims=True)
        eb *= np.reciprocal(sums, out=sums)

    _over_row_blocks(block, x_rows.shape[0], cols)
    return out


def _backward_by_row_blocks(block, grad: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A softmax backward along the last dim of C-contiguous NumPy ``grad`` and ``values`` (the
    forward's softmax) of one shape: ``block(out, grad, values)`` on each cached block of their rows
    (``_over_row_blocks``), writing that block of one fresh array like ``values``, returned."""
    cols = values.shape[-1]
    grad_rows = grad.reshape(-1, cols)
    value_rows = values.reshape(-1, cols)
    out = np.empty(values.shape, values.dtype)
    out_rows = out.reshape(-1, cols)
    _over_row_blocks(lambda start, stop: block(out_rows[start:stop], grad_rows[start:stop], value_rows[start:stop]),
                     len(value_rows), cols)
    return out


def _softmax_backward_block(out: np.ndarray, grad: np.ndarray, y: np.ndarray) -> None:
    # y·(g - Σ g·y) per row
    np.multiply(grad, y, out=out)
    sums = np.add.reduce(out, axis=1, keepdims=True)
    np.subtract(grad, sums, out=out)
    out *= y


def _log_softmax_last_dim(x: np.ndarray, keep_softmax: bool, low=None):
    """log_softmax of a NumPy array along its last dim, and (with ``keep_softmax``) the softmax,
    both C-contiguous; else (out, None). ``low``: the half-precision dtype a float32 ``x`` was
    widened from, in which torch's kernel keeps each row's sum and then its log."""
    cols = x.shape[-1]
    x_rows = np.ascontiguousarray(x).reshape(-1, cols)
    if _NARROW_COLS.get(x.dtype, 0) > cols and x.size <= _SOFTMAX_BLOCK_ELEMENTS and len(x_rows) > 1:
        out, softmax = _log_softmax_narrow_rows(x_rows, keep_softmax, low)
        return out.reshape(x.shape), None if softmax is None else softmax.reshape(x.shape)
    out = np.empty(x.shape, x.dtype)
    out_rows = out.reshape(-1, cols)
    softmax = np.empty(x.shape, x.dtype) if keep_softmax else None
    softmax_rows = softmax.reshape(-1, cols) if keep_softmax else None

    def block(start, stop):
        xb, ob = x_rows[start:stop], out_rows[start:stop]
        np.subtract(xb, _row_max(xb), out=ob)  # exp stays in range
        eb = softmax_rows[start:stop] if keep_softmax else np.empty_like(ob)
        np.exp(ob, out=eb)
        if x.dtype == np.float32:  # nearer torch's order and logf (see cpu_softmax_order)
            sums = cpu_softmax_order.row_sum(eb)
            if low is None:
                ob -= cpu_softmax_order.logf(sums)
            else:
                ob -= cpu_softmax_order.logf(sums.astype(low).astype(np.float32)).astype(low).astype(np.float32)
        else:
            sums = np.add.reduce(eb, axis=1, keepdims=True)
            ob -= np.log(sums)
        if keep_softmax:
            eb /= sums

    _over_row_blocks(block, x_rows.shape[0], cols)
    return out, softmax


# Rows narrower than these are added by the row paths in the order NumPy adds down the columns of
# their transpose: left to right (NumPy's pairwise sum adds fewer than 8 in order; float32 rows of 8
# to 15 are added in order by cpu_softmax_order.add_in_order on an AVX-512 CPU)
_NARROW_COLS = {np.dtype(np.float32): 8 if cpu_softmax_order.LANES == 8 else 16, np.dtype(np.float64): 8}


def _log_softmax_narrow_rows(x_rows: np.ndarray, keep_softmax: bool, low=None):
    """``_log_softmax_last_dim`` of a small (count > 1, cols) array of narrow rows, worked on its
    transpose: each pass is then a few long vector operations where along the rows it is ``count``
    short ones (the max, the sum, and the broadcast subtract, log and divide against a column),
    about 4x faster for (64, 10). The same max, exp, in-order sums and roundings as the row
    path, so the same bits."""
    columns = np.ascontiguousarray(x_rows.T)  # (cols, count)
    np.subtract(columns, np.maximum.reduce(columns, axis=0), out=columns)  # exp stays in range
    exps = np.exp(columns)
    sums = np.add.reduce(exps, axis=0)  # down the columns: each row's terms left to right
    if x_rows.dtype != np.float32:
        columns -= np.log(sums)
    elif low is None:
        columns -= cpu_softmax_order.logf(sums)
    else:
        columns -= cpu_softmax_order.logf(sums.astype(low).astype(np.float32)).astype(low).astype(np.float32)
    if not keep_softmax:
        return columns.T.copy(), None
    exps /= sums
    return columns.T.copy(), exps.T.copy()


def _row_sums_down_columns(rows: np.ndarray) -> np.ndarray:
    """``np.add.reduce(rows, axis=1)`` of a (count, cols < 128) array, the same bits, as a few long
    operations on its transpose where NumPy runs one short reduction per row (many narrow rows:
    about 3x faster for (500, 4), 1.3x for (2000, 15)). NumPy's pairwise sum of fewer than 8 adds
    left to right; of 8 to 128 keeps eight running sums (elements j, j + 8, ...), adds them as
    ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the last n % 8 in order."""
    columns = np.ascontiguousarray(rows.T)
    cols = columns.shape[0]
    if cols < 8:
        return np.add.reduce(columns, axis=0)
    whole = cols - cols % 8
    lanes = columns[:8].copy()
    for first in range(8, whole, 8):
        lanes += columns[first:first + 8]
    total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    for column in columns[whole:]:
        total += column
    return total


def _log_softmax_backward_block(out: np.ndarray, grad: np.ndarray, softmax: np.ndarray) -> None:
    # g - softmax·Σ g per row
    count, cols = grad.shape
    if cols < 16 and count * cols >= (1024 if cols < 8 else 6144):
        sums = _row_sums_down_columns(grad)[:, None]
    else:
        sums = np.add.reduce(grad, axis=1, keepdims=True)
    np.multiply(softmax, sums, out=out)
    np.subtract(grad, out, out=out)


class LogSoftmaxBackward(Function):
    """z = g - exp(y) * sum(g) along ``dim``: log_softmax's gradient, y its output."""

    _array_forward = True
    node_name = "LogSoftmaxBackwardDataBackward0"
    label = "log_softmax_backward"
    rule = "∂/∂g = u - Σ(u ∘ exp(y)), ∂/∂y = -u ∘ exp(y)·Σg"
    formula = None

    @staticmethod
    def forward(ctx, grad, y, dim, softmax=None):
        ctx.dim = dim
        ctx.save_for_backward(grad, y)
        xp = array_module(grad)
        if softmax is not None and xp is np:  # exp(y), kept by LogSoftmax's CPU path
            return _backward_by_row_blocks(_log_softmax_backward_block, grad, softmax)
        return grad - xp.exp(y) * xp.sum(grad, axis=dim, keepdims=True)

    @staticmethod
    def backward(ctx, u):
        from .elementwise import exp

        grad, y = ctx.saved_values
        dim = ctx.dim
        needs = ctx.needs_input_grad
        softmax_y = exp(y)
        grad_g = u - sum(u * softmax_y, dim, keepdim=True) if needs[0] else None
        grad_y = -(u * softmax_y) * sum(grad, dim, keepdim=True) if needs[1] else None
        return grad_g, grad_y


def implicit_softmax_dim(op: str, ndim: int, stacklevel: int) -> int:
    """The dim torch picks for a softmax given none, with torch's deprecation warning; ``stacklevel``
    counts from this function's caller's caller (as torch's ``_stacklevel`` arguments do), so
    each entry point can make the warning name its user's line."""
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to "
                  "include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_dim(op: str, input: Tensor, dim) -> int:
    ndim = input._data.ndim
    if dim is None:
        dim = implicit_softmax_dim(op, ndim, stacklevel=4)
    if isinstance(dim, Tensor) and dim._data.dtype.kind in "iu" and dim._data.size == 1:
        dim = int(dim.item())  # torch's parser reads a one-element integer tensor as an int
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        # reached from F.softmax, which torch runs as input.softmax(dim): dim is position 1
        raise TypeError(f"{op}(): argument 'dim' (position 1) must be int, not {type(dim).__name__}")
    return _single_dim(dim, ndim, op)


def _check_softmax_input(op: str, input: Tensor, d: int, dtype) -> Tensor | None:
    """torch has no integer or complex CPU softmax kernel (an empty input it returns as it is):
    pass a real floating ``dtype``, which the input is converted to first."""
    target = _dtype.to_dtype(dtype) if dtype is not None else input.dtype
    if target.is_floating_point or (target.is_complex and type(input._data) is not np.ndarray):
        return None
    if input._data.size == 0:
        return input.detach().clone() if dtype is None else input.detach().to(target).clone()
    kernel = f"{op}_lastdim_kernel_impl" if d in (-1, input._data.ndim - 1) else f"{op}_kernel_impl"
    raise NotImplementedError(f'"{kernel}" not implemented for \'{_dtype.scalar_name(target)}\'')


def _keep_given_dim(out: Tensor, dim, d: int) -> Tensor:
    """``out`` with a negative ``dim`` kept on its node as given: torch's _saved_dim reports it so."""
    if dim is not None and dim != d and out._grad_fn is not None:
        out._grad_fn.given_dim = dim
    return out


def _plain_softmax_dim(input: Tensor, dim, dtype) -> int | None:
    """The wrapped ``dim`` of the common softmax call, where none of the checks and casts below
    applies (an int dim in range of a real floating input of one or more dims, no dtype, no dispatch
    mode), else None."""
    ndim = input._data.ndim
    if type(dim) is int and dtype is None and ndim and -ndim <= dim < ndim and input._data.dtype.kind == "f" \
            and _function_module.active_dispatch is None:
        return dim + ndim if dim < 0 else dim
    return None


def _softmax_out_dispatch(name: str, function, input: Tensor, dim, dtype):
    """An out= call of softmax/log_softmax to a dispatch mode as torch's one <name>.int_out (its dtype
    positional), not the _softmax it computes with; RUN_UNDISPATCHED for any other call."""
    note = _function_module.pending_out
    if _function_module.active_dispatch is None or note is None or note[1] != name:
        return _function_module.RUN_UNDISPATCHED
    return _function_module.composite_dispatch(f"{name}.int", function,
                                               (input, dim) if dtype is None else (input, dim, dtype), {})


def softmax(input: Tensor, dim=None, dtype=None) -> Tensor:
    """torch.softmax along ``dim`` (computed in ``dtype`` if given), stable for huge logits."""
    d = _plain_softmax_dim(input, dim, dtype)
    if d is not None:
        return _keep_given_dim(Softmax.apply(input, dim=d), dim, d)
    if (made := _softmax_out_dispatch("softmax", softmax, input, dim, dtype)) is not _function_module.RUN_UNDISPATCHED:
        return made
    d = _softmax_dim("softmax", input, dim)
    empty = _check_softmax_input("softmax", input, d, dtype)
    if empty is not None:
        return empty
    input = _float_dtype_input(input, dtype, "dtype_layout")
    if input._data.ndim == 0:
        return name_node(Softmax.apply(input.reshape(1), dim=0).reshape(()), "SoftmaxBackward0", label="softmax",
                         rule=_ZERO_D_RULE)
    if _function_module.active_dispatch is not None:
        _function_module.note_given(Softmax, input, given_dim=dim)
    return _keep_given_dim(Softmax.apply(input, dim=d), dim, d)


def log_softmax(input: Tensor, dim=None, dtype=None) -> Tensor:
    """torch.log_softmax along ``dim`` (fused and stable; computed in ``dtype`` if given)."""
    d = _plain_softmax_dim(input, dim, dtype)
    if d is not None:
        return _keep_given_dim(LogSoftmax.apply(input, dim=d), dim, d)
    if (made := _softmax_out_dispatch("log_softmax", log_softmax, input, dim, dtype)) is not _function_module.RUN_UNDISPATCHED:
        return made
    d = _softmax_dim("log_softmax", input, dim)
    empty = _check_softmax_input("log_softmax", input, d, dtype)
    if empty is not None:
        return empty
    input = _float_dtype_input(input, dtype, "dtype_layout")
    if input._data.ndim == 0:
        return name_node(LogSoftmax.apply(input.reshape(1), dim=0).reshape(()), "LogSoftmaxBackward0",
                         label="log_softmax", rule=_ZERO_D_RULE)
    if _function_module.active_dispatch is not None:
        _function_module.note_given(LogSoftmax, input, given_dim=dim)
    return _keep_given_dim(LogSoftmax.apply(input, dim=d), dim, d)


# ---------------------------------------------------------------- cumulative ops
def _running_total(xp, x, axis: int, dtype, op: str = "cumsum"):
    """The running total along ``axis`` that serves both cumulative ops: sums for ``op="cumsum"``
    (cumsum and its reversed backward), products for ``op="cumprod"``. Kept as torch's CPU kernel
    keeps it: float32 in float64, complex64 in complex128 and float16/bfloat16 in float32 (its
    acc_type), each total rounded to the result's dtype; NumPy's keeps the total in the result's
    dtype. The input is converted to ``dtype`` first, as torch's ``self.to(dtype)``."""
    result = np.dtype(dtype) if dtype is not None else x.dtype
    if xp is not np:
        return getattr(xp, op)(x, axis=axis, dtype=dtype)
    if result == np.complex64:
        wide = np.complex128
    elif result.kind in "fV" and result.itemsize <= 4:
        wide = np.float64 if result == np.float32 else np.float32
    else:
        return _numpy_running_total(x, axis, dtype, op)
    return _numpy_running_total(x.astype(result, copy=False), axis, wide, op).astype(result)


def _numpy_running_total(x: np.ndarray, axis: int, dtype, op: str) -> np.ndarray:
    """``np.cumsum``/``np.cumprod`` of ``x`` along ``axis`` in ``dtype``, the same numbers faster on a
    short axis. NumPy's accumulate runs one inner loop per position of the other axes, so a running
    total along a short axis of a big array (causal linear attention's prefix sums over a chunk of
    a (batch, heads, n, d, e) tensor) costs ~3x torch's time; combining whole slices, each with
    the one before, makes the same sums in the same order in n array-wide steps."""
    n = x.shape[axis]
    if x.size < 64 * n * n:  # rows few or long: the per-row inner loops are the cheaper way
        return getattr(np, op)(x, axis=axis, dtype=dtype)
    out = x.astype(dtype if dtype is not None else x.dtype)
    running = np.moveaxis(out, axis, 0)
    combine = np.add if op == "cumsum" else np.multiply
    for i in range(1, n):
        combine(running[i - 1], running[i], out=running[i])
    return out


class Cumsum(Function):
    label = "cumsum"
    rule = "reverse cumulative sum of the gradient"
    formula = "cumsum({0})"
    _array_forward = True
    saved_attributes = {"_saved_dim": SavedValue(lambda node: as_uint64(getattr(node, "given_dim", node.dim)))}

    @staticmethod
    def forward(ctx, x, dim, dtype):
        xp = array_module(x)
        ctx.dim = dim
        ctx.input_dtype = x.dtype
        return _running_total(xp, xp.asarray(x, order="C"), dim, dtype)  # contiguous, as torch's

    @staticmethod
    def backward(ctx, grad):
        # y_j = sum_{i <= j} x_i, so dx_i = sum_{j >= i} g_j: a reversed cumulative sum, summed in
        # the input's dtype (torch's cumsum_backward(grad.to(self.scalar_type()), dim): a float64
        # input summed with dtype=float32 gets its gradient's running sums in float64)
        if grad._data.dtype != ctx.input_dtype:
            grad = grad.to(_dtype.from_numpy_dtype(ctx.input_dtype))
        if grad._data.size <= 1 or grad._data.shape[ctx.dim] == 1:  # (torch's cumsum_backward: grad itself)
            return grad
        return _reversed_cumsum(grad, ctx.dim)


def _reversed_cumsum(grad: Tensor, dim: int) -> Tensor:
    """``Σ_{j ≥ i} g_j`` along ``dim``: one array op (ReverseCumsum) in a plain walk; recorded as
    torch's reversed_cumsum records it, ``grad.flip(dim).cumsum(dim).flip(dim)`` (its three nodes),
    under create_graph."""
    if _function_module.on_arrays(grad):
        return ReverseCumsum.apply(grad, dim=dim)
    return grad.flip(dim).cumsum(dim).flip(dim)


class ReverseCumsum(Function):
    """``sum_{j >= i} g_j`` along ``dim``: the adjoint of cumsum, as one array op where nothing
    records (``_reversed_cumsum``; under create_graph torch's three ops record instead)."""

    _array_forward = True
    node_name = "CumsumBackwardBackward0"
    label = "cumsum_backward"
    rule = "cumulative sum of the gradient (cumsum's backward, recorded as an op under create_graph)"

    @staticmethod
    def forward(ctx, grad, dim):
        xp = array_module(grad)
        ctx.dim = dim
        # (contiguous, as torch's flip leaves it: a flipped view's strides are negative)
        return xp.ascontiguousarray(xp.flip(_running_total(xp, xp.flip(grad, dim), dim, None), dim))

    @staticmethod
    def backward(ctx, grad):
        return Cumsum.apply(grad, dim=ctx.dim, dtype=None)


def _cumulative_dim(op: str, dim, axis) -> int:
    # dim is required, spelled positionally, as dim= or as NumPy's axis=
    if axis is None:
        raise TypeError(f'{op}() missing 1 required positional arguments: "dim"')
    return _numpy_names(op, dim, False, axis, None)[0]


def _cumulative(op: str, function_cls, input: Tensor, dim: int, dtype) -> Tensor:
    """Shared by cumsum/cumprod: dim checked, ints and bools accumulate in int64, 0-d kept 0-d."""
    d = _single_dim(dim, input._data.ndim, op)
    if dtype is not None:
        if _dtype.to_dtype(dtype) is _dtype.bool:  # torch's running-total kernels have no bool instance
            raise NotImplementedError(f"\"{op}_out_cpu\" not implemented for 'Bool'")
        np_dtype = _dtype.to_dtype(dtype).np
        _dtype.refuse_wide_unsigned(f"reduce.{op}", np.dtype(np_dtype))
    else:
        np_dtype = np.int64 if input._data.dtype.kind in "biu" else None
    if input._data.ndim == 0:
        out = function_cls.apply(input.reshape(1), dim=0, dtype=np_dtype).reshape(())
        return name_node(out, function_cls._node_cls.__name__, label=function_cls.label, rule=_ZERO_D_RULE)
    if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
        _function_module.note_given(function_cls, input, aten_call=(
            (op, "default"), (input, dim), {} if dtype is None else {"dtype": _dtype.to_dtype(dtype)}))
    return _note_given(function_cls.apply(input, dim=d, dtype=np_dtype), "given_dim", dim)


def check_cumulative_inplace(op: str, self: Tensor, dim, dtype, axis) -> None:
    """torch's refusals of ``self.cumsum_(dim, dtype=)`` / ``cumprod_`` before anything is written:
    the dim, then a ``dtype`` other than self's ("Bad in-place call"); the running total is kept in
    self's own dtype, for which bool has no kernel (a 0-d or empty self has nothing to add)."""
    if axis is not None or dim is None:
        dim = _cumulative_dim(op, dim, axis)
    _single_dim(dim, self._data.ndim, op)
    if dtype is not None and _dtype.to_dtype(dtype) is not self.dtype:
        raise RuntimeError(f"Bad in-place call: input tensor dtype {_dtype.cpp_type_name(self.dtype)} and output "
                           f"tensor dtype {_dtype.cpp_type_name(_dtype.to_dtype(dtype))} should match")
    if self.dtype is _dtype.bool and self._data.ndim and self._data.size:
        raise NotImplementedError(f"\"{op}_out_cpu\" not implemented for 'Bool'")


def cumsum(input: Tensor, dim: int | None = None, *, dtype=None, axis=None) -> Tensor:
    """torch.cumsum along ``dim``; integer and bool inputs accumulate in int64 as in torch."""
    if axis is not None or dim is None:
        dim = _cumulative_dim("cumsum", dim, axis)
    if dtype is not None and input.dtype in (_dtype.float16, _dtype.bfloat16) and _dtype.to_dtype(dtype) is input.dtype:
        dtype = None  # torch accumulates half precision in float32 whether or not dtype= names it
    return _cumulative("cumsum", Cumsum, input, dim, dtype)


class Cumprod(Function):
    label = "cumprod"
    rule = "∂/∂aᵢ = Σ_{j≥i} g_j·prod_j/aᵢ"
    formula = "cumprod({0})"
    _array_forward = True
    saved_attributes = {**Cumsum.saved_attributes, "_saved_self": saved(0), "_saved_result": saved(1)}

    @staticmethod
    def forward(ctx, x, dim, dtype):
        xp = array_module(x)
        out = _running_total(xp, xp.asarray(x, order="C"), dim, dtype, "cumprod")  # contiguous, as torch's
        ctx.save_for_backward(x, out)
        ctx.dim = dim
        return out

    @staticmethod
    @conjugate_rule
    def backward(ctx, grad):
        # dx_i = sum_{j >= i} g_j prod_{k <= j, k != i} x_k; without zeros that is revcumsum(g y)_i / x_i
        xp = array_module(grad)
        x, y = ctx.saved_values
        dim = ctx.dim
        if x._data.size <= 1 or x._data.shape[dim] == 1:  # (torch's cumprod_backward: grad itself)
            return grad
        if _vmap_frames._frames:  # (whether this slice has a zero says nothing of the others': no replay of it)
            _vmap_frames.note_value_read(x)
        if not xp.any(x._data == 0):
            return _reversed_cumsum(y * grad, dim) / x  # (torch's order: output times grad)
        # with zeros: row i of an n x n matrix holds x with x_i replaced by 1; its cumprod at
        # column j is prod_{k <= j, k != i} x_k, kept for j >= i (O(n^2), only when x has zeros)
        from .elementwise import where

        n = x._data.shape[dim]
        moved = x.movedim(dim, -1)
        square = moved.unsqueeze(-2).expand(*moved.shape[:-1], n, n)
        products = cumprod(where(Tensor._make(xp.eye(n, dtype=bool)), 1.0, square), -1)
        upper = Tensor._make(xp.triu(xp.ones((n, n), dtype=x._data.dtype)))
        g = grad.movedim(dim, -1).unsqueeze(-2)
        return sum(products * g * upper, -1).movedim(-1, dim)


def cumprod(input: Tensor, dim: int | None = None, *, dtype=None, axis=None) -> Tensor:
    """torch.cumprod along ``dim``; the gradient is exact with zeros in the input."""
    if axis is not None or dim is None:
        dim = _cumulative_dim("cumprod", dim, axis)
    return _cumulative("cumprod", Cumprod, input, dim, dtype)


# ---------------------------------------------------------------- norms
class Norm(Function):
    _array_forward = True
    node_name = "LinalgVectorNormBackward0"
    saved_attributes = {"_saved_dim": SavedValue(_given_dims), "_saved_keepdim": ctx_value("keepdim"),
                        "_saved_ord": SavedValue(lambda node: getattr(node, "given_ord", node.ord)),
                        "_saved_result": saved(1), "_saved_self": saved(0)}
    label = "norm"
    rule = "∂/∂a = a/‖a‖ for the 2-norm (0 at a = 0); sign(a)·|a|^(p-1)/‖a‖^(p-1) for a p-norm"
    formula = "norm({0})"

    @staticmethod
    def forward(ctx, x, ord, dims, keepdim):
        out = norm_of_array(x, ord, dims, keepdim)
        ctx.save_for_backward(x, out)
        ctx.ord = ord
        ctx.dims = dims
        ctx.keepdim = keepdim
        return out

    @staticmethod
    def backward(ctx, grad):
        # torch's norm_backward, op for op (its rounding, and its nodes under create_graph): the grad and
        # the norm unsqueezed at the dims given (none for a norm over all elements), then per order
        from .elementwise import abs
        from .special_functions import sgn

        x, out = ctx.saved_values
        shape, dims, ord = x._data.shape, ctx.dims, ctx.ord
        if ord == 0:
            # a count of nonzeros: torch's norm_backward returns an undefined gradient (no grad, not
            # zeros: never 0 * inf = nan, and autograd.grad calls the input unused)
            return None
        given_dims = None if getattr(ctx, "given_dims", dims) is None else dims
        grad = _unsqueeze_multiple(grad, shape, given_dims, ctx.keepdim)
        if ord == 1:
            # d |x|_1 = sign(x) dx
            return sgn(x) * grad
        norm = _unsqueeze_multiple(out, shape, given_dims, ctx.keepdim)
        if ord in (np.inf, -np.inf):
            # d max|x| = sign(x) at the maximal |x| (ties share evenly; NaN counts as maximal), as torch: mask * share
            return sgn(x) * _split_among_equal(grad, abs(x), norm, grad, dims, nan_is_equal=True, spread=True)
        zero = norm._data == 0
        recording = is_recording(x, grad)
        if ord == 2:
            # d |x|_2 = x / |x|_2 dx, taken as 0 at a zero norm (torch's choice; a tiny x whose squares
            # underflowed has a 0 norm and a 0 gradient). The unmasked x / norm is torch's too: differentiated
            # again at a zero norm it gives torch's nan (0 * (-x / 0²))
            direction = x / norm
            if recording or zero.any():  # (nothing to mask, and no node to show: the plain walk skips it)
                direction = direction.masked_fill(Tensor._make(zero), 0)
            return grad * direction
        if ord < 1:
            # d |x|_p = sign(x) |x|^(p-1) |x|_p^(1-p) dx, the factor |x|^(p-1) taken as 0 where x = 0
            magnitude = abs(x).pow(ord - 1).masked_fill(Tensor._make(x._data == 0), 0)
            return sgn(x) * magnitude * grad * norm.pow(1 - ord)
        # d |x|_p = sign(x) |x|^(p-1) / |x|_p^(p-1) dx (as x |x|^(p-2) from p = 2), 0 at the zero vector
        scaled_x = sgn(x) * abs(x).pow(ord - 1) if ord < 2 else x * abs(x).pow(ord - 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = grad / norm.pow(ord - 1)
        if recording or zero.any():
            share = share.masked_fill(Tensor._make(zero), 0)
        return scaled_x * share


def norm_of_array(x, ord: float, dims: tuple, keepdim: bool):
    """The ``ord``-norm of the real or float array ``x`` over ``dims``, in its dtype, as
    linalg.vector_norm's forward computes it (torch's float32 order of additions replayed)."""
    # float32 accumulates in float32 in torch: its order of additions shows in the last bits
    out = cpu_norm_order.vector_norm(x, ord, dims, keepdim) if type(x) is np.ndarray and \
        x.dtype == np.float32 else None
    if out is None:
        out = _any_order_norm(array_module(x), x, ord, dims, keepdim)
    return _as_array(out).astype(x.dtype, copy=False)


def _any_order_norm(xp, x, ord, dims: tuple, keepdim: bool):
    a = xp.abs(x)
    if ord == 2:
        return xp.sqrt(xp.sum(a * a, axis=dims, keepdims=keepdim))
    if ord == 1:
        return xp.sum(a, axis=dims, keepdims=keepdim)
    if ord == np.inf:
        return amax_with_initial(xp, a, dims, keepdim, 0)
    if ord == -np.inf:
        return xp.min(a, axis=dims, keepdims=keepdim)
    if ord == 0:
        return xp.sum(a != 0, axis=dims, keepdims=keepdim, dtype=x.dtype)
    with np.errstate(divide="ignore"):
        return xp.sum(a ** ord, axis=dims, keepdims=keepdim) ** (1.0 / ord)


def _vector_norm(input: Tensor, ord, dim, keepdim: bool, dtype, op: str) -> Tensor:
    _check_norm_input(input, "linalg.vector_norm")  # torch.norm's too: it is vector_norm in torch
    if isinstance(ord, str):
        raise RuntimeError(f"{op}: ord must be a number for vector norms, got '{ord}'")
    given_ord, ord = ord, float(ord)
    x = input._data
    if (ord < 0 or ord == np.inf) and x.size == 0:  # min/max-like norms have no value on empty input
        ord_name = f"{ord:g}"  # as C++ streams a double: -1, -0.5, inf
        if dim is None:
            raise RuntimeError(f"{op} cannot compute the {ord_name} norm on an empty tensor because the "
                               "operation does not have an identity")
        # each dim in the given order, before repeated dims, named as given; "because" unspaced as torch's
        for d in (dim if isinstance(dim, (list, tuple)) else (dim,)):
            if x.ndim and x.shape[_wrap_dim(d, x.ndim, op)] == 0:
                raise RuntimeError(f"{op} cannot compute the {ord_name} norm on the dimension {d}because "
                                   "this dimension is empty and the operation does not have an identity")
    if dtype is not None:
        _check_norm_dtype(input.dtype, dtype, "linalg.vector_norm")
    input = _float_dtype_input(input, dtype)
    if input._data.dtype.kind == "c":
        input = input.abs()  # a complex vector's norm is its moduli's (real, as torch's)
    x = input._data
    dims = _dims(dim, x.ndim, op)
    if _function_module.active_dispatch is not None:
        # (a mode sees ord and dim as given: 3, not 3.0; [-1], not [1])
        shown_dims = {} if dim is None else {"given_dims": _dims_as_called(dim)}
        _function_module.note_given(Norm, input, given_ord=given_ord, **shown_dims)
    out = Norm.apply(input, ord=ord, dims=dims, keepdim=keepdim)
    if out._grad_fn is not None:
        out._grad_fn.given_ord = given_ord
        out._grad_fn.given_dims = None if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    return out


def _check_norm_dtype(input_dtype, dtype, op: str) -> None:
    """torch's check_linalg_norm_dtype: a norm's ``dtype=`` is floating or complex as the input is, and
    no narrower than the input's."""
    if dtype is None:
        return
    dtype = _dtype.to_dtype(dtype)
    name = _dtype.scalar_name(dtype)
    if not (dtype.is_floating_point or dtype.is_complex):
        raise RuntimeError(f"{op}: dtype should be floating point or complex, but got {name}")
    if input_dtype.is_complex != dtype.is_complex:
        kind = "complex" if input_dtype.is_complex else "real"
        raise RuntimeError(f"{op}: dtype should be {kind} for {kind} inputs, but got {name}")
    if _dtype.promote_types(input_dtype, dtype) != dtype:
        raise RuntimeError(f"{op}: the dtype of the input ({_dtype.scalar_name(input_dtype)}) should be convertible "
                           f"without narrowing to the specified dtype ({name})")


def _check_norm_input(input: Tensor, op: str) -> None:
    """torch's norms take floating and complex tensors only, ``dtype=`` or not."""
    if isinstance(input, Tensor) and input._data.dtype.kind in "biu":
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. "
                           f"Got {_dtype.scalar_name(input.dtype)}")


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, out=None, dtype=None) -> Tensor:
    """torch.norm: the vector p-norm over ``dim`` (all elements by default); 'fro' is the 2-norm.

    ``p`` may be any number, ``inf``/``-inf`` (ties share the gradient evenly), 'fro' or 'nuc'
    (the sum of the singular values over two dims); the gradient of the 2-norm at the zero vector
    is 0, as in torch. ``out`` stands where torch's Python signature has it, before ``dtype``: the
    namespace's out= front takes it there (``namespace_with_out``).
    """
    if dim is not None:  # torch.norm hands dim to linalg's functions, whose parser unpacks each as an int64
        # (an int in a list of its own, as torch's Python puts it)
        dim = int_list([dim] if isinstance(dim, int) else dim, "linalg_vector_norm", "dim")
    if not isinstance(p, str) and p is not None:  # (and p to linalg_vector_norm's ord, a Number)
        p = check_number(p, "linalg_vector_norm", "ord", position=2)
    if p == "fro" or p is None:
        if dim is not None and len(dim) > 2:  # torch takes 'fro' over a tuple of dims as a matrix norm
            raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(str(d) for d in dim)}")
        p = 2
    elif p == "nuc":
        from .linalg import matrix_norm

        # torch.norm takes all the dims when none are given, and matrix_norm wants exactly two
        dims = tuple(range(input.dim())) if dim is None else dim
        if len(dims) != 2 and input.dim() >= 2:
            raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(str(d) for d in dims)}")
        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    elif isinstance(p, str):  # torch hands any other string to matrix_norm, which refuses it before the dims
        raise RuntimeError(f"linalg.matrix_norm: Order {p} not supported.")
    return _vector_norm(input, p, dim, keepdim, dtype, "linalg.vector_norm")


def _norm_method(self: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Tensor.norm: torch.norm without out=, so ``dtype`` is its fourth argument (torch's Python method)."""
    return norm(self, p, dim, keepdim, dtype=dtype)


_norm_method.__name__, _norm_method.__qualname__ = "norm", "Tensor.norm"  # named as torch's in Python's refusals


# ---------------------------------------------------------------- logical reductions, counting
def _bool_reduce_by_wrapper(name: str, op, input: Tensor, dim, keepdim: bool):
    """all/any of a wrapper subclass: its handler answers torch's overload (default, dim, dims)."""
    if dim is None:
        return _function_module.argument_dispatch(name, op, (input,), {})
    args = (input, dim, keepdim) if keepdim else (input, dim)
    return _function_module.argument_dispatch(name + (".dims" if isinstance(dim, (list, tuple)) else ".dim"), op,
                                              args, {})


def _bool_reduce(fn, op: str, input: Tensor, dim, keepdim: bool) -> Tensor:
    x = input._data
    # torch's all/any reduce over no dims for an empty dim list (the result is x != 0), where
    # sum and mean take it for all dims; keepdim=True keeps every dim also when dim is None
    dims = () if isinstance(dim, (list, tuple)) and not dim else _dims(dim, x.ndim, op)
    result = _as_array(fn(x, axis=dims, keepdims=keepdim))
    if x.dtype == np.uint8:  # torch keeps uint8 for uint8 input (its masks before bool existed)
        result = result.astype(np.uint8)
    out = Tensor._make(result)
    if _vmap_frames._frames:  # no Function saw it: batched where input is (``if (x > 0).any():``)
        _vmap_frames.note_results((input,), None, out)
    return out


def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """torch.all: True where every element over ``dim`` is nonzero (bool result; uint8 for uint8 input)."""
    if _function_module.active_dispatch is not None:  # (a wrapper's values live in it: argument_dispatch)
        made = _bool_reduce_by_wrapper("all", all, input, dim, keepdim)
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    xp = array_module(input)
    return _bool_reduce(xp.all, "all", input, dim, keepdim)


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """torch.any: True where some element over ``dim`` is nonzero (bool result; uint8 for uint8 input)."""
    if _function_module.active_dispatch is not None:  # (a wrapper's values live in it: argument_dispatch)
        made = _bool_reduce_by_wrapper("any", any, input, dim, keepdim)
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    xp = array_module(input)
    return _bool_reduce(xp.any, "any", input, dim, keepdim)


def count_nonzero(input: Tensor, dim=None, *more_dims) -> Tensor:
    """torch.count_nonzero over ``dim`` (int64); torch's method also takes the dims spread."""
    if more_dims:
        dim = (dim, *more_dims)
    if _function_module.active_dispatch is not None:  # (a wrapper's values live in it: argument_dispatch)
        made = _function_module.argument_dispatch(
            "count_nonzero" + (".dim_IntList" if isinstance(dim, (list, tuple)) else ""), count_nonzero,
            (input,) if dim is None else (input, dim), {})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    xp = array_module(input)
    x = input._data
    dims = _dims(dim, x.ndim, "count_nonzero")
    if dim is None:  # (torch counts along given dims as a sum of x != 0, which has its kernels)
        _dtype.refuse_wide_unsigned("reduce.count_nonzero", x)
    out = Tensor._make(_as_array(xp.sum(x != 0, axis=dims, dtype=np.int64)))
    if _vmap_frames._frames:  # no Function saw it: batched where input is
        _vmap_frames.note_results((input,), None, out)
    return out


# ---------------------------------------------------------------- sorting and order statistics
def _argsort(x: np.ndarray, dim: int, descending: bool) -> np.ndarray:
    """Stable argsort; descending keeps equal elements in their original order, as torch's stable sort."""
    xp = array_module(x)
    if not descending:
        return xp.argsort(x, axis=dim, kind="stable")
    if x.dtype == np.bool_:
        x = x.astype(np.int8)
    if x.dtype.kind == "u":
        x = x.astype(np.int64)
    order = xp.argsort(-x, axis=dim, kind="stable")
    if x.dtype.kind in "fV" and xp.isnan(x).any():
        # -NaN is NaN and sorts last; torch orders NaN as the largest value, so move NaNs first
        nan_last = ~xp.isnan(xp.take_along_axis(x, order, axis=dim))
        order = xp.take_along_axis(order, xp.argsort(nan_last, axis=dim, kind="stable"), axis=dim)
    return order


def _replayed_order(x: np.ndarray, d: int, order, replay, every_row: bool = False,
                    rows_at_once: bool = False, with_nan: bool = False, settled=None) -> np.ndarray:
    """``order`` (indices along ``d`` from NumPy's stable sort, possibly only the first few) with the
    rows that hold ties, or ``every_row``, replaced by ``replay(row values)`` (by ``replay(2-d array
    of those rows)`` where ``rows_at_once``; with ``with_nan`` rows holding a NaN too): the order torch's
    CPU kernel leaves them in (see
    cpu_sort_order). Device arrays and rows past the replay limit keep ``order``. With
    ``every_row`` and ``rows_at_once``, ``order`` may be a function making it, called only where it is
    kept (topk's unsorted indices: every row replayed, NumPy's sort would be thrown away). Rows
    marked in ``settled`` (a boolean per row) keep ``order`` even where they tie: their result is
    the same under every algorithm."""
    if type(x) is not np.ndarray or x.ndim == 0 or x.shape[d] < 2:
        return order() if callable(order) else order
    if x.dtype.name == "bfloat16":  # torch's kernels order bfloat16 as its exact float32 widening
        x = x.astype(np.float32)
    elif x.dtype.kind not in "biuf":
        return order() if callable(order) else order
    rows = np.moveaxis(x, d, -1).reshape(-1, x.shape[d])
    chosen = (np.ones(len(rows), dtype=bool) if every_row else cpu_sort_order.rows_with_ties_or_nan(rows)
              if with_nan else cpu_sort_order.rows_with_ties(rows))
    if settled is not None:
        chosen &= ~settled
    limit = cpu_sort_order.ROWS_AT_ONCE_LIMIT if rows_at_once else cpu_sort_order.REPLAY_LIMIT
    if not chosen.any() or int(chosen.sum()) * rows.shape[1] > limit:
        return order() if callable(order) else order
    if callable(order):  # (every row replayed at once)
        replayed = replay(rows)
        return np.moveaxis(replayed.reshape(*np.moveaxis(x, d, -1).shape[:-1], replayed.shape[-1]), -1, d)
    moved = np.moveaxis(order, d, -1)
    replayed = moved.reshape(len(rows), moved.shape[-1]).copy()  # (len(rows): topk's k may be 0)
    if rows_at_once:
        replayed[chosen] = replay(rows[chosen])
    else:
        for row in np.flatnonzero(chosen):
            replayed[row] = replay(rows[row].tolist())
    return np.moveaxis(replayed.reshape(moved.shape), -1, d)


def _distinct_rows(x: np.ndarray, d: int):
    """``x``'s rows along ``d`` (a 2-d array) where every torch CPU order kernel agrees wherever
    the selected values are distinct (a NumPy array of a real dtype, no NaN); else None."""
    if type(x) is not np.ndarray or x.dtype.kind not in "iuf" or x.size == 0:
        return None
    if x.dtype.kind == "f" and np.isnan(x).any():  # (NaN ties NaN and orders last: the replay's case)
        return None
    return (x if d == x.ndim - 1 else np.moveaxis(x, d, -1)).reshape(-1, x.shape[d])


def _along(index: np.ndarray, x: np.ndarray, d: int) -> np.ndarray:
    """Indices of ``_distinct_rows(x, d)``'s rows laid back along ``d`` (C-contiguous, as torch's)."""
    index = index.reshape(*(x if d == x.ndim - 1 else np.moveaxis(x, d, -1)).shape[:-1], index.shape[-1])
    return _c_layout(index if d == x.ndim - 1 else np.moveaxis(index, -1, d))


def _distinct_topk(x: np.ndarray, d: int, k: int, largest: bool, settled_rows: list | None = None):
    """topk's indices along ``d`` (k of them, best first) where each row's k best values are
    distinct and strictly better than the rest: then every algorithm (torch's partial sort, its
    nth_element and sort, NumPy's sort) picks and orders them alike, so a partition and a sort of
    the k replace a sort of the row. None where some row ties there (the caller replays it).
    A NaN needs no pass of its own: NumPy partitions and sorts it as the largest value, as torch
    orders it, so one left out of the k changes nothing, and one among them fails the strict order
    test (NaN compares false) or, as the k-th best, the count (nothing is >= or <= NaN)."""
    if type(x) is not np.ndarray or x.dtype.kind not in "iuf" or not 0 < k < x.shape[d]:
        return None
    kth = x.shape[d] - k if largest else k - 1
    if x.ndim == 1:  # (one row: plain indexing, a few NumPy calls fewer)
        chosen = x.argpartition(kth)
        chosen = chosen[kth:] if largest else chosen[:k]
        values = x[chosen]
        order = values.argsort()
        if largest:
            order = order[::-1]
        values = values[order]
        worst = values[-1]
        if np.count_nonzero(x >= worst if largest else x <= worst) != k or not (
                values[1:] < values[:-1] if largest else values[:-1] < values[1:]).all():
            return None
        return chosen[order]
    rows = (x if d == x.ndim - 1 else np.moveaxis(x, d, -1)).reshape(-1, x.shape[d])
    line = np.arange(len(rows))[:, None]
    chosen = np.argpartition(rows, kth, axis=1)
    chosen = chosen[:, kth:] if largest else chosen[:, :k]
    values = rows[line, chosen]
    order = np.argsort(values, axis=1)
    if largest:
        order = order[:, ::-1]
    values = values[line, order]
    worst = values[:, -1:]
    # the k are in strict order (distinct, no NaN), so each row's k-th best is met by at least k
    # elements, and by exactly k (-0.0 meets 0.0, as they tie in torch) where all rows' total is k
    # per row (one count over the array: count_nonzero along an axis is a slower Python route)
    strict = values[:, 1:] < values[:, :-1] if largest else values[:, :-1] < values[:, 1:]
    met = rows >= worst if largest else rows <= worst
    if strict.all() and np.count_nonzero(met) == k * len(rows):
        return _along(chosen[line, order], x, d)
    if settled_rows is not None:  # which rows passed: the rest alone need torch's order replayed
        settled_rows.append(strict.all(axis=1) & (met.sum(axis=1) == k))
    return None


def _distinct_kth_index(x: np.ndarray, d: int, k: int):
    """The index of the (0-based) ``k``-th smallest value along ``d`` (kept as a size-1 dim) where
    that value occurs once in each row: the one every algorithm returns (torch's quickselect,
    NumPy's stable sort), found by a partition. None where some row ties it or holds a NaN."""
    rows = _distinct_rows(x, d)
    if rows is None:
        return None
    index = np.argpartition(rows, k, axis=1)[:, k:k + 1]
    if not (np.count_nonzero(rows == rows[np.arange(len(rows))[:, None], index], axis=1) == 1).all():
        return None
    return _along(index, x, d)


def _c_layout(index):
    """``index`` C-contiguous with C strides for its size-1 dims too (ascontiguousarray keeps
    whatever stride a size-1 dim had): torch's topk, kthvalue and mode results are contiguous
    whatever the input's layout or the dim, where the replayed or moved order is a strided view."""
    if index.ndim == 1 and index.strides[0] == index.itemsize:  # (already so)
        return index
    xp = array_module(index)
    return xp.ascontiguousarray(index).ravel().reshape(index.shape)


def _unstable_order(x: np.ndarray, d: int, descending: bool) -> np.ndarray:
    """torch's ``sort(stable=False)`` order on the CPU: std::sort of (value, index) pairs, except a
    long enough 1-d integer ascending sort, which torch radix-sorts (stable)."""
    order = _argsort(x, d, descending)
    if x.ndim == 1 and x.dtype.kind in "iu" and x.size >= 32768 and not descending:
        return order
    if _strictly_ordered(x, d, order, descending):  # no ties, no NaN: every sort agrees
        return order
    return _replayed_order(x, d, order, lambda rows: cpu_sort_order.sort_rows(rows, descending), rows_at_once=True)


def _strictly_ordered(x: np.ndarray, d: int, order: np.ndarray, descending: bool) -> bool:
    """Whether every row of ``x`` along ``d`` holds distinct values and no NaN (a NumPy array of a
    real dtype; ``order`` its sort along ``d``): a cheaper answer than _replayed_order's tie search
    (which sorts again) for the common case, False wherever that search is needed."""
    if type(x) is not np.ndarray or x.dtype.kind not in "iuf" or x.size == 0:
        return False
    if x.ndim == 1:  # (the values in order: one gather)
        ordered = x[order]
        return bool((ordered[1:] < ordered[:-1] if descending else ordered[:-1] < ordered[1:]).all())
    ordered = np.sort(x, axis=d)  # (NaN last: it fails the test)
    before = (slice(None),) * d
    return bool((ordered[(*before, slice(None, -1))] < ordered[(*before, slice(1, None))]).all())


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool | None = None):
    """torch.sort: ``(values, indices)``; the gradient of values goes back through indices."""
    if _function_module.tracing_ops and (
            found := _traced(sort, input=input, dim=dim, descending=descending, stable=stable)) is not None:
        return found
    xp = array_module(input)
    x = input._data
    if x.dtype.kind == "c":
        raise RuntimeError(" Sort does not support complex dtypes on CPU")  # (torch's leading space)
    d = _single_dim(dim, x.ndim, "sort")
    if x.ndim == 0:
        return _select_along(SortValues, input, xp.zeros((), np.int64), 0, True, "sort")
    order = _argsort(x, d, descending) if stable else _unstable_order(x, d, descending)
    order = preserve_layout(order, x)  # torch's indices share the values' layout
    if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
        if stable is None:
            call = ("sort", "default"), _given_args((input, dim, descending), (-1, False)), {}
        else:
            keywords = {"dim": dim, "descending": descending}
            call = ("sort", "stable"), (input,), {"stable": stable, **{k: v for k, v in keywords.items()
                                                                        if v != (-1 if k == "dim" else False)}}
        _function_module.note_given(SortValues if stable is None else SortStableValues, input, aten_call=call)
    result = _select_along(SortValues if stable is None else SortStableValues, input, order, d, True, "sort")
    _note_given(result[0], "given_dim", dim)
    return result


class SortStableValues(SortValues):
    node_name = "SortBackward1"  # torch's sort(stable=...) overload


@honours_out
def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """torch.argsort: the indices that sort ``input`` along ``dim``."""
    xp = array_module(input)
    x = input._data
    if x.dtype.kind == "c":
        raise RuntimeError(" Sort does not support complex dtypes on CPU")
    d = _single_dim(dim, x.ndim, "argsort")
    if x.ndim == 0:
        return Tensor._make(xp.zeros((), np.int64))
    if _function_module.active_dispatch is not None:  # torch's argsort is its sort's indices: a mode or handler sees sort
        return sort(input, dim, descending, stable=True if stable else None)[1]
    order = _argsort(x, d, descending) if stable else _unstable_order(x, d, descending)
    order = preserve_layout(order, x)  # sort's indices: the input's layout, as torch
    out = Tensor._make(order.astype(np.int64, copy=False))
    if _vmap_frames._frames:  # no Function saw it: batched where input is
        _vmap_frames.note_results((input,), None, out)
    return out


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """torch.topk: the ``k`` largest (or smallest) values along ``dim`` and their indices."""
    if _function_module.tracing_ops and (
            found := _traced(topk, input=input, k=k, dim=dim, largest=largest, sorted=sorted)) is not None:
        return found
    xp = array_module(input)
    x = input._data
    if x.dtype.kind in "cb":
        # (torch's complex message opens with a space, its bool one does not)
        raise RuntimeError(" topk does not support complex dtypes on CPU" if x.dtype.kind == "c"
                           else "topk does not support bool dtypes on CPU")
    _dtype.refuse_wide_unsigned("reduce.topk", x)
    # the parser lets any index through (ProteinMPNN's np.minimum(top_k, L) is np.int64); the tie
    # replay does Python-int arithmetic on k
    k = operator.index(k)
    d = _single_dim(dim, x.ndim, "topk")
    size = x.shape[d] if x.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError("selected index k out of range")
    if x.ndim == 0:
        return _select_along(TopkValues, input, xp.zeros((), np.int64), 0, True, "topk")
    if not sorted and k * 64 > size:
        # unsorted, torch's nth_element leaves its own order whether or not values tie: replayed for
        # all rows at once (topk_order's steps, as nth_element_rows runs them)
        index = _replayed_order(x, d, lambda: xp.take(_argsort(x, d, largest), xp.arange(k), axis=d),
                                lambda rows: cpu_sort_order.nth_element_rows(rows, k - 1, largest)[:, :k],
                                every_row=True, rows_at_once=True)
    elif (index := _distinct_topk(x, d, k, largest, settled_rows := [])) is None:
        # rows whose k best are distinct and strictly better than the rest (ProteinMPNN's distance
        # rows, tied only among their padded columns) need no replay
        index = _replayed_order(x, d, xp.take(_argsort(x, d, largest), xp.arange(k), axis=d),
                                lambda keys: cpu_sort_order.topk_order(keys, k, largest, sorted),
                                settled=settled_rows[0] if settled_rows else None)
    index = _c_layout(index)
    if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
        _function_module.note_given(TopkValues, input, aten_call=(
            ("topk", "default"), _given_args((input, k, dim, largest, sorted), (-1, True, True)), {}))
    result = _select_along(TopkValues, input, index, d, True, "topk")
    _note_given(result[0], "given_dim", dim)
    return result


def _kth_index(x: np.ndarray, d: int, k: int) -> np.ndarray:
    xp = array_module(x)
    return xp.take(xp.argsort(x, axis=d, kind="stable"), [k], axis=d)


def _median_index(x: np.ndarray, d: int) -> np.ndarray:
    """The lower middle element's index along ``d``; torch's median is NaN (the first one) when
    the slice holds a NaN, unlike kthvalue, which orders NaN as the largest value."""
    xp = array_module(x)
    index = _distinct_kth_index(x, d, (x.shape[d] - 1) // 2)
    if index is not None:  # (no NaN)
        return index
    index = _kth_index(x, d, (x.shape[d] - 1) // 2)
    if x.dtype.kind in "fV":
        nan = xp.isnan(x)
        index = xp.where(nan.any(axis=d, keepdims=True), xp.argmax(nan, axis=d, keepdims=True), index)
    return index


def _signed_zero_median(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``index`` (into ``x`` flattened) of median()'s value, or where that value is a zero tied with
    zeros of the other sign, the element torch's std::nth_element leaves at the middle (its sign is
    the result's). torch partitions a clone of the input, which keeps a dense layout's memory order."""
    flat = x.reshape(-1)
    if type(x) is not np.ndarray or x.dtype.kind != "f" or flat[index[0]] != 0 or x.size > cpu_sort_order.REPLAY_LIMIT:
        return index
    if np.isnan(flat).any() or len(set(np.signbit(flat[flat == 0]).tolist())) < 2:
        return index
    dims = sorted(range(x.ndim), key=lambda i: -x.strides[i])  # memory order, when dense
    expected = x.itemsize
    for i in reversed(dims):
        if x.shape[i] != 1:
            if x.strides[i] != expected:
                dims = list(range(x.ndim))  # not dense: torch's clone is row-major
                break
            expected *= x.shape[i]
    positions = np.arange(x.size).reshape(x.shape).transpose(dims).reshape(-1)
    items = list(range(x.size))
    middle = (x.size - 1) // 2
    cpu_sort_order.nth_element(items, middle, cpu_sort_order.less_than(x.transpose(dims).reshape(-1).tolist(), False))
    return np.array([positions[items[middle]]], dtype=np.int64)


def _refuse(input: Tensor, kernel: str) -> None:
    """torch's error for a CPU kernel ``kernel`` with no instance for the input's dtype."""
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(input.dtype)}'")


def median(input: Tensor, dim=None, keepdim: bool = False):
    """torch.median: the lower of the two middle values. ``median()`` splits the gradient evenly
    among elements equal to it (torch's rule); ``median(dim)`` returns ``(values, indices)`` and
    routes the gradient to the returned index."""
    if _function_module.tracing_ops and (found := _traced(median, input=input, dim=dim, keepdim=keepdim)) is not None:
        return found
    xp = array_module(input)
    x = input._data
    if x.dtype.kind in "cb":
        _refuse(input, "median_cpu" if dim is None else "median_out")
    _dtype.refuse_wide_unsigned("reduce.median" if dim is None else "reduce.median_dim", x)
    if dim is None:
        if x.size == 0 and x.dtype.kind in "fV":  # NaN, on the graph: its gradient is the empty tensor
            return MedianAll.apply(input.reshape(-1), index=None)
        if x.size == 0:
            # torch fills a NaN cast to the integer type: int32/int64's minimum, 0 for narrower types
            with np.errstate(invalid="ignore"):
                return Tensor._make(xp.full((), np.nan, dtype=x.dtype))
        flat = input.reshape(-1)
        index = _signed_zero_median(x, _median_index(flat._data, 0))
        if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
            _function_module.note_given(MedianAll, flat, aten_call=(("median", "default"), (flat,), {}))
        value = MedianAll.apply(flat, index=index)
        return value
    d = _single_dim(dim, x.ndim, "median")
    if x.ndim == 0:
        return _select_along(MedianDim, input, xp.zeros((), np.int64), 0, keepdim, "median")
    _check_nonempty(x, (d,), "median")
    if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
        _function_module.note_given(MedianDim, input, aten_call=(
            ("median", "dim"), _given_args((input, dim, keepdim), (False,)), {}))
    return _select_along(MedianDim, input, _median_index(x, d), d, keepdim, "median", dim)


def median_of_rows(rows: Tensor) -> Tensor:
    """median() of each row of a 2-d tensor (vmap's batch of flattened slices, ``_vmap_batched``): each
    row's value as its own median() finds it. Differentiated outside the vmap the gradient goes to
    each row's median element alone, as torch's batching rule runs median() as median(dim) of the
    flattened slices (its node MedianBackward1); a grad inside the vmap splits it among ties, since
    its backward's ops are recorded from slice 0's median() and replayed."""
    x = rows._data
    index = _median_index(x, 1)
    index = np.stack([_signed_zero_median(row, at) for row, at in zip(x, index)]) if len(x) else index
    return name_node(MedianAll.apply(rows, index=index, along=True), "MedianBackward1", label="median",
                     rule="routes the gradient to each row's median element (median() of each slice under vmap)")


class MedianAll(Function):
    """median() of a flat tensor (or of each row of a 2-d one: ``median_of_rows``); ties share the
    gradient evenly, as in torch."""

    _array_forward = True
    params_from_values = True  # (index: where the median is, one per row)
    node_name = "MedianBackward0"
    label = "median"
    rule = "routes the gradient to the median element (split evenly among ties)"

    @staticmethod
    def forward(ctx, flat, index, along=False):
        # no index: an empty input, whose median torch makes NaN; ``along``: each row's gradient to
        # its median element alone (``median_of_rows``)
        xp = array_module(flat)
        out = xp.take_along_axis(flat, index, -1)[..., 0] if index is not None else xp.full((), np.nan, flat.dtype)
        ctx.save_for_backward(flat, out)
        ctx.index, ctx.along = index, along
        ctx.in_transform = _function_module.func_transforms.active > 0
        return out

    @staticmethod
    def backward(ctx, grad):
        if ctx.along:
            return ScatterAlong.apply(grad.unsqueeze(-1), index=ctx.index, dim=ctx.index.ndim - 1,
                                      shape=ctx.saved_values[0].shape)
        # d median = dx at the elements equal to it (NaN at NaN), each taking 1/count: in ops, which a
        # vmap's replay runs on the batch (vmap(grad(median)))
        from .elementwise import eq, logical_and, logical_or, ne, where

        flat, out = ctx.saved_values
        out, grad = out.unsqueeze(-1), grad.unsqueeze(-1)
        mask = eq(flat, out)
        if flat._data.dtype.kind in "fV":  # (x != x: NaN)
            mask = logical_or(mask, logical_and(ne(flat, flat), ne(out, out)))
        share = grad / mask.sum(-1, keepdim=True, dtype=grad.dtype)
        return share * mask.to(grad.dtype) if _spreads(ctx, array_module(flat)) else where(mask, share, 0.0)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """torch.kthvalue: the k-th smallest value (1-based) along ``dim`` and its index."""
    if _function_module.tracing_ops and (
            found := _traced(kthvalue, input=input, k=k, dim=dim, keepdim=keepdim)) is not None:
        return found
    if isinstance(k, Tensor) and k.numel() == 1 and k.dtype.name != "bool" and not (
            k.dtype.is_floating_point or k.dtype.is_complex):
        k = operator.index(k)  # (k is a SymInt to torch's parser: any one-element integral tensor)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"kthvalue(): argument 'k' (position 2) must be int, not {type(k).__name__}")
    if not -2**63 <= k < 2**63:
        raise ValueError("Overflow when unpacking long long")
    k = operator.index(k)
    xp = array_module(input)
    x = input._data
    if x.dtype.kind in "cb":
        _refuse(input, "kthvalue_cpu")
    _dtype.refuse_wide_unsigned("reduce.kthvalue", x)
    d = _single_dim(dim, x.ndim, "kthvalue")
    size = x.shape[d] if x.ndim else 1
    if x.ndim:
        _check_nonempty(x, (d,), "kthvalue")
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")  # wrapped, as torch
    if x.ndim == 0:
        return _select_along(KthvalueValues, input, xp.zeros((), np.int64), 0, keepdim, "kthvalue")
    index = _distinct_kth_index(x, d, k - 1)
    if index is None:
        index = _replayed_order(x, d, _kth_index(x, d, k - 1), lambda keys: [cpu_sort_order.kthvalue_index(keys, k - 1)])
    index = _c_layout(index)
    if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
        _function_module.note_given(KthvalueValues, input, aten_call=(
            ("kthvalue", "default"), _given_args((input, k, dim, keepdim), (-1, False)), {}))
    return _select_along(KthvalueValues, input, index, d, keepdim, "kthvalue", dim)


@honours_out
def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """torch.mode: the most frequent value along ``dim`` (the smallest among equally frequent
    ones) and an index of it: the one torch's CPU kernel reports (the last of its run after an
    unstable sort, as cpu_sort_order replays)."""
    if _function_module.tracing_ops and (found := _traced(mode, input=input, dim=dim, keepdim=keepdim)) is not None:
        return found
    xp = array_module(input)
    x = input._data
    if x.dtype.kind == "c":
        _refuse(input, "mode_cpu")
    _dtype.refuse_wide_unsigned("reduce.mode", x)
    d = _single_dim(dim, x.ndim, "mode")
    if x.ndim == 0:
        return _select_along(ModeValues, input, xp.zeros((), np.int64), 0, keepdim, "mode")
    _check_nonempty(x, (d,), "mode")
    rows = _distinct_rows(x, d)
    if rows is None:
        index = _mode_index(x, d)
    else:
        # a row of distinct values: each occurs once, the smallest is the mode (every sort agrees)
        tied = cpu_sort_order.rows_with_ties(rows)
        index = np.argmin(rows, axis=1)[:, None]
        if tied.any():
            index[tied] = _tied_mode_index(rows[tied])
        index = _along(index, x, d)
    if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
        _function_module.note_given(ModeValues, input, aten_call=(
            ("mode", "default"), _given_args((input, dim, keepdim), (-1, False)), {}))
    return _select_along(ModeValues, input, index, d, keepdim, "mode", dim)


def _tied_mode_index(rows: np.ndarray) -> np.ndarray:
    """torch's CPU mode index (as a column) of each row of a 2-d array, all rows holding ties and
    no NaN: the last of the first longest run after std::sort, whose order ``sort_rows`` replays
    for all rows at once (``_mode_index`` replays one row at a time, a Python call per comparison)."""
    if rows.size > cpu_sort_order.REPLAY_LIMIT:  # (past it: _mode_index's answer, replayed only for short rows)
        return _mode_index(rows, 1)
    order = cpu_sort_order.sort_rows(rows, descending=False)
    line = np.arange(len(rows))[:, None]
    ordered = rows[line, order]
    differs = ordered[:, 1:] != ordered[:, :-1]
    edge = np.ones((len(rows), 1), dtype=bool)
    positions = np.arange(rows.shape[1])
    start = np.maximum.accumulate(np.where(np.concatenate([edge, differs], 1), positions, 0), axis=1)
    ends = np.concatenate([differs, edge], 1)
    best = np.argmax(np.where(ends, positions - start + 1, 0), axis=1)[:, None]  # the first longest run's end
    return order[line, best]


def _mode_index(x, d: int):
    """torch's CPU mode index along ``d`` (kept as a size-1 dim) of every row of ``x``."""
    if x.shape[d] <= cpu_sort_order.INSERTION_THRESHOLD:
        # std::sort of so few elements is one insertion sort, which mode_index_rows replays for all
        # rows at once: torch's index for every row, ties and NaN included, with no runs to read first
        return _c_layout(_replayed_order(x, d, lambda: _mode_index_of_runs(x, d),
                                         lambda rows: cpu_sort_order.mode_index_rows(rows)[:, None],
                                         every_row=True, rows_at_once=True))
    # with ties torch's index is the last of the run after its std::sort, which need not be the last occurrence
    return _c_layout(_replayed_order(x, d, _mode_index_of_runs(x, d),
                                     lambda rows: cpu_sort_order.mode_index_long_rows(rows)[:, None],
                                     rows_at_once=True, with_nan=True))


def _mode_index_of_runs(x, d: int):
    """The mode's index along ``d`` (kept as a size-1 dim) read from runs of a stable sort: the last
    occurrence of the first longest run's value (torch's where no row ties or holds a NaN)."""
    xp = array_module(x)
    moved = xp.moveaxis(x, d, -1)
    order = xp.argsort(moved, axis=-1, kind="stable")
    s = xp.take_along_axis(moved, order, -1)
    n = s.shape[-1]
    # run lengths of equal values in each sorted row: the longest run's value is the mode
    starts = xp.concatenate([xp.ones(s.shape[:-1] + (1,), bool), s[..., 1:] != s[..., :-1]], -1)
    positions = xp.arange(n)
    start_pos = accumulate(xp, "maximum", xp.where(starts, positions, 0), -1)
    length = positions - start_pos + 1  # running length at each position; the run's last is its length
    ends = xp.concatenate([starts[..., 1:], xp.ones(s.shape[:-1] + (1,), bool)], -1)
    best = xp.argmax(xp.where(ends, length, 0), axis=-1)[..., None]  # first longest run = smallest value
    # torch returns the last occurrence's index: the largest original index within that run
    value = xp.take_along_axis(s, best, -1)
    index = xp.max(xp.where(moved == value, xp.arange(n), -1), axis=-1, keepdims=True)
    return xp.moveaxis(index, -1, d)


# ---------------------------------------------------------------- NaN-aware sums, aminmax, running extrema
def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.nansum: ``sum`` treating NaN as zero (NaN positions get no gradient)."""
    xp = array_module(input)
    from .elementwise import where

    if input._data.dtype.kind == "c":
        raise RuntimeError("nansum on CPU does not support complex inputs")
    if input._data.dtype.kind in "fV" and dtype is not None and _dtype.to_dtype(dtype).is_complex:
        # a float input runs torch's NaN-skipping kernel, which has no complex instance
        raise NotImplementedError(f"\"nansum_cpu\" not implemented for '{_dtype.scalar_name(_dtype.to_dtype(dtype))}'")
    if _function_module.active_dispatch is not None:
        # a mode sees torch's one aten.nansum, its dims a list; the NaNs are read from the array: a wrapper's handler
        shown = (input,) if dim is None and not keepdim else (
            input, [dim] if type(dim) is int else dim if dim is None else list(dim), *((True,) if keepdim else ()))
        made = _function_module.composite_dispatch("nansum", nansum, shown, {} if dtype is None else {"dtype": dtype})
        if made is _function_module.RUN_UNDISPATCHED:
            made = _function_module.argument_dispatch("nansum", nansum, (input, dim, keepdim), {"dtype": dtype})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    if input._data.dtype.kind in "fV" and input.__class__ not in SPARSE_COO_TYPES:
        np_dtype = _dtype.to_dtype(dtype).np if dtype is not None else None
        if dtype is not None:
            _dtype.refuse_wide_unsigned("reduce.sum", np.dtype(np_dtype))
        out = Nansum.apply(input, dims=_dims(dim, input._data.ndim, "nansum"), keepdim=keepdim, dtype=np_dtype)
        if out._grad_fn is not None:
            out._grad_fn.given_dims = None if dim is None else _dims_as_called(dim)
        return out
    if input._data.dtype.kind in "fV":
        input = where(Tensor._make(xp.isnan(input._data)), 0.0, input)
    return name_node(sum(input, dim, keepdim, dtype=dtype), "NansumBackward0", label="nansum",
                     rule="copies the gradient to every element; the NaNs, zeroed by the step below, get 0 there")


class Nansum(Sum):
    """nansum of a floating input: the sum with its NaNs as 0, one node as torch's NansumBackward0."""

    node_name = "NansumBackward0"
    label = "nansum"
    rule = "copies the gradient to every element but the NaNs, which get 0"
    formula = "nansum({0})"
    # torch's: the dims as given (None when none were), keepdim, and the input its mask is read from
    saved_attributes = {"_saved_dim": SavedValue(_given_dims), "_saved_keepdim": ctx_value("keepdim"),
                        "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.save_for_backward(x)
        xp = array_module(x)
        return Sum.forward(ctx, xp.where(xp.isnan(x), x.dtype.type(0), x), dims, keepdim, dtype)

    @staticmethod
    def backward(ctx, grad):
        from .elementwise import isnan, mul

        # torch's nansum_backward: grad expanded, times ¬isnan(x) (the mask made first)
        kept = isnan(Tensor._make(ctx.saved_values[0]._data)).logical_not()
        return mul(_expand_back(grad, ctx.shape, ctx.dims, ctx.keepdim, node=ctx), kept)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.nanmean: the mean of the non-NaN elements over ``dim``."""
    xp = array_module(input)
    # torch checks the input's dtype, then dtype=, whether or not dtype= would make the mean computable
    if input._data.dtype.kind not in "fVc":
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but got "
                           f"{_dtype.scalar_name(input.dtype)}")
    if dtype is not None and not (_dtype.to_dtype(dtype).is_floating_point or _dtype.to_dtype(dtype).is_complex):
        raise RuntimeError("nanmean(): could not infer output dtype. Optional dtype must be either a floating point "
                           f"or complex dtype. Got: {_dtype.scalar_name(_dtype.to_dtype(dtype))}")
    dims = _dims(dim, input._data.ndim, "nanmean")
    if _function_module.active_dispatch is not None:  # (the NaNs are counted in the array: a wrapper's handler)
        made = _function_module.argument_dispatch("nanmean", nanmean, (input, dim, keepdim), {"dtype": dtype})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
        return _nanmean_as_torch(input, dim, keepdim, dtype)
    count = xp.sum(~xp.isnan(input._data), axis=dims, keepdims=keepdim)
    total = nansum(input, dim, keepdim, dtype=dtype)
    # an int64 count, as torch's (its DivBackward0 keeps it as _saved_other): div casts it to the total's dtype
    return total / Tensor._make(_as_array(count.astype(np.int64, copy=False), input._data))


def _nanmean_as_torch(input: Tensor, dim, keepdim: bool, dtype) -> Tensor:
    """nanmean as torch's composite runs it, for a dispatch mode to see its ops: the non-NaN count by
    ne/logical_not_/sum (of a detached input; nanmean.out's of the input itself), then nansum divided by
    it (in place into the result for an out= call: nansum.out, div_)."""
    from .elementwise import ne

    note = _function_module.pending_out
    into_out = note is not None and note[1] == "nanmean"
    plain = input if into_out else input.detach()
    kept = ne(plain, plain).logical_not_()
    if dim is None:  # torch sums the count by sum.dim_IntList(kept, None)
        _function_module.note_given(Sum, kept, given_dims=None, shown_dtype=None)
        count = Sum.apply(kept, dims=tuple(range(kept.ndim)), keepdim=keepdim, dtype=np.int64)
    else:
        count = kept.sum(dim, keepdim)
    total = nansum(input, dim, keepdim, dtype=dtype)
    return total.div_(count) if into_out else total.div(count)


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    """torch.aminmax: ``(min, max)`` over ``dim`` (all elements by default); ties split evenly."""
    _dtype.refuse_wide_unsigned("reduce.aminmax", input._data)
    if dim is None and input._data.size == 0:
        raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation has no "
                           "identity.")
    if dim is not None and input._data.ndim:
        d = _single_dim(dim, input._data.ndim, "aminmax")
        if input._data.shape[d] == 0:  # torch's wording here lacks the "()" of the other reductions
            raise IndexError(f"aminmax: Expected reduction dim {d} to have non-zero size.")
    if _function_module.active_dispatch is not None and (made := _function_module.composite_dispatch(
            "aminmax", aminmax, (input,), {**({} if dim is None else {"dim": dim}), **({"keepdim": True} if keepdim else {})}
    )) is not _function_module.RUN_UNDISPATCHED:
        return return_types.aminmax(*made)  # (a dispatch mode sees torch's one aten.aminmax, its keywords as given)
    if dim is None:
        pair = (amin(input, (), keepdim=True), amax(input, (), keepdim=True)) if keepdim else (amin(input), amax(input))
    else:
        pair = (amin(input, dim, keepdim), amax(input, dim, keepdim))
    # torch records one node with both outputs; ours are two, named as torch's
    return return_types.aminmax(*name_node(pair, "AminmaxBackward0", label="aminmax"))


def _cum_extremum(op: str, cls, input: Tensor, dim: int, largest: bool):
    xp = array_module(input)
    x = input._data
    if x.dtype.kind == "c":
        _refuse(input, f"{op}_cpu")
    _dtype.refuse_wide_unsigned(f"reduce.{op}", x)
    if x.ndim == 0 and type(dim) is int and dim not in (-1, 0):  # torch's own check for a scalar
        raise IndexError(f"{op}(): Expected reduction dim -1 or 0 for scalar but got {dim}")
    if x.size == 0 and x.ndim and type(dim) is int and not -x.ndim <= dim < x.ndim:
        dim = 0  # torch returns an empty input's (empty) result before it wraps dim
    d = _single_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return _select_along(cls, input, xp.zeros((), np.int64), 0, True, op)
    values = accumulate(xp, "maximum" if largest else "minimum", x, d)
    # torch moves the index to each element equal to the running extremum (ties: the latest) or NaN
    update = (x == values) | (xp.isnan(x) if x.dtype.kind in "fV" else False)
    positions = xp.arange(x.shape[d]).reshape((-1,) + (1,) * (x.ndim - d - 1))
    index = accumulate(xp, "maximum", xp.where(update, positions, 0), d)
    if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
        _function_module.note_given(cls, input, aten_call=((op, "default"), (input, dim), {}))
    result = _select_along(cls, input, index, d, True, op, dim)
    if result[0]._grad_fn is not None:
        result[0]._grad_fn.torch_kept = {"self": input}  # torch's _saved_self
    return result


@honours_out
def cummax(input: Tensor, dim: int):
    """torch.cummax: running maximum along ``dim`` and its index (ties: the latest); an element
    gets the gradient of every position whose maximum it is."""
    return _cum_extremum("cummax", Cummax, input, dim, True)


@honours_out
def cummin(input: Tensor, dim: int):
    """torch.cummin: running minimum along ``dim`` and its index (ties: the latest)."""
    return _cum_extremum("cummin", Cummin, input, dim, False)


def dist(input: Tensor, other: Tensor, p=2) -> Tensor:
    """torch.dist: the p-norm of ``input - other`` (broadcast)."""
    _check_tensor(input, "dist", "input", 1)
    _check_tensor(other, "dist", "other", 2)
    from .elementwise import _one_device, sub

    _one_device("dist", input, other)

    return name_node(norm(sub(input, other), p), "DistBackward0", label="dist")
