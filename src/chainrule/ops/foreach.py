"""torch._foreach_*: one elementwise op applied across a list of tensors.

Optimizer code (torch's own ``foreach=True`` paths, and third-party optimizers written after
them) updates every parameter with ``torch._foreach_mul_(params, 1 - lr * wd)``,
``torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)`` and the like. torch fuses each call into
few kernels; here each is the per-tensor op in a loop, so values, dtypes, errors and gradients are
exactly those of the per-tensor ops. The second operand is, as in torch, a number, a list of
numbers (one per tensor), a tensor (shared by all) or a list of tensors. Out-of-place forms return
a tuple; in-place forms (trailing ``_``) change the tensors and return the list they were given.
"""

from __future__ import annotations

import numbers
import re

import numpy as np

from .. import _dtype, _opmath, _vmap_frames
from ..autograd import function as _function
from ..autograd.function import name_node
from ..tensor import Tensor
from . import elementwise as _elementwise
from .linalg import _C_TYPE_NAMES
from .linalg import mm as _mm
from .linalg import vector_norm as _vector_norm
from .reduce import norm_of_array

# torch's unary foreach ops: each exists as a Tensor method and its in-place twin
_UNARY = ("abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1", "floor", "frac",
          "lgamma", "log", "log10", "log1p", "log2", "neg", "reciprocal", "round", "rsqrt", "sigmoid", "sign",
          "sin", "sinh", "sqrt", "tan", "tanh", "trunc")
# binary ops whose other operand may be a number, numbers, a tensor or tensors
_BINARY = ("mul", "div", "clamp_max", "clamp_min", "maximum", "minimum", "pow")

__all__ = ["_foreach_add", "_foreach_add_", "_foreach_sub", "_foreach_sub_", "_foreach_addcmul", "_foreach_addcmul_",
           "_foreach_addcdiv", "_foreach_addcdiv_", "_foreach_lerp", "_foreach_lerp_", "_foreach_norm",
           "_foreach_max", "_foreach_zero_", "_foreach_copy_", "_foreach_clone", "_foreach_mm", "_foreach_powsum"]


# torch records one node per output tensor, named after the overload its operand picked: the suffix
# after "Foreach<Op>Backward" for a list of tensors, a number, a list of numbers, a tensor (None: the
# per-tensor op's name is kept)
_OVERLOAD_SUFFIXES = {
    "add": ("0List", "1Scalar", "1ScalarList", None), "sub": ("0List", "1Scalar", "1ScalarList", None),
    "mul": ("0List", "1Scalar", "1ScalarList", "0Tensor"), "div": ("0", "1Scalar", "1ScalarList", "0Tensor"),
    "clamp_max": ("1List", "0Scalar", "0ScalarList", None), "clamp_min": ("1List", "0Scalar", "0ScalarList", None),
    "maximum": ("0List", "0", "1", None), "minimum": ("0List", "0", "1", None),
    "pow": ("0", "0Scalar", "1", None), "lerp": ("1List", "0Scalar", "0ScalarList", None),
    "addcmul": (None, "0Scalar", "0ScalarList", None), "addcdiv": (None, "0Scalar", "0ScalarList", None),
}


def _recorded_as_foreach(outputs: tuple, name: str, other=None, *, suffix: str | None = "0") -> tuple:
    """``outputs`` with each one's node under torch's name for ``_foreach_<name>`` (``other``: the
    operand whose kind picked the overload)."""
    if other is not None:
        if isinstance(other, Tensor):
            kind = 3
        elif _is_number(other):
            kind = 1
        else:
            kind = 0 if isinstance(other[0], Tensor) else 2
        suffix = _OVERLOAD_SUFFIXES[name][kind]
    if suffix is None:
        return outputs
    # torch's CamelCase starts a word after an underscore or a digit (log1p: ForeachLog1PBackward0)
    camel = re.sub(r"(?:^|_|(?<=\d))([a-z])", lambda match: match.group(1).upper(), name)
    return name_node(outputs, f"Foreach{camel}Backward{suffix}")


def _tensors(tensors, name: str) -> list[Tensor]:
    """The tensor list a foreach op was given: a list or tuple, as torch's parser takes (a Tensor,
    whose rows would iterate as tensors, is refused)."""
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"_foreach_{name}(): argument 'self' (position 1) must be tuple of Tensors, "
                        f"not {type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("Tensor list must have at least one tensor.")
    return tensors


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, Tensor)


def _per_tensor(count: int, other, *, allow_scalars: bool = True) -> list:
    """``other`` spread over ``count`` tensors: one number or tensor repeated, or a list checked
    against the count in torch's words."""
    if isinstance(other, Tensor) or _is_number(other):
        if _is_number(other) and not allow_scalars:
            raise TypeError("foreach: expected a tensor or a list of tensors, got a number")
        return [other] * count
    if isinstance(other, (list, tuple)):
        if other and all(isinstance(item, Tensor) for item in other):
            if len(other) != count:
                raise RuntimeError(f"Tensor lists must have the same number of tensors, got {count} and {len(other)}")
            return list(other)
        if all(_is_number(item) for item in other):
            if len(other) != count:
                raise RuntimeError("Tensor list must have same number of elements as scalar list.")
            return list(other)
    raise TypeError(f"foreach: the second operand must be a number, a list of numbers, a tensor or a list of "
                    f"tensors, got {type(other).__name__}")


def _zero_dim_operand(other) -> None:
    """add/sub/mul/div's one-tensor overload takes a 0-d tensor (a scalar kept on the device), not a
    tensor broadcast against each of the list's."""
    if isinstance(other, Tensor) and other.dim() != 0:
        raise RuntimeError(f"scalar tensor expected to be 0 dim but it has {other.dim()} dimensions and "
                           f"{other.numel()} elements.")


def _scalar_values(count: int, values) -> list:
    """addcmul/addcdiv's ``value``: a number, a list of numbers, or a 1-D tensor of one per tensor.

    The tensor is read on the host, so torch takes it only from the CPU (a device tensor would be a
    sync per call); the checks and their order are torch's."""
    if isinstance(values, Tensor):
        if values.device.type != "cpu":
            raise RuntimeError(f"Expected scalars to be on CPU, got {values.device} instead.")
        if not values.is_contiguous():
            raise RuntimeError("Expected scalars to be contiguous.")
        if values.dim() != 1:
            raise RuntimeError(f"Expected packed scalar Tensor to be of dimension 1. Got {values.dim()} instead.")
        if values.numel() != count:
            raise RuntimeError(f"Expected length of scalars to match input of length {count} but got "
                               f"{values.numel()} instead.")
        values = values.tolist()
    return _per_tensor(count, values)


def _unary(name: str):
    def out_of_place(self):
        return _recorded_as_foreach(tuple(getattr(t, name)() for t in _tensors(self, name)), name)

    def in_place(self):
        for t in _tensors(self, name + "_"):
            getattr(t, name + "_")()
        return self

    out_of_place.__name__, in_place.__name__ = f"_foreach_{name}", f"_foreach_{name}_"
    out_of_place.__doc__ = f"torch._foreach_{name}: ``{name}`` of each tensor, as a tuple."
    in_place.__doc__ = f"torch._foreach_{name}_: ``{name}_`` on each tensor."
    return out_of_place, in_place


_CLAMPS = ("clamp_min", "clamp_max", "maximum", "minimum")


def _check_clamp_numbers_fit(tensors: list[Tensor], others: list) -> None:
    """torch's in-place foreach clamps check, before writing anything, that a number operand does
    not promote a tensor past its dtype (2.5 into a Long tensor), naming the types as C++ does."""
    for t, o in zip(tensors, others):
        if _is_number(o):
            promoted = _dtype.result_type(t, o)
            if promoted._category > t.dtype._category:
                raise RuntimeError(f"result type {_dtype.scalar_name(promoted)} can't be cast to the desired output "
                                   f"type {_C_TYPE_NAMES.get(t.dtype.name, t.dtype.name)}")


def _binary(name: str):
    # maximum/minimum have no in-place Tensor method in torch: the in-place form writes the result
    # back; against a number they are clamps
    def apply(t, o):
        if name in ("maximum", "minimum"):
            if _is_number(o):
                return t.clamp_min(o) if name == "maximum" else t.clamp_max(o)
            return getattr(_elementwise, name)(t, o)
        return getattr(t, name)(o)

    def apply_(t, o):
        if name in ("maximum", "minimum"):
            result = apply(t, o)
            if result.dtype._category > t.dtype._category:  # float into int, int into bool, ...
                raise RuntimeError(f"result type {_dtype.scalar_name(result.dtype)} can't be cast to the desired "
                                   f"output type {_dtype.scalar_name(t.dtype)}")
            t.copy_(result)
        else:
            getattr(t, name + "_")(o)

    def out_of_place(self, other):
        if name == "pow" and _is_number(self):  # _foreach_pow(base, exponents)
            return _recorded_as_foreach(tuple(_elementwise.pow(self, e) for e in _tensors(other, name)), name, suffix="2")
        tensors = _tensors(self, name)
        if name in ("mul", "div"):
            _zero_dim_operand(other)
        return _recorded_as_foreach(tuple(apply(t, o) for t, o in zip(tensors, _per_tensor(len(tensors), other))),
                                    name, other)

    def in_place(self, other):
        tensors = _tensors(self, name + "_")
        if name in ("mul", "div"):
            _zero_dim_operand(other)
        if name == "mul" and _scales_on_arrays(tensors, other):
            # clip_grad_norm_'s rescale by its clip coefficient under no_grad: each tensor's mul_
            # would be a recorded-op dispatch and a write back; the same product straight into
            # the arrays
            factor = other._data[()] if isinstance(other, Tensor) else other
            with np.errstate(all="ignore"):  # inf * 0 (a non-finite gradient clipped) is NaN silently, as in torch
                for t in tensors:
                    t._bump_version()
                    np.multiply(t._data, factor, out=t._data)
            return self
        others = _per_tensor(len(tensors), other)
        if name in _CLAMPS:
            _check_clamp_numbers_fit(tensors, others)
        for t, o in zip(tensors, others):
            apply_(t, o)
        return self

    out_of_place.__name__, in_place.__name__ = f"_foreach_{name}", f"_foreach_{name}_"
    out_of_place.__doc__ = f"torch._foreach_{name}: ``{name}`` of each tensor with its operand, as a tuple."
    in_place.__doc__ = f"torch._foreach_{name}_: ``{name}_`` on each tensor with its operand."
    return out_of_place, in_place


for _name in _UNARY + _BINARY:
    _pair = _unary(_name) if _name in _UNARY else _binary(_name)
    globals()[f"_foreach_{_name}"], globals()[f"_foreach_{_name}_"] = _pair
    __all__ += [f"_foreach_{_name}", f"_foreach_{_name}_"]


# torch's argument parser lists _foreach_add's overloads when none fits (a number with alpha)
_FOREACH_ADD_OVERLOADS = (
    " * (tuple of Tensors self, Number scalar)\n * (tuple of Tensors self, tuple of Scalars scalars)\n"
    " * (tuple of Tensors self, Tensor other, *, Number alpha = 1)\n"
    " * (tuple of Tensors self, tuple of Tensors other, *, Number alpha = 1)\n")


def _with_alpha(self, other, alpha, name: str, suffix: str = "") -> tuple[list, list, object]:
    """The tensors, the operands and the alpha to use: torch's number overloads take no alpha at all
    (not even 1), which its parser reports in its words. ``suffix``: "_" for the in-place form."""
    tensors = _tensors(self, name + suffix)
    if name == "sub" and isinstance(other, Tensor) and other.dim() != 0:
        # sub has no one-tensor overload: a 0-d tensor is read as a number, another one refused
        raise TypeError(f"_foreach_sub{suffix}(): argument 'other' (position 2) must be tuple of Tensors, not Tensor")
    _zero_dim_operand(other)
    others = _per_tensor(len(tensors), other)
    if alpha is not None and _is_number(others[0]):
        if isinstance(other, (list, tuple)):
            raise TypeError(f"expected Tensor as element 0 in argument 1, but got {type(other[0]).__name__}")
        if name == "sub":  # sub has no single-Tensor overload: the parser blames the operand
            raise TypeError(f"_foreach_sub(): argument 'other' (position 2) must be tuple of Tensors, "
                            f"not {type(other).__name__}")
        raise TypeError(f"_foreach_add() received an invalid combination of arguments - got ({type(self).__name__}, "
                        f"{type(other).__name__}, alpha={type(alpha).__name__}), but expected one of:\n"
                        + _FOREACH_ADD_OVERLOADS)
    return tensors, others, 1 if alpha is None else alpha


def _foreach_add(self, other, *, alpha=None):
    """torch._foreach_add: ``t + alpha * o`` for each tensor, as a tuple."""
    tensors, others, alpha = _with_alpha(self, other, alpha, "add")
    return _recorded_as_foreach(tuple(t.add(o, alpha=alpha) for t, o in zip(tensors, others)), "add", other)


def _foreach_add_(self, other, *, alpha=None):
    tensors, others, alpha = _with_alpha(self, other, alpha, "add", "_")
    for t, o in zip(tensors, others):
        t.add_(o, alpha=alpha)
    return self


def _foreach_sub(self, other, *, alpha=None):
    """torch._foreach_sub: ``t - alpha * o`` for each tensor, as a tuple."""
    tensors, others, alpha = _with_alpha(self, other, alpha, "sub")
    return _recorded_as_foreach(tuple(t.sub(o, alpha=alpha) for t, o in zip(tensors, others)), "sub", other)


def _foreach_sub_(self, other, *, alpha=None):
    tensors, others, alpha = _with_alpha(self, other, alpha, "sub", "_")
    for t, o in zip(tensors, others):
        t.sub_(o, alpha=alpha)
    return self


def _pointwise(name: str, symbol: str):
    """addcmul/addcdiv: ``t + value * t1 {symbol} t2`` per tensor; ``value`` a number, or (torch's
    ``scalars``, positional or by keyword) a list of numbers or a packed CPU tensor of them."""
    def rows(self, tensor1, tensor2, value, scalars):
        tensors = _tensors(self, name)
        firsts, seconds = _per_tensor(len(tensors), tensor1), _per_tensor(len(tensors), tensor2)
        values = value if scalars is None else scalars
        return zip(tensors, firsts, seconds, _scalar_values(len(tensors), values))

    def out_of_place(self, tensor1, tensor2, value=1, *, scalars=None):
        outputs = tuple(getattr(t, name)(a, b, value=v) for t, a, b, v in rows(self, tensor1, tensor2, value, scalars))
        values = value if scalars is None else scalars
        # (torch's packed-tensor overload records no derivative: the per-tensor nodes keep their names)
        return outputs if isinstance(values, Tensor) else _recorded_as_foreach(outputs, name, values)

    def in_place(self, tensor1, tensor2, value=1, *, scalars=None):
        for t, a, b, v in rows(self, tensor1, tensor2, value, scalars):
            getattr(t, name + "_")(a, b, value=v)
        return self

    out_of_place.__name__, in_place.__name__ = f"_foreach_{name}", f"_foreach_{name}_"
    out_of_place.__doc__ = f"torch._foreach_{name}: ``t + value * t1 {symbol} t2`` for each tensor, as a tuple."
    in_place.__doc__ = f"torch._foreach_{name}_: ``{name}_`` on each tensor."
    return out_of_place, in_place


_foreach_addcmul, _foreach_addcmul_ = _pointwise("addcmul", "*")
_foreach_addcdiv, _foreach_addcdiv_ = _pointwise("addcdiv", "/")


def _foreach_lerp(self, tensors1, weight):
    """torch._foreach_lerp: ``t + weight * (end - t)`` for each tensor, as a tuple."""
    tensors = _tensors(self, "lerp")
    ends, weights = _per_tensor(len(tensors), tensors1), _per_tensor(len(tensors), weight)
    return _recorded_as_foreach(tuple(t.lerp(e, w) for t, e, w in zip(tensors, ends, weights)), "lerp", weight)


def _foreach_lerp_(self, tensors1, weight):
    tensors = _tensors(self, "lerp_")
    if _lerps_on_arrays(tensors, tensors1, weight):
        # an EMA's target update (torch._foreach_lerp_(target, online, 1 - mu) under no_grad): each
        # tensor's lerp_ would be a recorded-op dispatch, a subtraction and a fused multiply-add as
        # Tensor ops and a write back; the same fused multiply-add straight into the arrays. (The
        # version first: an inference tensor's counter refuses the write before it happens.)
        for t, e in zip(tensors, tensors1):
            t._bump_version()
            _opmath.fused_lerp(t._data, e._data, weight, out=t._data)
        return self
    ends, weights = _per_tensor(len(tensors), tensors1), _per_tensor(len(tensors), weight)
    for t, e, w in zip(tensors, ends, weights):
        t.lerp_(e, w)
    return self


def _lerps_on_arrays(tensors: list, ends, weight) -> bool:
    """Whether ``_foreach_lerp_(tensors, ends, weight)`` may write ``fused_lerp`` into the arrays:
    nothing records or watches the ops (no grad mode, dispatch mode, profiler, forward AD, vmap),
    the weight is a real number, and each pair is a writable, row-major, unshared float32 NumPy
    tensor with an end of its own shape and dtype (torch's float32 kernel is one fused
    multiply-add; other dtypes and anything unusual take the per-tensor ops, which check it)."""
    if (type(weight) not in (int, float) or not isinstance(ends, (list, tuple)) or len(ends) != len(tensors)
            or _vmap_frames._frames or _vmap_frames._captures):
        return False
    for t, e in zip(tensors, ends):
        if type(t) is not Tensor or type(e) is not Tensor or not _function.unwatched_on_arrays(t):
            return False
        a, b = t._data, e._data
        if (type(a) is not np.ndarray or type(b) is not np.ndarray or a.dtype != np.float32 or b.dtype != np.float32
                or a.shape != b.shape or not a.flags.c_contiguous or not a.flags.writeable
                or np.may_share_memory(a, b)):
            return False
    return True


def _foreach_norm(self, ord=2, dtype=None):
    """torch._foreach_norm: the vector ``ord``-norm of each tensor (0-d tensors), as a tuple."""
    if not _is_number(ord):
        raise TypeError(f"_foreach_norm(): argument 'ord' (position 2) must be Number, not {type(ord).__name__}")
    tensors = _tensors(self, "norm")
    if ord == np.inf and any(t._data.size == 0 for t in tensors):  # (its own words for this order only)
        raise RuntimeError("_foreach_norm cannot compute the infinity norm on an empty tensor because the operation "
                           "does not have an identity")
    if dtype is None and type(ord) in (int, float) and 0 <= ord < np.inf and _unwatched_float_arrays(tensors):
        # clip_grad_norm_'s per-gradient norms under no_grad: linalg.vector_norm's forward on each
        # array, without a dispatch and a node-less op around each (orders that refuse an empty
        # tensor, and dtype=, take the per-tensor op, which checks them)
        return tuple(Tensor._make(norm_of_array(t._data, float(ord), tuple(range(t._data.ndim)), False))
                     for t in tensors)
    return _recorded_as_foreach(tuple(_vector_norm(t, ord, dtype=dtype) for t in tensors), "norm")


def _unwatched_float_arrays(tensors: list) -> bool:
    """Whether nothing would record or watch a per-tensor op on ``tensors`` (no grad mode, dispatch
    mode, profiler, forward AD, vmap), each a plain tensor over a float32 or float64 NumPy array:
    a foreach op may then run the op's array kernel on each directly, to the same values."""
    if _vmap_frames._frames or _vmap_frames._captures:
        return False
    return all(type(t) is Tensor and type(t._data) is np.ndarray and t._data.dtype.kind == "f"
               and _function.unwatched_on_arrays(t) for t in tensors)


def _scales_on_arrays(tensors: list, factor) -> bool:
    """Whether ``_foreach_mul_(tensors, factor)`` may multiply the arrays in place directly: the
    tensors unwatched float arrays (writable) and ``factor`` a real Python number, or a 0-d tensor
    of each tensor's dtype (so NumPy computes in the tensor's dtype, as torch's kernel does) that
    none of them shares memory with."""
    if type(factor) is Tensor:
        if factor._data.ndim or type(factor._data) is not np.ndarray or any(
                t._data.dtype != factor._data.dtype or np.may_share_memory(t._data, factor._data) for t in tensors):
            return False
    elif type(factor) not in (int, float):
        return False
    return _unwatched_float_arrays(tensors) and all(t._data.flags.writeable for t in tensors)


def _foreach_max(self):
    """torch._foreach_max: the largest element of each tensor (0-d tensors), as a tuple."""
    tensors = _tensors(self, "max")
    if any(t._data.size == 0 for t in tensors):
        raise RuntimeError("_foreach_max cannot compute the maximum of an empty tensor; max over zero elements is "
                           "undefined.")
    return _recorded_as_foreach(tuple(t.max() for t in tensors), "max", suffix="1")


def _foreach_zero_(self):
    """torch._foreach_zero_: fills each tensor with zeros."""
    for t in _tensors(self, "zero_"):
        t.zero_()
    return self


def _foreach_copy_(self, src, non_blocking: bool = False):
    """torch._foreach_copy_: copies each source into its tensor."""
    tensors = _tensors(self, "copy_")
    for t, s in zip(tensors, _per_tensor(len(tensors), src, allow_scalars=False)):
        t.copy_(s, non_blocking=non_blocking)
    return self


def _foreach_clone(self):
    """torch._foreach_clone: a copy of each tensor, as a tuple."""
    return tuple(t.clone() for t in _tensors(self, "clone"))


def _foreach_mm(self, mat2):
    """torch._foreach_mm: the matrix product of each pair, as a tuple."""
    tensors, others = list(self), list(mat2)
    if not tensors or not others:
        raise RuntimeError("_foreach_mm requires non-empty tensor lists")
    if len(tensors) != len(others):
        raise RuntimeError("_foreach_mm: self and mat2 must have the same number of tensors")
    return _recorded_as_foreach(tuple(_mm(a, b) for a, b in zip(tensors, others)), "mm")


def _foreach_powsum(self, ord=2, dtype=None):
    """torch._foreach_powsum: ``sum(|t| ** ord)`` of each tensor (0-d tensors), as a tuple; a norm
    before its root (``ord`` 0 counts every element, as ``0 ** 0`` is 1). In ``dtype`` when given,
    which may be narrower than the input's. torch has no gradient for it (its backward raises);
    chainrule's is that of the composition."""
    tensors = _tensors(self, "powsum")
    results = []
    for t in tensors:
        if t.dtype._category < 2 or (dtype is not None and dtype._category < 2):
            # torch's kernel runs on floating and complex types only; an integer one is reported as Long
            raise NotImplementedError("\"powsum_cpu\" not implemented for 'Long'")
        magnitudes = t.abs()
        result_dtype = magnitudes.dtype if dtype is None else dtype
        if result_dtype.itemsize > magnitudes.dtype.itemsize:
            magnitudes = magnitudes.to(result_dtype)
        results.append(magnitudes.pow(ord).sum().to(result_dtype))
    return tuple(results)
