"""Normalisation ops: batch, layer, group and instance norm.

Every norm is x̂ = (x - mean) / sqrt(var + eps) over some dims (biased var), then an optional
affine map. They are fused for speed — one node instead of the seven of the composition, and
batch and layer norm fused with their affine map (the CNN and transformer hot paths). Each fused
op's backward is one array-level ``*Backward`` Function: its forward is the fast NumPy gradient,
its own backward (create_graph) differentiates the same gradient written in Tensor ops.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype, _layout, _sum_order, _vmap_frames
from .._backend import array_module, autocast_unifies, subtract_contiguous
from .._config import torch_intra_op_threads
from ..autograd import function as _function
from ..autograd.function import (
    QUIET,
    Function,
    SavedValue,
    absent_tensor,
    ctx_value,
    kept_value,
    name_node,
    numpy_errstate,
    saved,
)
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.second_order import differentiate_rule
from ..tensor import Tensor
from . import _cuda_kernels
from ._arg_parser import check_float, int_list
from .elementwise import rounded_through
from .memory_format import in_suggested_format, relaid_as_suggested, suggests_channels_last
from .second_order import gradient_against

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm"]
__not_methods__ = set(__all__)


# ---------------------------------------------------------------- the gradients, in Tensor ops
def _normalize_grad(grad: Tensor, x: Tensor, dims: tuple, eps: float) -> Tensor:
    """dx of x̂ = (x - mean) / sqrt(var + eps) over ``dims``, recomputing x̂ from x."""
    xc = x - x.mean(dims, keepdim=True)
    invstd = ((xc * xc).mean(dims, keepdim=True) + eps).rsqrt()
    xh = xc * invstd
    # dx = invstd · (g - mean(g) - x̂ · mean(g x̂))
    return invstd * (grad - grad.mean(dims, keepdim=True) - xh * (grad * xh).mean(dims, keepdim=True))


def _affine_norm_grads(grad: Tensor, x: Tensor, w: Tensor, dims: tuple, eps: float, w_view: tuple,
                       param_dims: tuple):
    """(dx, dw, db) of y = x̂ · w + b; w is viewed as ``w_view`` to broadcast, and its gradients
    are summed over ``param_dims``."""
    xc = x - x.mean(dims, keepdim=True)
    xh = xc * ((xc * xc).mean(dims, keepdim=True) + eps).rsqrt()
    # dx is x̂'s gradient with ĝ = g·w ; dw = Σ g x̂ ; db = Σ g
    grad_x = _normalize_grad(grad * w.reshape(w_view), x, dims, eps)
    grad_w, grad_b = grad * xh, grad
    if param_dims:
        grad_w, grad_b = grad_w.sum(param_dims), grad_b.sum(param_dims)
    return grad_x, grad_w.reshape(tuple(w.shape)), grad_b.reshape(tuple(w.shape))


def _needed(grads: tuple, needs) -> tuple:
    """The gradients a fused backward computes: those of the inputs that need one."""
    return tuple(g for g, need in zip(grads, needs) if need)


def _spread(outputs, needs) -> tuple:
    """A fused backward's outputs back in input order, None for the inputs that need none."""
    remaining = iter(outputs if isinstance(outputs, tuple) else (outputs,))
    return tuple(next(remaining) if need else None for need in needs)


def _statistics_as_torch_saves(x: Tensor, invstd, dims: tuple):
    """(x̂, 1/σ) for the backward of a layer norm of ``x``: for a bfloat16 or float16 ``x`` torch saves
    the rows' mean and 1/σ in that dtype and its backward recomputes x̂ from them (in float32), so
    the gradients come out as torch's; None for any other dtype (the forward's own x̂ serves)."""
    if x.dtype is not _dtype.bfloat16 and x.dtype is not _dtype.float16:
        return None
    low = x._data.dtype
    x32 = x._data.astype(np.float32)
    mean = x32.mean(axis=dims, keepdims=True).astype(low).astype(np.float32)
    invstd = invstd.astype(low).astype(np.float32)
    return (x32 - mean) * invstd, invstd


def _watch_output(out: Tensor) -> Tensor:
    """Give the node of a norm without affine map ``out``'s version counter. Its backward reads
    x̂ from the output's buffer while the output is unchanged; torch saves the statistics, not
    the output, so ``F.relu_(F.instance_norm(x))`` is allowed, and the backward then recomputes
    x̂ (a node whose counter was never given recomputes it always)."""
    if out.grad_fn is not None:
        out.grad_fn.xhat_version = out._version_box  # shared by out's views: any write through them bumps it
    return out


def _with_absent_affine(out: Tensor) -> Tensor:
    """Give the node of a norm without affine map ``out`` torch's three edges: its native node takes
    input, weight and bias, and lists a missing weight and bias as ``(None, 0)`` in ``next_functions``.
    The node's backward answers those two with None (``_absent_affine_grads``)."""
    node = out.grad_fn
    if node is not None:
        node.next_functions += (_function._NO_EDGE, _function._NO_EDGE)
        node.needs_input_grad += (False, False)
        node._input_meta += (None, None)
    return out


def _absent_affine_grads(ctx, grad_x):
    """``grad_x``, with None for the missing weight and bias where ``_with_absent_affine`` gave them edges."""
    return (grad_x,) + (None,) * (len(ctx.next_functions) - 1)


def _xhat_unless_written(ctx, x):
    """The forward's x̂, or (x - mean)·(1/σ) again if the output it shares a buffer with was
    written in place since (the same operations, so the same values)."""
    version = getattr(ctx, "xhat_version", None)
    if version is not None and version[0] == 0:
        return ctx.xhat
    xhat = (x - ctx.mean) * ctx.invstd
    if _function.tracing_ops:  # a vmap recording its ops reads the replayed node's x̂ for it (_vmap_batched)
        _function.traced_recomputed(ctx, "xhat", xhat)
    return xhat


def _normalize_statistics(ctx, x) -> tuple:
    """(x̂, 1/σ) for a Normalize rule: the forward's, or, where the node was recorded over a wrapper
    subclass's placeholder (forward_state), computed from ``x`` as the forward computes them."""
    if ctx.invstd is None:
        xp = array_module(x)
        centred = x - x.mean(axis=ctx.dims, keepdims=True)
        invstd = 1.0 / xp.sqrt(xp.mean(xp.square(centred), axis=ctx.dims, keepdims=True) + ctx.eps)
        return centred * invstd, invstd
    return _xhat_unless_written(ctx, x), ctx.invstd


# ---------------------------------------------------------------- x̂ alone
class NormalizeBackward(Function):
    """dx = invstd · (g - mean(g) - x̂ · mean(g x̂)) over ``dims``: Normalize's gradient."""

    _array_forward = True
    node_name = "NativeBatchNormBackwardBackward0"
    label = "batch_norm_backward"
    rule = "differentiates ∂/∂x = (1/σ)·(g - mean(g) - x̂·mean(g·x̂)) with respect to g and x"
    formula = None

    @staticmethod
    def forward(ctx, grad, x, xhat, invstd, dims, eps):
        if any(ctx.needs_input_grad):
            ctx.dims, ctx.eps = dims, eps
        ctx.save_for_backward(grad, x)
        xp = array_module(grad)
        mean_g = grad.mean(axis=dims, keepdims=True)
        out = grad * xhat
        mean_gx = out.mean(axis=dims, keepdims=True)
        # dx = invstd · (g - mean(g) - x̂ · mean(g x̂)), in one buffer
        xp.multiply(xhat, mean_gx, out=out)
        xp.subtract(grad, out, out=out)
        out -= mean_g
        out *= invstd
        return out

    @staticmethod
    def backward(ctx, grad_grad):
        grad, x = ctx.saved_values
        dims, eps = ctx.dims, ctx.eps
        return differentiate_rule(lambda g, x_: _normalize_grad(g, x_, dims, eps), (grad, x),
                                  ctx.needs_input_grad, (grad_grad,))


class LayerNormalizeBackward(NormalizeBackward):
    node_name = "NativeLayerNormBackwardBackward0"
    label = "layer_norm_backward"

    @staticmethod
    def forward(ctx, grad, x, xhat, invstd, dims, eps, mean=None):
        if mean is None or not _cuda_kernels.available(grad):
            return NormalizeBackward.forward(ctx, grad, x, xhat, invstd, dims, eps)
        # CuPy (the forward ran the kernel and kept the row means): dx of every row in one launch
        if any(ctx.needs_input_grad):
            ctx.dims, ctx.eps = dims, eps
        ctx.save_for_backward(grad, x)
        return _cuda_kernels.layer_norm_backward(grad, x, mean, invstd.reshape(mean.shape))[0]


# the order torch's norm nodes save their tensors in (what saved_tensors_hooks packs, in order):
# the arguments, then the results
_BATCH_NORM_PACK_ORDER = ("_saved_input", "_saved_running_mean", "_saved_running_var", "_saved_weight",
                          "_saved_result1", "_saved_result2")
_LAYER_NORM_PACK_ORDER = ("_saved_bias", "_saved_input", "_saved_weight", "_saved_result1", "_saved_result2")


class Normalize(Function):
    """x̂ = (x - mean) / sqrt(var + eps) over ``dims`` (biased var), the core of every *_norm.

    ``stats`` receives the mean and biased variance so batch_norm can update its running
    estimates without recomputing.
    """

    _array_forward = True
    node_name = "NativeBatchNormBackward0"
    label = "batch_norm"
    rule = "∂/∂x = (1/σ)·(g - mean(g) - x̂·mean(g·x̂))"
    formula = None
    gradient = NormalizeBackward  # the Function that computes this op's gradient
    # torch's grad_fn._saved_* of a batch norm without affine: the per-channel mean and 1/σ flat
    # (per sample and channel for instance_norm, whose torch node normalises N·C channels)
    saved_attributes = {
        "_saved_eps": ctx_value("eps"),
        "_saved_input": saved(0),
        "_saved_result1": SavedValue(lambda node: node.saved_values[0].mean(dim=node.dims).reshape(-1), tensor=True),
        "_saved_result2": ctx_value("invstd", lambda invstd: Tensor._make(invstd.reshape(-1)), tensor=True),
        "_saved_running_mean": ctx_value("stats", lambda stats: (stats or {}).get("running", (None, None))[0],
                                         tensor=True),
        "_saved_running_var": ctx_value("stats", lambda stats: (stats or {}).get("running", (None, None))[1],
                                        tensor=True),
        "_saved_training": True,
        "_saved_weight": absent_tensor(),  # (undefined: torch lists _raw_saved_weight, which reads None)
    }
    torch_pack_order = _BATCH_NORM_PACK_ORDER
    forward_state = ("xhat", "mean", "invstd")

    @staticmethod
    def forward(ctx, x, dims, eps, stats=None, follow_layout=False):
        xp = array_module(x)
        mean = x.mean(axis=dims, keepdims=True)
        if follow_layout:  # batch norm: torch's kernel writes channels-last for an input that suggests it
            out = in_suggested_format(x - mean, x)
        else:  # torch's instance and layer norms write contiguous outputs, whatever x's layout
            out = subtract_contiguous(xp, x, mean)
        var = xp.mean(xp.square(out), axis=dims, keepdims=True)
        invstd = 1.0 / xp.sqrt(var + eps)
        out *= invstd  # in place: the centred copy becomes x̂
        if stats is not None:
            stats["mean"] = mean
            stats["var"] = var
        if any(ctx.needs_input_grad):  # keep nothing on the shared no-grad ctx
            ctx.dims, ctx.eps, ctx.invstd, ctx.stats = dims, eps, invstd, stats
            # x̂ is the output: not saved (torch allows writing it in place), see _watch_output
            ctx.xhat, ctx.mean, ctx.xhat_version = out, mean, None
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        xhat, invstd = _normalize_statistics(ctx, x._data)
        return ctx._forward_cls.gradient.apply(grad, x, xhat=xhat, invstd=invstd, dims=ctx.dims, eps=ctx.eps)


class LayerNormalize(Normalize):
    node_name = "NativeLayerNormBackward0"
    label = "layer_norm"
    gradient = LayerNormalizeBackward
    # torch's grad_fn._saved_* of a layer norm without affine: each row's mean and 1/σ, kept dims
    saved_attributes = {
        "_saved_bias": absent_tensor(),
        "_saved_input": saved(0),
        "_saved_normalized_shape": SavedValue(lambda node: tuple(node._input_meta[0][0][d] for d in node.dims)),
        "_saved_result1": SavedValue(lambda node: node.saved_values[0].mean(dim=node.dims, keepdim=True), tensor=True),
        "_saved_result2": ctx_value("invstd", Tensor._make, tensor=True),
        "_saved_weight": absent_tensor(),
    }
    torch_pack_order = _LAYER_NORM_PACK_ORDER
    forward_state = ("xhat", "mean", "invstd", "kernel_mean")

    @staticmethod
    def forward(ctx, x, dims, eps, stats=None, half_on_cpu=False):
        if array_module(x) is np or not _cuda_kernels.available(x):
            out = Normalize.forward(ctx, x, dims, eps, stats)
            if half_on_cpu:  # (x is the float32 widening; the output is rounded once after)
                d = math.prod(x.shape[dim] for dim in dims)
                out[...] = _layer_norm_as_torch_cpu(x.reshape(-1, d), None, None, eps).reshape(out.shape)
            return out
        # CuPy: x̂ and 1/σ of every row in one fused launch (dims are the trailing ones)
        out, mean, rstd = _cuda_kernels.layer_norm(x, len(dims), eps=eps)
        if any(ctx.needs_input_grad):
            ctx.dims, ctx.eps, ctx.invstd = dims, eps, rstd.reshape(rstd.shape + (1,) * len(dims))
            ctx.kernel_mean = mean  # the backward kernel's input (it needs no x̂)
            ctx.xhat, ctx.mean, ctx.xhat_version = out, mean.reshape(ctx.invstd.shape), None
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        mean = getattr(ctx, "kernel_mean", None)
        xhat, invstd = _normalize_statistics(ctx, x._data)
        as_torch = _statistics_as_torch_saves(x, invstd, ctx.dims) if mean is None else None
        if as_torch is not None:
            xhat, invstd = as_torch
        return _absent_affine_grads(ctx, LayerNormalizeBackward.apply(grad, x, xhat=xhat, invstd=invstd, dims=ctx.dims,
                                                                      eps=ctx.eps, mean=mean))


def _group_statistics(x, groups: int, eps: float) -> tuple:
    """x̂ per (sample, group) as an (N, groups, C/groups·spatial) array, with its invstd and mean."""
    xp = array_module(x)
    x3 = x.reshape(x.shape[0], groups, math.prod(x.shape[1:]) // groups)  # -1 fails on a size-0 batch
    mean = x3.mean(axis=2, keepdims=True)
    xhat = x3 - mean
    invstd = 1.0 / xp.sqrt(xp.mean(xp.square(xhat), axis=2, keepdims=True) + eps)
    xhat *= invstd
    return xhat, invstd, mean


def _group_mean(node) -> Tensor:
    """Each (sample, group)'s mean of the saved input, (N, groups): torch's group norm result1."""
    x = node.saved_values[0]._data
    n, groups = node.invstd.shape[:2]
    return Tensor._make(x.reshape(n, groups, -1).mean(axis=2) if x.size else node.invstd.reshape(n, groups) * 0)


# torch's grad_fn._saved_* of a group norm: the sizes, the input, each (sample, group)'s mean and 1/σ
_GROUP_NORM_SAVED = {
    "_saved_C": SavedValue(lambda node: node._input_meta[0][0][1]),
    "_saved_HxW": SavedValue(lambda node: math.prod(node._input_meta[0][0][2:])),
    "_saved_N": SavedValue(lambda node: node._input_meta[0][0][0]),
    "_saved_eps": ctx_value("eps"),
    "_saved_group": SavedValue(lambda node: node.invstd.shape[1]),
    "_saved_input": saved(0),
    "_saved_result1": SavedValue(_group_mean, tensor=True),
    "_saved_result2": SavedValue(lambda node: Tensor._make(node.invstd.reshape(node.invstd.shape[:2])), tensor=True),
    "_saved_weight": absent_tensor(),
}
_GROUP_NORM_PACK_ORDER = ("_saved_input", "_saved_weight", "_saved_result1", "_saved_result2")


class GroupNormalize(Function):
    """x̂ of group norm: (N, C, *) normalised per sample over groups of C/groups channels."""

    _array_forward = True
    node_name = "NativeGroupNormBackward0"
    label = "group_norm"
    rule = "per sample and group: ∂/∂x = (1/σ)·(g - mean(g) - x̂·mean(g·x̂))"
    formula = None
    saved_attributes = _GROUP_NORM_SAVED
    torch_pack_order = _GROUP_NORM_PACK_ORDER

    @staticmethod
    def forward(ctx, x, groups, eps):
        xhat, invstd, mean = _group_statistics(x, groups, eps)
        if any(ctx.needs_input_grad):  # x̂ may be the output's buffer: see _watch_output
            ctx.xhat, ctx.invstd, ctx.eps, ctx.mean, ctx.xhat_version = xhat, invstd, eps, mean, None
        ctx.save_for_backward(x)
        return in_suggested_format(xhat.reshape(x.shape), x)  # torch's kernel: as the input suggests

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        xhat = _xhat_unless_written(ctx, x._data.reshape(ctx.xhat.shape))
        return _absent_affine_grads(ctx, GroupNormalizeBackward.apply(grad, x, xhat=xhat, invstd=ctx.invstd, eps=ctx.eps))


class GroupNormalizeBackward(Function):
    """dx = invstd · (g - mean(g) - x̂ · mean(g x̂)) per (sample, group): GroupNormalize's gradient."""

    _array_forward = True
    node_name = "NativeGroupNormBackwardBackward0"
    label = "group_norm_backward"
    rule = "differentiates the group norm gradient with respect to g and x"
    formula = None

    @staticmethod
    def forward(ctx, grad, x, xhat, invstd, eps):
        if any(ctx.needs_input_grad):
            ctx.groups_shape, ctx.eps = xhat.shape, eps
        ctx.save_for_backward(grad, x)
        xp = array_module(grad)
        g = grad.reshape(xhat.shape)
        buf = g * xhat
        mean_gx = buf.mean(axis=2, keepdims=True)
        xp.multiply(xhat, mean_gx, out=buf)
        xp.subtract(g, buf, out=buf)
        buf -= g.mean(axis=2, keepdims=True)
        buf *= invstd
        return buf.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_grad):
        grad, x = ctx.saved_values
        shape3, eps = ctx.groups_shape, ctx.eps

        def rule(g, x_):
            return _normalize_grad(g.reshape(shape3), x_.reshape(shape3), (2,), eps).reshape(tuple(x_.shape))

        return differentiate_rule(rule, (grad, x), ctx.needs_input_grad, (grad_grad,))


class GroupNorm(Function):
    """Group norm with its affine map in one node, y = x̂ · w + b with w and b per channel: torch's
    NativeGroupNormBackward0 takes input, weight and bias, so ``next_functions`` lists all three.
    x̂ and the map are GroupNormalize's and the composed path's operations, so the values are theirs."""

    _array_forward = True
    node_name = "NativeGroupNormBackward0"
    label = "group_norm"
    rule = "per sample and group: ∂/∂x = (1/σ)·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)) with ĝ = g·γ; ∂/∂γ = Σ g·x̂, ∂/∂β = Σ g"
    formula = None
    # (the weight None where w is the constant 1 standing for group_norm's missing one, as torch's node keeps it)
    saved_attributes = {**_GROUP_NORM_SAVED, "_saved_weight": saved(1, undefined=lambda node: node.unit_weight)}
    torch_pack_order = _GROUP_NORM_PACK_ORDER

    @staticmethod
    def forward(ctx, x, w, b, groups, eps, unit_weight=False):
        if unit_weight:
            ctx.unit_weight = True
        xhat, invstd, _ = _group_statistics(x, groups, eps)
        channel_view = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        out = xhat.reshape(x.shape) * w.reshape(channel_view)
        out += b.reshape(channel_view)
        if any(ctx.needs_input_grad):
            ctx.xhat, ctx.invstd, ctx.eps, ctx.groups = xhat, invstd, eps, groups
        ctx.save_for_backward(x, w)
        return in_suggested_format(out, x)  # torch's kernel: as the input suggests

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_values
        needs = ctx.needs_input_grad
        channel_view = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        param_dims = (0,) + tuple(range(2, x.ndim))
        grad_x = grad_w = grad_b = None
        if needs[0]:
            grad_x = GroupNormalizeBackward.apply(grad * w.reshape(channel_view), x, xhat=ctx.xhat,
                                                  invstd=ctx.invstd, eps=ctx.eps)
        if needs[1]:
            # under create_graph x̂ is recorded again from x, so that ∂γ's own gradient reaches x
            xhat = (GroupNormalize.apply(x, groups=ctx.groups, eps=ctx.eps) if _function.is_recording(x)
                    else Tensor._make(ctx.xhat.reshape(tuple(x.shape))))
            grad_w = (grad * xhat).sum(param_dims)
        if needs[2]:
            grad_b = grad.sum(param_dims)
        return grad_x, grad_w, grad_b


# ---------------------------------------------------------------- x̂ with its affine map
# elements per block of the float32 kernels' elementwise work: 512 KiB of float64, inside a core's L2 cache
_BLOCK_ELEMENTS = 65536


def _rows_per_block(length: int) -> int:
    return max(1, _BLOCK_ELEMENTS // length)


def _in_blocks(xp, x3) -> bool:
    """Whether a float32 kernel works through ``x3`` block by block: a big NumPy one (under a
    block, the whole-array calls cost less than the blocks' bookkeeping)."""
    return xp is np and x3.size > _BLOCK_ELEMENTS


def _row_blocks(row_count: int, length: int):
    """(start, stop) of consecutive blocks of whole rows of ``length`` elements."""
    step = _rows_per_block(length)
    return ((start, min(start + step, row_count)) for start in range(0, row_count, step))


def _float32_batch_statistics(xp, x3, count: int, eps: float, keep_centred: bool = True):
    """A float32 (N, C, L) batch's per-channel mean, biased variance, Σ(x - mean)², 1/σ, centred copy and float64 Σx, rounded as
    torch's contiguous CPU kernel rounds them: the sums of x and of float32 (x - mean)² accumulated
    in float64 (which makes the order of summation immaterial), the mean rounded to float32 from
    sum/N, the variance as float32 var_sum / N, and 1/σ computed in float64 then rounded. Without
    ``keep_centred`` (no gradient to come) a big input's centred copy is not kept: None in its place."""
    float64 = np.float64
    sums = x3.sum(axis=2, dtype=float64).sum(axis=0)
    mean = (sums / count).astype(np.float32)
    if not _in_blocks(xp, x3):
        centred = x3 - mean[:, None]
        var_sum = xp.square(centred).sum(axis=2, dtype=float64).sum(axis=0).astype(np.float32)
    else:  # the squares of a big input one cache-sized block at a time, never a full-size temporary
        n, c, length = x3.shape
        rows, mean_rows = x3.reshape(n * c, length), xp.tile(mean, n)[:, None]
        block_rows = min(_rows_per_block(length), n * c)
        centred = xp.empty(rows.shape if keep_centred else (block_rows, length), dtype=np.float32)
        row_sums = xp.empty(n * c, dtype=float64)
        squares = xp.empty((block_rows, length), dtype=np.float32)
        for start, stop in _row_blocks(n * c, length):
            part = centred[start:stop] if keep_centred else centred[:stop - start]
            xp.subtract(rows[start:stop], mean_rows[start:stop], out=part)
            xp.square(part, out=squares[:stop - start])
            xp.add.reduce(squares[:stop - start], axis=1, dtype=float64, out=row_sums[start:stop])
        centred = centred.reshape(x3.shape) if keep_centred else None
        var_sum = row_sums.reshape(n, c).sum(axis=0).astype(np.float32)
    var = var_sum / np.float32(count)
    invstd = (1.0 / xp.sqrt(var.astype(float64) + eps)).astype(np.float32)
    return mean, var, var_sum, invstd, centred, sums


def _float32_fused_affine(xp, x3, mean, invstd, w, b):
    """torch's CPU batch norm output, x · α + β per channel with α = 1/σ · w and β = b - mean · α,
    each of its multiply-adds fused (rounded once): float64 holds the float32 products exactly, so
    one rounding of the float64 sum to float32 is the fused one's. The unfused (x - mean) · 1/σ · w + b
    differed from torch in the last bit on about a third of the outputs."""
    float64 = np.float64
    alpha = invstd * w
    beta = (b.astype(float64) - mean.astype(float64) * alpha).astype(np.float32)
    return _fused_multiply_add(xp, x3, alpha, beta)


def _fused_multiply_add(xp, x3, alpha, beta):
    """float32 x · α + β of a contiguous (N, C, L) ``x3`` with one float32 α and β per channel,
    each element rounded once as a fused multiply-add rounds it."""
    float64 = np.float64
    if not _in_blocks(xp, x3):
        product = xp.multiply(x3, alpha[:, None].astype(float64))
        out = xp.empty(x3.shape, dtype=np.float32)
        return xp.add(product, beta[:, None].astype(float64), out=out, casting="same_kind")
    # A big input goes through one float64 block at a time, (sample, channel) rows together: a
    # full-size float64 product costs twice the input's memory traffic, and casting float32 inside
    # a mixed-dtype multiply is slower than one copy into float64. Same arithmetic, element by
    # element, so the same bits.
    n, c, length = x3.shape
    rows = x3.reshape(n * c, length)
    alpha_rows = xp.tile(alpha.astype(float64), n)[:, None]
    beta_rows = xp.tile(beta.astype(float64), n)[:, None]
    out = xp.empty(rows.shape, dtype=np.float32)
    block = xp.empty((min(_rows_per_block(length), n * c), length), dtype=float64)
    for start, stop in _row_blocks(n * c, length):
        part = block[:stop - start]
        xp.copyto(part, rows[start:stop])
        part *= alpha_rows[start:stop]
        part += beta_rows[start:stop]
        xp.copyto(out[start:stop], part, casting="same_kind")
    return out.reshape(x3.shape)


def _scale_shift_float32(x, scale, shift):
    """FusedScaleShift's float32 x · scale + shift on NumPy arrays, each element one fused multiply-add."""
    float64 = np.float64
    if x.ndim >= 2 and x.flags.c_contiguous and scale.shape == shift.shape == (1, x.shape[1]) + (1,) * (x.ndim - 2):
        x3 = x.reshape(x.shape[0], x.shape[1], -1)
        return _fused_multiply_add(np, x3, scale.reshape(-1), shift.reshape(-1)).reshape(x.shape)
    product = np.multiply(x, scale.astype(float64))
    out = np.empty_like(x) if x.shape == product.shape else np.empty(product.shape, dtype=np.float32)
    return np.add(product, shift.astype(float64), out=out, casting="same_kind")


class FusedScaleShift(Function):
    """x · scale + shift, scale and shift broadcast against x, each float32 element rounded once as
    torch's CPU batch norm kernels' fused multiply-add rounds it (its eval-mode output x · α + β
    and its β = b - mean · α). The gradients are those of the unfused multiply and add."""

    _array_forward = True
    label = "batch_norm (eval)"
    rule = "∂/∂x = scale, ∂/∂scale = x, ∂/∂shift = 1"
    formula = None
    # torch's op of the same arithmetic (shift + x · scale), for the profiler and traced graphs
    dispatcher_name = "aten::addcmul"

    @staticmethod
    def forward(ctx, x, scale, shift):
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, scale if ctx.needs_input_grad[0] else None)
        return _scale_shift_float32(x, scale, shift)

    @staticmethod
    def backward(ctx, grad):
        # d(x · scale + shift) = scale dx + x dscale + dshift (the engine sums each to its input's shape)
        x, scale = ctx.saved_values
        return (grad * scale if scale is not None else None), (grad * x if x is not None else None), grad


def _vec_reduce_rows(a, b=None):
    """torch's CPU ``vec::reduce_all`` of each row of the float32 (R, L) array ``a``, or with ``b``
    its ``map2_reduce_all`` of a·b (checked against torch 2.13, whose batch norm kernel runs 8
    lanes): lane-wise sums over whole vectors, a partial last vector added into the first lanes
    (a·b's as fused multiply-adds), then the lanes folded in halves; a row shorter than a vector
    summed in order."""
    rows, length = a.shape
    lanes = 8
    values = a if b is None else a * b
    if length < lanes:
        acc = values[:, 0].copy()
        for i in range(1, length):
            acc += values[:, i]
        return acc
    whole = length // lanes
    acc = values[:, :whole * lanes].reshape(rows, whole, lanes).sum(axis=1)  # (in order along the middle axis)
    tail = length - whole * lanes
    if tail and b is None:
        acc[:, :tail] += a[:, whole * lanes:]
    elif tail:  # acc + a·b rounded once: float64 holds the float32 product exactly
        acc[:, :tail] = acc[:, :tail] + a[:, whole * lanes:].astype(np.float64) * b[:, whole * lanes:]
    half = lanes // 2
    while half:
        acc = acc + acc[:, np.arange(lanes) ^ half]
        half //= 2
    return acc[:, 0]


def _eval_batch_norm_grads_float32(g, x, mean, invstd, w, needs) -> tuple:
    """(dx, dw, db) of float32 eval-mode batch norm as torch's CPU kernel computes them
    (batch_norm_cpu_backward, train=False; checked against torch 2.13): dx = dy · 1/σ · w, rounded
    after each product, with 1/σ = 1 / sqrt(var + eps) in double rounded to float; dw = Σ (x - mean)·dy
    · 1/σ and db = Σ dy, per-image float sums accumulated in double. An (N, C) input runs the
    channels-last kernel: per-thread float sums over the rows (each step a fused multiply-add for
    dw), added in double."""
    n, c = x.shape[0], x.shape[1]
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    g3 = np.ascontiguousarray(g).reshape(x3.shape)
    length = x3.shape[2]
    grad_x = grad_w = grad_b = None
    if needs[0]:
        grad_x = g3 * invstd[:, None]
        grad_x *= w[:, None]
        grad_x = grad_x.reshape(g.shape)
    if not (needs[1] or needs[2]):
        return grad_x, grad_w, grad_b
    if length == 1:
        centred, dy = x3[:, :, 0] - mean, g3[:, :, 0]
        dotp, total = np.zeros(c), np.zeros(c)
        chunk = -(-n // max(1, min(torch_intra_op_threads(), n)))  # (at::parallel_for's split of the rows)
        for rows in (np.arange(start, min(start + chunk, n)) for start in range(0, n, chunk)):
            acc = np.zeros(c, np.float32)
            for i in rows:  # acc + (x - mean)·dy, one rounding (float64 holds the product exactly)
                acc = (acc + centred[i].astype(np.float64) * dy[i]).astype(np.float32)
            dotp += acc
            total += dy[rows].sum(axis=0)  # (in order along axis 0)
    else:
        per_image = _vec_reduce_rows((x3 - mean[:, None]).reshape(n * c, length), g3.reshape(n * c, length)).reshape(n, c)
        dotp = per_image.astype(np.float64).sum(axis=0)
        total = _vec_reduce_rows(g3.reshape(n * c, length)).reshape(n, c).astype(np.float64).sum(axis=0)
    if needs[1]:  # (the channels-last kernel keeps Σ in a float buffer and multiplies in float)
        grad_w = dotp.astype(np.float32) * invstd if length == 1 else (dotp * invstd).astype(np.float32)
    if needs[2]:
        grad_b = total.astype(np.float32)
    return grad_x, grad_w, grad_b


class EvalBatchNorm(Function):
    """Float32 eval-mode batch norm on NumPy arrays: the output as the fused path rounds it
    (``_eval_batch_norm_float32``), the gradients as torch's kernel rounds them
    (``_eval_batch_norm_grads_float32``); a create_graph backward differentiates the same
    gradients written in Tensor ops."""

    _array_forward = True
    node_name = "NativeBatchNormBackward0"
    label = "batch_norm (eval)"
    rule = "∂/∂x = g·(1/σ)·γ; ∂/∂γ = Σ g·(x - mean)·(1/σ), ∂/∂β = Σ g (running mean and var constant)"
    formula = None

    @staticmethod
    def forward(ctx, x, w, b, mean, var, eps, shape, invstd):
        scale = invstd * w
        shift = _scale_shift_float32(-mean, scale, b)
        out = _scale_shift_float32(x, scale.reshape(shape), shift.reshape(shape))
        ctx.mean, ctx.invstd = mean, (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(np.float32)
        ctx.save_for_backward(x, w)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_values
        needs = ctx.needs_input_grad
        if not is_grad_enabled():
            grads = _eval_batch_norm_grads_float32(grad._data, x._data, ctx.mean, ctx.invstd, w._data, needs)
            return tuple(Tensor._make(a) if a is not None else None for a in grads)
        # create_graph: the same gradients in Tensor ops (recorded)
        view = (1, -1) + (1,) * (x.ndim - 2)
        dims = (0,) + tuple(range(2, x.ndim))
        invstd = Tensor._make(ctx.invstd)
        grad_x = grad * invstd.reshape(view) * w.reshape(view)
        grad_w = ((x - Tensor._make(ctx.mean).reshape(view)) * grad).sum(dims) * invstd if needs[1] else None
        grad_b = grad.sum(dims) if needs[2] else None
        return tuple(name_node(t, "NativeBatchNormBackwardBackward0", label="batch_norm_backward (eval)")
                     if t is not None else None for t in ((grad_x if needs[0] else None), grad_w, grad_b))


class BatchNorm(Function):
    """Training-mode batch norm with its affine map in one node: y = x̂ · w + b, x̂ over ``dims``.

    Fused because it is the hot path of CNN training: one output buffer forward and one backward
    (the separate normalise, multiply and add nodes cost three full-size passes more).
    """

    _array_forward = True
    node_name = "NativeBatchNormBackward0"
    label = "batch_norm"
    rule = "∂/∂x = (γ/σ)·(g - mean(g) - x̂·mean(g·x̂)); ∂/∂γ = Σ g·x̂, ∂/∂β = Σ g"
    formula = None
    # torch's grad_fn._saved_* names
    saved_attributes = {
        "_saved_eps": ctx_value("eps"),
        "_saved_input": saved(0),
        "_saved_result1": SavedValue(lambda node: node.saved_values[0].mean(dim=node.dims), tensor=True),  # the mean
        "_saved_result2": ctx_value("invstd", Tensor._make, tensor=True),
        "_saved_running_mean": ctx_value("stats", lambda stats: stats.get("running", (None, None))[0], tensor=True),
        "_saved_running_var": ctx_value("stats", lambda stats: stats.get("running", (None, None))[1], tensor=True),
        "_saved_training": True,
        # (None where the caller gave no weight and the kernel's 1 stood in, as torch's reads)
        "_saved_weight": saved(1, undefined=lambda node: not node.weight_given),
    }
    torch_pack_order = _BATCH_NORM_PACK_ORDER

    @staticmethod
    def forward(ctx, x, w, b, dims, eps, stats):
        xp = array_module(x)
        ctx.weight_given = not stats.get("unit_weight", False)
        # work on a contiguous (N, C, L) view: reductions along L are fast, pairwise-summed ones
        n, c = x.shape[0], x.shape[1]
        x3 = xp.ascontiguousarray(x).reshape(n, c, -1)
        count = n * x3.shape[2]
        if x.dtype == np.float32 and w.dtype == np.float32 and b.dtype == np.float32:
            mean, var, var_sum, invstd, xhat, sums = _float32_batch_statistics(xp, x3, count, eps,
                                                                                keep_centred=any(ctx.needs_input_grad))
            stats["float64_sums"] = sums  # Σx per channel, for a non-contiguous input's running mean
            out = _float32_fused_affine(xp, x3, mean, invstd, w, b)
        else:
            mean = x3.sum(axis=2).sum(axis=0) / count
            xhat = x3 - mean[:, None]
            var = xp.einsum("ncl,ncl->nc", xhat, xhat).sum(axis=0) / count
            invstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
            out = None
        if xhat is not None:
            xhat *= invstd[:, None]
        shape = (1, c) + (1,) * (x.ndim - 2)
        stats["mean"] = mean.reshape(shape)
        stats["var"] = var.reshape(shape)
        if out is None:
            out = xhat * w[:, None]
            out += b[:, None]
        else:  # (the running statistics take torch's float32 mean and var_sum: _torch_running_statistics)
            stats["float32_sums"] = (mean, var_sum)
        if any(ctx.needs_input_grad):
            ctx.xhat, ctx.invstd, ctx.dims, ctx.eps, ctx.stats = xhat, invstd, dims, eps, stats
        ctx.save_for_backward(x, w)
        out = out.reshape(x.shape)
        # torch's output keeps a channels-last input's layout
        return in_suggested_format(out, x)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_values
        needs = ctx.needs_input_grad
        grads = BatchNormBackward.apply(grad, x, w, xhat=ctx.xhat, invstd=ctx.invstd, dims=ctx.dims,
                                        eps=ctx.eps, needs=tuple(needs))
        return _spread(grads, needs)


class BatchNormBackward(Function):
    """(dx, dw, db) of training-mode batch norm, those of them ``needs`` asks for."""

    _array_forward = True
    node_name = "NativeBatchNormBackwardBackward0"
    label = "batch_norm_backward"
    rule = "differentiates batch norm's (∂/∂x, ∂/∂γ, ∂/∂β) with respect to g, x and γ"
    formula = None

    @staticmethod
    def forward(ctx, grad, x, w, xhat, invstd, dims, eps, needs):
        if any(ctx.needs_input_grad):
            ctx.dims, ctx.eps, ctx.needs = dims, eps, needs
        ctx.save_for_backward(grad, x, w)
        xp = array_module(grad)
        # NumPy on the saved (N, C, L) arrays, one full-size buffer
        g = xp.ascontiguousarray(grad).reshape(xhat.shape)
        count = xhat.shape[0] * xhat.shape[2]
        grad_w = xp.einsum("ncl,ncl->nc", g, xhat).sum(axis=0)
        grad_b = g.sum(axis=2).sum(axis=0)
        grad_x = None
        if needs[0]:
            # dx = invstd · w · (g - mean(g) - x̂ · mean(g x̂))
            buf = xhat * (grad_w / count)[:, None]
            xp.subtract(g, buf, out=buf)
            buf -= (grad_b / count)[:, None]
            buf *= (invstd * w)[:, None]
            grad_x = buf.reshape(x.shape)
        return _needed((grad_x, grad_w, grad_b), needs)

    @staticmethod
    def backward(ctx, *grad_grads):
        grad, x, w = ctx.saved_values
        dims, eps = ctx.dims, ctx.eps
        w_view = (1, -1) + (1,) * (x.ndim - 2)
        return differentiate_rule(lambda g, x_, w_: _affine_norm_grads(g, x_, w_, dims, eps, w_view, dims),
                                  (grad, x, w), ctx.needs_input_grad, _spread(grad_grads, ctx.needs))


def _layer_norm_as_torch_cpu(rows, w, b, eps: float):
    """Layer norm of the float32 widening of float16/bfloat16 ``rows`` (NumPy) as torch's CPU
    kernel computes it before its one rounding (checked against torch 2.13): mean and 1/σ in
    float32, each value x·rstd + (-rstd·mean) one fused multiply-add rounded to float32, then
    ·w + b another. float64 holds each product exactly, so its sum rounds to float32 as the fused one does. (A
    difference of two rounded values, (x - mean)·rstd, is not what it computes: of a single value
    torch leaves x·rstd's rounding error, where that difference gives 0.)"""
    mean = rows.mean(axis=1, keepdims=True)
    var = np.square(rows - mean).mean(axis=1, keepdims=True)
    rstd = (1 / np.sqrt(var + np.float32(eps))).astype(np.float32)
    out = (rows.astype(np.float64) * rstd + (-rstd * mean)).astype(np.float32)
    if w is not None:
        out = (out.astype(np.float64) * w + b).astype(np.float32)
    return out


def _layer_norm_rows(x2, eps: float) -> tuple:
    """(x̂, 1/σ) of the rows of the contiguous (rows, D) array ``x2``; 1/σ as a (rows, 1) column."""
    xp = array_module(x2)
    d = x2.shape[1]
    if xp is np and x2.dtype.kind == "f":
        row_mean, length, epsilon, one = _row_constants(d, x2.dtype, eps)
        xhat = x2 - (x2 @ row_mean)[:, None]
        # the same float ops as the expression below, in place on the fresh row vector
        var = np.divide(np.einsum("ij,ij->i", xhat, xhat), length)
        np.add(var, epsilon, out=var)
        np.sqrt(var, out=var)
        invstd = np.divide(one, var, out=var)[:, None]
        xhat *= invstd
        return xhat, invstd
    row_mean = xp.full(d, 1.0 / d, dtype=x2.dtype)
    xhat = x2 - (x2 @ row_mean)[:, None]
    var = xp.einsum("ij,ij->i", xhat, xhat) / d
    invstd = (1.0 / xp.sqrt(var + eps)).astype(x2.dtype, copy=False)[:, None]
    xhat *= invstd
    return xhat, invstd


def _row_constants(d: int, dtype, eps: float) -> tuple:
    """(the vector of 1/d, d, eps, 1) for ``_layer_norm_rows`` in ``dtype``, made once per row length,
    dtype and eps: the numbers as 0-d arrays, which a ufunc takes in a fraction of the time it
    spends converting a Python number (the same value: NumPy casts a Python operand to the
    array's dtype)."""
    key = (d, dtype, eps)
    constants = _ROW_CONSTANTS.get(key)
    if constants is None:
        if len(_ROW_CONSTANTS) > 256:
            _ROW_CONSTANTS.clear()
        constants = tuple(np.full(shape, value, dtype) for shape, value in (((d,), 1.0 / d), ((), d), ((), eps), ((), 1.0)))
        for array in constants:
            array.flags.writeable = False
        _ROW_CONSTANTS[key] = constants
    return constants


_ROW_CONSTANTS: dict = {}


class LayerNorm(Function):
    """Layer norm with its affine map in one node: y = x̂ · w + b, x̂ and w over the trailing dims.

    Fused for the same reason as BatchNorm (transformer and MLP hot path); works on the (rows, D)
    view, with the row reductions as einsum/GEMV calls that need no temporary arrays.
    """

    _array_forward = True
    node_name = "NativeLayerNormBackward0"
    label = "layer_norm"
    rule = "per row: ∂/∂x = (1/σ)·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)) with ĝ = g·γ; ∂/∂γ = Σ g·x̂, ∂/∂β = Σ g"
    formula = None
    forward_state = ("xhat", "invstd", "mean")
    # torch's grad_fn._saved_* names: result1 and result2 are the rows' mean and 1/σ
    saved_attributes = {
        "_saved_bias": saved(2, undefined=lambda node: node.unit_bias),
        "_saved_input": saved(0),
        "_saved_normalized_shape": SavedValue(lambda node: tuple(node._input_meta[0][0][d] for d in node.dims)),
        "_saved_result1": SavedValue(lambda node: node.saved_values[0].mean(dim=node.dims, keepdim=True), tensor=True),
        "_saved_result2": SavedValue(lambda node: Tensor._make(node.invstd.reshape(
            node._input_meta[0][0][:-len(node.dims)] + (1,) * len(node.dims))), tensor=True),
        # (None for the unit weight and zero bias that stand for layer_norm's missing ones, as torch's node keeps them)
        "_saved_weight": saved(1, undefined=lambda node: node.unit_weight),
    }
    torch_pack_order = _LAYER_NORM_PACK_ORDER

    @staticmethod
    def forward(ctx, x, w, b, dims, eps, half_on_cpu=False, unit_bias=False, unit_weight=False):
        # (unit_bias: b is layer_norm's constant 0 for no bias, which torch's node keeps as None;
        # unit_weight: w is its constant 1 for no weight, which the backward reads, reported as None)
        if unit_weight:
            ctx.unit_weight = True
        if unit_bias:
            ctx.unit_bias = True
        xp = array_module(x)
        if xp is not np and _cuda_kernels.available(x):
            # CuPy: y, the row means and 1/σ in one fused launch; the backward kernel takes x, mean, 1/σ
            out, mean, invstd = _cuda_kernels.layer_norm(x, len(dims), w, b, eps=eps)
            if any(ctx.needs_input_grad):
                ctx.xhat, ctx.invstd, ctx.dims, ctx.eps, ctx.mean = None, invstd, dims, eps, mean
            ctx.save_for_backward(x, w, None if unit_bias else b)
            return out
        d = w.size
        x2 = xp.ascontiguousarray(x.reshape(-1, d))  # contiguous rows: torch's output is contiguous
        xhat, invstd = _layer_norm_rows(x2, eps)
        if half_on_cpu:  # (x, w and b are the float32 widenings; the output is rounded once after)
            out = _layer_norm_as_torch_cpu(x2, w.reshape(d), b.reshape(d), eps)
        else:
            out = xhat * w.reshape(d)
            out += b.reshape(d)
        if any(ctx.needs_input_grad):
            ctx.xhat, ctx.invstd, ctx.dims, ctx.eps = xhat, invstd, dims, eps
        ctx.save_for_backward(x, w, None if unit_bias else b)  # b: torch keeps it (grad_fn._saved_bias), unused
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, w, _ = ctx.saved_values
        needs = ctx.needs_input_grad
        mean = getattr(ctx, "mean", None)
        xhat, invstd = ctx.xhat, ctx.invstd
        if invstd is None:  # recorded over a wrapper subclass (forward_state): from x, as the forward
            xhat, invstd = _layer_norm_rows(array_module(x._data).ascontiguousarray(x._data.reshape(-1, w.numel())),
                                            ctx.eps)
        if mean is None:  # (rows, D) as the forward left them
            as_torch = _statistics_as_torch_saves(x.reshape(-1, w.numel()), invstd, (1,))
            if as_torch is not None:
                xhat, invstd = as_torch
        grads = LayerNormBackward.apply(grad, x, w, xhat=xhat, invstd=invstd, dims=ctx.dims,
                                        eps=ctx.eps, needs=tuple(needs), mean=mean)
        return _spread(grads, needs)


# (set on the node where the forward's w or b is that unit weight or zero bias)
LayerNorm._node_cls.unit_weight = LayerNorm._node_cls.unit_bias = False


GroupNorm._node_cls.unit_weight = False  # (set on the node where the forward's w is that constant 1)


class LayerNormBackward(Function):
    """(dx, dw, db) of layer norm with its affine map, those of them ``needs`` asks for."""

    _array_forward = True
    node_name = "NativeLayerNormBackwardBackward0"
    label = "layer_norm_backward"
    rule = "differentiates layer norm's (∂/∂x, ∂/∂γ, ∂/∂β) with respect to g, x and γ"
    formula = None

    @staticmethod
    def forward(ctx, grad, x, w, xhat, invstd, dims, eps, needs, mean=None):
        if any(ctx.needs_input_grad):
            ctx.dims, ctx.eps, ctx.needs = dims, eps, needs
        ctx.save_for_backward(grad, x, w)
        if mean is not None:
            # CuPy (the forward ran the kernel): dx in one launch per row, dw and db as column sums
            grad_x, grad_w, grad_b = _cuda_kernels.layer_norm_backward(grad, x, mean, invstd, w, bias_defined=needs[2])
            return _needed((grad_x, grad_w, grad_b), needs)
        xp = array_module(grad)
        # NumPy on the (rows, D) arrays
        d = xhat.shape[1]
        g = grad.reshape(-1, d)
        grad_w = xp.einsum("ij,ij->j", g, xhat).reshape(w.shape) if needs[1] else None
        grad_b = g.sum(0).reshape(w.shape) if needs[2] else None
        grad_x = None
        if needs[0]:
            # dx = invstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ x̂)) with ĝ = g·w, per row
            g_hat = g * w.reshape(d)
            mean_gx = xp.einsum("ij,ij->i", g_hat, xhat) / d
            # (the forward's cached vector of 1/d on the CPU: the same values, no allocation a call)
            row_mean = _row_constants(d, g_hat.dtype, eps)[0] if xp is np else xp.full(d, 1.0 / d, dtype=g_hat.dtype)
            mean_g = g_hat @ row_mean
            buf = xhat * mean_gx[:, None].astype(xhat.dtype, copy=False)
            xp.subtract(g_hat, buf, out=buf)
            buf -= mean_g[:, None]
            buf *= invstd
            grad_x = buf.reshape(x.shape)
        return _needed((grad_x, grad_w, grad_b), needs)

    @staticmethod
    def backward(ctx, *grad_grads):
        grad, x, w = ctx.saved_values
        dims, eps = ctx.dims, ctx.eps
        leading = tuple(range(x.ndim - len(dims)))
        return differentiate_rule(
            lambda g, x_, w_: _affine_norm_grads(g, x_, w_, dims, eps, tuple(w_.shape), leading),
            (grad, x, w), ctx.needs_input_grad, _spread(grad_grads, ctx.needs))


# ---------------------------------------------------------------- rms norm
def _inverse_rms(x: np.ndarray, dims: tuple, eps: float) -> np.ndarray:
    """1/sqrt(mean(x²) + eps) over ``dims`` (kept as 1s) of a C-contiguous float32/float64 ``x``,
    each step rounded as the composite's op rounds it (torch's mean: its sum, in its order, / n)."""
    squares = x * x
    total = _sum_order.sum_dims(squares, dims, True)
    if total is None:  # (past the replayed sizes: NumPy's mean, as torch.mean's Function takes)
        mean = np.mean(squares, axis=dims, keepdims=True)
    else:
        mean = np.divide(total, np.float32(math.prod([x.shape[d] for d in dims])), out=total)
    mean += eps
    return 1 / np.sqrt(mean, out=mean)


class RMSNorm(Function):
    """F.rms_norm's x·(mean(x²) + eps)^(-1/2), times the weight if given, over the trailing dims, in
    one pass over the arrays, where x records nothing (F.rms_norm's ``_rms_norm_fuses``).

    torch's CPU rms_norm runs the composite (its fused kernel serves CUDA). With x recording nothing,
    the composite's graph is its last product's MulBackward0 over (None, weight), saving the
    normalised x as self and no other: this node, with that name, those edges and that saved value.
    Where x records, its graph has five more nodes, so the composite runs there."""

    _array_forward = True
    node_name = "MulBackward0"
    label = "rms_norm"
    rule = "∂/∂γ = g·x̂ with x̂ = x/rms(x), summed over the leading dims (x records nothing here)"
    formula = None
    # (torch saves other only for self's gradient, which x, recording nothing, never needs: None, freed or not)
    saved_attributes = {"_saved_self": saved(0), "_saved_other": None}

    @staticmethod
    def forward(ctx, x, w=None, dims=(), eps=0.0):
        normalized = x * _inverse_rms(x, dims, eps)
        if w is None:
            return normalized
        ctx.save_for_backward(normalized)
        return normalized * w

    @staticmethod
    def backward(ctx, grad):
        (normalized,) = ctx.saved_values
        # d(x̂·γ)/dγ = x̂ (the engine sums it over the leading dims, as after torch's MulBackward0)
        return None, grad * normalized


# ---------------------------------------------------------------- public functions
def _affine(x: Tensor, weight, bias, shape: tuple) -> Tensor:
    if weight is not None:
        x = x * weight.reshape(shape)
    if bias is not None:
        x = x + bias.reshape(shape)
    return x


def _float(x: Tensor) -> Tensor:
    return x if x._data.dtype.kind in "fV" else x.to(_dtype.get_default_dtype())


def refuse_non_floating(input: Tensor, kernel: str) -> None:
    """torch's error for a norm whose CPU kernel ``kernel`` is defined on floating dtypes only
    (bool, integer and complex inputs), raised after its shape checks."""
    if input._data.dtype.kind in "biuc":
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(input.dtype)}'")


def _is_half_on_cpu(input: Tensor) -> bool:
    """A float16/bfloat16 input held in a NumPy array, normalised as torch's CPU kernels do
    (``_half_norm``). On a device torch's CUDA norm kernels compute in float32 and round once, as
    the float32 path does; the composed rounding path would only be slower there."""
    if input.dtype is not _dtype.float16 and input.dtype is not _dtype.bfloat16:
        return False
    return input.device.type == "cpu"


def half_statistics(input: Tensor, view_shape: tuple, dims: tuple, eps: float, round_stats: bool):
    """The float32 mean, biased variance and 1/σ over ``dims`` of a float16/bfloat16 ``input`` viewed
    as ``view_shape``, as torch's CPU norm kernels take them (see ``_half_norm``)."""
    low = input.dtype
    x = input.to(_dtype.float32).reshape(view_shape)
    mean = x.mean(dims, keepdim=True)
    var_sum = (x - mean).square().sum(dims, keepdim=True)
    count = math.prod(view_shape[d] for d in dims)
    if round_stats and low is _dtype.bfloat16:
        var = rounded_through(rounded_through(var_sum, low) / count, low)
    else:
        var = var_sum / count
    invstd = (var + eps).rsqrt()
    if round_stats:
        return rounded_through(mean, low), var, rounded_through(invstd, low)
    return mean, var, invstd


def _half_norm(input: Tensor, weight, bias, view_shape: tuple, dims: tuple, param_shape: tuple, eps: float,
               round_stats: bool, running=None):
    """A float16/bfloat16 norm, rounded where torch's kernels round (checked against
    torch 2.13 bit for bit): statistics and affine map in float32, the affine map folded into one
    scale and shift per statistic, each output value one fused multiply-add rounded once.

    ``input`` is viewed as ``view_shape``; mean and biased variance are taken over ``dims``;
    weight and bias are viewed as ``param_shape``. Batch (and so instance) norm keeps its mean and
    1/σ in the input's dtype (``round_stats``; its bfloat16 kernel rounds Σ(x - mean)² and the
    variance too), group norm keeps them in float32. ``running`` (mean, var): evaluation with these
    statistics, read in float32. Returns the output and the float32 mean and variance (None in
    evaluation) for the running estimates.
    """
    low, float32 = input.dtype, _dtype.float32
    var = None
    if running is None:
        mean, var, invstd = half_statistics(input, view_shape, dims, eps, round_stats)
    else:
        mean = running[0].to(float32).reshape(param_shape)
        invstd = (running[1].to(float32).reshape(param_shape) + eps).rsqrt()
    scale = invstd if weight is None else invstd * weight.to(float32).reshape(param_shape)
    shift = -(mean * scale) if bias is None else bias.to(float32).reshape(param_shape) - mean * scale
    # float64 holds x · scale exactly: the sum rounds as the kernel's fused multiply-add does
    float64 = _dtype.float64
    out = input.to(float64).reshape(view_shape) * scale.to(float64) + shift.to(float64)
    return out.to(float32).to(low).reshape(tuple(input.shape)), mean, var


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """F.batch_norm over (N, C, *): per-channel statistics; updates the running ones in training.

    torch's F.batch_norm checks eps's sign in Python, after the batch size (a NaN eps passes both);
    torch.batch_norm and instance_norm's path through it (``_batch_norm``) do not. Those Python
    comparisons see eps as given, so a string fails them with Python's TypeError, as in torch."""
    _values_per_channel(input, training)
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _runs_in_float32(input: Tensor, *parameters, on_autocast_float32_list: bool = False) -> bool:
    """torch's CPU norms check their parameters' dtypes so, and say whether the norm runs "mixed":
    a float16/bfloat16 input with float32 parameters, normalised in float32 and returned in the
    input's dtype. Parameters of the input's dtype run as they are; torch refuses any other mix
    rather than promote (the first given parameter decides which of its errors). On a GPU the same
    mix (float16/bfloat16 input, float32 parameters: AMP's batch norm) runs mixed as well, without
    the CPU's dtype errors; other mixes there keep the type promotion they had. Inside CUDA autocast
    an op of its float32 list (``on_autocast_float32_list``: layer and group norm) gets its input
    cast up by the seam first, as torch's does, so it returns float32 and does not run mixed."""
    dtype = input.dtype
    for p in parameters:  # the common case, all of the input's dtype, decided in one cheap pass
        if p is not None and p.dtype is not dtype:
            break
    else:
        return False
    if not dtype.is_floating_point:
        return False
    given = [p for p in parameters if p is not None]
    if input.device.type != "cpu":
        if on_autocast_float32_list and autocast_unifies(input._data):
            return False
        return dtype in (_dtype.float16, _dtype.bfloat16) and all(p.dtype == _dtype.float32 for p in given)
    if given[0].dtype == input.dtype:
        for p in given[1:]:
            if p.dtype != input.dtype:
                raise RuntimeError(f"expected scalar type {_dtype.scalar_name(input.dtype)} but found "
                                   f"{_dtype.scalar_name(p.dtype)}")
        return False
    if any(p.dtype != _dtype.float32 for p in given):
        raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of Float")
    if input.dtype not in (_dtype.float16, _dtype.bfloat16):
        raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
    return True


def _values_per_channel(input: Tensor, training: bool) -> int:
    if input.ndim == 0 and training:  # torch's Python check reads size[0]
        raise IndexError("tuple index out of range")
    shape = input._data.shape  # (the array's sizes: Tensor.shape would wrap them in a Size first)
    count = math.prod(shape[:1]) * math.prod(shape[2:])
    if training and count == 1:  # an empty batch passes: torch returns an empty output
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"torch.Size({list(input.shape)})")
    return count


def _empty_batch_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """torch's shortcut for an empty input: no statistics to take or record; weight and bias stay
    in the graph (their gradients are zeros), as torch's input.clone() * weight[0] + bias[0]."""
    for parameter in (weight, bias):
        if parameter is not None and parameter.numel() == 0:  # (torch's C++ weight[0] is a select)
            raise IndexError(f"select(): index 0 out of range for tensor of size {list(parameter.shape)} at "
                             f"dimension 0")
    out = input.clone()
    if weight is not None:
        out = out * weight[0]
    if bias is not None:
        out = out + bias[0]
    return out


def _check_batch_norm_parameters(channels: int, running_mean: Tensor | None, running_var: Tensor | None,
                                 weight: Tensor | None, bias: Tensor | None, training: bool,
                                 repeats: int | None = None) -> None:
    """torch's checks, in its order: each given statistic and affine parameter holds one value per
    channel (the statistics as 1-d tensors), and evaluation needs both statistics. With ``repeats``,
    instance norm's: torch's is batch norm over N·C channels with each given tensor repeated N times
    (``tensor.repeat(N)``, which refuses one of more than one dim first), so it counts N copies."""
    if repeats is not None:
        for given in (weight, bias, running_mean, running_var):  # (repeat's order in torch)
            if given is not None and given.ndim > 1:
                raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                                   "dimensions of tensor")
    copies = 1 if repeats is None else repeats
    # (sizes read off the arrays, as numel() and ndim read them, without numel's dispatch: torch's
    # kernel checks them in C++, where no torch-function mode sees a call)
    for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
        if stat is None:
            if not training:
                raise RuntimeError(f"{name} must be defined in evaluation mode")
        elif copies * stat._data.size != channels:
            raise RuntimeError(f"{name} should contain {channels} elements not {copies * stat._data.size}")
        elif stat._data.ndim != 1 and repeats is None:  # torch's kernel reads the statistics through a 1-d accessor
            raise RuntimeError(f"TensorAccessor expected 1 dims but tensor has {stat._data.ndim}")
    for name, parameter in (("weight", weight), ("bias", bias)):
        if parameter is not None and copies * parameter._data.size != channels:
            raise RuntimeError(f"{name} should contain {channels} elements not {copies * parameter._data.size}")


def _refuse_one_running_statistic(running_mean: Tensor | None, running_var: Tensor | None) -> None:
    """torch's kernel updates both running statistics or neither (a ValueError, before the dtypes)."""
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")


def _refuse_unbatched_running_stats(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None) -> None:
    """Inside vmap, running statistics that are not mapped would be updated once per slice: torch's
    vmap refuses them when the input is batched (an input vmap passes unmapped is not; one the
    function computed is taken to be)."""
    if not _vmap_frames.running() or _vmap_frames.mapped(input) is False:
        return
    if any(stat is not None and not _vmap_frames.mapped(stat) for stat in (running_mean, running_var)):
        raise RuntimeError(
            "Batch norm got a batched tensor as input while the running_mean or running_var, which will be updated in "
            "place, were not batched.\nIf you are using a module and do not need eval mode, please set "
            "`track_running_stats` to be False.If you are using a prebuilt module and do not need eval mode, please "
            "see the functorch website for resources on how to patch your module to work with vmap")


def _batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    # (F.batch_norm and native_batch_norm pass these on positionally: momentum 7th, eps 8th, checked
    # in that order; a module's momentum=None, the cumulative average, reaches here as 1 / batches)
    momentum = check_float(momentum, "batch_norm", "momentum", position=7)
    eps = check_float(eps, "batch_norm", "eps", position=8)
    count = _values_per_channel(input, training)  # torch checks this first
    shape = input._data.shape
    if not input._data.size:  # torch's shortcut comes before its checks of the parameters
        return _empty_batch_norm(input, weight, bias)
    if len(shape) < 2:
        # no channel dim: torch's checks find 0 features, then dim 1 out of range
        _check_batch_norm_parameters(0, running_mean, running_var, weight, bias, training)
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    c = shape[1]
    _check_batch_norm_parameters(c, running_mean, running_var, weight, bias, training)
    _refuse_one_running_statistic(running_mean, running_var)
    refuse_non_floating(input, "batch_norm")
    if _function.active_dispatch is not None:
        # a dispatch mode sees torch's reserve (empty.memory_format([0], uint8)) and its one
        # native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps)
        _function.factory_dispatch("empty.memory_format", _reserve, ([0],),
                                   {"dtype": _dtype.uint8, "layout": _layout.strided, "device": input.device})
        made = _function.composite_dispatch("native_batch_norm", _native_batch_norm,
                                            (input, weight, bias, running_mean, running_var, training, momentum, eps), {})
        if made is _function.RUN_UNDISPATCHED and any(
                t is not None and t._wrapper_strides is not None for t in (running_mean, running_var)):
            # a wrapper's values live in it: its handler reads and updates the running statistics (not its placeholder)
            made = dispatched_native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum,
                                                eps)
        if made is not _function.RUN_UNDISPATCHED:
            return made[0] if isinstance(made, (tuple, list)) else made
    return _batch_norm_computed(input, running_mean, running_var, weight, bias, training, momentum, eps, count)


def _reserve(size, *, dtype=None, layout=None, device=None):
    """aten.empty.memory_format's func for batch norm's reserve: an empty uint8 tensor."""
    return Tensor._make(np.empty(size, dtype=np.uint8))


def dispatched_native_batch_norm(input: Tensor, weight, bias, running_mean, running_var, training: bool,
                                 momentum: float, eps: float):
    """aten.native_batch_norm answered by the handler of a wrapper subclass among the arguments (its func
    updates the running statistics it hands, the wrapper's own), the gradient recorded over the values it
    handed without a second update; RUN_UNDISPATCHED where no wrapper is among them."""
    return _function.argument_dispatch("native_batch_norm", _native_batch_norm,
                                       (input, weight, bias, running_mean, running_var, training, momentum, eps), {},
                                       _native_batch_norm_recorded)


def _native_batch_norm_recorded(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """_native_batch_norm on copies of the running statistics in training (which reads none of them)."""
    if training:
        running_mean, running_var = (None if t is None else t.detach().clone() for t in (running_mean, running_var))
    return _native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps)


def _native_batch_norm(input: Tensor, weight, bias, running_mean, running_var, training: bool,
                       momentum: float, eps: float) -> tuple:
    """aten.native_batch_norm's func under a dispatch mode: ``(output, save_mean, save_invstd)`` as
    torch's (the batch's mean and 1/sqrt(biased var + eps) per channel in training, empty in eval);
    an outer mode sees the same one op."""
    args = (input, weight, bias, running_mean, running_var, training, momentum, eps)
    made = _function.composite_dispatch("native_batch_norm", _native_batch_norm, args, {})
    if made is not _function.RUN_UNDISPATCHED:
        return made
    count = _values_per_channel(input, training)
    out = _batch_norm_computed(input, running_mean, running_var, weight, bias, training, momentum, eps, count)
    x = np.asarray(input._data)
    if training and x.size:
        dims = (0,) + tuple(range(2, x.ndim))
        mean = x.mean(axis=dims, dtype=np.float64)
        var = x.var(axis=dims, dtype=np.float64)
        saved = (mean.astype(x.dtype), (1.0 / np.sqrt(var + eps)).astype(x.dtype))
    else:
        saved = (np.empty(0, x.dtype), np.empty(0, x.dtype))
    return (out, *(Tensor._make(value) for value in saved))


def _batch_norm_computed(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                         weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float, eps: float,
                         count: int) -> Tensor:
    """_batch_norm past its checks (what native_batch_norm's func runs under a dispatch mode)."""
    c = input.shape[1]
    # (torch takes an affine parameter of any shape holding one value per channel)
    weight, bias = (p if p is None or p.ndim == 1 else p.reshape(c) for p in (weight, bias))
    if _runs_in_float32(input, weight, bias, running_mean, running_var):
        out = _batch_norm(input.to(_dtype.float32), running_mean, running_var, weight, bias, training, momentum, eps)
        # torch's mixed kernel is one node, whatever the cast back
        return name_node(out.to(input.dtype), "NativeBatchNormBackward0", label="batch_norm")
    shape = (1, c) + (1,) * (input.ndim - 2)
    dims = (0,) + tuple(range(2, input.ndim))
    if _is_half_on_cpu(input):
        return _half_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, count)
    if training:
        _refuse_unbatched_running_stats(input, running_mean, running_var)
        stats: dict = {"running": (running_mean, running_var)}  # (read by grad_fn._saved_running_*)
        x = _float(input)
        if x.dtype is _dtype.float32 and all(p is None or p.dtype is x.dtype for p in (weight, bias)):
            # torch's float32 kernel takes a missing weight as 1 and bias as 0 in its x·α + β
            stats["unit_weight"] = weight is None
            out = BatchNorm.apply(x, *_unit_affine(x, c, weight, bias), dims=dims, eps=eps, stats=stats)
        elif weight is not None and bias is not None and weight.dtype is x.dtype and bias.dtype is x.dtype:
            out = BatchNorm.apply(x, weight, bias, dims=dims, eps=eps, stats=stats)
        else:
            out = _affine(_watch_output(Normalize.apply(x, dims=dims, eps=eps, stats=stats, follow_layout=True)),
                          weight, bias, shape)
            if weight is not None or bias is not None:  # torch's one node for the norm and its affine
                out = name_node(out, "NativeBatchNormBackward0", label="batch_norm", saved=_COMPOSED_BATCH_NORM_SAVED,
                                kept=_batch_norm_kept(x, weight, running_mean, running_var, eps, stats))
        if _updates_as_float32_kernel(input, running_mean, running_var) and not _batch_norm_contiguous(input._data):
            _update_noncontiguous_running_stats(running_mean, running_var, input._data, count, momentum,
                                                stats.get("float64_sums"))
        elif _updates_as_float32_kernel(input, running_mean, running_var):
            mean32, var_sum32 = _torch_running_statistics(input._data, stats.get("float32_sums"))
            _update_float32_running_stats(running_mean, running_var, mean32, var_sum32, count, momentum)
        else:
            _update_running_stats(running_mean, running_var, stats["mean"], stats["var"], count, momentum)
        return out
    # eval: y = (x - μ) · w / sqrt(σ² + eps) + b, with constant statistics folded into one scale
    xp = array_module(running_var._data)
    statistics = (running_mean, running_var)
    fused = _eval_rounds_fused(input, running_mean, running_var, weight, bias)
    if fused and _unrecorded_on_arrays(input, running_mean, running_var, weight, bias):
        return _eval_batch_norm_float32(input, running_mean, running_var, weight, bias, eps, shape)
    if fused and not _function.tracing_ops and not running_mean._requires_grad and not running_var._requires_grad:
        # (1/σ computed here, where NumPy's warning of a zero variance reaches the caller, as before)
        invstd = (1.0 / np.sqrt(running_var._data + eps)).astype(np.float32)
        out = EvalBatchNorm.apply(input, *_unit_affine(input, c, weight, bias), mean=running_mean._data,
                                  var=running_var._data, eps=eps, shape=shape, invstd=invstd)
        out = name_node(out, "NativeBatchNormBackward0", label=EvalBatchNorm.label, saved=_COMPOSED_BATCH_NORM_SAVED,
                        kept=_batch_norm_kept(input, weight, running_mean, running_var, eps))
        return relaid_as_suggested(out, input)
    scale = _statistic((1.0 / xp.sqrt(running_var._data + eps)).astype(input._data.dtype), statistics)
    if weight is not None:
        scale = scale * weight
    if fused:  # torch's float32 kernel: β = b - mean · α and x · α + β, each a fused multiply-add
        shift = FusedScaleShift.apply(-_statistic(running_mean._data, statistics), scale,
                                      gradient_against(bias, input, weight, node="NativeBatchNormBackwardBackward0")
                                      if bias is not None else _statistic(np.zeros_like(running_mean._data), ()))
    else:
        shift = -_statistic(running_mean._data.astype(input._data.dtype), statistics) * scale
        if bias is not None:
            shift = shift + gradient_against(bias, input, weight, node="NativeBatchNormBackwardBackward0")
    # torch records one NativeBatchNormBackward0 here; ours is the composed scale-and-shift, named
    # so, and laid out as torch's kernel lays it out
    if fused:
        out = FusedScaleShift.apply(input, scale.reshape(shape), shift.reshape(shape))
    else:
        out = input * scale.reshape(shape) + shift.reshape(shape)
    out = name_node(out, "NativeBatchNormBackward0", label="batch_norm (eval)", saved=_COMPOSED_BATCH_NORM_SAVED,
                    kept=_batch_norm_kept(input, weight, running_mean, running_var, eps))
    return relaid_as_suggested(out, input)


def _batch_norm_kept(input: Tensor, weight, running_mean, running_var, eps: float, stats: dict | None = None) -> dict:
    """What torch's NativeBatchNormBackward0 keeps, for a batch norm composed of several nodes: in
    training (``stats``) each channel's mean and 1/σ as result1 and result2, in eval mode empty ones."""
    if stats is None:
        result1 = result2 = Tensor._make(array_module(input._data).empty(0, dtype=input._data.dtype))
    else:
        mean, var = stats["mean"].reshape(-1), stats["var"].reshape(-1)
        result1 = Tensor._make(mean.astype(input._data.dtype, copy=False))
        result2 = Tensor._make((1.0 / array_module(var).sqrt(var + eps)).astype(input._data.dtype, copy=False))
    return {"eps": eps, "input": input, "result1": result1, "result2": result2, "running_mean": running_mean,
            "running_var": running_var, "training": stats is not None, "weight": weight}


# torch's _saved_* of a batch norm recorded as several nodes (eval mode, a float64 one with a
# weight or a bias alone), read from _batch_norm_kept
_COMPOSED_BATCH_NORM_SAVED = {
    **{f"_saved_{name}": kept_value(name, tensor=True)
       for name in ("input", "result1", "result2", "running_mean", "running_var", "weight")},
    "_saved_eps": kept_value("eps"), "_saved_training": kept_value("training")}


def _unrecorded_on_arrays(*tensors) -> bool:
    """Whether an op on these tensors (None for an absent one) would record nothing and nothing
    watches it: no node (grad mode off, or none requires grad), nothing ``nothing_watches`` asks
    about (a mode, profiler, forward AD, autocast region, running vmap), and every value a NumPy
    array in a plain tensor (no wrapper subclass holding its own)."""
    if _function.is_recording(*tensors):  # (first: a training step records, and pays only this)
        return False
    if not _function.nothing_watches():
        return False
    for t in tensors:
        if t is not None and (type(t._data) is not np.ndarray or getattr(type(t), "__torch_dispatch__", None) is not None):
            return False
    return True


def _eval_batch_norm_float32(input: Tensor, running_mean: Tensor, running_var: Tensor, weight, bias, eps: float,
                             shape: tuple) -> Tensor:
    """Eval-mode float32 batch norm where nothing records (``_unrecorded_on_arrays``): the fused
    path's arithmetic (α = 1/σ · w, β = b - mean · α fused, x · α + β fused) on the arrays, without
    its five unrecorded Tensor ops."""
    scale = (1.0 / np.sqrt(running_var._data + eps)).astype(np.float32)
    quiet = numpy_errstate.set(QUIET)  # (NumPy's warnings off, as in the applies these steps were)
    try:
        if weight is not None:
            scale = scale * weight._data
        shift = _scale_shift_float32(-running_mean._data, scale,
                                     bias._data if bias is not None else np.zeros_like(running_mean._data))
        out = _scale_shift_float32(input._data, scale.reshape(shape), shift.reshape(shape))
    finally:
        numpy_errstate.reset(quiet)
    return relaid_as_suggested(Tensor._make(out), input)


def _statistic(array, statistics: tuple) -> Tensor:
    """A tensor over ``array``, computed from the running ``statistics`` alone: inside a vmap that
    records slice 0's ops (_vmap_batched), a constant of the record where the statistics are
    unbatched (every slice computes the same), so that eval-mode batch norm replays on the batch."""
    t = Tensor._make(array)
    if _function.tracing_ops and _vmap_frames.current() is not None and all(
            _vmap_frames.unbatched_target(s) for s in statistics):
        _function.traced_constant(t)
    return t


def _unit_affine(x: Tensor, channels: int, weight, bias) -> tuple:
    """``weight`` and ``bias``, a missing one as the constant 1 or 0 per channel (no gradient)."""
    xp = array_module(x._data)
    return (Tensor._make(xp.ones(channels, np.float32)) if weight is None else weight,
            Tensor._make(xp.zeros(channels, np.float32)) if bias is None else bias)


def _eval_rounds_fused(input: Tensor, *tensors) -> bool:
    """Whether eval-mode batch norm rounds as torch's float32 CPU kernel: a float32 NumPy input with
    float32 statistics and parameters (or none). The unfused multiply and add differed from torch
    in the last bit on about a third of the outputs."""
    float32 = _dtype.float32
    return input.dtype is float32 and array_module(input._data) is np and all(
        t is None or t.dtype is float32 for t in tensors)


def _update_running_stats(running_mean, running_var, mean, var, count: int, momentum: float) -> None:
    """Batch norm's running estimates, moved ``momentum`` of the way to this batch's mean and
    unbiased variance (``mean`` and biased ``var`` are arrays with one value per channel)."""
    if running_mean is not None:
        running_mean._data *= 1 - momentum
        running_mean._data += momentum * mean.reshape(-1).astype(running_mean._data.dtype)
        running_mean._version_box[0] += 1
    if running_var is not None:
        unbiased = var.reshape(-1) * (count / (count - 1))
        running_var._data *= 1 - momentum
        running_var._data += momentum * unbiased.astype(running_var._data.dtype)
        running_var._version_box[0] += 1


def _updates_as_float32_kernel(input: Tensor, running_mean, running_var) -> bool:
    """Whether torch's float32 CPU kernel updates these running statistics: a float32 NumPy input
    and float32 statistics (at least one)."""
    stats = [t for t in (running_mean, running_var) if t is not None]
    return (bool(stats) and input._data.dtype == np.float32 and type(input._data) is np.ndarray
            and all(type(t._data) is np.ndarray and t._data.dtype == np.float32 for t in stats))


def _update_float32_running_stats(running_mean, running_var, mean, var_sum, count: int, momentum: float) -> None:
    """torch's float32 update (batch_norm_cpu_update_stats_template), operation by operation:
    momentum rounded to float32 first; the mean's terms in float32, m·mean + (1 - m)·running;
    the unbiased variance float32 var_sum / (N - 1) but its momentum term in float64 (the kernel's
    accumulation type), added to the float32 (1 - m)·running and rounded once. Measured bit for bit
    against torch; the float64 (1 - momentum) NumPy applied before differed in the last bit."""
    momentum32 = np.float32(momentum)
    kept = np.float32(1) - momentum32
    if running_mean is not None:
        running_mean._data[...] = momentum32 * mean + kept * running_mean._data
        running_mean._version_box[0] += 1
    if running_var is not None:
        unbiased = var_sum / np.float32(count - 1)
        moved = np.float64(momentum32) * unbiased.astype(np.float64)
        running_var._data[...] = moved + (kept * running_var._data).astype(np.float64)
        running_var._version_box[0] += 1


def _batch_norm_contiguous(x: np.ndarray) -> bool:
    """torch's batch norm is_contiguous: contiguous, channels-last or channels-last-3d."""
    return x.flags.c_contiguous or (x.ndim in (4, 5) and np.moveaxis(x, 1, -1).flags.c_contiguous)


def _update_noncontiguous_running_stats(running_mean, running_var, x: np.ndarray, count: int,
                                        momentum: float, sums: np.ndarray | None = None) -> None:
    """torch's update for an input of any other layout (batch_norm_cpu_update_stats_template's
    non-contiguous path): mean = at::mean (float32), then in the kernel's float64 accumulation type
    var_sum = Σ (x - mean)², and momentum · mean + (1 - momentum) · running with momentum
    unrounded, each statistic rounded to float32 once. The mean is the float64 sum's, rounded; torch's
    float32 sum over a strided input can differ from it in the last bit (see the report of lane mendE).
    ``sums``: the forward's float64 Σx per channel where it took them (one pass over a strided
    input saved, of the three this update made: 6.93 -> 9.47 ms for a transposed BatchNorm2d)."""
    dims = (0,) + tuple(range(2, x.ndim))
    per_channel = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if sums is None:
        sums = x.sum(axis=dims, dtype=np.float64)
    mean = _float32_batch_mean(x, count, sums)
    if running_mean is not None:
        _move_in_float64(running_mean, mean, momentum)
    if running_var is not None:
        # Σ x² - 2 mean Σ x + N mean² in float64 (the float32 squares exact in it) is Σ (x - mean)² to
        # far below float32's last bit unless |mean| is ~1000 σ; then it is taken the long way
        letters = "abcdefgh"[:x.ndim]
        squares = np.einsum(f"{letters},{letters}->b", x, x, dtype=np.float64)
        var_sum = squares - 2 * mean * sums + count * mean * mean
        if not np.all(var_sum >= 1e-6 * squares):
            centred = np.subtract(x, mean.reshape(per_channel), dtype=np.float64)
            var_sum = np.square(centred, out=centred).sum(axis=dims)
        _move_in_float64(running_var, var_sum / (count - 1), momentum)


def _float32_batch_mean(x: np.ndarray, count: int, sums: np.ndarray | None = None) -> np.ndarray:
    """The batch's per-channel mean as torch's update takes it, in float64: the float64 Σx (the
    forward's ``sums`` where it took them) over ``count``, rounded to float32."""
    if sums is None:
        sums = x.sum(axis=(0,) + tuple(range(2, x.ndim)), dtype=np.float64)
    return (sums / count).astype(np.float32).astype(np.float64)


def _move_in_float64(running: Tensor, batch_value: np.ndarray, momentum: float) -> None:
    """``running`` ← momentum · ``batch_value`` + (1 - momentum) · ``running`` in float64 with
    momentum unrounded, rounded to the running statistic's dtype once."""
    running._data[...] = momentum * batch_value + (1 - momentum) * running._data.astype(np.float64)
    running._version_box[0] += 1


# The longest run of rows one thread sums in torch's channels-last statistics that chainrule
# replays step by step (each step a few NumPy calls on one row per thread); a longer one is
# summed by NumPy in one call without the fused multiply-add, which may differ in the last bit.
_SEQUENTIAL_ROWS = 1024


def _torch_running_statistics(x: np.ndarray, contiguous_sums=None) -> tuple:
    """A float32 (N, C, ...) batch's per-channel mean and Σ(x - mean)², both float32, as torch's CPU
    kernel (batch_norm_cpu_collect_stats) computes them for the running statistics. A channels-last
    input, or one with one value per (sample, channel) (NC, NC11: torch treats it as channels-last),
    goes through the channels-last reduction, whose rounding depends on torch's thread count
    (``_channels_last_statistics``); any other through the contiguous one (``contiguous_sums``: its
    results when the forward already has them).

    One value per (sample, channel) is the exception: BatchNorm1d on (N, C), the common layer of
    an MLP, keeps the forward's contiguous sums, since replaying torch's channels-last reduction
    cost 1.7 to 3 times the layer's whole forward (batches 32 to 1024); torch's sums of the same
    rows round differently in the last bit now and then."""
    n, c = x.shape[0], x.shape[1]
    if x.size != n * c and suggests_channels_last(x):
        rows = np.moveaxis(x, 1, -1).reshape(-1, c)  # (N·spatial, C) in channels-last memory order
        return _channels_last_statistics(rows, torch_intra_op_threads())
    if contiguous_sums is not None:
        return contiguous_sums
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    mean, _, var_sum, _, _, _ = _float32_batch_statistics(np, x3, x3.shape[0] * x3.shape[2], 0.0, keep_centred=False)
    return mean, var_sum


def _channels_last_statistics(rows: np.ndarray, threads: int) -> tuple:
    """torch's batch_norm_cpu_collect_stats_channels_last_impl on (R, C) float32 ``rows``: the rows
    split into ``threads`` consecutive runs (at::parallel_for's chunks), each summed row by row in a
    float32 buffer — x for the mean, then (x - mean)² added by a fused multiply-add — and the
    threads' buffers added in float64; mean = float32(Σ / R)."""
    rows = np.ascontiguousarray(rows)  # (NumPy sums a contiguous array's outer axis row by row)
    count, channels = rows.shape
    runs = 1 if count <= 1 or threads <= 1 else min(threads, count)
    length = -(-count // runs)
    starts = range(0, count, length)
    total = np.zeros(channels)
    for start in starts:
        total += rows[start:start + length].sum(axis=0, dtype=np.float32)
    mean = (total / count).astype(np.float32)
    if length > _SEQUENTIAL_ROWS:
        buffers = [np.square(rows[start:start + length] - mean).sum(axis=0, dtype=np.float32) for start in starts]
        return mean, np.sum(buffers, axis=0, dtype=np.float64).astype(np.float32)
    # float64 holds each float32 square exactly, so square + buffer rounded from float64 to float32
    # is the fused multiply-add's one rounding (bar a rare double rounding); the runs step together,
    # a shorter last one padded with zero squares, which leave its buffer as it is
    squares = np.zeros((length, len(starts), channels))
    for run, start in enumerate(starts):
        centred = rows[start:start + length] - mean
        np.multiply(centred, centred, out=squares[:len(centred), run], dtype=np.float64)
    buffers = np.zeros((len(starts), channels), dtype=np.float32)
    widened = np.empty(buffers.shape)
    for step_squares in squares:
        np.add(step_squares, buffers, out=widened)
        np.copyto(buffers, widened, casting="same_kind")
    return mean, buffers.astype(np.float64).sum(axis=0).astype(np.float32)


def _update_float16_running_stats(running_mean, running_var, x: np.ndarray, var: np.ndarray, count: int,
                                  momentum: float) -> None:
    """torch's update of float16 running statistics from a float16 batch, as measured against it
    (180 of 180 means and variances over 40 batches; the Half-operator and float32 readings of
    batch_norm_cpu_update_stats_template missed 35-55): in float64, momentum unrounded,
    ``m·mean + (1 - m)·running`` with the float32 batch mean before its rounding to float16, and
    ``m·Σ/(N - 1) + (1 - m)·running`` with Σ the float32 Σ(x - mean)² (recovered here as the
    float32 biased variance times N), each rounded to float16 once."""
    if running_mean is not None:
        _move_in_float64(running_mean, _float32_batch_mean(x, count), momentum)
    if running_var is not None:
        var_sum = (var.reshape(-1).astype(np.float32) * np.float32(count)).astype(np.float64)
        _move_in_float64(running_var, var_sum / (count - 1), momentum)


def _half_batch_norm(input: Tensor, running_mean, running_var, weight, bias, training: bool, momentum: float,
                     eps: float, count: int) -> Tensor:
    """Batch norm of a float16/bfloat16 input with parameters of its dtype (``_half_norm``)."""
    n, c = input.shape[0], input.shape[1]
    view_shape, param_shape = (n, c, math.prod(input.shape[2:])), (1, c, 1)
    if training:
        _refuse_unbatched_running_stats(input, running_mean, running_var)
        out, mean, var = _half_norm(input, weight, bias, view_shape, (0, 2), param_shape, eps, round_stats=True)
        if input.dtype is _dtype.float16 and all(t is None or t.dtype is _dtype.float16 for t in (running_mean, running_var)):
            _update_float16_running_stats(running_mean, running_var, input._data, var.detach()._data, count, momentum)
        else:
            _update_running_stats(running_mean, running_var, mean.detach()._data, var.detach()._data, count, momentum)
    else:
        out = _half_norm(input, weight, bias, view_shape, (0, 2), param_shape, eps, round_stats=False,
                         running=(running_mean, running_var))[0]
    return relaid_as_suggested(name_node(out, "NativeBatchNormBackward0", label="batch_norm"), input)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """F.layer_norm: normalise over the trailing ``normalized_shape`` dims."""
    eps = check_float(eps, "layer_norm", "eps", position=5)  # F.layer_norm calls torch.layer_norm positionally
    normalized_shape = int_list(normalized_shape, "layer_norm", "normalized_shape", sized=False)  # a str, None: TypeError
    k = len(normalized_shape)
    if k == 0:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one "
                           "element, but got normalized_shape = []")
    for name, affine in (("weight", weight), ("bias", bias)):  # torch checks these before the input
        if affine is not None and tuple(affine.shape) != normalized_shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                               f"{list(affine.shape)} and normalized_shape = {list(normalized_shape)}")
    if tuple(input.shape[input.ndim - k:]) != normalized_shape or input.ndim < k:
        raise RuntimeError(
            f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in normalized_shape)}], but got input of size{list(input.shape)}"
        )
    refuse_non_floating(input, "LayerNormKernelImpl")
    if _runs_in_float32(input, weight, bias, on_autocast_float32_list=True):
        return layer_norm(input.to(_dtype.float32), normalized_shape, weight, bias, eps).to(input.dtype)
    dims = tuple(range(input.ndim - k, input.ndim))
    x = _float(input)
    half_on_cpu = _is_half_on_cpu(input)
    if weight is not None and weight.dtype is x.dtype and (bias is None or bias.dtype is x.dtype):
        if bias is None:  # torch's one node too, whose kernel adds a bias of 0 (a -0 product comes out +0)
            return LayerNorm.apply(x, weight, Tensor._make(array_module(x._data).zeros(weight.shape, x._data.dtype)),
                                   dims=dims, eps=eps, half_on_cpu=half_on_cpu, unit_bias=True)
        return LayerNorm.apply(x, weight, bias, dims=dims, eps=eps, half_on_cpu=half_on_cpu)
    if weight is None and bias is not None and bias.dtype is x.dtype:
        # torch's one node, its edge to the missing weight (None, 0): here a constant 1 (x̂·1 is x̂)
        return LayerNorm.apply(x, Tensor._make(array_module(x._data).ones(bias.shape, x._data.dtype)), bias,
                               dims=dims, eps=eps, half_on_cpu=half_on_cpu, unit_weight=True)
    out = _watch_output(LayerNormalize.apply(x, dims=dims, eps=eps, half_on_cpu=half_on_cpu))
    if weight is None and bias is None:
        return _with_absent_affine(out)
    return _affine(out, weight, gradient_against(bias, x, weight, node="NativeLayerNormBackwardBackward0"),
                   normalized_shape)


def _check_group_norm_affine(input: Tensor, weight: Tensor | None, bias: Tensor | None) -> None:
    """torch's check_group_norm_inputs: weight and bias are vectors of C, checked before the dtype."""
    c = input.shape[1]
    # torch's bias message prints the weight's shape, [0] for no weight; kept so the text is torch's
    weight_shape = list(weight.shape) if weight is not None else [0]
    for name, parameter in (("weight", weight), ("bias", bias)):
        if parameter is not None and (parameter.ndim != 1 or parameter.numel() != c):
            raise RuntimeError(
                f"Expected {name} to be a vector of size equal to the number of channels in input, but got "
                f"{name} of shape {weight_shape} and input of shape {list(input.shape)}"
            )


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """F.group_norm over (N, C, *): statistics per sample and group of C/num_groups channels."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    # F.group_norm's own check (torch.group_norm lacks it): a group of one value has no variance
    size = [input.shape[0] * input.shape[1] // num_groups, num_groups, *input.shape[2:]]
    if size[0] * math.prod(size[2:]) == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")
    return aten_group_norm(input, num_groups, weight, bias, eps)


def aten_group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
                    eps: float = 1e-5) -> Tensor:
    """torch.group_norm: F.group_norm without its check of one value per group."""
    eps = check_float(eps, "group_norm", "eps", position=5)  # F.group_norm calls torch.group_norm positionally
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    c = input.shape[1]
    if num_groups <= 0:  # (zero fails torch's Python wrapper first: a ZeroDivisionError, as here)
        raise RuntimeError(f"Expected num groups to be greater than 0, got {num_groups}")
    if c % num_groups:
        raise RuntimeError(
            f"Expected number of channels in input to be divisible by num_groups, but got input of "
            f"shape {list(input.shape)} and num_groups={num_groups}"
        )
    _check_group_norm_affine(input, weight, bias)
    refuse_non_floating(input, "GroupNormKernelImpl")
    if _function.active_dispatch is not None:  # (a dispatch mode sees torch's one native_group_norm)
        made = _function.composite_dispatch("native_group_norm", _native_group_norm, (
            input, weight, bias, input.shape[0], c, math.prod(input.shape[2:]), num_groups, eps), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made[0] if isinstance(made, (tuple, list)) else made
    return _group_norm_computed(input, num_groups, weight, bias, eps)


def _native_group_norm(input: Tensor, weight, bias, n: int, c: int, hxw: int, group: int, eps: float) -> tuple:
    """aten.native_group_norm's func under a dispatch mode: ``(output, mean, rstd)`` as torch's, the
    statistics (N, group); an outer mode sees the same one op."""
    args = (input, weight, bias, n, c, hxw, group, eps)
    made = _function.composite_dispatch("native_group_norm", _native_group_norm, args, {})
    if made is not _function.RUN_UNDISPATCHED:
        return made
    out = _group_norm_computed(input, group, weight, bias, eps)
    x = np.asarray(input._data)
    if x.size:
        grouped = x.reshape(n, group, -1)
        mean = grouped.mean(axis=2, dtype=np.float64)
        rstd = 1.0 / np.sqrt(grouped.var(axis=2, dtype=np.float64) + eps)
    else:
        mean = rstd = np.zeros((n, group))
    return out, Tensor._make(mean.astype(x.dtype)), Tensor._make(rstd.astype(x.dtype))


def _group_norm_computed(input: Tensor, num_groups: int, weight: Tensor | None, bias: Tensor | None,
                         eps: float) -> Tensor:
    """group_norm past its checks (what native_group_norm's func runs under a dispatch mode)."""
    c = input.shape[1]
    if _runs_in_float32(input, weight, bias, on_autocast_float32_list=True):
        return group_norm(input.to(_dtype.float32), num_groups, weight, bias, eps).to(input.dtype)
    if _is_half_on_cpu(input) and input.numel():
        n, per_group = input.shape[0], c // num_groups
        view_shape = (n, num_groups, per_group, math.prod(input.shape[2:]))
        out = _half_norm(input, weight, bias, view_shape, (2, 3), (1, num_groups, per_group, 1), eps,
                         round_stats=False)[0]
        return relaid_as_suggested(name_node(out, "NativeGroupNormBackward0", label="group_norm"), input)
    x = _float(input)
    if (weight is not None or bias is not None) and all(
            parameter is None or parameter.dtype is x.dtype for parameter in (weight, bias)):
        # torch's one node takes a missing weight or bias as None: a constant 1 or 0 here (no edge)
        xp = array_module(x._data)
        unit = (Tensor._make(xp.ones(c, x._data.dtype)) if weight is None else weight,
                Tensor._make(xp.zeros(c, x._data.dtype)) if bias is None else bias)
        return GroupNorm.apply(x, *unit, groups=num_groups, eps=eps, unit_weight=weight is None)
    out = _watch_output(GroupNormalize.apply(x, groups=num_groups, eps=eps))
    if weight is None and bias is None:
        return _with_absent_affine(out)
    # torch's one NativeGroupNormBackward0 takes the affine too: the composed node named so
    return name_node(_affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2)), "NativeGroupNormBackward0",
                     label="group_norm")


def _update_instance_running_stats(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                                   stats: dict, momentum: float) -> None:
    """torch's instance norm moves its running statistics through batch norm: each repeated once per
    sample, moved by batch norm's update towards that sample's statistics in the input's dtype, then
    averaged over the samples and copied back (at::instance_norm's repeat, batch_norm, mean(0)).
    Moving the average of the samples' statistics instead rounded differently from torch in 40 of 64
    probed cases, this in 25. (Replaying torch's float32 kernel update here, as batch norm does, left
    13, but then a device's update, which cannot replay it, no longer matched the CPU's bits.)"""
    n, c, count = input.shape[0], input.shape[1], math.prod(input.shape[2:])
    xp = array_module(input._data)
    repeated = [None if stat is None else Tensor._make(xp.tile(stat._data.astype(input._data.dtype), n))
                for stat in (running_mean, running_var)]
    _update_running_stats(*repeated, stats["mean"], stats["var"], count, momentum)
    for stat, moved in zip((running_mean, running_var), repeated):
        if stat is not None:
            # an empty batch's mean over no samples is NaN, as torch's (without NumPy's warning)
            stat._data[...] = moved._data.reshape(n, c).mean(0) if n else np.nan
            stat._version_box[0] += 1


def _instance_norm_composed(input: Tensor, running_mean, running_var, weight, bias, use_input_stats: bool,
                            momentum: float, eps: float) -> Tensor:
    """instance_norm as ATen's at::instance_norm composes it, run where a dispatch mode or wrapper subclass
    watches the ops: the parameters and running statistics repeated per sample, one batch norm of
    input.contiguous() viewed as (1, N·C, *), the running statistics' per-sample means written back
    through an alias (in training), the output viewed back."""
    b, c = input.shape[0], input.shape[1]
    weight_, bias_, mean_, var_ = (None if t is None else t.repeat(b) for t in (weight, bias, running_mean, running_var))
    shape = [1, b * c, *input.shape[2:]]
    out = _batch_norm(input.contiguous().view(shape), mean_, var_, weight_, bias_, use_input_stats, momentum, eps)
    if use_input_stats:
        for statistic, repeated in ((running_mean, mean_), (running_var, var_)):
            if statistic is not None:
                _alias(statistic).copy_(repeated.view(b, c).mean(0))
    return out.view(input.shape)


def _alias(tensor: Tensor) -> Tensor:
    """at::alias(tensor) (a view of all of it) as a dispatch mode sees it: aten.alias.default."""
    made = _function.composite_dispatch("alias", _aliased, (tensor,), {})
    return _aliased(tensor) if made is _function.RUN_UNDISPATCHED else made


def _aliased(tensor: Tensor) -> Tensor:
    return tensor.view(tensor.shape)


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """F.instance_norm over (N, C, *): statistics per sample and channel."""
    if use_input_stats and math.prod(input.shape[2:]) == 1:
        # one value per sample and channel: its variance is 0 and the output all bias (torch refuses)
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {input.shape}")
    # (F.instance_norm calls torch.instance_norm positionally: momentum 7th, eps 8th)
    momentum = check_float(momentum, "instance_norm", "momentum", position=7)  # (a module's None is 0 here)
    eps = check_float(eps, "instance_norm", "eps", position=8)
    if not use_input_stats and (running_mean is None or running_var is None):  # at::instance_norm's first check
        raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
    n, instances = (input.shape[0], input.shape[0] * input.shape[1]) if input.ndim >= 2 else (1, 0)
    _check_batch_norm_parameters(instances, running_mean, running_var, weight, bias, use_input_stats, repeats=n)
    if n == 0 and input.ndim >= 2 and (weight is not None or bias is not None):
        # torch repeats the affine parameters once per sample: none, and its kernel reads element 0
        raise IndexError("select(): index 0 out of range for tensor of size [0] at dimension 0")
    if use_input_stats:
        _refuse_one_running_statistic(running_mean, running_var)
    # torch checks the affine parameters' dtypes (the running statistics take any float dtype, with
    # or without use_input_stats), but with running statistics it takes a bias without a weight
    # only in the input's dtype
    if (running_mean is not None or running_var is not None) and weight is None and bias is not None \
            and bias.dtype != input.dtype and input.device.type == "cpu":
        raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of Float")
    if _runs_in_float32(input, weight, bias):
        return instance_norm(input.to(_dtype.float32), running_mean, running_var, weight, bias, use_input_stats,
                             momentum, eps).to(input.dtype)
    if input.ndim > 2 and not _is_half_on_cpu(input) and (_function.active_dispatch is not None or (
            input.dtype.is_floating_point and (running_mean is None and running_var is None or all(
                t is None or t.dtype is input.dtype for t in (running_mean, running_var, weight, bias))))):
        # (unwatched too: torch's graph, View over NativeBatchNormBackward0 over the parameters' Repeat,
        # and its forward bits, with running statistics of the input's dtype or without; the
        # per-channel normalisation below rounded otherwise)
        return _instance_norm_composed(input, running_mean, running_var, weight, bias, use_input_stats, momentum,
                                       eps)
    if not use_input_stats:  # the running statistics, read in the input's dtype (nothing is updated)
        running_mean, running_var = (
            t if t is None or t.dtype is input.dtype or not input.dtype.is_floating_point
            else t.detach().to(input.dtype) for t in (running_mean, running_var))
        # torch normalises input.contiguous() viewed as one batch of N·C channels: a contiguous output
        return _batch_norm(input.contiguous(), running_mean, running_var, weight, bias, False, momentum, eps)
    _refuse_unbatched_running_stats(input, running_mean, running_var)
    refuse_non_floating(input, "batch_norm")
    for statistic in (running_mean, running_var):
        # checked before either is updated; torch refuses an integer running_var this way (an integer
        # running_mean it updates, truncating: chainrule refuses both)
        if statistic is not None and statistic._data.dtype.kind in "biu":
            raise RuntimeError(f"expected scalar type {_dtype.scalar_name(input._data.dtype)} but found "
                               f"{_dtype.scalar_name(statistic._data.dtype)}")
    c = input.shape[1]
    if _is_half_on_cpu(input) and input.numel():  # torch's batch norm of the N·C channels, rounded as it rounds
        n, count = input.shape[0], math.prod(input.shape[2:])
        out, mean, var = _half_norm(input, weight, bias, (n, c, count), (2,), (1, c, 1), eps, round_stats=True)
        _update_running_stats(running_mean, running_var, mean.detach()._data.reshape(n, c).mean(0),
                              var.detach()._data.reshape(n, c).mean(0), count, momentum)
        out._data = array_module(out._data).ascontiguousarray(out._data)  # torch normalises input.contiguous()
        return name_node(out, "NativeBatchNormBackward0", label="batch_norm")
    shape = (1, c) + (1,) * (input.ndim - 2)
    dims = tuple(range(2, input.ndim))
    stats: dict = {}
    out = _watch_output(Normalize.apply(_float(input), dims=dims, eps=eps, stats=stats))
    if running_mean is not None or running_var is not None:
        _update_instance_running_stats(input, running_mean, running_var, stats, momentum)
    # torch normalises through batch_norm with the bias repeated per sample: its gradient is a sum
    return _affine(out, weight, gradient_against(bias, input, weight, node="SumBackward1"), shape)
