"""Embedding: a row gather from a weight matrix, and its scatter-add gradient.

The gather and the scatter-add are each other's adjoints, so each is the other's backward and
every order of derivative stays one node.
"""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from ..autograd import function as _function
from ..autograd.function import Function, as_uint64, ctx_value, name_node
from ..autograd.grad_mode import INFERENCE_VERSION
from ..tensor import Tensor
from . import cpu_norm_order
from ._arg_parser import check_bool
from .index import _add_rows

__all__ = ["embedding"]
__not_methods__ = set(__all__)


class Embedding(Function):
    """out = W[idx] (a row gather); the weight gradient scatter-adds rows of the output gradient."""

    _array_forward = True
    label = "embedding"
    rule = "adds each row's gradient into the rows that were looked up"
    formula = None
    # torch's grad_fn._saved_* names (its padding_idx -1, "none", as the C++ node's unsigned)
    saved_attributes = {
        "_saved_indices": ctx_value("indices", Tensor._make, tensor=True),
        "_saved_padding_idx": ctx_value("padding_idx", lambda index: as_uint64(-1 if index is None else index)),
        "_saved_scale_grad_by_freq": False,
        "_saved_sparse": ctx_value("sparse"),
        "_saved_weight_sym_argsize_0": ctx_value("num_rows"),
    }

    @staticmethod
    def forward(ctx, weight, indices, padding_idx, sparse=False, scale_grad_by_freq=False):
        ctx.indices = indices
        ctx.num_rows = weight.shape[0]
        ctx.padding_idx = padding_idx
        ctx.sparse = sparse
        ctx.scale_grad_by_freq = scale_grad_by_freq  # applied by a ScaleGradient node after this one
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        # dW[r] = Σ_{i: idx_i = r} g_i (rows at padding_idx get none)
        if ctx.sparse:
            if ctx.scale_grad_by_freq:  # torch refuses the pair only when the gradient is computed
                raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with sparse gradients")
            return _sparse_gradient(grad, ctx.indices, ctx.num_rows, ctx.padding_idx)
        return EmbeddingDenseBackward.apply(grad, indices=ctx.indices, num_rows=ctx.num_rows,
                                            padding_idx=ctx.padding_idx)


def _sparse_gradient(grad: Tensor, indices, num_rows: int, padding_idx: int | None) -> Tensor:
    """torch's embedding_sparse_backward: an uncoalesced COO gradient with one entry per looked-up
    index (in lookup order, padding_idx left out) whose value is that lookup's gradient row. Like
    torch's, it is not differentiable (SparseAdam and sparse SGD/Adagrad read it as is)."""
    from ..sparse import SparseCOOTensor  # sparse builds on ops: imported when first needed

    d = grad.shape[-1]
    flat_idx = indices.reshape(-1)
    flat_grad = grad._data.reshape(-1, d)
    if padding_idx is not None:
        keep = flat_idx != padding_idx
        flat_idx, flat_grad = flat_idx[keep], flat_grad[keep]
    # the values are a view of the gradient where a reshape allows one, as torch's (whose sparse add
    # merges two gradients' entries when both hold contiguous values, and appends them otherwise)
    return SparseCOOTensor._from_parts(flat_idx.astype(np.int64)[None], flat_grad, (num_rows, d), False)


class EmbeddingDenseBackward(Function):
    """Scatter-add of gradient rows by index (indexing's grouped row sums, ``_add_rows``)."""

    _array_forward = True
    label = "embedding_backward"
    rule = "gathers the rows of the gradient's gradient at the looked-up indices"
    formula = None

    @staticmethod
    def forward(ctx, grad, indices, num_rows, padding_idx):
        ctx.indices = indices
        ctx.padding_idx = padding_idx
        d = grad.shape[-1]
        flat_idx = indices.reshape(-1)
        flat_grad = grad.reshape(-1, d)
        out = array_module(grad).zeros((num_rows, d), dtype=grad.dtype)
        _add_rows(out, flat_idx, flat_grad)
        if padding_idx is not None:
            out[padding_idx] = 0
        return out

    @staticmethod
    def backward(ctx, grad):
        # the adjoint of a scatter-add is the gather
        mask = None
        if ctx.padding_idx is not None:
            mask = Tensor._make((ctx.indices != ctx.padding_idx)[..., None].astype(grad._data.dtype))
        out = Embedding.apply(grad, indices=ctx.indices, padding_idx=None)
        return out * mask if mask is not None else out


class ScaleGradient(Function):
    """Identity forward; the gradient is multiplied by a constant per row (``scale_grad_by_freq``)."""

    _array_forward = True
    label = "scale_grad"
    rule = "∂/∂a = scale (the forward is the identity)"
    formula = "{0}"

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad * Tensor._make(ctx.scale)


def _aten_embedding(weight: Tensor, indices: Tensor, padding_idx: int = -1, scale_grad_by_freq: bool = False,
                    sparse: bool = False) -> Tensor:
    """aten.embedding's signature (a wrapper's handler runs it): no padding row is -1."""
    return embedding(indices, weight, None if padding_idx == -1 else padding_idx,
                     scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """F.embedding: rows of ``weight`` (num_embeddings, dim) picked by the integer ``input``."""
    if input._wrapper_strides is not None and max_norm is None and _function.active_dispatch is not None:
        # a wrapper subclass's indices live in it, not in its placeholder: its handler answers aten.embedding
        args = [weight, input, -1 if padding_idx is None else padding_idx, scale_grad_by_freq, sparse]
        while len(args) > 2 and args[-1] == (-1, False, False)[len(args) - 3]:  # (torch's: defaults left out)
            args.pop()
        made = _function.argument_dispatch("embedding", _aten_embedding, tuple(args), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    if weight.ndim != 2:
        raise RuntimeError(f"'weight' must be 2-D (embedding got a weight of shape {list(weight.shape)})")
    if input._data.dtype not in (np.int64, np.int32):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: "
            f"Long, Int; but got {input.type()} instead (while checking arguments for embedding)"
        )
    check_bool(scale_grad_by_freq, "embedding", "scale_grad_by_freq")
    check_bool(sparse, "embedding", "sparse")
    num_rows = weight.shape[0]
    indices = input._data
    if num_rows == 0 and indices.size:
        raise RuntimeError("embedding: index_select(): self indexing axis dim should be positive (the weight has "
                           "no rows: num_embeddings=0)")
    # on a device the check would wait for the GPU twice per lookup; torch asserts there instead
    if indices.size and isinstance(indices, np.ndarray) and (indices.min() < 0 or indices.max() >= num_rows):
        raise IndexError("index out of range in self")
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += num_rows
        if not 0 <= padding_idx < num_rows:
            raise AssertionError("Padding_idx must be within num_embeddings")
    if max_norm is not None:
        xp = array_module(weight)
        rows = xp.unique(indices)
        data = weight._data
        picked = data[rows]
        if data.dtype.itemsize == 2 and data.dtype.kind in "fV":
            # torch's float16/bfloat16 row norm sums in float32 and rounds to the dtype (NumPy's
            # float16 norm sums in float16)
            picked = picked.astype(np.float32)
        # torch takes each row's norm (row.norm(norm_type)): float32 in its CPU kernel's order
        norms = cpu_norm_order.vector_norm(picked, float(norm_type), (1,), True) if type(picked) is np.ndarray \
            and picked.dtype == np.float32 else None
        if norms is None:
            norms = xp.linalg.norm(picked, ord=norm_type, axis=1, keepdims=True)
        norms = norms.astype(data.dtype)
        scale = xp.where(norms > max_norm, max_norm / (norms.astype(np.float64) + 1e-7), 1.0)
        data[rows] *= scale.astype(data.dtype)
        # torch's embedding_renorm_ is an in-place op on the weight: a graph that saved the weight
        # before the lookup (a code regulariser) then refuses its backward, as torch's does. (An
        # inference tensor's rows are renormed outside inference_mode too, as torch renorms them.)
        if weight._vbox is not INFERENCE_VERSION:
            weight._bump_version()
    rows = Embedding.apply(weight, indices=indices, padding_idx=padding_idx, sparse=sparse,
                           scale_grad_by_freq=scale_grad_by_freq)
    if scale_grad_by_freq and indices.size:
        # each looked-up row's gradient divided by how often its index occurs in the mini-batch
        xp = array_module(weight)
        _, inverse, counts = xp.unique(indices, return_inverse=True, return_counts=True)
        scale = (1.0 / counts[inverse.reshape(indices.shape)])[..., None].astype(weight._data.dtype)
        rows = name_node(ScaleGradient.apply(rows, scale=scale), "EmbeddingBackward0", label="embedding")
    return rows
