"""Loss functions (torch.nn.functional names and signatures).

Most losses are compositions of elementwise ops and reductions. Two families get fused rules:

* ``cross_entropy`` / ``nll_loss`` (speed and stability): log-softmax and the weighted,
  label-smoothed NLL run in one forward on arrays; the input gradient is
  ``scale * (rowsum(A) * softmax(x) - A)`` for the per-class coefficients ``A``.
* ``binary_cross_entropy_with_logits`` uses a stable ``log_sigmoid`` (``-logaddexp(0, -x)``),
  so logits of 1e4 give neither overflow nor NaN.

Every rule is written with chainrule ops, so ``create_graph=True`` differentiates it again.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .._backend import array_module, broadcast_refusal
from .._opmath import cpu_autocast_policy
from ..autograd import function as _function
from ..autograd.function import (
    Function,
    SavedValue,
    as_uint64,
    ctx_value,
    kept_value,
    name_node,
    saved,
)
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.second_order import differentiate_rule
from ..tensor import Tensor, _check_tensor
from . import _cuda_kernels
from . import elementwise as ew
from ._arg_parser import check_bool, check_float, check_int
from .cpu_features import AVX512_CORE
from .memory_format import iterator_layout
from .reduce import LogSoftmax, Softmax, empty_mean
from .reduce import sum as _sum
from .special_functions import ScaledBy

__all__ = [
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss",
    "cosine_embedding_loss", "margin_ranking_loss", "soft_margin_loss", "hinge_embedding_loss",
]
__not_methods__ = set(__all__)

_REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """torch's mapping of the deprecated ``size_average`` / ``reduce`` flags to a reduction, with
    torch's warning at the user's line; ``reduction`` itself when neither flag is given."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    legacy = "none" if not reduce else "mean" if size_average else "sum"
    import warnings

    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{legacy}' instead.",
                  UserWarning, stacklevel=ew.user_stacklevel())
    return legacy


def honours_legacy_flags(loss):
    """``loss`` with its ``size_average`` / ``reduce`` parameters obeyed as torch does: when either
    is given (by keyword or position, as old scripts pass ``size_average=False``), it overrides
    ``reduction``. A call without them goes straight through."""
    import functools
    import inspect

    names = list(inspect.signature(loss).parameters)
    size_at, reduce_at, reduction_at = names.index("size_average"), names.index("reduce"), names.index("reduction")
    first = min(size_at, reduce_at)

    @functools.wraps(loss)
    def obeying_legacy_flags(*args, **kwargs):
        if len(args) <= first and "size_average" not in kwargs and "reduce" not in kwargs:
            return loss(*args, **kwargs)
        args = list(args)
        flags = [args[at] if len(args) > at else kwargs.get(name)
                 for at, name in ((size_at, "size_average"), (reduce_at, "reduce"))]
        if flags == [None, None]:
            return loss(*args, **kwargs)
        given = args[reduction_at] if len(args) > reduction_at else kwargs.get("reduction", "mean")
        reduction = legacy_reduction(*flags, given)
        for at, name in ((size_at, "size_average"), (reduce_at, "reduce"), (reduction_at, "reduction")):
            value = reduction if name == "reduction" else None
            if len(args) > at:
                args[at] = value
            else:
                kwargs[name] = value
        return loss(*args, **kwargs)

    return obeying_legacy_flags


# torch's _saved_* of its fused loss nodes, read from what the composition kept
_INPUT_TARGET_SAVED = {"_saved_reduction": kept_value("reduction"), "_saved_self": kept_value("self", tensor=True),
                       "_saved_target": kept_value("target", tensor=True)}
_SMOOTH_L1_SAVED = {**_INPUT_TARGET_SAVED, "_saved_beta": kept_value("beta")}
_HUBER_SAVED = {**_INPUT_TARGET_SAVED, "_saved_delta": kept_value("delta")}
# F.binary_cross_entropy hands torch's node the weight expanded to the input's shape
_BCE_SAVED = {**_INPUT_TARGET_SAVED, "_saved_weight": SavedValue(
    lambda node: None if node.torch_kept["weight"] is None
    else node.torch_kept["weight"].expand(node.torch_kept["self"].shape), tensor=True,
    undefined=lambda node: node.torch_kept["weight"] is None)}  # (None also once the graph is freed)
_BCE_WITH_LOGITS_SAVED = {**_INPUT_TARGET_SAVED, "_saved_pos_weight": kept_value("pos_weight", tensor=True),
                          "_saved_weight": kept_value("weight", tensor=True)}


def _check_reduction(reduction: str, allowed=_REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _as_tensor(x, like: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return Tensor._make(array_module(like).asarray(x, dtype=like._data.dtype))  # on like's device


def _in_input_dtype(loss: Tensor, input: Tensor) -> Tensor:
    """``loss`` as torch's kernels that write into a tensor of the input's dtype leave it: rounded to
    it, and refused when the input is an integer one (a float loss cannot be cast to it)."""
    if loss.dtype is input.dtype:
        return loss
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise RuntimeError(f"result type {_dtype.scalar_name(loss.dtype)} can't be cast to the desired output type "
                           f"{_dtype.scalar_name(input.dtype)}")
    return loss.to(input.dtype)


def _check_not_grown(shape, broadcast) -> None:
    """torch's error for an in-place op in a loss kernel whose other operand (a weight) would grow
    the loss beyond ``shape``: a weight of more dims, or a larger size, than the elementwise loss."""
    if tuple(broadcast) != tuple(shape):
        raise broadcast_refusal(shape, broadcast)


def _in_place_dtype(result: Tensor, dtype) -> Tensor:
    """``result`` in ``dtype``, as an in-place op on a tensor of that dtype leaves it."""
    return result if result.dtype is dtype else result.to(dtype)


def _check_float_kernel(input, target, kernel: str) -> None:
    """torch's pointwise loss kernels run on the promoted dtype of input and target, real floats only."""
    if isinstance(input, Tensor) and isinstance(target, Tensor):
        dtype = _dtype.result_type(input, target)
        if not dtype.is_floating_point:
            raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(dtype)}'")


def _float(x: Tensor, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(x).__name__}")
    return ew._float_input(x)


# ---------------------------------------------------------------- regression losses
class _MseLoss(Function):
    """``(x - t)**2``, reduced, as one node as in torch: the loss's ``grad_fn.next_functions`` lead
    to the layers that made x (what the blitz tutorial walks and prints), not to a subtraction."""

    _array_forward = True
    node_name = "MseLossBackward0"
    label = "mse_loss"
    rule = "∂/∂x = 2(x - t)·g, divided by the element count for 'mean'; ∂/∂t = -∂/∂x"
    formula = "mse_loss({0}, {1})"
    saved_attributes = {"_saved_reduction": ctx_value("reduction", _REDUCTIONS.index),
                        "_saved_self": saved(0), "_saved_target": saved(1)}  # torch's grad_fn._saved_* names

    @staticmethod
    def forward(ctx, x, t, reduction):
        xp = array_module(x)
        ctx.save_for_backward(x, t)
        ctx.reduction = reduction
        diff = x - t
        loss = diff * diff
        if reduction == "mean":
            if loss.size == 0:  # torch's mean of no elements: sum / 0; NumPy's warns "Mean of empty slice"
                return xp.asarray(empty_mean(xp.sum(loss)), order="C")
            return xp.asarray(xp.mean(loss), order="C")
        if reduction == "sum":
            return xp.asarray(xp.sum(loss), order="C")
        return loss

    @staticmethod
    def backward(ctx, grad):
        # d/dx = 2(x - t)·g (over n for 'mean'), d/dt its negative: torch's mse_loss_backward for each,
        # the target's with its operands swapped
        x, t = ctx.saved_values
        needs_x, needs_t = ctx.needs_input_grad
        reduction = ctx.reduction
        return (_MseLossBackward.apply(grad, x, t, reduction=reduction) if needs_x else None,
                _MseLossBackward.apply(grad, t, x, reduction=reduction) if needs_t else None)


class _MseLossBackward(Function):
    """mse_loss's gradient as torch's mse_loss_backward computes it, ``alpha·(x - t)·g`` with
    alpha = 2 (2/n for 'mean') rounded to the dtype, and differentiated by its double-backward
    formulas: one node on the gradient, x and t, as torch's under create_graph."""

    _array_forward = True
    node_name = "MseLossBackwardBackward0"
    label = "mse_loss_backward"
    rule = "∂/∂g = α(x - t), ∂/∂x = α·g, ∂/∂t = -α·g, α = 2 (2/n for 'mean')"
    formula = None

    @staticmethod
    def forward(ctx, grad, x, t, reduction, numel=None):
        # numel: the loss's element count where x holds more (vmap's replay runs a batch of slices at once)
        ctx.save_for_backward(grad, x, t)
        ctx.reduction = reduction
        ctx.numel = numel = x.size if numel is None else numel
        alpha = 2.0 / numel if reduction == "mean" and numel else 2.0
        return iterator_layout(x.dtype.type(alpha) * (x - t) * grad, x, t, grad)

    @staticmethod
    def backward(ctx, grad_grad):
        grad, x, t = ctx.saved_values
        reduction, numel = ctx.reduction, ctx.numel
        needs_grad, needs_x, needs_t = ctx.needs_input_grad
        d_grad = d_x = d_t = None
        if needs_grad:
            # torch's mse_loss_double_backward_grad_output: a reduced loss's 0-d gradient sums
            if reduction == "none":
                d_grad = _MseLossBackward.apply(grad_grad, x, t, reduction=reduction, numel=numel)
            else:
                ones = Tensor._make(array_module(x._data).ones(grad._data.shape, x._data.dtype))
                d_grad = (_MseLossBackward.apply(ones, x, t, reduction=reduction, numel=numel) * grad_grad).sum()
        if needs_x or needs_t:
            # torch's mse_loss_double_backward: 2·(ḡ·g), divided by n for 'mean'
            d_x = ew.MulNumber.apply(grad_grad * grad, number=2)
            if reduction == "mean":
                d_x = ew.DivNumber.apply(d_x, number=max(numel, 1))
            d_t = -d_x if needs_t else None
        return d_grad, d_x if needs_x else None, d_t


@honours_legacy_flags
@cpu_autocast_policy("float32")
def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight=None) -> Tensor:
    """F.mse_loss: ``(input - target)**2``, reduced."""
    _warn_if_target_size_differs(input, target)
    _check_float_kernel(input, target, "mse_cpu")
    # one node for the common case; a weight or a broadcast target takes the composition below
    if weight is None and isinstance(input, Tensor) and isinstance(target, Tensor) and input.shape == target.shape:
        _check_reduction(reduction)
        dtype = _dtype.result_type(input, target)
        if dtype.is_floating_point:
            return _MseLoss.apply(input.to(dtype), target.to(dtype), reduction=reduction)
    diff = input - target  # torch broadcasts before it reads the reduction
    _check_reduction(reduction)
    loss = diff * diff
    if weight is not None:
        loss = loss * weight
    return name_node(_reduce(loss, reduction), "MseLossBackward0", label="mse_loss")  # torch's node for the whole loss


@honours_legacy_flags
@cpu_autocast_policy("float32")
def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight=None) -> Tensor:
    """F.l1_loss: ``|input - target|``, reduced (the gradient at 0 is 0, as torch)."""
    _warn_if_target_size_differs(input, target)
    loss = ew.abs(input - target)  # torch broadcasts before it reads the reduction
    _check_reduction(reduction)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _vectorized_head(size: int, itemsize: int, *operands) -> int:
    """How many leading elements of an elementwise kernel's ``size`` torch's ``cpu_kernel_vec`` runs
    through the kernel's vectorized lambda, its scalar lambda taking the rest (where the two round
    differently): whole pairs of vectors (2 × 32 bytes, 2 × 64 with AVX-512) over one contiguous run
    of every operand (a 0-d one broadcast as a number), none where an operand is strided or
    broadcast. (Past GRAIN_SIZE threads split the run, each chunk with its own tail: taken as one.)"""
    if not all(a.ndim == 0 or a.size == size and a.flags.c_contiguous for a in operands) and not all(
            a.ndim == 0 or a.size == size and a.flags.f_contiguous for a in operands):
        return 0
    pair = 2 * (64 if AVX512_CORE else 32) // itemsize
    return size - size % pair


def _by_kernel_path(size: int, head: int, scalar_lambda, vector_lambda):
    """An elementwise kernel's result as torch's ``cpu_kernel_vec`` computes it: the first ``head``
    elements (see _vectorized_head) by ``vector_lambda()``, the rest by ``scalar_lambda()``."""
    if head == 0:
        return scalar_lambda()
    if head == size:
        return vector_lambda()
    out = vector_lambda()
    flat = out.reshape(-1)
    flat[head:] = scalar_lambda().reshape(-1)[head:]
    return out


def _row_major(xp, out, shape):
    """A kernel's result ``out`` (an array or a NumPy scalar) as the row-major array of ``shape``
    torch's backward kernels write into (``zeros_like(input, LEGACY_CONTIGUOUS_MEMORY_FORMAT)``)."""
    out = xp.asarray(out)
    if out.shape != shape or not out.flags.c_contiguous:
        out = xp.broadcast_to(out, shape).copy()  # (a fresh copy: a broadcast view's size-1 dims have stride 0)
    return out


class _PointwiseLossBackward(Function):
    """The shared double backward of a pointwise loss's gradient ``kernel(g, x, t)`` (torch's
    ``*_loss_double_backward_grad_output`` and ``*_loss_double_backward``): linear in g; in x and t,
    ``±g·ḡ·curvature(x, t)``, over n for 'mean'. Subclasses name the node and give the kernel and the
    curvature; ``threshold`` is the loss's beta or delta (None for soft_margin_loss)."""

    _array_forward = True
    label = "pointwise_loss_backward"
    rule = "∂/∂g = kernel(1, x, t); ∂/∂x = -∂/∂t = g·ḡ·curvature(x - t), over n for 'mean'"
    formula = None

    @classmethod
    def kernel(cls, grad, x, t, reduction, threshold, numel):
        raise NotImplementedError

    @classmethod
    def curvature(cls, grad_product, x, t, threshold):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, grad, x, t, reduction, threshold, numel=None):
        # numel: the loss's element count where x holds more (vmap's replay runs a batch of slices at once)
        ctx.save_for_backward(grad, x, t)
        ctx.reduction, ctx.threshold = reduction, threshold
        ctx.numel = numel = x.size if numel is None else numel
        return cls.kernel(grad, x, t, reduction, threshold, numel)

    @classmethod
    def backward(cls, ctx, grad_grad):
        grad, x, t = ctx.saved_values
        reduction, threshold, numel = ctx.reduction, ctx.threshold, ctx.numel
        needs_grad, needs_x, needs_t = ctx.needs_input_grad
        d_grad = d_x = d_t = None
        if needs_grad:
            # a reduced loss's 0-d gradient sums the kernel's value at g = 1 against ḡ (a batch of
            # them, (B, 1, ...) from the batched rule, each its own row)
            if reduction == "none":
                d_grad = cls.apply(grad_grad, x, t, reduction=reduction, threshold=threshold, numel=numel)
            else:
                ones = Tensor._make(array_module(x._data).ones(grad._data.shape, x._data.dtype))
                d_grad = cls.apply(ones, x, t, reduction=reduction, threshold=threshold, numel=numel) * grad_grad
                d_grad = d_grad.sum() if grad.dim() == 0 else d_grad.sum_to_size(tuple(grad.shape))
        if needs_x or needs_t:
            d_x = cls.curvature(grad_grad * grad, x, t, threshold)
            if reduction == "mean":
                d_x = ew.DivNumber.apply(d_x, number=numel)
            d_t = -d_x if needs_t else None
        return d_grad, d_x if needs_x else None, d_t


class _SmoothL1LossBackward(_PointwiseLossBackward):
    """smooth_l1_loss's gradient as torch's smooth_l1_loss_backward computes it (its CPU kernel's
    two lambdas), one node on the gradient, x and t under create_graph, as torch's."""

    node_name = "SmoothL1LossBackwardBackward0"
    label = "smooth_l1_loss_backward"
    rule = "∂/∂g = the kernel at g = 1; ∂/∂x = -∂/∂t = g·ḡ·[|x - t| < β]/β, over n for 'mean'"

    @classmethod
    def kernel(cls, grad, x, t, reduction, beta, numel):
        xp, real = array_module(x), x.dtype.type
        norm = real(1.0 / numel if reduction == "mean" and numel else 1.0)
        d = x - t
        size = max(d.size, grad.size)

        def scalar_lambda():  # norm·d·g / beta with beta a double, and the comparisons in double
            inner = ((norm * d * grad).astype(np.float64) / beta).astype(d.dtype, copy=False)
            wide = d.astype(np.float64)
            return xp.where(wide <= -beta, -norm * grad, xp.where(wide >= beta, norm * grad, inner))

        def vector_lambda():  # norm · (±1 at or beyond ±beta, d / beta within) · g, all in the dtype
            beta_v = real(beta)
            output = xp.where(xp.abs(d) >= beta_v, xp.where(d > 0, real(1), real(-1)), d / beta_v)
            return norm * output * grad

        out = _by_kernel_path(size, _vectorized_head(size, d.dtype.itemsize, x, t, grad), scalar_lambda, vector_lambda)
        return _row_major(xp, out, xp.broadcast_shapes(d.shape, grad.shape))

    @classmethod
    def curvature(cls, grad_product, x, t, beta):
        # torch's smooth_l1_loss_double_backward: g·ḡ·[|x - t| < β] / β
        inside = (ew.abs(x - t) < beta).to(grad_product.dtype)
        return ew.DivNumber.apply(grad_product * inside, number=beta)


class _HuberLossBackward(_PointwiseLossBackward):
    """huber_loss's gradient as torch's huber_loss_backward computes it (its CPU kernel's two
    lambdas), one node on the gradient, x and t under create_graph, as torch's."""

    node_name = "HuberLossBackwardBackward0"
    label = "huber_loss_backward"
    rule = "∂/∂g = the kernel at g = 1; ∂/∂x = -∂/∂t = g·ḡ·[|x - t| < δ], over n for 'mean'"

    @classmethod
    def kernel(cls, grad, x, t, reduction, delta, numel):
        xp, real = array_module(x), x.dtype.type
        norm = real(1.0 / numel if reduction == "mean" and numel else 1.0)
        d = x - t
        size = max(d.size, grad.size)

        def scalar_lambda():  # ±(norm·g)·delta with delta a double, and the comparisons in double
            wide, edge = d.astype(np.float64), (norm * grad).astype(np.float64) * delta
            return xp.where(wide <= -delta, (-edge).astype(d.dtype, copy=False),
                            xp.where(wide >= delta, edge.astype(d.dtype, copy=False), norm * d * grad))

        def vector_lambda():  # norm · (±delta at or beyond ±delta, d within) · g, all in the dtype
            delta_v = real(delta)
            output = xp.where(xp.abs(d) >= delta_v, xp.where(d > 0, delta_v, -delta_v), d)
            return norm * output * grad

        out = _by_kernel_path(size, _vectorized_head(size, d.dtype.itemsize, x, t, grad), scalar_lambda, vector_lambda)
        return _row_major(xp, out, xp.broadcast_shapes(d.shape, grad.shape))

    @classmethod
    def curvature(cls, grad_product, x, t, delta):
        # torch's huber_loss_double_backward: g·ḡ·[|x - t| < δ]
        return grad_product * (ew.abs(x - t) < delta)


class _PointwiseLoss(Function):
    """A pointwise loss of same-shaped float32/64 input and target, reduced, as one node as torch's: its gradient is torch's one ``*_loss_backward`` node (``gradient_node``) for x, and
    the same with x and t swapped for t. Subclasses name the node and give the elementwise loss."""

    _array_forward = True
    label = "pointwise_loss"
    rule = "∂/∂x = gradient_node(g, x, t), ∂/∂t = gradient_node(g, t, x)"
    gradient_node = None

    @classmethod
    def elementwise(cls, x, t, threshold):
        """The unreduced loss, as the composite form of the loss rounds it."""
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x, t, reduction, threshold):
        ctx.save_for_backward(x, t)
        ctx.reduction, ctx.threshold = reduction, threshold
        loss = cls.elementwise(x, t, threshold)
        return loss if reduction == "none" else _reduce(Tensor._make(loss), reduction)._data

    @classmethod
    def backward(cls, ctx, grad):
        x, t = ctx.saved_values
        needs_x, needs_t = ctx.needs_input_grad
        reduction, threshold = ctx.reduction, ctx.threshold
        return (cls.gradient_node.apply(grad, x, t, reduction=reduction, threshold=threshold) if needs_x else None,
                cls.gradient_node.apply(grad, t, x, reduction=reduction, threshold=threshold) if needs_t else None)


def _one_pointwise_node(input, target) -> bool:
    """Whether a pointwise loss of ``input`` and ``target`` is one recorded node (_PointwiseLoss):
    tensors of one shape and one real float32/64 dtype (broadcasting, promotion and half precision
    keep the composite form, whose parts torch records around its node too)."""
    return (isinstance(input, Tensor) and isinstance(target, Tensor) and input.shape == target.shape
            and input.dtype is target.dtype and (input.dtype is _dtype.float32 or input.dtype is _dtype.float64))


class _SmoothL1Loss(_PointwiseLoss):
    node_name = "SmoothL1LossBackward0"
    label = "smooth_l1_loss"
    rule = "∂/∂x = clamp((x - t)/β, -1, 1)·g, over n for 'mean'; ∂/∂t the same with x and t swapped"
    formula = "smooth_l1_loss({0}, {1})"
    gradient_node = _SmoothL1LossBackward
    saved_attributes = {"_saved_beta": ctx_value("threshold"), "_saved_reduction": ctx_value("reduction", _REDUCTIONS.index),
                        "_saved_self": saved(0), "_saved_target": saved(1)}

    @classmethod
    def elementwise(cls, x, t, beta):
        z, real = np.abs(x - t), x.dtype.type
        return np.where(z < real(beta), real(0.5 / beta) * z * z, z - real(0.5 * beta))


class _HuberLoss(_PointwiseLoss):
    node_name = "HuberLossBackward0"
    label = "huber_loss"
    rule = "∂/∂x = clamp(x - t, -δ, δ)·g, over n for 'mean'; ∂/∂t the same with x and t swapped"
    formula = "huber_loss({0}, {1})"
    gradient_node = _HuberLossBackward
    saved_attributes = {"_saved_delta": ctx_value("threshold"), "_saved_reduction": ctx_value("reduction", _REDUCTIONS.index),
                        "_saved_self": saved(0), "_saved_target": saved(1)}

    @classmethod
    def elementwise(cls, x, t, delta):
        z, real = np.abs(x - t), x.dtype.type
        return np.where(z < real(delta), real(0.5) * z * z, real(delta) * (z - real(0.5 * delta)))


class _SoftMarginLossBackward(_PointwiseLossBackward):
    """soft_margin_loss's gradient as torch's soft_margin_loss_backward computes it, one step at a
    time in the dtype, one node on the gradient and x under create_graph, as torch's (the target
    takes no gradient)."""

    node_name = "SoftMarginLossBackwardBackward0"
    label = "soft_margin_loss_backward"
    rule = "∂/∂g = the kernel at g = 1; ∂/∂x = g·ḡ·t²·z/(1 + z)², z = exp(-t·x), over n for 'mean'"

    @classmethod
    def kernel(cls, grad, x, t, reduction, threshold, numel):
        # torch's steps: z = exp(-t·x); t·z, times -norm (a number in the dtype), over z + 1, times g
        real = x.dtype.type
        z = ew._exp_array(-t * x)  # (torch's exp: float32 as float64's, rounded)
        out = t * z * real(-(1.0 / numel if reduction == "mean" and numel else 1.0))
        out = out / (z + real(1)) * grad
        return array_module(x).asarray(out)  # (a 0-d result an array, on its device)

    @classmethod
    def curvature(cls, grad_product, x, t, threshold):
        # torch's soft_margin_loss_double_backward: g·ḡ·t²·z/(z + 1)², z = exp(-t·x)
        z = ew.exp(x * -t)
        z_plus_1 = z + 1
        return grad_product * (t * t) * z / (z_plus_1 * z_plus_1)


class _SoftMarginLoss(_PointwiseLoss):
    node_name = "SoftMarginLossBackward0"
    label = "soft_margin_loss"
    rule = "∂/∂x = -t·g/(1 + exp(t·x)), over n for 'mean' (the target takes no gradient)"
    formula = "soft_margin_loss({0}, {1})"
    gradient_node = _SoftMarginLossBackward
    saved_attributes = {"_saved_reduction": ctx_value("reduction", _REDUCTIONS.index), "_saved_self": saved(0),
                        "_saved_target": saved(1)}

    @classmethod
    def elementwise(cls, x, t, threshold):
        return -ew._log_sigmoid_array(x * t)  # log(1 + exp(-x·t)), stably


@honours_legacy_flags
@cpu_autocast_policy("float32")
def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """F.smooth_l1_loss: ``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``."""
    _warn_if_target_size_differs(input, target)
    _check_reduction(reduction)
    if not beta >= 0:  # NaN too
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta != 0:
        _check_float_kernel(input, target, "smooth_l1_cpu")
    if beta != 0 and _one_pointwise_node(input, target):
        return _SmoothL1Loss.apply(input, target, reduction=reduction, threshold=float(beta))
    z = ew.abs(input - target)
    if beta == 0:
        return _reduce(z, reduction)
    loss = ew.where(z < beta, (0.5 / beta) * z * z, z - 0.5 * beta)
    return name_node(_reduce(loss, reduction), "SmoothL1LossBackward0", label="smooth_l1_loss", saved=_SMOOTH_L1_SAVED,
                     kept={"self": input, "target": target, "reduction": _REDUCTIONS.index(reduction),
                           "beta": float(beta)})


@cpu_autocast_policy("float32")
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight=None) -> Tensor:
    """F.huber_loss: ``0.5 d**2`` where ``|d| <= delta``, else ``delta (|d| - 0.5 delta)``."""
    _warn_if_target_size_differs(input, target)
    _check_reduction(reduction)
    if not isinstance(delta, (int, float)):  # torch's own check: a bool passes as an int, a tensor does not
        raise TypeError(f"huber_loss: delta must be a float or int, got: {type(delta).__name__}")
    if not delta > 0:  # NaN too
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _check_float_kernel(input, target, "huber_cpu")
    if weight is None and _one_pointwise_node(input, target):
        return _HuberLoss.apply(input, target, reduction=reduction, threshold=float(delta))
    if input.dtype is _dtype.float16 and target.dtype is _dtype.float16:
        # torch's CPU kernel computes float16 in float32 and rounds once (bfloat16 rounds each step)
        z = ew.abs(input.float() - target.float())
    else:
        z = ew.abs(input - target)
    # torch's kernel writes the elementwise loss into a tensor of the input's dtype
    loss = _in_input_dtype(ew.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta)), input)
    if weight is not None:
        loss = loss * weight
    return name_node(_reduce(loss, reduction), "HuberLossBackward0", label="huber_loss", saved=_HUBER_SAVED,
                     kept={"self": input, "target": target, "reduction": _REDUCTIONS.index(reduction),
                           "delta": float(delta)})


class _LogSigmoid(Function):
    """log(sigmoid(x)), finite for any x, as F.logsigmoid computes it."""

    _array_forward = True
    node_name = "LogSigmoidBackward0"
    label = "logsigmoid"
    rule = "∂/∂a = 1 - σ(a)"
    formula = "logsigmoid({0})"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ew._log_sigmoid_array(x)  # torch's composite losses call the log_sigmoid kernel

    @staticmethod
    def backward(ctx, grad):
        # d log(sigmoid(x)) = sigmoid(-x) dx
        (x,) = ctx.saved_values
        if _function.on_arrays(grad):  # a plain walk: torch's kernel, rounded as it rounds
            return Tensor._make(ew._log_sigmoid_grad_array(x._data, grad._data))
        return ew.LogSigmoidAdjoint.apply(grad, x)


class _LogitCrossEntropyTerms(Function):
    """The unreduced, unweighted binary cross-entropy of logits, ``(1 - t) x - log σ(x)``, rounded
    step by step as torch's composite forward (the target's dtype for each step), with torch's
    gradient formulas: ∂/∂x = σ(x) - t (the composition's (1 - t) - σ(-x) is 0 where σ(x) is
    not, at x = -100 say) and ∂/∂t = -x."""

    _array_forward = True
    # (named BinaryCrossEntropyWithLogitsBackward0 by the loss when it is the last node, unreduced
    # and unweighted; under a reduction or a weight that node carries torch's name)
    node_name = "LogitCrossEntropyTermsBackward0"
    label = "binary_cross_entropy_with_logits"
    rule = "∂/∂x = σ(x) - t, ∂/∂t = -x"
    formula = "(1 - {1})·{0} - logsigmoid({0})"

    @staticmethod
    def forward(ctx, x, t, loss_dtype, pos_weight):
        xp = array_module(x)
        ctx.save_for_backward(x, t)
        ctx.pos_weight = pos_weight
        log_sig = -xp.logaddexp(x.dtype.type(0), -x)
        if pos_weight is not None:  # log σ(x) scaled in place by (p - 1) t + 1: the input's dtype
            log_sig = (((pos_weight - 1) * t + 1) * log_sig).astype(x.dtype, copy=False)
        return (((1 - t) * x).astype(loss_dtype, copy=False) - log_sig).astype(loss_dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        # with pos_weight p: ∂/∂x = (p t + 1 - t) σ(x) - p t, ∂/∂t = log σ(-x) - p log σ(x)
        x, t = ctx.saved_values
        pos_weight = None if ctx.pos_weight is None else Tensor._make(ctx.pos_weight)
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            if pos_weight is None:
                grad_x = (ew.sigmoid(x) - t) * grad
            else:
                weighted = pos_weight * t
                grad_x = ((weighted + 1 - t) * ew.sigmoid(x) - weighted) * grad
        if ctx.needs_input_grad[1]:
            if pos_weight is None:
                grad_t = -x * grad
            else:
                grad_t = (_LogSigmoid.apply(-x) - _LogSigmoid.apply(x) * pos_weight) * grad
        return grad_x, grad_t


# ---------------------------------------------------------------- nll / cross entropy
def _class_layout(input: Tensor, target: Tensor, op: str):
    """Validate shapes of an (N, C, d...) / (C,) input and index target (torch's messages).

    torch's order (nll_loss_nd, then its kernels): the batch sizes; the target's rank, and its
    shape where the input is not 1-, 2- or 4-d; the target's dtype; then the rest of its shape."""
    shape, tshape = input._data.shape, target._data.shape
    ndim, target_ndim = input._data.ndim, target._data.ndim
    if ndim == 0:
        raise ValueError(f"Expected 1 or more dimensions (got {ndim})")
    target_batch = tshape[0] if target_ndim >= 1 else 0  # torch reads a 0-d target's batch as 0
    if ndim != 1 and target_batch != shape[0]:
        raise ValueError(f"Expected input batch_size ({shape[0]}) to match target batch_size ({target_batch}).")
    if (ndim == 1 and target_ndim > 1) or (ndim == 2 and target_ndim != 1):
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if ndim == 4 and target_ndim != 3:
        raise RuntimeError("only batches of spatial targets supported (3D tensors) but got "
                           f"targets of dimension: {target_ndim}")
    expected = (shape[0],) + shape[2:]
    if ndim not in (1, 2, 4) and tshape != expected:
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(tshape)}")
    if target._data.dtype not in (np.int64, np.uint8):  # torch takes no other index dtype
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_dtype.scalar_name(target.dtype)}")
    if ndim == 1 and target_ndim == 1 and tshape[0] != 1:
        raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {tshape[0]}")
    if ndim == 4 and tshape != expected:
        # torch's nll_loss2d words it so (its message has no closing parenthesis)
        raise RuntimeError(f"size mismatch (got input: {list(shape)} , target: {list(tshape)}")
    if ndim >= 3 and target._data.dtype == np.uint8:  # nll_loss2d's kernel takes Long only
        raise RuntimeError("expected scalar type Long but found Byte")


def _rows(x: np.ndarray) -> np.ndarray:
    """(N, C, d...) -> (M, C) with the class dim last; (C,) -> (1, C)."""
    xp = array_module(x)
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    return xp.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _unrows(g: np.ndarray, shape: tuple) -> np.ndarray:
    xp = array_module(g)
    if len(shape) <= 2:
        return g.reshape(shape)
    moved = (shape[0],) + shape[2:] + (shape[1],)
    return xp.moveaxis(g.reshape(moved), -1, 1)


def _class_weights(weight, C: int, dtype, ndim: int = 2) -> np.ndarray | None:
    """The class weights of a class-index NLL as an array; torch's kernel casts none, so a tensor of
    another dtype than the input's (an integer one, float64 ones for float32 logits) is refused.
    An input of ``ndim`` >= 3 goes to torch's nll_loss2d, which counts the weights only, in its words."""
    xp = array_module(weight)
    if weight is None:
        return None
    w = weight._data if isinstance(weight, Tensor) else xp.asarray(weight)
    if ndim >= 3:
        if w.size != C:
            raise RuntimeError("weight tensor should be defined either for all or no classes")
        if w.ndim != 1:  # (a 1-d weight stays the caller's array: the node saves the caller's tensor)
            w = w.reshape(C)
    _check_class_weight_shape(w, C)
    if w.dtype != dtype and (isinstance(weight, Tensor) or w.dtype.kind not in "fcV"):
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(dtype)} but found {_dtype.scalar_name(w.dtype)}")
    return w.astype(dtype, copy=False)


def _weight_tensor(weight, w):
    """The class weights as the NLL node saves them: the caller's tensor where ``w`` is its data
    (so writing it in place is caught, as torch catches it), else ``w`` wrapped; None for none."""
    if w is None:
        return None
    return weight if isinstance(weight, Tensor) and weight._data is w else Tensor._make(w)


def _check_class_weight_shape(w, C: int, op: str = "") -> None:
    """One weight per class; ``op`` prefixes the message where torch's composite names itself."""
    if w.ndim != 1 or w.shape[0] != C:
        raise RuntimeError(f"{op}weight tensor should be defined either for all {C} classes or no classes but "
                           f"got weight tensor of shape: {list(w.shape)}")


def _all_classes_below(t: np.ndarray, C: int) -> bool:
    """Whether every class index in the non-empty ``t`` lies in [0, C): one max, negative int64
    targets reading as huge unsigned ones."""
    return int((t.view(np.uint64) if t.dtype == np.int64 else t).max()) < C


# below this many rows a sum of ones is exact in every float dtype (bfloat16 keeps 8 bits)
_EXACT_COUNT = {np.dtype(np.float32): 2**24, np.dtype(np.float64): 2**53}


# torch's CPU nll_loss/nll_loss2d reduce the picked losses (and the row weights) by a cascade of
# 8 running float sums: level 0 adds each counted row in order, and after row b (a counted one)
# level j is added into level j + 1 while b is a multiple of 2**(power * (j + 1)); the levels'
# remainders are then added from level 0 up. Summing in its order gives its last bits.
_CASCADE_LEVELS = 8


def _cascade_sum(values: np.ndarray, counted: np.ndarray | None):
    """``values`` (rows in torch's order, 0 at rows not counted) summed as torch's nll_loss does;
    ``counted`` None is every row counted. A NumPy scalar of ``values``' dtype."""
    n = values.shape[0]
    dtype = values.dtype
    if counted is None and n <= 256:
        return _few_rows_cascade_sum(values)
    power = max(4, (int(n - 1).bit_length() if n > 1 else 0) // _CASCADE_LEVELS)
    step = 1 << power
    # every row where a level would move up counted: each level's runs are [0], then `step` items
    regular = counted is None or bool(counted[::step].all())
    items, positions = values, np.arange(n)
    total = dtype.type(0)
    for level in range(_CASCADE_LEVELS):
        if len(items) == 1:
            # a lone item (row 0's run) climbs to the top level unchanged: the levels between add 0
            return dtype.type(total + items[0])
        if level == _CASCADE_LEVELS - 1:
            sums, remainder = items[:0], np.cumsum(items)[-1]  # the top level keeps everything
        elif regular:
            sums, remainder = _regular_run_sums(items, step)
        else:
            flush = (positions & ((1 << (power * (level + 1))) - 1)) == 0
            if level == 0 and counted is not None:
                flush &= counted  # a row not counted is skipped before the cascade step
            sums, remainder = _sequential_segment_sums(items, flush)
            positions = positions[flush]
        total = dtype.type(total + remainder)
        items = sums
        if not len(items):
            break
    return total


def _few_rows_cascade_sum(values: np.ndarray):
    """``_cascade_sum`` of at most 256 rows, every one counted (runs of 16): row 0 climbs to the
    top level alone, the runs of 16 after it are summed at level 1, the rows after the last run
    stay at level 0, so the total is ((0 + the rows after the runs) + the runs' sums) + row 0,
    each added left to right (``add.accumulate``: NumPy's sum would add pairwise)."""
    dtype = values.dtype
    rest = values[1:]
    full = len(rest) // 16
    tail = rest[full * 16:]
    total = dtype.type(dtype.type(0) + (np.add.accumulate(tail)[-1] if len(tail) else dtype.type(0)))
    if full:
        runs = np.add.accumulate(rest[:full * 16].reshape(full, 16), axis=1)[:, -1]
        total = dtype.type(total + np.add.accumulate(runs)[-1])
    return dtype.type(total + values[0])


def _regular_run_sums(items: np.ndarray, step: int) -> tuple:
    """Left-to-right sums of the runs [0], [1, step], [step + 1, 2 step], ... of ``items``, and of
    the shorter run left at the end; cumsum adds in order (NumPy's sum would add pairwise)."""
    rest = items[1:]
    full = len(rest) // step
    sums = np.empty(full + 1, items.dtype)
    sums[0] = items[0]
    if full:
        sums[1:] = np.cumsum(rest[:full * step].reshape(full, step), axis=1)[:, -1]
    tail = rest[full * step:]
    return sums, (np.cumsum(tail)[-1] if len(tail) else items.dtype.type(0))


def _sequential_segment_sums(items: np.ndarray, flush: np.ndarray) -> tuple:
    """Left-to-right sums of the runs of ``items`` that end where ``flush`` is True, and of the run
    after the last one: (sums of the flushed runs, the remainder)."""
    n = len(items)
    ends = np.flatnonzero(flush)
    starts = np.concatenate(([0], ends + 1))
    lengths = np.diff(np.concatenate((starts, [n])))
    width = int(lengths.max())
    if len(starts) * width <= 4 * n + 64:
        # one row per run, zero-padded at its end (adding 0 leaves a sum as it is); cumsum is sequential
        run = np.cumsum(flush) - flush
        grid = np.zeros((len(starts), max(width, 1)), items.dtype)
        grid[run, np.arange(n) - starts[run]] = items
        sums = np.cumsum(grid, axis=1)[:, -1]
    else:  # a few long runs among many short ones: no padded grid
        sums = np.array([np.cumsum(items[a:a + k])[-1] if k else 0 for a, k in zip(starts, lengths)],
                        items.dtype)
    return sums[:-1], sums[-1]


def _total_weight(w_row, rows: int, dtype):
    """The summed row weights of a 'mean' NLL; ``w_row`` None is every row weighing 1, counted
    without an array of ones where the count is exact in ``dtype``."""
    if w_row is not None:
        return w_row.sum(dtype=dtype)
    if rows <= _EXACT_COUNT.get(np.dtype(dtype), 256):
        return dtype.type(rows)
    return np.ones(rows, dtype).sum(dtype=dtype)


def _weighted_rows(ctx, g_row):
    """``w_t · g`` per row of an NLL node; without row weights (each 1) ``g`` promoted as ``1 · g`` is."""
    if ctx.w_row is not None:
        return ctx.w_row * g_row
    return g_row.astype(np.result_type(ctx.input.dtype, g_row.dtype), copy=False)


def _masked(valid, values: np.ndarray) -> np.ndarray:
    xp = array_module(valid)
    return values if valid is None else xp.where(valid, values, 0)


class _IndexClassLoss(Function):
    """Fused (log-softmax +) weighted NLL with class-index targets.

    Per row i: ``loss_i = -sum_c A_ic logp_ic`` with ``A_ic = valid_i w_{t_i} [c == t_i]``; 'mean'
    divides by ``sum_i valid_i w_{t_i}``. With ``log_softmax=False`` the input already is ``logp``
    (nll_loss). The input gradient is ``g_i (rowsum(A)_i softmax(x)_ic - A_ic)`` (``-g_i A_ic`` for
    nll_loss). (cross_entropy's label smoothing is torch's composition around it: ``_smoothed_nll``.)
    """

    label = "cross_entropy"
    rule = ("log_softmax and NLL fused: ∂/∂x = g·(ΣA·softmax(x) - A) per row, A the target row (onehot(t) "
            "times its class weight): softmax(x) - onehot(t) for plain targets")
    _array_forward = True

    # the target and the class weights are parameters, not inputs: torch's node has one edge, for
    # the input. They come as the caller's tensors, which the node saves (below); the dispatch
    # layer hands the target over second, as torch's nll_loss_forward takes it
    @staticmethod
    def to_aten_arguments(inputs, params) -> tuple:
        rest = dict(params)
        return (*inputs, rest.pop("target")), rest

    @staticmethod
    def from_aten_arguments(args, kwargs) -> tuple:
        x, target = args
        return (x,), {**kwargs, "target": target if isinstance(target, Tensor) else Tensor._make(target)}

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction, log_softmax):
        xp = array_module(x)
        target_tensor, weight_tensor = target, weight
        target = target._data
        weight = None if weight is None else weight._data
        C = x.shape[1] if x.ndim > 1 else x.shape[0]
        dtype = x.dtype
        rows = _rows(x)
        t = target.reshape(-1)
        valid = None  # None: every target counts (the common case, no mask arrays)
        if xp is not np:
            # the bounds check would make the host wait for the device on every call; torch's CUDA
            # kernel asserts on the device instead. Targets are masked against ignore_index.
            valid = t != ignore_index
        elif t.size and not (_all_classes_below(t, C) and not 0 <= ignore_index < C):
            # (one reduction for the common case: every target a class, none of them ignore_index)
            valid = t != ignore_index
            bad = (t < 0) | (t >= C)
            bad &= valid
            if bad.any():
                raise IndexError(f"Target {int(t[xp.argmax(bad)])} is out of bounds.")
        all_valid = valid is None
        safe = t if all_valid else xp.where(valid, t, 0)
        arange = xp.arange(rows.shape[0])
        if weight is not None:
            w_row = weight[safe]
            if not all_valid:
                w_row = w_row * valid
        else:
            # None: every row weighs 1 (no array of ones to multiply by and sum)
            w_row = None if all_valid else valid.astype(dtype)
        probs = None
        if rows.size:
            if log_softmax:
                shifted = rows - rows.max(axis=1, keepdims=True)
                picked = shifted[arange, safe]
                e = xp.exp(shifted, out=shifted)
                s = e.sum(axis=1)
                picked = picked - xp.log(s)
                if ctx.needs_input_grad[0]:
                    e /= s[:, None]
                    probs = e
            else:
                picked = rows[arange, safe]
            loss = picked if w_row is None else w_row * picked  # (picked is a fresh array)
            loss *= -1.0
            if not all_valid:  # an ignored element's loss is torch's +0.0, not the negated 0 * picked
                loss[~valid] = 0.0
        else:
            loss = xp.zeros(t.shape, dtype)
        loss = loss.astype(dtype, copy=False)
        if reduction == "none":
            out = loss.reshape(target.shape)
            denom = None
        elif xp is np and dtype in (np.float32, np.float64) and loss.size:
            # torch's CPU kernel's summation order (see _cascade_sum)
            total = _cascade_sum(loss, valid)
            if reduction == "sum":
                denom = dtype.type(1)
            elif weight is None:  # torch divides by the count of rows kept, converted once
                denom = dtype.type(t.size if all_valid else int(valid.sum()))
            else:
                denom = _cascade_sum(w_row, valid)
            out = xp.asarray(total if reduction == "sum" else total / denom, dtype=dtype)
        elif reduction == "sum":
            out = xp.asarray(loss.sum(dtype=dtype))
            denom = dtype.type(1)
        else:
            denom = _total_weight(w_row, t.size, dtype)
            # (every target ignored divides by 0, silently: forward runs with NumPy's warnings off;
            # no rows at all is torch's filled quiet NaN, positive where x86's 0 / 0 is negative)
            out = xp.asarray(loss.sum(dtype=dtype) / denom if t.size else np.nan, dtype=dtype)
        if ctx.needs_input_grad[0]:
            ctx.x_shape = x.shape
            ctx.reduction = reduction
            ctx.denom = denom
            ctx.log_softmax = log_softmax
            ctx.rows_shape = rows.shape
            ctx.safe, ctx.valid, ctx.w_row = safe, valid, w_row
            ctx.probs = probs  # the input gradient reuses the forward's softmax
            ctx.input, ctx.ignore_index = x, ignore_index  # (grad_fn._saved_*)
            # torch's node saves self, target, weight and total_weight (0 unreduced, the summed
            # row weights otherwise, 'sum' too), so saved_tensors_hooks pack all of them and
            # writing the target or the weights in place before backward is refused. self is kept
            # without log_softmax too: the gradient's second order then has its (zero) edge to
            # the input, as NllLossBackwardBackward0's
            total_weight = xp.asarray(dtype.type(0) if reduction == "none" else
                                      denom if reduction == "mean" else _total_weight(w_row, t.size, dtype), dtype)
            ctx.save_for_backward(x, target_tensor, weight_tensor, Tensor._make(total_weight))
        return out

    @staticmethod
    def _coefficients(ctx, g_row):
        """``g_i A_ic`` (M, C) and the row sums ``g_i rowsum(A)_i`` (M,)."""
        xp = array_module(g_row)
        M, C = ctx.rows_shape
        A = xp.zeros((M, C), ctx.input.dtype)  # (the row weights' dtype)
        # an ignored row's 0 weight times a negated gradient is -0.0: masked to torch's +0.0, which
        # its kernel leaves unwritten (printed gradients show the sign)
        picked = _masked(ctx.valid, _weighted_rows(ctx, g_row))
        if M:
            A[xp.arange(M), ctx.safe] = picked
        return A, picked

    @staticmethod
    def backward(ctx, grad):
        saved = ctx.saved_values  # (checks the input was not changed in place since)
        if _function.unwatched_on_arrays(grad):
            # a plain walk that nothing watches: the unrecorded apply would only wrap these arrays
            return Tensor._make(_IndexClassLoss._input_grad_array(ctx, grad._data))
        return _IndexClassLossBackward.apply(grad, saved[0], loss=ctx)

    @staticmethod
    def _input_grad_array(ctx, grad):
        """The input gradient on the arrays, from the forward's softmax: ``grad`` is the loss's
        gradient array, ``ctx`` the loss node."""
        shape = ctx.x_shape
        M, C = ctx.rows_shape
        dtype = grad.dtype
        xp = array_module(grad)
        if ctx.reduction == "none":
            g_row = grad.reshape(-1)
        else:
            g_row = xp.full(M, grad / ctx.denom, dtype)  # (under apply's quiet NumPy state, as forward)
            # ignored elements get no gradient, even when all are ignored and 'mean' divides by 0
            g_row = _masked(ctx.valid, g_row)
        if ctx.log_softmax and M:
            picked = _weighted_rows(ctx, g_row)
            coef = ctx.probs * picked[:, None].astype(dtype, copy=False)
            coef[xp.arange(M), ctx.safe] -= picked
        else:
            # A is linear in g: A(-g) is -A(g) without a negating pass over the (M, C) array
            coef = _IndexClassLoss._coefficients(ctx, -g_row)[0]
        return _unrows(coef, shape).astype(dtype, copy=False)

    @staticmethod
    def _input_grad(ctx, grad: Tensor, x: Tensor | None = None) -> Tensor:
        """The same input gradient in differentiable Tensor ops: g * (rowsum(A) softmax(x) - A)."""
        shape = ctx.x_shape
        M, C = ctx.rows_shape
        dtype = grad._data.dtype
        xp = array_module(grad)
        ones = xp.ones(M, dtype)
        A, rowsum = _IndexClassLoss._coefficients(ctx, ones)
        A_full = Tensor._make(_unrows(A, shape).astype(dtype, copy=False))
        if ctx.reduction == "none":
            g_t = grad.unsqueeze(1) if len(shape) > 1 else grad
        else:
            g_t = grad / ctx.denom
        if not ctx.log_softmax:
            return -(g_t * A_full)
        class_dim = 1 if len(shape) > 1 else 0
        rowsum_full = Tensor._make(_unrows(xp.repeat(rowsum[:, None], C, axis=1), shape).astype(dtype, copy=False))
        return g_t * (rowsum_full * Softmax.apply(x, dim=class_dim) - A_full)


class _IndexClassLossBackward(Function):
    """The input gradient of the fused (log-softmax +) NLL loss; ``loss`` is the loss's node."""

    _array_forward = True
    node_name = "NllLossBackwardBackward0"
    label = "nll_loss_backward"
    rule = "differentiates g·(rowsum(A)·softmax(x) - A) with respect to g and x"
    formula = None

    @staticmethod
    def forward(ctx, grad, *x, loss):
        if any(ctx.needs_input_grad):  # keep nothing on the shared no-grad ctx
            ctx.loss = loss
        ctx.save_for_backward(grad, *x)
        return _IndexClassLoss._input_grad_array(loss, grad)

    @staticmethod
    def backward(ctx, grad_grad):
        loss = ctx.loss
        return differentiate_rule(lambda g, *x: _IndexClassLoss._input_grad(loss, g, *x), ctx.saved_values,
                                  ctx.needs_input_grad, (grad_grad,))


@honours_legacy_flags
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """F.nll_loss on log-probabilities (N, C, d...) or (C,) with class-index targets."""
    _check_reduction(reduction)
    ignore_index = check_int(ignore_index, "nll_loss", "ignore_index")
    if isinstance(input, Tensor) and not input.dtype.is_floating_point:  # torch's kernel: real floats only
        raise NotImplementedError(f"\"nll_loss_out_frame\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    input = _float(input, "nll_loss")
    _class_layout(input, target, "nll_loss")
    C = input._data.shape[1] if input._data.ndim > 1 else input._data.shape[0]
    w = _class_weights(weight, C, input._data.dtype, input._data.ndim)
    _check_weight_not_differentiated(weight, input)
    loss = _NllLoss.apply(input, target=target, weight=_weight_tensor(weight, w), ignore_index=ignore_index, reduction=reduction,
                          log_softmax=False)
    return _name_nll_node(loss, input._data.ndim, reduction)


class _NllLoss(_IndexClassLoss):
    node_name = "NllLossBackward0"
    label = "nll_loss"
    rule = "-w_t at each row's target class (divided by the summed weights Σw_t for 'mean'), 0 elsewhere"
    # torch's grad_fn._saved_* names (its ignore_index as the C++ node's unsigned)
    saved_attributes = {
        "_saved_ignore_index": ctx_value("ignore_index", as_uint64),
        "_saved_reduction": ctx_value("reduction", _REDUCTIONS.index),
        "_saved_self": saved(0),
        "_saved_target": saved(1),
        "_saved_weight": saved(2),
        "_saved_total_weight": saved(3),
    }


def _name_nll_node(loss: Tensor, ndim: int, reduction: str) -> Tensor:
    """The loss with torch's node name; nll_loss2d's node saves what nll_loss's does, by the same names."""
    name = _nll_node_name(ndim, reduction)
    return name_node(loss, name, saved=_NllLoss.saved_attributes if name == "NllLoss2DBackward0" else None)


def _nll_node_name(ndim: int, reduction: str) -> str:
    """torch's node for nll_loss of an ``ndim``-d input: nll_loss up to 2-d, nll_loss2d for 4-d;
    other ranks are viewed as 4-d for nll_loss2d, and an unreduced loss is viewed back."""
    if ndim <= 2:
        return "NllLossBackward0"
    return "ViewBackward0" if ndim != 4 and reduction == "none" else "NllLoss2DBackward0"


@honours_legacy_flags
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """F.cross_entropy: log-softmax over dim 1 (dim 0 for a (C,) input) then NLL.

    ``target`` holds class indices (shape (N, d...) or ()) or, with the input's shape and a float
    dtype, class probabilities. ``weight`` rescales classes; 'mean' with class indices is
    ``sum(w_i l_i) / sum(w_i)`` over non-ignored elements.
    """
    _check_reduction(reduction)
    ignore_index = check_int(ignore_index, "cross_entropy", "ignore_index")
    if isinstance(input, Tensor) and isinstance(target, Tensor) and target._data.shape == input._data.shape:
        # torch reads a target of the input's shape as class probabilities, whatever its dtype, and
        # checks in this order: the target's dtype, ignore_index, the weight (in the words of its
        # composite, "cross_entropy: ..."), log_softmax's input, then label_smoothing
        if target._data.dtype.kind not in "fV":
            raise RuntimeError("Expected floating point type for target with class probabilities, got "
                               f"{_dtype.scalar_name(target.dtype)}")
        if ignore_index >= 0:  # torch ignores a negative ignore_index here
            raise RuntimeError("ignore_index is not supported for floating point target")
        if input._data.ndim == 0:
            raise IndexError("Dimension specified as 1 but tensor has no dimensions")
        C = input._data.shape[1] if input._data.ndim > 1 else input._data.shape[0]
        if weight is not None:
            _check_class_weight_shape(weight._data if isinstance(weight, Tensor) else np.asarray(weight), C,
                                      op="cross_entropy: ")
        input = _cross_entropy_input(input)
        return _probability_cross_entropy(input, target, weight, reduction, _smoothing(label_smoothing))
    # class indices: label_smoothing is checked first, then log_softmax's input, then nll_loss's
    # target, then the weight
    label_smoothing = _smoothing(label_smoothing)
    input = _cross_entropy_input(input)
    if input._data.ndim == 0:
        raise ValueError("Expected 1 or more dimensions (got 0)")
    C = input._data.shape[1] if input._data.ndim > 1 else input._data.shape[0]
    _class_layout(input, target, "cross_entropy")
    _check_weight_not_differentiated(weight, input)
    w = _class_weights(weight, C, input._data.dtype, input._data.ndim)
    if (w is None and not label_smoothing and input._data.ndim == 2 and array_module(input._data) is not np
            and _cuda_kernels.available(input._data)):
        return _FusedCrossEntropy.apply(input, target, ignore_index=ignore_index, reduction=reduction)
    # two nodes, as torch records them (NllLossBackward0 over LogSoftmaxBackward0), so graphs
    # walked by user code look the same
    # (straight to the node: log_softmax's own dim and dtype parsing has nothing left to do here)
    logp = LogSoftmax.apply(input, dim=1 if input._data.ndim > 1 else 0)
    given_weight, weight = weight, _weight_tensor(weight, w)
    loss = _NllLoss.apply(logp, target=target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                          log_softmax=False)
    loss = _name_nll_node(loss, input._data.ndim, reduction)
    if label_smoothing:
        if w is not None:
            _check_smoothing_weight(np.shape(given_weight), input._data.ndim, reduction)
        return _smoothed_nll(loss, logp, target, weight, ignore_index, reduction, label_smoothing)
    return loss


def _check_smoothing_weight(shape: tuple, ndim: int, reduction: str) -> None:
    """The weight of a smoothed class-index cross_entropy, after the NLL took it: nll_loss2d (an input
    of 3+ dims) counts only its elements, but torch's smoothing then views it as its first dim
    along the classes, and 'mean' gathers from it as a vector, so a weight of more dims fails there
    with torch's errors (a (1, C) weight on (N, C, d) logits; (C, 1) under 'mean')."""
    size = int(np.prod(shape))
    if shape[0] != size:
        view = [1] * ndim
        view[1 if ndim > 1 else 0] = shape[0]
        raise RuntimeError(f"shape '{view}' is invalid for input of size {size}")
    if len(shape) != 1 and reduction == "mean":
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")


def _smoothing(label_smoothing: float) -> float:
    """cross_entropy's label_smoothing as its kernels use it: above 1 refused (the number as C++
    prints a double: 2, 1.5); torch smooths only for a positive value, so a negative or NaN one is 0."""
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")
    return label_smoothing if label_smoothing > 0.0 else 0.0


def _cross_entropy_input(input) -> Tensor:
    """cross_entropy's logits, refused as torch's log_softmax over the classes refuses them: real
    floats only."""
    if isinstance(input, Tensor) and not input.dtype.is_floating_point and input._data.ndim:
        kernel = "log_softmax_lastdim_kernel_impl" if input._data.ndim <= 2 else "log_softmax_kernel_impl"
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    return _float(input, "cross_entropy")


def _smoothed_nll(nll: Tensor, logp: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                  reduction: str, label_smoothing: float) -> Tensor:
    """cross_entropy's label smoothing: ``(1 - ε) nll + ε/C · smooth``, smooth the (weighted) sum of
    -logp over the classes, 0 at ignored targets, reduced as the NLL is ('mean' by the summed target
    weights, or the count of targets kept). The composition torch's cross_entropy records, node for
    node, so its graph, saved tensors and rounding are torch's."""
    class_dim = 1 if logp._data.ndim > 1 else 0
    C = logp._data.shape[class_dim]
    if weight is not None:
        weight_shape = [1] * logp._data.ndim
        weight_shape[class_dim] = C
        smooth = -(logp * weight.view(weight_shape)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    ignored = target == ignore_index
    smooth.masked_fill_(ignored, 0.0)
    if reduction == "mean":
        if weight is not None and _function.active_dispatch is not None and target._data.ndim == 1:
            # torch's branch for a tensor-subclass-like weight, as every tensor is under a dispatch mode:
            # the ignored targets' weights gathered from class 0, then zeroed (the same sum)
            weight_sum = weight.gather(0, target.masked_fill(ignored, 0)).masked_fill_(ignored, 0).sum()
            smooth = smooth.sum() / weight_sum
        elif weight is not None:
            smooth = smooth.sum() / weight.gather(0, target.masked_select(~ignored).flatten()).sum()
        else:
            kept = (~ignored).sum()  # (torch counts the kept targets first)
            smooth = smooth.sum() / kept
    elif reduction == "sum":
        smooth = smooth.sum()
    smoothed = _times_number(smooth, label_smoothing / C)  # (torch scales this term first)
    return _times_number(nll, 1 - label_smoothing) + smoothed


# torch's mul.Scalar node: one edge, the number kept as a number (no tensor saved)
_MUL_SCALAR_SAVED = {"_saved_other": ctx_value("factor")}


def _times_number(x: Tensor, number: float) -> Tensor:
    """``x * number`` as torch's C++ composites record it (MulBackward1, the Scalar overload)."""
    if _function.active_dispatch is not None:  # (a mode sees the aten.mul.Scalar they call)
        _function.note_given(ScaledBy, x, aten_call=(("mul", "Scalar"), (x, number), {}))
    return name_node(ScaledBy.apply(x, factor=number), "MulBackward1", label="mul", saved=_MUL_SCALAR_SAVED)


def _check_not_differentiated(tensor, function: str, argument: str) -> None:
    """torch's native kernels with no gradient formula for an argument refuse one that requires
    grad (when grad mode is on) rather than return a wrong (zero) gradient."""
    if isinstance(tensor, Tensor) and tensor._requires_grad and is_grad_enabled():
        raise RuntimeError(f"The function '{function}' is not differentiable with respect to argument "
                           f"'{argument}'. This input cannot have requires_grad True.")


def _check_weight_not_differentiated(weight, input) -> None:
    """torch has no gradient for the class weights of the class-index NLL. Its kernel for inputs
    of more than 2 dims (the spatial losses, a 3-d or 5-d input reshaped to 4-d) is nll_loss2d."""
    kernel = "nll_loss2d_forward" if input._data.ndim > 2 else "nll_loss_forward"
    _check_not_differentiated(weight, kernel, "weight")


def _probability_cross_entropy(input, target, weight, reduction, label_smoothing):
    """Class-probability targets: ``-sum_c w_c t'_c logp_c`` with ``t' = (1-eps) t + eps/C``
    (differentiable in the weight too, as torch's). A composition in torch, recorded here node for
    node: the target is smoothed in its own dtype, log-probabilities, target and weight promote as
    any product does, and 'mean' sums everything before dividing by the number of rows."""
    class_dim = 1 if input._data.ndim > 1 else 0
    C = input._data.shape[class_dim]
    logp = LogSoftmax.apply(input, dim=class_dim)
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / C
    terms = logp * target
    if weight is not None:
        if not isinstance(weight, Tensor):
            weight = Tensor._make(array_module(input).asarray(weight))
        wshape = [1] * input._data.ndim
        wshape[class_dim] = C
        terms = terms * weight.reshape(wshape)
    if reduction == "none":
        return -_sum(terms, class_dim)
    total = -terms.sum()
    if reduction == "sum":
        return total
    if not input._data.size:
        return total / 0.0  # torch fills the empty sum with NaN
    return ew.DivNumber.apply(total, number=input._data.size // C)


class _FusedCrossEntropy(Function):
    """cross_entropy of (N, C) logits and class indices on CuPy, without class weights or label
    smoothing (the common case): the loss is one fused kernel launch, its gradient another
    (ops/_cuda_kernels.py), instead of log_softmax's and nll_loss's passes over (N, C). One node,
    named as torch's last one; the CPU and the stand-in compose log_softmax and nll_loss."""

    _array_forward = True
    node_name = "NllLossBackward0"
    label = "cross_entropy"
    rule = ("log_softmax and NLL fused in one kernel: ∂/∂x = g·(softmax(x) - onehot(t)) per row, 0 for ignored "
            "rows (divided by the count of non-ignored rows for 'mean')")
    formula = None

    @staticmethod
    def forward(ctx, x, target, ignore_index, reduction):
        loss, lse = _cuda_kernels.cross_entropy(x, target, ignore_index, reduction)
        if any(ctx.needs_input_grad):  # keep nothing on the shared no-grad ctx
            ctx.target, ctx.lse, ctx.ignore_index, ctx.reduction = target, lse, ignore_index, reduction
        ctx.save_for_backward(x)
        return loss

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        return _FusedCrossEntropyBackward.apply(grad, x, loss=ctx), None


class _FusedCrossEntropyBackward(Function):
    """The fused cross-entropy's input gradient, one kernel launch; ``loss`` is the loss's node."""

    _array_forward = True
    node_name = "NllLossBackwardBackward0"
    label = "cross_entropy_backward"
    rule = "differentiates g·(softmax(x) - onehot(t)) with respect to g and x"
    formula = None

    @staticmethod
    def forward(ctx, grad, x, loss):
        if any(ctx.needs_input_grad):
            ctx.loss = loss
        ctx.save_for_backward(grad, x)
        return _cuda_kernels.cross_entropy_backward(grad, x, loss.target, loss.lse, loss.ignore_index,
                                                    loss.reduction)

    @staticmethod
    def backward(ctx, grad_grad):
        loss = ctx.loss
        return differentiate_rule(lambda g, x: _fused_cross_entropy_grad(loss, g, x), ctx.saved_values,
                                  ctx.needs_input_grad, (grad_grad,))


def _fused_cross_entropy_grad(loss, grad: Tensor, x: Tensor) -> Tensor:
    """The fused cross-entropy's input gradient in differentiable Tensor ops (for create_graph)."""
    xp = array_module(x._data)
    dtype = x._data.dtype
    target = loss.target.astype(xp.int64, copy=False)
    keep = target != loss.ignore_index
    onehot = (xp.arange(x._data.shape[1]) == target[:, None]).astype(dtype)
    scale = Tensor._make(keep.astype(dtype)[:, None])
    if loss.reduction == "none":
        grad = grad.unsqueeze(1)
    elif loss.reduction == "mean":
        grad = grad / Tensor._make(keep.sum().astype(dtype))
    return grad * scale * (Softmax.apply(x, dim=1) - Tensor._make(onehot))


# ---------------------------------------------------------------- binary losses
def _bce_aten(input, target, weight=None, reduction=1):
    """aten.binary_cross_entropy's signature (the reduction an enum) for a wrapper's handler."""
    return binary_cross_entropy(input, target, weight, reduction=_REDUCTIONS[reduction])


@honours_legacy_flags
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """F.binary_cross_entropy on probabilities; each log is clamped to >= -100 as in torch."""
    xp = array_module(input)
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({_size(target)}) that is different to the input size "
                         f"({_size(input)}) is deprecated. Please ensure they have the same size.")
    if target.dtype != input.dtype:  # torch's kernel promotes neither
        raise RuntimeError(f"Found dtype {_dtype.scalar_name(target.dtype)} but expected {_dtype.scalar_name(input.dtype)}")
    if not input.dtype.is_floating_point:  # torch's kernel: real floats only
        raise NotImplementedError(f"\"binary_cross_entropy\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    data, labels = input._data, target._data
    if data.size:
        bad_input = ~((data >= 0) & (data <= 1))  # NaN too
        bad_target = ~((labels >= 0) & (labels <= 1))
        if bad_input.any() or bad_target.any():
            # torch's kernel checks element by element, the input before the target
            first = int(xp.argmax((bad_input | bad_target).reshape(-1)))
            which = "input" if bad_input.reshape(-1)[first] else "target"
            raise RuntimeError(f"all elements of {which} should be between 0 and 1")
    _check_not_differentiated(weight, "binary_cross_entropy", "weight")
    if weight is not None:  # torch's functional expands the weight to the target's size first
        from .shape import broadcast_shapes

        grown = broadcast_shapes(target.shape, weight.shape)  # Size reprs in its message, as torch's
        _check_not_grown(target.shape, grown)
        if _function.active_dispatch is not None and weight._wrapper_strides is not None:
            # (the weight is read from its array: a wrapper's values are behind its handler, which answers
            # torch's expand of it and then the one aten op)
            made = _function.argument_dispatch("binary_cross_entropy", _bce_aten,
                                               (input, target, weight.expand(grown), _REDUCTIONS.index(reduction)), {})
            if made is not _function.RUN_UNDISPATCHED:
                return made
    loss = _BinaryCrossEntropy.apply(input, target, weight=None if weight is None else weight._data,
                                     reduction=reduction)
    return name_node(loss, "BinaryCrossEntropyBackward0", label="binary_cross_entropy",
                     saved=_BCE_SAVED, kept={"self": input, "target": target, "reduction": _REDUCTIONS.index(reduction),
                                             "weight": weight})


# ATen's Loss.cpp EPSILON, a float constant: float64 losses see 9.999999960041972e-13, not 1e-12
_LOSS_EPSILON = float(np.float32(1e-12))


def _weighted_reduced(x: Tensor, weight, reduction: str) -> Tensor:
    """``x`` as torch's loss formulas finish it: times the weight, then divided by the element
    count for 'mean' (after the elementwise part, which rounds differently from scaling first)."""
    if weight is not None:  # in place in torch's formulas: in x's dtype
        x = _in_place_dtype(x * Tensor._make(weight), x.dtype)
    # (by the count as a number: torch's div_(numel), one DivBackward1 under create_graph)
    return ew.DivNumber.apply(x, number=x.numel()) if reduction == "mean" else x


class _BinaryCrossEntropy(Function):
    """``-(t log p + (1 - t) log(1 - p))``, weighted and reduced, one node as torch's: it clamps
    twice (each log at -100 in the forward, ``p (1 - p)`` at 1e-12 in the input gradient, so
    p = 0 or 1 gives a large finite gradient instead of the composition's NaN), and its
    gradients weigh and divide by the count after the elementwise formula, not before."""

    _array_forward = True
    node_name = "BinaryCrossEntropyBackward0"
    label = "binary_cross_entropy"
    rule = "∂/∂p = w(p - t)/max(p(1 - p), 1e-12), ∂/∂t = -w logit(p), each divided by n for 'mean'"

    @staticmethod
    def forward(ctx, p, t, weight, reduction):
        from .reduce import Mean, Sum

        xp = array_module(p)
        ctx.save_for_backward(p, t)
        ctx.weight, ctx.reduction = weight, reduction
        with np.errstate(divide="ignore"):
            log_p = xp.maximum(xp.log(p), -100.0)
            log_q = xp.maximum(xp.log1p(-p), -100.0)
        loss = (-(t * log_p + (1 - t) * log_q)).astype(p.dtype, copy=False)
        if weight is not None:  # torch weighs the loss in place: in the input's dtype
            loss = (loss * weight).astype(p.dtype, copy=False)
        if reduction == "none":
            return loss
        scratch = type("_Scratch", (), {})()  # the reductions' forward keep their notes on a ctx
        dims = tuple(range(loss.ndim))
        return Mean.forward(scratch, loss, dims, False) if reduction == "mean" else Sum.forward(
            scratch, loss, dims, False, None)

    @staticmethod
    def backward(ctx, grad):
        # d/dp = g (p - t) / max((1 - p) p, 1e-12);  d/dt = -g logit(p); each times w, over n for 'mean'
        from .special_functions import logit

        p, t = ctx.saved_values
        grad_p = grad_t = None
        if ctx.needs_input_grad[0]:
            grad_p = _BinaryCrossEntropyBackward.apply(grad, p, t, weight=ctx.weight, reduction=ctx.reduction)
        if ctx.needs_input_grad[1]:
            grad_t = _weighted_reduced(-logit(p) * grad, ctx.weight, ctx.reduction)
        return grad_p, grad_t


class _BinaryCrossEntropyBackward(Function):
    """binary_cross_entropy's input gradient ``g (p - t) / max(p (1 - p), EPSILON)`` (times the
    weight, over the count for 'mean'), differentiated by torch's own double-backward formulas
    rather than as this expression: they add a double 1e-12 to ``p`` and ``1 - p`` instead of
    clamping, and clamp the target's denominator at a double 1e-12; each weighs and divides last."""

    _array_forward = True
    node_name = "BinaryCrossEntropyBackwardBackward0"
    label = "binary_cross_entropy_backward"
    rule = ("∂/∂g = (p - t)/((p + ε)(1 - p + ε)), ∂/∂p = g (p² - 2pt + t)/((p + ε)²(1 - p + ε)²), "
            "∂/∂t = -g/max((1 - p) p, ε), ε = 1e-12")
    formula = None

    @staticmethod
    def forward(ctx, grad, p, t, weight=None, reduction="none"):
        ctx.save_for_backward(grad, p, t)
        ctx.weight, ctx.reduction = weight, reduction
        # the kernel's ``grad * (p - t) / max((1 - p) p, EPSILON)``, then torch's in-place mul_(weight)
        # and div_(numel): in p's dtype
        out = grad * (p - t) / array_module(p).maximum(p * (1 - p), p.dtype.type(_LOSS_EPSILON))
        if weight is not None:
            out = (out * weight).astype(p.dtype, copy=False)
        return out / p.dtype.type(p.size) if reduction == "mean" else out

    @staticmethod
    def backward(ctx, grad_grad):
        grad, p, t = ctx.saved_values
        weight, reduction = ctx.weight, ctx.reduction
        eps = 1e-12  # FunctionsManual's binary_cross_entropy_double_backward*: a double
        d_grad = d_p = d_t = None
        if ctx.needs_input_grad[0]:
            d_grad = _weighted_reduced((p - t) / ((p + eps) * (1 - p + eps)) * grad_grad, weight, reduction)
            if tuple(d_grad.shape) != tuple(grad.shape):  # a reduced loss's 0-d gradient
                d_grad = d_grad.sum_to_size(grad.shape)
        if ctx.needs_input_grad[1]:
            d_p = _weighted_reduced((p * p - 2 * p * t + t) / ((p + eps) ** 2 * (1 - p + eps) ** 2)
                                    * (grad_grad * grad), weight, reduction)
        if ctx.needs_input_grad[2]:
            d_t = -grad_grad * grad
            if weight is not None:
                d_t = _in_place_dtype(d_t * Tensor._make(weight), d_t.dtype)
            d_t = d_t / ew.clamp((1 - p) * p, min=eps)
            if reduction == "mean":
                d_t = ew.DivNumber.apply(d_t, number=d_t.numel())
        return d_grad, d_p, d_t


def _size(t: Tensor) -> str:
    return f"torch.Size({list(t.shape)})"


def _warn_if_target_size_differs(input, target) -> None:
    """torch's UserWarning, before anything else, for a regression loss (mse, l1, smooth l1, huber)
    whose target broadcasts against the input: (N, 1) predictions against (N,) targets give an
    (N, N) loss, a classic silent bug. Sizes are read as torch's Python code reads them, so a target
    or input that is no tensor fails with its AttributeError (an int has no attribute 'size')."""
    if not (target.size() == input.size()):
        import warnings

        warnings.warn(f"Using a target size ({_size(target)}) that is different to the input size ({_size(input)}). "
                      "This will likely lead to incorrect results due to broadcasting. Please ensure they have the "
                      "same size.", UserWarning, stacklevel=ew.user_stacklevel())


def _bce_with_logits_aten(input, target, weight=None, pos_weight=None, reduction=1):
    """aten.binary_cross_entropy_with_logits's signature (the reduction an enum) for a wrapper's handler."""
    return binary_cross_entropy_with_logits(input, target, weight, reduction=_REDUCTIONS[reduction],
                                            pos_weight=pos_weight)


@honours_legacy_flags
@cpu_autocast_policy("float32")
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """F.binary_cross_entropy_with_logits: ``-(p t log s(x) + (1 - t) log(1 - s(x)))`` stably."""
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({_size(target)}) must be the same as input size ({_size(input)})")
    # torch's F passes the weights positionally to its ATen op, whose parser refuses a number or a list
    _check_tensor(weight, "binary_cross_entropy_with_logits", "weight", 3, optional=True)
    _check_tensor(pos_weight, "binary_cross_entropy_with_logits", "pos_weight", 4, optional=True)
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise NotImplementedError(f"\"log_sigmoid_cpu\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    # torch builds the loss in place on (1 - target), so it takes the target's dtype, each step
    # rounded to it; the pos_weight term is multiplied in place into log σ(x), in the input's dtype
    loss_dtype = target.dtype
    if loss_dtype == _dtype.bool:  # (torch's 1 - target meets a bool target first)
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if not loss_dtype.is_floating_point:
        raise RuntimeError(f"result type {_dtype.scalar_name(_dtype.result_type(target, input))} can't be cast to "
                           f"the desired output type {_dtype.scalar_name(loss_dtype)}")
    # torch has no gradient for the weights
    _check_not_differentiated(weight, "binary_cross_entropy_with_logits", "weight")
    _check_not_differentiated(pos_weight, "binary_cross_entropy_with_logits", "pos_weight")
    if pos_weight is not None:  # torch's error for (pos_weight - 1) * target, before any work
        try:
            grown = np.broadcast_shapes(pos_weight._data.shape, target._data.shape)
        except ValueError as error:
            raise _function.broadcast_error(error, (pos_weight._data, target._data)) from None
        _check_not_grown(target.shape, grown)
    if weight is not None:  # torch multiplies the weight into the loss in place
        try:
            _check_not_grown(input.shape, np.broadcast_shapes(input._data.shape, weight._data.shape))
        except ValueError:  # not broadcastable: the product below raises torch's error
            pass
    if _function.active_dispatch is not None:  # (pos_weight is read from its array: a wrapper's handler)
        made = _function.argument_dispatch("binary_cross_entropy_with_logits", _bce_with_logits_aten,
                                           (input, target, weight, pos_weight, _REDUCTIONS.index(reduction)), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    loss = _LogitCrossEntropyTerms.apply(input, target, loss_dtype=loss_dtype.np,
                                         pos_weight=None if pos_weight is None else pos_weight._data)
    if weight is not None:
        loss = _in_place_dtype(loss * weight, loss_dtype)
    return name_node(_reduce(loss, reduction), "BinaryCrossEntropyWithLogitsBackward0",
                     label="binary_cross_entropy_with_logits", saved=_BCE_WITH_LOGITS_SAVED,
                     kept={"self": input, "target": target, "reduction": _REDUCTIONS.index(reduction),
                           "weight": weight, "pos_weight": pos_weight})


# ---------------------------------------------------------------- divergences and others
@cpu_autocast_policy("float32")
def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """F.kl_div with ``input`` = log-probabilities: ``target (log target - input)``, 0 where target is 0."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":  # torch's warning, given only when no legacy flag chose the mean
        import warnings

        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=ew.user_stacklevel())
    _check_reduction(reduction, _REDUCTIONS + ("batchmean",))
    if not (input.dtype.is_floating_point or input.dtype.is_complex) or not (
            target.dtype.is_floating_point or target.dtype.is_complex):
        raise RuntimeError("kl_div: Integral inputs not supported.")
    if check_bool(log_target, "kl_div", "log_target"):
        loss = ew.exp(target) * (target - input)
    else:
        loss = ew.xlogy(target, target) - target * input
    if reduction == "batchmean":
        if input.dim() == 0:
            return loss.sum()
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


@honours_legacy_flags
@cpu_autocast_policy("float32")
def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    """F.poisson_nll_loss (Stirling term added where target > 1 when ``full``)."""
    if not isinstance(reduction, str):  # torch's message concatenates it: a TypeError
        raise TypeError(f"poisson_nll_loss: reduction must be a str, got {type(reduction).__name__}")
    _check_reduction(reduction)
    log_input = check_bool(log_input, "poisson_nll_loss", "log_input")
    full = check_bool(full, "poisson_nll_loss", "full")
    # F.* pass these on to torch.* positionally: torch's refusals give their positions there
    eps = check_float(eps, "poisson_nll_loss", "eps", position=5)
    if log_input:
        loss = ew.exp(input) - target * input
    else:
        loss = input - target * ew.log(input + eps)
    if full:
        # differentiable in the target, and written as torch writes it: a target of 0 gets a NaN
        # gradient there too (0 * log 0 in the masked-out branch)
        stirling = target * ew.log(target) - target + 0.5 * ew.log(2 * np.pi * target)
        loss = loss + ew.where(target <= 1, ew.zeros_like_tensor(stirling), stirling)
    return _reduce(loss, reduction)


@honours_legacy_flags
@cpu_autocast_policy("float32")
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """F.margin_ranking_loss: ``max(0, -y (x1 - x2) + margin)``."""
    if not input1.dim() == input2.dim() == target.dim():
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: {input1.size()}, input2: {input2.size()}, target: {target.size()} ")
    _check_reduction(reduction)
    # torch.margin_ranking_loss(input1, input2, target, margin, ...) reads margin as a double: a
    # tensor with dimensions, or one that requires grad, is refused
    margin = check_float(margin, "margin_ranking_loss", "margin", position=4)
    return _reduce(_margin_ranking(input1, input2, target, margin), reduction)


def _margin_ranking(input1: Tensor, input2: Tensor, target: Tensor, margin: float) -> Tensor:
    """The unreduced margin ranking loss, its operands broadcast (ATen's kernel; the rank check is
    nn.functional's)."""
    return ew.clamp_min(-target * (input1 - input2) + margin, 0.0)


@honours_legacy_flags
@cpu_autocast_policy("float32")
def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """F.soft_margin_loss: ``log(1 + exp(-y x))``, computed stably; the target gets no gradient
    (torch's kernel has none and refuses a target that requires grad)."""
    _check_reduction(reduction)
    _check_not_differentiated(target, "soft_margin_loss", "target")
    if _one_pointwise_node(input, target):
        return _SoftMarginLoss.apply(input, target, reduction=reduction, threshold=None)
    # torch computes -x·y into a tensor of the input's dtype, then log(1 + exp(·)) there
    product = _in_input_dtype(input * target, input)  # input first: torch names it "tensor a" in a shape error
    if product.shape != input.shape:
        # torch's kernel multiplies the target into a tensor of the input's shape in place: a target
        # that broadcasts the input to a larger shape is refused, not broadcast
        raise broadcast_refusal(input.shape, product.shape)
    if not (product.dtype.is_floating_point or product.dtype.is_complex):  # (exp_ in place, in x's dtype)
        raise RuntimeError(f"result type {_dtype.scalar_name(_dtype.get_default_dtype())} can't be cast to the "
                           f"desired output type {_dtype.scalar_name(product.dtype)}")
    if product.dtype is _dtype.float16 or product.dtype is _dtype.bfloat16:
        # torch's kernel is log1p(exp(-x·y)), each step rounded to the dtype: float16's exp overflows
        # to inf past 11.09 (the loss inf, its gradient nan), which the stable form does not
        loss = (-product).exp().log1p()
    else:
        loss = -_LogSigmoid.apply(product)
    return name_node(_reduce(loss, reduction), "SoftMarginLossBackward0", label="soft_margin_loss")


@honours_legacy_flags
@cpu_autocast_policy("float32")
def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """F.hinge_embedding_loss: x where y == 1, max(0, margin - x) where y == -1 (both where y is
    neither, as torch's formula adds the two terms)."""
    _check_reduction(reduction)
    margin = check_float(margin, "hinge_embedding_loss", "margin", position=3)
    zero = ew.zeros_like_tensor(input)
    # torch's margin - x fills a tensor like x with the margin first: in x's dtype (truncated for an
    # integer x, whose loss then stays an integer one)
    margin_like = _in_place_dtype(zero + margin, input.dtype)
    pos = ew.where(target != -1, input, zero)
    neg = ew.where(target != 1, ew.clamp_min(margin_like - input, 0), zero)
    return _reduce(neg + pos, reduction)


@honours_legacy_flags
@cpu_autocast_policy("float32")
def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """F.cosine_embedding_loss: 1 - cos where y == 1, max(0, cos - margin) where y == -1."""
    _check_reduction(reduction)
    for position, (name, value) in enumerate((("input1", input1), ("input2", input2), ("target", target)), 1):
        _check_tensor(value, "cosine_embedding_loss", name, position)
    margin = check_float(margin, "cosine_embedding_loss", "margin", position=4)
    eps = _LOSS_EPSILON
    dim = input1.dim() - 1
    prod = _sum(input1 * input2, dim)
    mag1 = _sum(input1 * input1, dim) + eps
    mag2 = _sum(input2 * input2, dim) + eps
    cos = prod / ew.sqrt(mag1 * mag2)
    zero = ew.zeros_like_tensor(cos)
    pos = ew.where(target == 1, 1 - cos, zero)
    neg = ew.where(target == -1, ew.clamp_min(cos - margin, 0.0), zero)
    return _reduce(pos + neg, reduction)


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *, linear_bias: Tensor | None = None,
                         weight: Tensor | None = None, reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None) -> Tensor:
    """F.linear_cross_entropy: ``cross_entropy(linear(input, linear_weight, linear_bias), target)``, with
    the logits shaped ``(N, C, d_1, ..., d_K)`` by a ``(C, d_1, ..., d_K, in_features)`` weight.
    ``ignore_index`` None means -100 for class indices and is refused for class probabilities.
    ``options`` (a LinearCrossEntropyOptions) asks torch for its batch-chunked kernel, which saves
    memory; chainrule computes the same loss and gradients by this reference path."""
    from .linear import linear

    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}")
    if linear_weight.dim() < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.dim()}")
    batch, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError("expected equal input and linear_weight last dimensions (in_features), got "
                           f"{input.shape[-1]} and {linear_weight.shape[-1]}, respectively")
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(num_classes, *out_features)}, got "
                           f"{tuple(linear_bias.shape)}")
    if out_features and not batch:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} "
                           f"requires batched input, (N, {in_features}), got unbatched input with shape "
                           f"{tuple(input.shape)}")
    logits_shape = (*batch, num_classes, *out_features)
    if tuple(target.shape) == logits_shape and ignore_index is not None:  # class probabilities
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    width = num_classes
    for size in out_features:
        width *= size
    if out_features:
        linear_weight = linear_weight.reshape(width, in_features)
        linear_bias = None if linear_bias is None else linear_bias.reshape(width)
    logits = linear(input, linear_weight, linear_bias).reshape(logits_shape)
    return cross_entropy(logits, target, weight=weight, reduction=reduction,
                         ignore_index=-100 if ignore_index is None else ignore_index,
                         label_smoothing=label_smoothing)
