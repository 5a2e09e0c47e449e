"""Elementwise arithmetic and math: each op's forward on arrays beside its derivative rule.

Rules are written with chainrule ops on Tensors, so ``create_graph=True`` differentiates them
again. They never mention broadcasting: the engine sums each gradient back to its input's shape.
Binary ops follow torch's type promotion (``_dtype.result_type``); float-only math on integer
tensors computes in the default float dtype, as torch does.
"""

from __future__ import annotations

import builtins
import math
import sys

import numpy as np

from .. import _config, _dtype, _layout, _opmath, _vmap_frames
from .._backend import (
    array_module,
    dense_non_overlapping,
    device_of,
    follow_device,
    on_one_device,
    subtract_contiguous,
)
from .._torch_function import user_stacklevel
from ..autograd import function as _function_module
from ..autograd.function import (
    Function,
    SavedValue,
    broadcast_error,
    check_broadcast_in_order,
    ctx_value,
    is_recording,
    kept_value,
    name_node,
    on_arrays,
    on_arrays_when_unrecorded,
    saved,
    without_derivative,
)
from ..autograd.grad_mode import INFERENCE_VERSION, INFERENCE_WRITE, no_grad
from ..tensor import (
    ConjugateViews,
    Tensor,
    _check_tensor,
    call_noting_out,
    honours_out,
    out_keyword_front,
    refuse_out_under_autograd,
    refuse_partial_overlap,
    write_out,
)
from . import cpu_features, cpu_softmax_order
from ._arg_parser import check_int, check_str, mixed_number_bounds, out_rule, write_out_same_dtype
from ._special import erf as _erf_array
from .memory_format import (
    fresh_in_format,
    gradient_layout,
    iterator_layout,
    kept_strides_layout,
    number_layout,
    plain_rows,
    preserved_layout,
    unary_layout,
)

# the functions whose chainrule.<name> takes torch's out=, with torch's rule for the out's dtype
# (ops/_arg_parser.py namespace_with_out; chainrule/__init__.py wraps them)
__out_functions__ = {**dict.fromkeys(("eq", "ne", "lt", "le", "gt", "ge", "pow", "maximum", "minimum", "logical_and",
                                      "logical_or", "logical_xor", "logical_not", "atan2", "fmod", "remainder", "lerp",
                                      "addcmul", "addcdiv", "hypot", "logaddexp"), "cast"),
                     "neg": "same_elementwise", "negative": "same_elementwise", "round": "same_elementwise",
                     "where": "same_where", "clamp_min": "same_elementwise", "clamp_max": "same_elementwise"}
__all__ = [
    "add", "sub", "rsub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow",
    "neg", "negative", "abs", "absolute", "exp", "exp2", "log", "log1p", "expm1", "log2", "log10",
    "sqrt", "rsqrt", "square", "reciprocal", "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
    "cosh", "tanh", "sigmoid", "erf", "atan2", "maximum", "minimum", "fmax", "fmin", "where",
    "clamp", "clip", "clamp_min", "clamp_max", "sign", "floor", "ceil", "round", "trunc", "frac",
    "eq", "ne", "lt", "le", "gt", "ge", "equal", "allclose", "isclose", "isnan", "isinf", "isfinite",
    "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
    "bitwise_xor", "bitwise_not", "lerp", "addcmul", "addcdiv", "xlogy", "hypot", "nan_to_num",
    "signbit", "logaddexp",
]
__not_methods__ = {"rsub"}  # torch.Tensor has no rsub method (only __rsub__)


# ---------------------------------------------------------------- operands and promotion
def _as_operand(x, dtype: _dtype.dtype, like: Tensor | None = None) -> Tensor:
    """A Python number as a 0-d tensor of ``dtype`` on ``like``'s device (never requires grad).
    An integer outside an integer dtype's range wraps, as torch's arithmetic does (int8 + 300 is
    int8 + 44); the ops that refuse such numbers check them first (``_dtype.checked_scalar``).
    Marked as torch's wrapped number: an op that saves it hands it to no saved-tensor hook."""
    if dtype._category >= 2 and x.__class__ in (builtins.float, builtins.int) and not -65504.0 <= x <= 65504.0:
        with np.errstate(over="ignore"):  # torch casts a number past the dtype's range to inf without a word
            operand = _as_operand_unchecked(x, dtype, like)
    else:
        operand = _as_operand_unchecked(x, dtype, like)
    operand._wrapped_number = True
    operand._wrapped_value = x  # (the number as given: the dispatch layer shows it)
    return operand


def _as_operand_unchecked(x, dtype: _dtype.dtype, like: Tensor | None = None) -> Tensor:
    try:
        if like is None or type(like._data) is np.ndarray:
            if dtype.itemsize == 1 and dtype.is_floating_point:  # float8: torch's rounding (0 is 2^-127 in e8m0)
                return Tensor._make(_dtype.cast_array(np.asarray(x, dtype=np.float32), dtype.np))
            return Tensor._make(np.asarray(x, dtype=dtype.np))
        return Tensor._make(array_module(like).full((), x, dtype=dtype.np))  # a fill, not a host copy
    except OverflowError:
        if not isinstance(x, builtins.int) or dtype._category != 1:
            raise
        wrapped = np.asarray(x & 0xFFFF_FFFF_FFFF_FFFF, dtype=np.uint64).astype(dtype.np)
        return _as_operand(wrapped.item(), dtype, like)


_CONSTANTS: dict = {}


def _constant(x, np_dtype) -> Tensor:
    """A cached 0-d tensor for a Python number used as an operand of a recorded op.

    Saves allocating one per ``x * 0.9`` in a training loop. Only ops read these; a zero's key
    carries its repr, because 0.0 and -0.0 compare equal but multiply differently. Keyed by the number's type
    too (2 and 2.0 are one dict key): ``_function_module.constant_numbers`` keeps the number as
    given, which a node's ``_saved_other`` shows in its own dtype (int64 2, float64 2.0). (Not an
    attribute of the tensor: an instance dict on an operand of every ``x * 0.9`` slows the
    attribute reads of the ops that take it.)
    """
    key = (x, np_dtype, x.__class__) if x else (x, np_dtype, x.__class__, repr(x))
    t = _CONSTANTS.get(key)
    if t is None:
        # a CPU scalar: with a device tensor, the op's device check makes it a device fill (as
        # torch passes CPU scalars to CUDA kernels)
        t = Tensor._make(np.asarray(x, dtype=np_dtype))
        if len(_CONSTANTS) > 4096:
            _CONSTANTS.clear()
            _function_module.constant_numbers.clear()
        _CONSTANTS[key] = t
        _function_module.constant_numbers[id(t)] = x
    return t


def on_its_gpu(array) -> None:
    """Raw array math on ``array`` next: on a GPU, make its GPU CuPy's current one (see
    _backend.follow_device); ops through Function.apply and array_module get this already."""
    if type(array) is not np.ndarray:
        follow_device(array)


def _cast(t: Tensor, dtype: _dtype.dtype) -> Tensor:
    """Differentiable dtype conversion (torch's ToCopyBackward0)."""
    if t._data.dtype == dtype.np:
        return t
    # the shortcut records nothing, so not while forward AD (or a saved-tensor hook) watches ops:
    # a dual tensor's tangent must follow it through the cast (x.double(), float * complex); nor while
    # a dispatch mode or wrapper watches ops (torch shows the cast as aten._to_copy)
    # an integer or bool result never requires grad (torch: only floating and complex tensors do), so
    # ``(x * 10).long()`` records nothing and its .numpy() works
    recorded = t._requires_grad and (dtype.is_floating_point or dtype.is_complex)
    if not recorded and _function_module.active_extension is None and _function_module.active_dispatch is None and \
            not _function_module.tracing_ops:  # (a vmap recording its ops sees the cast: _vmap_batched)
        on_its_gpu(t._data)
        return Tensor._make(ToCopy.forward(None, t._data, dtype.np))  # the recorded op's forward, unrecorded
    if not recorded and t._requires_grad:
        # watched (a dispatch mode sees aten._to_copy), yet still no node: the result is an integer
        with no_grad():
            return ToCopy.apply(t, dtype=dtype.np)
    return ToCopy.apply(t, dtype=dtype.np)


def _copy_in_memory_format(t: Tensor, memory_format, fresh: bool) -> Tensor:
    """``Tensor.to(memory_format=...)`` when it does not hand back ``t``: torch's _to_copy into a
    tensor with the format's own strides (see fresh_in_format), one ToCopyBackward0 node. ``fresh``:
    ``t`` is to()'s own new copy (a cast or a device move), relaid where it is."""
    from .shape import _channels_last_rank

    _channels_last_rank(t, memory_format)  # torch's error for a tensor of the wrong rank
    if fresh:
        t._data = fresh_in_format(t._data, memory_format._name)
        return t
    return ToCopy.apply(t, dtype=t._data.dtype, memory_format=memory_format._name)


def _copy_as_to(t: Tensor, dtype, device_given: bool, memory_format, copy: bool):
    """``Tensor.to`` on its own device under a dispatch mode or wrapper: torch's one aten._to_copy, with the
    kwargs of the overload its parser matched (to.dtype_layout with neither a dtype nor a device given,
    to.device with both, to.dtype with a dtype), or None where ``to`` hands back ``t`` (or the
    tensor is not plain: the caller's own path)."""
    from ..tensor import _suggested_format
    from .shape import _channels_last_rank

    target = _dtype.to_dtype(dtype) if dtype is not None else t.dtype
    name = getattr(memory_format, "_name", None)
    relaid = name not in (None, "preserve_format")
    if relaid and target is t.dtype and not copy and name == _suggested_format(t._data):
        return None
    if target is t.dtype and not copy and not relaid:
        return None
    if type(t._data) is not np.ndarray or t.is_complex() and not target.is_complex:
        return None  # (the complex-to-real warning, other array types: to()'s own path)
    if relaid:
        _channels_last_rank(t, memory_format)
    overload = "dtype" if dtype is not None and not device_given else "device" if dtype is not None else "dtype_layout"
    if _function_module.active_dispatch is not None:
        _function_module.note_given(ToCopy, t, to_overload=overload)
    recorded = t._requires_grad and (target.is_floating_point or target.is_complex)
    if t._requires_grad and not recorded:
        with no_grad():
            return ToCopy.apply(t, dtype=target.np, memory_format=name if relaid else None)
    return ToCopy.apply(t, dtype=target.np, memory_format=name if relaid else None)


def rounded_once(compute, *operands: Tensor):
    """``compute(*operands)`` as torch's fused kernels run it on bfloat16 and float16: in float32,
    rounded once at the end, where the composite's own steps would round after each.

    None when the operands' promoted dtype has no wider opmath; the caller then runs its usual
    path. The casts are differentiable, so gradients flow back in float32 and arrive in each
    operand's own dtype. ``operands`` are tensors: a Python number in one of them must first be
    made a tensor of the result dtype, as torch rounds a wrapped number to it (``_pair``).
    """
    dtype = _dtype.result_type(*operands)
    wide = _opmath.fused_compute_dtype(dtype)
    if wide is None:
        return None
    return _cast(compute(*(_cast(t, wide) for t in operands)), dtype)


def rounded_through(t: Tensor, dtype) -> Tensor:
    """``t``'s values rounded to ``dtype`` and kept in ``t``'s dtype, where torch's kernel stores an
    intermediate in a half-precision buffer; the gradient passes unrounded (a straight-through cast)."""
    detached = t.detach()
    return t + (_cast(_cast(detached, dtype), t.dtype) - detached)


class ToCopy(Function):
    _array_forward = True
    node_name = "ToCopyBackward0"
    label = "to"
    rule = "passes the gradient through, cast to the input's dtype"

    @staticmethod
    def forward(ctx, x, dtype, memory_format=None):
        if x.dtype.kind == "c" and dtype.kind not in "cb":
            # torch keeps the real part (Tensor.to warns that the imaginary one is lost); to bool it
            # tests the whole value for nonzero
            x = x.real
        out = _dtype.cast_array(x, dtype)
        if memory_format is None:
            # torch's preserve_format: a dense x's strides, size-1 dims' too (NumPy's cast sets those
            # its own way); an expanded or overlapping x's suggested format, where NumPy's cast would
            # put a stride-0 dim innermost
            return out if x.flags.c_contiguous and 1 not in x.shape else preserved_layout(out, x)
        # to(memory_format=...): a new tensor with that format's strides, even without a cast
        return fresh_in_format(out, memory_format)

    @staticmethod
    def backward(ctx, grad):
        return grad  # the engine casts the gradient back to the input's dtype (the real part for a real one)


class ToDevice(Function):
    _array_forward = True
    node_name = "ToCopyBackward0"
    label = "to"
    rule = "passes the gradient through, moved back to the input's device"

    @staticmethod
    def forward(ctx, x, device):
        from .._backend import device_of, to_device

        ctx.source = device_of(x)
        return to_device(x, device)

    @staticmethod
    def backward(ctx, grad):
        return _to_device(grad, ctx.source)


def _to_device(t: Tensor, device) -> Tensor:
    return ToDevice.apply(t, device=device)


def _require_tensors(op: str, input, other=None) -> None:
    """torch's parser refuses a Python number where the signature says Tensor: ``fmax(t, 2)`` and
    ``eq(2, t)`` raise its TypeError instead of computing (``other=None``: only ``input`` is checked,
    for ops whose ``other`` may be a number)."""
    _check_tensor(input, op, "input", 1)
    if other is not None:
        _check_tensor(other, op, "other", 2)


def _promoted(t: Tensor, dtype: _dtype.dtype, recorded: bool) -> Tensor:
    """Operand ``t`` of a mixed-dtype op in the promoted ``dtype``: torch records no cast node, its
    op's node has ``t``'s own edge and casts the gradient back, and saves ``t`` in its own dtype
    (``recorded``: the other operand requires grad; see ``promoted_operand``)."""
    if t._data.dtype == dtype.np or not (dtype.is_floating_point or dtype.is_complex):
        return _cast(t, dtype)
    stand_in = _function_module.promoted_operand(t, lambda array: ToCopy.forward(None, array, dtype.np), recorded)
    return _cast(t, dtype) if stand_in is None else stand_in


def _pair(a, b):
    """Two Tensors of torch's promoted dtype from any mix of Tensors and Python numbers."""
    a_is_tensor = isinstance(a, Tensor)
    b_is_tensor = isinstance(b, Tensor)
    if a_is_tensor and b_is_tensor:
        if a._data.dtype == b._data.dtype:
            return a, b
        dtype = _dtype.result_type(a, b)
        return _promoted(a, dtype, b._requires_grad), _promoted(b, dtype, a._requires_grad)
    if a_is_tensor:
        if not isinstance(b, (builtins.int, builtins.float, builtins.bool, builtins.complex, np.number, np.bool_)):
            raise TypeError(f"unsupported operand type: Tensor and {type(b).__name__}")
        if b.__class__ is builtins.int:
            _dtype.check_int_scalar(b)
        dtype = _dtype.result_type(a, b)
        return _cast(a, dtype), _as_operand(b, dtype, a)
    if b_is_tensor:
        if not isinstance(a, (builtins.int, builtins.float, builtins.bool, builtins.complex, np.number, np.bool_)):
            raise TypeError(f"unsupported operand type: {type(a).__name__} and Tensor")
        if a.__class__ is builtins.int:
            _dtype.check_int_scalar(a)
        dtype = _dtype.result_type(a, b)
        return _as_operand(a, dtype, b), _cast(b, dtype)
    raise TypeError("expected at least one Tensor operand")


def _float_pair(a, b):
    """Like ``_pair`` but integer results are computed in the default float dtype (true division)."""
    a_pair, b_pair = _pair(a, b)
    if a_pair._data.dtype.kind not in "fcV":
        # a Python number goes to the float dtype directly, not through the integer one, which
        # would wrap it (int8 tensor / 300 divides by 300, as in torch, not by 44)
        dtype = _dtype.get_default_dtype()
        like = a if isinstance(a, Tensor) else b
        return tuple(_cast(x, dtype) if isinstance(x, Tensor) else _as_operand(x, dtype, like) for x in (a, b))
    return a_pair, b_pair


def _float_input(x: Tensor) -> Tensor:
    # a number or a list fails reading ._data, which the dispatching wrapper turns into torch's parser
    # error naming the op and the argument ("exp(): argument 'input' (position 1) must be Tensor, not float")
    if x._data.dtype.kind not in "fVc":
        return _cast(x, _dtype.get_default_dtype())
    return x


def refuse_kernel(x: Tensor, kernel: str) -> None:
    """torch's error for an op whose CPU kernel ``kernel`` has no instance for x's dtype."""
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(x.dtype)}'")


def float_kernel_input(x: Tensor, kernel: str, complex_too: bool = True) -> Tensor:
    """``x`` for an op whose kernel is defined on real floating dtypes only (``complex_too=False``:
    and complex ones): other tensors raise torch's error naming ``kernel``, where ``_float_input``
    would cast them."""
    if isinstance(x, Tensor) and x._data.dtype.kind in ("biuc" if complex_too else "biu"):
        refuse_kernel(x, kernel)
    return _float_input(x)


# ---------------------------------------------------------------- complex gradients
class Conj(Function):
    _array_forward = True
    node_name = "ConjBackward0"
    label = "conj"
    rule = "conjugates the gradient"
    formula = "conj({0})"

    @staticmethod
    def forward(ctx, z):
        # torch's conj is a view, in z's strides: a dense z's are kept, a size-1 dim's of a row-major z
        # too (NumPy's row-major result has its own there), so a rule's conjugated gradient keeps the
        # layout its kernel gave it; a sliced z's in memory as long as z's reach (kept_strides_layout).
        # An overlapping z's (expand's) are not: dense in z's stride order, as clone() would be.
        out = array_module(z).conj(z)
        if z.flags.c_contiguous and 1 not in z.shape:
            return out
        if not dense_non_overlapping(z):
            kept = kept_strides_layout(out, z)
            if kept is not None:
                return kept
        return preserved_layout(out, z)

    @staticmethod
    def backward(ctx, grad):
        return _conj_view(grad)  # torch's rule is grad.conj(): a leaf's grad through conj() is a conj view


class InternalConj(Conj):
    """chainrule's own conjugation (``_conj``): torch's conj node, whose gradient carries no conj bit,
    so a rule's intermediate conj never marks what reaches a user."""

    node_name = "ConjBackward0"

    @staticmethod
    def forward(ctx, z):
        # a kernel's conjugation, fresh memory laid out as TensorIterator lays out a unary op's
        out = array_module(z).conj(z)
        return out if z.flags.c_contiguous and 1 not in z.shape else unary_layout(out, z)

    @staticmethod
    def backward(ctx, grad):
        return _conj(grad)


def _conj(input: Tensor) -> Tensor:
    """The complex conjugate for chainrule's own use (gradient rules, linalg, fft): ``input`` itself
    when it is real, else in new memory and without torch's conj bit, as torch's kernels conjugate
    where they compute (its gradient unmarked too). No dispatch: what a user's override or mode sees
    is the public op alone."""
    if input._data.dtype.kind != "c":
        return input
    return InternalConj.apply(input)


def _conj_view(input: Tensor, shared: bool = False) -> Tensor:
    """What torch's ``conj()`` returns, for the public op and for the rules whose torch result is
    such a view (ifft of a real input, ihfft, ConjBackward0's gradient): ``input`` itself when it is
    real, else the conjugate carrying the conj bit flipped from ``input``'s (is_conj(), ops/complex.py),
    expanded where ``input`` is (torch's view keeps its strides: AccumulateGrad then clones it, which
    resolves the bit). ``shared``: a user's conj() of a tensor the user holds, which torch's view
    writes through to and reads from (``_view_conjugate``)."""
    if input._data.dtype.kind != "c":
        return input
    result = Conj.apply(input)
    if not input._conj_bit:
        result._conj_bit = True
    data, copy = input._data, result._data
    read = data
    if 0 in data.strides and data.size > 1 and type(copy) is type(data):
        # conjugate one of each repeated element, and repeat it as the input does
        xp = array_module(data)
        read = data[tuple(slice(0, 1) if stride == 0 else slice(None) for stride in data.strides)]
        copy = xp.conj(read)
        result._data = xp.broadcast_to(copy, data.shape)
    if shared:
        _view_conjugate(result, input, copy, read)
    return result


def _view_conjugate(view: Tensor, source: Tensor, copy, read) -> None:
    """``view`` reads ``copy``, the conjugate of ``read`` (source's memory): kept so
    (tensor.ConjugateViews), as view joins source's version counter, which from now on writes a
    write through either side into the other."""
    box = source._vbox
    if box is INFERENCE_VERSION or box is INFERENCE_WRITE or source._wrapper_strides is not None:
        return  # (an inference tensor is written only inside inference_mode; a wrapper holds no memory)
    if type(box) is not ConjugateViews:
        counter = source._version_box
        box = ConjugateViews(counter)
        # the family's tensors that chainrule knows (source, its root, the root's tracked views) share it
        root = source if source._base is None else source._base
        for tensor in (source, root, *(ref() for ref in root._live_views or ())):
            if tensor is not None and tensor._vbox is counter:
                tensor._vbox = box
    view._vbox = box
    box.add(view, copy, read, source)


def conjugate_rule(backward, recorded_node: str | None = None):
    """``backward`` of a holomorphic op, written as for real numbers (grad · f'(z)), made to follow
    torch's convention for complex tensors, grad · conj(f'(z)) = conj(conj(grad) · f'(z)).

    A rule that is a real-coefficient expression of the grad and saved tensors (mul, div, exp,
    matmul, ...) becomes correct for complex inputs under this wrapper; a real grad runs the rule
    unchanged, at the cost of one dtype test per backward call. ``recorded_node``: torch's name for
    the node a recorded (create_graph) backward of a complex grad ends in, the outer conj here."""
    def rule(ctx, grad):
        if grad is None or grad._data.dtype.kind != "c":
            return backward(ctx, grad)
        result = backward(ctx, _conj(grad))
        if type(result) is tuple:
            return tuple(_conj(g) if g is not None else None for g in result)
        if result is None:  # no gradient (a constant factor)
            return None
        result = _conj(result)
        return name_node(result, recorded_node) if recorded_node and result.grad_fn is not None else result

    rule.__name__ = rule.__qualname__ = backward.__name__
    rule.__doc__ = backward.__doc__
    return rule


def refuse_complex(x, message: str, error: type = NotImplementedError) -> None:
    """torch's error for an op with no complex definition (ordering, rounding, clamping); torch
    raises NotImplementedError (a RuntimeError) or RuntimeError, with these messages."""
    if isinstance(x, Tensor) and x._data.dtype.kind == "c":
        raise error(message.replace("{dtype}", "ComplexFloat" if x._data.dtype.itemsize == 8 else "ComplexDouble"))


def _laid_out(result: Tensor, *operands: Tensor) -> Tensor:
    """``result``, fresh from a composite of ``operands`` (or from NumPy directly), its array laid
    out as torch's one kernel lays out its output from them (``memory_format.iterator_layout``):
    the composite's own steps would follow their intermediate operands' layouts instead."""
    arrays = [t._data for t in operands if isinstance(t, Tensor)]
    if len(arrays) > 1 and result is not operands[0] and getattr(type(result), "__torch_dispatch__", None) is None:
        result._data = iterator_layout(result._data, *arrays)
    if _vmap_frames._frames and result._grad_fn is None:  # (NumPy's directly, no Function saw it: int(x // 2))
        _vmap_frames.note_results(operands, None, result)
    return result


# ---------------------------------------------------------------- arithmetic
class Add(Function):
    label = "+"
    torch_name = "add"
    rule = "copies the gradient to both inputs (∂/∂a = 1, ∂/∂b = 1)"
    formula = "{0} + {1}"
    _array_forward = True
    # torch's names for what the node keeps (grad_fn._saved_*); alpha as add(..., alpha=) gave it
    saved_attributes = {"_saved_alpha": SavedValue(lambda node: getattr(node, "alpha", 1))}

    @staticmethod
    def forward(ctx, a, b):
        out = a + b
        # memory_format.iterator_layout's own test, inline on the hottest ops: a 0-d or 1-d result, or
        # one of row-major operands, is laid out as torch's already (ndim first: it allocates nothing)
        return out if out.ndim < 2 or a.flags.c_contiguous and b.flags.c_contiguous and 1 not in out.shape else (
            iterator_layout(out, a, b))

    @staticmethod
    def backward(ctx, grad):
        # d(a + b) = da + db
        return grad, grad


class Sub(Function):
    label = "-"
    torch_name = "sub"
    rule = "copies the gradient to a and its negative to b (∂/∂a = 1, ∂/∂b = -1)"
    formula = "{0} - {1}"
    _array_forward = True
    saved_attributes = Add.saved_attributes

    @staticmethod
    def forward(ctx, a, b):
        out = a - b
        return out if out.ndim < 2 or a.flags.c_contiguous and b.flags.c_contiguous and 1 not in out.shape else (
            iterator_layout(out, a, b))

    @staticmethod
    def backward(ctx, grad):
        # d(a - b) = da - db
        return grad, -grad if ctx.needs_input_grad[1] else None


# torch's bfloat16/float16 add kernel runs 2 float vectors' worth of elements a step (32 with AVX512,
# 16 with AVX2), in float32, rounding once; the remaining elements of a loop go through its scalar
# ``self + alpha * other`` on c10::Half/BFloat16 values, whose product is rounded to the dtype first.
# With AVX2 the step measured against torch 2.13 is 32 elements too (2 Vectorized<Half/BFloat16> of
# 16 halves in 256 bits), not 16: lengths 16 and 31 run wholly scalar, 33 and 100 leave 1 and 4
_HALF_ADD_STEP = 2 * cpu_softmax_order.LANES if cpu_features.AVX512_CORE else 32
# at::internal::GRAIN_SIZE: a longer loop is split among threads, each part with its own tail
_GRAIN_SIZE = 32768


def _rounded_tail(result, a, b, alpha) -> None:
    """``result`` (``a + alpha * b`` rounded once, bfloat16/float16, C-contiguous) with the elements
    that torch's scalar loop computes rounded as it rounds them. In row-major layouts TensorIterator
    coalesces the dims whose strides chain into rows; a row of operands each contiguous or a single
    broadcast value is vectorised but for its last ``length % _HALF_ADD_STEP`` elements. Operands of
    the result's shape with no dim in which all run contiguously take the scalar loop throughout.
    Other layouts (dims reordered by their strides) and loops split among threads keep one rounding."""
    size = result.size
    if not size or size >= _GRAIN_SIZE or type(result) is not np.ndarray or not result.flags.c_contiguous:
        return
    shape = result.shape
    itemsize = result.itemsize
    strides = [np.broadcast_to(operand, shape).strides for operand in (a, b)]
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    if not dims:  # one element: the scalar loop
        first = 0
        rows = 1
    elif any(st[dims[-1]] not in (0, itemsize) for st in strides):
        if a.shape == b.shape == shape and not any(all(st[d] == itemsize for st in strides) for d in dims):
            first = 0  # strided: the scalar loop for every element
            rows = 1
        else:
            return
    else:
        length = shape[dims[-1]]
        for outer, d in zip(reversed(dims[:-1]), reversed(dims[1:])):
            if any(st[outer] != st[d] * shape[d] for st in strides):
                break
            length *= shape[outer]
        if length % _HALF_ADD_STEP == 0:
            return
        rows = size // length
        first = length - length % _HALF_ADD_STEP
    view = result.reshape(rows, -1)
    a_tail = np.broadcast_to(a, shape).reshape(rows, -1)[:, first:]
    b_tail = np.broadcast_to(b, shape).reshape(rows, -1)[:, first:]
    product = (b_tail.astype(np.float32) * np.float32(alpha)).astype(result.dtype)
    view[:, first:] = (a_tail.astype(np.float32) + product.astype(np.float32)).astype(result.dtype)


def fused_scaled_add(a, b, alpha, out=None):
    """``a + alpha * b`` with ``alpha`` already in the operands' dtype (into ``out`` if given).
    float32 rounds once, as torch's CPU add kernel does: its loop is a fused multiply-add
    (``p.add_(grad, alpha=-lr)``, an SGD step, differs from ``a + alpha * b`` rounded twice in about
    a fifth of the elements). The float32 product is exact in float64 and the float64 sum is
    rounded to float32 once more (correctly rounded but for rare near-ties); float64 rounds once too,
    by an exact emulation (``_opmath.fused_multiply_add_float64``) unless alpha is a power of two.
    bfloat16/float16 compute in float32 and round once at the end, but for the scalar tail of
    torch's vectorised loop (``_rounded_tail``); other dtypes keep NumPy's two roundings."""
    if a.dtype == b.dtype and a.dtype.itemsize == 2 and a.dtype.kind in "fV":  # float16, bfloat16
        result = (a.astype(np.float32) + b.astype(np.float32) * np.float32(alpha)).astype(a.dtype)
        _rounded_tail(result, a, b, alpha)
    elif a.dtype != np.float32 or b.dtype != np.float32:
        if a.dtype != np.float64 or b.dtype != np.float64 or np.frexp(alpha)[0] in (0.5, -0.5):
            result = a + b * alpha  # (a power of two's product is exact: the sum rounds once)
        else:
            return _opmath.fused_multiply_add_float64(b, builtins.float(alpha), a, out=out)
    elif alpha == 1 or alpha == -1:
        # no product to round: the sum's one rounding is the fma's (SGD's momentum buffer without
        # dampening, each step)
        if out is a:
            if alpha == 1:
                a += b
            else:
                a -= b
            return a
        result = a + b if alpha == 1 else a - b
    else:
        return _opmath.fused_multiply_add_float32(b, np.float64(alpha), a, out=out)
    if out is None:
        return result
    out[...] = result
    return out


class AddScaled(Add):
    """``a + alpha * b`` (add with alpha): one node, as torch's, with alpha kept on it."""

    node_name = "AddBackward0"
    formula = "{0} + alpha * {1}"

    @staticmethod
    def forward(ctx, a, b, alpha):
        ctx.alpha = alpha
        # a and b share the result's dtype (add promotes them first); alpha is rounded to it
        out = fused_scaled_add(a, b, b.dtype.type(alpha))
        return out if out.ndim < 2 or a.flags.c_contiguous and b.flags.c_contiguous and 1 not in out.shape else (
            iterator_layout(out, a, b))

    @staticmethod
    def backward(ctx, grad):
        # d(a + αb) = da + α db, α a number (torch's maybe_multiply: MulBackward1 under create_graph)
        return grad, _times_alpha(grad, ctx.alpha) if ctx.needs_input_grad[1] else None


class SubScaled(Sub):
    """``a - alpha * b`` (sub with alpha): one node, as torch's, with alpha kept on it."""

    node_name = "SubBackward0"
    formula = "{0} - alpha * {1}"

    @staticmethod
    def forward(ctx, a, b, alpha):
        ctx.alpha = alpha
        out = fused_scaled_add(a, b, -b.dtype.type(alpha))  # torch's sub is add with -alpha
        return out if out.ndim < 2 or a.flags.c_contiguous and b.flags.c_contiguous and 1 not in out.shape else (
            iterator_layout(out, a, b))

    @staticmethod
    def backward(ctx, grad):
        # d(a - αb) = da - α db: torch's maybe_multiply(-grad, α), NegBackward0 then MulBackward1 under create_graph
        return grad, _times_alpha(-grad, ctx.alpha) if ctx.needs_input_grad[1] else None


def _times_alpha(grad, alpha):
    """``grad * alpha`` as torch's maybe_multiply records it, alpha a number (a sparse gradient keeps
    its own product, which keeps its pattern)."""
    return grad * alpha if grad.__class__ in SPARSE_COO_TYPES else MulNumber.apply(grad, number=alpha)


class RSub(Function):
    """``number - alpha * tensor`` (the reflected operator, torch.rsub of a tensor and a number):
    torch records it as rsub of the tensor and a scalar, a node with the tensor's edge only."""

    _array_forward = True
    node_name = "RsubBackward1"
    label = "rsub"
    rule = "number - alpha·tensor: the tensor gets the gradient times -alpha (∂/∂a = -alpha)"
    formula = "{number} - {0}"
    saved_attributes = Add.saved_attributes

    @staticmethod
    def forward(ctx, x, number, alpha=1):
        ctx.number = number  # (read by the explainer's formula)
        if alpha == 1:
            # as a scalar of x's dtype: bfloat16 (ml_dtypes) would take a Python float as float32
            return number_layout(x.dtype.type(number) - x, x)
        ctx.alpha = alpha
        # torch's rsub is sub(number, x, alpha): add with -alpha, the number in x's dtype
        return number_layout(fused_scaled_add(np.asarray(number, dtype=x.dtype), x, -x.dtype.type(alpha)), x)

    # the dispatch layer shows it as torch's rsub.Scalar(self, other, alpha)
    @staticmethod
    def to_aten_arguments(inputs, params) -> tuple:
        alpha = params.get("alpha", 1)
        return ((inputs[0], params["number"]) if alpha == 1 else (inputs[0], params["number"], alpha)), {}

    @staticmethod
    def from_aten_arguments(args, kwargs) -> tuple:
        tensor, number = args[:2]
        alpha = args[2] if len(args) > 2 else kwargs.get("alpha", 1)
        return (tensor,), ({"number": number} if alpha == 1 else {"number": number, "alpha": alpha})

    @staticmethod
    def backward(ctx, grad):
        alpha = getattr(ctx, "alpha", 1)
        return -grad if alpha == 1 else grad * -alpha


class RSubTensors(Function):
    """torch.rsub(input, other, alpha): ``other - alpha * input`` as torch records it, one
    RsubBackward0 node with input's edge first (sub(other, input) would put other's first)."""

    _array_forward = True
    node_name = "RsubBackward0"
    label = "rsub"
    rule = "other - alpha·input: other gets the gradient, input its product with -alpha"
    formula = "{1} - alpha * {0}"
    saved_attributes = Add.saved_attributes
    aten_overload = "Tensor"  # (RSub is rsub.Scalar)

    @staticmethod
    def to_aten_arguments(inputs, params) -> tuple:
        alpha = params.get("alpha", 1)
        return tuple(inputs), ({} if alpha == 1 else {"alpha": alpha})

    @staticmethod
    def from_aten_arguments(args, kwargs) -> tuple:
        alpha = args[2] if len(args) > 2 else kwargs.get("alpha", 1)
        return tuple(args[:2]), ({} if alpha == 1 else {"alpha": alpha})

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        if alpha == 1:
            out = b - a
        else:
            ctx.alpha = alpha
            out = fused_scaled_add(b, a, -a.dtype.type(alpha))  # torch's rsub is add with -alpha
        return out if out.ndim < 2 or a.flags.c_contiguous and b.flags.c_contiguous and 1 not in out.shape else (
            iterator_layout(out, b, a))

    @staticmethod
    def backward(ctx, grad):
        alpha = getattr(ctx, "alpha", 1)
        if not ctx.needs_input_grad[0]:
            return None, grad
        return (-grad if alpha == 1 else grad * -alpha), grad


class Mul(Function):
    label = "mul"
    rule = "∂/∂a = b, ∂/∂b = a (each input gets the gradient times the other)"
    formula = "{0} * {1}"
    _array_forward = True
    saved_attributes = {"_saved_other": saved(0), "_saved_self": saved(1)}

    @staticmethod
    def forward(ctx, a, b):
        # save only what the other input's gradient needs, so `x.mul_(2)` keeps working
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None,
                              a if ctx.needs_input_grad[1] else None)
        out = a * b
        return out if out.ndim < 2 or a.flags.c_contiguous and b.flags.c_contiguous and 1 not in out.shape else (
            iterator_layout(out, a, b))

    @staticmethod
    @conjugate_rule
    def backward(ctx, grad):
        # d(a * b) = b da + a db
        b, a = ctx.saved_values
        return (_times(grad, b) if b is not None else None), (_times(grad, a) if a is not None else None)


def _times(grad: Tensor, factor: Tensor) -> Tensor:
    """``grad * factor`` in a rule: on the arrays in a plain backward when the dtypes and the
    array kinds agree (the same ufunc; the Tensor op would record nothing and only wrap it), else
    the Tensor op, which records under create_graph, promotes mixed dtypes as torch does (NumPy
    would promote a 0-d operand of another dtype differently) and brings a 0-d CPU factor to a
    device gradient's device."""
    data = factor._data
    if on_arrays(grad) and data.dtype == grad._data.dtype and type(data) is type(grad._data):
        out = grad._data * data
        # (laid out as the Tensor op lays it out: a transposed gradient's product is transposed, and
        # the engine's sum of it over broadcast dims adds in that layout's order, as torch's)
        if out.ndim > 1 and not (grad._data.flags.c_contiguous and data.flags.c_contiguous and 1 not in out.shape):
            out = iterator_layout(out, grad._data, data)
        return Tensor._make(out)
    return grad * factor


class Div(Function):
    label = "div"
    rule = "∂/∂a = 1/b, ∂/∂b = -a/b²"
    formula = "{0} / {1}"
    _array_forward = True
    saved_attributes = {"_saved_self": saved(0), "_saved_other": saved(1)}

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        if b.dtype.kind in "biu" and a.dtype.kind in "fc":  # an integer divisor, in a's dtype as torch's kernel
            b = b.astype(a.dtype)
        out = a / b
        return out if out.ndim < 2 or a.flags.c_contiguous and b.flags.c_contiguous and 1 not in out.shape else (
            iterator_layout(out, a, b))

    @staticmethod
    @conjugate_rule
    def backward(ctx, grad):
        # d(a / b) = da / b - (a / b) / b db  (torch's order: b * b would overflow first)
        a, b = ctx.saved_values
        grad_a = grad / b if ctx.needs_input_grad[0] else None
        grad_b = -grad * ((a / b) / b) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    label = "neg"
    rule = "flips the sign of the gradient (∂/∂a = -1)"
    formula = "-{0}"
    _array_forward = True
    saved_attributes = {}

    @staticmethod
    def forward(ctx, x):
        return -x if x.flags.c_contiguous else unary_layout(-x, x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _integer_power_with_negative_exponents(xp, x, exponent):
    """torch's integer pow where an exponent tensor holds negative values (NumPy refuses them): 1/x
    truncated, so 1 for x = 1, ±1 for x = -1 by the exponent's parity, 0 otherwise (0 too)."""
    negative = exponent < 0
    powered = xp.power(x, xp.where(negative, 0, exponent))
    odd = (exponent % 2) != 0
    reciprocal = xp.where(x == 1, 1, xp.where(x == -1, xp.where(odd, -1, 1), 0))
    return xp.where(negative, reciprocal, powered).astype(powered.dtype, copy=False)


class Pow(Function):
    _array_forward = True
    saved_attributes = {"_saved_self": saved(0), "_saved_exponent": saved(1), "_saved_result": saved(2)}
    node_name = "PowBackward1"  # torch's pow(Tensor, Tensor) overload
    label = "pow"
    rule = "∂/∂a = b·a^(b-1), ∂/∂b = a^b·log a"
    formula = "{0} ** {1}"

    @staticmethod
    def forward(ctx, x, exponent):
        xp = array_module(x)
        if x.dtype.kind in "iu" and exponent.dtype.kind in "iu" and (exponent < 0).any():
            y = _integer_power_with_negative_exponents(xp, x, exponent)
        else:
            y = xp.power(x, exponent)
        y = iterator_layout(y, x, exponent)
        ctx.save_for_backward(x, exponent, y)  # torch's PowBackward1 keeps the result whichever input needs grad
        return y

    @staticmethod
    @conjugate_rule
    def backward(ctx, grad):
        x, exponent, y = ctx.saved_values
        grad_x = grad_e = None
        if ctx.needs_input_grad[0]:
            # d(x^e)/dx = e x^(e-1); torch defines it as 0 where e == 0 (even at x == 0), and multiplies
            # grad by the product e x^(e-1) (pow_backward_self's order, which the bits show)
            grad_x = where(exponent == 0, 0.0, grad * (exponent * x ** (exponent - 1)))
        if ctx.needs_input_grad[1]:
            # d(x^e)/de = x^e log x, taken as 0 where x == 0 and e >= 0; grad times the masked product
            # (pow_backward_exponent's order)
            at_zero = (x == 0) & (exponent >= 0) if x._data.dtype.kind != "c" else x == 0  # complex has no order
            grad_e = grad * where(at_zero, 0.0, y * log(x))
        return grad_x, grad_e


class PowScalar(Function):
    """x ** c for a Python number c: the common case, with a cheaper rule and node."""

    _array_forward = True
    saved_attributes = {"_saved_self": saved(0), "_saved_exponent": ctx_value("exponent")}
    node_name = "PowBackward0"
    label = "pow"
    rule = "∂/∂a = c·a^(c-1) for the constant exponent c"
    formula = "{0} ** {exponent}"

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        y = _pow_scalar(x, exponent)
        # (laid out as a unary op's result)
        return y if x.flags.c_contiguous else unary_layout(y, x)

    @staticmethod
    @conjugate_rule
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        e = ctx.exponent
        if e == 0:
            return zeros_like_tensor(grad)
        if is_recording(x):  # recorded (create_graph): torch's formula, whose graph reaches x even where
            # the derivative is constant (x ** 1 gives x ** 0, requiring grad); its exponent a C++ double
            # (mul's Scalar overload, MulBackward1)
            return grad * MulNumber.apply(x ** (e - 1), number=e)
        # (e == 1 too: torch's rule makes a new tensor, so a hook that edits x's gradient in place, or
        # the result of autograd.grad, is never the caller's upstream gradient)
        if e == 2:
            if 1 in x.shape and x._data.flags.c_contiguous:
                # torch's 2 * x.pow(1): the pow, a unary op, gives a row-major input (whatever its size-1
                # dims' strides) a fresh row-major result (TensorIterator's fast set-up), as 2 * x would not.
                # Tensor ops, so that vmap's record sees them (an array made here would be of unknown origin)
                return grad * (2.0 * x.pow(1))
            return grad * (2.0 * x)
        return grad * (e * x ** (e - 1))


def _pow_scalar(x, exponent):
    """x ** exponent on arrays, in torch's kernel's steps."""
    xp = array_module(x)
    if exponent == 2:
        return x * x
    if x.dtype.char in "fd":
        # torch's pow_tensor_scalar kernel (PowKernel.cpp) multiplies or divides for these
        # exponents, which rounds differently from pow (x ** 3 differed in 1 of 3 elements)
        if exponent == 3:
            return x * x * x
        if exponent == -2:
            return 1 / (x * x)
        if exponent == -0.5:
            return 1 / xp.sqrt(x)
    elif x.dtype == _dtype.bfloat16.np and (exponent == 3 or exponent == -2):
        # torch's bfloat16 kernel takes the same steps, each rounded to bfloat16
        square = x * x
        return square * x if exponent == 3 else x.dtype.type(1) / square
    if x.dtype == np.bool_:  # bool ** bool stays bool (NumPy's would be int8)
        return xp.power(x, builtins.int(exponent)).astype(np.bool_)
    return xp.power(x, x.dtype.type(exponent)) if x.dtype.kind in "fVc" else xp.power(x, exponent)


class RPowScalar(Function):
    """c ** x for a Python number c."""

    _array_forward = True
    node_name = "PowBackward2"  # torch's pow(Scalar, Tensor) overload
    label = "pow"
    rule = "∂/∂a = c^a·log c for the constant base c"
    formula = "{base} ** {0}"
    # torch's node keeps the exponent too (writing it in place then fails the backward, as torch's)
    saved_attributes = {"_saved_exponent": saved(1), "_saved_result": saved(0), "_saved_self": ctx_value("base")}

    @staticmethod
    def forward(ctx, x, base):
        xp = array_module(x)
        y = xp.power(x.dtype.type(base), x)
        ctx.save_for_backward(y, x)
        ctx.base = base
        return y

    @staticmethod
    @conjugate_rule
    def backward(ctx, grad):
        # d(c^x) = c^x log(c) dx
        xp = array_module(grad)
        y = ctx.saved_values[0]
        if ctx.base == 0 and not y.is_complex():
            # torch's rule for a zero base: 0 where a >= 0 (where 0^a is 0 or 1), else 0^a log 0 = -inf
            return grad * where(y <= 1, 0.0, y * float("-inf"))
        return grad * y * float(xp.log(ctx.base)) if ctx.base > 0 else grad * y * float("nan")


def zeros_like_tensor(t: Tensor) -> Tensor:
    xp = array_module(t)
    out = Tensor._make(xp.zeros_like(t._data))
    if _function_module.tracing_ops:  # the same zeros for every slice of a vmap that records its ops
        _function_module.traced_constant(out)
    return out


def accepts_scalar_first(keyword: str, tensors: str):
    """Let ``fn`` take torch's deprecated overload that puts the scalar before the tensors,
    ``add(input, alpha, other)`` or ``addcmul(input, value, tensor1, tensor2)``: torch 2.x still
    accepts it (old scripts' ``p.data.add_(-lr, p.grad.data)``, hand-written Adam's
    ``addcmul_(1 - beta2, grad, grad)``, DARTS's ``p.data.add_(R, v)`` with a 0-d tensor ``R``),
    computes the keyword form and warns once per process. ``tensors`` names the tensor parameters
    after ``input``, as torch's warning spells them. The wrapper warns in the method's words and
    keeps ``(name, keyword, names)`` as ``scalar_first``, for the in-place methods and the
    functions to rewrite their calls in their own words first."""
    import functools

    names = tensors.split(", ")

    def decorate(fn):
        @functools.wraps(fn)
        def taking_scalar_first(*args, **kwargs):
            args, kwargs = scalar_first_as_keyword(taking_scalar_first.scalar_first, "method", args, kwargs)
            return fn(*args, **kwargs)

        taking_scalar_first.scalar_first = (fn.__name__, keyword, names)
        return taking_scalar_first

    return decorate


def scalar_first_as_keyword(scalar_first: tuple, form: str, args: tuple, kwargs: dict):
    """``(input, scalar, *tensors)`` rewritten as ``(input, *tensors)`` with ``keyword=scalar``, warning
    in ``form``'s words ("method", "inplace", "function"); other calls unchanged."""
    name, keyword, names = scalar_first
    if len(args) == len(names) + 2 and keyword not in kwargs and _is_scalar_argument(args[1]):
        _warn_scalar_first_once(name, form, keyword, names)
        scalar = args[1].item() if isinstance(args[1], Tensor) else args[1]
        return (args[0], *args[2:]), {**kwargs, keyword: scalar}
    return args, kwargs


def _is_scalar_argument(value) -> builtins.bool:
    """What torch's parser takes for a Number: a Python or NumPy number, or a 0-d tensor that does
    not require grad (a 1-element 1-d tensor, or one that requires grad, is a Tensor there)."""
    if isinstance(value, Tensor):
        return value.ndim == 0 and not value.requires_grad
    return _is_python_number(value)


def accepts_two_numbers(fn):
    """torch's parser matches two Python numbers to the Tensor overload of add, sub, mul and the
    divisions, wrapping the first as a 0-d tensor: ``torch.add(2, 1.5)`` is ``tensor(3.5000)``
    (float32), not a TypeError."""
    import functools

    scalar_first = getattr(fn, "scalar_first", None)

    @functools.wraps(fn)
    def wrapping_a_number(input, other, *args, **kwargs):
        if scalar_first is not None and args:  # torch.add(input, alpha, other), warned in the function's words
            (input, other, *args), kwargs = scalar_first_as_keyword(scalar_first, "function",
                                                                    (input, other, *args), kwargs)
        if _is_python_number(input) and _is_python_number(other):
            input = _as_operand(input, _dtype.scalar_dtype(input))
        return fn(input, other, *args, **kwargs)

    wrapping_a_number.for_a_tensor = fn  # what a method, whose self is a tensor, calls directly
    return wrapping_a_number


def scalar_first_in_function_words(fn):
    """``fn``, an op taking the deprecated scalar-first overload (``accepts_scalar_first``), as the
    function ``torch.<name>``: that overload warns with the function's signature, ``input`` and
    ``out`` in it, as torch's does. The method (``for_a_tensor``, what ``Tensor.<name>`` is bound
    to) warns with the method's."""
    import functools

    @functools.wraps(fn)
    def as_function(*args, **kwargs):
        args, kwargs = scalar_first_as_keyword(fn.scalar_first, "function", args, kwargs)
        return fn(*args, **kwargs)

    as_function.for_a_tensor = fn
    return as_function


def _is_python_number(value) -> builtins.bool:
    return isinstance(value, (builtins.int, builtins.float, builtins.complex, np.number)) and not isinstance(value, Tensor)


def _warn_scalar_first_once(name: str, form: str, keyword: str, names: list) -> None:
    """torch's words, once per process as torch warns (one flag for all deprecated overloads, the
    addmm family's beta-first ones too): the signatures of the method, the in-place method
    (``add_``) or the function (``input`` and ``out``)."""
    from . import _arg_parser

    if _arg_parser._deprecated_overload_warned:
        return
    _arg_parser._deprecated_overload_warned = True
    import warnings

    tensors = ", ".join(f"Tensor {n}" for n in names)
    if form == "inplace":
        name = name + "_"
    if form == "function":
        deprecated = f"{name}(Tensor input, Number {keyword}, {tensors}, *, Tensor out = None)"
        instead = f"{name}(Tensor input, {tensors}, *, Number {keyword} = 1, Tensor out = None)"
    else:
        deprecated = f"{name}(Number {keyword}, {tensors})"
        instead = f"{name}({tensors}, *, Number {keyword} = 1)"
    warnings.warn(f"This overload of {name} is deprecated:\n\t{deprecated}\n"
                  f"Consider using one of the following signatures instead:\n\t{instead}"
                  f"{_arg_parser.DEPRECATED_OVERLOAD_SOURCE}", UserWarning, stacklevel=user_stacklevel())


@accepts_two_numbers
@accepts_scalar_first("alpha", "other")
@honours_out
def add(input, other, *, alpha=1, out=None) -> Tensor:
    """torch.add: ``input + alpha * other`` with broadcasting and type promotion."""
    if input.__class__ in SPARSE_COO_TYPES or other.__class__ in SPARSE_COO_TYPES:
        _check_sparse_addition(input, other)
        if input.__class__ in SPARSE_COO_TYPES and other.__class__ in SPARSE_COO_TYPES and out is None:
            return input.add(other, alpha=alpha)  # sparse + sparse stays sparse, as torch's
    if type(alpha) is not builtins.int or alpha != 1:
        alpha = _check_alpha(input, other, alpha)
    if alpha != 1:
        # torch casts other to the result's dtype before scaling it (float32 + alpha·float16
        # scales in float32), so the operands are promoted first
        return AddScaled.apply(*_pair(input, other), alpha=alpha)
    a, b = _pair(input, other)
    return Add.apply(a, b)


# the sparse COO tensor class, registered by sparse.py (above this module): add and sub look an
# operand's class up here, which costs a dense call less than asking each operand is_sparse
SPARSE_COO_TYPES: set = set()


def _check_sparse_addition(input, other) -> None:
    """torch's refusals of a sparse COO addend: added to anything but another sparse tensor (a dense
    one, a number), it must come second; added into a dense tensor, it does not broadcast."""
    input_is_sparse, other_is_sparse = getattr(input, "is_sparse", False), getattr(other, "is_sparse", False)
    if input_is_sparse and not other_is_sparse:
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
    # (a number is a 0-d tensor here)
    input_shape = list(input.shape) if isinstance(input, Tensor) else []
    if other_is_sparse and not input_is_sparse and input_shape != list(other.shape):
        raise RuntimeError(f"add: expected 'self' and 'other' to have same size, but self has size {input_shape} "
                           f"while other has size {list(other.shape)} (FYI: dense-sparse addition does not "
                           "currently support broadcasting)")


def _check_alpha(input, other, alpha):
    """``alpha`` as add/sub use it, after torch's checks against the result's dtype: a bool alpha
    only for a bool result, no fractional alpha for an integer result, no complex alpha for a real
    one, none that overflows the result's dtype (a bool result takes its truth value). A 0-d tensor
    alpha, a Number to torch's parser, is its value: an int64 one is an integer alpha."""
    if isinstance(alpha, Tensor):
        alpha = alpha.item()
    result = _dtype.result_type(input, other)
    category = result._category  # bool 0, integer 1, floating 2, complex 3
    if isinstance(alpha, (builtins.bool, np.bool_)):
        if category != 0:
            raise RuntimeError("Boolean alpha only supported for Boolean results.")
    elif category < 2 and not isinstance(alpha, (builtins.int, np.integer)):
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
    if category != 3 and isinstance(alpha, (builtins.complex, np.complexfloating)):
        raise RuntimeError("For non-complex input tensors, argument alpha must not be a complex number.")
    return _dtype.checked_scalar(alpha, result)


@accepts_two_numbers
@accepts_scalar_first("alpha", "other")
@honours_out
def sub(input, other, *, alpha=1, out=None) -> Tensor:
    """sub(input, other, *, alpha=1, out=None) -> Tensor

    ``input - alpha * other``, broadcast (torch.sub)."""
    if input.__class__ in SPARSE_COO_TYPES or other.__class__ in SPARSE_COO_TYPES:
        _check_sparse_addition(input, other)
        if input.__class__ in SPARSE_COO_TYPES and other.__class__ in SPARSE_COO_TYPES and out is None:
            return input.sub(other, alpha=alpha)
    _check_int_operands(input, other, alpha)
    input_is_bool, other_is_bool = _is_bool(input), _is_bool(other)
    if input_is_bool or other_is_bool:
        _checked_sub_operands(input, other, alpha)  # (raises torch's error)
    if type(alpha) is not builtins.int or alpha != 1:
        alpha = _check_alpha(input, other, alpha)
    if alpha != 1:
        # torch casts other to the result's dtype before scaling it (float32 + alpha·float16
        # scales in float32), so the operands are promoted first
        return SubScaled.apply(*_pair(input, other), alpha=alpha)
    a, b = _pair(input, other)
    return Sub.apply(a, b)


def _checked_sub_operands(input, other, alpha):
    """sub's (and rsub's) checks of ``input - alpha * other``, in torch's order; ``alpha`` as it is
    used. (sub runs the common case's checks inline, its hot path, and this one for a bool operand.)"""
    _check_int_operands(input, other, alpha)
    input_is_bool, other_is_bool = _is_bool(input), _is_bool(other)
    if input_is_bool and other_is_bool:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if input_is_bool or other_is_bool:
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` "
                           "operator instead.")
    if type(alpha) is not builtins.int or alpha != 1:
        alpha = _check_alpha(input, other, alpha)
    return alpha


def _check_int_operands(*values) -> None:
    """torch's argument parser refuses a Python int past int64 and uint64 before the op's own checks."""
    for value in values:
        if value.__class__ is builtins.int:
            _dtype.check_int_scalar(value)


def _is_bool(x) -> builtins.bool:
    if isinstance(x, Tensor):
        return x._data.dtype == np.bool_
    return isinstance(x, builtins.bool)  # a NumPy bool is a float to torch (_dtype.scalar_dtype)


def rsub(input, other, alpha=1) -> Tensor:
    """torch.rsub: ``other - alpha * input``."""
    _require_tensors("rsub", input)
    _one_device("rsub", input, other)
    if input.__class__ in SPARSE_COO_TYPES or other.__class__ in SPARSE_COO_TYPES:
        return sub(other, input, alpha=alpha)
    alpha = _checked_sub_operands(other, input, alpha)
    if isinstance(other, Tensor):
        # torch's rsub.Tensor: one RsubBackward0 node whose edges are input's, then other's
        return RSubTensors.apply(*_pair(input, other), alpha=alpha)
    kind = type(other)
    if (kind is builtins.int or kind is builtins.float) and input._data.dtype.char in "fdeEFD":
        # torch's rsub.Scalar: one RsubBackward1 node, the tensor's edge only
        return RSub.apply(input, number=other, alpha=alpha)
    return name_node(sub(other, input, alpha=alpha), "RsubBackward1")


@accepts_two_numbers
@honours_out
def mul(input, other, *, out=None) -> Tensor:
    """mul(input, other, *, out=None) -> Tensor

    The elementwise product of ``input`` and ``other`` (a tensor or a number), broadcast (torch.mul)."""
    if _is_real_number(other) and _is_half(input):
        return _with_number_in_float32(input, other, MulNumberInFloat32)
    if input.__class__ in SPARSE_COO_TYPES and out is None:
        return input.mul(other)  # sparse, as torch's
    a, b = _pair(input, other)
    return Mul.apply(a, b)


def _is_half(x) -> builtins.bool:
    return isinstance(x, Tensor) and x._data.dtype.char in "eE"


def _is_real_number(value) -> builtins.bool:
    return isinstance(value, (builtins.int, builtins.float, np.integer, np.floating)) and not isinstance(value, Tensor)


def number_in_dtype(number, tensor: Tensor):
    """``number`` rounded to ``tensor``'s bfloat16/float16 dtype, for the composites whose torch
    kernels take a number in the tensors' dtype (addmv's and addr's beta and alpha), where ``mul``
    would keep it in float32; any other number or dtype unchanged."""
    if _is_half(tensor) and _is_real_number(number):
        return builtins.float(np.asarray(number, dtype=tensor._data.dtype).astype(np.float32))
    return number


def _with_number_in_float32(tensor: Tensor, number, function_cls) -> Tensor:
    """``tensor * number`` or ``tensor / number`` on bfloat16/float16 as torch's CPU kernels compute
    them: the number (the second operand) kept in float32, the op's opmath type, not rounded to the
    tensor's dtype first (bfloat16 ``3 * -4.7`` is -14.125, not -14.0625), the result rounded once;
    one node, as torch's, with the tensor's edge and the number's None.
    add and sub round their number to the tensor's dtype, as torch's do (the plain path)."""
    if number.__class__ is builtins.int:
        _dtype.check_int_scalar(number)  # past int64 and uint64: torch's argument parser refuses it
    with np.errstate(all="ignore"):  # a number past float32's range is inf, silently as torch's
        return function_cls.apply(tensor, _constant(number, np.float32), number=number)


def _number_to_aten(inputs, params) -> tuple:
    """The dispatch layer shows ``tensor * number`` as torch's mul.Tensor(tensor, number)."""
    return (inputs[0], params["number"]), {}


def _number_from_aten(args, kwargs) -> tuple:
    tensor, number = args
    return (tensor, _constant(number, np.float32)), {"number": number}


_wrapped_number = _function_module.wrapped_number


class MulNumberInFloat32(Mul):
    """bfloat16/float16 ``tensor * number``: computed in float32 with the number unrounded, the
    product rounded once (torch's kernel); torch's one MulBackward0 node."""

    node_name = "MulBackward0"
    label = "mul"
    rule = "∂/∂a = number (the gradient times the number, in float32, rounded once)"
    formula = "{0} * {number}"
    saved_attributes = {"_saved_other": SavedValue(lambda node: _wrapped_number(node.number), tensor=True),
                        "_saved_self": _function_module.absent_tensor()}

    to_aten_arguments = staticmethod(_number_to_aten)
    from_aten_arguments = staticmethod(_number_from_aten)

    @staticmethod
    def forward(ctx, a, b, number):
        ctx.number = number
        with np.errstate(all="ignore"):  # silent as torch's: a number beyond the dtype's range gives inf
            return (a.astype(np.float32) * b).astype(a.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.number, None  # (the same kernel: torch's grad * other)


class DivNumberInFloat32(Div):
    """bfloat16/float16 ``tensor / number``: computed in float32 with the number unrounded, the
    quotient rounded once (torch's kernel); torch's one DivBackward0 node."""

    node_name = "DivBackward0"
    label = "div"
    rule = "∂/∂a = 1/number (the gradient over the number, in float32, rounded once)"
    formula = "{0} / {number}"
    saved_attributes = {"_saved_other": SavedValue(lambda node: _wrapped_number(node.number), tensor=True),
                        "_saved_self": _function_module.absent_tensor()}

    to_aten_arguments = staticmethod(_number_to_aten)
    from_aten_arguments = staticmethod(_number_from_aten)

    @staticmethod
    def forward(ctx, a, b, number):
        ctx.number = number
        with np.errstate(all="ignore"):
            return (a.astype(np.float32) / b).astype(a.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad / ctx.number, None


def _sparse_quotient(input, other, rounding_mode):
    """A sparse COO dividend divided by a number or a 0-d dense tensor stays sparse (its method);
    torch refuses a sparse divisor whatever the dividend."""
    if input.__class__ in SPARSE_COO_TYPES:
        return input.div(other, rounding_mode=rounding_mode)
    raise RuntimeError("Sparse division requires a scalar or zero-dim dense tensor divisor (got shape "
                       f"{list(other.shape)} for divisor)")


class _TrueDivision:
    """div's default rounding_mode, true division, told apart from a written-out ``rounding_mode=None``
    (torch's div.Tensor_mode overload, whose node is DivBackward2) by one identity test; shown as None."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "None"


_TRUE_DIVISION = _TrueDivision()


@accepts_two_numbers
@honours_out
def div(input, other, *, rounding_mode=_TRUE_DIVISION, out=None) -> Tensor:
    """torch.div: true division (ints give floats); rounding_mode 'trunc' or 'floor' rounds."""
    if rounding_mode is _TRUE_DIVISION:
        if _is_real_number(other) and _is_half(input):
            return _with_number_in_float32(input, other, DivNumberInFloat32)
        if out is None and (input.__class__ in SPARSE_COO_TYPES or other.__class__ in SPARSE_COO_TYPES):
            return _sparse_quotient(input, other, _TRUE_DIVISION)
        a, b = _float_pair(input, other)
        if b is not other and isinstance(other, Tensor) and other._data.dtype.kind in "biu" and a._data.dtype.kind in "fc":
            # torch's node saves an integer divisor as given (a count stays int64): Div casts it
            b = other
        return Div.apply(a, b)
    if rounding_mode is None:  # written out: the same quotient under torch's node of the rounding modes
        return name_node(div(input, other), "DivBackward2")
    check_str(rounding_mode, "div", "rounding_mode")
    if rounding_mode not in ("trunc", "floor"):
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"'{rounding_mode}'")
    if out is None and (input.__class__ in SPARSE_COO_TYPES or other.__class__ in SPARSE_COO_TYPES):
        return _sparse_quotient(input, other, rounding_mode)
    a, b = _pair(input, other)
    if a._data.dtype.kind in "bc":
        refuse_kernel(a, f"div_{rounding_mode}_cpu")
    xp = array_module(a, b)
    if a._data.dtype.kind in "iu":
        made = _integer_kernel_on_wrapper("div.Tensor_mode", div, input, other,  # (torch wraps a number)
                                          {"rounding_mode": rounding_mode})
        if made is not None:
            return made
        x, y = _kernel_arrays("div", a, b)
        _dtype.refuse_wide_unsigned(f"elementwise.div_{rounding_mode}", x)
        _check_integer_divisor(y)
        if rounding_mode == "floor":
            return _laid_out(Tensor._make(xp.floor_divide(x, y)), a, b)
        quotient = xp.abs(x) // xp.abs(y)
        return _laid_out(Tensor._make(xp.where((x < 0) ^ (y < 0), -quotient, quotient).astype(x.dtype)), a, b)
    _check_broadcast(a, b)
    return RoundedDiv.apply(a, b, rounding_mode=rounding_mode)


class RoundedDiv(Function):
    """Floating ``div`` with a rounding mode: piecewise constant, so torch's DivBackward2 gives
    both operands zero gradients (they still require grad downstream)."""
    label = "div"
    node_name = "DivBackward2"
    rule = "zero gradient (piecewise constant)"
    formula = "div({0}, {1}, rounding_mode)"
    _array_forward = True
    # torch's node keeps the divisor, and the dividend where the divisor's gradient is asked for (its
    # formulas, which give zeros)
    saved_attributes = {"_saved_other": saved(1), "_saved_rounding_mode": ctx_value("rounding_mode"),
                        "_saved_self": saved(0, needed=1)}

    @staticmethod
    def forward(ctx, a, b, rounding_mode):
        ctx.rounding_mode = rounding_mode
        ctx.save_for_backward(a, b)
        with np.errstate(all="ignore"):  # x / 0 is ±inf (or NaN) silently, as in torch
            if rounding_mode == "floor":
                return iterator_layout(_floor_divide_float(a, b), a, b)
            return iterator_layout(array_module(a).trunc(a / b), a, b)

    @staticmethod
    def backward(ctx, grad):
        zero = zeros_like_tensor(grad)
        return zero, zero


def _check_broadcast(a: Tensor, b: Tensor) -> None:
    """torch's RuntimeError for shapes that do not broadcast, for the ops that call NumPy directly
    (whose ValueError would otherwise reach the user)."""
    if a._data.shape != b._data.shape:
        try:
            np.broadcast_shapes(a._data.shape, b._data.shape)
        except ValueError as error:
            raise broadcast_error(error, (a._data, b._data)) from None


def _kernel_arrays(op: str, a: Tensor, b: Tensor) -> tuple:
    """The two operands' arrays for a binary kernel that calls the array module itself and so
    skips Function.apply's device check (integer div/remainder/fmod, the bit shifts, gcd/lcm; on
    a device, comparisons and bitwise and/or/xor): torch's broadcast error first, then its
    mixed-device error naming ``op`` (TensorIterator's order); on a device a 0-d CPU operand
    joins as a device scalar (``_backend.on_one_device``)."""
    _check_broadcast(a, b)
    x, y = on_one_device([a._data, b._data], op)
    if x.dtype in _dtype.WIDE_UNSIGNED:
        _dtype.refuse_wide_unsigned(f"elementwise.{op}", x)
    return x, y


def refuse_kernel_dtype(op: str, a: Tensor, b: Tensor | None = None, *, kernel: str | None = None,
                        cuda_kernel: str | None = None) -> None:
    """torch's NotImplementedError for an op whose kernel has no instance for the operands' dtype,
    raised where TensorIterator raises it: after its broadcast and device checks (``_kernel_arrays``;
    ``b=None``: a unary op), naming the kernel of the device it dispatched to. ``kernel`` is the
    kernel's name without its device (the op's name if not given: gcd_cpu, gcd_cuda); ``cuda_kernel``
    where the CUDA one differs (lt's is compare_cuda)."""
    arrays = (a._data,) if b is None else _kernel_arrays(op, a, b)  # (a 0-d CPU operand joins)
    on_cuda = type(arrays[0]) is not np.ndarray and device_of(arrays[0]).type == "cuda"
    kernel = kernel or op
    name = f"{cuda_kernel or kernel}_cuda" if on_cuda else f"{kernel}_cpu"
    raise NotImplementedError(f"\"{name}\" not implemented for '{_dtype.scalar_name(a.dtype)}'")


def _gpu_index(array) -> int | None:
    device = getattr(array, "device", None)
    return getattr(device, "id", None)


def _one_device(op: str, *operands, broadcasting: bool = True) -> None:
    """A composite's own mixed-device error, naming it (not the first op it is built from), after
    the broadcast error, as TensorIterator checks (``broadcasting=False``: an op whose operands
    need not broadcast, outer's or inner's); the Tensor operands' arrays of one type are on one
    device and cost a comparison each (device arrays of one type: their GPUs' too)."""
    kind = first_gpu = None
    for t in operands:
        if isinstance(t, Tensor):
            if kind is None:
                kind = type(t._data)
                first_gpu = None if kind is np.ndarray else _gpu_index(t._data)
            elif type(t._data) is not kind or (first_gpu is not None and _gpu_index(t._data) != first_gpu):
                if broadcasting:
                    check_broadcast_in_order(*operands)
                on_one_device([t._data for t in operands if isinstance(t, Tensor)], op)
                return


def _floor_divide_float(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """torch's (and Python's) floating floor division: from fmod, not floor(a / b), so a quotient
    that rounds to -0 floors to -1, inf // 1 is NaN, and x // 0 is x / 0."""
    xp = array_module(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        mod = xp.fmod(a, b)
        div = (a - mod) / b
        div = xp.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1, div)
        floored = xp.floor(div)
        floored = xp.where(div - floored > 0.5, floored + 1, floored)
        return xp.where(b == 0, a / b, xp.where(div != 0, floored, xp.copysign(xp.zeros_like(div), a / b)))


@accepts_two_numbers
@honours_out
def true_divide(input, other) -> Tensor:
    """torch.true_divide: ``div`` without a rounding mode, its mixed-device error naming itself."""
    _one_device("true_divide", input, other)
    return div(input, other)


@honours_out
def floor_divide(input, other) -> Tensor:
    """floor_divide(input, other, *, out=None) -> Tensor

    ``input / other`` rounded down to an integer value, elementwise (torch.floor_divide)."""
    _one_device("floor_divide", input, other)
    if isinstance(input, Tensor) and not (input.dtype.is_floating_point or input.dtype.is_complex):
        made = _integer_kernel_on_wrapper("floor_divide.default", floor_divide, input, other)  # (torch wraps a number)
        if made is not None:
            return made
    out = div(input, other, rounding_mode="floor")
    if out.grad_fn is None:
        return out
    # torch defines no derivative for floor_divide (div's rounding modes have DivBackward2): its node
    # is NotImplemented, with an edge for each tensor operand (a number has none), and backward raises
    operands = tuple(t for t in (input, other) if isinstance(t, Tensor))
    return FloorDivide.apply(*operands, quotient=out.detach()._data)


class FloorDivide(without_derivative("aten::floor_divide")):
    """floor_divide of a tensor that requires grad: torch's NotImplemented node (edges for the
    tensor operands only), whose backward raises; the quotient is div(rounding_mode='floor')'s."""

    node_name = "torch::autograd::NotImplemented"
    label = "floor_divide"
    rule = "none: torch defines no derivative for floor_divide, and backward raises"

    @staticmethod
    def forward(ctx, *operands, quotient):
        return quotient


class Remainder(Function):
    label = "remainder"
    rule = "∂/∂a = 1, ∂/∂b = -floor(a/b)"
    formula = "{0} % {1}"
    _array_forward = True
    saved_attributes: dict = {}  # torch's remainder by a number keeps nothing

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        ctx.save_for_backward(a, b)
        return iterator_layout(xp.mod(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        # a mod b = a - floor(a / b) * b
        a, b = ctx.saved_values
        grad_b = -grad * div(a, b, rounding_mode="floor") if ctx.needs_input_grad[1] else None
        return grad, grad_b


class Fmod(Function):
    label = "fmod"
    rule = "∂/∂a = 1, ∂/∂b = -trunc(a/b)"
    formula = "fmod({0}, {1})"
    _array_forward = True
    saved_attributes = {"_saved_self": saved(0), "_saved_other": saved(1)}

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        ctx.save_for_backward(a, b)
        return iterator_layout(xp.fmod(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        # fmod(a, b) = a - trunc(a / b) * b
        a, b = ctx.saved_values
        grad_b = -grad * div(a, b, rounding_mode="trunc") if ctx.needs_input_grad[1] else None
        return grad, grad_b


def _integer_kernel_on_wrapper(name: str, op, input, other, kwargs: dict | None = None):
    """An integer op no Function records (its kernel runs on the arrays: remainder, floor division) under a
    dispatch mode, or with a wrapper subclass operand, whose values live in it and not in its placeholder: the
    mode's or the wrapper's handler answers aten.<name> (as torch's), ``func`` running ``op`` on what it
    unwrapped; None otherwise."""
    if _function_module.active_dispatch is None:
        return None
    made = _function_module.factory_dispatch(name, op, (input, other), kwargs or {})
    return None if made is _function_module.RUN_UNDISPATCHED else made


def _check_integer_divisor(divisor) -> None:
    """Integer division by zero has no value; torch raises where NumPy would return 0 and warn."""
    xp = array_module(divisor)
    if divisor.dtype.kind in "iu" and not xp.all(divisor):
        raise RuntimeError("ZeroDivisionError")


def remainder(input, other) -> Tensor:
    """remainder(input, other, *, out=None) -> Tensor

    The Python-style remainder of ``input / other``: it has the sign of ``other`` (torch.remainder)."""
    a, b = _pair(input, other)
    refuse_complex(a, '"remainder_cpu" not implemented for \'{dtype}\'')
    if a.dtype is _dtype.bool:
        refuse_kernel(a, "remainder_cpu")
    xp = array_module(a, b)
    if a._data.dtype.kind in "iub":
        made = _integer_kernel_on_wrapper(f"remainder.{'Tensor' if isinstance(other, Tensor) else 'Scalar'}",
                                          remainder, input, other)
        if made is not None:
            return made
        x, y = _kernel_arrays("remainder", a, b)
        _check_integer_divisor(y)
        out = _laid_out(Tensor._make(xp.mod(x, y)), a, b)
        if _vmap_frames._frames:  # no Function saw it: batched where an operand is (``x[i % 2]``)
            _vmap_frames.note_results((a, b), None, out)
            if _function_module.tracing_ops:  # a vmap recording its ops replays it too (_vmap_batched)
                _function_module.traced_elementwise(remainder, (a, b), out)
        return out
    if not isinstance(input, Tensor):
        return RemainderOfNumber.apply(b, dividend=a._data, number=input)
    if not isinstance(other, Tensor):
        return RemainderByNumber.apply(a, divisor=b._data, number=other)
    # torch's Tensor-Tensor overload records RemainderBackward1, its Tensor-Scalar one RemainderBackward0
    return name_node(Remainder.apply(a, b), "RemainderBackward1", saved=_REMAINDER_SAVED)


# torch's remainder by a tensor keeps both operands, for the divisor's gradient only
_REMAINDER_SAVED = {"_saved_other": saved(1, needed=1), "_saved_self": saved(0, needed=1)}


def _divisor_to_aten(inputs, params) -> tuple:
    """The dispatch layer shows ``tensor % number`` as torch's remainder.Scalar(tensor, number)."""
    return (inputs[0], params["number"]), {}


def _divisor_from_aten(args, kwargs) -> tuple:
    tensor, number = args
    return (tensor,), {"divisor": np.asarray(number, dtype=tensor._data.dtype), "number": number}


class RemainderByNumber(Function):
    """``tensor % number`` (torch's remainder.Scalar): one edge, the tensor's, and nothing saved."""

    _array_forward = True
    node_name = "RemainderBackward0"
    label = "remainder"
    rule = "∂/∂a = 1 (the number divides: no edge)"
    formula = "{0} % {number}"
    saved_attributes: dict = {}
    aten_overload = "Scalar"
    to_aten_arguments = staticmethod(_divisor_to_aten)
    from_aten_arguments = staticmethod(_divisor_from_aten)

    @staticmethod
    def forward(ctx, a, divisor, number):
        ctx.number = number  # (read by the explainer's formula)
        return iterator_layout(array_module(a).mod(a, divisor), a, divisor)

    @staticmethod
    def backward(ctx, grad):
        # a mod b = a - floor(a / b) * b, b constant
        return grad


class RemainderOfNumber(without_derivative("aten::remainder")):
    """``number % tensor`` (torch's remainder.Scalar_Tensor): torch defines no derivative, its node is
    NotImplemented with the tensor's edge, and backward raises."""

    node_name = "torch::autograd::NotImplemented"
    label = "remainder"
    rule = "none: torch defines no derivative for number % tensor, and backward raises"

    @staticmethod
    def forward(ctx, b, dividend, number):
        return iterator_layout(array_module(b).mod(dividend, b), dividend, b)


class FmodByNumber(Function):
    """``fmod(tensor, number)`` (torch's fmod.Scalar): one edge, the tensor's, and nothing saved."""

    _array_forward = True
    node_name = "FmodBackward0"
    label = "fmod"
    rule = "∂/∂a = 1 (the number divides: no edge)"
    formula = "fmod({0}, {number})"
    saved_attributes: dict = {}
    aten_overload = "Scalar"
    to_aten_arguments = staticmethod(_divisor_to_aten)
    from_aten_arguments = staticmethod(_divisor_from_aten)

    @staticmethod
    def forward(ctx, a, divisor, number):
        ctx.number = number
        return iterator_layout(array_module(a).fmod(a, divisor), a, divisor)

    @staticmethod
    def backward(ctx, grad):
        # fmod(a, b) = a - trunc(a / b) * b, b constant
        return grad


def fmod(input, other) -> Tensor:
    """fmod(input, other, *, out=None) -> Tensor

    The C-style remainder of ``input / other``: it has the sign of ``input`` (torch.fmod)."""
    _require_tensors("fmod", input)
    a, b = _pair(input, other)
    refuse_complex(a, '"fmod_cpu" not implemented for \'{dtype}\'')
    if a.dtype is _dtype.bool:
        refuse_kernel(a, "fmod_cpu")
    xp = array_module(a, b)
    if a._data.dtype.kind in "iub":
        made = _integer_kernel_on_wrapper(f"fmod.{'Tensor' if isinstance(other, Tensor) else 'Scalar'}", fmod, input,
                                          other)
        if made is not None:
            return made
        x, y = _kernel_arrays("fmod", a, b)
        _check_integer_divisor(y)
        return _laid_out(Tensor._make(xp.fmod(x, y)), a, b)
    if not isinstance(other, Tensor):
        return FmodByNumber.apply(a, divisor=b._data, number=other)
    # torch's Tensor-Tensor overload records FmodBackward1, keeping both operands for the divisor's gradient
    return name_node(Fmod.apply(a, b), "FmodBackward1", saved=_REMAINDER_SAVED)


_POW_SCALARS = (builtins.int, builtins.float, builtins.complex, np.number, np.bool_)


def pow(input, exponent) -> Tensor:
    """torch.pow: tensor ** tensor, tensor ** number or number ** tensor."""
    _check_int_operands(input, exponent)
    if isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        if not isinstance(exponent, _POW_SCALARS):  # NumPy would parse '0.5' and take None as NaN
            raise TypeError(f"pow(): argument 'exponent' must be Tensor or Number, not {type(exponent).__name__}")
        if isinstance(exponent, (builtins.float, np.floating, builtins.complex, np.complexfloating)) or (
                input._data.dtype == np.bool_ and not isinstance(exponent, (builtins.bool, np.bool_))):
            # the exponent's kind promotes as in torch.result_type: bool ** 2 is Long, float32 ** 1j complex64
            # (bool ** 2**63 too, whose exponent is then refused as an int64, not promoted as a uint64)
            wide = exponent.__class__ is builtins.int and exponent >= 1 << 63
            input = _cast(input, _dtype.int64 if wide else _dtype.result_type(input, exponent))
        if input._data.dtype.kind in "iub" and exponent < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        if input._data.dtype.kind in "iuV" or input._data.dtype == np.float16:
            # torch converts the exponent to an integer, float16 or bfloat16 tensor's own dtype,
            # refusing one that overflows it (float32/float64 keep it as a double)
            exponent = _dtype.checked_scalar(exponent, input.dtype)
        return PowScalar.apply(input, exponent=exponent)
    if not isinstance(input, Tensor):
        # a complex base makes the result complex: the general path promotes it
        if isinstance(exponent, Tensor) and exponent._data.dtype.kind in "fV" and not isinstance(
                input, (builtins.complex, np.complexfloating)):
            return RPowScalar.apply(exponent, base=input)
    a, b = _pair(input, exponent)
    if a._data.dtype == np.bool_ and b._data.dtype == np.bool_:
        raise NotImplementedError('"pow" not implemented for \'Bool\'')
    return Pow.apply(a, b)


def neg(input: Tensor) -> Tensor:
    """neg(input, *, out=None) -> Tensor

    ``-input`` elementwise (torch.neg)."""
    if input._data.dtype == np.bool_:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")
    if input.__class__ in SPARSE_COO_TYPES:
        return -input
    return Neg.apply(input)


negative = neg


# ---------------------------------------------------------------- unary math, one line each
def _real_gradient_on_arrays(general, array_derivative, saves: str, saved_as_is: bool):
    """A one-saved-tensor arithmetic unary rule (tanh's, exp's, log's) in a plain backward: a real
    gradient takes ``array_derivative`` on the arrays at once, which is what ``general`` (the
    conjugate rule around the on-arrays rule) ends in for it, two Python calls sooner per node;
    anything else (a complex gradient, create_graph, half precision, a dispatch mode) goes to
    ``general``. The result takes the Tensor ops' layout (``gradient_layout``) where it has a size-1
    dim, the one place NumPy's can differ; the test is inline, as these rules run in every backward."""
    make = Tensor._make
    if saves == "input":
        def rule(ctx, grad):
            if grad is not None and grad._data.dtype.kind != "c" and on_arrays(grad):
                g = grad._data
                saved = ctx.saved_values[0]._data
                out = array_derivative(g, saved, None)
                if out.ndim > 1 and 1 in out.shape:  # (ndim first: a vector's costs no shape tuple)
                    out = gradient_layout(out, g, saved, saved_as_is)
                return make(out)
            return general(ctx, grad)
    else:
        def rule(ctx, grad):
            if grad is not None and grad._data.dtype.kind != "c" and on_arrays(grad):
                g = grad._data
                saved = ctx.saved_values[0]._data
                out = array_derivative(g, None, saved)
                if out.ndim > 1 and 1 in out.shape:  # (ndim first: a vector's costs no shape tuple)
                    out = gradient_layout(out, g, saved, saved_as_is)
                return make(out)
            return general(ctx, grad)
    rule.__name__, rule.__qualname__, rule.__doc__ = general.__name__, general.__qualname__, general.__doc__
    return rule


def _unary(name: str, forward, derivative, saves: str = "input", float_only: bool = True,
           torch_name: str | None = None, node_name: str | None = None, arithmetic: bool = False,
           recorded_node: str | None = None, array_derivative=None, input_as_is: bool = False):
    """Declare a unary op: ``forward`` on arrays and ``derivative(grad, x, y)`` in Tensor ops.

    ``saves`` names what the rule reads: "input" (x), "output" (y), "both" or "none".
    ``arithmetic``: the derivative is only operators and Python numbers, so it means the same
    on the raw arrays (see on_arrays_when_unrecorded). ``recorded_node``: torch's name for the
    node a recorded (create_graph) backward makes (``tanh_backward`` is one node in torch's).
    ``array_derivative``: the derivative's faster spelling for real float32/64 arrays, where the
    plain backward of an arithmetic rule computes it (same numbers), else ``derivative`` serves.
    ``input_as_is``: the rule's last product or quotient takes the saved input itself (log's g / x) or
    its sum or product with a number (log1p's g / (x + 1)), which torch sorts by the input's strides,
    size-1 dims' too; not a same-shape op's fresh row-major result (atan's g / (x * x + 1)). It decides
    the array gradient's strides on size-1 dims (``gradient_layout``). A saved output is fresh already.
    """
    array_derivative = array_derivative or derivative
    saved_as_is = saves != "input" or input_as_is
    if arithmetic:
        def laid_out(out, g, x, y):
            return gradient_layout(out, g, y if x is None else x, saved_as_is)

        derivative = on_arrays_when_unrecorded(derivative, recorded_node, laid_out)

    # one forward/backward pair per choice of `saves`, so the hot call tests no strings; each lays
    # out a result as torch's TensorIterator does (unary_layout), inline rather than through a wrapper:
    # these are the hottest calls there are. A row-major input (whatever its size-1 dims' strides)
    # takes TensorIterator's fast set-up, a fresh row-major result, as NumPy's: one flag read
    if saves == "input":
        def fwd(ctx, x):
            ctx.save_for_backward(x)
            y = forward(x)
            return y if x.flags.c_contiguous else unary_layout(y, x)

        def bwd(ctx, grad):
            return derivative(grad, ctx.saved_values[0], None)
    elif saves == "output":
        def fwd(ctx, x):
            y = forward(x)
            if not x.flags.c_contiguous:
                y = unary_layout(y, x)
            ctx.save_for_backward(y)
            return y

        def bwd(ctx, grad):
            return derivative(grad, None, ctx.saved_values[0])
    elif saves == "both":
        def fwd(ctx, x):
            y = forward(x)
            if not x.flags.c_contiguous:
                y = unary_layout(y, x)
            ctx.save_for_backward(x, y)
            return y

        def bwd(ctx, grad):
            x, y = ctx.saved_values
            return derivative(grad, x, y)
    else:
        def fwd(ctx, x):
            y = forward(x)
            return y if x.flags.c_contiguous else unary_layout(y, x)

        def bwd(ctx, grad):
            return derivative(grad, None, None)

    bwd = conjugate_rule(bwd, recorded_node)  # the derivatives below are holomorphic where complex is allowed
    if arithmetic and saves in ("input", "output"):
        bwd = _real_gradient_on_arrays(bwd, array_derivative, saves, saved_as_is)
    label, rule, formula = _UNARY_RULES.get(name, (None, None, None))  # tests/test_explain_rules.py checks each
    # torch's names for what the node keeps: its input is _saved_self, its output _saved_result
    saved_attributes = {"input": {"_saved_self": saved(0)}, "output": {"_saved_result": saved(0)},
                        "both": {"_saved_self": saved(0), "_saved_result": saved(1)}}.get(saves, {})
    if node_name == "PowBackward0":  # square, recorded as torch's pow(x, 2)
        saved_attributes = {**saved_attributes, "_saved_exponent": 2}
    cls = type(Function)(name, (Function,), {
        "_array_forward": True, "forward": staticmethod(fwd), "backward": staticmethod(bwd),
        "__module__": __name__, "__doc__": f"Elementwise {torch_name or name.lower()}.",
        "node_name": node_name, "label": label, "rule": rule, "formula": formula,
        "saved_attributes": saved_attributes,
    })

    op_name = torch_name or name.lower()
    # out= handled inline rather than by honours_out: these are the hottest calls there are
    real_only = name in _REAL_ONLY
    write_result = write_out_same_dtype if name in _SAME_DTYPE_OUT else write_out

    def write_unary_out(out, input: Tensor) -> Tensor:
        if _function_module.active_dispatch is not None:  # (a mode sees torch's out overload: aten.exp.out)
            result = call_noting_out(cls.apply, (input,), {}, out, op_name)
        else:
            result = cls.apply(input)
        if isinstance(out, Tensor):
            # torch's refusals in its order: out= under autograd, then an out partly over the input
            refuse_out_under_autograd(op_name, out, result)
            refuse_partial_overlap(out, (input,))
        return write_result(result, out, op_name)
    if float_only:
        def op(input: Tensor, *, out=None) -> Tensor:
            if type(input) is not Tensor or input._data.dtype.kind not in "fV":
                if input.__class__ in SPARSE_COO_TYPES and out is None:
                    return getattr(input, op_name)()  # sparse, or torch's refusal
                if name in _FLOAT_KERNELS and isinstance(input, Tensor) and input._data.dtype.kind in "biu":
                    refuse_kernel(input, _FLOAT_KERNELS[name])
                input = _float_input(input)  # checks the type; casts an integer tensor
                if real_only:
                    refuse_complex(input, _REAL_ONLY[name])
            if out is None:
                return cls.apply(input)
            return write_unary_out(out, input)
    elif real_only:
        def op(input: Tensor, *, out=None) -> Tensor:
            if type(input) is not Tensor and input.__class__ in SPARSE_COO_TYPES and out is None:
                return getattr(input, op_name)()
            if input._data.dtype.kind in "cb":
                refuse_complex(input, _REAL_ONLY[name])
                if name in _NO_BOOL_KERNELS:
                    refuse_kernel(input, _NO_BOOL_KERNELS[name])
            if out is None:
                return cls.apply(input)
            return write_unary_out(out, input)
    else:
        def op(input: Tensor, *, out=None) -> Tensor:
            if type(input) is not Tensor and input.__class__ in SPARSE_COO_TYPES and out is None:
                return getattr(input, op_name)()
            if out is None:
                return cls.apply(input)
            return write_unary_out(out, input)

    op.__name__ = op.__qualname__ = op_name
    op.__doc__ = f"torch.{op.__name__}, elementwise, with its gradient."
    op.honours_out = True
    op.function = cls
    if forward in _CORRECTLY_ROUNDED_UFUNCS:
        # the in-place method of a float32/float64 tensor that records nothing writes with it (_methods)
        op.exact_ufunc = forward
    return op


# the forwards whose every value is the exact result rounded once (IEEE square root and division) or
# exact (floor, ceil, trunc): the same bits whether NumPy writes a new array or into its input
_CORRECTLY_ROUNDED_UFUNCS = frozenset({np.sqrt, np.reciprocal, np.floor, np.ceil, np.trunc})

# unary ops whose out= must have the result's own dtype in torch (the others cast into out)
_SAME_DTYPE_OUT = {"Sign", "Floor", "Ceil", "Trunc", "Frac"}

# unary ops whose torch kernel takes floating dtypes only (an integer tensor raises, not cast)
_FLOAT_KERNELS = {"Frac": "frac_cpu"}

# integer-valued unary ops whose torch kernel has integer instances but no bool one
_NO_BOOL_KERNELS = {name: f"{name.lower()}_vml_cpu" for name in ("Floor", "Ceil", "Trunc", "Round")}

# unary ops torch does not define on complex numbers (they raise rather than guess)
_REAL_ONLY = {
    "Erf": "\"erf_vml_cpu\" not implemented for '{dtype}'",
    "Sign": "Unlike NumPy, torch.sign is not intended to support complex numbers. Please use torch.sgn instead.",
    **{name: f"{name.lower()} is not supported for complex inputs" for name in ("Floor", "Ceil", "Trunc")},
    "Frac": "\"frac_cpu\" not implemented for '{dtype}'",
    "Round": "\"round_vml_cpu\" not implemented for '{dtype}'",
}


def _zero_grad(grad, x, y):
    return zeros_like_tensor(grad)


# the explainer's text for each op declared with _unary below: (label, rule, formula); the
# derivative itself is the lambda in the declaration
_UNARY_RULES = {
    "Exp": ("exp", "∂/∂a = exp(a) (the saved output itself)", "exp({0})"),
    "Exp2": ("exp2", "∂/∂a = 2^a·log 2", "exp2({0})"),
    "Expm1": ("expm1", "∂/∂a = exp(a)", "expm1({0})"),
    "Log": ("log", "∂/∂a = 1/a", "log({0})"),
    "Log1p": ("log1p", "∂/∂a = 1/(1 + a)", "log1p({0})"),
    "Log2": ("log2", "∂/∂a = 1/(a·log 2)", "log2({0})"),
    "Log10": ("log10", "∂/∂a = 1/(a·log 10)", "log10({0})"),
    "Sqrt": ("sqrt", "∂/∂a = 1/(2·sqrt(a))", "sqrt({0})"),
    "Rsqrt": ("rsqrt", "∂/∂a = -a^(-3/2)/2", "rsqrt({0})"),
    "Square": ("square", "∂/∂a = 2a", "{0} ** 2"),
    "Reciprocal": ("reciprocal", "∂/∂a = -1/a²", "1 / {0}"),
    "Sin": ("sin", "∂/∂a = cos(a)", "sin({0})"),
    "Cos": ("cos", "∂/∂a = -sin(a)", "cos({0})"),
    "Tan": ("tan", "∂/∂a = 1 + tan²(a)", "tan({0})"),
    "Asin": ("asin", "∂/∂a = 1/sqrt(1 - a²)", "asin({0})"),
    "Acos": ("acos", "∂/∂a = -1/sqrt(1 - a²)", "acos({0})"),
    "Atan": ("atan", "∂/∂a = 1/(1 + a²)", "atan({0})"),
    "Sinh": ("sinh", "∂/∂a = cosh(a)", "sinh({0})"),
    "Cosh": ("cosh", "∂/∂a = sinh(a)", "cosh({0})"),
    "Tanh": ("tanh", "∂/∂a = 1 - tanh(a)² (from the saved output)", "tanh({0})"),
    "Erf": ("erf", "∂/∂a = 2/sqrt(π)·exp(-a²)", "erf({0})"),
    "Sigmoid": ("sigmoid", "∂/∂a = σ(a)·(1 - σ(a)) (from the saved output)", "sigmoid({0})"),
    "Sign": ("sign", "zero gradient (piecewise constant)", "sign({0})"),
    "Floor": ("floor", "zero gradient (piecewise constant)", "floor({0})"),
    "Ceil": ("ceil", "zero gradient (piecewise constant)", "ceil({0})"),
    "Trunc": ("trunc", "zero gradient (piecewise constant)", "trunc({0})"),
    "Frac": ("frac", "passes the gradient through (∂/∂a = 1)", "frac({0})"),
    "Round": ("round", "zero gradient (piecewise constant)", "round({0})"),
}


# float64 values that fit a core's L2 cache (2 MiB) beside their float32 input
_EXP_WIDE_TEMPORARY_FITS_CACHE = 1 << 17


def _float32_via_float64(ufunc):
    """``ufunc`` on an array as torch's CPU kernels round it: a float32 NumPy array is computed in
    float64 and rounded once to float32. torch's vectorised float32 exp, log and tanh (SLEEF's,
    within an ulp) are nearly always the correctly rounded value, which this gives too, while
    NumPy's own float32 loops are an ulp off torch's in many values. Of 1e6 randn floats (|randn|
    for the logs) these differed from torch, NumPy's float32 loop -> this: exp 392,081 -> 10,958
    (e^1 was 2.7182820 for torch's 2.7182817), log 244,526 -> 732, log1p 202,307 -> 12,366, log2
    157,765 -> 380, log10 485,567 -> 364 (tanh 315,509 -> 14,838, but tanh does not take it: see
    there). exp's costs about 0.6 ms more per million values. Other dtypes and devices run
    ``ufunc`` as it is."""
    def forward(x):
        if x.dtype == np.float32 and array_module(x) is np:
            if x.size < _EXP_WIDE_TEMPORARY_FITS_CACHE:
                # (widened by astype first: the same float64 op, without the ufunc's casting
                # set-up, which costs a small tensor more instructions than the op itself)
                return ufunc(x.astype(np.float64)).astype(np.float32)
            # a large array's float64 temporary would leave the cache between the op and the
            # rounding: the ufunc's own buffering widens, computes and rounds back 8192 values at a
            # time instead (the same float64 op and the same rounding, so the same bits)
            return ufunc(x, out=np.empty_like(x), dtype=np.float64, casting="same_kind")
        return ufunc(x)
    return forward


_exp_array = _float32_via_float64(np.exp)
exp = _unary("Exp", _exp_array, lambda g, x, y: g * y, saves="output", arithmetic=True)
exp2 = _unary("Exp2", np.exp2, lambda g, x, y: g * y * float(np.log(2.0)), saves="output", arithmetic=True)
expm1 = _unary("Expm1", np.expm1, lambda g, x, y: g * (y + 1), saves="output", arithmetic=True)
_log_array = _float32_via_float64(np.log)
log = _unary("Log", _log_array, lambda g, x, y: g / x, arithmetic=True, input_as_is=True)
_log1p_array = _float32_via_float64(np.log1p)
log1p = _unary("Log1p", _log1p_array, lambda g, x, y: g / (x + 1), node_name="Log1PBackward0",
                arithmetic=True, input_as_is=True)
log2 = _unary("Log2", _float32_via_float64(np.log2), lambda g, x, y: g / (x * float(np.log(2.0))), arithmetic=True,
               input_as_is=True)
log10 = _unary("Log10", _float32_via_float64(np.log10), lambda g, x, y: g / (x * float(np.log(10.0))),
                arithmetic=True, input_as_is=True)
def _sqrt_derivative(g, x, y):
    # d √x = dx / (2√x); recorded, torch's grad / (2 * result), the 2 a C++ number (MulBackward1)
    if isinstance(y, Tensor) and is_recording(y):
        return g / MulNumber.apply(y, number=2)
    return g / (2 * y)


def _rsqrt_derivative(g, x, y):
    # rsqrt = x^(-1/2): d = -1/2 x^(-3/2) = -y^3 / 2, in torch's order: -0.5 * grad * result.pow(3),
    # its cube y * y * y (grouped otherwise, 46% of the gradients differed from torch's); recorded,
    # MulBackward1 of the grad and PowBackward0 of the result
    if isinstance(y, Tensor) and is_recording(y):
        return MulNumber.apply(g, number=-0.5) * y.pow(3)
    return g * (-0.5) * (y * y * y)


sqrt = _unary("Sqrt", np.sqrt, _sqrt_derivative, saves="output", arithmetic=True)
rsqrt = _unary("Rsqrt", lambda x: 1 / np.sqrt(x), _rsqrt_derivative, saves="output", arithmetic=True)
def _square_array(x):
    # torch's square is pow(x, 2): a bool tensor promotes with the int 2 to int64
    return array_module(x).square(x.astype(np.int64) if x.dtype == np.bool_ else x)


def _square_derivative(g, x, y):
    # d x² = 2x dx; recorded, torch's pow_backward for pow(x, 2): grad * (2 * x.pow(1)), the 2 a C++
    # double (MulBackward1 of PowBackward0)
    if isinstance(x, Tensor) and is_recording(x):
        return g * MulNumber.apply(x.pow(1), number=2)
    return g * (2 * x)


square = _unary("Square", _square_array, _square_derivative, float_only=False,
                node_name="PowBackward0", arithmetic=True)  # torch's square is pow(x, 2)
reciprocal = _unary("Reciprocal", np.reciprocal, lambda g, x, y: -g * (y * y), saves="output", arithmetic=True)
sin = _unary("Sin", np.sin, lambda g, x, y: g * cos(x))
cos = _unary("Cos", np.cos, lambda g, x, y: g * -sin(x))  # (torch's order: grad * -sin(x))
tan = _unary("Tan", np.tan, lambda g, x, y: g * (1 + y * y), saves="output", arithmetic=True)
asin = _unary("Asin", np.arcsin, lambda g, x, y: g * rsqrt(1 - x * x))
acos = _unary("Acos", np.arccos, lambda g, x, y: -g * rsqrt(1 - x * x))
atan = _unary("Atan", np.arctan, lambda g, x, y: g / (1 + x * x), arithmetic=True)
# (computed in float64 and rounded once, as exp: torch's float32 sinh and cosh are nearly always that,
# NumPy's float32 loops an ulp off it in a quarter of the values; sin and cos keep NumPy's vectorised
# float32 loops, which the float64 ones cost 6-12 times)
sinh = _unary("Sinh", _float32_via_float64(np.sinh), lambda g, x, y: g * cosh(x))
cosh = _unary("Cosh", _float32_via_float64(np.cosh), lambda g, x, y: g * sinh(x))
_ONE_FLOAT64 = np.ones((), np.float64)
_ONES = {np.dtype(np.float32): np.ones((), np.float32), np.dtype(np.float64): _ONE_FLOAT64}


def _tanh_array_derivative(g, x, y):
    if type(y) is np.ndarray and y.dtype == np.float32:
        # torch's tanh_backward is a * (1 - b * b) with 1 - b * b one fused multiply-add: rounding
        # b * b first (the plain formula) differed from it in 30% of float32 gradients. A float32
        # square is exact in float64, so only the float64 difference rounds (then to float32): the
        # fused value. This runs once per tanh in every backward: the square is taken in place and
        # the 1 is a float64 0-d array (a Python 1.0 costs NumPy more; ufuncs given dtype=, more still)
        wide = y.astype(np.float64)
        wide *= wide
        return g * (_ONE_FLOAT64 - wide).astype(np.float32)
    # on a CPU array the 1 is a 0-d array of y's dtype: the operand NEP 50 makes of a Python 1, which
    # NumPy takes about twice as fast (a device array keeps the Python 1)
    one = _ONES.get(y.dtype, 1) if type(y) is np.ndarray else 1
    return g * (one - y * y)


class _OutputDerivativeAdjoint(Function):
    """The gradient ``g · f'(y)`` of an op whose derivative is read from its output ``y`` (tanh,
    sigmoid), as one recorded op on (g, y): torch's tanh_backward / sigmoid_backward, so that a
    create_graph walk records torch's one node, whose own backward is torch's formula. Real
    float32/64 only (complex and half precision keep the Tensor ops' form)."""

    _array_forward = True
    label = "output_derivative_backward"
    rule = "∂/∂g = f'(y), ∂/∂y = g · d f'(y)/dy"
    array_rule = None  # the plain backward's array formula, f'(y) times g

    @classmethod
    def forward(cls, ctx, grad, y):
        ctx.save_for_backward(grad, y)
        return gradient_layout(cls.array_rule(grad, None, y), grad, y)

    @staticmethod
    def output_gradient(grad_grad: Tensor, grad: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    @classmethod
    def backward(cls, ctx, grad_grad):
        grad, y = ctx.saved_values
        needs_grad, needs_y = ctx.needs_input_grad
        return (cls.apply(grad_grad, y) if needs_grad else None,
                cls.output_gradient(grad_grad, grad, y) if needs_y else None)


def _recorded_as_one_node(g, y) -> bool:
    # torch's one node where it can hold both: real float32/64 of one dtype
    return g.dtype is y.dtype and (y.dtype is _dtype.float32 or y.dtype is _dtype.float64)


class TanhAdjoint(_OutputDerivativeAdjoint):
    node_name = "TanhBackwardBackward0"
    label = "tanh_backward"
    rule = "∂/∂g = 1 - y², ∂/∂y = -2y·g"
    array_rule = staticmethod(_tanh_array_derivative)

    @staticmethod
    def output_gradient(grad_grad, grad, y):
        return grad_grad * (MulNumber.apply(y, number=-2) * grad)  # torch's grad * (-2 * output * grad_output)


def _tanh_derivative(g, x, y):
    if not isinstance(y, Tensor):
        return _tanh_array_derivative(g, x, y)
    if _recorded_as_one_node(g, y):
        return TanhAdjoint.apply(g, y)
    if y.dtype is _dtype.float32:  # recorded: the same single rounding of 1 - y * y, differentiably
        wide = y.double()
        return g * (1 - wide * wide).float()
    return g * (1 - y * y)


# (NumPy's own float32 tanh: the float64 detour matched torch's bits in all but 1.5 % of values, but
# cost op_overhead's 200-op step 6 %, over its 1.2 target, and ~5x a large array's tanh)
tanh = _unary("Tanh", np.tanh, _tanh_derivative, saves="output", arithmetic=True,
              recorded_node="TanhBackwardBackward0", array_derivative=_tanh_array_derivative)
# erf' = 2/sqrt(pi) exp(-x^2)
erf = _unary("Erf", _erf_array, lambda g, x, y: (2.0 / np.sqrt(np.pi)) * exp(-(x * x)) * g)


def _sigmoid_array(x):
    xp = array_module(x)
    if x.dtype.kind == "c" or (x.dtype.kind == "f" and x.dtype.itemsize >= 4):
        # torch's CPU kernel, 1 / (1 + e^-x), rounded as it rounds: e^-x overflowing to inf gives
        # 0 below x = -88.7 (float32), where e^x / (1 + e^x) would go on into the subnormals. Its
        # e^-x is torch's exp (_exp_array), not NumPy's float32 one (an ulp off in two values of five)
        with np.errstate(over="ignore"):
            e = _exp_array(-x)
            one = _ONES.get(e.dtype)
            if one is None or type(e) is not np.ndarray:  # (complex, a device array, 0-d: scalars)
                return 1 / (1 + e)
            # in place on e, fresh from exp: the same float ops, without two arrays and the Python
            # 1's conversions (a few us each on a small tensor)
            np.add(one, e, out=e)
            return np.divide(one, e, out=e)
    # (float16 and bfloat16 arrays, whose e^-x overflows early: exp of a non-positive number only)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _log_sigmoid_array(x):
    """log σ(x) = min(x, 0) - log1p(e^-|x|) on an array, stable both ways, as torch's CPU kernel
    (log_sigmoid_forward) computes it. Its vectorised exp and log1p round the subnormal range their
    own way, which decides where the result flushes to 0 (float32 from x ≈ 102.9, float64 from
    x ≈ 744.1): float32 and float64 NumPy arrays follow them (``_log_sigmoid_float32``;
    ``_kernel_exp_of_negative`` and ``_kernel_log1p_of_tiny``). C order whatever the input's layout,
    as torch writes a fresh contiguous output."""
    xp = array_module(x)
    if xp is not np or x.dtype not in (np.float32, np.float64):
        return subtract_contiguous(xp, xp.minimum(x, 0), xp.log1p(xp.exp(-xp.abs(x))))
    if x.dtype == np.float32:
        return _log_sigmoid_float32(x)
    # one fresh C-order buffer holds |x| and then the result; out= keeps a 0-d input an array
    buffer = np.abs(x, out=np.empty(x.shape, x.dtype))
    log1p = _kernel_log1p_of_tiny(_kernel_exp_of_negative(buffer))
    np.minimum(x, 0, out=buffer)
    return np.subtract(buffer, log1p, out=buffer)


# where the kernel's exp gives 0: e^-a for a above 104 in float32; in float64 its cut-off is 1000,
# but from 746 on its two-step scaling of the subnormal range rounds to 0 already
_FLOAT32_EXP_FLUSH_ABOVE = np.float32(104.0)
# the float32 constants as 0-d arrays, which NumPy's ufuncs take about twice as fast as scalars
_FLOAT32_EXP_CLAMP = np.full((), -_FLOAT32_EXP_FLUSH_ABOVE, np.float32)
_FLOAT32_ZERO, _FLOAT32_HALF, _FLOAT32_TWO = (np.full((), value, np.float32) for value in (0.0, 0.5, 2.0))
_FLOAT64_EXP_FLUSH_ABOVE = 746.0
# below this float64's e^-a is a normal number
_FLOAT64_EXP_NORMAL_BELOW = 708.0
_FLOAT32_TINY = np.finfo(np.float32).tiny
_FLOAT64_TINY = np.finfo(np.float64).tiny


def _log_sigmoid_float32(x: np.ndarray) -> np.ndarray:
    """``_log_sigmoid_array`` of a float32 NumPy array. The kernel's exp and log1p are nearly always
    the correctly rounded values, which float64's rounded back to float32 give too (NumPy's float32
    exp is an ulp off more often). -|x| and its clamp are exact in float32, so the float64 exp and
    log1p run through the ufuncs' own 8192-value buffers (widened, computed and rounded back while
    in the cache) rather than over float64 arrays twice the input's size. Only two float32 buffers,
    both fresh and C-order; out= keeps a 0-d input an array."""
    z = np.abs(x, out=np.empty(x.shape, np.float32))
    np.negative(z, out=z)
    # e^-104 rounds to 0 in float32; the clamp keeps NumPy's float64 exp off its slow underflow path
    np.maximum(z, _FLOAT32_EXP_CLAMP, out=z)
    np.exp(z, out=z, dtype=np.float64, casting="same_kind")
    if z.size == 0:
        return z
    smallest = np.fmin.reduce(z, axis=None)  # (fmin skips NaN)
    if smallest < _FLOAT32_TINY:
        _round_subnormal_exp_as_kernel(x.reshape(-1), z.reshape(-1))
    if smallest < 2 * _FLOAT32_TINY:  # the kernel's log1p halves z first: see _kernel_log1p_of_tiny
        with np.errstate(under="ignore"):
            np.multiply(z, _FLOAT32_HALF, out=z)
            np.multiply(z, _FLOAT32_TWO, out=z)
    np.log1p(z, out=z, dtype=np.float64, casting="same_kind")
    result = np.minimum(x, _FLOAT32_ZERO, out=np.empty(x.shape, np.float32))
    return np.subtract(result, z, out=result)


def _round_subnormal_exp_as_kernel(flat_x: np.ndarray, flat_exp: np.ndarray) -> None:
    """Where float32 e^-|x| is subnormal (not flushed to 0), the kernel's value written into
    ``flat_exp``: the mantissa u = e^-a / 2^q (q = rint(-a / ln 2)) rounded to float32 first and
    then scaled by 2^q in two halves, so rounded twice. Flat C-order views of the same shape."""
    with np.errstate(under="ignore"):
        # positions, not masks: NumPy gathers and scatters by index 4 to 6 times faster
        below_tiny = np.flatnonzero(flat_exp < _FLOAT32_TINY)
        a = np.abs(flat_x[below_tiny])
        not_flushed = a < _FLOAT32_EXP_FLUSH_ABOVE
        subnormal, a = below_tiny[not_flushed], a[not_flushed]
        if not subnormal.size:
            return
        q = np.rint(-a * np.float32(1 / math.log(2))).astype(np.int64)
        mantissa = np.ldexp(np.exp(-a.astype(np.float64)), -q).astype(np.float32)
        half = q >> 1
        flat_exp[subnormal] = mantissa * np.ldexp(np.float32(1), half) * np.ldexp(np.float32(1), q - half)


def _kernel_exp_of_negative(a: np.ndarray) -> np.ndarray:
    """e^-a for float64 a >= 0 (or NaN), rounded as torch's vectorised exp: NumPy's float64 exp, and
    where it is subnormal, the mantissa u = e^-a / 2^q (q = rint(-a / ln 2)) rounded to float64
    first and then scaled by 2^q in two halves, so rounded twice. A fresh C-order array."""
    # NumPy's float64 exp leaves its vectorised loop where the result underflows (100 times slower
    # in the subnormal range, 15 times below it), so the argument is clamped where e^-a is still
    # normal (those clamped are redone)
    result = np.negative(a, out=np.empty(a.shape, np.float64))
    np.maximum(result, -_FLOAT64_EXP_NORMAL_BELOW, out=result)
    np.exp(result, out=result)
    if a.size == 0 or a.max() < _FLOAT64_EXP_NORMAL_BELOW:  # (NaN fails the test: checked below)
        return result
    # positions in the flat views: NumPy gathers and scatters by index 4 to 6 times faster than by mask
    flat_a, flat_result = a.reshape(-1), result.reshape(-1)
    with np.errstate(under="ignore"):
        clamped = np.flatnonzero(flat_a > _FLOAT64_EXP_NORMAL_BELOW)
        a_clamped = flat_a[clamped]
        # up to 708.5 NumPy's exp decides whether e^-a is subnormal; beyond, it certainly is (0
        # stands in for it: the subnormal path below, or the flush, gives the value)
        exact = np.zeros_like(a_clamped)
        edge = a_clamped <= 708.5
        exact[edge] = np.exp(-a_clamped[edge])
        flat_result[clamped] = exact
        subnormal = np.flatnonzero((flat_result < _FLOAT64_TINY) & (flat_a < _FLOAT64_EXP_FLUSH_ABOVE))
        if not subnormal.size:
            return result
        a_sub = flat_a[subnormal]
        q = np.rint(-a_sub * np.float64(1 / math.log(2))).astype(np.int64)
        # e^-a is itself subnormal here: the mantissa needs the wider long double
        mantissa = np.ldexp(np.exp(-a_sub.astype(np.longdouble)), -q).astype(np.float64)
        half = q >> 1
        flat_result[subnormal] = mantissa * np.ldexp(np.float64(1), half) * np.ldexp(np.float64(1), q - half)
    return result


def _kernel_log1p_of_tiny(z: np.ndarray) -> np.ndarray:
    """log1p(z) for float64 z in [0, 1] (or NaN), rounded as torch's vectorised log1p. Below twice
    the smallest normal number it is z itself, but the kernel's first step halves z, which in the
    subnormal range rounds (half to even), so an odd multiple of the smallest subnormal loses its
    last bit (the smallest subnormal becomes 0). Overwrites z."""
    twice_tiny = 2 * _FLOAT64_TINY
    not_tiny = True
    # fmin skips NaN; halving and doubling leave every other z as it is, and log1p keeps a tiny z
    if z.size and np.fmin.reduce(z, axis=None) < twice_tiny:
        with np.errstate(under="ignore"):
            np.multiply(z, np.float64(0.5), out=z)
            np.multiply(z, np.float64(2), out=z)
        not_tiny = z >= twice_tiny
    # NumPy's float64 log1p is 50 times slower on subnormals: they stay z
    return np.log1p(z, out=z, where=not_tiny)


def _log_sigmoid_grad_array(x, grad):
    """The gradient of log σ(x) on arrays, as torch's log_sigmoid_backward kernel rounds it: with
    z = e^-|x| (its forward's buffer), ``(1 - z/(1+z)) g`` for x < 0 and ``z/(1+z) g`` otherwise."""
    xp = array_module(x)
    z = xp.exp(-xp.abs(x))
    ratio = z / (1 + z)
    return (xp.where(x < 0, 1 - ratio, ratio) * grad).astype(xp.result_type(x, grad), copy=False)


class LogSigmoidAdjoint(Function):
    """log σ's backward as an op (torch's log_sigmoid_backward), so that a walk that records (create_graph)
    or runs under dispatch rounds the first-order gradient as a plain walk does."""

    _array_forward = True
    node_name = "LogSigmoidBackwardBackward0"
    label = "log_sigmoid_backward"
    rule = "∂/∂g = σ(-x), ∂/∂x = g σ(x) (σ(x) - 1)"

    @staticmethod
    def forward(ctx, grad, x):
        ctx.save_for_backward(grad, x)
        return _log_sigmoid_grad_array(x, grad)

    @staticmethod
    def backward(ctx, grad_grad):
        grad, x = ctx.saved_values
        needs_grad, needs_x = ctx.needs_input_grad
        s = sigmoid(x) if needs_x else None
        # torch's log_sigmoid_double_backward: (ḡ g) (s - 1) s, in that order
        return (LogSigmoidAdjoint.apply(grad_grad, x) if needs_grad else None,
                grad_grad * grad * (s - 1) * s if needs_x else None)


def _sigmoid_array_derivative(g, x, y):
    # torch's sigmoid_backward kernel's order, g * (1 - y) * y (g * y * (1 - y): 36% of its bits differed)
    return g * (1 - y) * y


class SigmoidAdjoint(_OutputDerivativeAdjoint):
    node_name = "SigmoidBackwardBackward0"
    label = "sigmoid_backward"
    rule = "∂/∂g = y(1 - y), ∂/∂y = (1 - 2y)·g"
    array_rule = staticmethod(_sigmoid_array_derivative)

    @staticmethod
    def output_gradient(grad_grad, grad, y):
        # torch's grad * grad_output * (-2 * output + 1), in that order
        return grad_grad * grad * (MulNumber.apply(y, number=-2) + 1)


def _sigmoid_derivative(g, x, y):
    if isinstance(y, Tensor) and _recorded_as_one_node(g, y):
        return SigmoidAdjoint.apply(g, y)
    return _sigmoid_array_derivative(g, x, y)


sigmoid = _unary("Sigmoid", _sigmoid_array, _sigmoid_derivative, saves="output", arithmetic=True,
                 recorded_node="SigmoidBackwardBackward0", array_derivative=_sigmoid_array_derivative)

# piecewise-constant ops: zero gradient everywhere, as torch defines
def _sign_array(x: np.ndarray) -> np.ndarray:
    xp = array_module(x)
    if x.dtype == np.bool_:
        return x.copy()  # torch's sign of a bool tensor is itself (NumPy has no bool sign)
    y = xp.sign(x)
    if y.dtype.kind in "fV":  # torch's sign(NaN) is 0 (so abs'(NaN) is 0 too)
        zeroed = xp.isnan(y)
        if y.dtype.kind == "V":
            zeroed |= y == 0  # bfloat16's sign keeps -0.0; torch's is +0.0, as NumPy's float sign
        if type(y) is np.ndarray:  # sign's own new array: zeroed in place, a third of where()'s cost on 64 floats
            y[zeroed] = 0
        else:  # (a 0-d input's NumPy scalar, a device array)
            y = xp.where(zeroed, y.dtype.type(0), y)
    return y


sign = _unary("Sign", _sign_array, _zero_grad, saves="none", float_only=False)


def _sgn(z: Tensor) -> Tensor:
    """z/|z| with 0 at 0, differentiable (|z| replaced by 1 where it is 0, so no NaN flows back)."""
    magnitude = abs(z)
    zero = magnitude == 0
    return where(zero, 0.0, z / where(zero, 1.0, magnitude))
floor = _unary("Floor", np.floor, _zero_grad, saves="none", float_only=False)
ceil = _unary("Ceil", np.ceil, _zero_grad, saves="none", float_only=False)
trunc = _unary("Trunc", np.trunc, _zero_grad, saves="none", float_only=False)
frac = _unary("Frac", lambda x: x - np.trunc(x), lambda g, x, y: g, saves="none")
_round = _unary("Round", np.round, _zero_grad, saves="none", float_only=False)


def round(input: Tensor, *, decimals: builtins.int = 0) -> Tensor:
    """torch.round: half to even, like torch; ``decimals`` rounds to that many places."""
    decimals = check_int(decimals, "round", "decimals")
    if decimals == 0:
        return _round(input)
    if input._data.dtype.kind in "biu":
        refuse_kernel(input, "round_cpu")  # torch's round(decimals=) kernel is floating only
    return RoundDecimals.apply(input, decimals=decimals)


class RoundDecimals(Function):
    """``round(decimals=)``: piecewise constant, a zero gradient (torch's RoundBackward1)."""
    label = "round"
    node_name = "RoundBackward1"
    rule = "zero gradient (piecewise constant)"
    formula = "round({0}, decimals)"
    _array_forward = True
    saved_attributes = {"_saved_decimals": ctx_value("decimals")}

    @staticmethod
    def forward(ctx, x, decimals):
        ctx.decimals = decimals
        xp = array_module(x)
        if builtins.abs(decimals) > (308 if x.dtype == np.float64 else 38):
            # torch scales by 10^decimals in its opmath type: an infinite scale makes every element NaN
            return xp.full_like(x, np.nan)
        return xp.round(x, decimals)

    @staticmethod
    def backward(ctx, grad):
        return zeros_like_tensor(grad)


class Abs(Function):
    label = "abs"
    rule = "∂/∂a = sign(a) (0 at a = 0)"
    formula = "abs({0})"
    _array_forward = True
    saved_attributes = {"_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        ctx.save_for_backward(x)
        return xp.abs(x) if x.flags.c_contiguous else unary_layout(xp.abs(x), x)

    @staticmethod
    def backward(ctx, grad):
        # |x|' = sign(x), and abs'(0) = 0 as in torch; for complex z, grad · z/|z| (sgn, 0 at 0)
        (x,) = ctx.saved_values
        if x._data.dtype.kind == "c":
            return grad * _sgn(x)
        if is_recording(x):  # torch's formula records x.sgn() (SgnBackward0)
            from .special_functions import sgn

            return grad * sgn(x)
        return grad * sign(x)


@out_rule("same_or_cast_if_complex")
def abs(input: Tensor, *, out=None) -> Tensor:
    """abs(input, *, out=None) -> Tensor

    The absolute value of each element of ``input`` (torch.abs)."""
    if input._data.dtype.kind == "b":
        refuse_kernel(input, "abs_cpu")
    if input.__class__ in SPARSE_COO_TYPES and out is None:
        return input.abs()
    return Abs.apply(input)


absolute = abs


# ---------------------------------------------------------------- binary, selection
class Maximum(Function):
    label = "max"
    torch_name = "maximum"
    rule = "routes the gradient to the larger input (split evenly on a tie)"
    formula = "max({0}, {1})"
    _array_forward = True
    saved_attributes = {"_saved_self": saved(0), "_saved_other": saved(1)}

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        ctx.save_for_backward(a, b)
        return iterator_layout(xp.maximum(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        # the larger input gets the gradient; ties split it evenly (torch's rule, in its ops, one
        # graph for each input: where(a == b, grad / 2, grad).masked_fill_(a < b, 0))
        a, b = ctx.saved_values
        grad_a = _tie_split(grad, a, b).masked_fill(a < b, 0) if ctx.needs_input_grad[0] else None
        grad_b = _tie_split(grad, a, b).masked_fill(a > b, 0) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def _tie_split(grad, a, b):
    """maximum's and minimum's gradient before the loser's is zeroed: half of it where a == b."""
    return where(a == b, DivNumber.apply(grad, number=2), grad)


class Minimum(Function):
    label = "min"
    torch_name = "minimum"
    rule = "routes the gradient to the smaller input (split evenly on a tie)"
    formula = "min({0}, {1})"
    _array_forward = True
    saved_attributes = Maximum.saved_attributes

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        ctx.save_for_backward(a, b)
        return iterator_layout(xp.minimum(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_values
        grad_a = _tie_split(grad, a, b).masked_fill(a > b, 0) if ctx.needs_input_grad[0] else None
        grad_b = _tie_split(grad, a, b).masked_fill(a < b, 0) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Fmax(Function):
    label = "fmax"
    torch_name = "fmax"
    rule = "routes the gradient to the larger input, or to the number where the other is NaN (the first on a tie)"
    formula = "fmax({0}, {1})"
    _array_forward = True
    saved_attributes = Maximum.saved_attributes

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        ctx.save_for_backward(a, b)
        return iterator_layout(xp.fmax(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        # torch's rule: the first input takes the whole gradient where it won (a >= b) or b is NaN
        a, b = ctx.saved_values
        first_won = (a >= b) | isnan(b)
        grad_a = where(first_won, grad, 0.0) if ctx.needs_input_grad[0] else None
        grad_b = where(first_won, 0.0, grad) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Fmin(Function):
    label = "fmin"
    torch_name = "fmin"
    rule = "routes the gradient to the smaller input, or to the number where the other is NaN (the first on a tie)"
    formula = "fmin({0}, {1})"
    _array_forward = True
    saved_attributes = Maximum.saved_attributes

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        ctx.save_for_backward(a, b)
        return iterator_layout(xp.fmin(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_values
        first_won = (a <= b) | isnan(b)
        grad_a = where(first_won, grad, 0.0) if ctx.needs_input_grad[0] else None
        grad_b = where(first_won, 0.0, grad) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def maximum(input: Tensor, other: Tensor) -> Tensor:
    """maximum(input, other, *, out=None) -> Tensor

    The elementwise maximum of two tensors, NaN where either is NaN (torch.maximum)."""
    _require_tensors("maximum", input, other)
    for t in (input, other):
        refuse_complex(t, "maximum not implemented for complex tensors.", RuntimeError)
    a, b = _pair(input, other)
    return Maximum.apply(a, b)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    """minimum(input, other, *, out=None) -> Tensor

    The elementwise minimum of two tensors, NaN where either is NaN (torch.minimum)."""
    _require_tensors("minimum", input, other)
    for t in (input, other):
        refuse_complex(t, "minimum not implemented for complex tensors.", RuntimeError)
    a, b = _pair(input, other)
    return Minimum.apply(a, b)


@honours_out
def fmax(input: Tensor, other: Tensor) -> Tensor:
    """Like maximum but a NaN loses to a number."""
    _require_tensors("fmax", input, other)
    _one_device("fmax", input, other)
    for t in (input, other):
        refuse_complex(t, "fmax not implemented for complex tensors.", RuntimeError)
    a, b = _pair(input, other)
    return Fmax.apply(a, b)


@honours_out
def fmin(input: Tensor, other: Tensor) -> Tensor:
    """fmin(input, other, *, out=None) -> Tensor

    The elementwise minimum, taking the number where one side is NaN (torch.fmin)."""
    _require_tensors("fmin", input, other)
    _one_device("fmin", input, other)
    for t in (input, other):
        refuse_complex(t, "fmin not implemented for complex tensors.", RuntimeError)
    a, b = _pair(input, other)
    return Fmin.apply(a, b)


class Where(Function):
    label = "where"
    rule = "routes the gradient to the branch the condition chose"
    _array_forward = True
    saved_attributes = {"_saved_condition": saved(0)}

    # the condition is a parameter, not an input: torch's node has edges for (self, other) only,
    # and it is saved as the tensor itself, so modifying it in place before backward is caught
    @staticmethod
    def forward(ctx, a, b, condition):
        xp = array_module(a)
        ctx.save_for_backward(condition)
        try:
            # torch's operand order: the condition first
            return iterator_layout(xp.where(condition._data, a, b), condition._data, a, b)
        except ValueError as error:  # torch names the clashing sizes among all three
            raise broadcast_error(error, (condition._data, a, b)) from None

    # the dispatch layer shows it as torch's where.self(condition, self, other)
    @staticmethod
    def to_aten_arguments(inputs, params) -> tuple:
        return (params["condition"], *inputs), {}

    @staticmethod
    def from_aten_arguments(args, kwargs) -> tuple:
        condition, a, b = args
        return (a, b), {"condition": condition}

    @staticmethod
    def backward(ctx, grad):
        # the gradient goes to whichever input was selected
        zero = zeros_like_tensor(grad)
        if getattr(ctx, "overwrites", False):
            # copy_/fill_'s write (_methods._overwrite, a condition never true, not saved): torch's
            # CopyBackwards/FillBackward rule, zeros for the overwritten values and the gradient
            # itself for the written one, so a recorded backward holds no where() of its own
            return (zero if ctx.needs_input_grad[0] else None, grad if ctx.needs_input_grad[1] else None)
        (condition,) = ctx.saved_values
        return (where(condition, grad, zero) if ctx.needs_input_grad[0] else None,
                where(condition, zero, grad) if ctx.needs_input_grad[1] else None)


def where(condition: Tensor, input=None, other=None) -> Tensor:
    """torch.where(condition, input, other); ``where(condition)`` returns nonzero indices."""
    if input is None and other is None:
        return condition.nonzero(as_tuple=True)
    if not isinstance(condition, Tensor):
        raise TypeError(f"where(): argument 'condition' (position 1) must be Tensor, not {type(condition).__name__}")
    if condition._data.dtype == np.uint8:
        # torch still takes a byte mask, nonzero as True, with a TORCH_WARN_ONCE deprecation; the mask is
        # kept as it is (saved for backward, whose where warns again as torch's does)
        _config.warn_once("where received a uint8 condition tensor. This behavior is deprecated and will be removed "
                          "in a future version of PyTorch. Use a boolean condition instead. (Triggered internally at "
                          "/__w/pytorch/pytorch/aten/src/ATen/native/TensorCompare.cpp:621.)")
    elif condition._data.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {_dtype.scalar_name(condition.dtype)}")
    if _function_module.active_dispatch is not None and type(condition._data) is np.ndarray and \
            not (isinstance(input, Tensor) and isinstance(other, Tensor)):
        input, other = _where_scalar_tensors(condition, input, other)
        if isinstance(input, Tensor) and isinstance(other, Tensor):
            # torch's where with a number casts the tensor to the promoted dtype first (a mode's _to_copy)
            dtype = _dtype.result_type(input, other)
            return Where.apply(_cast(input, dtype), _cast(other, dtype), condition=condition)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # torch.where(mask, 1.0, 0.0): two numbers take their promoted dtype (float -> the default
        # float, int -> int64, bool -> bool) and the condition's device
        numbers = (builtins.int, builtins.float, builtins.bool, builtins.complex, np.number, np.bool_)
        if not isinstance(input, numbers) or not isinstance(other, numbers):
            raise TypeError(f"where(): expected Tensors or numbers as input and other, got "
                            f"{type(input).__name__} and {type(other).__name__}")
        dtype = _dtype.result_type(input, other)
        return Where.apply(_as_operand(input, dtype, condition), _as_operand(other, dtype, condition),
                           condition=condition)
    a, b = _pair(input, other)
    # torch 2.13 refuses a number that overflows the result's dtype, but lets float16/bfloat16
    # round it to inf
    if _opmath.fused_compute_dtype(a.dtype) is None:
        _dtype.checked_scalar(input if isinstance(other, Tensor) else other, a.dtype)
    return Where.apply(a, b, condition=condition)


_WHERE_NUMBERS = (builtins.int, builtins.float, builtins.bool, builtins.complex, np.number, np.bool_)


def _where_scalar_tensors(condition, input, other) -> tuple:
    """where's number operands under a dispatch mode (a CPU condition): torch's scalar_tensor(value,
    dtype=<the promoted dtype>, layout=strided, device=cpu) for each, ``other`` first, checked first as
    where checks them; the operands as given where no mode answers or an operand is neither."""
    if not all(isinstance(value, (Tensor, *_WHERE_NUMBERS)) for value in (input, other)):
        return input, other  # (where's own TypeError below)
    dtype = _dtype.result_type(input, other)
    if (isinstance(input, Tensor) or isinstance(other, Tensor)) and _opmath.fused_compute_dtype(dtype) is None:
        _dtype.checked_scalar(input if isinstance(other, Tensor) else other, dtype)
    made = {}
    for name, value in (("other", other), ("input", input)):
        if not isinstance(value, Tensor):
            made[name] = _function_module.factory_dispatch(
                "scalar_tensor", _scalar_tensor_operand, (value,),
                {"dtype": dtype, "layout": _layout.strided, "device": condition.device})
            if made[name] is _function_module.RUN_UNDISPATCHED:
                return input, other
    return made.get("input", input), made.get("other", other)


def _scalar_tensor_operand(s, *, dtype, layout=None, device=None) -> Tensor:
    """aten.scalar_tensor's func for where's number operand: the wrapped 0-d operand where computes with."""
    return _as_operand(s, dtype)


class Clamp(Function):
    _array_forward = True
    node_name = "ClampBackward1"  # torch's clamp(Scalar, Scalar) overload
    label = "clamp"
    saved_attributes = {"_saved_min": ctx_value("bounds", lambda bounds: _as_number(bounds[0])),
                        "_saved_max": ctx_value("bounds", lambda bounds: _as_number(bounds[1])),
                        "_saved_self": saved(0)}
    rule = "passes the gradient where a is inside the bounds (bounds included), 0 outside"
    formula = "clamp({0})"

    @staticmethod
    def forward(ctx, x, min, max):
        xp = array_module(x)
        ctx.save_for_backward(x)
        ctx.bounds = (min, max)
        return xp.clip(x, min, max).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        # the gradient passes where x is inside [min, max], bounds included (torch's rule)
        (x,) = ctx.saved_values
        low, high = ctx.bounds
        zero = _backward_zero(grad)
        inside = None
        if low is not None:
            inside = x >= low
        if high is not None:
            inside = (x <= high) if inside is None else inside.logical_and_(x <= high)
        return where(inside, grad, zero)


def _backward_zero(grad):
    """The 0 a clamp rule's where() puts outside the bounds: under a dispatch mode torch's
    ``scalar_tensor(0., grad.options())``, made before the masks as its formulas make it, else the number."""
    if _function_module.active_dispatch is None or type(grad._data) is not np.ndarray:
        return 0.0
    made = _function_module.factory_dispatch("scalar_tensor", _scalar_tensor_operand, (0.0,),
                                             {"dtype": grad.dtype, "layout": _layout.strided, "device": grad.device})
    return 0.0 if made is _function_module.RUN_UNDISPATCHED else made


def _as_number(bound):
    """A clamp bound as torch's node reports it: a Python number (None when not given)."""
    return bound.item() if hasattr(bound, "item") else bound


@out_rule("clamp")
def clamp(input: Tensor, min=None, max=None, *, out=None) -> Tensor:
    """torch.clamp with number or tensor bounds; at least one bound is required."""
    if not isinstance(input, Tensor):
        raise _dtype.invalid_combination("clamp", input, *(bound for bound in (min, max) if bound is not None))
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    refuse_complex(input, "clamp is not supported for complex types")
    if min is not None and max is not None and isinstance(min, Tensor) != isinstance(max, Tensor):
        # torch has no mixed overload, but its parser reads a 0-d tensor that does not require
        # grad as a Number: (Tensor, 0, torch.tensor(3)) is the (Scalar, Scalar) overload
        if not mixed_number_bounds((min, max)):
            check_broadcast_in_order(input, min, max)
            raise TypeError(_mixed_bounds_message(input, min, max))
        min, max = (bound.item() if isinstance(bound, Tensor) else bound for bound in (min, max))
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        check_broadcast_in_order(input, min, max)
        if min is not None and max is not None:
            if all(t._data.dtype == np.bool_ for t in (input, min, max)):  # torch's one-bound kernels take bool
                raise NotImplementedError("\"clamp_cpu\" not implemented for 'Bool'")
        if input._data.dtype in _dtype.WIDE_UNSIGNED:  # (torch's one-bound clamps are maximum and minimum)
            key = "Maximum" if max is None else "Minimum" if min is None else "clamp_tensors"
            _dtype.refuse_wide_unsigned(f"elementwise.{key}", _dtype.result_type(input, *[b for b in (min, max) if b is not None]).np)
        return _clamp_by_tensors(ClampByTensors, input, min, max)
    if input._data.dtype.kind not in "fV":
        if _function_module.active_dispatch is not None and (made := _promoting_clamp_dispatch(input, min, max)) \
                is not _function_module.RUN_UNDISPATCHED:
            return made
        # number bounds take part in type promotion (an int tensor clamped at 2.5 becomes float)
        dtype = _dtype.result_type(input, *[v for v in (min, max) if v is not None])
        input = _cast(input, dtype)
        refuse_complex(input, "clamp is not supported for complex types")  # an integer tensor, a complex bound
    if input._data.dtype == np.bool_:  # a bool tensor with bool bounds: torch has no kernel for it
        kernel = "clamp_max_scalar_cpu" if min is None else "clamp_min_scalar_cpu" if max is None else "clamp_scalar_cpu"
        raise NotImplementedError(f'"{kernel}" not implemented for \'Bool\'')
    if input._data.dtype in _dtype.WIDE_UNSIGNED:
        _dtype.refuse_wide_unsigned(f"elementwise.clamp{'_max' if min is None else '_min' if max is None else ''}",
                                    input._data)
    # torch converts the bounds to the computing dtype and refuses those that overflow it
    min, max = _real_bound(min), _real_bound(max)
    min, max = _dtype.checked_scalar(min, input.dtype), _dtype.checked_scalar(max, input.dtype)
    return Clamp.apply(input, min=min, max=max)


def _promoting_clamp_dispatch(input: Tensor, min, max):
    """An integer tensor's clamp at number bounds to a dispatch mode as torch's one op on that tensor
    (clamp_min/clamp_max where the call was one of those), its cast to the promoted dtype inside it."""
    given = _function_module.given_arguments
    one_bound = given[2].get("one_bound") if given is not None and given[0] is Clamp and given[1]() is input else None
    _function_module.given_arguments = None  # (taken: the composite's own clamp is plain)
    if one_bound is not None:
        bound = min if one_bound == "min" else max
        return _function_module.composite_dispatch(f"clamp_{one_bound}", clamp_min if one_bound == "min" else clamp_max,
                                                   (input, bound), {})
    return _function_module.composite_dispatch("clamp", clamp, (input, min) if max is None else (input, min, max), {})


def _real_bound(bound):
    # torch reads a number bound of a floating clamp as a double first: a complex one overflows
    # that unless its imaginary part is zero, when its real part is the bound
    if isinstance(bound, (builtins.complex, np.complexfloating)):
        if bound.imag:
            raise RuntimeError("value cannot be converted to type double without overflow")
        return bound.real
    return bound


class ClampByTensors(Function):
    """clamp(x, min, max) with tensor bounds (either may be None): torch's one clamp.Tensor node,
    an edge to x and to each bound."""
    _array_forward = True
    node_name = "ClampBackward0"  # torch's clamp(Tensor, Tensor?, Tensor?) overload
    label = "clamp"
    saved_attributes = {"_saved_max": saved(2), "_saved_min": saved(1), "_saved_self": saved(0)}
    rule = "x gets the gradient where min <= x <= max; min where x < min < max; max where x > max or max < min"
    formula = "clamp({0}, {1}, {2})"

    @staticmethod
    def forward(ctx, x, low, high, dtype, given=(True, True)):
        xp = array_module(x)
        low, high = (bound if is_given else None for bound, is_given in zip((low, high), given))
        ctx.save_for_backward(x, low, high)
        arrays = [a if a is None or a.dtype == dtype else a.astype(dtype) for a in (x, low, high)]
        # NumPy's maximum and minimum propagate a NaN from either side, as torch's kernels do
        out = arrays[0]
        if low is not None:
            out = xp.maximum(out, arrays[1])
        if high is not None:
            out = xp.minimum(out, arrays[2])
        return _clamp_layout(out, x, low, high)

    @staticmethod
    def backward(ctx, grad):
        x, low, high = ctx.saved_values
        return _clamp_gradients(grad, x, low, high, *ctx.needs_input_grad)


def _clamp_gradients(grad, x, low, high, needs_x, needs_low, needs_high):
    # torch's clamp_backward and clamp_backward_min_max: with both bounds, x gets the gradient where
    # low <= x <= high, low where x < low < high, high where x > high or high < low (the result is
    # high whatever x is); where a NaN makes the comparisons false nothing gets any
    # (the bounds' gradients first, then x's, each formula making its zero first: torch's order)
    grad_low = grad_high = grad_x = None
    if needs_low or needs_high:
        zero = _backward_zero(grad)
        if low is not None and high is not None:
            grad_low = where(logical_and(x < low, low < high), grad, zero) if needs_low else None
            grad_high = where(logical_or(x > high, high < low), grad, zero) if needs_high else None
        elif low is not None:
            grad_low = where(x < low, grad, zero) if needs_low else None
        else:
            grad_high = where(x > high, grad, zero) if needs_high else None
    if needs_x:
        zero = _backward_zero(grad)
        inside = logical_and(x >= low, x <= high) if low is not None and high is not None else \
            x >= low if low is not None else x <= high
        grad_x = where(inside, grad, zero)
    return grad_x, grad_low, grad_high


class ClampMinByTensor(Function):
    """clamp_min(x, min) with a tensor bound: torch's clamp_min.Tensor node (edges to x and min)."""
    _array_forward = True
    node_name = "ClampMinBackward1"
    label = "clamp_min"
    saved_attributes = {"_saved_min": saved(1), "_saved_self": saved(0)}
    rule = "x gets the gradient where x >= min, min where x < min"
    formula = "clamp_min({0}, {1})"

    @staticmethod
    def forward(ctx, x, low, dtype):
        return ClampByTensors.forward(ctx, x, low, None, dtype)

    @staticmethod
    def backward(ctx, grad):
        x, low, _ = ctx.saved_values
        return _clamp_gradients(grad, x, low, None, *ctx.needs_input_grad, False)[:2]


class ClampMaxByTensor(Function):
    """clamp_max(x, max) with a tensor bound: torch's clamp_max.Tensor node (edges to x and max)."""
    _array_forward = True
    node_name = "ClampMaxBackward1"
    label = "clamp_max"
    saved_attributes = {"_saved_max": saved(2), "_saved_self": saved(0)}
    rule = "x gets the gradient where x <= max, max where x > max"
    formula = "clamp_max({0}, {1})"

    @staticmethod
    def forward(ctx, x, high, dtype):
        return ClampByTensors.forward(ctx, x, None, high, dtype)

    @staticmethod
    def backward(ctx, grad):
        x, _, high = ctx.saved_values
        needs_x, needs_high = ctx.needs_input_grad
        grad_x, _, grad_high = _clamp_gradients(grad, x, None, high, needs_x, False, needs_high)
        return grad_x, grad_high


def _clamp_layout(out, x, low, high):
    # torch's TensorIterator lays the result out from its operands in order (x, min, max)
    operands = [a for a in (x, low, high) if a is not None]
    return iterator_layout(out, *operands) if len(operands) > 1 else out


def _clamp_by_tensors(function, input: Tensor, *bounds: Tensor | None) -> Tensor:
    # computed in the dtype torch's TensorIterator promotes the three to, with no cast node
    dtype = _dtype.result_type(input, *(b for b in bounds if b is not None)).np
    if dtype.kind == "c":  # a real input, a complex bound: torch's kernels have no complex instance
        if function is ClampByTensors:
            kernel = "clamp" if None not in bounds else "maximum" if bounds[1] is None else "minimum"
        else:
            kernel = "maximum" if function is ClampMinByTensor else "minimum"
        raise NotImplementedError(f"\"{kernel}_{input.device.type}\" not implemented for '{_dtype.scalar_name(dtype)}'")
    if None not in bounds:
        return function.apply(input, *bounds, dtype=dtype)
    # torch's node keeps an empty edge for the missing bound: a constant stands in for it
    absent = Tensor._make(array_module(input._data).zeros((), dtype))
    if _function_module.tracing_ops:  # (every slice's run makes it alike: a constant of a vmap's record)
        _function_module.traced_constant(absent)
    return function.apply(input, *(absent if b is None else b for b in bounds), dtype=dtype,
                          given=tuple(b is not None for b in bounds))


def _mixed_bounds_message(input, min, max) -> str:
    got = ", ".join(type(v).__name__ for v in (input, min, max))
    return (f"clamp() received an invalid combination of arguments - got ({got}), but expected one of:\n"
            " * (Tensor input, Tensor min = None, Tensor max = None, *, Tensor out = None)\n"
            " * (Tensor input, Number min = None, Number max = None, *, Tensor out = None)\n")


clip = clamp


def _refuse_complex_bound(bound) -> None:
    # clamp_min/clamp_max promote with a number bound (clamp does not), so a complex one makes
    # the computation complex: torch's error for complex clamps, not clamp's overflow
    if isinstance(bound, (builtins.complex, np.complexfloating)):
        raise NotImplementedError("clamp is not supported for complex types")


def clamp_min(input: Tensor, min) -> Tensor:
    """clamp_min(input, min) -> Tensor

    ``input`` with every element below ``min`` (a number or a tensor) raised to it (torch.clamp_min)."""
    _require_tensors("clamp_min", input)
    if min is None:  # torch's parser: clamp_min takes a Number or a Tensor, never None
        raise TypeError("clamp_min(): argument 'min' must be Number or Tensor, not NoneType")
    _refuse_complex_bound(min)
    if isinstance(min, Tensor):
        refuse_complex(input, "clamp is not supported for complex types")
        check_broadcast_in_order(input, min)
        return _clamp_by_tensors(ClampMinByTensor, input, min)
    if _function_module.active_dispatch is not None:
        _function_module.note_given(Clamp, input, one_bound="min")  # (a mode sees torch's clamp_min)
    out = clamp(input, min=min)
    if out is input:
        return out
    return name_node(out, "ClampMinBackward0", saved=_CLAMP_MIN_SAVED)  # torch's clamp_min(Scalar) node


def clamp_max(input: Tensor, max) -> Tensor:
    """clamp_max(input, max) -> Tensor

    ``input`` with every element above ``max`` (a number or a tensor) lowered to it (torch.clamp_max)."""
    _require_tensors("clamp_max", input)
    if max is None:  # torch's parser: clamp_max takes a Number or a Tensor, never None
        raise TypeError("clamp_max(): argument 'max' must be Number or Tensor, not NoneType")
    _refuse_complex_bound(max)
    if isinstance(max, Tensor):
        refuse_complex(input, "clamp is not supported for complex types")
        check_broadcast_in_order(input, max)
        return _clamp_by_tensors(ClampMaxByTensor, input, max)
    if _function_module.active_dispatch is not None:
        _function_module.note_given(Clamp, input, one_bound="max")  # (a mode sees torch's clamp_max)
    out = clamp(input, max=max)
    if out is input:
        return out
    return name_node(out, "ClampMaxBackward0", saved=_CLAMP_MAX_SAVED)


_CLAMP_MIN_SAVED = {"_saved_min": Clamp.saved_attributes["_saved_min"], "_saved_self": saved(0)}
_CLAMP_MAX_SAVED = {"_saved_max": Clamp.saved_attributes["_saved_max"], "_saved_self": saved(0)}


class Atan2(Function):
    label = "atan2"
    rule = "∂/∂a = b/(a² + b²), ∂/∂b = -a/(a² + b²)"
    formula = "atan2({0}, {1})"
    _array_forward = True
    saved_attributes = {"_saved_self": saved(0), "_saved_other": saved(1)}

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        ctx.save_for_backward(a, b)
        return iterator_layout(xp.arctan2(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        # d atan2(a, b) = (b da - a db) / (a^2 + b^2); where a^2 + b^2 is 0 (the origin, or
        # squares that underflow) torch takes the reciprocal as 0, so the gradient is 0, not NaN
        xp = array_module(grad)
        a, b = ctx.saved_values
        reciprocal = 1 / (a * a + b * b)
        infinite = isinf(reciprocal) if _function_module.tracing_ops else Tensor._make(xp.isinf(reciprocal._data))
        reciprocal = where(infinite, 0.0, reciprocal)  # (under a vmap recording its ops, a mask an op made)
        return grad * b * reciprocal, -grad * a * reciprocal


def atan2(input: Tensor, other: Tensor) -> Tensor:
    """atan2(input, other, *, out=None) -> Tensor

    The elementwise arctangent of ``input / other``, in the quadrant of the point (other, input)
    (torch.atan2)."""
    _require_tensors("atan2", input, other)
    a, b = _float_pair(input, other)
    refuse_complex(a, '"atan2_cpu" not implemented for \'{dtype}\'')
    return Atan2.apply(a, b)


class Hypot(Function):
    """sqrt(a^2 + b^2) without the squares' overflow or underflow (np.hypot, as torch's)."""

    label = "hypot"
    rule = "∂/∂a = a/hypot(a, b), ∂/∂b = b/hypot(a, b)"
    formula = "hypot({0}, {1})"
    _array_forward = True
    # torch keeps each operand for its own gradient, and the result for both
    saved_attributes = {"_saved_other": saved(1, needed=1), "_saved_result": saved(2), "_saved_self": saved(0, needed=0)}

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        out = iterator_layout(xp.hypot(a, b), a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        # d hypot = (a da + b db) / hypot
        a, b, out = ctx.saved_values
        return grad * a / out, grad * b / out


def hypot(input: Tensor, other: Tensor) -> Tensor:
    """hypot(input, other, *, out=None) -> Tensor

    ``sqrt(input ** 2 + other ** 2)`` elementwise (torch.hypot)."""
    _require_tensors("hypot", input, other)
    a, b = _pair(input, other)
    if a._data.dtype.kind in "biuc":  # torch's kernel is real floating only
        refuse_kernel(a, "hypot_cpu")
    return Hypot.apply(a, b)


class Logaddexp(Function):
    label = "logaddexp"
    rule = "∂/∂a = 1/(1 + exp(b - a)), ∂/∂b = 1/(1 + exp(a - b))"
    formula = "logaddexp({0}, {1})"
    _array_forward = True
    saved_attributes = {"_saved_other": saved(1), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        ctx.save_for_backward(a, b)
        # shift by the larger input, except an infinite one (inf - inf would be NaN; the sum is that inf)
        if a.dtype.kind != "c":
            # torch's real kernel: max + log1p(exp(-|a - b|)), which keeps log1p's precision for a
            # far smaller term (log(1 + tiny) rounds it away); equal infinities give themselves
            with np.errstate(all="ignore"):
                out = xp.maximum(a, b) + xp.log1p(xp.exp(-xp.abs(a - b)))
                out = xp.where(xp.isinf(a) & (a == b), a, out)
            return iterator_layout(out, a, b)
        m = xp.maximum(a, b)
        m = xp.where(xp.isinf(m), xp.zeros((), m.dtype), m)
        with np.errstate(all="ignore"):
            return iterator_layout(m + xp.log(xp.exp(a - m) + xp.exp(b - m)), a, b)

    @staticmethod
    @conjugate_rule
    def backward(ctx, grad):
        # torch's 1/(1 + exp(b - a)), not the shifted sum's inf/inf: at (inf, -inf) a gets all of
        # it and b none; written as sigmoid(a - b), whose own derivative does not overflow
        a, b = ctx.saved_values
        return grad * sigmoid(a - b), grad * sigmoid(b - a)


def logaddexp(input: Tensor, other: Tensor) -> Tensor:
    """logaddexp(input, other, *, out=None) -> Tensor

    ``log(exp(input) + exp(other))`` elementwise, computed without overflow (torch.logaddexp)."""
    _require_tensors("logaddexp", input, other)
    a, b = _pair(input, other)
    if a._data.dtype.kind in "biu":
        refuse_kernel(a, "logaddexp_cpu")
    return Logaddexp.apply(a, b)


class Xlogy(Function):
    """x · log y, 0 where x = 0 and y is not NaN."""

    label = "xlogy"
    rule = "∂/∂x = log y (at x = 0 too, as torch), ∂/∂y = x / y"
    formula = "xlogy({0}, {1})"
    node_name = "XlogyBackward0"
    _array_forward = True
    saved_attributes = {"_saved_other": saved(1), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        xp = array_module(x)
        return iterator_layout(xp.where((x == 0) & ~xp.isnan(y), xp.zeros((), x.dtype), x * xp.log(y)), x, y)

    @staticmethod
    def backward(ctx, grad):
        # torch's rule: the x-gradient is xlogy(grad, y), log y even where x = 0 (where the value
        # itself is 0), except 0 where x = 0 and y <= 0 (log y is -inf or NaN there)
        x, y = ctx.saved_values
        return (where((x == 0) & (y <= 0), 0.0, xlogy(grad, y)) if ctx.needs_input_grad[0] else None,
                grad * x / y if ctx.needs_input_grad[1] else None)


@honours_out
def xlogy(input, other) -> Tensor:
    """x * log(y), defined as 0 where x == 0 and y is not NaN."""
    x, y = _float_pair(input, other)
    if x._data.dtype.kind == "c":
        refuse_kernel(x, "xlogy_cpu")
    return Xlogy.apply(x, y)


def _check_lerp_dtypes(input: Tensor, end, weight) -> None:
    """torch's lerp takes no type promotion: ``end`` must have the input's dtype, and so must a
    ``weight`` tensor with dimensions (a 0-d one is converted); torch names the C++ types."""
    from .linalg import _C_TYPE_NAMES  # linalg imports this module

    for name, other in (("end", end), ("weight", weight)):
        if isinstance(other, Tensor) and other.dtype != input.dtype and (name == "end" or other.dim() > 0):
            expected, got = (_C_TYPE_NAMES.get(d.name, d.name) for d in (input.dtype, other.dtype))
            raise RuntimeError(f"expected dtype {expected} for `{name}` but got dtype {got}")


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    """lerp(input, end, weight, *, out=None) -> Tensor

    Linear interpolation ``input + weight * (end - input)``, elementwise (torch.lerp)."""
    if not (isinstance(input, Tensor) and isinstance(end, Tensor)) or not isinstance(weight, (Tensor, *_POW_SCALARS)):
        raise _dtype.invalid_combination("lerp", input, end, weight)
    if isinstance(input, Tensor):
        _check_lerp_dtypes(input, end, weight)
    check_broadcast_in_order(input, end, weight)
    _one_device("lerp", input, end, weight)
    if isinstance(input, Tensor) and not isinstance(weight, Tensor):
        if input.dtype._category < 2:
            raise NotImplementedError(f'"lerp_kernel_scalar" not implemented for \'{_dtype.scalar_name(input.dtype)}\'')
        # the weight must fit the compute type (float32 for float16)
        weight = _dtype.checked_scalar(weight, _opmath.fused_compute_dtype(input.dtype) or input.dtype)
    elif isinstance(input, Tensor) and input.dtype._category < 2:
        raise NotImplementedError(f'"lerp_kernel_tensor" not implemented for \'{_dtype.scalar_name(input.dtype)}\'')
    if isinstance(weight, Tensor):
        return _laid_out(_as_one_node(LerpTensor, _lerp_values, (input, end, weight)), input, end, weight)
    return _laid_out(_as_one_node(LerpScalar, lambda x, y: _lerp_values(x, y, weight), (input, end), weight=weight),
                     input, end, weight)


def _lerp_values(input: Tensor, end: Tensor, weight) -> Tensor:
    """lerp's values as torch's kernels round them (no graph of its own when recorded: _as_one_node)."""
    fused = _lerp_rounded_once(input, end, weight)
    if fused is not None:
        return fused
    if input.dtype.is_complex and not isinstance(weight, Tensor) and array_module(input) is np:
        # torch's complex kernel: from the nearer end, input + w·diff or end + (w - 1)·diff, its
        # complex products unfused (_unfused_complex_product), w a number of the dtype. (A complex
        # tensor weight is left to the composite: torch's vectorised |w| < 0.5 test was not matched.)
        w = np.asarray(weight, dtype=input._data.dtype)
        diff = end._data - input._data
        near = np.abs(w) < 0.5
        values = (input._data if near else end._data) + _unfused_complex_product(w if near else w - 1, diff)
        return _with_values(input + weight * (end - input), values)
    return input + weight * (end - input)


def _as_one_node(cls, compute, operands: tuple, *, saved: dict | None = None, kept: dict | None = None,
                 **params) -> Tensor:
    """``compute(*operands)``, a composite of chainrule ops that rounds as torch's fused kernel
    does, recorded as torch records that kernel: one node of ``cls``, an edge to each of
    ``operands`` (None for one that needs no gradient), torch's derivative formulas for its rule
    and torch's ``_saved_*``; ``params`` go to cls's forward, which computes the same composite.
    A dispatch mode or a wrapper subclass sees the op as torch's one aten op (cls's
    ``aten_overload`` and ``to_aten_arguments``), recorded or not. Where the profiler, forward AD
    or CPU autocast watches the op, the composite runs as it is, each part seen (cast, timed,
    given a tangent) as before, and its last node takes cls's name (its edges the parts'; ``saved``
    and ``kept`` name_node's)."""
    if (_function_module.active_profiler is not None or _function_module.active_extension is not None
            or _opmath.autocast_hook.cpu_dtype is not None):
        if not is_recording(*operands):
            return compute(*operands)
        return name_node(compute(*operands), cls.node_name, label=cls.label, rule=_LAST_PART_RULE % cls.label,
                         saved=saved, kept=kept)
    if _function_module.active_dispatch is None and not is_recording(*operands):
        return compute(*operands)
    return cls.apply(*operands, **params)


# the explainer's text for the renamed last node of a fused op's composite, run part by part under a mode
_LAST_PART_RULE = "%s's last step (its composite run part by part, each part seen): passes the gradient on"


def _composite(compute, *arrays):
    """The array of ``compute``'s composite run on ``arrays`` (tensors outside the graph: nothing
    recorded), its parts below the dispatch layer: the mode or wrapper that saw the op sees none of them."""
    dispatch = _function_module.active_dispatch
    _function_module.active_dispatch = None
    try:
        return compute(*(Tensor._make(a) for a in arrays))._data
    finally:
        _function_module.active_dispatch = dispatch


class LerpScalar(Function):
    """torch.lerp with a number for weight (LerpBackward0): its forward the fused composite."""

    _array_forward = True
    node_name = "LerpBackward0"
    label = "lerp"
    rule = "∂/∂input = 1 - weight, ∂/∂end = weight"
    formula = None
    saved_attributes = {"_saved_weight": ctx_value("weight")}
    aten_overload = "Scalar"  # the dispatch layer shows it as torch's lerp.Scalar(self, end, weight)

    @staticmethod
    def forward(ctx, input, end, weight):
        ctx.weight = weight
        return _composite(lambda x, y: _lerp_values(x, y, weight), input, end)

    @staticmethod
    def to_aten_arguments(inputs, params) -> tuple:
        return (*inputs, params["weight"]), {}

    @staticmethod
    def from_aten_arguments(args, kwargs) -> tuple:
        input, end, weight = args
        return (input, end), {"weight": weight}

    @staticmethod
    def backward(ctx, grad):
        # d(input + w·(end - input)) = (1 - w) d input + w d end, conjugated for complex (torch's formulas:
        # grad * (1 - w) in double as its toDouble(), grad * w.conj(), a complex w conjugated as a number)
        weight = ctx.weight
        if isinstance(weight, builtins.complex):
            weight = weight.conjugate()
        needs = ctx.needs_input_grad
        return ((MulNumber.apply(grad, number=1 - weight) if needs[0] else None),
                (MulNumber.apply(grad, number=weight) if needs[1] else None))


class LerpTensor(Function):
    """torch.lerp with a tensor for weight (LerpBackward1): its forward the fused composite."""

    _array_forward = True
    node_name = "LerpBackward1"
    label = "lerp"
    rule = "∂/∂input = 1 - weight, ∂/∂end = weight, ∂/∂weight = end - input"
    formula = None
    # torch keeps input and end for weight's gradient, and weight always
    saved_attributes = {"_saved_self": saved(0), "_saved_end": saved(1), "_saved_weight": saved(2)}
    aten_overload = "Tensor"  # (lerp.Tensor(self, end, weight) to the dispatch layer)

    @staticmethod
    def forward(ctx, input, end, weight):
        needs = ctx.needs_input_grad
        ctx.save_for_backward(input if needs[2] else None, end if needs[2] else None, weight)
        return _composite(_lerp_values, input, end, weight)

    @staticmethod
    def backward(ctx, grad):
        # d(input + w·(end - input)) = (1 - w) d input + w d end + (end - input) dw, each factor
        # conjugated (torch's formulas: grad * factor.conj(), no node for a real factor)
        input, end, weight = ctx.saved_values
        needs = ctx.needs_input_grad
        # (torch's C++ 1 - weight: sub of the number as a tensor, SubBackward0 with weight's edge only)
        return ((grad * _conj(Sub.apply(*_pair(1, weight))) if needs[0] else None),
                (grad * _conj(weight) if needs[1] else None), (grad * _conj(end - input) if needs[2] else None))


def _lerp_rounded_once(input: Tensor, end: Tensor, weight):
    """torch's float32, bfloat16 and float16 lerp: from whichever end the weight is nearer
    (``|w| < 0.5 ? input + w·diff : end + (w - 1)·diff``, its kernel's two branches), each a fused
    multiply-add; bfloat16/float16 compute in float32 and round once more at the end."""
    if not isinstance(input, Tensor):
        return None
    if isinstance(weight, Tensor) and weight.device != input.device:
        # torch's one allowed mix, a 0-d CPU weight on a CUDA lerp: read on the device (its
        # gradient goes back to the CPU)
        weight = weight.to(input.device)
    if input.dtype in (_dtype.float32, _dtype.float64):
        if input.dtype == _dtype.float64 and array_module(input) is not np:
            return None
        # float32 and float64 are their own compute types: the fused multiply-adds alone, no rounding after
        def compute(fn, *operands):
            return fn(*operands)
        if isinstance(weight, Tensor) and weight.dtype != input.dtype:  # a 0-d weight, converted
            weight = _cast(weight, input.dtype)
    elif _opmath.fused_compute_dtype(input.dtype) is None:
        return None
    else:
        compute = rounded_once
    if not isinstance(weight, Tensor):
        # the kernel's weight and weight - 1 are numbers of the compute type (float32 below float64)
        real = np.float64 if input.dtype == _dtype.float64 else np.float32
        weight = builtins.float(real(weight))
        if builtins.abs(weight) < 0.5:
            return compute(lambda a, b: _fma(b - a, weight, a), input, end)
        coefficient = builtins.float(real(weight) - real(1))
        return compute(lambda a, b: _fma(b - a, coefficient, b), input, end)

    def from_nearer_end(a, b, w):
        diff = b - a
        return where(abs(w) < 0.5, _fma(diff, w, a), _fma(diff, w - 1, b))
    return compute(from_nearer_end, input, end, weight)


def _fma(x: Tensor, y, z: Tensor) -> Tensor:
    """float32 ``x * y + z`` rounded once, as the fused multiply-add of torch's vectorised kernels:
    float64 holds the float32 product exactly, so only the sum rounds (to float32). float64 (NumPy
    arrays): the product's and the sum's rounding errors recovered exactly and added back, as a
    constant correction to the differentiable ``x * y + z``, whose derivatives are the fma's."""
    if x.dtype == _dtype.float64:
        from .creation import _fused_multiply_add  # creation imports this module

        plain = x * y + z
        with np.errstate(all="ignore"):
            correction = _fused_multiply_add(x._data, y._data if isinstance(y, Tensor) else y, z._data) - plain._data
        # (near overflow the exact split itself overflows: the plain result stands there, inf as torch's)
        return plain + Tensor._make(np.where(np.isfinite(correction), correction, 0.0))
    wide = _dtype.float64
    y = _cast(y, wide) if isinstance(y, Tensor) else y
    return _cast(_cast(x, wide) * y + _cast(z, wide), x.dtype)


def _value_as_given(inputs, params) -> tuple:
    """addcmul's and addcdiv's (args, kwargs) as torch's dispatcher passes them: ``value`` as the
    caller gave it, a keyword, left out where it is the default int 1 (1.0 and True are passed)."""
    given = params["given"]
    return tuple(inputs), ({} if type(given) is builtins.int and given == 1 else {"value": given})


def _value_from_aten(args, kwargs) -> tuple:
    given = kwargs.get("value", 1)
    value = given if type(given) is builtins.int and given == 1 else _checked_value(given, *args)
    return tuple(args), {"value": value, "given": given}


@scalar_first_in_function_words
@honours_out
@accepts_scalar_first("value", "tensor1, tensor2")
def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """torch.addcmul: input + value * tensor1 * tensor2 (value=1 adds no op and no promotion)."""
    _refuse_non_tensors(input, tensor1, tensor2)
    if all(isinstance(t, Tensor) and t.dtype._category == 0 for t in (input, tensor1, tensor2)):
        raise NotImplementedError('"addcmul_cpu_out" not implemented for \'Bool\'')
    check_broadcast_in_order(input, tensor1, tensor2)
    _one_device("addcmul", input, tensor1, tensor2)
    if input._data.dtype in _dtype.WIDE_UNSIGNED:
        _dtype.refuse_wide_unsigned("elementwise.addcmul", _dtype.result_type(input, tensor1, tensor2).np)
    given = value
    if type(value) is not builtins.int or value != 1:
        value = _checked_value(value, input, tensor1, tensor2)
    return _laid_out(_as_one_node(Addcmul, lambda x, t1, t2: _addcmul_values(x, t1, t2, value), (input, tensor1, tensor2),
                                  saved=_ADDCMUL_SAVED, kept=_kept_factors(given, tensor1, tensor2), value=value,
                                  given=given),
                     input, tensor1, tensor2)


def _addcmul_values(input: Tensor, tensor1: Tensor, tensor2: Tensor, value) -> Tensor:
    """addcmul's values as torch's kernels round them (no graph of its own when recorded: _as_one_node)."""
    fused = rounded_once(lambda x, t1, t2: x + value * t1 * t2, input, tensor1, tensor2)
    if fused is not None:
        return fused
    tensor1, tensor2 = _in_common_dtype(input, tensor1, tensor2)
    common = _dtype.result_type(input, tensor1, tensor2)
    if common == _dtype.float32 or common == _dtype.float64 and all(
            array_module(t) is np for t in (input, tensor1, tensor2)):
        # torch's float32 and float64 kernels: value·tensor1 rounded, then one fused multiply-add with
        # tensor2 (an optimizer's exp_avg_sq.addcmul_(grad, grad, value=1 - beta2))
        return _fma(tensor1 if value == 1 else value * tensor1, tensor2, input)
    if common.is_complex and all(array_module(t) is np for t in (input, tensor1, tensor2)):
        # (input's array in the common dtype: NumPy would widen int64 + complex64 to complex128)
        return _with_values(input + value * tensor1 * tensor2, input._data.astype(common.np, copy=False) + _unfused_complex_product(
            _unfused_complex_product(np.asarray(value, dtype=common.np), tensor1._data), tensor2._data))
    product = tensor1 * tensor2
    return input + (product if value == 1 else value * product)


def _unfused_complex_product(p, q):
    """``p * q`` as torch's CPU complex kernels multiply (its vectorised and scalar loops alike):
    (ac - bd) + (ad + bc)i with every real product rounded; NumPy's complex multiply fuses one of
    them into the sum, so 1 in 4 complex64 results differ from torch's in their last bit."""
    real = p.real * q.real - p.imag * q.imag
    imag = p.real * q.imag + p.imag * q.real
    out = np.empty(real.shape, dtype=np.result_type(p, q))
    out.real = real
    out.imag = imag
    return out


def _with_values(composite: Tensor, values) -> Tensor:
    """``values`` (an array ``composite``'s math rounds differently) with ``composite``'s graph and
    tangents where it has them (the profiler's and forward AD's part-by-part runs): composite minus
    itself detached is an exact zero that carries its derivatives (not where it is inf or NaN: the
    composite's own values stand there)."""
    if composite.grad_fn is None and _function_module.active_extension is None:
        return Tensor._make(values)
    if not np.isfinite(composite._data).all():
        return composite
    return (composite - composite.detach()) + Tensor._make(values)


class Addcmul(Function):
    """torch.addcmul (AddcmulBackward0): its forward the fused composite."""

    _array_forward = True
    node_name = "AddcmulBackward0"
    label = "addcmul"
    rule = "∂/∂input = 1, ∂/∂tensor1 = value·tensor2, ∂/∂tensor2 = value·tensor1"
    formula = None
    # torch keeps each tensor for the other's gradient, and the value as given
    saved_attributes = {"_saved_tensor1": saved(0), "_saved_tensor2": saved(1), "_saved_value": ctx_value("given")}

    @staticmethod
    def forward(ctx, input, tensor1, tensor2, value, given):
        needs = ctx.needs_input_grad
        ctx.given = given
        ctx.save_for_backward(tensor1 if needs[2] else None, tensor2 if needs[1] else None)
        return _composite(lambda x, t1, t2: _addcmul_values(x, t1, t2, value), input, tensor1, tensor2)

    # the dispatch layer shows it as torch's addcmul(self, tensor1, tensor2, *, value=1): _value_as_given
    to_aten_arguments = staticmethod(_value_as_given)
    from_aten_arguments = staticmethod(_value_from_aten)

    @staticmethod
    def backward(ctx, grad):
        # d(input + v·t1·t2) = d input + v·t2 dt1 + v·t1 dt2, each factor conjugated (torch's
        # formulas: grad * (t2 * value).conj(), no node for a real factor)
        tensor1, tensor2 = ctx.saved_values
        value = ctx.given
        return ((grad if ctx.needs_input_grad[0] else None),
                (grad * _conj(MulNumber.apply(tensor2, number=value)) if tensor2 is not None else None),
                (grad * _conj(MulNumber.apply(tensor1, number=value)) if tensor1 is not None else None))


def _refuse_non_tensors(*operands) -> None:
    """torch's parser takes only tensors for addcmul's and addcdiv's operands (``p.addcmul(v, 2)``
    is its TypeError; a number broadcast fine here). The AttributeError carries the operand as its
    ``obj``: the public wrapper turns it into torch's TypeError naming the argument and its position
    as the function or the method counts it."""
    for operand in operands:
        if not isinstance(operand, Tensor):
            raise AttributeError(f"'{type(operand).__name__}' object has no attribute '_data'", name="_data",
                                 obj=operand)


def _kept_factors(value, tensor1, tensor2) -> dict:
    return {"value": value, "tensors": (tensor1, tensor2),
            "needs": (getattr(tensor1, "requires_grad", False), getattr(tensor2, "requires_grad", False))}


def _kept_factor(which: int, needed_by) -> SavedValue:
    """addcmul/addcdiv's tensor ``which`` where torch keeps it: when a tensor in ``needed_by``
    (positions among tensor1, tensor2; None: always) needs its gradient."""
    return SavedValue(lambda node: node.torch_kept["tensors"][which]
                      if any(i is None or node.torch_kept["needs"][i] for i in needed_by) else None, tensor=True)


# torch's _saved_* of addcmul and addcdiv: the value as given and each tensor for the gradients
# that read it (d/dt1 of t1·t2 reads t2; of t1/t2, d/dt2 reads t1, and torch keeps t2 always)
_ADDCMUL_SAVED = {"_saved_tensor1": _kept_factor(0, (1,)), "_saved_tensor2": _kept_factor(1, (0,)),
                  "_saved_value": kept_value("value")}
_ADDCDIV_SAVED = {"_saved_tensor1": _kept_factor(0, (1,)), "_saved_tensor2": _kept_factor(1, (None,)),
                  "_saved_value": kept_value("value")}


# torch's words (two spaces after "future" included) for addcdiv of two integer or bool tensors
_ADDCDIV_INTEGER_DIVISION = (
    "Integer division with addcdiv is no longer supported, and in a future  release addcdiv will perform a true "
    "division of tensor1 and tensor2. The historic addcdiv behavior can be implemented as (input + value * "
    "torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and as (input + value * tensor1 / tensor2) "
    "for float inputs. The future addcdiv behavior is just the latter implementation: (input + value * tensor1 / "
    "tensor2), for all dtypes.")


@scalar_first_in_function_words
@honours_out
@accepts_scalar_first("value", "tensor1, tensor2")
def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """torch.addcdiv: input + value * tensor1 / tensor2."""
    _refuse_non_tensors(input, tensor1, tensor2)
    if all(isinstance(t, Tensor) and t.dtype._category < 2 for t in (tensor1, tensor2)):
        raise RuntimeError(_ADDCDIV_INTEGER_DIVISION)
    check_broadcast_in_order(input, tensor1, tensor2)
    _one_device("addcdiv", input, tensor1, tensor2)
    given = value
    if type(value) is not builtins.int or value != 1:
        value = _checked_value(value, input, tensor1, tensor2)
    return _laid_out(_as_one_node(Addcdiv, lambda x, t1, t2: _addcdiv_values(x, t1, t2, value), (input, tensor1, tensor2),
                                  saved=_ADDCDIV_SAVED, kept=_kept_factors(given, tensor1, tensor2), value=value,
                                  given=given),
                     input, tensor1, tensor2)


def _addcdiv_values(input: Tensor, tensor1: Tensor, tensor2: Tensor, value) -> Tensor:
    """addcdiv's values as torch's kernels round them (no graph of its own when recorded: _as_one_node)."""
    fused = rounded_once(lambda x, t1, t2: x + value * t1 / t2, input, tensor1, tensor2)
    if fused is not None:
        return fused
    # torch's kernel: input + (value * tensor1) / tensor2, in that order (1e308 * 2 / 2 is inf)
    tensor1, tensor2 = _in_common_dtype(input, tensor1, tensor2)
    return input + (tensor1 / tensor2 if value == 1 else value * tensor1 / tensor2)


class Addcdiv(Function):
    """torch.addcdiv (AddcdivBackward0): its forward the fused composite."""

    _array_forward = True
    node_name = "AddcdivBackward0"
    label = "addcdiv"
    rule = "∂/∂input = 1, ∂/∂tensor1 = value/tensor2, ∂/∂tensor2 = -value·tensor1/tensor2²"
    formula = None
    # torch keeps tensor1 for tensor2's gradient, tensor2 always (its kernel's derivatives' codegen), the value as given
    saved_attributes = {"_saved_tensor1": saved(0), "_saved_tensor2": saved(1), "_saved_value": ctx_value("given")}

    @staticmethod
    def forward(ctx, input, tensor1, tensor2, value, given):
        needs = ctx.needs_input_grad
        ctx.given = given
        ctx.save_for_backward(tensor1 if needs[2] else None, tensor2)
        return _composite(lambda x, t1, t2: _addcdiv_values(x, t1, t2, value), input, tensor1, tensor2)

    # (addcdiv(self, tensor1, tensor2, *, value=1) to the dispatch layer)
    to_aten_arguments = staticmethod(_value_as_given)
    from_aten_arguments = staticmethod(_value_from_aten)

    @staticmethod
    def backward(ctx, grad):
        # d(input + v·t1/t2) = d input + v/t2 dt1 - v·t1/t2² dt2, each factor conjugated (torch's
        # formulas; its order: t2·t2 first; its C++ value / t2 divides the number as a tensor,
        # DivBackward0 with t2's edge only)
        tensor1, tensor2 = ctx.saved_values
        value = ctx.given
        needs = ctx.needs_input_grad
        return ((grad if needs[0] else None),
                (grad * _conj(Div.apply(*_float_pair(value, tensor2))) if needs[1] else None),
                (-grad * _conj(MulNumber.apply(tensor1, number=value) / (tensor2 * tensor2)) if needs[2] else None))


class MulNumber(Function):
    """``x * number`` as torch's C++ derivative formulas record it: mul's Scalar overload
    (MulBackward1), one edge, the number kept as a number (no tensor saved); float16 and bfloat16
    multiply by it in float32, as torch's kernel takes a CPU scalar in its op-math type."""

    _array_forward = True
    node_name = "MulBackward1"
    label = "mul"
    rule = "∂/∂a = the number (conjugated for complex)"
    formula = "{0} * {number}"
    saved_attributes = {"_saved_other": ctx_value("number")}

    @staticmethod
    def forward(ctx, x, number):
        ctx.number = number
        factor = np.float32(number) if x.dtype.itemsize == 2 and x.dtype.kind in "fV" else number
        return (x * factor).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        # d(a·n) = conj(n) da
        number = ctx.number
        return MulNumber.apply(grad, number=number.conjugate() if isinstance(number, builtins.complex) else number)


class DivNumber(Function):
    """``x / number``, torch's div.Scalar node as its C++ composites and derivative formulas record it
    (a loss's mean, mean_backward under create_graph): one edge, the number kept as a number (no
    tensor saved)."""

    _array_forward = True
    node_name = "DivBackward1"
    label = "div"
    rule = "∂/∂a = 1/number"
    formula = "{0} / {number}"
    saved_attributes = {"_saved_other": ctx_value("number")}

    @staticmethod
    def forward(ctx, x, number):
        ctx.number = number
        if x.dtype.itemsize == 2 and x.dtype.kind in "fV":  # (torch's kernel divides halves in float32)
            return (x.astype(np.float32) / np.float32(number)).astype(x.dtype, copy=False)
        return x / x.dtype.type(number)

    @staticmethod
    def backward(ctx, grad):
        # d(a / n) = da / n
        return DivNumber.apply(grad, number=ctx.number)


def _in_common_dtype(input, tensor1, tensor2) -> tuple:
    """tensor1 and tensor2 in the dtype of all three operands: torch's kernel casts every operand to
    it before multiplying, so a float32 input's product of bfloat16 tensors is not rounded to
    bfloat16 first (pytorch_optimizer's AdaMuon: float32 ``v.addcmul_(update, update)``)."""
    common = _dtype.result_type(input, tensor1, tensor2)
    return tuple(_cast(t, common) if isinstance(t, Tensor) and t.dtype != common else t for t in (tensor1, tensor2))


def _checked_value(value, *tensors):
    """addcmul/addcdiv's ``value`` as torch's kernels take it: converted to the type they compute
    in (the tensors' promoted dtype, float for half types), so it does not promote the result (an
    integer tensor truncates 2.5 to 2) and one that does not fit is torch's RuntimeError."""
    promoted = tensors[0].dtype
    for t in tensors[1:]:
        if isinstance(t, Tensor):
            promoted = _dtype.promote_types(promoted, t.dtype)
    compute = _opmath.fused_compute_dtype(promoted) or promoted
    if isinstance(value, builtins.complex) and compute._category < 3:
        raise _dtype._overflow(compute)  # torch's message for a complex value on real tensors
    return _dtype.checked_scalar(value, compute)


@honours_out
def nan_to_num(input: Tensor, nan=None, posinf=None, neginf=None) -> Tensor:
    """nan_to_num(input, nan=0.0, posinf=None, neginf=None, *, out=None) -> Tensor

    ``input`` with NaN, +inf and -inf replaced by ``nan`` and the dtype's largest and lowest values
    unless given (torch.nan_to_num)."""
    if _function_module.active_dispatch is not None:  # (the array is read: a wrapper's handler answers)
        made = _function_module.argument_dispatch("nan_to_num", nan_to_num, (input, nan, posinf, neginf), {})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    xp = array_module(input)
    nan = 0.0 if nan is None else nan  # torch's None: zero
    finite = isfinite(input)
    data = input._data
    if data.dtype.kind == "V":  # NumPy's nan_to_num skips ml_dtypes' bfloat16: replace in float32, limits bfloat16's
        limits = _dtype.finfo_of(data.dtype)
        posinf = float(limits.max) if posinf is None else posinf
        neginf = float(limits.min) if neginf is None else neginf
        data = data.astype(np.float32)
    with np.errstate(over="ignore"):  # a replacement past the dtype's range is its infinity, as torch's cast gives
        replaced = Tensor._make(xp.nan_to_num(data, nan=nan, posinf=posinf, neginf=neginf).astype(input._data.dtype))
    result = name_node(where(finite, input, replaced), "NanToNumBackward0")
    _preserving_layout(result, input)  # (torch writes into empty_like(input))
    return result


def _preserving_layout(result: Tensor, input: Tensor) -> None:
    """Lay ``result``, fresh from an op of ``input`` alone, out as torch's empty_like(input) is laid out (the
    ops torch writes into one: nan_to_num, deg2rad, rad2deg); the graph is untouched."""
    data = input._data
    if not plain_rows(data) and getattr(type(result), "__torch_dispatch__", None) is None:
        result._data = preserved_layout(result._data, data)


# ---------------------------------------------------------------- comparisons and logic (no grad)
_FLOAT8_NP = _dtype.FLOAT8_NP  # (the loaded float8 types; empty, one cheap test, until one loads)


def _compare(ufunc, ordered: str = "", *, aten: str):
    def op(input, other) -> Tensor:
        if aten.startswith("logical"):
            _require_tensors(aten, input, other)
        else:
            _require_tensors(aten, input)
        if _function_module.active_dispatch is not None:
            # no Function records a comparison: it reaches a dispatch mode as torch's aten.gt.Scalar/.Tensor
            overload = "Tensor" if isinstance(other, Tensor) or aten.startswith("logical") else "Scalar"
            name = aten if aten.startswith("logical") else f"{aten}.{overload}"
            made = _function_module.factory_dispatch(name, op, (input, other), {})
            if made is not _function_module.RUN_UNDISPATCHED:
                return made
        a, b = _pair(input, other)
        x, y = a._data, b._data
        # NumPy orders complex numbers lexicographically, and float8 values; torch refuses (its CUDA
        # kernel for all four orderings is compare_cuda)
        if ordered and (x.dtype.kind == "c" or _FLOAT8_NP and x.dtype in _FLOAT8_NP):
            refuse_kernel_dtype(aten, a, b, cuda_kernel="compare")
        if x.dtype in _dtype.WIDE_UNSIGNED:
            _check_broadcast(a, b)
            _dtype.refuse_wide_unsigned(f"elementwise.{aten}", x)
        if type(x) is not np.ndarray or type(y) is not np.ndarray:  # (a device array, or two GPUs')
            x, y = _kernel_arrays(aten, a, b)  # (the mixed-device error names torch's op, not NumPy's ufunc)
        try:
            out = Tensor._make(iterator_layout(ufunc(x, y), x, y))
        except ValueError as error:
            raise broadcast_error(error, (x, y)) from None
        if _vmap_frames._frames:  # no Function saw it: batched where an operand is (``if x.sum() > 0:``)
            _vmap_frames.note_results((input, other), None, out)
            if _function_module.tracing_ops:  # a vmap recording its ops replays it too (_vmap_batched)
                _function_module.traced_elementwise(op, (input, other), out)
        return out

    op.__name__ = aten  # torch.eq.__name__ is "eq", not NumPy's "equal" (torch.equal's)
    return op


eq = _compare(np.equal, aten="eq")
eq.__doc__ = """eq(input, other, *, out=None) -> Tensor

Elementwise ``input == other``, broadcast, as a bool tensor (torch.eq)."""
ne = _compare(np.not_equal, aten="ne")
ne.__doc__ = """ne(input, other, *, out=None) -> Tensor

Elementwise ``input != other``, broadcast, as a bool tensor (torch.ne)."""
lt = _compare(np.less, ordered="lt", aten="lt")
lt.__doc__ = """lt(input, other, *, out=None) -> Tensor

Elementwise ``input < other``, broadcast, as a bool tensor (torch.lt)."""
le = _compare(np.less_equal, ordered="le", aten="le")
le.__doc__ = """le(input, other, *, out=None) -> Tensor

Elementwise ``input <= other``, broadcast, as a bool tensor (torch.le)."""
gt = _compare(np.greater, ordered="gt", aten="gt")
gt.__doc__ = """gt(input, other, *, out=None) -> Tensor

Elementwise ``input > other``, broadcast, as a bool tensor (torch.gt)."""
ge = _compare(np.greater_equal, ordered="ge", aten="ge")
ge.__doc__ = """ge(input, other, *, out=None) -> Tensor

Elementwise ``input >= other``, broadcast, as a bool tensor (torch.ge)."""
logical_and = _compare(np.logical_and, aten="logical_and")
logical_and.__doc__ = """logical_and(input, other, *, out=None) -> Tensor

Elementwise logical AND (nonzero is true), as a bool tensor (torch.logical_and)."""
logical_or = _compare(np.logical_or, aten="logical_or")
logical_or.__doc__ = """logical_or(input, other, *, out=None) -> Tensor

Elementwise logical OR (nonzero is true), as a bool tensor (torch.logical_or)."""
logical_xor = _compare(np.logical_xor, aten="logical_xor")
logical_xor.__doc__ = """logical_xor(input, other, *, out=None) -> Tensor

Elementwise logical XOR (nonzero is true), as a bool tensor (torch.logical_xor)."""


def _bitwise(ufunc):
    def op(input, other) -> Tensor:
        if _function_module.active_dispatch is not None:  # (a wrapper argument's values live in it)
            made = _answered_by_wrapper(ufunc.__name__, op, input, other)
            if made is not _function_module.RUN_UNDISPATCHED:
                return made
        a, b = _pair(input, other)
        if a._data.dtype.kind in "fVc":  # torch's integer-and-bool kernel, named by the common dtype
            refuse_kernel_dtype(ufunc.__name__, a, b)
        x, y = a._data, b._data
        if type(x) is not np.ndarray or type(y) is not np.ndarray:
            x, y = _kernel_arrays(ufunc.__name__, a, b)
        try:
            out = Tensor._make(iterator_layout(ufunc(x, y), x, y))
        except ValueError as error:
            raise broadcast_error(error, (x, y)) from None
        if _vmap_frames._frames:  # no Function saw it: batched where an operand is (``if (x > 0) & m:``)
            _vmap_frames.note_results((input, other), None, out)
            if _function_module.tracing_ops:  # a vmap recording its ops replays it too (clamp's inside mask)
                _function_module.traced_elementwise(op, (input, other), out)
        return out

    op.__name__ = ufunc.__name__
    return op


bitwise_and = honours_out(_bitwise(np.bitwise_and))
bitwise_and.__doc__ = """bitwise_and(input, other, *, out=None) -> Tensor

The bitwise AND of integer or bool tensors, broadcast (torch.bitwise_and)."""
bitwise_or = honours_out(_bitwise(np.bitwise_or))
bitwise_or.__doc__ = """bitwise_or(input, other, *, out=None) -> Tensor

The bitwise OR of integer or bool tensors, broadcast (torch.bitwise_or)."""
bitwise_xor = honours_out(_bitwise(np.bitwise_xor))
bitwise_xor.__doc__ = """bitwise_xor(input, other, *, out=None) -> Tensor

The bitwise XOR of integer or bool tensors, broadcast (torch.bitwise_xor)."""


@out_rule("same_elementwise")
def bitwise_not(input: Tensor) -> Tensor:
    """bitwise_not(input, *, out=None) -> Tensor

    The bitwise NOT of an integer or bool tensor (torch.bitwise_not)."""
    xp = array_module(input)
    kind = input._data.dtype.kind
    if kind in "fVc" or kind == "u" and input._data.dtype.itemsize > 1:  # (torch: no uint16/32/64 kernel)
        refuse_kernel_dtype("bitwise_not", input)
    return _unrecorded_unary("bitwise_not", bitwise_not, input, xp.invert)  # (int(~x) in vmap refused as torch's)


def _answered_by_wrapper(name: str, op, input, other=None, scalar: str = ".Scalar", to_mode: bool = True):
    """The answer of a wrapper subclass's handler to ``aten.<name>`` (``.Tensor``, or ``scalar`` for a number
    ``other``, where ``other`` is given) for an op no Function records, whose array it would read (its
    placeholder): argument_dispatch; else, where ``to_mode`` (torch runs it as that one op), a dispatch mode's
    (factory_dispatch, as an unrecorded unary op's); RUN_UNDISPATCHED where neither answers."""
    if other is not None:
        name += ".Tensor" if isinstance(other, Tensor) else scalar
    args = (input,) if other is None else (input, other)
    made = _function_module.argument_dispatch(name, op, args, {})
    if made is _function_module.RUN_UNDISPATCHED and to_mode:
        return _function_module.factory_dispatch(name, op, args, {})
    return made


def _unrecorded_unary(name: str, op, input: Tensor, array_op) -> Tensor:
    """``array_op`` of ``input``'s array, a result no Function records: a dispatch mode sees torch's op
    ``name`` (its handler may answer), inside vmap it is batched where ``input`` is, and a vmap recording
    its ops replays it (_vmap_batched)."""
    if _function_module.active_dispatch is not None:
        made = _function_module.factory_dispatch(name, op, (input,), {})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    out = _unbatched_unless(input, Tensor._make(_unary_array(array_op, input._data)))
    if _function_module.tracing_ops:
        _function_module.traced_elementwise(op, (input,), out)
    return out


def _unary_array(array_op, data):
    """``array_op(data)`` laid out as torch's TensorIterator lays out a unary op's output (unary_layout)."""
    out = array_op(data)
    return out if data.flags.c_contiguous else unary_layout(out, data)


def _unbatched_unless(input: Tensor, out: Tensor, op=None) -> Tensor:
    """``out``, made from ``input`` by no Function: inside vmap, noted as batched where ``input`` is
    (``if x.isnan().any():`` is data-dependent control flow, refused as torch refuses it); with ``op``, a
    vmap recording its ops replays it (_vmap_batched: fmax's backward reads isnan's mask)."""
    if _vmap_frames._frames:
        _vmap_frames.note_results((input,), None, out)
        if op is not None and _function_module.tracing_ops:
            _function_module.traced_elementwise(op, (input,), out)
    return out


def logical_not(input: Tensor) -> Tensor:
    """logical_not(input, *, out=None) -> Tensor

    Elementwise logical NOT (zero becomes true), as a bool tensor (torch.logical_not)."""
    xp = array_module(input)
    if input._data.dtype.kind == "u" and input._data.dtype.itemsize > 1:  # (torch: no uint16/32/64 kernel)
        refuse_kernel_dtype("logical_not", input)
    return _unrecorded_unary("logical_not", logical_not, input, xp.logical_not)


def isnan(input: Tensor) -> Tensor:
    """isnan(input) -> Tensor

    Whether each element is NaN, as a bool tensor (torch.isnan)."""
    if _function_module.active_dispatch is not None:  # (a wrapper's values live in it)
        made = _answered_by_wrapper("isnan", isnan, input)
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    xp = array_module(input)
    return _unbatched_unless(input, Tensor._make(_unary_array(xp.isnan, input._data)), isnan)


# the float8 types whose isinf / isfinite torch 2.13 has a kernel for (the others refuse)
_FLOAT8_ISINF = frozenset({"float8_e5m2"})
_FLOAT8_ISFINITE = frozenset({"float8_e5m2", "float8_e8m0fnu"})


def isinf(input: Tensor) -> Tensor:
    """isinf(input) -> Tensor

    Whether each element is positive or negative infinity, as a bool tensor (torch.isinf)."""
    if _FLOAT8_NP and input._data.dtype.name not in _FLOAT8_ISINF:
        _dtype.refuse_float8(input._data.dtype, "isinf")
    if _function_module.active_dispatch is not None:  # (a wrapper's values live in it)
        made = _answered_by_wrapper("isinf", isinf, input)
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    xp = array_module(input)
    return _unbatched_unless(input, Tensor._make(_unary_array(xp.isinf, input._data)), isinf)


def isfinite(input: Tensor) -> Tensor:
    """isfinite(input) -> Tensor

    Whether each element is finite (neither infinite nor NaN), as a bool tensor (torch.isfinite)."""
    if _FLOAT8_NP and input._data.dtype.name not in _FLOAT8_ISFINITE:
        _dtype.refuse_float8(input._data.dtype, "isfinite")
    if _function_module.active_dispatch is not None:  # (a wrapper's values live in it)
        made = _answered_by_wrapper("isfinite", isfinite, input, to_mode=False)
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
        if input.dtype.is_floating_point:
            # torch's CompositeImplicit isfinite of a real float tensor, op by op as a mode sees it:
            # (x == x) * (|x| != inf)
            bounded = input.abs().ne(math.inf)
            return input.eq(input).mul(bounded)
        if input._data.dtype.kind in "biu":  # torch's is ones_like(input, dtype=bool), which a mode sees
            made = _function_module.factory_dispatch("ones_like", _all_finite, (input,), {
                "dtype": _dtype.bool, "memory_format": sys.modules["chainrule"].preserve_format})
            if made is not _function_module.RUN_UNDISPATCHED:
                return made
    xp = array_module(input)
    return _unbatched_unless(input, Tensor._make(_unary_array(xp.isfinite, input._data)))


def _all_finite(input: Tensor, *, dtype=None, memory_format=None) -> Tensor:
    """aten.ones_like's func for an integer or bool isfinite: True everywhere, in the layout torch's preserve_format
    gives (``dtype`` and ``memory_format`` are the ones shown)."""
    from .creation import ones_like

    return _unbatched_unless(input, ones_like(input, dtype=dtype, memory_format=memory_format))


def signbit(input: Tensor) -> Tensor:
    """signbit(input, *, out=None) -> Tensor

    Whether each element's sign bit is set (true for -0.0), as a bool tensor (torch.signbit)."""
    refuse_complex(input, "signbit is not implemented for complex tensors.")
    if _function_module.active_dispatch is not None:  # (a wrapper's values live in it)
        made = _answered_by_wrapper("signbit", signbit, input)
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    xp = array_module(input)
    return _unbatched_unless(input, Tensor._make(_unary_array(xp.signbit, input._data)))


def _signbit_out(input: Tensor, *, out) -> Tensor:
    refuse_complex(input, "signbit is not implemented for complex tensors.")
    if isinstance(out, Tensor) and out.dtype is not _dtype.bool:  # torch casts no sign bit to a number
        raise RuntimeError("signbit does not support non-boolean outputs.")
    return write_out(signbit(input), out, "signbit")


signbit = out_keyword_front(signbit, _signbit_out)
signbit.__doc__ = """signbit(input, *, out=None) -> Tensor

Whether each element's sign bit is set (true for -0.0), as a bool tensor (torch.signbit)."""


def equal(input: Tensor, other: Tensor) -> builtins.bool:
    """torch.equal: same shape and the same values."""
    if _vmap_frames._frames:
        _vmap_frames.refuse_unbatchable("Batching rule not implemented for aten::equal. We could not generate a "
                                        "fallback.", input, other)
    if input.device != other.device and "cuda" in (input.device.type, other.device.type):
        # torch's CUDA kernel (cuda_equal) checks the devices before the shapes
        raise RuntimeError(f"Cannot compare two tensors on different devices. Got: {input.device} and {other.device}")
    xp = array_module(input)
    return input.shape == other.shape and builtins.bool(xp.array_equal(input._data, other._data))


def isclose(input: Tensor, other: Tensor, rtol=1e-05, atol=1e-08, equal_nan=False) -> Tensor:
    """isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> Tensor

    Elementwise ``|input - other| <= atol + rtol * |other|``, as a bool tensor (torch.isclose)."""
    _require_tensors("isclose", input, other)
    if input.dtype != other.dtype:  # no promotion: torch compares in one dtype
        raise RuntimeError(f"{_dtype.scalar_name(input.dtype)} did not match {_dtype.scalar_name(other.dtype)}")
    if rtol < 0:  # (the tolerance a C++ double as torch prints it: -1, -1e-09)
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol:g}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol:g}")
    if _function_module.active_dispatch is not None:  # (the arrays are read: a wrapper's handler answers)
        made = _function_module.argument_dispatch("isclose", isclose, (input, other, rtol, atol, equal_nan), {})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
        return _isclose_by_ops(input, other, rtol, atol, equal_nan)  # (a mode sees torch's composite's ops)
    a, b = _pair(input, other)
    # torch's isclose starts with self == other: the shared binary-kernel checks (broadcast, then
    # devices) in TensorIterator's order, before the scaled tolerance meets float8's missing kernel
    x, y = _kernel_arrays("isclose", a, b)
    if _FLOAT8_NP:  # torch scales the tolerance by a number, which float8 has no kernel for
        _dtype.refuse_float8(a._data.dtype, "mul_cpu_reduced_float")
    out = _laid_out(Tensor._make(array_module(x, y).isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)), a, b)
    if _vmap_frames._frames:  # no Function saw it: batched where an operand is
        _vmap_frames.note_results((input, other), None, out)
    return out


def _isclose_by_ops(input: Tensor, other: Tensor, rtol, atol, equal_nan) -> Tensor:
    """isclose as torch's CompositeImplicit isclose runs it, op by op (what a dispatch mode sees): self == other,
    or'ed in place with isfinite(|self - other|) & (|self - other| <= atol + |rtol * other|), an integer other
    (and a bool self) in the default dtype."""
    close = input == other
    if equal_nan and (input.dtype.is_floating_point or input.dtype.is_complex):
        close.bitwise_or_(input.isnan().bitwise_and(other.isnan()))
    if rtol == 0 and atol == 0:
        return close
    if input.dtype is _dtype.bool:  # (an integer self is subtracted as it is)
        input = input.to(_dtype.get_default_dtype())
    if not (other.dtype.is_floating_point or other.dtype.is_complex):
        other = other.to(_dtype.get_default_dtype())
    _function_module.note_given(Mul, other, given_overload="Scalar")  # (C++'s rtol * other: mul.Scalar)
    scaled = other.mul(rtol).abs()
    _function_module.note_given(Add, scaled, given_overload="Scalar")
    allowed = scaled.add(atol)
    actual = (input - other).abs()
    bounded = actual.abs().ne(math.inf)
    finite = actual.eq(actual).mul(bounded)  # (torch's isfinite of a real tensor)
    return close.bitwise_or_(finite.bitwise_and_(actual.le(allowed)))


def allclose(input: Tensor, other: Tensor, rtol=1e-05, atol=1e-08, equal_nan=False) -> builtins.bool:
    """allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool

    Whether every element satisfies ``|input - other| <= atol + rtol * |other|`` (torch.allclose)."""
    if _vmap_frames._frames:
        _vmap_frames.refuse_unbatchable("vmap over torch.allclose isn't supported yet. Please file an issue at "
                                        "https://github.com/pytorch/pytorch/issues if you need this feature.",
                                        input, other)
    if _function_module.active_dispatch is not None:  # (a mode sees torch's one op, not isclose's)
        args = [input, other, rtol, atol, equal_nan]
        for default in (False, 1e-08, 1e-05):  # (torch shows no trailing argument equal to its schema's default)
            if len(args) > 2 and type(args[-1]) is type(default) and args[-1] == default:
                args.pop()
            else:
                break
        made = _function_module.factory_dispatch("allclose", allclose, tuple(args), {})
        if made is not _function_module.RUN_UNDISPATCHED:
            return builtins.bool(made)
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan)._data.all())
