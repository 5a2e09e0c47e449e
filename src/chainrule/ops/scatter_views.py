"""The scatter forms of torch's views, and as_strided.

``slice_scatter``, ``select_scatter`` and ``diagonal_scatter`` return a copy of ``input`` with the
region that ``input[slice]``, ``input.select(dim, index)`` or ``input.diagonal(...)`` would view
replaced by ``src`` (functionalised in-place writes: torch.func and torch.compile rewrite
``x[:, 1] = y`` into them). One Function serves the three; a ``_Region`` says where the region is.

``as_strided`` views the memory under ``input`` (its storage: the root array every view of it
shares) with any sizes, strides and offset; its gradient scatters back through storage positions.
``as_strided_scatter`` writes ``src`` through such a view of a copy of ``input``.
"""

from __future__ import annotations

import numpy as np

from .. import _vmap_frames
from .._backend import array_module
from ..autograd import function as _function
from ..autograd.function import Function, SavedValue
from ..storage import note_strided_view, storage_root
from ..tensor import Tensor, _int_sequence, _wrap_dim
from . import elementwise as _elementwise
from .linalg import _diagonal_index, diagonal
from .memory_format import clone_preserving_strides
from .shape import _share

__out_functions__ = {"slice_scatter": "same"}  # torch.slice_scatter's out= (see _arg_parser.namespace_with_out)
__all__ = ["slice_scatter", "select_scatter", "diagonal_scatter", "as_strided", "as_strided_scatter"]


class _Region:
    """Where a scatter op writes: ``key`` indexes the array after ``moveaxis`` of ``dims`` to the end
    (a diagonal) or as it is (a slice or a selected index); ``take`` reads the region from a Tensor
    with chainrule ops, so the gradient of ``src`` is recorded under create_graph."""

    def __init__(self, key, take, dims=None) -> None:
        self.key, self.take, self.dims = key, take, dims
        self.function = None  # the ViewScatter subclass writing it, set by _scatter

    def view(self, array):
        if self.dims is None:
            return array
        return array_module(array).moveaxis(array, self.dims, (-2, -1))


class ViewScatter(Function):
    """``input`` with a region replaced by ``src``; the three public ops are its subclasses by name."""

    _array_forward = True
    label = "view_scatter"
    rule = "∂/∂input = the gradient with the region zeroed; ∂/∂src = the gradient's region"
    formula = "{0} with a region set to {1}"

    @staticmethod
    def forward(ctx, x, src, region):
        ctx.region = region
        out = clone_preserving_strides(x)  # torch's copy: the input's strides and storage offset
        region.view(out)[region.key] = src
        return out

    @staticmethod
    def backward(ctx, grad):
        region = ctx.region
        grad_src = region.take(grad)
        # d out = d input off the region + d src on it
        grad_input = region.function.apply(grad, grad_src.new_zeros(grad_src.shape), region=region) \
            if ctx.needs_input_grad[0] else None
        return grad_input, grad_src


class SliceScatter(ViewScatter):
    node_name = "SliceScatterBackward0"
    label = "slice_scatter"


class SelectScatter(ViewScatter):
    node_name = "SelectScatterBackward0"
    label = "select_scatter"


class DiagonalScatter(ViewScatter):
    node_name = "DiagonalScatterBackward0"
    label = "diagonal_scatter"


def _scatter(cls, input: Tensor, src: Tensor, region: _Region, op: str) -> Tensor:
    for name, value in (("input", input), ("src", src)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(value).__name__}")
    expected = region.view(input._data)[region.key].shape
    if tuple(src._data.shape) != tuple(expected):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                           f"{list(src._data.shape)}, slice size = {list(expected)}")
    if src._data.dtype != input._data.dtype:
        src = _elementwise._cast(src, input.dtype)  # torch writes src in input's dtype, as copy_ does
    region.function = cls
    return cls.apply(input, src, region=region)


def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """torch.slice_scatter: a copy of ``input`` with ``input[..., start:end:step, ...]`` (along
    ``dim``) replaced by ``src``, which has that slice's shape."""
    if input._data.ndim == 0:
        raise IndexError("slice_scatter(): cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input._data.ndim, "slice_scatter")
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    key = (slice(None),) * d + (slice(start, end, step),)
    return _scatter(SliceScatter, input, src, _Region(key, lambda t: t[key]), "slice_scatter")


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """torch.select_scatter: a copy of ``input`` with ``input.select(dim, index)`` replaced by
    ``src`` (``input``'s shape without ``dim``)."""
    if input._data.ndim == 0:
        raise IndexError("select_scatter(): cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input._data.ndim, "select_scatter")
    size = input._data.shape[d]
    index = int(index)
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input._data.shape)} "
                         f"at dimension {d}")
    key = (slice(None),) * d + (index % size,)
    return _scatter(SelectScatter, input, src, _Region(key, lambda t: t[key]), "select_scatter")


def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """torch.diagonal_scatter: a copy of ``input`` with ``input.diagonal(offset, dim1, dim2)``
    replaced by ``src`` (the diagonal as the last dim, as ``diagonal`` returns it)."""
    ndim = input._data.ndim
    if ndim < 2:
        raise RuntimeError(f"diagonal_scatter(): expected a tensor with at least 2 dimensions, got {ndim}")
    d1, d2 = _wrap_dim(dim1, ndim, "diagonal_scatter"), _wrap_dim(dim2, ndim, "diagonal_scatter")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rows, cols = _diagonal_index(array_module(input), input._data.shape, int(offset), d1, d2)
    region = _Region((Ellipsis, rows, cols), lambda t: diagonal(t, offset, d1, d2), dims=(d1, d2))
    return _scatter(DiagonalScatter, input, src, region, "diagonal_scatter")


# ---------------------------------------------------------------- as_strided
def _positions(xp, size: tuple, stride: tuple, offset: int):
    """The storage position of every element of a (size, stride, offset) view, in its shape."""
    positions = xp.full(size, offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        positions = positions + (xp.arange(n, dtype=np.int64) * s).reshape((n,) + (1,) * (len(size) - d - 1))
    return positions


class AsStrided(Function):
    _array_forward = True
    node_name = "AsStridedBackward0"
    saved_attributes = {"_saved_size": SavedValue(lambda node: tuple(node.geometry[3])),
                        "_saved_stride": SavedValue(lambda node: tuple(node.geometry[4])),
                        # torch saves the optional argument as given: None when left out
                        "_saved_storage_offset": SavedValue(lambda node: node.geometry[5] if node.offset_given
                                                            else None)}
    label = "as_strided"
    rule = ("adds each output element's gradient into the storage position it reads (overlaps summed), "
            "then reads the input's positions back")
    formula = "as_strided({0})"

    @staticmethod
    def forward(ctx, x, size, stride, storage_offset, offset_given=True):
        xp = array_module(x)
        root, input_offset = storage_root(x)
        ctx.offset_given = offset_given
        flat = _storage_as(root, x.dtype)
        ctx.geometry = (x.shape, tuple(s // x.itemsize for s in x.strides), input_offset, size, stride,
                        storage_offset, flat.size)
        out = xp.lib.stride_tricks.as_strided(flat[storage_offset:], size, tuple(s * x.itemsize for s in stride))
        note_strided_view(out, root)  # CuPy's result has no base: its storage is still root's
        return out

    @staticmethod
    def backward(ctx, grad):
        from .creation import zeros

        input_shape, input_stride, input_offset, size, stride, storage_offset, storage_size = ctx.geometry
        xp = array_module(grad)
        read = Tensor._make(_positions(xp, size, stride, storage_offset).reshape(-1))
        back = Tensor._make(_positions(xp, input_shape, input_stride, input_offset).reshape(-1))
        # linear in grad, written with index ops so create_graph records it
        storage = zeros(storage_size, dtype=grad.dtype, device=grad.device).index_add(0, read, grad.reshape(-1))
        return storage.index_select(0, back).reshape(input_shape)


def _storage_as(root, dtype):
    """The storage under ``root`` (one contiguous block) as a flat array of ``dtype``: a tensor viewed
    with another dtype (``x.view(torch.int16)``) strides its storage in its own elements, as torch's."""
    flat = root.reshape(-1)
    if flat.dtype == dtype:
        return flat
    raw = flat.view("u1")
    return raw[:raw.size - raw.size % dtype.itemsize].view(dtype)


def _strided_geometry(size, stride, storage_offset, own_offset: int, storage_size: int, itemsize: int):
    """``(size, stride, offset)`` as ints, with torch's checks against a storage of ``storage_size``
    elements (``own_offset`` the offset when ``storage_offset`` is None)."""
    size = _int_sequence(size, "as_strided")
    stride = _int_sequence(stride, "as_strided", "stride")
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape: sizes {list(size)}, strides {list(stride)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, got strides: "
                           f"{list(stride)}")
    offset = own_offset if storage_offset is None else int(storage_offset)
    if offset < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {offset}")
    needed = 0 if 0 in size else offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))
    if needed > storage_size:
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset}, and "
                           f"itemsize {itemsize} requiring a storage size of {needed * itemsize} are out of bounds "
                           f"for storage of size {storage_size * itemsize}")
    return tuple(size), tuple(stride), offset


def _vmap_slice_start(input: Tensor) -> int:
    """How far into its batched tensor's storage a slice that vmap handed the function starts (0
    for any other tensor): torch's vmap counts an explicit as_strided offset from there, as if
    each slice had a storage of its own."""
    start = 0
    for frame in reversed(_vmap_frames.running()):
        found = frame.storage_origin(input)
        if found is None or found[1] is None:
            break
        start += input.storage_offset() - found[0].storage_offset()
        input = found[0]
    return start


def as_strided(input: Tensor, size, stride, storage_offset: int | None = None) -> Tensor:
    """torch.as_strided: a view of ``input``'s storage with the given ``size``, ``stride`` (in
    elements) and ``storage_offset`` (``input``'s own offset by default). Writes through it reach
    ``input``; overlapping elements share memory, and their gradients add up."""
    if storage_offset is not None and _vmap_frames.running():
        storage_offset = storage_offset + _vmap_slice_start(input)
    if _function.active_dispatch is not None:  # (a wrapper's storage is its handler's, not its placeholder's)
        made = _function.argument_dispatch("as_strided", as_strided, (input, size, stride, storage_offset), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    root, own_offset = storage_root(input._data)
    storage_size = root.nbytes // input._data.itemsize  # in input's own elements (it may view another dtype)
    size, stride, offset = _strided_geometry(size, stride, storage_offset, own_offset, storage_size,
                                             input._data.itemsize)
    if not root.flags.c_contiguous:
        raise RuntimeError("as_strided: the storage under this tensor is not one contiguous block "
                           "(call .contiguous() first)")
    return _share(AsStrided.apply(input, size=size, stride=stride, storage_offset=offset,
                                  offset_given=storage_offset is not None), input)


def _preserved_clone(x):
    """torch's clone_preserve_strides of ``x`` (the copy as_strided_scatter writes into), with the flat
    storage under it in ``x``'s elements and the copy's storage offset and strides in elements."""
    out = clone_preserving_strides(x) if x.ndim else x.copy()  # (its stride check wants a dim)
    root, offset = storage_root(out)
    if not root.flags.c_contiguous:  # (a copy NumPy laid out its own way: a plain row-major one)
        out = array_module(x).ascontiguousarray(out)
        root, offset = storage_root(out)
    return out, _storage_as(root, out.dtype), offset, tuple(s // out.itemsize for s in out.strides)


class AsStridedScatter(Function):
    _array_forward = True
    node_name = "AsStridedScatterBackward0"
    label = "as_strided_scatter"
    rule = ("∂/∂input = the gradient with the elements at written storage positions zeroed; "
            "∂/∂src = the gradient read at the written positions (0 where no input element lies)")
    formula = "as_strided_scatter({0}, {1})"

    @staticmethod
    def forward(ctx, x, src, size, stride, storage_offset):
        xp = array_module(x)
        out, flat, out_offset, out_stride = _preserved_clone(x)
        # torch: clone.as_strided(size, stride, offset).copy_(src), the offset counted in the clone's
        # storage (the input's own offset by default): checked against that storage's size
        size, stride, offset = _strided_geometry(size, stride, storage_offset, out_offset, flat.size,
                                                 out.itemsize)
        if tuple(src.shape) != size:
            raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                               f"{list(src.shape)}, slice size = {list(size)}")
        flat[_positions(xp, size, stride, offset)] = src
        ctx.geometry = (size, stride, offset, out.shape, out_stride, out_offset, flat.size)
        return out

    @staticmethod
    def backward(ctx, grad):
        from .creation import zeros
        from .elementwise import where

        size, stride, offset, out_shape, out_stride, out_offset, storage_size = ctx.geometry
        xp = array_module(grad._data)
        # each output element's storage position in the clone, and the positions src was written to
        held = Tensor._make(_positions(xp, out_shape, out_stride, out_offset).reshape(-1))
        read = Tensor._make(_positions(xp, size, stride, offset).reshape(-1))
        grad_input = grad_src = None
        if ctx.needs_input_grad[0]:
            written = Tensor._make(xp.zeros(storage_size, dtype=bool)).index_fill(0, read, True)
            grad_input = where(written.index_select(0, held).reshape(out_shape), 0.0, grad)
        if ctx.needs_input_grad[1]:
            # the gradient laid into the clone's storage (positions no element holds stay 0), read at src's
            storage = zeros(storage_size, dtype=grad.dtype, device=grad.device).index_add(0, held, grad.reshape(-1))
            grad_src = storage.index_select(0, read).reshape(size)
        return grad_input, grad_src


def as_strided_scatter(input: Tensor, src: Tensor, size, stride, storage_offset: int | None = None) -> Tensor:
    """torch.as_strided_scatter: a copy of ``input`` (its whole storage copied, its strides and storage
    offset kept, as torch's clone_preserve_strides) with the elements that
    ``as_strided(size, stride, storage_offset)`` of that copy views replaced by ``src``: offsets count
    in the copied storage, so a sliced or transposed input is written where torch writes it."""
    for name, value in (("input", input), ("src", src)):
        if not isinstance(value, Tensor):
            raise TypeError(f"as_strided_scatter(): argument '{name}' must be Tensor, not {type(value).__name__}")
    if storage_offset is not None and _vmap_frames.running():
        storage_offset = storage_offset + _vmap_slice_start(input)  # as as_strided counts it under vmap
    if src._data.dtype != input._data.dtype:
        src = _elementwise._cast(src, input.dtype)  # written in input's dtype, as copy_ does
    return AsStridedScatter.apply(input, src, size=size, stride=stride, storage_offset=storage_offset)
