"""Structural ops: rearranging, repeating, combining and comparing elements.

unique, unique_consecutive, repeat_interleave, meshgrid, cartesian_prod, combinations,
tril_indices, triu_indices, block_diag, rot90, diff, isin, diag_embed, diagflat, moveaxis.

Most are compositions of differentiable primitives (index_select, expand, flip, transpose, cat,
sub), which is exact and records torch's node names through ``name_node``. ``block_diag`` and
``diag_embed`` are one Function each: torch records one node for them, and their adjoints are
plain slices. The outputs of unique, isin and the index functions are values, counts or indices
and carry no gradient.
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from .. import _config, _dtype, _vmap_frames
from .._backend import array_module, refuse_pinning
from ..autograd import function as _function
from ..autograd.function import Function, SavedValue, as_uint64, ctx_value, name_node
from ..tensor import Tensor, _wrap_dim, honours_out
from . import creation
from ._arg_parser import check_as, check_int, check_str, int_list
from .elementwise import _cast, ne, sub
from .index import index_select
from .shape import cat, clone, contiguous, expand, flip, movedim, narrow, reshape, stack, transpose

__all__ = ["unique", "unique_consecutive", "repeat_interleave", "meshgrid", "cartesian_prod", "combinations",
           "tril_indices", "triu_indices", "block_diag", "rot90", "diff", "isin", "diag_embed", "diagflat",
           "moveaxis"]
__not_methods__ = {"meshgrid", "cartesian_prod", "combinations", "tril_indices", "triu_indices", "block_diag",
                   "isin"}

# torch.moveaxis is torch.movedim under NumPy's name
moveaxis = movedim


def _check_tensor(value, op: str, argument: str = "input") -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{argument}' (position 1) must be Tensor, not {_dtype.c_type_name(value)}")


def _index_tensor(array) -> Tensor:
    xp = array_module(array)
    return Tensor._make(xp.asarray(array, dtype=np.int64))


# ---------------------------------------------------------------- unique
def _unique_flat(x):
    xp = array_module(x)
    # each NaN is a value of its own, as in torch (NaN != NaN)
    values, inverse, counts = xp.unique(x.reshape(-1), return_inverse=True, return_counts=True, equal_nan=False)
    return values, inverse.reshape(x.shape), counts


def _unique_along(x, dim: int):
    """Unique slices along ``dim``, sorted lexicographically, with each slice's group and the counts."""
    xp = array_module(x)
    moved = xp.moveaxis(x, dim, 0)
    rows = moved.reshape(moved.shape[0], int(np.prod(moved.shape[1:])))  # (-1 fails on size 0)
    if rows.shape[0] == 0:
        return x, xp.zeros(0, np.int64), xp.zeros(0, np.int64)
    # lexsort's last key is the primary one: the first column decides first
    order = xp.lexsort(rows.T[::-1]) if rows.shape[1] else xp.arange(rows.shape[0])
    ordered = rows[order]
    starts = xp.ones(rows.shape[0], bool)
    starts[1:] = xp.any(ordered[1:] != ordered[:-1], axis=1)
    group = xp.cumsum(starts) - 1
    inverse = xp.empty_like(group)
    inverse[order] = group
    first = xp.nonzero(starts)[0]
    counts = xp.diff(xp.concatenate([first, xp.asarray([rows.shape[0]])]))
    return xp.moveaxis(moved[order[first]], 0, dim), inverse, counts


def _unique_result(values, inverse, counts, return_inverse: bool, return_counts: bool):
    out = [Tensor._make(values)]
    if return_inverse:
        out.append(_index_tensor(inverse))
    if return_counts:
        out.append(_index_tensor(counts))
    return out[0] if len(out) == 1 else tuple(out)


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,
           dim: int | None = None):
    """torch.unique: the distinct values (or slices along ``dim``) in ascending order, optionally with
    each element's index into them (``return_inverse``, int64, input's shape or (size(dim),)) and
    how often each occurs (``return_counts``). Like torch on the CPU, the result is sorted even
    when ``sorted=False``. The values carry no gradient."""
    # torch's Python unique hands the flags to _unique2 or unique_dim, whose parser refuses sorted=2
    flags = {"sorted": sorted, "return_inverse": return_inverse, "return_counts": return_counts}
    if dim is None:
        check_as("_unique2", input, **flags)
    else:
        check_as("unique_dim", input, dim, **flags)
    _check_tensor(input, "unique")
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("_unique2" if dim is None else "unique_dim", unique, (input, sorted, return_inverse, return_counts, dim), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    _vmap_frames.refuse_dynamic_shape(input, "aten::_unique2" if dim is None else "aten::unique_dim")
    x = input._data
    _dtype.refuse_float8(x.dtype, "unique" if dim is None else "unique_dim")
    if x.dtype.kind == "c" and dim is None:
        raise NotImplementedError(f"\"unique\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    if dim is None:
        values, inverse, counts = _unique_flat(x)
    else:
        d = _wrap_dim(dim, x.ndim, "unique")
        if any(size == 0 for k, size in enumerate(x.shape) if k != d):
            raise RuntimeError("There are 0 sized dimensions, and they aren't selected, so unique cannot be applied")
        values, inverse, counts = _unique_along(x if x.ndim else x.reshape(1), d)
    return _unique_result(values, inverse, counts, return_inverse, return_counts)


def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False,
                       dim: int | None = None):
    """torch.unique_consecutive: drops every element (or slice along ``dim``) equal to the one before
    it, keeping the order; ``return_inverse`` and ``return_counts`` as in ``unique``."""
    _check_tensor(input, "unique_consecutive")
    check_as("unique_consecutive", input, return_inverse=return_inverse, return_counts=return_counts, dim=dim)
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("unique_consecutive", unique_consecutive, (input, return_inverse, return_counts, dim), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    _vmap_frames.refuse_dynamic_shape(input, "aten::unique_consecutive")
    xp = array_module(input)
    x = input._data
    if dim is None:
        flat = x.reshape(-1)
        moved, rows = flat, flat.reshape(-1, 1)
        d = None
    else:
        d = _wrap_dim(dim, x.ndim, "unique_consecutive")
        moved = xp.moveaxis(x if x.ndim else x.reshape(1), d, 0)
        rows = moved.reshape(moved.shape[0], int(np.prod(moved.shape[1:])))  # (-1 fails on size 0)
    n = rows.shape[0]
    starts = xp.ones(n, bool)
    if n > 1:
        starts[1:] = xp.any(rows[1:] != rows[:-1], axis=1)
    first = xp.nonzero(starts)[0]
    counts = xp.diff(xp.concatenate([first, xp.asarray([n])])) if n else xp.zeros(0, np.int64)
    inverse = xp.cumsum(starts) - 1
    if d is None:
        values, inverse = moved[first], inverse.reshape(x.shape)
    else:
        values = xp.moveaxis(moved[first], 0, d)
    return _unique_result(values, inverse, counts, return_inverse, return_counts)


# ---------------------------------------------------------------- repeat_interleave
def _check_repeats_dtype(repeats, op: str = "repeat_interleave") -> None:
    """torch's counts kernel dispatches on the index types only: int32 and int64 counts."""
    if repeats._data.dtype not in (np.int32, np.int64):
        raise NotImplementedError(f'"{op}_cpu" not implemented for \'{_dtype.scalar_name(repeats.dtype)}\'')


def _repeats_array(repeats, size: int, dim: int = 0, op: str = "repeat_interleave"):
    """``repeats`` as a host int64 array of ``size`` entries (a one-element tensor is broadcast),
    checked in torch's order: the rank and the size along ``dim`` before the dtype."""
    if repeats._data.ndim > 1:
        raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
    n = repeats._data.size
    if repeats._data.ndim == 1 and n != 1 and n != size:
        raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                           f"{n} and input.size({dim}) = {size}")
    return _counts_array(repeats, op, size)


def _counts_array(repeats, op: str = "repeat_interleave", size: int | None = None):
    """The counts of the one-argument form ``repeat_interleave(counts)``, which takes int32/int64
    vectors only; ``size`` broadcasts a one-element ``repeats`` of the input form."""
    _check_repeats_dtype(repeats, op)
    if size is None and repeats._data.ndim != 1:
        raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
    # the counts decide the output's shape, so they are read on the host (a device sync, as in torch)
    counts = repeats.cpu().numpy().reshape(-1).astype(np.int64)
    if size is not None and counts.size == 1 and size != 1:
        counts = np.broadcast_to(counts, (size,))
    if (counts < 0).any():
        raise RuntimeError("repeats can not be negative")
    return counts


def repeat_interleave(input: Tensor | None = None, repeats=None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """torch.repeat_interleave: repeat each element (or each slice along ``dim``) ``repeats`` times
    in place, unlike ``repeat``, which tiles the whole tensor. ``repeats`` is an int or a tensor of
    one count per slice; ``dim=None`` works on the flattened input. With only a tensor of counts,
    ``repeat_interleave(counts)`` is the index pattern ``[0]*counts[0] + [1]*counts[1] + ...``."""
    if input is None:  # repeat_interleave(repeats=counts): torch's (Tensor repeats) overload by keyword
        input, repeats = repeats, None
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        name = "repeat_interleave." + ("Tensor" if repeats is None else "self_Tensor" if isinstance(repeats, Tensor)
                                       else "self_int")
        args = (input,) if repeats is None else (input, repeats, dim)
        made = _function.argument_dispatch(name, repeat_interleave, args,
                                           {} if output_size is None else {"output_size": output_size})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    _check_tensor(input, "repeat_interleave")
    if repeats is None:
        counts = _counts_array(input)
        _check_counted_output_size(output_size, counts.sum().item())
        index = np.repeat(np.arange(counts.size), counts)
        # the indices come in the counts' dtype (int32 counts give int32 indices, as in torch)
        return Tensor._make(array_module(input).asarray(index, dtype=input._data.dtype))
    if dim is None:
        input, d = reshape(input, (-1,)), 0
    else:
        d = _wrap_dim(dim, input._data.ndim, "repeat_interleave")
        if input._data.ndim == 0:  # torch repeats a 0-d input only with dim=None
            raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    size = input._data.shape[d]
    if isinstance(repeats, numbers.Integral) and not isinstance(repeats, bool):
        repeats = check_int(repeats, "repeat_interleave", "repeats")
        if repeats < 0:
            raise RuntimeError("Repeats must be non-negative")
        if output_size is not None and output_size != size * repeats:
            raise RuntimeError(f"repeat_interleave: Invalid output_size, expected {size * repeats} but got "
                               f"{output_size}")
        # each slice gets a new axis after it, expanded ``repeats`` times, then merged: torch's
        # own composition (a view of an expand), so its node is torch's ViewBackward0. The copy
        # comes first: a merge NumPy could do as a view (size-1 dims) would leave zero strides
        shape = input._data.shape
        spread = expand(input.unsqueeze(d + 1), *shape[:d + 1], int(repeats), *shape[d + 1:])
        out = reshape(contiguous(spread), (*shape[:d], size * int(repeats), *shape[d + 1:]))
        result = name_node(out, "ViewBackward0", label="repeat_interleave")
    elif isinstance(repeats, Tensor):
        # torch's message names the dim as it was passed (-1 stays -1)
        counts = _repeats_array(repeats, size, d if dim is None else dim)
        _check_counted_output_size(output_size, counts.sum().item())
        index = array_module(input).asarray(np.repeat(np.arange(size), counts))
        result = index_select(input, d, _index_tensor(index))
    else:
        raise TypeError(f"repeat_interleave(): argument 'repeats' must be int or Tensor, not "
                        f"{type(repeats).__name__}")
    return result


def _check_counted_output_size(output_size: int | None, total: int) -> None:
    """torch's kernel for tensor counts allocates ``output_size`` indices, then fills them: a
    negative size fails the allocation, any other wrong one the fill, in the kernel's words."""
    if output_size is None:
        return
    if output_size < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {output_size}: [{output_size}]")
    if output_size != total:
        raise RuntimeError("allocated size does not match required size")


# ---------------------------------------------------------------- grids and combinations
def _tensor_args(tensors, one_list: bool = True) -> list:
    """The tensors of ``meshgrid(*tensors)`` or ``cartesian_prod(*tensors)``, or of ``meshgrid([tensors])``
    where torch's signature takes one list; the empty list refused in meshgrid's words (cartesian_prod
    is built on it, as torch's)."""
    if one_list and len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            # (torch's words from the parser of the _VF function its Python one calls: no op named)
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
    return list(tensors)


def _printed_as_cpp(t: Tensor) -> str:
    """``t`` as torch's C++ ``operator<<`` prints it into a message (ATen's Formatting.cpp, 80
    columns): the values in one format chosen over all of them, one 2-d slice at a time under
    "(i,j,.,.) = ", then ``[ torch.FloatTensor{2,3} ]``."""
    values = np.array(t.tolist())  # (on any device; ATen prints a copy in double, a complex one's real part)
    values = (values.real if np.iscomplexobj(values) else values).astype(np.float64).reshape(tuple(t.shape))
    type_name = _dtype.type_string(t.dtype)
    if t.device.type == "cuda":
        type_name = type_name.replace("torch.", "torch.cuda.") if type_name.startswith("torch.") else \
            "CUDA" + type_name[3:]
    footer = f"[ {type_name}{{{','.join(str(n) for n in values.shape)}}} ]"
    if values.size == 0:
        return footer
    scale, width, number = _cpp_print_format(values.ravel())

    def matrix(m: np.ndarray, indent: int) -> str:
        # ATen's __printMatrix, row by row (its first row follows the slice's header unindented)
        text, per_line, first = "", (80 - indent) // (width + 1), 0
        while first < m.shape[1]:
            last = min(first + per_line, m.shape[1]) - 1
            if per_line < m.shape[1]:
                text += ("\n" if first else "") + f"Columns {first + 1} to {last + 1}" + " " * indent
            if scale != 1:
                text += f"{scale:g} *\n" + " " * indent
            for row_index, row in enumerate(m):
                text += " ".join(number(v / scale).rjust(width) for v in row[first:last + 1]) + "\n"
                if row_index != len(m) - 1:
                    text += " " * indent + (" " if scale != 1 else "")
            first = last + 1
        return text

    if values.ndim == 2:
        return matrix(values, 0) + footer
    blocks = []
    for index in np.ndindex(*values.shape[:-2]):
        head = "(" + "".join(f"{i + 1}," for i in index) + ".,.) = \n"
        blocks.append(head + matrix(values[index], 1))
    return "\n".join(blocks) + footer


def _cpp_print_format(flat: np.ndarray):
    """ATen's __printFormat: (scale, column width, how one value prints) for all of ``flat``."""
    finite = flat[np.isfinite(flat)]
    int_mode = bool(np.all(finite == np.ceil(finite)))
    if finite.size == 0:
        exp_min = exp_max = 1.0
    else:
        magnitudes = np.abs(finite)
        low = magnitudes.min()
        # (ATen compares the signed value with the running maximum; kept as it is)
        high = abs(float(finite[0]))
        for value, magnitude in zip(finite, magnitudes):
            if value > high:
                high = magnitude
        exp_min = math.floor(math.log10(low)) + 1 if low != 0 else 1
        exp_max = math.floor(math.log10(high)) + 1 if high != 0 else 1
    scale = 1.0
    if int_mode:
        if exp_max > 9:
            return scale, 11, lambda v: f"{v:.4e}"
        return scale, int(exp_max) + 1, lambda v: f"{v:g}"
    if exp_max - exp_min > 4:
        width = 12 if abs(exp_max) > 99 or abs(exp_min) > 99 else 11
        return scale, width, lambda v: f"{v:.4e}"
    if exp_max > 5 or exp_max < 0:
        return 10.0 ** (exp_max - 1), 7, lambda v: f"{v:.4f}"
    return scale, 7 if exp_max == 0 else int(exp_max) + 6, lambda v: f"{v:.4f}"


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """torch.meshgrid: N 0-d/1-d tensors -> N tensors of shape (len(t0), ..., len(tN-1)), the i-th
    varying along dim i ('ij', the default) or with the first two dims swapped ('xy', NumPy's
    default). Each output is an expanded view of its input."""
    tensors = _tensor_args(tensors)
    if indexing is None:
        # torch's TORCH_WARN_ONCE: once per process
        _config.warn_once("torch.meshgrid: in an upcoming release, it will be required to pass the indexing "
                          "argument. (Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/"
                          "TensorShape.cpp:4215.)")
        indexing = "ij"
    check_str(indexing, "meshgrid", "indexing")
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    for t in tensors:  # (all of them before any one's dims, as torch)
        if t.dtype != tensors[0].dtype:
            raise RuntimeError("meshgrid expects all tensors to have the same dtype")
        if t.device != tensors[0].device:
            raise RuntimeError("meshgrid expects all tensors to have the same device")
    for t in tensors:
        if t._data.ndim > 1:
            raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: "
                               + _printed_as_cpp(t))
    swap = indexing == "xy" and len(tensors) >= 2
    if swap:  # 'xy' is 'ij' with the first two inputs swapped, and so their outputs
        tensors[0], tensors[1] = tensors[1], tensors[0]
    sizes = [t._data.size for t in tensors]
    grids = []
    for i, t in enumerate(tensors):
        shape = [1] * len(tensors)
        shape[i] = sizes[i]
        # (named even where the expand was a no-op, as torch records one there too)
        grids.append(name_node(expand(reshape(t, tuple(shape)), *sizes), "ExpandBackward0"))
    if swap:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def cartesian_prod(*tensors) -> Tensor:
    """torch.cartesian_prod: every combination of one element from each 1-d tensor, as rows of a
    (prod(len), N) tensor in lexicographic order (itertools.product); one tensor is returned as is."""
    tensors = _tensor_args(tensors, one_list=False)  # torch's takes tensors only
    for t in tensors:
        if t._data.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t._data.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([reshape(g, (-1,)) for g in grids], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """torch.combinations: the length-``r`` combinations of a 1-d tensor's elements as rows of an
    (n_combinations, r) tensor, in itertools.combinations (or combinations_with_replacement) order."""
    _check_tensor(input, "combinations")
    if input._data.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input._data.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    xp = array_module(input)
    if r == 0:
        return Tensor._make(xp.zeros((0,), input._data.dtype))
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    rows = np.array(list(pick(range(input._data.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    return stack([index_select(input, 0, _index_tensor(xp.asarray(rows[:, k]))) for k in range(r)], 1)


def _triangle_indices(op: str, which, row: int, col: int, offset: int, dtype, device, layout,
                      requires_grad: bool) -> Tensor:
    creation._strided_only(layout, op)
    if row < 0:
        raise RuntimeError(f"row must be non-negative, got{row}")
    if col < 0:
        raise RuntimeError(f"col must be non-negative, got{col}")
    dtype = _dtype.int64 if dtype is None else _dtype.to_dtype(dtype)
    if dtype not in (_dtype.int64, _dtype.int32):
        raise NotImplementedError(f'"{op}" not implemented for \'{_dtype.scalar_name(dtype)}\'')
    rows, cols = which(row, offset, col)
    xp = creation._xp(device)
    return creation._finish(xp.asarray(np.stack([rows, cols]).reshape(2, -1).astype(dtype.np)), requires_grad)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None,
                 pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    """torch.tril_indices: the (2, N) row and column indices of the lower triangle of a row x col
    matrix, on and below diagonal ``offset``, in row-major order."""
    refuse_pinning(pin_memory)
    return _triangle_indices("tril_indices", np.tril_indices, row, col, offset, dtype, device, layout, requires_grad)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None,
                 pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    """torch.triu_indices: as ``tril_indices``, for the upper triangle, on and above ``offset``."""
    refuse_pinning(pin_memory)
    return _triangle_indices("triu_indices", np.triu_indices, row, col, offset, dtype, device, layout, requires_grad)


# ---------------------------------------------------------------- block_diag, diag_embed
class BlockDiag(Function):
    _array_forward = True
    node_name = "BlockDiagBackward0"
    label = "block_diag"
    rule = "∂/∂blockᵢ = the gradient's i-th diagonal block"
    formula = "block_diag({0}, ...)"

    @staticmethod
    def forward(ctx, *blocks):
        xp = array_module(*blocks)
        ctx.shapes = [b.shape for b in blocks]
        rows, cols = sum(s[0] for s in ctx.shapes), sum(s[1] for s in ctx.shapes)
        out = xp.zeros((rows, cols), dtype=blocks[0].dtype)
        r = c = 0
        for b in blocks:
            out[r:r + b.shape[0], c:c + b.shape[1]] = b
            r, c = r + b.shape[0], c + b.shape[1]
        return out

    @staticmethod
    def backward(ctx, grad):
        pieces, r, c = [], 0, 0
        for rows, cols in ctx.shapes:
            pieces.append(grad[r:r + rows, c:c + cols])
            r, c = r + rows, c + cols
        return tuple(pieces)


def block_diag(*tensors) -> Tensor:
    """torch.block_diag: the tensors (0-d, 1-d as one row, or 2-d) placed along the diagonal of
    one 2-d tensor, zeros elsewhere; dtypes promote."""
    blocks = []
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
        if t._data.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {i} has "
                               f"{t._data.ndim} dimensions")
        blocks.append(reshape(t, (1, -1)) if t._data.ndim < 2 else t)
    if not blocks:
        return Tensor._make(np.zeros((1, 0), _dtype.get_default_dtype().np))
    dtype = _dtype.result_type(*blocks)
    return BlockDiag.apply(*[_cast(b, dtype) for b in blocks])


class DiagEmbed(Function):
    _array_forward = True
    node_name = "DiagEmbedBackward0"
    label = "diag_embed"
    rule = "∂/∂a = the gradient's diagonal (offset, dim1, dim2)"
    formula = "diag_embed({0})"
    # the dims as given and the offset (negative ones as the C++ node's unsigned)
    saved_attributes = {"_saved_dim1": SavedValue(lambda node: as_uint64(getattr(node, "given_dims", (node.dim1,))[0])),
                        "_saved_dim2": SavedValue(lambda node: as_uint64(getattr(node, "given_dims", (0, node.dim2))[1])),
                        "_saved_offset": ctx_value("offset", as_uint64)}

    @staticmethod
    def forward(ctx, x, offset, dim1, dim2):
        xp = array_module(x)
        ctx.offset, ctx.dim1, ctx.dim2 = offset, dim1, dim2
        n = x.shape[-1] + abs(offset)
        batch = x.shape[:-1]
        out = xp.zeros(batch + (n, n), dtype=x.dtype)
        k = xp.arange(x.shape[-1])
        rows, cols = (k, k + offset) if offset >= 0 else (k - offset, k)
        out[..., rows, cols] = x
        # the square's two dims were built last; move them to dim1 and dim2 of the output
        return xp.ascontiguousarray(xp.moveaxis(out, (-2, -1), (dim1, dim2)))

    @staticmethod
    def backward(ctx, grad):
        return grad.diagonal(ctx.offset, ctx.dim1, ctx.dim2)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """torch.diag_embed: each last-dim vector of ``input`` placed on diagonal ``offset`` of the
    square over output dims ``dim1`` and ``dim2`` (output rank = input rank + 1), zeros elsewhere."""
    _check_tensor(input, "diag_embed")
    rank = input._data.ndim + 1
    d1, d2 = _wrap_dim(dim1, rank, "diag_embed"), _wrap_dim(dim2, rank, "diag_embed")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    if input._data.ndim == 0:
        input = reshape(input, (1,))
    out = DiagEmbed.apply(input, offset=offset, dim1=d1, dim2=d2)
    if out._grad_fn is not None and (dim1 < 0 or dim2 < 0):
        out._grad_fn.given_dims = (dim1, dim2)
    return out


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """torch.diagflat: the flattened input on diagonal ``offset`` of a 2-d square."""
    _check_tensor(input, "diagflat")
    return diag_embed(reshape(input, (-1,)), offset)


# ---------------------------------------------------------------- rot90, diff, isin
def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """torch.rot90: rotate by 90° ``k`` times in the plane of ``dims``, from the first dim's
    direction towards the second's (NumPy's rot90)."""
    _check_tensor(input, "rot90")
    # torch's argument parser: k an int (not a float, nor a bool), dims a tuple of ints
    k = check_int(k, "rot90", "k")
    dims = list(int_list(dims, "rot90", "dims", sized=False))
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    ndim = input._data.ndim
    if ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {ndim}")
    d0, d1 = _wrap_dim(dims[0], ndim, "rot90"), _wrap_dim(dims[1], ndim, "rot90")
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        out = transpose(flip(input, [d1]), d0, d1)
    elif k == 2:
        out = flip(input, [d0, d1])
    elif k == 3:
        out = transpose(flip(input, [d0]), d0, d1)
    else:
        out = clone(input)
    return name_node(out, "Rot90Backward0", label="rot90", rule="rotates the gradient back by -k quarter turns")


@honours_out
def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None,
         append: Tensor | None = None) -> Tensor:
    """torch.diff: the ``n``-th forward difference ``out[i] = x[i+1] - x[i]`` along ``dim``, after
    joining ``prepend`` and ``append`` to ``input`` there; for bool tensors, ``x[i+1] != x[i]``."""
    _check_tensor(input, "diff")
    if input._data.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = _wrap_dim(dim, input._data.ndim, "diff")
    for joined in (prepend, append):  # torch's diff_check, before any work (and before n == 0's copy)
        if joined is None:
            continue
        if joined._data.ndim != input._data.ndim:
            raise RuntimeError("diff expects prepend or append to be the same dimension as input")
        for i, (size, joined_size) in enumerate(zip(input._data.shape, joined._data.shape)):
            if i != d and size != joined_size:
                raise RuntimeError("diff expects the shape of tensor to prepend or append to match that of input "
                                   f"except along the differencing dimension; input.size({i}) = {size}, but got "
                                   f"tensor.size({i}) = {joined_size}")
    if n == 0:  # torch returns a copy, recorded as its copy node
        return name_node(clone(input), "torch::autograd::CopyBackwards", label="diff")
    parts = [p for p in (prepend, input, append) if p is not None]
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        length = x._data.shape[d]
        if length == 0:
            break
        later, earlier = narrow(x, d, 1, length - 1), narrow(x, d, 0, length - 1)
        x = ne(later, earlier) if x._data.dtype == np.bool_ else sub(later, earlier)
    return x


@honours_out
def isin(elements=None, test_elements=None, *, assume_unique: bool = False, invert: bool = False, element=None,
         test_element=None) -> Tensor:
    """torch.isin: a bool tensor of ``elements``' shape, True where the element occurs in
    ``test_elements`` (False with ``invert=True``). Either argument may be a Python number, which
    torch's overloads name ``element`` and ``test_element`` (the None defaults only tell the
    spellings apart: both values are required)."""
    for name, value, number in (("elements", elements, element), ("test_elements", test_elements, test_element)):
        if value is not None and number is not None:
            raise TypeError(f"isin() got multiple values for argument '{name}'")
    elements = element if element is not None else elements
    test_elements = test_element if test_element is not None else test_elements
    if elements is None or test_elements is None:
        raise TypeError(f"isin() missing required argument '{'elements' if elements is None else 'test_elements'}'")
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError(f"isin() received an invalid combination of arguments - got "
                        f"({type(elements).__name__}, {type(test_elements).__name__}), but expected at least "
                        f"one Tensor")
    for value, name in ((elements, "elements"), (test_elements, "test_elements")):
        if not isinstance(value, (Tensor, numbers.Number)):
            raise TypeError(f"isin(): argument '{name}' must be Tensor or Number, not {type(value).__name__}")
    like = elements if isinstance(elements, Tensor) else test_elements
    for value in (elements, test_elements):
        if isinstance(value, Tensor) and value._data.dtype.kind in "cb":
            raise RuntimeError(f"Unsupported input type encountered for isin(): {_dtype.scalar_name(value.dtype)}")
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        overload = "Tensor_Tensor" if isinstance(elements, Tensor) and isinstance(test_elements, Tensor) else \
            "Tensor_Scalar" if isinstance(elements, Tensor) else "Scalar_Tensor"
        flags = {name: True for name, value in (("assume_unique", assume_unique), ("invert", invert)) if value}
        made = _function.argument_dispatch(f"isin.{overload}", isin, (elements, test_elements), flags)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    _dtype.refuse_wide_unsigned("structural.isin", like._data)
    xp = array_module(like)
    a = elements._data if isinstance(elements, Tensor) else xp.asarray(elements)
    b = test_elements._data if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    return Tensor._make(xp.isin(a, b, assume_unique=assume_unique, invert=invert))
