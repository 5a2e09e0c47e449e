"""torch.overrides: the ``__torch_function__`` protocol and TorchFunctionMode.

A class (a Tensor subclass or any other) with a ``__torch_function__(cls, func, types, args, kwargs)``
classmethod receives the calls of chainrule's public functions, Tensor methods, operators and
properties that get one of its instances as an argument; a ``TorchFunctionMode`` entered with
``with`` receives every such call. The dispatch itself is in ``chainrule/_torch_function.py``; this
module holds torch's public names.
"""

from __future__ import annotations

import contextlib
import functools
import types as _types

from . import _torch_function
from ._torch_function import (
    handle_torch_function,
    has_torch_function,
    has_torch_function_unary,
    has_torch_function_variadic,
    redispatch_function,
)
from .tensor import DEFAULT_NOWRAP_FUNCTIONS, Tensor

__all__ = [
    "BaseTorchFunctionMode", "TorchFunctionMode", "enable_reentrant_dispatch", "get_default_nowrap_functions",
    "get_ignored_functions", "get_overridable_functions", "get_testing_overrides", "handle_torch_function", "has_torch_function",
    "has_torch_function_unary", "has_torch_function_variadic", "is_tensor_like", "is_tensor_method_or_property",
    "redispatch_function", "resolve_name", "wrap_torch_function",
]

# the public functions of chainrule's top level that torch does not hand to __torch_function__
# (settings, seeds, files, compile; from_numpy); the package wiring leaves them unwrapped
_UNDISPATCHED_TOP_LEVEL = frozenset({
    "are_deterministic_algorithms_enabled", "autocast_decrement_nesting", "autocast_increment_nesting",
    "broadcast_shapes", "can_cast", "clear_autocast_cache", "compile", "cond", "eig", "from_dlpack", "from_numpy",
    "frombuffer", "get_autocast_cpu_dtype", "get_autocast_dtype", "get_autocast_gpu_dtype",
    "get_default_complex_dtype", "get_default_device", "get_default_dtype", "get_deterministic_debug_mode",
    "get_device_module", "get_float32_matmul_precision", "get_num_interop_threads", "get_num_threads",
    "get_printoptions", "get_rng_state", "initial_seed", "is_anomaly_check_nan_enabled", "is_anomaly_enabled", "is_autocast_cache_enabled",
    "is_autocast_cpu_enabled", "is_autocast_enabled", "is_deterministic_algorithms_warn_only_enabled",
    "is_grad_enabled", "is_inference_mode_enabled", "is_storage", "is_tensor", "is_warn_always_enabled", "load",
    "lstsq", "manual_seed", "matrix_rank", "promote_types", "result_type", "save", "seed", "set_anomaly_enabled",
    "set_autocast_cache_enabled", "set_autocast_cpu_dtype", "set_autocast_cpu_enabled", "set_autocast_dtype",
    "set_autocast_enabled", "set_autocast_gpu_dtype", "set_default_device", "set_default_dtype",
    "set_default_tensor_type", "set_deterministic_debug_mode", "set_float32_matmul_precision", "set_flush_denormal",
    "set_num_interop_threads", "set_num_threads", "set_printoptions", "set_rng_state", "set_warn_always", "solve",
    "sparse_compressed_tensor", "sparse_coo_tensor", "sparse_csc_tensor", "sparse_csr_tensor", "symeig", "to_dlpack",
    "typename", "use_deterministic_algorithms", "vmap", "while_loop",
})
# nn.functional's functions that torch writes without handle_torch_function: the deprecated spellings
# call another public function, sigmoid and tanh the Tensor method
_UNDISPATCHED_FUNCTIONAL = frozenset({"upsample", "upsample_bilinear", "upsample_nearest", "sigmoid", "tanh"})


class TorchFunctionMode:
    """torch.overrides.TorchFunctionMode: ``with mode:`` pushes the mode on the stack, and every public
    chainrule call made inside is given to ``mode.__torch_function__(func, types, args, kwargs)``
    instead, the mode off while its own handler runs (so ``func(*args, **kwargs)`` there reaches the
    next mode, the arguments' handlers, then the op). Modes nest; the innermost is asked first."""

    inner: TorchFunctionMode

    def __init__(self) -> None:
        pass

    def __torch_function__(self, func, types, args=(), kwargs=None):
        raise NotImplementedError

    def __enter__(self):
        _torch_function.push_mode(self)
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _torch_function.pop_mode()

    @classmethod
    def push(cls, *args, **kwargs):
        import warnings

        warnings.warn("`Mode.push()` is no longer necessary and can be replaced with just `with Mode()`",
                      stacklevel=2)
        return cls(*args, **kwargs)


class BaseTorchFunctionMode(TorchFunctionMode):
    """torch.overrides.BaseTorchFunctionMode: a mode whose handler just runs the call."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def _get_current_function_mode():
    """The innermost active mode, or None."""
    return _torch_function.mode_stack[-1] if _torch_function.mode_stack else None


def _get_current_function_mode_stack() -> list:
    """The active modes, outermost first (a copy)."""
    return list(_torch_function.mode_stack)


def _push_mode(mode) -> None:
    _torch_function.push_mode(mode)


def _pop_mode():
    return _torch_function.pop_mode()


def _len_torch_function_stack() -> int:
    return len(_torch_function.mode_stack)


@contextlib.contextmanager
def _pop_mode_temporarily():
    """Take the innermost mode off the stack for the block (yielding it), and put it back after."""
    mode = _torch_function.pop_mode()
    try:
        yield mode
    finally:
        _torch_function.push_mode(mode)


def _is_torch_function_mode_enabled() -> bool:
    return _torch_function.is_torch_function_mode_enabled()


@contextlib.contextmanager
def enable_reentrant_dispatch():
    """torch.overrides.enable_reentrant_dispatch: inside a ``__torch_dispatch__`` handler (which runs
    below autograd), the block records gradients as the handler's caller would; chainrule's dispatch
    is always reentrant otherwise."""
    from .utils._python_dispatch import reentrant_dispatch

    with reentrant_dispatch():
        yield


def is_tensor_like(inp) -> bool:
    """Whether ``inp`` is a Tensor or has a ``__torch_function__`` (a tensor-like type)."""
    return type(inp) is Tensor or hasattr(inp, "__torch_function__")


def get_default_nowrap_functions() -> set:
    """The functions whose results Tensor.__torch_function__ returns as they are (the ``grad`` and
    ``_base`` getters: the gradient of a subclass instance stays a plain Tensor)."""
    return set(DEFAULT_NOWRAP_FUNCTIONS)


def _namespaces() -> dict:
    import chainrule

    return {"torch": chainrule, "torch.nn.functional": chainrule.nn.functional, "torch.linalg": chainrule.linalg,
            "torch.fft": chainrule.fft, "torch.special": chainrule.special}


def _public_callables(namespace) -> dict:
    return {name: value for name, value in vars(namespace).items()
            if not name.startswith("_") and _torch_function.is_function(value)}


@functools.lru_cache(maxsize=1)
def _overridable() -> tuple:
    """(namespace object -> its dispatched functions, function -> its torch-style name)."""
    by_namespace, names = {}, {}
    for label, namespace in _namespaces().items():
        dispatched = {name: f for name, f in _public_callables(namespace).items()
                      if getattr(f, "__torch_dispatching__", False)}
        by_namespace[namespace] = list(dispatched.values())
        for name, f in dispatched.items():
            names.setdefault(f, f"{label}.{name}")
    from . import _methods

    methods = []
    for name, value in vars(Tensor).items():
        if getattr(value, "__torch_dispatching__", False):
            methods.append(value)
            names[value] = f"torch.Tensor.{name}"
    for name, prop in _methods._DISPATCHING_PROPERTIES.items():
        methods.append(prop.__get__)
        names[prop.__get__] = f"torch.Tensor.{name}.__get__"
    by_namespace[Tensor] = methods
    return by_namespace, names


def get_overridable_functions() -> dict:
    """torch.overrides.get_overridable_functions: for each namespace (chainrule, chainrule.Tensor,
    nn.functional, linalg, fft, special) the public functions that dispatch ``__torch_function__``;
    properties appear as their ``__get__``."""
    return {namespace: list(functions) for namespace, functions in _overridable()[0].items()}


def get_testing_overrides() -> dict:
    """torch.overrides.get_testing_overrides: for every overridable function, a dummy with its
    signature that returns -1 (for checking that a ``__torch_function__`` type covers the API)."""
    import inspect

    dummies = {}
    for functions in _overridable()[0].values():
        for f in functions:
            def dummy(*args, **kwargs):
                return -1
            try:
                dummy.__signature__ = inspect.signature(f)
            except (TypeError, ValueError):  # a property getter, a builtin without one
                pass
            dummy.__name__ = getattr(f, "__name__", "dummy")
            dummies[f] = dummy
    return dummies


def get_ignored_functions() -> set:
    """torch.overrides.get_ignored_functions: the public functions and Tensor methods that never reach
    ``__torch_function__`` (settings, seeds, file I/O, ``as_subclass``, the ``new_*`` methods, ...)."""
    from . import _methods

    ignored = set()
    for namespace in _namespaces().values():
        ignored.update(f for f in _public_callables(namespace).values() if not getattr(f, "__torch_dispatching__", False))
    ignored.update(getattr(Tensor, name) for name in _methods._UNDISPATCHED_METHODS if hasattr(Tensor, name))
    return ignored


def resolve_name(f) -> str | None:
    """torch.overrides.resolve_name: ``"torch.add"``, ``"torch.Tensor.add"``, ... for a dispatched
    function, None for anything else."""
    from . import _methods

    if isinstance(f, _types.MethodWrapperType) and isinstance(getattr(f, "__self__", None), property):
        for table in (_methods._DISPATCHING_PROPERTIES, _methods._PLAIN_PROPERTIES):
            for name, prop in table.items():
                if prop is f.__self__:
                    return f"torch.Tensor.{name}.__get__"
    return _overridable()[1].get(f)


def is_tensor_method_or_property(func) -> bool:
    """Whether ``func`` is a Tensor method or a property getter (its handler is given ``self`` first)."""
    return func in _overridable()[0][Tensor] or getattr(func, "__name__", None) == "__get__"


def wrap_torch_function(dispatcher):
    """torch.overrides.wrap_torch_function: decorate a function so that it dispatches on the arguments
    ``dispatcher(*args, **kwargs)`` returns, as the built-in ops do."""
    def decorate(func):
        @functools.wraps(func)
        def wrapped(*args, **kwargs):
            relevant = dispatcher(*args, **kwargs)
            if has_torch_function(relevant):
                return handle_torch_function(wrapped, relevant, *args, **kwargs)
            return func(*args, **kwargs)

        return wrapped

    return decorate
