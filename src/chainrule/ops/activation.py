"""Activation functions (torch.nn.functional semantics), each forward beside its derivative rule.

Edge policy, as torch: relu'(0) = 0, leaky_relu'(0) = negative_slope, hardtanh/relu6 pass no
gradient at their bounds, elu'(0) = alpha, shrink ops pass none on [-lambd, lambd]. Piecewise
rules select the gradient with one mask (an inf gradient where it is blocked gives 0, as torch);
smooth rules are written in chainrule ops on the saved input, so ``create_graph=True``
differentiates them again.

Names torch also has at top level (``torch.relu``, ``torch.selu``...) are in ``__all__``; every
function here is re-exported by ``chainrule.nn.functional``.
"""

from __future__ import annotations

import math
import sys
import weakref

import numpy as np

from .. import _dtype, _opmath, _vmap_frames
from .._backend import array_module
from ..autograd import function as _function
from ..autograd.function import Function, SavedValue, as_uint64, ctx_value, kept_value, name_node, saved
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor, _wrap_dim
from . import _cuda_kernels, _special, cpu_features
from ._arg_parser import check_int, check_number
from .elementwise import (
    LogSigmoidAdjoint,
    Sub,
    _exp_array,
    _float32_via_float64,
    _float_input,
    _log1p_array,
    _log_sigmoid_array,
    _log_sigmoid_grad_array,
    _pair,
    _sigmoid_array,
    erf,
    exp,
    float_kernel_input,
    refuse_kernel,
    sigmoid,
    sub,
    tanh,
    where,
)
from .memory_format import gradient_layout, iterator_layout, preserved_layout, row_major, unary_layout
from .second_order import depending_on

__all__ = ["relu", "selu", "celu", "prelu", "rrelu", "hardshrink", "threshold"]
__not_methods__ = {"selu", "celu", "rrelu", "threshold"}
# torch.hardshrink's and torch.threshold's out= (see _arg_parser.namespace_with_out); nn.functional.threshold has none
__out_functions__ = {"hardshrink": "same_elementwise", "threshold": "cast"}

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


_BITS_OF_SIZE = {2: np.uint16, 4: np.uint32, 8: np.uint64}  # (an unsigned integer as wide as a float)
_BOOL = np.dtype(np.bool_)


def _mask_mul(grad: Tensor, mask: np.ndarray, saved: np.ndarray | None = None, saved_first: bool = False) -> Tensor:
    """``grad`` where ``mask`` else 0, a select as torch's threshold_backward: an inf or NaN gradient
    at a blocked position gives 0 there, not the NaN of ``inf * 0``. ``saved``: the array torch's
    backward kernel reads beside the gradient, which with it decides the result's layout; the kernel's
    operand order is (grad, saved), or (saved, grad) with ``saved_first`` (threshold_backward's). Without
    ``saved``, NumPy's layout."""
    if grad._requires_grad:
        return where(Tensor._make(mask), grad, 0)
    g = grad._data
    xp = array_module(g)
    if xp is not np:
        out = xp.where(mask, g, g.dtype.type(0))
    elif type(g) is np.ndarray and g.dtype.itemsize in _BITS_OF_SIZE and mask.dtype == _BOOL:
        # the select as an integer multiply of the gradient's bits by the mask: each element's bits kept
        # or all cleared (+0, as torch's select gives where a float multiply gave -0 for a negative
        # gradient and NaN for inf or NaN); several times faster than np.where on a random mask, and
        # faster than a float multiply, which needed a pass looking for NaN
        out = np.multiply(g.view(_BITS_OF_SIZE[g.dtype.itemsize]), mask).view(g.dtype)
    else:
        out = np.where(mask, g, g.dtype.type(0))
    if out.ndim > 1 and 1 in out.shape and saved is not None:  # (ndim first: a vector's costs no shape tuple)
        out = iterator_layout(out, saved, g) if saved_first else gradient_layout(out, g, saved)
    return Tensor._make(out)


def _scaled_mask(grad: Tensor, factor: np.ndarray, saved: np.ndarray, keep: np.ndarray | None = None,
                 saved_first: bool = False) -> Tensor:
    """``grad * factor`` for a constant array factor (a piecewise-constant derivative); with ``keep``,
    +0 outside it whatever the gradient (torch selects there, so inf * 0 gives 0, not NaN). ``saved``
    and ``saved_first``: the array torch's backward kernel reads beside the gradient, and its place
    (``_mask_mul``)."""
    if grad._requires_grad:
        scaled = grad * Tensor._make(factor)
        return scaled if keep is None else where(Tensor._make(keep), scaled, 0)
    out = grad._data * factor
    if keep is not None:  # (a select, as torch's: +0 outside, where a negative gradient times 0 is -0)
        out = array_module(out).where(keep, out, out.dtype.type(0))
    if out.ndim > 1 and 1 in out.shape:
        out = iterator_layout(out, saved, grad._data) if saved_first else gradient_layout(out, grad._data, saved)
    return Tensor._make(out)


def _kernel_layout(result: Tensor, grad: Tensor, saved: Tensor) -> Tensor:
    """``result``, a plain backward's gradient (computed on the arrays, or by Tensor ops that recorded
    nothing), laid out as torch's one backward kernel over (grad, saved) lays out its output; NumPy's
    layout and the ops' can differ from it only on a size-1 dim (``gradient_layout``). A recorded
    result (create_graph) is left as its ops made it."""
    out = result._data
    if out.ndim > 1 and 1 in out.shape and not result._requires_grad:
        laid_out = gradient_layout(out, grad._data, saved._data)
        if laid_out is not out:
            return Tensor._make(laid_out)
    return result


def _run_inplace(input: Tensor, fn, *args, **kwargs) -> Tensor:
    from .._methods import _inplace

    return _inplace(input, fn, *args, **kwargs)


def _run_inplace_named(input: Tensor, fn, *args, node: str, saved_names: dict) -> Tensor:
    """``_run_inplace`` for an op whose in-place kernel torch records as its own overload
    (``elu_``: EluBackward1, saving the result where EluBackward0 saves the input). A write into
    a view keeps its CopySlices node, as in torch."""
    result = _run_inplace(input, fn, *args)
    if result.grad_fn is not None and type(result.grad_fn).__name__ == node[:-1] + "0":
        name_node(result, node, saved=saved_names)
        # torch's node keeps the tensor written (its backward's is_result form, which a dispatch mode sees); held
        # weakly, as the tensor holds the node
        result.grad_fn.written = weakref.ref(result)
    return result


# ---------------------------------------------------------------- piecewise-linear
class Relu(Function):
    label = "relu"
    rule = "passes the gradient where a > 0, blocks it elsewhere (relu'(0) = 0)"
    formula = "relu({0})"
    _array_forward = True
    saved_attributes = {"_saved_result": saved(0)}  # torch's grad_fn._saved_* names

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        # (0 first: -0 is kept, as torch's clamp_min keeps it; maximum answers its second operand at equal ones)
        y = xp.maximum(x.dtype.type(0), x) if x.dtype != np.bool_ else x.copy()
        if not x.flags.c_contiguous:  # (torch's TensorIterator layout, not NumPy's: unary_layout)
            y = unary_layout(y, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        # relu'(x) = 0 where x <= 0 else 1 (0 at x = 0, and NaN passes the gradient, as torch); the
        # saved result is >= 0 or NaN, so "not <= 0" is "!= 0": one comparison, no inversion
        (y,) = ctx.saved_values
        if _function.tracing_ops:  # a vmap recording its ops sees the mask made by an op (_vmap_batched)
            return depending_on(where(y != 0, grad, 0), y, node="ThresholdBackwardBackward0")
        return depending_on(_mask_mul(grad, y._data != 0, y._data, saved_first=True), y, node="ThresholdBackwardBackward0")


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """torch.relu / F.relu: max(x, 0); relu'(0) = 0."""
    if input._data.dtype.kind in "cb":
        if input._data.dtype.kind == "b":
            raise RuntimeError("Boolean inputs not supported for relu")
        raise NotImplementedError("clamp is not supported for complex types")  # torch's relu is clamp_min
    if inplace:
        return _run_inplace(input, relu)
    if getattr(input, "is_sparse", False):
        return input.relu()  # sparse COO: each entry's relu, sparse, as torch's
    return Relu.apply(input)


class LeakyRelu(Function):
    label = "leaky_relu"
    rule = "passes the gradient where a > 0, scales it by the slope elsewhere"
    formula = "leaky_relu({0})"
    _array_forward = True
    saved_attributes = {"_saved_negative_slope": ctx_value("negative_slope"), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, negative_slope, second_order_node="LeakyReluBackwardBackward0", refuses_backward=False,
                contiguous=False):
        xp = array_module(x)
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        ctx.second_order_node = second_order_node  # eval rrelu's is torch's RreluWithNoiseBackwardBackward0
        ctx.refuses_backward = refuses_backward
        y = xp.where(x > 0, x, x * x.dtype.type(negative_slope))
        if contiguous:  # eval rrelu's: written into torch's contiguous empty_like
            return row_major(y)
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.refuses_backward:
            raise RuntimeError(_IN_PLACE_NEGATIVE_SLOPE)
        # d = 1 where x > 0 else negative_slope (negative_slope at x = 0, as torch)
        xp = array_module(grad)
        (x,) = ctx.saved_values
        if _function.tracing_ops:  # a vmap recording its ops sees the mask made by an op (_vmap_batched)
            return depending_on(where(x > 0, grad, grad * ctx.negative_slope), x, node=ctx.second_order_node)
        arr = x._data
        factor = xp.where(arr > 0, arr.dtype.type(1), arr.dtype.type(ctx.negative_slope))
        # (torch's leaky_relu_backward reads (x, grad), in that order)
        return depending_on(_scaled_mask(grad, factor, arr, saved_first=True), x, node=ctx.second_order_node)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """F.leaky_relu: x if x > 0 else negative_slope * x."""
    negative_slope = check_number(negative_slope, "leaky_relu", "negative_slope")
    if inplace:
        return _run_inplace_named(input, leaky_relu if negative_slope >= 0 else _leaky_relu_refusing_backward,
                                  negative_slope, node="LeakyReluBackward1", saved_names=_IN_PLACE_SAVED["leaky_relu"])
    return LeakyRelu.apply(float_kernel_input(input, "leaky_relu_cpu"), negative_slope=float(negative_slope))


# torch's in-place leaky_relu (LeakyReluBackward1) takes its gradient from the result, which a negative slope
# leaves ambiguous: its backward refuses, in these words
_IN_PLACE_NEGATIVE_SLOPE = (
    "In-place leakyReLu backward calculation is triggered with a negative slope which is not supported. This is "
    "caused by calling in-place forward function with a negative slope, please call out-of-place version instead. "
    "File an issue at https://github.com/pytorch/pytorch if you do require supporting in-place leakRelu backward "
    "calculation with negative slope")


def _leaky_relu_refusing_backward(input: Tensor, negative_slope: float) -> Tensor:
    """leaky_relu_'s out-of-place step for a negative slope: the values, and a node whose backward refuses."""
    return LeakyRelu.apply(float_kernel_input(input, "leaky_relu_cpu"), negative_slope=float(negative_slope),
                           refuses_backward=True)


_leaky_relu_refusing_backward.__name__ = "leaky_relu"  # (the op a dispatch mode sees)


class Hardtanh(Function):
    label = "hardtanh"
    rule = "passes the gradient inside (min, max), 0 outside"
    _array_forward = True
    saved_attributes = {"_saved_min_val": ctx_value("bounds", lambda bounds: bounds[0]),
                        "_saved_max_val": ctx_value("bounds", lambda bounds: bounds[1]), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, min_val, max_val):
        xp = array_module(x)
        ctx.save_for_backward(x)
        ctx.bounds = (min_val, max_val)
        y = xp.clip(x, min_val, max_val).astype(x.dtype, copy=False)
        if y.ndim > 1 and (not x.flags.c_contiguous or 1 in y.shape):
            y = preserved_layout(y, x)  # torch clamps into empty_like(x): x's own strides where dense
        return y

    @staticmethod
    def backward(ctx, grad):
        # d = 1 strictly inside (min_val, max_val), 0 elsewhere (bounds included, as torch)
        (x,) = ctx.saved_values
        low, high = ctx.bounds
        if _function.tracing_ops:  # a vmap recording its ops sees the mask made by an op (_vmap_batched)
            return depending_on(where((x > low) & (x < high), grad, 0), x, node="HardtanhBackwardBackward0")
        arr = x._data
        return depending_on(_mask_mul(grad, (arr > low) & (arr < high), arr), x, node="HardtanhBackwardBackward0")


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """F.hardtanh: clamp(x, min_val, max_val) with no gradient at the bounds."""
    # torch's F.hardtanh compares the bounds in Python before its op parses them (a str: Python's TypeError)
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _aten_hardtanh(input, min_val, max_val, inplace)


def _aten_hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """torch's op hardtanh / hardtanh_ (F.hardtanh_ is the op itself): no order check, so reversed bounds
    clamp every element to max_val, with no gradient."""
    min_val = check_number(min_val, "hardtanh_" if inplace else "hardtanh", "min_val")
    max_val = check_number(max_val, "hardtanh_" if inplace else "hardtanh", "max_val")
    if inplace:
        # (the out-of-place op a dispatch mode sees is hardtanh, by its __name__)
        return _run_inplace(input, hardtanh if min_val <= max_val else _aten_hardtanh, min_val, max_val)
    if isinstance(input, Tensor) and input.dtype is _dtype.bool:
        raise RuntimeError("Bool inputs not supported for hardtanh")
    if isinstance(input, Tensor) and input._data.dtype.kind == "c":
        raise NotImplementedError("clamp is not supported for complex types")
    if isinstance(input, Tensor) and input.dtype._category == 1:
        # torch clamps an integer tensor in its own dtype, the bounds converted through int64
        min_val, max_val = (_dtype.checked_scalar(v, _dtype.int64) for v in (min_val, max_val))
        _dtype.refuse_wide_unsigned("activation.Hardtanh", input._data)
        if input.dtype.np.kind == "u" and (min_val < 0 or max_val < 0):
            raise RuntimeError("cannot do hardtanh on an unsigned type with negative limits")
    else:
        input = _float_input(input)
    min_val, max_val = _dtype.checked_scalar(min_val, input.dtype), _dtype.checked_scalar(max_val, input.dtype)
    return Hardtanh.apply(input, min_val=min_val, max_val=max_val)


_aten_hardtanh.__name__ = "hardtanh"


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """F.relu6: min(max(x, 0), 6) (torch computes it as hardtanh(x, 0, 6))."""
    return hardtanh(input, 0, 6, inplace)  # (ints, as torch's node reports them)


class Threshold(Function):
    label = "threshold"
    rule = "passes the gradient where a > threshold, 0 elsewhere"
    saved_attributes = {"_saved_self": saved(0), "_saved_threshold": ctx_value("threshold")}
    _array_forward = True

    @staticmethod
    def forward(ctx, x, threshold, value):
        xp = array_module(x)
        ctx.save_for_backward(x)
        ctx.threshold = threshold
        # torch's kernel: x <= threshold ? value : x, so a NaN threshold keeps every x
        y = xp.where(x <= threshold, x.dtype.type(value), x)
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        # d = 0 where x <= threshold else 1
        (x,) = ctx.saved_values
        return depending_on(_mask_mul(grad, ~(x._data <= ctx.threshold), x._data, saved_first=True), x, node="ThresholdBackwardBackward0")


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """F.threshold / torch.threshold: x if x > threshold else value (x where threshold is NaN, as torch)."""
    threshold = check_number(threshold, "threshold", "threshold")
    value = check_number(value, "threshold", "value")
    # torch compares in the dtype's compute type (float32 for float16/bfloat16) and writes value
    # in the tensor's own; each refuses a number that overflows it
    if input._data.dtype.kind in "bc":
        refuse_kernel(input, "threshold_cpu")
    threshold = _dtype.checked_scalar(threshold, _opmath.fused_compute_dtype(input.dtype) or input.dtype)
    value = _dtype.checked_scalar(value, input.dtype)
    if inplace:
        return _run_inplace_named(input, lambda t: Threshold.apply(t, threshold=threshold, value=value),
                                  node="ThresholdBackward1", saved_names=Threshold.saved_attributes)
    return Threshold.apply(input, threshold=threshold, value=value)


def _check_lambd(lambd: float, input: Tensor) -> None:
    largest = float(_dtype.finfo_of(input._data.dtype).max)  # torch's bound is the input dtype's largest value
    if not 0 <= lambd <= largest:  # NaN and infinity too
        raise RuntimeError(
            f"lambda must be in range [0, {largest:g}] for input dtype "
            f"{_dtype.scalar_name(input.dtype)}, but found {lambd:g}"
        )


class Hardshrink(Function):
    label = "hardshrink"
    rule = "passes the gradient where |a| > λ, 0 elsewhere"
    _array_forward = True
    # torch keeps the input (version-checked, as here) and λ; the rule reads the mask beside it
    saved_attributes = {"_saved_lambd": ctx_value("lambd"), "_saved_self": saved(1)}

    @staticmethod
    def forward(ctx, x, lambd):
        xp = array_module(x)
        # the gradient flows where |x| > lambd: not at a NaN x nor for a NaN lambd (torch's vectorised
        # backward, the one tensors of more than a few elements take)
        keep = (x < -lambd) | (x > lambd)
        ctx.save_for_backward(keep, x)
        ctx.lambd = lambd
        # torch's forward zeroes only inside [-lambd, lambd]: a NaN lambd keeps every x, a NaN x propagates
        y = xp.where((x >= -lambd) & (x <= lambd), x.dtype.type(0), x)
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        # d = 1 where |x| > lambd else 0
        keep, x = ctx.saved_values
        node = type(ctx).__name__.removesuffix("0") + "Backward0"
        if _function.tracing_ops:  # a vmap recording its ops sees the mask made by ops from x (_vmap_batched)
            lambd = ctx.lambd
            return depending_on(where((x < -lambd) | (x > lambd), grad, 0), x, node=node)
        return depending_on(_mask_mul(grad, keep._data, x._data), x, node=node)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """torch.hardshrink: x where |x| > lambd else 0 (torch checks no range of lambd here)."""
    input = float_kernel_input(input, "hardshrink_cpu")
    lambd = check_number(lambd, "hardshrink", "lambd")
    return Hardshrink.apply(input, lambd=lambd)


class Softshrink(Hardshrink):
    """Same mask and rule as Hardshrink (slope 1 outside [-lambd, lambd]); shifted values."""

    label = "softshrink"
    rule = "passes the gradient where |a| > λ, 0 elsewhere"

    @staticmethod
    def forward(ctx, x, lambd):
        xp = array_module(x)
        keep = (x < -lambd) | (x > lambd)
        ctx.save_for_backward(keep, x)
        ctx.lambd = lambd
        lam = x.dtype.type(lambd)
        y = xp.where(x > lambd, x - lam, xp.where(x < -lambd, x + lam, x * 0 + 0))  # x * 0 keeps NaN; + 0: torch's +0 for a negative x
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """F.softshrink: x - lambd above lambd, x + lambd below -lambd, 0 in between."""
    input = float_kernel_input(input, "softshrink_check")
    lambd = check_number(lambd, "softshrink", "lambd")
    _check_lambd(lambd, input)
    return Softshrink.apply(input, lambd=lambd)


class Prelu(Function):
    _array_forward = True
    node_name = "PreluKernelBackward0"
    label = "prelu"
    rule = "∂/∂a = 1 where a > 0, the slope w elsewhere; ∂/∂w = a where a ≤ 0, 0 elsewhere"
    saved_attributes = {"_saved_self": saved(0), "_saved_weight": saved(1)}

    @staticmethod
    def forward(ctx, x, weight):
        xp = array_module(x)
        ctx.save_for_backward(x, weight)
        return xp.where(x > 0, x, weight * x)

    @staticmethod
    def backward(ctx, grad):
        # d/dx = 1 where x > 0 else w;  d/dw = x where x <= 0 else 0
        x, weight = ctx.saved_values
        positive = Tensor._make(x._data > 0)
        grad_x = where(positive, grad, grad * weight) if ctx.needs_input_grad[0] else None
        grad_w = where(positive, 0.0, grad * x) if ctx.needs_input_grad[1] else None
        # torch's PreluKernelBackwardBackward0 takes (grad, self, weight): ∂grad_x/∂x = 0 is an edge too
        return depending_on(grad_x, x, node="PreluKernelBackwardBackward0"), grad_w


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """torch.prelu: x if x > 0 else weight * x, one weight per channel (dim 1) or one shared."""
    if input.dtype is not weight.dtype:  # torch's first check
        raise RuntimeError(f"prelu: Type promoting not supported. Got {_dtype.scalar_name(input.dtype)} and "
                           f"{_dtype.scalar_name(weight.dtype)}")
    n = weight._data.size
    if input._data.ndim == 0 and n != 1:  # (a 0-d input with one shared weight runs, as torch's)
        raise RuntimeError("Not allow zero-dim input tensor.")
    channels = input._data.shape[1] if input._data.ndim >= 2 else 1
    if n != 1 and n != channels:
        raise RuntimeError(
            f"Mismatch of parameter numbers and input channel size. Found parameter numbers = {n} "
            f"and channel size = {channels}."
        )
    if weight._data.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight._data.ndim}")
    if input._data.dtype.kind in "biuc":
        refuse_kernel(input, "prelu_cpu")
    # torch's prelu views the weight as (1, C, 1, ...) (() for a 0-d input, as given for a 1-d one):
    # its node saves that view as _saved_weight
    ndim = input._data.ndim
    if ndim == 0:
        w = weight.reshape(())
    elif ndim == 1:
        w = weight
    else:
        w = weight.reshape((1, n) + (1,) * (ndim - 2))
    return Prelu.apply(input, w)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          generator=None) -> Tensor:
    """torch.rrelu: leaky relu with a slope drawn from U(lower, upper) per element when
    training, and the fixed slope (lower + upper) / 2 in eval mode. Its fifth positional is the
    generator; nn.functional.rrelu takes ``inplace`` there (``randomized_leaky_relu`` serves both)."""
    return randomized_leaky_relu(input, lower, upper, training, False, generator)


def randomized_leaky_relu(input: Tensor, lower: float, upper: float, training: bool, inplace: bool,
                          generator=None) -> Tensor:
    """rrelu's body, out of place or in place, the slopes drawn from ``generator``'s stream."""
    if _vmap_frames._frames:
        _vmap_frames.refuse_inside("aten::rrelu_" if inplace else "aten::rrelu")
    xp = array_module(input)
    lower, upper = check_number(lower, "rrelu", "lower"), check_number(upper, "rrelu", "upper")
    for name, bound in (("lower", lower), ("upper", upper)):
        if not math.isfinite(bound):
            raise RuntimeError(f"rrelu: {name} bound must be finite, got {bound}")
    if lower > upper:  # torch checks it in eval mode too
        raise RuntimeError("Lower bound should be less than or equal to the upper bound")  # (torch names no bounds)
    if not training:
        if _function.active_dispatch is not None:
            shown = _eval_rrelu_shown(input, lower, upper, inplace)
            if shown is not None:
                return shown
        if inplace:
            out = leaky_relu(input, (lower + upper) / 2, inplace)
            # torch's eval rrelu_ is its own in-place node (a write into a view stays CopySlices)
            in_place_node = type(out.grad_fn).__name__ == "LeakyReluBackward1"
            return name_node(out, "RreluWithNoiseBackward1", label="rrelu") if in_place_node else out
        out = LeakyRelu.apply(float_kernel_input(input, "leaky_relu_cpu"), negative_slope=float((lower + upper) / 2),
                              second_order_node="RreluWithNoiseBackwardBackward0", contiguous=True)
        return name_node(out, "RreluWithNoiseBackward0", label="rrelu", saved=_RRELU_EVAL_SAVED,
                         kept={"lower": lower, "upper": upper})
    x = float_kernel_input(input, "rrelu_with_noise_out_cpu")
    if xp is np and x._data.dtype == np.float16:  # torch's CPU kernel has no half version
        raise NotImplementedError("\"rrelu_with_noise_out_cpu\" not implemented for 'Half'")
    slopes = _rrelu_slopes(x._data, lower, upper, xp, generator)
    if slopes.dtype != x._data.dtype:  # half precision: the product in float32, rounded once
        return _run_inplace(input, lambda t: (t.float() * Tensor._make(slopes)).to(t.dtype)) if inplace else (
            (x.float() * Tensor._make(slopes)).to(x.dtype))
    if inplace:
        return _run_inplace_named(input, lambda t: RreluWithNoise.apply(t, slopes=slopes, bounds=(lower, upper)),
                                  node="RreluWithNoiseBackward1", saved_names={})
    return RreluWithNoise.apply(x, slopes=slopes, bounds=(lower, upper))


def _eval_rrelu_shown(input: Tensor, lower: float, upper: float, inplace: bool) -> Tensor | None:
    """Eval rrelu as a dispatch mode sees torch's: its noise made by empty_like (unread in eval mode), then
    rrelu_with_noise(input, noise, lower, upper) or its in-place form; the node keeps the noise and bounds for its
    backward's call (rrelu_with_noise_backward). None where no mode answers the noise's empty_like."""
    noise = _function.factory_dispatch("empty_like", _rrelu_noise, (input,),
                                       {"memory_format": sys.modules["chainrule"].contiguous_format})
    if noise is _function.RUN_UNDISPATCHED:
        return None
    if inplace:
        out = _run_inplace_named(input, _rrelu_with_noise, noise, lower, upper, node="LeakyReluBackward1",
                                 saved_names=_IN_PLACE_SAVED["leaky_relu"])
        node = "RreluWithNoiseBackward1" if type(out.grad_fn).__name__ == "LeakyReluBackward1" else None
    else:
        x = float_kernel_input(input, "leaky_relu_cpu")
        _function.note_given(LeakyRelu, x, rrelu_call=(noise, lower, upper))
        out = _rrelu_with_noise(x, noise, lower, upper)
        node = "RreluWithNoiseBackward0"
    if node is None or out.grad_fn is None:
        return out
    out = name_node(out, node, label="rrelu")
    out.grad_fn.rrelu_call = (noise, lower, upper)
    return out


def _rrelu_noise(input: Tensor, *, memory_format=None) -> Tensor:
    """aten.empty_like's func for eval rrelu's noise (which eval mode never reads): zeros, contiguous."""
    return Tensor._make(array_module(input).zeros(tuple(input.shape), dtype=input._data.dtype))


def _rrelu_with_noise(input: Tensor, noise: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
                      training: bool = False) -> Tensor:
    """torch's rrelu_with_noise in eval mode (its noise unread): leaky_relu by the bounds' mean."""
    return LeakyRelu.apply(float_kernel_input(input, "leaky_relu_cpu"), negative_slope=float((lower + upper) / 2),
                           second_order_node="RreluWithNoiseBackwardBackward0", contiguous=True)


_rrelu_with_noise.__name__ = "rrelu_with_noise"  # (the op a dispatch mode sees)


class RreluWithNoise(Function):
    """Training rrelu: x times the slope drawn for it (1 where x > 0), one node as torch's."""

    label = "rrelu"
    rule = "scales the gradient by the slope drawn for each element (1 where a > 0)"
    formula = "rrelu({0})"
    _array_forward = True
    # torch's names: its noise is the slopes drawn
    saved_attributes = {"_saved_lower": SavedValue(lambda node: node.bounds[0]),
                        "_saved_noise": SavedValue(lambda node: Tensor._make(node.slopes), tensor=True),
                        "_saved_self": saved(0), "_saved_training": True,
                        "_saved_upper": SavedValue(lambda node: node.bounds[1])}

    @staticmethod
    def forward(ctx, x, slopes, bounds):
        ctx.save_for_backward(x)
        ctx.slopes = slopes
        ctx.bounds = bounds
        return row_major(x * slopes)  # torch's output: a contiguous empty_like

    @staticmethod
    def backward(ctx, grad):
        # d = the drawn slope; torch's backward takes the input, so a penalty's gradient keeps an edge to it
        return depending_on(_scaled_mask(grad, ctx.slopes, ctx.slopes, saved_first=True), *ctx.saved_values, node="RreluWithNoiseBackwardBackward0")


# torch's _saved_* of eval rrelu (a leaky relu of the mean slope); its noise, which eval mode never
# reads, is an empty_like of the input: zeros here
_RRELU_EVAL_SAVED = {"_saved_lower": kept_value("lower"),
                     "_saved_noise": SavedValue(lambda node: Tensor._make(
                         array_module(node.saved_values[0]._data).zeros_like(node.saved_values[0]._data)), tensor=True),
                     "_saved_self": saved(0), "_saved_training": False, "_saved_upper": kept_value("upper")}


def _rrelu_slopes(data, lower: float, upper: float, xp, generator=None):
    """Training rrelu's slope per element: 1 where x > 0 (or NaN), a draw from U(lower, upper) where
    x ≤ 0. On the CPU torch's draws: one double uniform per non-positive element, in order, with
    the bounds first rounded to the op's float type (float32 below float64), its value cast to it."""
    from .random import _rng

    op_type = np.float64 if data.dtype == np.float64 else np.float32
    with np.errstate(invalid="ignore"):
        non_positive = data <= 0  # NaN keeps slope 1 and draws nothing, as torch's loop
    if xp is not np:  # on the device: a draw for every element
        draws = _rng(generator, xp).uniform(lower, upper, data.shape).astype(op_type)
        return xp.where(non_positive, draws, op_type(1))
    slopes = np.ones(data.shape, dtype=op_type)
    low, high = float(op_type(lower)), float(op_type(upper))
    slopes[non_positive] = _rng(generator).unfused_uniform(low, high, int(np.count_nonzero(non_positive)))
    return slopes


# ---------------------------------------------------------------- exponential family
class Elu(Function):
    """scale * x for x > 0, scale * alpha * (exp(input_scale * x) - 1) otherwise (elu, selu, celu)."""

    label = "elu"
    rule = ("∂/∂a = s for a > 0, s·α·k·exp(k·a) otherwise (scale s and input scale k: 1 for elu, selu's "
            "constants for selu)")
    _array_forward = True
    saved_attributes = {"_saved_alpha": ctx_value("params", lambda params: params[0]),
                        "_saved_scale": ctx_value("params", lambda params: params[1]),
                        "_saved_input_scale": ctx_value("params", lambda params: params[2]), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale):
        xp = array_module(x)
        ctx.save_for_backward(x)
        ctx.params = (alpha, scale, input_scale)
        t = x.dtype.type
        # minimum(0, x) is x where x == 0 (minimum(x, 0) would be +0.0), so elu(±0.0) = ±0.0, as torch's
        # (expm1 rounded once from float64, as torch's vectorised one nearly always is: NumPy's float32
        # loop differed from elu's bits in 553 of 20,032 values, this in 109)
        negative = t(scale * alpha) * _expm1_array(xp.minimum(t(0), x) * t(input_scale))
        y = xp.where(x > 0, x * t(scale), negative)
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        # d = scale for x > 0, scale * alpha * input_scale * exp(input_scale * x) for x <= 0
        (x,) = ctx.saved_values
        alpha, scale, input_scale = ctx.params
        # (under a vmap recording its ops, the mask made by an op: _vmap_batched)
        positive = x > 0 if _function.tracing_ops else Tensor._make(x._data > 0)
        inner = where(positive, 0.0, x)
        negative = grad * (scale * alpha * input_scale) * exp(inner * input_scale)
        return _kernel_layout(where(positive, grad * scale, negative), grad, x)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """F.elu: x if x > 0 else alpha * (exp(x) - 1)."""
    alpha = check_number(alpha, "elu", "alpha")
    if inplace:
        return _run_inplace_named(input, elu, alpha, node="EluBackward1", saved_names=_IN_PLACE_SAVED["elu"])
    return Elu.apply(float_kernel_input(input, "elu_cpu"), alpha=float(alpha), scale=1, input_scale=1)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """torch.selu: scale * elu(x, alpha) with the self-normalising constants."""
    if inplace:
        return _run_inplace_named(input, _scaled_elu, _SELU_ALPHA, _SELU_SCALE, node="EluBackward1",
                                  saved_names=_IN_PLACE_SAVED["elu"])
    return Elu.apply(float_kernel_input(input, "elu_cpu"), alpha=_SELU_ALPHA, scale=_SELU_SCALE, input_scale=1)


def _scaled_elu(input: Tensor, alpha=1, scale=1, input_scale=1) -> Tensor:
    """elu with torch's elu_ schema's arguments: selu_ is elu_(x, alpha, scale) in torch, as a dispatch mode sees it."""
    return Elu.apply(float_kernel_input(input, "elu_cpu"), alpha=alpha, scale=scale, input_scale=input_scale)


_scaled_elu.__name__ = "elu"  # (the op a dispatch mode sees)


class Celu(Elu):
    """celu is elu with input_scale = 1 / alpha; torch records it under its own name."""

    label = "celu"
    rule = "∂/∂a = 1 for a > 0, exp(a/α) otherwise"
    saved_attributes = {"_saved_alpha": Elu.saved_attributes["_saved_alpha"], "_saved_self": saved(0)}


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """torch.celu: max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    if inplace:
        return _run_inplace_named(input, celu, alpha, node="CeluBackward1", saved_names=_IN_PLACE_SAVED["celu"])
    return Celu.apply(float_kernel_input(input, "elu_cpu"), alpha=float(alpha), scale=1.0, input_scale=1.0 / alpha)


def _without_self(names: dict) -> dict:
    return {name: value for name, value in names.items() if name != "_saved_self"}


# the _saved_* names of torch's in-place overloads: the out-of-place node's arguments; torch's
# _saved_result (the written tensor) is not declared, as the node would then hold the tensor that
# holds it
_IN_PLACE_SAVED = {"elu": _without_self(Elu.saved_attributes), "celu": _without_self(Celu.saved_attributes),
                   "leaky_relu": _without_self(LeakyRelu.saved_attributes)}


# ---------------------------------------------------------------- smooth gates
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_K = math.sqrt(2.0 / math.pi)
_TANH_C = 0.044715


def _onednn_gelu(x) -> bool:
    """Whether torch's CPU gelu (approximate='none') and its gradient run oneDNN's gelu_erf on x:
    a contiguous float32 tensor of more than one element (ATen's use_mkldnn), while
    torch.backends.mkldnn.enabled; 0-d, one-element and strided inputs, and other dtypes, take
    ATen's x/2 (1 + erf(x/√2))."""
    return (type(x) is np.ndarray and x.dtype == np.float32 and x.size > 1 and x.flags.c_contiguous
            and cpu_features.onednn_enabled())


# oneDNN's gelu_erf forward (its backward is one kernel on every x86 CPU) is a minimax polynomial
# where its avx512_core kernels run and Abramowitz & Stegun's erf with its own exp below them (AVX2;
# the FMA-less SSE4.1/AVX kernels, which round each product, are not replayed)
_GELU_FLOAT32 = _special.gelu_float32 if cpu_features.AVX512_CORE else _special.gelu_float32_abramowitz_stegun


def _gelu_cdf_array(x):
    """Φ(x) = (1 + erf(x/√2))/2 in x's dtype."""
    from ._special import erf as erf_array

    t = x.dtype.type
    # erf on at least 1-D (NumPy turns 0-d arithmetic into scalars)
    return t(0.5) * (t(1) + erf_array(array_module(x).atleast_1d(x * t(_SQRT_HALF))).reshape(x.shape))


def _in_float32_blocks(*arrays) -> bool:
    """Whether an activation's float32 kernel runs block by block on ``arrays`` (tanh-approximated gelu's
    forward and backward, silu's backward): float32 NumPy arrays of one shape, C-contiguous, past one block."""
    x = arrays[0]
    return all(type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous and a.shape == x.shape
               for a in arrays) and x.size >= _FLOAT32_BLOCK


_FLOAT32_BLOCK = 8192  # float32 values per block: the block's temporaries stay in the core's cache


def _block_bounds(size: int, block: int = _FLOAT32_BLOCK):
    """(start, stop) of each block of a flat array of ``size`` values, in order."""
    for start in range(0, size, block):
        yield start, min(start + block, size)


def _gelu_tanh_float32(x: np.ndarray) -> np.ndarray:
    """x/2 (1 + tanh(k (x + c x³))) as Gelu.forward's float32 ops compute it, the same ops in the same
    order (so the same bits) block by block, where each op streamed the whole array through memory."""
    xs = x.reshape(-1)
    out = np.empty(xs.shape, np.float32)
    inner = np.empty(_FLOAT32_BLOCK, np.float32)
    half, one, k, c = np.float32(0.5), np.float32(1), np.float32(_TANH_K), np.float32(_TANH_C)
    with np.errstate(invalid="ignore", over="ignore"):
        for start, stop in _block_bounds(xs.size):
            x_, i_, y_ = xs[start:stop], inner[:stop - start], out[start:stop]
            np.multiply(c, x_, out=i_)  # k (x + ((c x) x) x)
            np.multiply(i_, x_, out=i_)
            np.multiply(i_, x_, out=i_)
            np.add(x_, i_, out=i_)
            np.multiply(k, i_, out=i_)
            np.tanh(i_, out=i_)
            np.add(one, i_, out=i_)
            np.multiply(half, x_, out=y_)  # ((x/2) (1 + tanh))
            np.multiply(y_, i_, out=y_)
    return out.reshape(x.shape)


def _gelu_tanh_grad_float32(x: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """The gradient Gelu.backward's Tensor ops compute for approximate='tanh' on float32 arrays,
    g ((1 + th)/2 + (x/2) (1 - th²) (k (1 + 3c x²))) with th = tanh((x + c x² x) k): the same float32
    ops in the same order (so the same bits), block by block, where each Tensor op wrapped a
    whole-array pass (seventeen of them through memory)."""
    xs, grads = x.reshape(-1), grad.reshape(-1)
    out = np.empty(xs.shape, np.float32)
    square, th, first, second = (np.empty(_FLOAT32_BLOCK, np.float32) for _ in range(4))
    half, one, k, c, c3 = (np.float32(v) for v in (0.5, 1, _TANH_K, _TANH_C, 3 * _TANH_C))
    with np.errstate(invalid="ignore", over="ignore"):
        for start, stop in _block_bounds(xs.size):
            n = stop - start
            x_, s_, t_, a_, b_ = xs[start:stop], square[:n], th[:n], first[:n], second[:n]
            np.multiply(x_, x_, out=s_)
            np.multiply(c, s_, out=t_)  # th = tanh((x + (c x²) x) k)
            np.multiply(t_, x_, out=t_)
            np.add(x_, t_, out=t_)
            np.multiply(t_, k, out=t_)
            np.tanh(t_, out=t_)
            np.add(one, t_, out=a_)  # (1 + th)/2
            np.multiply(half, a_, out=a_)
            np.multiply(half, x_, out=b_)  # ((x/2) (1 - th th)) (k (1 + (3c) x²))
            np.multiply(t_, t_, out=t_)
            np.subtract(one, t_, out=t_)
            np.multiply(b_, t_, out=b_)
            np.multiply(c3, s_, out=s_)
            np.add(one, s_, out=s_)
            np.multiply(k, s_, out=s_)
            np.multiply(b_, s_, out=b_)
            np.add(a_, b_, out=a_)
            np.multiply(grads[start:stop], a_, out=out[start:stop])
    return out.reshape(x.shape)


class Gelu(Function):
    label = "gelu"
    rule = ("∂/∂a = Φ(a) + a·φ(a) (with approximate='tanh', the derivative of a/2·(1 + tanh(√(2/π)(a + "
            "0.044715a³))))")
    formula = "gelu({0})"
    _array_forward = True
    saved_attributes = {"_saved_approximate": ctx_value("approximate"), "_saved_self": saved(0)}
    forward_state = ("cdf", "erf_parts")

    @staticmethod
    def forward(ctx, x, approximate):
        xp = array_module(x)
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if xp is not np and _cuda_kernels.available(x):
            ctx.cdf = None  # CuPy: one fused launch; GeluBackward's fused kernel recomputes Φ
            return _cuda_kernels.gelu(x, approximate)
        t = x.dtype.type
        if approximate == "tanh" and _in_float32_blocks(x):
            return _gelu_tanh_float32(x)
        if approximate == "tanh":
            inner = t(_TANH_K) * (x + t(_TANH_C) * x * x * x)
            y = t(0.5) * x * (t(1) + xp.tanh(inner))
        elif _onednn_gelu(x):  # no Phi kept: the backward is oneDNN's own formula (GeluBackward)
            ctx.cdf = None
            if _GELU_FLOAT32 is _special.gelu_float32 or not any(ctx.needs_input_grad) or not _function.nothing_watches():
                return _GELU_FLOAT32(x)
            # the AVX2 forward computes the backward's e^{-r²} and erf(r): kept, the backward runs its last steps alone
            # (not where something watches: vmap's replay knows no node's flat parts, saved-tensor hooks never see them)
            y, kept_exp, kept_erf = _GELU_FLOAT32(x, keep=True)
            ctx.erf_parts = (kept_exp, kept_erf)
            return y
        else:
            cdf = _gelu_cdf_array(x)
            if any(ctx.needs_input_grad):  # reused by the backward; nothing kept on the no-grad ctx
                ctx.cdf = cdf
            y = x * cdf
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        if ctx.approximate == "tanh":
            # y = x/2 (1 + tanh u), u = k (x + c x^3): dy = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) k (1 + 3c x^2)
            if _function.unwatched_on_arrays(grad) and _in_float32_blocks(x._data, grad._data):
                return _kernel_layout(Tensor._make(_gelu_tanh_grad_float32(x._data, grad._data)), grad, x)
            x2 = x * x
            th = tanh((x + _TANH_C * x2 * x) * _TANH_K)
            return _kernel_layout(grad * (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * (_TANH_K * (1 + 3 * _TANH_C * x2))),
                                  grad, x)
        return GeluBackward.apply(grad, x, cdf=ctx.cdf, erf_parts=getattr(ctx, "erf_parts", None))


class GeluBackward(Function):
    """z = g · (Phi(x) + x phi(x)): exact gelu's gradient, with the forward's Phi."""

    _array_forward = True
    label = "gelu_backward"
    rule = "∂/∂g = u·(Φ(x) + x·φ(x)), ∂/∂x = u·g·φ(x)·(2 - x²)"
    formula = None

    @staticmethod
    def forward(ctx, grad, x, cdf, erf_parts=None):
        ctx.save_for_backward(grad, x)
        if cdf is None and array_module(x) is not np and _cuda_kernels.available(x):
            return _cuda_kernels.gelu_backward(grad, x)
        if cdf is None and _onednn_gelu(x) and grad.dtype == np.float32 and type(grad) is np.ndarray:
            out = _special.gelu_backward_float32(np.ascontiguousarray(grad), x, erf_parts)
        else:
            if cdf is None:  # kept by neither the fused CuPy forward, oneDNN's float32 one, nor a wrapper's (forward_state)
                cdf = _gelu_cdf_array(x)
            # y = x Phi(x): dy = Phi(x) + x phi(x), one pass with the forward's Phi
            xp = array_module(x)
            pdf = xp.exp(x * x * x.dtype.type(-0.5)) * x.dtype.type(_INV_SQRT_2PI)
            out = grad * (cdf + x * pdf)
        if out.ndim > 1 and 1 in out.shape:  # torch's gelu_backward kernel over (grad, x) lays it out
            out = gradient_layout(out, grad, x)
        return out

    @staticmethod
    def backward(ctx, u):
        # d/dx (Phi + x phi) = phi + phi + x phi' = phi (2 - x^2)
        grad, x = ctx.saved_values
        needs = ctx.needs_input_grad
        pdf = exp(x * x * -0.5) * _INV_SQRT_2PI
        grad_g = u * (0.5 * (1 + erf(x * _SQRT_HALF)) + x * pdf) if needs[0] else None
        grad_x = u * grad * pdf * (2 - x * x) if needs[1] else None
        return grad_g, grad_x


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """F.gelu: x * Phi(x) (exact, via erf) or its tanh approximation."""
    if not isinstance(approximate, str):
        raise TypeError(f"gelu(): argument 'approximate' must be str, not {type(approximate).__name__}")
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return Gelu.apply(float_kernel_input(input, "GeluKernelImpl"), approximate=approximate)


class Silu(Function):
    label = "silu"
    rule = "∂/∂a = σ(a)·(1 + a·(1 - σ(a)))"
    formula = "silu({0})"
    _array_forward = True
    saved_attributes = {"_saved_self": saved(0)}  # torch's grad_fn._saved_* names
    forward_state = ("sig",)

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        if x.dtype == np.float32 and type(x) is np.ndarray:
            # torch's kernel divides, x / (1 + e^-x): x times the rounded 1 / (1 + e^-x) differed from its
            # bits in 4,433 of 20,032 values (836 remain, its exp's). The sigmoid the backward reuses is
            # 1 / (1 + e^-x) of the same denominator (_sigmoid_array's float ops), so e^-x, the dear
            # part, runs once
            one = np.float32(1)
            with np.errstate(over="ignore"):
                e = _exp_array(-x)
            denominator = np.add(one, e, out=e) if e.ndim else one + e  # (a 0-d x's exp is a scalar)
            if any(ctx.needs_input_grad):  # reused by the backward; nothing kept on the no-grad ctx
                ctx.sig = one / denominator
            y = np.divide(x, denominator, out=denominator) if e.ndim else x / denominator
        else:
            s = _sigmoid_array(x)
            if any(ctx.needs_input_grad):
                ctx.sig = s
            y = x * s
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        if is_grad_enabled():  # create_graph: torch records its infinitely differentiable form, op by op
            s = sigmoid(x)
            # (its C++ numbers: 1.0 - s a sub of the number as a tensor, SubBackward0; 1.0 + ... add's
            # Scalar overload, AddBackward1)
            return grad * s * name_node(x * Sub.apply(*_pair(1.0, s)) + 1.0, "AddBackward1")
        return SiluBackward.apply(grad, x, sig=ctx.sig)


def _silu_grad_float32(grad: np.ndarray, x: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """SiluBackward's float32 gradient (g s) (1 + x (1 - s)) of C-contiguous arrays, its operations
    block by block (so the same bits), the fused multiply-add's float64 temporary in cache."""
    xs, grads, sigs = x.reshape(-1), grad.reshape(-1), sig.reshape(-1)
    out = np.empty(xs.shape, np.float32)
    wide, rest = np.empty(_FLOAT32_BLOCK), np.empty(_FLOAT32_BLOCK, np.float32)
    one = np.float32(1)
    with np.errstate(invalid="ignore", over="ignore"):
        for start, stop in _block_bounds(xs.size):
            w_, r_, target = wide[:stop - start], rest[:stop - start], out[start:stop]
            np.subtract(one, sigs[start:stop], out=r_)
            w_[...] = r_
            np.multiply(w_, xs[start:stop], out=w_)  # 1 + x (1 - s), fused: the product exact in float64
            np.add(w_, 1, out=w_)
            np.copyto(r_, w_, casting="same_kind")
            np.multiply(grads[start:stop], sigs[start:stop], out=target)
            np.multiply(target, r_, out=target)
    return out.reshape(x.shape)


class SiluBackward(Function):
    """z = g · s (1 + x (1 - s)) with s = sigmoid(x): silu's gradient, with the forward's s. Applied only
    by a plain backward (under create_graph Silu records torch's op-by-op form), so never recorded."""

    _array_forward = True
    label = "silu_backward"
    rule = "∂/∂g = u·σ(x)·(1 + x·(1 - σ(x))), ∂/∂x = u·g·σ(x)·(1 - σ(x))·(2 + x·(1 - 2σ(x)))"
    formula = None

    @staticmethod
    def forward(ctx, grad, x, sig):
        ctx.save_for_backward(grad, x)
        if sig is None:  # a forward over a wrapper subclass kept none (forward_state)
            sig = _sigmoid_array(x)
        # d(x s(x)) = s (1 + x (1 - s))
        if _in_float32_blocks(grad, x, sig):
            out = _silu_grad_float32(grad, x, sig)
        elif grad.dtype == np.float32 and x.dtype == np.float32 and type(x) is np.ndarray and type(grad) is np.ndarray:
            # torch's kernel, in its order: (g s) (1 + x (1 - s)), the last factor one fused multiply-add
            # (a float32 product is exact in float64); g (s (...)) differed in 7,880 of 20,032 -> 671
            inner = ((1 - sig).astype(np.float64) * x + 1).astype(np.float32)
            out = grad * sig
            out *= inner
        else:
            out = grad * (sig * (1 + x * (1 - sig)))
        if out.ndim > 1 and 1 in out.shape:  # torch's silu_backward kernel over (grad, x) lays it out
            out = gradient_layout(out, grad, x)
        return out

    @staticmethod
    def backward(ctx, u):
        # d/dx [s (1 + x (1 - s))] = s (1 - s) (2 + x (1 - 2 s))
        grad, x = ctx.saved_values
        needs = ctx.needs_input_grad
        s = sigmoid(x)
        grad_g = u * (s * (1 + x * (1 - s))) if needs[0] else None
        grad_x = u * grad * (s * (1 - s) * (2 + x * (1 - 2 * s))) if needs[1] else None
        return grad_g, grad_x


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """F.silu (swish): x * sigmoid(x)."""
    if inplace:
        return _run_inplace(input, silu)
    return Silu.apply(float_kernel_input(input, "silu_cpu", complex_too=False))


_tanh_array = _float32_via_float64(np.tanh)
_expm1_array = _float32_via_float64(np.expm1)


def _mish_tanh_softplus_array(x: np.ndarray) -> np.ndarray:
    """tanh(log1p(exp(x))) as torch's CPU mish kernels compute it: no softplus threshold (e^x past
    the float range is inf, whose tanh is 1), each function rounded to x's dtype, a float32 one
    through float64 as torch's vectorised exp, log1p and tanh nearly always round (the overflow-free
    max(x, 0) + log1p(e^-|x|) and NumPy's float32 loops differed from torch in 28 % of values)."""
    if x.dtype == np.float32 and type(x) is np.ndarray and x.size >= _MISH_BLOCK:
        return _mish_tanh_softplus_float32(x)
    with np.errstate(over="ignore"):
        return _tanh_array(_log1p_array(_exp_array(x)))


_MISH_BLOCK = 8192  # values per block: the block's float64 temporaries stay in the core's cache
_LOG1P_ROUNDS_TO_ITSELF = 2.0 ** -29  # below it log1p(e) rounds to e; from it on 1 + e is exact in float64
_TANH_SERIES_BELOW = 2.0 ** -5  # below it (1 - e^-2s) / (1 + e^-2s) cancels: tanh's Taylor series instead


def _softplus_block(e_: np.ndarray, s_: np.ndarray, f_: np.ndarray) -> None:
    """log1p(e^z) on one block as torch's float32 kernels round it, each function through float64
    (see _mish_tanh_softplus_float32): ``e_`` (float64) holds z and is left holding the float32 e^z;
    the float32 result is left in ``f_`` (``s_``, float64, is scratch)."""
    np.exp(e_, out=e_)
    np.copyto(f_, e_, casting="same_kind")  # torch's float32 exp
    e_[...] = f_
    np.add(e_, 1, out=s_)
    np.log(s_, out=s_)
    tiny = np.flatnonzero(e_ < _LOG1P_ROUNDS_TO_ITSELF)
    if tiny.size:
        s_[tiny] = e_[tiny]
    np.copyto(f_, s_, casting="same_kind")  # torch's float32 log1p


def _mish_tanh_softplus_float32(x: np.ndarray) -> np.ndarray:
    """_mish_tanh_softplus_array's float32 values, each function computed in float64 and rounded to
    float32 as there, at about 0.6 of the cost (256x1024: 17.1 -> 10.0 ms CPU): NumPy's float64
    log1p and tanh are its dearest loops, so log1p(e) is log(1 + e) and tanh(s) (s >= 0) is
    (1 - q) / (1 + q) with q = e^-2s, whose errors are far below float32's rounding (of 9,000,012
    float32 values, randn, -110..100, the edges, none rounded otherwise), block by block so the
    temporaries stay in cache. q takes no second exp: s is the float32 rounding of the float64
    log(1 + e), off it by δ, so q = (1 + e)^-2 e^-2δ, and e^-2δ = 1 - 2δ + 2δ² to far below float64's
    rounding wherever tanh s is not float32's 1 (s < 9.1, so |δ| <= 2^-21); (64, 512, 256) randn·3,
    one thread, loaded 2-core AVX2 machine: 251 -> 221 ms CPU, every value the same. The two edge
    cases (log1p's below 2^-29, tanh's series below 2^-5: x under about -20 and -3.4) are computed on
    the values that need them only, and the roundings go through one float32 buffer."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.shape, np.float32)
    e, s, q, r = (np.empty(_MISH_BLOCK) for _ in range(4))
    rounded = np.empty(_MISH_BLOCK, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for start, stop in _block_bounds(flat.size, _MISH_BLOCK):
            n = stop - start
            e_, s_, q_, r_, f_ = e[:n], s[:n], q[:n], r[:n], rounded[:n]
            e_[...] = flat[start:stop]
            _softplus_block(e_, s_, f_)
            r_[...] = f_  # s
            np.subtract(r_, s_, out=s_)  # δ
            np.subtract(s_, 1, out=q_)
            np.multiply(q_, s_, out=q_)
            np.multiply(q_, 2, out=q_)
            np.add(q_, 1, out=q_)  # e^-2δ = 1 + 2δ(δ - 1)
            np.add(e_, 1, out=e_)
            np.multiply(e_, e_, out=e_)
            np.divide(q_, e_, out=q_)  # q = e^-2δ / (1 + e)^2
            np.subtract(1, q_, out=s_)
            np.add(q_, 1, out=q_)
            np.divide(s_, q_, out=s_)
            infinite = np.flatnonzero(r_ == np.inf)
            if infinite.size:  # (e^x past the float range: δ is inf - inf, tanh is 1)
                s_[infinite] = 1
            small = np.flatnonzero(r_ < _TANH_SERIES_BELOW)
            if small.size:  # tanh s = s - s^3/3 + 2 s^5/15 - 17 s^7/315 (the next term below float64's rounding)
                s_small = r_[small]
                squared = s_small * s_small
                s_[small] = s_small * (1 + squared * (-1 / 3 + squared * (2 / 15 + squared * (-17 / 315))))
            out[start:stop] = s_  # torch's float32 tanh
    return out.reshape(x.shape)


def _mish_grad_array(x: np.ndarray, grad: np.ndarray, t: np.ndarray) -> np.ndarray:
    """torch's mish_backward kernel, in its order: g (t + x σ (1 - t t)) with t = tanh(log1p(e^x)) (the
    forward's, the same bits as torch's recomputed one) and σ = 1 / (1 + e^-x); float32 for half types."""
    if (x.dtype == grad.dtype == t.dtype == np.float32 and type(x) is type(grad) is type(t) is np.ndarray
            and x.shape == grad.shape == t.shape and x.size >= _MISH_BLOCK
            and x.flags.c_contiguous and grad.flags.c_contiguous and t.flags.c_contiguous):
        return _mish_grad_float32(x, grad, t)
    wide, wide_grad = _kernel_compute_array(x), _kernel_compute_array(grad)
    one = wide.dtype.type(1)
    with np.errstate(over="ignore", invalid="ignore"):  # (-inf · 0: torch's NaN)
        sigmoid_x = one / (one + _exp_array(-wide))
        if wide.dtype == np.float32 and array_module(wide) is np:
            # torch's compiled kernel fuses 1 - t t and (x σ)(1 - t t) + t into multiply-adds (the
            # plain order differed from it in 19 % of float32 gradients): a float32 product is exact
            # in float64, so each computed there and rounded once is the fused value
            t_wide = t.astype(np.float64)
            slope = (1 - t_wide * t_wide).astype(np.float32)
            inner = ((wide * sigmoid_x).astype(np.float64) * slope + t_wide).astype(np.float32)
        else:
            inner = t + wide * sigmoid_x * (one - t * t)
        return (wide_grad * inner).astype(grad.dtype, copy=False)



def _mish_grad_float32(x: np.ndarray, grad: np.ndarray, t: np.ndarray) -> np.ndarray:
    """_mish_grad_array's float32 gradient of C-contiguous arrays, the same operations block by block
    (see _mish_tanh_softplus_float32), so that its float64 temporaries stay in cache instead of
    streaming four arrays of twice the input's size through memory: (64, 512, 256) randn·3, one
    thread, CPU time 164 -> 95 ms on the loaded 2-core AVX2 machine, the same bits."""
    xs, grads, ts = x.reshape(-1), grad.reshape(-1), t.reshape(-1)
    out = np.empty(xs.shape, np.float32)
    wide, product = np.empty(_MISH_BLOCK), np.empty(_MISH_BLOCK)
    sigmoid_x, slope = np.empty(_MISH_BLOCK, np.float32), np.empty(_MISH_BLOCK, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # (-inf · 0: torch's NaN)
        for start, stop in _block_bounds(xs.size, _MISH_BLOCK):
            n = stop - start
            w_, p_, s_, l_ = wide[:n], product[:n], sigmoid_x[:n], slope[:n]
            np.negative(xs[start:stop], out=s_)
            w_[...] = s_
            np.exp(w_, out=w_)
            np.copyto(s_, w_, casting="same_kind")  # torch's float32 e^-x
            np.add(s_, 1, out=s_)
            np.divide(1, s_, out=s_)  # σ = 1 / (1 + e^-x), in float32
            w_[...] = ts[start:stop]
            np.multiply(w_, w_, out=p_)
            np.subtract(1, p_, out=p_)
            np.copyto(l_, p_, casting="same_kind")  # 1 - t t, fused
            np.multiply(xs[start:stop], s_, out=s_)
            p_[...] = s_
            np.multiply(p_, l_, out=p_)
            np.add(p_, w_, out=p_)
            np.copyto(s_, p_, casting="same_kind")  # (x σ)(1 - t t) + t, fused
            np.multiply(grads[start:stop], s_, out=out[start:stop])
    return out.reshape(x.shape)

class Mish(Function):
    label = "mish"
    rule = "∂/∂a = tanh(softplus(a)) + a·σ(a)·(1 - tanh²(softplus(a)))"
    saved_attributes = {"_saved_self": saved(0)}
    _array_forward = True

    @staticmethod
    def forward(ctx, x):
        # torch's mish kernel: x tanh(log1p(e^x)), computed in float32 for half types and rounded once
        ctx.save_for_backward(x)
        wide = _kernel_compute_array(x)
        t = _mish_tanh_softplus_array(wide)
        if any(ctx.needs_input_grad):  # reused by the backward: its three transcendental passes not run twice
            ctx.tanh_softplus = t
        y = (wide * t).astype(x.dtype, copy=False)
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        # d(x tanh(sp(x))) = tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2)
        (x,) = ctx.saved_values
        if is_grad_enabled():
            # create_graph: torch records its infinitely differentiable form, op by op (softplus's threshold too)
            th = tanh(softplus(x))
            return grad * (th + x * sigmoid(x) * (1 - th * th))
        if _function.active_dispatch is None:
            # a plain walk: torch's mish_backward kernel on the forward's t, rounded as it rounds (a half
            # type's in float32 inside it, rounded once, where Tensor ops would round each step)
            return _kernel_layout(Tensor._make(_mish_grad_array(x._data, grad._data, ctx.tanh_softplus)), grad, x)
        # watched (a dispatch mode, or any wrapper subclass instance alive, even garbage awaiting the
        # collector): the same kernel as the op a mode sees, aten.mish_backward; the same bits either
        # way, so a test's leftover wrapper cannot change them. t is recomputed from x, as torch's
        # kernel does: a wrapper's forward ran on its placeholder, its handler's x is the real one
        return MishBackward.apply(grad, x)


class MishBackward(Function):
    """torch's mish_backward: g (t + x σ(x) (1 - t t)) with t = tanh(log1p(e^x)). Applied only by a
    plain backward that a dispatch mode or wrapper subclass may watch, so never recorded."""

    _array_forward = True
    label = "mish_backward"
    rule = "no gradient of its own: applied inside a backward walk that records nothing (create_graph takes Mish's op-by-op form)"

    @staticmethod
    def forward(ctx, grad, x):
        return _mish_grad_array(x, grad, _mish_tanh_softplus_array(_kernel_compute_array(x)))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """F.mish: x * tanh(softplus(x))."""
    if inplace:
        return _run_inplace(input, mish)
    return Mish.apply(float_kernel_input(input, "mish_cpu"))


def _kernel_compute_array(x: np.ndarray) -> np.ndarray:
    """``x`` in the dtype torch's softplus and mish kernels compute in: float32 for float16 and bfloat16."""
    return x.astype(np.float32) if _opmath.half_precision(x.dtype) else x


def _softplus_exp_array(z: np.ndarray) -> np.ndarray:
    # torch's exp of beta x, rounded as its kernel rounds; past the float range it is inf, as torch's
    # (so a threshold above ~88.7 in float32 gives inf, and a NaN gradient, where torch's do)
    with np.errstate(over="ignore"):
        return _exp_array(z)


def _softplus_array(x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    """torch's softplus kernel: log1p(exp(beta x)) / beta, x itself where beta x > threshold, computed
    in float32 for half types and rounded once. Not the overflow-free max(z, 0) + log1p(exp(-|z|)),
    which rounds differently in a quarter of float32 values."""
    if x.dtype == np.float32 and type(x) is np.ndarray and x.size >= _MISH_BLOCK and x.flags.c_contiguous:
        return _softplus_float32(x, beta, threshold)
    xp = array_module(x)
    wide = _kernel_compute_array(x)
    t = wide.dtype.type
    z = wide * t(beta)
    result = _log1p_array(_softplus_exp_array(z)) / t(beta)
    return xp.where(z > threshold, x, result.astype(x.dtype, copy=False))


def _softplus_float32(x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    """_softplus_array's float32 values of a C-contiguous array, block by block with mish's log1p(e^z)
    (_softplus_block: a float64 log of 1 + e where NumPy's log1p costs twice as much), the same
    roundings; the temporaries stay in cache."""
    flat = x.reshape(-1)
    out = np.empty(flat.shape, np.float32)
    factor = np.float32(beta)
    e, s = np.empty(_MISH_BLOCK), np.empty(_MISH_BLOCK)
    z, rounded = np.empty(_MISH_BLOCK, np.float32), np.empty(_MISH_BLOCK, np.float32)
    with np.errstate(over="ignore"):
        for start, stop in _block_bounds(flat.size, _MISH_BLOCK):
            n = stop - start
            e_, z_, f_ = e[:n], z[:n], rounded[:n]
            np.multiply(flat[start:stop], factor, out=z_)
            e_[...] = z_
            _softplus_block(e_, s[:n], f_)
            target = out[start:stop]
            np.divide(f_, factor, out=target)
            np.copyto(target, flat[start:stop], where=z_ > threshold)
    return out.reshape(x.shape)


def _softplus_grad_array(x: np.ndarray, grad: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    """torch's softplus_backward kernel: with z = exp(beta x), ``g z / (z + 1)``, or g where
    beta x > threshold; float32 for half types."""
    if (x.dtype == grad.dtype == np.float32 and type(x) is type(grad) is np.ndarray and x.shape == grad.shape
            and x.size >= _MISH_BLOCK and x.flags.c_contiguous and grad.flags.c_contiguous):
        return _softplus_grad_float32(x, grad, beta, threshold)
    xp = array_module(x)
    wide, wide_grad = _kernel_compute_array(x), _kernel_compute_array(grad)
    t = wide.dtype.type
    z = wide * t(beta)
    e = _softplus_exp_array(z)
    # inf / inf: torch's NaN; g·e past the float range: inf, of which torch's kernel says nothing
    # (a call outside a walk or an op's forward, grad_fn(g) under no_grad, is not otherwise quiet)
    with np.errstate(invalid="ignore", over="ignore"):
        result = wide_grad * e / (e + 1)
    return xp.where(z > threshold, grad, result.astype(grad.dtype, copy=False))


def _softplus_grad_float32(x: np.ndarray, grad: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    """_softplus_grad_array's float32 gradient of C-contiguous arrays, the same operations block by block
    (see _mish_tanh_softplus_float32), so that e^z's float64 temporary stays in cache."""
    xs, grads = x.reshape(-1), grad.reshape(-1)
    out = np.empty(xs.shape, np.float32)
    factor = np.float32(beta)
    wide = np.empty(_MISH_BLOCK)
    z, e = np.empty(_MISH_BLOCK, np.float32), np.empty(_MISH_BLOCK, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # inf / inf: torch's NaN
        for start, stop in _block_bounds(xs.size, _MISH_BLOCK):
            n = stop - start
            w_, z_, e_ = wide[:n], z[:n], e[:n]
            np.multiply(xs[start:stop], factor, out=z_)
            w_[...] = z_
            np.exp(w_, out=w_)
            np.copyto(e_, w_, casting="same_kind")  # torch's float32 e^z
            target = out[start:stop]
            np.multiply(grads[start:stop], e_, out=target)
            np.add(e_, 1, out=e_)
            np.divide(target, e_, out=target)
            np.copyto(target, grads[start:stop], where=z_ > threshold)
    return out.reshape(x.shape)


class Softplus(Function):
    label = "softplus"
    rule = "∂/∂a = σ(β·a); 1 where β·a > threshold (the linear regime)"
    _array_forward = True
    saved_attributes = {"_saved_beta": ctx_value("params", lambda params: params[0]),
                        "_saved_threshold": ctx_value("params", lambda params: params[1]), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        ctx.params = (beta, threshold)
        y = _softplus_array(x, beta, threshold)
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        beta, threshold = ctx.params
        if _function.on_arrays(grad):  # a plain walk: torch's kernel, rounded as it rounds
            return _kernel_layout(Tensor._make(_softplus_grad_array(x._data, grad._data, beta, threshold)), grad, x)
        return SoftplusAdjoint.apply(grad, x, beta=beta, threshold=threshold)


class SoftplusAdjoint(Function):
    """softplus's backward as an op (torch's softplus_backward), so that a recorded walk rounds the
    first-order gradient as a plain one does and names its node as torch does."""

    _array_forward = True
    node_name = "SoftplusBackwardBackward0"
    label = "softplus_backward"
    rule = "∂/∂g = σ(β·x), ∂/∂x = g·β·σ(β·x)(1 - σ(β·x)); both 0 past the threshold"

    @staticmethod
    def forward(ctx, grad, x, beta, threshold):
        ctx.save_for_backward(grad, x)
        ctx.params = (beta, threshold)
        return _softplus_grad_array(x, grad, beta, threshold)

    @staticmethod
    def backward(ctx, grad_grad):
        grad, x = ctx.saved_values
        beta, threshold = ctx.params
        needs_grad, needs_x = ctx.needs_input_grad
        grad_x = None
        if needs_x:
            # torch's softplus_double_backward: sigmoid_backward(ḡ g, σ(βx)) · (βx < threshold) · β
            z = x * beta
            s = sigmoid(z)
            grad_x = (grad_grad * grad) * (1 - s) * s * (z < threshold).to(grad.dtype) * beta
        return (SoftplusAdjoint.apply(grad_grad, x, beta=beta, threshold=threshold) if needs_grad else None,
                grad_x)


def softplus(input: Tensor, beta: float = 1, threshold: float = 20) -> Tensor:
    """F.softplus: log(1 + exp(beta x)) / beta, x itself where beta x > threshold."""
    beta = check_number(beta, "softplus", "beta")
    threshold = check_number(threshold, "softplus", "threshold")
    return Softplus.apply(float_kernel_input(input, "softplus_cpu"), beta=beta, threshold=threshold)


class LogSigmoid(Function):
    label = "logsigmoid"
    rule = "∂/∂a = 1 - σ(a)"
    formula = "logsigmoid({0})"
    # torch's CPU kernel keeps exp(-|x|) beside x
    saved_attributes = {"_saved_buffer": SavedValue(lambda node: node.saved_values[0].abs().neg().exp(), tensor=True),
                        "_saved_self": saved(0)}
    _array_forward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _log_sigmoid_array(x)

    @staticmethod
    def backward(ctx, grad):
        # d log s(x) = 1 - s(x) = s(-x)
        (x,) = ctx.saved_values
        if _function.on_arrays(grad):  # a plain walk: torch's kernel, rounded as it rounds
            # into torch's empty_like(grad) (log_sigmoid_backward_cpu): the gradient's own layout
            return Tensor._make(preserved_layout(_log_sigmoid_grad_array(x._data, grad._data), grad._data))
        return LogSigmoidAdjoint.apply(grad, x)


def logsigmoid(input: Tensor) -> Tensor:
    """F.logsigmoid: log(sigmoid(x)), computed stably for large |x|."""
    return LogSigmoid.apply(float_kernel_input(input, "log_sigmoid_cpu"))


class Hardsigmoid(Function):
    label = "hardsigmoid"
    rule = "∂/∂a = 1/6 inside (-3, 3), 0 outside"
    saved_attributes = {"_saved_self": saved(0)}
    _array_forward = True

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        ctx.save_for_backward(x)
        t = x.dtype.type
        # torch's kernel: min(max(x + 3, 0), 6) / 6 (x / 6 + 1/2 rounds otherwise in 3,992 of 20,032 float32 values)
        y = (xp.clip(x + t(3), 0, 6) / t(6)).astype(x.dtype, copy=False)
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        # d = 1/6 strictly inside (-3, 3), else 0
        xp = array_module(grad)
        (x,) = ctx.saved_values
        arr = x._data
        if _function.tracing_ops and arr.dtype.itemsize != 2:  # a vmap recording its ops sees the mask made by ops
            return where((x > -3) & (x < 3), grad * _ONE_SIXTH_AS_TORCH, 0)
        inside = (arr > -3) & (arr < 3)
        if arr.dtype.itemsize == 2 and not grad._requires_grad:
            # float16/bfloat16: torch's kernel multiplies in float32 and rounds the product once
            factor = xp.where(inside, np.float32(_ONE_SIXTH_AS_TORCH), np.float32(0))
            wide = _scaled_mask(Tensor._make(grad._data.astype(np.float32)), factor, arr, keep=inside)
            return Tensor._make(wide._data.astype(arr.dtype))
        factor = xp.where(inside, arr.dtype.type(_ONE_SIXTH_AS_TORCH), arr.dtype.type(0))
        return _scaled_mask(grad, factor, arr, keep=inside)


# torch's hardsigmoid_backward kernel multiplies by its constant 1.0f / 6.0f, a float32 1/6, in float64 too
_ONE_SIXTH_AS_TORCH = float(np.float32(1 / 6))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """F.hardsigmoid: relu6(x + 3) / 6."""
    if inplace:
        return _run_inplace(input, hardsigmoid)
    return Hardsigmoid.apply(float_kernel_input(input, "hardsigmoid_cpu"))


class Hardswish(Function):
    label = "hardswish"
    rule = "∂/∂a = (2a + 3)/6 inside (-3, 3); 0 below, 1 above"
    saved_attributes = {"_saved_self": saved(0)}
    _array_forward = True

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        ctx.save_for_backward(x)
        t = x.dtype.type
        y = x * xp.clip(x + t(3), 0, 6).astype(x.dtype, copy=False) / t(6)
        if not x.flags.c_contiguous:
            y = unary_layout(y, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        # d = 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 for x >= 3 (torch's boundaries)
        (x,) = ctx.saved_values
        arr = x._data
        if _function.tracing_ops:  # a vmap recording its ops sees the masks made by ops
            low, high = x <= -3, x >= 3
        else:
            low, high = Tensor._make(arr <= -3), Tensor._make(arr >= 3)
        middle = grad * (x / 3 + 0.5)
        return _kernel_layout(where(low, 0.0, where(high, grad, middle)), grad, x)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """F.hardswish: x * relu6(x + 3) / 6."""
    if inplace:
        return _run_inplace(input, hardswish)
    return Hardswish.apply(float_kernel_input(input, "hardswish_cpu"))


# ---------------------------------------------------------------- compositions (as torch)
def softsign(input: Tensor) -> Tensor:
    """F.softsign: x / (1 + |x|) (a composition, as in torch)."""
    if isinstance(input, Tensor) and input._data.dtype.kind == "b":
        refuse_kernel(input, "abs_cpu")  # torch's |x| of a bool tensor
    input = _float_input(input)
    return input / (input.abs() + 1)


def tanhshrink(input: Tensor) -> Tensor:
    """F.tanhshrink: x - tanh(x) (a composition, as in torch)."""
    if isinstance(input, Tensor) and input._data.dtype.kind == "b":
        return sub(input, tanh(input))  # raises torch's error for a bool operand of -
    input = _float_input(input)
    return input - tanh(input)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """F.glu: a * sigmoid(b) where a, b are the two halves of ``input`` along ``dim``."""
    if input._data.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    dim = check_int(dim, "glu", "dim")
    d = _wrap_dim(dim, input._data.ndim, "glu")
    size = input._data.shape[d]
    if size % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {size}")
    if input._data.dtype.kind in "biuc":
        refuse_kernel(input, "glu_cpu")
    a, b = input.split(size // 2, d)
    return name_node(a * sigmoid(b), "GluBackward0", label="glu",
                     rule="a·σ(b) for the halves a, b; this last step, the product: ∂/∂a = σ(b), ∂/∂σ(b) = a",
                     saved=_GLU_SAVED, kept={"dim": dim, "self": input})


# torch's glu node keeps its input and the dim as given (a negative one as the C++ node's unsigned)
_GLU_SAVED = {"_saved_dim": SavedValue(lambda node: as_uint64(node.torch_kept["dim"])),
              "_saved_self": kept_value("self", tensor=True)}
