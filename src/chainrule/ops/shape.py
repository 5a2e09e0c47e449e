"""Shape ops. The view family (view, reshape, expand, transpose, permute, squeeze, unsqueeze,
flatten, unflatten) returns NumPy views that share the input's version counter, as torch's views
share storage; their gradients undo the reshaping.
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..tensor import Tensor, _wrap_dim
from .reduce import sum_to_shape

__all__ = ["reshape", "view", "view_as", "reshape_as", "expand", "expand_as", "broadcast_to",
           "transpose", "swapaxes", "swapdims", "permute", "t", "squeeze", "unsqueeze", "flatten",
           "unflatten", "movedim", "broadcast_tensors", "broadcast_shapes", "atleast_1d",
           "atleast_2d", "ravel", "clone", "contiguous", "cat", "concat", "concatenate", "stack",
           "unbind", "split", "chunk"]
__not_methods__ = {"cat", "concat", "concatenate", "stack", "broadcast_tensors", "broadcast_shapes"}


def _mark_view(out: Tensor, base: Tensor) -> Tensor:
    """Make ``out`` share ``base``'s version counter when it shares its memory."""
    if np.shares_memory(out._data, base._data) if out._data.size else False:
        out._version_box = base._version_box
        out._base = base if base._base is None else base._base
    return out


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        return tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from None


def _infer_shape(shape: tuple, numel: int, op: str) -> tuple:
    """Resolve one -1 and check the element count, with torch's error message."""
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


class Reshape(Function):
    _array_forward = True
    node_name = "ViewBackward0"

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape)


class UnsafeView(Reshape):
    node_name = "UnsafeViewBackward0"


def reshape(input: Tensor, *shape) -> Tensor:
    """torch.reshape: a view when the strides allow it, a copy otherwise."""
    shape = _infer_shape(_shape_arg(shape), input._data.size, "reshape")
    out = Reshape.apply(input, shape=shape)
    return _mark_view(out, input)


def view(input: Tensor, *shape) -> Tensor:
    """torch.Tensor.view: never copies; raises if the strides cannot express the new shape."""
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)) and hasattr(shape[0], "np"):
        raise NotImplementedError("view(dtype) is not supported; use .to(dtype)")
    shape = _infer_shape(_shape_arg(shape), input._data.size, "view")
    probe = input._data.view()
    try:
        probe.shape = shape
    except AttributeError:
        raise RuntimeError(
            f"view size is not compatible with input tensor's size and stride (shape "
            f"{list(input.shape)}, strides {list(input.stride())} -> {list(shape)}): at least one "
            "dimension spans across two contiguous subspaces. Use .reshape(...) instead."
        ) from None
    out = Reshape.apply(input, shape=shape)
    out._version_box = input._version_box
    out._base = input if input._base is None else input._base
    return out


def _share(self: Tensor, base: Tensor) -> Tensor:
    self._version_box = base._version_box
    self._base = base if base._base is None else base._base
    return self


Tensor._share = _share


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return view(input, tuple(other.shape))


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, tuple(other.shape))


def ravel(input: Tensor) -> Tensor:
    return reshape(input, -1)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    ndim = input._data.ndim
    if ndim == 0:
        return reshape(input, 1)
    start = _wrap_dim(start_dim, ndim, "flatten")
    end = _wrap_dim(end_dim, ndim, "flatten")
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = input._data.shape
    new_shape = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
    return reshape(input, new_shape)


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = _wrap_dim(dim, input._data.ndim, "unflatten")
    shape = input._data.shape
    sizes = tuple(sizes)
    if -1 in sizes:
        sizes = _infer_shape(sizes, shape[d], "unflatten")
    elif int(np.prod(sizes)) != shape[d]:
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
            f"({shape[d]}) in the input tensor"
        )
    return reshape(input, shape[:d] + sizes + shape[d + 1:])


class Expand(Function):
    _array_forward = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        # an expanded element is used once per copy: sum the copies' gradients
        return sum_to_shape(grad, ctx.input_shape)


def expand(input: Tensor, *sizes) -> Tensor:
    """torch.Tensor.expand: -1 keeps a dim; new leading dims may be added. Returns a view."""
    sizes = _shape_arg(sizes)
    shape = input._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
            f"number of dimensions in the tensor ({len(shape)})"
        )
    lead = len(sizes) - len(shape)
    target = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise RuntimeError(f"expand: the expanded size {s} is not allowed in a leading, non-existing dimension")
            target.append(s)
            continue
        current = shape[i - lead]
        if s == -1:
            s = current
        if current != s and current != 1:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({current}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(shape)}"
            )
        target.append(s)
    target = tuple(target)
    if target == shape:
        return input
    out = Expand.apply(input, shape=target)
    return _share(out, input)


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, tuple(other.shape))


def broadcast_to(input: Tensor, size) -> Tensor:
    return expand(input, tuple(size))


def broadcast_shapes(*shapes) -> tuple:
    from ..tensor import Size

    try:
        return Size(np.broadcast_shapes(*[tuple(s) if not isinstance(s, int) else (s,) for s in shapes]))
    except ValueError:
        raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape: {shapes}") from None


def broadcast_tensors(*tensors) -> tuple:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


class Permute(Function):
    _array_forward = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx, grad):
        return permute(grad, tuple(np.argsort(ctx.dims)))


class Transpose(Function):
    _array_forward = True

    @staticmethod
    def forward(ctx, x, dim0, dim1):
        ctx.swap = (dim0, dim1)
        return np.swapaxes(x, dim0, dim1)

    @staticmethod
    def backward(ctx, grad):
        return transpose(grad, *ctx.swap)


def permute(input: Tensor, *dims) -> Tensor:
    dims = _shape_arg(dims)
    ndim = input._data.ndim
    if len(dims) != ndim:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {ndim} is not equal "
            f"to len(dims) = {len(dims)}"
        )
    dims = tuple(_wrap_dim(d, ndim, "permute") for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return _share(Permute.apply(input, dims=dims), input)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    ndim = input._data.ndim
    if ndim == 0:
        _wrap_dim(dim0, 0, "transpose")
        _wrap_dim(dim1, 0, "transpose")
        return input
    d0, d1 = _wrap_dim(dim0, ndim, "transpose"), _wrap_dim(dim1, ndim, "transpose")
    return _share(Transpose.apply(input, dim0=d0, dim1=d1), input)


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    """torch.t: transpose of a <= 2-D tensor."""
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input._data.ndim}D")
    return transpose(input, 0, 1) if input._data.ndim == 2 else input


def movedim(input: Tensor, source, destination) -> Tensor:
    ndim = input._data.ndim
    source = [source] if isinstance(source, int) else list(source)
    destination = [destination] if isinstance(destination, int) else list(destination)
    order = [d for d in range(ndim) if d not in [_wrap_dim(s, ndim) for s in source]]
    for dest, src in sorted(zip([_wrap_dim(d, ndim) for d in destination], [_wrap_dim(s, ndim) for s in source])):
        order.insert(dest, src)
    return permute(input, tuple(order))


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Remove size-1 dims (all, one, or a tuple of them); other dims are left alone."""
    shape = input._data.shape
    if dim is None:
        dims = tuple(i for i, s in enumerate(shape) if s == 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = tuple(_wrap_dim(d, len(shape), "squeeze") for d in dims) if shape else ()
        dims = tuple(d for d in dims if shape[d] == 1)
    return reshape(input, tuple(s for i, s in enumerate(shape) if i not in dims))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    ndim = input._data.ndim
    d = _wrap_dim(dim, ndim + 1, "unsqueeze")
    shape = input._data.shape
    return reshape(input, shape[:d] + (1,) + shape[d:])


def atleast_1d(input: Tensor) -> Tensor:
    return reshape(input, 1) if input._data.ndim == 0 else input


def atleast_2d(input: Tensor) -> Tensor:
    if input._data.ndim >= 2:
        return input
    return reshape(input, (1,) + input._data.shape if input._data.ndim else (1, 1))


class Clone(Function):
    _array_forward = True

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    """A copy that stays in the graph (gradient passes through unchanged)."""
    return Clone.apply(input)


def contiguous(input: Tensor, memory_format=None) -> Tensor:
    """``input`` itself when C-contiguous, else a contiguous copy in the graph."""
    if input._data.flags.c_contiguous:
        return input
    return Clone.apply(input)


class Cat(Function):
    _array_forward = True

    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.dim = dim
        ctx.sizes = [a.shape[dim] for a in arrays]
        return np.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        # each input gets back its own slab of the gradient
        return tuple(split(grad, ctx.sizes, ctx.dim))


def _tensor_list(tensors, op: str) -> list:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}(): argument 'tensors' must be tuple of Tensors, not {type(tensors).__name__}")
    if len(tensors) == 0:
        raise RuntimeError(f"{op}(): expected a non-empty list of Tensors")
    return list(tensors)


def cat(tensors, dim: int = 0, *, out=None) -> Tensor:
    """torch.cat: join along an existing dim; all other dims must match; dtypes promote."""
    from .elementwise import _cast
    from .._dtype import result_type

    tensors = _tensor_list(tensors, "cat")
    # torch skips legacy empty 1-D tensors of shape (0,) when joining
    tensors = [t for t in tensors if not (t._data.ndim == 1 and t._data.shape[0] == 0)] or tensors[:1]
    ref = tensors[0]
    if ref._data.ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = _wrap_dim(dim, ref._data.ndim, "cat")
    for i, t in enumerate(tensors):
        if t._data.ndim != ref._data.ndim:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {ref._data.ndim} and {t._data.ndim}")
        for k, (a, b) in enumerate(zip(ref._data.shape, t._data.shape)):
            if k != d and a != b:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size {a} but got "
                    f"size {b} for tensor number {i} in the list.")
    dtype = result_type(*tensors)
    tensors = [_cast(t, dtype) for t in tensors]
    return Cat.apply(*tensors, dim=d)


concat = concatenate = cat


def stack(tensors, dim: int = 0, *, out=None) -> Tensor:
    """torch.stack: join along a new dim; all shapes must be equal."""
    tensors = _tensor_list(tensors, "stack")
    shape = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 and "
                f"{list(t._data.shape)} at entry {i}")
    d = _wrap_dim(dim, len(shape) + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """torch.split: equal chunks of ``split_size`` (last may be smaller) or explicit sizes."""
    d = _wrap_dim(dim, tensor._data.ndim, "split")
    length = tensor._data.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and length:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {length}")
        sizes = [size] * (length // size) + ([length % size] if length % size else []) if size else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != length:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {length} (input tensor's size "
                f"at dimension {d}), but got split_sizes={sizes}")
    pieces = []
    start = 0
    for size in sizes:
        key = (slice(None),) * d + (slice(start, start + size),)
        pieces.append(tensor[key])
        start += size
    return tuple(pieces)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """torch.chunk: at most ``chunks`` pieces of ceil(size / chunks)."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _wrap_dim(dim, input._data.ndim, "chunk")
    length = input._data.shape[d]
    size = -(-length // chunks) if length else 0
    if size == 0:
        return tuple(split(input, [0] * chunks if length == 0 else [length], d))
    return split(input, size, d)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """torch.unbind: the slices along ``dim``, each without that dim."""
    d = _wrap_dim(dim, input._data.ndim, "unbind")
    return tuple(input[(slice(None),) * d + (i,)] for i in range(input._data.shape[d]))
