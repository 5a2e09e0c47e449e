"""Tensor creation: tensor, as_tensor, from_numpy, zeros/ones/full/empty, ranges, random tensors.

Float data defaults to float32 (``get_default_dtype``), Python ints to int64, bools to bool —
torch's inference rules. ``requires_grad=True`` is only accepted for floating dtypes.
"""

from __future__ import annotations

import builtins
import cmath
import collections.abc
import itertools
import math
import operator
import warnings

import numpy as np

from .. import _config, _dtype, _layout, _vmap_frames
from .. import storage as _storage
from .._backend import (
    allocate_on,
    array_module,
    default_device,
    dense_non_overlapping,
    follow_device,
    module_for_device,
    refuse_pinning,
    resolve,
    strided_view,
    to_device,
)
from .._backend import device as _device
from .._opmath import fused_multiply_add_float32
from ..autograd import function as _function
from ..tensor import (
    Tensor,
    _check_out,
    _check_tensor,
    _int_sequence,
    out_keyword_front,
    refuse_out_under_autograd,
    warn_discarding_imaginary,
    write_out,
)
from .memory_format import preserved_strides

__all__ = ["tensor", "as_tensor", "from_numpy", "asarray", "zeros", "ones", "full", "empty",
           "zeros_like", "ones_like", "full_like", "empty_like", "arange", "linspace", "logspace",
           "eye", "scalar_tensor", "new_tensor", "new_zeros", "new_ones", "new_full", "new_empty", "empty_permuted"]
# only the new_* functions are Tensor methods in torch; the rest make a tensor from nothing
__not_methods__ = {name for name in __all__ if not name.startswith("new_")}


def _infer_dtype(data, kinds: set[type]) -> _dtype.dtype:
    """torch's inference: promote over the items, where a Python float is the default float,
    a Python int int64, a bool bool, and NumPy scalars/arrays and Tensors keep their dtype.
    ``kinds``: the types of the items (``_nested_types``)."""
    if isinstance(data, np.ndarray):
        return _dtype.from_numpy_dtype(data.dtype)
    if kinds <= _PYTHON_NUMBERS:  # the common case, read off the types alone
        if builtins.complex in kinds:
            return _dtype.get_default_complex_dtype()
        if builtins.float in kinds or not kinds:
            return _dtype.get_default_dtype()
        return _dtype.int64 if builtins.int in kinds else _dtype.bool
    return _promoted_item_dtype(data)


def _promoted_item_dtype(data) -> _dtype.dtype:
    """torch's infer_scalar_type: the items read in order, depth first (so a refusal names the first
    bad item), an empty sequence counted as the default dtype (``[1, [[]]]`` is float32), stopping at
    complex128, which no later item can change."""
    result = None
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)) and item:
            stack.extend(reversed(item))
            continue
        if isinstance(item, (list, tuple)):
            kind = _dtype.get_default_dtype()
        if isinstance(item, Tensor):
            kind = item.dtype
        elif isinstance(item, (np.ndarray, np.generic)):
            try:
                kind = _dtype.from_numpy_dtype(item.dtype)
            except TypeError:  # (a NumPy string or object scalar among numbers: torch's words for its array)
                raise TypeError(f"can't convert np.ndarray of type numpy.{item.dtype.type.__name__}. The only "
                                f"supported types are: {_TORCH_NUMPY_TYPES}.") from None
        elif isinstance(item, builtins.bool):
            kind = _dtype.bool
        elif isinstance(item, builtins.int):
            kind = _dtype.int64
        elif isinstance(item, builtins.float):
            kind = _dtype.get_default_dtype()
        elif isinstance(item, builtins.complex):
            kind = _dtype.get_default_complex_dtype()
        elif isinstance(item, (str, bytes)):
            raise TypeError(f"new(): invalid data type '{_dtype.parser_type_name(item)}'")
        elif isinstance(item, collections.abc.Sequence) and len(item):  # (a range, a memoryview: read by items, as torch reads any)
            stack.extend(reversed(item))
            continue
        elif isinstance(item, collections.abc.Sequence):
            kind = _dtype.get_default_dtype()
        else:  # (torch's infer_scalar_type: None, an object)
            raise RuntimeError(f"Could not infer dtype of {_dtype.parser_type_name(item)}")
        if kind is not result:
            result = kind if result is None else _dtype.promote_types(result, kind)
            if result is _dtype.complex128:
                return result
    return _dtype.get_default_dtype() if result is None else result


_PYTHON_NUMBERS = frozenset({builtins.float, builtins.int, builtins.bool, builtins.complex})


def _nested_types(data: list | tuple) -> set[type]:
    """The types of everything in nested lists and tuples but the lists and tuples themselves,
    gathered one nesting level at a time (C-level passes: long lists of numbers stay cheap)."""
    found: set[type] = set()
    level = data
    while level:
        kinds = set(map(type, level))
        found |= kinds
        if not kinds & {list, tuple}:
            break
        level = list(itertools.chain.from_iterable(item for item in level if type(item) in (list, tuple)))
    found -= {list, tuple}
    return found


def _sequence_sizes(data) -> list[int]:
    """The shape torch reads off nested data before anything else: the lengths of the first item
    at each depth, while that item is a sequence to CPython (a NumPy array, a string and a range
    are; a Tensor, a dict, a set and a generator are not). A 0-d NumPy array there has no len(), a
    string is a sequence of strings down to torch's 128 dimensions."""
    sizes: list[int] = []
    item = data
    while isinstance(item, (collections.abc.Sequence, np.ndarray)) and not isinstance(item, Tensor):
        sizes.append(len(item))
        if len(sizes) > _MAX_DIMS:
            raise ValueError(f"too many dimensions '{_dtype.parser_type_name(item)}'")
        if not sizes[-1]:
            break
        item = item[0]
    return sizes


_MAX_DIMS = 128  # (torch's MAX_DIMS for data read from Python)


def _takes_every_value(kinds: set[type], target: _dtype.dtype) -> builtins.bool:
    """Whether torch's unpacking of a value as ``target`` takes every value of each type in
    ``kinds``, so that only NumPy's conversion is left to do; False for a type whose values it
    refuses (None, a string, a NumPy float for an integer dtype) or judges one by one (a Tensor,
    a NumPy array)."""
    if target.is_complex:
        taken = (builtins.float, builtins.int, builtins.complex, np.number, np.bool_)
    elif target.is_floating_point:
        taken = (builtins.float, builtins.int, np.integer, np.floating, np.bool_)
    elif target is _dtype.bool:  # (a float and a complex by their truth, the rest as an index)
        taken = (builtins.float, builtins.int, builtins.complex, np.integer, np.bool_)
    else:  # (a float truncated, the rest as an index: a NumPy bool or float32 has none)
        taken = (builtins.float, builtins.int, np.integer)
    return builtins.all(issubclass(kind, taken) for kind in kinds)


def _check_nested_data(data, target: _dtype.dtype) -> list[int]:
    """Read nested data as torch reads it into a tensor of ``target`` (``torch.tensor``,
    ``as_tensor``, ``new_tensor``, the legacy constructors) and raise what it raises, where NumPy
    would convert without a word (a None to NaN, anything to a bool) or with its own: the shape
    from the first items, every sequence below of that length ("expected sequence of length 2 at
    dim 1 (got 1)") and every value unpacked as ``target`` unpacks a Python object (a list where a
    number goes: "must be real number, not list"). Nothing is read from an empty shape. Returns
    the shape."""
    sizes = _sequence_sizes(data)
    if 0 not in sizes:
        _read_values(data, sizes, 0, _unpacker(target))
    return sizes


def _read_values(item, sizes: list[int], dim: int, unpack) -> None:
    if dim == len(sizes):
        unpack(item)
        return
    if type(item) not in (list, tuple):
        try:
            item = list(item)  # (CPython's PySequence_Fast: any iterable, a Tensor by rows)
        except TypeError:
            raise TypeError("not a sequence") from None
    if len(item) != sizes[dim]:
        raise ValueError(f"expected sequence of length {sizes[dim]} at dim {dim} (got {len(item)})")
    for value in item:
        _read_values(value, sizes, dim + 1, unpack)


def _unpacker(target: _dtype.dtype):
    """A function raising what torch's unpacking of one Python value as ``target`` raises: a real
    number through ``__float__`` (math.isnan's conversion is CPython's PyFloat_AsDouble, its
    words "must be real number, not NoneType"), a complex through ``__complex__`` (cmath's), an
    integer as an index unless it is a float, a bool as a float's, a complex's or an index's truth."""
    if target.is_complex:
        return cmath.isnan
    if target.is_floating_point:
        return math.isnan
    if target is _dtype.bool:
        return lambda value: isinstance(value, (builtins.float, builtins.complex, np.bool_)) or operator.index(value)
    return lambda value: isinstance(value, builtins.float) or operator.index(value)


def _to_array(data, dtype=None, copy: builtins.bool = True, device=None):
    """Convert Python data / arrays / Tensors to an array of the requested or inferred dtype."""
    if isinstance(data, Tensor):
        array = data._data
        if type(array) is not np.ndarray:
            follow_device(array)  # the copy is made where the data is, then moved
        if dtype is not None:
            target = _dtype.to_dtype(dtype).np
            warn_discarding_imaginary(data.dtype, _dtype.to_dtype(dtype))
            if array.dtype.kind == "c" and target.kind in "fiu":
                array = array.real.copy()  # (the real part, in torch's words rather than NumPy's ComplexWarning)
            # float8 targets round as torch's casts do (_dtype.to_float8)
            array = _dtype.cast_array(array, target) if target != array.dtype else array.astype(target, copy=copy)
        elif copy:
            array = array.copy()
    else:
        kinds = _nested_types(data) if isinstance(data, (list, tuple)) else {type(data)}
        sizes = None
        if not kinds <= _PYTHON_NUMBERS and not isinstance(data, np.ndarray):
            if isinstance(data, (str, bytes)):
                raise TypeError(f"new(): invalid data type '{_dtype.parser_type_name(data)}'")
            sizes = _sequence_sizes(data)  # torch reads the shape first: its errors come before the dtype's
            if (isinstance(data, (list, tuple)) and builtins.any(issubclass(kind, np.ndarray) for kind in kinds)
                    and 0 not in sizes):  # torch warns as it copies the values: an empty result copies none
                _warn_list_of_arrays(data)
        target = _dtype.to_dtype(dtype) if dtype is not None else _infer_dtype(data, kinds)
        if sizes is not None and not _takes_every_value(kinds, target):
            # NumPy casts anything to bool (None is False), a None to NaN, a NumPy float to an
            # integer, reads a one-element tensor as a sequence: torch unpacks each value as the
            # dtype asks
            sizes = _check_nested_data(data, target)
        if sizes is not None and builtins.any(issubclass(kind, Tensor) for kind in kinds):
            data = _unwrap_nested(data, len(sizes))
        if target.np.kind in "iu" and _float_overflows(data, target.np):
            # NumPy truncates a float into an integer dtype unchecked (-0.5 -> 0, 300.5 -> 44 in uint8)
            raise RuntimeError(f"value cannot be converted to type {target.name} without overflow")
        try:
            kind = type(data)
            if not ((kind is float or kind is int) and -65504.0 <= data <= 65504.0) and \
                    _cast_may_overflow(data, target.np):
                # a double beyond the dtype's range becomes ±inf quietly, as torch's
                # (torch.tensor(torch.finfo(torch.float64).min) is a float32 -inf, with no warning)
                with np.errstate(over="ignore"):
                    array = _cast_data(data, target, copy)
            else:
                array = _cast_data(data, target, copy)
        except (ValueError, TypeError):
            if dtype is None and kinds <= _PYTHON_NUMBERS:  # (the types alone miss an empty sequence's default dtype)
                target = _promoted_item_dtype(data)
            sizes = _check_nested_data(data, target)  # torch's words for a ragged list, a list in place of a number
            if 0 not in sizes:
                raise
            if dtype is None:  # torch's inference takes an empty sequence for the default dtype ([[], [1]])
                target = _dtype.promote_types(target, _dtype.get_default_dtype())
            array = np.zeros(sizes, dtype=target.np)  # torch reads nothing when there is nothing to hold
        except OverflowError:
            if target is not _dtype.uint64 and not target.is_floating_point and _holds_int_beyond_int64(data):
                # torch reads every Python int as a C long long first, whatever the dtype asked
                raise ValueError("Overflow when unpacking long long") from None
            if target in (_dtype.uint8, _dtype.uint16, _dtype.uint32) and _wraps_into_unsigned(data, target):
                array = np.array(data, dtype=np.int64).astype(target.np)
            else:
                raise RuntimeError(f"value cannot be converted to type {target.name} without overflow") from None
    if device is None:
        device = default_device.device
    if device is not None:
        array = to_device(array, _device(device))
    return array


def _cast_data(data, target: _dtype.dtype, copy: builtins.bool) -> np.ndarray:
    """Python numbers (nested) or a NumPy array as an array of ``target``, rounded as torch's."""
    if isinstance(data, np.ndarray) and data.dtype.kind == "c" and not target.is_complex and target is not _dtype.bool:
        warn_discarding_imaginary(_dtype.complex128, target)  # (torch's words rather than NumPy's ComplexWarning)
        data = data.real
    if target.name in _dtype._FLOAT8_NAMES:  # Python numbers are doubles, rounded once as torch's
        return _dtype.cast_array(np.array(data, dtype=np.float64), target.np)
    if target in (_dtype.float16, _dtype.bfloat16) and not isinstance(data, np.ndarray):
        return _dtype.python_numbers_to_half(data, target.np)  # torch's NaN bits
    if target in (_dtype.float16, _dtype.bfloat16) and isinstance(data, np.ndarray) and \
            data.dtype.kind == "f" and data.dtype != target.np:
        return _dtype.cast_array(data, target.np)  # as a tensor's cast (its NaN bits)
    return np.array(data, dtype=target.np, copy=copy) if copy else np.asarray(data, dtype=target.np)


def _cast_may_overflow(data, target: np.dtype) -> builtins.bool:
    """Whether casting ``data`` to the array dtype ``target`` may overflow to ±inf, which NumPy
    warns of and torch does not: a Python number beyond a float narrower than a double, a wider
    array, a sequence holding floats (or ints, into a half). Exact for the common scalar and
    same-dtype array, so only the rarer cases pay for ``np.errstate``."""
    if target.kind not in "fc" or target.itemsize >= 8 and target.kind == "f" or target.itemsize >= 16:
        return False
    kind = type(data)
    if kind is float or kind is int:
        limit = _FLOAT_MAX[target.itemsize if target.kind == "f" else target.itemsize // 2]
        return not -limit <= data <= limit
    if kind is np.ndarray:
        return data.dtype.kind in "fc" and data.dtype.itemsize > target.itemsize or \
            data.dtype.kind in "iu" and target.itemsize <= 2
    return kind is not bool


_FLOAT_MAX = {4: float(np.finfo(np.float32).max), 2: float(np.finfo(np.float16).max)}


def _float_overflows(data, target: np.dtype) -> builtins.bool:
    """Whether a Python float in nested ``data`` overflows the integer ``target`` by c10's check
    (c10::overflows): NaN, or below the type's lowest or above its max before truncation, so
    -0.5 overflows uint8 and 127.5 int8, while -0.0 and -128.0 (int8) convert."""
    if isinstance(data, (list, tuple)):
        return any(_float_overflows(item, target) for item in data)
    if not isinstance(data, float):
        return False
    limits = np.iinfo(target)
    return data != data or data < float(limits.min) or data > float(limits.max)


def _wraps_into_unsigned(data, target) -> builtins.bool:
    """Whether every Python int in nested ``data`` is within [-max, max] of the unsigned ``target``:
    c10's overflow check lets a negative one down to -max in, wrapped modulo 2**bits
    (torch.tensor(-1, dtype=torch.uint8) is 255, -256 overflows); no negative float."""
    limit = int(np.iinfo(target.np).max)
    if isinstance(data, (list, tuple)):
        return builtins.all(_wraps_into_unsigned(item, target) for item in data)
    if isinstance(data, int):
        return -limit <= data <= limit
    return not isinstance(data, float) or data >= 0  # (a negative float overflows: -2.0 as -2.5)


def _holds_int_beyond_int64(data) -> builtins.bool:
    """Whether nested Python data holds an int outside int64's range."""
    if isinstance(data, (list, tuple)):
        return any(_holds_int_beyond_int64(item) for item in data)
    return isinstance(data, int) and not -2**63 <= data < 2**63


def _arrays_met(data) -> int:
    """How many NumPy arrays torch meets reading nested data: each array, and each row of an array
    of two or more dims as it iterates it (two 2x2 arrays are six)."""
    if isinstance(data, np.ndarray):
        return 1 + (data.shape[0] * _arrays_met(data[0]) if data.ndim >= 2 and data.shape[0] else 0)
    if isinstance(data, (list, tuple)):
        return builtins.sum(_arrays_met(item) for item in data)
    return 0


_LIST_OF_ARRAYS_WARNING = ("Creating a tensor from a list of numpy.ndarrays is extremely slow. Please consider "
                           "converting the list to a single numpy.ndarray with numpy.array() before converting to "
                           "a tensor. (Triggered internally at /__w/pytorch/pytorch/torch/csrc/utils/tensor_new.cpp:252.)")


def _warn_list_of_arrays(data) -> None:
    """torch's warning for a (nested) sequence holding NumPy arrays, which it copies element by
    element: the scripts that build ``LongTensor([np.asarray(...) for ...])`` see it once; under
    set_warn_always(True) torch's TORCH_WARN_ONCE fires at every array it meets."""
    for _ in range(_arrays_met(data) if _config._warn_always else 1):
        _config.warn_once(_LIST_OF_ARRAYS_WARNING)


def _unwrap_nested(data, leaf_depth: int, depth: int = 0):
    """Nested data with its tensors' arrays for NumPy: a tensor where a number goes (at
    ``leaf_depth``, one element: _check_nested_data saw to it) read as torch reads it, as a
    number, never as a sequence; a tensor above read by rows."""
    if isinstance(data, Tensor):
        return data._data.reshape(()) if depth == leaf_depth else data._data
    if isinstance(data, (list, tuple)):
        return [_unwrap_nested(item, leaf_depth, depth + 1) for item in data]
    return data


def factory_args(op: str, dtype, requires_grad, device, *, overloaded: builtins.bool = False,
                 requires_grad_optional: builtins.bool = True):
    """``(dtype, requires_grad)`` of creation function ``op``, and its ``device``, checked as
    torch's argument parser checks them: a dtype is a chainrule dtype, a Python type (float, int,
    bool, complex) or None, never a name ('float32') or a NumPy dtype; requires_grad is a bool
    (None too where torch's signature makes it optional); a device is a device, a string or an
    int (an accelerator index). A TypeError naming ``op`` and the argument otherwise, worded as
    torch words it for a function with several signatures when ``overloaded``."""
    if dtype is not None and not isinstance(dtype, _dtype.dtype):
        dtype = _dtype.dtype_argument(op, dtype, overloaded)
    if requires_grad.__class__ is not builtins.bool:
        if requires_grad is not None or not requires_grad_optional:
            raise _dtype.argument_error(op, "requires_grad", "bool", requires_grad, overloaded)
        requires_grad = False
    if device is not None and not isinstance(device, (str, _device)) and not (
            isinstance(device, builtins.int) and device.__class__ is not builtins.bool):
        raise _dtype.argument_error(op, "device", "torch.device", device, overloaded)
    return dtype, requires_grad


def refuse_dtype(dtype, kernel: str, complex_too: builtins.bool = False) -> None:
    """torch has no bool kernel for the sequence makers (arange, linspace, randperm), and no
    complex one for arange and randperm."""
    if dtype is _dtype.bool or (complex_too and dtype is not None and dtype.is_complex):
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(dtype)}'")
    refuse_wide_unsigned_dtype(dtype, kernel)


def refuse_wide_unsigned_dtype(dtype, op: str) -> None:
    """torch's error for a maker of ``dtype`` uint16/32/64 whose kernel has none for them (``op``:
    its key in _dtype.NO_WIDE_UNSIGNED_KERNEL under "creation.")."""
    if dtype in _dtype._BARE_UNSIGNED:
        _dtype.refuse_wide_unsigned(f"creation.{op}", dtype.np)


def _finish(array, requires_grad: builtins.bool) -> Tensor:
    t = Tensor._make(array)
    if _vmap_frames.running():  # made inside a vmapped function: torch's vmap holds it unbatched
        _vmap_frames.note_made(t)
    if requires_grad:
        if array.dtype.kind not in _dtype.FLOAT_KINDS + "c":
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t._requires_grad = True
    return t


def tensor(data, *, dtype=None, device=None, requires_grad: builtins.bool = False, pin_memory=False) -> Tensor:
    """torch.tensor: always copies ``data``; infers float32 / int64 / bool."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("tensor", dtype, requires_grad, device, requires_grad_optional=False)
    if isinstance(data, np.ndarray):
        _check_numpy_array(data)
    if isinstance(data, Tensor):
        _warn_copy_construct()
        if data._wrapper_strides is not None and _function.active_dispatch is not None and device is None:
            # a wrapper subclass's values live in it, not in its placeholder: torch copies it as
            # aten.detach then aten._to_copy, which its handler answers
            made = data.detach().to(dtype=data.dtype if dtype is None else dtype, copy=True)
            return made.requires_grad_(True) if requires_grad else made
    array = _to_array(data, dtype, copy=True, device=device)
    if isinstance(data, np.ndarray) and data.ndim > 1 and not (data.flags.c_contiguous and 1 not in data.shape):
        array = _numpy_layout_kept(array, data)
    made = _finish(array, requires_grad)
    if isinstance(data, np.ndarray) and not data.size:
        _keep_numpy_empty_strides(made, data)
    elif isinstance(data, Tensor) and data._numpy_empty_strides is not None:  # (torch's copy keeps them too)
        made._numpy_empty_strides = data._numpy_empty_strides
    if _function.active_dispatch is not None:  # a mode sees the new tensor lifted in (aten.lift_fresh)
        made._requires_grad = False  # (below autograd; the flag is set again above it)
        lifted = _function.factory_dispatch("lift_fresh", _lift_fresh, (made,), {})
        made = made if lifted is _function.RUN_UNDISPATCHED else lifted
        if requires_grad:
            made.requires_grad_(True)
    return made


def _numpy_layout_kept(array, data: np.ndarray):
    """``array``, NumPy's copy of ``data``, laid out as torch.tensor lays out its copy of an ndarray:
    the array seen as from_numpy sees it, cloned with preserve_format (``preserved_strides``: a dense
    array's own strides, a size-1 dim's too; a broadcast or sliced one's dense in its stride order),
    where NumPy's copy picks its own strides there (a broadcast (3, 4) of strides (0, 1) came out
    column-major, not contiguous)."""
    if type(array) is not np.ndarray or not array.size or array.shape != data.shape or min(data.strides) < 0 \
            or any(stride % data.itemsize for stride in data.strides):
        return array  # (torch.from_numpy takes no negative strides; a device copy keeps its own)
    wanted = tuple(stride * array.itemsize for stride in preserved_strides(data))
    if array.strides == wanted:
        return array
    laid_out = strided_view(np.empty(array.size, dtype=array.dtype), array.shape, wanted)
    laid_out[...] = array
    return laid_out


def _keep_numpy_empty_strides(made: Tensor, data: np.ndarray) -> Tensor:
    """``made`` (of the empty ndarray ``data``, shared or copied) with the array's strides in
    elements, as torch's tensor, as_tensor and from_numpy give it (zeros where NumPy zeroes them:
    (3, 0) → (0, 0), not the contiguous (1, 1) of a fresh empty tensor)."""
    if made._data.shape == data.shape and min(data.strides, default=0) >= 0 and \
            not any(stride % data.itemsize for stride in data.strides):
        made._numpy_empty_strides = (data.shape, tuple(stride // data.itemsize for stride in data.strides))
    return made


def _lift_fresh(made: Tensor) -> Tensor:
    """aten.lift_fresh: the tensor a literal made, as it is (what a mode's func runs)."""
    return made


def _warn_copy_construct(spelling: str = "torch.tensor") -> None:
    """torch's warning for ``torch.tensor(a_tensor)`` and ``t.new_tensor(a_tensor)`` (e.g. the Neural
    Transfer tutorial's ``torch.tensor(mean).view(-1, 1, 1)``), given to user code only: chainrule's
    own calls copy tensors on purpose."""
    from .._torch_function import user_stacklevel

    stacklevel = user_stacklevel()
    if stacklevel == 3:  # counted from here, one frame below the factory: 3 means its caller is the user's
        warnings.warn("To copy construct from a tensor, it is recommended to use sourceTensor.detach().clone() or "
                      f"sourceTensor.detach().clone().requires_grad_(True), rather than {spelling}(sourceTensor).",
                      UserWarning, stacklevel=stacklevel)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """torch.as_tensor: shares memory with a NumPy array or Tensor when no conversion is needed.
    Given no ``device``, the default device (set_default_device) is wanted, as torch's: an array or
    CPU tensor is copied there."""
    dtype, _ = factory_args("as_tensor", dtype, False, device)
    if device is None:
        device = default_device.device  # (None for the CPU)
    if isinstance(data, np.ndarray):
        _check_numpy_array(data)
    if isinstance(data, Tensor) and (dtype is None or _dtype.to_dtype(dtype) is data.dtype) and (
        device is None or resolve(device) == data.device
    ):
        return data
    if isinstance(data, np.ndarray) and dtype is None and device is None:
        if data.dtype not in _dtype._BY_NP:
            return Tensor._make(_to_array(data, None, copy=False))
        _warn_if_read_only(data)
        _storage.mark_not_resizable(data)
        return Tensor._make(data) if data.size else _keep_numpy_empty_strides(Tensor._make(data), data)
    result = Tensor._make(_to_array(data, dtype, copy=False, device=device))
    if isinstance(data, np.ndarray) and type(result._data) is np.ndarray and np.may_share_memory(result._data, data):
        _storage.mark_not_resizable(data)  # shared, as without a dtype: the array's memory
    if isinstance(data, np.ndarray) and not data.size:
        _keep_numpy_empty_strides(result, data)
    return result


_asarray_default_warned = False


def asarray(obj, *, dtype=None, device=None, copy: builtins.bool | None = None,
            requires_grad: builtins.bool | None = None) -> Tensor:
    """torch.asarray: ``as_tensor`` (memory shared when no conversion is needed) with ``copy=True``
    always copying, ``copy=False`` refusing a conversion, and ``requires_grad``. A tensor keeps its
    graph through a conversion or copy unless ``requires_grad=False`` detaches it; on a leaf (obj
    itself when shared) ``requires_grad`` sets the flag, as torch does. Given no ``device``, the
    default device (set_default_device) is wanted, as for ``as_tensor``."""
    if device is None:
        device = default_device.device
    if not isinstance(obj, Tensor):
        result = Tensor._make(_to_array(obj, dtype, copy=True, device=device)) if copy else as_tensor(obj, dtype, device)
        if copy and isinstance(obj, np.ndarray) and not obj.size:
            _keep_numpy_empty_strides(result, obj)
        if copy is False and isinstance(obj, np.ndarray) and not np.shares_memory(result._data, obj):
            raise ValueError(f"can't alias tensor with dtype '{_dtype.scalar_name(as_tensor(obj).dtype)}' into "
                             f"dtype '{_dtype.scalar_name(result.dtype)}'.")
        return result.requires_grad_(True) if requires_grad else result
    converts = (dtype is not None and _dtype.to_dtype(dtype) is not obj.dtype) or (
        device is not None and resolve(device) != obj.device)
    if converts and copy is False:
        raise ValueError(f"can't alias tensor with dtype '{_dtype.scalar_name(obj.dtype)}' into dtype "
                         f"'{_dtype.scalar_name(_dtype.to_dtype(dtype or obj.dtype))}'.")
    result = obj.to(dtype=dtype, device=device) if converts else obj.clone() if copy else obj
    if requires_grad is None:
        global _asarray_default_warned
        if obj.requires_grad and not _asarray_default_warned:  # torch warns once a process
            _asarray_default_warned = True
            warnings.warn("torch.asarray: unspecified requires_grad now defaults to obj.requires_grad instead of "
                          "False. Pass requires_grad=False explicitly to get the old behavior and silence this "
                          "warning.", UserWarning, stacklevel=2)
        return result
    if result.is_leaf:  # obj itself when shared: torch sets the caller's flag
        return result.requires_grad_(requires_grad)
    return result if requires_grad else result.detach()


def _c_type_name(kind: type) -> str:
    """A type's name as CPython's tp_name spells it in torch's messages: a class made at run time
    (any Python class) and a builtin by its bare name, a static C type with its module (numpy.float64)."""
    if kind.__flags__ & (1 << 9) or kind.__module__ == "builtins":  # Py_TPFLAGS_HEAPTYPE
        return kind.__name__
    return f"{kind.__module__}.{kind.__qualname__}"


def from_numpy(ndarray: np.ndarray, /) -> Tensor:
    """torch.from_numpy: a tensor sharing memory with ``ndarray`` (no copy, dtype kept); torch takes
    no keyword here."""
    array = ndarray
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {_c_type_name(type(array))})")
    _check_numpy_array(array)
    _warn_if_read_only(array)
    _storage.mark_not_resizable(array)
    return Tensor._make(array) if array.size else _keep_numpy_empty_strides(Tensor._make(array), array)


def _legacy_data_array(data, dtype: _dtype.dtype):
    """The array torch's legacy constructors (``Tensor(a)``, ``FloatTensor(a)``, ``x.new(a)``) make
    of their data: a NumPy array is read as from_numpy reads it (its refusals, its read-only
    warning) and its memory shared when it already has ``dtype``, else converted into a copy, as
    torch's legacy path converts without copy_numpy; other data is copied as torch.tensor's."""
    if not isinstance(data, np.ndarray):
        return _to_array(data, dtype)
    _check_numpy_array(data)
    _warn_if_read_only(data)
    if data.dtype != dtype.np:
        return _to_array(data, dtype)
    _storage.mark_not_resizable(data)
    return data


_TORCH_NUMPY_TYPES = ("float64, float32, float16, complex64, complex128, int64, int32, int16, int8, uint64, uint32, "
                      "uint16, uint8, and bool")


def _check_numpy_array(array: np.ndarray) -> None:
    """torch's refusals of a NumPy array given whole to from_numpy, as_tensor or tensor (with or
    without a dtype: torch reads the array as it is before converting): a dtype it has no type
    for, a negative or byte-misaligned stride, a non-native byte order (a '>f4' array is a float32
    one to the dtype check, as to torch's, then refused for its byte order)."""
    try:
        _dtype.from_numpy_dtype(array.dtype.newbyteorder("="))
    except TypeError:
        raise TypeError(f"can't convert np.ndarray of type numpy.{array.dtype.type.__name__}. The only supported "
                        f"types are: {_TORCH_NUMPY_TYPES}.") from None
    if builtins.any(stride % array.itemsize for stride in array.strides):
        raise ValueError("given numpy array strides not a multiple of the element byte size. Copy the numpy array "
                         "to reallocate the memory.")
    if builtins.any(stride < 0 for stride in array.strides):
        raise ValueError("At least one stride in the given numpy array is negative, and tensors with negative "
                         "strides are not currently supported. (You can probably work around this by making a copy "
                         "of your array  with array.copy().) ")
    if not array.dtype.isnative:
        raise ValueError("given numpy array has byte order different from the native byte order. Conversion "
                         "between byte orders is currently not supported.")


_READ_ONLY_WARNING = ("The given NumPy array is not writable, and PyTorch does not support non-writable tensors. "
                      "This means writing to this tensor will result in undefined behavior. You may want to copy "
                      "the array to protect its data or make it writable before converting it to a tensor. This type "
                      "of warning will be suppressed for the rest of this program. (Triggered internally at "
                      "/__w/pytorch/pytorch/torch/csrc/utils/tensor_numpy.cpp:213.)")


def _warn_if_read_only(array: np.ndarray) -> None:
    """torch's warning for sharing a read-only array (PIL's ``np.asarray(image)``, ``np.frombuffer``
    of bytes, a read-only memmap), once a process (from_numpy and as_tensor share it). torch then
    writes into it anyway (undefined behaviour); here the tensor stays read-only and an in-place
    write to it is refused."""
    if not array.flags.writeable:
        _config.warn_once(_READ_ONLY_WARNING)


def _sizes(sizes: tuple, size) -> tuple:
    """The size given as varargs (``zeros(2, 3)``, ``zeros((2, 3))``) or as ``size=``."""
    return sizes if size is None else (size,)


def _shape_args(size) -> tuple:
    shape = _int_sequence(size, "empty")  # torch names the creation op it routes through
    for s in shape:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(shape)}")
    return shape


def _allocated(op: str, make, *args, **kwargs):
    """``make(*args, **kwargs)``, a NumPy/CuPy allocation, with torch's RuntimeError where the memory
    is not there (a layer built with a hostile 2**31 features calls these directly, not through
    the public wrappers that translate NumPy's MemoryError)."""
    try:
        return make(*args, **kwargs)
    except MemoryError as error:
        raise RuntimeError(f"{op}(): not enough memory: {error}") from None
    except ValueError as error:
        if "array is too big" not in str(error):  # NumPy's refusal of a size beyond any address space
            raise
        raise RuntimeError(f"{op}(): not enough memory: {error}") from None


def _xp(device):
    """The array module that creates on ``device`` (the default device when None), with the GPU
    it names made CuPy's current one (CuPy allocates there; see _backend.follow_device)."""
    if device is None:
        device = default_device.device
        if device is None:
            return np
    xp = module_for_device(device)
    if xp is not np:
        allocate_on(device)
    return xp


def _strided_only(layout, op: str) -> None:
    """torch's creation functions take ``layout=``; chainrule creates strided tensors only."""
    if layout is not None and layout is not _layout.strided:
        raise NotImplementedError(f"{op}: only layout={_layout.strided} is supported here, got {layout}; build "
                                  "sparse tensors with sparse_coo_tensor or Tensor.to_sparse")


def _dt(dtype, default=None):
    if dtype is None:
        return (default or _dtype.get_default_dtype()).np
    return _dtype.to_dtype(dtype).np


def out_dtype(op: str, out, dtype):
    """The dtype a creation function given ``out=`` makes its values in: ``out``'s own, which a
    ``dtype=`` beside it must name (torch's RuntimeError otherwise)."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{op}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if dtype is not None and _dtype.to_dtype(dtype) != out.dtype:
        raise RuntimeError(f"dtype {_dtype.scalar_name(_dtype.to_dtype(dtype))} does not match dtype of out "
                           f"parameter ({_dtype.scalar_name(out.dtype)})")
    return out.dtype


def _warn_arange_count(out: Tensor, count: builtins.int) -> None:
    from .._torch_function import user_stacklevel

    warnings.warn(f"The number of elements in the out tensor of shape {list(out.shape)} is {out.numel()} which does "
                  f"not match the computed number of elements {count}. Note that this may occur as a result of rounding "
                  f"error. The out tensor will be resized to a tensor of shape ({count},).", UserWarning,
                  stacklevel=user_stacklevel())


def write_factory_out(result: Tensor, out: Tensor, op: str, requires_grad: builtins.bool = False, *,
                      keeps_out_shape: builtins.bool = False, warns_on_count: builtins.bool = False) -> Tensor:
    """torch's ``out=`` of a creation function: ``result`` (made in ``out``'s dtype) written into
    ``out``. Unlike other ops' outputs a factory's is resized silently (torch resizes it with
    resize_, without the deprecated-resize warning); the sequence makers (linspace, logspace,
    fftfreq) keep ``out``'s own shape when it holds as many elements, and those built on arange
    (fftfreq) warn as arange does when a non-empty ``out`` holds another count. ``requires_grad=True``
    turns on ``out``'s flag, as torch does."""
    if out._data.shape != result._data.shape:
        if keeps_out_shape and out._data.size == result._data.size:
            result = result.reshape(out.shape)
        else:
            _check_out(result, out, op)  # torch's refusal of an out that requires grad comes first
            if warns_on_count and out._data.size:
                _warn_arange_count(out, result._data.size)
            out.resize_(0)  # write_out then gives it the result's shape, without the warning
    write_out(result, out, op)
    if requires_grad:
        out.requires_grad_(True)
    return out


def factory_honours_out(op: str, *, keeps_out_shape: builtins.bool = False, warns_on_count: builtins.bool = False,
                        resizes_first: builtins.bool = False):
    """A creation function given torch's keyword ``out=``: its values made in ``out``'s dtype (the
    same draws a random factory makes without ``out`` in that dtype), then written by
    ``write_factory_out``. ``resizes_first``: torch's kernel resizes ``out`` before anything else
    (empty, randn), so an ``out`` that requires grad meets resize_'s refusal."""
    def give_out(factory):
        def with_out(*args, out, **kwargs):
            kwargs["dtype"] = out_dtype(op, out, kwargs.get("dtype"))
            if resizes_first and out.requires_grad:
                raise RuntimeError("cannot resize variables that require grad")
            requires_grad = kwargs.pop("requires_grad", False)
            result = factory(*args, **kwargs)
            return write_factory_out(result, out, f"aten::{op}", requires_grad, keeps_out_shape=keeps_out_shape,
                                     warns_on_count=warns_on_count)

        return out_keyword_front(factory, with_out)

    return give_out


def _through_dispatch_mode(name: str, factory, args: tuple, dtype, device, requires_grad: builtins.bool):
    """A factory call handed to the innermost dispatch mode as ``aten.<name>`` (torch's
    factories reach modes too), or RUN_UNDISPATCHED when no mode is entered. The handler's
    ``func(*args, **kwargs)`` calls ``factory`` again, the mode popped; requires_grad is set on
    what it returns, above the mode, as torch's autograd does."""
    kwargs = {"dtype": dtype} if dtype is not None else {}
    kwargs["device"] = _device(device) if device is not None else default_device.device or _device("cpu")
    kwargs["pin_memory"] = False
    made = _function.factory_dispatch(name, factory, args, kwargs)
    if made is not _function.RUN_UNDISPATCHED and requires_grad:
        made.requires_grad_(True)
    return made


def zeros(*sizes, size=None, dtype=None, layout=None, device=None, requires_grad=False, out=None,
          pin_memory=False) -> Tensor:
    """zeros(*size, *, out=None, dtype=None, layout=torch.strided, device=None,
        requires_grad=False) -> Tensor

    A tensor of shape ``size`` filled with 0 (torch.zeros)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("zeros", dtype, requires_grad, device)
    _strided_only(layout, "zeros")
    if _function.active_dispatch is not None and out is None:
        made = _through_dispatch_mode("zeros", zeros, (list(_shape_args(_sizes(sizes, size))),), dtype, device,
                                      requires_grad)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    if out is not None:
        dtype = out_dtype("zeros", out, dtype)
    result = _finish(_allocated("zeros", _xp(device).zeros, _shape_args(_sizes(sizes, size)), dtype=_dt(dtype)),
                     requires_grad and out is None)
    return result if out is None else write_factory_out(result, out, "aten::zeros", requires_grad)


def ones(*sizes, size=None, dtype=None, layout=None, device=None, requires_grad=False, out=None,
         pin_memory=False) -> Tensor:
    """ones(*size, *, out=None, dtype=None, layout=torch.strided, device=None,
        requires_grad=False) -> Tensor

    A tensor of shape ``size`` filled with 1 (torch.ones)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("ones", dtype, requires_grad, device)
    _strided_only(layout, "ones")
    if _function.active_dispatch is not None and out is None:
        made = _through_dispatch_mode("ones", ones, (list(_shape_args(_sizes(sizes, size))),), dtype, device,
                                      requires_grad)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    if out is not None:
        dtype = out_dtype("ones", out, dtype)
    result = _finish(_allocated("ones", _xp(device).ones, _shape_args(_sizes(sizes, size)), dtype=_dt(dtype)),
                     requires_grad and out is None)
    return result if out is None else write_factory_out(result, out, "aten::ones", requires_grad)


zeros.honours_out = ones.honours_out = True


@factory_honours_out("empty", resizes_first=True)
def empty(*sizes, size=None, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None,
          pin_memory=False) -> Tensor:
    """empty(*size, *, out=None, dtype=None, layout=torch.strided, device=None, requires_grad=False,
        pin_memory=False, memory_format=torch.contiguous_format) -> Tensor

    A tensor of shape ``size`` whose values are not initialised (torch.empty)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("empty", dtype, requires_grad, device)
    _strided_only(layout, "empty")
    shape = _shape_args(_sizes(sizes, size))
    name = getattr(memory_format, "_name", None)
    if name == "preserve_format":
        raise RuntimeError("unsupported memory format Preserve")
    if _function.active_dispatch is not None:
        made = _through_dispatch_mode("empty.memory_format", empty, (list(shape),), dtype, device, requires_grad)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    order = _channels_last_order(name, len(shape))
    array = _allocated("empty", _xp(device).empty, shape if order is None else tuple(shape[d] for d in order),
                       dtype=_dt(dtype))
    return _finish(array if order is None else array.transpose(_inverse(order)), requires_grad)


_CHANNELS_LAST_ORDERS = {"channels_last": (0, 2, 3, 1), "channels_last_3d": (0, 2, 3, 4, 1)}


def _channels_last_order(name, ndim: builtins.int):
    """The dims' order in memory (outermost first) that a channels-last format asks for, or None."""
    order = _CHANNELS_LAST_ORDERS.get(name)
    if order is not None and len(order) != ndim:
        raise RuntimeError(f"required rank {len(order)} tensor to use {name} format")
    return order


def _inverse(order: tuple) -> list:
    return [order.index(d) for d in range(len(order))]


def _like_order(input: Tensor, memory_format):
    """The memory order of a ``*_like`` result (None: row-major; "strides": a NumPy input's preserve_format
    strides, ``memory_format.preserved_strides``): torch's preserve_format (the default) keeps a dense,
    non-overlapping input's layout, and lays out any other one densely in its stride order."""
    name = getattr(memory_format, "_name", "preserve_format")
    if name != "preserve_format":
        return _channels_last_order(name, input._data.ndim)
    array = input._data
    if type(array).__module__.split(".")[0] not in ("numpy", "cupy") or (
            array.flags.c_contiguous and 1 not in array.shape):
        return None
    if type(array) is np.ndarray and array.size:
        return "strides"  # torch's preserved strides, size-1 dims' too (empty_preserving_format)
    if array.flags.c_contiguous:
        return None
    if not dense_non_overlapping(array):
        return None
    return _ordered_around_singletons(array)


def _ordered_around_singletons(array) -> tuple:
    """The dims by decreasing stride (outermost first), each size-1 dim kept in its own place (its
    stride says nothing about where it lies)."""
    moving = sorted((d for d in range(array.ndim) if array.shape[d] != 1), key=lambda d: -abs(array.strides[d]))
    slots = iter(moving)
    return tuple(d if array.shape[d] == 1 else next(slots) for d in range(array.ndim))


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, requires_grad=False,
                   pin_memory=False) -> Tensor:
    """torch.empty_permuted: an uninitialised tensor of shape ``size`` whose memory runs over the dims
    in ``physical_layout`` order, outermost first ((0, 2, 3, 1) is channels-last for NCHW)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("empty_permuted", dtype, requires_grad, device)
    _strided_only(layout, "empty_permuted")
    size, physical_layout = tuple(size), tuple(physical_layout)
    if len(size) != len(physical_layout):
        raise RuntimeError(f"Number of dimensions in size does not match the length of the physical_layout; i.e. "
                           f"len(size) = {len(size)} is not equal to len(physical_layout) = {len(physical_layout)}")
    seen = set()
    for i, d in enumerate(physical_layout):  # torch checks each entry in order: its range, then a repeat
        if not 0 <= d < len(size):
            raise RuntimeError(f"Dimension out of range (expected to be between 0 and {len(size) - 1}, but got {d} at "
                               f"index {i}).  NB: negative dims not currently supported; file an issue if you want it.")
        if d in seen:
            raise RuntimeError("Duplicate dim not allowed")
        seen.add(d)
    physical = _xp(device).empty(tuple(size[d] for d in physical_layout), dtype=_dt(dtype))
    inverse = [physical_layout.index(d) for d in range(len(size))]
    return _finish(physical.transpose(inverse), requires_grad)


@factory_honours_out("full")
def full(size, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """full(size, fill_value, *, out=None, dtype=None, layout=torch.strided, device=None,
        requires_grad=False) -> Tensor

    A tensor of shape ``size`` filled with ``fill_value``; its dtype is inferred from the value when not
    given (torch.full)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("full", dtype, requires_grad, device)
    _strided_only(layout, "full")
    if _function.active_dispatch is not None:
        made = _through_dispatch_mode("full", full, (list(_shape_args((size,))), fill_value), dtype, device,
                                      requires_grad)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    if isinstance(fill_value, Tensor) and fill_value._data.ndim == 0 and not fill_value.is_meta:
        # torch's parser reads a 0-d tensor as its number: inferred, and range-checked, as one
        fill_value = fill_value._data.item()
    if dtype is None:
        dtype = _dtype.scalar_dtype(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
    shape = _shape_args((size,))
    fill_value = checked_fill_value(fill_value, _dtype.to_dtype(dtype), math.prod(shape))
    if type(fill_value) is builtins.float and fill_value != fill_value and _xp(device) is np and \
            _dtype.to_dtype(dtype) in (_dtype.float16, _dtype.bfloat16):
        fill_value = _dtype.python_numbers_to_half(fill_value, _dt(dtype))[()]  # torch's NaN bits
    return _finish(_allocated("full", _xp(device).full, shape, fill_value, dtype=_dt(dtype)), requires_grad)


def checked_fill_value(value, dtype: _dtype.dtype, numel: builtins.int):
    """``value`` as full/fill_ write it into ``numel`` elements of ``dtype``: refused when it
    overflows the dtype (``_dtype.checked_scalar``), except that torch's one-element fill of a
    float16/bfloat16 tensor (its scalar fast path) rounds it, to inf, unchecked."""
    if numel == 1 and (dtype is _dtype.float16 or dtype is _dtype.bfloat16):
        return value
    return _dtype.checked_scalar(value, dtype)


def scalar_tensor(s, *, dtype=None, layout=None, device=None, pin_memory=False, requires_grad=False) -> Tensor:
    """torch.scalar_tensor: a 0-d tensor of ``s`` (the default float dtype unless ``dtype``);
    a negative integer wraps into an unsigned dtype, an out-of-range one is refused, as torch's fill."""
    refuse_pinning(pin_memory)
    _strided_only(layout, "scalar_tensor")
    value = checked_fill_value(s, _dtype.to_dtype(dtype) if dtype is not None else _dtype.get_default_dtype(), 1)
    return _finish(_xp(device).asarray(value, dtype=_dt(dtype)), requires_grad)


def _like(fn, t: Tensor, dtype, device, requires_grad, *extra, memory_format=None):
    dt = t.dtype if dtype is None else dtype
    dev = t.device if device is None else device
    out = _made_like(t, fn(*extra, dtype=dt, device=dev, requires_grad=requires_grad))
    if not t._data.size and getattr(memory_format, "_name", "preserve_format") == "preserve_format":
        # torch counts every empty tensor contiguous, so non-overlapping and dense: preserve_format
        # makes empty_strided of its strides, whatever they are ((0, 1) of an expand, (2, 1) of a slice)
        if out._data.shape == t._data.shape and out._data.ndim:
            out._numpy_empty_strides = (out._data.shape, t.stride())
        return out
    order = _like_order(t, memory_format)
    if order is None or order == tuple(range(len(order))):
        return out
    values = out._data
    if order == "strides":
        # (the strides compared before anything is allocated: a keepdim reduction's output, whose
        # size-1 dims bring it here, mostly has them already)
        wanted = tuple(st * values.itemsize for st in preserved_strides(t._data))
        if wanted == values.strides:
            return out
        laid_out = strided_view(np.empty(values.size, dtype=values.dtype), values.shape, wanted)
    else:
        laid_out = array_module(values).empty(tuple(values.shape[d] for d in order), dtype=values.dtype)
        laid_out = laid_out.transpose(_inverse(order))
    laid_out[...] = values
    result = Tensor._make(laid_out)
    result._requires_grad = out._requires_grad
    return result


def _like_of_wrapper(name: str, like, args: tuple, dtype, device, requires_grad: builtins.bool, memory_format,
                     generator=None):
    """``aten.<name>`` handed to a dispatch mode or a wrapper subclass's handler (its values, and so its
    ``*_like``, are its own); ``like`` is what the handler's ``func`` runs on the tensors it holds. The
    keywords are torch's: those given (a generator first), and pin_memory (False) before a memory format."""
    device = None if device is None else _device(device)  # (torch's parser makes a device of 'cpu' or 0)
    kwargs = {key: value for key, value in (("generator", generator), ("dtype", dtype), ("device", device))
              if value is not None}
    kwargs["pin_memory"] = False
    if memory_format is not None:
        kwargs["memory_format"] = memory_format
    made = _function.factory_dispatch(name, like, args, kwargs)
    if made is not _function.RUN_UNDISPATCHED and requires_grad:
        made.requires_grad_(True)
    return made


def sparse_like(input: Tensor, layout, memory_format, fill_kernel: str | None, dtype=None,
                requires_grad: builtins.bool = False, fill=None) -> Tensor | None:
    """torch's ``*_like`` of a sparse COO tensor that stays sparse (no ``layout`` asked): it refuses
    a memory format, then the in-place ``fill_kernel`` it has no sparse version of; with none
    (empty_like, zeros_like) the result is sparse with no entries. A compressed (CSR, CSC) one keeps
    its layout, its values made by ``fill`` from its values (sparse.py's _compressed_like). None for
    any other input."""
    if input.layout in (_layout.sparse_csr, _layout.sparse_csc):
        return input._compressed_like(layout, memory_format, fill_kernel, dtype, requires_grad, fill)
    if layout is not None or input.layout is not _layout.sparse_coo:
        return None
    if memory_format is not None:  # even preserve_format, as torch's empty_like of a sparse tensor
        raise RuntimeError("memory format option is only supported by strided tensors")
    if fill_kernel is not None:
        raise NotImplementedError(_layout.not_on_sparse(fill_kernel))
    return input._without_entries(dtype).requires_grad_(requires_grad)


def zeros_like(input: Tensor, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None, pin_memory=False) -> Tensor:
    """zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
        memory_format=torch.preserve_format) -> Tensor

    A tensor of ``input``'s shape (and dtype, device, layout unless given) filled with 0
    (torch.zeros_like)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("zeros_like", dtype, requires_grad, device)
    _strided_only(layout, "zeros_like")
    if _function.active_dispatch is not None:  # (a mode, or a wrapper subclass's handler: aten.zeros_like)
        made = _like_of_wrapper("zeros_like", zeros_like, (input,), dtype, device, requires_grad, memory_format)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    made = sparse_like(input, layout, memory_format, None, dtype, requires_grad)
    if made is not None:
        return made
    return _like(zeros, input, dtype, device, requires_grad, tuple(input.shape), memory_format=memory_format)


def ones_like(input: Tensor, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None, pin_memory=False) -> Tensor:
    """ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
        memory_format=torch.preserve_format) -> Tensor

    A tensor of ``input``'s shape (and dtype, device, layout unless given) filled with 1
    (torch.ones_like)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("ones_like", dtype, requires_grad, device)
    _strided_only(layout, "ones_like")
    if _function.active_dispatch is not None:  # (a mode, or a wrapper subclass's handler: aten.ones_like)
        made = _like_of_wrapper("ones_like", ones_like, (input,), dtype, device, requires_grad, memory_format)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    made = sparse_like(input, layout, memory_format, "fill_.Scalar", dtype, requires_grad,
                       lambda values: ones_like(values, dtype=dtype))
    if made is not None:
        return made
    return _like(ones, input, dtype, device, requires_grad, tuple(input.shape), memory_format=memory_format)


def empty_like(input: Tensor, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None, pin_memory=False) -> Tensor:
    """empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
        memory_format=torch.preserve_format) -> Tensor

    An uninitialised tensor of ``input``'s shape (and dtype, device, layout unless given)
    (torch.empty_like)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("empty_like", dtype, requires_grad, device)
    _strided_only(layout, "empty_like")
    if _function.active_dispatch is not None:  # (a mode, or a wrapper subclass's handler: aten.empty_like)
        made = _like_of_wrapper("empty_like", empty_like, (input,), dtype, device, requires_grad, memory_format)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    made = sparse_like(input, layout, memory_format, None, dtype, requires_grad,
                       lambda values: empty_like(values, dtype=dtype))
    if made is not None:
        return made
    return _like(empty, input, dtype, device, requires_grad, tuple(input.shape), memory_format=memory_format)


def full_like(input: Tensor, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None, pin_memory=False) -> Tensor:
    """full_like(input, fill_value, *, dtype=None, layout=torch.strided, device=None, requires_grad=False,
        memory_format=torch.preserve_format) -> Tensor

    A tensor of ``input``'s shape (and dtype, device unless given) filled with ``fill_value``
    (torch.full_like)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("full_like", dtype, requires_grad, device)
    _strided_only(layout, "full_like")
    if _function.active_dispatch is not None:  # (a mode, or a wrapper subclass's handler: aten.full_like)
        made = _like_of_wrapper("full_like", full_like, (input, fill_value), dtype, device, requires_grad, memory_format)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    made = sparse_like(input, layout, memory_format, "fill_.Scalar", dtype, requires_grad,
                       lambda values: full_like(values, fill_value, dtype=dtype))
    if made is not None:
        return made
    return _like(full, input, dtype, device, requires_grad, tuple(input.shape), fill_value,
                 memory_format=memory_format)


def arange(start=None, end=None, step=1, *, out=None, dtype=None, layout=None, device=None, requires_grad=False,
           pin_memory=False) -> Tensor:
    """torch.arange: int64 for integer arguments, the default float dtype otherwise (``out``'s
    dtype when given)."""
    refuse_pinning(pin_memory)
    if out is not None:
        _check_tensor(out, "arange", "out", 4)
        refuse_out_under_autograd("arange", out)  # (torch's autograd layer refuses before out is resized)
        dtype = out_dtype("arange", out, dtype)
        result = arange(start, end, step, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)
        if out.numel() != result.numel():
            if out.numel():
                _warn_arange_count(out, result.numel())
            out.resize_(0)  # torch resizes it to the count; write_out gives it the result's shape
        else:
            result = result.reshape(out.shape)  # as many elements: torch fills them in out's own shape
        return write_out(result, out, "arange")
    dtype, requires_grad = factory_args("arange", dtype, requires_grad, device, overloaded=True)
    refuse_dtype(dtype, "arange_cpu", complex_too=True)
    _strided_only(layout, "arange")
    if _function.active_dispatch is not None:  # torch's overloads: arange(end), .start, .start_step
        called = ((end if start is None else start,) if end is None or start is None
                  else (start, end) if type(step) is builtins.int and step == 1 else (start, end, step))
        name = ("arange", "arange.start", "arange.start_step")[len(called) - 1]
        made = _through_dispatch_mode(name, arange, called, dtype, device, requires_grad)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    if start is None:  # arange(end=n): torch's (Scalar end) signature called by keyword
        start = 0
    elif end is None:
        start, end = 0, start
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if values[2] == 0 or values[2] != values[2]:  # torch's check, `step > 0 || step < 0`, refuses nan too
        raise RuntimeError("step must be nonzero")
    if dtype is None:
        # (a bool is an integer here: arange(True) is int64 in torch)
        is_int = builtins.all(isinstance(v, (builtins.int, np.integer)) for v in values)
        dtype = _dtype.int64 if is_int else _dtype.get_default_dtype()
    start, end, step = values
    if not builtins.all(math.isfinite(v) for v in (start, end)):
        raise RuntimeError(f"unsupported range: {start} -> {end}")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if _dtype.to_dtype(dtype).np.kind in "iu" and not builtins.all(-2**63 <= v < 2**63 for v in values):
        # every integer kernel reads the bounds and the step as int64 first
        raise RuntimeError("value cannot be converted to type int64_t without overflow")
    if _dtype.to_dtype(dtype) is _dtype.int64:
        # torch's int64 kernel truncates the bounds and the step first, then counts in integers:
        # arange(0., -8.000001, -4., dtype=int64) is [0, -4], not three values
        start, end, step = (builtins.int(v) for v in (start, end, step))
        if step == 0:
            raise ValueError("step must be nonzero")  # torch's type when truncation makes it zero
        n = builtins.max(0, (end - start + step - (1 if step > 0 else -1)) // step)
    elif _dtype.to_dtype(dtype).np.kind in "iu":
        # the narrower integer kernels count in double (three values for the range above, as a
        # float dtype would), then step from the truncated start by the truncated step
        n = builtins.max(0, math.ceil((end - start) / step))
        start, step = builtins.int(start), builtins.int(step)
    else:
        # compute the length as torch does (ceil((end - start) / step)) to avoid float surprises
        n = builtins.max(0, math.ceil((end - start) / step))
    low = _dt(dtype)
    if low in (np.float32, np.float64):
        array = _float_arange(builtins.float(start), builtins.float(step), n, low.type)
    else:
        array = (start + np.arange(n, dtype=np.int64 if _dtype.to_dtype(dtype).np.kind in "iu" else np.float64) * step)
    return _finish(_xp(device).asarray(array.astype(low)), requires_grad)


arange.honours_out = True  # writes out= itself, with torch's dtype check and resize warning


def _float_arange(start: builtins.float, step: builtins.float, n: builtins.int, real) -> np.ndarray:
    """torch's CPU arange in float32/float64 (checked bit for bit against torch 2.13): it counts in
    double; its vectorised loop, two vectors (8 floats or 4 doubles each) a pass, starts each vector
    at ``start + step·i`` rounded to the dtype and gives its k-th lane ``first + k·step`` in double;
    the last n mod 16 (or 8) values are ``start + step·i``. Each is one fused multiply-add (the
    kernel is compiled with contraction), so arange(-8.0, 8.0, 0.1)[80] is 4.4e-16, not 0, and
    relu's gradient there is 1."""
    lanes = 8 if real is np.float32 else 4
    vectorised = n // (2 * lanes) * (2 * lanes)
    with np.errstate(all="ignore"):  # values beyond the dtype become ±inf quietly, as torch's
        values = np.empty(n, np.float64)
        # each vector's first value (rounded to the dtype) and the tail: fma(step, i, start)
        firsts = _fused_or_plain(step, np.arange(0, vectorised, lanes, dtype=np.float64), start)
        values[vectorised:] = _fused_or_plain(step, np.arange(vectorised, n, dtype=np.float64), start)
        if vectorised:
            firsts = firsts.astype(real).astype(np.float64)
            lane = np.arange(lanes, dtype=np.float64)
            values[:vectorised] = _fused_or_plain(step, lane[None, :], firsts[:, None]).reshape(-1)
        return values.astype(real)


def _fused_or_plain(x: builtins.float, y: np.ndarray, z) -> np.ndarray:
    """x·y + z as one fma (``_fused_multiply_add``: for arange a number x, whole numbers y and z
    broadcasting them, so the product and its error are formed once per lane offset, not per
    value); where the exact-product recovery fails (an infinite operand or product makes it nan)
    the plain sum, which is the fma's value."""
    fused = _fused_multiply_add(x, y, z)
    return np.where(np.isfinite(fused), fused, x * y + z)


def _check_space_arguments(op: str, start, end, steps) -> builtins.int:
    """torch's checks of linspace/logspace: an int ``steps`` (its parser refuses 3.0 and a bool, and
    takes a 0-d integer tensor, as Deformable DETR's ``linspace(0.5, H_ - 0.5, H_)`` over a shapes
    tensor gives it), not negative, and start and end numbers or 0-d tensors; ``steps`` as an int."""
    if isinstance(steps, Tensor) and steps._data.ndim == 0 and steps.dtype is not _dtype.bool \
            and not steps.dtype.is_floating_point and not steps.dtype.is_complex:
        steps = builtins.int(steps._data)
    if isinstance(steps, builtins.bool) or not isinstance(steps, (builtins.int, np.integer)):
        got = ", ".join(_dtype.parser_type_name(value) for value in (start, end, steps))
        raise TypeError(f"{op}() received an invalid combination of arguments - got ({got}), but expected one of:\n"
                        f" * (Tensor start, Tensor end, int steps, ...)\n * (Number start, Tensor end, int steps, ...)"
                        f"\n * (Tensor start, Number end, int steps, ...)\n * (Number start, Number end, int steps, ...)")
    numbers = (builtins.int, builtins.float, builtins.complex, np.number, np.bool_, Tensor)
    if not (isinstance(start, numbers) and isinstance(end, numbers)) or not -2**63 <= steps < 2**63:
        got = ", ".join(_dtype.parser_type_name(value) for value in (start, end, steps))
        if isinstance(start, numbers) and isinstance(end, numbers):  # steps beyond int64
            raise ValueError("Overflow when unpacking long long")
        raise TypeError(f"{op}() received an invalid combination of arguments - got ({got}), but expected one of:\n"
                        f" * (Tensor start, Tensor end, int steps, ...)\n * (Number start, Number end, int steps, ...)")
    start_dims, end_dims = (value._data.ndim if isinstance(value, Tensor) else 0 for value in (start, end))
    if start_dims or end_dims:
        raise RuntimeError(f"{op} only supports 0-dimensional start and end tensors, but got start with {start_dims} "
                           f"dimension(s) and end with {end_dims} dimension(s).")
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    return builtins.int(steps)


@factory_honours_out("linspace", keeps_out_shape=True)
def linspace(start, end, steps: builtins.int, *, dtype=None, layout=None, device=None,
             requires_grad=False, pin_memory=False) -> Tensor:
    """linspace(start, end, steps, *, out=None, dtype=None, layout=torch.strided, device=None,
        requires_grad=False) -> Tensor

    ``steps`` evenly spaced values from ``start`` to ``end``, both included (torch.linspace)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("linspace", dtype, requires_grad, device, overloaded=True)
    refuse_dtype(dtype, "linspace_cpu")
    _strided_only(layout, "linspace")
    steps = _check_space_arguments("linspace", start, end, steps)
    low = _dt(dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # an infinite start or end gives torch's nan and inf quietly
        array = _allocated("linspace", np.linspace, builtins.float(start), builtins.float(end), builtins.int(steps))
        array = _torch_linspace(array, start, end, builtins.int(steps), low, dtype).astype(low)
    return _finish(_xp(device).asarray(array), requires_grad)


def _torch_linspace(array: np.ndarray, start, end, steps: builtins.int, low, dtype) -> np.ndarray:
    """torch's CPU kernel's values in ``low`` (np.linspace's ``array`` where none is emulated)."""
    if low.kind in "fV" and steps:
        # torch converts start and end to the dtype, checked; one step fills start alone (unchecked
        # in float16/bfloat16, as their fill_ is)
        target = _dtype.from_numpy_dtype(low)
        if steps > 1 or low.itemsize > 2:
            _dtype.checked_scalar(builtins.float(start), target)
        if steps > 1:
            _dtype.checked_scalar(builtins.float(end), target)
    if low.kind in "fV" and steps == 1:
        return np.array([builtins.float(start)])  # (np.linspace gives nan for an infinite start)
    if low.itemsize == 2 and low.kind in "fV" and steps > 1:  # float16 or ml_dtypes' bfloat16
        return _half_linspace(builtins.float(start), builtins.float(end), steps, low)
    if low in (np.float32, np.float64) and steps:
        return _float_linspace(builtins.float(start), builtins.float(end), steps, low.type)
    if low.kind in "iu" and steps:
        return _integer_linspace(start, end, steps, dtype)
    return array


def _integer_linspace(start, end, steps: builtins.int, dtype) -> np.ndarray:
    """torch's CPU linspace in an integer dtype (checked against torch 2.13): start and end are
    converted to the dtype first (truncated; a negative integer wraps into an unsigned type), the
    step between them is a double; the first half counts up from start, the rest down from end,
    each value a fused multiply-add truncated toward zero (4.3 to 0 in 50 steps is 4, 3, 3, ...)."""
    def converted(value):
        value = _dtype.checked_scalar(value.item() if isinstance(value, Tensor) else value, dtype)
        return builtins.float(np.asarray(value).astype(dtype.np))

    first = converted(start)
    if steps == 1:  # torch fills start alone: end is never converted
        return np.array([first])
    last = converted(end)
    step = (last - first) / (steps - 1)
    i = np.arange(steps, dtype=np.float64)
    return np.trunc(np.where(i < steps // 2, _fused_multiply_add(step, i, first),
                             _fused_multiply_add(-step, steps - 1 - i, last)))


def _fused_multiply_add(x, y: np.ndarray, z) -> np.ndarray:
    """x·y + z rounded once, as a compiled kernel's fma (NumPy rounds the product first): the
    product's and the sum's rounding errors, recovered exactly (Dekker's split), added back."""
    def halves(v):
        scaled = 134217729.0 * v  # 2**27 + 1 splits a double into two 26-bit halves
        high = scaled - (scaled - v)
        return high, v - high

    product = x * y
    (x_high, x_low), (y_high, y_low) = halves(np.float64(x)), halves(y)
    product_error = ((x_high * y_high - product) + x_high * y_low + x_low * y_high) + x_low * y_low
    total = product + z
    z_part = total - product
    sum_error = (product - (total - z_part)) + (z - z_part)
    return total + (product_error + sum_error)


def _float_linspace(start: builtins.float, end: builtins.float, steps: builtins.int, real) -> np.ndarray:
    """torch's CPU linspace in float32/float64 (its scalar kernel, checked bit for bit against torch
    2.13): start, end and step = (end - start) / (steps - 1) in the dtype; the first half
    ``start + step·i``, the rest ``end - step·(steps - 1 - i)``, each one fused multiply-add (the
    kernel is compiled with contraction), i converted to the dtype first."""
    first, last = real(start), real(end)
    if steps == 1:
        return np.array([first])
    step = (last - first) / real(steps - 1)
    half = steps // 2
    counts = np.arange(steps, dtype=real)
    counts[half:] = counts[steps - 1 - half::-1]  # steps - 1 - i, i converted from an int64 first
    factors = np.full(steps, step, dtype=real)
    factors[half:] = -step
    addends = np.full(steps, first, dtype=real)
    addends[half:] = last
    if real is np.float32:
        # a float32 product is exact in float64; its sum rounds there and once more to float32,
        # the fma's rounding but for rare near-ties (none in 10^7 values against torch; the x87
        # long double was exact too and twenty times slower)
        return fused_multiply_add_float32(factors, counts, addends)
    fused = _fused_multiply_add(factors, counts, addends)
    # the exact-product recovery makes nan of an infinite step; an fma there is the plain sum
    return np.where(np.isfinite(fused), fused, factors * counts + addends)


def _half_linspace(start: builtins.float, end: builtins.float, steps: builtins.int, low) -> np.ndarray:
    """torch's CPU linspace in float16/bfloat16 (checked against torch 2.13): c10::Half/BFloat16
    arithmetic, each operation in float32 rounded to the dtype: start and end (via float32), their
    difference, steps - 1 and i (each converted to the dtype), the step, each product i·step and
    each sum; the first half counts up from start, the rest down from end."""
    def rounded(values):
        return np.asarray(values, dtype=np.float32).astype(low).astype(np.float32)

    first, last = rounded(np.float32(start)), rounded(np.float32(end))
    step = rounded(rounded(last - first) / rounded(steps - 1))
    i = np.arange(steps)
    up = rounded(first + rounded(step * rounded(i)))
    down = rounded(last - rounded(step * rounded(steps - 1 - i)))
    values = np.where(i < steps // 2, up, down)
    if low.kind == "V":  # c10::BFloat16 rounds every NaN to the positive quiet one, 0x7FC0
        values = np.where(np.isnan(values), np.float32(np.nan), values)
    return values


@factory_honours_out("logspace", keeps_out_shape=True)
def logspace(start, end, steps: builtins.int, base: builtins.float = 10.0, *, dtype=None, layout=None, device=None,
             requires_grad=False, pin_memory=False) -> Tensor:
    """logspace(start, end, steps, base=10.0, *, out=None, dtype=None, layout=torch.strided, device=None,
        requires_grad=False) -> Tensor

    ``steps`` values from ``base ** start`` to ``base ** end``, evenly spaced in the exponent
    (torch.logspace)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("logspace", dtype, requires_grad, device, overloaded=True)
    _strided_only(layout, "logspace")
    refuse_dtype(dtype, "logspace_cpu")
    steps = _check_space_arguments("logspace", start, end, steps)
    array = np.logspace(builtins.float(start), builtins.float(end), builtins.int(steps), base=base)
    return _finish(_xp(device).asarray(array.astype(_dt(dtype))), requires_grad)


@factory_honours_out("eye")
def eye(n: builtins.int, m: builtins.int | None = None, *, dtype=None, layout=None, device=None,
        requires_grad=False, pin_memory=False) -> Tensor:
    """eye(n, m=None, *, out=None, dtype=None, layout=torch.strided, device=None,
        requires_grad=False) -> Tensor

    An ``n`` x ``m`` (``n`` x ``n`` when ``m`` is not given) matrix with ones on the diagonal and zeros
    elsewhere (torch.eye)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("eye", dtype, requires_grad, device, overloaded=True)
    _strided_only(layout, "eye")
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"{'n' if n < 0 else 'm'} must be greater or equal to 0, got {n if n < 0 else m}")
    refuse_wide_unsigned_dtype(dtype, "eye")
    return _finish(_xp(device).eye(n, m, dtype=_dt(dtype)), requires_grad)


# --- Tensor.new_* : same dtype and device as self unless given ----------------------------
def new_tensor(self: Tensor, data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """new_tensor(data, *, dtype=None, device=None, requires_grad=False, layout=torch.strided,
        pin_memory=False) -> Tensor

    A copy of ``data`` as a tensor, of this tensor's dtype and device unless given (Tensor.new_tensor)."""
    dtype, requires_grad = factory_args("new_tensor", dtype, requires_grad, device, requires_grad_optional=False)
    if isinstance(data, Tensor):
        _warn_copy_construct("tensor.new_tensor")
    return tensor(data, dtype=dtype or self.dtype, device=self.device if device is None else device, requires_grad=requires_grad)


def _made_like(self: Tensor, made: Tensor) -> Tensor:
    """A ``*_like(self)`` or ``self.new_*`` result: inside a vmap torch's is batched as ``self`` is
    (not a factory's unbatched tensor), so writing a mapped value into it is allowed."""
    if _vmap_frames.running():
        _vmap_frames.forget_made(made)
    return made


def new_zeros(self: Tensor, *sizes, size=None, dtype=None, device=None, requires_grad=False, layout=None,
              pin_memory=False) -> Tensor:
    """new_zeros(size, *, dtype=None, device=None, requires_grad=False, layout=torch.strided,
        pin_memory=False) -> Tensor

    A tensor of shape ``size`` filled with 0, of this tensor's dtype and device unless given
    (Tensor.new_zeros)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("new_zeros", dtype, requires_grad, device)
    _strided_only(layout, "new_zeros")
    if self._wrapper_strides is not None and _function.active_dispatch is not None:
        made = _like_of_wrapper("new_zeros", new_zeros, (self, list(_shape_args(_sizes(sizes, size)))), dtype, device, requires_grad, None)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return _made_like(self, zeros(*_sizes(sizes, size), dtype=dtype or self.dtype,
                                device=self.device if device is None else device, requires_grad=requires_grad))


def new_ones(self: Tensor, *sizes, size=None, dtype=None, device=None, requires_grad=False, layout=None,
             pin_memory=False) -> Tensor:
    """new_ones(size, *, dtype=None, device=None, requires_grad=False, layout=torch.strided,
        pin_memory=False) -> Tensor

    A tensor of shape ``size`` filled with 1, of this tensor's dtype and device unless given
    (Tensor.new_ones)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("new_ones", dtype, requires_grad, device)
    _strided_only(layout, "new_ones")
    if self._wrapper_strides is not None and _function.active_dispatch is not None:
        made = _like_of_wrapper("new_ones", new_ones, (self, list(_shape_args(_sizes(sizes, size)))), dtype, device, requires_grad, None)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return _made_like(self, ones(*_sizes(sizes, size), dtype=dtype or self.dtype,
                                device=self.device if device is None else device, requires_grad=requires_grad))


def new_empty(self: Tensor, *sizes, size=None, dtype=None, device=None, requires_grad=False, layout=None,
              pin_memory=False) -> Tensor:
    """new_empty(size, *, dtype=None, device=None, requires_grad=False, layout=torch.strided,
        pin_memory=False) -> Tensor

    An uninitialised tensor of shape ``size``, of this tensor's dtype and device unless given
    (Tensor.new_empty)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("new_empty", dtype, requires_grad, device)
    _strided_only(layout, "new_empty")
    if self._wrapper_strides is not None and _function.active_dispatch is not None:
        made = _like_of_wrapper("new_empty", new_empty, (self, list(_shape_args(_sizes(sizes, size)))), dtype, device, requires_grad, None)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return _made_like(self, empty(*_sizes(sizes, size), dtype=dtype or self.dtype,
                                device=self.device if device is None else device, requires_grad=requires_grad))


def new_full(self: Tensor, size, fill_value, *, dtype=None, device=None, requires_grad=False, layout=None,
             pin_memory=False) -> Tensor:
    """new_full(size, fill_value, *, dtype=None, device=None, requires_grad=False, layout=torch.strided,
        pin_memory=False) -> Tensor

    A tensor of shape ``size`` filled with ``fill_value``, of this tensor's dtype and device unless
    given (Tensor.new_full)."""
    refuse_pinning(pin_memory)
    dtype, requires_grad = factory_args("new_full", dtype, requires_grad, device)
    _strided_only(layout, "new_full")
    if self._wrapper_strides is not None and _function.active_dispatch is not None:
        made = _like_of_wrapper("new_full", new_full, (self, list(_shape_args((size,))), fill_value), dtype, device, requires_grad, None)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return _made_like(self, full(size, fill_value, dtype=dtype or self.dtype,
                                 device=self.device if device is None else device, requires_grad=requires_grad))
