"""Batched backward rules: each op's rule for an output gradient with a leading batch dim B, run
once by autograd.batched_grad's walk (jacrev, functional.jacobian, is_grads_batched) instead of
the op's ordinary rule once per row.

A rule takes the node (the ctx its forward filled) and the batched gradient, and returns one
gradient per input with the same leading dim B; the walk sums what broadcast and casts to the
input's dtype, as the engine does for the ordinary rules. A class without a rule here runs row
by row: still exact, only slower. The rules are grouped by op family, each beside the ordinary
rule's formula it restates with the batch dim in front; those of the neural-network ops (norms,
convolution, pooling, embedding, losses) are in batched_rules_nn.py.

The rules are written in Tensor ops, as the ordinary ones are: in a plain walk (grad mode off)
they record nothing, and in a recorded walk (an inner Jacobian under an outer transform: a
Hessian) they record a graph the outer walk differentiates. Every op they record has a rule
here too, so that outer walk is batched as well.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module, is_array
from ..autograd import function as _function
from ..autograd.batched_grad import CatRows, StackRows, UnstackRows, broadcasting_rule, register_batched_rule
from ..autograd.engine import SumToScalar, SumToSize
from ..autograd.function import is_recording
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor
from . import (
    activation,
    complex,
    decompositions,
    elementwise,
    fft,
    index,
    linalg,
    linear,
    reduce,
    scatter_views,
    shape,
    special_functions,
    statistics,
    structural,
)
from .elementwise import conjugate_rule
from .second_order import depending_on

__all__: list = []


def _batch_dim(dim: int, ndim: int) -> int:
    """Where an unbatched tensor's dim ``dim`` (of ``ndim``) sits once the batch dim leads."""
    return dim % ndim + 1


def _times_matrix(g: Tensor, m: Tensor) -> Tensor:
    """``g (..., p) @ m (p, q)`` as one GEMM over all of g's leading dims (NumPy's matmul of a
    stack runs one small GEMM per matrix)."""
    rows = math.prod(g.shape[:-1])
    shape = tuple(g.shape[:-1]) + (m.shape[-1],)
    # the same GEMM on the arrays, without four Tensor ops' overhead (unless a vmap records its ops)
    if not is_recording(g, m) and not _function.tracing_ops:
        return Tensor._make((g._data.reshape(rows, g.shape[-1]) @ m._data).reshape(shape))
    return (g.reshape(rows, g.shape[-1]) @ m).reshape(shape)


def _matrix_times(m: Tensor, g: Tensor) -> Tensor:
    """``m (q, p) @ g (..., p, r)`` as one GEMM: g's contracted dim moved to the front."""
    if not is_recording(m, g) and not _function.tracing_ops:  # (as _times_matrix)
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
    elementwise.ToCopy, elementwise.Add, elementwise.Sub, elementwise.AddScaled, elementwise.SubScaled,
    elementwise.RSub, elementwise.RSubTensors, elementwise.Mul, elementwise.Div, elementwise.DivNumber,
    elementwise.MulNumber,
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
    activation.Softplus, activation.LogSigmoid, activation.Hardsigmoid, activation.Hardswish, activation.Prelu,
    activation.RreluWithNoise,
    shape.Clone,
    # second order (a Hessian's outer Jacobian walks the recorded backward): the same kind of rule
    activation.GeluBackward, elementwise.TanhAdjoint, elementwise.SigmoidAdjoint,
    # elementwise in two operands, or the special functions' derivative at the saved values
    elementwise.Atan2, elementwise.Hypot, elementwise.Xlogy, index.MaskedFill, index.MaskedFillTensor,
    special_functions.Acosh, special_functions.Asinh, special_functions.Atanh, special_functions.Copysign,
    special_functions.Digamma, special_functions.Erfc, special_functions.Erfinv, special_functions.I0,
    special_functions.Lgamma, special_functions.Logit, special_functions.Sinc, special_functions.SpecialErfcx,
    special_functions.SpecialI0E, special_functions.SpecialI1, special_functions.SpecialI1E,
    special_functions.SpecialLogNdtr, special_functions.SpecialNdtri, special_functions.Polygamma,
    special_functions.Mvlgamma, special_functions.ScaledBy, elementwise.Fmod, elementwise.Remainder,
    linalg.Inverse, linalg.Det,
    linalg.Slogdet, special_functions.Igamma, special_functions.Igammac,
    # they act on the trailing two dims only, so the batch dim rides along
    shape.Tril, shape.Triu,
    # complex parts and views: elementwise, or on the last dim only
    complex.Real, complex.Imag, elementwise.Conj, elementwise.InternalConj, complex.ConjPhysical, complex.Angle,
    complex.ComplexOp, complex.ViewAsReal, complex.ViewAsComplex,
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


@register_batched_rule(linalg.AlphaMm, linalg.AlphaBmm, linalg.AlphaMv)
def _alpha_matmul(node, grad):
    # the add-a-product ops' alpha·(A B): each factor's gradient the product's, then times alpha (its backward's order)
    alpha = node.alpha
    return tuple(None if g is None else g * alpha for g in _matmul(node, grad))


@register_batched_rule(linalg.AlphaOuter)
def _alpha_outer(node, grad):
    # addr's outer(alpha·vec1, vec2): (G vec2)·α, (Gᵀ vec1)·α for each row G of the batch
    vec1, vec2 = node.saved_values
    alpha = node.alpha
    grad1 = None if vec2 is None else linalg.matmul(grad, vec2)
    grad2 = None if vec1 is None else linalg.matmul(grad.mT, vec1)
    if alpha != 1:
        grad1, grad2 = (None if g is None else g * alpha for g in (grad1, grad2))
    return grad1, grad2


# β·input + product at β = 0: elementwise in the gradient (grad·0, grad)
register_batched_rule(linalg.ProductIgnoringInput)(broadcasting_rule)


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


@register_batched_rule(SumToSize, SumToScalar)
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
@register_batched_rule(shape.Reshape, shape.UnsafeView, shape.SqueezeView, shape.UnsqueezeView)
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


@register_batched_rule(shape.Stack)
def _stack(node, grad):
    # each input gets back its slice along the new dim, one place further for the batch dim
    return grad.unbind(node.dim + 1)


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


@register_batched_rule(index.IndexScatter, index.SelectScatter, index.SliceScatter)
def _index_scatter(node, grad):
    # the scatter's adjoint reads the gradient back at the key, behind the batch dim
    key = node.key if isinstance(node.key, tuple) else (node.key,)
    if not _advanced_indices_adjacent(key):
        return NotImplemented
    return index.Index.apply(grad, key=(slice(None),) + key, mode="add" if node.mode == "rows" else node.mode)


@register_batched_rule(index.IndexPut)
def _index_put(node, grad):
    # overwritten elements get no gradient; the value gets what flowed to its slots, read behind
    # the batch dim (the walk sums what the value broadcast over)
    key = node.key if isinstance(node.key, tuple) else (node.key,)
    if not _advanced_indices_adjacent(key):
        return NotImplemented
    needs = node.needs_input_grad
    grad_x = grad_value = None
    if needs[0]:
        kept = array_module(grad._data).ones(tuple(grad.shape[1:]), dtype=grad._data.dtype)
        kept[node.key] = 0
        grad_x = grad * Tensor._make(kept)
    if needs[1]:
        grad_value = index.getitem(grad, (slice(None),) + key)
    return grad_x, grad_value


@register_batched_rule(scatter_views.SliceScatter, scatter_views.SelectScatter, scatter_views.DiagonalScatter)
def _view_scatter(node, grad):
    # d out = d input off the region + d src on it: the region zeroed in the input's gradient and
    # read behind the batch dim for src's (a diagonal's region: its two dims moved to the end,
    # where its key's (..., rows, cols) reads it past the batch dim too)
    region = node.region
    key = region.key if isinstance(region.key, tuple) else (region.key,)
    if region.dims is None and not _advanced_indices_adjacent(key):
        return NotImplemented
    needs = node.needs_input_grad
    grad_input = grad_src = None
    if needs[0]:
        kept = array_module(grad._data).ones(tuple(grad.shape[1:]), dtype=grad._data.dtype)
        region.view(kept)[region.key] = 0  # (a view of kept: the write lands in it)
        grad_input = grad * Tensor._make(kept)
    if needs[1]:
        if region.dims is None:
            grad_src = index.getitem(grad, (slice(None),) + key)
        else:
            moved = grad.movedim(tuple(d + 1 for d in region.dims), (-2, -1))
            grad_src = index.getitem(moved, tuple(Tensor._make(k) if is_array(k) else k for k in key))
    return grad_input, grad_src


@register_batched_rule(scatter_views.AsStrided)
def _as_strided(node, grad):
    # each output element's gradient added into the storage position it reads, the input's
    # positions read back: one storage row per batch row
    input_shape, input_stride, input_offset, size, stride, storage_offset, storage_size = node.geometry
    xp, batch = array_module(grad._data), grad.shape[0]
    read = Tensor._make(scatter_views._positions(xp, size, stride, storage_offset).reshape(-1))
    back = Tensor._make(scatter_views._positions(xp, input_shape, input_stride, input_offset).reshape(-1))
    storage = grad.new_zeros((batch, storage_size)).index_add(1, read, grad.reshape(batch, -1))
    return storage.index_select(1, back).reshape((batch,) + tuple(input_shape))


def _advanced_indices_adjacent(key: tuple) -> bool:
    """Whether the advanced indices of ``key`` (arrays, bools, and integers once an array is
    there) stand next to each other, so NumPy keeps their result dims in place."""
    arrays = any(is_array(k) for k in key)
    advanced = [i for i, k in enumerate(key)
                if is_array(k) or isinstance(k, (bool, np.bool_)) or arrays and isinstance(k, (int, np.integer))]
    return not advanced or advanced[-1] - advanced[0] + 1 == len(advanced)


# ---------------------------------------------------------------- more reductions
def _reinserted(node, grad: Tensor) -> Tensor:
    """A reduction's batched gradient with its reduced dims back as size 1, behind the batch dim
    (``reduce._keep`` with the batch dim in front): it broadcasts against the input."""
    shape = node._input_meta[0][0]
    if node.keepdim or grad.ndim - 1 == len(shape):
        return grad
    dims = range(len(shape)) if node.dims is None else node.dims
    return grad.reshape((grad.shape[0],) + tuple(1 if i in dims else s for i, s in enumerate(shape)))


def _kept(node, t: Tensor) -> Tensor:
    """A reduction's saved output with its reduced dims back as size 1 (no batch dim)."""
    shape = node._input_meta[0][0]
    if node.keepdim or t.ndim == len(shape):
        return t
    dims = range(len(shape)) if node.dims is None else node.dims
    return t.reshape(tuple(1 if i in dims else s for i, s in enumerate(shape)))


@register_batched_rule(reduce.Cumsum)
def _cumsum(node, grad):
    # dx_i = Σ_{j ≥ i} g_j: a reversed cumulative sum, one dim further for the batch dim
    return reduce._reversed_cumsum(grad, _batch_dim(node.dim, len(node._input_meta[0][0])))


@register_batched_rule(reduce.Cumprod)
def _cumprod(node, grad):
    # without zeros dx_i = Σ_{j ≥ i} g_j y_j / x_i; with zeros the ordinary rule's n x n products
    # Π_{k ≤ j, k ≠ i} x_k (built once, unbatched) weigh each row's g_j, j ≥ i
    x, y = node.saved_values
    xp = array_module(x._data)
    if grad._data.dtype.kind == "c" or not x.ndim:
        return NotImplemented
    dim = _batch_dim(node.dim, x.ndim)
    if not xp.any(x._data == 0):
        return reduce._reversed_cumsum(y * grad, dim) / x
    n = x.shape[node.dim]
    moved = x.movedim(node.dim, -1)
    square = moved.unsqueeze(-2).expand(*moved.shape[:-1], n, n)
    products = reduce.cumprod(elementwise.where(Tensor._make(xp.eye(n, dtype=bool)), 1.0, square), -1)
    upper = Tensor._make(xp.triu(xp.ones((n, n), dtype=x._data.dtype)))
    return (products * upper * grad.movedim(dim, -1).unsqueeze(-2)).sum(-1).movedim(-1, dim)


@register_batched_rule(statistics.Logcumsumexp)
def _logcumsumexp(node, grad):
    # the ordinary rule's log-space reversed sums, one dim further for the batch dim
    x, out = node.saved_values
    if not x.ndim:
        return grad
    return statistics._logcumsumexp_grad(x, out, grad, _batch_dim(node.dim, x.ndim))


@register_batched_rule(reduce.Prod, reduce.ProdDim)
def _prod(node, grad):
    # d prod = Σ_i (Π_{k≠i} x_k) dx_i; without zeros Π_{k≠i} x_k = out / x_i
    x, out = node.saved_values
    if grad._data.dtype.kind == "c":
        return NotImplemented  # (the ordinary rule conjugates)
    if not x.ndim:
        return grad
    grad = _reinserted(node, grad)
    xp = array_module(x._data)
    zeros = int(xp.count_nonzero(x._data == 0))
    if not zeros:
        return grad * (_kept(node, out) / x)
    if node._forward_cls is reduce.ProdDim:
        return reduce._prod_safe_zeros(grad, x, node.dims[0])
    if zeros > 1 and not is_grad_enabled():
        return Tensor._make(xp.zeros((grad.shape[0], *x.shape), dtype=grad._data.dtype))
    flat = reduce._prod_safe_zeros(grad.reshape((grad.shape[0], 1)), x.reshape(-1), 0)
    return flat.reshape((grad.shape[0], *x.shape))


@register_batched_rule(reduce.MedianAll, statistics.NanmedianAll)
def _median_all(node, grad):
    # the gradient goes to the elements equal to the median (NaNs count as equal), split evenly; each
    # row's to its median element alone (median_of_rows: vmap's median() of each slice)
    flat, out = node.saved_values
    if getattr(node, "along", False):
        index = np.broadcast_to(node.index, (grad.shape[0], *node.index.shape))
        return reduce.ScatterAlong.apply(grad.unsqueeze(-1), index=index, dim=index.ndim - 1,
                                         shape=(grad.shape[0], *flat.shape))
    return reduce._split_among_equal(grad, flat, out, grad.reshape(grad.shape[0], 1), (0,), nan_is_equal=True,
                                     spread=True)  # (under vmap: torch's mask * share for wrapped tensors)


@register_batched_rule(reduce.Var)
def _var(node, grad):
    # d var = 2 (x - mean) / (n - correction) dx
    (x,) = node.saved_values[:1]
    scale = 2.0 / node.n_minus_correction if node.n_minus_correction else float("inf")
    return _reinserted(node, grad) * scale * (x - reduce.mean(x, node.dims, keepdim=True))


@register_batched_rule(reduce.Std)
def _std(node, grad):
    # d std = d var / (2 std), 0 where std is 0
    x, out = node.saved_values
    out = _kept(node, out)
    scaled = elementwise.where(Tensor._make(out._data == 0), 0.0, _reinserted(node, grad) / (2 * out))
    scale = 2.0 / node.n_minus_correction if node.n_minus_correction else float("inf")
    return scaled * scale * (x - reduce.mean(x, node.dims, keepdim=True))


@register_batched_rule(reduce.Logsumexp)
def _logsumexp(node, grad):
    # d logsumexp = softmax(x) dx = exp(x - out) dx
    x, out = node.saved_values
    return _reinserted(node, grad) * elementwise.exp(x - _kept(node, out))


@register_batched_rule(reduce.Norm)
def _norm(node, grad):
    # the ordinary rule's formulas; an ∞-norm's gradient goes to the extremal |x| (ties split evenly,
    # the ties counted once, unbatched)
    x, out = node.saved_values
    order = node.ord
    grad = _reinserted(node, grad)
    if order in (np.inf, -np.inf):
        return elementwise.sign(x) * reduce._split_among_equal(grad, elementwise.abs(x), _kept(node, out), grad,
                                                               node.dims, nan_is_equal=True, spread=True)
    if order == 0:
        return grad * 0.0 * x
    if order == 1:
        return grad * elementwise.sign(x)
    norm = _kept(node, out)
    safe = elementwise.where(Tensor._make(norm._data == 0), 1.0, norm)
    if order == 2:
        return x * (grad / safe)
    return grad * elementwise.sign(x) * elementwise.abs(x) ** (order - 1) / safe ** (order - 1)


@register_batched_rule(reduce.Amax, reduce.Amin, reduce.AmaxAll, reduce.AminAll)
def _amax(node, grad):
    # the gradient goes to the elements equal to the extremum, split evenly among them (max() and
    # min() count NaNs as equal, amax/amin do not: the ordinary rule's two cases)
    x, out = node.saved_values
    value, kept = _kept(node, out), _reinserted(node, grad)
    dims = tuple(range(x.ndim)) if node.dims is None else node.dims
    if node._forward_cls.nan_is_equal:
        return reduce._split_among_equal(grad, x, value, kept, dims, nan_is_equal=True, spread=True)
    mask = x._data == value._data
    count = array_module(mask).sum(mask, axis=dims, keepdims=True, dtype=grad._data.dtype)
    return kept / Tensor._make(count) * Tensor._make(mask.astype(grad._data.dtype))


def _batched_index(node, batch: int):
    """The node's index along its dim, the same for every row of the batch."""
    return array_module(node.index).broadcast_to(node.index, (batch,) + node.index.shape)


@register_batched_rule(reduce.Gather, reduce.MaxDim, reduce.MinDim, reduce.SortValues, reduce.SortStableValues,
                       reduce.TopkValues, reduce.MedianDim, reduce.NanmedianDim, reduce.KthvalueValues, reduce.ModeValues,
                       reduce.Cummax, reduce.Cummin)
def _picked_along(node, grad, *indices):
    # values picked along the dim (max/min/sort/topk/... and their indices output, which takes no
    # gradient): the gradient written back at the picked positions (summed where cummax/cummin
    # picked one twice)
    dim = _batch_dim(node.dim, len(node.shape))
    if not node.keepdim:
        grad = grad.unsqueeze(dim)
    scatter = reduce.ScatterAddAlong if issubclass(node._forward_cls, reduce.CumExtremum) else reduce.ScatterAlong
    return scatter.apply(grad, index=_batched_index(node, grad.shape[0]), dim=dim, shape=(grad.shape[0],) + node.shape)


@register_batched_rule(reduce.ScatterAlong, reduce.ScatterAddAlong)
def _scatter_along(node, grad):
    # (a pick's recorded backward): its adjoint picks again at the same index
    return reduce.Gather.apply(grad, index=_batched_index(node, grad.shape[0]),
                               dim=_batch_dim(node.dim, node.index.ndim), keepdim=True)


# ---------------------------------------------------------------- more shapes
@register_batched_rule(shape.Repeat)
def _repeat(node, grad):
    # each input element appears once per tile: the tile axes summed, the batch axis kept
    interleaved = tuple(n for pair in zip(node.repeats, node.padded) for n in pair)
    summed = grad.reshape((grad.shape[0],) + interleaved).sum(tuple(range(1, len(interleaved) + 1, 2)))
    return summed.reshape((grad.shape[0],) + tuple(node.input_shape))


@register_batched_rule(shape.Flip)
def _flip(node, grad):
    ndim = grad.ndim - 1
    return shape.flip(grad, tuple(_batch_dim(d, ndim) for d in node.dims)) if ndim else grad


@register_batched_rule(shape.Roll)
def _roll(node, grad):
    # rolled back by the opposite shifts; a roll without dims rolls each row flattened
    shifts = -node.shifts if isinstance(node.shifts, int) else tuple(-s for s in node.shifts)
    batch, ndim = grad.shape[0], grad.ndim - 1
    if node.dims is None or node.dims == ():
        rows = shape.Roll.apply(grad.reshape(batch, -1), shifts=shifts, dims=1)
        return rows.reshape(tuple(grad.shape))
    dims = _batch_dim(node.dims, ndim) if isinstance(node.dims, int) else tuple(_batch_dim(d, ndim) for d in node.dims)
    return shape.Roll.apply(grad, shifts=shifts, dims=dims)


@register_batched_rule(shape.ConstantPad)
def _constant_pad(node, grad):
    # padding's adjoint crops (and cropping's pads with zeros); the batch dim is neither
    return shape.ConstantPad.apply(grad, widths=((0, 0),) + tuple((-a, -b) for a, b in node.widths), value=0)


@register_batched_rule(shape.Unfold)
def _unfold(node, grad):
    # the windows' gradients added back where they overlap, one dim further for the batch dim
    dim, size, step = node.params
    if not node.input_shape:
        return NotImplemented
    return shape.UnfoldBackward.apply(grad, shape=(grad.shape[0],) + tuple(node.input_shape),
                                      params=(dim + 1, size, step))


@register_batched_rule(shape.UnfoldBackward)
def _unfold_backward(node, grad):
    # (unfold's recorded backward): its adjoint takes the windows again
    dim, size, step = node.params
    return shape.Unfold.apply(grad, dim=dim + 1, size=size, step=step)


@register_batched_rule(structural.BlockDiag)
def _block_diag(node, grad):
    # each block's gradient is its diagonal block of every row
    pieces, r, c = [], 0, 0
    for rows, cols in node.shapes:
        pieces.append(index.getitem(grad, (slice(None), slice(r, r + rows), slice(c, c + cols))))
        r, c = r + rows, c + cols
    return tuple(pieces)


@register_batched_rule(structural.DiagEmbed)
def _diag_embed(node, grad):
    # the gradient's diagonal in the plane the forward wrote, behind the batch dim
    ndim = grad.ndim - 1
    return grad.diagonal(node.offset, _batch_dim(node.dim1, ndim), _batch_dim(node.dim2, ndim))


@register_batched_rule(shape.ModePad, shape.ModePadAdjoint)
def _mode_pad(node, grad):
    # reflect/replicate/circular padding's adjoint folds the border back (and the fold's adjoint
    # pads again); the batch dim is left unpadded
    adjoint = shape.ModePadAdjoint if node._forward_cls is shape.ModePad else shape.ModePad
    folded = adjoint.apply(grad, widths=((0, 0),) + tuple(node.widths), mode=node.mode)
    kept = getattr(node, "torch_kept", None) if node._forward_cls is shape.ModePad else None
    if not kept:
        return folded
    # the ordinary rule's (zero) edge to the input under create_graph (second_order.depending_on)
    k = len(kept["padding"]) // 2
    return depending_on(folded, kept["self"],
                        node=f"{'Reflection' if node.mode == 'reflect' else 'Replication'}Pad{k}DBackwardBackward0")


# ---------------------------------------------------------------- more indexing
def _shifted_dim(node) -> int:
    return _batch_dim(node.dim, len(node._input_meta[0][0]))


@register_batched_rule(index.IndexSelect)
def _index_select(node, grad):
    # rows read k times get k gradients summed
    if not node.shape:
        return NotImplemented  # (a 0-d input)
    return index.index_add_into(grad, node.index, node.dim % len(node.shape) + 1, (grad.shape[0],) + tuple(node.shape))


@register_batched_rule(index.IndexAddInto)
def _index_add_into(node, grad):
    # (index_select's backward recorded: its adjoint reads the rows again)
    return None, index.IndexSelect.apply(grad, index=node.index, dim=_shifted_dim(node))


@register_batched_rule(index.Gather)
def _gather(node, grad):
    # each read element gets the gradient of every output that read it; the index is the same
    # for every row of the batch
    if not node.shape:
        return NotImplemented
    xp = array_module(node.index)
    rows = xp.broadcast_to(node.index, (grad.shape[0],) + node.index.shape)
    return index.scatter_add_into(grad, rows, node.dim % len(node.shape) + 1, (grad.shape[0],) + tuple(node.shape))


@register_batched_rule(index.ScatterAddInto)
def _scatter_add_into(node, grad):
    # (gather's backward recorded: its adjoint gathers at the same index, the same for every row)
    xp = array_module(node.index)
    rows = xp.broadcast_to(node.index, (grad.shape[0],) + node.index.shape)
    return None, index.Gather.apply(grad, index=rows, dim=node.dim % node.index.ndim + 1)


@register_batched_rule(index.ScatterAdd)
def _scatter_add(node, grad):
    # d/dx = identity; d/dsrc[j] = the gradient at the slot src[j] was added to (src's unused
    # tail gets zeros)
    grad_src = None
    if node.needs_input_grad[1]:
        rows = array_module(node.index).broadcast_to(node.index, (grad.shape[0],) + node.index.shape)
        picked = index.Gather.apply(grad, index=rows, dim=node.dim % node.index.ndim + 1)
        grad_src = index._pad_to(picked, (grad.shape[0],) + tuple(node.src_shape))
    return grad, grad_src


@register_batched_rule(index.IndexAdd)
def _index_add(node, grad):
    # d/dx = identity; d/dsource = alpha · the gradient of the slabs it was added to
    grad_source = None
    if node.needs_input_grad[1]:
        grad_source = index.IndexSelect.apply(grad, index=node.index, dim=_shifted_dim(node))
        if node.alpha != 1:
            grad_source = grad_source * node.alpha
    return grad, grad_source


@register_batched_rule(index.IndexFill, index.IndexCopy)
def _index_fill_copy(node, grad):
    # filled or copied-over slabs pass nothing to x; index_copy's source gets its slabs' gradient
    dim = _shifted_dim(node)
    needs = node.needs_input_grad
    grad_x = index.IndexFill.apply(grad, index=node.index, dim=dim, value=0) if needs[0] else None
    if node._forward_cls is index.IndexFill:
        return (grad_x,) + (None,) * (len(needs) - 1)
    return grad_x, index.IndexSelect.apply(grad, index=node.index, dim=dim) if needs[1] else None


@register_batched_rule(index.Scatter, index.ScatterValue)
def _scatter(node, grad):
    # overwritten slots pass nothing to x; each src element gets its slot's gradient
    rows = array_module(node.index).broadcast_to(node.index, (grad.shape[0],) + node.index.shape)
    dim = node.dim % node.index.ndim + 1 if node.index.ndim else 1
    needs = node.needs_input_grad
    grad_x = index.ScatterValue.apply(grad, index=rows, dim=dim, value=0) if needs[0] else None
    if node._forward_cls is index.ScatterValue:
        return (grad_x,) + (None,) * (len(needs) - 1)
    grad_src = None
    if needs[1]:
        grad_src = index._pad_to(index.Gather.apply(grad, index=rows, dim=dim), (grad.shape[0],) + tuple(node.src_shape))
    return grad_x, grad_src


@register_batched_rule(index.MaskedScatter)
def _masked_scatter(node, grad):
    # masked slots pass nothing to x; source element k gets each row's k-th masked slot
    mask, batch = node.mask, grad.shape[0]
    grad_x = grad_source = None
    if node.needs_input_grad[0]:
        grad_x = elementwise.where(Tensor._make(mask), 0.0, grad)
    if node.needs_input_grad[1]:
        picked = index.getitem(grad, (slice(None), Tensor._make(mask)))
        size = math.prod(node.source_shape)
        grad_source = index._pad_to(picked, (batch, size)).reshape((batch,) + tuple(node.source_shape))
    return grad_x, grad_source


@register_batched_rule(index.ScatterReduce)
def _scatter_reduce(node, grad):
    # the ordinary rule with the index repeated per row and its dim one further: prod gives each
    # factor G·out/v; amax/amin share G evenly among the values equal to the result (the shares
    # counted once, unbatched)
    x, src, out = node.saved_values
    index_array, dim, reduction, include_self, touched = node.params
    if not index_array.ndim or grad._data.dtype.kind == "c":
        return NotImplemented
    xp, batch = array_module(grad._data), grad.shape[0]
    rows = xp.broadcast_to(index_array, (batch,) + index_array.shape)
    src_used = src if src._data.shape == index_array.shape else src[tuple(slice(0, n) for n in index_array.shape)]
    touched_t = Tensor._make(touched)
    src_shape = (batch,) + tuple(src.shape)
    if reduction == "prod":
        grad_x = elementwise.where(touched_t, grad * out / x, grad) if include_self else \
            elementwise.where(touched_t, 0.0, grad)
        grad_src = index.Gather.apply(grad * out, index=rows, dim=dim + 1) / src_used
        return grad_x, index._pad_to(grad_src, src_shape)
    self_hit = x._data == out._data
    if not include_self:
        self_hit &= ~touched
    src_hit = index.Gather.apply(out, index=index_array, dim=dim)._data == src_used._data
    count = xp.array(self_hit, dtype=grad._data.dtype)
    index._scatter_add_array(count, index_array, dim, src_hit.astype(grad._data.dtype))
    shared = grad / Tensor._make(count)
    grad_x = elementwise.where(Tensor._make(self_hit), shared, 0.0)
    grad_src = elementwise.where(Tensor._make(src_hit), index.Gather.apply(shared, index=rows, dim=dim + 1), 0.0)
    return grad_x, index._pad_to(grad_src, src_shape)


# ---------------------------------------------------------------- fft
def _fft_dims(node) -> tuple:
    ndim = len(node._input_meta[0][0])
    return tuple(_batch_dim(d, ndim) for d in node.dims)


@register_batched_rule(fft.C2C)
def _fft_c2c(node, grad):
    # the adjoint transform over the same dims, one further for the batch dim
    return fft.C2C.apply(grad, dims=_fft_dims(node), norm=fft._DUAL[node.norm], inverse=not node.inverse)


@register_batched_rule(fft.R2C)
def _fft_r2c(node, grad):
    # the one-sided spectrum zero-padded to the full one, its inverse transform's real part
    dims = _fft_dims(node)
    missing = node.last - grad.shape[dims[-1]]
    if missing:
        grad = shape.pad(grad, [0, 0] * (grad.ndim - 1 - dims[-1]) + [0, missing])
    return fft.C2C.apply(grad, dims=dims, norm=fft._DUAL[node.norm], inverse=True).real


@register_batched_rule(fft.C2R)
def _fft_c2r(node, grad):
    # an rfft of each row, the bins that stand for a conjugate pair doubled
    dims = _fft_dims(node)
    spectrum = fft.R2C.apply(grad, dims=dims, norm=fft._DUAL[node.norm])
    bins = spectrum.shape[dims[-1]]
    doubled = grad.shape[dims[-1]] - bins
    if doubled <= 0:
        return spectrum
    scale = array_module(grad._data).ones(bins, dtype=spectrum.real._data.dtype)
    scale[1:1 + doubled] = 2
    return spectrum * Tensor._make(scale.reshape((bins,) + (1,) * (grad.ndim - 1 - dims[-1])))


# ---------------------------------------------------------------- linalg
@register_batched_rule(linalg.Trace)
def _trace(node, grad):
    # d trace(X) = Σ_i dX_ii: each row's gradient times the identity
    xp = array_module(grad._data)
    return grad.reshape(grad.shape[0], 1, 1) * Tensor._make(xp.eye(*node.shape, dtype=grad._data.dtype))


@register_batched_rule(linalg.Diagonal)
def _diagonal(node, grad):
    # the diagonal's gradient written back on it, zeros elsewhere, behind the batch dim
    shape, offset, dim1, dim2 = node.params
    ndim = len(shape)
    return linalg.DiagonalScatter.apply(grad, shape=(grad.shape[0],) + tuple(shape), offset=offset,
                                        dim1=_batch_dim(dim1, ndim), dim2=_batch_dim(dim2, ndim))


@register_batched_rule(linalg.DiagonalScatter)
def _diagonal_scatter(node, grad):
    # (the diagonal's recorded backward): its adjoint reads the diagonal again
    offset, dim1, dim2 = node.params
    ndim = grad.ndim - 1
    return linalg.Diagonal.apply(grad, offset=offset, dim1=_batch_dim(dim1, ndim), dim2=_batch_dim(dim2, ndim))


@register_batched_rule(linalg.EinsumSteps, linalg.EinsumProductSteps)
def _einsum_steps(node, grad):
    # torch's einsum steps recomputed through their ops, whose batched rules the walk then runs
    return linalg._einsum_steps_by_ops(node, grad, batched=True)


@register_batched_rule(linalg.Solve, decompositions.SolveTriangular, decompositions.Lstsq, decompositions.CholeskySolve)
def _solve(node, grad):
    # X = A⁻¹B (A⁺B for lstsq, (LLᵀ)⁻¹B for cholesky_solve): the ordinary rule's solves and
    # products broadcast over the batch dim. An input broadcast against the other's batch dims
    # (a right-hand side shared by a batch of A, say) gets a gradient with those dims after the
    # batch dim: they are summed here, as the engine sums them off the front of an ordinary one
    if grad._data.dtype.kind == "c":
        return NotImplemented
    grads = list(node._forward_cls.backward(node, grad))
    for k, (g, meta) in enumerate(zip(grads, node._input_meta)):
        extra = 0 if g is None else g.ndim - 1 - len(meta[0])
        if extra > 0:
            grads[k] = g.sum(tuple(range(1, 1 + extra)))
    return tuple(grads)


@register_batched_rule(decompositions.MatrixExp)
def _matrix_exp(node, grad):
    # the upper-right block of exp([[Aᵀ, G], [0, Aᵀ]]), Aᵀ repeated for every row of the batch
    (a,) = node.saved_values
    if grad._data.dtype.kind == "c":
        return NotImplemented
    n, at = a.shape[-1], a.mT.expand(*grad.shape)
    blocks = shape.cat([shape.cat([at, grad], -1), shape.cat([grad * 0, at], -1)], -2)
    return decompositions.MatrixExp.apply(blocks)[..., :n, n:]


@register_batched_rule(decompositions.Cholesky, decompositions.Eigh, decompositions.Svd, decompositions.Qr,
                       decompositions.Pinv, decompositions.CholeskyInverse, decompositions.Lu, decompositions.LuFactor)
def _matrix_factorization(node, *grads):
    # their rules are matrix products and triangular solves, which broadcast over a leading batch
    # dim; an output no gradient reached (the eigenvalues only, say) gets zeros, as the engine
    # gives the ordinary rule
    present = next(g for g in grads if g is not None)
    if present._data.dtype.kind == "c":
        return NotImplemented
    if node._output_meta is None:  # one output (pinv, cholesky_inverse)
        return node._forward_cls.backward(node, *grads)
    batch = present.shape[0]
    grads = tuple(present.new_zeros((batch,) + tuple(meta[0])) if g is None and meta[1] is not None
                  and meta[1].kind in "fc" else g for g, meta in zip(grads, node._output_meta))
    return node._forward_cls.backward(node, *grads)


