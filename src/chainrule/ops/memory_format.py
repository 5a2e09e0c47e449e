"""Which memory layout an op hands back: torch's channels-last rules for (N, C, *S) arrays.

Many of torch's nn kernels (pooling, padding, normalisation, convolution) write their output in
the layout ``input.suggest_memory_format()`` names: channels-last ((N, *S, C) in memory) when the
input's strides order it so, contiguous otherwise. Ours compute in whatever layout suits NumPy and
lay the result out here, so ``out.stride()``, ``out.is_contiguous(memory_format=...)`` and
``out.view(...)`` answer as torch's do.
"""

from __future__ import annotations

import numpy as np

from .._backend import (
    array_module,
    contiguous_strides,
    dense_non_overlapping,
    has_expanded_dims,
    strided_view,
    suggests_channels_last,
)
from ..storage import storage_root


def is_channels_last(a) -> bool:
    """Whether ``a`` (N, C, *S) has (N, *S, C)-contiguous memory (size-1 dims' strides ignored)."""
    return a.transpose(0, *range(2, a.ndim), 1).flags.c_contiguous


def channels_last(a):
    """(N, C, *S) with (N, *S, C)-contiguous memory and torch's strides for it, size-1 dims' too:
    ``a`` itself when it already has them, a view of it when only its size-1 dims' strides differ."""
    if is_channels_last(a):
        return _with_strides(a, channels_last_strides(a.shape, a.itemsize))
    xp = array_module(a)
    d = a.ndim - 2
    return xp.ascontiguousarray(a.transpose(0, *range(2, d + 2), 1)).transpose(0, d + 1, *range(1, d + 1))


def fresh_in_format(a, name: str):
    """A new array with ``a``'s values and the strides torch gives a fresh tensor of memory format
    ``name`` ("contiguous_format", "channels_last", "channels_last_3d"), size-1 dims included:
    (2, 3, 1, 1) channels-last is (3, 1, 3, 3), where NumPy's contiguity flags, which ignore
    size-1 dims, would keep a contiguous (3, 1, 1, 1)."""
    xp = array_module(a)
    if name == "contiguous_format":
        out = xp.empty(a.shape, dtype=a.dtype)
    else:
        d = a.ndim - 2
        out = xp.empty((a.shape[0], *a.shape[2:], a.shape[1]), dtype=a.dtype).transpose(0, d + 1, *range(1, d + 1))
    out[...] = a
    return out


def in_suggested_format(out, like):
    """``out`` laid out as torch's kernels lay out an output for input ``like``: channels-last
    when ``like``'s strides suggest it (and ``out`` has its rank), contiguous otherwise."""
    if out.ndim == like.ndim and suggests_channels_last(like):
        return channels_last(out)
    out = array_module(out).ascontiguousarray(out)
    # (NumPy's contiguity ignores size-1 dims' strides; a fresh torch tensor's are the dense ones)
    return _with_strides(out, torch_contiguous_strides(out.shape, out.itemsize)) if 1 in out.shape else out


def _with_strides(a, strides: tuple):
    """``a`` seen with byte ``strides`` that address its elements where its own do (they differ on
    size-1 dims only): a view, no copy; ``a`` itself when they are its own or it has no elements."""
    if a.strides == strides or not a.size:
        return a
    return strided_view(a, a.shape, strides)


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



def stride_order(ndim: int, order) -> list:
    """The dims innermost first, as ATen sorts them for a new tensor's strides: a stable insertion
    sort from the last dim by ``order(d0, d1)`` (1: d0 goes inside d1, -1: stays outside, 0: no
    opinion, which leaves the dims where they are)."""
    perm = list(range(ndim - 1, -1, -1))
    for i in range(1, ndim):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            comparison = order(perm[d0], perm[d1])
            if comparison > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif comparison < 0:
                break
    return perm


def iterator_dim_order(operand_strides: list, shape) -> list:
    """The dims innermost first, as TensorIterator's ``reorder_dimensions`` sorts them for its output:
    the first operand (of ``operand_strides``, each broadcast to ``shape``, 0 where broadcast) with
    different non-zero strides on two dims decides their order; equal strides put the shorter dim inner."""
    def order(d0, d1) -> int:
        for strides in operand_strides:
            s0, s1 = strides[d0], strides[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 != s1:
                return -1 if s0 < s1 else 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    return stride_order(len(shape), order)


def preserved_strides(a) -> tuple:
    """The strides (in elements) torch's preserve_format gives a new tensor like ``a`` (``empty_like``,
    ``clone``): ``a``'s own when it is dense and non-overlapping, size-1 dims' too, else dense strides
    in ``a``'s stride order (ATen's ``infer_dense_strides``: a stable insertion sort from the last dim,
    zero strides never moved, equal strides the shorter dim inner)."""
    itemsize = a.itemsize or 1
    strides = [st // itemsize for st in a.strides]
    shape = a.shape
    if dense_non_overlapping(a):
        return tuple(strides)

    def order(d0, d1) -> int:
        s0, s1 = strides[d0], strides[d1]
        if s0 == 0 or s1 == 0:
            return 0
        if s0 != s1:
            return -1 if s0 < s1 else 1
        return 1 if shape[d0] > shape[d1] else 0

    return contiguous_strides(shape, stride_order(a.ndim, order)[::-1])  # (stride_order: innermost first)


def preserved_layout(out, like):
    """``out``, a fresh array of ``like``'s shape, laid out as torch's preserve_format lays out a new
    tensor like ``like`` (``preserved_strides``): the layout of the ops torch writes into
    ``empty_like(input)`` (nan_to_num, deg2rad, angle), not TensorIterator's. A 1-d ``like`` has one
    layout but for a single element's stride, which torch keeps too."""
    if not out.size or out.ndim < 2 and out.shape != (1,):
        return out
    itemsize = out.itemsize
    byte_strides = tuple(st * itemsize for st in preserved_strides(like))
    if out.strides == byte_strides:
        return out
    if type(out) is np.ndarray and min(byte_strides) >= 0:  # (its base the buffer, which the engine may steal: _relaid)
        laid_out = np.ndarray(out.shape, out.dtype, buffer=np.empty(out.size, dtype=out.dtype), strides=byte_strides)
    else:
        laid_out = strided_view(array_module(out).empty(out.size, dtype=out.dtype), out.shape, byte_strides)
    laid_out[...] = out
    return laid_out


def kept_strides_layout(out, like):
    """``out``, a fresh array of ``like``'s shape, in ``like``'s own strides over memory of its own as long
    as ``like``'s extent: the layout of a torch view of ``like`` (conj's) where the values cannot share
    ``like``'s memory. None where ``like``'s strides cannot be kept so (an overlapping or negative one)."""
    if type(out) is not np.ndarray or not out.size:
        return None
    reach = 0  # (in elements: each stride past the inner dims' reach, so no two elements share one place)
    for n, st in sorted(((n, st // like.itemsize) for n, st in zip(like.shape, like.strides) if n != 1),
                        key=lambda dim: dim[1]):
        if st <= reach:
            return None
        reach += (n - 1) * st
    strides = tuple(st // like.itemsize * out.itemsize for st in like.strides)
    extent = reach + 1
    laid_out = np.ndarray(out.shape, out.dtype, buffer=np.empty(extent, dtype=out.dtype), strides=strides)
    laid_out[...] = out
    return laid_out


def copy_preserving_format(a):
    """A copy of ``a`` laid out as torch's preserve_format lays out ``a.clone()`` (``preserved_strides``)."""
    if a.size == 0 and type(a) is np.ndarray and any(a.strides) and min(a.strides) >= 0:
        return strided_view(a.copy(), a.shape, a.strides)  # an empty view's strides (NumPy's copy zeroes them)
    if a.flags.c_contiguous:  # row-major but for size-1 dims' strides: a plain copy, those strides set
        copied = a.copy()
        if copied.strides == a.strides or type(a) is not np.ndarray or not a.size or min(a.strides) < 0:
            return copied
        return strided_view(copied, a.shape, a.strides)
    if a.size == 0 or min(a.strides, default=0) < 0 or type(a) is not np.ndarray:
        return a.copy(order="K")  # (NumPy's negative strides: its own stride-keeping copy)
    copied = empty_preserving_format(a, a.dtype)
    copied[...] = a
    return copied


def empty_preserving_format(like, dtype):
    """An uninitialised NumPy array of ``like``'s shape and ``dtype`` with ``preserved_strides(like)``."""
    flat = np.empty(like.size, dtype=dtype)
    itemsize = flat.itemsize
    return strided_view(flat, like.shape, tuple(st * itemsize for st in preserved_strides(like)))


def clone_preserving_strides(a):
    """ATen's ``clone_preserve_strides`` (the copy the *_scatter ops write into): a copy of ``a``'s
    whole storage, viewed with ``a``'s strides and storage offset; an expanded ``a`` (or one NumPy
    cannot lay over a copied block) gets ``copy_preserving_format`` instead, as torch's falls back to clone()."""
    if type(a) is not np.ndarray or not a.size or has_expanded_dims(a) or min(a.strides) < 0:
        return copy_preserving_format(a)
    root, _ = storage_root(a)
    if type(root) is not np.ndarray or not root.flags.c_contiguous:
        return copy_preserving_format(a)
    byte_offset = a.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return np.ndarray(a.shape, a.dtype, buffer=root.copy(), offset=byte_offset, strides=a.strides)


def iterator_strides(shape: tuple, operands) -> tuple | None:
    """The strides (in elements) torch's TensorIterator gives the fresh output of an elementwise op
    of ``operands`` (arrays, in torch's operand order) broadcast to ``shape``; None for contiguous.

    TensorIterator's fast set-up first: operands of one shape, all contiguous (size-1 dims'
    strides ignored) give a contiguous output, all channels-last a channels-last one, all dense
    with equal strides those strides. Otherwise ``reorder_dimensions``: an insertion sort of the
    dims, innermost first, in which the first operand with different non-zero strides on two dims
    decides their order (a broadcast dim, a 0-d or size-1 operand's, has stride 0 and no say;
    equal strides put the shorter dim inner), and the output is dense in that order. NumPy's ufunc
    layout differs where operands disagree: it keeps row-major order, torch follows the first.
    """
    ndim = len(shape)
    if all(a.shape == shape for a in operands):
        if all(a.flags.c_contiguous for a in operands):
            return None
        if ndim == 4 and all(is_channels_last(a) for a in operands):
            n, c, h, w = shape
            return (h * w * c, 1, w * c, c)
        if ndim == 5 and all(is_channels_last(a) for a in operands):
            n, c, d, h, w = shape
            return (d * h * w * c, 1, h * w * c, w * c, c)
        # all dense with equal strides: the strides compared first, as an expanded operand (a
        # stride 0) differs there at once, and the density walk (a sort per operand) then never runs
        first = tuple(abs(st) // operands[0].itemsize for st in operands[0].strides)
        if all(tuple(abs(st) // a.itemsize for st in a.strides) == first for a in operands[1:]) and all(
                dense_non_overlapping(a) for a in operands):
            return first
    if ndim <= 1:
        return None
    if operands[0].shape == shape and _strictly_row_major(operands[0].strides):
        # the first operand orders every pair of dims by itself (reorder_dimensions reads the others
        # only where its strides tie or one is 0), and its order is row-major: the output is contiguous
        return None
    broadcast = []
    for a in operands:
        offset = ndim - a.ndim
        broadcast.append([0] * offset + [0 if n == 1 and shape[offset + i] != 1 else abs(st)
                                         for i, (n, st) in enumerate(zip(a.shape, a.strides))])

    perm = iterator_dim_order(broadcast, shape)
    if perm == list(range(ndim - 1, -1, -1)):
        return None
    strides, step = [0] * ndim, 1
    for d in perm:
        strides[d] = step
        step *= shape[d]
    return tuple(strides)


def _strictly_row_major(strides: tuple) -> bool:
    """Whether ``strides`` are positive and strictly decreasing (no two dims tie, none is broadcast)."""
    previous = strides[0]
    if previous <= 0:
        return False
    for stride in strides[1:]:
        if not 0 < stride < previous:
            return False
        previous = stride
    return True


def iterator_layout(out, a, b, c=None):
    """``out``, the result NumPy computed from operands ``a``, ``b`` (and ``c``), arrays in torch's
    operand order, laid out as torch's TensorIterator lays out that op's output
    (``iterator_strides``): ``out`` itself when it already is, a relaid copy otherwise. This runs on
    every binary op: a result of under two dims (one layout only) costs a read of its ``ndim``, one
    of row-major operands (``plain_rows``) a flag read and a look at the shape each. (+, -, *, /
    inline a flag read only, on their fast paths: a size-1 dim's view stride is left to NumPy there.)"""
    if out.ndim < 2 or plain_rows(a) and plain_rows(b) and (c is None or plain_rows(c)):
        return out  # (NumPy lays out the result of row-major operands row-major, as torch does)
    return _relaid(out, (a, b) if c is None else (a, b, c))


def number_layout(out, data):
    """``out``, the result of array ``data`` and a number, laid out as torch's TensorIterator lays
    it out: as NumPy does, but for a size-1 dim's stride, which torch sorts among the others (a
    (2, 3, 1, 10) of strides (30, 10, 1, 1) times 1.5 keeps them; NumPy's row-major result has
    (30, 10, 10, 1))."""
    if out.ndim < 2 or 1 not in out.shape or plain_rows(data):
        return out
    return iterator_layout(out, data, out.dtype.type(0))


def gradient_layout(out, grad, saved, saved_as_is: bool = True):
    """``out``, NumPy's result of a unary op's gradient rule run on the arrays of ``grad`` and the
    rule's one saved array ``saved`` (input or output, each of ``out``'s shape), laid out as torch's
    backward kernel over (grad, saved) lays it out (``iterator_strides``), which is what the rule's
    Tensor ops give. ``saved_as_is``: the kernel reads ``saved`` itself (log's grad / x) or its sum or
    product with a number (log1p's grad / (x + 1)), sorted by ``saved``'s strides, size-1 dims' too;
    else a same-shape op's fresh result of it (atan's grad / (x * x + 1)), row-major where ``saved``
    is. NumPy's layout differs only on a size-1 dim, whose stride row-major order leaves free and torch
    sorts among the others."""
    if 1 not in out.shape or out.ndim < 2 or not out.size:
        return out
    if not saved_as_is and saved.flags.c_contiguous:
        saved = row_major(saved)
    return iterator_layout(out, grad, saved)


def unary_layout(out, data):
    """``out``, NumPy's result of an elementwise op of array ``data`` alone, laid out as torch's
    TensorIterator lays out that op's output: fresh row-major for a row-major ``data`` (whatever its
    size-1 dims' strides: the caller's one flag read), channels-last (3-d too) for a channels-last one,
    ``data``'s own strides for any other dense one, else dense in the order of ``data``'s strides
    (``iterator_strides``). NumPy keeps ``data``'s order too, but not its size-1 dims' strides, and lays
    out an expanded ``data`` (a stride 0) by its own rule."""
    if out.ndim < 2:
        return out
    return _relaid(out, (data,))


def plain_rows(a) -> bool:
    """Whether ``a`` is row-major with a fresh tensor's stride on each size-1 dim (the product of
    the later dims' sizes). Row-major order leaves a size-1 dim's stride free, and a view's (a
    permuted (3, 1) as (1, 3) has strides (1, 1)) can give TensorIterator's sort of the dims
    another order than NumPy's: ``a.lerp(b, 0.5)`` of that and a 0-d ``b`` is (1, 1) in torch,
    (3, 1) row-major."""
    if not a.flags.c_contiguous:
        return False
    if 1 not in a.shape:
        return True
    step = a.itemsize
    for size, stride in zip(reversed(a.shape), reversed(a.strides)):
        if size == 1 and stride != step:
            return False
        step *= size
    return True


def _relaid(out, operands: tuple):
    if not out.size or out.ndim <= 1:
        return out
    strides = iterator_strides(out.shape, operands)
    if strides is None:
        return out if out.flags.c_contiguous else array_module(out).ascontiguousarray(out)
    itemsize = out.itemsize
    byte_strides = tuple(st * itemsize for st in strides)
    if out.strides == byte_strides:
        return out
    if type(out) is np.ndarray:
        # a view whose base is the buffer itself (as_strided's is a stand-in object): the engine may
        # then take it over as a leaf's .grad (engine._sole_view), as torch's AccumulateGrad takes a
        # fresh result in any layout that obeys the leaf's, rather than copy it into the leaf's
        laid_out = np.ndarray(out.shape, out.dtype, buffer=np.empty(out.size, dtype=out.dtype), strides=byte_strides)
    else:
        laid_out = strided_view(array_module(out).empty(out.size, dtype=out.dtype), out.shape, byte_strides)
    laid_out[...] = out
    return laid_out


def row_major(out):
    """``out`` as a row-major array with torch's contiguous strides: NumPy's row-major arrays may
    carry any stride on a size-1 dim (a reduction's kept dim keeps the reduced input's), where
    torch's contiguous tensors give it the product of the later dims' sizes (``x.sum(1,
    keepdim=True)`` of a channels-last (2, 3, 4, 5) is (20, 20, 5, 1), not (20, 1, 5, 1))."""
    out = (np.asarray if type(out) is np.ndarray else array_module(out).asarray)(out, order="C")
    if 1 in out.shape and out.ndim > 1 and out.size:
        return out.reshape(-1).reshape(out.shape)  # (a view; NumPy's reshape gives size-1 dims those strides)
    return out


def torch_contiguous_strides(shape: tuple, itemsize: int) -> tuple:
    """The byte strides torch gives a fresh contiguous tensor of ``shape`` (a 0-length dim counted
    as 1, so an empty tensor's strides are not all 0)."""
    return tuple(stride * itemsize for stride in contiguous_strides(shape))


def strided_empty(x):
    """``x`` itself, or, when it has no elements and NumPy's zeroed strides, ``x`` seen with the
    strides torch gives a fresh tensor of its shape: a view of it (a transpose, an expand, an
    unsqueeze) then transforms torch's strides as torch's views do (``zeros(0, 3).t().stride()``
    is (1, 3)), where NumPy's zeros would stay zeros."""
    if x.size or not x.ndim or any(x.strides) or type(x) is not np.ndarray:
        return x
    return strided_view(x, x.shape, torch_contiguous_strides(x.shape, x.itemsize))


def channels_last_strides(shape: tuple, itemsize: int) -> tuple:
    """The byte strides of torch's channels-last (N, C, *S) tensor: C innermost, then the spatial
    dims from the last, N outermost, each the extent of those inside it (a 0-length dim counted as
    0, as torch's ``get_channels_last_strides``: an empty batch's N stride is 0)."""
    strides, step = [0] * len(shape), itemsize
    for d in (1, *range(len(shape) - 1, 1, -1), 0):
        strides[d] = step
        step *= shape[d]
    return tuple(strides)
