"""torch.ops: operators by namespace, ``torch.ops.<namespace>.<op>.<overload>``.

Two kinds of namespace live here. ``aten`` names the common ATen operators users call directly
(``torch.ops.aten.add.Tensor(x, y)``), each answered by the chainrule function with the same
arguments. Every other namespace holds the operators a program defined through
``chainrule.library`` (``custom_op``, ``define``, ``Library``): that package registers each overload
here, and ``torch.ops.mylib.foo`` finds it. ``chainrule.ops`` is also the package of chainrule's op
families; its module ``__getattr__`` hands every name that is not one of its modules to
``namespace`` below.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["OpNamespace", "OpOverload", "OpOverloadPacket", "load_library", "namespace", "register_overload",
           "unregister_overload"]

# namespace -> op name -> overload name -> OpOverload, filled by chainrule.library
_defined: dict[str, dict[str, dict[str, OpOverload]]] = {}
_namespaces: dict[str, OpNamespace] = {}


# torch 2.13's aten overloads whose schema marks the result as an alias of an input (``is_view``)
_ATEN_VIEWS = frozenset((
    "alias.default as_strided.default conj.default _conj.default detach.default diagonal.default expand.default imag.default "
    "lift_fresh.default narrow.default narrow.Tensor permute.default pin_memory.default positive.default "
    "real.default reshape.default select.int slice.Tensor split.Tensor split.sizes split_with_sizes.default "
    "squeeze.default squeeze.dim squeeze.dims t.default tensor_split.sections tensor_split.indices "
    "tensor_split.tensor_indices_or_sections to.device to.dtype to.other to.dtype_layout transpose.int unbind.int "
    "unfold.default unsqueeze.default view.default view.dtype view_as_complex.default view_as_real.default").split())


class OpOverload:
    """One overload of an operator (``torch.ops.mylib.foo.default``): calling it runs the op."""

    def __init__(self, namespace: str, op_name: str, overload_name: str, call: Callable, schema=None) -> None:
        self.namespace = namespace
        self._op_name = op_name
        self._overloadname = overload_name
        self._call = call
        self._schema = schema
        self.__name__ = f"{op_name}.{overload_name}"
        self.__qualname__ = self.__name__
        # torch's overloads live in torch._ops.<namespace>: handlers log f"{func.__module__}.{func.__name__}"
        self.__module__ = f"torch._ops.{namespace}"

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    @property
    def is_view(self) -> bool:
        """Whether the overload returns a view of an input (torch reads it from the schema's alias
        annotations; wrapper subclasses branch on it)."""
        return self.namespace == "aten" and f"{self._op_name}.{self._overloadname}" in _ATEN_VIEWS

    @property
    def overloadpacket(self) -> OpOverloadPacket:
        return OpOverloadPacket(self.namespace, self._op_name)

    def name(self) -> str:
        """The qualified name torch's ``OpOverload.name()`` gives: ``mylib::foo`` (``mylib::foo.out``)."""
        suffix = "" if self._overloadname == "default" else f".{self._overloadname}"
        return f"{self.namespace}::{self._op_name}{suffix}"

    def __repr__(self) -> str:
        return f"{self.namespace}.{self._op_name}.{self._overloadname}"

    # overloads compare by qualified name: the one a dispatch mode's handler gets for an op
    # equals (and hashes as) the one in torch.ops.aten
    def __eq__(self, other) -> bool:
        if not isinstance(other, OpOverload):
            return NotImplemented
        return (self.namespace, self._op_name, self._overloadname) == \
            (other.namespace, other._op_name, other._overloadname)

    def __hash__(self) -> int:
        return hash((self.namespace, self._op_name, self._overloadname))

    __str__ = __repr__


class OpOverloadPacket:
    """All overloads of one operator (``torch.ops.mylib.foo``); calling it runs the overload whose
    arguments fit (the ``default`` one where there is one)."""

    def __init__(self, namespace: str, op_name: str) -> None:
        self._namespace = namespace
        self._op_name = op_name
        self.__name__ = op_name
        self.__qualname__ = op_name

    def _overloads(self) -> dict[str, OpOverload]:
        if self._namespace == "aten":
            return _aten_overloads(self._op_name)
        return _defined.get(self._namespace, {}).get(self._op_name, {})

    def overloads(self) -> list[str]:
        return list(self._overloads())

    def __getattr__(self, overload_name: str) -> OpOverload:
        if overload_name.startswith("__"):
            raise AttributeError(overload_name)
        overload = self._overloads().get(overload_name)
        if overload is None:
            raise AttributeError(f"The underlying op of '{self}' has no overload name '{overload_name}'")
        return overload

    def __call__(self, *args, **kwargs):
        overloads = self._overloads()
        if "default" in overloads:
            return overloads["default"](*args, **kwargs)
        return next(iter(overloads.values()))(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{self._namespace}.{self._op_name}"

    # a packet is built per access, so packets compare (and hash) by name, not identity
    def __eq__(self, other) -> bool:
        if not isinstance(other, OpOverloadPacket):
            return NotImplemented
        return (self._namespace, self._op_name) == (other._namespace, other._op_name)

    def __hash__(self) -> int:
        return hash((self._namespace, self._op_name))

    __str__ = __repr__


class OpNamespace:
    """``torch.ops.<namespace>``: its operators as attributes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = f"torch.ops.{name}"

    def __getattr__(self, op_name: str) -> OpOverloadPacket:
        if op_name.startswith("__"):
            raise AttributeError(op_name)
        known = _aten_overloads(op_name) if self.name == "aten" else _defined.get(self.name, {}).get(op_name)
        if not known:
            raise AttributeError(f"'_OpNamespace' '{self.name}' object has no attribute '{op_name}'")
        return OpOverloadPacket(self.name, op_name)

    def __repr__(self) -> str:
        return f"<module '{self.__name__}' from 'torch.ops'>"


def namespace(name: str) -> OpNamespace:
    """``torch.ops.<name>``; any name is a namespace (empty until something is defined in it)."""
    if name not in _namespaces:
        _namespaces[name] = OpNamespace(name)
    return _namespaces[name]


def register_overload(overload: OpOverload) -> None:
    _defined.setdefault(overload.namespace, {}).setdefault(overload._op_name, {})[overload._overloadname] = overload


def unregister_overload(namespace_name: str, op_name: str, overload_name: str) -> None:
    overloads = _defined.get(namespace_name, {}).get(op_name, {})
    overloads.pop(overload_name, None)
    if not overloads:
        _defined.get(namespace_name, {}).pop(op_name, None)


# compiled operator libraries whose operators chainrule defines in Python instead, by (the folder
# holding the file, the file's name up to its first dot); chainrule.library fills it (torchvision's _C)
_python_stand_ins: dict[tuple[str, str], Callable[[], None]] = {}
loaded_libraries: set[str] = set()  # torch.ops.loaded_libraries: the paths loaded so far


def load_library(path) -> None:
    """torch.ops.load_library: torch loads a compiled extension that registers C++ operators.
    chainrule runs no compiled code: a library it has a Python stand-in for (torchvision's ``_C``)
    loads that stand-in, which defines the same operators with the same schemas; any other file
    fails with the OSError torch's loader gives for a library it cannot open, which is what
    packages catch to carry on without their extension."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise OSError(f"Could not load this library: {path}")
    location = os.path.abspath(path)
    stand_in = _python_stand_ins.get((os.path.basename(os.path.dirname(location)),
                                      os.path.basename(location).split(".")[0]))
    if stand_in is None:
        raise OSError(f"Could not load this library: {path}: chainrule cannot run compiled torch operator "
                      "libraries; define the operators in Python with chainrule.library.custom_op")
    stand_in()
    loaded_libraries.add(location)


# ---- aten: overload name -> (public function's dotted path, how its arguments map)
# Each overload takes the arguments of the chainrule function named (ATen's own argument order
# where it matches; the few that differ get an adapter below).
_ATEN_SAME: dict[str, tuple[str, ...]] = {
    "add": ("Tensor", "Scalar", "default"), "sub": ("Tensor", "Scalar", "default"),
    "mul": ("Tensor", "Scalar", "default"), "div": ("Tensor", "Scalar", "Tensor_mode", "Scalar_mode", "default"),
    "pow": ("Tensor_Tensor", "Tensor_Scalar", "Scalar"),
    "mm": ("default",), "bmm": ("default",), "matmul": ("default",), "addmm": ("default",), "dot": ("default",),
    "relu": ("default",), "sigmoid": ("default",), "tanh": ("default",), "exp": ("default",),
    "log": ("default",), "sin": ("default",), "cos": ("default",), "neg": ("default",), "abs": ("default",),
    "sqrt": ("default",), "rsqrt": ("default",), "reciprocal": ("default",), "erf": ("default",),
    "sum": ("default", "dim_IntList"), "mean": ("default", "dim"), "amax": ("default",), "amin": ("default",),
    "argmax": ("default",), "argmin": ("default",), "max": ("default", "dim", "other"),
    "min": ("default", "dim", "other"), "maximum": ("default",), "minimum": ("default",),
    "reshape": ("default",), "permute": ("default",), "transpose": ("int",), "t": ("default",),
    "unsqueeze": ("default",), "squeeze": ("default", "dim", "dims"), "flatten": ("using_ints",),
    "cat": ("default",), "stack": ("default",), "clone": ("default",), "detach": ("default",),
    "where": ("self",), "zeros_like": ("default",), "ones_like": ("default",), "empty_like": ("default",),
    "full_like": ("default",), "zeros": ("default",), "ones": ("default",), "arange": ("default", "start", "start_step"),
    "linear": ("default",), "gelu": ("default",), "silu": ("default",), "softplus": ("default",),
    "clamp": ("default", "Tensor"), "eq": ("Tensor", "Scalar"), "ne": ("Tensor", "Scalar"),
    "lt": ("Tensor", "Scalar"), "le": ("Tensor", "Scalar"), "gt": ("Tensor", "Scalar"), "ge": ("Tensor", "Scalar"),
    "index_select": ("default",), "gather": ("default",), "masked_fill": ("Scalar", "Tensor"),
    "split": ("Tensor",), "chunk": ("default",), "topk": ("default",), "sort": ("default",),
    "median": ("default", "dim"), "nanmedian": ("default", "dim"), "kthvalue": ("default",), "mode": ("default",), "cummax": ("default",),
    "cummin": ("default",),
    "cumsum": ("default",), "var": ("default", "dim", "correction"),
    "std": ("default", "dim", "correction"), "contiguous": ("default",), "expand": ("default",),
    "view": ("default",), "logical_and": ("default",), "logical_or": ("default",), "logical_xor": ("default",),
    "addcmul": ("default",), "addcdiv": ("default",), "lerp": ("Scalar", "Tensor"),
    "conj": ("default",), "conj_physical": ("default",),
}
# the names the Tensor method answers (ATen's view/expand/contiguous are methods, not functions)
_ATEN_METHODS = {"view", "expand", "contiguous"}
_NN_FUNCTIONAL = {"linear", "gelu", "silu", "softplus"}


def _softmax(input, dim: int, half_to_float: bool):
    """aten._softmax(self, dim, half_to_float): softmax along ``dim`` (float32 from half when asked)."""
    import chainrule

    return chainrule.softmax(input.float() if half_to_float else input, dim)


def _log_softmax(input, dim: int, half_to_float: bool):
    import chainrule

    return chainrule.log_softmax(input.float() if half_to_float else input, dim)


def _embedding(weight, indices, padding_idx: int = -1, scale_grad_by_freq: bool = False, sparse: bool = False):
    """aten.embedding(weight, indices, ...): the weight comes first, unlike F.embedding."""
    import chainrule  # the public namespace names F.embedding

    return chainrule.nn.functional.embedding(indices, weight, None if padding_idx == -1 else padding_idx,
                                             scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def _layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5, cudnn_enable: bool = True):
    """aten.layer_norm: F.layer_norm's arguments and a cudnn_enable flag (meaningless here)."""
    import chainrule

    return chainrule.nn.functional.layer_norm(input, normalized_shape, weight, bias, eps)


def _unsafe_view(input, size):
    """aten._unsafe_view: a reshape whose result torch does not track as a view."""
    return input.reshape(size)


def _select(input, dim: int, index: int):
    return input.select(dim, index)


def _slice(input, dim: int = 0, start=None, end=None, step: int = 1):
    """aten.slice.Tensor(self, dim, start, end, step): ``input[start:end:step]`` along ``dim``."""
    return input[(slice(None),) * (dim % input.ndim) + (slice(start, end, step),)]


def _to_copy(input, *, dtype=None, layout=None, device=None, pin_memory=None, non_blocking: bool = False,
             memory_format=None):
    """aten._to_copy: ``input`` in ``dtype`` (and on ``device``), always a new tensor."""
    return input.to(device=device, dtype=dtype, copy=True)


def _rsub(input, other, alpha=1):
    """aten.rsub: ``other - alpha * input``."""
    return other - (input * alpha if alpha != 1 else input)


def _zero(input):
    """aten.zero(self): functionalize's out-of-place zero_, a new tensor of ``input``'s zeros."""
    return input.clone().zero_()


def _fill(input, value):
    """aten.fill.Scalar(self, value): functionalize's out-of-place fill_."""
    return input.clone().fill_(value)


_ATEN_ADAPTED: dict[str, Callable] = {"zero": _zero, "fill": _fill, "_to_copy": _to_copy, "rsub": _rsub, "_softmax": _softmax, "_log_softmax": _log_softmax, "embedding": _embedding,
                                      "layer_norm": _layer_norm, "_unsafe_view": _unsafe_view, "select": _select,
                                      "slice": _slice, "lift_fresh": lambda self: self,
                                      # the kernels torch's composite conj and conj_physical call for a
                                      # complex tensor (what a dispatch mode sees): the same results
                                      "_conj": lambda self: _aten_function("conj")(self),
                                      "_conj_physical": lambda self: _aten_function("conj_physical")(self)}
_ADAPTED_OVERLOADS = {"fill": ("Scalar",), "select": ("int",), "slice": ("Tensor",), "rsub": ("Tensor", "Scalar")}
_aten_cache: dict[str, dict[str, OpOverload]] = {}


def _aten_overloads(op_name: str) -> dict[str, OpOverload]:
    if op_name in _aten_cache:
        return _aten_cache[op_name]
    if op_name in _ATEN_ADAPTED:
        function, overload_names = _ATEN_ADAPTED[op_name], _ADAPTED_OVERLOADS.get(op_name, ("default",))
    elif op_name in _ATEN_SAME:
        function, overload_names = _aten_function(op_name), _ATEN_SAME[op_name]
    elif op_name.endswith("_copy") and _aten_overloads(op_name[:-5]):
        # aten.view_copy.default and the like: the view op, then a copy of its result
        overloads = {name: OpOverload("aten", op_name, name, _copying(view))
                     for name, view in _aten_overloads(op_name[:-5]).items()}
        _aten_cache[op_name] = overloads
        return overloads
    elif op_name.endswith("_") and (op_name[:-1] in _ATEN_SAME or op_name == "copy_"):
        # in-place overloads (aten.add_.Tensor, aten.copy_.default) are the Tensor methods
        function, overload_names = _inplace_method(op_name), _INPLACE_OVERLOADS.get(op_name, ("default",))
    else:
        return {}
    overloads = {name: OpOverload("aten", op_name, name, function) for name in overload_names}
    _aten_cache[op_name] = overloads
    return overloads


_INPLACE_OVERLOADS = {**{name + "_": ("Tensor", "Scalar") for name in ("add", "sub", "mul", "div", "pow")},
                      "addcmul_": ("default",), "addcdiv_": ("default",), "lerp_": ("Scalar", "Tensor")}


def _copying(view: OpOverload) -> Callable:
    return lambda *args, **kwargs: view(*args, **kwargs).clone()


def _inplace_method(op_name: str) -> Callable:
    import chainrule

    method = getattr(chainrule.Tensor, op_name)
    return lambda self, *args, **kwargs: method(self, *args, **kwargs)


def _aten_function(op_name: str) -> Callable:
    import chainrule  # the public functions: aten ops are answered by what users call

    if op_name in _ATEN_METHODS:
        method = getattr(chainrule.Tensor, op_name)
        return lambda self, *args, **kwargs: method(self, *args, **kwargs)
    if op_name in _NN_FUNCTIONAL:
        return getattr(chainrule.nn.functional, op_name)
    return getattr(chainrule, op_name)
