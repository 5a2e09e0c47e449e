"""torch._utils: the tensor-rebuilding functions a checkpoint's pickle names, for code that calls
them itself rather than through ``torch.load``.

Checkpoint readers that load lazily (Lightning Fabric's ``_lazy_load``, lit-gpt's) unpickle with
their own ``find_class``: a tensor is first rebuilt over a storage on the 'meta' device (shape and
dtype, no data) and read from its record only when used, by ``_rebuild_tensor_v2`` over a
``TypedStorage`` that wraps the record's bytes. ``torch.load`` itself does not come here (its
reader checks every number of the file: chainrule._torch_zip).
"""

from __future__ import annotations

import warnings

import numpy as np

from . import _dtype
from ._torch_function import user_stacklevel
from .storage import TypedStorage
from .tensor import Tensor

__all__: list[str] = []


def _element_size(dtype: _dtype.dtype) -> int:
    """Bytes per element of ``dtype``."""
    return dtype.itemsize


def _rebuild_tensor(storage: TypedStorage, storage_offset: int, size, stride) -> Tensor:
    """A tensor of ``size`` and ``stride`` (in elements) viewing ``storage`` from ``storage_offset``;
    over a 'meta' storage, a meta tensor (its shape and dtype only, as torch's)."""
    if not isinstance(storage, TypedStorage):
        raise TypeError(f"_rebuild_tensor: expected a TypedStorage, got {type(storage).__name__}")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"_rebuild_tensor: size {size} and stride {stride} differ in length")
    if storage.device.type == "meta":
        from .ops.compat import empty_strided

        return empty_strided(size, stride, dtype=storage.dtype, device="meta")
    flat = storage._root.reshape(-1)
    needed = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if 0 not in size else 0
    if needed > flat.size:
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset "
                           f"{storage_offset} need {needed} elements, but the storage has {flat.size}")
    if 0 in size:
        return Tensor._make(np.empty(size, dtype=flat.dtype))
    view = np.lib.stride_tricks.as_strided(flat[storage_offset:], shape=size,
                                           strides=tuple(s * flat.itemsize for s in stride))
    return Tensor._make(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> Tensor:
    """``_rebuild_tensor`` with the tensor's ``requires_grad`` set (backward hooks, which torch
    keeps only for the pickle's sake, and metadata are not carried)."""
    tensor = _rebuild_tensor(storage, storage_offset, size, stride)
    tensor.requires_grad = bool(requires_grad)
    return tensor


def _rebuild_parameter(data: Tensor, requires_grad: bool, backward_hooks=None):
    """A Parameter over ``data``."""
    from .nn.parameter import Parameter

    return Parameter(data, requires_grad)


def is_compiling() -> bool:
    """torch.compiler.is_compiling() under its old name, which torch deprecates: a UserWarning (torch's
    TorchScript-friendly ``warnings.warn`` without a category) at the caller's line."""
    from . import compiler  # above this module: compiler imports nn

    warnings.warn("`torch._utils.is_compiling` is deprecated. Use `torch.compiler.is_compiling` instead.",
                  stacklevel=user_stacklevel())
    return compiler.is_compiling()
