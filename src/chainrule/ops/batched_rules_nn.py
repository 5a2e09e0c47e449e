"""Batched backward rules of the neural-network ops: normalisation, convolution, pooling, the
embedding and the losses (see batched_rules.py for what a batched rule is). Samples are
independent in most of them, so the batch dim folds into the samples' dim: one call of the
op's adjoint serves every row.
"""

from __future__ import annotations

from .._backend import array_module
from ..autograd.batched_grad import broadcasting_rule, register_batched_rule
from ..autograd.function import is_recording
from ..tensor import Tensor
from . import conv, embedding, fractional_pool, loss, normalization, pool, shape
from .batched_rules import _batch_dim
from .second_order import depending_on

__all__: list = []

# elementwise rules (the gradient times factors of the saved values broadcast over the batch dim),
# and the fused norms' and nll_loss's recorded gradients: their backward differentiates the rule
# in Tensor ops by autograd.second_order, which takes batched cotangents in one batched walk
register_batched_rule(
    loss._LogSigmoid, loss._LogitCrossEntropyTerms, loss._BinaryCrossEntropy, embedding.ScaleGradient, pool.SeparableLinear,
    normalization.NormalizeBackward, normalization.LayerNormalizeBackward, normalization.GroupNormalizeBackward,
    normalization.BatchNormBackward, normalization.LayerNormBackward, loss._IndexClassLossBackward,
)(broadcasting_rule)


# ---------------------------------------------------------------- embedding
def _rows_behind(grad: Tensor) -> Tensor:
    """A batched gradient of shape (B, *lead, D) as (*lead, B·D): the batch folded into the row
    width, so an op on rows of D serves every row of the batch at once."""
    moved = grad.movedim(0, -2)
    return moved.reshape(tuple(moved.shape[:-2]) + (moved.shape[-2] * moved.shape[-1],))


def _rows_in_front(rows: Tensor, batch: int) -> Tensor:
    """``_rows_behind`` undone: (*lead, B·D) as (B, *lead, D)."""
    return rows.reshape(tuple(rows.shape[:-1]) + (batch, rows.shape[-1] // batch)).movedim(-2, 0)


@register_batched_rule(embedding.Embedding)
def _embedding(node, grad):
    # dW[r] = Σ_{i: idx_i = r} g_i for every row of the batch: one scatter of rows B·D wide
    summed = embedding.EmbeddingDenseBackward.apply(_rows_behind(grad), indices=node.indices, num_rows=node.num_rows,
                                                    padding_idx=node.padding_idx)
    return _rows_in_front(summed, grad.shape[0])


@register_batched_rule(embedding.EmbeddingDenseBackward)
def _embedding_dense_backward(node, grad):
    # (the embedding's backward recorded: its adjoint gathers the rows, none from padding_idx)
    if not 0 < len(node._input_meta[0][0]) == node.indices.ndim + 1:
        return NotImplemented
    read = _rows_in_front(embedding.Embedding.apply(_rows_behind(grad), indices=node.indices, padding_idx=None),
                          grad.shape[0])
    if node.padding_idx is None:
        return read
    return read * Tensor._make((node.indices != node.padding_idx)[..., None].astype(grad._data.dtype))


# ---------------------------------------------------------------- convolution
# Samples are independent in a convolution, so the batch folds into N for the input-side
# adjoints (one GEMM for every row); a filter's gradient sums over N, so it runs once per row.
def _as_samples(grad: Tensor) -> Tensor:
    """(B, N, C, *spatial) as (B·N, C, *spatial)."""
    return grad.reshape((grad.shape[0] * grad.shape[1],) + tuple(grad.shape[2:]))


def _per_row(function, grad: Tensor) -> Tensor:
    """``function`` of each row of the batched gradient, stacked."""
    return shape.stack([function(grad[b]) for b in range(grad.shape[0])])


def _conv_bias_grad(grad: Tensor) -> Tensor:
    # Σ over the samples and the spatial dims, per row
    return grad.sum((1,) + tuple(range(3, grad.ndim)))


@register_batched_rule(conv.Convolution)
def _convolution(node, grad):
    # x̄ = Cᵀ(ḡ, w), w̄ = C_w(x, ḡ), b̄ = Σ ḡ
    x, w = node.saved_values
    needs, geo, batch = node.needs_input_grad, node.geo, grad.shape[0]
    grads = (conv.ConvInput.apply(_as_samples(grad), w, geo=geo, c=node.in_channels)
             .reshape((batch,) + tuple(node._input_meta[0][0])) if needs[0] else None,
             _per_row(lambda g: conv.ConvWeight.apply(x, g, geo=geo, w_shape=node.w_shape), grad) if needs[1] else None)
    if len(needs) == 3:
        grads += (_conv_bias_grad(grad) if needs[2] else None,)
    return grads


@register_batched_rule(conv.ConvInput)
def _conv_input(node, u):
    # (conv_transpose, and conv's recorded input gradient): ḡ = C(u, w), w̄ = C_w(u, g), b̄ = Σ u
    g, w = node.saved_values
    needs, geo, batch = node.needs_input_grad, node.geo, u.shape[0]
    w_shape = tuple(node._input_meta[1][0])
    grads = (conv.Convolution.apply(_as_samples(u), w, geo=geo).reshape((batch,) + tuple(node._input_meta[0][0]))
             if needs[0] else None,
             _per_row(lambda v: conv.ConvWeight.apply(v, g, geo=geo, w_shape=w_shape), u) if needs[1] else None)
    if len(needs) == 3:
        grads += (_conv_bias_grad(u) if needs[2] else None,)
    return grads


@register_batched_rule(conv.Im2Col, conv.Col2Im)
def _im2col(node, grad):
    # F.unfold and F.fold are linear and per sample, each the other's adjoint: the batch folded
    # into the samples
    adjoint = conv.Col2Im if node._forward_cls is conv.Im2Col else conv.Im2Col
    if node.unbatched:  # one unbatched sample per row: the rows are the batch
        return adjoint.apply(grad, geo=node.geo)
    return _unfolded(adjoint.apply(_as_samples(grad), geo=node.geo), grad.shape[0])


@register_batched_rule(conv.ConvWeight)
def _conv_weight(node, v):
    # (conv's recorded filter gradient): x̄ = Cᵀ(g, v), ḡ = C(x, v), one row of filters at a time
    x, g = node.saved_values
    needs, geo = node.needs_input_grad, node.geo
    return (_per_row(lambda row: conv.ConvInput.apply(g, row, geo=geo, c=node._input_meta[0][0][1]), v)
            if needs[0] else None,
            _per_row(lambda row: conv.Convolution.apply(x, row, geo=geo), v) if needs[1] else None)


# ---------------------------------------------------------------- pooling
# Pools act on each (sample, channel) plane alone: the batch folds into the leading dim, and what
# the forward kept per sample (the maxima's offsets, the input) is tiled to match.
def _unfolded(result: Tensor, batch: int) -> Tensor:
    """(B·N, *rest) as (B, N, *rest)."""
    return result.reshape((batch, result.shape[0] // batch) + tuple(result.shape[1:]))


def _tiled(array, batch: int):
    """A per-sample array repeated for each row of the batch, as (B·N, *rest)."""
    xp = array_module(array)
    return xp.broadcast_to(array, (batch,) + array.shape).reshape((batch * array.shape[0],) + array.shape[1:])


@register_batched_rule(*pool._AVG_POOL.values(), pool.AvgPoolAdjoint)
def _avg_pool(node, grad):
    # y = A x is linear and the same for every sample: x̄ = Aᵀ ḡ of the folded rows (and back)
    return _unfolded(node._forward_cls.backward(node, _as_samples(grad)), grad.shape[0])


@register_batched_rule(*pool._MAX_POOL.values())
def _max_pooling(node, grad, *indices):
    # each window's gradient routed to its first maximum, found as the ordinary rule finds it (the
    # indices output, when returned, takes no gradient)
    batch = grad.shape[0]
    if node.which is not None:
        routed = pool.WindowScatter.apply(_as_samples(grad), which=_tiled(node.which, batch), geo=node.geo)
        return _kept_edge(_unfolded(routed, batch), node)
    (x,) = node.saved_values
    best = node.best
    if node.best_version is None or node.best_version[0] != 0:  # y was written in place
        best = pool._max_pool(x._data, node.geo, with_offsets=False)[0]
    routed = pool.FirstMaxScatter.apply(_as_samples(grad), x=_tiled(x._data, batch), best=_tiled(best, batch),
                                        geo=node.geo)
    return _kept_edge(_unfolded(routed, batch), node)


def _kept_edge(grad, node, *kept):
    """The batched gradient with the (zero) edge to the saved input that the ordinary rule records
    under create_graph (second_order.depending_on), so both walks' gradients require grad alike."""
    return depending_on(grad, *(kept or node.saved_values), node=type(node).__name__.removesuffix("0") + "Backward0")


@register_batched_rule(pool.FlatGather, pool.AdaptiveMaxPool, pool.AdaptiveMaxPool3D, fractional_pool.FractionalMaxPool,
                       fractional_pool.FractionalMaxPool3D)
def _flat_gather(node, grad, *indices):
    # (adaptive and fractional max pooling; the indices output takes no gradient): the gradient scatter-added to the picked flat positions of each plane
    return _kept_edge(_unfolded(pool.FlatScatter.apply(_as_samples(grad), indices=_tiled(node.indices, grad.shape[0]),
                                                       plane_shape=node.plane), grad.shape[0]), node)


@register_batched_rule(pool.FlatScatter)
def _flat_scatter(node, grad):
    # (max_unpool, and adaptive max pooling's recorded backward): gathered at the same positions
    return _unfolded(pool.FlatGather.apply(_as_samples(grad), indices=_tiled(node.indices, grad.shape[0]),
                                           plane_ndim=node.plane_ndim), grad.shape[0])


@register_batched_rule(pool.FirstMaxScatter)
def _first_max_scatter(node, grad):
    # (max pool's recorded backward): the gradient read back at each window's first maximum
    which = pool._max_pool(node.x, node.geo, with_offsets=True)[1]
    return _unfolded(pool.WindowGather.apply(_as_samples(grad), which=_tiled(which, grad.shape[0]), geo=node.geo),
                     grad.shape[0])


@register_batched_rule(pool.WindowScatter)
def _window_scatter(node, grad):
    return _unfolded(pool.WindowGather.apply(_as_samples(grad), which=_tiled(node.which, grad.shape[0]), geo=node.geo),
                     grad.shape[0])


@register_batched_rule(pool.WindowGather)
def _window_gather(node, grad):
    return _unfolded(pool.WindowScatter.apply(_as_samples(grad), which=_tiled(node.which, grad.shape[0]), geo=node.geo),
                     grad.shape[0])


# ---------------------------------------------------------------- losses
@register_batched_rule(loss._MseLoss)
def _mse_loss(node, grad):
    # d Σ(x - t)² = 2 (x - t) dx, over n for the mean; a reduced loss's gradient is one number a row
    x, t = node.saved_values
    diff = x - t
    if node.reduction != "none":
        grad = grad.reshape((grad.shape[0],) + (1,) * diff.ndim)
    grad_x = grad * 2 * diff
    if node.reduction == "mean":
        grad_x = grad_x / max(diff.numel(), 1)
    needs = node.needs_input_grad
    return grad_x if needs[0] else None, -grad_x if needs[1] else None


@register_batched_rule(loss._SmoothL1Loss, loss._HuberLoss, loss._SoftMarginLoss)
def _pointwise_loss(node, grad):
    # the gradient node broadcasts a batch of gradients (a reduced loss's one number a row) over x and t
    x, t = node.saved_values
    if node.reduction != "none":
        grad = grad.reshape((grad.shape[0],) + (1,) * x.dim())
    gradient, numel = node._forward_cls.gradient_node, x.numel()
    needs = node.needs_input_grad
    return (gradient.apply(grad, x, t, reduction=node.reduction, threshold=node.threshold, numel=numel)
            if needs[0] else None,
            gradient.apply(grad, t, x, reduction=node.reduction, threshold=node.threshold, numel=numel)
            if needs[1] else None)


@register_batched_rule(loss._MseLossBackward, loss._SmoothL1LossBackward, loss._HuberLossBackward,
                       loss._SoftMarginLossBackward)
def _pointwise_loss_backward(node, grad_grad):
    # linear in each input, so the batch dim rides along; but a reduced loss's gradient, one number,
    # takes the sum of each row (the rule's own sum would add up the whole batch)
    grad, x, t = node.saved_values
    needs = node.needs_input_grad
    gradient = node._forward_cls
    if node.reduction == "none" or not needs[0]:
        return gradient.backward(node, grad_grad)
    params = {"reduction": node.reduction, "numel": node.numel}
    if gradient is not loss._MseLossBackward:  # (mse_loss has no beta or delta)
        params["threshold"] = node.threshold
    unit = gradient.apply(grad.new_ones(tuple(grad.shape)), x, t, **params)
    d_grad = (unit * grad_grad).sum(tuple(range(1, grad_grad.dim())))
    if needs[1] or needs[2]:
        _, d_x, d_t = gradient.backward(node, grad_grad)
        return d_grad, d_x, d_t
    return d_grad, None, None


@register_batched_rule(loss._NllLoss)
def _index_class_loss(node, grad):
    # the input gradient is linear in the loss's gradient g: g times its value at g = 1 (per row
    # of the target for reduction="none", one number otherwise), the batch dim in front
    shape = node.x_shape
    unit = grad.new_ones(tuple(grad.shape[1:]))
    per_unit = loss._IndexClassLoss._input_grad(node, unit, node.saved_values[0])
    if node.reduction == "none" and len(shape) > 1:
        grad = grad.unsqueeze(2)  # (the class dim)
    else:
        grad = grad.reshape((grad.shape[0],) + (1,) * len(shape))
    return grad * per_unit


# ---------------------------------------------------------------- normalisation
# The fused norms' rule with the batch dim in front: x̂ and 1/σ as the forward kept them in a
# plain walk; recomputed from x in Tensor ops in a recorded one (an inner Jacobian), where the
# outer walk differentiates them too.
def _statistics(x: Tensor, dims: tuple, eps: float) -> tuple:
    """x̂ and 1/σ of x over ``dims`` (kept as size 1), in Tensor ops."""
    centred = x - x.mean(dims, keepdim=True)
    invstd = ((centred * centred).mean(dims, keepdim=True) + eps).rsqrt()
    return centred * invstd, invstd


def _normalized_grad(g: Tensor, xhat: Tensor, invstd: Tensor, dims: tuple) -> Tensor:
    # dx = (1/σ) · (g - mean(g) - x̂ · mean(g x̂)), the means over dims of g (batch dim in front)
    return invstd * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))


def _trailing(dims: tuple, ndim: int) -> tuple:
    """Dims counted from the end: the same dims for x and for its batched gradient."""
    return tuple(d % ndim - ndim for d in dims)


@register_batched_rule(normalization.LayerNorm)
def _layer_norm(node, grad):
    # per row: dx = (1/σ)·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)) with ĝ = g·γ; dγ = Σ g·x̂, dβ = Σ g (the walk
    # sums over the leading dims)
    x, w, _ = node.saved_values
    dims = _trailing(node.dims, x.ndim)
    needs = node.needs_input_grad
    if node.xhat is not None and not is_recording(grad, x, w):
        statistics_shape = tuple(x.shape[:x.ndim - len(dims)]) + (1,) * len(dims)
        xhat = Tensor._make(node.xhat.reshape(tuple(x.shape)))
        invstd = Tensor._make(node.invstd.reshape(statistics_shape))
    else:
        xhat, invstd = _statistics(x, dims, node.eps)
    grad_x = _normalized_grad(grad * w, xhat, invstd, dims) if needs[0] else None
    return grad_x, grad * xhat if needs[1] else None, grad if needs[2] else None


@register_batched_rule(normalization.Normalize, normalization.LayerNormalize)
def _normalize(node, grad):
    # x̂ alone (instance norm, an un-fused batch or layer norm): its gradient over node.dims, one
    # dim further in the batched gradient
    (x,) = node.saved_values
    if is_recording(grad, x) or getattr(node, "kernel_mean", None) is not None:
        xhat, invstd = _statistics(x, node.dims, node.eps)
    else:
        xhat = Tensor._make(normalization._xhat_unless_written(node, x._data))
        invstd = Tensor._make(node.invstd)
    return normalization._absent_affine_grads(
        node, _normalized_grad(grad, xhat, invstd, tuple(_batch_dim(d, x.ndim) for d in node.dims)))


@register_batched_rule(normalization.GroupNormalize)
def _group_norm(node, grad):
    # per sample and group: the (N, groups, rest) view, the means over its last dim
    (x,) = node.saved_values
    grouped = (x.shape[0], node.invstd.shape[1], -1)
    if is_recording(grad, x):
        xhat, invstd = _statistics(x.reshape(grouped), (-1,), node.eps)
    else:
        xhat = Tensor._make(normalization._xhat_unless_written(node, x._data.reshape(node.xhat.shape)))
        invstd = Tensor._make(node.invstd)
    batch = grad.shape[0]
    return normalization._absent_affine_grads(
        node, _normalized_grad(grad.reshape((batch,) + grouped), xhat, invstd, (-1,)).reshape((batch,) + tuple(x.shape)))


@register_batched_rule(normalization.GroupNorm)
def _group_norm_affine(node, grad):
    # GroupNormalize's rule with ĝ = g·γ; dγ = Σ g·x̂ and dβ = Σ g over the batch and spatial dims
    # (summed here: γ is per channel, not trailing, so the walk's reduction would misalign it)
    x, w = node.saved_values
    grouped = (x.shape[0], node.groups, -1)
    needs = node.needs_input_grad
    if is_recording(grad, x, w):
        xhat, invstd = _statistics(x.reshape(grouped), (-1,), node.eps)
    else:
        xhat, invstd = Tensor._make(node.xhat), Tensor._make(node.invstd)
    batch = grad.shape[0]
    channel_view = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    sample_and_spatial = (1,) + tuple(range(3, x.ndim + 1))
    grad_x = grad_w = grad_b = None
    if needs[0]:
        grad_x = _normalized_grad((grad * w.reshape(channel_view)).reshape((batch,) + grouped), xhat, invstd,
                                  (-1,)).reshape((batch,) + tuple(x.shape))
    if needs[1]:
        grad_w = (grad * xhat.reshape(tuple(x.shape))).sum(sample_and_spatial)
    if needs[2]:
        grad_b = grad.sum(sample_and_spatial)
    return grad_x, grad_w, grad_b


@register_batched_rule(normalization.BatchNorm)
def _batch_norm(node, grad):
    # per channel of the (N, C, L) view, the means over N and L: dx = (γ/σ)·(g - mean(g) - x̂·mean(g·x̂)),
    # dγ = Σ g·x̂, dβ = Σ g
    x, w = node.saved_values
    batch, n, c = grad.shape[0], x.shape[0], x.shape[1]
    g = grad.reshape(batch, n, c, -1)
    if is_recording(grad, x, w):
        xhat, invstd = _statistics(x.reshape(n, c, -1), (0, 2), node.eps)
    else:
        xhat, invstd = Tensor._make(node.xhat), Tensor._make(node.invstd.reshape(1, c, 1))
    needs = node.needs_input_grad
    grad_x = grad_w = grad_b = None
    if needs[0]:
        grad_x = _normalized_grad(g * w.reshape(c, 1), xhat, invstd, (1, 3)).reshape((batch,) + tuple(x.shape))
    if needs[1]:
        grad_w = (g * xhat).sum((1, 3))
    if needs[2]:
        grad_b = g.sum((1, 3))
    return grad_x, grad_w, grad_b
