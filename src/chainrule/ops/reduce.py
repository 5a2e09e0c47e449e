"""Reductions: sum (and the engine's sum_to_shape), mean; more reductions live beside them.

``dim`` accepts an int, a tuple of ints or None (all dims), negative dims included; ``keepdim``
keeps reduced dims as size 1. Gradients expand back over the reduced dims.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from ..autograd.function import Function
from ..tensor import Tensor, _wrap_dim

__all__ = ["sum", "mean", "sum_to_shape"]


def _dims(dim, ndim: int, op: str) -> tuple:
    """Normalise ``dim`` (None, int, or sequence) to a sorted tuple of non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        if len(dim) == 0:
            return tuple(range(ndim))
        dims = tuple(sorted(_wrap_dim(d, ndim, op) for d in dim))
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"{op}: dim {list(dim)} appears multiple times in the list of dims")
        return dims if ndim else ()
    return (_wrap_dim(dim, ndim, op),) if ndim else ()


def _expand_back(grad: Tensor, shape: tuple, dims: tuple, keepdim: bool) -> Tensor:
    """Undo a reduction's shape change: reinsert the reduced dims as 1, then broadcast."""
    if not keepdim and dims:
        kept_shape = tuple(1 if i in dims else s for i, s in enumerate(shape))
        grad = grad.reshape(kept_shape)
    return grad.expand(shape)


class Sum(Function):
    _array_forward = True

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.shape = x.shape
        ctx.dims = dims
        ctx.keepdim = keepdim
        return np.sum(x, axis=dims, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        # every input element contributes once to its sum: copy the gradient back over the dims
        return _expand_back(grad, ctx.shape, ctx.dims, ctx.keepdim)


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.sum; bool and integer inputs sum to int64 as in torch."""
    np_dtype = _dtype.to_dtype(dtype).np if dtype is not None else (
        np.int64 if input._data.dtype.kind in "biu" else None)
    return Sum.apply(input, dims=_dims(dim, input._data.ndim, "sum"), keepdim=keepdim, dtype=np_dtype)


class Mean(Function):
    _array_forward = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape = x.shape
        ctx.dims = dims
        ctx.keepdim = keepdim
        ctx.count = int(np.prod([x.shape[d] for d in dims])) if dims else 1
        return np.mean(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        # d mean = d sum / n
        return _expand_back(grad / ctx.count, ctx.shape, ctx.dims, ctx.keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.mean; integer inputs are an error unless ``dtype`` is floating, as in torch."""
    if dtype is not None:
        input = input.to(dtype)
    if input._data.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {input.dtype.name.capitalize()}"
        )
    return Mean.apply(input, dims=_dims(dim, input._data.ndim, "mean"), keepdim=keepdim)


class SumToSize(Function):
    """Sum a broadcast gradient back to the shape it was broadcast from (the engine uses this)."""

    _array_forward = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        lead = x.ndim - len(shape)
        dims = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
        )
        out = np.sum(x, axis=dims, keepdims=True) if dims else x
        return out.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.expand(ctx.shape)


def sum_to_shape(input: Tensor, shape) -> Tensor:
    """Reduce ``input`` by summation to ``shape``, which it must be broadcastable from."""
    shape = tuple(shape)
    if input._data.shape == shape:
        return input
    return SumToSize.apply(input, shape=shape)
