"""chainrule.nn.functional: torch.nn.functional's functions.

Activations, convolution, pooling, padding, softmax and the losses live in ``chainrule.ops`` and
are re-exported here; this module adds the layer functions: linear, bilinear, the normalisations
(batch/layer/group/instance/rms norm; batch and layer norm fused with their affine map), dropout
variants, embedding, one_hot, normalize, cosine_similarity, pairwise_distance, interpolate,
pixel_shuffle, lp_pool, scaled_dot_product_attention and multi_head_attention_forward.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from .._backend import array_module
from ..autograd.function import Function, name_node
from ..autograd.grad_mode import state as _grad_state
from ..ops import random as _random
from ..ops.activation import *  # noqa: F401,F403
from ..ops.activation import (  # noqa: F401
    celu,
    elu,
    gelu,
    glu,
    hardshrink,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    rrelu,
    selu,
    silu,
    softplus,
    softshrink,
    softsign,
    tanhshrink,
    threshold,
)
from ..ops.activation import threshold as _threshold
from ..ops.conv import *  # noqa: F401,F403
from ..ops.elementwise import sigmoid, tanh  # noqa: F401
from ..ops.loss import *  # noqa: F401,F403
from ..ops.pool import *  # noqa: F401,F403
from ..ops.reduce import log_softmax as _log_softmax
from ..ops.reduce import softmax as _softmax
from ..ops.shape import pad  # noqa: F401
from ..tensor import Tensor, _check_tensor, _wrap_dim, honours_out


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """F.softmax: exp(x) / sum(exp(x)) along ``dim``."""
    return _softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """F.log_softmax: x - logsumexp(x) along ``dim``."""
    return _log_softmax(input, dim, dtype=dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return _softmax(-input, dim, dtype=dtype)


# ---------------------------------------------------------------- linear
class Linear(Function):
    """y = x Wᵀ + b in one node (fused: one GEMM forward, two backward)."""

    _array_forward = True
    node_name = "AddmmBackward0"

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        out = x @ w.T
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_x = grad_w = grad_b = None
        if not _grad_state.enabled:
            # plain backward (nothing recorded): straight GEMMs on the arrays
            g = grad._data
            g2 = g.reshape(-1, g.shape[-1])
            if needs[0]:
                grad_x = Tensor._make(g @ w._data)
            if needs[1]:
                grad_w = Tensor._make(g2.T @ x._data.reshape(-1, x._data.shape[-1]))
            if len(needs) > 2 and needs[2]:
                grad_b = Tensor._make(g2.sum(0))
            return grad_x, grad_w, grad_b
        # dx = g W ; dW = gᵀ x (summed over batch dims) ; db = Σ g
        if needs[0]:
            grad_x = grad @ w
        if needs[1]:
            grad_w = grad.reshape(-1, grad.shape[-1]).t() @ x.reshape(-1, x.shape[-1])
        if len(needs) > 2 and needs[2]:
            grad_b = grad.reshape(-1, grad.shape[-1]).sum(0)
        return grad_x, grad_w, grad_b


class LinearNoBias(Linear):
    """y = x Wᵀ: torch records a bias-free linear as a plain matrix product."""

    node_name = "MmBackward0"


_SCALAR_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                 "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _scalar_name(t: Tensor) -> str:
    return _SCALAR_NAMES.get(t.dtype.name, t.dtype.name)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear: ``input @ weight.T + bias`` for input (*, in_features), weight (out, in)."""
    _check_tensor(input, "linear", "input", 1)
    _check_tensor(weight, "linear", "weight", 2)
    _check_tensor(bias, "linear", "bias", 3, optional=True)
    if input.ndim == 0 or weight.ndim not in (1, 2) or input.shape[-1] != weight.shape[-1]:
        rows = math.prod(input.shape[:-1]) if input.ndim else 1
        cols = input.shape[-1] if input.ndim else 1
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{cols} and "
            f"{'x'.join(str(s) for s in reversed(tuple(weight.shape)))})"
        )
    if input.dtype is not weight.dtype or (bias is not None and bias.dtype is not weight.dtype):
        other = bias if input.dtype is weight.dtype else input
        raise RuntimeError(
            f"mat1 and mat2 must have the same dtype, but got {_scalar_name(other)} and {_scalar_name(weight)}"
        )
    if weight.ndim == 1:
        out = (input * weight).sum(-1)
        return out + bias if bias is not None else out
    out = LinearNoBias.apply(input, weight) if bias is None else Linear.apply(input, weight, bias)
    if input.ndim == 2:
        return out
    if bias is None:
        # torch folds other ranks into one matrix product and views the result back: name as torch's
        return name_node(out, "SqueezeBackward4" if input.ndim == 1 else "UnsafeViewBackward0")
    # with a bias, torch folds contiguous input and bias likewise (a view last); otherwise it goes
    # through matmul and adds the bias after it
    return name_node(out, "ViewBackward0" if input.is_contiguous() and bias.is_contiguous() else "AddBackward0")


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.bilinear: y_k = x1ᵀ A_k x2 + b_k for weight (out, in1, in2)."""
    out_f, in1, in2 = weight.shape
    if input1.shape[-1] != in1 or input2.shape[-1] != in2 or input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(
            f"bilinear(): input sizes {tuple(input1.shape)} and {tuple(input2.shape)} do not match "
            f"weight of shape {tuple(weight.shape)}"
        )
    batch = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, in1)
    x2 = input2.reshape(-1, in2)
    # (N, in1) @ (in1, out·in2) → (N, out, in2), contracted with x2 over in2
    t = (x1 @ weight.permute(1, 0, 2).reshape(in1, out_f * in2)).reshape(-1, out_f, in2)
    out = (t * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        out = out + bias
    return out.reshape(*batch, out_f)


# ---------------------------------------------------------------- normalisation
class Normalize(Function):
    """x̂ = (x - mean) / sqrt(var + eps) over ``dims`` (biased var), the core of every *_norm.

    Fused for speed: one node instead of the seven of the composition. ``stats`` receives the
    mean and biased variance so batch_norm can update its running estimates without recomputing.
    """

    _array_forward = True
    node_name = "NativeBatchNormBackward0"

    @staticmethod
    def forward(ctx, x, dims, eps, stats=None):
        mean = x.mean(axis=dims, keepdims=True)
        out = np.subtract(x, mean, order="C")  # torch's norms write contiguous outputs, whatever x's layout
        var = np.mean(np.square(out), axis=dims, keepdims=True)
        invstd = 1.0 / np.sqrt(var + eps)
        out *= invstd  # in place: the centred copy becomes x̂
        if stats is not None:
            stats["mean"] = mean
            stats["var"] = var
        ctx.dims = dims
        ctx.eps = eps
        ctx.invstd = invstd
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, xhat = ctx.saved_tensors
        dims = ctx.dims
        if not _grad_state.enabled:
            # plain backward (nothing recorded): NumPy on the saved arrays
            g = grad._data
            xh = xhat._data
            mean_g = g.mean(axis=dims, keepdims=True)
            out = g * xh
            mean_gx = out.mean(axis=dims, keepdims=True)
            # dx = invstd · (g - mean(g) - x̂ · mean(g x̂)), in one buffer
            np.multiply(xh, mean_gx, out=out)
            np.subtract(g, out, out=out)
            out -= mean_g
            out *= ctx.invstd
            return Tensor._make(out)
        # differentiable form (create_graph): recompute x̂ from x
        # dx = invstd · (g - mean(g) - x̂ · mean(g x̂))
        mean = x.mean(dims, keepdim=True)
        xc = x - mean
        invstd = ((xc * xc).mean(dims, keepdim=True) + ctx.eps).rsqrt()
        xh = xc * invstd
        return invstd * (grad - grad.mean(dims, keepdim=True) - xh * (grad * xh).mean(dims, keepdim=True))


class LayerNormalize(Normalize):
    node_name = "NativeLayerNormBackward0"


class GroupNormalize(Function):
    """x̂ of group norm: (N, C, *) normalised per sample over groups of C/groups channels."""

    _array_forward = True
    node_name = "NativeGroupNormBackward0"

    @staticmethod
    def forward(ctx, x, groups, eps):
        x3 = x.reshape(x.shape[0], groups, -1)
        xhat = x3 - x3.mean(axis=2, keepdims=True)
        invstd = 1.0 / np.sqrt(np.mean(np.square(xhat), axis=2, keepdims=True) + eps)
        xhat *= invstd
        ctx.xhat = xhat
        ctx.invstd = invstd
        ctx.groups = groups
        ctx.eps = eps
        ctx.save_for_backward(x)
        return xhat.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        xh = ctx.xhat
        if not _grad_state.enabled:
            g = grad._data.reshape(xh.shape)
            buf = g * xh
            mean_gx = buf.mean(axis=2, keepdims=True)
            # dx = invstd · (g - mean(g) - x̂ · mean(g x̂)) per (sample, group)
            np.multiply(xh, mean_gx, out=buf)
            np.subtract(g, buf, out=buf)
            buf -= g.mean(axis=2, keepdims=True)
            buf *= ctx.invstd
            return Tensor._make(buf.reshape(x._data.shape))
        shape3 = xh.shape
        x3 = x.reshape(shape3)
        xc = x3 - x3.mean(2, keepdim=True)
        invstd = ((xc * xc).mean(2, keepdim=True) + ctx.eps).rsqrt()
        xh3 = xc * invstd
        g = grad.reshape(shape3)
        grad_x = invstd * (g - g.mean(2, keepdim=True) - xh3 * (g * xh3).mean(2, keepdim=True))
        return grad_x.reshape(tuple(x.shape))


class BatchNorm(Function):
    """Training-mode batch norm with its affine map in one node: y = x̂ · w + b, x̂ over ``dims``.

    Fused because it is the hot path of CNN training: one output buffer forward and one backward
    (the separate normalise, multiply and add nodes cost three full-size passes more).
    """

    _array_forward = True
    node_name = "NativeBatchNormBackward0"

    @staticmethod
    def forward(ctx, x, w, b, dims, eps, stats):
        # work on a contiguous (N, C, L) view: reductions along L are fast, pairwise-summed ones
        n, c = x.shape[0], x.shape[1]
        x3 = np.ascontiguousarray(x).reshape(n, c, -1)
        count = n * x3.shape[2]
        mean = x3.sum(axis=2).sum(axis=0) / count
        xhat = x3 - mean[:, None]
        var = np.einsum("ncl,ncl->nc", xhat, xhat).sum(axis=0) / count
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        xhat *= invstd[:, None]
        shape = (1, c) + (1,) * (x.ndim - 2)
        stats["mean"] = mean.reshape(shape)
        stats["var"] = var.reshape(shape)
        out = xhat * w[:, None]
        out += b[:, None]
        ctx.xhat = xhat
        ctx.invstd = invstd
        ctx.count = count
        ctx.dims = dims
        ctx.eps = eps
        ctx.param_shape = shape
        ctx.save_for_backward(x, w)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.param_shape
        needs = ctx.needs_input_grad
        if not _grad_state.enabled:
            # plain backward (nothing recorded): NumPy on the saved (N, C, L) arrays, one full-size buffer
            xh = ctx.xhat
            g = np.ascontiguousarray(grad._data).reshape(xh.shape)
            count = ctx.count
            grad_w = np.einsum("ncl,ncl->nc", g, xh).sum(axis=0)
            grad_b = g.sum(axis=2).sum(axis=0)
            grad_x = None
            if needs[0]:
                # dx = invstd · w · (g - mean(g) - x̂ · mean(g x̂))
                buf = xh * (grad_w / count)[:, None]
                np.subtract(g, buf, out=buf)
                buf -= (grad_b / count)[:, None]
                buf *= (ctx.invstd * w._data)[:, None]
                grad_x = Tensor._make(buf.reshape(x._data.shape))
            return (grad_x, Tensor._make(grad_w) if needs[1] else None,
                    Tensor._make(grad_b) if needs[2] else None)
        # differentiable form (create_graph): recompute x̂ from x
        mean = x.mean(dims, keepdim=True)
        xc = x - mean
        invstd = ((xc * xc).mean(dims, keepdim=True) + ctx.eps).rsqrt()
        xh = xc * invstd
        grad_xh = grad * w.reshape(shape)
        # dx = invstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ x̂)) with ĝ = g·w ; dw = Σ g x̂ ; db = Σ g
        grad_x = invstd * (grad_xh - grad_xh.mean(dims, keepdim=True) - xh * (grad_xh * xh).mean(dims, keepdim=True))
        return grad_x, (grad * xh).sum(dims), grad.sum(dims)


class LayerNorm(Function):
    """Layer norm with its affine map in one node: y = x̂ · w + b, x̂ and w over the trailing dims.

    Fused for the same reason as BatchNorm (transformer and MLP hot path); works on the (rows, D)
    view, with the row reductions as einsum/GEMV calls that need no temporary arrays.
    """

    _array_forward = True
    node_name = "NativeLayerNormBackward0"

    @staticmethod
    def forward(ctx, x, w, b, dims, eps):
        d = w.size
        x2 = np.ascontiguousarray(x.reshape(-1, d))  # contiguous rows: torch's output is contiguous
        row_mean = np.full(d, 1.0 / d, dtype=x.dtype)
        xhat = x2 - (x2 @ row_mean)[:, None]
        var = np.einsum("ij,ij->i", xhat, xhat) / d
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)[:, None]
        xhat *= invstd
        out = xhat * w.reshape(d)
        out += b.reshape(d)
        ctx.xhat = xhat
        ctx.invstd = invstd
        ctx.dims = dims
        ctx.eps = eps
        ctx.save_for_backward(x, w)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        dims = ctx.dims
        needs = ctx.needs_input_grad
        if not _grad_state.enabled:
            # plain backward (nothing recorded): NumPy on the (rows, D) arrays
            xh = ctx.xhat
            d = xh.shape[1]
            g = grad._data.reshape(-1, d)
            grad_w = np.einsum("ij,ij->j", g, xh).reshape(w.shape) if needs[1] else None
            grad_b = g.sum(0).reshape(w.shape) if needs[2] else None
            grad_x = None
            if needs[0]:
                # dx = invstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ x̂)) with ĝ = g·w, per row
                g_hat = g * w._data.reshape(d)
                mean_gx = np.einsum("ij,ij->i", g_hat, xh) / d
                mean_g = g_hat @ np.full(d, 1.0 / d, dtype=g_hat.dtype)
                buf = xh * mean_gx[:, None].astype(xh.dtype, copy=False)
                np.subtract(g_hat, buf, out=buf)
                buf -= mean_g[:, None]
                buf *= ctx.invstd
                grad_x = Tensor._make(buf.reshape(x.shape))
            return (grad_x, Tensor._make(grad_w) if grad_w is not None else None,
                    Tensor._make(grad_b) if grad_b is not None else None)
        # differentiable form (create_graph): recompute x̂ from x
        mean = x.mean(dims, keepdim=True)
        xc = x - mean
        invstd = ((xc * xc).mean(dims, keepdim=True) + ctx.eps).rsqrt()
        xh = xc * invstd
        grad_xh = grad * w
        grad_x = invstd * (grad_xh - grad_xh.mean(dims, keepdim=True) - xh * (grad_xh * xh).mean(dims, keepdim=True))
        # the engine sums the broadcast-shaped dw, db over the leading dims
        return grad_x, grad * xh, grad


def _affine(x: Tensor, weight, bias, shape: tuple) -> Tensor:
    if weight is not None:
        x = x * weight.reshape(shape)
    if bias is not None:
        x = x + bias.reshape(shape)
    return x


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """F.batch_norm over (N, C, *): per-channel statistics; updates the running ones in training."""
    if input.ndim < 2:
        raise ValueError(f"Expected 2D or higher input to batch_norm (got {input.ndim}D input)")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(
                f"batch_norm: expected {name} to have shape [{c}] for input of shape "
                f"{list(input.shape)}, but got {list(t.shape)}"
            )
    shape = (1, c) + (1,) * (input.ndim - 2)
    dims = (0,) + tuple(range(2, input.ndim))
    if training:
        count = input.numel() // c if c else 0
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {list(input.shape)}"
            )
        stats: dict = {}
        x = _float(input)
        if weight is not None and bias is not None and weight.dtype is x.dtype and bias.dtype is x.dtype:
            out = BatchNorm.apply(x, weight, bias, dims=dims, eps=eps, stats=stats)
        else:
            out = _affine(Normalize.apply(x, dims=dims, eps=eps, stats=stats), weight, bias, shape)
        if running_mean is not None:
            running_mean._data *= 1 - momentum
            running_mean._data += momentum * stats["mean"].reshape(c).astype(running_mean._data.dtype)
            running_mean._version_box[0] += 1
        if running_var is not None:
            unbiased = stats["var"].reshape(c) * (count / (count - 1))
            running_var._data *= 1 - momentum
            running_var._data += momentum * unbiased.astype(running_var._data.dtype)
            running_var._version_box[0] += 1
        return out
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm: running_mean and running_var must be defined in evaluation mode")
    # eval: y = (x - μ) · w / sqrt(σ² + eps) + b, with constant statistics folded into one scale
    scale = Tensor._make((1.0 / np.sqrt(running_var._data + eps)).astype(input._data.dtype))
    if weight is not None:
        scale = scale * weight
    shift = -Tensor._make(running_mean._data.astype(input._data.dtype)) * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(shape) + shift.reshape(shape)


def _float(x: Tensor) -> Tensor:
    return x if x._data.dtype.kind == "f" else x.to(_dtype.get_default_dtype())


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """F.layer_norm: normalise over the trailing ``normalized_shape`` dims."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != normalized_shape or input.ndim < k:
        raise RuntimeError(
            f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in normalized_shape)}], but got input of size{list(input.shape)}"
        )
    dims = tuple(range(input.ndim - k, input.ndim))
    x = _float(input)
    if weight is not None and bias is not None and weight.dtype is x.dtype and bias.dtype is x.dtype:
        return LayerNorm.apply(x, weight, bias, dims=dims, eps=eps)
    return _affine(LayerNormalize.apply(x, dims=dims, eps=eps), weight, bias, normalized_shape)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """F.group_norm over (N, C, *): statistics per sample and group of C/num_groups channels."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    c = input.shape[1]
    if c % num_groups:
        raise RuntimeError(
            f"Expected number of channels in input to be divisible by num_groups, but got input of "
            f"shape {list(input.shape)} and num_groups={num_groups}"
        )
    out = GroupNormalize.apply(_float(input), groups=num_groups, eps=eps)
    return _affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """F.instance_norm over (N, C, *): statistics per sample and channel."""
    c = input.shape[1]
    shape = (1, c) + (1,) * (input.ndim - 2)
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    dims = tuple(range(2, input.ndim))
    stats: dict = {}
    out = Normalize.apply(_float(input), dims=dims, eps=eps, stats=stats)
    count = math.prod(input.shape[2:])
    if running_mean is not None:
        running_mean._data *= 1 - momentum
        running_mean._data += momentum * stats["mean"].reshape(-1, c).mean(0).astype(running_mean._data.dtype)
    if running_var is not None:
        unbiased = stats["var"].reshape(-1, c).mean(0) * (count / max(count - 1, 1))
        running_var._data *= 1 - momentum
        running_var._data += momentum * unbiased.astype(running_var._data.dtype)
    return _affine(out, weight, bias, shape)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """F.local_response_norm over channels of (N, C, *)."""
    div = (input * input).unsqueeze(1)
    c = input.shape[1]
    padded = pad(div.reshape(div.shape[0], 1, c, -1), (0, 0, size // 2, (size - 1) // 2))
    windows = sum(padded[:, :, i:i + c] for i in range(size)).reshape(tuple(div.shape)).squeeze(1)
    return input / (windows * (alpha / size) + k) ** beta


# ---------------------------------------------------------------- dropout
class Dropout(Function):
    """y = x · m / (1 - p) for a Bernoulli(1 - p) keep-mask m (inverted dropout)."""

    _array_forward = True
    node_name = "NativeDropoutBackward0"

    @staticmethod
    def forward(ctx, x, mask):
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        # dy/dx = m / (1 - p): the same constant scaled mask
        if grad._requires_grad:
            return grad * Tensor._make(ctx.mask)
        return Tensor._make(grad._data * ctx.mask)


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(x: Tensor, p: float, shape: tuple) -> np.ndarray:
    xp = array_module(x)
    dtype = x._data.dtype if x._data.dtype.kind == "f" else np.dtype(_dtype.get_default_dtype().np)
    if p == 1.0:
        return xp.zeros(shape, dtype=dtype)
    keep = _random._rng(None, xp).random(shape, dtype=np.float64 if dtype == np.float64 else np.float32) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def _apply_dropout(input: Tensor, mask: np.ndarray, inplace: bool) -> Tensor:
    if inplace:
        from .._methods import _inplace

        return _inplace(input, lambda t: Dropout.apply(t, mask=mask))
    return Dropout.apply(input, mask=mask)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """F.dropout: zero each element with probability p in training and scale the rest by 1/(1-p)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    return _apply_dropout(input, _dropout_mask(input, p, tuple(input.shape)), inplace)


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool, batched_ndim: int) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    shape = tuple(input.shape)
    # one draw per (sample, channel), shared by the whole feature map; unbatched input has no N
    lead = 2 if input.ndim == batched_ndim else 1
    mask_shape = shape[:lead] + (1,) * (len(shape) - lead)
    return _apply_dropout(input, _dropout_mask(input, p, mask_shape), inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _feature_dropout(input, p, training, inplace, 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _feature_dropout(input, p, training, inplace, 4)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _feature_dropout(input, p, training, inplace, 5)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """F.alpha_dropout: dropout that keeps SELU's self-normalising mean and variance."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    alpha = 1.7580993408473766  # SELU's scale · alpha; dropped units land on -alpha before the affine map
    dtype = input._data.dtype
    keep = (_random._rng(None).random(tuple(input.shape)) >= p).astype(dtype)
    a = ((1 - p) * (1 + p * alpha ** 2)) ** -0.5
    # y = a·(x·m + (-alpha)(1 - m)) + alpha·a·p keeps mean 0 and variance 1 (torch's formula)
    shift = ((keep - 1) * alpha * a + alpha * a * p).astype(dtype)
    return input * Tensor._make((keep * a).astype(dtype)) + Tensor._make(shift)


# ---------------------------------------------------------------- embedding
class Embedding(Function):
    """out = W[idx] (a row gather); the weight gradient scatter-adds rows of the output gradient."""

    _array_forward = True

    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        ctx.indices = indices
        ctx.num_rows = weight.shape[0]
        ctx.padding_idx = padding_idx
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        # dW[r] = Σ_{i: idx_i = r} g_i (rows at padding_idx get none)
        return EmbeddingDenseBackward.apply(grad, indices=ctx.indices, num_rows=ctx.num_rows,
                                            padding_idx=ctx.padding_idx)


class EmbeddingDenseBackward(Function):
    """Scatter-add of gradient rows by index (sorted + reduceat: no np.add.at on the hot path)."""

    _array_forward = True

    @staticmethod
    def forward(ctx, grad, indices, num_rows, padding_idx):
        ctx.indices = indices
        ctx.padding_idx = padding_idx
        d = grad.shape[-1]
        flat_idx = indices.reshape(-1)
        flat_grad = grad.reshape(-1, d)
        out = np.zeros((num_rows, d), dtype=grad.dtype)
        if flat_idx.size:
            order = np.argsort(flat_idx, kind="stable")
            sorted_idx = flat_idx[order]
            starts = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
            out[sorted_idx[starts]] = np.add.reduceat(flat_grad[order], starts, axis=0)
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


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """F.embedding: rows of ``weight`` (num_embeddings, dim) picked by the integer ``input``."""
    if input._data.dtype.kind not in "iu":
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: "
            f"Long, Int; but got {input.dtype} instead (while checking arguments for embedding)"
        )
    num_rows = weight.shape[0]
    indices = input._data
    if indices.size and (indices.min() < 0 or indices.max() >= num_rows):
        raise IndexError("index out of range in self")
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += num_rows
        if not 0 <= padding_idx < num_rows:
            raise AssertionError("Padding_idx must be within num_embeddings")
    if max_norm is not None:
        rows = np.unique(indices)
        norms = np.linalg.norm(weight._data[rows], ord=norm_type, axis=1, keepdims=True)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight._data[rows] *= scale.astype(weight._data.dtype)
    return Embedding.apply(weight, indices=indices, padding_idx=padding_idx)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """F.one_hot: int64 (*, num_classes) with a 1 at each index."""
    if tensor._data.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    indices = tensor._data
    if indices.size and indices.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if indices.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(indices.max()) + 1
    elif indices.size and indices.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = (indices[..., None] == np.arange(num_classes)).astype(np.int64)
    return Tensor._make(out)


# ---------------------------------------------------------------- distances
@honours_out
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """F.normalize: x / max(‖x‖_p, eps) along ``dim``."""
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)
    return input / denom


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """F.cosine_similarity: Σ x1·x2 / (max(‖x1‖, eps) · max(‖x2‖, eps)) along ``dim``."""
    from ..ops.shape import broadcast_tensors

    x1, x2 = broadcast_tensors(x1, x2)
    dim = _wrap_dim(dim, x1.ndim, "cosine_similarity")
    n1 = x1.norm(2, dim, keepdim=True).clamp_min(eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp_min(eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """F.pairwise_distance: ‖x1 - x2 + eps‖_p along the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    n = input.shape[0]
    rows, cols = np.triu_indices(n, 1)
    return (input[rows] - input[cols]).norm(p, -1)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """F.pixel_shuffle: (*, C·r², H, W) → (*, C, H·r, W·r)."""
    r = upscale_factor
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(
            f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
            f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    oc = c // (r * r)
    n = len(batch)
    x = input.reshape(*batch, oc, r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*batch, oc, h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """F.pixel_unshuffle: (*, C, H·r, W·r) → (*, C·r², H, W)."""
    r = downscale_factor
    *batch, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(
            f"pixel_unshuffle expects height and width to be divisible by downscale_factor, but got "
            f"{h} and {w} for downscale_factor={r}"
        )
    n = len(batch)
    x = input.reshape(*batch, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*batch, c * r * r, h // r, w // r)


# ---------------------------------------------------------------- in-place activation variants
def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:  # noqa: F811 - torch's parameter name
    return _threshold(input, threshold, value, inplace=True)


# ---------------------------------------------------------------- power-average pooling, rms_norm
def _lp_pool(input: Tensor, norm_type: float, kernel_size, stride, ceil_mode: bool, d: int) -> Tensor:
    from ..ops import pool

    kernel = (kernel_size,) * d if isinstance(kernel_size, int) else tuple(kernel_size)
    max_pool = getattr(pool, f"max_pool{d}d")
    avg_pool = getattr(pool, f"avg_pool{d}d")
    if norm_type == math.inf:
        return max_pool(input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -math.inf:
        return -max_pool(-input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    out = avg_pool(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    # (Σ x^p)^(1/p) = (mean · |window|)^(1/p); sign·relu(|·|) keeps torch's zero-gradient at 0
    return (out.sign() * relu(out.abs())).mul(math.prod(kernel)).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """F.lp_pool1d: the p-norm of each window."""
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """F.lp_pool2d: the p-norm of each window."""
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 2)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """F.rms_norm: x / sqrt(mean(x²) + eps) over the trailing ``normalized_shape`` dims, times weight."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    dims = tuple(range(-len(normalized_shape), 0))
    if eps is None:
        eps = float(np.finfo(input._data.dtype).eps)
    out = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return out * weight if weight is not None else out


# ---------------------------------------------------------------- resampling
_INTERP_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _source_index(out_size: int, in_size: int, scale, align_corners: bool, mode: str):
    """Source coordinates of each output position, as torch's upsample kernels compute them."""
    i = np.arange(out_size, dtype=np.float64)
    if mode in ("nearest", "nearest-exact"):
        ratio = in_size / out_size if scale is None else 1.0 / scale
        offset = 0.5 if mode == "nearest-exact" else 0.0
        return np.minimum(np.floor((i + offset) * ratio).astype(np.int64), in_size - 1)
    if align_corners:
        ratio = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        return i * ratio
    ratio = in_size / out_size if scale is None else 1.0 / scale
    return np.maximum((i + 0.5) * ratio - 0.5, 0.0)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """F.interpolate for modes nearest, nearest-exact, linear, bilinear, trilinear (separable, one dim at a time)."""
    d = input.ndim - 2
    if d < 1:
        raise ValueError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for the "
                         f"modes: nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact "
                         f"(got {mode})")
    if mode not in ("nearest", "nearest-exact", "linear", "bilinear", "trilinear"):
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported by chainrule")
    if mode in _INTERP_DIMS and _INTERP_DIMS[mode] != d:
        raise NotImplementedError(
            f"Got {input.ndim}D input, but {mode} mode needs {_INTERP_DIMS[mode] + 2}D input"
        )
    if mode in ("nearest", "nearest-exact") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    in_sizes = tuple(input.shape[2:])
    if size is not None:
        out_sizes = (size,) * d if isinstance(size, int) else tuple(size)
        scales = (None,) * d
    else:
        factors = (scale_factor,) * d if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
        out_sizes = tuple(int(math.floor(s * f)) for s, f in zip(in_sizes, factors))
        scales = (None,) * d if recompute_scale_factor else tuple(float(f) for f in factors)
    if len(out_sizes) != d:
        raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input with "
                         f"spatial dimensions of {list(in_sizes)} and output size of {list(out_sizes)}.")
    out = input
    for k in range(d):
        axis = 2 + k
        lead = (slice(None),) * axis
        src = _source_index(out_sizes[k], in_sizes[k], scales[k], bool(align_corners), mode)
        if mode in ("nearest", "nearest-exact"):
            out = out[lead + (Tensor._make(src),)]
            continue
        lo = np.minimum(np.floor(src).astype(np.int64), in_sizes[k] - 1)
        hi = np.minimum(lo + 1, in_sizes[k] - 1)
        frac = (src - lo).astype(input._data.dtype).reshape((-1,) + (1,) * (d - 1 - k))
        w_hi = Tensor._make(frac)
        w_lo = Tensor._make((1 - frac).astype(input._data.dtype))
        # out = x[lo]·(1 - λ) + x[hi]·λ along this axis
        out = out[lead + (Tensor._make(lo),)] * w_lo + out[lead + (Tensor._make(hi),)] * w_hi
    return out


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """F.channel_shuffle: (N, g·k, *) → channels reordered as (k, g) instead of (g, k)."""
    n, c = input.shape[0], input.shape[1]
    rest = tuple(input.shape[2:])
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


# ---------------------------------------------------------------- attention
def _mask_to_additive(mask: Tensor, dtype, true_means_masked: bool) -> Tensor:
    """A boolean mask as 0 / -inf (which positions are masked depends on the API), a float one as is."""
    if mask._data.dtype == np.bool_:
        blocked = mask._data if true_means_masked else ~mask._data
        return Tensor._make(np.where(blocked, -np.inf, 0.0).astype(dtype))
    return mask


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """F.scaled_dot_product_attention: softmax(q kᵀ · scale + mask) v over (..., L, E) / (..., S, E).

    A boolean ``attn_mask`` marks the positions that may be attended (True = keep), as in torch.
    """
    length, source = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    dtype = scores._data.dtype
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
        causal = np.triu(np.ones((length, source), dtype=bool), 1)
        scores = scores + Tensor._make(np.where(causal, -np.inf, 0.0).astype(dtype))
    if attn_mask is not None:
        scores = scores + _mask_to_additive(attn_mask, dtype, true_means_masked=False)
    weights = _softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return weights @ value


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight: Tensor, out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
                                 q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True, is_causal: bool = False):
    """F.multi_head_attention_forward on sequence-first (L, N, E) inputs (or unbatched (L, E))."""
    if bias_k is not None or bias_v is not None or add_zero_attn or static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: add_bias_kv, add_zero_attn and static_k/v "
                                  "are not supported by chainrule")
    unbatched = query.dim() == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if not use_separate_proj_weight:
        w_q, w_k, w_v = in_proj_weight.chunk(3)
    else:
        w_q, w_k, w_v = q_proj_weight, k_proj_weight, v_proj_weight
    b_q = b_k = b_v = None
    if in_proj_bias is not None:
        b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = linear(query, w_q, b_q)
    k = linear(key, w_k, b_k)
    v = linear(value, w_v, b_v)
    # (L, N, E) → (N·H, L, head_dim)
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(src_len, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(src_len, bsz * num_heads, head_dim).transpose(0, 1)
    dtype = q._data.dtype
    mask = None
    if is_causal and attn_mask is None:
        attn_mask = Tensor._make(np.triu(np.ones((tgt_len, src_len), dtype=bool), 1))
    if attn_mask is not None:
        mask = _mask_to_additive(attn_mask, dtype, true_means_masked=True)
        if mask.dim() == 2:
            mask = mask.unsqueeze(0)
    if key_padding_mask is not None:
        kpm = _mask_to_additive(key_padding_mask, dtype, true_means_masked=True)
        kpm = kpm.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len).reshape(bsz * num_heads, 1, src_len)
        mask = kpm if mask is None else mask + kpm
    scores = (q * (1.0 / math.sqrt(head_dim))) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores + mask
    weights = _softmax(scores, -1)
    if dropout_p > 0.0 and training:
        weights = dropout(weights, dropout_p, True)
    out = (weights @ v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if unbatched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
    if average_attn_weights:
        weights = weights.mean(1)
    if unbatched:
        weights = weights.squeeze(0)
    return out, weights
