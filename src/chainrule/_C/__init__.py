"""chainrule._C: the few names of torch's C-extension module that Python libraries reach for.

torch._C is torch's compiled core; chainrule has none. Libraries built on torch still call a
handful of its helpers from Python: torchmetrics and torchvision record each class they build with
``torch._C._log_api_usage_once`` (a no-op unless a usage logger is installed, which chainrule never
does), Lightning parses ``Module.to``'s arguments with ``torch._C._nn._parse_to`` and names
``torch._C._TensorMeta`` (the type of ``torch.Tensor``) in annotations and reads checkpoints record by
record with ``torch._C.PyTorchFileReader`` (chainrule._torch_file), and torchvision builds a
``DispatchKeySet`` of autocast keys at import (the enum and set are here; chainrule has no
dispatcher to consult them). Nothing else of torch._C is provided: code that needs its other
bindings (the JIT, c10d) fails with AttributeError.
"""

from __future__ import annotations

import enum
import types

from .. import _backend, _dtype
from .._torch_file import PyTorchFileReader, PyTorchFileWriter  # noqa: F401  (torch._C's names for them)
from ..linalg import _LinAlgError  # noqa: F401  (torch.linalg.LinAlgError is torch._C._LinAlgError)
from ..ops.random import Generator  # noqa: F401  (torch.Generator is torch._C.Generator)
from ..tensor import Tensor

__all__: list[str] = []

# torch.Tensor's metaclass; chainrule's Tensor is a plain class
_TensorMeta = type(Tensor)


class ScriptModule:
    """torch.ScriptModule: the compiled module object inside ``torch.jit.script(m)``'s result (not an
    ``nn.Module``). chainrule compiles nothing, so none is ever built; libraries name it in
    ``isinstance`` checks and annotations (Lightning's ``to_torchscript``)."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("torch.ScriptModule is built by the TorchScript compiler, which chainrule does not have")


class Graph:
    """torch._C.Graph: a TorchScript IR graph, what ``jit._get_trace_graph`` returns in torch. chainrule
    records no IR, so none is built; the name is here for the annotations that mention it (fvcore)."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("torch._C.Graph is built by the TorchScript tracer, which chainrule does not have")


class Value:
    """torch._C.Value: one value of a TorchScript IR graph; never built here (see Graph)."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("torch._C.Value is built by the TorchScript tracer, which chainrule does not have")


def _log_api_usage_once(event: str) -> None:
    """Record that an API was used: torch logs only to an installed usage logger; there is none here."""


def _get_tracing_state() -> None:
    """The JIT tracer's state: None, as in torch outside ``torch.jit.trace`` (chainrule never traces)."""
    return None


_TO_SIGNATURES = (
    " * (torch.device device = None, torch.dtype dtype = None, bool non_blocking = False, bool copy = False, "
    "*, torch.memory_format memory_format = None)\n"
    " * (torch.dtype dtype, bool non_blocking = False, bool copy = False, *, torch.memory_format memory_format = None)\n"
    " * (Tensor tensor, bool non_blocking = False, bool copy = False, *, torch.memory_format memory_format = None)\n")
_TO_KEYWORDS = ("device", "dtype", "non_blocking", "copy", "memory_format", "tensor")


def _type_label(value) -> str:
    if isinstance(value, Tensor):
        return "Tensor"
    if isinstance(value, _dtype.dtype):
        return "torch.dtype"
    return type(value).__name__


def _invalid_to_arguments(args, kwargs) -> TypeError:
    got = ", ".join([_type_label(a) for a in args] + [f"{k}={_type_label(v)}" for k, v in kwargs.items()])
    got += ", " if kwargs and not args else ""
    return TypeError(f"to() received an invalid combination of arguments - got ({got}), but expected one of:\n"
                     + _TO_SIGNATURES)


def _parse_to(*args, **kwargs):
    """``(device, dtype, non_blocking, memory_format)`` from ``Tensor.to``/``Module.to``'s arguments, by
    torch's three signatures: ``(device, dtype, non_blocking, copy)``, ``(dtype, non_blocking, copy)``,
    ``(tensor, non_blocking, copy)``. As torch, the dtype is not checked here (``Module.to`` refuses
    integer dtypes itself) and a ``copy`` argument is refused."""
    if any(k not in _TO_KEYWORDS for k in kwargs):
        raise _invalid_to_arguments(args, kwargs)
    first = args[0] if args else kwargs.get("tensor", kwargs.get("dtype") if "device" not in kwargs else None)
    if isinstance(first, (Tensor, _dtype.dtype)):
        names = ("tensor" if isinstance(first, Tensor) else "dtype", "non_blocking", "copy")
    else:
        names = ("device", "dtype", "non_blocking", "copy")
    if len(args) > len(names):
        raise _invalid_to_arguments(args, kwargs)
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key in bound or (key not in names and key != "memory_format"):
            raise _invalid_to_arguments(args, kwargs)
        bound[key] = value
    if "copy" in bound:
        raise RuntimeError(".to() does not accept copy argument")
    wrong_type = ((bound.get("dtype") is not None and not isinstance(bound["dtype"], _dtype.dtype))
                  or not isinstance(bound.get("non_blocking", False), bool)
                  or isinstance(bound.get("device"), (bool, _dtype.dtype)))
    if wrong_type:
        raise _invalid_to_arguments(args, kwargs)
    device, dtype = bound.get("device"), bound.get("dtype")
    if "tensor" in bound:
        device, dtype = bound["tensor"].device, bound["tensor"].dtype
    if device is not None:
        device = _backend.device(device)
    return device, dtype, bound.get("non_blocking", False), bound.get("memory_format")


def _are_functorch_transforms_active() -> bool:
    """Whether a torch.func transform (vmap, grad, jvp) has wrapped the tensors in flight, so that
    data-dependent Python checks must be skipped. chainrule's transforms hand the function plain
    tensors (vmap calls it per slice, grad records on autograd), so none ever wraps one: False."""
    return False


class _NnBindings(types.SimpleNamespace):
    """torch._C._nn: the nn bindings. From Python torch's argument parser is wanted, and the
    bindings torch.nn.functional re-exports (F.gelu is torch._C._nn.gelu), which code traced by
    torch.fx calls by those names."""

    def __getattr__(self, name: str):
        from ..fx.node import _FUNCTIONAL_BINDINGS
        from ..nn import functional

        for functional_name, path in _FUNCTIONAL_BINDINGS.items():
            if path == f"torch._C._nn.{name}":
                return getattr(functional, functional_name)
        raise AttributeError(f"module 'torch._C._nn' has no attribute '{name}'")


_nn = _NnBindings(_parse_to=_parse_to)


# ---- the __torch_function__ switches and checks (chainrule/_torch_function.py; torch.overrides uses them)
from .._torch_function import DisableTorchFunction, DisableTorchFunctionSubclass  # noqa: E402,F401
from .._torch_function import disabled_torch_function_impl as _disabled_torch_function_impl  # noqa: E402,F401
from .._torch_function import has_torch_function as _has_torch_function  # noqa: E402,F401
from .._torch_function import has_torch_function_unary as _has_torch_function_unary  # noqa: E402,F401
from .._torch_function import has_torch_function_variadic as _has_torch_function_variadic  # noqa: E402,F401
from .._torch_function import is_torch_function_enabled as _is_torch_function_enabled  # noqa: E402,F401
from .._torch_function import is_torch_function_mode_enabled as _is_torch_function_mode_enabled  # noqa: E402,F401
from .._torch_function import pop_mode as _pop_torch_function_stack  # noqa: E402,F401
from .._torch_function import push_mode as _push_on_torch_function_stack  # noqa: E402,F401


def __getattr__(name: str):
    # the dispatch layer (utils._python_dispatch) is imported at first use, not with torch._C
    if name == "_DisableTorchDispatch":
        from ..utils._python_dispatch import _DisableTorchDispatch

        return _DisableTorchDispatch
    raise AttributeError(f"module 'torch._C' has no attribute '{name}'")


def _len_torch_function_stack() -> int:
    from .. import _torch_function

    return len(_torch_function.mode_stack)


# ---- dispatch keys: torch's dispatcher picks a kernel per key; chainrule has no dispatcher, but
# libraries name keys when they register kernels (chainrule.library takes the backend, autograd and
# Meta ones, and ignores the rest, autocast's included) and torchvision builds a key set at import
DispatchKey = enum.IntEnum("DispatchKey", {  # torch's numbering, for the keys torch.library users name
    "Undefined": 0, "BackendSelect": 11, "Python": 13, "FuncTorchDynamicLayerBackMode": 14, "Functionalize": 15,
    "Conjugate": 16, "Negative": 17, "ZeroTensor": 18, "ADInplaceOrView": 19, "AutocastCPU": 24,
    "AutocastXPU": 27, "AutocastHPU": 29, "AutocastMPS": 31, "AutocastCUDA": 32, "AutocastPrivateUse1": 33,
    "FuncTorchBatched": 34, "CPU": 49, "CUDA": 50, "HIP": 51, "XLA": 52, "MPS": 53, "XPU": 55, "PrivateUse1": 61,
    "Meta": 64, "SparseCPU": 83, "SparseCUDA": 84, "AutogradCPU": 134, "AutogradCUDA": 135, "Autograd": 150,
    "CompositeImplicitAutograd": 151, "CompositeExplicitAutograd": 154})


class DispatchKeySet:
    """torch._C.DispatchKeySet: a set of dispatch keys (``|``, ``add``, ``remove``, ``has``)."""

    def __init__(self, *keys) -> None:
        self._keys = frozenset(DispatchKey(k) for k in keys)

    @classmethod
    def _of(cls, keys) -> DispatchKeySet:
        return cls(*keys)

    def __or__(self, other: DispatchKeySet) -> DispatchKeySet:
        return self._of(self._keys | other._keys)

    def add(self, key) -> DispatchKeySet:
        return self._of(self._keys | {DispatchKey(key)})

    def remove(self, key) -> DispatchKeySet:
        return self._of(self._keys - {DispatchKey(key)})

    def has(self, key) -> bool:
        return DispatchKey(key) in self._keys

    def __eq__(self, other) -> bool:
        return isinstance(other, DispatchKeySet) and self._keys == other._keys

    def __hash__(self) -> int:
        return hash(self._keys)

    def __repr__(self) -> str:
        return f"DispatchKeySet({', '.join(k.name for k in sorted(self._keys))})"


class _ExcludeDispatchKeyGuard:
    """torch._C._ExcludeDispatchKeyGuard(keys): inside it torch skips those keys' kernels. chainrule
    runs no per-key kernels that a guard could skip (an autocast kernel registered through
    torch.library is ignored), so entering it changes nothing."""

    def __init__(self, keys: DispatchKeySet) -> None:
        self.keys = keys

    def __enter__(self) -> _ExcludeDispatchKeyGuard:
        return self

    def __exit__(self, *exc) -> None:
        return None
