"""Bucketing and counting: searchsorted, bucketize, bincount, histc.

Their outputs are indices and counts, which have no gradient in torch (the result of ``histc``
on a tensor that requires grad does not require grad either), so these are functions on arrays
with no ``Function`` node.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _config, _dtype, _vmap_frames
from .._backend import array_module
from ..autograd import function as _function
from ..autograd.function import without_derivative
from ..tensor import Tensor, honours_out
from ._arg_parser import out_rule

__all__ = ["searchsorted", "bucketize", "bincount", "histc"]
__not_methods__ = {"searchsorted", "bucketize"}  # torch.Tensor has neither as a method


def _side(right: bool, side: str | None) -> str:
    if side is None:
        return "right" if right else "left"
    if side not in ("left", "right"):
        raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
    if right and side == "left":
        raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got side of left "
                           "while right was True")
    return side


def _check_devices(boundaries: Tensor, input, sorter: Tensor | None = None) -> None:
    """torch's searchsorted_pre_check (bucketize's too): the operands on one device, named in its
    words, before any other check of shapes. A Python number goes to the boundaries' device."""
    if isinstance(input, Tensor) and input.device != boundaries.device:
        raise RuntimeError("torch.searchsorted(): boundaries and input value tensors should have same device type, "
                           f"but got boundaries tensor device type {boundaries.device} and input value tensor "
                           f"device type {input.device}")
    if sorter is not None and sorter.device != boundaries.device:
        raise RuntimeError("torch.searchsorted(): sorter and boundary tensors should have same device type, but "
                           f"got sorter tensor device type {sorter.device} and input value tensor device type "
                           f"{boundaries.device}")


def _check_sorter(seq, sorter: Tensor) -> None:
    """torch's searchsorted_pre_check of ``sorter``, in its order and words, after the devices and before
    any check of the input: the boundaries' sizes, then int64 only, then every index in [0, n)."""
    order = sorter._data
    if order.shape != seq.shape:
        raise RuntimeError("torch.searchsorted(): boundary and sorter must have the same size, but got boundary "
                           f"tensor {list(seq.shape)}and got sorter tensor {list(order.shape)}")
    if sorter.dtype is not _dtype.int64:
        raise RuntimeError("torch.searchsorted(): sorter must be a tensor of long dtype but got dtype "
                           f"{_dtype.scalar_name(sorter.dtype)}")
    if order.size:
        if order.ndim == 0:  # torch reads the size of the last of no dimensions
            raise RuntimeError("ArrayRef: attempted to access back() of empty list")
        if int(order.min()) < 0 or int(order.max()) >= order.shape[-1]:
            raise RuntimeError("torch.searchsorted(): sorter index out of range")


def _values_array(values, like, op: str):
    """``values`` as an array on ``like``'s module: a tensor's data, or a Python number as 0-d."""
    if isinstance(values, Tensor):
        return values._data
    if isinstance(values, numbers.Number):
        return array_module(like).asarray(values)
    raise TypeError(f"{op}(): argument 'input' must be Tensor or Number, not {type(values).__name__}")


def _rows_searchsorted(seq, values, side: str):
    """searchsorted of each row of ``values`` in the same row of ``seq`` (both (rows, n)), vectorised.

    Merging a row's values into its sequence with one stable sort places each value after the
    sequence entries it follows; its merged position minus its rank among the values is the count
    of entries before it. Ties follow the order of concatenation: values first for side='left'
    (equal entries come after them), entries first for side='right'.
    """
    xp = array_module(seq)
    n, k = seq.shape[-1], values.shape[-1]
    merged = xp.concatenate([values, seq] if side == "left" else [seq, values], axis=-1)
    order = xp.argsort(merged, axis=-1, kind="stable")
    position = xp.empty_like(order)
    xp.put_along_axis(position, order, xp.broadcast_to(xp.arange(n + k), order.shape), axis=-1)
    value_position = position[:, :k] if side == "left" else position[:, n:]
    rank = xp.empty_like(value_position)
    value_order = xp.argsort(values, axis=-1, kind="stable")
    xp.put_along_axis(rank, value_order, xp.broadcast_to(xp.arange(k), value_order.shape), axis=-1)
    return value_position - rank


def _searchsorted_array(seq, values, side: str, sorter):
    xp = array_module(seq)
    common = xp.result_type(seq.dtype, values.dtype)
    seq, values = seq.astype(common, copy=False), values.astype(common, copy=False)
    if seq.ndim == 1:
        return xp.searchsorted(seq, values, side=side, sorter=sorter)
    if sorter is not None:
        seq = xp.take_along_axis(seq, sorter, axis=-1)
    rows = int(np.prod(seq.shape[:-1]))
    found = _rows_searchsorted(seq.reshape(rows, seq.shape[-1]), values.reshape(rows, values.shape[-1]), side)
    return found.reshape(values.shape)


def _non_contiguous_warning(operand: str, line: int) -> str:
    return (f"torch.searchsorted(): {operand} tensor is non-contiguous, this will lower the performance due to "
            "extra data copy when converting non-contiguous tensor to contiguous, please use contiguous "
            f"{operand} tensor if possible. This message will only appear once per program. (Triggered "
            f"internally at /__w/pytorch/pytorch/aten/src/ATen/native/BucketizationUtils.h:{line}.)")


def _warn_non_contiguous(boundaries: Tensor, input, sorter: Tensor | None = None) -> None:
    """torch copies a non-contiguous operand before its kernel and says so, once per process for each
    of the three (TORCH_WARN_ONCE); bucketize shares searchsorted's kernel and its words. NeRF's
    ``sample_pdf`` calls ``u.contiguous()`` before ``searchsorted`` for this warning."""
    if isinstance(input, Tensor) and not input.is_contiguous():
        _config.warn_once(_non_contiguous_warning("input value", 32))
    if not boundaries.is_contiguous():
        _config.warn_once(_non_contiguous_warning("boundary", 38))
    if sorter is not None and not sorter.is_contiguous():
        _config.warn_once(_non_contiguous_warning("sorter", 44))


def _refuse_kernel_dtype(sorted_sequence: Tensor, input) -> None:
    """torch's kernel runs in the two operands' common dtype, which has no bool or complex instance."""
    common = _dtype.result_type(sorted_sequence, input)
    if common is _dtype.bool or common.is_complex or common in _dtype._BARE_UNSIGNED:
        raise NotImplementedError(f"\"searchsorted_out_cpu\" not implemented for '{_dtype.scalar_name(common)}'")


@out_rule("searchsorted_index")  # torch refuses an out of any other dtype than the result's
def searchsorted(sorted_sequence: Tensor, input, *, out_int32: bool = False, right: bool = False,
                 side: str | None = None, sorter: Tensor | None = None) -> Tensor:
    """torch.searchsorted: for each value, the index at which inserting it into the last dimension of
    ``sorted_sequence`` keeps it sorted; the first such index (side='left') or the last ('right').

    ``sorted_sequence`` is 1-D (shared by every value) or (*B, n) with ``input`` of shape (*B, k);
    ``sorter`` holds the indices that sort an unsorted sequence along its last dimension.
    """
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("searchsorted.Tensor", searchsorted, (sorted_sequence, input), {"out_int32": out_int32, "right": right, "side": side, "sorter": sorter})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    side = _side(right, side)
    seq = sorted_sequence._data
    values = _values_array(input, seq, "searchsorted")
    _check_devices(sorted_sequence, input, sorter)
    if sorter is not None:
        _check_sorter(seq, sorter)
    if values.ndim == 0 and seq.ndim != 1:  # (torch's first check: a 0-d boundaries tensor gets this one too)
        raise RuntimeError("torch.searchsorted(): input value can be a scalar only when boundaries tensor dimension "
                           f"is 1, but we got boundaries tensor dim({seq.ndim}) and input value's dim(0) numel(1)")
    if seq.ndim == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should have positive dimension, but got 0 "
                           "dimension")
    if seq.ndim > 1 and (values.ndim != seq.ndim or values.shape[:-1] != seq.shape[:-1]):
        raise RuntimeError("torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                           "dimensions of boundaries tensor and input value tensor must match, but we got "
                           f"boundaries tensor {list(seq.shape)} and input value tensor {list(values.shape)}")
    order = None if sorter is None else sorter._data
    if values.size:  # torch dispatches no kernel for an empty result
        _warn_non_contiguous(sorted_sequence, input, sorter)
        _refuse_kernel_dtype(sorted_sequence, input)
    if seq.dtype.kind == "V" or values.dtype.kind == "V":
        # ml_dtypes' bfloat16 promotes with no integer dtype: compare in float64, exact for both
        seq, values = seq.astype(np.float64), values.astype(np.float64)
    found = _searchsorted_array(seq, values, side, order)
    return _batched_where_operands_are(Tensor._make(found.astype(np.int32 if out_int32 else np.int64, copy=False)),
                                       sorted_sequence, input, sorter)


@out_rule("searchsorted_index")
def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """torch.bucketize: the bucket of each value among 1-D sorted ``boundaries``: i with
    boundaries[i-1] < x <= boundaries[i] (right=False), or boundaries[i-1] <= x < boundaries[i] (right=True)."""
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("bucketize.Tensor", bucketize, (input, boundaries), {"out_int32": out_int32, "right": right})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    values = _values_array(input, boundaries._data, "bucketize")
    _check_devices(boundaries, input)
    if values.size:  # torch dispatches no kernel for an empty result
        _warn_non_contiguous(boundaries, input)
        _refuse_kernel_dtype(boundaries, input)
    found = _searchsorted_array(boundaries._data, values, "right" if right else "left", None)
    return _batched_where_operands_are(Tensor._make(found.astype(np.int32 if out_int32 else np.int64, copy=False)),
                                       input, boundaries)


def _batched_where_operands_are(out: Tensor, *operands) -> Tensor:
    """``out``, made by no Function: inside vmap, noted as batched where an operand is (``int(i[0])`` of
    a batched bucket index is refused as torch refuses it)."""
    if _vmap_frames._frames:
        _vmap_frames.note_results(operands, None, out)
    return out


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """torch.bincount: occurrences of each non-negative integer of a 1-D tensor (length at least
    ``minlength``); with ``weights``, their sums, as float64 unless the weights are floating."""
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("bincount", bincount, (input, weights, minlength), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    x = input._data
    if x.dtype.kind not in "iu":
        raise NotImplementedError(f'"bincount_cpu" not implemented for \'{_dtype.scalar_name(x.dtype)}\'')
    _dtype.refuse_wide_unsigned("bucketing.bincount", x)
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    xp = array_module(x)
    if x.ndim != 1 or (x.size and bool(xp.min(x) < 0)):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if weights is None:
        return Tensor._make(xp.bincount(x, minlength=minlength).astype(np.int64, copy=False))
    w = weights._data
    if w.shape != x.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    dtype = w.dtype if w.dtype.kind == "f" and w.dtype != np.float16 else np.float64
    counted = xp.bincount(x, weights=w.astype(np.float64, copy=False), minlength=minlength).astype(dtype, copy=False)
    if weights.requires_grad:
        return BincountWeights.apply(weights, counted=counted)
    return Tensor._make(counted)


class BincountWeights(without_derivative("aten::bincount")):
    """``bincount`` of weights that require grad: torch records a node with no derivative
    (aten::bincount has none), whose backward raises, where chainrule's result had no graph."""
    node_name = "torch::autograd::NotImplemented"
    label, rule = "bincount", "none: torch defines no derivative, and backward raises"

    @staticmethod
    def forward(ctx, weights, counted):
        return counted


def _refuse_histc_dtype(input: Tensor, min, max) -> None:
    """torch's error for a histc of a non-floating tensor, from the step of its kernel that first
    meets the dtype: bool in linspace, complex in aminmax (the data's range, taken when min == max),
    uint8 whose range is [0, 0] in widening it to [-1, 1], any other in histogram itself."""
    x, name = input._data, _dtype.scalar_name(input.dtype)
    data_range = float(min) == float(max)
    if x.dtype.kind == "b":
        raise NotImplementedError(f"\"linspace_cpu\" not implemented for '{name}'")
    if x.dtype.kind == "c" and data_range:
        raise NotImplementedError(f"\"aminmax_cpu\" not implemented for '{name}'")
    if x.dtype in _dtype.WIDE_UNSIGNED:  # (the data's range, or the bins' edges in linspace)
        _dtype.refuse_wide_unsigned("reduce.aminmax" if data_range else "creation.linspace_cpu", x)
    if x.dtype == np.uint8 and data_range and not x.any():
        raise RuntimeError("value cannot be converted to type uint8_t without overflow")
    raise NotImplementedError(f"\"histogram_cpu\" not implemented for '{name}'")


@honours_out
def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """torch.histc: counts of the elements in ``bins`` equal-width bins over [min, max] (the data's
    range when both are 0; widened by 1 each side when empty), in the input's dtype. Elements
    outside the range are ignored; the maximum falls in the last bin."""
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("histc", histc, (input, bins, min, max), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    x = input._data
    if x.dtype.kind not in "fV":
        _refuse_histc_dtype(input, min, max)
    if bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
    xp = array_module(x)
    flat = x.reshape(-1)
    low, high = float(min), float(max)
    if low == high and flat.size:
        low, high = float(xp.min(flat)), float(xp.max(flat))
    if low == high:
        low, high = low - 1, high + 1
    if not (np.isfinite(low) and np.isfinite(high)):  # the bounds as C++ prints doubles: 5, not 5.0
        raise RuntimeError(f"torch.histc: range of [{low:g}, {high:g}] is not finite")
    if low > high:
        raise RuntimeError("torch.histc: max must be larger than min")
    # torch's linear-interpolation bin, computed in the input's dtype from edges in that dtype
    left, right = x.dtype.type(low), x.dtype.type(high)
    inside = flat[(flat >= left) & (flat <= right)]
    position = ((inside - left) * x.dtype.type(bins) / (right - left)).astype(np.int64)
    position = xp.minimum(position, bins - 1)
    counts = xp.bincount(position, minlength=bins)
    return Tensor._make(counts.astype(x.dtype, copy=False))

