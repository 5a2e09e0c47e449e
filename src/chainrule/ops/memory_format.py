"""Which memory layout an op hands back: torch's channels-last rules for (N, C, *S) arrays.

Many of torch's nn kernels (pooling, padding, normalisation, convolution) write their output in
the layout ``input.suggest_memory_format()`` names: channels-last ((N, *S, C) in memory) when the
input's strides order it so, contiguous otherwise. Ours compute in whatever layout suits NumPy and
lay the result out here, so ``out.stride()``, ``out.is_contiguous(memory_format=...)`` and
``out.view(...)`` answer as torch's do.
"""

from __future__ import annotations

from .._backend import array_module

# torch's stride-ordering walk, innermost dim first: channels, then the spatial dims from the last
_CHANNELS_LAST_WALK = {4: (1, 3, 2, 0), 5: (1, 4, 3, 2, 0)}


def is_channels_last(a) -> bool:
    """Whether ``a`` (N, C, *S) has (N, *S, C)-contiguous memory (size-1 dims' strides ignored)."""
    return a.transpose(0, *range(2, a.ndim), 1).flags.c_contiguous


def suggests_channels_last(a) -> bool:
    """torch's ``suggest_memory_format() == channels_last(_3d)``: a 4-d or 5-d array whose strides
    order it channels-last (``is_channels_last_strides_2d/3d``), a strided slice of one included.

    Ambiguous strides count as contiguous, as torch's: a zero-size dim, a zero channel stride, or
    N111-like tensors whose batch stride equals the channel stride."""
    walk = _CHANNELS_LAST_WALK.get(a.ndim)
    if walk is None:
        return False
    itemsize = a.itemsize or 1
    strides = [s // itemsize for s in a.strides]
    if strides[1] == 0:
        return False
    smallest = 0
    for d in walk:
        if a.shape[d] == 0 or strides[d] < smallest or (d == 0 and smallest == strides[1]):
            return False
        smallest = strides[d] * max(a.shape[d], 1)
    return True


def channels_last(a):
    """(N, C, *S) with (N, *S, C)-contiguous memory: ``a`` itself when it already is."""
    if is_channels_last(a):
        return a
    xp = array_module(a)
    d = a.ndim - 2
    return xp.ascontiguousarray(a.transpose(0, *range(2, d + 2), 1)).transpose(0, d + 1, *range(1, d + 1))


def in_suggested_format(out, like):
    """``out`` laid out as torch's kernels lay out an output for input ``like``: channels-last
    when ``like``'s strides suggest it (and ``out`` has its rank), contiguous otherwise."""
    if out.ndim == like.ndim and suggests_channels_last(like):
        return channels_last(out)
    return array_module(out).ascontiguousarray(out)


def full_in_suggested_format(shape: tuple, value, dtype, like):
    """``xp.full(shape, value)`` allocated in the layout ``in_suggested_format(·, like)`` would give,
    without the copy."""
    xp = array_module(like)
    if len(shape) == like.ndim and suggests_channels_last(like):
        d = len(shape) - 2
        return xp.full((shape[0], *shape[2:], shape[1]), value, dtype=dtype).transpose(0, d + 1, *range(1, d + 1))
    return xp.full(shape, value, dtype=dtype)


def in_stride_order(out, like):
    """``out`` laid out in ``like``'s stride order, as torch's TensorIterator lays out the output
    of an elementwise op of ``like`` (a strided or permuted input gives a dense output permuted alike)."""
    if out.strides == like.strides:
        return out
    laid_out = array_module(out).empty_like(like, dtype=out.dtype)  # order "K": like's stride order
    laid_out[...] = out
    return laid_out


def relaid_as_suggested(result, like, otherwise_stride_order: bool = False):
    """``result``, a tensor fresh from the op that made it (no view or other tensor shares its
    array), with its values laid out as ``in_suggested_format(·, like)`` says, or (with
    ``otherwise_stride_order``) in ``like``'s stride order where that suggests contiguous: for ops
    composed of elementwise steps whose output NumPy's layout rule lays out otherwise than torch's.
    The graph is untouched (no copy node); a wrapper subclass's result (its values live in the
    subclass) is left as its handler made it."""
    if getattr(type(result), "__torch_dispatch__", None) is not None:
        return result
    if otherwise_stride_order and not suggests_channels_last(like._data):
        result._data = in_stride_order(result._data, like._data)
    else:
        result._data = in_suggested_format(result._data, like._data)
    return result
