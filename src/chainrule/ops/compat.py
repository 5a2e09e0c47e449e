"""torch's smaller top-level names, each composed from chainrule's ops: index arithmetic
(unravel_index), splits under their other names (dsplit, split_with_sizes, unsafe_split/chunk),
tests for infinities, the deprecated inclusive ``range``, out-of-place ``fill``, bit shifts,
strided and buffer-backed creation, DLPack exchange, and the eager semantics of the control-flow
operators ``cond`` and ``while_loop``.
"""

from __future__ import annotations

import builtins
import ctypes
import math
import operator
import warnings

import numpy as np

from .. import _config, _dtype, _vmap_frames, return_types
from .. import storage as _storage
from .._backend import array_module, module_for_device
from .._torch_function import user_stacklevel
from ..autograd import function as _function
from ..autograd.function import name_node
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..tensor import (
    Tensor,
    _check_tensor,
    _wrap_dim,
    honours_out,
    refuse_out_under_autograd,
    warn_resized_out,
)
from . import creation, elementwise
from ._arg_parser import check_str, int_list
from .count_sampling import torch_binomial_draws, torch_poisson_draws
from .index import index_func_meta, nonzero_indices, scatter_reduce
from .mt19937_stream import from_double
from .random import _rng
from .reduce import sort
from .scatter_views import as_strided
from .shape import Clone, _even_split, _split_points, chunk, narrow, split

# torch.<name>'s out= (see _arg_parser.namespace_with_out); the Tensor methods take none
__out_functions__ = {"narrow_copy": "same_as_self_asserted", "index_reduce": "same", "nonzero_static": "long",
                     # (the *_copy variants of views, below; those returning several tensors take no out here)
                     **{f"{name}_copy": "same" for name in (
                         "alias", "as_strided", "detach", "diagonal", "expand", "permute", "select", "slice", "squeeze",
                         "t", "transpose", "unfold", "unsqueeze", "view", "view_as_complex", "view_as_real")}}
__all__ = ["unravel_index", "dsplit", "unsafe_split_with_sizes", "msort", "isneginf", "isposinf", "range", "fill",
           "empty_strided", "frombuffer", "from_dlpack", "to_dlpack", "typename", "bitwise_left_shift",
           "bitwise_right_shift", "split_with_sizes", "unsafe_chunk", "unsafe_split", "narrow_copy", "cond",
           "while_loop", "index_reduce", "nonzero_static", "poisson", "binomial", "histogramdd", "_assert_async",
           "_convert_indices_from_coo_to_csr", "_convert_indices_from_csr_to_coo"]
__not_methods__ = {"_assert_async", "_convert_indices_from_coo_to_csr", "_convert_indices_from_csr_to_coo", "histogramdd", "poisson", "binomial", "unravel_index", "range", "fill", "empty_strided", "frombuffer", "from_dlpack", "to_dlpack",
                   "typename", "cond", "while_loop"}


# ---------------------------------------------------------------- index arithmetic and splits
def unravel_index(indices: Tensor, shape) -> tuple:
    """torch.unravel_index: the coordinates in ``shape`` of flat ``indices`` (a tuple of int64
    tensors, one per dim, each of ``indices``' shape). Indices are taken modulo the number of
    elements, as torch's (so -1 is the last element)."""
    if not isinstance(indices, Tensor):
        raise TypeError(f"expected 'indices' to be a tensor, but got {type(indices).__name__}")
    if indices._data.dtype.kind not in "iu" or indices._data.dtype == np.bool_:
        raise TypeError(f"expected 'indices' to be integer dtype, but got {indices.dtype}")
    shape = (shape,) if isinstance(shape, (builtins.int, np.integer)) else tuple(builtins.int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"'shape' cannot have negative values, but got {shape}")
    if 0 in shape and indices._data.size:
        raise RuntimeError(f"ZeroDivisionError: unravel_index of {indices._data.size} indices into a shape with a "
                           f"zero dimension, {shape}")
    if _function.active_dispatch is not None:  # (the indices are read from the array: a wrapper's handler)
        made = _function.argument_dispatch("unravel_index", unravel_index, (indices, shape), {})
        if made is not _function.RUN_UNDISPATCHED:
            return tuple(made)
    xp = array_module(indices)
    flat = indices._data.astype(np.int64)
    coordinates = []
    for size in reversed(shape):
        coordinates.append(flat % size if size else xp.zeros_like(flat))
        flat = flat // size if size else flat
    if not shape:
        return ()
    # one (..., ndim) array viewed per dim, torch's layout (its outputs are strided views)
    stacked = xp.stack(coordinates[::-1], axis=-1)
    return tuple(Tensor._make(stacked[..., d]) for d in builtins.range(len(shape)))


def _integer_vector(t: Tensor, kernel: str, name: str = "Input") -> None:
    if t._data.dtype.kind not in "iu" or t._data.dtype == np.bool_:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_dtype.scalar_name(t._data.dtype)}\'')
    if t._data.ndim != 1:
        raise RuntimeError(f"{name} is supposed to be a vector, but got {t._data.ndim} dimensional tensor.")


def _convert_indices_from_coo_to_csr(input: Tensor, size: int, *, out_int32: bool = False) -> Tensor:
    """torch._convert_indices_from_coo_to_csr: the ``size + 1`` row pointers of sorted row indices
    (``ptr[r]`` = how many indices are below ``r``); int64, or int32 with ``out_int32``. Like torch,
    the indices must be sorted (PyTorch Geometric's ``index2ptr`` sorts them first)."""
    _integer_vector(input, "convert_indices_from_coo_to_csr_cpu")
    xp = array_module(input)
    ptr = xp.searchsorted(input._data, xp.arange(builtins.int(size) + 1), side="left")
    return Tensor._make(ptr.astype(np.int32 if out_int32 else np.int64))


def _convert_indices_from_csr_to_coo(crow_indices: Tensor, col_indices: Tensor, *, out_int32: bool = False,
                                     transpose: bool = False) -> Tensor:
    """torch._convert_indices_from_csr_to_coo: the (2, nnz) row and column indices of a CSR matrix's
    row pointers and columns (columns first with ``transpose``)."""
    if crow_indices._data.ndim != col_indices._data.ndim:
        raise RuntimeError(f"crow_indices and col_indices are supposed to have the same dimensionality, but got "
                           f"{crow_indices._data.ndim} and {col_indices._data.ndim} dimensional tensors, "
                           "respectively.")
    _integer_vector(crow_indices, "convert_indices_from_csr_to_coo_cpu", "crow_indices")
    xp = array_module(crow_indices)
    target = np.int32 if out_int32 else np.int64
    counts = xp.diff(crow_indices._data.astype(np.int64))
    rows = xp.repeat(xp.arange(counts.shape[0], dtype=target), counts)
    pair = (col_indices._data.astype(target), rows) if transpose else (rows, col_indices._data.astype(target))
    return Tensor._make(xp.stack(pair))


def dsplit(input: Tensor, indices_or_sections=None, *spread_indices, sections=None, indices=None) -> tuple:
    """torch.dsplit: tensor_split along dim 2 of a tensor with at least 3 dims."""
    if spread_indices:  # torch's method takes its indices spread: x.dsplit(1, 3)
        indices_or_sections = (indices_or_sections, *spread_indices)
    indices_or_sections = _split_points("dsplit", indices_or_sections, sections=sections, indices=indices)
    if input._data.ndim < 3:
        raise RuntimeError(f"torch.dsplit requires a tensor with at least 3 dimension, but got a tensor "
                           f"with {input._data.ndim} dimensions!")
    return _even_split(input, indices_or_sections, 2, "dsplit")


def split_with_sizes(input: Tensor, split_sizes, dim: int = 0) -> tuple:
    """torch.split_with_sizes: views of the given sizes along ``dim`` (they must add up to its size)."""
    return split(input, list(int_list(split_sizes, "split_with_sizes", "split_sizes", sized=False)), dim)


def _not_views(pieces: tuple) -> tuple:
    """torch's unsafe_split pieces: the input's memory, but no views to autograd (no ``_base``, a
    version counter each), so nothing refuses their in-place writes; the caller promises none of
    them makes the graph wrong (torch's documentation). Made under no_grad, they are plain tensors."""
    recording = is_grad_enabled()
    for piece in pieces:
        piece._base = None
        piece._vbox = None
        piece._view_state = None
        piece._multi_output_view = False
        if not recording:
            piece._requires_grad = False
    return pieces


def unsafe_split(input: Tensor, split_size: int, dim: int = 0) -> tuple:
    """torch.unsafe_split: split's pieces, which autograd does not take for views."""
    if _function.active_dispatch is not None and isinstance(split_size, builtins.int):
        # a dispatch mode sees torch's one aten.unsafe_split.Tensor (dim left out at its default 0)
        made = _function.composite_dispatch("unsafe_split.Tensor", _unsafe_split,
                                            (input, split_size, dim) if dim else (input, split_size), {})
        if made is not _function.RUN_UNDISPATCHED:
            return tuple(made)
    return _unsafe_split(input, split_size, dim)


def _unsafe_split(input: Tensor, split_size: int, dim: int = 0) -> tuple:
    return name_node(_not_views(split(input, split_size, dim)), "UnsafeSplitBackward0")


def unsafe_split_with_sizes(input: Tensor, split_sizes, dim: int = 0) -> tuple:
    """torch.unsafe_split_with_sizes: split_with_sizes' pieces, which autograd does not take for views."""
    return name_node(_not_views(split_with_sizes(input, split_sizes, dim)), "UnsafeSplitWithSizesBackward0")


def unsafe_chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """torch.unsafe_chunk: chunk's pieces, which autograd does not take for views."""
    if _function.active_dispatch is not None and isinstance(chunks, builtins.int) and chunks > 0 \
            and isinstance(dim, builtins.int) and input._data.ndim and -input._data.ndim <= dim < input._data.ndim:
        length = input._data.shape[dim]
        if length:  # torch's unsafe_chunk is unsafe_split by ceil(length / chunks)
            return unsafe_split(input, -(-length // chunks), dim)
    return name_node(_not_views(chunk(input, chunks, dim)), "UnsafeSplitBackward0")


def narrow_copy(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """torch.narrow_copy: narrow(), copied into new memory."""
    # start and length are SymInts to torch's parser (any one-element integral tensor), where
    # narrow's Tensor overload takes a 0-d start only
    start, length = (operator.index(v) if isinstance(v, Tensor) else v for v in (start, length))
    ndim = input._data.ndim
    if ndim and isinstance(dim, builtins.int) and dim >= ndim:  # its C++ kernel's own check (narrow: IndexError)
        raise RuntimeError("Expected dim < static_cast<int64_t>(self_sizes.size()) to be true, but got false.  (Could "
                           "this error message be improved?  If so, please report an enhancement request to PyTorch.)")
    if isinstance(length, builtins.int) and length < 0:
        narrow(input, dim, start, 0)  # the dim and start checks come first
        size = input._data.shape[_wrap_dim(dim, ndim, "narrow_copy")]
        first = builtins.int(start)  # (a 0-d integer tensor too)
        first = first + size if first < 0 else first
        raise RuntimeError(f"start ({first}) + length ({length}) exceeds dimension size ({size}).")
    return name_node(narrow(input, dim, start, length).clone(), "NarrowCopyBackward0", label="narrow_copy",
                     rule="puts the gradient back into the narrowed slice, zeros elsewhere")


def index_reduce(input: Tensor, dim: int, index: Tensor, source: Tensor, reduce: str, *,
                 include_self: bool = True) -> Tensor:
    """torch.index_reduce: reduce slice ``i`` of ``source`` along ``dim`` into slice ``index[i]`` of
    ``input`` with prod / mean / amax / amin (``include_self`` counts input's own values). It is
    scatter_reduce with ``index`` spread over ``source``'s other dims, and shares its rule."""
    _check_tensor(index, "index_reduce", "index", 3)
    check_str(reduce, "index_reduce", "reduce")
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    d = index_func_meta("index_reduce", input, dim, index, source)
    if input.dtype is _dtype.bool:  # torch's kernels have no bool case; they are picked before any index is read
        _warn_index_reduce_beta_once()
        kernel = "index_func_" if include_self else "index_reduce_func_exclude_input_init"
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool'")
    size = input._data.shape[d] if input._data.ndim else 1
    if index._data.size and (builtins.int(index._data.max()) >= size or builtins.int(index._data.min()) < 0):
        raise IndexError("index out of range in self")  # torch's kernel's words, not scatter_reduce's
    shape = [1] * source._data.ndim
    if shape:
        shape[d] = index._data.size
    _warn_index_reduce_beta_once()
    spread = index.reshape(shape).expand(source.shape) if shape else index.reshape(())
    out = scatter_reduce(input, d, spread, source, reduce, include_self=include_self)
    if reduce == "mean" and input.dtype in (_dtype.float16, _dtype.bfloat16) and type(out._data) is np.ndarray:
        out._data = _half_index_mean(input._data, d, index._data.reshape(-1), source._data, include_self)
    return name_node(out, "IndexReduceBackward0", label="index_reduce")


def _half_index_mean(x: np.ndarray, d: int, index: np.ndarray, source: np.ndarray, include_self: bool):
    """index_reduce(mean) of float16/bfloat16 as torch's CPU kernel values it: the slices added one
    after another in the dtype (each sum rounded; scatter_reduce's mean sums in float32), then
    divided by the count. The graph is scatter_reduce's."""
    total = x.copy() if x.ndim else x.reshape(1).copy()
    moved = np.moveaxis(total, d, 0)
    counts = np.zeros(moved.shape[0], dtype=x.dtype)
    hit = np.zeros(moved.shape[0], dtype=bool)
    hit[index] = True
    if not include_self:
        moved[hit] = 0
    np.add.at(counts, index, np.ones(index.shape, dtype=x.dtype))
    np.add.at(moved, index, np.moveaxis(source, d, 0) if source.ndim else source.reshape(1))
    counts = counts + 1 if include_self else np.maximum(counts, 1)
    moved[hit] = moved[hit] / counts[hit].reshape((-1,) + (1,) * (moved.ndim - 1))
    return total.reshape(x.shape)


def _warn_index_reduce_beta_once() -> None:
    from .. import _config

    # torch's TORCH_WARN_ONCE, with its text whole (set_warn_always(True) repeats it)
    _config.warn_once("index_reduce() is in beta and the API may change at any time. (Triggered internally at "
                      "/__w/pytorch/pytorch/aten/src/ATen/native/TensorAdvancedIndexing.cpp:1523.)")


def nonzero_static(input: Tensor, *, size: int, fill_value: int = -1) -> Tensor:
    """torch.nonzero_static: nonzero()'s (n, ndim) indices cut or padded with ``fill_value`` to
    exactly ``size`` rows (a shape known before the values, as compilers need)."""
    if size < 0:
        raise RuntimeError(f"nonzero_static: 'size' must be an non-negative integer, but got {size}")
    if _function.active_dispatch is not None:  # (a wrapper's values live in it: argument_dispatch)
        made = _function.argument_dispatch("nonzero_static", nonzero_static, (input,),
                                           {"size": size} if fill_value == -1 else {"size": size, "fill_value": fill_value})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    found = nonzero_indices(input)
    xp = array_module(found)
    rows = found._data[:size]
    padding = xp.full((size - rows.shape[0], rows.shape[1]), fill_value, dtype=rows.dtype)
    return Tensor._make(xp.concatenate([rows, padding]))


@honours_out
def msort(input: Tensor) -> Tensor:
    """torch.msort: ``input`` sorted along dim 0 (ascending)."""
    return sort(input, dim=0).values


# ---------------------------------------------------------------- elementwise tests and shifts
@honours_out
def isneginf(input: Tensor) -> Tensor:
    """torch.isneginf: True where ``input`` is -inf (never for integer tensors)."""
    if _function.active_dispatch is not None:  # (a wrapper's values live in it)
        made = elementwise._answered_by_wrapper("isneginf", isneginf, input)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    data = input._data
    return Tensor._make(array_module(data).isinf(data) & (data < 0))


@honours_out
def isposinf(input: Tensor) -> Tensor:
    """torch.isposinf: True where ``input`` is +inf (never for integer tensors)."""
    if _function.active_dispatch is not None:  # (a wrapper's values live in it)
        made = elementwise._answered_by_wrapper("isposinf", isposinf, input)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    data = input._data
    return Tensor._make(array_module(data).isinf(data) & (data > 0))


def _shift(input, other, left: bool) -> Tensor:
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it)
        op = bitwise_left_shift if left else bitwise_right_shift
        made = elementwise._answered_by_wrapper(op.__name__, op, input, other, ".Tensor_Scalar", to_mode=False)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    name = "lshift" if left else "rshift"
    a, b = elementwise._pair(input, other)
    # (two bools promote to bool, which torch's kernels refuse too; so do uint16/32/64, which have
    # no shift kernel in torch)
    if a._data.dtype.kind not in "iu" or a._data.dtype.itemsize > 1 and a._data.dtype.kind == "u":
        elementwise.refuse_kernel_dtype(f"bitwise_{'left' if left else 'right'}_shift", a, b, kernel=name)
    x, s = elementwise._kernel_arrays(f"bitwise_{'left' if left else 'right'}_shift", a, b)
    xp = array_module(x)
    bits = x.dtype.itemsize * 8
    # C leaves shifts by a negative or >= width amount undefined; torch defines them: a left shift
    # gives 0, a right shift the sign fill (an arithmetic shift by width - 1; 0 for unsigned types),
    # negative amounts included
    in_range = xp.clip(s, 0, bits - 1).astype(x.dtype)
    if left:
        out = xp.where((s < 0) | (s >= bits), x.dtype.type(0), xp.left_shift(x, in_range))
    else:
        signed = x.dtype.kind == "i"
        fill = xp.right_shift(x, x.dtype.type(bits - 1)) if signed else xp.zeros_like(x)
        out = xp.where((s < 0) | (s >= bits - signed), fill, xp.right_shift(x, in_range))
    out = Tensor._make(out.astype(x.dtype, copy=False))
    if _vmap_frames._frames:  # no Function saw it: batched where an operand is (int(x << 1) is refused)
        _vmap_frames.note_results((input, other), None, out)
    return out


@honours_out
def bitwise_left_shift(input, other) -> Tensor:
    """torch.bitwise_left_shift (``<<``): integer ``input`` shifted left by ``other`` bits."""
    return _shift(input, other, left=True)


@honours_out
def bitwise_right_shift(input, other) -> Tensor:
    """torch.bitwise_right_shift (``>>``): integer ``input`` shifted right (arithmetically) by ``other`` bits."""
    return _shift(input, other, left=False)


# ---------------------------------------------------------------- creation
_RANGE_DEPRECATION = ("torch.range is deprecated and will be removed in a future release because its behavior is "
                      "inconsistent with Python's range builtin. Instead, use torch.arange, which produces values "
                      "in [start, end).")


def range(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None,
          requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.range (deprecated): ``start, start + step, ...`` up to and including ``end``, in the
    default float dtype unless ``dtype`` is given. Warns as torch does."""
    if end is None:
        raise TypeError('range() missing 1 required positional arguments: "end"')
    warnings.warn(_RANGE_DEPRECATION, UserWarning, stacklevel=user_stacklevel())
    values = [builtins.float(v.item() if isinstance(v, Tensor) else v) for v in (start, end, step)]
    start, end, step = values
    if step == 0 or step != step:  # nan too, as torch's `step > 0 || step < 0`
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    count = builtins.int(math.floor((end - start) / step)) + 1
    result = creation.tensor(np.arange(count, dtype=np.float64) * step + start,
                             dtype=dtype if dtype is not None else _dtype.get_default_dtype(), device=device,
                             requires_grad=requires_grad)
    if out is not None:
        refuse_out_under_autograd("range", out)  # (before the resize, as torch's autograd layer)
        return out.resize_(result.shape).copy_(result)
    return result


range.honours_out = True  # writes out= itself, resized to the result as torch's


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False) -> Tensor:
    """torch.empty_strided: a tensor of ``size`` laid out with ``stride`` (in elements) over fresh
    storage just large enough for it; its values are unset (zero here)."""
    size, stride = (int_list(size, "empty_strided", "size", sized=False),
                    int_list(stride, "empty_strided", "stride", sized=False))
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape: sizes {list(size)}, strides {list(stride)}")
    needed = 0 if 0 in size else 1 + sum((n - 1) * s for n, s in zip(size, stride))
    storage = creation.empty(needed, dtype=dtype, device=device)
    return as_strided(storage, size, stride, 0).detach().requires_grad_(requires_grad)


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad: bool = False) -> Tensor:
    """torch.frombuffer: a 1-D tensor sharing memory with a Python buffer (bytes, bytearray,
    array.array, memoryview, ...): ``count`` elements of ``dtype`` from byte ``offset``."""
    dt = _dtype.to_dtype(dtype)
    try:
        view = memoryview(buffer)
    except TypeError:
        raise ValueError("object does not implement Python buffer protocol.") from None
    length = view.nbytes
    itemsize = dt.np.itemsize
    if length <= 0:
        raise ValueError(f"both buffer length ({length}) and count ({count}) must not be 0")
    if not 0 <= offset < length:
        raise ValueError(f"offset ({offset} bytes) must be non-negative and no greater than buffer length "
                         f"({length} bytes) minus 1")
    if count < 0 and (length - offset) % itemsize:
        raise ValueError(f"buffer length ({length - offset} bytes) after offset ({offset} bytes) must be a multiple "
                         f"of element size ({itemsize})")
    if count > 0 and (length - offset) // itemsize < count:
        raise ValueError(f"requested buffer length ({count} * {itemsize} bytes) after offset ({offset} bytes) must "
                         f"not be greater than actual buffer length ({length} bytes)")
    if view.readonly:
        _config.warn_once("The given buffer is not writable, and PyTorch does not support non-writable tensors. "
                          "This means you can write to the underlying (supposedly non-writable) buffer using the "
                          "tensor. You may want to copy the buffer to protect its data or make it writable before "
                          "converting it to a tensor. This type of warning will be suppressed for the rest of this "
                          "program. (Triggered internally at /__w/pytorch/pytorch/torch/csrc/utils/tensor_new.cpp:"
                          "1556.)")
    array = np.frombuffer(buffer, dtype=dt.np, count=count, offset=offset)
    _storage.mark_not_resizable(array)  # the buffer's memory, which torch cannot grow either
    return Tensor._make(array).requires_grad_(requires_grad)


# ---------------------------------------------------------------- histograms
def histogramdd(input: Tensor, bins, range=None, weight: Tensor | None = None, density: bool = False):
    """torch.histogramdd: the D-dimensional histogram of the points in ``input``'s last dim (N, D);
    ``bins`` an int, D ints, or D 1-d tensors of edges; ``range`` (min₁, max₁, ..., min_D, max_D).
    Returns ``(hist, bin_edges)``, both of input's float dtype, with NumPy's (and torch's) rule that
    each dim's last bin includes its right edge."""
    data = input._data
    if data.dtype.kind != "f":
        raise NotImplementedError(f'"histogramdd" not implemented for \'{_dtype.scalar_name(data.dtype)}\'')
    if data.ndim < 1:
        raise RuntimeError("torch.histogramdd: input tensor should have at least 1 dimension, but got 0")
    xp = array_module(data)
    dims = data.shape[-1]
    points = data.reshape(-1, dims)
    if weight is not None:
        if weight._data.dtype != data.dtype:
            raise RuntimeError(f"torch.histogramdd: if weight tensor is provided, input tensor and weight tensor "
                               f"should have the same dtype, but got input({_C_NAMES.get(data.dtype.name)}), "
                               f"and weight({_C_NAMES.get(weight._data.dtype.name, weight._data.dtype.name)})")
        if tuple(weight._data.shape) != tuple(data.shape[:-1]):
            raise RuntimeError("torch.histogramdd: if weight tensor is provided it should have the same shape as the "
                               "input tensor excluding its innermost dimension")
    if isinstance(bins, (builtins.int, np.integer)):
        bins = [builtins.int(bins)] * dims
    bins = list(bins)
    if len(bins) != dims:  # torch words the count of bin numbers and of edge tensors differently
        if not any(isinstance(b, Tensor) for b in bins):
            raise RuntimeError("histogramdd: The size of bins must be equal to the innermost dimension of the input.")
        raise RuntimeError(f"torch.histogramdd: expected {dims} sequences of bin edges for a {dims}-dimensional "
                           f"histogram but got {len(bins)}")
    if range is not None and len(range) != 2 * dims:
        raise RuntimeError(f"torch.histogramdd: for a {dims}-dimensional histogram range should have {2 * dims} "
                           f"elements, but got {len(range)}")
    if _function.active_dispatch is not None:  # (the points are read from the array: a wrapper's handler)
        made = _function.argument_dispatch("histogramdd", histogramdd, (input, bins, range, weight, density), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    edges = []
    for d, b in enumerate(bins):
        if isinstance(b, Tensor):
            edges.append(b._data.astype(data.dtype))
            continue
        if range is not None:
            low, high = builtins.float(range[2 * d]), builtins.float(range[2 * d + 1])
        elif points.shape[0]:
            low, high = builtins.float(points[:, d].min()), builtins.float(points[:, d].max())
        else:
            low, high = 0.0, 1.0
        if low == high:  # a constant coordinate: one unit-wide range around it, as NumPy
            low, high = low - 0.5, high + 0.5
        edges.append(xp.linspace(low, high, builtins.int(b) + 1).astype(data.dtype))
    weights = None if weight is None else weight._data.reshape(-1)
    if any(bool((e[1:] < e[:-1]).any()) for e in edges):  # NumPy refuses these; torch bins them regardless
        hist = _histogramdd_unsorted_edges(xp, points, edges, weights, density)
    else:
        hist, _ = xp.histogramdd(points, bins=[e.astype(np.float64) for e in edges], weights=weights, density=density)
    return return_types.histogramdd(Tensor._make(hist.astype(data.dtype)), tuple(Tensor._make(e) for e in edges))


def _upper_bound(xp, edges, values):
    """The C++ ``std::upper_bound`` of each value in ``edges``, step for step (torch's histogram
    kernel searches edges that need not be sorted, and its answer is that of this exact bisection)."""
    first = xp.zeros(values.shape, dtype=np.int64)
    length = xp.full(values.shape, len(edges), dtype=np.int64)
    while bool((length > 0).any()):
        half = length >> 1
        middle = xp.minimum(first + half, len(edges) - 1)
        go_left = values < edges[middle]
        searching = length > 0
        first = xp.where(searching & ~go_left, middle + 1, first)
        length = xp.where(searching, xp.where(go_left, half, length - half - 1), 0)
    return first


def _histogramdd_unsorted_edges(xp, points, edges, weights, density):
    """torch's CPU histogramdd for edges that are not non-decreasing: a point counts only when each
    coordinate lies between its first and last edge (none does when the last edge is below the
    first), in the bin ``upper_bound - 1`` (the last edge belongs to the last bin); ``density``
    divides by the total, then by each dim's signed edge differences."""
    counted = xp.ones(points.shape[0], dtype=bool)
    flat_index = xp.zeros(points.shape[0], dtype=np.int64)
    for d, e in enumerate(edges):
        values = points[:, d]
        counted &= (values >= e[0]) & (values <= e[-1])
        position = _upper_bound(xp, e, values) - 1
        position = xp.where(position == len(e) - 1, position - 1, position)
        flat_index = flat_index * (len(e) - 1) + xp.clip(position, 0, len(e) - 2)
    shape = tuple(len(e) - 1 for e in edges)
    chosen = None if weights is None else weights[counted].astype(np.float64)
    hist = xp.bincount(flat_index[counted], weights=chosen, minlength=math.prod(shape)).astype(np.float64)
    hist = hist.reshape(shape)
    if density:
        with np.errstate(divide="ignore", invalid="ignore"):
            hist = hist / hist.sum()
            for d, e in enumerate(edges):
                widths = xp.diff(e.astype(np.float64))
                hist = hist / widths.reshape((-1,) + (1,) * (len(edges) - d - 1))
    return hist


# ---------------------------------------------------------------- sampling
def poisson(input: Tensor, generator=None) -> Tensor:
    """torch.poisson: one Poisson draw per element of the rates ``input``, in its float dtype.
    (torch's derivative of a draw is zero; here the draw is not recorded.)"""
    data = input._data
    if data.dtype.kind != "f":
        raise NotImplementedError(f'"poisson_cpu" not implemented for \'{_dtype.scalar_name(data.dtype)}\'')
    xp = array_module(data)
    if not bool((data >= 0).all()):  # NaN too, as torch's check
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    if _vmap_frames._frames:
        _vmap_frames.refuse_same_randomness(input)
    if xp is np:  # torch's sampler on the CPU stream
        return Tensor._make(from_double(torch_poisson_draws(_rng(generator), data).reshape(data.shape), data.dtype))
    return Tensor._make(_rng(generator, xp).poisson(data.astype(np.float64)).astype(data.dtype))


def binomial(count: Tensor, prob: Tensor, generator=None) -> Tensor:
    """torch.binomial: one Binomial(count, prob) draw per element (broadcast), in ``count``'s float dtype;
    a negative count draws 0 and ``prob`` is clipped to [0, 1], as torch's sampler does."""
    if count._data.dtype.kind != "f":
        raise ValueError(f"binomial only supports floating-point dtypes for count, got: "
                         f"{_dtype.scalar_name(count._data.dtype)}")
    if prob._data.dtype != count._data.dtype:
        raise RuntimeError(f"Found dtype {_dtype.scalar_name(prob._data.dtype)} but expected "
                           f"{_dtype.scalar_name(count._data.dtype)}")
    if _vmap_frames._frames:
        _vmap_frames.refuse_same_randomness(count, prob)
    xp = array_module(count._data)
    if xp is np:  # torch's sampler on the CPU stream, count and prob broadcast
        counts, probs = np.broadcast_arrays(count._data, prob._data)
        scalar = np.float64 if counts.dtype == np.float64 else np.float32
        draws = torch_binomial_draws(_rng(generator), counts, probs, scalar).reshape(counts.shape)
        return Tensor._make(from_double(draws, counts.dtype))
    trials = xp.maximum(count._data, 0).astype(np.int64)
    draws = _rng(generator, xp).binomial(trials, xp.clip(prob._data.astype(np.float64), 0.0, 1.0))
    return Tensor._make(draws.astype(count._data.dtype))


_C_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half"}


# ---------------------------------------------------------------- DLPack
_DL_CPU, _DL_CUDA, _DL_CUDA_HOST = 1, 2, 3


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32), ("dtype", _DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


_DLDeleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DLDeleter)]


class _DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32 * 2), ("manager_ctx", ctypes.c_void_p), ("deleter", _DLDeleter),
                ("flags", ctypes.c_uint64), ("dl_tensor", _DLTensor)]


_DL_READ_ONLY = 1
# DLPack's type codes (kDLInt, kDLUInt, kDLFloat, kDLComplex, kDLBool) as NumPy's kind letters
_DL_KINDS = {0: "i", 1: "u", 2: "f", 5: "c", 6: "b"}


def _capsule_api():
    api = ctypes.pythonapi
    api.PyCapsule_GetPointer.restype, api.PyCapsule_GetPointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                                            ctypes.c_char_p]
    api.PyCapsule_GetName.restype, api.PyCapsule_GetName.argtypes = ctypes.c_char_p, [ctypes.py_object]
    api.PyCapsule_SetName.restype, api.PyCapsule_SetName.argtypes = ctypes.c_int, [ctypes.py_object, ctypes.c_char_p]
    return api


class _DLPackOwner:
    """Owns a consumed DLPack tensor for the NumPy array built over its memory (the array's base): when
    the array goes, the producer's deleter runs, as the protocol asks of a consumer."""

    def __init__(self, managed, interface: dict) -> None:
        self._managed = managed
        self.__array_interface__ = interface

    def __del__(self) -> None:
        if self._managed.deleter:
            self._managed.deleter(ctypes.addressof(self._managed))


def _array_from_capsule(capsule, name: bytes) -> np.ndarray | None:
    """A writable NumPy array over a CPU DLPack capsule's memory, the capsule marked consumed; None for an
    element type NumPy cannot name (the caller falls back to NumPy's reader). NumPy's own from_dlpack makes
    a legacy capsule's array read-only; torch shares the memory writably, so writes reach the producer."""
    api = _capsule_api()
    pointer = api.PyCapsule_GetPointer(capsule, name)
    versioned = name == b"dltensor_versioned"
    managed = (_DLManagedTensorVersioned if versioned else _DLManagedTensor).from_address(pointer)
    tensor = managed.dl_tensor
    kind, bits, lanes = _DL_KINDS.get(tensor.dtype.code), tensor.dtype.bits, tensor.dtype.lanes
    if kind is None or lanes != 1 or (kind == "b" and bits != 8):
        return None
    dtype = np.dtype(np.bool_ if kind == "b" else f"{kind}{bits // 8}")
    shape = tuple(tensor.shape[i] for i in builtins.range(tensor.ndim))
    strides = None if not tensor.strides else tuple(tensor.strides[i] * dtype.itemsize for i in builtins.range(tensor.ndim))
    read_only = versioned and builtins.bool(managed.flags & _DL_READ_ONLY)
    api.PyCapsule_SetName(capsule, b"used_dltensor_versioned" if versioned else b"used_dltensor")
    if math.prod(shape) == 0:  # no memory to share (the data pointer may be null)
        _DLPackOwner(managed, {})
        return np.empty(shape, dtype)
    address = (tensor.data or 0) + tensor.byte_offset
    interface = {"shape": shape, "typestr": dtype.str, "data": (address, read_only), "strides": strides,
                 "version": 3}
    return np.asarray(_DLPackOwner(managed, interface))


_INVALID_CAPSULE = ("from_dlpack received an invalid capsule. Note that DLTensor capsules can be consumed only once, "
                    "so you might have already constructed a tensor from it once.")


class _Capsule:
    """A bare DLPack capsule (from torch.utils.dlpack.to_dlpack and older libraries) dressed as
    an object with ``__dlpack__``, the form the array modules' ``from_dlpack`` take."""

    def __init__(self, capsule) -> None:
        api = _capsule_api()
        self._name = api.PyCapsule_GetName(capsule)
        if self._name not in (b"dltensor", b"dltensor_versioned"):  # DLPack renames a capsule "used_..." once read
            raise RuntimeError(_INVALID_CAPSULE)
        managed_type = _DLManagedTensorVersioned if self._name == b"dltensor_versioned" else _DLManagedTensor
        head = managed_type.from_address(api.PyCapsule_GetPointer(capsule, self._name)).dl_tensor
        self._capsule = capsule
        self._device = (head.device.device_type, head.device.device_id)

    def __dlpack__(self, *args, **kwargs):
        return self._capsule

    def __dlpack_device__(self):
        return self._device


def from_dlpack(ext_tensor) -> Tensor:
    """torch.from_dlpack: a tensor sharing memory with any object that speaks DLPack (a NumPy or
    CuPy array, a torch or JAX tensor, ...) or with a DLPack capsule. CPU memory becomes a CPU tensor;
    CUDA memory a device tensor through CuPy."""
    if isinstance(ext_tensor, Tensor):
        return Tensor._make(ext_tensor._data)
    if not hasattr(ext_tensor, "__dlpack__"):
        if type(ext_tensor).__name__ != "PyCapsule":
            # torch reads anything without __dlpack__ as a capsule, and refuses it as one
            raise RuntimeError(_INVALID_CAPSULE)
        ext_tensor = _Capsule(ext_tensor)
        if ext_tensor._device[0] in (_DL_CPU, _DL_CUDA_HOST):
            array = _array_from_capsule(ext_tensor._capsule, ext_tensor._name)
            if array is not None:
                return Tensor._make(array)
    device_type, device_id = ext_tensor.__dlpack_device__()
    if device_type in (_DL_CPU, _DL_CUDA_HOST):
        xp = np
    elif device_type == _DL_CUDA:
        xp = module_for_device(f"cuda:{builtins.int(device_id)}")
    else:
        raise RuntimeError(f"from_dlpack: unsupported DLPack device type {device_type} (chainrule runs on the CPU "
                           "and on CUDA)")
    return Tensor._make(xp.from_dlpack(ext_tensor))


def to_dlpack(tensor: Tensor):
    """torch.to_dlpack: a DLPack capsule sharing ``tensor``'s memory (consumed once by a from_dlpack)."""
    return tensor.__dlpack__()


# ---------------------------------------------------------------- values and names
def fill(input: Tensor, value) -> Tensor:
    """torch.fill: a tensor of ``input``'s shape and dtype filled with ``value`` (a number or a
    0-d tensor, which then gets the summed gradient); ``input`` gets a zero gradient."""
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                               f"{value._data.ndim} dimensions.")
        name, operand = "FillBackward1", elementwise._cast(value.to(input.device), input.dtype)
    else:
        name, operand = "FillBackward0", elementwise._as_operand(value, input.dtype, input)
    never = Tensor._make(array_module(input).zeros((), dtype=np.bool_))
    # where() with a condition never true: input's gradient is zero, value's the sum, no arithmetic on input
    return name_node(elementwise.where(never, input, operand), name, label="fill",
                     rule="the input gets a zero gradient; the value the gradient summed")


def typename(obj) -> str:
    """torch.typename: a tensor's type string ('torch.FloatTensor'), else the object's qualified name."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", None) or ""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    named = obj
    if qualname is None:
        named, module, qualname = type(obj), type(obj).__module__, type(obj).__qualname__
    if module == "chainrule" or module.startswith("chainrule."):
        return _torch_name(named, module, qualname)
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


def class_repr(cls: type) -> str:
    """repr(cls) as torch's messages print it: "<class 'torch.Tensor'>" for chainrule's classes."""
    return f"<class '{typename(cls)}'>"


def _torch_name(named, module: str, qualname: str) -> str:
    """What torch calls one of chainrule's objects in its messages: the top level's objects by their
    top-level name ('torch.Size', not the module chainrule defines it in), the Generator where torch
    keeps it (torch._C), the rest under torch's package of the same path ('torch.nn.parameter.Parameter')."""
    import chainrule
    if qualname == "Generator" and getattr(chainrule, "Generator", None) is named:
        return "torch._C.Generator"
    if getattr(chainrule, qualname, None) is named:
        return f"torch.{qualname}"
    return f"torch{module[len('chainrule'):]}.{qualname}"


# ---------------------------------------------------------------- control flow (eager)
def _predicate(pred, op: str) -> builtins.bool:
    if isinstance(pred, Tensor):
        if pred._data.size != 1:
            raise RuntimeError(f"{op}: expected pred to be bool or single-element tensor, but got a tensor of "
                               f"shape {list(pred.shape)}")
        return builtins.bool(pred._data.reshape(()))
    if isinstance(pred, (builtins.bool, np.bool_, builtins.int)):
        return builtins.bool(pred)
    raise RuntimeError(f"{op}: expected pred to be bool or tensor, but got {type(pred).__name__}")


def _operand_tuple(operands, op: str, name: str) -> tuple:
    if not isinstance(operands, (tuple, list)):
        raise RuntimeError(f"{op}: expected {name} to be a tuple or list of tensors, but got "
                           f"{type(operands).__name__}")
    return tuple(operands)


def cond(pred, true_fn, false_fn, operands=()):
    """torch.cond, eagerly: ``true_fn(*operands)`` if ``pred`` (a bool or one-element tensor) holds,
    else ``false_fn(*operands)``. Gradients flow through the branch taken."""
    take = _predicate(pred, "cond")
    operands = _operand_tuple(operands, "cond", "operands")
    return true_fn(*operands) if take else false_fn(*operands)


def _assert_async(input: Tensor, assert_msg: str | None = None) -> None:
    """torch._assert_async: raise RuntimeError unless the one-element ``input`` is nonzero (``assert_msg``
    is the message). Asynchronous on a GPU in torch; here the check runs at once (NaN counts as nonzero)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"_assert_async(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input._data.size != 1:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous" if input._data.size == 0
                           else "Boolean value of Tensor with more than one value is ambiguous")
    if not builtins.bool(input._data.reshape(())):
        raise RuntimeError(assert_msg if assert_msg is not None else
                           "Expected Tensor with single nonzero value, but got zero")


def while_loop(cond_fn, body_fn, carried_inputs):
    """torch.while_loop, eagerly: ``carried = body_fn(*carried)`` while ``cond_fn(*carried)`` holds;
    returns the final carried values as a tuple. ``body_fn`` must return as many values as it takes,
    each of the same shape and dtype."""
    carried = _operand_tuple(carried_inputs, "while_loop", "carried_inputs")
    while _predicate(cond_fn(*carried), "while_loop"):
        new = body_fn(*carried)
        new = tuple(new) if isinstance(new, (tuple, list)) else (new,)
        if len(new) != len(carried):
            raise RuntimeError(f"while_loop: body_fn returned {len(new)} values for {len(carried)} carried inputs")
        for i, (old, value) in enumerate(zip(carried, new)):
            if isinstance(old, Tensor) and (not isinstance(value, Tensor) or value.shape != old.shape
                                            or value.dtype != old.dtype):
                described = (f"shape {list(value.shape)}, dtype {value.dtype}" if isinstance(value, Tensor)
                             else type(value).__name__)
                raise RuntimeError(f"while_loop: body_fn output {i} ({described}) does not match carried input {i} "
                                   f"(shape {list(old.shape)}, dtype {old.dtype})")
        carried = new
    return carried


# ---------------------------------------------------------------- the *_copy variants of views
# the *_copy variants whose view gives several tensors: torch takes out= as a list of them, each
# written (broadcast, cast) as copy_ writes, and names its out kernel in a count mismatch
_LIST_OUT_KERNELS = {"split": "split_copy_Tensor_out()", "split_with_sizes": "split_with_sizes_copy_out",
                     "unbind": "unbind_copy_int_out"}


def _copy_variant(name: str, view):
    """torch.<name>_copy: the view op's result copied into new memory (torch's functionalised form);
    the node keeps the view's name with ``_copy``, as torch's does."""
    if name not in _LIST_OUT_KERNELS:
        def function(input: Tensor, *args, **kwargs):
            result = view(input, *args, **kwargs)
            pieces = result if isinstance(result, tuple) else (result,)
            copies = tuple(_named_copy(piece) for piece in pieces)
            return copies if isinstance(result, tuple) else copies[0]
    else:
        def function(input: Tensor, *args, out=None, **kwargs):
            result = view(input, *args, **kwargs)
            if out is None:
                return tuple(_named_copy(piece) for piece in result)
            if len(out) != len(result):
                raise RuntimeError(f"{_LIST_OUT_KERNELS[name]} expected an out= argument of size {len(result)}, "
                                   f"got size {len(out)}")
            if name == "unbind" and out:
                # torch's unbind_copy.int_out alone has autograd's out= check, and it reads only the outs
                refuse_out_under_autograd("unbind_copy", out[0], *out[1:])
            resized = name != "split"  # split_copy's kernel copies into the outs as they are (broadcast, cast)
            if resized:
                _check_resized_outs(out, result)
            with no_grad():  # torch's out kernel writes the list outside autograd: no node, leaves allowed
                for target, piece in zip(out, result):
                    if resized and target.shape != piece.shape:
                        warn_resized_out(target, piece.shape)
                        target.resize_(piece.shape)
                    target.copy_(piece)
            return None

        function.honours_out = True  # (the list form: each piece written as copy_ writes it)

    function.__name__ = function.__qualname__ = f"{name}_copy"
    function.__doc__ = f"torch.{name}_copy: ``{name}`` copied into new memory."
    return function


def _check_resized_outs(outs, pieces) -> None:
    """split_with_sizes_copy's and unbind_copy's out kernels resize each out to its piece and take
    only its dtype and device (torch checks each after resizing it; here all before any is written)."""
    for target, piece in zip(outs, pieces):
        if target.dtype != piece.dtype:
            raise RuntimeError(f"Expected out tensor to have dtype {_dtype.cpp_type_name(piece.dtype)}, but got "
                               f"{_dtype.cpp_type_name(target.dtype)} instead")
        if target.device != piece.device:
            raise RuntimeError(f"Expected out tensor to have device {piece.device}, but got {target.device} instead")


def _named_copy(piece: Tensor) -> Tensor:
    view_node = piece.grad_fn
    copied = Clone.apply(piece)  # row-major whatever the view's strides, as torch's *_copy kernels
    return copied if view_node is None else name_node(copied, f"{type(view_node).__name__}_copy",
                                                      label=getattr(view_node, "label", None))


def _slice(input: Tensor, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    d = _wrap_dim(dim, input._data.ndim, "slice")
    return input[(slice(None),) * d + (slice(start, end, step),)]


def _view_as_complex_for_copy(input: Tensor) -> Tensor:
    from . import complex

    if input.requires_grad and is_grad_enabled():
        # torch's functionalised kernel has no derivative formula for its complex output
        raise RuntimeError("view_as_complex_copy does not support automatic differentiation for outputs with "
                           "complex dtype.")
    return complex.view_as_complex(input)


def _alias(input: Tensor) -> Tensor:
    return name_node(input.view_as(input), "AliasBackward0")


def _views() -> dict:
    from . import complex, linalg, shape

    return {"alias": _alias, "view_as_real": complex.view_as_real, "view_as_complex": _view_as_complex_for_copy,
            "as_strided": as_strided, "detach": Tensor.detach, "diagonal": linalg.diagonal,
            "expand": shape.expand, "permute": shape.permute, "select": shape.select, "slice": _slice,
            "split": shape.split, "split_with_sizes": split_with_sizes, "squeeze": shape.squeeze, "t": shape.t,
            "transpose": shape.transpose, "unbind": shape.unbind, "unfold": shape.unfold,
            "unsqueeze": shape.unsqueeze, "view": shape.view}


COPY_VARIANTS = {f"{name}_copy": _copy_variant(name, view) for name, view in _views().items()}
globals().update(COPY_VARIANTS)
__all__ += list(COPY_VARIANTS)
__not_methods__ |= set(COPY_VARIANTS)
