"""chainrule.nn.functional: torch.nn.functional's functions.

Every op with its own Function lives in ``chainrule.ops`` and is re-exported here: activations,
convolution, pooling, padding, softmax, the losses, linear, the fused normalisations (batch, layer,
group and instance norm), dropout and embedding. This module composes the rest from them:
bilinear, local_response_norm, rms_norm, one_hot, normalize, cosine_similarity, pairwise_distance,
interpolate, pixel_shuffle, lp_pool, scaled_dot_product_attention and multi_head_attention_forward.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _config, _dtype
from .._backend import array_module as _array_module
from .._backend import broadcast_refusal as _broadcast_refusal
from .._opmath import cpu_autocast_policy as _cpu_autocast_policy
from .._torch_function import (  # noqa: F401  (torch's F re-exports them; not in __all__)
    handle_torch_function,
    has_torch_function,
    has_torch_function_unary,
    has_torch_function_variadic,
)
from ..autograd import function as _function
from ..autograd.function import SavedValue as _SavedValue
from ..autograd.function import is_recording as _is_recording
from ..autograd.function import kept_value as _kept_value
from ..autograd.function import name_node as _name_node
from ..autograd.grad_mode import is_grad_enabled as _is_grad_enabled
from ..autograd.grad_mode import no_grad as _no_grad
from ..ops._arg_parser import check_bool as _check_bool
from ..ops._arg_parser import check_float as _check_float
from ..ops._arg_parser import check_int as _check_int
from ..ops._arg_parser import int_list as _int_list
from ..ops._arg_parser import out_rule as _out_rule
from ..ops.activation import (
    _aten_hardtanh,
    celu,
    elu,
    gelu,
    glu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    selu,
    silu,
    softplus,
    softshrink,
    softsign,
    tanhshrink,
    threshold,
)
from ..ops.activation import hardshrink as _hardshrink
from ..ops.activation import randomized_leaky_relu as _randomized_leaky_relu
from ..ops.activation import threshold as _threshold
from ..ops.adaptive_pool3d import adaptive_avg_pool3d, adaptive_max_pool3d
from ..ops.conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    fold,
    unfold,
)
from ..ops.ctc import ctc_loss
from ..ops.dropout import alpha_dropout, dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout
from ..ops.elementwise import div as _div
from ..ops.elementwise import rounded_through as _rounded_through
from ..ops.embedding import embedding
from ..ops.embedding_bag import embedding_bag
from ..ops.fractional_pool import fractional_max_pool2d, fractional_max_pool3d
from ..ops.linalg import pdist as _pdist
from ..ops.linear import cpp_type_name as _cpp_type_name
from ..ops.linear import linear
from ..ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cross_entropy,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    linear_cross_entropy,
    margin_ranking_loss,
    mse_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
)
from ..ops.margin_loss import (
    gaussian_nll_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
)
from ..ops.memory_format import preserved_layout as _preserved_layout
from ..ops.memory_format import relaid_as_suggested as _relaid_as_suggested
from ..ops.memory_format import suggests_channels_last as _suggests_channels_last
from ..ops.nn_toplevel import native_channel_shuffle
from ..ops.nn_toplevel import shuffled_channels as _shuffled_channels
from ..ops.normalization import RMSNorm as _RMSNorm
from ..ops.normalization import batch_norm, group_norm, instance_norm, layer_norm
from ..ops.pixel_shuffle import PixelShuffle as _PixelShuffle
from ..ops.pixel_shuffle import PixelUnshuffle as _PixelUnshuffle
from ..ops.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
)
from ..ops.pool import refuse_avg_pool_dtype as _refuse_avg_pool_dtype
from ..ops.reduce import implicit_softmax_dim as _implicit_softmax_dim
from ..ops.reduce import log_softmax as _log_softmax
from ..ops.reduce import softmax as _softmax
from ..ops.sampling import Resample as _Resample
from ..ops.sampling import ResamplePlan as _ResamplePlan
from ..ops.sampling import affine_grid, grid_sample
from ..ops.shape import cat as _cat
from ..ops.shape import pad
from ..tensor import Tensor, _wrap_dim

# torch.nn.functional's names, and only those: the modules this one is built from are not part of it

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "alpha_dropout", "avg_pool1d", "avg_pool2d", "avg_pool3d", "batch_norm", "bilinear",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "celu", "celu_", "channel_shuffle", "conv1d",
    "native_channel_shuffle",
    "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "cosine_embedding_loss",
    "cosine_similarity", "cross_entropy", "dropout", "dropout1d", "dropout2d", "dropout3d", "elu", "elu_",
    "embedding", "fold", "gelu", "glu", "group_norm", "hardshrink", "hardsigmoid", "hardswish", "hardtanh",
    "hardtanh_", "hinge_embedding_loss", "huber_loss", "instance_norm", "interpolate", "kl_div", "l1_loss",
    "layer_norm", "leaky_relu", "leaky_relu_", "linear", "linear_cross_entropy", "local_response_norm", "log_softmax", "logsigmoid",
    "lp_pool1d", "lp_pool2d", "margin_ranking_loss", "max_pool1d", "max_pool2d", "max_pool3d", "max_unpool1d",
    "max_unpool2d", "mish", "mse_loss", "multi_head_attention_forward", "nll_loss", "normalize", "one_hot",
    "pad", "pairwise_distance", "pdist", "pixel_shuffle", "pixel_unshuffle", "poisson_nll_loss", "prelu",
    "relu", "relu6", "relu_", "rms_norm", "rrelu", "scaled_dot_product_attention", "selu", "selu_", "sigmoid",
    "silu", "smooth_l1_loss", "soft_margin_loss", "softmax", "softmin", "softplus", "softshrink", "softsign",
    "tanh", "tanhshrink", "threshold", "threshold_", "unfold", "upsample", "upsample_bilinear",
    "upsample_nearest", "affine_grid", "grid_sample", "gumbel_softmax", "triplet_margin_loss",
    "triplet_margin_with_distance_loss", "embedding_bag", "gaussian_nll_loss", "multi_margin_loss",
    "multilabel_margin_loss", "multilabel_soft_margin_loss", "ctc_loss", "adaptive_avg_pool3d",
    "adaptive_max_pool3d", "feature_alpha_dropout", "rrelu_", "max_pool1d_with_indices", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices", "fractional_max_pool2d", "fractional_max_pool3d", "lp_pool3d", "max_unpool3d",
    "fractional_max_pool2d_with_indices", "fractional_max_pool3d_with_indices",
]


# dim=None is resolved here, not in the op, so the deprecation warning names the line that called F.*
def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """F.softmax: exp(x) / sum(exp(x)) along ``dim``."""
    if dim is None:
        dim = _implicit_softmax_dim("softmax", input.dim(), _stacklevel)
    return _softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """F.log_softmax: x - logsumexp(x) along ``dim``."""
    if dim is None:
        dim = _implicit_softmax_dim("log_softmax", input.dim(), _stacklevel)
    return _log_softmax(input, dim, dtype=dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _implicit_softmax_dim("softmin", input.dim(), _stacklevel)
    return _softmax(-input, dim, dtype=dtype)


def _size_at(t: Tensor, dim: int) -> int:
    """t.size(dim) as torch's C++ sym_size reads it: a 0-d tensor has no dimension to read."""
    if t.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    return t.shape[_wrap_dim(dim, t.ndim)]


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.bilinear: y_k = x1ᵀ A_k x2 + b_k for weight (out, in1, in2)."""
    tensors = {"input1": input1, "input2": input2, "weight": weight}
    if bias is not None:
        tensors["bias"] = bias
    if len({t.dtype for t in tensors.values()}) > 1:  # torch checks this first, and promotes nothing
        got = ", ".join(f"{name}: {_cpp_type_name(t.dtype)}" for name, t in tensors.items())
        raise RuntimeError(f"All tensors must have the same dtype, got {got}")
    # torch's checks in its order (aten bilinear), each naming the first size that disagrees
    if input1.ndim != input2.ndim:
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {input1.ndim} and {input2.ndim}")
    for i in range(input1.ndim - 1):
        if input1.shape[i] != input2.shape[i]:
            raise RuntimeError(
                f"bilinear(): input batch dimensions do not match at dim {i}: "
                f"got {input1.shape[i]} and {input2.shape[i]}"
            )
    for name, t, k in (("input1", input1, 1), ("input2", input2, 2)):
        if _size_at(t, -1) != _size_at(weight, k):
            raise RuntimeError(
                f"bilinear(): {name} size does not match weight size: got {t.shape[-1]} but expected {weight.shape[k]}"
            )
    if bias is not None and _size_at(bias, 0) != weight.shape[0]:
        raise RuntimeError(
            f"bilinear(): bias size does not match weight size: got {bias.shape[0]} but expected {weight.shape[0]}"
        )
    if weight.ndim != 3:  # the 3-d weight is then contracted by _trilinear, which refuses any other rank
        raise RuntimeError("number of dimensions must match")
    if input1.dtype is _dtype.bool:  # _trilinear's bmm has no bool kernel
        raise NotImplementedError("\"bmm\" not implemented for 'Bool'")
    out_f, in1, in2 = weight.shape
    batch = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, in1)
    x2 = input2.reshape(-1, in2)
    # (N, in1) @ (in1, out·in2) → (N, out, in2), contracted with x2 over in2
    t = (x1 @ weight.permute(1, 0, 2).reshape(in1, out_f * in2)).reshape(x1.shape[0], out_f, in2)
    if input1.dtype is _dtype.float16 or input1.dtype is _dtype.bfloat16:
        # torch contracts over in2 with a batched matmul: products summed in float32, rounded once
        out = (t @ x2.unsqueeze(-1)).squeeze(-1)
    else:
        out = (t * x2.unsqueeze(1)).sum(-1)
    if out.dtype != input1.dtype:  # sum counts integers in int64; torch's bilinear stays in the inputs' dtype
        out = out.to(input1.dtype)
    if bias is not None:
        out = out + bias
    return out.reshape(*batch, out_f)


# ---------------------------------------------------------------- normalisation
def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """F.local_response_norm over channels of (N, C, *)."""
    dim = input.dim()
    if dim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {dim} dimensions)")
    if input.numel() == 0:
        return input
    square = input * input
    c = input.shape[1]
    # torch pools the squares over channels: (N, 1, C, L) by avg_pool2d, a wider input as (N, 1, C, H, rest)
    # by avg_pool3d, padded on C before the pool checks its kernel
    div = square.unsqueeze(1) if dim == 3 else square.view(square.shape[0], 1, c, input.shape[2], -1)
    padded = pad(div, (0, 0) * (div.dim() - 3) + (size // 2, (size - 1) // 2))
    # torch averages the padded squares with an avg_pool2d/3d of kernel (size, 1[, 1]): its checks
    pool = "avg_pool2d" if dim == 3 else "avg_pool3d"
    _int_list((size,) + ((1,) if dim == 3 else (1, 1)), pool, "kernel_size")
    if size <= 0:
        got = f"kH: {size} kW: 1" if dim == 3 else f"kT: {size} kH: 1 kW: 1"
        raise RuntimeError(f"kernel size should be greater than zero, but got {got}")
    _refuse_avg_pool_dtype(input, 2 if dim == 3 else 3)  # the pool's dtypes are the squares' (the input's)
    if input.dtype.is_floating_point:  # torch's pool itself (its graph: AvgPool2D/3DBackward0, Squeeze)
        pooled = (avg_pool2d(padded, (size, 1), stride=1) if dim == 3
                  else avg_pool3d(padded, (size, 1, 1), stride=1))
        averaged = pooled.squeeze(1) if dim == 3 else pooled.squeeze(1).view(tuple(input.shape))
    else:
        # an integer pool truncates its average: the squares are >= 0, so // is it
        rows = padded.reshape(padded.shape[0], 1, padded.shape[2], -1)
        averaged = sum(rows[:, :, i:i + c] for i in range(size)).reshape(tuple(input.shape)) // size
    # torch's composition keeps a channels-last input's layout (its pool and division follow it),
    # and another input's stride order (its last step, the division, is elementwise)
    return _relaid_as_suggested(input / (averaged * alpha + k) ** beta, input, otherwise_stride_order=True)


def one_hot(input: Tensor, num_classes: int = -1) -> Tensor:
    """F.one_hot: int64 (*, num_classes) with a 1 at each index. (torch documents the first
    argument as ``tensor``, but its binding names it ``input``: ``one_hot(input=t)`` is what works.)"""
    if not isinstance(input, Tensor):
        raise TypeError(f"one_hot(): argument 'input' (position 1) must be Tensor, not {_dtype.c_type_name(input)}")
    num_classes = _check_int(num_classes, "one_hot", "num_classes", position=2)
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("one_hot", one_hot, (input, num_classes), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    if input._data.dtype != np.int64:  # torch takes int64 alone
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    indices = input._data
    if indices.size and indices.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if indices.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(indices.max()) + 1
    elif indices.size and indices.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    # torch fills a fresh contiguous zeros tensor by scatter_, whatever the input's layout; comparing
    # the flattened indices keeps ours contiguous too (a transposed input would otherwise lead it)
    flat = indices.reshape(-1, 1) == _array_module(indices).arange(num_classes)
    return Tensor._make(flat.astype(np.int64).reshape(indices.shape + (num_classes,)))


# ---------------------------------------------------------------- distances
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """F.normalize: x / max(‖x‖_p, eps) along ``dim``."""
    if out is not None:  # (torch clamps the norms in place and divides into out by torch.div: its messages)
        return _div(input, input.norm(p, dim, keepdim=True).clamp_min_(eps).expand_as(input), out=out)
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps)
    if _is_recording(input) or _function.active_profiler is not None or _function.active_dispatch is not None \
            or _function.active_extension is not None:
        # torch expands the denominator first: a view in its graph (ExpandBackward0), an op a profiler
        # or a dispatch mode sees; unwatched, the division broadcasts it to the same values
        denom = denom.expand_as(input)
    return input / denom


normalize.honours_out = True  # (out= goes through torch.div's, as torch's Python writes it)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """F.cosine_similarity: Σ x1·x2 / (max(‖x1‖, eps) · max(‖x2‖, eps)) along ``dim``."""
    from ..ops.shape import broadcast_tensors

    dim = _check_int(dim, "cosine_similarity", "dim")
    eps = _check_float(eps, "cosine_similarity", "eps")
    common = _dtype.result_type(x1, x2)
    if not common.is_floating_point:
        raise RuntimeError(f"expected common dtype to be floating point, yet common dtype is {_dtype.scalar_name(common)}")
    # an integer or bool input is cast to the common dtype (the norms take floating tensors only)
    x1, x2 = (x if x.dtype.is_floating_point else x.to(common) for x in (x1, x2))
    if not eps >= 0:  # NaN too
        raise RuntimeError(f"eps must be non-negative, got: {eps:g}")
    x1, x2 = broadcast_tensors(x1, x2)
    _wrap_dim(dim, x1.ndim, "cosine_similarity")  # (the ops below take the dim as given, which their nodes keep)
    n1 = x1.norm(2, dim, keepdim=True).clone()
    n2 = x2.norm(2, dim, keepdim=True).clone()
    with _no_grad():
        # torch clamps the norms in place under a NoGradGuard: the values are clamped, the gradient
        # stays the unclamped norm's (x / ‖x‖), also where 0 < ‖x‖ < eps
        n1.clamp_min_(eps)
        n2.clamp_min_(eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """F.pairwise_distance: ‖x1 - x2 + eps‖_p along the last dim."""
    p = _check_float(p, "pairwise_distance", "p")
    eps = _check_float(eps, "pairwise_distance", "eps")
    keepdim = _check_bool(keepdim, "pairwise_distance", "keepdim")
    # torch calls at::norm here (NormBackward1), not linalg.vector_norm as Tensor.norm does; its one
    # edge goes to the addition, as ours does
    return _name_node((x1 - x2 + eps).norm(p, -1, keepdim=keepdim), "NormBackward1")


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """F.pdist: the p-norm distance of every pair of rows i < j of an (N, M) input (torch.pdist)."""
    return _pdist(input, p)


def _check_pixel_shuffle(input: Tensor, factor: int, op: str, name: str) -> None:
    # torch's order: the input's rank, then the factor's sign (the sizes' divisibility is each op's own)
    if input.dim() < 3:
        raise RuntimeError(f"{op} expects input to have at least 3 dimensions, but got input with "
                           f"{input.dim()} dimension(s)")
    if factor <= 0:
        raise RuntimeError(f"{op} expects a positive {name}, but got {factor}")


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """F.pixel_shuffle: (*, C·r², H, W) → (*, C, H·r, W·r)."""
    r = _check_int(upscale_factor, "pixel_shuffle", "upscale_factor")
    _check_pixel_shuffle(input, r, "pixel_shuffle", "upscale_factor")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(
            f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
            f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    oc = c // (r * r)
    n = len(batch)
    return _PixelShuffle.apply(input, split=(*batch, oc, r, r, h, w), order=(*range(n), n, n + 3, n + 1, n + 4, n + 2),
                               merged=(*batch, oc, h * r, w * r), factor=r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """F.pixel_unshuffle: (*, C, H·r, W·r) → (*, C·r², H, W)."""
    r = _check_int(downscale_factor, "pixel_unshuffle", "downscale_factor")
    _check_pixel_shuffle(input, r, "pixel_unshuffle", "downscale_factor")
    *batch, c, h, w = input.shape
    # torch checks the height, then the width, each with its own message
    for side, dim, size in (("height", -2, h), ("width", -1, w)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {side} to be divisible by downscale_factor, but "
                               f"input.size({dim})={size} is not divisible by {r}")
    n = len(batch)
    return _PixelUnshuffle.apply(input, split=(*batch, c, h // r, r, w // r, r),
                                 order=(*range(n), n, n + 2, n + 4, n + 1, n + 3),
                                 merged=(*batch, c * r * r, h // r, w // r), factor=r)


# ---------------------------------------------------------------- in-place activation variants
def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def sigmoid(input: Tensor) -> Tensor:
    """torch.nn.functional.sigmoid: ``input.sigmoid()``, as torch's is; it does not dispatch itself,
    so a mode or an fx trace sees the method (``Tensor.sigmoid``), as in torch."""
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """torch.nn.functional.tanh: ``input.tanh()``, as torch's is (see sigmoid)."""
    return input.tanh()


def elu_(input: Tensor, alpha: float = 1) -> Tensor:
    # (torch's F.elu_ is its op, whose schema's alpha=1 a dispatch mode is not shown; F.elu passes 1.0, shown)
    return elu(input, alpha, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


# torch.nn.functional.hardshrink is torch.hardshrink, out= and all
hardshrink = _out_rule("same_elementwise")(_hardshrink)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """torch.nn.functional.rrelu: torch.rrelu with ``inplace`` where torch.rrelu takes its generator."""
    return _randomized_leaky_relu(input, lower, upper, training, inplace)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
           generator=None) -> Tensor:
    # torch records the in-place rrelu as one node, in both modes
    return _name_node(_randomized_leaky_relu(input, lower, upper, training, True, generator), "RreluWithNoiseBackward1",
                      label="rrelu")


# torch's *_with_indices: the pools with their indices, always (return_indices is accepted and ignored)
def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple[Tensor, Tensor]:
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple[Tensor, Tensor]:
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool3d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple[Tensor, Tensor]:
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = False) -> tuple[Tensor, Tensor]:
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = False) -> tuple[Tensor, Tensor]:
    return adaptive_max_pool2d(input, output_size, return_indices=True)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices: bool = False) -> tuple[Tensor, Tensor]:
    return adaptive_max_pool3d(input, output_size, return_indices=True)


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1, max_val: float = 1) -> Tensor:
    # torch's F.hardtanh_ is its op: it takes reversed bounds (F.hardtanh refuses them), and its schema's
    # integer defaults are not shown to a dispatch mode (F.hardtanh's -1.0 and 1.0 are)
    return _aten_hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:  # noqa: F811 - torch's parameter name
    return _threshold(input, threshold, value, inplace=True)


# ---------------------------------------------------------------- power-average pooling, rms_norm
def _lp_pool(input: Tensor, norm_type: float, kernel_size, stride, ceil_mode: bool, d: int) -> Tensor:
    from ..ops import pool

    kernel = None
    if d > 1:
        # torch unpacks a 2-d/3-d kernel_size in Python first (``kw, kh = _pair(kernel_size)``)
        kernel = (kernel_size,) * d if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(kernel) > d:  # the unpacking's own words
            raise ValueError(f"too many values to unpack (expected {d})")
        if len(kernel) < d:
            raise ValueError(f"not enough values to unpack (expected {d}, got {len(kernel)})")
    max_pool = getattr(pool, f"max_pool{d}d")
    avg_pool = getattr(pool, f"avg_pool{d}d")
    if norm_type == math.inf:
        return max_pool(input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -math.inf:
        return -max_pool(-input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    out = avg_pool(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    if kernel is None:
        # torch's lp_pool1d scales by kernel_size itself: a one-element tuple pools, then fails there
        kernel = (_check_int(kernel_size, "lp_pool1d", "kernel_size"),)
    # (Σ x^p)^(1/p) = (mean · |window|)^(1/p); sign·relu(|·|) keeps torch's zero-gradient at 0
    return (out.sign() * relu(out.abs())).mul(math.prod(kernel)).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """F.lp_pool1d: the p-norm of each window."""
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """F.lp_pool2d: the p-norm of each window."""
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 2)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """F.lp_pool3d: the p-norm of each window."""
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 3)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """F.max_unpool3d: put each value back at its max_pool3d index, zeros elsewhere."""
    from ..ops.pool import _max_unpoolnd

    return _name_node(_max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 3, "max_unpool3d"),
                     "MaxUnpool3DBackward0")


def fractional_max_pool2d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples=None):
    """F.fractional_max_pool2d_with_indices: (output, indices) always."""
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True, _random_samples)


def fractional_max_pool3d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples=None):
    """F.fractional_max_pool3d_with_indices: (output, indices) always."""
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True, _random_samples)


def _rms_norm_fuses(input: Tensor, weight: Tensor | None) -> bool:
    """Whether rms_norm runs as the one fused node: an input that records nothing (its graph is then
    at most torch's last MulBackward0, over the weight), C-contiguous, non-empty float32/float64 NumPy
    in a plain tensor, a weight of its dtype, and nothing that sees the composite's ops
    (``nothing_watches``: a dispatch mode, the profiler, forward AD or saved-tensor hooks, an autocast
    region, a running vmap)."""
    if _is_recording(input):  # (first: a training step's x records, and pays only this)
        return False
    data = input._data
    if (type(data) is not np.ndarray or data.dtype not in _FUSED_RMS_DTYPES or not data.size
            or not data.flags.c_contiguous
            or getattr(type(input), "__torch_dispatch__", None) is not None or getattr(input, "is_nested", False)):
        return False
    if weight is not None and (type(weight._data) is not np.ndarray or weight._data.dtype != data.dtype
                               or getattr(type(weight), "__torch_dispatch__", None) is not None):
        return False
    return _function.nothing_watches()


_FUSED_RMS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """F.rms_norm: x / sqrt(mean(x²) + eps) over the trailing ``normalized_shape`` dims, times weight."""
    # torch's F.rms_norm hands its arguments to torch.rms_norm positionally: its parser takes no
    # single int for the unsized int[] and names the positions
    normalized_shape = _int_list(normalized_shape, "rms_norm", "normalized_shape", sized=False, position=2)
    if eps is not None:
        eps = _check_float(eps, "rms_norm", "eps", position=4)
    k = len(normalized_shape)
    # torch's checks, in its order (the weight's shape before the input's)
    if k == 0:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one "
                           "element, but got normalized_shape = []")
    if weight is not None and tuple(weight.shape) != normalized_shape:
        raise RuntimeError(f"Expected weight to be of same shape as normalized_shape, but got weight of shape "
                           f"{list(weight.shape)} and normalized_shape = {list(normalized_shape)}")
    if input.ndim < k:
        raise ValueError(f"Input tensor must have at least {k} dimensions, but got {input.ndim}")
    if tuple(input.shape[-k:]) != normalized_shape:
        # (torch's rms_norm prints no ", " after the "*", where layer_norm's does)
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*{', '.join(str(n) for n in normalized_shape)}], but got input of size{list(input.shape)}")
    if weight is not None and weight.dtype is not input.dtype:
        # torch's TORCH_WARN_ONCE as it leaves its fused kernel for the composite (e.g. a bfloat16
        # input under a float32 nn.RMSNorm), before its dtype check
        _config.warn_once(f"Mismatch dtype between input and weight: input dtype = {_dtype.cpp_type_name(input.dtype)}, "
                          f"weight dtype = {_dtype.cpp_type_name(weight.dtype)}, Cannot dispatch to fused "
                          "implementation. (Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/"
                          "layer_norm.cpp:346.)", site="rms_norm dtype mismatch")
    if input._data.dtype.kind in "biu":
        raise NotImplementedError(f"\"rms_norm\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    if _rms_norm_fuses(input, weight):
        dims = tuple(range(input.ndim - k, input.ndim))
        if eps is None:
            eps = float(_dtype.finfo_of(input._data.dtype).eps)
        return _RMSNorm.apply(input, dims=dims, eps=eps) if weight is None else \
            _RMSNorm.apply(input, weight, dims=dims, eps=eps)
    dims = tuple(range(-k, 0))
    # as torch's: a float16/bfloat16 input is normalised in float32 (eps defaults to float32's), the
    # result and its product with the weight are returned in the input's dtype, whatever the weight's
    half = input.dtype in (_dtype.float16, _dtype.bfloat16)
    if eps is None:
        eps = float(_dtype.finfo_of(np.float32 if half else input._data.dtype).eps)
    x = input.to(_dtype.float32) if half else input
    # torch's composite: x.pow(2), and eps added as a Scalar (its AddBackward1)
    out = x * _name_node(x.pow(2).mean(dims, keepdim=True) + eps, "AddBackward1").rsqrt()
    if half:
        out = out.to(input.dtype)
    if weight is not None:
        out = out * weight
        if out.dtype is not input.dtype:
            out = out.to(input.dtype)
    # torch's elementwise steps keep a channels-last input's layout (its TensorIterator follows x)
    return _relaid_as_suggested(out, input)


# ---------------------------------------------------------------- resampling
# the modes whose wrong rank torch names ("Got 3D input, but bilinear mode needs 4D input"); a
# 3-d or 5-d bicubic or lanczos falls through to its general "Input Error"
_INTERP_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3}
_INTERP_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "lanczos", "area", "nearest-exact")


def _source_index(out_size: int, in_size: int, scale, align_corners: bool, mode: str, xp=np):
    """Source coordinates of each output position, as torch's upsample kernels compute them
    (made on the input's device, ``xp``: a training step copies nothing from the host)."""
    i = xp.arange(out_size, dtype=np.float64)
    if mode in ("nearest", "nearest-exact"):
        ratio = in_size / out_size if scale is None else 1.0 / scale
        offset = 0.5 if mode == "nearest-exact" else 0.0
        return xp.minimum(xp.floor((i + offset) * ratio).astype(np.int64), in_size - 1)
    if align_corners:
        ratio = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        return i * ratio
    ratio = in_size / out_size if scale is None else 1.0 / scale
    if mode == "bicubic":  # torch clamps the cubic taps' indices instead of the coordinate
        return (i + 0.5) * ratio - 0.5
    return xp.maximum((i + 0.5) * ratio - 0.5, 0.0)


def _nearest_backward_index(out_size: int, in_size: int, scale, mode: str, xp=np):
    """The input each output's gradient goes back to in torch's nearest backward kernels, which
    map with a float32 scale where the forward maps with a double one (nearest's copies where the
    sizes match, nearest-exact's does not): floor((i [+ 0.5]) · float32(ratio)) in float32. At scale 2.7 the double map sent 2 of
    353 gradients elsewhere; over 60 probed 1-d cases this matched torch's gradient in 60, the
    forward's map in 51."""
    i = xp.arange(out_size)
    if in_size == out_size and mode == "nearest":
        return i
    ratio = np.float32(in_size) / np.float32(out_size) if scale is None else np.float32(1.0 / scale)
    position = i.astype(np.float32) + np.float32(0.5) if mode == "nearest-exact" else i.astype(np.float32)
    return xp.minimum(xp.floor(position * ratio).astype(np.int64), in_size - 1)


# Keys' cubic convolution kernel with A = -0.75, as torch's upsample_bicubic2d and grid_sample
_CUBIC_A = -0.75


def _cubic_weights(t, xp):
    """The four tap weights for taps at floor(x) - 1 .. floor(x) + 2, where t = x - floor(x)."""
    a = _CUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """F.interpolate for modes nearest, nearest-exact, linear, bilinear, bicubic, trilinear (separable, one dim
    at a time), area (adaptive average pooling) and, antialiased, lanczos (a = 3)."""
    # torch's order: its Python checks of the arguments, then the input's rank against the mode,
    # then the upsample kernel's own checks
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    d = input.ndim - 2
    in_sizes = tuple(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if isinstance(size, (list, tuple)):
        if len(size) != d:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input "
                             f"with spatial dimensions of {list(in_sizes)} and output size of {size}. Please "
                             "provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                             "(o1, o2, ...,oK) format.")
        if not all(_is_integer(n) for n in size):
            raise TypeError("expected size to be one of int or Tuple[int] or Tuple[int, int] or Tuple[int, int, int], "
                            f"but got size with types {[type(n) for n in size]}")
    elif size is None and isinstance(scale_factor, (list, tuple)) and len(scale_factor) != d:
        raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                         f"with spatial dimensions of {list(in_sizes)} and scale_factor of shape {scale_factor}. "
                         "Please provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in "
                         "(s1, s2, ...,sK) format.")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a "
                         "4-D tensor as input")
    if mode == "lanczos" and d == 2:
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")
    if d < 1 or mode not in _INTERP_MODES or (mode in ("bicubic", "lanczos") and d != 2):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
                                  f"the modes: {' | '.join(_INTERP_MODES)} (got {mode})")
    if mode in _INTERP_DIMS and _INTERP_DIMS[mode] != d:
        raise NotImplementedError(
            f"Got {input.ndim}D input, but {mode} mode needs {_INTERP_DIMS[mode] + 2}D input"
        )
    # then torch's upsample op parses its int[] sizes, float[] scales and bool align_corners
    kernel = f"upsample_{mode.replace('-', '_')}{d}d"
    if align_corners is not None:  # given only to the interpolating modes (checked above)
        _check_bool(align_corners, kernel, "align_corners")
    if size is not None:
        out_sizes = _int_list(list(size) if isinstance(size, (list, tuple)) else [size] * d, kernel, "output_size")
        scales = (None,) * d
    else:
        factors = tuple(scale_factor) if isinstance(scale_factor, (list, tuple)) else (scale_factor,) * d
        factors = tuple(_check_float(f, kernel, "scale_factors") for f in factors)
        out_sizes = tuple(_scaled_size(s, f) for s, f in zip(in_sizes, factors))
        scales = (None,) * d if recompute_scale_factor else factors
    if len(out_sizes) != d:
        raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input with "
                         f"spatial dimensions of {list(in_sizes)} and output size of {list(out_sizes)}.")
    if mode != "area":  # area is adaptive pooling, whose own checks follow
        if any(n == 0 for n in input.shape[1:]):
            raise RuntimeError(f"Non-empty {input.ndim}D data tensor expected but got a tensor with sizes "
                               f"{list(input.shape)}")
        if any(n <= 0 for n in in_sizes + out_sizes):
            names = "DHW"[3 - d:]
            raise RuntimeError("Input and output sizes should be greater than 0, but got input ("
                               + ", ".join(f"{k}: {n}" for k, n in zip(names, in_sizes)) + ") output ("
                               + ", ".join(f"{k}: {n}" for k, n in zip(names, out_sizes)) + ")")
    if antialias and input._data.dtype not in (np.float32, np.float64, np.uint8):
        # torch's antialiased kernels compute their weights for float, double and uint8 only
        raise NotImplementedError(f"\"compute_index_ranges_weights\" not implemented for "
                                  f"'{_dtype.scalar_name(input.dtype)}'")
    _refuse_interpolation_dtype(input, mode, d)
    if _function.active_dispatch is not None and mode != "area":  # (a mode sees torch's one upsample op)
        made = _upsample_dispatch(input, mode, d, out_sizes, scales, align_corners, antialias)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return _interpolate_computed(input, mode, d, in_sizes, out_sizes, scales, align_corners, antialias)


def _upsample_name(mode: str, d: int, antialias: bool) -> str:
    """torch's upsample op for an interpolate mode: upsample_bilinear2d, _upsample_nearest_exact1d,
    _upsample_bicubic2d_aa, ..."""
    if mode == "nearest-exact":
        return f"_upsample_nearest_exact{d}d"
    return f"_upsample_{mode}{d}d_aa" if antialias else f"upsample_{mode}{d}d"


_upsample_funcs: dict = {}


def _upsample_func(mode: str, d: int, antialias: bool):
    """The func a dispatch mode's handler gets for torch's upsample op (one per op, so the overload is
    built once): it runs interpolate's computation with the arguments the handler passes, an outer mode
    seeing the same one op first."""
    key = (mode, d, antialias)
    func = _upsample_funcs.get(key)
    if func is not None:
        return func
    interpolating = mode not in ("nearest", "nearest-exact")

    def func(input, output_size, *rest):
        align_corners, scales = (rest[0] if rest else False, rest[1:]) if interpolating else (None, rest)
        scales = tuple(scales) + (None,) * (d - len(scales))
        made = _upsample_dispatch(input, mode, d, output_size, scales, align_corners, antialias)
        if made is not _function.RUN_UNDISPATCHED:
            return made
        return _interpolate_computed(input, mode, d, tuple(input.shape[2:]), tuple(output_size), scales,
                                     align_corners, antialias)

    _upsample_funcs[key] = func
    return func


def _upsample_dispatch(input, mode, d, out_sizes, scales, align_corners, antialias):
    """torch's upsample op to the innermost dispatch mode: (input, output_size[, align_corners], *scales),
    the trailing unset scales left out, as torch's F.interpolate passes them."""
    args = [input, [int(n) for n in out_sizes]]
    if mode not in ("nearest", "nearest-exact"):
        args.append(bool(align_corners))
    shown = [None if s is None else float(s) for s in scales]
    while shown and shown[-1] is None:
        shown.pop()
    return _function.composite_dispatch(_upsample_name(mode, d, antialias), _upsample_func(mode, d, antialias),
                                        (*args, *shown), {})


def _interpolate_computed(input: Tensor, mode: str, d: int, in_sizes: tuple, out_sizes: tuple, scales: tuple,
                          align_corners, antialias: bool) -> Tensor:
    """interpolate past its checks: the output for these sizes and scales (None where the size was given)."""
    if input.dtype is _dtype.uint8 and mode in ("bilinear", "bicubic") and type(input._data) is np.ndarray:
        # torch's CPU kernel resizes uint8 images with fixed-point weights, one axis at a time
        from ._resample_uint8 import resample_uint8

        return Tensor._make(resample_uint8(input._data, out_sizes, scales, mode, bool(align_corners), antialias))
    if antialias:  # bilinear, bicubic or lanczos of a 4-d input (checked above)
        out = _interpolate_antialiased(input, in_sizes, out_sizes, scales, mode, bool(align_corners))
        return _upsample_node(_relaid_as_suggested(out, input), input, mode, out_sizes, scales, align_corners, "Aa")
    if mode == "area":  # torch's 'area' is adaptive average pooling to the output size
        from ..ops import adaptive_pool3d, pool

        adaptive = {1: pool.adaptive_avg_pool1d, 2: pool.adaptive_avg_pool2d, 3: adaptive_pool3d.adaptive_avg_pool3d}
        return adaptive[d](input, out_sizes)
    if not (input.requires_grad and _is_grad_enabled()):
        exact = _float32_interpolated(input, mode, in_sizes, out_sizes, scales, bool(align_corners))
        if exact is not None:
            out = _relaid_as_suggested(Tensor._make(exact), input)
            # (a vmap's record: its replay runs it on the batch; trilinear where the kernel is the generic one)
            if _function.tracing_ops and (mode != "trilinear" or _generic_upsample_kernel(input, mode, out_sizes)):
                _function.traced_elementwise(_float32_resampled, (input, mode, tuple(in_sizes), tuple(out_sizes),
                                                                  tuple(scales), bool(align_corners)), out)
            return out
    out = input
    xp = _array_module(input)
    low = _half_interpolated(input, mode)
    weight_dtype, weight_rounding = input._data.dtype, None
    if low is not None:  # torch's CPU kernels interpolate float16/bfloat16 in float32, rounding once
        out, weight_dtype = input.to(_dtype.float32), np.float32
        weight_rounding = low.np if _generic_upsample_kernel(input, mode, out_sizes) else None
    # one (axis, taps, weights, input size, backward's taps) per spatial dim, applied in turn by one Resample node
    # (torch's float16/bfloat16 kernels sum along the last dim first, then outwards)
    plan = []
    for k in (range(d) if low is None else reversed(range(d))):
        src = _source_index(out_sizes[k], in_sizes[k], scales[k], bool(align_corners), mode, xp)
        if mode in ("nearest", "nearest-exact"):
            backward_index = _nearest_backward_index(out_sizes[k], in_sizes[k], scales[k], mode, xp)
            plan.append((2 + k, (src,), None, in_sizes[k], (backward_index,)))
            continue
        along = (-1,) + (1,) * (d - 1 - k)  # a weight per position of this dim, broadcast over the later ones
        if mode == "bicubic":
            base = xp.floor(src)
            t = (src - base).reshape(along)
            base = base.astype(np.int64)
            # out = Σ_j x[clamp(floor(s) - 1 + j)] · w_j(s - floor(s)) along this axis
            taps = tuple(xp.clip(base + j, 0, in_sizes[k] - 1) for j in (-1, 0, 1, 2))
            weights = tuple(_interpolation_weight(w, weight_dtype, weight_rounding) for w in _cubic_weights(t, xp))
            plan.append((2 + k, taps, weights, in_sizes[k], taps))
            continue
        lo = xp.minimum(xp.floor(src).astype(np.int64), in_sizes[k] - 1)
        hi = xp.minimum(lo + 1, in_sizes[k] - 1)
        frac = _interpolation_weight(src - lo, weight_dtype, weight_rounding).reshape(along)
        # out = x[lo]·(1 - λ) + x[hi]·λ along this axis
        plan.append((2 + k, (lo, hi), (_interpolation_weight(1 - frac, weight_dtype, weight_rounding), frac),
                     in_sizes[k], (lo, hi)))
    out = _Resample.apply(out, plan=_ResamplePlan(plan))
    if low is not None:
        out = out.to(low)
    # torch's upsample kernels write the layout the input suggests: channels-last in, channels-last out
    return _upsample_node(_relaid_as_suggested(out, input), input, mode, out_sizes, scales, align_corners)


def _upsample_node(out: Tensor, input: Tensor, mode: str, out_sizes, scales, align_corners, variant: str = "") -> Tensor:
    """``out`` as one node named as torch's upsample kernel (UpsampleNearest2DBackward0, with
    ``variant`` "Aa" the antialiased UpsampleBilinear2DAaBackward0...), over our composed parts."""
    d = input.ndim - 2
    kernel_name = "".join(part.capitalize() for part in mode.split("-"))
    interpolating = mode not in ("nearest", "nearest-exact")
    return _name_node(out, f"Upsample{kernel_name}{d}D{variant}Backward0", label=f"interpolate ({mode})",
                      saved=_upsample_saved(d, interpolating),
                      kept={"align_corners": bool(align_corners), "output_size": tuple(out_sizes),
                            "scales": tuple(None if f is None else float(f) for f in scales),
                            "self_sym_sizes": tuple(input.shape)})


def _float32_interpolated(input: Tensor, mode: str, in_sizes, out_sizes, scales, align_corners: bool):
    """A float32 CPU input's linear, trilinear or bicubic interpolation rounded as torch's kernels
    round it (see _resample_float32), as a NumPy array; None for other inputs and modes.

    Taken where no graph is recorded, and not for bilinear: the replay matched every element
    tried, but its float64 multiply-adds made bilinear's forward 36-103 % slower than the
    composed float32 parts (the other modes' 5-45 % faster, or within noise), and beside a graph
    (whose parts compute the values anyway) it added 15-26 % to forward + backward. Lane mendCK
    took it for bilinear and with a graph too, and replayed torch's backward kernels term by term;
    lane mendCM measured those paths at 1.9 to 80 times the composed parts' cost and routed them back
    (numbers in its commit)."""
    x = input._data
    if type(x) is not np.ndarray or x.dtype != np.float32 or mode not in ("linear", "trilinear", "bicubic"):
        return None
    from . import _resample_float32

    make_taps = _resample_float32.cubic_taps if mode == "bicubic" else _resample_float32.linear_taps
    per_dim = [make_taps(i, o, align_corners, s) for i, o, s in zip(in_sizes, out_sizes, scales)]
    taps, weights = [t for t, _ in per_dim], [w for _, w in per_dim]
    if mode == "trilinear" and not _generic_upsample_kernel(input, mode, out_sizes):
        return _resample_float32.channels_last(x, taps, weights)
    return _resample_float32.generic(x, taps, weights)


def _float32_resampled(input: Tensor, mode: str, in_sizes, out_sizes, scales, align_corners: bool) -> Tensor:
    """interpolate's float32 no-grad path (``_float32_interpolated``) of a vmap's batch, one more dim in
    front (``_vmap_batched`` replays it): the batch folded into N, as torch's batching rule runs its
    kernel, so each element is rounded as its slice's own run rounds it."""
    x = input._data
    spatial = len(in_sizes)
    folded = Tensor._make(x.reshape((-1, *x.shape[-spatial - 1:]))) if x.ndim == spatial + 3 else input
    exact = _float32_interpolated(folded, mode, in_sizes, out_sizes, scales, align_corners)
    return _relaid_as_suggested(Tensor._make(exact.reshape((*x.shape[:-spatial], *out_sizes))), input)


def _refuse_interpolation_dtype(input: Tensor, mode: str, d: int) -> None:
    """torch's CPU upsampling kernels are floating only, uint8 images aside (nearest, bilinear,
    bicubic); the others raise its error naming the kernel. ('area' is adaptive pooling, whose
    own check says so.)"""
    kind = input._data.dtype.kind
    if kind in "fV" or mode == "area" or (kind == "u" and input._data.dtype.itemsize == 1
                                          and mode not in ("linear", "trilinear")):
        return
    kernel = {"linear": "compute_indices_weights_linear", "trilinear": "compute_indices_weights_linear",
              "bicubic": "compute_indices_weights_cubic", "bilinear": "upsample_bilinear2d_channels_last"}.get(
        mode, "upsample_nearest2d_channels_last" if d == 2 else "compute_indices_weights_nearest")
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(input.dtype)}'")


def _half_interpolated(input: Tensor, mode: str):
    """The dtype of a float16/bfloat16 CPU input to an interpolating mode, else None."""
    if mode in ("nearest", "nearest-exact") or type(input._data) is not np.ndarray:
        return None
    return input.dtype if input.dtype is _dtype.float16 or input.dtype is _dtype.bfloat16 else None


def _generic_upsample_kernel(input: Tensor, mode: str, out_sizes) -> bool:
    """Whether torch 2.13's CPU upsampling of this input takes its generic kernel rather than its
    channels-last one (which for float16/bfloat16 keeps the weights float32, where the generic
    kernel rounds them to the input's dtype, the second linear weight 1 minus the rounded first).
    Its choice (UpSampleKernel.cpp): channels-last for bilinear when the input is channels-last
    with more than 3 channels, the output's height + width is at most 128, or one thread resizes
    a 3-channel image (torch's intra-op thread count, not NumPy's BLAS pool, which chainrule fits
    to the idle cores); for trilinear only when channels-last with more than 3 channels."""
    if mode in ("linear", "bicubic"):
        return True
    channels_last = _suggests_channels_last(input._data) and input.shape[1] > 3
    if mode == "bilinear":
        return not (channels_last or sum(out_sizes) <= 128 or (input.shape[1] == 3 and _config.torch_intra_op_threads() == 1))
    return mode == "trilinear" and not channels_last


def _interpolation_weight(weight, weight_dtype, rounding):
    weight = weight.astype(weight_dtype)
    return weight if rounding is None else weight.astype(rounding).astype(weight_dtype)


def _aa_bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _aa_bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5  # torch's antialiased bicubic uses PIL's a = -0.5 (the plain one a = -0.75)
    x = np.abs(x)
    return np.where(x < 1.0, ((a + 2.0) * x - (a + 3.0)) * x * x + 1,
                    np.where(x < 2.0, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _aa_lanczos(x: np.ndarray) -> np.ndarray:
    a = 3.0  # torch's lanczos2d_aa: Lanczos-3, sinc(x) sinc(x / 3) inside |x| < 3
    return np.where(np.abs(x) < a, np.sinc(x) * np.sinc(x / a), 0.0)


_AA_FILTERS = {"bilinear": (_aa_bilinear, 1.0), "bicubic": (_aa_bicubic, 2.0), "lanczos": (_aa_lanczos, 3.0)}


def _aa_weights(in_size: int, out_size: int, scale_factor, mode: str, align_corners: bool) -> np.ndarray:
    """(out, in): torch's antialiased interpolation weights along one axis (UpSampleKernel.cpp's
    _compute_weights_aa): a filter stretched by the scale when downsampling, each row normalised.
    align_corners changes only the scale (area_pixel_compute_scale: (in - 1) / (out - 1), the
    scale factor ignored); the filter stays centred on scale * (i + 1/2)."""
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        scale = in_size / out_size if scale_factor is None or scale_factor <= 0 else 1.0 / scale_factor
    kernel, half_width = _AA_FILTERS[mode]
    support = half_width * max(scale, 1.0)
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        row = kernel((np.arange(lo, hi) - center + 0.5) * invscale)
        total = row.sum()
        weights[i, lo:hi] = row / total if total != 0.0 else row
    return weights


def _interpolate_antialiased(input: Tensor, in_sizes, out_sizes, scales, mode: str, align_corners: bool) -> Tensor:
    """torch's _upsample_bilinear2d_aa / _upsample_bicubic2d_aa / _upsample_lanczos2d_aa: separable, each axis a weight
    matrix (so the gradient is the transposed matrices), up- and downsampling alike."""
    if not input.dtype.is_floating_point:
        # torch rounds uint8 images through its own fixed-point weights, not reproduced here
        raise NotImplementedError(f"interpolate: antialias=True on {input.dtype} input is not supported by chainrule")
    xp = _array_module(input)
    dtype = input._data.dtype
    rows, cols = (xp.asarray(_aa_weights(i, o, s, mode, align_corners).astype(dtype))
                  for i, o, s in zip(in_sizes, out_sizes, scales))
    return Tensor._make(rows) @ input @ Tensor._make(cols.T.copy())


_UPSAMPLE_SAVED: dict = {}


def _upsample_saved(d: int, interpolating: bool) -> dict:
    """torch's _saved_* of an upsample node: the output size, one scale per spatial dim (named by
    the dim: _saved_scales in 1-d, _saved_scales_d/_h/_w else), the input's sizes and, for the
    interpolating modes, align_corners. One dict per kind, as name_node keys its classes by it."""
    saved = _UPSAMPLE_SAVED.get((d, interpolating))
    if saved is None:
        names = ["_saved_scales"] if d == 1 else [f"_saved_scales_{axis}" for axis in "dhw"[3 - d:]]
        saved = {"_saved_output_size": _kept_value("output_size"), "_saved_self_sym_sizes": _kept_value("self_sym_sizes"),
                 **{name: _scale_value(i) for i, name in enumerate(names)}}
        if interpolating:
            saved["_saved_align_corners"] = _kept_value("align_corners")
        saved = _UPSAMPLE_SAVED.setdefault((d, interpolating), saved)
    return saved


def _scale_value(i: int) -> _SavedValue:
    return _SavedValue(lambda node: node.torch_kept["scales"][i])


def _is_integer(value) -> bool:
    # torch's interpolate: an int (a bool too), or an integer tensor
    if isinstance(value, Tensor):
        return not value.is_floating_point()
    return isinstance(value, (int, np.integer))


def _scaled_size(size: int, factor: float) -> int:
    """floor(size · factor) as torch's upsample computes it: a value beyond int64 is its RuntimeError."""
    scaled = math.floor(size * factor) if math.isfinite(size * factor) else None
    if scaled is None or not -2 ** 63 <= scaled < 2 ** 63:
        raise RuntimeError("value cannot be converted to type int64_t without overflow")
    return scaled


def _warn_upsample_deprecated(name: str) -> None:
    """torch's UserWarning (not a DeprecationWarning, which Python hides) for the upsample* functions."""
    import warnings

    from .._torch_function import user_stacklevel

    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` instead.", UserWarning,
                  stacklevel=user_stacklevel())


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    _warn_upsample_deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    _warn_upsample_deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    _warn_upsample_deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """F.channel_shuffle: (N, g·k, *) → channels reordered as (k, g) instead of (g, k)."""
    return _shuffled_channels(input, groups, "channel_shuffle")


# ---------------------------------------------------------------- attention
def _none_or_dtype(input: Tensor | None):
    """torch's F._none_or_dtype: the dtype of a mask, or None."""
    if input is None:
        return None
    if isinstance(input, Tensor):
        return input.dtype
    raise RuntimeError("input to _none_or_dtype() must be None or torch.Tensor")


def _canonical_mask(mask: Tensor | None, mask_name: str, other_type, other_name: str, target_type,
                    check_other: bool = True) -> Tensor | None:
    """torch's F._canonical_mask: a bool attention/padding mask as an additive 0 / -inf one of
    ``target_type``, a float one as is; warns, as torch does, when the mask it is paired with
    (``other_type``) has the other kind, since torch deprecates mixing bool and float masks."""
    if mask is None:
        return None
    if mask.dtype != _dtype.bool and not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and mask.dtype != other_type:
        import warnings

        from .._torch_function import user_stacklevel
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. "
                      "Use same type for both instead.", stacklevel=user_stacklevel())
    if not mask.is_floating_point():
        mask = _mask_to_additive(mask, target_type.np, true_means_masked=True)
    return mask


def _mask_to_additive(mask: Tensor, dtype, true_means_masked: bool) -> Tensor:
    """A boolean mask as 0 / -inf (which positions are masked depends on the API), a float one as is."""
    if mask._data.dtype == np.bool_:
        blocked = mask._data if true_means_masked else ~mask._data
        return Tensor._make(_array_module(blocked).where(blocked, -np.inf, 0.0).astype(dtype))
    return mask


# torch runs attention as one fused kernel, so an observer of its ops (the flop counter) sees one
# op where chainrule runs its math: while set, _fused_kernel_observer(name, query, key, value) is a
# context manager around that math, giving a function to call with the result
_fused_kernel_observer = None


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, *, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """F.scaled_dot_product_attention: softmax(q kᵀ · scale + mask) v over (..., L, E) query, (..., S, E)
    key and (..., S, Ev) value, giving (..., L, Ev).

    A boolean ``attn_mask`` marks the positions that may be attended (True = keep), as in torch.
    (Its arguments' types are checked first, as torch's parser does: ops._arg_parser.FUNCTIONAL_SIGNATURES.)
    """
    dropout_p = float(dropout_p)  # (a 0-d tensor too, read as torch's parser reads a double)
    scale = None if scale is None else float(scale)
    observer = _fused_kernel_observer
    if observer is None:
        return _attention(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    with observer("scaled_dot_product_attention", query, key, value) as finished:
        return finished(_attention(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa))


_CAUSAL_WITH_MASK = "_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True"


def _attention(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa) -> Tensor:
    # torch's validate_sdpa_input, in its order: dtypes, then ranks (its message has the double space)
    if not query.dtype == key.dtype == value.dtype:
        raise RuntimeError("Expected query, key, and value to have the same dtype, but got query.dtype: "
                           f"{_dtype.cpp_type_name(query.dtype)} key.dtype: {_dtype.cpp_type_name(key.dtype)} "
                           f"and value.dtype: {_dtype.cpp_type_name(value.dtype)} instead.")
    if query.dim() < 2 or key.dim() < 2 or value.dim() < 2:
        raise RuntimeError("Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
                           f"{query.dim()} key.dim: {key.dim()} and value.dim: {value.dim()} instead.")
    if attn_mask is not None and attn_mask.dtype not in (_dtype.bool, _dtype.float32, query.dtype):
        # torch's kernels take a bool mask, a float32 one, or one of the query's dtype; an integer
        # mask (a 0/1 LongTensor) is refused rather than added to the scores
        raise RuntimeError("Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                           f"attn_mask.dtype: {_dtype.cpp_type_name(attn_mask.dtype)} and  "
                           f"query.dtype: {_dtype.cpp_type_name(query.dtype)} instead.")
    flash = _cpu_flash_kernel_runs(query, key, value, attn_mask, dropout_p, enable_gqa)
    given_query = query
    if is_causal and attn_mask is not None and not flash:  # (the math kernel's first check)
        raise RuntimeError(_CAUSAL_WITH_MASK)
    if flash:
        key = _flash_kernel_keys(key, value, attn_mask, query)
    length, source = query.shape[-2], key.shape[-2]
    low = _half_on_the_cpu(query, key, value)
    if low is not None:  # torch's CPU kernels compute in float32 and round the output once
        query, key, value = (t.to(_dtype.float32) for t in (query, key, value))
        if attn_mask is not None and attn_mask.dtype is low:
            attn_mask = attn_mask.to(_dtype.float32)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    if enable_gqa:
        # grouped-query attention: each key/value head serves a run of consecutive query heads
        heads, key_heads, value_heads = query.size(-3), key.size(-3), value.size(-3)
        if heads % key_heads or heads % value_heads:
            raise RuntimeError("Number of heads in key and value must divide the number of heads in ")
        key = key.repeat_interleave(heads // key_heads, dim=-3)
        value = value.repeat_interleave(heads // value_heads, dim=-3)
    if dropout_p != 0.0 and not dropout_p > 0.0 and flash:
        # a negative (or NaN) dropout_p passes torch's kernel choice, then its CPU flash kernel refuses it
        raise RuntimeError("scaled_dot_product_attention_flash_attention: Currently do not support dropout > 0")
    scores = (query @ key.transpose(-2, -1)) * scale
    dtype = scores._data.dtype
    if is_causal:
        xp = _array_module(scores)
        causal = xp.triu(xp.ones((length, source), dtype=bool), 1)
        scores = scores + Tensor._make(xp.where(causal, -np.inf, 0.0).astype(dtype))
    if attn_mask is not None:
        additive = _mask_to_additive(attn_mask, dtype, true_means_masked=False)
        if not flash:  # torch's math kernel adds the mask in place (attn.add_(mask)): it may not grow the scores
            grown = _broadcast_shape_or_none(scores.shape, additive.shape)
            if grown is not None and grown != tuple(scores.shape):
                raise _broadcast_refusal(scores.shape, grown)
        scores = scores + additive
    if low is not None and flash:
        return _flash_named(_flash_attention_rounding(scores, value, low), given_query)
    weights = _softmax(scores, -1) if attn_mask is None else _safe_softmax(scores, -1)
    if dropout_p > 0.0:  # (the math kernel's: a negative one drops nothing)
        if dropout_p > 1.0:  # refused by at::dropout, in C++'s spelling of the double
            raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {dropout_p:g}")
        weights = dropout(weights, dropout_p, True)
    out = weights @ value
    out = out if low is None else out.to(low)
    return _flash_named(out, given_query) if flash else out


def _flash_named(out: Tensor, query: Tensor) -> Tensor:
    """The attention's output under the one node torch's CPU flash kernel records for it (users read
    ``grad_fn`` names); the composition's edges and rules stay. That kernel writes into a tensor laid
    out like the query (``empty_like``: a (B, L, H, E) query transposed to (B, H, L, E) gives such an
    output) where the query's last dim is contiguous and the value's head size is the query's;
    otherwise into a contiguous one."""
    q = query._data
    if (out.shape == query.shape and (q.shape[-1] == 1 or q.strides[-1] == q.itemsize) and type(q) is np.ndarray
            and type(out._data) is np.ndarray and getattr(type(out), "__torch_dispatch__", None) is None):
        out._data = _preserved_layout(out._data, q)  # fresh from the matmul: nothing else holds its array
    return _name_node(out, "ScaledDotProductFlashAttentionForCpuBackward0", label="scaled_dot_product_attention",
                      rule="softmax(q kᵀ · scale + mask) v, differentiated through its parts")


def _broadcast_shape_or_none(*shapes) -> tuple | None:
    """The shape ``shapes`` broadcast to, or None where they do not (the op then says why)."""
    try:
        return tuple(np.broadcast_shapes(*(tuple(shape) for shape in shapes)))
    except ValueError:
        return None


def _half_on_the_cpu(query: Tensor, key: Tensor, value: Tensor):
    """The dtype of float16 (or bfloat16) CPU attention inputs, else None."""
    dtype = query.dtype
    if dtype is not _dtype.float16 and dtype is not _dtype.bfloat16:
        return None
    if key.dtype is not dtype or value.dtype is not dtype or type(query._data) is not np.ndarray:
        return None
    return dtype


def _flash_attention_rounding(scores: Tensor, value: Tensor, low) -> Tensor:
    """softmax(scores) @ value as torch's CPU flash kernel computes it for float16/bfloat16 (float32
    ``scores`` and ``value``): each exponential is summed in float32 but stored in ``low`` before it
    weighs the values, and the weighted sum is multiplied by the reciprocal of the sum last. A query
    whose keys are all masked gives zeros."""
    top = scores.detach().amax(-1, keepdim=True)
    top = top.masked_fill(top == -math.inf, 0.0)
    exponentials = (scores - top).exp()
    total = exponentials.sum(-1, keepdim=True)
    total = total.masked_fill(total == 0, 1.0)
    return ((_rounded_through(exponentials, low) @ value) * total.reciprocal()).to(low)


_FLASH_CPU_DTYPES = ("float32", "float64", "bfloat16", "float16")


def _cpu_flash_kernel_runs(query, key, value, attn_mask, dropout_p: float, enable_gqa: bool) -> bool:
    """Whether torch 2.13 on the CPU picks its flash kernel (the checks of its sdp_utils_cpp, in its
    order). That kernel alone takes an explicit ``attn_mask`` together with ``is_causal=True`` and
    applies both; the math kernel, taken otherwise, refuses the pair."""
    from ..backends import cuda as sdp_switches  # the switches sdpa_kernel and sdp_kernel set

    tensors = (query, key, value)
    if not sdp_switches.flash_sdp_enabled() or dropout_p > 0.0:
        return False
    if any(t.device.type != "cpu" or t.dim() != 4 or t.dtype.name not in _FLASH_CPU_DTYPES for t in tensors):
        return False
    if not query.shape[0] == key.shape[0] == value.shape[0]:
        return False
    heads, key_heads, value_heads = query.shape[1], key.shape[1], value.shape[1]
    if enable_gqa:  # grouped heads: one key/value head count, dividing the query's
        if key_heads != value_heads or key_heads == 0 or heads % key_heads:
            return False
    elif not heads == key_heads == value_heads:
        return False
    if attn_mask is not None and not _flash_kernel_takes_mask(attn_mask, query, key):
        return False
    if not query.shape[-1] == key.shape[-1] == value.shape[-1]:
        return False
    if query.shape[-2] == 0 or key.shape[-2] == 0:
        return False
    return all(t.stride(-1) == 1 for t in tensors)


def _flash_kernel_takes_mask(attn_mask: Tensor, query: Tensor, key: Tensor) -> bool:
    """torch's check_attn_mask_shape: a mask that does not require grad, 2-d (L, S) or 4-d
    (N, H, L, S), each dim equal to the query's or key's or 1."""
    if attn_mask.requires_grad or attn_mask.dim() not in (2, 4):
        return False
    wanted = (query.shape[0], query.shape[1], query.shape[2], key.shape[2])[4 - attn_mask.dim():]
    return all(size in (1, expected) for size, expected in zip(attn_mask.shape, wanted))


def _flash_kernel_keys(key: Tensor, value: Tensor, attn_mask: Tensor | None, query: Tensor) -> Tensor:
    """The keys torch's CPU flash kernel reads: it takes the number of keys from ``value``, so
    where ``key`` has more rows it attends over the first ``value.size(2)`` of them (and expands a
    mask to that many columns, refusing one with as many columns as ``key`` has rows)."""
    source, kept = key.shape[2], value.shape[2]
    if attn_mask is not None and attn_mask.shape[-1] not in (1, kept):
        # its reshape_attn_mask_to_4d: the mask viewed 4-d, then expanded to (.., L, value's length)
        batch = query.shape[0] if attn_mask.dim() == 4 and attn_mask.shape[0] == query.shape[0] else 1
        heads = query.shape[1] if attn_mask.dim() == 4 and attn_mask.shape[1] == query.shape[1] else 1
        viewed = [batch, heads, *attn_mask.shape[-2:]]
        target = [batch, heads, query.shape[2], kept]
        raise RuntimeError(f"The expanded size of the tensor ({kept}) must match the existing size "
                           f"({attn_mask.shape[-1]}) at non-singleton dimension 3.  Target sizes: {target}.  "
                           f"Tensor sizes: {viewed}")
    return key[:, :, :kept] if kept < source else key


def _safe_softmax(scores: Tensor, dim: int) -> Tensor:
    """torch's _safe_softmax, which every scaled_dot_product_attention kernel uses since torch 2.5: a
    query whose keys are all masked (scores all -inf) attends to nothing, giving zeros and a zero
    gradient where softmax gives NaN (left-padded batches, padding queries)."""
    fully_masked = (scores == -math.inf).all(dim, keepdim=True)
    if type(fully_masked._data) is np.ndarray and not fully_masked._data.any():
        # no query is fully masked (block-causal and padding masks with a visible key per row): the
        # two fills would copy the scores and the weights, and their backwards the gradient, unchanged
        return _softmax(scores, dim)
    # the masked rows' scores become finite first, so that softmax's backward sees no NaN weights
    weights = _softmax(scores.masked_fill(fully_masked, 0.0), dim)
    return weights.masked_fill(fully_masked, 0.0)


def _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads: int) -> bool:
    """torch's F._mha_shape_check: the ranks of query/key/value and the masks, before any work."""
    kind = {3: "batched (3-D)", 2: "unbatched (2-D)"}.get(query.dim())
    if kind is None:
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.dim()}-D "
                             "query tensor")
    rank = query.dim()
    if key.dim() != rank or value.dim() != rank:
        raise AssertionError(f"For {kind} `query`, expected `key` and `value` to be {rank}-D but found "
                             f"{key.dim()}-D and {value.dim()}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.dim() != rank - 1:
        raise AssertionError(f"For {kind} `query`, expected `key_padding_mask` to be `None` or {rank - 1}-D but "
                             f"found {key_padding_mask.dim()}-D tensor instead")
    if attn_mask is not None and attn_mask.dim() not in (2, 3):
        raise AssertionError(f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                             f"{attn_mask.dim()}-D tensor instead")
    if rank == 2 and attn_mask is not None and attn_mask.dim() == 3:
        expected = (num_heads, query.shape[0], key.shape[0])
        if tuple(attn_mask.shape) != expected:
            raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {attn_mask.shape!r}")
    return rank == 3


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight: Tensor, out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
                                 q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True, is_causal: bool = False):
    """F.multi_head_attention_forward on sequence-first (L, N, E) inputs (or unbatched (L, E))."""
    if static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: static_k/v are not supported by chainrule")
    if (bias_k is None) != (bias_v is None):
        raise AssertionError("multi_head_attention_forward: bias_k and bias_v must be given together")
    _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if is_causal and attn_mask is None:
        # torch takes is_causal only as a hint about the mask given, never in place of one
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", _none_or_dtype(attn_mask),
                                       "attn_mask", query.dtype)
    attn_mask = _canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
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
    if use_separate_proj_weight and key.shape[:2] != value.shape[:2]:
        raise AssertionError(f"key's sequence and batch dims {key.shape[:2]!r} do not match value's "
                             f"{value.shape[:2]!r}")
    if not use_separate_proj_weight and key.shape != value.shape:
        raise AssertionError(f"key shape {key.shape!r} does not match value shape {value.shape!r}")
    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        w_q, w_k, w_v = in_proj_weight.chunk(3)
    else:
        for name, weight in (("q", q_proj_weight), ("k", k_proj_weight), ("v", v_proj_weight)):
            if weight is None:
                raise AssertionError(f"use_separate_proj_weight is True but {name}_proj_weight is None")
        w_q, w_k, w_v = q_proj_weight, k_proj_weight, v_proj_weight
    b_q = b_k = b_v = None
    if in_proj_bias is not None:
        b_q, b_k, b_v = in_proj_bias.chunk(3)
    if use_separate_proj_weight:
        # torch's _in_projection checks: kdim/vdim weights against the key's and value's widths
        # (a mismatch would otherwise surface as linear's "mat1 and mat2" error)
        widths = {"query": embed_dim, "key": key.shape[-1], "value": value.shape[-1]}
        for name, weight in (("query", w_q), ("key", w_k), ("value", w_v)):
            if tuple(weight.shape) != (embed_dim, widths[name]):
                raise AssertionError(f"expecting {name} weights shape of {(embed_dim, widths[name])}, "
                                     f"but got {weight.shape}")
        for name, bias in (("query", b_q), ("key", b_k), ("value", b_v)):
            if bias is not None and tuple(bias.shape) != (embed_dim,):
                raise AssertionError(f"expecting {name} bias shape of {(embed_dim,)}, but got {bias.shape}")
    q, k, v = _in_projection(query, key, value, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                             (w_q, w_k, w_v), (b_q, b_k, b_v))
    if bias_k is not None:
        # add_bias_kv: one learned key/value more, at the end of every sequence
        k = _cat([k, bias_k.expand(1, bsz, embed_dim)])
        v = _cat([v, bias_v.expand(1, bsz, embed_dim)])
    # (S, N, E) → (N·H, S, head_dim)
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    if add_zero_attn:
        # a zero key/value more per head, which every query may attend to
        zero = k.new_zeros((bsz * num_heads, 1, head_dim))
        k, v = _cat([k, zero], 1), _cat([v, zero], 1)
    # the keys added above are never masked: the masks get that many zero (additive) columns
    added_keys = k.shape[1] - src_len
    dtype = q._data.dtype
    mask = None
    if attn_mask is not None:
        # torch's shape checks, naming the expected shape (a broadcast failure would name neither)
        if attn_mask.dim() == 2 and tuple(attn_mask.shape) != (tgt_len, src_len):
            raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape!r}, but should be "
                               f"{(tgt_len, src_len)}.")
        if attn_mask.dim() == 3 and tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
            raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape!r}, but should be "
                               f"{(bsz * num_heads, tgt_len, src_len)}.")
        mask = _mask_to_additive(attn_mask, dtype, true_means_masked=True)
        if mask.dim() == 2:
            mask = mask.unsqueeze(0)
        if added_keys:
            mask = pad(mask, (0, added_keys))
    if key_padding_mask is not None:
        kpm = _mask_to_additive(key_padding_mask, dtype, true_means_masked=True)
        if added_keys:
            kpm = pad(kpm, (0, added_keys))
        for axis, expected in enumerate((bsz, k.shape[1])):
            if kpm.shape[axis] != expected:
                raise AssertionError(f"Expected key_padded_mask.shape[{axis}] to be {expected}, "
                                     f"but got {kpm.shape[axis]}")
        src_len = kpm.shape[-1]
        kpm = kpm.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len).reshape(bsz * num_heads, 1, src_len)
        mask = kpm if mask is None else mask + kpm
    observer = None if need_weights else _fused_kernel_observer
    if observer is None:
        attended, weights = _attention_heads(q, k, v, mask, head_dim, dropout_p if training else 0.0,
                                             safe=not need_weights)
    else:  # torch runs this as scaled_dot_product_attention
        with observer("scaled_dot_product_attention", q, k, v) as finished:
            attended, weights = _attention_heads(q, k, v, mask, head_dim, dropout_p if training else 0.0, safe=True)
            finished(attended)
    out = attended.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if unbatched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    weights = weights.reshape(bsz, num_heads, tgt_len, k.shape[1])
    if average_attn_weights:
        weights = weights.mean(1)
    if unbatched:
        weights = weights.squeeze(0)
    return out, weights


def _in_projection(query, key, value, in_proj_weight, in_proj_bias, use_separate_proj_weight: bool,
                   weights, biases):
    """The q, k, v projections as torch's _in_projection_packed makes them: one linear over the
    packed weight where the inputs are one tensor (self-attention: q, k, v; encoder-decoder
    attention: k, v), so a key of the wrong width fails with torch's 'mat1 and mat2' shapes."""
    (w_q, w_k, w_v), (b_q, b_k, b_v) = weights, biases
    if use_separate_proj_weight or key is not value:
        return linear(query, w_q, b_q), linear(key, w_k, b_k), linear(value, w_v, b_v)
    embed_dim = query.shape[-1]
    if query is key:
        return linear(query, in_proj_weight, in_proj_bias).split(embed_dim, dim=-1)
    w_kv = in_proj_weight[embed_dim:]
    b_kv = None if in_proj_bias is None else in_proj_bias[embed_dim:]
    k, v = linear(key, w_kv, b_kv).split(embed_dim, dim=-1)
    return linear(query, w_q, b_q), k, v


def _attention_heads(q, k, v, mask, head_dim: int, dropout_p: float, safe: bool = False):
    """multi_head_attention_forward's attention over (batch·heads, L, E): the result and the weights.
    ``safe``: torch's path without weights is scaled_dot_product_attention, whose fully masked rows
    give zeros; the path with weights gives NaN there."""
    # torch's order: q scaled by sqrt(1 / E), a mask added inside the product (baddbmm: one rounding)
    q = q * math.sqrt(1.0 / head_dim)
    if mask is not None and mask.dim() == 3 and q.dim() == 3:
        from ..ops.linalg import baddbmm

        scores = baddbmm(mask.expand(q.shape[0], q.shape[1], k.shape[1]), q, k.transpose(-2, -1))
    else:
        scores = q @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
    weights = _safe_softmax(scores, -1) if safe and mask is not None else _softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return weights @ v, weights


def gumbel_softmax(logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> Tensor:
    """F.gumbel_softmax: softmax((logits + g) / tau) along ``dim`` with g = -log(E), E ~ Exp(1) drawn
    from chainrule's generator. ``hard=True`` returns the one-hot of its argmax with the soft sample's
    gradient (straight-through: y_hard - y_soft.detach() + y_soft)."""
    if eps != 1e-10:
        import warnings

        warnings.warn("`eps` parameter is deprecated and has no effect.", UserWarning, stacklevel=2)
    gumbels = -logits.detach().new_empty(logits.shape).exponential_().log()
    y_soft = _softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.detach().argmax(dim, keepdim=True)
    y_hard = y_soft.detach().new_zeros(y_soft.shape).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def _triplet_reduction(name: str, anchor: Tensor, positive: Tensor, negative: Tensor, size_average, reduce,
                       reduction: str) -> str:
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative "
                           f"{negative.ndim}D inputs")
    if size_average is not None or reduce is not None:
        # torch's mapping of the deprecated flags, kept in one place
        from .modules.loss import _legacy_reduction

        reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{name}: {reduction} is not a valid value for reduction")
    return reduction


def _triplet_loss(d_pos: Tensor, d_neg: Tensor, margin: float, reduction: str) -> Tensor:
    loss = (margin + d_pos - d_neg).clamp_min(0)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


@_cpu_autocast_policy("float32")
def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """F.triplet_margin_loss: max(d(a, p) - d(a, n) + margin, 0) with d the p-norm pairwise distance;
    ``swap`` uses min(d(a, n), d(p, n)) as the negative distance (Balntas et al.)."""
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    reduction = _triplet_reduction("triplet_margin_loss", anchor, positive, negative, size_average, reduce,
                                   reduction)
    p = _check_float(p, "triplet_margin_loss", "p")
    swap = _check_bool(swap, "triplet_margin_loss", "swap")
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = d_neg.minimum(pairwise_distance(positive, negative, p, eps))
    return _triplet_loss(pairwise_distance(anchor, positive, p, eps), d_neg, margin, reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    """F.triplet_margin_with_distance_loss: the triplet loss with any distance (default pairwise_distance)."""
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    reduction = _triplet_reduction("triplet_margin_with_distance_loss", anchor, positive, negative, None, None,
                                   reduction)
    distance = distance_function if distance_function is not None else pairwise_distance
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = d_neg.minimum(distance(positive, negative))
    return _triplet_loss(distance(anchor, positive), d_neg, margin, reduction)

# bound by the __future__ import; dir(torch.nn.functional) has no such name
del annotations
