"""Indexing: reads (``x[key]``) and writes (``x[key] = v``) with ints, slices, None, Ellipsis,
boolean masks and integer tensors, plus gather/scatter/index_select/masked_fill and friends.

A read's gradient scatters back into zeros of the input's shape, summing repeated indices.
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import state as _grad_state
from ..tensor import Tensor

__all__ = ["getitem", "setitem"]
__tensor_methods__ = {"__getitem__": "getitem", "__setitem__": "setitem"}


def _convert_key(key):
    """Tensors and lists inside an index become arrays; everything else passes to NumPy."""
    if isinstance(key, tuple):
        return tuple(_convert_key_item(k) for k in key)
    return _convert_key_item(key)


def _convert_key_item(k):
    if isinstance(k, Tensor):
        if k._data.dtype.kind == "f":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        return k._data
    if isinstance(k, list):
        return _convert_list(k)
    return k


def _convert_list(k: list):
    array = np.asarray([x._data if isinstance(x, Tensor) else x for x in k])
    if array.dtype.kind == "f":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return array


def _is_basic(key) -> bool:
    """True when NumPy indexing by ``key`` returns a view (no integer/boolean arrays)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice, type(None), type(Ellipsis))) and not isinstance(k, bool)
               for k in items)


class Index(Function):
    _array_forward = True
    node_name = "IndexBackward0"

    @staticmethod
    def forward(ctx, x, key, basic):
        ctx.key = key
        ctx.shape = x.shape
        ctx.basic = basic
        return x[key]

    @staticmethod
    def backward(ctx, grad):
        return IndexScatter.apply(grad, key=ctx.key, shape=ctx.shape, basic=ctx.basic)


class IndexScatter(Function):
    """zeros(shape) with ``grad`` added at ``key`` (repeated indices summed); the read's adjoint."""

    _array_forward = True
    node_name = "IndexBackwardBackward0"

    @staticmethod
    def forward(ctx, grad, key, shape, basic):
        ctx.key = key
        ctx.basic = basic
        out = np.zeros(shape, dtype=grad.dtype)
        if basic:
            out[key] = grad
        else:
            np.add.at(out, key, grad)
        return out

    @staticmethod
    def backward(ctx, grad):
        return Index.apply(grad, key=ctx.key, basic=ctx.basic)


def getitem(input: Tensor, key) -> Tensor:
    """``input[key]`` with torch semantics; basic indexing returns a view."""
    key = _convert_key(key)
    basic = _is_basic(key)
    out = Index.apply(input, key=key, basic=basic)
    if basic:
        out._version_box = input._version_box
        out._base = input if input._base is None else input._base
    return out


class IndexPut(Function):
    """``x[key] = value`` recorded for autograd; the write happens in x's own array."""

    _array_forward = True
    node_name = "IndexPutBackward0"

    @staticmethod
    def forward(ctx, x, value, key):
        ctx.key = key
        x[key] = value
        return x

    @staticmethod
    def backward(ctx, grad):
        # overwritten elements get no gradient; the value gets what flowed to its slots
        key = ctx.key
        grad_x = grad_value = None
        if ctx.needs_input_grad[0]:
            kept = np.ones(grad.shape, dtype=grad._data.dtype)
            kept[key] = 0
            grad_x = grad * Tensor._make(kept)
        if ctx.needs_input_grad[1]:
            grad_value = getitem(grad, key)
        return grad_x, grad_value


def setitem(input: Tensor, key, value) -> None:
    """``input[key] = value``: in place; recorded when ``input`` or ``value`` requires grad."""
    from .elementwise import _as_operand, _cast

    key = _convert_key(key)
    if not isinstance(value, Tensor):
        value = _as_operand(value, input.dtype)
    elif value._data.dtype != input._data.dtype:
        value = _cast(value, input.dtype)
    recording = _grad_state.enabled and (input._requires_grad or value._requires_grad)
    if recording and input.grad_fn is None and input._requires_grad:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation."
        )
    if recording and input._base is not None and input._base._requires_grad:
        raise RuntimeError(
            "chainrule does not support in-place writes into a view of a tensor that requires "
            "grad; write into the base tensor (x[i, j] = v) or use out-of-place ops"
        )
    if not input._data.flags.writeable:
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation."
        )
    if not recording:
        input._data[key] = value._data
        input._version_box[0] += 1
        return
    out = IndexPut.apply(input, value, key=key)
    input._version_box[0] += 1
    input.grad_fn = out.grad_fn
    input._output_nr = 0
    input._requires_grad = True
