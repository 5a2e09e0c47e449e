"""Pooling: max/avg pool 1d/2d/3d, adaptive avg/max pool 1d/2d, max_unpool1d/2d — one N-d code.

Windows are strided views of the padded input, never copies: a pool visits its K kernel offsets
one vectorised slice at a time (K passes over the output, no Python loop over pixels).

* max pool keeps, per window, the *first* maximum (torch's rule; NaN wins, and of several NaNs
  the last, as in torch), routes the gradient there, and reports torch's indices: the flat index
  into each input plane. Without indices the forward keeps only the max, and the backward finds
  each window's maximum again by comparing the saved input with it (torch keeps the input too).
* avg pool is linear: its backward is its adjoint (the gradient spread over each window), and
  the adjoint's backward is the pool again, so double backward is exact.
* adaptive pools use torch's windows ``[floor(i·L/out), ceil((i+1)·L/out))``; adaptive avg pool
  multiplies each spatial dim by a constant averaging matrix (BLAS; its adjoint uses the
  transposes), global pooling is a mean; adaptive max pool gathers the windows once and keeps
  flat indices (its backward is one ``np.bincount`` scatter-add, max_unpool a scatter).

Tie/edge policy: max pool routes the whole gradient to the first maximum of a window (the last
NaN if it holds NaN), matching torch; padding never wins, not even a window of ``-inf`` (torch's
index is then the window's first input element; torch requires ``padding <= kernel_size / 2``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _config, _dtype
from .._backend import array_module
from .._opmath import cpu_autocast_policy
from .._parallel import over_rows
from ..autograd import function as _function
from ..autograd.function import Function, SavedValue, ctx_value, kept_value, name_node, saved
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.profiler import composite_range
from ..tensor import Tensor
from ._arg_parser import check_bool, int_list
from .memory_format import in_suggested_format, relaid_as_suggested, suggests_channels_last
from .second_order import recorded_against

__all__ = [
    "max_pool1d", "max_pool1d_with_indices", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "max_unpool1d", "max_unpool2d",
]
__not_methods__ = set(__all__)


# ---------------------------------------------------------------- geometry
class _PoolGeometry:
    """Kernel, stride, padding, dilation, input/output spatial shapes and the ceil-mode overhang."""

    __slots__ = ("kernel", "stride", "padding", "dilation", "in_shape", "out_shape", "pad_hi", "ceil_mode",
                 "stride_defaulted")

    def __init__(self, kernel, stride, padding, dilation, in_shape, ceil_mode: bool):
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.ceil_mode = ceil_mode
        self.stride_defaulted = False  # no stride given: the kernel's (torch's _saved_stride is then ())
        self.in_shape = in_shape
        out = []
        for n, k, s, p, dl in zip(in_shape, kernel, stride, padding, dilation):
            span = n + 2 * p - dl * (k - 1) - 1
            m = (-(-span // s) if ceil_mode else span // s) + 1
            if ceil_mode and (m - 1) * s >= n + p:  # the last window must start inside input or left pad
                m -= 1
            out.append(m)
        self.out_shape = tuple(out)
        # right padding needed so that every window of the view lies in the buffer
        self.pad_hi = tuple(max(p, (m - 1) * s + dl * (k - 1) + 1 - n - p)
                            for n, k, s, p, dl, m in zip(in_shape, kernel, stride, padding, dilation, out))

    def padded_shape(self) -> tuple:
        return tuple(n + p + hi for n, p, hi in zip(self.in_shape, self.padding, self.pad_hi))

    def with_unit_height(self) -> _PoolGeometry:
        """This 1-d geometry as the 2-d one torch pools it with: a height-1 window over a height-1 plane
        (its 2-d kernel is then given every value, the stride included, so none counts as defaulted)."""
        return _PoolGeometry((1, *self.kernel), (1, *self.stride), (0, *self.padding), (1, *self.dilation),
                             (1, *self.in_shape), self.ceil_mode)

    def non_overlapping(self) -> bool:
        return all(s >= dl * (k - 1) + 1 for k, s, dl in zip(self.kernel, self.stride, self.dilation))


def _pad(x: np.ndarray, geo: _PoolGeometry, value) -> np.ndarray:
    xp = array_module(x)
    if not any(geo.padding) and not any(hi for hi in geo.pad_hi):
        return x
    lead = x.ndim - len(geo.kernel)
    out = xp.full(x.shape[:lead] + geo.padded_shape(), value, dtype=x.dtype)
    out[(slice(None),) * lead + tuple(slice(p, p + n) for p, n in zip(geo.padding, geo.in_shape))] = x
    return out


def _offset_view(padded: np.ndarray, geo: _PoolGeometry, offset: tuple) -> np.ndarray:
    """The (N, C, *out) strided view of the padded input at one kernel offset."""
    lead = padded.ndim - len(geo.kernel)
    return padded[(slice(None),) * lead + tuple(
        slice(k * dl, k * dl + s * (m - 1) + 1, s)
        for k, dl, s, m in zip(offset, geo.dilation, geo.stride, geo.out_shape))]


def _crop(padded: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    lead = padded.ndim - len(geo.kernel)
    return padded[(slice(None),) * lead + tuple(slice(p, p + n) for p, n in zip(geo.padding, geo.in_shape))]


def _lowest(dtype):
    return -np.inf if dtype.kind in "fV" else np.iinfo(dtype).min


# ---------------------------------------------------------------- max pool
def _over_leading_rows(work, rows: int, elements: int, xp) -> None:
    """``work(start, stop)`` over the leading (batch) axis: on the CPU in pieces on the thread
    budget (NumPy's elementwise passes run on one core, GIL released); each row goes through the
    same passes either way, so the result is the same."""
    if xp is np:
        over_rows(work, rows, elements)
    else:
        work(0, rows)


def _max_pool(x: np.ndarray, geo: _PoolGeometry, with_offsets: bool):
    """Max of every window and, if ``with_offsets``, the kernel offset (0..K-1) of its first
    maximum, which torch's indices point at; else None in its place."""
    xp = array_module(x)
    lead = x.shape[: x.ndim - len(geo.kernel)]
    kernel_size = math.prod(geo.kernel)
    best = xp.empty(lead + geo.out_shape, dtype=x.dtype)  # contiguous, as torch's output is
    which = xp.empty(best.shape, dtype=np.int8 if kernel_size < 128 else np.int64) if with_offsets else None

    def pool_rows(start: int, stop: int) -> None:
        views = _offset_views(x[start:stop], geo)
        rows_best = best[start:stop]
        rows_best[...] = views[0]
        for view in views[1:]:
            xp.maximum(rows_best, view, out=rows_best)  # NaN propagates, as in torch
        if which is not None:
            rows_which = which[start:stop]
            rows_which[...] = 0
            for i, hit in enumerate(_first_max_hits(views, rows_best, geo)):
                if i:
                    rows_which += hit * which.dtype.type(i)  # one hit per window: the sum is its offset
    _over_leading_rows(pool_rows, best.shape[0], best.size * kernel_size, xp)
    if which is not None and any(geo.padding):
        empty = _empty_windows(geo, xp)
        if empty is not None:
            xp.copyto(which, empty[1].astype(which.dtype), where=empty[0])
    return best, which


def _empty_windows(geo: _PoolGeometry, xp):
    """The windows that hold no input element (wholly in the padding, as a dilated window over a
    tiny input can be), with the kernel offset torch's index points at there: per dim the first
    position at or past 0, stepping by the dilation, even where that lies past the input — torch's
    kernel starts its maximum's index there and visits nothing. (mask, offsets) broadcastable to the
    output plane, or None when every window holds input."""
    # (a window starting in the left padding is the only kind that can miss the input: a few Python
    # ints say whether any does, before any array is made)
    if not any(start + -(start // dl) * dl >= n
               for n, s, p, dl, m in zip(geo.in_shape, geo.stride, geo.padding, geo.dilation, geo.out_shape)
               for start in range(-p, min(0, (m - 1) * s - p + 1), s)):
        return None
    d = len(geo.kernel)
    empty = offsets = None
    step = 1
    for i in reversed(range(d)):
        n, s, p, dl, m = geo.in_shape[i], geo.stride[i], geo.padding[i], geo.dilation[i], geo.out_shape[i]
        start = np.arange(m, dtype=np.int64) * s - p
        first = np.where(start < 0, -(start // dl), 0)  # ceil(-start / dl) where the window starts in the padding
        shape = (-1,) + (1,) * (d - 1 - i)
        along = (start + first * dl >= n).reshape(shape)
        empty = along if empty is None else empty | along
        offsets = (first * step).reshape(shape) if offsets is None else offsets + (first * step).reshape(shape)
        step *= geo.kernel[i]
    if not empty.any():
        return None
    return xp.asarray(empty), xp.asarray(offsets)


def _offset_views(x: np.ndarray, geo: _PoolGeometry) -> list:
    """The window views of x padded with the lowest value, one per kernel offset, in raster order."""
    padded = _pad(x, geo, _lowest(x.dtype))
    return [_offset_view(padded, geo, offset) for offset in np.ndindex(*geo.kernel)]


def _inside_input(geo: _PoolGeometry, offset: tuple, xp):
    """Which windows hold the input (not padding) at this kernel offset: a mask broadcastable to
    the output plane."""
    inside = None
    d = len(geo.kernel)
    for i, (n, s, p, dl, m, k) in enumerate(zip(geo.in_shape, geo.stride, geo.padding, geo.dilation,
                                                geo.out_shape, offset)):
        position = xp.arange(m) * s - p + k * dl
        along = ((position >= 0) & (position < n)).reshape((-1,) + (1,) * (d - 1 - i))
        inside = along if inside is None else inside & along
    return inside


def _only_first(masks: list, last: bool = False) -> None:
    """In place: wherever several of ``masks`` are True, keep only the first (or ``last``) one."""
    xp = array_module(masks[0])
    order = masks[::-1] if last else masks
    taken = order[0]
    for i, mask in enumerate(order[1:]):
        xp.greater(mask, taken, out=mask)  # mask & ~taken
        if i < len(order) - 2:  # the union so far; a fresh array, the masks are the result
            taken = taken | mask if i == 0 else xp.bitwise_or(taken, mask, out=taken)


def _first_max_hits(views: list, best: np.ndarray, geo: _PoolGeometry) -> list:
    """Per kernel offset, the windows whose first maximum lies there: torch's rule, one place for
    the indices (forward) and the gradient (backward). Each window is hit exactly once."""
    xp = array_module(best)
    hits = [view == best for view in views]
    if any(geo.padding) or any(geo.pad_hi):
        # padding ties with a window of -inf (or the integer minimum) and must not win: torch's
        # index is then the window's first input element
        for hit, offset in zip(hits, np.ndindex(*geo.kernel)):
            hit &= _inside_input(geo, offset, xp)
    _only_first(hits)
    # NaN windows equal nothing; torch takes every NaN it meets (``val > max || isnan(val)``), so
    # its index is the window's LAST NaN. On a device this runs unconditionally: testing for NaN
    # first would sync to the host. Padding is never NaN.
    if best.dtype.kind in "fV" and (xp is not np or xp.isnan(best).any()):
        nans = [xp.isnan(view) for view in views]
        _only_first(nans, last=True)
        for hit, nan in zip(hits, nans):
            hit |= nan
    return hits


def _kept_bits(values: np.ndarray, mask: np.ndarray, out=None) -> np.ndarray:
    """The bits of ``values`` where ``mask``, else of +0: a bitwise AND with 0 or all ones, as
    integers of the values' width (``out``, if given, is written through the same view). Branch-free:
    a masked copy (np.copyto, np.where) of a random mask — ties, ReLU zeros — runs 10-20x slower on
    mispredicted branches, and a product would turn 0 * inf into NaN."""
    xp = array_module(values)
    bits = np.dtype(f"i{values.dtype.itemsize}")
    return xp.bitwise_and(values.view(bits), xp.negative(mask.view(np.int8)),
                          out=None if out is None else out.view(bits))


def _tiles_input(geo: _PoolGeometry) -> bool:
    """Windows side by side, no gaps or overlaps, covering the input exactly (MaxPool2d(2) on even
    sizes): every input element is written once by a scatter."""
    return all(dl * (k - 1) + 1 == s and m * s == n and p == 0
               for n, k, s, p, dl, m in zip(geo.in_shape, geo.kernel, geo.stride, geo.padding, geo.dilation,
                                            geo.out_shape))


def _first_max_scatter(grad: np.ndarray, x: np.ndarray, best: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """max pool's backward from its input and output, as torch's uses its input: each window's
    gradient to its first maximum, found again by comparing each kernel offset with the max."""
    xp = array_module(x)
    lead = grad.shape[: grad.ndim - len(geo.kernel)]
    out = (xp.empty if _tiles_input(geo) else xp.zeros)(lead + geo.padded_shape(), dtype=grad.dtype)
    overlap = not geo.non_overlapping()
    offsets = list(np.ndindex(*geo.kernel))

    def scatter_rows(start: int, stop: int) -> None:
        rows_out, rows_grad = out[start:stop], grad[start:stop]
        hits = _first_max_hits(_offset_views(x[start:stop], geo), best[start:stop], geo)
        for offset, hit in zip(offsets, hits):
            target = _offset_view(rows_out, geo, offset)
            if overlap:
                target += _kept_bits(rows_grad, hit).view(grad.dtype)
            else:  # each input element lies in one window at most: written once, never added
                _kept_bits(rows_grad, hit, out=target)

    _over_leading_rows(scatter_rows, out.shape[0], grad.size * len(offsets), xp)
    return xp.ascontiguousarray(_crop(out, geo))  # (contiguous, as torch's: a padded buffer's crop is not)


def _flat_indices(which: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Window-offset indices → torch's indices (flat position in each unpadded input plane)."""
    xp = array_module(which)
    d = len(geo.kernel)
    flat = xp.zeros(which.shape, dtype=np.int64)
    rest = which.astype(np.int64)
    plane_stride = 1
    for i in reversed(range(d)):
        k_i = rest % geo.kernel[i]
        rest //= geo.kernel[i]
        start = xp.arange(geo.out_shape[i], dtype=np.int64) * geo.stride[i] - geo.padding[i]
        coord = start.reshape((-1,) + (1,) * (d - 1 - i)) + k_i * geo.dilation[i]
        flat += coord * plane_stride
        plane_stride *= geo.in_shape[i]
    return flat


def _window_scatter(grad: np.ndarray, which: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Send each window's gradient to its chosen offset: K masked strided adds, no np.add.at."""
    xp = array_module(grad)
    lead = grad.shape[: grad.ndim - len(geo.kernel)]
    out = xp.zeros(lead + geo.padded_shape(), dtype=grad.dtype)
    overlap = not geo.non_overlapping()
    offsets = list(np.ndindex(*geo.kernel))

    def scatter_rows(start: int, stop: int) -> None:
        rows, grad_rows, which_rows = out[start:stop], grad[start:stop], which[start:stop]
        for i, offset in enumerate(offsets):
            target = _offset_view(rows, geo, offset)
            if overlap:
                target += _kept_bits(grad_rows, which_rows == i).view(grad.dtype)
            else:  # each input element lies in one window at most: written once, never added
                _kept_bits(grad_rows, which_rows == i, out=target)

    _over_leading_rows(scatter_rows, out.shape[0], grad.size * len(offsets), xp)
    return xp.ascontiguousarray(_crop(out, geo))  # (contiguous, as torch's: a padded buffer's crop is not)


def _window_gather(x: np.ndarray, which: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """The adjoint of ``_window_scatter``: each window's value at its chosen offset."""
    xp = array_module(x)
    padded = _pad(x, geo, 0)
    out = xp.zeros(which.shape, dtype=x.dtype)
    out_bits = out.view(np.dtype(f"i{x.dtype.itemsize}"))
    for i, offset in enumerate(np.ndindex(*geo.kernel)):
        # one offset per window is chosen: OR-ing the kept bits puts its value there exactly
        xp.bitwise_or(out_bits, _kept_bits(_offset_view(padded, geo, offset), which == i), out=out_bits)
    return out


class MaxPool(Function):
    _array_forward = True
    node_name = "MaxPool2DWithIndicesBackward0"  # torch's name; 1-d and 3-d subclasses below
    label = "max_pool"
    rule = "routes each window's gradient to its maximum (the first one on a tie)"
    # torch's grad_fn._saved_* names
    saved_attributes = {
        "_saved_ceil_mode": ctx_value("geo", lambda geo: geo.ceil_mode),
        "_saved_dilation": ctx_value("geo", lambda geo: tuple(geo.dilation)),
        "_saved_kernel_size": ctx_value("geo", lambda geo: tuple(geo.kernel)),
        "_saved_padding": ctx_value("geo", lambda geo: tuple(geo.padding)),
        "_saved_result1": SavedValue(lambda node: Tensor._make(_flat_indices(
            node.which if node.which is not None else _max_pool(node.saved_values[0]._data, node.geo,
                                                                 with_offsets=True)[1], node.geo)), tensor=True),
        "_saved_self": saved(0),
        "_saved_stride": ctx_value("geo", lambda geo: () if geo.stride_defaulted else tuple(geo.stride)),
    }

    @staticmethod
    def forward(ctx, x, geo, return_indices, follow_layout=False):
        # only indices need the offsets of the maxima: the backward finds them again from the
        # input and the output, as torch's does (so inference and training skip that work)
        y, which = _max_pool(x, geo, with_offsets=return_indices)
        if follow_layout:  # torch's 2-d and 3-d kernels write output and indices channels-last for such input
            y = in_suggested_format(y, x)
        if ctx.needs_input_grad[0]:  # keep nothing on the shared no-grad ctx
            ctx.geo, ctx.which, ctx.follow_layout = geo, which, follow_layout
            # as torch does: an in-place change of x is caught, one of y is allowed (torch
            # saves no output), so y is kept unsaved with its version counter, set by
            # _max_poolnd, to tell whether the backward must find the maxima again
            ctx.save_for_backward(x)
            if which is None:
                ctx.best, ctx.best_version = y, None
        if return_indices:
            indices = _flat_indices(which, geo)
            if follow_layout:
                indices = in_suggested_format(indices, x)
            ctx.mark_non_differentiable(indices)
            return y, indices
        return y

    @staticmethod
    def backward(ctx, grad, *unused):
        # y = x[argmax window]  ⇒  x̄ = ḡ routed to the first maximum of each window
        if ctx.which is None:
            (x,) = ctx.saved_values
            best = ctx.best
            if ctx.best_version is None or ctx.best_version[0] != 0:  # y was written in place
                best = _max_pool(x._data, ctx.geo, with_offsets=False)[0]
            return _as_input_suggests(ctx, recorded_against(
                FirstMaxScatter.apply(grad, x=x._data, best=best, geo=ctx.geo), x,
                node=type(ctx).__name__.removesuffix("0") + "Backward0"), x)
        (x,) = ctx.saved_values
        return _as_input_suggests(ctx, recorded_against(WindowScatter.apply(grad, which=ctx.which, geo=ctx.geo), x,
                                                        node=type(ctx).__name__.removesuffix("0") + "Backward0"), x)


def _as_input_suggests(ctx, grad_input: Tensor, x: Tensor) -> Tensor:
    """torch's 2-d and 3-d pooling backward kernels allocate the input's gradient in the memory
    format the input suggests (channels-last for a channels-last input, whatever the incoming
    gradient's layout), with a fresh tensor's strides on size-1 dims."""
    return relaid_as_suggested(grad_input, x) if ctx.follow_layout else grad_input


class FirstMaxScatter(Function):
    _array_forward = True
    node_name = "MaxPoolWithIndicesBackwardBackward0"
    label = "max_pool_backward"
    rule = ("sends each window's gradient to its first maximum, found by comparing the input with the "
            "window's max (max_pool's backward, recorded as an op under create_graph)")

    @staticmethod
    def forward(ctx, grad, x, best, geo):
        if ctx.needs_input_grad[0]:
            ctx.x, ctx.geo = x, geo
        return _first_max_scatter(grad, x, best, geo)

    @staticmethod
    def backward(ctx, grad):
        # the adjoint of a scatter is the gather at the same positions (found the forward's way)
        _, which = _max_pool(ctx.x, ctx.geo, with_offsets=True)
        return WindowGather.apply(grad, which=which, geo=ctx.geo)


class WindowScatter(Function):
    _array_forward = True
    node_name = "MaxPoolWithIndicesBackwardBackward0"
    label = "max_pool_backward"
    rule = ("reads the gradient back at each window's maximum (max_pool's backward, recorded as an op "
            "under create_graph)")

    @staticmethod
    def forward(ctx, grad, which, geo):
        if ctx.needs_input_grad[0]:
            ctx.which, ctx.geo = which, geo
        return _window_scatter(grad, which, geo)

    @staticmethod
    def backward(ctx, grad):
        # the adjoint of a scatter is the gather at the same positions
        return WindowGather.apply(grad, which=ctx.which, geo=ctx.geo)


class WindowGather(Function):
    label = "window_gather"
    rule = "scatters the gradient back to the positions it read in each window (max_pool double backward)"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, which, geo):
        if ctx.needs_input_grad[0]:
            ctx.which, ctx.geo = which, geo
        return _window_gather(x, which, geo)

    @staticmethod
    def backward(ctx, grad):
        # the adjoint of a gather is the scatter to the same positions
        return WindowScatter.apply(grad, which=ctx.which, geo=ctx.geo)


# ---------------------------------------------------------------- avg pool
def _divisor(xp, geo: _PoolGeometry, count_include_pad: bool, divisor_override, dtype) -> np.ndarray:
    """torch's per-window divisor, as a product of per-dim counts (broadcastable to the output)."""
    if divisor_override is not None:
        return xp.full((), divisor_override, dtype=dtype)
    d = len(geo.kernel)
    divisor = xp.ones((1,) * d, dtype=dtype)
    for i, (n, k, s, p, m) in enumerate(zip(geo.in_shape, geo.kernel, geo.stride, geo.padding, geo.out_shape)):
        start = xp.arange(m) * s - p
        end = xp.minimum(start + k, n + p)
        if count_include_pad:
            count = end - start
        else:
            count = xp.minimum(end, n) - xp.maximum(start, 0)
        divisor = divisor * count.reshape((1,) * i + (-1,) + (1,) * (d - 1 - i)).astype(dtype)
    return divisor


def _window_sum(x: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Sum over each window: K strided slice adds (measured ~15× faster than reshape-and-sum)."""
    xp = array_module(x)
    padded = _pad(x, geo, 0)
    offsets = list(np.ndindex(*geo.kernel))
    out = xp.array(_offset_view(padded, geo, offsets[0]), order="C")  # contiguous, as torch's output
    for offset in offsets[1:]:
        out += _offset_view(padded, geo, offset)
    return out


def _window_spread(grad: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """The adjoint of ``_window_sum``: every window position receives its window's value."""
    xp = array_module(grad)
    lead = grad.shape[: grad.ndim - len(geo.kernel)]
    out = xp.zeros(lead + geo.padded_shape(), dtype=grad.dtype)
    overlap = not geo.non_overlapping()
    for offset in np.ndindex(*geo.kernel):
        target = _offset_view(out, geo, offset)
        if overlap:
            target += grad
        else:
            target[...] = grad
    return xp.ascontiguousarray(_crop(out, geo))


class AvgPool(Function):
    _array_forward = True
    node_name = "AvgPool2DBackward0"  # torch's name; 1-d and 3-d subclasses below
    label = "avg_pool"
    rule = ("spreads each window's gradient evenly over it: 1/divisor each (the window size unless "
            "padding is excluded or the divisor overridden)")
    # torch's grad_fn._saved_* names
    saved_attributes = {
        "_saved_ceil_mode": ctx_value("geo", lambda geo: geo.ceil_mode),
        "_saved_count_include_pad": ctx_value("count_include_pad"),
        "_saved_divisor_override": ctx_value("divisor_override"),
        "_saved_kernel_size": ctx_value("geo", lambda geo: tuple(geo.kernel)),
        "_saved_padding": ctx_value("geo", lambda geo: tuple(geo.padding)),
        "_saved_self": saved(0),
        "_saved_stride": ctx_value("geo", lambda geo: () if geo.stride_defaulted else tuple(geo.stride)),
    }

    @staticmethod
    def forward(ctx, x, geo, divisor, count_include_pad=True, divisor_override=None, follow_layout=False):
        if ctx.needs_input_grad[0]:
            ctx.geo, ctx.divisor = geo, divisor
            ctx.count_include_pad, ctx.divisor_override = count_include_pad, divisor_override
            ctx.follow_layout = follow_layout
            ctx.save_for_backward(x)  # torch's avg_pool keeps its input (_saved_self), version-checked
        out = (_window_sum(x, geo) / divisor).astype(x.dtype, copy=False)
        return in_suggested_format(out, x) if follow_layout else out

    @staticmethod
    def backward(ctx, grad):
        # y = A x is linear  ⇒  x̄ = Aᵀ ḡ (each window's gradient / divisor spread over it)
        (x,) = ctx.saved_values
        return _as_input_suggests(ctx, recorded_against(AvgPoolAdjoint.apply(grad, geo=ctx.geo, divisor=ctx.divisor), x,
                                                        node=type(ctx).__name__.removesuffix("0") + "Backward0"), x)


class AvgPoolAdjoint(Function):
    _array_forward = True
    node_name = "AvgPoolBackwardBackward0"
    label = "avg_pool_backward"
    rule = ("average-pools the gradient over the same windows (avg_pool's backward, recorded as an op "
            "under create_graph)")

    @staticmethod
    def forward(ctx, grad, geo, divisor):
        if ctx.needs_input_grad[0]:
            ctx.geo, ctx.divisor = geo, divisor
        return _window_spread((grad / divisor).astype(grad.dtype, copy=False), geo)

    @staticmethod
    def backward(ctx, grad):
        # (Aᵀ)ᵀ = A
        return AvgPool.apply(grad, geo=ctx.geo, divisor=ctx.divisor)


# torch names the node after the pool's dimension (MaxPool2DWithIndicesBackward0); it has no 1-d
# node: a 1-d pool that records one runs as the 2-d pool on a unit height (see _max_poolnd)
_MAX_POOL = {2: MaxPool, 3: type(MaxPool)("MaxPool3D", (MaxPool,), {"node_name": "MaxPool3DWithIndicesBackward0"})}
_AVG_POOL = {2: AvgPool, 3: type(AvgPool)("AvgPool3D", (AvgPool,), {"node_name": "AvgPool3DBackward0"})}


# ---------------------------------------------------------------- flat-index scatter / gather
def _flat_scatter(values: np.ndarray, indices: np.ndarray, plane_shape: tuple) -> np.ndarray:
    """(*lead, *out) values added at flat plane ``indices`` of (*lead, *plane_shape): one bincount."""
    xp = array_module(values)
    lead = values.shape[:values.ndim - len(plane_shape)]
    planes = math.prod(lead)
    size = math.prod(plane_shape)
    idx = indices.reshape(planes, math.prod(indices.shape[len(lead):])) + (xp.arange(planes, dtype=np.int64) * size)[:, None]
    summed = xp.bincount(idx.ravel(), weights=values.reshape(-1).astype(np.float64, copy=False),
                         minlength=planes * size)
    return summed.astype(values.dtype, copy=False).reshape(lead + tuple(plane_shape))


def _flat_gather(x: np.ndarray, indices: np.ndarray, plane_ndim: int) -> np.ndarray:
    """(*lead, *plane) → (*lead, *out), ``plane_ndim`` dims to a plane: each plane read at its flat ``indices``."""
    xp = array_module(x)
    # (the sizes spelled out: -1 cannot be inferred where there are no planes, a batch of 0)
    planes = math.prod(x.shape[:x.ndim - plane_ndim])
    flat = x.reshape(planes, math.prod(x.shape[x.ndim - plane_ndim:]))
    return xp.take_along_axis(flat, indices.reshape(planes, math.prod(indices.shape[indices.ndim - plane_ndim:])),
                              axis=1).reshape(indices.shape)


class FlatScatter(Function):
    _array_forward = True
    node_name = "MaxUnpool2DBackward0"
    label = "max_unpool"
    rule = "reads the gradient back at the positions the values were written to"

    @staticmethod
    def forward(ctx, values, indices, plane_shape, assign=False, follow_layout=False):
        xp = array_module(values)
        if ctx.needs_input_grad[0]:
            ctx.indices, ctx.plane_ndim = indices, len(plane_shape)
        if assign:
            # max_unpool writes (torch's kernel assigns; repeated indices carry the same max)
            lead = values.shape[:values.ndim - len(plane_shape)]
            planes = math.prod(lead)
            out = xp.zeros((planes, math.prod(plane_shape)), dtype=values.dtype)
            if out.size:  # (an empty output has nothing to put, and no -1 to reshape by)
                xp.put_along_axis(out, indices.reshape(planes, -1), values.reshape(planes, -1), axis=1)
            out = out.reshape(lead + tuple(plane_shape))
            return in_suggested_format(out, values) if follow_layout else out
        return _flat_scatter(values, indices, plane_shape)

    @staticmethod
    def backward(ctx, grad):
        # adjoint of a scatter: gather at the same flat positions
        return FlatGather.apply(grad, indices=ctx.indices, plane_ndim=ctx.plane_ndim)


class FlatGather(Function):
    _array_forward = True
    node_name = "AdaptiveMaxPool2DBackward0"
    label = "adaptive_max_pool"
    rule = "routes each cell's gradient to its maximum"

    @staticmethod
    def forward(ctx, x, indices, follow_layout=False, plane_ndim=None):
        plane_ndim = x.ndim - 2 if plane_ndim is None else plane_ndim  # (N, C, *plane) unless told
        out = gathered(ctx, x, indices, plane_ndim)
        return in_suggested_format(out, x) if follow_layout else out

    @staticmethod
    def backward(ctx, grad):
        return scattered_back(ctx, grad)


def gathered(ctx, x, indices, plane_ndim: int, with_indices: bool = False):
    """``x`` read at each plane's flat ``indices`` (a max pool's maxima), keeping what
    ``scattered_back`` needs when ``x`` needs a gradient; ``with_indices``: the node also returns the
    indices, whose gradient is never read (so not made zeros)."""
    if ctx.needs_input_grad[0]:
        ctx.indices, ctx.plane = indices, x.shape[x.ndim - plane_ndim:]
        ctx.save_for_backward(x)  # as torch's node keeps self: the second order's edge to it
        if with_indices:
            ctx.set_materialize_grads(False)
    return _flat_gather(x, indices, plane_ndim)


def scattered_back(ctx, grad):
    """The adjoint of ``gathered``: ``grad`` scatter-added to the same flat positions, recorded
    against the saved input under the gathering node's name."""
    return recorded_against(FlatScatter.apply(grad, indices=ctx.indices, plane_shape=ctx.plane), *ctx.saved_values,
                            node=type(ctx).__name__.removesuffix("0") + "Backward0")


# ---------------------------------------------------------------- public functions
# torch's words for a pool argument of the wrong length: each kernel phrases its own
_LENGTH_WORDS = {
    name: {"kernel_size": "must either be a single int", "stride": "must either be omitted, a single int",
           "padding": "must either be a single int", "dilation": "must be either a single int"}
    for name in ("avg_pool2d", "max_pool2d", "max_pool3d")
}
_LENGTH_WORDS["avg_pool3d"] = {"kernel_size": "must be a single int", "stride": "must be omitted, a single int",
                               "padding": "must be a single int"}
# torch's max_pool1d (no indices) is its own kernel, wording each length in its own way
_MAX_POOL1D_LENGTH_WORDS = {"kernel_size": "must be an int, list of ints or tuple of ints",
                            "stride": "must be None, an int, list of ints, or tuple of ints",
                            "padding": "must be an int, list of ints, or tuple of ints",
                            "dilation": "must be an int, list of ints or tuple of ints"}
# the 1-d pools torch checks by check1d before it pools them as 2-d (``max_pool1d_with_indices``
# is max_pool1d with indices, named max_pool1d in torch's words)
_CHECK_1D = {"avg_pool1d": "avg_pool1d", "max_pool1d_with_indices": "max_pool1d"}


def _tuple(value, d: int, name: str, opname: str, int64: bool = True) -> tuple:
    value = int_list(value, opname, name, int64=int64)
    if len(value) == 1:
        return value * d
    if len(value) != d:
        if opname in _CHECK_1D:
            raise RuntimeError(f"{_CHECK_1D[opname]}() argument '{name}' should contain one int (got {len(value)})")
        if opname == "max_pool1d":
            raise RuntimeError(f"max_pool1d() {name} {_MAX_POOL1D_LENGTH_WORDS[name]} of size 1 but got size "
                               f"{len(value)}")
        words = _LENGTH_WORDS.get(opname, {}).get(name)
        if words is not None:
            raise RuntimeError(f"{opname}: {name} {words}, or a tuple of {('two', 'three')[d - 2]} ints")
        raise RuntimeError(f"{opname}: {name} must either be a single int, or a tuple of {d} ints")
    return value


def _c_half(n: int) -> int:
    """``n / 2`` as C++ divides integers: toward zero."""
    return -(-n // 2) if n < 0 else n // 2


def _named_sizes(letter: str, values: tuple) -> str:
    """torch's "kH: 2 kW: 3" naming of a pool's per-dim values; a 1-d pool runs as 2-d with height 1."""
    values = (1,) * (2 - len(values)) + tuple(values)
    return " ".join(f"{letter}{axis}: {v}" for axis, v in zip("THW"[-len(values):], values))


# torch's checkDimRange, which its 1-d pools (avg_pool1d, max_pool1d_with_indices, the adaptive ones) use
_CHECK_DIM_RANGE = ("Expected 2 to 3 dimensions, but got {ndim}-dimensional tensor for argument #1 'self' "
                    "(while checking arguments for {op})")
# torch's words for an input of the wrong rank differ between its pooling kernels
_RANK_MESSAGES = {
    "max_pool2d": "non-empty 3D or 4D (batch mode) tensor expected for input",
    "max_pool3d": "non-empty 4D or 5D (batch mode) tensor expected for input",
    "avg_pool3d": "non-empty 4D or 5D (batch mode) tensor expected for input",
    "avg_pool1d": _CHECK_DIM_RANGE,
}


def _unbatched(input: Tensor, d: int, opname: str) -> bool:
    """Whether ``input`` is one sample (no batch dim), after torch's check of its type and rank. torch's
    kernels pool such input as it is, so chainrule's do too: no Unsqueeze/Squeeze node around the pool."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{opname}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.ndim == d + 1:
        return True
    if input.ndim != d + 2:
        if opname == "avg_pool2d" and input.ndim < 3:
            # torch's avg_pool2d reads input.size(-3) before it checks the rank
            top = max(input.ndim, 1)
            raise IndexError(f"Dimension out of range (expected to be in range of [{-top}, {top - 1}], but got -3)")
        default = (f"Expected {d + 1}D or {d + 2}D (batch mode) tensor with optional 0 dim batch size for input, "
                   f"but got:{list(input.shape)}")
        message = _RANK_MESSAGES.get(opname, default).format(ndim=input.ndim, op=opname)
        # of torch's pools only max_pool1d puts its name before the message
        raise RuntimeError(f"{opname}: {message}" if opname == "max_pool1d" else message)
    return False


def _check_nonempty_planes(input: Tensor, d: int, opname: str) -> None:
    """torch pools no empty plane: every dim but the batch dim has elements (``input`` as given)."""
    shape = list(input.shape)
    if opname == "max_pool1d_with_indices":  # checked by torch's 2-d kernel, after a unit height is inserted
        shape.insert(len(shape) - 1, 1)
        d = 2
    first_plane_dim = 1 if len(shape) == d + 2 else 0
    empty = [i for i in range(first_plane_dim, len(shape)) if shape[i] == 0]
    if not empty:
        return
    if opname in ("max_pool3d", "avg_pool3d"):
        # torch's pool3d_shape_check names the dim by its size, so always "dimension 0"
        kernel = "max_pool3d_with_indices_out_cpu_template" if opname == "max_pool3d" else opname
        raise RuntimeError(f"{kernel}(): Expected input's non-batch dimensions to have positive length, but input "
                           f"has a shape of {shape} and non-batch dimension {shape[empty[0]]} has length zero!")
    prefix = f"{opname}: " if opname == "max_pool1d" else ""
    raise RuntimeError(f"{prefix}Expected {d + 1}D or {d + 2}D (batch mode) tensor with optional 0 dim batch size "
                       f"for input, but got:{shape}")


def _pool_geometry(input: Tensor, kernel_size, stride, padding, dilation, ceil_mode, d: int,
                   opname: str, given: Tensor | None = None) -> _PoolGeometry:
    """The pool's geometry after torch's checks, in torch's order; ``given``: the input as the user
    passed it (unbatched or not), whose planes must not be empty."""
    kernel = _tuple(kernel_size, d, "kernel_size", opname)
    # torch's default stride (None or an empty list) is the kernel size
    stride_defaulted = stride is None or int_list(stride, opname, "stride") == ()
    stride = kernel if stride_defaulted else _tuple(stride, d, "stride", opname)
    padding = _tuple(padding, d, "padding", opname)
    dilation = _tuple(dilation, d, "dilation", opname)
    check_bool(ceil_mode, opname, "ceil_mode")
    # max_pool1d is its own kernel in torch, with its own wording ("max_pool1d() stride must be ...")
    own_1d = opname == "max_pool1d"
    if not own_1d:
        # torch's order: each dim's output size first (pooling_output_shape checks the stride is not
        # zero and the padding), then pool2d/3d_shape_check's kernel, stride and dilation
        for k, st, p, dl in zip(kernel, stride, padding, dilation):
            if st == 0:
                raise RuntimeError("stride should not be zero")
            if p < 0:
                raise RuntimeError(f"pad must be non-negative, but got pad: {p}")
            if p > _c_half((k - 1) * dl + 1):
                raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                                   f"kernel_size={k} and dilation={dl}")
        if any(k <= 0 for k in kernel):
            raise RuntimeError(f"kernel size should be greater than zero, but got {_named_sizes('k', kernel)}")
        if any(st <= 0 for st in stride):
            raise RuntimeError(f"stride should be greater than zero, but got {_named_sizes('d', stride)}")
    else:
        (k,), (st,), (p,), (dl,) = kernel, stride, padding, dilation
        # max_pool1d_impl's checks, in its order (its padding bound is half the kernel, not the dilated one)
        for holds, words in ((k > 0, f"kernel_size must be greater than zero, but got {k}"),
                             (st > 0, f"stride must be greater than zero, but got {st}"),
                             (p >= 0, f"padding must be non-negative, but got {p}"),
                             (p <= k // 2, f"padding should be at most half of kernel size, but got padding={p} and "
                                           f"kernel_size={k}"),
                             (dl > 0, f"dilation must be greater than zero, but got {dl}")):
            if not holds:
                raise RuntimeError(f"{opname}() {words}")
    if any(dl <= 0 for dl in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {_named_sizes('dilation', dilation)}")
    if given is not None:
        _check_nonempty_planes(given, d, opname)
    plane = tuple(input.shape[-d:])
    if opname == "avg_pool3d" and any(m < k for m, k in zip(plane, kernel)):
        # torch's pool3d_shape_check asks this of the average pool only, padding or not
        raise RuntimeError(f"input image (T: {plane[0]} H: {plane[1]} W: {plane[2]}) smaller than kernel size "
                           f"(kT: {kernel[0]} kH: {kernel[1]} kW: {kernel[2]})")
    geo = _PoolGeometry(kernel, stride, padding, dilation, tuple(input.shape[-d:]), ceil_mode)
    geo.stride_defaulted = stride_defaulted
    if own_1d and geo.out_shape[0] <= 0:
        raise RuntimeError(f"{opname}() Invalid computed output size: {geo.out_shape[0]}")
    if any(m <= 0 for m in geo.out_shape):
        channels = input.shape[-d - 1]
        # torch pools one dim (avg_pool1d, lp_pool1d) as two with a unit height, and says so: (2x1x3)
        unit = (1,) if d == 1 else ()
        raise RuntimeError(f"Given input size: ({'x'.join(map(str, (channels, *unit, *geo.in_shape)))}). Calculated "
                           f"output size: ({'x'.join(map(str, (channels, *unit, *geo.out_shape)))}). "
                           f"Output size is too small")
    return geo


def _refuse_dtype(input: Tensor, kernel: str, refused: str) -> None:
    """torch's error for a pooling kernel with no instance for the input's dtype, when its
    category is among ``refused``: "b" bool, "c" complex, "i" integers, "h" float16/bfloat16.
    A 2-d kernel given a channels-last (N, C, H, W) input is torch's ``<kernel>_channels_last``."""
    array = input._data
    kind = array.dtype.kind
    category = "i" if kind == "u" else "h" if kind == "V" or (kind == "f" and array.dtype.itemsize == 2) else kind
    if category in refused:
        if kernel.endswith("2d") and array.ndim == 4 and suggests_channels_last(array):
            kernel += "_channels_last"
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(input.dtype)}'")


def refuse_avg_pool_dtype(input: Tensor, d: int) -> None:
    """torch's average pools take int64 but no other integer, no bool or complex. (Its 3-d one takes no
    float16/bfloat16 either, which chainrule computes: the documented difference of tests/test_bfloat16.py.)"""
    other_integer = input._data.dtype.kind in "iu" and input._data.dtype != np.int64
    _refuse_dtype(input, "avg_pool3d_out_frame" if d == 3 else "avg_pool2d", "bc" + "i" * other_integer)


def _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, d, opname):
    if d == 1 and return_indices and isinstance(input, Tensor) and input.ndim not in (2, 3):
        # with indices torch's 1-d max pool is max_pool1d_with_indices, which checks by checkDimRange
        raise RuntimeError(_CHECK_DIM_RANGE.format(ndim=input.ndim, op=opname))
    if d > 1 and isinstance(input, Tensor) and input.ndim not in (d + 1, d + 2):
        # torch's 2-d and 3-d max pools check their arguments' lengths before the input's rank
        for name, value in (("kernel_size", kernel_size), ("stride", stride), ("padding", padding),
                            ("dilation", dilation)):
            if not (name == "stride" and (stride is None or int_list(stride, opname, name) == ())):
                _tuple(value, d, name, opname)
    x, unbatched = input, _unbatched(input, d, opname)
    # (with indices torch's 1-d max pool is max_pool1d_with_indices, checked as avg_pool1d and pooled as 2-d)
    geometry_name = "max_pool1d_with_indices" if d == 1 and return_indices else opname
    geo = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, d, geometry_name, given=input)
    # torch's max pools take every real dtype but bool; the plain 1-d one (no indices) no integers. The
    # refusal is the kernel's dispatch, so it comes after every check of the geometry and the output size
    _refuse_dtype(input, "max_pool3d" if d == 3 else "max_pool2d" if d == 2 or return_indices else "max_pool1d_impl",
                  "bc" if d > 1 or return_indices else "bci")
    if d == 3 and unbatched and suggests_channels_last(input._data):
        # torch's 3-d kernel switches on the input's suggested format: an unbatched (C, D, H, W) one
        # strided channels-last (2-d) is neither of its two
        raise RuntimeError("Unsupported memory format. Supports only ChannelsLast3d, Contiguous")
    # torch's max_pool1d_with_indices (taken with indices or for a gradient) is max_pool2d_with_indices on
    # input.unsqueeze(-2), squeezed after: Unsqueeze -> MaxPool2DWithIndices -> Squeeze nodes, 2-d layout
    # and so is the plain one wherever torch's composite takes the input as subclass-like: under a dispatch
    # mode (or beside a live wrapper), which then sees those ops
    unit_height = d == 1 and (return_indices or (is_grad_enabled() and x.requires_grad)
                              or _function.active_dispatch is not None)
    if unit_height:
        x, geo = x.unsqueeze(-2), geo.with_unit_height()
    # torch's 2-d and 3-d kernels lay a batched output out as the input suggests
    # (a 1-d pool without a unit height records no node: the 2-d class pools its rows as they are)
    # (torch's max_pool1d_with_indices squeezes the indices too, which a mode sees, even where max_pool1d drops them)
    with_indices = bool(return_indices) or (unit_height and _function.active_dispatch is not None)
    out = _MAX_POOL[max(d, 2)].apply(x, geo=geo, return_indices=with_indices,
                                     follow_layout=(d > 1 or unit_height) and not unbatched)
    if not with_indices and out.grad_fn is not None:
        out.grad_fn.best_version = out._version_box  # shared by out's views: any write through them bumps it
    if unit_height:
        if with_indices:
            out = tuple(o.squeeze(-2) for o in out)
            return out if return_indices else out[0]
        return out.squeeze(-2)
    return out


@composite_range("aten::max_pool1d", 6, unless="return_indices")
def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """torch.nn.functional.max_pool1d: (N, C, L) → (N, C, L_out); indices are flat per plane."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False) -> tuple:
    """torch.max_pool1d_with_indices: max_pool1d's values and their flat positions in each plane
    (torch's binding defaults ``stride`` to ``[]``, the kernel size)."""
    stride = None if isinstance(stride, (list, tuple)) and not stride else stride
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, True, 1, "max_pool1d")


@composite_range("aten::max_pool2d", 6, unless="return_indices")
def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """torch.nn.functional.max_pool2d: (N, C, H, W) → (N, C, H_out, W_out); gradient to the first max."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


@cpu_autocast_policy("float32")
@composite_range("aten::max_pool3d", 6, unless="return_indices")
def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """torch.nn.functional.max_pool3d: (N, C, D, H, W) → (N, C, *out)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3, "max_pool3d")


def _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, d, opname):
    x, unbatched = input, _unbatched(input, d, opname)
    geo = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, d, opname, given=input)
    if d == 3 and any(n < k for n, k in zip(geo.in_shape, geo.kernel)):
        # avg_pool3d's own check (torch's 1-d and 2-d pools take a kernel past the input when padded)
        raise RuntimeError(f"input image (T: {geo.in_shape[0]} H: {geo.in_shape[1]} W: {geo.in_shape[2]}) smaller "
                           f"than kernel size (kT: {geo.kernel[0]} kH: {geo.kernel[1]} kW: {geo.kernel[2]})")
    check_bool(count_include_pad, opname, "count_include_pad")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    refuse_avg_pool_dtype(input, d)
    if x._data.dtype == np.int64:
        # torch's int64 kernel divides each window's exact sum by the divisor, truncating toward
        # zero; sums of int64 inputs are exact in float64 up to 2**53
        return _avg_poolnd(x.double(), kernel_size, stride, padding, ceil_mode, count_include_pad,
                           divisor_override, d, opname).trunc().long()
    # torch's avg_pool1d is avg_pool2d on input.unsqueeze(-2), squeezed after: Unsqueeze -> AvgPool2D ->
    # Squeeze nodes, 2-d layout
    unit_height = d == 1
    if unit_height:
        x, geo = x.unsqueeze(-2), geo.with_unit_height()
    divisor = _divisor(array_module(x), geo, count_include_pad, divisor_override, x._data.dtype)
    # torch's 2-d kernel lays a batched output out as the input suggests; its 3-d one writes it contiguous
    out = _AVG_POOL[max(d, 2)].apply(x, geo=geo, divisor=divisor, count_include_pad=count_include_pad,
                                     divisor_override=divisor_override, follow_layout=(d == 2 or unit_height) and not unbatched)
    return out.squeeze(-2) if unit_height else out


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """torch.nn.functional.avg_pool1d: mean over each window of (N, C, L)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """torch.nn.functional.avg_pool2d: mean over each window of (N, C, H, W)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2,
                       "avg_pool2d")


@cpu_autocast_policy("float32")
def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """torch.nn.functional.avg_pool3d: mean over each window of (N, C, D, H, W)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 3,
                       "avg_pool3d")


# ---------------------------------------------------------------- adaptive pools
def _adaptive_bounds(xp, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    i = xp.arange(m, dtype=np.int64)
    return (i * n) // m, -((-(i + 1) * n) // m)


def _with_kept_sizes(output_size, input: Tensor, d: int, opname: str):
    """torch.nn.functional's 2-d and 3-d adaptive pools (``_list_with_default``) first: a None in
    ``output_size`` keeps the input's size, and an input with too few dims is a ValueError."""
    if d > 1 and isinstance(output_size, (tuple, list)):
        if input.ndim <= len(output_size):
            raise ValueError(f"Input dimension should be at least {len(output_size) + 1}")  # torch's words alone
        kept = input.shape[input.ndim - len(output_size):]
        return [n if s is None else s for s, n in zip(output_size, kept)]
    return output_size


def _output_size(output_size, input: Tensor, d: int, opname: str) -> tuple:
    """``output_size`` (after ``_with_kept_sizes``) as ``d`` ints, with each op's own wording."""
    if d > 1 and not isinstance(output_size, (tuple, list, int, np.integer)):
        raise TypeError(f"{opname}(): argument 'output_size' must be an int or a tuple of {d} ints or None, "
                        f"not {type(output_size).__name__}")
    sizes = int_list(output_size, opname, "output_size")
    if d > 1 and len(sizes) == 1 and not isinstance(output_size, (tuple, list)):
        sizes *= d
    if len(sizes) != d:
        if d == 1:
            raise RuntimeError(f"{opname}() argument 'output_size' should contain one int (got {len(sizes)})")
        if opname.startswith("adaptive_max"):
            raise RuntimeError(f"{opname}(): internal error: output_size.size() must be {d}")
        raise RuntimeError(f"{opname}: output_size must be {d}")
    if any(s < 0 for s in sizes):
        if opname.startswith("adaptive_max"):  # torch's max pool allocates its output before any check
            shape = [*input.shape[:input.ndim - d], *([1] if d == 1 else []), *sizes]
            raise RuntimeError(f"Trying to create tensor with negative dimension {min(sizes)}: {shape}")
        # torch's avg kernels: 1-d runs as 2-d over (1, size); the 3-d message drops its last space
        if d == 3:
            name, shown = "adaptive_avg_pool3d", f"{{{sizes[0]}, {sizes[1]},{sizes[2]}}}"
        else:
            name, shown = "adaptive_avg_pool2d", "{" + ", ".join(str(s) for s in ([1] if d == 1 else []) + list(sizes)) + "}"
        raise RuntimeError(f"{name}: elements of output_size must be greater than or equal to 0 but received {shown}")
    return sizes


def _adaptive_check_type(input: Tensor, opname: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{opname}(): argument 'input' must be Tensor, not {type(input).__name__}")


def _adaptive_check_rank(input: Tensor, d: int, opname: str) -> None:
    if input.ndim in (d + 1, d + 2):
        return
    if d == 1:  # torch's 1-d pools check the rank with checkDimRange
        raise RuntimeError(_CHECK_DIM_RANGE.format(ndim=input.ndim, op=opname))
    got = ": " if opname.startswith("adaptive_max") else " "  # (the max pools' message has a colon)
    raise RuntimeError(f"{opname}(): Expected {d + 1}D or {d + 2}D tensor, but got{got}{list(input.shape)}")


def _adaptive_check(input: Tensor, d: int, opname: str) -> None:
    _adaptive_check_type(input, opname)
    _adaptive_check_rank(input, d, opname)
    for i in range(1 if input.ndim == d + 2 else 0, input.ndim):
        if input.shape[i] == 0:
            raise RuntimeError(f"{opname}(): Expected input to have non-zero size for non-batch dimensions, "
                               f"but input has sizes {list(input.shape)} with dimension {i} being empty")


def _adaptive_avg(input: Tensor, output_size, d: int, opname: str) -> Tensor:
    _adaptive_check_type(input, opname)
    output_size = _with_kept_sizes(output_size, input, d, opname)
    if d == 1:
        _adaptive_check_rank(input, d, opname)
    sizes = _output_size(output_size, input, d, opname)
    if all(m == 1 for m in sizes):
        # torch's 2-d and 3-d pools take every output size 1 as a mean over the last dims before any
        # check of rank, empty dims or dtype: F.adaptive_avg_pool2d(x, 1) pools a 5-d x, a 2-d one to
        # (1, 1), and an integer x gets mean()'s error
        if d == 1:
            return _adaptive_avg_of_sizes(input.unsqueeze(-2), [1, 1]).squeeze(-2)
        return _adaptive_avg_of_sizes(input, sizes)
    _adaptive_check(input, d, opname)
    _refuse_dtype(input, "adaptive_avg_pool3d_cpu" if d == 3 else "adaptive_avg_pool2d", "bci")
    if d == 1:  # torch pools a 1-d input as a row of height 1 (its nodes: unsqueeze, 2-d pool, squeeze)
        return _adaptive_avg_of_sizes(input.unsqueeze(-2), [1, *sizes]).squeeze(-2)
    return _adaptive_avg_of_sizes(input, sizes)


# torch's adaptive average pool nodes keep their input
_ADAPTIVE_AVG_SAVED = {"_saved_self": kept_value("self", tensor=True)}


def _adaptive_avg_of_sizes(input: Tensor, sizes: list) -> Tensor:
    xp = array_module(input)
    d = len(sizes)
    if all(m == 1 for m in sizes):
        # global average pooling: a plain mean over the spatial dims (last first, as torch's)
        out = input.mean(dim=tuple(range(-1, -d - 1, -1)), keepdim=True)
        if input.ndim == d + 2 and suggests_channels_last(input._data):
            # torch then restrides the mean in place to channels-last, (C, 1, C, C) (an AsStridedBackward1 node)
            n, c = input.shape[:2]
            out.as_strided_((n, c) + (1,) * d, (c, 1) + (c,) * d)
        return out
    matrices = []
    low = input._data.dtype.itemsize == 2 and input._data.dtype.kind in "fV"
    weight_dtype = np.float32 if low else input._data.dtype
    for i, m in enumerate(sizes):
        n = input.shape[input.ndim - d + i]
        start, end = _adaptive_bounds(xp, n, m)
        columns = xp.arange(n)
        averaging = ((columns >= start[:, None]) & (columns < end[:, None])) / xp.maximum(end - start, 1)[:, None]
        # float16/bfloat16 windows are averaged in float32 and rounded once, as torch's kernel
        matrices.append(xp.ascontiguousarray(averaging.T.astype(weight_dtype)))  # (n, m)
    # torch's 2-d kernel lays its output out as the input suggests (an unbatched input never does)
    return name_node(SeparableLinear.apply(input, matrices=tuple(matrices), transpose=False, follow_layout=d == 2),
                     f"AdaptiveAvgPool{d}DBackward0", saved=_ADAPTIVE_AVG_SAVED, kept={"self": input})


def _apply_matrices(x: np.ndarray, matrices: tuple, transpose: bool) -> np.ndarray:
    """Multiply each of the last len(matrices) dims of x by its (n, m) matrix (or its transpose)."""
    xp = array_module(x)
    d = len(matrices)
    for i, matrix in enumerate(matrices):
        axis = x.ndim - d + i
        x = xp.moveaxis(xp.moveaxis(x, axis, -1) @ (matrix.T if transpose else matrix), -1, axis)
    return x


def _refuse_empty_gradient(grad: Tensor, kernel: str) -> None:
    """torch's adaptive pooling backward kernels refuse an incoming gradient empty in any dim but the batch's."""
    for i in range(1, grad.ndim):
        if grad.shape[i] == 0:
            raise RuntimeError(f"{kernel}(): Expected grad_output to have non-zero size for non-batch dimensions, "
                               f"but grad_output has sizes {list(grad.shape)} with dimension {i} being empty")


class SeparableLinear(Function):
    """A linear map acting on each spatial dim by a constant matrix (adaptive average pooling)."""

    _array_forward = True
    node_name = "AdaptiveAvgPool2DBackward0"
    label = "adaptive_avg_pool"
    rule = ("a linear map M per spatial dim: ∂/∂x = Mᵀ G, spreading each cell's gradient evenly over its "
            "window")

    @staticmethod
    def forward(ctx, x, matrices, transpose, follow_layout=False):
        if ctx.needs_input_grad[0]:
            ctx.matrices, ctx.transpose, ctx.follow_layout = matrices, transpose, follow_layout
        out = _apply_matrices(x, matrices, transpose).astype(x.dtype, copy=False)  # (float32 for half x)
        return in_suggested_format(out, x) if follow_layout else array_module(x).ascontiguousarray(out)

    @staticmethod
    def backward(ctx, grad):
        # y = M x is linear  ⇒  x̄ = Mᵀ ḡ
        if not ctx.transpose:
            _refuse_empty_gradient(grad, f"adaptive_avg_pool{len(ctx.matrices)}d_backward")
        spread = SeparableLinear.apply(grad, matrices=ctx.matrices, transpose=not ctx.transpose)
        x = (getattr(ctx, "torch_kept", None) or {}).get("self")
        spread = recorded_against(spread, x, node=type(ctx).__name__.removesuffix("0") + "Backward0")
        return spread if x is None else _as_input_suggests(ctx, spread, x)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool1d: (N, C, L) → (N, C, output_size), torch's windows."""
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool2d: (N, C, H, W) → (N, C, *output_size); None keeps a size."""
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def _adaptive_max_indices(data, sizes: tuple):
    """Each output cell's flat index (within its plane) of its window's maximum, torch's: the first
    maximum, or the last NaN."""
    xp = array_module(data)
    d = len(sizes)
    in_shape = tuple(data.shape[-d:])
    lead = data.ndim - d  # (N, C) or (C,)
    # a global pool (every output size 1) has one window, the whole plane in its own order: the
    # planes are the windows and a window position is the flat index (32×64 planes of 9×9, one
    # thread: 0.1 ms instead of 0.4 for the gather, the argmax over it and the index arithmetic)
    whole_planes = all(m == 1 for m in sizes) and all(in_shape)
    positions = []
    if whole_planes:
        windows = data.reshape(data.shape[:lead] + tuple(sizes) + (math.prod(in_shape),))
    else:
        # per dim: (m, kmax) input positions of each window, the last one repeated to pad short
        # windows (a repeat never changes the first maximum)
        for n, m in zip(in_shape, sizes):
            start, end = _adaptive_bounds(xp, n, m)
            kmax = int((end - start).max()) if m else 1
            positions.append(xp.minimum(start[:, None] + xp.arange(kmax), end[:, None] - 1))
        # gather windows to (*lead, m_1, k_1, ..., m_d, k_d)
        index = tuple(p.reshape((1,) * (2 * i) + p.shape + (1,) * (2 * (d - 1 - i))) for i, p in enumerate(positions))
        windows = data[(slice(None),) * lead + index]
        perm = (*range(lead), *range(lead, lead + 2 * d, 2), *range(lead + 1, lead + 2 * d, 2))
        # the window length spelled out: -1 cannot be inferred where an output size is 0
        window = math.prod(p.shape[1] for p in positions)
        windows = windows.transpose(perm).reshape(data.shape[:lead] + tuple(sizes) + (window,))
    which = windows.argmax(axis=-1) if windows.shape[-1] else xp.zeros(windows.shape[:-1], dtype=np.int64)
    # argmax takes a window's first NaN; torch's kernel (``val > max || isnan(val)``) its last
    if windows.dtype.kind in "fV" and windows.size and (xp is not np or xp.isnan(windows).any()):
        nan = xp.isnan(windows)
        last_nan = windows.shape[-1] - 1 - nan[..., ::-1].argmax(axis=-1)
        which = xp.where(nan.any(axis=-1), last_nan, which)
    flat = which.astype(np.int64, copy=False) if whole_planes else xp.zeros(which.shape, dtype=np.int64)
    rest = which
    plane_stride = 1
    for i in reversed(range(len(positions))):
        kmax = positions[i].shape[1]
        k_i = rest % kmax
        rest = rest // kmax
        pos = positions[i]
        rows = xp.arange(sizes[i]).reshape((-1,) + (1,) * (d - 1 - i))
        flat += pos[rows, k_i] * plane_stride
        plane_stride *= in_shape[i]
    return flat


class AdaptiveMaxPool(Function):
    _array_forward = True
    node_name = "AdaptiveMaxPool2DBackward0"  # torch's name; the 3-d subclass below
    label = "adaptive_max_pool"
    rule = "routes each cell's gradient to its maximum"

    @staticmethod
    def forward(ctx, x, sizes, follow_layout=False):
        # (values and indices: torch's aten.adaptive_max_pool2d/3d, which a handler runs on its values)
        flat = _adaptive_max_indices(x, sizes)
        out = gathered(ctx, x, flat, len(sizes), with_indices=True)
        if ctx.needs_input_grad[0]:
            ctx.follow_layout = follow_layout
        if follow_layout:
            out, flat = in_suggested_format(out, x), in_suggested_format(flat, x)
        ctx.mark_non_differentiable(flat)
        return out, flat

    @staticmethod
    def backward(ctx, grad, *unused):
        _refuse_empty_gradient(grad, f"adaptive_max_pool{len(ctx.plane)}d_backward")
        return _as_input_suggests(ctx, scattered_back(ctx, grad), ctx.saved_values[0])


class AdaptiveMaxPool3D(AdaptiveMaxPool):
    node_name = "AdaptiveMaxPool3DBackward0"


_ADAPTIVE_MAX = {2: AdaptiveMaxPool, 3: AdaptiveMaxPool3D}


def _adaptive_max(input: Tensor, output_size, return_indices: bool, d: int, opname: str):
    if isinstance(input, Tensor):
        output_size = _with_kept_sizes(output_size, input, d, opname)
    _adaptive_check(input, d, opname)
    _refuse_dtype(input, "adaptive_max_pool3d_cpu" if d == 3 else "adaptive_max_pool2d", "bci")
    x, unbatched = input, input.ndim == d + 1  # pooled as it is, as torch's kernels do
    sizes = _output_size(output_size, x, d, opname)
    if d == 1:
        # torch's adaptive_max_pool1d is adaptive_max_pool2d on input.unsqueeze(-2), squeezed after:
        # Unsqueeze -> AdaptiveMaxPool2D -> Squeeze nodes
        out, indices = _adaptive_max(input.unsqueeze(-2), (1, *sizes), True, 2, "adaptive_max_pool2d")
        indices = indices.squeeze(-2)  # (torch's adaptive_max_pool1d squeezes the indices first, which a mode sees)
        out = out.squeeze(-2)
        return (out, indices) if return_indices else out
    # torch's 2-d kernel writes output and indices as a batched input suggests; its 3-d one contiguous
    follow_layout = d == 2 and not unbatched
    # (values and indices found inside the op: a wrapper's handler answers it on its real values)
    out, indices = _ADAPTIVE_MAX[d].apply(x, sizes=tuple(sizes), follow_layout=follow_layout)
    out = name_node(out, f"AdaptiveMaxPool{d}DBackward0", saved=_ADAPTIVE_MAX_SAVED, kept={"self": x, "result1": indices})
    return (out, indices) if return_indices else out


# torch's adaptive max pool nodes keep their input and the indices they return
_ADAPTIVE_MAX_SAVED = {"_saved_result1": kept_value("result1", tensor=True), "_saved_self": kept_value("self", tensor=True)}


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """torch.nn.functional.adaptive_max_pool1d (indices flat per plane, as torch)."""
    return _adaptive_max(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """torch.nn.functional.adaptive_max_pool2d (indices flat per plane, as torch)."""
    return _adaptive_max(input, output_size, return_indices, 2, "adaptive_max_pool2d")


# ---------------------------------------------------------------- max unpool
def _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, d: int, opname: str) -> Tensor:
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch(opname, _max_unpoolnd, (input, indices, kernel_size, stride, padding, output_size, d, opname), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    _unbatched(input, d, opname)
    # (torch's max_unpool reads these in Python, for the default output size only: any int goes)
    kernel = _tuple(kernel_size, d, "kernel_size", opname, int64=False)
    stride = kernel if stride is None else _tuple(stride, d, "stride", opname, int64=False)
    padding = _tuple(padding, d, "padding", opname, int64=False)
    default = tuple((m - 1) * s - 2 * p + k for m, s, p, k in zip(input.shape[-d:], stride, padding, kernel))
    if output_size is None:
        plane = default
    else:
        # torch's _unpool_output_size: the last d of d + 2 sizes, shown as given
        given = output_size[2:] if len(output_size) == d + 2 else output_size
        if len(given) != d:
            raise ValueError(f"output_size should be a sequence containing {d} or {d + 2} elements, but it "
                             f"has a length of '{len(output_size)}'")
        plane = tuple(int(s) for s in given)
        for i, (wanted, size, step) in enumerate(zip(plane, default, stride)):  # torch's range, before any work
            if not size - step < wanted < size + step:
                raise ValueError(f'invalid output_size "{given}" (dim {i} must be between {size - step} and '
                                 f"{size + step})")
    if d == 1:
        # torch's max_unpool1d is its max_unpool2d on a unit width: Unsqueeze -> MaxUnpool2D -> Squeeze
        return _max_unpool_kernel(input.unsqueeze(-1), indices.unsqueeze(-1), plane + (1,), 2).squeeze(-1)
    if d == 3 and _function.active_dispatch is not None:  # (torch's max_unpool3d takes them, which a mode sees)
        _function.note_given(FlatScatter, input, given_stride=list(stride), given_padding=list(padding))
    return _max_unpool_kernel(input, indices, plane, d)


def _max_unpool_kernel(x: Tensor, idx: Tensor, plane: tuple, d: int) -> Tensor:
    """torch's max_unpooling{d}d kernel on (C, *plane) or (N, C, *plane) input: one node, batched or not."""
    # torch checks the indices' dtype before their shape
    if idx._data.dtype != np.int64:
        raise RuntimeError(f"elements in indices should be type int64 but got: {_dtype.scalar_name(idx.dtype)}")
    if tuple(idx.shape) != tuple(x.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({list(x.shape)}) but got indices tensor with shape: {list(idx.shape)}")
    empty = [i for i in range(1, x.ndim) if not x.shape[i]]  # (from dim 1, batched or not, as torch)
    if empty:
        raise RuntimeError(f"max_unpooling{d}d_forward_out_cpu(): Expected input to have non-zero size for "
                           f"non-batch dimensions, but got {list(x.shape)} with dimension {empty[0]} being empty.")
    _config.alert_not_deterministic(f"max_unpooling{d}d_forward_out")
    unbatched = x.ndim == d + 1
    size = math.prod(plane)
    if size and x._data.size:
        # torch's kernel (its dtype dispatch and its check of the indices) runs on no empty output; its
        # unpooling kernels are floating only
        _refuse_dtype(x, "max_unpool3d" if d == 3 else "max_unpool2d", "bci")
        flat = idx._data
        invalid = (flat < 0) | (flat >= size)
        if invalid.any():
            # torch's kernel notes every invalid index it meets, in its layout's order, and names the last
            # (single-threaded; over several threads torch's choice among them varies)
            if d == 2 and not unbatched and suggests_channels_last(x._data):
                flat, invalid = np.moveaxis(flat, 1, -1), np.moveaxis(invalid, 1, -1)
            raise RuntimeError(f"Found an invalid max index: {int(flat[invalid][-1])} (output volumes are of size "
                               f"{'x'.join(map(str, plane))})")
    # an empty output is still the node's (torch records MaxUnpool{d}DBackward0 on a zero batch too);
    # torch's max_unpool2d lays a batched output out as the input suggests; max_unpool3d writes contiguous
    return FlatScatter.apply(x, indices=idx._data, plane_shape=plane, assign=True, follow_layout=d == 2 and not unbatched)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """torch.nn.functional.max_unpool1d: put each value back at its max_pool1d index, zeros elsewhere."""
    return _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """torch.nn.functional.max_unpool2d: put each value back at its max_pool2d index, zeros elsewhere."""
    return _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")
