"""chainrule.compiler: torch.compiler's names for an eager framework.

chainrule has no compiler (``chainrule.compile`` runs its argument eagerly), so code is never being
compiled: ``is_compiling`` and its relatives answer False, the decorators that steer a compiler
(``disable``, ``allow_in_graph``, ``assume_constant_result``, ``substitute_in_graph``) return the
function unchanged, and the settings (``set_stance``, ``reset``, ``cudagraph_mark_step_begin``)
have nothing to change. Library code that asks these questions before choosing a path takes the
eager one, which is what runs.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from .nn.modules.module import Module

__all__ = ["compile", "OptimizedModule", "reset", "allow_in_graph", "substitute_in_graph", "assume_constant_result", "list_backends",
           "disable", "set_stance", "cudagraph_mark_step_begin", "wrap_numpy", "is_compiling",
           "is_dynamo_compiling", "is_exporting", "get_default_backend", "set_default_backend"]

_default_backend = "inductor"


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend=None, mode=None, options=None,
            name=None, disable: bool = False, recompile_limit=None, isolate_recompiles: bool = False,
            shapes_spec=None):
    """torch.compile: chainrule has no compiler, so the result runs eagerly with the same numbers.
    A Module comes back wrapped in an ``OptimizedModule`` as in torch (scripts rely on its
    ``_orig_mod`` and on the ``_orig_mod.`` prefix of its state_dict keys); a function comes back
    unchanged. Without ``model`` it returns a decorator, as ``@torch.compile(mode=...)`` needs. The
    compiler's own keywords (backend, mode, options, name, recompile limits, shapes) are taken and
    have nothing to steer."""
    if model is None:
        return lambda fn: compile(fn)
    if not callable(model):
        raise RuntimeError(f"compile: expected a Module or a callable, got {type(model).__name__}")
    return OptimizedModule(model) if isinstance(model, Module) else model


class _EagerDynamoContext:
    """Stands for torch's ``OptimizeContext`` (``OptimizedModule.dynamo_ctx``): applied to a
    function it returns what compiling it gives here (the function itself, run eagerly), and as a
    context manager it changes nothing. Lightning's ``from_compiled`` wraps a module's
    ``forward`` and ``*_step`` methods with it."""

    def __call__(self, fn):
        return compile(fn)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


class OptimizedModule(Module):
    """What ``torch.compile(module)`` returns: the module registered as the child ``_orig_mod``
    (so parameters and state_dict keys carry the ``_orig_mod.`` prefix), calls forwarded to it,
    and any other attribute read from or written to it, as torch's wrapper does."""

    # set on the wrapper itself; everything else is the wrapped module's
    _own_attributes = frozenset({"_orig_mod", "forward", "__dict__", "_wrapper_initialized"})
    dynamo_ctx = _EagerDynamoContext()

    def __init__(self, mod: Module) -> None:
        # first: the training property below reads _orig_mod, and Module.__init__ sets training
        object.__setattr__(self, "_orig_mod", mod)
        object.__setattr__(self, "_wrapper_initialized", False)
        super().__init__()
        self._wrapper_initialized = True
        del self.__dict__["_orig_mod"]
        self._orig_mod = mod  # registered as a child now that Module.__init__ made the tables

    def forward(self, *args, **kwargs):
        return self._orig_mod(*args, **kwargs)

    @property
    def training(self) -> bool:
        return self._orig_mod.training

    @training.setter
    def training(self, value: bool) -> None:
        # Module.__init__'s default is ignored: the wrapper mirrors the wrapped module's mode
        if self._wrapper_initialized:
            self._orig_mod.training = value

    def __getattr__(self, name: str):
        if name == "_orig_mod":
            return self.__dict__["_modules"]["_orig_mod"]
        return getattr(self._orig_mod, name)

    def __setattr__(self, name: str, value) -> None:
        if hasattr(type(self), name) or name in OptimizedModule._own_attributes:
            return super().__setattr__(name, value)
        return setattr(self._orig_mod, name, value)

    def __delattr__(self, name: str) -> None:
        if hasattr(type(self), name) or name in OptimizedModule._own_attributes:
            return super().__delattr__(name)
        return delattr(self._orig_mod, name)

    def __len__(self) -> int:
        return len(self._orig_mod)

    def __dir__(self):
        own = self._orig_mod.__dir__()
        return own + [name for name in super().__dir__() if name not in own]

    def __reduce__(self):
        return (type(self), (self._orig_mod,))


def reset() -> None:
    """Clears compilation caches: there are none."""


def disable(fn=None, recursive: bool = True, *, reason=None):
    """``fn`` unchanged: it already runs eagerly. Usable bare (``@disable``) and called
    (``@disable(recursive=False)``)."""
    return fn if callable(fn) else (lambda f: f)


def allow_in_graph(fn):
    return fn


def assume_constant_result(fn):
    return fn


def substitute_in_graph(original_fn, *, can_constant_fold_through: bool = False, skip_signature_check: bool = False):
    """A decorator for the polyfill of ``original_fn``; eager code calls the original, so the
    polyfill is returned as is and never used in its place."""
    return lambda polyfill: polyfill


def wrap_numpy(fn):
    """``fn`` taking and returning NumPy arrays, called on tensors: the arrays are the tensors'
    data, as torch's eager fallback converts them."""
    from .tensor import Tensor

    def unwrap(x):
        return x.numpy() if isinstance(x, Tensor) else x

    def wrap(x):
        return Tensor._make(x) if isinstance(x, np.ndarray) else x

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        out = fn(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in kwargs.items()})
        return type(out)(wrap(o) for o in out) if isinstance(out, tuple) else wrap(out)

    return wrapped


def list_backends(exclude_tags=("debug", "experimental")) -> list:
    """The backend names torch.compile accepts; every one runs eagerly here."""
    return ["cudagraphs", "inductor", "openxla", "tvm"]


def get_default_backend() -> str:
    return _default_backend


def set_default_backend(backend: str) -> None:
    global _default_backend
    _default_backend = backend


def set_stance(stance: str = "default", *, skip_guard_eval_unsafe: bool = False, force_backend=None):
    """Usable as a call or a context manager, as torch's; nothing is compiled, so no stance changes
    what runs."""
    return contextlib.nullcontext()


def cudagraph_mark_step_begin() -> None:
    """Marks a new iteration for CUDA graphs: chainrule records none."""


def is_compiling() -> bool:
    return False


def is_dynamo_compiling() -> bool:
    return False


def is_exporting() -> bool:
    return False
