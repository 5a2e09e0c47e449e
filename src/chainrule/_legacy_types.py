"""torch's legacy tensor types: ``FloatTensor`` and its siblings, ``autograd.Variable`` and
the type names ``set_default_tensor_type`` takes, as older scripts use them.

In torch, ``torch.FloatTensor`` is not a subclass of ``torch.Tensor`` (every tensor is a plain
``Tensor``): it is an object of the metaclass ``torch.tensortype`` that names a (dtype, device) pair.
Calling it builds a tensor of that pair, and ``isinstance(x, torch.FloatTensor)`` asks whether
``x`` has that dtype and device. The classes here do the same through ``tensortype`` below.
"""

from __future__ import annotations

import importlib.machinery
import operator
import types
import warnings

from . import _dtype
from .ops import creation
from .tensor import (
    _TYPE_NAMES,
    Tensor,
    check_legacy_device,
    legacy_arguments,
    legacy_keywords,
    tensor_options_error,
)

__all__ = ["tensortype", "Variable", "resolve", "check_available", "cpu_types", "cuda_types"]


def _cuda_available() -> bool:
    from . import cuda  # the nn layer: imported when a CUDA type is built, not when chainrule loads

    return cuda.is_available()


def check_available(legacy) -> None:
    """torch's error for a CUDA type where there is no GPU: a TypeError naming the type."""
    if legacy.is_cuda and not _cuda_available():
        raise TypeError(f"type {legacy.__module__}.{legacy.__qualname__} not available: no CUDA device "
                        "(chainrule's GPU path needs CuPy and a GPU: see docs/gpu.md, e.g. "
                        "pip install \"chainrule[cuda13]\")")


class tensortype(type):
    """The metaclass of the legacy types: a (dtype, device) pair that builds and recognises tensors."""

    dtype: _dtype.dtype
    is_cuda: bool
    is_sparse = False

    def __instancecheck__(cls, instance) -> bool:
        # a sparse tensor is an instance of chainrule.sparse.FloatTensor, not of FloatTensor, as in torch
        return (isinstance(instance, Tensor) and instance.dtype is cls.dtype and instance.is_cuda == cls.is_cuda
                and not instance.is_sparse)

    def __repr__(cls) -> str:
        return f"<class '{cls.__module__}.{cls.__qualname__}'>"

    def __call__(cls, *args, **kwargs) -> Tensor:
        """``FloatTensor()`` (empty), ``FloatTensor(3, 4)`` or ``FloatTensor(Size)`` (uninitialised),
        ``FloatTensor(data)`` (a copy as this dtype; a NumPy array of this dtype is shared, as by
        from_numpy), ``FloatTensor(tensor)`` (an alias of a tensor of this dtype), as torch's legacy
        constructor."""
        check_available(cls)
        args, device = legacy_keywords(args, kwargs)
        on = "cuda" if cls.is_cuda else "cpu"
        check_legacy_device(device, on)
        if not args:
            return creation.empty(0, dtype=cls.dtype, device=on)
        sizes, data = legacy_arguments(args)
        if sizes is not None:
            return creation.empty(*sizes, dtype=cls.dtype, device=on)
        if isinstance(data, Tensor):
            if data.dtype is not cls.dtype:
                raise tensor_options_error(cls.dtype, data.dtype, on)
            return Tensor._legacy_alias(data, Tensor)  # torch's alias: the same memory, and its history
        if on == "cpu":
            return Tensor._make(creation._legacy_data_array(data, cls.dtype))
        return creation.tensor(data, dtype=cls.dtype, device=on)


def _legacy_type(name: str, dtype: _dtype.dtype, cuda: bool) -> tensortype:
    module = "chainrule.cuda" if cuda else "chainrule"
    return tensortype(name, (), {"dtype": dtype, "is_cuda": cuda, "__module__": module, "__qualname__": name,
                                 "__doc__": f"{module}.{name}: tensors of dtype {dtype!r} on the "
                                            f"{'GPU' if cuda else 'CPU'} (torch's legacy type)"})


_BY_NAME = {name: _dtype._BY_NAME[dtype_name] for dtype_name, name in _TYPE_NAMES.items()}
cpu_types = {name: _legacy_type(name, dtype, cuda=False) for name, dtype in _BY_NAME.items()}
cuda_types = {name: _legacy_type(name, dtype, cuda=True) for name, dtype in _BY_NAME.items()}


def resolve(t):
    """The object a dotted name ('torch.DoubleTensor', 'torch.cuda.FloatTensor') names, looked up as
    torch's _import_dotted_name does (import the first component, getattr the rest: a bad name
    raises that lookup's ModuleNotFoundError/AttributeError); anything else is itself."""
    if isinstance(t, str):
        first, *rest = t.split(".")
        import chainrule

        t = chainrule if first in ("torch", "chainrule") else __import__(first)
        for component in rest:
            t = getattr(t, component)
    return t


class _VariableMeta(type):
    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, Tensor)

    def __call__(cls, data=None, requires_grad=False, volatile=False, **unknown) -> Tensor:
        # torch parses these as the C flags of THPVariable_pynew: an unknown keyword, or a flag that is
        # not an integer, is a TypeError in CPython's words, before anything else happens
        if unknown:
            raise TypeError(f"'{next(iter(unknown))}' is an invalid keyword argument for this function")
        requires_grad, volatile = bool(operator.index(requires_grad)), bool(operator.index(volatile))
        if volatile:
            warnings.warn("volatile was removed and now has no effect. Use `with torch.no_grad():` instead.",
                          UserWarning, stacklevel=2)
            if requires_grad:
                raise ValueError("Variable can't be volatile and require_grad at the same time!")
        if data is None:
            # torch's Variable() / Variable(None): an empty tensor of the default dtype (legacy serialization)
            data = creation.empty(0)
        elif not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {_dtype.c_type_name(data)}")
        # torch's Variable(t) is a new leaf sharing t's memory, with no history
        leaf = data.detach()
        leaf._set_requires_grad(
            requires_grad, dtype_refusal="Only Tensors of floating point and complex dtype can require gradients")
        return leaf


class Variable(metaclass=_VariableMeta):
    """torch.autograd.Variable (deprecated): ``Variable(t, requires_grad=...)`` returns a Tensor,
    a leaf sharing ``t``'s memory; every Tensor is an instance of it."""


def variable_module(name: str) -> types.ModuleType:
    """torch.autograd.variable as a module: what ``from torch.autograd.variable import Variable`` reads."""
    module = types.ModuleType(name, "torch.autograd.variable: the legacy Variable class (a Tensor factory).")
    module.Variable = Variable
    # a spec, so importlib.util.find_spec answers for it as for a module imported from a file
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return module
