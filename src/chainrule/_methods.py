"""Bind the op functions onto Tensor as methods, Python operators and in-place variants.

Each op module lists its public functions in ``__all__``; those become ``chainrule.<name>`` and
``Tensor.<name>``. A module's ``__tensor_methods__`` maps extra method names to its functions,
and ``__not_methods__`` lists functions that are not methods (creation functions, say).
"""

from __future__ import annotations

import numpy as np

from ._backend import writeable
from .autograd.function import QUIET, broadcast_error, name_node, numpy_errstate
from .autograd.grad_mode import state as _grad_state
from .ops import elementwise as ew
from .tensor import Tensor


def bind_module(module) -> None:
    skip = set(getattr(module, "__not_methods__", ()))
    for name in module.__all__:
        if name not in skip and not hasattr(Tensor, name):
            setattr(Tensor, name, getattr(module, name))
    for method, function in getattr(module, "__tensor_methods__", {}).items():
        setattr(Tensor, method, getattr(module, function))


def _reflected(fn):
    def method(self, other):
        return fn(other, self)

    method.__name__ = f"__r{fn.__name__}__"
    return method


def _matmul(a, b):
    from .ops.linalg import matmul

    return matmul(a, b)


def _arithmetic(fn, function_cls, ufunc, reflected: bool = False):
    """A Python operator with a fast path for the common float cases.

    A float tensor with a Python number, or two float tensors of one dtype, skip promotion;
    when nothing is recorded (no_grad, and every plain backward() rule) the result is one ufunc
    call. NumPy keeps the tensor's dtype for Python numbers (NEP 50), as torch does.
    Everything else goes through the general op ``fn``.
    """
    state = _grad_state
    constant = ew._constant
    make = Tensor._make

    def method(self, other):
        data = self._data
        if data.dtype.kind == "f":
            kind = type(other)
            if kind is float or kind is int:
                if self._requires_grad and state.enabled:
                    c = constant(other, data.dtype)
                    return function_cls.apply(c, self) if reflected else function_cls.apply(self, c)
                quiet = numpy_errstate.set(QUIET)  # silent on x / 0 and overflow, as torch
                try:
                    return make(ufunc(other, data) if reflected else ufunc(data, other))
                finally:
                    numpy_errstate.reset(quiet)
            # (arrays of one type: a device tensor meeting a CPU one goes through the op's device check)
            if isinstance(other, Tensor) and other._data.dtype == data.dtype and not reflected \
                    and type(other._data) is type(data):
                if not (state.enabled and (self._requires_grad or other._requires_grad)):
                    quiet = numpy_errstate.set(QUIET)
                    try:
                        return make(ufunc(data, other._data))
                    except ValueError as error:
                        raise broadcast_error(error, (data, other._data)) from None
                    finally:
                        numpy_errstate.reset(quiet)
                return function_cls.apply(self, other)
        return fn(other, self) if reflected else fn(self, other)

    return method


def _bind_operators() -> None:
    operators = {
        "add": ew.add, "sub": ew.sub, "mul": ew.mul, "truediv": ew.div, "floordiv": ew.floor_divide,
        "mod": ew.remainder, "pow": ew.pow, "matmul": _matmul, "and": ew.bitwise_and,
        "or": ew.bitwise_or, "xor": ew.bitwise_xor,
    }
    for name, fn in operators.items():
        setattr(Tensor, f"__{name}__", lambda self, other, fn=fn: fn(self, other))
        setattr(Tensor, f"__r{name}__", _reflected(fn))
        setattr(Tensor, f"__i{name}__", lambda self, other, fn=fn: _inplace(self, fn, other))
    for name, fn in {"eq": ew.eq, "ne": ew.ne, "lt": ew.lt, "le": ew.le, "gt": ew.gt, "ge": ew.ge}.items():
        setattr(Tensor, f"__{name}__", lambda self, other, fn=fn: fn(self, other) if _is_operand(other) else NotImplemented)
    for name, fn, cls, ufunc in (("add", ew.add, ew.Add, np.add), ("sub", ew.sub, ew.Sub, np.subtract),
                                 ("mul", ew.mul, ew.Mul, np.multiply), ("truediv", ew.div, ew.Div, np.true_divide)):
        setattr(Tensor, f"__{name}__", _arithmetic(fn, cls, ufunc))
        setattr(Tensor, f"__r{name}__", _arithmetic(fn, cls, ufunc, reflected=True))
    Tensor.__rsub__ = _arithmetic(_rsub, ew.RSub, np.subtract, reflected=True)
    # the method's receiver is the value taken where the condition holds: x.where(c, y) = where(c, x, y)
    Tensor.where = lambda self, condition, other: ew.where(condition, self, other)
    Tensor.__neg__ = ew.neg
    Tensor.__pos__ = lambda self: self
    Tensor.__abs__ = ew.abs
    Tensor.__invert__ = lambda self: ew.logical_not(self) if self._data.dtype == np.bool_ else ew.bitwise_not(self)
    Tensor.div = Tensor.divide = ew.div
    Tensor.multiply = ew.mul
    Tensor.subtract = ew.sub
    Tensor.true_divide = ew.div


def _rsub(number, tensor):
    return name_node(ew.sub(number, tensor), "RsubBackward1")  # torch records number - tensor as rsub


def _is_operand(x) -> bool:
    return isinstance(x, (Tensor, int, float, bool, np.number, np.bool_))


def _inplace(self: Tensor, fn, *args, **kwargs) -> Tensor:
    """Run ``fn(self, ...)`` out of place, then write the result into ``self``.

    Raises before anything changes: on a leaf that requires grad (outside no_grad), when the
    result would need a different shape, or a dtype ``self`` cannot hold.
    """
    recording = _grad_state.enabled
    if recording and self.grad_fn is None and self._requires_grad:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation."
        )
    result = fn(self, *args, **kwargs)
    if result._data.shape != self._data.shape:
        raise RuntimeError(
            f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(result.shape)}"
        )
    if result.dtype._category > self.dtype._category:
        raise RuntimeError(
            f"result type {_TORCH_TYPE_NAMES[result.dtype.name]} can't be cast to the desired output "
            f"type {_TORCH_TYPE_NAMES[self.dtype.name]}"
        )
    view_key = None
    if recording and result.grad_fn is not None and self._base is not None and self._base._requires_grad:
        # torch rewrites the base (CopySlices); we can for views taken by indexing the base
        view_key = getattr(self.grad_fn, "root_key", None) if self.grad_fn is not None else None
        if view_key is None:
            raise RuntimeError(
                "chainrule supports in-place ops on a view of a tensor that requires grad only for "
                "views made by indexing that tensor (x[0].mul_(2), x[:, 1] += 1); use the "
                "out-of-place form (y = y + 1) for views made by view/transpose/expand"
            )
    if not writeable(self._data):
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation."
        )
    node = result.grad_fn if recording else None
    if node is not None and node._saved and any(s is self for s in node._saved):
        _save_original(node, self)
    if view_key is not None:
        return _write_through_base(self, result, view_key)
    self._data[...] = result._data
    self._version_box[0] += 1
    if recording and result.grad_fn is not None:
        self.grad_fn = result.grad_fn
        self._output_nr = result._output_nr
        self._requires_grad = True
    return self


def _write_through_base(view: Tensor, result: Tensor, key) -> Tensor:
    """In-place on ``view = base[key]``: record ``base[key] = result`` on the base (so every
    later use of the base sees the change in its graph), then make the view ``base[key]`` again."""
    from .ops.index import getitem, setitem

    base = view._base
    setitem(base, key, result)  # writes through the shared memory and bumps the shared version
    fresh = getitem(base, key)
    view.grad_fn = fresh.grad_fn
    view._output_nr = 0
    view._requires_grad = True
    return view


# the scalar-type names torch's messages use
_TORCH_TYPE_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double", "uint8": "Byte",
                     "int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long", "bool": "Bool"}


def _save_original(node, self: Tensor) -> None:
    """The rule of an in-place op saved ``self``, which is about to be overwritten: give it a
    copy of the old value that keeps self's place in the graph (torch clones here too)."""
    original = Tensor._make(self._data.copy(), self.grad_fn, self._output_nr)
    original._requires_grad = self._requires_grad
    node._saved_versions = tuple(0 if s is self else v for s, v in zip(node._saved, node._saved_versions))
    node._saved = tuple(original if s is self else s for s in node._saved)


def _make_inplace(fn):
    def method(self, *args, **kwargs):
        return _inplace(self, fn, *args, **kwargs)

    method.__name__ = fn.__name__ + "_"
    return method


def _make_inplace_view(fn):
    """``t_``, ``transpose_``, ``squeeze_``, ``unsqueeze_``: change self's shape, not its values;
    self becomes the (recorded) view, sharing memory as before."""
    def method(self, *args, **kwargs):
        result = fn(self, *args, **kwargs)
        self._data = result._data
        if result.grad_fn is not None:
            self.grad_fn = result.grad_fn
            self._output_nr = result._output_nr
            self._requires_grad = True
        return self

    method.__name__ = fn.__name__ + "_"
    return method


_INPLACE_VIEWS = ["t", "transpose", "squeeze", "unsqueeze"]


_INPLACE = ["add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "log1p", "expm1",
            "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid", "clamp", "clip", "clamp_min",
            "clamp_max", "sign", "floor", "ceil", "round", "trunc", "frac", "reciprocal", "square",
            "remainder", "fmod", "lerp", "addcmul", "addcdiv", "erf", "atan2", "maximum", "minimum",
            "relu", "masked_fill", "index_fill", "scatter", "scatter_add", "index_add",
            "floor_divide", "true_divide", "multiply", "subtract", "divide", "nan_to_num",
            "where", "tril", "triu", "t", "transpose", "squeeze", "unsqueeze", "index_copy",
            "logical_not", "logical_and", "logical_or", "bitwise_and", "bitwise_or"]


def _fill(self: Tensor, value) -> Tensor:
    value = value.item() if isinstance(value, Tensor) else value
    return _inplace(self, lambda t: ew._as_operand(value, t.dtype, t).expand(tuple(t.shape)))


def _zero(self: Tensor) -> Tensor:
    return _fill(self, 0)


def _copy(self: Tensor, src: Tensor, non_blocking: bool = False) -> Tensor:
    from .ops.shape import clone, expand

    if not isinstance(src, Tensor):
        raise TypeError(f"copy_(): argument 'src' must be Tensor, not {type(src).__name__}")

    if type(src._data) is not type(self._data):
        src = src.to(self.device)  # torch's copy_ copies across devices (differentiably)

    def copied(t):
        # the result depends on src only: self's old value receives no gradient
        return clone(expand(ew._cast(src, t.dtype), tuple(t.shape)))

    return _inplace(self, copied)


def _matrix_transpose(self: Tensor) -> Tensor:
    if self._data.ndim < 2:
        raise RuntimeError(
            f"tensor.mT is only supported on matrices or batches of matrices. Got {self._data.ndim}-D tensor."
        )
    return self.transpose(-2, -1)


def bind_all(modules) -> None:
    for module in modules:
        bind_module(module)
    _bind_operators()
    for name in _INPLACE:
        fn = getattr(Tensor, name, None)
        if fn is not None and not hasattr(Tensor, name + "_"):
            setattr(Tensor, name + "_", _make_inplace_view(fn) if name in _INPLACE_VIEWS else _make_inplace(fn))
    Tensor.fill_ = _fill
    Tensor.zero_ = _zero
    Tensor.copy_ = _copy
    Tensor.T = property(lambda self: self.permute(*reversed(range(self.ndim))))
    Tensor.mT = property(_matrix_transpose)
    Tensor.H = Tensor.T
    Tensor.is_complex = lambda self: False
    Tensor.type_as = lambda self, other: self.to(other.dtype)
    Tensor.new = lambda self, *args: Tensor(*args, dtype=self.dtype) if args else Tensor._make(np.empty((0,), self._data.dtype))
    Tensor.get_device = lambda self: -1 if self.device.type == "cpu" else (self.device.index or 0)
    Tensor.is_shared = lambda self: False
    Tensor.pin_memory = lambda self: self
    Tensor.share_memory_ = lambda self: self
