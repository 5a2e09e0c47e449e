"""Dropout: inverted dropout and its feature-map and alpha variants (torch.nn.functional's).

The keep-mask is drawn once in the forward. On the CPU the input is multiplied by the scaled mask,
as torch's CPU dropout records it (MulBackward0); on CUDA (and for torch.native_dropout) one
Dropout node keeps it, whose backward multiplies by the same mask, which is dropout again, so
every order of derivative is one node.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _dtype, _layout, _vmap_frames
from .._backend import array_module
from ..autograd import function as _function
from ..autograd.function import _NULL_CTX, QUIET, Function, numpy_errstate, unwatched_on_plain_arrays
from ..tensor import Tensor
from . import random as _random
from .memory_format import preserved_strides

__all__ = ["dropout", "alpha_dropout", "feature_alpha_dropout", "feature_dropout", "dropout1d", "dropout2d",
           "dropout3d"]
__not_methods__ = set(__all__)


class Dropout(Function):
    """y = x · m / (1 - p) for a Bernoulli(1 - p) keep-mask m (inverted dropout)."""

    _array_forward = True
    node_name = "NativeDropoutBackward0"
    label = "dropout"
    rule = "passes the gradient through the kept units, scaled by 1/(1 - p)"
    formula = None

    @staticmethod
    def forward(ctx, x, mask):
        if any(ctx.needs_input_grad):  # keep nothing on the shared no-grad ctx
            ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        # dy/dx = m / (1 - p): the same constant scaled mask, so the backward is dropout again
        if type(grad) is Tensor and unwatched_on_plain_arrays(grad) and numpy_errstate.get() is QUIET:
            # a plain backward: its forward on the arrays (the unrecorded apply would only wrap them)
            return Tensor._make(DropoutBackward.forward(_NULL_CTX, grad._data, ctx.mask))
        return DropoutBackward.apply(grad, mask=ctx.mask)


class DropoutBackward(Dropout):
    """g · m / (1 - p): Dropout's gradient, itself a dropout with the same mask."""

    node_name = "NativeDropoutBackwardBackward0"
    label = "dropout_backward"


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not 0.0 <= p <= 1.0:  # NaN: past torch's Python check, refused by its kernel, training or not
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(x: Tensor, p: float, shape: tuple) -> np.ndarray:
    xp = array_module(x)
    if p == 1.0:
        # torch multiplies by a zero of the input's own dtype: an integer or bool input stays one
        if _function.active_dispatch is not None and xp is np:  # (a dispatch mode sees torch's zeros([]))
            _function.factory_dispatch("zeros", _zero_noise, ([],), {"dtype": x.dtype, "layout": _layout.strided,
                                                                   "device": x.device})
        return xp.zeros(shape, dtype=x._data.dtype)
    _refuse_complex_mask(x)
    _refuse_integer_noise(x)
    dtype = x._data.dtype if x._data.dtype.kind in "fV" else np.dtype(_dtype.get_default_dtype().np)
    like = x._data if shape == x._data.shape else None
    if _function.active_dispatch is not None and xp is np and like is not None:
        # a dispatch mode sees torch's noise: empty_like(input), bernoulli_(1 - p), div_(1 - p) (the same draws)
        noise = _function.factory_dispatch("empty_like", _empty_noise, (x,), {})
        if noise is not _function.RUN_UNDISPATCHED:
            keep = 1.0 - p
            _function.method_dispatch("bernoulli_.float", _bernoulli_noise, noise, () if keep == 0.5 else (keep,))
            _function.method_dispatch("div_.Scalar", _scale_noise, noise, (keep,))
            return noise._data
    if _vmap_frames.current() is not None and xp is np and _row_major(like):
        # inside a vmap, the slice's part of one draw for the batch (torch's draw for its batched tensor)
        mask = _vmap_frames.slice_draw(lambda size: _scaled_mask(np, size, p, None, dtype), shape)
        if mask is not None:
            return mask
    return _scaled_mask(xp, shape, p, like, dtype)


def _row_major(like) -> bool:
    """Whether a mask drawn in ``like``'s memory order (None: a fresh array's) is drawn in row-major
    order, as one draw for vmap's batch (``slice_draw``): a C-contiguous array, or a slice of one
    cut along another dim (vmap's in_dims=1), whose strides still fall from dim to dim."""
    if like is None or like.flags.c_contiguous:
        return True
    strides = [step for n, step in zip(like.shape, like.strides) if n > 1]
    return all(a >= b > 0 for a, b in zip(strides, strides[1:]))


def _scaled_mask(xp, shape: tuple, p: float, like, dtype):
    """The keep-mask scaled by 1 / (1 - p), in ``dtype``."""
    return _keep_mask(xp, shape, p, like).astype(dtype) * dtype.type(1.0 / (1.0 - p))


def _zero_noise(size, *, dtype=None, layout=None, device=None) -> Tensor:
    """aten.zeros's func for dropout's p = 1 zero under a dispatch mode."""
    return Tensor._make(np.zeros(size, dtype=np.dtype(dtype.np) if dtype is not None else np.float32))


def _empty_noise(input: Tensor) -> Tensor:
    """aten.empty_like's func for dropout's noise under a dispatch mode (laid out as the input)."""
    return Tensor._make(np.empty_like(input._data))


def _bernoulli_noise(noise: Tensor, keep: float = 0.5) -> Tensor:
    """aten.bernoulli_.float's func for dropout's noise: ones kept with probability ``keep``, drawn as
    dropout draws them without a mode."""
    noise._data[...] = _keep_mask(np, noise._data.shape, 1.0 - keep, noise._data, keep=keep)
    return noise


def _scale_noise(noise: Tensor, keep: float) -> Tensor:
    """aten.div_.Scalar's func for dropout's noise: times 1 / keep, as dropout scales without a mode."""
    noise._data *= noise._data.dtype.type(1.0 / keep)
    return noise


def _alpha_dropout_watched(input: Tensor, p: float, alpha: float, inplace: bool) -> Tensor | None:
    """Alpha dropout where a dispatch mode watches, as ATen's _dropout_impl runs it (the same draws and
    roundings as without a mode): empty_like, bernoulli_(1 - p), b = noise.add(-1).mul_(alpha·a)
    .add_(alpha·a·p), noise.mul_(a), then input * noise (mul_ in place) and add_(b). None where no mode
    took the noise (a wrapper subclass: the unwatched path)."""
    noise = _function.factory_dispatch("empty_like", _empty_noise, (input,), {})
    if noise is _function.RUN_UNDISPATCHED:
        return None
    keep = 1.0 - p
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    _function.method_dispatch("bernoulli_.float", _bernoulli_noise, noise, () if keep == 0.5 else (keep,))
    shift = _function.factory_dispatch("add.Scalar", _noise_plus, (noise, -1), {})
    _function.method_dispatch("mul_.Scalar", _noise_times, shift, (alpha * a,))
    _function.method_dispatch("add_.Scalar", _noise_plus_, shift, (alpha * a * p,))
    _function.method_dispatch("mul_.Scalar", _noise_times, noise, (a,))
    return (input.mul_(noise) if inplace else input * noise).add_(shift)


def _noise_plus(noise: Tensor, value: float) -> Tensor:
    """aten.add.Scalar's func for alpha dropout's noise: noise + value in its dtype."""
    return Tensor._make(noise._data + noise._data.dtype.type(value))


def _noise_plus_(noise: Tensor, value: float) -> Tensor:
    """aten.add_.Scalar's func for alpha dropout's shift, in place, the number rounded to its dtype."""
    noise._data += noise._data.dtype.type(value)
    return noise


def _noise_times(noise: Tensor, value: float) -> Tensor:
    """aten.mul_.Scalar's func for alpha dropout's noise and shift, in place, the number in its dtype."""
    noise._data *= noise._data.dtype.type(value)
    return noise


def _refuse_integer_noise(x: Tensor, alpha: bool = False) -> None:
    """torch draws the noise into ``empty_like(input)`` and scales it in place (``noise.div_(1 - p)``,
    alpha dropout's ``noise.add(-1).mul_(alpha * a)``): an integer or bool input's noise cannot hold
    the float scale, so dropout that draws a mask refuses it in the words of that in-place op."""
    kind = x._data.dtype.kind
    if kind in "iub":
        # alpha dropout's add(-1) has already promoted a bool noise to Long
        name = "Long" if alpha and kind == "b" else _dtype.scalar_name(x._data.dtype)
        raise RuntimeError(f"result type Float can't be cast to the desired output type {name}")


def _refuse_complex_mask(x: Tensor) -> None:
    """torch's CPU dropout draws its mask by ``bernoulli_`` into a tensor of the input's dtype, which
    has no complex kernel: a complex input is refused once a mask is needed (0 < p < 1, training)."""
    if x._data.dtype.kind == "c" and array_module(x) is np:
        raise NotImplementedError(f"\"bernoulli_scalar_cpu_\" not implemented for '{_dtype.scalar_name(x._data.dtype)}'")


def _keep_mask(xp, shape: tuple, p: float, like=None, *, keep: float | None = None):
    """Units kept with probability 1 - p: on the CPU torch's ``bernoulli_(1 - p)`` (a double
    uniform below 1 - p), so a seeded mask is torch's. A mask of the input's own shape is drawn,
    as torch draws it into ``empty_like(input)``, in that tensor's memory order (a transposed
    input, e.g. nn.MultiheadAttention's batch-first output, gets torch's mask); a feature mask is
    contiguous. ``keep``: 1 - p as bernoulli_ got it (a mode's func), not recomputed from p."""
    if xp is np:
        below = 1.0 - p if keep is None else keep

        def draw(size):
            stream = _random._rng(None)
            if type(stream) is _random.MT19937Stream:  # the same comparison on the uniforms' bits
                return stream.double_uniforms_below(size, below)
            return stream.random(size, dtype=np.float64) < below

        if like is None:
            return draw(shape)
        return _random._in_memory_order(like, draw, preserved_strides(like))
    return _random._rng(None, xp).random(shape, dtype=np.float32) >= p


def _apply_dropout(input: Tensor, mask: np.ndarray, inplace: bool, p: float) -> Tensor:
    if array_module(input) is np:
        # torch's CPU dropout multiplies by the scaled mask (a MulBackward0 keeping the mask as its
        # other; with p = 1 a 0-d zero); its fused native_dropout, below, is CUDA's
        noise = Tensor._make(mask if p != 1.0 else np.zeros((), mask.dtype))
        return input.mul_(noise) if inplace else input * noise
    if inplace:
        from .._methods import _inplace

        return _inplace(input, lambda t: Dropout.apply(t, mask=mask))
    return Dropout.apply(input, mask=mask)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """F.dropout: zero each element with probability p in training and scale the rest by 1/(1-p)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    return _apply_dropout(input, _dropout_mask(input, p, tuple(input.shape)), inplace, p)


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool, batched_ndim: int) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    lead = 2 if input.ndim == batched_ndim else 1
    if input.ndim < lead:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    shape = tuple(input.shape)
    # one draw per (sample, channel), shared by the whole feature map; unbatched input has no N
    mask_shape = shape[:lead] + (1,) * (len(shape) - lead)
    return _apply_dropout(input, _dropout_mask(input, p, mask_shape), inplace, p)


def feature_dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """torch.feature_dropout: one draw per (sample, channel) of an (N, C, *) input."""
    return _feature_dropout(input, p, training, inplace, input.ndim)


def _warn_feature_dropout_ndim(name: str, input: Tensor, spatial: int) -> None:
    """torch's deprecation warning for a dropout{1,2,3}d input that is neither batched nor unbatched."""
    if input.ndim not in (spatial + 1, spatial + 2):
        warnings.warn(
            f"{name}: Received a {input.ndim}-D input to {name}, which is deprecated and will result in an error "
            f"in a future release. To retain the behavior and silence this warning, please use dropout instead. "
            f"Note that {name} exists to provide channel-wise dropout on inputs with {spatial} spatial dimensions, "
            f"a channel dimension, and an optional batch dimension (i.e. {spatial + 1}D or {spatial + 2}D inputs).",
            stacklevel=3)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    _check_p(p)
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that dropout1d exists "
            "to provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, and an "
            "optional batch dimension (i.e. 2D or 3D inputs).")
    return _feature_dropout(input, p, training, inplace, 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    _check_p(p)
    _warn_feature_dropout_ndim("dropout2d", input, 2)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
            "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
            "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
            "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d "
            "instead.", stacklevel=2)
    # torch keeps dropout2d's historical rule for every rank: dims 0 and 1 are (N, C), so a 3-D input is
    # (N, C, L) and a 2-D (N, F) input loses single features, not whole rows
    return _feature_dropout(input, p, training, inplace, input.ndim)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    _check_p(p)
    _warn_feature_dropout_ndim("dropout3d", input, 3)
    return _feature_dropout(input, p, training, inplace, 5)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """F.alpha_dropout: dropout that keeps SELU's self-normalising mean and variance."""
    return _alpha_dropout(input, p, training, tuple(input.shape), inplace)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """F.feature_alpha_dropout: alpha dropout of whole channels (dims 0 and 1 of (N, C, ...) each get a draw)."""
    return _alpha_dropout(input, p, training, tuple(input.shape[:2]) + (1,) * (input.dim() - 2), inplace)


def _alpha_dropped(input: Tensor, keep: Tensor, alpha: float, a: float, p: float) -> Tensor:
    """alpha dropout's ``x · (m·a) + ((m - 1)·alpha·a + alpha·a·p)`` of a keep-mask tensor ``m``, by
    tensor ops with the numbers rounded to ``m``'s dtype as torch's steps round them."""
    scalar = keep._data.dtype.type
    return input * (keep * float(scalar(a))) + ((keep - 1.0) * float(scalar(alpha * a)) + float(scalar(alpha * a * p)))


def _alpha_dropout(input: Tensor, p: float, training: bool, mask_shape: tuple, inplace: bool = False) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        # torch multiplies by a zero of the input's dtype (the affine map's scale would divide by
        # zero): zeros keeping the input's signs and dtype (a bool stays bool), and a zero gradient
        zero = Tensor._make(array_module(input).zeros((), dtype=input._data.dtype))
        return input.mul_(zero) if inplace else input * zero
    _refuse_complex_mask(input)
    _refuse_integer_noise(input, alpha=True)
    alpha = 1.7580993408473766  # SELU's scale · alpha; dropped units land on -alpha before the affine map
    dtype = input._data.dtype
    like = input._data if mask_shape == input._data.shape else None
    if _function.active_dispatch is not None and array_module(input) is np and like is not None:
        made = _alpha_dropout_watched(input, p, alpha, inplace)
        if made is not None:
            return made
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    xp = array_module(input)
    if not inplace and _vmap_frames.current() is not None and xp is np and _row_major(like):
        # inside a vmap, the slice's part of one draw for the batch (torch's draw for its batched
        # tensor), and the affine map by tensor ops, which vmap's record replays on the batch
        drawn = _vmap_frames.slice_draw(lambda size: _keep_mask(np, size, p, None).astype(dtype), mask_shape)
        if drawn is not None:
            return _alpha_dropped(input, Tensor._make(drawn), alpha, a, p)
    keep = _keep_mask(xp, mask_shape, p, like).astype(dtype)
    # y = a·(x·m + (-alpha)(1 - m)) + alpha·a·p keeps mean 0 and variance 1. torch's steps and
    # roundings: b = noise.add(-1).mul_(alpha * a).add_(alpha * a * p); noise.mul_(a); x * noise + b,
    # each step and each double scalar rounded to the input's dtype (float16's too)
    scalar = keep.dtype.type
    shift = (keep - scalar(1)) * scalar(alpha * a) + scalar(alpha * a * p)
    if inplace:  # torch's input.mul_(noise).add_(b): the node AddBackward0
        return input.mul_(Tensor._make(keep * scalar(a))).add_(Tensor._make(shift))
    return input * Tensor._make(keep * scalar(a)) + Tensor._make(shift)
