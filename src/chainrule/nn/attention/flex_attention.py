"""chainrule.nn.attention.flex_attention: attention with a user score_mod and a block-sparse mask.

torch's eager (CPU) flex_attention is a dense reference computation, and so is this one: the
scores ``q @ kᵀ · scale`` in float32 (float64 for float64 inputs), ``score_mod(score, b, h,
q_idx, kv_idx)`` on every element, ``-inf`` wherever the block mask's ``mask_mod`` says False,
a softmax that gives 0 (not NaN) on fully masked rows, then ``@ v``. It is written in Tensor
ops, so it differentiates. ``score_mod``/``mask_mod`` receive index tensors shaped to broadcast
against the (B, H, Q, KV) scores (torch vmaps them over the four indices; elementwise and
indexing mods give the same values both ways). ``create_block_mask`` builds torch's block
metadata (partial and full blocks per row of blocks, in torch's order), used for checks and
``to_dense``; the computation masks element by element as torch's reference does.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ... import _dtype
from ...ops.creation import arange, full, tensor, zeros
from ...ops.elementwise import where
from ...tensor import Tensor

__all__ = ["BlockMask", "flex_attention", "create_block_mask", "create_mask", "noop_mask", "or_masks", "and_masks"]

_DEFAULT_SPARSE_BLOCK_SIZE = 128
_LARGE_SPARSE_BLOCK_SIZE = 1 << 30


def _identity(score, batch, head, token_q, token_kv):
    return score


def noop_mask(batch, head, token_q, token_kv):
    """The mask that keeps everything."""
    return batch.new_ones(size=(), dtype=_dtype.bool)


def or_masks(*mask_mods):
    """The union of ``mask_mods``."""
    if not all(callable(arg) for arg in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def or_mask(b, h, q_idx, kv_idx):
        result = b.new_zeros((), dtype=_dtype.bool)
        for mask in mask_mods:
            result = result | mask(b, h, q_idx, kv_idx)
        return result

    return or_mask


def and_masks(*mask_mods):
    """The intersection of ``mask_mods``."""
    if not all(callable(arg) for arg in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def and_mask(b, h, q_idx, kv_idx):
        result = b.new_ones((), dtype=_dtype.bool)
        for mask in mask_mods:
            result = result & mask(b, h, q_idx, kv_idx)
        return result

    return and_mask


def _index_grids(B: int, H: int, Q: int, KV: int):
    """b, h, q_idx, kv_idx as int64 tensors shaped to broadcast to (B, H, Q, KV)."""
    return (arange(B).view(B, 1, 1, 1), arange(H).view(1, H, 1, 1), arange(Q).view(1, 1, Q, 1),
            arange(KV).view(1, 1, 1, KV))


def _as_tensor(value) -> Tensor:
    """A mod's result: a tensor, or a Python bool/number a mod may return for every position."""
    return value if isinstance(value, Tensor) else tensor(value)


def create_mask(mod_fn, B: int | None, H: int | None, Q_LEN: int, KV_LEN: int, device=None) -> Tensor:
    """The dense (B, H, Q_LEN, KV_LEN) boolean mask of a mask_mod (B or H None means 1)."""
    B, H = B or 1, H or 1
    grids = _index_grids(B, H, Q_LEN, KV_LEN)
    mask = _as_tensor(mod_fn(*grids))
    return mask.to(_dtype.bool).expand(B, H, Q_LEN, KV_LEN).contiguous()


def _dense_to_ordered(dense: np.ndarray):
    """(blocks per row, column indices with the kept blocks first, in column order), int32, as torch."""
    dense = dense.astype(np.int32)
    counts = dense.sum(axis=-1).astype(np.int32)
    order = np.argsort(-dense, axis=-1, kind="stable").astype(np.int32)
    return counts, order


def _ordered_to_dense(counts: np.ndarray, indices: np.ndarray, num_cols: int) -> np.ndarray:
    dense = np.zeros((*indices.shape[:-1], num_cols + 1), dtype=np.int32)
    kept = np.arange(indices.shape[-1]) < counts[..., None]
    cols = np.where(kept, indices, num_cols)  # unkept entries write to a spare column, dropped below
    np.put_along_axis(dense, cols, 1, axis=-1)
    return dense[..., :num_cols]


def _tensor(array: np.ndarray) -> Tensor:
    return tensor(np.ascontiguousarray(array))


class BlockMask:
    """torch's block-sparse mask: for each (batch, head, row of query blocks) the key/value blocks
    that are partly kept (``kv_num_blocks``, ``kv_indices``) and wholly kept (``full_kv_*``), the
    transposed ``q_*`` lists, the block size, the sequence lengths and the ``mask_mod``."""

    def __init__(self, seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, q_num_blocks,
                 q_indices, full_q_num_blocks, full_q_indices, BLOCK_SIZE, mask_mod) -> None:
        if kv_indices.dim() < 2:
            raise RuntimeError("BlockMask must have at least 2 dimensions")
        self.seq_lengths = tuple(seq_lengths)
        self.kv_num_blocks, self.kv_indices = kv_num_blocks, kv_indices
        self.full_kv_num_blocks, self.full_kv_indices = full_kv_num_blocks, full_kv_indices
        self.q_num_blocks, self.q_indices = q_num_blocks, q_indices
        self.full_q_num_blocks, self.full_q_indices = full_q_num_blocks, full_q_indices
        self.BLOCK_SIZE = BLOCK_SIZE
        self.mask_mod = mask_mod if mask_mod is not None else noop_mask

    @classmethod
    def from_kv_blocks(cls, kv_num_blocks: Tensor, kv_indices: Tensor, full_kv_num_blocks: Tensor | None = None,
                       full_kv_indices: Tensor | None = None, BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE,
                       mask_mod=None, seq_lengths=None, compute_q_blocks: bool = True) -> BlockMask:
        if kv_indices.dim() < 2:
            raise RuntimeError("BlockMask must have at least 2 dimensions")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise RuntimeError("full_kv_num_blocks and full_kv_indices must be both provided or omitted")
        q_num_blocks = q_indices = full_q_num_blocks = full_q_indices = None
        if compute_q_blocks:
            num_cols = kv_indices.shape[-1]
            dense = _ordered_to_dense(kv_num_blocks.numpy(), kv_indices.numpy(), num_cols)
            q_num_blocks, q_indices = (_tensor(a) for a in _dense_to_ordered(np.swapaxes(dense, -2, -1)))
            if full_kv_num_blocks is not None:
                dense = _ordered_to_dense(full_kv_num_blocks.numpy(), full_kv_indices.numpy(), num_cols)
                full_q_num_blocks, full_q_indices = (_tensor(a)
                                                     for a in _dense_to_ordered(np.swapaxes(dense, -2, -1)))
        block_size = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
        if seq_lengths is None:
            seq_lengths = (kv_num_blocks.shape[-1] * block_size[0], kv_indices.shape[-1] * block_size[1])
        return cls(seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, q_num_blocks,
                   q_indices, full_q_num_blocks, full_q_indices, block_size, mask_mod)

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.kv_indices.shape[:-2], *self.seq_lengths)

    def as_tuple(self, flatten: bool = True) -> tuple:
        block_size = (self.BLOCK_SIZE,) if not flatten else self.BLOCK_SIZE
        return (*self.seq_lengths, self.kv_num_blocks, self.kv_indices, self.full_kv_num_blocks,
                self.full_kv_indices, self.q_num_blocks, self.q_indices, self.full_q_num_blocks,
                self.full_q_indices, *block_size, self.mask_mod)

    def to_dense(self) -> Tensor:
        """The (B, H, Q blocks, KV blocks) int32 map of blocks that are kept at all."""
        num_cols = self.kv_indices.shape[-1]
        dense = _ordered_to_dense(self.kv_num_blocks.numpy(), self.kv_indices.numpy(), num_cols)
        if self.full_kv_num_blocks is not None:
            dense = dense | _ordered_to_dense(self.full_kv_num_blocks.numpy(), self.full_kv_indices.numpy(),
                                              num_cols)
        return _tensor(dense)

    def __repr__(self) -> str:
        return (f"BlockMask(shape={self.shape}, sparsity={self.sparsity():.2f}%, "
                f"mask_mod={getattr(self.mask_mod, '__name__', self.mask_mod)})")

    def sparsity(self) -> float:
        """The percentage of blocks skipped entirely."""
        dense = self.to_dense().numpy()
        return 100.0 * (1.0 - dense.sum() / dense.size) if dense.size else 0.0


def create_block_mask(mask_mod, B: int | None, H: int | None, Q_LEN: int, KV_LEN: int, device=None,
                      BLOCK_SIZE: int | tuple[int, int] = _DEFAULT_SPARSE_BLOCK_SIZE, _compile: bool = False,
                      separate_full_blocks: bool = True) -> BlockMask:
    """The BlockMask of ``mask_mod(b, h, q_idx, kv_idx)`` over (B, H, Q_LEN, KV_LEN); B or H of None
    means 1 (broadcast over the batch or the heads)."""
    if _compile:
        warnings.warn("_compile flag on create_block_mask was originally added to work around a torch.compile "
                      "limitation. That limitation has since been addressed. So, to compile create_block_mask, we "
                      "suggest doing torch.compile(create_block_mask). This still works for now, but will be "
                      "removed in the future.", DeprecationWarning, stacklevel=2)
    q_block, kv_block = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else BLOCK_SIZE
    mask = create_mask(mask_mod, B, H, Q_LEN, KV_LEN, device).numpy()
    # pad to whole blocks with False, then count the kept elements of each block
    pad_q, pad_kv = -Q_LEN % q_block, -KV_LEN % kv_block
    mask = np.pad(mask, ((0, 0), (0, 0), (0, pad_q), (0, pad_kv)))
    b, h, q, kv = mask.shape
    counts = mask.reshape(b, h, q // q_block, q_block, kv // kv_block, kv_block).sum(axis=(3, 5))
    full_size = q_block * kv_block
    if separate_full_blocks:
        partial, full = (counts > 0) & (counts < full_size), counts == full_size
    else:
        partial, full = counts > 0, None
    kv_num_blocks, kv_indices = (_tensor(a) for a in _dense_to_ordered(partial))
    full_kv = (None, None) if full is None else tuple(_tensor(a) for a in _dense_to_ordered(full))
    return BlockMask.from_kv_blocks(kv_num_blocks, kv_indices, *full_kv, BLOCK_SIZE=(q_block, kv_block),
                                    mask_mod=mask_mod, seq_lengths=(Q_LEN, KV_LEN))


def _check_inputs(query, key, value, block_mask, enable_gqa) -> None:
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise NotImplementedError("NYI: query, key, and value must be 4D tensors")
    if not (query.dtype == key.dtype == value.dtype):
        raise ValueError(f"Expected query, key, and value to have the same dtype, but got query.dtype: "
                         f"{query.dtype}, key.dtype: {key.dtype}, and value.dtype: {value.dtype} instead.")
    if query.size(-1) != key.size(-1):
        raise ValueError(f"Expect query and key/value to have the same embedding dimension but got E="
                         f"{query.size(-1)} and E={key.size(-1)}.")
    if (not enable_gqa) and query.size(-3) != key.size(-3):
        raise ValueError(f"Expect query and key/value to have the same number of heads but got "
                         f"Hq={query.size(-3)} and Hkv={key.size(-3)}. Try setting enable_gqa=True for GQA.")
    if enable_gqa and query.size(1) % key.size(1) != 0:
        raise ValueError(f"Expect number of query heads to be a multiple of kv heads for GQA but got "
                         f"Hq={query.size(1)} and Hkv={key.size(1)}.")
    if query.size(0) != key.size(0):
        if block_mask is None:
            raise ValueError(f"Expect query and key/value to have the same batch size, or non-none block_mask, "
                             f"but got block_mask=None, Bq={query.size(0)}, and Bkv={key.size(0)}.")
        if block_mask.kv_num_blocks.size(0) != query.size(0):
            raise ValueError(f"Expect query and key/value to have the same batch size, or block_mask and query to "
                             f"have the same batch size, but got Bq={query.size(0)}, Bkv={key.size(0)}, "
                             f"B_block_mask={block_mask.kv_num_blocks.size(0)}.")
    if block_mask is None:
        return
    mask_q, mask_kv = block_mask.shape[-2], block_mask.shape[-1]
    q_len, kv_len = query.size(-2), key.size(-2)
    if q_len > mask_q or kv_len > mask_kv:
        raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={q_len} and "
                         f"kv_len={kv_len}. As the block mask was created for a smaller length than you're using "
                         "it for, you likely need to create a new block mask.")
    if q_len != mask_q or kv_len != mask_kv:
        raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={q_len} and "
                         f"kv_len={kv_len}. As the block mask was created for a larger length than you're using "
                         "it for, you can either 1. create a new block mask with the correct length, or 2. "
                         "'adjust' the existing block mask to the correct length by calling "
                         "block_mask._adjust(q_len, kv_len). This essentially 'crops' the block mask to the upper "
                         "left corner, which does not work for all mask_mods!")


def flex_attention(query: Tensor, key: Tensor, value: Tensor, score_mod=None, block_mask: BlockMask | None = None,
                   scale: float | None = None, enable_gqa: bool = False, return_lse: bool = False,
                   kernel_options=None):
    """softmax(score_mod(q·kᵀ·scale) masked by block_mask) · v over (B, H, L, E) inputs; with
    ``return_lse`` also the natural-log sum of exponentials per query row (float32, or float64)."""
    _check_inputs(query, key, value, block_mask, enable_gqa)
    if return_lse:
        warnings.warn("return_lse is deprecated and will be removed in v2.10. Please use "
                      "return_aux=AuxRequest(lse=True) instead.", FutureWarning, stacklevel=2)
    score_mod = _identity if score_mod is None else score_mod
    mask_mod = noop_mask if block_mask is None else block_mask.mask_mod
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    groups = query.size(1) // key.size(1)
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    if key.size(0) != query.size(0):
        key = key.expand(query.size(0), *key.shape[1:])
        value = value.expand(query.size(0), *value.shape[1:])
    float64 = _dtype.float64
    working = float64 if query.dtype == float64 else _dtype.float32
    scores = (query.to(working) @ key.to(working).transpose(-2, -1)) * scale
    grids = _index_grids(*scores.shape)
    keep = _as_tensor(mask_mod(*grids)).to(_dtype.bool).expand(scores.shape)
    modded = _as_tensor(score_mod(scores, *grids)).to(working).expand(scores.shape)
    minus_inf = full((), -math.inf, dtype=working)
    masked = where(keep, modded, minus_inf)
    dead_rows = (masked == -math.inf).all(dim=-1, keepdim=True)
    # a row with nothing kept: torch's safe softmax gives zeros; softmax over a row of zeros
    # instead of -inf keeps its gradient finite, and the rows are zeroed after
    zero = zeros((), dtype=working)
    finite = where(dead_rows, zero, masked)
    probabilities = where(dead_rows, zero, finite.softmax(dim=-1))
    out = probabilities.to(query.dtype) @ value.to(query.dtype)
    if not return_lse:
        return out
    lse = finite.logsumexp(dim=-1)
    lse = where(dead_rows.squeeze(-1), minus_inf, lse)
    return out, lse
