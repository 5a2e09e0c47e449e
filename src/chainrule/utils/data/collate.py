"""default_collate / default_convert: how a DataLoader turns samples into batches, as
torch.utils.data's (tensors and NumPy arrays stacked on a new first dim, numbers to tensors,
strings kept, mappings and (named) tuples and lists collated field by field)."""

from __future__ import annotations

import collections.abc
import copy
import re

import numpy as np

from ...tensor import Tensor

__all__ = ["default_collate", "default_convert"]

# NumPy dtype strings of arrays that cannot become tensors: bytes, strings, objects
np_str_obj_array_pattern = re.compile(r"[SaUO]")
default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}")


def _from_numpy(array: np.ndarray) -> Tensor:
    if array.dtype.kind in "SUO":
        raise TypeError(default_collate_err_msg_format.format(array.dtype))
    # torch.as_tensor's refusals, in its words: a dtype torch has no type for (datetime64), a
    # negative stride
    from ...ops.creation import _check_numpy_array

    _check_numpy_array(array)
    # np.asarray, not np.ascontiguousarray: that one makes a 0-d array (a NumPy scalar's) 1-d
    return Tensor._make(np.asarray(array, order="C"))


def default_convert(data):
    """Turn NumPy arrays and scalars (also inside mappings, (named) tuples and sequences) into tensors;
    leave the rest alone. As torch's: a mutable mapping or sequence is copied (its type, a defaultdict's
    factory, a subclass's attributes kept), another one rebuilt by its type (a plain dict or list where
    that type cannot be built so), a plain tuple becomes a list."""
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if elem_type.__module__ == "numpy" and elem_type.__name__ != "str_":
        if elem_type is np.ndarray and np_str_obj_array_pattern.search(data.dtype.str) is not None:
            return data
        if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind not in "SUO":  # np.matrix too
            return _from_numpy(np.asarray(data))
        from ...ops.creation import as_tensor

        return as_tensor(data)  # torch.as_tensor's error for an np.bytes_, a matrix of strings
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({key: default_convert(data[key]) for key in data})
                return clone
            return elem_type({key: default_convert(data[key]) for key in data})
        except TypeError:
            return {key: default_convert(data[key]) for key in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def _stack(tensors) -> Tensor:
    # torch.stack's own TypeErrors for what is not a sequence of tensors (a Tensor given as the
    # batch, a NumPy array among tensors)
    if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, Tensor) for t in tensors):
        from ... import stack  # the public one: its argument errors are worded as torch's

        return stack(tensors, 0)
    if any(t.requires_grad for t in tensors):
        from ...ops.shape import stack

        return stack(tensors, 0)
    shape = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 "
                               f"and {list(t._data.shape)} at entry {i}")
    dtypes = {t._data.dtype for t in tensors}
    if len(dtypes) > 1:
        from ...ops.shape import stack

        return stack(tensors, 0)
    return Tensor._make(np.stack([t._data for t in tensors]))


def collate(batch, *, collate_fn_map: dict | None = None):
    """Merge a list of samples into a batch, as torch's ``collate``: the first sample's type picks
    a function from ``collate_fn_map`` (its exact type first, then the first key it is an instance
    of); mappings, (named) tuples and sequences are collated field by field."""
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type in collate_fn_map:
            if isinstance(elem, collate_type):
                return collate_fn_map[collate_type](batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                # a copy keeps the mapping's own type and attributes (an OrderedDict subclass, ...)
                clone = copy.copy(elem)
                clone.update({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem})
                return clone
            return elem_type({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem})
        except TypeError:  # a mapping type that cannot be built from a dict
            return {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return elem_type(*(collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, samples in enumerate(transposed):
                    clone[i] = collate(samples, collate_fn_map=collate_fn_map)
                return clone
            return elem_type([collate(samples, collate_fn_map=collate_fn_map) for samples in transposed])
        except TypeError:
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def collate_tensor_fn(batch, *, collate_fn_map: dict | None = None) -> Tensor:
    return _stack(batch if isinstance(batch, Tensor) else list(batch))


def collate_numpy_array_fn(batch, *, collate_fn_map: dict | None = None):
    elem = batch[0]
    if np_str_obj_array_pattern.search(elem.dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))
    # torch.as_tensor of each: a later sample that is no array of numbers (a tuple, a number, strings)
    # gets as_tensor's own conversion, or its error
    from ...ops.creation import as_tensor

    return collate([_from_numpy(b) if isinstance(b, np.ndarray) and b.dtype.kind not in "SUO" else as_tensor(b)
                    for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(batch, *, collate_fn_map: dict | None = None) -> Tensor:
    if all(isinstance(b, np.generic) for b in batch):
        array = np.asarray(batch)
        if array.dtype.kind not in "SUO":
            return _from_numpy(array)
    from ...ops.creation import as_tensor

    # torch.as_tensor(batch): its conversion of what follows a NumPy scalar (a float, a tensor), its errors
    # (a NumPy string among the numbers: its "can't convert np.ndarray of type numpy.str_")
    return as_tensor(list(batch))


# what NumPy converts to float64 as torch.tensor does; NumPy would also convert a string ('2'), which torch refuses
_PLAIN_NUMBERS = frozenset((float, int, bool))


def collate_float_fn(batch, *, collate_fn_map: dict | None = None) -> Tensor:
    if set(map(type, batch)) <= _PLAIN_NUMBERS:
        return Tensor._make(np.asarray(batch, dtype=np.float64))
    from ..._dtype import float64
    from ...ops.creation import tensor

    # torch.tensor(batch, dtype=float64): its conversion of what follows a float, and its errors
    # ("must be real number, not tuple")
    return tensor(list(batch), dtype=float64)


def collate_int_fn(batch, *, collate_fn_map: dict | None = None) -> Tensor:
    # torch.tensor(batch): bools alone a bool tensor, ints (and bools) int64; a float after the first
    # int makes it the default float dtype, as torch.tensor infers it (int64 truncated 1.5 to 1)
    if all(type(b) is bool for b in batch):
        return Tensor._make(np.asarray(batch, dtype=np.bool_))
    from ...ops.creation import tensor

    if all(isinstance(b, int) for b in batch) and all(-2**63 <= b < 2**63 for b in batch):
        return Tensor._make(np.asarray(batch, dtype=np.int64))

    return tensor(list(batch))


def collate_str_fn(batch, *, collate_fn_map: dict | None = None):
    return batch


# what default_collate does for each type; libraries add their own types (monai: MetaTensor)
default_collate_fn_map: dict = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def default_collate(batch):
    """Merge a list of samples into a batch, as torch's default_collate: tensors and NumPy arrays
    are stacked along a new first dim; Python floats become a float64 tensor, ints int64, bools
    bool; strings stay a list; dicts, (named)tuples and lists are collated field by field; types
    registered in ``default_collate_fn_map`` go to their own function."""
    return collate(batch, collate_fn_map=default_collate_fn_map)
