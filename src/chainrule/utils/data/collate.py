"""default_collate / default_convert: how a DataLoader turns samples into batches, as
torch.utils.data's (tensors and NumPy arrays stacked on a new first dim, numbers to tensors,
strings kept, mappings and (named) tuples and lists collated field by field)."""

from __future__ import annotations

import collections.abc
import numbers

import numpy as np

from ... import _dtype
from ...tensor import Tensor

__all__ = ["default_collate", "default_convert"]


def _from_numpy(array: np.ndarray) -> Tensor:
    if array.dtype.kind in "SUO":
        raise TypeError(
            f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {array.dtype}")
    _dtype.from_numpy_dtype(array.dtype)  # TypeError for dtypes chainrule does not have
    return Tensor._make(np.ascontiguousarray(array))


def default_convert(data):
    """Turn NumPy arrays (also inside dicts, lists and tuples) into tensors; leave the rest alone."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind not in "SUO":
        return _from_numpy(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return type(data)({key: default_convert(data[key]) for key in data}) if isinstance(data, dict) \
            else {key: default_convert(data[key]) for key in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return [default_convert(d) for d in data]
    return data


def _stack(tensors: list) -> Tensor:
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


def default_collate(batch):
    """Merge a list of samples into a batch, as torch's default_collate: tensors and NumPy arrays
    are stacked along a new first dim; Python floats become a float64 tensor, ints int64, bools
    bool; strings stay a list; dicts, (named)tuples and lists are collated field by field."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "SUO":
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                            f"lists; found {elem.dtype}")
        return _stack([_from_numpy(np.asarray(b)) for b in batch])
    if isinstance(elem, np.generic):
        return _from_numpy(np.asarray(batch))
    if isinstance(elem, bool):
        return Tensor._make(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, float):
        return Tensor._make(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, int):
        return Tensor._make(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, numbers.Number):
        return Tensor._make(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        if isinstance(elem, dict) and type(elem) is not dict:
            try:
                return type(elem)(collated)
            except TypeError:
                return collated
        return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(samples) for samples in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem)}")
