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
from ..autograd import function as _function
from ..autograd.function import Function, name_node
from ..tensor import Tensor
from . import creation
from ._arg_parser import check_bool, check_int
from .compat import class_repr
from .elementwise import where
from .embedding import ScaleGradient, embedding
from .shape import cat

__all__ = ["embedding_bag"]  # (torch's top-level, ATen form is ops.nn_toplevel.embedding_bag, on aten_embedding_bag)
__not_methods__ = set(__all__)

_MODES = ("sum", "mean", "max")


def _bags(input: Tensor, offsets: Tensor | None, include_last_offset: bool):
    """The flat indices, each one's bag (-1: in no bag), the bag count, and with include_last_offset
    which indices lie at or past the last offset (else None)."""
    xp = array_module(input._data)
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError(
                "if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed "
                f"length sequences. However, found offsets of type {class_repr(type(offsets))}"
            )
        if input.dtype is _dtype.bool:  # torch builds the offsets by arange in the input's dtype
            raise NotImplementedError("\"arange_cpu\" not implemented for 'Bool'")
        _index_dtype(input.dtype)
        num_bags, length = input.shape
        indices = input._data.reshape(-1)
        return indices, xp.repeat(xp.arange(num_bags), length), num_bags, None
    if input.dim() != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    if offsets is None or offsets.dim() != 1:
        raise ValueError("offsets has to be a 1D Tensor" + ("" if offsets is not None else " but got None"))
    index_dtype = _dtype.promote_types(input.dtype, offsets.dtype)
    common = _index_dtype(index_dtype)
    starts = offsets._data.astype(common, copy=False)
    length = input.shape[0]
    if isinstance(starts, np.ndarray) and starts.size:  # on a device the checks would wait for the GPU
        if starts[0] != 0:
            raise RuntimeError(
                "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                f"position 0. However, got {int(starts[0])}\n[ {_legacy_name(index_dtype)}{{}} ]"
            )
        if starts[-1] > length:
            raise RuntimeError(
                f"offsets[-1] can not be greater than input's length {length} but got offsets[-1] of {int(starts[-1])}"
            )
        if (np.diff(starts) < 0).any():
            raise RuntimeError(f"embedding_bag: offsets must be non-decreasing, got {starts.tolist()}")
    num_bags = starts.shape[0] - 1 if include_last_offset else starts.shape[0]
    indices = input._data.astype(common, copy=False)
    positions = xp.arange(length)
    bag = xp.searchsorted(starts, positions, side="right") - 1
    if include_last_offset and starts.size:
        # torch documents the last offset equal to the input's length; where it falls short, torch's
        # kernels run the last bag on to the input's end (its fbgemm sum alone stops at the offset:
        # embedding_bag leaves those indices out there)
        past_last = positions >= starts[-1]
        return indices, xp.where(past_last, num_bags - 1, bag), max(num_bags, 0), past_last
    return indices, bag, max(num_bags, 0), None


def _index_dtype(common):
    """torch's embedding_bag takes its indices and offsets in their common dtype, which must be
    int64 or int32 (named as argument #1, the indices, whichever of the two made it otherwise);
    the NumPy dtype."""
    if common not in (_dtype.int64, _dtype.int32):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; "
            f"but got {_legacy_name(common)} instead (while checking arguments for embedding_bag)"
        )
    return np.int64 if common is _dtype.int64 else np.int32


def _legacy_name(dtype) -> str:
    """torch.LongTensor and the like, as torch's kernel messages name a tensor's type."""
    return creation.empty(0, dtype=dtype).type()


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
    if _function.active_dispatch is not None and max_norm is None:
        made = _bags_to_mode(input, weight, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
                             include_last_offset, padding_idx)
        if made is not None:
            return made
    indices, bag, num_bags, past_last = _bags(input, offsets, include_last_offset)
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
    counted = kept
    if past_last is not None and mode != "max" and padding_idx is None and weight.dtype in (
            _dtype.float32, _dtype.float16, _dtype.bfloat16):
        # torch's fbgemm sum (these dtypes, no padding_idx) stops at a last offset short of the input's
        # end, yet its mean divides by the count up to the end and its backward runs on to the end
        kept = kept & ~past_last
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
        bag_size += xp.bincount(bag[counted], minlength=num_bags)[:num_bags]
    if mode == "max":
        out = _bag_max(rows, bag, kept, bag_size, num_bags, dim)
    else:
        # torch sums a float16/bfloat16 bag in float32 and rounds the sum; a mean divides the rounded sum
        low = weight.dtype if weight.dtype is _dtype.float16 or weight.dtype is _dtype.bfloat16 else None
        if low is not None:
            rows = rows.to(_dtype.float32)
        coefficient = counted.astype(rows._data.dtype)
        sizes = xp.maximum(bag_size, 1).astype(coefficient.dtype)
        scaled = rows * Tensor._make(coefficient[:, None])
        if per_sample_weights is not None:
            scaled = scaled * per_sample_weights.reshape(-1, 1)
        out = BagSum.apply(scaled, bag=xp.where(kept, bag, -1), num_bags=num_bags,
                           gradient_bag=xp.where(counted, bag, -1))
        if mode == "mean" and low is None:
            out = DivideByBagSize.apply(out, sizes=sizes)
        if low is not None:
            out = _rounded(out, low)
            if mode == "mean":
                out = _rounded(out.to(_dtype.float32) / Tensor._make(sizes[:, None]), low)
    if out._grad_fn is None:
        return out
    flat, offsets = (input, offsets) if input.dim() == 1 else (
        input.reshape(-1), creation.arange(0, input.numel(), input.size(1), dtype=input.dtype, device=input.device))
    weights = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    return name_node(out, "EmbeddingBagBackward0", saved=_EMBEDDING_BAG_SAVED, kept={
        "indices": flat, "offsets": offsets, "mode": _MODES.index(mode), "include_last_offset": include_last_offset,
        "padding_idx": _function.as_uint64(-1 if padding_idx is None else padding_idx),
        "per_sample_weights": weights, "scale_grad_by_freq": scale_grad_by_freq, "sparse": sparse,
        "weight": weight if weights is not None and weights.requires_grad else None, "weight rows": weight,
        "weight_sym_argsize_0": num_rows})


def _kept_bag_result(position: int) -> _function.SavedValue:
    def read(node):
        kept = node.torch_kept
        padding = kept["padding_idx"]
        return _bag_results(kept["weight rows"], kept["indices"], kept["offsets"], kept["mode"],
                            kept["include_last_offset"], None if padding == _function.as_uint64(-1) else padding,
                            True)[position]

    return _function.SavedValue(read, tensor=True)


# torch's _saved_* of embedding_bag: the flat indices and offsets (a 2-d input's made by arange, as
# F.embedding_bag makes them), the arguments, and its kernel's three index results (result1..3), made
# when read; the weight only for per_sample_weights' gradient
_EMBEDDING_BAG_SAVED = {
    **{f"_saved_{name}": _function.kept_value(name, tensor=True)
       for name in ("indices", "offsets", "per_sample_weights", "weight")},
    **{f"_saved_{name}": _function.kept_value(name)
       for name in ("mode", "padding_idx", "scale_grad_by_freq", "sparse", "weight_sym_argsize_0")},
    **{f"_saved_result{k + 1}": _kept_bag_result(k) for k in range(3)}}


def _bags_to_mode(input, weight, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights, include_last_offset,
                  padding_idx):
    """F.embedding_bag as a dispatch mode sees torch's: a 2-d input's offsets made by arange and the input
    flattened (its Python code), then ATen's one _embedding_bag_forward_only (a weight that needs no
    gradient) or _embedding_bag, trailing defaults left out; the output, or None where no mode took it (the
    caller's own path, on the flattened input where it was flattened)."""
    if input.dim() == 2 and offsets is None:
        offsets = creation.arange(0, input.numel(), input.size(1), dtype=input.dtype, device=input.device)
        input = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    if input.dim() != 1 or offsets is None or offsets.dim() != 1:
        return None
    args = (weight, input, offsets, scale_grad_by_freq, _MODES.index(mode), sparse, per_sample_weights)
    if include_last_offset or padding_idx is not None:
        args += (include_last_offset,) + ((padding_idx,) if padding_idx is not None else ())
    name = "_embedding_bag" if weight.requires_grad else "_embedding_bag_forward_only"
    made = _function.composite_dispatch(name, _aten_bag, args, {})
    if made is _function.RUN_UNDISPATCHED:  # (no mode: a wrapper subclass argument's handler answers it)
        made = _function.argument_dispatch(name, _aten_bag, args, {})
    return None if made is _function.RUN_UNDISPATCHED else made[0]


def _aten_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False, per_sample_weights=None,
              include_last_offset=False, padding_idx=-1) -> tuple:
    """aten._embedding_bag(_forward_only)'s func under a dispatch mode: its four results (-1: no padding index)."""
    return aten_embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
                              include_last_offset, None if padding_idx < 0 else padding_idx)


class BagSum(Function):
    """Each bag's sum of its rows (``bag[j]``: row j's bag, -1 for none), added one row after another
    in the bags' order, as torch's CPU kernels (fbgemm's and its own loop) add them: a tree or
    blocked sum (NumPy's for more than eight rows) rounds differently. Gradient: each row gets its
    bag's (0 for a row in no bag), its bag in ``gradient_bag`` where that is given (torch's fbgemm
    sum leaves out rows past a short last offset that its backward reaches)."""

    _array_forward = True
    label = "bag_sum"
    rule = "∂/∂row = the gradient of the row's bag"
    formula = "sum of {0} by bag"

    @staticmethod
    def forward(ctx, rows, bag, num_bags, gradient_bag=None):
        xp = array_module(rows)
        ctx.bag = bag if gradient_bag is None else gradient_bag
        out = xp.zeros((num_bags,) + rows.shape[1:], dtype=rows.dtype)
        members = xp.flatnonzero(bag >= 0)
        if not members.size:
            return out
        member_bag = bag[members]
        # the bags are runs of members (offsets do not decrease): where each starts, its length
        starts = xp.flatnonzero(xp.concatenate((xp.ones(1, dtype=bool), member_bag[1:] != member_bag[:-1])))
        lengths = xp.diff(xp.append(starts, members.size))
        if starts.size < int(lengths.max()):  # a few long bags: each one's running sum (sequential)
            for start, length in zip(starts.tolist(), lengths.tolist()):
                out[member_bag[start]] = xp.cumsum(rows[members[start:start + length]], axis=0)[-1]
            return out
        slot = xp.arange(members.size) - xp.repeat(starts, lengths)
        for k in range(int(lengths.max())):  # the k-th row of every bag at once (distinct bags)
            at = slot == k
            out[member_bag[at]] += rows[members[at]]
        return out

    @staticmethod
    def backward(ctx, grad):
        bag = ctx.bag
        xp = array_module(bag)
        padded = cat([grad, creation.zeros((1,) + tuple(grad.shape[1:]), dtype=grad.dtype, device=grad.device)])
        return padded[Tensor._make(xp.where(bag >= 0, bag, grad.shape[0]))]


class DivideByBagSize(Function):
    """A mean bag's sum divided by its size, as torch's kernel (apply_bag_size: the sum first, then
    one division; dividing each row first rounds differently); its gradient is the upstream one
    times the size's reciprocal, as torch's apply_bag_size_backward."""

    _array_forward = True
    label = "bag_mean"
    rule = "∂/∂sum = 1 / bag size"
    formula = "{0} / bag_size"

    @staticmethod
    def forward(ctx, total, sizes):
        ctx.reciprocal = (1 / sizes)[:, None]
        return total / sizes[:, None]

    @staticmethod
    def backward(ctx, grad):
        return grad * Tensor._make(ctx.reciprocal)


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


def aten_embedding_bag(weight: Tensor, indices: Tensor, offsets: Tensor, scale_grad_by_freq: bool = False,
                       mode: int = 0, sparse: bool = False, per_sample_weights: Tensor | None = None,
                       include_last_offset: bool = False, padding_idx: int | None = None) -> tuple:
    """torch.embedding_bag, ATen's form of F.embedding_bag: the weight first, offsets required, ``mode``
    an int (0 sum, 1 mean, 2 max), a negative ``padding_idx`` counted from the end. Returns torch's
    four results, as its CPU kernel leaves them: the (bags, D) reductions; ``offset2bag``, each
    index's bag (empty for a sum that torch's float32/half fast path takes: no per-index bags, no
    padding_idx); ``bag_size``, each bag's count of non-padding indices (zeros for a sum, one per
    offset when the weight does not require grad); ``max_indices``, the weight row each maximum came
    from (mode 2), else a copy of ``bag_size``. Index results take the indices' and offsets' common
    integer dtype."""
    if weight.dim() != 2:
        raise RuntimeError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.dim()}")
    mode = check_int(mode, "embedding_bag", "mode")
    if mode not in (0, 1, 2):
        raise RuntimeError("`mode` must be sum, mean, or max.")
    output = embedding_bag(indices, weight, offsets, None, 2, scale_grad_by_freq, _MODES[mode], sparse,
                           per_sample_weights, include_last_offset, padding_idx)
    return (output, *_bag_results(weight, indices, offsets, mode, include_last_offset, padding_idx,
                                  weight.requires_grad))


def _bag_results(weight: Tensor, indices: Tensor, offsets: Tensor, mode: int, include_last_offset: bool,
                 padding_idx: int | None, weight_requires_grad: bool) -> tuple:
    """torch's offset2bag, bag_size and max_indices (see aten_embedding_bag) of flat indices and offsets."""
    xp = array_module(weight._data)
    index_dtype = np.promote_types(indices._data.dtype, offsets._data.dtype)
    starts = offsets._data.astype(index_dtype)
    length = indices.shape[0]
    num_bags = starts.shape[0] - 1 if include_last_offset else starts.shape[0]
    padding = None if padding_idx is None else padding_idx % weight.shape[0]
    fast_sum = mode == 0 and padding is None and weight.dtype in (_dtype.float32, _dtype.float16, _dtype.bfloat16)
    # each index's bag; with include_last_offset the last offset ends nothing: what lies beyond it is
    # counted in the last bag (its sum leaves it out, its mean divides by it: torch's kernel)
    bag_starts = starts[:num_bags]
    offset2bag = (xp.searchsorted(bag_starts, xp.arange(length), side="right") - 1).astype(index_dtype)
    if weight_requires_grad or mode != 0:
        bag_size = xp.zeros(num_bags, dtype=index_dtype)
        if mode != 0 and num_bags:
            bag_size[:-1] = bag_starts[1:] - bag_starts[:-1]
            bag_size[-1] = length - bag_starts[-1]
            if padding is not None:  # a padding index is left out of its bag's count
                flat = indices._data.reshape(-1)
                bag_size -= xp.bincount(offset2bag[flat == padding], minlength=num_bags)[:num_bags].astype(index_dtype)
    else:
        bag_size = xp.zeros(starts.shape[0], dtype=index_dtype)
    if mode == 2:
        max_indices = _max_rows(weight._data, indices._data.reshape(-1), offset2bag, padding, num_bags, index_dtype)
    else:
        max_indices = bag_size.copy()
    if fast_sum:
        offset2bag = offset2bag[:0]
    return tuple([Tensor._make(array) for array in (offset2bag, bag_size, max_indices)])


def _max_rows(weight, indices, offset2bag, padding, num_bags: int, index_dtype):
    """For each bag and feature, the weight row holding the bag's maximum (the first of equal ones,
    as torch's kernel replaces only on a greater value), 0 for an empty bag."""
    xp = array_module(weight)
    rows = xp.zeros((num_bags, weight.shape[1]), dtype=index_dtype)
    for bag in range(num_bags):
        members = indices[(offset2bag == bag) & (indices != (-1 if padding is None else padding))]
        if members.size:
            rows[bag] = members[xp.argmax(weight[members], axis=0)]
    return rows
