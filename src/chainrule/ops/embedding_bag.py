"""embedding_bag: sums, means or maxima of bags of embedding rows, without the (N, L, D) lookup.

Composed from chainrule ops, each exact and differentiable (so double backward and the stand-in
device come free): the looked-up rows are one ``embedding`` gather (its gradient is the
scatter-add), ``sum``/``mean`` scale each row by its coefficient (the per-sample weight, 1/bag
size, or 0 at ``padding_idx``) and ``index_add`` it into its bag; ``max`` lays the bags out as a
(bags, longest bag, D) gather padded with -inf and takes the maximum over each bag, whose gradient
goes to the first maximal row as torch's does. The node is named torch's ``EmbeddingBagBackward0``.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .._backend import array_module
from ..autograd.function import name_node
from ..tensor import Tensor
from . import creation
from ._arg_parser import check_bool
from .compat import class_repr
from .elementwise import where
from .embedding import ScaleGradient, embedding
from .shape import cat

__all__ = ["embedding_bag"]
__not_methods__ = set(__all__)

_MODES = ("sum", "mean", "max")


def _bags(input: Tensor, offsets: Tensor | None, include_last_offset: bool):
    """The flat indices, each one's bag (-1: after the last offset, in no bag) and the bag count."""
    xp = array_module(input._data)
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError(
                "if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed "
                f"length sequences. However, found offsets of type {class_repr(type(offsets))}"
            )
        num_bags, length = input.shape
        indices = input._data.reshape(-1)
        return indices, xp.repeat(xp.arange(num_bags), length), num_bags
    if input.dim() != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    if offsets is None or offsets.dim() != 1:
        raise ValueError("offsets has to be a 1D Tensor" + ("" if offsets is not None else " but got None"))
    if offsets._data.dtype.kind not in "iu":
        raise RuntimeError(
            "Expected tensor for argument #2 'offsets' to have one of the following scalar types: Long, Int; "
            f"but got {offsets.dtype} instead (while checking arguments for embedding_bag)"
        )
    starts = offsets._data
    length = input.shape[0]
    if isinstance(starts, np.ndarray) and starts.size:  # on a device the checks would wait for the GPU
        if starts[0] != 0:
            raise RuntimeError(
                "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                f"position 0. However, got {int(starts[0])}"
            )
        if starts[-1] > length:
            raise RuntimeError(
                f"offsets[-1] can not be greater than input's length {length} but got offsets[-1] of {int(starts[-1])}"
            )
        if (np.diff(starts) < 0).any():
            raise RuntimeError(f"embedding_bag: offsets must be non-decreasing, got {starts.tolist()}")
    num_bags = starts.shape[0] - 1 if include_last_offset else starts.shape[0]
    positions = xp.arange(length)
    bag = xp.searchsorted(starts, positions, side="right") - 1
    if include_last_offset and starts.size:
        # the last offset ends the last bag (CSR); torch documents it equal to the input's length, and
        # its float32 kernel leaves out what lies beyond it (its float64 one does not)
        bag = xp.where(positions >= starts[-1], -1, bag)
    return input._data, bag, max(num_bags, 0)


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None, max_norm: float | None = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """F.embedding_bag: (bags, D) reductions of the ``weight`` rows that ``input`` picks, bag by bag.

    ``input`` is (B, L) (B bags of L indices) or 1-d with ``offsets`` giving each bag's start
    (``include_last_offset``: one more, the end of the last bag). ``mode`` is ``sum``, ``mean`` or
    ``max``; ``per_sample_weights`` (``sum`` only) scales each row; indices equal to
    ``padding_idx`` are left out of their bag (and of its size); an empty bag gives zeros.
    """
    if mode not in _MODES:
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ValueError("max mode does not support sparse weights")
    if input._data.dtype.kind not in "iu":
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: "
            f"Long, Int; but got {input.dtype} instead (while checking arguments for embedding_bag)"
        )
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(
                "embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for "
                f"mode='sum' (got mode='{mode}'). Please open a feature request on GitHub."
            )
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(
                f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) is not None, then it must "
                f"have the same shape as the input ({input.shape})"
            )
    # torch's Python checks above come first, then its C++ op's argument parser
    check_bool(scale_grad_by_freq, "embedding_bag", "scale_grad_by_freq")
    check_bool(sparse, "embedding_bag", "sparse")
    num_rows, dim = weight.shape
    if padding_idx is not None:
        if not -num_rows <= padding_idx < num_rows:
            raise RuntimeError(
                f"padding_idx must be within the number of embeddings, -{num_rows} through {num_rows - 1}, "
                f"but got {padding_idx}"
            )
        padding_idx %= num_rows
    indices, bag, num_bags = _bags(input, offsets, include_last_offset)
    xp = array_module(weight._data)
    if isinstance(indices, np.ndarray) and indices.size:
        bad = np.flatnonzero((indices < 0) | (indices >= num_rows))
        if bad.size:
            raise RuntimeError(
                f"Index {int(bad[0])} of input takes value {int(indices[bad[0]])} which is not in the valid "
                f"range [0, {num_rows})"
            )
    kept = bag >= 0
    if padding_idx is not None:
        kept = kept & (indices != padding_idx)
    # padding_idx changes only the gradient (its lookups are left out of the bags, and out of a
    # sparse gradient's entries, as torch's)
    # a sparse gradient gets embedding's refusal of scale_grad_by_freq, a dense one on the CPU torch's
    # CPU kernel's rule; elsewhere each index is divided by its own count (embedding's rule)
    cpu_rule = scale_grad_by_freq and not sparse and weight.device.type == "cpu"
    rows = embedding(Tensor._make(indices), weight, padding_idx, max_norm, norm_type,
                     scale_grad_by_freq and not cpu_rule, sparse)
    if cpu_rule and indices.size:
        rows = ScaleGradient.apply(rows, scale=_bag_frequency_scale(indices, num_rows, weight._data.dtype))
    bag_size = xp.zeros(num_bags, dtype=np.int64)
    if num_bags:
        bag_size += xp.bincount(bag[kept], minlength=num_bags)[:num_bags]
    if mode == "max":
        out = _bag_max(rows, bag, kept, bag_size, num_bags, dim)
    else:
        # torch sums a float16/bfloat16 bag in float32 and rounds the sum; a mean divides the rounded sum
        low = weight.dtype if weight.dtype is _dtype.float16 or weight.dtype is _dtype.bfloat16 else None
        if low is not None:
            rows = rows.to(_dtype.float32)
        coefficient = kept.astype(rows._data.dtype)
        sizes = xp.maximum(bag_size, 1).astype(coefficient.dtype)
        if mode == "mean" and low is None:
            coefficient = coefficient / sizes[xp.maximum(bag, 0)]
        scaled = rows * Tensor._make(coefficient[:, None])
        if per_sample_weights is not None:
            scaled = scaled * per_sample_weights.reshape(-1, 1)
        out = creation.zeros((num_bags, dim), dtype=rows.dtype, device=weight.device)
        out = out.index_add(0, Tensor._make(xp.where(kept, bag, 0)), scaled)
        if low is not None:
            out = _rounded(out, low)
            if mode == "mean":
                out = _rounded(out.to(_dtype.float32) / Tensor._make(sizes[:, None]), low)
    return name_node(out, "EmbeddingBagBackward0")


def _bag_frequency_scale(indices, num_rows: int, dtype):
    """Each lookup's scale_grad_by_freq factor as torch 2.13's CPU kernel
    (_embedding_bag_dense_backward_cpu_sum_mean) computes it: the i-th distinct index in ascending
    order is divided by ``counts[sorted_indices[i]]``, the count of the i-th *sorted lookup*, not of
    itself (``counts[indices_data[i]]`` where ``start`` was meant). Counts take in every lookup,
    the padding index's and those past the last offset too. So for lookups [0, 0, 1] index 1's
    gradient is divided by counts[sorted[1] = 0] = 2, not by its own count 1."""
    xp = array_module(indices)
    counts = xp.bincount(indices.reshape(-1), minlength=num_rows)
    ordered = xp.sort(indices.reshape(-1))
    distinct = xp.unique(ordered)
    rank = xp.searchsorted(distinct, indices.reshape(-1))
    return (1.0 / counts[ordered[rank]])[:, None].astype(dtype)


def _rounded(out: Tensor, low) -> Tensor:
    """float32 ``out`` in ``low``; to bfloat16 as torch's fbgemm kernel rounds, a tie away from zero
    (its bits + 0x8000, truncated), not to even."""
    if low is _dtype.bfloat16:
        xp = array_module(out._data)
        values = out.detach()._data
        values = xp.where(xp.isfinite(values), values, np.float32(0))  # inf and NaN round to themselves
        ties_up = ((values.view(np.uint32) + np.uint32(0x8000)) & np.uint32(0xFFFF0000)).view(np.float32)
        out = out + Tensor._make(ties_up - values)
    return out.to(low)


def _bag_max(rows: Tensor, bag, kept, bag_size, num_bags: int, dim: int) -> Tensor:
    """Each bag's elementwise maximum row (zeros for an empty bag), as a gather padded with -inf."""
    xp = array_module(rows._data)
    longest = int(bag_size.max()) if num_bags else 0
    if longest == 0:  # every bag empty: zeros, still recorded against the weight (with a zero gradient)
        nothing = Tensor._make(xp.zeros(0, dtype=np.int64))
        return creation.zeros((num_bags, dim), dtype=rows.dtype, device=rows.device).index_add(0, nothing, rows[:0])
    members = xp.flatnonzero(kept)
    member_bag = bag[members]
    first = xp.concatenate((xp.zeros(1, dtype=np.int64), xp.cumsum(bag_size)[:-1]))
    slot = xp.arange(members.size) - first[member_bag]
    # row N of the extended rows is the -inf filler of the short bags
    layout = xp.full((num_bags, longest), rows.shape[0], dtype=np.int64)
    layout[member_bag, slot] = members
    filler = creation.full((1, dim), -np.inf, dtype=rows.dtype, device=rows.device)
    padded = cat([rows, filler])[Tensor._make(layout)]
    maxima = padded.max(dim=1).values
    empty = Tensor._make((bag_size == 0)[:, None])
    return where(empty, creation.zeros((), dtype=rows.dtype, device=rows.device), maxima)
