"""Indexing: reads (``x[key]``) and writes (``x[key] = v``) with ints, slices, None, Ellipsis,
boolean masks and integer tensors, plus gather/scatter/index_select/masked_fill and friends.

A read's gradient scatters back into zeros of the input's shape, summing repeated indices.
"""

from __future__ import annotations

import math
import operator
import re
import warnings

import numpy as np

from .. import _config, _dtype, _vmap_frames
from .. import tensor as _tensor_module
from .._backend import (
    array_module,
    gpu_in_use,
    has_expanded_dims,
    is_array,
    strided_view,
    ufunc_at,
    write_refusal,
    writeable,
)
from .._dtype import checked_scalar, refuse_float8, scalar_name
from ..autograd import forward_ad as _forward_ad
from ..autograd import function as _function
from ..autograd.engine import _fixed_gradient
from ..autograd.function import (
    Function,
    InputView,
    SavedValue,
    _make_node,
    as_uint64,
    is_recording,
    name_node,
    without_derivative,
)
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..storage import storage_root
from ..tensor import Tensor, _wrap_dim, honours_out, warn_discarding_imaginary
from ._arg_parser import check_str
from .complex import ViewAsReal, view_as_complex
from .complex import _view_as_real as view_as_real
from .elementwise import SPARSE_COO_TYPES, on_its_gpu, where, zeros_like_tensor
from .linear import cpp_type_name
from .memory_format import iterator_dim_order
from .second_order import depending_on
from .shape import MadeWithoutGrad, _share, expanded_shape, reshape, torch_empty_slice

# the functions whose chainrule.<name> takes torch's out=, with torch's rule for the out's dtype
# (ops/_arg_parser.py namespace_with_out; chainrule/__init__.py wraps them)
__out_functions__ = {"index_select": "same_scalar_type", "take": "same_as_self", "masked_select": "same_scalar_type", "gather": "same",
                     "nonzero": "long"}
__all__ = ["getitem", "setitem", "gather", "scatter", "scatter_add", "scatter_reduce",
           "index_select", "index_add", "index_fill", "index_copy", "masked_fill", "masked_select",
           "masked_scatter", "take", "take_along_dim", "nonzero", "argwhere"]
__not_methods__ = {"getitem", "setitem"}
__tensor_methods__ = {"__getitem__": "getitem", "__setitem__": "setitem"}


def _convert_key(key, xp=np, shape: tuple | None = None):
    """Tensors and lists inside an index become arrays; everything else passes to NumPy.

    Index arrays go to the indexed tensor's device: torch accepts CPU index tensors (and lists)
    for a CUDA tensor, and copies them over, as CuPy does with a list. With the indexed tensor's
    ``shape``, the key is first checked in torch's order (see _check_key_in_torch_order).
    """
    if (type(key) is list or isinstance(key, str)) and len(key) < 32:
        # torch (after NumPy's old rule) reads a short list holding tensors, sequences, slices, None
        # or Ellipsis as a tuple of indices: x[[rows, cols]] is x[rows, cols]; a string too, its
        # letters being sequences (x["ab"] is x["a", "b"], refused below as strings)
        for k in key:
            if isinstance(k, (Tensor, list, tuple, np.ndarray, slice, str, bytes)) or k is None or k is Ellipsis:
                line = 359 if k is None or k is Ellipsis else 349  # (where torch's check warns)
                warnings.warn(_NON_TUPLE_SEQUENCE.format(line=line), UserWarning, stacklevel=3)
                key = tuple(key)
                break
    if isinstance(key, tuple) and shape is not None and sum(k is Ellipsis for k in key) > 1:
        key = _with_one_ellipsis(key, shape)
    if isinstance(key, tuple) and shape or shape == () and not isinstance(key, (int, np.integer, slice)):
        # (one item is checked as torch does by the read itself; a 0-d tensor's lone integer or
        # slice gets torch's own words, in getitem)
        _check_key_in_torch_order(key if isinstance(key, tuple) else (key,), shape)
    if xp is np and gpu_in_use():  # (a CUDA index can exist only once CuPy or the stand-in is in use)
        _refuse_device_indices(key)
    if isinstance(key, tuple):
        key = tuple(_convert_key_item(k) for k in key)
        if xp is not np:
            key = tuple(xp.asarray(k) if type(k) is np.ndarray else k for k in key)
        return key
    key = _convert_key_item(key)
    return xp.asarray(key) if xp is not np and type(key) is np.ndarray else key


_NON_TUPLE_SEQUENCE = (
    "Using a non-tuple sequence for multidimensional indexing is deprecated and will be changed in pytorch 2.9; use "
    "x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will be interpreted as tensor index, x[torch.tensor(seq)], "
    "which will result either in an error or a different result (Triggered internally at "
    "/__w/pytorch/pytorch/torch/csrc/autograd/python_variable_indexing.cpp:{line}.)")


def _refuse_text_index(k) -> None:
    """torch reads a string (or bytes) index item as a sequence for torch.tensor, which refuses it;
    a NumPy bytes or str scalar as a NumPy array (a bare NumPy str key is read as its letters, str)."""
    if isinstance(k, (np.bytes_, np.str_)):
        _refuse_numpy_text(np.asarray(k))
    if isinstance(k, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{'str' if isinstance(k, str) else 'bytes'}'")


def _refuse_device_indices(key) -> None:
    """A CPU tensor indexed by a CUDA index tensor: torch copies a CPU index to a CUDA tensor's
    device, never the reverse, and refuses it with this RuntimeError (a 0-d index is a number)."""
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, Tensor) and type(k._data) is not np.ndarray and k._data.ndim and k.device.type == "cuda":
            raise RuntimeError("indices should be either on cpu or on the same device as the indexed tensor (cpu)")


def _with_one_ellipsis(items: tuple, shape: tuple) -> tuple:
    """A key holding several Ellipses as torch reads it, with at most one: torch moves its dim
    pointer past the unindexed dims at every Ellipsis, so with none to skip the extra ones do
    nothing, and otherwise what follows the second lies beyond the tensor: a whole slice passes,
    anything else is refused with the error torch's op at that dim gives (an integer's names the
    item's position and size 0, the size torch reads there)."""
    specified = sum(_dims_indexed(k) for k in items)
    if specified >= len(shape):  # nothing to skip, or too many indices (refused as usual)
        _check_key_in_torch_order(items, shape)  # (an integer's error names its position in this key)
        first = items.index(Ellipsis)
        return items[:first + 1] + tuple(k for k in items[first + 1:] if k is not Ellipsis)
    skipped = len(shape) - specified
    kept, dim, ndim, beyond = [], 0, len(shape), None  # ndim: the dims of the result so far
    for position, k in enumerate(items):
        if k is Ellipsis:
            whole = [slice(None)] * skipped
            kept += whole[:max(ndim - dim, 0)]
            dim += skipped
        elif dim < ndim or (k is None or isinstance(k, (bool, np.bool_))) and dim == ndim:
            kept.append(k)
            if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
                ndim -= 1
            else:
                ndim += k is None or isinstance(k, (bool, np.bool_))
                dim += _dims_indexed(k) if isinstance(k, Tensor) else 1
        elif isinstance(k, slice) and k.start in (None, 0) and k.step in (None, 1) and (k.stop is None or k.stop >= 0):
            dim += 1  # torch's whole-slice shortcut (it reads size 0 there)
        elif isinstance(k, slice) or k is None or isinstance(k, (bool, np.bool_)):
            extra = not isinstance(k, slice)  # unsqueeze takes one dim more
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim - extra}, "
                             f"{ndim - 1 + extra}], but got {dim})")
        elif isinstance(k, (int, np.integer)):
            raise IndexError(f"index {k} is out of bounds for dimension {position} with size 0")
        else:  # an index tensor (or list), gathered at the end as torch does
            dim += 1
            beyond = dim
    if beyond is not None:
        raise IndexError(f"too many indices for tensor of dimension {ndim} (got {beyond})")
    return tuple(kept)


def _dims_indexed(k) -> int:
    """How many of the indexed tensor's dims a key item consumes (a mask: one per dim of its own)."""
    if k is None or k is Ellipsis or isinstance(k, (bool, np.bool_)):
        return 0
    data = k._data if isinstance(k, Tensor) else k
    if is_array(data) and data.dtype.kind in "bu" and data.dtype.itemsize == 1:
        return data.ndim
    return 1


def _check_key_in_torch_order(items: tuple, shape: tuple) -> None:
    """torch's first checks of a key, in its order, before any index tensor is read: too many
    indices, then item by item an integer out of range (torch names the item's position in the
    key) and a slice's zero or negative step. Index tensors' dtypes and ranges come later."""
    specified, ordered = 0, False  # ordered: an integer or a slice's step to check in turn
    for k in items:
        if type(k) is slice:
            specified += 1
            ordered = ordered or k.step is not None
        elif type(k) is int:  # (the commonest, checked without the general test)
            specified += 1
            ordered = True
        elif k is not None and k is not Ellipsis:
            specified += _dims_indexed(k)
            ordered = ordered or isinstance(k, (int, np.integer))
    if specified > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if not ordered:
        return
    sizes, dim = list(shape), 0
    for position, k in enumerate(items):
        if type(k) is slice:
            if k.step is not None and not isinstance(k.step, Tensor):
                step = operator.index(k.step)
                if step == 0:
                    raise ValueError("slice step cannot be zero")
                if step < 0:
                    raise ValueError("step must be greater than zero")
            dim += 1
        elif type(k) is int or isinstance(k, np.integer) and not isinstance(k, np.bool_):
            _check_int64(k)
            if not -sizes[dim] <= k < sizes[dim]:
                raise IndexError(f"index {k} is out of bounds for dimension {position} with size {sizes[dim]}")
            del sizes[dim]
        elif k is None or isinstance(k, (bool, np.bool_)):
            sizes.insert(dim, 1)
            dim += 1
        elif k is Ellipsis:
            dim += len(shape) - specified
        else:
            _refuse_text_index(k)  # (in its turn: an integer before it is checked first)
            dim += _dims_indexed(k)


def _numpy_keys_as_tensors(key):
    """NumPy arrays in an index, read as torch reads them: as ``torch.tensor(array)`` built for
    indexing (torch's indexing_tensor_from_data), so a uint8 array keeps its dtype and is a
    (deprecated) mask, a bool array a mask, and any other number array is cast to int64 (floats
    truncated toward zero, as the C cast does)."""
    if key.__class__ is np.ndarray:
        return _numpy_key_as_tensor(key)
    if key.__class__ is tuple:
        for k in key:  # (a loop, not any(...): this runs on every general-path index)
            if k.__class__ is np.ndarray:
                return tuple(_numpy_key_as_tensor(k) if k.__class__ is np.ndarray else k for k in key)
    return key


def _refuse_numpy_text(array: np.ndarray) -> None:
    """torch.tensor's refusal of a NumPy array of bytes or str, which torch's indexing builds."""
    from .creation import _TORCH_NUMPY_TYPES

    raise TypeError(f"can't convert np.ndarray of type numpy.{array.dtype.type.__name__}. The only supported types "
                    f"are: {_TORCH_NUMPY_TYPES}.")


def _numpy_key_as_tensor(array: np.ndarray):
    if array.dtype.kind in "SU":
        _refuse_numpy_text(array)
    if array.dtype.kind not in "biuf":
        return array  # (NumPy's own words for an object or string array)
    return Tensor._make(array if array.dtype in (np.uint8, np.bool_) else array.astype(np.int64))


def _convert_key_item(k):
    if isinstance(k, slice):
        if k.step is not None:
            step = int(k.step)
            if step == 0:
                raise ValueError("slice step cannot be zero")
            if step < 0:
                raise ValueError("step must be greater than zero")
        return k
    if isinstance(k, Tensor):
        if k._data.dtype.kind in "fV":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        if k._data.ndim == 0 and _vmap_frames._frames:
            if k._data.dtype.kind in "iu" and k._data.dtype.itemsize > 1:
                _vmap_frames.refuse_index_read(k)  # (torch reads it by .item() under grad inside vmap)
            _vmap_frames.note_value_read(k)  # (read as a Python number below: slice 0's, not the batch's)
        if k._data.ndim == 0 and k._data.dtype.kind in "bu" and k._data.dtype.itemsize == 1:
            return bool(k._data)  # torch: a 0-d bool/uint8 tensor is a Python bool (a new dim), not a mask
        if k._data.dtype == np.uint8:  # torch reads a uint8 index as a mask (deprecated, still honoured)
            from .._torch_function import user_stacklevel

            warnings.warn("indexing with dtype torch.uint8 is now deprecated, please use a dtype torch.bool instead. "
                          "(Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/IndexingUtils.h:37.)",
                          UserWarning, stacklevel=user_stacklevel())
            return k._data.astype(bool)
        if k._data.ndim == 0 and k._data.dtype.kind in "iu":
            return int(k._data)  # torch reads a 0-d integer tensor as an integer: a select
        if k._data.dtype.kind in "iu" and k._data.dtype.itemsize < 4:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        return k._data
    if isinstance(k, list):
        return _convert_list(k)
    if type(k) is int:
        _check_int64(k)
    else:
        _refuse_text_index(k)
    return k


def _check_int64(index: int) -> None:
    """torch's parser reads an integer index as an int64: a larger one is refused before any range
    check (``Subset(dataset, [2**63])[0]`` reaches it through the dataset's indexing)."""
    if not -2**63 <= index < 2**63:
        raise ValueError("Overflow when unpacking long long")


def _convert_list(k: list):
    # a list index is host data (CuPy copies it to the device too, in the indexing op)
    if _vmap_frames._frames:  # (a 0-d integer tensor in it read by .item(), as a bare one: _convert_key_item)
        for x in k:
            if isinstance(x, Tensor) and x._data.ndim == 0 and x._data.dtype.kind in "iu":
                _vmap_frames.refuse_index_read(x)
    array = np.asarray([x.item() if isinstance(x, Tensor) else x for x in k])
    if array.dtype.kind in "US":  # (NumPy's strings: torch.tensor refuses the list's)
        _refuse_text_index("" if array.dtype.kind == "U" else b"")
    if array.dtype.kind in "uO":  # (NumPy's type for integers beyond int64)
        for x in k:
            if type(x) is int:
                _check_int64(x)
    if array.size == 0:
        return array.astype(np.int64)  # NumPy makes [] float; torch reads it as an empty integer index
    if array.dtype.kind == "f":
        return array.astype(np.int64)  # torch reads a list of floats as int64 indices, truncated
    if array.dtype.kind == "V":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return array


def _is_basic(key) -> bool:
    """True when NumPy indexing by ``key`` returns a view (no integer/boolean arrays)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice, type(None), type(Ellipsis))) and not isinstance(k, bool)
               for k in items)


def _scatter_mode(key, basic: bool) -> str:
    """How the read's adjoint writes back: a plain assignment where the indexed elements are
    distinct (basic indexing, boolean masks), grouped row sums for one integer vector, the rows
    added in index order for one after whole dims (``x[:, :, rows]``, as interpolation reads),
    else add.at."""
    if basic:
        return "assign"
    items = key if isinstance(key, tuple) else (key,)
    arrays = [k for k in items if is_array(k)]
    if all(a.dtype == np.bool_ for a in arrays):
        return "assign"
    if len(items) == 1 and arrays[0].ndim == 1:
        return "rows"
    if len(arrays) == 1 and arrays[0].ndim == 1 and is_array(items[-1]) and all(
            k == _WHOLE_DIM for k in items[:-1]):
        return "later rows"
    return "add"


_WHOLE_DIM = slice(None)


def _add_rows(out: np.ndarray, index: np.ndarray, src: np.ndarray) -> None:
    """``out[index[j]] += src[j]`` along axis 0 with repeated indices summed. Floating rows are
    added one at a time in index order onto ``out``'s values, as torch's CPU index_add_,
    index_put_(accumulate=True) and embedding backward add them (so the same bits; a reduceat
    would sum each row's repeats pairwise first); other dtypes by sort + reduceat (exact)."""
    xp = array_module(out)
    if index.size == 0 or out.size == 0:  # (an empty out's indices are not checked: see _index_dim)
        return
    index = xp.where(index < 0, index + out.shape[0], index)
    if xp is np and out.dtype.kind in "fc":
        _add_rows_sequentially(out, index, src)
        return
    order = xp.argsort(index, kind="stable")
    ordered = index[order]
    starts = xp.flatnonzero(xp.concatenate((xp.ones(1, dtype=bool), ordered[1:] != ordered[:-1])))
    if starts.size == index.size:  # all distinct: a fancy-index add is exact
        out[index] += src
        return
    # bools sum as a logical or (NumPy's add.reduceat would count them in int64)
    reduce = xp.logical_or if src.dtype == np.bool_ else xp.add
    out[ordered[starts]] += reduce.reduceat(src[order], starts, axis=0)


def _add_rows_sequentially(out: np.ndarray, index: np.ndarray, src: np.ndarray) -> None:
    """``out[index[j]] += src[j]`` in index order, by one np.add.at on flat positions (its 1-d
    path is vectorised; on whole rows it is several times slower); distinct rows by one
    fancy-index add."""
    row = out[0].size
    if row > 1:
        ordered = np.sort(index)
        if (ordered[1:] != ordered[:-1]).all():
            out[index] += src
            return
    target = out if out.flags.c_contiguous else np.ascontiguousarray(out)
    positions = index if row == 1 else (index[:, None] * row + np.arange(row)).reshape(-1)
    np.add.at(target.reshape(-1), positions, np.broadcast_to(src, (index.size,) + out.shape[1:]).reshape(-1))
    if target is not out:
        out[...] = target


def _two_sum(a: np.ndarray, b: np.ndarray):
    """(s, e): s = a + b rounded, e its exact error (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _round_to_odd(s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """s + e (s = RN(s + e), e its exact error) rounded to odd: toward zero, then the last bit set
    where inexact; a second rounding of it to at most p - 2 bits is then correctly rounded."""
    inexact = (e != 0) & np.isfinite(s)
    if not inexact.any():
        return s
    away = inexact & ((e < 0) != (s < 0))  # RN went away from zero: truncation is one step nearer 0
    truncated = np.where(away, np.nextafter(s, np.zeros_like(s)), s)
    bits = truncated.view(np.int64) | np.int64(1)
    return np.where(inexact, bits.view(np.float64), s)


def _fma(x: np.ndarray, s: np.ndarray, a) -> np.ndarray:
    """x + a * s rounded once (a fused multiply-add), for float32 and float64 arrays.

    float32: the product is exact in float64; the sum rounded to odd there, then to float32.
    float64: Dekker's exact product (uh + ul), then Boldo and Melquiond's RN(th + RO(tl + ul)) with
    (th, tl) = TwoSum(x, uh): exact unless a product's halves underflow (|a·s| below ~1e-290) or
    overflow, where (as at non-finite values) it is x + a * s."""
    if x.dtype == np.float32:
        x64, p = x.astype(np.float64), s.astype(np.float64) * np.float64(a)
        return _round_to_odd(*_two_sum(x64, p)).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.float64(a)
        uh = s * a
        split = 134217729.0  # 2^27 + 1
        sh = s * split
        sh = sh - (sh - s)
        ah = a * split
        ah = ah - (ah - a)
        sl, al = s - sh, a - ah
        ul = ((sh * ah - uh) + sh * al + sl * ah) + sl * al
        th, tl = _two_sum(x, uh)
        v = _round_to_odd(*_two_sum(tl, ul))
        result = th + v
        plain = x + uh
        return np.where(np.isfinite(result) & np.isfinite(ul), result, plain)


def _add_rows_in_order(out: np.ndarray, index: np.ndarray, src: np.ndarray, a) -> None:
    """``out[index[j]] = fma(a, src[j], out[index[j]])`` along axis 0, a row's repeats one after
    another in index order (torch's index_add_ loop with alpha on an n-d self)."""
    if index.size == 0 or out.size == 0:
        return
    index = np.where(index < 0, index + out.shape[0], index)
    order = np.argsort(index, kind="stable")
    ordered = index[order]
    starts = np.flatnonzero(np.concatenate((np.ones(1, dtype=bool), ordered[1:] != ordered[:-1])))
    rank = np.empty(index.size, dtype=np.int64)
    rank[order] = np.arange(index.size) - np.repeat(starts, np.diff(np.append(starts, index.size)))
    for r in range(int(rank.max()) + 1):
        picked = np.flatnonzero(rank == r)
        rows = index[picked]
        out[rows] = _fma(out[rows], src[picked], a)


# _add_rows_in_index_order's passes (one per repeat) beat np.add.at from about this many gradient
# elements (measured: 12,288 about even, 2x at 393,216; 60 elements 10x slower), and while no row
# repeats more often than this
_FEWEST_ELEMENTS_FOR_PASSES = 16384
_MOST_REPEATS_IN_PASSES = 16


def _add_rows_in_index_order(out: np.ndarray, index: np.ndarray, src: np.ndarray, axis: int) -> None:
    """``out[..., index[j]] += src[..., j]`` along ``axis`` (after whole dims), each row's repeats
    added one at a time in index order as np.add.at adds them (so the same bits), in one
    fancy-index add per repeat: the j-th occurrences of all rows at once. np.add.at itself where
    a row repeats too often."""
    lead = (slice(None),) * axis
    if index.size == 0 or out.size == 0:
        return
    if src.size < _FEWEST_ELEMENTS_FOR_PASSES:
        np.add.at(out, lead + (index,), src)
        return
    index = np.where(index < 0, index + out.shape[axis], index)
    order = np.argsort(index, kind="stable")
    ordered = index[order]
    new_row = np.concatenate((np.ones(1, dtype=bool), ordered[1:] != ordered[:-1]))
    starts = np.flatnonzero(new_row)
    # each occurrence's rank among its row's occurrences, in index order (stable sort)
    rank = np.empty(index.size, dtype=np.int64)
    rank[order] = np.arange(index.size) - np.repeat(starts, np.diff(np.append(starts, index.size)))
    repeats = int(rank.max()) + 1
    if repeats > _MOST_REPEATS_IN_PASSES:
        np.add.at(out, lead + (index,), src)
        return
    for r in range(repeats):
        picked = np.flatnonzero(rank == r)
        out[lead + (index[picked],)] += src[lead + (picked,)]


# below about this many gradient elements np.add.at's own walk is as fast as _add_at_by_rows' set-up
# (measured: 256 elements 9 us against 80 us; 4,096 about even; 36,864 of BigBird's gather 4x faster)
_FEWEST_ELEMENTS_BY_ROWS = 4096


def _add_at_by_rows(out: np.ndarray, key, grad: np.ndarray) -> bool:
    """``np.add.at(out, key, grad)`` for a key of integer arrays, integers, slices and Ellipsis,
    as whole rows: the dims after the key's last item are one row that every indexed position
    takes whole, so the key picks rows of ``out`` viewed as (positions, row) and ``_add_rows`` adds
    them (repeats in index order, as np.add.at and torch's index_put_(accumulate=True): the same
    bits). NumPy's add.at walks a multi-dim key element by element, several times slower. False
    (nothing done) for a small gradient, a key with None or a boolean mask, or a dtype _add_rows would reorder."""
    if grad.size < _FEWEST_ELEMENTS_BY_ROWS:
        return False
    items = key if isinstance(key, tuple) else (key,)
    if out.dtype.kind not in "fciub" or any(k is None or (is_array(k) and k.dtype == np.bool_) for k in items):
        return False
    if any(k is Ellipsis for k in items):
        at = next(i for i, k in enumerate(items) if k is Ellipsis)
        items = items[:at] + (_WHOLE_DIM,) * (out.ndim - len(items) + 1) + items[at + 1:]
    while items and type(items[-1]) is slice and items[-1] == _WHOLE_DIM:
        items = items[:-1]
    if out.size == 0:
        return True
    lead = out.shape[:len(items)]
    rows = np.arange(math.prod(lead))
    positions = rows.reshape(lead)[items].reshape(-1)
    if positions.size:
        _add_rows(out.reshape(rows.size, -1), positions, grad.reshape(positions.size, -1))
    return True


def _saved_indices(node) -> tuple:
    """torch's ``_saved_indices`` of an advanced read: one entry per indexed dim up to the last
    index tensor, None for a dim taken whole."""
    key = node.key if isinstance(node.key, tuple) else (node.key,)
    consumed = sum(k.ndim if is_array(k) and k.dtype == np.bool_ else 0 if k is None or k is Ellipsis else 1
                   for k in key)
    indices = []
    for k in key:
        if k is Ellipsis:
            indices += [None] * (len(node.shape) - consumed)
        elif is_array(k):
            indices.append(Tensor._make(k))
        elif k is not None:
            indices.append(None)
    while indices and indices[-1] is None:
        indices.pop()
    return tuple(indices)


class Index(Function):
    _array_forward = True
    node_name = "IndexBackward0"
    label = "index"
    rule = "scatters the gradient into zeros at the indexed positions (repeated indices summed)"
    saved_attributes = {"_saved_indices": _function.SavedValue(_saved_indices, tensor=True, sequence=True),
                        "_saved_self_sym_sizes": _function.SavedValue(lambda node: tuple(node.shape))}

    @staticmethod
    def forward(ctx, x, key, mode):
        xp = array_module(x)
        ctx.key = key
        ctx.shape = x.shape
        ctx.mode = mode
        out = x[key]
        if not isinstance(out, xp.ndarray):
            # NumPy reads a full integer index as a scalar (a copy); torch gives a 0-d view that an
            # in-place op writes through (x[0].zero_()), and a trailing Ellipsis makes NumPy give one too
            out = x[(*key, Ellipsis) if isinstance(key, tuple) else (key, Ellipsis)]
        if not out.flags.c_contiguous and not xp.may_share_memory(out, x):
            # an advanced read is a copy: torch's is contiguous whatever order NumPy chose
            out = xp.ascontiguousarray(out)
        if 1 in out.shape:
            out = _torch_size1_strides(xp, x, key, out, xp.may_share_memory(out, x))
        if not out.size:
            out = torch_empty_slice(x, key, out)  # (NumPy does not move an empty slice's start)
            strides = _empty_advanced_read_strides(x, key, out.shape)
            if strides is not None and out.strides != strides:
                out = strided_view(out, out.shape, strides)
        return out

    @staticmethod
    def backward(ctx, grad):
        return ctx._forward_cls.scatter.apply(grad, key=ctx.key, shape=ctx.shape, mode=ctx.mode)


_UNSQUEEZED = object()  # a bool scalar's unsqueeze, in _empty_advanced_read_strides's key


def _empty_advanced_read_strides(x, key, shape: tuple) -> tuple | None:
    """The strides (in bytes) torch's index kernel gives the empty result of ``x[key]``, a key of
    full slices and one run of index or mask arrays: its TensorIterator over the source restrided
    (stride 0 on the indexed dims) and the indices reshaped to the result's rank. Operands all of the
    result's shape take the fast set-up (contiguous: an empty tensor is); otherwise the dims are
    ordered as reorder_dimensions orders them and, unless that order is row-major (contiguous then),
    laid out densely in it, so a dim after an empty one gets stride 0 (x[torch.tensor(False)] of a (4, 1, 2) x: (2, 0, 0, 1)). None for other keys."""
    items = []
    for k in key if type(key) is tuple else (key,):
        if type(k) in (bool, np.bool_):  # torch's bool scalar: an unsqueeze, indexed by its nonzero()
            items += [_UNSQUEEZED, np.zeros(1 if k else 0, np.int64)]
        else:
            items.append(k)
    ellipses = [i for i, k in enumerate(items) if k is Ellipsis]  # (by identity: ``in`` compares arrays)
    if len(ellipses) == 1:
        at = ellipses[0]
        # the dims the other items read (a bool scalar's index reads its own new dim)
        taken = sum(k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else k is not None and
                    k is not _UNSQUEEZED for k in items) - 1 - sum(k is _UNSQUEEZED for k in items)
        items[at:at + 1] = [slice(None)] * (x.ndim - taken)
    kept = [k for k in items if k is not _UNSQUEEZED]
    kinds = "".join("s" if k is None or type(k) is slice and k == slice(None) else "a" if isinstance(k, np.ndarray)
                    else "?" for k in kept)
    if "?" in kinds or "a" not in kinds or "s" in kinds.strip("s") or len(shape) < 2:
        return None
    before = kinds.index("a")
    indices = []  # (shape, element strides) of each index tensor torch makes: a mask's nonzero columns
    for k in kept[before:before + kinds.count("a")]:
        if k.dtype == np.bool_:
            count = int(np.count_nonzero(k))
            indices.extend(((count,), (k.ndim,)) for _ in range(k.ndim))
        elif k.size:
            indices.append((k.shape, tuple(st // k.itemsize for st in k.strides)))
        else:  # (an empty index, a 0-d False's nonzero() made here: NumPy's strides for it are its own)
            indices.append((k.shape, tuple(int(np.prod(k.shape[d + 1:], dtype=np.int64).clip(1))
                                           for d in range(k.ndim))))
    consumed = sum(k.ndim if k.dtype == np.bool_ else 1 for k in kept[before:before + kinds.count("a")])
    try:
        index_shape = np.broadcast_shapes(*(s for s, _ in indices))
    except ValueError:
        return None
    # the source as torch indexes it: each None an unsqueeze made first (its stride the size times the
    # stride of the dim it goes before, 1 at the end)
    x_shape, x_strides, dim = list(x.shape), [st // x.itemsize for st in x.strides], 0
    for k in items:
        if k is None or k is _UNSQUEEZED:
            x_strides.insert(dim, x_shape[dim] * x_strides[dim] if dim < len(x_shape) else 1)
            x_shape.insert(dim, 1)
        if k is not _UNSQUEEZED:  # (a bool scalar's new dim is the one its index then reads)
            dim += k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1
    after = len(x_shape) - before - consumed
    if after < 0 or len(shape) != before + len(index_shape) + after:
        return None
    contiguous = []
    step = x.itemsize
    for size in reversed(shape):
        contiguous.append(step)
        step *= max(size, 1)
    contiguous.reverse()
    reshaped = (1,) * before + tuple(index_shape) + (1,) * after
    if reshaped == tuple(shape):
        return tuple(contiguous)  # (the fast set-up: every operand contiguous)
    source = x_strides[:before] + [0] * len(index_shape) + x_strides[before + consumed:]
    operands = [source]
    for index_shape_k, index_strides in indices:
        # expanded to the indices' shape (stride 0 where broadcast), then reshaped: a size-1 dim put
        # around it takes the contiguous stride of an empty reshape's result, 1
        offset = len(index_shape) - len(index_shape_k)
        expanded = [0] * offset + [0 if n == 1 and index_shape[offset + i] != 1 else st
                                   for i, (n, st) in enumerate(zip(index_shape_k, index_strides))]
        full = [1] * before + expanded + [1] * after
        operands.append([0 if n == 1 and size != 1 else st for n, st, size in zip(reshaped, full, shape)])

    perm = iterator_dim_order(operands, shape)
    if perm == list(range(len(shape) - 1, -1, -1)):
        return tuple(contiguous)  # (allocate_or_resize_outputs: the row-major order makes a contiguous result)
    strides, step = [0] * len(shape), x.itemsize
    for d in perm:
        strides[d] = step
        step *= shape[d]
    return tuple(strides)


def _torch_size1_strides(xp, x, key, out, view: bool):
    """``out`` with torch's strides on its size-1 dims (which address nothing, so any value is
    right for NumPy, and NumPy gives 0 to a new axis): a view's as torch's steps make them, a new
    axis getting the size times the stride of the dim it is put before (1 at the end, as
    unsqueeze); a copy's the contiguous ones. Users read them: ``x[None].stride()``."""
    if key is None:  # x[None], the commonest: one new axis in front
        wanted = (x.shape[0] * x.strides[0] if x.ndim else out.itemsize, *x.strides)
        if wanted == out.strides:
            return out
        reshaped = out.reshape(out.shape[1:]).reshape(out.shape)
        return reshaped if reshaped.strides == wanted else strided_view(out, out.shape, wanted)
    if view:
        # (a basic key: integers, slices, None and one Ellipsis, so ``in`` and count compare safely)
        items = key if type(key) is tuple else (key,)
        if None not in items:
            return out  # NumPy's slices and selects keep torch's strides; only its new axes differ
        sizes, strides = list(x.shape), list(x.strides)
        dim = 0
        for k in items:
            if k is None:
                strides.insert(dim, sizes[dim] * strides[dim] if dim < len(sizes) else out.itemsize)
                sizes.insert(dim, 1)
                dim += 1
            elif type(k) is slice:
                if k.step is not None:
                    strides[dim] *= k.step  # (the size does not matter: the next None is before dim + 1)
                dim += 1
            elif k is Ellipsis:
                dim += x.ndim - (len(items) - 1 - items.count(None))
            else:
                del sizes[dim], strides[dim]
        wanted = tuple(strides)  # the others are NumPy's too (a slice's stride times its step)
    else:
        strides, step = [], out.itemsize
        for length in reversed(out.shape):
            strides.append(step)
            step *= length
        strides.reverse()
        wanted = tuple(want if length == 1 else have for want, have, length in zip(strides, out.strides, out.shape))
    if wanted == out.strides or len(wanted) != out.ndim:
        return out
    # NumPy's reshape gives new size-1 dims these strides in most cases, at a tenth of as_strided's cost
    reshaped = out.squeeze().reshape(out.shape)
    return reshaped if reshaped.strides == wanted else strided_view(out, out.shape, wanted)


class IndexScatter(Function):
    """zeros(shape) with ``grad`` added at ``key`` (repeated indices summed); the read's adjoint."""

    _array_forward = True
    node_name = "IndexBackwardBackward0"
    label = "index_backward"
    rule = ("reads the gradient back at the indexed positions (index's backward, recorded as an op under "
            "create_graph)")

    @staticmethod
    def forward(ctx, grad, key, shape, mode):
        xp = array_module(grad)
        ctx.key = key
        ctx.shape = shape  # (the read's: a Select's or Slice's saved names read it)
        ctx.mode = mode
        out = xp.zeros(shape, dtype=grad.dtype)
        if mode == "assign":
            out[key] = grad
        elif mode == "rows":
            _add_rows(out, key[0] if isinstance(key, tuple) else key, grad)
        elif mode == "later rows" and xp is np:  # the vector indexes the key's last dim
            _add_rows_in_index_order(out, key[-1], grad, len(key) - 1)
        elif xp is not np or not _add_at_by_rows(out, key, grad):
            ufunc_at(xp, "add", out, key, grad)
        return out

    @staticmethod
    def backward(ctx, grad):
        return ctx._forward_cls.read.apply(grad, key=ctx.key, mode=ctx.mode)


class Select(Index):
    """A basic read whose last step picks an index (``x[0]``, ``x[..., 2]``)."""

    node_name = "SelectBackward0"
    label = "select"
    rule = "places the gradient at the picked index, zeros elsewhere"
    # torch's names, of the last select (a negative index as torch's C++ node reports it)
    saved_attributes = {"_saved_dim": _function.SavedValue(lambda node: _function.as_uint64(getattr(
                            node, "given_dim", None) or _last_step(node, int)[0])),
                        "_saved_index": _function.SavedValue(lambda node: _function.as_uint64(int(_last_step(node, int)[1]))),
                        "_saved_self_sym_sizes": _function.SavedValue(lambda node: _last_step(node, int)[2])}


def _last_step(node, kind: type) -> tuple:
    """(dim, key item, sizes) of the last step of ``kind`` (int for a picked index, slice, or None
    for an inserted axis) that torch records for a basic read's key, walking it as torch does: the
    dim in the tensor of that step and that tensor's sizes. Within a tuple a slice keeping a whole
    dim is no step."""
    lone = not isinstance(node.key, tuple)
    key = (node.key,) if lone else node.key
    sizes = list(node.shape)
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    dim, last = 0, None
    for k in key:
        if k is Ellipsis:
            dim += len(node.shape) - consumed
        elif k is None:
            if kind is type(None):
                last = (dim, k, tuple(sizes))
            sizes.insert(dim, 1)
            dim += 1
        elif isinstance(k, slice):
            whole = k.start in (None, 0) and k.step in (None, 1) and (k.stop is None or k.stop >= sizes[dim])
            if kind is slice and (lone or not whole):
                last = (dim, k, tuple(sizes))
            sizes[dim] = len(range(*k.indices(sizes[dim])))
            dim += 1
        else:
            if kind is int:
                last = (dim, k, tuple(sizes))
            del sizes[dim]
    return last


def _slice_value(name: str):
    """One of torch's SliceBackward0 values, of the last slice: start and end as written (None
    as 0 and INT64_MAX, a negative one as torch's C++ node reports it), step, dim, sizes."""
    def read(node):
        dim, k, sizes = _last_step(node, slice)
        value = {"_saved_dim": _function.as_uint64(getattr(node, "given_dim", None) or dim),
                 "_saved_self_sym_sizes": sizes, "_saved_step": 1 if k.step is None else int(k.step),
                 "_saved_start": 0 if k.start is None else _function.as_uint64(int(k.start)),
                 "_saved_end": 2 ** 63 - 1 if k.stop is None else _function.as_uint64(int(k.stop))}
        return value[name]

    return _function.SavedValue(read)


class Slice(Index):
    """A basic read whose last step slices (``x[1:]``, ``x[0, ::2]``)."""

    node_name = "SliceBackward0"
    label = "slice"
    rule = "places the gradient in the sliced window, zeros elsewhere"
    saved_attributes = {name: _slice_value(name) for name in (
        "_saved_dim", "_saved_start", "_saved_end", "_saved_step", "_saved_self_sym_sizes")}


class SelectScatter(IndexScatter):
    """Select's backward recorded under create_graph, named as torch's (its adjoint a select again)."""

    node_name = "SelectBackwardBackward0"
    label = "select_backward"
    saved_attributes = {name: Select.saved_attributes[name] for name in ("_saved_dim", "_saved_index")}


class SliceScatter(IndexScatter):
    """Slice's backward recorded under create_graph, named as torch's (its adjoint a slice again)."""

    node_name = "SliceBackwardBackward0"
    label = "slice_backward"
    saved_attributes = {name: Slice.saved_attributes[name] for name in ("_saved_dim", "_saved_start", "_saved_end",
                                                                        "_saved_step")}


# each read's backward and that backward's own, so a second-order graph names torch's nodes
Index.scatter, IndexScatter.read = IndexScatter, Index
Select.scatter, SelectScatter.read = SelectScatter, Select
Slice.scatter, SliceScatter.read = SliceScatter, Slice


class Unsqueeze(Index):
    """A basic read that only inserts new axes (``x[None]``)."""

    node_name = "UnsqueezeBackward0"
    label = "unsqueeze"
    rule = "drops the inserted size-1 axes from the gradient"
    saved_attributes = {"_saved_dim": _function.SavedValue(lambda node: _last_step(node, type(None))[0])}


class Alias(Index):
    """A basic read that changes nothing (``x[...]``, ``x[:, :]``)."""

    node_name = "AliasBackward0"
    label = "alias"
    rule = "passes the gradient through unchanged (a read of every element)"
    saved_attributes = {}


def _basic_read(key, shape: tuple) -> type[Index]:
    """torch applies a basic index one step at a time, recording a node per step; we record one,
    named after torch's last step. A lone slice is always a step (``x[:]`` is a SliceBackward0),
    but within a tuple torch skips slices that keep a whole dim, and a key left with no step at
    all makes an alias: ``x[:, None]`` is an UnsqueezeBackward0, ``x[:, 0:n]`` an AliasBackward0."""
    if not isinstance(key, tuple):
        if key is Ellipsis:
            return Alias
        return Unsqueeze if key is None else Slice if isinstance(key, slice) else Select
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    dim, last = 0, Alias
    for k in key:
        if k is Ellipsis:
            dim += len(shape) - consumed
        elif k is None:
            last = Unsqueeze
        else:
            size = shape[dim] if 0 <= dim < len(shape) else 0  # too many indices: NumPy raises below
            if not isinstance(k, slice):
                last = Select
            elif not (k.start in (None, 0) and k.step in (None, 1) and (k.stop is None or k.stop >= size)):
                last = Slice
            dim += 1
    return last


def _keeps_whole_dim(k: slice, size: int) -> bool:
    """Whether torch skips slice ``k`` inside a tuple key: it keeps a dim of ``size`` whole."""
    return k.start in (None, 0) and k.step in (None, 1) and (k.stop is None or k.stop >= size)


def _torch_steps(key: tuple, shape: tuple):
    """A basic tuple ``key`` as the one-step keys torch applies in turn, each to the last's result
    (a select per integer, an unsqueeze per None, a slice per slice that does not keep its dim
    whole): torch records one node per step, so ``x[0, 1:]`` is SliceBackward0 over
    SelectBackward0. None when there are fewer than two steps, or when the key is out of range
    (one read then raises torch's error naming the dim of ``x``)."""
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    if consumed > len(shape) or sum(1 for k in key if k is Ellipsis) > 1:
        return None
    steps, dim, source = [], 0, 0  # dim: in the tensor the next step reads; source: in x
    for k in key:
        if k is Ellipsis:
            dim += len(shape) - consumed
            source += len(shape) - consumed
        elif k is None:
            steps.append((slice(None),) * dim + (None,))
            dim += 1
        elif isinstance(k, slice):
            if not _keeps_whole_dim(k, shape[source]):
                steps.append((slice(None),) * dim + (k,))
            dim += 1
            source += 1
        else:
            if not -shape[source] <= k < shape[source]:
                return None
            steps.append((slice(None),) * dim + (k,))
            source += 1
    return steps if len(steps) > 1 else None


def _has_view_step(items: tuple, shape: tuple) -> bool:
    """Whether an advanced key holds a step torch applies as a view first: a None, a bool (a new
    dim) or a slice that does not keep its dim of ``shape`` whole."""
    consumed = sum(k.ndim if is_array(k) and k.dtype == np.bool_ else
                   0 if k is None or k is Ellipsis or isinstance(k, (bool, np.bool_)) else 1 for k in items)
    dim = 0
    for k in items:
        if k is None or isinstance(k, (bool, np.bool_)):
            return True
        if k is Ellipsis:
            dim += len(shape) - consumed
        elif isinstance(k, slice):
            if dim >= len(shape) or not _keeps_whole_dim(k, shape[dim]):
                return True
            dim += 1
        else:
            dim += k.ndim if is_array(k) and k.dtype == np.bool_ else 1
    return False


def _integers_first(key, xp=np, recording: bool = False, shape: tuple = ()):
    """Split a key mixing integers with index arrays into (integers only, the rest), or None.

    torch applies integers as basic indexing (selects) before the advanced indices, so they never
    take part in NumPy's rule that moves non-adjacent advanced dims to the front:
    ``x[..., None, -1, 1:3, idx]`` keeps idx's dims where torch puts them. While ``recording``,
    a key with another view step (a slice, None, a bool) on ``x`` of ``shape`` is split too, with
    its slices in the first part, so the graph has torch's nodes: ``x[1:, idx]`` is
    IndexBackward0 over SliceBackward0.
    """
    items = key if isinstance(key, tuple) else (key,)
    if not any(is_array(k) or isinstance(k, (bool, np.bool_)) for k in items):  # a bool is an index array
        return None
    if not any(isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)) for k in items) and not (
            recording and _has_view_step(items, shape)):
        return None
    selects, rest = [], []
    for k in items:
        if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            selects.append(k)
        elif isinstance(k, (bool, np.bool_)):
            # torch: a bool is a new size-1 dim indexed by [0] (True) or [] (False), an advanced index
            selects.append(None)
            rest.append(xp.zeros(int(k), dtype=np.int64))
        elif is_array(k) and k.dtype == np.bool_:
            selects.extend([slice(None)] * k.ndim)  # the dims the mask consumes
            rest.append(k)
        elif k is None:
            selects.append(None)  # the new axis is made in the first step; the second keeps it
            rest.append(slice(None))
        elif k is Ellipsis:
            selects.append(Ellipsis)
            rest.append(Ellipsis)
        elif recording and isinstance(k, slice):
            # while recording, torch's slice steps too come first (x[1:, idx] is IndexBackward0 over
            # SliceBackward0); the values are the same either way
            selects.append(k)
            rest.append(slice(None))
        else:
            selects.append(slice(None))
            rest.append(k)
    return tuple(selects), tuple(rest)


_NUMPY_WORDS = [  # NumPy's indexing errors -> torch's wording
    (re.compile(r"too many indices for array: array is (\d+)-dimensional, but \d+ were indexed"),
     r"too many indices for tensor of dimension \1"),
    (re.compile(r"index (-?\d+) is out of bounds for axis (\d+) with size (\d+)"),
     r"index \1 is out of bounds for dimension \2 with size \3"),
    (re.compile(r"boolean index did not match indexed array along axis (\d+); size of axis is (\d+) but size of "
                r"corresponding boolean axis is (\d+)"),
     r"The shape of the mask (size \3) does not match the shape of the indexed tensor at dimension \1 (size \2)"),
    (re.compile(r"indexing arrays could not be broadcast together with shapes"),
     "indexing tensors could not be broadcast together with shapes"),
    (re.compile(r"numpy\.newaxis \(`None`\) and integer or boolean arrays are valid indices"),
     "None and integer or boolean tensors are valid indices"),
]


def in_torch_words(error: IndexError, key=None, shape: tuple | None = None) -> IndexError:
    """``error`` (NumPy's, from indexing) reworded as torch words it: tensors and dimensions. Given
    the ``key`` and the indexed ``shape``, an out-of-range index tensor is named as torch names it."""
    if key is not None and "is out of bounds for axis" in str(error):
        refusal = _index_tensor_out_of_range(key, shape)
        if refusal is not None:
            return refusal
    message = str(error)
    for pattern, words in _NUMPY_WORDS:
        message = pattern.sub(words, message)
    return IndexError(message)


def _index_tensor_out_of_range(key, shape: tuple) -> IndexError | None:
    """torch's error for an index tensor holding an out-of-range index. torch gathers with the
    indexed dims moved to the front, so its "dimension" is the tensor's place among the key's
    index tensors (a mask counting one per dim it covers), not the dim it indexes; the first bad
    tensor from the left is named (integers, checked before, are all in range here)."""
    items = [np.asarray(k) if isinstance(k, list) else k for k in (key if type(key) is tuple else (key,))]
    skipped = len(shape) - sum(_dims_indexed(k) for k in items if k is not Ellipsis)
    dim = ordinal = 0
    for k in items:
        if k is Ellipsis:
            dim += skipped
            continue
        data = k._data if isinstance(k, Tensor) else k
        if not is_array(data) or data.dtype.kind not in "iu" or data.dtype == np.uint8:
            if is_array(data) and data.dtype.kind in "bu":  # a mask: as many index tensors as its dims
                ordinal += data.ndim
            dim += _dims_indexed(k)
            continue
        size = shape[dim] if dim < len(shape) else 0
        bad = data[(data >= size) | (data < -size)]
        if bad.size:
            return IndexError(f"index {int(bad.reshape(-1)[0])} is out of bounds for dimension {ordinal} with size {size}")
        dim += 1
        ordinal += 1
    return None


def _raise_0d_index_error(key) -> None:
    """torch's own words for ``x[0]`` and ``x[:]`` on a 0-d tensor: pre-0.4 scripts read a loss by
    ``loss.data[0]``, and torch's error tells them to use ``.item()``."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)) and key != 0:
        raise IndexError(f"index {key} is out of bounds for dimension 0 with size 0") from None
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` "
                         "in C++ to convert a 0-dim tensor to a number") from None
    if isinstance(key, slice):
        raise IndexError("slice() cannot be applied to a 0-dim tensor.") from None


def _advanced_key(key, shape: tuple):
    """An advanced ``key`` checked and placed as torch places it: each mask must match the dims it
    covers (NumPy lets an empty one through), and an Ellipsis standing for no dims is dropped: torch
    places index arrays by the dims they index, so it does not separate two of them (NumPy's rule
    says it does, and would move their dims to the front)."""
    items = key if type(key) is tuple else (key,)
    consumed = sum(k.ndim if is_array(k) and k.dtype == np.bool_ else
                   0 if k is None or k is Ellipsis or isinstance(k, (bool, np.bool_)) else 1 for k in items)
    dim = 0
    for k in items:
        if k is Ellipsis:
            dim += len(shape) - consumed
        elif is_array(k) and k.dtype == np.bool_:
            for j, n in enumerate(k.shape):
                if 0 <= dim + j < len(shape) and shape[dim + j] != n:
                    raise IndexError(f"The shape of the mask {list(k.shape)} at index {j} does not match the shape "
                                     f"of the indexed tensor {list(shape)} at index {dim + j}")
            dim += k.ndim
        elif k is not None and not isinstance(k, (bool, np.bool_)):
            dim += 1
    if consumed == len(shape) and type(key) is tuple and any(k is Ellipsis for k in key):
        return tuple(k for k in key if k is not Ellipsis)
    return key


def _key_reading_nothing(key, shape: tuple):
    """An advanced key that may read no element, as torch reads it: its index tensors must
    broadcast together; when the result has no elements nothing is range-checked (``x[[5]]`` on a
    (2, 0, 3) tensor is (1, 0, 3)), so the index arrays become zeros for NumPy; otherwise an index
    array into a dim of size 0 is refused ("index is out of bounds for dimension with size 0")."""
    items = key if type(key) is tuple else (key,)
    consumed = sum(k.ndim if is_array(k) and k.dtype == np.bool_ else
                   0 if k is None or k is Ellipsis or isinstance(k, (bool, np.bool_)) else 1 for k in items)
    dim, arrays, shapes, kept_sizes = 0, [], [], []
    for position, k in enumerate(items):
        if k is Ellipsis:
            kept_sizes.extend(shape[dim:dim + len(shape) - consumed])
            dim += len(shape) - consumed
        elif is_array(k) and k.dtype == np.bool_:
            shapes.append((int(k.sum()),))
            dim += k.ndim
        elif isinstance(k, (bool, np.bool_)):
            shapes.append((int(k),))  # torch: a new dim indexed by [0] (True) or [] (False)
        elif is_array(k):
            arrays.append((position, dim))
            shapes.append(k.shape)
            dim += 1
        elif isinstance(k, slice) and dim < len(shape):
            kept_sizes.append(len(range(*k.indices(shape[dim]))))
            dim += 1
        elif k is not None and not isinstance(k, (bool, np.bool_)):
            dim += 1
    kept_sizes.extend(shape[dim:])
    try:
        broadcast = np.broadcast_shapes(*shapes)
    except ValueError:
        raise IndexError("shape mismatch: indexing tensors could not be broadcast together with shapes "
                         + ", ".join(str(list(s)) for s in shapes)) from None
    if 0 not in broadcast and 0 not in kept_sizes:
        if any(d < len(shape) and shape[d] == 0 and items[p].size for p, d in arrays):
            raise IndexError("index is out of bounds for dimension with size 0")
        return key
    placed = list(items)
    for p, d in arrays:
        if d < len(shape) and shape[d]:
            placed[p] = items[p] * 0
        elif 0 in broadcast:
            placed[p] = array_module(items[p]).zeros(broadcast, dtype=items[p].dtype)  # (reads nothing)
    return tuple(placed) if type(key) is tuple else placed[0]


def advanced_key(key, shape: tuple):
    """A converted advanced key as torch applies it to a tensor of ``shape``, for reads and writes
    alike: Ellipsis spelled out where it stands for no dim, and a key reading nothing range-checked
    as torch checks it (see _key_reading_nothing)."""
    key = _advanced_key(key, shape)
    if 0 in shape or any(is_array(k) and not k.size or k is False or k is np.False_ or isinstance(k, slice)
                         for k in (key if type(key) is tuple else (key,))):  # (a slice may be empty)
        key = _key_reading_nothing(key, shape)
    return key


def _refuse_batched_mask(key) -> None:
    """torch's vmap refusal of indexing with a batched boolean mask: each slice would select another
    number of elements."""
    for item in key if type(key) is tuple else (key,):
        if isinstance(item, Tensor) and item._data.dtype in (np.bool_, np.uint8) and _vmap_frames.batched_value(item):
            raise RuntimeError("vmap: We do not support batching operators that can support dynamic shape. "
                               "Attempting to batch over indexing with a boolean mask.")


def _batched_select(input: Tensor, key: Tensor) -> Tensor | None:
    """``input[key]`` of a 0-d integer ``key`` batched at the vmap recording its ops (``x[x.argmax()]``):
    torch indexes the batch, each slice at its own index, where a select would read slice 0's as a
    number. As index_select of a one-element index, whose rule the replay runs with the batch's
    indices; None where the key is not such (or out of range: the usual path's error)."""
    k = key._data
    if k.ndim or k.dtype.kind not in "iu" or k.dtype.itemsize == 1 or not input._data.ndim or \
            not _vmap_frames.current() or not _vmap_frames.batched_value(key) or \
            not 0 <= int(k) < input._data.shape[0]:
        return None
    _vmap_frames.refuse_index_read(key)  # (under grad inside the vmap torch reads it by .item())
    return input.index_select(0, key.reshape(1)).squeeze(0)


def _batched_selects(input: Tensor, key: tuple) -> Tensor | None:
    """``input[key]`` of a key of integers, slices and 0-d integer tensors, one at least batched at the vmap
    recording its ops (``x[i, 2]``, ``x[1, j]``): one step per item, each tensor as _batched_select's
    index_select, so that the replay runs them on the batch; a 0-d index broadcasts to no dims, so the
    steps give the key's values. None for any other key (or an item out of range: the usual path)."""
    if not _vmap_frames.current() or len(key) > input._data.ndim or not any(
            isinstance(k, Tensor) and _vmap_frames.batched_value(k) for k in key):
        return None
    shape = input._data.shape
    for dim, k in enumerate(key):
        if isinstance(k, Tensor):
            d = k._data
            if d.ndim or d.dtype.kind not in "iu" or d.dtype.itemsize == 1 or not 0 <= int(d) < shape[dim]:
                return None
        elif isinstance(k, (bool, np.bool_)) or not (isinstance(k, (int, np.integer, slice))):
            return None
        elif not isinstance(k, slice) and not -shape[dim] <= k < shape[dim]:
            return None
    out, dim = input, 0
    for k in key:
        if isinstance(k, Tensor):
            _vmap_frames.refuse_index_read(k)
            out = out.index_select(dim, k.reshape(1)).squeeze(dim)
        else:
            out = out[(slice(None),) * dim + (k,)]
            dim += isinstance(k, slice)
    return out


def getitem(input: Tensor, key) -> Tensor:
    """``input[key]`` with torch semantics; basic indexing returns a view."""
    # The commonest key, one integer in range (``x[i]``, and each step of ``x[i, j]`` below): a
    # basic read named SelectBackward0 with nothing to convert and no error to raise first, which
    # is what the general path's conversion, torch-order checks and naming walk find for it.
    item = key if key.__class__ is int else key[0] if key.__class__ is tuple and len(key) == 1 else None
    if item.__class__ is int and input._data.ndim and -input._data.shape[0] <= item < input._data.shape[0]:
        return _read(input, key, key, Select, "assign")
    if key.__class__ is tuple and _function.active_dispatch is not None and \
            (made := _function.getitem_dispatch(input, key)) is not _function.RUN_UNDISPATCHED:
        return made  # (a dispatch mode saw torch's select/slice, one dim at a time)
    if key.__class__ is tuple and _integers_in_range(key, input._data.shape):
        # integers only, each in range (``x[0, j]``): torch selects one dim at a time, recording a
        # SelectBackward0 per integer (_torch_steps' steps), and one read does it unrecorded
        if input._requires_grad and is_recording(input):
            out = input
            for item in key:
                out = _read(out, (item,), (item,), Select, "assign")
            if input._base is None:
                out.grad_fn.root_key = key  # (as below: the whole key, from input)
            return out
        return _read(input, key, key, Select, "assign")
    if key.__class__ is tuple and (read := _one_step_read(key, input._data.shape)) is not None:
        # integers in range and plain slices making at most one torch step (``x[:, 3]``, ``x[1:, :]``):
        # nothing to convert and nothing to refuse, one node named after that step (see _one_step_read)
        return _read(input, key, key, read, "assign")
    if _function.active_dispatch is not None and (made := _by_wrapper_key(input, key)) is not None:
        return made
    if _function.tracing_ops and isinstance(key, Tensor) and (made := _batched_select(input, key)) is not None:
        return made
    if _function.tracing_ops and key.__class__ is tuple and (made := _batched_selects(input, key)) is not None:
        return made
    key = _numpy_keys_as_tensors(key)
    given = key
    if _vmap_frames._frames:
        _refuse_batched_mask(key)
    key = _convert_key(key, array_module(input), input._data.shape)
    basic = _is_basic(key)
    if not basic:
        key = advanced_key(key, input._data.shape)
        split = _integers_first(key, array_module(input), is_recording(input), input._data.shape)
        if split is not None:
            return getitem(getitem(input, split[0]), split[1])
    elif type(key) is tuple and input._requires_grad and is_recording(input):
        steps = _torch_steps(key, input._data.shape)
        if steps is not None:
            out = input
            for step in steps:
                out = getitem(out, step)
            if input._base is None:
                out.grad_fn.root_key = key  # (as below: the whole key, from input)
            return out
    if not basic:
        return _read(input, key, given, Index, _scatter_mode(key, basic))
    return _read(input, key, given, _basic_read(key, input._data.shape), "assign")


def _by_wrapper_key(input: Tensor, key):
    """``input[key]`` whose key holds a wrapper subclass (its values live in it, not in its placeholder), the
    other items tensors or ``:``: the wrapper's handler answers aten.index.Tensor, as torch's indexing calls
    it (argument_dispatch); None for any other key."""
    items = key if key.__class__ is tuple else (key,)
    if not any(isinstance(item, Tensor) and item._wrapper_strides is not None for item in items) or not all(
            isinstance(item, Tensor) or (type(item) is slice and item == slice(None)) for item in items):
        return None
    made = _function.argument_dispatch("index.Tensor", _aten_index, (
        input, [item if isinstance(item, Tensor) else None for item in items]), {})
    return None if made is _function.RUN_UNDISPATCHED else made


def _aten_index(input: Tensor, indices: list) -> Tensor:
    """aten.index.Tensor's signature (a wrapper's handler runs it): None stands for ``:``."""
    return getitem(input, tuple(slice(None) if item is None else item for item in indices))


def _integers_in_range(key: tuple, shape: tuple) -> bool:
    """Whether ``key`` holds plain integers only (no bools), one per dim at most, each in range."""
    if not key or len(key) > len(shape):
        return False
    for item, size in zip(key, shape):
        if item.__class__ is not int or not -size <= item < size:
            return False
    return True


def _one_step_read(key: tuple, shape: tuple) -> type[Index] | None:
    """The read of a tuple ``key`` of integers in range and slices (bounds None or integers, step
    None or positive), one per dim at most, that torch applies as at most one step (a slice keeping
    its dim whole is no step): Select or Slice after that step, Alias with none, as _basic_read
    names it. None for any other key, which the general path converts, checks and splits."""
    if len(key) > len(shape):
        return None
    read = Alias
    for item, size in zip(key, shape):
        if item.__class__ is int:
            if not -size <= item < size or read is not Alias:
                return None
            read = Select
        elif item.__class__ is slice:
            start, stop, step = item.start, item.stop, item.step
            if not ((start is None or start.__class__ is int) and (stop is None or stop.__class__ is int)
                    and (step is None or step.__class__ is int and step > 0)):
                return None
            if not ((start is None or start == 0) and (step is None or step == 1) and (stop is None or stop >= size)):
                if read is not Alias:
                    return None
                read = Slice
        else:
            return None
    return read


def _read(input: Tensor, key, given, read: type[Index], mode: str) -> Tensor:
    """``input[key]`` (``key`` converted from the ``given`` one) by ``read``; a basic read (every
    kind but Index) is a view of ``input``."""
    try:
        out = read.apply(input, key=key, mode=mode)
    except IndexError as e:
        if input.ndim == 0:
            _raise_0d_index_error(given)
        raise in_torch_words(e, key, input._data.shape) from None
    if read is not Index:
        if out.grad_fn is not None and input._base is None:
            out.grad_fn.root_key = key  # lets an in-place op on this view write through input
        _share(out, input)
    return out


class IndexPut(Function):
    """``x[key] = value`` recorded for autograd; the write happens in x's own array."""

    _array_forward = True
    node_name = "IndexPutBackward0"
    label = "index_put"
    rule = "the overwritten positions get no gradient; the values get the gradient there"
    saved_attributes = {"_saved_accumulate": False,
                        "_saved_indices": SavedValue(lambda node: torch_indices(node.raw_key, node._input_meta[0][0]),
                                                    tensor=True, sequence=True)}

    @staticmethod
    def forward(ctx, x, value, key, raw_key=None):
        ctx.key, ctx.raw_key = key, raw_key
        # the index tensors are saved as torch saves them: the rule reads their arrays (in ``key``),
        # so one written in place since must refuse, as torch does, not route the gradient anew. A
        # 0-d one torch reads as a number or a Python bool, saving no tensor of the user's
        items = raw_key if isinstance(raw_key, tuple) else (raw_key,)
        ctx.save_for_backward(*(item for item in items if isinstance(item, Tensor) and item._data.ndim))
        x[key] = value
        return x

    @staticmethod
    def backward(ctx, grad):
        # overwritten elements get no gradient; the value gets what flowed to its slots
        xp = array_module(grad)
        ctx.saved_values  # noqa: B018  (refuses index tensors written in place since forward)
        key = ctx.key
        grad_x = grad_value = None
        if ctx.needs_input_grad[0]:
            # zeros written in (torch's grad.index_put(indices, 0)), not a product with a 0/1 mask,
            # which would turn a negative gradient into -0 and an inf or nan one into nan
            if not is_grad_enabled():
                # nothing records: the zeros written into a copy of the gradient, one pass (a chain of
                # CopySlices, as pad_packed_sequence's, runs this once per write over the whole gradient)
                zeroed = grad._data.copy(order="K")
                zeroed[key] = 0
                grad_x = Tensor._make(zeroed)
            else:
                kept = xp.ones(grad.shape, dtype=bool)
                kept[key] = False
                grad_x = name_node(where(Tensor._make(kept), grad, zeros_like_tensor(grad)), "IndexPutBackward0")
        if ctx.needs_input_grad[1]:
            grad_value = getitem(grad, key)
        return grad_x, grad_value


def torch_indices(raw_key, shape: tuple) -> tuple:
    """torch's ``_saved_indices`` of an index_put with ``raw_key`` as the user wrote it, on a
    tensor of ``shape``: one entry per indexed dim up to the last index tensor, the index
    tensors themselves (lists and arrays made tensors) and None for each whole dim before one."""
    items = raw_key if isinstance(raw_key, tuple) else (raw_key,)
    arrays = [i._data if isinstance(i, Tensor) else np.asarray(i) if isinstance(i, (list, np.ndarray)) else None
              for i in items]
    # dims each item indexes: a mask its own ndim, any other index or slice one, None and ... none
    consumed = sum(0 if item is None or item is Ellipsis else a.ndim if a is not None and a.dtype == np.bool_ else 1
                   for item, a in zip(items, arrays))
    indices = []
    for item, array in zip(items, arrays):
        if item is Ellipsis:
            indices += [None] * (len(shape) - consumed)
        elif isinstance(item, Tensor):
            indices.append(item)
        elif array is not None:
            indices.append(Tensor._make(array if array.dtype == np.bool_ else array.astype(np.int64)))
        elif item is not None:
            indices.append(None)
    while indices and indices[-1] is None:
        indices.pop()
    return tuple(indices)


def masked_fill_write(key, value, accumulate: bool = False) -> bool:
    """Whether torch's index_put_ of ``value`` at (converted) ``key`` is a masked_fill_: not
    accumulating, one mask (a Python bool is an index, not a mask) and a one-element value."""
    items = key if isinstance(key, tuple) else (key,)
    indices = [k for k in items if is_array(k) or isinstance(k, (bool, np.bool_))]
    one_value = not isinstance(value, Tensor) or value._data.size == 1
    return not accumulate and one_value and len(indices) == 1 and is_array(indices[0]) and indices[0].dtype == np.bool_


def _check_index_put(input: Tensor, raw_key, key, value: Tensor, accumulate: bool = False) -> None:
    """torch's index_put_ rules for a tensor value and an advanced key: one mask and a one-element
    value is a masked_fill_ (the value cast; a uint8 mask refused), anything else needs the value in
    the destination's dtype."""
    raw_items = raw_key if isinstance(raw_key, tuple) else (raw_key,)
    if masked_fill_write(key, value, accumulate):
        if any(isinstance(k, Tensor) and k._data.dtype == np.uint8 for k in raw_items):
            getitem(input.detach(), key)  # a bad key is the first error, as in torch
            raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype unsigned char")
        if isinstance(value, Tensor) and not value.is_meta:
            checked_scalar(value._data.item(), input.dtype)  # (masked_fill_ reads the value as a number)
        return
    if isinstance(value, Tensor) and value._data.dtype != input._data.dtype:
        getitem(input.detach(), key)
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{scalar_name(input.dtype)} for the destination and {scalar_name(value.dtype)} "
                           f"for the source.")


def _without_leading_ones(shape: tuple) -> tuple:
    """torch drops a written value's leading size-1 dims before it broadcasts it (slicePrefix1sSize)."""
    kept = next((i for i, size in enumerate(shape) if size != 1), len(shape))
    return tuple(shape[kept:])


def _shape_mismatch(input: Tensor, key, value: Tensor) -> RuntimeError:
    xp = array_module(input)
    try:
        read = xp.empty(input._data.shape, dtype=bool)[key].shape
    except IndexError as e:  # the key itself is bad: that is the error
        return in_torch_words(e, key, input._data.shape)
    return RuntimeError(f"shape mismatch: value tensor of shape {list(_without_leading_ones(tuple(value.shape)))} "
                        f"cannot be broadcast to indexing result of shape {list(read)}")


def _check_value_expands(input: Tensor, key, value) -> None:
    """torch's copy_to check of ``x[key] = value`` for a basic key, before anything is written: the
    value, its leading size-1 dims dropped, must expand to the written view's shape (expand's words)."""
    sizes = value._data.shape
    try:
        target = np.shape(input._data[key])
    except IndexError as e:  # an out-of-range integer (a 0-d tensor's, converted): torch's words
        raise in_torch_words(e) from None
    if sizes == target:
        return
    expanded_shape(_without_leading_ones(sizes), target, value._data.dtype)


# torch's multi-output view functions, whose outputs it refuses to change in place
_MULTI_VIEW_NODES = {"SplitBackward0": "Split", "SplitWithSizesBackward0": "SplitWithSizes",
                     "UnbindBackward0": "Unbind"}


def _multi_view_maker(view: Tensor):
    """The name torch's multi-output-view refusals give ``view``'s maker (Unbind, Split, or for a view of
    one the view op's own, as ``Slice``), or None when ``view`` is no such view."""
    name = type(view._grad_fn).__name__
    multi = _MULTI_VIEW_NODES.get(name)
    if multi is None and view._multi_output_view and view._grad_fn is not None:
        multi = re.sub(r"Backward\d*$", "", name)
    return multi


def view_write_key(view: Tensor):
    """Before an in-place op on ``view`` while recording: raise where torch does, and when the
    view's base is in the graph return the base elements the view covers (the key the op will
    write through), with the view's graph rebuilt from the base's current one (an earlier
    in-place op on the base or on another of its views left it stale). None: no write-through."""
    if not refuse_view_write(view):
        return None
    if not writeable(view._data):  # an expanded view: refused with torch's words below
        return None
    return rejoin(view, view._base)


def refuse_view_write(view: Tensor) -> bool:
    """torch's refusals (its check_inplace) of an in-place op on ``view`` while recording, in its
    order, the view's graph left as it is; True when the view's base is in the graph."""
    base = view._base
    if type(view._view_state) is InputView:  # a custom Function's input returned as-is
        raise view._view_state.refusal(view)
    if not base._requires_grad and not view._requires_grad:
        return False
    # (a view that requires grad of a base outside the graph, so a leaf: requires_grad_() made it
    # one, or it views such a view; torch refuses its write as a view of a leaf, below)
    # torch refuses a multi-output view's write first, even when its base changed since
    multi = _multi_view_maker(view)
    if multi is not None:
        raise RuntimeError(
            f"Output {view._output_nr} of {multi} is a view and is being modified inplace. This view is the output of a "
            "function that returns multiple views. Such functions do not allow the output views to be "
            "modified inplace. You should replace the inplace operation by an out-of-place one."
        )
    if type(view._view_state) is MadeWithoutGrad:
        raise view._view_state.refusal(view, "is being")
    if base._requires_grad and view.grad_fn is None and type(view._view_state) is not _MadeBeforeRootRequiredGrad:
        raise RuntimeError(
            "A view was created in no_grad mode and is being modified inplace with grad mode enabled. "
            "Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify "
            "your code by moving both the view and the inplace either both inside the no_grad block (if "
            "you don't want the inplace to be tracked) or both outside (if you want the inplace to be "
            "tracked)."
        )
    if base.grad_fn is None:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
    return True


def rejoin(view: Tensor, root: Tensor, key=None):
    """Give ``view`` the graph of ``root[key]`` (the elements it covers; found when not given),
    root's current graph: torch regenerates a view's grad_fn from its base's in the same way
    after an in-place op. Returns the key, kept on the new node for the next time."""
    if key is None:
        key = getattr(view._grad_fn, "root_key", None)  # the slot: no rebuild
        if key is None:
            key = covered_elements(view, root)
    with enable_grad():  # a view's graph is rebuilt wherever it is read, as in torch
        fresh = read_elements(root, key)
        if fresh.shape != view.shape and type(key) is not _PartsKey:
            # an expanded view (a zero stride) covers its elements more than once: read once, expanded
            # back to the view's shape, or its node would take a gradient of another shape
            fresh = fresh.expand(view.shape)
    if fresh.grad_fn is not None:  # (None: root left the graph since, by detach_)
        fresh.grad_fn.root_key = key
        if type(key) is not _PartsKey:
            # torch regenerates a same-dtype view as an as_strided of its base
            name_node(fresh, "AsStridedBackward0")
    old = view._grad_fn
    view.grad_fn, view._output_nr, view._requires_grad = fresh.grad_fn, fresh._output_nr, fresh._requires_grad
    if view._retains_grad:
        view._move_retained_grad(old)
    return key


class _Regenerate:
    """The state of a live view whose root took a new graph in place (an in-place op on the root
    or on another of its views) since the view's graph was built: the view's next grad_fn read
    regenerates it from the root's graph (as torch regenerates a view's grad_fn when its base's
    version moved), and an assignment of grad_fn ends it. Regenerating on read rather than at each
    in-place op keeps a loop that writes a buffer holding many live views linear. The view's
    ``_grad_fn`` keeps its old node meanwhile (its root_key; a multi-output view's refusal)."""

    __slots__ = ()

    @staticmethod
    def grad_fn(view: Tensor):
        multi = _multi_view_maker(view)
        if multi is not None:  # torch refuses any use of such a view once its base changed
            raise RuntimeError(
                f"Output {view._output_nr} of {multi} is a view and its base or another view of its base has "
                "been modified inplace. This view is the output of a function that returns multiple views. "
                "Such functions do not allow the output views to be modified inplace. You should replace "
                "the inplace operation by an out-of-place one."
            )
        view._view_state = None
        rejoin(view, view._base)
        return view._grad_fn

    @staticmethod
    def assigned(view: Tensor) -> None:
        view._view_state = None

    @staticmethod
    def accumulator(view: Tensor):
        _Regenerate.grad_fn(view)  # regenerated first (which ends this state): then a leaf's accumulator
        return view._leaf_accumulator()


_REGENERATE = _Regenerate()


class _MadeBeforeRootRequiredGrad:
    """The state of a view made (with grad enabled) while its root did not require grad, whose root
    requires_grad_() since: as torch's, which reads a view's flag from its base, it requires grad but
    has no grad_fn and no gradient edge (its gradient goes nowhere), and an in-place op on it is refused
    as one on a view of a leaf. Once the root's version moves, torch regenerates its grad_fn from the
    root's (AsStridedBackward0), as for any view whose base changed (_Regenerate)."""

    __slots__ = ("version", "leaf")

    def __init__(self, version: int) -> None:
        self.version = version
        self.leaf = False  # made a leaf by requires_grad_(): then it has its own accumulator

    def grad_fn(self, view: Tensor):
        if view._vbox[0] == self.version or self.leaf:
            return view._grad_fn
        view._view_state = _REGENERATE
        return _Regenerate.grad_fn(view)

    @staticmethod
    def assigned(view: Tensor) -> None:
        view._view_state = None

    def accumulator(self, view: Tensor):
        if self.leaf:
            return view._leaf_accumulator()
        if view._vbox[0] == self.version:
            return None  # torch's edge to such a view is empty
        view._view_state = _REGENERATE
        return _Regenerate.accumulator(view)


def _views_follow_root(root: Tensor) -> None:
    """``root`` (a leaf) changed its requires_grad: its live views with no graph of their own follow
    it, as torch's read their base's flag; views it made without grad keep their state."""
    for ref in tuple(root._live_views):
        view = ref()
        if view is None or view._base is not root or view._nondifferentiable_view or view._grad_fn is not None:
            continue
        state = view._view_state
        if root._requires_grad:
            if state is None and not view._requires_grad:
                view._view_state = _MadeBeforeRootRequiredGrad(view._vbox[0])
                view._requires_grad = True
            elif type(state) is MadeWithoutGrad and not view._requires_grad:
                view._requires_grad = True
        elif type(state) is _MadeBeforeRootRequiredGrad and not state.leaf:
            view._view_state = None
            view._requires_grad = False
        elif type(state) is MadeWithoutGrad and not state.leaf:
            view._requires_grad = False


_tensor_module.views_follow_root = _views_follow_root


def unread_leaf_like(view: Tensor) -> bool:
    """True for a view made while its root was outside the graph, whose root joined it since,
    its graph not yet read: torch's in-place check reads such a view's grad_fn as it was made
    (none), takes the view for a leaf that requires grad and refuses the write (an op reading the
    view first, or ``__setitem__``, gets its graph regenerated instead)."""
    return view._view_state is _REGENERATE and view._grad_fn is None


def refresh_views(root: Tensor) -> None:
    """An in-place op while recording gave ``root`` a new graph: its live views made while
    recording will take their graphs from root's when next read (see _Regenerate). The
    graphs already built from them keep the old nodes, as in torch."""
    for ref in tuple(root._live_views or ()):
        view = ref()
        if view is None or view._base is not root:
            continue
        view._requires_grad = True  # the flag ops read before grad_fn: set now
        if view._view_state is None:
            view._view_state = _REGENERATE


def untracked_write(tensor: Tensor) -> None:
    """``tensor`` was written in place without recording (under no_grad): its version moved, so torch
    regenerates the grad_fn of its root's views in the graph all the same when next read, and
    refuses any use of a multi-output view (unbind, split) from then on."""
    root = tensor if tensor._base is None else tensor._base
    if root._requires_grad and root._live_views:
        refresh_views(root)


def forget_root_keys(root: Tensor) -> None:
    """``root``'s shape or strides changed in place (t_, squeeze_): the keys its views' nodes keep
    address its old layout. Drop them: ``covered_elements`` finds a view's elements again."""
    for ref in root._live_views or ():
        view = ref()
        node = None if view is None else view._grad_fn
        if getattr(node, "root_key", None) is not None:
            node.root_key = None


def covered_elements(view: Tensor, base: Tensor):
    """The elements of ``base`` that ``view``, a strided view of base's memory, covers: an
    advanced index into ``base`` in the view's shape, so ``base[key]`` reads the view's values.
    A view in the other dtype of a complex/real pair (view_as_real, real, imag, view_as_complex)
    gets a _PartsKey instead: read_elements and write_elements take either."""
    view_dtype, base_dtype = view._data.dtype, base._data.dtype
    if view_dtype == base_dtype and base._data.ndim == 0 and view._data.size == 0:
        return _NoElementsKey(view._data.shape)
    if view_dtype == base_dtype:
        if _is_whole_reshape(view._data, base._data):
            return _ReshapeKey(view._data.shape)
        return _covered(view._data, base._data)
    if base_dtype.kind == "c":  # real parts of a complex base: index its (..., 2) float pairs
        return _PartsKey(_covered(view._data, ViewAsReal.forward(None, base._data)), complex_base=True)
    return _PartsKey(_covered(ViewAsReal.forward(None, view._data), base._data), complex_base=False)


def _covered(view, base) -> tuple:
    """covered_elements on two arrays of one dtype."""
    if base.ndim == 0:  # one element: the view is it, unsqueezed
        return (None,) * view.ndim
    xp = array_module(base)
    root, base_offset = storage_root(base)
    owner = xp.full(root.nbytes // base.itemsize, -1, dtype=np.int64)  # storage position -> base's flat index
    owner[_storage_positions(base, base_offset).reshape(-1)] = xp.arange(base.size)
    flat = owner[_storage_positions(view, storage_root(view)[1])]
    return tuple(Tensor._make(index) for index in xp.unravel_index(flat, base.shape))


def _is_whole_reshape(view, base) -> bool:
    """Whether ``view`` is every element of ``base`` in base's own order, only shaped otherwise (a
    view of a contiguous result, as linear's of a 3-d input): both C-contiguous, one start, one size."""
    return (view.size == base.size and view.size > 0 and base.ndim > 0 and view.flags.c_contiguous
            and base.flags.c_contiguous and storage_root(view)[1] == storage_root(base)[1])


class _ReshapeKey:
    """Where a view that is its whole base reshaped sits in it: everywhere. Reading it is a
    reshape and writing it one assignment to the whole base, where the general advanced-index key
    of covered_elements would map every storage position and scatter the gradient back by index."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple) -> None:
        self.shape = shape


class _PartsKey:
    """Where a view in the other dtype of a complex/real pair sits in its base: ``key`` indexes
    the base's (..., 2) float pairs (a complex base: ``view_as_real(base)[key]`` is the view), or
    the base itself, giving the view's pairs (a complex view: ``view_as_complex(base[key])``).
    torch regenerates such views by replaying them on the base; these are the same elements."""

    __slots__ = ("key", "complex_base")

    def __init__(self, key: tuple, complex_base: bool) -> None:
        self.key, self.complex_base = key, complex_base


class _NoElementsKey:
    """Where a view with no elements sits in a 0-d base (``x.unsqueeze(0).narrow(0, 1, 0)``): on
    none of its elements. No index key gives a 0-d base such a view's shape (a False adds one dim
    of size 0, and several of them broadcast to one), so the elements are ``base[False]``, reshaped."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple) -> None:
        self.shape = shape


def read_elements(base: Tensor, key) -> Tensor:
    """``base[key]`` for a key from covered_elements, recorded: the view's values in base's graph."""
    if type(key) is _NoElementsKey:
        return reshape(getitem(base, (False,)), key.shape)
    if type(key) is _ReshapeKey:
        return reshape(base, key.shape)
    if type(key) is not _PartsKey:
        return getitem(base, key)
    if key.complex_base:
        return getitem(view_as_real(base), key.key)
    return view_as_complex(getitem(base, key.key))


def write_elements(base: Tensor, key, value: Tensor) -> None:
    """``base[key] = value`` for a key from covered_elements, recorded on base's graph."""
    if type(key) is _NoElementsKey:
        setitem(base, (False,), reshape(value, (0,)))
    elif type(key) is _ReshapeKey:
        setitem(base, Ellipsis, reshape(value, base._data.shape))
    elif type(key) is not _PartsKey:
        setitem(base, key, value)
    elif not key.complex_base:
        setitem(base, key.key, view_as_real(value))
    else:  # float parts of a complex base: a copy of all its pairs takes them, then base takes it
        from .shape import clone

        pairs = clone(view_as_real(base))
        setitem(pairs, key.key, value)
        setitem(base, Ellipsis, view_as_complex(pairs))
    name_node(base, COPY_SLICES)


# torch's node for a write into a view of a tensor, recorded on the tensor (its type is named CopySlices)
COPY_SLICES = "torch::autograd::CopySlices"


class CopySlices(Function):
    """An in-place op on a view of ``base``, recorded on base as torch records it: one node that
    holds the op's own node (``absorbed``) and runs its rule on the view's part of the gradient.
    Its edges are base's previous one, then the op's edges but the first (the view's, which the
    write replaced), so the graph shows no separate MulBackward0 or CopyBackwards beneath it."""

    _array_forward = True
    node_name = COPY_SLICES
    label = "write into a view"
    rule = "the view's elements get the in-place op's gradient for its input; the rest pass on unchanged"

    @staticmethod
    def forward(ctx, *args):
        raise RuntimeError("CopySlices is recorded by an in-place op on a view, never applied")

    @staticmethod
    def backward(ctx, grad):
        absorbed = ctx.absorbed
        if ctx._freed:
            ctx.saved_values  # noqa: B018  (raises torch's error for a second backward)
        if is_grad_enabled() and getattr(ctx, "view_geometry", None) is not None:
            return _copy_slices_graph(ctx, grad)
        grads = absorbed._forward_cls.backward(absorbed, read_elements(grad, ctx.key))
        if type(grads) is not tuple:
            grads = (grads,)
        if not ctx.needs_input_grad[0]:
            return (None, *grads[1:])
        view_shape, view_dtype = absorbed._input_meta[0]
        grad_view = grads[0]
        if grad_view is None:  # (fill_, zero_, copy_: the view's old values do not reach the result)
            grad_view = Tensor._make(array_module(grad).zeros(view_shape, dtype=view_dtype))
        elif grad_view._data.shape != view_shape or grad_view._data.dtype != view_dtype:
            grad_view = _fixed_gradient(absorbed, 0, grad_view, absorbed._input_meta[0])
        # d base = the incoming gradient, its view's elements replaced by the op's gradient for the view
        if is_grad_enabled():
            from .shape import clone

            grad_base = clone(grad)
        else:
            grad_base = Tensor._make(grad._data.copy(order="K"))
        write_elements(grad_base, ctx.key, grad_view)
        return (grad_base, *grads[1:])


def _copy_slices_graph(ctx, grad: Tensor) -> tuple:
    """CopySlices' backward recorded (create_graph) as torch records it, so the second-order graph
    has torch's nodes: the gradient copied into a tensor laid out as the base (CopyBackwards), the
    view's part of it taken by as_strided and cloned for the op's rule (AsStridedBackward0,
    CloneBackward0), and the rule's gradient for the view copied back into that part (CopySlices)."""
    absorbed = ctx.absorbed
    base_shape, base_strides, view_shape, view_strides, offset = ctx.view_geometry
    result = grad.new_empty_strided(base_shape, base_strides)
    result.copy_(grad)
    grad_slice = result.as_strided(view_shape, view_strides, offset)
    grads = absorbed._forward_cls.backward(absorbed, grad_slice.clone())
    if type(grads) is not tuple:
        grads = (grads,)
    if not ctx.needs_input_grad[0]:
        return (None, *grads[1:])
    grad_view = grads[0]
    if grad_view is None:  # (fill_, zero_, copy_: the view's old values do not reach the result)
        grad_view = grad_slice.new_zeros(view_shape)
    elif grad_view._data.shape != tuple(view_shape) or grad_view._data.dtype != grad_slice._data.dtype:
        grad_view = _fixed_gradient(absorbed, 0, grad_view, absorbed._input_meta[0])
    grad_slice.copy_(grad_view)
    return (result, *grads[1:])


def write_absorbing(view: Tensor, key, value: Tensor) -> bool:
    """``view``'s base takes ``value``, an in-place op's result on ``view``, at ``key`` (its elements
    the view covers), as one CopySlices node holding the op's node; False, nothing written, where
    the op's node cannot be absorbed (its first edge is not the view's: a composite op's last part; a
    user's Function; a cast result), an observer records the write (forward AD, the profiler), which
    write_elements then records as an index_put of the value, or the base is a wrapper subclass (its
    values live in its handler's tensors). A dispatch mode, or a wrapper subclass alive elsewhere,
    changes nothing here: torch's CopySlices is autograd's, above the modes."""
    node = value._grad_fn
    base = view._base
    if (node is None or not node._forward_cls._array_forward or node._num_outputs != 1
            or node.next_functions[0][0] is not view._grad_fn or base._base is not None
            or value._data.dtype != view._data.dtype or _function.active_extension is not None
            or _function.active_profiler is not None or base._wrapper_strides is not None):
        return False
    # (a base outside the graph joins it through the view's elements, its own edge None)
    copy_slices = _make_node(CopySlices, (base if base._requires_grad else None,))
    copy_slices.next_functions += node.next_functions[1:]
    copy_slices.needs_input_grad = (copy_slices.needs_input_grad[0], *node.needs_input_grad[1:])
    copy_slices._input_meta += node._input_meta[1:]
    copy_slices.absorbed, copy_slices.key = node, key
    # where the view lies in its base, for a recorded backward (create_graph) that reads it as torch
    # does; None where its memory is not one strided block of base's (NumPy's element strides)
    copy_slices.view_geometry = _view_geometry(view, base)
    # the op's saved tensors, shared: the engine checks their versions before it runs this node and
    # frees this node's hold after it (the op's node keeps its own for a second-order graph its saved
    # outputs join)
    copy_slices._saved, copy_slices._saved_versions = node._saved, node._saved_versions
    view._data[...] = value._data  # (the view shares base's memory: this writes base's elements)
    box = base._version_box
    box[0] += 1
    if node._saved_outputs is not None and node._saved_versions is not None:
        _save_as_the_view(node, copy_slices, box)
    old = base._grad_fn
    base.grad_fn = copy_slices
    base._output_nr = 0
    base._requires_grad = True
    if base._retains_grad:
        base._move_retained_grad(old)
    refresh_views(base)
    return True


def _save_as_the_view(node, copy_slices, box: list) -> None:
    """The op's saved output (exp_'s, relu_'s result) is torch's in-place result, the view itself:
    it takes the view's version counter at the version the write left, so a later write into the
    view or its base is caught by the op's rule (its node's and CopySlices' checks alike)."""
    versions = list(node._saved_versions)
    for position in node._saved_outputs:
        saved = node._saved[position]
        if saved is not None and versions[position] is not None:
            saved._vbox = box
            versions[position] = box[0]
    node._saved_versions = copy_slices._saved_versions = tuple(versions)


def _view_geometry(view: Tensor, base: Tensor):
    """(base's shape and strides, view's shape, strides and offset into base), in elements."""
    data, base_data = view._data, base._data
    if type(data) is not np.ndarray or type(base_data) is not np.ndarray or data.itemsize != base_data.itemsize:
        return None
    itemsize = data.itemsize
    offset = data.__array_interface__["data"][0] - base_data.__array_interface__["data"][0]
    if offset < 0 or offset % itemsize or any(s % itemsize for s in (*data.strides, *base_data.strides)):
        return None
    return (base_data.shape, tuple(s // itemsize for s in base_data.strides), data.shape,
            tuple(s // itemsize for s in data.strides), offset // itemsize)


def _slices_first(raw_key, shape: tuple | None = None) -> bool:
    """Whether torch's ``x[raw_key] = value`` writes into a view of x (an integer, a None, a bool, a
    slice that is not the whole dim of ``shape``): it is then an in-place op on a view, recorded on x
    as CopySlices. Whole slices and Ellipsis take no view (torch writes x itself: copy_, fill_ or
    index_put_)."""
    items = raw_key if isinstance(raw_key, tuple) else (raw_key,)
    dim = 0
    for item in items:
        if item is None or isinstance(item, (int, np.integer)):  # (a bool is a new dim, as None)
            return True
        if isinstance(item, slice):
            size = shape[dim] if shape is not None and dim < len(shape) else None
            if not (item.start in (None, 0) and item.step in (None, 1)
                    and (item.stop is None or size is not None and item.stop >= size)):
                return True
        if item is Ellipsis and shape is not None:
            dim += len(shape) - sum(_dims_indexed(k) for k in items)
        else:
            dim += _dims_indexed(item)
    return False


def _whole_write_name(input: Tensor, value: Tensor) -> str:
    """torch's node for ``x[key] = value`` with a key that takes no view of x: copy_to copies a
    value of x's shape (its leading size-1 dims dropped), fills from any other 0-d one, and
    copies any other, expanded (CopyBackwards, FillBackward3)."""
    if value._data.ndim == 0 and input._data.shape != ():
        return "FillBackward3"
    return "torch::autograd::CopyBackwards"


def _storage_positions(array, offset: int):
    """The storage position of each element of ``array`` (in its shape), ``offset`` its first's."""
    xp = array_module(array)
    positions = xp.full(array.shape, offset, dtype=np.int64)
    for d, (n, stride) in enumerate(zip(array.shape, array.strides)):
        step = xp.arange(n, dtype=np.int64) * (stride // array.itemsize)
        positions = positions + step.reshape((n,) + (1,) * (array.ndim - d - 1))
    return positions


def _written_through_wrapper_view(input: Tensor, key, value) -> bool:
    """``wrapper[basic key] = value`` with no gradient to record: as torch's, the view its handler
    makes (``aten.select``/``aten.slice``) takes the value by ``fill_`` (a number) or ``copy_``
    (both reach the handler); False when ``input`` is no wrapper."""
    if input._wrapper_strides is None or _function.active_dispatch is None or (is_grad_enabled() and (
            input.requires_grad or isinstance(value, Tensor) and value.requires_grad)):
        return False
    view = getitem(input, key)
    if isinstance(value, Tensor):
        view.copy_(value)
    else:
        view.fill_(value)
    return True


def setitem(input: Tensor, key, value) -> None:
    """``input[key] = value``: in place; recorded when ``input`` or ``value`` requires grad."""
    xp = array_module(input)
    from .elementwise import _as_operand, _cast

    _check_assigned_value(input, value)
    if not isinstance(value, Tensor):
        value = _assigned_number(value, input.dtype)
    if key is False:
        return  # torch: a bare False key writes nothing, and checks nothing else
    if _vmap_frames._captures:  # torch writes through copy_ (index_put_ for a tensor key)
        tensor_key = any(isinstance(k, Tensor) for k in (key if type(key) is tuple else (key,)))
        _vmap_frames.refuse_captured_write(input, "index_put_" if tensor_key else "copy_")
    if _vmap_frames.running():  # torch's vmap writes through copy_ (index_put_ for a tensor key) and refuses so
        keys = [k for k in (key if type(key) is tuple else (key,)) if isinstance(k, Tensor)]
        _vmap_frames.refuse_batched_into_unbatched(input, (*keys, value), "index_put" if keys else None)
    if key is True:
        key = None  # torch: a bare True key is a copy into x[None] (a basic write: the value is cast)
    key = _numpy_keys_as_tensors(key)
    if _function.active_dispatch is not None and \
            _function.setitem_dispatch(input, key, value) is not _function.RUN_UNDISPATCHED:
        return  # (a dispatch mode saw torch's ops: select/slice then copy_/fill_, or index_put_)
    raw_key = key
    if input._data.ndim == 0 and isinstance(key, (int, np.integer, slice)) and not isinstance(key, (bool, np.bool_)):
        _convert_key_item(key)  # a slice's step is checked first
        _raise_0d_index_error(key)  # as a read of x[key] words it
    key = _convert_key(key, xp, input._data.shape)
    basic = _is_basic(key)
    if basic and _written_through_wrapper_view(input, raw_key, value):
        return
    # a 0-d value always fits a basic write (copy_ expands it, "too hard" to check); index_put_
    # checks it too, unless it is a masked_fill_
    if isinstance(value, Tensor) and (value._data.ndim or not basic and not masked_fill_write(key, value)):
        _check_write_overlap(input, key, value, basic)
        if basic:
            _check_value_expands(input, key, value)
    split = None
    masked_fill = not basic and masked_fill_write(key, value)  # (read before the key is converted)
    if not basic:
        key = advanced_key(key, input._data.shape)
        _check_index_put(input, raw_key, key, value)
        _dtype.refuse_wide_unsigned("index.MaskedFill" if masked_fill else "index.IndexPut", input._data)
        split = _integers_first(key, xp)
    if split is not None:
        # address the written elements in torch's order (integers first, see getitem): index
        # arrays of the flat positions a read would return, in the shape it would have
        try:
            positions = xp.arange(input._data.size).reshape(input._data.shape)[split[0]][split[1]]
        except IndexError as e:
            raise in_torch_words(e, key, input._data.shape) from None
        key = xp.unravel_index(positions, input._data.shape)
    if not isinstance(value, Tensor):
        value = _as_operand(value, input.dtype, input)
    elif value._data.dtype != input._data.dtype:
        warn_discarding_imaginary(value.dtype, input.dtype)
        value = _cast(value, input.dtype)
    as_given = value
    if value._data.ndim and value._data.shape[0] == 1:
        # torch drops the value's leading size-1 dims before broadcasting it (thop writes
        # ``x[0] = t`` with t of shape [1]); a view, so a recorded write's gradient reaches t
        from .shape import reshape

        kept = next((i for i, size in enumerate(value._data.shape) if size != 1), value._data.ndim)
        value = reshape(value, value._data.shape[kept:])
    recording = is_recording(input, value)
    if recording and type(input._view_state) is MadeWithoutGrad:
        raise _made_without_grad_write_refusal(input, raw_key, key)
    if recording and input.grad_fn is None and input._requires_grad:
        what = "a view of a leaf Variable" if _slices_first(raw_key, input._data.shape) else "a leaf Variable"
        raise RuntimeError(f"{what} that requires grad is being used in an in-place operation.")
    if (input._base is not None and not input._nondifferentiable_view and writeable(input._data)
            and is_recording(input._base, input, value)):
        base = input._base
        if input._multi_output_view and _slices_first(raw_key, input._data.shape):
            # torch writes into the view input[key] first: its refusal names that view
            with enable_grad():
                view_write_key(getitem(input, raw_key))
        covered = view_write_key(input)
        if covered is not None or value._requires_grad:
            # torch's CopySlices: the view's new values, written into a copy first (so a bad key
            # or value raises before anything changes), go into the base's elements under the
            # view, so the base's graph (and every later use of it) sees the write
            from .shape import clone

            if covered is None:
                covered = covered_elements(input, base)
            updated = clone(input)
            setitem(updated, raw_key, value)
            write_elements(base, covered, updated)
            rejoin(input, base, covered)  # the view takes base's new graph now (it is read next)
            return
    target = input._data
    if value._wrapper_strides is not None or input._wrapper_strides is not None and not writeable(target):
        _written_by_index_put(input, key, value, xp)
        return
    if not writeable(target) or not recording and has_expanded_dims(target):
        target = _overlapping_target(input, key, basic, masked_fill, recording)
    if not recording:
        tangent = None
        if _function.active_extension is not None:  # forward AD may be on: the write's tangent
            tangent = _forward_ad.tangent_of_write(input, value, lambda: IndexPut.apply(input, value, key=key))
        try:
            target[key] = value._data
        except (ValueError, TypeError):  # NumPy checks the broadcast before it writes anything
            raise _shape_mismatch(input, key, as_given) from None
        except IndexError as e:
            raise in_torch_words(e, key, input._data.shape) from None
        input._version_box[0] += 1
        untracked_write(input)
        if tangent is not None:  # forward AD: the write's tangent becomes input's
            _forward_ad.write_tangent(tangent, input)
        return
    try:
        out = IndexPut.apply(input, value, key=key, raw_key=raw_key)
    except (ValueError, TypeError):
        raise _shape_mismatch(input, key, as_given) from None
    except IndexError as e:
        raise in_torch_words(e, key, input._data.shape) from None
    except RuntimeError as e:
        if str(e).startswith("The size of tensor a"):  # the recorded op's broadcast check of the value
            raise _shape_mismatch(input, key, as_given) from None
        raise
    input._version_box[0] += 1
    old = input._grad_fn
    if _slices_first(raw_key, input._data.shape):
        input.grad_fn = name_node(out, COPY_SLICES).grad_fn
    elif _is_basic(key):
        input.grad_fn = name_node(out, _whole_write_name(input, value)).grad_fn
    else:
        input.grad_fn = out.grad_fn
    input._output_nr = 0
    input._requires_grad = True
    if input._retains_grad:
        input._move_retained_grad(old)
    if input._base is None:
        refresh_views(input)


def _written_by_index_put(input: Tensor, key, value: Tensor, xp) -> None:
    """``input[key] = value`` where input or value is a wrapper subclass, and ``_written_through_wrapper_view``
    left it (a write to record, or a wrapper value): the wrapper's values live behind its handler, not in
    its read-only zero placeholder, so the write goes to the handler as ``index_put_`` of the elements
    ``key`` addresses (their positions, read from input's shape), which autograd records as any in-place
    op of a wrapper."""
    shape = input._data.shape
    try:
        positions = xp.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape)[key]
    except IndexError as e:
        raise in_torch_words(e, key, shape) from None
    indices = tuple(Tensor._make(xp.asarray(i, dtype=xp.int64)) for i in xp.unravel_index(positions, shape))
    input.index_put_(indices, value)


def _overlapping_target(input: Tensor, key, basic: bool, masked_fill: bool, recording: bool):
    """A writable alias of ``input``'s read-only, overlapping memory for ``input[key] = value``, where
    torch writes it: unfold windows (MemOverlap::TooHard) always; an expanded view through a basic
    key whose view has no zero stride, or through an advanced key (index_put_, a masked_fill_ for a
    mask and one value), warning that this is deprecated. torch's refusal otherwise, and for a
    recorded write (its backward would need the elements apart)."""
    from .._methods import _overlapping_alias, warn_expanded_write

    data = input._data
    alias = None if recording else _overlapping_alias(data)
    expanded = has_expanded_dims(data)
    if alias is None or expanded and basic and has_expanded_dims(data[key]):
        raise write_refusal(data)
    if expanded and not basic:
        warn_expanded_write("index_put_", "tensor[indices] = tensor")
        if masked_fill:
            warn_expanded_write("masked_fill_", "tensor[mask] = scalar")
    return alias


def _dense(array) -> bool:
    """torch's is_non_overlapping_and_dense: the elements fill a block, in some order of the dims."""
    expected = array.itemsize
    for stride, length in sorted((s, n) for s, n in zip(array.strides, array.shape) if n != 1):
        if stride != expected:
            return False
        expected *= length
    return True


def _address(array) -> int:
    return array.__array_interface__["data"][0] if isinstance(array, np.ndarray) else array.data.ptr


def _refuse_overlap(written, read, full_too: bool = False) -> None:
    """torch's copy_ refuses to write from a value whose memory partly overlaps the memory written
    (``x[1:] = x[:-1]``), index_put_ (``full_too``) from one overlapping it at all; only dense
    layouts are compared (others are "too hard" and let through), and copy_ takes a value on the
    very same elements (``x[:] = x``)."""
    if not written.size or not read.size or not _dense(written) or not _dense(read):
        return
    begin, other = _address(written), _address(read)
    end, other_end = begin + written.nbytes, other + read.nbytes
    if not full_too and begin == other and end == other_end and written.strides == read.strides:
        return
    if begin < other_end and other < end:
        raise RuntimeError("unsupported operation: some elements of the input tensor and the written-to tensor "
                           "refer to a single memory location. Please clone() the tensor before performing the "
                           "operation.")


def _check_write_overlap(input: Tensor, key, value, basic: bool) -> None:
    """torch's overlap check of ``input[key] = value`` (before anything is written): a basic key
    copies a value of the written view's shape (its leading size-1 dims dropped) into that view;
    an advanced key is an index_put_, which compares the value with the whole of ``input``."""
    if value._data.dtype != input._data.dtype or not array_module(input).may_share_memory(input._data, value._data):
        return  # (a value cast first is a copy)
    xp = array_module(input)
    if not basic:
        _refuse_overlap(input._data, value._data, full_too=True)
        return
    try:
        written = input._data[key]
    except IndexError as e:  # an out-of-range integer: torch's words
        raise in_torch_words(e) from None
    shape = value._data.shape
    while shape and shape[0] == 1 and len(shape) > written.ndim:
        shape = shape[1:]
    if isinstance(written, xp.ndarray) and shape == written.shape:  # (another shape is expanded: "too hard")
        _refuse_overlap(written, value._data)


def _check_assigned_value(input: Tensor, value) -> None:
    """torch writes a tensor or a Python number (a NumPy integer counts, as it has __index__); a
    list, tuple, None, array or NumPy float is a TypeError, whatever the key."""
    if isinstance(value, (Tensor, bool, int, float, complex, np.integer)):
        return
    kind = type(value)
    # the C name torch prints (tp_name): dotted for an extension type (numpy.float32), bare for a class
    shown = kind.__name__ if kind.__flags__ & _HEAP_TYPE or kind.__module__ == "builtins" \
        else f"{kind.__module__}.{kind.__name__}"
    raise TypeError(f"can't assign a {shown} to a {input.type()}")


_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python

_INT_RANGES = {d: (int(np.iinfo(d.np).min), int(np.iinfo(d.np).max))
               for d in (_dtype.uint8, _dtype.int8, _dtype.int16, _dtype.int32, _dtype.int64)}


def _assigned_number(value, dtype):
    """The number of ``x[key] = value`` as torch converts it to ``x``'s dtype, before it reads the
    key (a bare False key too): an int beyond int64 is a ValueError; a number outside an integer
    dtype, or a finite one outside float32's or complex64's range, c10's checked_convert
    RuntimeError; a half or bfloat16 tensor takes any real number (rounded to ±inf); a complex
    number with a zero imaginary part writes its real part into a real tensor, another raises."""
    kind = type(value)
    if kind is float or kind is int:  # the common cases, kept short: a number every such dtype holds
        if dtype._category >= 2 and -65504.0 <= value <= 65504.0:
            return value
        limits = _INT_RANGES.get(dtype) if kind is int else None
        if limits is not None and limits[0] <= value <= limits[1]:
            return value
    elif kind is bool:
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
            and not -(1 << 63) <= int(value) < (1 << 63):
        raise ValueError("Overflow when unpacking long long")
    if dtype is _dtype.bool:  # any number, as its truth (1j is True)
        return bool(value)
    if dtype is _dtype.float16 or dtype is _dtype.bfloat16:
        if isinstance(value, complex) and value.imag:  # (torch's words name the double it converts through)
            raise RuntimeError("value cannot be converted to type double without overflow")
    else:
        _dtype.checked_scalar(value, dtype)
    return value.real if isinstance(value, complex) and not dtype.is_complex else value


def _slices_to_itself(raw_key, shape: tuple) -> bool:
    """Whether torch's set_item slicing of ``raw_key`` leaves the tensor itself, making no view:
    Ellipsis, and slices from 0 to the dim's end by 1 (applySlice's shortcut; a read aliases it)."""
    items = raw_key if type(raw_key) is tuple else (raw_key,)
    if sum(1 for item in items if item is not Ellipsis) > len(shape):
        return False
    dim = 0
    for item in items:
        if item is Ellipsis:
            dim = len(shape) - sum(1 for rest in items[items.index(item) + 1:] if rest is not Ellipsis)
        elif type(item) is slice:
            # (the start as given, the stop clamped to the dim: x[-n:] is a view, x[0:n + 5] is x)
            from_start = item.start is None or type(item.start) is int and item.start == 0
            to_end = item.stop is None or type(item.stop) is int and item.stop >= shape[dim]
            by_one = item.step is None or type(item.step) is int and item.step == 1
            if not (from_start and to_end and by_one):
                return False
            dim += 1
        else:
            return False
    return True


def _made_without_grad_write_refusal(view: Tensor, raw_key, key) -> RuntimeError:
    """torch's refusal of ``view[key] = value`` with grad enabled, ``view`` made under no_grad: a
    basic key writes into a new view of it (named in the message), an advanced one into it."""
    if not _is_basic(key) or _slices_to_itself(raw_key, view._data.shape):
        return view._view_state.refusal(view, "is being")
    with enable_grad():
        written = getitem(view, raw_key)
    return written._view_state.refusal(written, "is being")


# ---------------------------------------------------------------- index checks
# the index dtypes each op takes, and torch's error (class, words) for another; index_copy, take
# and put take int64 only, and the in-place form's name is in the message of both forms
_INDEX_DTYPES = {
    "index_add": ((np.int64, np.int32), RuntimeError, "index_add_(): Expected dtype int32/int64 for index but got: {}"),
    "index_reduce": ((np.int64, np.int32), RuntimeError,
                     "index_reduce_(): Expected dtype int32/int64 for index but got: {}"),
    "index_copy": ((np.int64,), RuntimeError, "index_copy_(): Expected a long tensor for index, but got {}"),
    "index_fill": ((np.int64,), IndexError, "index_fill_(): Expected dtype int64 for index."),
    "take": ((np.int64,), RuntimeError, "take(): Expected a long tensor for index, but got {}"),
    "put": ((np.int64,), RuntimeError, "put_(): Expected a long tensor for index, but got {}"),
}


def _index_array(index, op: str, vector: bool = False) -> np.ndarray:
    """The integer array inside an index tensor, with torch's dtype (and vector) checks."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}(): argument 'index' must be Tensor, not {type(index).__name__}")
    array = index._data
    if vector and array.ndim > 1 and op in _VECTOR_FIRST:  # these kernels check the rank before the dtype
        raise IndexError(_VECTOR_FIRST[op](array))
    accepted, error, words = _INDEX_DTYPES.get(op, ((np.int64, np.int32), RuntimeError,
                                                    f"{op}(): Expected dtype int32 or int64 for index"))
    if array.dtype not in accepted:
        raise error(words.format(scalar_name(array.dtype)))
    on_its_gpu(array)  # its range check runs where it is
    if vector:
        if array.ndim > 1:
            if op == "index_fill":
                raise RuntimeError("Index has to be a vector/scalar")
            raise IndexError(f"{op}(): Index is supposed to be a vector")
        array = array.reshape(-1)
    return array


# torch's index_add_ and index_copy_ refuse an index of rank 2 or more before looking at its dtype
_VECTOR_FIRST = {
    **{op: lambda array, op=op: (f"{op}_(): Index is supposed to be a vector, but got dim: {array.ndim} "
                                 f"with type: {scalar_name(array.dtype)} and size: {list(array.shape)}")
       for op in ("index_add", "index_reduce")},
    "index_copy": lambda array: f"index_copy_(): Index should have dimension 1 or 0 (got {array.ndim})",
}


def _refuse_other_source_dtype(op: str, input: Tensor, source) -> None:
    """torch's index_add_ / index_reduce_ / index_copy_ take only a source of self's own dtype (no
    promotion), checked after the index and before any shape."""
    if not isinstance(source, Tensor) or source._data.dtype == input._data.dtype:
        return
    mine, theirs = scalar_name(input._data.dtype), scalar_name(source._data.dtype)
    if op in ("index_add", "index_reduce"):
        raise RuntimeError(f"{op}_(): self ({mine}) and source ({theirs}) must have the same scalar type")
    raise RuntimeError(f"index_copy_(): self and source expected to have the same dtype, but got (self) {mine} "
                       f"and (source) {theirs}")


def _scatter_gather_index(index, op: str) -> np.ndarray:
    """The index array of gather and the scatters: torch checks its dtype only when it has elements
    (an empty index of any dtype selects nothing) and names every scatter "scatter()"."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}(): argument 'index' must be Tensor, not {type(index).__name__}")
    array = index._data
    if array.dtype not in (np.int64, np.int32):
        if array.size:
            raise RuntimeError(f"{'gather' if op == 'gather' else 'scatter'}(): Expected dtype int32/int64 for index")
        array = array.astype(np.int64)
    on_its_gpu(array)  # its range check runs where it is
    return array


def _first_out_of_range(index: np.ndarray, low: int, high: int) -> int:
    """The first index outside ``[low, high)`` in row-major order: the one torch's kernels name
    (gather, the scatters and take meet the index's elements in that order)."""
    return int(index[(index >= high) | (index < low)][0])


def _check_range(index: np.ndarray, size: int, dim: int, op: str, negative: bool = False) -> None:
    if index.size == 0:
        return
    on_its_gpu(index)
    low, high = int(index.min()), int(index.max())
    floor = -size if negative else 0
    if high >= size or low < floor:
        bad = _first_out_of_range(index, floor, size)
        if op in ("index_select", "index_add", "index_copy", "index_fill"):
            raise IndexError(f"{op}(): index {bad} is out of bounds for dimension {dim} with size {size}")
        raise RuntimeError(f"index {bad} is out of bounds for dimension {dim} with size {size}")


def _dim_index(index: np.ndarray, dim: int) -> tuple:
    """The advanced-index tuple that addresses ``out[..., index[i, j, ...], ...]`` along ``dim``:
    ``index`` itself at ``dim``, broadcast aranges elsewhere."""
    xp = array_module(index)
    ndim = index.ndim
    return tuple(
        index if k == dim else xp.arange(n).reshape((n,) + (1,) * (ndim - k - 1))
        for k, n in enumerate(index.shape)
    )


def _check_gather_shapes(op: str, input: Tensor, index: np.ndarray, dim: int, src: Tensor | None = None) -> None:
    if index.size == 0:
        return  # torch checks no shapes against an empty index: the op reads or writes nothing
    ndim = input._data.ndim
    if index.ndim != ndim and not (max(index.ndim, ndim) <= 1):
        # torch's gather names its input "input", the scatters name theirs "self"
        raise RuntimeError(f"Index tensor must have the same number of dimensions as "
                           f"{'self' if op.startswith('scatter') else 'input'} tensor")
    if src is not None and src._data.ndim != max(index.ndim, 0) and not (max(index.ndim, src._data.ndim) <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as src tensor")
    # a 0-d input or src counts as a vector of one (torch accepts index [0] for both)
    input_shape, src_shape = _as_1d(input._data).shape, None if src is None else _as_1d(src._data).shape
    if op.startswith("scatter"):  # torch's scatter_shape_check words every size in one message
        too_large = any(k != dim and index.shape[k] > input_shape[k] for k in range(index.ndim)) or (
            src is not None and any(index.shape[k] > src_shape[k] for k in range(index.ndim)))
        if too_large:
            raise RuntimeError(
                f"Expected index {list(index.shape)} to be no larger than self {list(input._data.shape)} apart from "
                f"dimension {dim}" + ("" if src is None else f" and to be no larger size than src {list(src._data.shape)}"))
        return
    for k in range(index.ndim):
        if k != dim and index.shape[k] > input_shape[k]:
            raise RuntimeError(
                f"Size does not match at dimension {k} expected index {list(index.shape)} to be no "
                f"larger than self {list(input._data.shape)} apart from dimension {dim}")
        if src is not None and index.shape[k] > src_shape[k]:
            raise RuntimeError(
                f"Size does not match at dimension {k} expected index {list(index.shape)} to be no "
                f"larger than src {list(src._data.shape)}")


def _as_1d(array: np.ndarray) -> np.ndarray:
    return array.reshape(1) if array.ndim == 0 else array


def _prefix(array: np.ndarray, shape: tuple) -> np.ndarray:
    """The leading ``shape`` block of ``array`` (gather/scatter may use a smaller index)."""
    if array.shape == shape:
        return array
    return array[tuple(slice(0, n) for n in shape)]


# ---------------------------------------------------------------- gather / scatter
class Gather(Function):
    label = "gather"
    rule = "scatter-adds the gradient back to the gathered positions"
    _array_forward = True
    # torch's names; the dim as given (a negative one as the C++ node's unsigned)
    saved_attributes = {
        "_saved_dim": _function.SavedValue(lambda node: _function.as_uint64(getattr(node, "given_dim", node.dim))),
        "_saved_index": _function.SavedValue(lambda node: Tensor._make(node.index), tensor=True),
        "_saved_self": _function.saved(0), "_saved_sparse_grad": _function.SavedValue(lambda node: getattr(node, "sparse_grad", False))}

    @staticmethod
    def forward(ctx, x, index, dim):
        xp = array_module(x)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x)  # torch's gather keeps its input (_saved_self), version-checked
        ctx.index = index
        ctx.dim = dim
        ctx.shape = x.shape
        x1, i1 = _as_1d(x), _as_1d(index)
        out = x1[_dim_index(i1, dim)] if i1.size else xp.zeros(i1.shape, dtype=x.dtype)
        return out.reshape(index.shape)

    @staticmethod
    def backward(ctx, grad):
        # each read element gets the gradient of every output that read it (repeats summed)
        return _given_dim_kept(scatter_add_into(grad, ctx.index, ctx.dim, ctx.shape, getattr(ctx, "given_dim", None)),
                               ctx)


def _given_dim_kept(grad: Tensor, read) -> Tensor:
    """``grad``, a read's backward, its node (under create_graph) keeping the dim as the read was given
    it: torch's backward node saves that dim, a negative one as its C++ node's unsigned."""
    if grad._grad_fn is not None:
        grad._grad_fn.given_dim = getattr(read, "given_dim", read.dim)
    return grad


_GIVEN_DIM = _function.SavedValue(lambda node: _function.as_uint64(getattr(node, "given_dim", node.dim)))


def scatter_add_into(src: Tensor, index, dim: int, shape: tuple, given_dim: int | None = None) -> Tensor:
    """zeros(shape) with ``src`` added at ``index`` along ``dim``: gather's adjoint. A dispatch mode sees torch's
    gather_backward: ``src.new_zeros(shape)``, then scatter_add(zeros, dim as given, index, src)."""
    if _function.active_dispatch is not None:
        made = []
        zeros = _function.factory_dispatch("new_zeros", lambda src, size: made.append(_new_zeros(src, size)) or made[-1],
                                           (src, list(shape)), {})
        if zeros is not _function.RUN_UNDISPATCHED:
            if not made or zeros is not made[-1]:  # (a handler's own tensor: the op writes a copy, not it)
                zeros = Tensor._make(zeros._data.copy())
            _function.note_given(ScatterAddInto, zeros, given_dim=dim if given_dim is None else given_dim)
            return ScatterAddInto.apply(zeros, src, index=index, dim=dim)
    return ScatterAddInto.apply(_new_zeros(src, shape), src, index=index, dim=dim)


def _new_zeros(src: Tensor, shape) -> Tensor:
    return Tensor._make(array_module(src).zeros(tuple(shape), dtype=src._data.dtype))


class ScatterAddInto(Function):
    """``zeros.scatter_add_(dim, index, src)`` on zeros of its own, as torch records gather's backward:
    a ScatterAddBackward0 whose first edge, the zeros', is None."""

    _array_forward = True
    node_name = "ScatterAddBackward0"
    label = "gather_backward"
    rule = "gathers the gradient at the same index (gather's backward, recorded as an op under create_graph)"
    saved_attributes = {"_saved_dim": _GIVEN_DIM,
                        "_saved_index": _function.SavedValue(lambda node: Tensor._make(node.index), tensor=True)}

    @staticmethod
    def forward(ctx, zeros, src, index, dim):
        ctx.index = index
        ctx.dim = dim
        _scatter_add_array(zeros, index, dim, src)  # (zeros is this op's own: written, not copied)
        return zeros

    @staticmethod
    def backward(ctx, grad):
        return None, Gather.apply(grad, index=ctx.index, dim=ctx.dim)


def _scatter_add_array(out: np.ndarray, index: np.ndarray, dim: int, src: np.ndarray) -> None:
    """``out[..., index, ...] += src`` along ``dim`` in place, repeated indices summed."""
    xp = array_module(out)
    if index.size == 0:
        return
    index = _as_1d(index)
    src = _prefix(_as_1d(src), index.shape)
    target = _as_1d(out)
    key = _dim_index(index, dim)
    if target.dtype.kind in "fV":
        # flat positions, then one bincount: vectorised, faster than np.add.at
        strides = [int(s) for s in np.cumprod((target.shape[1:] + (1,))[::-1])[::-1]]  # host: shape math
        flat = xp.zeros(index.shape, dtype=np.intp)
        for k, stride in zip(key, strides):
            flat += k * stride
        summed = xp.bincount(flat.ravel(), weights=src.ravel(), minlength=target.size)
        target += summed.reshape(target.shape).astype(target.dtype, copy=False)
    else:
        ufunc_at(xp, "add", target, key, src)


def _answered_by_wrapper_index(name: str, op, index, args: tuple, kwargs: dict | None = None):
    """An index-taking op whose index is a wrapper subclass (its values live in its attributes, the
    array beneath is a placeholder): its handler answers ``aten.<name>`` with the arguments as given, the
    gradient recorded over the index the handler handed its call (argument_dispatch); None when the index is
    no wrapper. Under a dispatch mode a gradient through such a call is refused, not dropped."""
    if not isinstance(index, Tensor) or index._wrapper_strides is None or _function.active_dispatch is None:
        return None
    made = _function.argument_dispatch(name, op, args, kwargs or {})
    if made is not _function.RUN_UNDISPATCHED:
        return made
    if is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in args):
        raise NotImplementedError(f"{name.partition('.')[0]}(): a gradient through a wrapper subclass index "
                                  f"({type(index).__name__}) under a dispatch mode is not supported")
    made = _function.factory_dispatch(name, op, args, kwargs or {})
    return None if made is _function.RUN_UNDISPATCHED else made


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """torch.gather: ``out[i][j] = input[index[i][j]][j]`` (for dim 0); ``index`` may be smaller
    than ``input`` in the other dims. The gradient scatter-adds back (repeats summed)."""
    made = _answered_by_wrapper_index("gather", gather, index, (input, dim, index), {"sparse_grad": sparse_grad})
    if made is not None:
        return made
    d = _wrap_dim(dim, input._data.ndim, "gather")
    array = _scatter_gather_index(index, "gather")
    _check_gather_shapes("gather", input, array, d)
    _check_range(array, _as_1d(input._data).shape[d], d, "gather")
    if _function.active_dispatch is not None:  # (a mode shows the dim as given: gather(x, -1, index))
        _function.note_given(Gather, input, given_dim=dim)
    out = Gather.apply(input, index=array, dim=d)
    if out._grad_fn is not None:
        out._grad_fn.given_dim, out._grad_fn.sparse_grad = dim, sparse_grad  # torch's _saved_dim, _saved_sparse_grad
    return out


class ScatterAdd(Function):
    label = "scatter_add"
    rule = "∂/∂self = G, ∂/∂src = G gathered at the index"
    _array_forward = True
    # torch keeps the index only for src's gradient
    saved_attributes = {"_saved_dim": _GIVEN_DIM, "_saved_index": _function.SavedValue(
        lambda node: Tensor._make(node.index) if node.needs_input_grad[1] else None, tensor=True,
        undefined=lambda node: not node.needs_input_grad[1])}

    @staticmethod
    def forward(ctx, x, src, index, dim):
        ctx.index = index
        ctx.dim = dim
        ctx.src_shape = src.shape
        out = x.copy()
        _scatter_add_array(out, index, dim, src)
        return out

    @staticmethod
    def backward(ctx, grad):
        # d/dx = identity; d/dsrc[j] = grad at the slot src[j] was added to
        grad_src = None
        if ctx.needs_input_grad[1]:
            # (of the index's shape, as torch's: a src larger than the index gets the engine's
            # refusal of a gradient of another shape, as in torch)
            grad_src = Gather.apply(grad, index=ctx.index, dim=ctx.dim)
        return grad, grad_src


def _pad_to(t: Tensor, shape: tuple) -> Tensor:
    """Zero-pad ``t`` at the end of each dim up to ``shape`` (the unused tail of a larger src)."""
    if tuple(t._data.shape) == tuple(shape):
        return t
    from .shape import ConstantPad

    if t._data.ndim == 0:
        return t
    widths = tuple((0, n - m) for n, m in zip(shape, t._data.shape))
    return ConstantPad.apply(t, widths=widths, value=0)


def _scatter_src(input: Tensor, src: Tensor, op: str) -> Tensor:
    if not isinstance(src, Tensor):
        raise TypeError(f"{op}(): argument 'src' must be Tensor, not {type(src).__name__}")
    if src._data.dtype != input._data.dtype:
        # torch's scatter_add and scatter_reduce share scatter's meta check, and its name
        raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    return src


@honours_out
def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """torch.scatter_add: a copy of ``input`` with ``src[i][j]`` added at ``index[i][j]`` along
    ``dim`` (repeated indices accumulate)."""
    made = _answered_by_wrapper_index("scatter_add", scatter_add, index, (input, dim, index, src))
    if made is not None:
        return made
    d = _wrap_dim(dim, input._data.ndim, "scatter_add")
    array = _scatter_gather_index(index, "scatter_add")
    src = _scatter_src(input, src, "scatter_add")
    _check_gather_shapes("scatter_add", input, array, d, src)
    _check_range(array, _as_1d(input._data).shape[d], d, "scatter_add")
    if _function.active_dispatch is not None:  # (a mode sees the call as given)
        _function.note_given(ScatterAdd, input, aten_call=(("scatter_add", "default"), (input, dim, index, src), {}))
    return _keep_given_dim(ScatterAdd.apply(input, src, index=array, dim=d), dim)


# torch's scatter nodes keep the dim as given (a negative one as the C++ node's unsigned) and the index
_SCATTER_SAVED = {"_saved_dim": SavedValue(lambda node: as_uint64(int(node.dim if node.given_dim is None
                                                                       else node.given_dim))),
                  "_saved_index": SavedValue(lambda node: Tensor._make(node.index.astype(np.int64, copy=False)),
                                             tensor=True)}


class Scatter(Function):
    label = "scatter"
    rule = "the overwritten positions pass no gradient to self; each src element gets its position's gradient"
    _array_forward = True
    saved_attributes = _SCATTER_SAVED

    @staticmethod
    def forward(ctx, x, src, index, dim, given_dim=None):
        ctx.index = index
        ctx.dim, ctx.given_dim = dim, given_dim
        ctx.src_shape = src.shape
        out = x.copy()
        if index.size:
            target = _as_1d(out)
            target[_dim_index(_as_1d(index), dim)] = _prefix(_as_1d(src), _as_1d(index).shape)
        return out

    @staticmethod
    def backward(ctx, grad):
        # overwritten slots pass nothing to x; each src element gets its slot's gradient
        grad_x = grad_src = None
        if ctx.needs_input_grad[0]:
            grad_x = ScatterValue.apply(grad, index=ctx.index, dim=ctx.dim, value=0)
        if ctx.needs_input_grad[1]:
            grad_src = Gather.apply(grad, index=ctx.index, dim=ctx.dim)  # (the index's shape: see ScatterAdd)
        return grad_x, grad_src


class ScatterValue(Function):
    _array_forward = True
    node_name = "ScatterBackward1"
    label = "scatter"
    rule = "the overwritten positions get no gradient; the rest passes through"
    saved_attributes = _SCATTER_SAVED

    @staticmethod
    def forward(ctx, x, index, dim, value, given_dim=None):
        ctx.index = index
        ctx.dim, ctx.given_dim = dim, given_dim
        out = x.copy()
        if index.size:
            _as_1d(out)[_dim_index(_as_1d(index), dim)] = value
        return out

    @staticmethod
    def backward(ctx, grad):
        return ScatterValue.apply(grad, index=ctx.index, dim=ctx.dim, value=0)


class _ScatterLegacyReduce(without_derivative("aten::scatter")):
    """scatter(reduce='add' | 'multiply'): forward only. torch has no derivative for either: its
    node is NotImplemented, whose backward raises."""

    node_name = "torch::autograd::NotImplemented"
    label = "scatter"
    rule = "scatter(reduce=...) has no derivative (as in torch): its backward raises"

    @staticmethod
    def forward(ctx, x, src, index, dim, reduce):
        xp = array_module(x)
        out = x.copy()
        if reduce == "add":
            _scatter_add_array(out, index, dim, src)
        elif index.size:
            ufunc_at(xp, "multiply", _as_1d(out), _dim_index(_as_1d(index), dim),
                     _prefix(_as_1d(src), _as_1d(index).shape))
        return out


@honours_out
def scatter(input: Tensor, dim: int, index: Tensor, src=None, value=None, *, reduce=None) -> Tensor:
    """torch.scatter: a copy of ``input`` with ``src[i][j]`` (or the number ``value``) written at
    ``index[i][j]`` along ``dim``. ``reduce='add'|'multiply'`` accumulates instead (no gradient,
    as in torch)."""
    if src is None and value is None:
        raise TypeError("scatter() missing required argument 'src' or 'value'")
    if src is not None and not isinstance(src, Tensor):
        src, value = None, src
    made = _answered_by_wrapper_index(
        ("scatter.src" if src is not None else "scatter.value") if reduce is None
        else ("scatter.reduce" if src is not None else "scatter.value_reduce"), scatter, index, (input, dim, index, src if src is not None else value), {} if reduce is None else {"reduce": reduce})
    if made is not None:
        return made
    if reduce is not None and src is not None:  # torch's TORCH_WARN_ONCE, before its checks
        _config.warn_once("The reduce argument of torch.scatter with Tensor src is deprecated and will be removed "
                          "in a future PyTorch release. Use torch.scatter_reduce instead for more reduction "
                          "options. (Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/"
                          "TensorAdvancedIndexing.cpp:225.)")
    given_value = value
    value = checked_scalar(value, input.dtype)
    d = _wrap_dim(dim, input._data.ndim, "scatter")
    array = _scatter_gather_index(index, "scatter")
    if src is not None:
        _scatter_src(input, src, "scatter")
    _check_gather_shapes("scatter", input, array, d, src)
    _check_range(array, _as_1d(input._data).shape[d], d, "scatter")
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise RuntimeError("reduce argument must be either add or multiply.")
        if src is None:
            from .elementwise import _as_operand

            src = _as_operand(value, input.dtype, input).expand(tuple(index.shape))
        return _ScatterLegacyReduce.apply(input, src, index=array, dim=d, reduce=reduce)
    if _function.active_dispatch is not None:  # (a mode sees the call as given)
        _function.note_given(Scatter if src is not None else ScatterValue, input, aten_call=(
            ("scatter", "src") if src is not None else ("scatter", "value"),
            (input, dim, index, src if src is not None else given_value), {}))
    if src is None:
        return ScatterValue.apply(input, index=array, dim=d, value=value, given_dim=dim)
    return Scatter.apply(input, src, index=array, dim=d, given_dim=dim)


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
# torch's scatter_reduce kernel also reads "max" and "min" as amax and amin (the backward refuses them)
_REDUCTION_ALIASES = {"max": "amax", "min": "amin"}


def _touched(shape: tuple, index: np.ndarray, dim: int) -> np.ndarray:
    """Boolean mask of the slots of a ``shape`` tensor that ``index`` addresses along ``dim``."""
    xp = array_module(index)
    mask = xp.zeros(shape, dtype=bool)
    if index.size:
        _as_1d(mask)[_dim_index(_as_1d(index), dim)] = True
    return mask


# torch's node zeroing the written slots of prod's input gradient (include_self=False), by forward node
_PROD_ZEROED_NODES = {"IndexReduceBackward0": "IndexFillBackward0"}


class ScatterReduce(Function):
    """scatter_reduce with prod / amax / amin (sum and mean are compositions of ScatterAdd)."""

    label = "scatter_reduce"
    rule = ("prod: each factor v gets G·out/v; amax/amin: the gradient is split evenly among the values "
            "equal to the result")
    _array_forward = True

    @staticmethod
    def forward(ctx, x, src, index, dim, reduce, include_self):
        xp = array_module(x)
        ctx.given_reduce = reduce
        reduce = _REDUCTION_ALIASES.get(reduce, reduce)
        ufunc_name = {"prod": "multiply", "amax": "maximum", "amin": "minimum"}[reduce]
        out = x.copy()
        touched = _touched(x.shape, index, dim)
        if not include_self:
            if reduce == "prod":
                out[touched] = 1
            elif x.dtype.kind in "fV":
                out[touched] = -np.inf if reduce == "amax" else np.inf
            elif x.dtype == np.bool_:
                out[touched] = reduce != "amax"  # False is bool's lowest value, True its highest
            else:
                info = np.iinfo(x.dtype)
                out[touched] = info.min if reduce == "amax" else info.max
        if index.size:
            ufunc_at(xp, ufunc_name, _as_1d(out), _dim_index(_as_1d(index), dim), _prefix(_as_1d(src), _as_1d(index).shape))
        ctx.save_for_backward(x, src, out)
        ctx.params = (index, dim, reduce, include_self, touched)
        return out

    @staticmethod
    def backward(ctx, grad):
        from .elementwise import where

        if ctx.given_reduce in _REDUCTION_ALIASES:  # torch's forward accepts them, its derivative formula does not
            raise RuntimeError(f"Expected 'reduce' to be one of 'sum', 'prod', 'mean', 'amax', 'amin' but got "
                               f"{ctx.given_reduce}.")

        x, src, out = ctx.saved_values
        xp = array_module(x._data)
        index, dim, reduce, include_self, touched = ctx.params
        src_used = src if src._data.shape == index.shape else src[tuple(slice(0, n) for n in index.shape)]
        touched_t = Tensor._make(touched)
        if reduce == "prod":
            # d out / d v = the product of the other factors; torch's exclusive products keep a
            # zero factor's gradient finite: recompute with that factor (alone in its slot) as 1
            index_t = Tensor._make(index)
            if include_self:
                masked_x = where(Tensor._make(x._data == 0), 1.0, x)
                grad_x = grad * scatter_reduce(masked_x, dim, index_t, src_used, "prod") / masked_x
            else:
                # torch computes it as for include_self and then zeroes the slots written, so the
                # gradient keeps its edges to input and src (derivative 0: out equals input there)
                grad_x = depending_on(where(touched_t, 0.0, grad), x, src,
                                      node=_PROD_ZEROED_NODES.get(type(ctx).__name__, "ScatterBackward1"))
            src_zero = src_used._data == 0
            zeros_per_slot = xp.zeros(x._data.shape, dtype=grad._data.dtype)
            _scatter_add_array(zeros_per_slot, index, dim, src_zero.astype(grad._data.dtype))
            single = Tensor._make(src_zero & (Gather.apply(Tensor._make(zeros_per_slot), index=index,
                                                           dim=dim)._data == 1))
            without_single = scatter_reduce(x, dim, index_t, where(single, 1.0, src_used), "prod",
                                            include_self=include_self)
            grad_src = where(single, Gather.apply(grad * without_single, index=index, dim=dim),
                             Gather.apply(grad * out, index=index, dim=dim)
                             / where(Tensor._make(src_zero), 1.0, src_used))
            return grad_x, _pad_to(grad_src, src._data.shape)
        # amax / amin: the gradient is shared evenly among every value equal to the result.
        # torch counts input's own value among the ties even when include_self=False, then zeroes
        # input's gradient at the written slots: where input equals the result (a zeros base and
        # a maximum of 0), each of n src ties gets 1/(n + 1). Kept so the numbers are torch's.
        self_hit = x._data == out._data
        src_hit = Gather.apply(out, index=index, dim=dim)._data == src_used._data
        count = xp.array(self_hit, dtype=grad._data.dtype)  # an array even for 0-d (== gives a NumPy scalar)
        _scatter_add_array(count, index, dim, src_hit.astype(grad._data.dtype))
        shared = grad / Tensor._make(count)
        grad_x = where(Tensor._make(self_hit if include_self else self_hit & ~touched), shared, 0.0)
        grad_src = where(Tensor._make(src_hit), Gather.apply(shared, index=index, dim=dim), 0.0)
        return grad_x, _pad_to(grad_src, src._data.shape)


@honours_out
def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """torch.scatter_reduce: reduce ``src`` into ``input`` at ``index`` along ``dim`` with
    sum / prod / mean / amax / amin; ``include_self`` counts input's own value in the reduction.
    amax/amin share the gradient evenly among ties, as torch."""
    made = _answered_by_wrapper_index("scatter_reduce.two", scatter_reduce, index, (input, dim, index, src, reduce),
                                      {} if include_self is True else {"include_self": include_self})
    if made is not None:
        return made
    xp = array_module(input)
    from .elementwise import where

    check_str(reduce, "scatter_reduce", "reduce")
    if reduce not in _REDUCTIONS and reduce not in _REDUCTION_ALIASES:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    d = _wrap_dim(dim, input._data.ndim, "scatter_reduce")
    array = _scatter_gather_index(index, "scatter_reduce")
    src = _scatter_src(input, src, "scatter_reduce")
    _check_gather_shapes("scatter_reduce", input, array, d, src)
    _check_range(array, _as_1d(input._data).shape[d], d, "scatter_reduce")
    if reduce not in ("sum", "mean"):
        return ScatterReduce.apply(input, src, index=array, dim=d, reduce=reduce, include_self=include_self)
    touched = _touched(input._data.shape, array, d)
    # a zero of input's own dtype: a Python 0.0 would promote an integer input to float
    base = input if include_self else where(Tensor._make(touched), Tensor._make(xp.zeros((), input._data.dtype)), input)
    total = ScatterAdd.apply(base, src, index=array, dim=d)
    if reduce == "sum":
        return name_node(total, "ScatterReduceBackward0", label="scatter_reduce")  # torch's one node for the reduction
    counts = xp.full(input._data.shape, 1 if include_self else 0, dtype=input._data.dtype)
    _scatter_add_array(counts, array, d, xp.ones(array.shape, dtype=counts.dtype))
    counts = xp.maximum(counts, 1)
    if input._data.dtype.kind not in "fV":
        return Tensor._make(total._data // counts)
    return name_node(total / Tensor._make(counts), "ScatterReduceBackward0", label="scatter_reduce",
                     rule="reduce='mean', its last step: divides the gradient by each position's count")


# ---------------------------------------------------------------- index_* along one dim
def _moved(array: np.ndarray, dim: int) -> np.ndarray:
    xp = array_module(array)
    return xp.moveaxis(_as_1d(array), dim, 0)


class IndexSelect(Function):
    label = "index_select"
    rule = "adds the gradient into zeros at the selected indices"
    _array_forward = True
    # torch's names; the dim as given (a negative one as the C++ node's unsigned)
    saved_attributes = {"_saved_dim": _function.SavedValue(lambda node: _function.as_uint64(getattr(node, "given_dim",
                                                                                                      node.dim))),
                        "_saved_index": _function.SavedValue(lambda node: Tensor._make(node.index), tensor=True),
                        "_saved_self_sym_sizes": _function.input_sizes(0)}

    @staticmethod
    def forward(ctx, x, index, dim):
        xp = array_module(x)
        ctx.index = index
        ctx.dim = dim
        ctx.shape = x.shape
        return xp.take(x, index, axis=dim) if x.ndim else x.copy()  # a 0-d x takes only index [0]

    @staticmethod
    def backward(ctx, grad):
        # rows read k times get k gradients summed
        return _given_dim_kept(index_add_into(grad, ctx.index, ctx.dim, ctx.shape), ctx)


def index_add_into(src: Tensor, index, dim: int, shape: tuple) -> Tensor:
    """zeros(shape) with the slabs of ``src`` added at ``index`` along ``dim``: index_select's adjoint."""
    zeros = Tensor._make(array_module(src).zeros(shape, dtype=src._data.dtype))
    if _function.tracing_ops:  # (the same zeros for every slice of a vmap that records its ops, until written)
        _function.traced_constant(zeros, False)
    return IndexAddInto.apply(zeros, src, index=index, dim=dim)


class IndexAddInto(Function):
    """``zeros.index_add_(dim, index, src)`` on zeros of its own, as torch records index_select's
    backward: an IndexAddBackward0 whose first edge, the zeros', is None."""

    _array_forward = True
    node_name = "IndexAddBackward0"
    label = "index_select_backward"
    rule = ("selects the gradient's slabs at the same indices (index_select's backward, recorded as an op "
            "under create_graph)")
    saved_attributes = {"_saved_alpha": 1, "_saved_dim": _GIVEN_DIM,
                        "_saved_index": _function.SavedValue(lambda node: Tensor._make(node.index), tensor=True),
                        "_saved_source_dim": _function.SavedValue(lambda node: len(node._input_meta[1][0]))}

    @staticmethod
    def forward(ctx, zeros, src, index, dim):
        ctx.index = index
        ctx.dim = dim
        _add_rows(_moved(zeros, dim), index, _moved(src, dim))  # (zeros is this op's own: written, not copied)
        return zeros

    @staticmethod
    def backward(ctx, grad):
        return None, IndexSelect.apply(grad, index=ctx.index, dim=ctx.dim)


def _index_dim(input: Tensor, dim: int, index: Tensor, op: str, alpha=1, source=None) -> tuple:
    if op != "index_fill":  # torch's index_fill_ checks the index's dtype first, the others the dim
        _wrap_dim(dim, input._data.ndim, op)
    array = _index_array(index, op, vector=True)
    d = _wrap_dim(dim, input._data.ndim, op)
    _refuse_other_source_dtype(op, input, source)
    size = _as_1d(input._data).shape[d]
    low = -size if op == "index_fill" else 0  # index_add and index_copy refuse negative indices
    if op == "index_add" and input._data.ndim > 1 and not input._data.size:
        return array, d  # torch's index_add_ of 2-d or more returns before it reads an index when self is empty
    if op in ("index_copy", "index_fill") and not input._data.size and size:
        # torch's kernels read no index of an empty self either (along a size-0 dim they fail inside
        # torch, "setStorage: ...", which the check below words as an IndexError); any in-range stand-in will do
        return array % size, d
    if array.size and (int(array.max()) >= size or int(array.min()) < low):
        bad = int(array[(array >= size) | (array < low)][0])  # the first, as torch's loop meets it
        words = f"index {bad} is out of bounds for dimension {d} with size {size}"
        if op == "index_add":  # torch's index_put path (int64 index, alpha 1, 2-d or more) words it so
            fast = array.dtype == np.int64 and alpha == 1 and input._data.ndim > 1
            raise RuntimeError(words) if fast else IndexError("index out of range in self")
        raise IndexError(f"index_copy_(): {words}" if op == "index_copy" else words)
    return array, d


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """torch.index_select: the slabs ``index`` (a vector) of ``input`` along ``dim``, a copy.

    The checks follow torch's CPU kernels, whose wording and error class differ: the dim-1 path of
    a matrix or more says "out of DATA bounds" (RuntimeError), the others "out of range" (IndexError);
    an empty index is never checked; an empty input only against the dim's size."""
    made = _answered_by_wrapper_index("index_select", index_select, index, (input, dim, index))
    if made is not None:
        return made
    if input.__class__ in SPARSE_COO_TYPES:
        return input.index_select(dim, index)  # sparse, as torch's
    ndim = input._data.ndim
    if isinstance(index, Tensor):  # torch checks the dim, the index's rank and count, then its dtype
        _wrap_dim(dim, ndim, "index_select")
        if index._data.ndim > 1:
            raise IndexError("index_select(): Index is supposed to be a vector")
        if ndim == 0 and index._data.size != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {index._data.size} value(s)")
    array = _index_array(index, "index_select", vector=True)
    d = _wrap_dim(dim, ndim, "index_select")
    if ndim == 0:
        if int(array[0]) != 0:
            raise IndexError("index out of range in self")
        return IndexSelect.apply(input, index=array, dim=d)
    size = input._data.shape[d]
    if not array.size:
        return IndexSelect.apply(input, index=array, dim=d)
    empty = ndim > 1 and input._data.size == 0
    if empty and size == 0:
        raise RuntimeError("index_select(): self indexing axis dim should be positive")
    high, low = int(array.max()), int(array.min())
    if high >= size or low < 0:
        if empty or (ndim > 1 and d == 1):
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={high if high >= size else low} "
                               f"axis_dim={size}")
        raise IndexError("index out of range in self")
    if _function.active_dispatch is not None:  # (a mode sees the call as given)
        _function.note_given(IndexSelect, input, aten_call=(("index_select", "default"), (input, dim, index), {}))
    out = IndexSelect.apply(input, index=array, dim=d)
    if out._grad_fn is not None:
        out._grad_fn.given_dim = dim  # torch's _saved_dim
    return out


def _check_source(op: str, input: Tensor, source: Tensor, index: np.ndarray, dim: int) -> None:
    if not isinstance(source, Tensor):
        raise TypeError(f"{op}(): argument 'source' must be Tensor, not {type(source).__name__}")
    src_shape = _as_1d(source._data).shape
    in_shape = _as_1d(input._data).shape
    if len(src_shape) != len(in_shape) or any(a != b for k, (a, b) in enumerate(zip(in_shape, src_shape)) if k != dim):
        if op == "index_copy_":
            raise RuntimeError(
                f"index_copy_(): Source/destination tensor must have same slice shapes. Destination "
                f"slice shape: {list(in_shape[:dim] + in_shape[dim + 1:])} at dimension {dim} and source "
                f"slice shape: {list(src_shape[:dim] + src_shape[dim + 1:])} at dimension {dim}.")
        raise RuntimeError(
            f"source tensor shape must match self tensor shape, excluding the specified dimension. "
            f"Got self.shape = {list(input._data.shape)} source.shape = {list(source._data.shape)}")
    if src_shape[dim] != index.size:
        if op == "index_copy_":
            raise IndexError(f"index_copy_(): Number of indices ({index.size}) should be equal to "
                             f"source.size(dim) ({src_shape[dim]})")
        raise RuntimeError(f"index_add_(): Number of indices ({index.size}) should be equal to "
                           f"source.size(dim): ({src_shape[dim]}), for dim: {dim}")


def index_func_meta(op: str, input: Tensor, dim: int, index: Tensor, source) -> int:
    """torch's checks of index_add_ and index_reduce_ before any index is read (its
    index_func_meta_impl), in its order: the dim on self, the index's rank and dtype, source's type
    and dtype, the dim within source (or 0), one index per slice of source along it (one for a 0-d
    source), then the other dims equal (every dim where either tensor is 0-d). Returns the dim."""
    d = _wrap_dim(dim, input._data.ndim, op)
    _index_array(index, op, vector=True)
    if not isinstance(source, Tensor):
        raise TypeError(f"{op}_(): argument 'source' (position 3) must be Tensor, not {type(source).__name__}")
    _refuse_other_source_dtype(op, input, source)
    self_sizes, source_sizes = list(input._data.shape), list(source._data.shape)
    if d != 0 and d >= len(source_sizes):
        raise RuntimeError(f"{op}_(): Indexing dim {d} is out of bounds of the source tensor with dim "
                           f"{len(source_sizes)}")
    numel = index._data.size
    if numel != (source_sizes[d] if source_sizes else 1):
        if not source_sizes:  # torch's message reads source.size(0) of a 0-d source, which fails first
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        raise RuntimeError(f"{op}_(): Number of indices ({numel}) should be equal to source.size(dim): "
                           f"({source_sizes[d]}), for dim: {d}")
    if self_sizes and source_sizes:
        del self_sizes[d], source_sizes[d]
    if self_sizes != source_sizes:
        raise RuntimeError(f"source tensor shape must match self tensor shape, excluding the specified dimension. "
                           f"Got self.shape = {list(input._data.shape)} source.shape = {list(source._data.shape)}")
    return d


def _index_for_source(node):
    # (torch keeps the index only for source's gradient)
    return Tensor._make(node.index) if node.needs_input_grad[1] else None


def _kept_source(node):
    return None if node.source is None else Tensor._make(node.source)


_SOURCE_DIM = SavedValue(lambda node: len(node._input_meta[1][0]))
# torch's _saved_source, kept for source's gradient only; held on the node, not saved (no version
# check): index_put composes these ops, and its torch node keeps no values, which may be written in
# place before backward
_SOURCE = SavedValue(_kept_source, tensor=True, undefined=lambda node: node.source is None)


class IndexAdd(Function):
    label = "index_add"
    rule = "∂/∂self = G; ∂/∂source = α·G read at the slabs it was added to"
    _array_forward = True
    # torch's names: source (and the index) kept only for source's gradient
    saved_attributes = {"_saved_alpha": _function.ctx_value("alpha"), "_saved_dim": _GIVEN_DIM,
                        "_saved_index": SavedValue(_index_for_source, tensor=True,
                                                   undefined=lambda node: not node.needs_input_grad[1]),
                        "_saved_source": _SOURCE, "_saved_source_dim": _SOURCE_DIM}

    @staticmethod
    def forward(ctx, x, source, index, dim, alpha):
        ctx.source = source if ctx.needs_input_grad[1] else None
        ctx.index = index
        ctx.dim = dim
        ctx.alpha = alpha
        out = x.copy()
        src = _moved(source, dim)
        if alpha != 1 and x.ndim > 1 and x.dtype in (np.float32, np.float64) and array_module(x) is np:
            # torch adds source's slices one at a time in index order; an n-d self's add_(slice,
            # alpha=a) is one fused multiply-add per element, where the 1-d loop's
            # self[i] += source[j] * alpha rounds the product first (as _add_rows below)
            _add_rows_in_order(_moved(out, dim), index, src, x.dtype.type(alpha))
            return out
        _add_rows(_moved(out, dim), index, src if alpha == 1 else src * src.dtype.type(alpha))
        return out

    @staticmethod
    def backward(ctx, grad):
        # d/dx = identity; d/dsource = alpha * the gradient of the slabs it was added to
        grad_source = None
        if ctx.needs_input_grad[1]:
            grad_source = IndexSelect.apply(grad, index=ctx.index, dim=ctx.dim)
            if ctx.alpha != 1:
                grad_source = grad_source * ctx.alpha
        return grad, grad_source


@honours_out
def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """torch.index_add: a copy of ``input`` with ``alpha * source`` slabs added at ``index``
    along ``dim`` (repeated indices accumulate)."""
    made = _answered_by_wrapper_index("index_add", index_add, index, (input, dim, index, source),
                                      {} if alpha == 1 else {"alpha": alpha})
    if made is not None:
        return made
    index_func_meta("index_add", input, dim, index, source)
    array, d = _index_dim(input, dim, index, "index_add", alpha)
    alpha = checked_scalar(alpha, input.dtype)  # -1 on uint8 adds 255 times, wrapping, as torch
    _dtype.refuse_wide_unsigned("index.index_add", input._data)
    return _keep_given_dim(IndexAdd.apply(input, source, index=array, dim=d, alpha=alpha), dim)


def _keep_given_dim(out: Tensor, dim) -> Tensor:
    """``out``, its node keeping the dim as given, for torch's ``_saved_dim`` (a negative one as the
    C++ node's unsigned)."""
    if out._grad_fn is not None and dim < 0:
        out._grad_fn.given_dim = dim
    return out


def _same_dtype(t: Tensor, like: Tensor) -> Tensor:
    from .elementwise import _cast

    return _cast(t, like.dtype) if t._data.dtype != like._data.dtype else t


class IndexFill(Function):
    label = "index_fill"
    rule = "the filled slabs get no gradient; the rest passes through"
    _array_forward = True
    saved_attributes = {"_saved_dim": _GIVEN_DIM,
                        "_saved_index": SavedValue(lambda node: Tensor._make(node.index), tensor=True)}

    @staticmethod
    def forward(ctx, x, index, dim, value):
        ctx.index = index
        ctx.dim = dim
        out = x.copy()
        _moved(out, dim)[index] = value
        return out

    @staticmethod
    def backward(ctx, grad):
        # filled slabs pass no gradient back to x
        return IndexFill.apply(grad, index=ctx.index, dim=ctx.dim, value=0)


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """torch.index_fill: a copy of ``input`` with the slabs ``index`` along ``dim`` set to ``value``
    (a number, or a 0-d tensor, which then receives the filled slots' gradient)."""
    made = _answered_by_wrapper_index("index_fill.int_Tensor" if isinstance(value, Tensor) else "index_fill.int_Scalar",
                                      index_fill, index, (input, dim, index, value))
    if made is not None:
        return made
    xp = array_module(input)
    if isinstance(value, Tensor) and value._data.ndim != 0:
        raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor "
                           f"with {value._data.ndim} dimension(s).")
    if not input.dtype.is_complex and (isinstance(value, complex) or (
            isinstance(value, Tensor) and value.dtype.is_complex)) and isinstance(index, Tensor) \
            and index.dtype is _dtype.int64:  # (torch checks it after the index's dtype, before the dim)
        raise RuntimeError("index_fill_(): Converting complex Scalar to non-complex type is not supported")
    array, d = _index_dim(input, dim, index, "index_fill")
    if isinstance(value, Tensor):
        # (a dual value under forward AD too: its tangent flows as the gradient would)
        if value._requires_grad or (_function.active_extension is not None
                                    and _forward_ad.unpack_dual(value).tangent is not None):
            from .elementwise import where

            mask = xp.zeros(input._data.shape, dtype=bool)
            _moved(mask, d)[array] = True
            return name_node(where(Tensor._make(mask), _same_dtype(value, input), input), "IndexFillBackward1",
                             label="index_fill", saved=_INDEX_FILL_KEPT_SAVED, kept={"dim": dim, "index": index})
        out = IndexFill.apply(input, index=array, dim=d, value=checked_scalar(value.item(), input.dtype))
        # torch's node of the tensor overload
        return name_node(_keep_given_dim(out, dim), "IndexFillBackward1", label="index_fill",
                         saved=IndexFill.saved_attributes)
    return _keep_given_dim(IndexFill.apply(input, index=array, dim=d, value=checked_scalar(value, input.dtype)), dim)


# torch's _saved_* of index_fill with a value that needs a gradient, composed with where
_INDEX_FILL_KEPT_SAVED = {"_saved_dim": SavedValue(lambda node: _function.as_uint64(node.torch_kept["dim"])),
                          "_saved_index": _function.kept_value("index", tensor=True)}


class IndexCopy(Function):
    label = "index_copy"
    rule = "the copied-over slabs pass no gradient to self; source gets the gradient of its slabs"
    _array_forward = True
    # torch's names: source kept only for its own gradient
    saved_attributes = {"_saved_dim": _GIVEN_DIM,
                        "_saved_index": SavedValue(lambda node: Tensor._make(node.index), tensor=True),
                        "_saved_source": _SOURCE, "_saved_source_dim": _SOURCE_DIM}

    @staticmethod
    def forward(ctx, x, source, index, dim):
        ctx.source = source if ctx.needs_input_grad[1] else None
        ctx.index = index
        ctx.dim = dim
        out = x.copy()
        _moved(out, dim)[index] = _moved(source, dim)
        return out

    @staticmethod
    def backward(ctx, grad):
        # copied-over slabs pass nothing to x; source gets the gradient of its slabs
        grad_x = grad_source = None
        if ctx.needs_input_grad[0]:
            grad_x = IndexFill.apply(grad, index=ctx.index, dim=ctx.dim, value=0)
        if ctx.needs_input_grad[1]:
            grad_source = IndexSelect.apply(grad, index=ctx.index, dim=ctx.dim)
        return grad_x, grad_source


@honours_out
def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """torch.index_copy: a copy of ``input`` with slab ``i`` of ``source`` written at ``index[i]``
    along ``dim``."""
    made = _answered_by_wrapper_index("index_copy", index_copy, index, (input, dim, index, source))
    if made is not None:
        return made
    _wrap_dim(dim, input._data.ndim, "index_copy")  # torch checks the dim first
    if isinstance(source, Tensor) and source._data.ndim == 0 and isinstance(index, Tensor) and index._data.size != 1:
        raise IndexError(f"index_copy_(): When source is scalar, index should have one element "
                         f"(got {index._data.size})")
    array, d = _index_dim(input, dim, index, "index_copy", source=source)
    _check_source("index_copy_", input, source, array, d)
    _dtype.refuse_wide_unsigned("index.index_copy", input._data)
    return _keep_given_dim(IndexCopy.apply(input, source, index=array, dim=d), dim)


# ---------------------------------------------------------------- masks
def _check_mask(mask, op: str) -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}(): argument 'mask' must be Tensor, not {type(mask).__name__}")
    if mask._data.dtype != np.bool_:
        if op == "masked_fill":
            raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {cpp_type_name(mask.dtype)}")
        if op == "masked_scatter":
            raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype "
                               f"{scalar_name(mask.dtype)}")
        raise RuntimeError(f"{op}: expected BoolTensor for mask")


def _filled(xp, x, mask, value):
    """A contiguous copy of ``x`` holding ``value`` where ``mask`` is True (torch fills a contiguous
    clone of the input, whatever the input's layout)."""
    try:
        return xp.asarray(xp.where(mask._data, value, x), order="C")
    except ValueError as error:  # torch names the mask's size first
        raise _function.broadcast_error(error, (mask._data, x)) from None


class Filled(Function):
    """``x``'s shape filled with one number, as torch records fill_ (a number) and zero_: one edge,
    to ``x``, whose gradient is zero (no element of the result depends on it)."""

    _array_forward = True
    label, rule, formula = "fill_", "the overwritten values get a zero gradient", "fill_({0})"

    @staticmethod
    def forward(ctx, x, value):
        xp = array_module(x)
        if type(value) is int:  # zero_'s 0: zero bits, which float8_e8m0fnu (it has no zero) reads as 2**-127, as torch
            return xp.zeros(x.shape, dtype=x.dtype)
        return xp.full(x.shape, value, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return zeros_like_tensor(grad)


class MaskedFill(Function):
    label = "masked_fill"
    rule = "passes the gradient where the mask is False"
    _array_forward = True
    node_name = "MaskedFillBackward0"
    saved_attributes = {"_saved_mask": _function.saved(0)}

    # the mask and the fill number are parameters: torch's node has one edge, for self; the mask is
    # saved as the tensor itself, so modifying it in place before backward is caught
    @staticmethod
    def forward(ctx, x, mask, value):
        xp = array_module(x)
        ctx.save_for_backward(mask)
        return _filled(xp, x, mask, value)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_values
        return where(mask, zeros_like_tensor(grad), grad)


class MaskedFillTensor(Function):
    label = "masked_fill"
    rule = ("passes the gradient where the mask is False; the fill value gets the sum over the masked "
            "positions")
    _array_forward = True
    node_name = "MaskedFillBackward1"
    saved_attributes = {"_saved_mask": _function.saved(0)}

    # edges for (self, value), as torch's; the mask as in MaskedFill
    @staticmethod
    def forward(ctx, x, value, mask):
        xp = array_module(x)
        ctx.save_for_backward(mask)
        return _filled(xp, x, mask, value)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_values
        zero = zeros_like_tensor(grad)
        return (where(mask, zero, grad) if ctx.needs_input_grad[0] else None,
                where(mask, grad, zero) if ctx.needs_input_grad[1] else None)


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """torch.masked_fill: ``value`` where ``mask`` (broadcast) is True, ``input`` elsewhere.
    A 0-d tensor ``value`` that requires grad receives the sum of the filled slots' gradient."""
    from .elementwise import _as_operand

    if not isinstance(input, Tensor):
        raise _dtype.invalid_combination("masked_fill", input, mask, value)
    _check_mask(mask, "masked_fill")
    if isinstance(value, Tensor):
        if value._data.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor "
                               f"with {value._data.ndim} dimension(s).")
        if not value.is_meta:
            # torch's kernel fills with the value read as a number (value.item(), below dispatch:
            # a mode does not see it): refused where it does not fit input's dtype, as a number is
            checked_scalar(value._data.item(), input.dtype)
        return MaskedFillTensor.apply(input, _same_dtype(value, input), mask=mask)
    value = _as_operand(checked_scalar(value, input.dtype), input.dtype, input)
    if _function.tracing_ops:  # the number, the same for every slice of a vmap that records its ops
        _function.traced_constant(value)
    return MaskedFill.apply(input, mask=mask, value=value._data)


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """torch.masked_select: the 1-D tensor of ``input``'s elements where ``mask`` (broadcast) is True."""
    made = _answered_by_wrapper_index("masked_select", masked_select, mask, (input, mask))
    if made is not None:
        return made
    from .shape import broadcast_tensors

    _check_mask(mask, "masked_select")
    given_input, given_mask = input, mask
    if _vmap_frames.running() and _vmap_frames.batched_value(mask):
        raise RuntimeError("vmap: Attempted to vmap over `mask` in torch.masked_select(self, mask) We cannot support "
                           "this because for each batch this would return a differently shaped Tensor. Please file an "
                           "issue at https://github.com/pytorch/pytorch/issues if you need this feature.")
    if input._data.shape != mask._data.shape:
        mask, input = broadcast_tensors(mask, input)  # torch's order (expand_outplace(mask, self)): its error's a and b
    _dtype.refuse_wide_unsigned("index.masked_select", input._data)
    return name_node(getitem(input, mask), "MaskedSelectBackward0", label="masked_select", saved=_MASKED_SELECT_SAVED,
                     kept={"mask": given_mask, "self": given_input})


# torch's _saved_* of masked_select: its arguments as given (before they are broadcast together)
_MASKED_SELECT_SAVED = {"_saved_mask": _function.kept_value("mask", tensor=True),
                        "_saved_self": _function.kept_value("self", tensor=True)}


class MaskedScatter(Function):
    label = "masked_scatter"
    rule = ("the masked positions pass no gradient to self; source element k gets the k-th masked "
            "position's gradient")
    _array_forward = True

    @staticmethod
    def forward(ctx, x, source, mask, read=None):
        xp = array_module(x)
        ctx.mask = mask
        ctx.source_shape = source.shape
        out = x.copy()
        # (read: the source's values as masked_scatter_ reads a source over its own memory)
        out[mask] = (source if read is None else read).reshape(-1)[: int(xp.count_nonzero(mask))]
        return out

    @staticmethod
    def backward(ctx, grad):
        # masked slots pass nothing to x; source element k gets the k-th masked slot's gradient
        mask = Tensor._make(ctx.mask)
        grad_x = grad_source = None
        if ctx.needs_input_grad[0]:
            from .elementwise import where

            grad_x = where(mask, 0.0, grad)
        if ctx.needs_input_grad[1]:
            picked = getitem(grad, ctx.mask)
            size = int(np.prod(ctx.source_shape))
            grad_source = _pad_to(picked, (size,)).reshape(ctx.source_shape)
        return grad_x, grad_source


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """torch.masked_scatter: ``input`` with the masked slots filled, in order, from ``source``
    (of ``input``'s dtype: torch casts neither)."""
    made = _answered_by_wrapper_index("masked_scatter", masked_scatter, mask, (input, mask, source))
    if made is not None:
        return made
    return _masked_scatter(input, mask, source)


def _masked_scatter(input: Tensor, mask: Tensor, source: Tensor, _read=None, in_place: bool = False) -> Tensor:
    xp = array_module(input)
    if not isinstance(mask, Tensor):
        _check_mask(mask, "masked_scatter")
    if in_place:  # masked_scatter_ checks the dtypes first, then expands the mask to input's shape
        _check_scatter_source_dtype(input, source)
        _check_mask(mask, "masked_scatter")
        if mask._data.shape != input._data.shape:  # (torch's expand_inplace: its words for a mask that does not fit)
            expanded_shape(mask._data.shape, input._data.shape, mask._data.dtype)
    try:  # masked_scatter broadcasts input and mask (expand_outplace), then runs masked_scatter_ on the copy
        shape = np.broadcast_shapes(input._data.shape, mask._data.shape)
    except ValueError as error:
        raise _function.broadcast_error(error, (mask._data, input._data)) from None
    _check_scatter_source_dtype(input, source)
    _check_mask(mask, "masked_scatter")
    if input._data.shape != shape:
        input = input.expand(shape)
    mask_array = xp.broadcast_to(mask._data, shape)
    if int(xp.count_nonzero(mask_array)) > source._data.size:
        raise RuntimeError("Number of elements of source < number of ones in mask")
    if _read is not None:
        return MaskedScatter.apply(input, _same_dtype(source, input), mask=mask_array, read=_read)
    return MaskedScatter.apply(input, _same_dtype(source, input), mask=mask_array)


def _check_scatter_source_dtype(input: Tensor, source) -> None:
    if isinstance(source, Tensor) and source.dtype is not input.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got"
                           f"{scalar_name(input.dtype)} and {scalar_name(source.dtype)}")


def source_as_read_in_place(input: Tensor, mask, source):
    """The source ``input.masked_scatter_(mask, source)`` reads, as torch's CPU kernel reads it.

    The kernel walks input's masked positions in order, writing source element k at step k and
    reading it only then: a contiguous source over input's own memory (a non-contiguous one is
    copied first, its ``source.contiguous()``) reads at step k what an earlier step wrote there.
    The op itself copies its source whole first, so where some step reads an earlier step's write
    this gives the values the kernel reads (source's array, those steps' elements replaced); else None."""
    x = input._data
    s = source._data if isinstance(source, Tensor) else None
    if (s is None or type(x) is not np.ndarray or type(s) is not np.ndarray or not isinstance(mask, Tensor)
            or type(mask._data) is not np.ndarray or mask._data.dtype != np.bool_ or s.dtype != x.dtype
            or not s.flags.c_contiguous or not x.size or not np.may_share_memory(x, s)):
        return None
    try:
        positions = np.flatnonzero(np.broadcast_to(mask._data, x.shape))  # in input's row-major order
    except ValueError:
        return None  # (the op refuses it)
    n = positions.size
    if not n or n > s.size:
        return None
    written = x.__array_interface__["data"][0] + sum(
        i * stride for i, stride in zip(np.unravel_index(positions, x.shape), x.strides))
    read = s.__array_interface__["data"][0] + np.arange(n, dtype=np.int64) * s.itemsize
    order = np.argsort(written, kind="stable")
    at = np.minimum(np.searchsorted(written[order], read), n - 1)
    step = np.where(written[order][at] == read, order[at], n)  # the step writing what step k reads
    chained = np.flatnonzero(step < np.arange(n))
    if not chained.size:
        return None
    values = s.reshape(-1).copy()
    for k in chained:  # in order: the step it reads from is final already
        values[k] = values[step[k]]
    return values.reshape(s.shape)


def masked_scatter_in_place(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """masked_scatter as ``masked_scatter_`` runs it (on input's own memory): a source over that
    memory read as torch's kernel reads it, the node and its edges masked_scatter's."""
    return _masked_scatter(input, mask, source, source_as_read_in_place(input, mask, source), in_place=True)


masked_scatter_in_place.__name__ = "masked_scatter"  # (the in-place op's name: masked_scatter_)


# ---------------------------------------------------------------- flat indexing, nonzero
def take(input: Tensor, index: Tensor) -> Tensor:
    """torch.take: ``input`` read as 1-D at ``index`` (negative indices count from the end);
    the result has ``index``'s shape."""
    made = _answered_by_wrapper_index("take", take, index, (input, index))
    if made is not None:
        return made
    array = _index_array(index, "take")
    n = input._data.size
    if n == 0 and array.size:
        raise IndexError("take(): tried to take from an empty tensor")
    if array.size and (int(array.max()) >= n or int(array.min()) < -n):
        bad = _first_out_of_range(array, -n, n)
        raise IndexError(f"out of range: tried to access index {bad} on a tensor of {n} elements.")
    _dtype.refuse_wide_unsigned("index.take", input._data)
    return name_node(getitem(input.reshape(-1), array), "TakeBackward0", label="take", saved=_TAKE_SAVED,
                     kept={"index": index, "self": input})


# torch's _saved_* of take: the index and the input as given
_TAKE_SAVED = {"_saved_index": _function.kept_value("index", tensor=True),
               "_saved_self": _function.kept_value("self", tensor=True)}


@honours_out
def take_along_dim(input: Tensor, indices: Tensor, dim=None) -> Tensor:
    """torch.take_along_dim: gather along ``dim`` after broadcasting ``input`` and ``indices`` in
    every other dim; without ``dim``, take from the flattened input."""
    made = _answered_by_wrapper_index("take_along_dim", take_along_dim, indices, (input, indices, dim))
    if made is not None:
        return made
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    if input._data.ndim != indices._data.ndim:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of "
                           f"dimensions, but got {input._data.ndim} dimensions for input, and "
                           f"{indices._data.ndim} dimensions for indices")
    d = _wrap_dim(dim, input._data.ndim, "take_along_dim")
    in_shape, idx_shape = list(input._data.shape), list(indices._data.shape)
    in_shape[d] = idx_shape[d] = 1
    try:
        common = list(np.broadcast_shapes(tuple(in_shape), tuple(idx_shape)))
    except ValueError:
        for k, (a, b) in enumerate(zip(in_shape, idx_shape)):
            if a != b and 1 not in (a, b):
                raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) "
                                   f"at non-singleton dimension {k}") from None
        raise
    target_in = common.copy()
    target_in[d] = input._data.shape[d]
    target_idx = common.copy()
    target_idx[d] = indices._data.shape[d]
    size = input._data.shape[d]
    if _function.active_dispatch is not None:
        # a dispatch mode sees torch's decomposition: both broadcast (the indices first), then every
        # index taken modulo the dim's size, then gather
        indices = indices.expand(tuple(target_idx))
        return gather(input.expand(tuple(target_in)), d, indices.remainder(size))
    if tuple(target_in) != input._data.shape:
        input = input.expand(tuple(target_in))
    if tuple(target_idx) != indices._data.shape:
        indices = indices.expand(tuple(target_idx))
    if size and indices._data.size and (indices._data.min() < 0 or indices._data.max() >= size):
        # torch 2.13 takes an index along ``dim`` modulo the dim's size: -1 is the last, 7 of 5 is 2
        indices = Tensor._make(array_module(indices).remainder(indices._data, size))
    return gather(input, d, indices)


def nonzero(input: Tensor, *, as_tuple: bool = False):
    """torch.nonzero: the (n, ndim) int64 indices of nonzero elements, or ``as_tuple`` one 1-D
    index tensor per dim (a 0-d input counts as 1-D)."""
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        # torch's as_tuple: the index columns unbound, a 0-d input unsqueezed first
        given = input.unsqueeze(0) if as_tuple and input._data.ndim == 0 and input._wrapper_strides is not None \
            else input
        made = _function.argument_dispatch("nonzero", nonzero, (given,), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made.unbind(1) if as_tuple else made
    refuse_float8(input._data.dtype, "nonzero_count_cpu")
    if _vmap_frames.running() and as_tuple and _vmap_frames.batched_value(input):
        raise RuntimeError("Batching rule not implemented for aten::nonzero_numpy. We could not generate a fallback.")
    _vmap_frames.refuse_dynamic_shape(input, "aten::nonzero")
    return nonzero_indices(input, as_tuple)


def nonzero_indices(input: Tensor, as_tuple: bool = False):
    """nonzero's indices, also inside vmap (argwhere and nonzero_static, whose vmap rules torch has)."""
    xp = array_module(input)
    array = input._data
    refuse_float8(array.dtype, "nonzero_count_cpu")
    _dtype.refuse_wide_unsigned("index.nonzero", array)
    if as_tuple:
        # NumPy's per-dim indices are strided views of one (n, ndim) block; torch's are contiguous (stride (1,))
        return tuple(Tensor._make(xp.array(i, dtype=np.int64)) for i in xp.nonzero(xp.atleast_1d(array)))
    if array.ndim == 0:
        out = xp.zeros((int(bool(array)), 0), dtype=np.int64)
    else:
        out = xp.argwhere(array).astype(np.int64, copy=False)
    if not out.shape[0] and xp is np:
        # torch writes the (n, ndim) result column by column, strides (1, n), and keeps them when
        # n is 0: (1, 0), where a fresh empty array would report the contiguous (ndim, 1)
        out = np.lib.stride_tricks.as_strided(out, out.shape, (out.itemsize, 0))
    return Tensor._make(out)


def argwhere(input: Tensor) -> Tensor:
    """torch.argwhere: ``nonzero(input)``."""
    if _function.active_dispatch is not None:  # (a wrapper's values live in it: its handler answers aten.nonzero)
        made = _function.argument_dispatch("nonzero", nonzero_indices, (input,), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return nonzero_indices(input)
