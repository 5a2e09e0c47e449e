"""Batched backward rules: each op's rule for an output gradient with a leading batch dim B, run
once by autograd.batched_grad's walk (jacrev, functional.jacobian, is_grads_batched) instead of
the op's ordinary rule once per row.

A rule takes the node (the ctx its forward filled) and the batched gradient, and returns one
gradient per input with the same leading dim B; the walk sums what broadcast and casts to the
input's dtype, as the engine does for the ordinary rules. A class without a rule here runs row
by row: still exact, only slower. The rules are grouped by op family, each beside the ordinary
rule's formula it restates with the batch dim in front.

The rules are written in Tensor ops, as the ordinary ones are: in a plain walk (grad mode off)
they record nothing, and in a recorded walk (an inner Jacobian under an outer transform: a
Hessian) they record a graph the outer walk differentiates. Every op they record has a rule
here too, so that outer walk is batched as well.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module, is_array
from ..autograd.batched_grad import CatRows, StackRows, UnstackRows, broadcasting_rule, register_batched_rule
from ..autograd.engine import SumToSize
from ..autograd.function import is_recording
from ..tensor import Tensor
from . import activation, elementwise, index, linalg, linear, reduce, shape
from .elementwise import conjugate_rule

__all__: list = []


def _batch_dim(dim: int, ndim: int) -> int:
    """Where an unbatched tensor's dim ``dim`` (of ``ndim``) sits once the batch dim leads."""
    return dim % ndim + 1


def _times_matrix(g: Tensor, m: Tensor) -> Tensor:
    """``g (..., p) @ m (p, q)`` as one GEMM over all of g's leading dims (NumPy's matmul of a
    stack runs one small GEMM per matrix)."""
    rows = math.prod(g.shape[:-1])
    shape = tuple(g.shape[:-1]) + (m.shape[-1],)
    if not is_recording(g, m):  # the same GEMM on the arrays, without four Tensor ops' overhead
        return Tensor._make((g._data.reshape(rows, g.shape[-1]) @ m._data).reshape(shape))
    return (g.reshape(rows, g.shape[-1]) @ m).reshape(shape)


def _matrix_times(m: Tensor, g: Tensor) -> Tensor:
    """``m (q, p) @ g (..., p, r)`` as one GEMM: g's contracted dim moved to the front."""
    if not is_recording(m, g):  # (as _times_matrix)
        xp = array_module(g._data)
        moved = xp.moveaxis(g._data, -2, 0)
        product = m._data @ moved.reshape(moved.shape[0], math.prod(moved.shape[1:]))
        return Tensor._make(xp.moveaxis(product.reshape((m.shape[0],) + moved.shape[1:]), 0, -2))
    moved = g.movedim(-2, 0)
    product = m @ moved.reshape(moved.shape[0], math.prod(moved.shape[1:]))
    return product.reshape((m.shape[0],) + tuple(moved.shape[1:])).movedim(0, -2)


# ---------------------------------------------------------------- elementwise
# Rules that multiply the gradient by factors of the saved values (which have the output's
# shape or broadcast to it) — or pass it through — broadcast over a leading batch dim as they are.
register_batched_rule(
    elementwise.ToCopy, elementwise.Add, elementwise.Sub, elementwise.RSub, elementwise.Mul, elementwise.Div,
    elementwise.Neg, elementwise.Pow, elementwise.PowScalar, elementwise.RPowScalar, elementwise.Abs,
    elementwise.Maximum, elementwise.Minimum, elementwise.Where, elementwise.Clamp,
    *(op.function for op in (
        elementwise.exp, elementwise.exp2, elementwise.expm1, elementwise.log, elementwise.log1p, elementwise.log2,
        elementwise.log10, elementwise.sqrt, elementwise.rsqrt, elementwise.square, elementwise.reciprocal,
        elementwise.sin, elementwise.cos, elementwise.tan, elementwise.asin, elementwise.acos, elementwise.atan,
        elementwise.sinh, elementwise.cosh, elementwise.tanh, elementwise.erf, elementwise.sigmoid,
        elementwise.sign, elementwise.floor, elementwise.ceil, elementwise.trunc, elementwise.frac,
        elementwise._round)),
    activation.Relu, activation.LeakyRelu, activation.Hardtanh, activation.Threshold, activation.Hardshrink,
    activation.Softshrink, activation.Elu, activation.Celu, activation.Gelu, activation.Silu, activation.Mish,
    activation.Softplus, activation.LogSigmoid, activation.Hardsigmoid, activation.Hardswish,
    shape.Clone,
    # second order (a Hessian's outer Jacobian walks the recorded backward): the same kind of rule
    activation.GeluBackward, activation.SiluBackward,
)(broadcasting_rule)


# ---------------------------------------------------------------- matrix products
@register_batched_rule(linear.WeightT)
def _weight_t(node, grad):
    # Wᵀ: the gradient transposed back
    return grad.transpose(-1, -2)


@register_batched_rule(linear.Addmm, linear.Mm)
def _addmm(node, grad):
    # y = b + x Wᵀ for x (rows, in), Wᵀ (in, out), per row of G: ∂/∂x = G W, ∂/∂Wᵀ = xᵀ G, ∂/∂b = G
    # summed over the rows (a bias of rows takes G itself; the walk sums what broadcast)
    x, w_t = node.saved_values
    needs = node.needs_input_grad
    with_bias = len(needs) == 3
    need_b, need_x, need_w = needs if with_bias else (False,) + tuple(needs)
    grads = (_times_matrix(grad, w_t.mT) if need_x else None, _matrix_times(x.mT, grad) if need_w else None)
    if not with_bias:
        return grads
    grad_b = None
    if need_b:
        grad_b = grad.sum(1) if len(node._input_meta[0][0]) <= 1 else grad
    return (grad_b,) + grads


@register_batched_rule(linear.LinearBackward)
def _linear_backward(node, *grad_grads):
    # gx = G W, gW = Gᵀ x, gb = Σ G are bilinear: each input's gradient pairs the other with Ū
    grad, x, w = node.saved_values
    remaining = iter(grad_grads)
    u_x, u_w, u_b = (None if not need else next(remaining) for need in node.needs)
    needs = linear.matrix_needs(node)
    batch = next(u.shape[0] for u in (u_x, u_w, u_b) if u is not None)
    rows = math.prod(grad.shape[:-1])
    g_rows = grad.reshape(rows, grad.shape[-1])
    x_rows = None if x is None else x.reshape(rows, x.shape[-1])
    grad_g = grad_x = grad_w = None
    if needs[0]:
        parts = []
        if u_x is not None:
            parts.append(_times_matrix(u_x, w.mT))
        if u_w is not None:
            parts.append(_matrix_times(x_rows, u_w.transpose(-1, -2)).reshape((batch,) + tuple(grad.shape)))
        if u_b is not None:
            parts.append(u_b.reshape((batch,) + (1,) * (grad.ndim - 1) + tuple(grad.shape[-1:]))
                         .expand((batch,) + tuple(grad.shape)))
        grad_g = sum(parts[1:], parts[0]) if parts else None
    if needs[1] and u_w is not None:
        grad_x = _matrix_times(g_rows, u_w).reshape((batch,) + tuple(x.shape))
    if needs[2] and u_x is not None:
        grad_w = _matrix_times(g_rows.mT, u_x.reshape(batch, rows, w.shape[-1]))
    return linear.per_input(node, grad_g, grad_x, grad_w)


@register_batched_rule(linalg.Matmul, linalg.Mm, linalg.Bmm, linalg.Mv, linalg.Dot)
@conjugate_rule  # bilinear: for complex operands, grad_A = G Bᴴ
def _matmul(node, grad):
    # d(A B) = dA B + A dB: grad_A = G Bᵀ, grad_B = Aᵀ G (1-D operands as a row / a column)
    b, a = node.saved_values
    a_ndim, b_ndim = node.ndims
    if a_ndim == 1 and b_ndim == 1:  # a dot product: G has shape (B,)
        column = grad.unsqueeze(1)
        return (column * b if b is not None else None), (column * a if a is not None else None)
    if b_ndim == 1:
        grad = grad.unsqueeze(-1)
        b = None if b is None else b.unsqueeze(1)
    if a_ndim == 1:
        grad = grad.unsqueeze(-2)
        a = None if a is None else a.unsqueeze(0)
    grad_a = grad_b = None
    if b is not None:
        grad_a = _times_matrix(grad, b.mT) if b.ndim == 2 else grad @ b.transpose(-1, -2)
        if a_ndim == 1:
            grad_a = grad_a.select(-2, 0)
    if a is not None:
        grad_b = _matrix_times(a.mT, grad) if a.ndim == 2 else a.transpose(-1, -2) @ grad
        if b_ndim == 1:
            grad_b = grad_b.select(-1, 0)
    return grad_a, grad_b


# ---------------------------------------------------------------- reductions
def _spread(node, g: Tensor) -> Tensor:
    """A reduction's batched gradient copied back over the reduced dims (reinserted as size 1)."""
    batch, input_shape = g.shape[0], node.shape
    if not node.keepdim and node.dims:
        g = g.reshape((batch,) + tuple(1 if i in node.dims else s for i, s in enumerate(input_shape)))
    return g.expand((batch,) + tuple(input_shape))


@register_batched_rule(reduce.Sum, reduce.SumDim)
def _sum(node, grad):
    # every input element contributes once to its sum
    return _spread(node, grad)


@register_batched_rule(SumToSize)
def _sum_to_size(node, grad):
    # the engine's broadcast undone: the gradient expanded back over the dims it summed
    batch, shape = grad.shape[0], tuple(node.shape)
    lead = len(shape) - (grad.ndim - 1)
    return grad.reshape((batch,) + (1,) * lead + tuple(grad.shape[1:])).expand((batch,) + shape)


@register_batched_rule(reduce.Mean, reduce.MeanDim)
def _mean(node, grad):
    # d mean = d sum / n
    return _spread(node, grad / node.count)


@register_batched_rule(reduce.Softmax)
def _softmax(node, grad):
    (y,) = node.saved_values
    return reduce.SoftmaxBackward.apply(grad, y, dim=_batch_dim(node.dim, y._data.ndim))


@register_batched_rule(reduce.LogSoftmax)
def _log_softmax(node, grad):
    # (LogSoftmaxBackward's kept-softmax fast path reads a gradient of the output's own shape)
    (y,) = node.saved_values
    return reduce.LogSoftmaxBackward.apply(grad, y, dim=_batch_dim(node.dim, y._data.ndim))


@register_batched_rule(reduce.SoftmaxBackward)
def _softmax_backward(node, u):
    # z = y ∘ (g - ⟨g, y⟩) is bilinear in (g, y); u has the batch dim in front of z's dims, and the
    # saved g and y broadcast to z (a recorded walk's g carries its own batch dim, y none)
    grad, y = node.saved_values
    dim = node.dim % max(grad.ndim, y.ndim, 1)
    needs = node.needs_input_grad
    grad_g = reduce.SoftmaxBackward.apply(u, y, dim=dim + 1) if needs[0] else None
    grad_y = None
    if needs[1]:
        grad_y = (u * (grad - reduce.sum(grad * y, dim, keepdim=True))
                  - grad * reduce.sum(u * y, dim + 1, keepdim=True))
    return grad_g, grad_y


@register_batched_rule(reduce.LogSoftmaxBackward)
def _log_softmax_backward(node, u):
    # z = g - exp(y)·Σg: ∂/∂g = u - Σ(u ∘ exp(y)), ∂/∂y = -u ∘ exp(y)·Σg (g and y broadcast to z, as
    # in _softmax_backward)
    grad, y = node.saved_values
    dim = node.dim % max(grad.ndim, y.ndim, 1)
    needs = node.needs_input_grad
    softmax_y = elementwise.exp(y)
    grad_g = u - reduce.sum(u * softmax_y, dim + 1, keepdim=True) if needs[0] else None
    grad_y = -(u * softmax_y) * reduce.sum(grad, dim, keepdim=True) if needs[1] else None
    return grad_g, grad_y


# ---------------------------------------------------------------- shapes
@register_batched_rule(shape.Reshape, shape.UnsafeView)
def _reshape(node, grad):
    return grad.reshape((grad.shape[0],) + tuple(node.input_shape))


@register_batched_rule(shape.Expand)
def _expand(node, grad):
    # the walk sums a gradient over the dims its input was broadcast along
    return grad


@register_batched_rule(shape.Permute)
def _permute(node, grad):
    inverse = sorted(range(len(node.dims)), key=node.dims.__getitem__)
    return grad.permute((0,) + tuple(1 + d for d in inverse))


@register_batched_rule(shape.Transpose)
def _transpose(node, grad):
    ndim = grad.ndim - 1
    if ndim == 0:
        return grad
    dim0, dim1 = node.swap
    return grad.transpose(_batch_dim(dim0, ndim), _batch_dim(dim1, ndim))


@register_batched_rule(shape.Cat)
def _cat(node, grad):
    # each input gets back its own slab; a skipped legacy empty (0,) input an empty gradient
    axis = _batch_dim(node.dim, grad.ndim - 1)
    bounds = np.cumsum([0] + list(node.sizes))
    slabs = iter(grad.narrow(axis, int(start), int(stop - start)) for start, stop in zip(bounds[:-1], bounds[1:]))
    return tuple(grad.new_zeros((grad.shape[0], 0)) if i in node.skipped else next(slabs)
                 for i in range(len(node.sizes) + len(node.skipped)))


@register_batched_rule(shape.Split, shape.SplitWithSizes, shape.Unbind)
def _split_unbind(node, *grads):
    # the pieces' gradients joined back along dim, one place further for the batch dim (zeros
    # for a piece that got none); unbind's pieces lost dim, so they are stacked instead. Written
    # in Tensor ops so that a recorded walk (an inner Jacobian) differentiates through it
    some = next(g for g in grads if g is not None)
    parts = [some.new_zeros((some.shape[0],) + tuple(node._output_meta[i][0])) if g is None else g
             for i, g in enumerate(grads)]
    axis = node.dim + 1
    if node._forward_cls is shape.Unbind:
        return shape.stack(parts, axis)
    return shape.cat(parts, axis)


@register_batched_rule(StackRows)
def _stack_rows(node, grad):
    # a Jacobian's rows (an inner jacrev under an outer one: a Hessian) each get their own slice
    return tuple(grad.select(1, i) for i in range(grad.shape[1]))


@register_batched_rule(UnstackRows)
def _unstack_rows(node, *grads):
    # each row's gradient back in its place, behind the batch dim (zeros for a row none reached)
    present = next(g for g in grads if g is not None)
    zeros = present.new_zeros(tuple(present.shape)) if any(g is None for g in grads) else None
    return StackRows.apply(*(zeros if g is None else g for g in grads)).transpose(0, 1)


@register_batched_rule(CatRows)
def _cat_rows(node, grad):
    # a Jacobian's chunks of rows each get their own slab
    return tuple(grad.narrow(1, start, stop - start) for start, stop in node.bounds)


# ---------------------------------------------------------------- indexing
@register_batched_rule(index.Index, index.Select, index.Slice, index.Unsqueeze, index.Alias)
def _index(node, grad):
    # the read's adjoint scatters into zeros, one more full slice in front for the batch dim
    key = node.key if isinstance(node.key, tuple) else (node.key,)
    if not _advanced_indices_adjacent(key):
        return NotImplemented  # NumPy would move the indexed dims ahead of the batch dim
    mode = "add" if node.mode == "rows" else node.mode  # ("rows" sums along axis 0, now the batch dim)
    return index.IndexScatter.apply(grad, key=(slice(None),) + key, shape=(grad.shape[0],) + tuple(node.shape),
                                    mode=mode)


@register_batched_rule(index.IndexScatter)
def _index_scatter(node, grad):
    # the scatter's adjoint reads the gradient back at the key, behind the batch dim
    key = node.key if isinstance(node.key, tuple) else (node.key,)
    if not _advanced_indices_adjacent(key):
        return NotImplemented
    return index.Index.apply(grad, key=(slice(None),) + key, mode="add" if node.mode == "rows" else node.mode)


def _advanced_indices_adjacent(key: tuple) -> bool:
    """Whether the advanced indices of ``key`` (arrays, bools, and integers once an array is
    there) stand next to each other, so NumPy keeps their result dims in place."""
    arrays = any(is_array(k) for k in key)
    advanced = [i for i, k in enumerate(key)
                if is_array(k) or isinstance(k, (bool, np.bool_)) or arrays and isinstance(k, (int, np.integer))]
    return not advanced or advanced[-1] - advanced[0] + 1 == len(advanced)
