"""The Gaussian negative log-likelihood and the multi-class / multi-label margin losses.

Compositions of elementwise ops, gathers and reductions (each exact, so the gradients, double
backward and the device come with them); the two losses torch runs as one kernel record torch's
node name for the whole loss (``MultiMarginLossBackward0``, ``MultilabelMarginLossBackward0``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype, _vmap_frames
from .._backend import array_module
from .._opmath import cpu_autocast_policy
from ..autograd import function as _function
from ..autograd.function import kept_value, name_node
from ..tensor import Tensor
from . import elementwise as ew
from ._arg_parser import check_number
from .loss import _check_reduction as _check_loss_reduction
from .loss import _LogSigmoid, _reduce, honours_legacy_flags

__all__ = ["gaussian_nll_loss", "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss"]
__not_methods__ = set(__all__)


def _check_reduction(reduction: str) -> None:
    # torch's Python-written losses word the error so; its kernels as loss._check_reduction
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """F.gaussian_nll_loss: ``0.5 (log var + (input - target)² / var)`` (+ ``0.5 log 2π`` if ``full``).

    ``var`` has input's shape, or one dim fewer, or a single mismatched dim of size 1 (one variance
    shared along it); it is clamped to ``eps`` for the value, while its gradient passes unclamped, as
    torch's ``clamp_`` under ``no_grad`` does.
    """
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = ew.zeros_like_tensor(input) + var
    else:
        if _vmap_frames._frames:  # torch's ``if torch.any(var < 0):`` branches on a batched var's values
            _vmap_frames.refuse_control_flow(var)
        if ew.on_its_gpu(var._data) or bool((var._data < 0).any()):
            raise ValueError("var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (input.dim() == var.dim()
                  and sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1):
            raise ValueError("var is of incorrect size")
    _check_reduction(reduction)
    if not (var.dtype.is_floating_point or var.dtype.is_complex):
        # torch clamps a clone of var in place (var.clamp_(min=eps)), which an integer or bool var refuses
        raise RuntimeError(f"result type {_dtype.scalar_name(_dtype.get_default_dtype())} can't be cast to the "
                           f"desired output type {_dtype.cpp_type_name(var.dtype)}")
    # clamped for the value only: the correction is a constant, so the gradient is var's own
    # (clamp, as torch's var.clamp_(min=eps): eps=None is clamp's RuntimeError, not clamp_min's TypeError)
    var = var + (ew.clamp(var, eps) - var).detach()
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def _check_kernel_dtypes(input: Tensor, target: Tensor, kernel: str) -> None:
    """torch's margin kernels run float32 and float64 only, and read the target as int64 as it is."""
    if input.dtype in (_dtype.float16, _dtype.bfloat16) or not input.dtype.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_dtype.scalar_name(input.dtype)}\'')
    if target.dtype != _dtype.int64:
        raise RuntimeError(f"expected scalar type Long but found {_dtype.scalar_name(target.dtype)}")


def _class_targets(input: Tensor, target: Tensor):
    """(input as (N, C), target as (N,)) after torch's shape checks."""
    samples = input.shape[0] if input.dim() == 2 else 1
    if input.dim() > 2 or target.dim() > 1 or target.numel() != samples:
        raise RuntimeError(
            "multi_margin_loss: target tensor should be 1-D with size equal to the number of input samples "
            f"(batch size). Expected target size [{samples}], but got {list(target.shape)}. Input has shape "
            f"{list(input.shape)}."
        )
    return input.reshape(samples, input.shape[-1] if input.dim() else 1), target.reshape(-1)


_REDUCTIONS = ("none", "mean", "sum")  # (aten's Reduction enum)


def _aten_multi_margin_loss(input, target, p=1, margin=1, weight=None, reduction=1):
    """aten.multi_margin_loss's signature (a wrapper's handler runs it): the reduction as aten's enum."""
    return multi_margin_loss(input, target, p, margin, weight, reduction=_REDUCTIONS[reduction])


@honours_legacy_flags
@cpu_autocast_policy("float32")
def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
                      size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """F.multi_margin_loss: per sample, ``Σ_{j≠y} w_y max(0, margin - x_y + x_j)^p / C`` (p is 1 or 2)."""
    if _function.active_dispatch is not None and isinstance(target, Tensor) and target._wrapper_strides is not None \
            and p in (1, 2) and reduction in _REDUCTIONS:
        # a wrapper subclass target's values live in it, not in its placeholder: its handler answers
        # aten.multi_margin_loss as torch's F.multi_margin_loss calls it (argument_dispatch)
        args = [input, target, p, margin, weight, _REDUCTIONS.index(reduction)]
        while len(args) > 4 and args[-1] == (None, 1)[len(args) - 5]:  # (torch's: weight, reduction left out)
            args.pop()
        made = _function.argument_dispatch("multi_margin_loss", _aten_multi_margin_loss, tuple(args), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.dim() != 1:
        raise ValueError("weight must be one-dimensional")
    _check_loss_reduction(reduction)
    # torch._C._nn.multi_margin_loss(input, target, p, margin, ...) reads margin as a Scalar
    margin = float(check_number(margin, "multi_margin_loss", "margin", position=4))
    _check_nonempty_rows(input)
    x, y = _class_targets(input, target)
    classes = x.shape[1]
    if weight is not None and weight.shape[0] != classes:
        raise RuntimeError(f"inconsistent weight size, expected {classes} but got {list(weight.shape)}")
    _check_kernel_dtypes(x, y, "multi_margin_loss_cpu_kernel")
    if weight is not None and weight._data.dtype != x._data.dtype:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(x._data.dtype)} but found "
                           f"{_dtype.scalar_name(weight._data.dtype)}")
    xp = array_module(x._data)
    labels = y._data.astype(np.int64)
    if isinstance(labels, np.ndarray) and labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise RuntimeError("target out of range")
    picked = x.gather(1, Tensor._make(labels[:, None]))
    z = margin - picked + x
    # torch's kernel adds z only where z > 0: a NaN margin adds nothing
    hinge = ew.where(z > 0, z, ew.zeros_like_tensor(z))
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        hinge = hinge * weight[Tensor._make(labels)].unsqueeze(1)
    # the target's own class selected away, not multiplied by 0 (an infinite margin would give NaN)
    others = Tensor._make(xp.arange(classes)[None, :] != labels[:, None])
    loss = ew.where(others, hinge, ew.zeros_like_tensor(hinge)).sum(1) / classes
    if input.dim() < 2:  # one sample: its loss has the target's shape, () or (1,)
        loss = loss.reshape(tuple(target.shape))
    return name_node(_reduce(loss, reduction), "MultiMarginLossBackward0", label="multi_margin_loss",
                     saved=_MULTI_MARGIN_SAVED, kept={"margin": margin, "p": p, "reduction": _REDUCTIONS.index(reduction),
                                                      "self": input, "target": target, "weight": weight})


# torch's _saved_* of its one-kernel margin losses: the arguments as given
_MULTI_MARGIN_SAVED = {"_saved_margin": kept_value("margin"), "_saved_p": kept_value("p"),
                       "_saved_reduction": kept_value("reduction"), "_saved_self": kept_value("self", tensor=True),
                       "_saved_target": kept_value("target", tensor=True),
                       "_saved_weight": kept_value("weight", tensor=True)}
# and the multi-label one's is_target: 1 at each sample's listed classes, in the input's shape and dtype
_MULTILABEL_MARGIN_SAVED = {"_saved_is_target": kept_value("is_target", tensor=True),
                            "_saved_reduction": kept_value("reduction"), "_saved_self": kept_value("self", tensor=True),
                            "_saved_target": kept_value("target", tensor=True)}


def _check_nonempty_rows(input: Tensor) -> None:
    """The margin losses' kernels take a scalar, a non-empty vector or rows of one (any number of rows)."""
    ndim = input.dim()
    if ndim > 2 or (ndim == 2 and input.shape[1] == 0) or (ndim == 1 and input.shape[0] == 0):
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                           f"{list(input.shape)}")


@honours_legacy_flags
@cpu_autocast_policy("float32")
def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """F.multilabel_margin_loss: per sample, ``Σ_{j ∈ targets} Σ_{k ∉ targets} max(0, 1 - (x_j - x_k)) / C``.

    A row of ``target`` lists the sample's classes and ends at its first -1 (a repeated class counts
    each time it is listed, as in torch's kernel).
    """
    _check_loss_reduction(reduction)
    _check_nonempty_rows(input)
    if tuple(target.shape) != tuple(input.shape) or input.dim() > 2:
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: {list(input.shape)}")
    _check_kernel_dtypes(input, target, "multilabel_margin_loss_forward_out_frame")
    unbatched = input.dim() < 2
    x = input.reshape(1, -1) if unbatched else input
    ew.on_its_gpu(target._data)
    labels = target._data.reshape(x.shape).astype(np.int64)
    classes = x.shape[1]
    xp = array_module(x._data)
    if isinstance(labels, np.ndarray) and labels.size and (labels.min() < -1 or labels.max() >= classes):
        raise RuntimeError("argument #2 'target' is out of range")
    listed = xp.cumprod(labels != -1, axis=1).astype(bool)  # entries before the first -1
    times_listed = ((labels[:, :, None] == xp.arange(classes)) & listed[:, :, None]).sum(1)
    dtype = x._data.dtype
    pairs = times_listed[:, :, None].astype(dtype) * (times_listed == 0)[:, None, :].astype(dtype)
    hinge = ew.clamp_min(1.0 - (x.unsqueeze(2) - x.unsqueeze(1)), 0.0)
    loss = (hinge * Tensor._make(pairs)).sum((1, 2)) / classes
    loss = loss.reshape(()) if unbatched and reduction == "none" else loss
    is_target = Tensor._make((times_listed > 0).astype(dtype).reshape(input.shape))
    return name_node(_reduce(loss, reduction), "MultilabelMarginLossBackward0", label="multilabel_margin_loss",
                     saved=_MULTILABEL_MARGIN_SAVED, kept={"is_target": is_target, "reduction": _REDUCTIONS.index(reduction),
                                                           "self": input, "target": target})


@honours_legacy_flags
def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                                reduce=None, reduction: str = "mean") -> Tensor:
    """F.multilabel_soft_margin_loss: per sample, the mean over classes of the binary logistic loss."""
    if isinstance(input, Tensor) and not input.dtype.is_floating_point:  # torch's logsigmoid comes first
        raise NotImplementedError(f"\"log_sigmoid_cpu\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    loss = -(target * _LogSigmoid.apply(input) + (1 - target) * _LogSigmoid.apply(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(input.dim() - 1) / input.shape[-1]
    _check_reduction(reduction)
    return _reduce(loss, reduction)
