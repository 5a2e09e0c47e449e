"""chainrule.compiler: torch.compiler's names for an eager framework.

chainrule has no compiler (``chainrule.compile`` returns its argument), so code is never being
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

from ._config import compile

__all__ = ["compile", "reset", "allow_in_graph", "substitute_in_graph", "assume_constant_result", "list_backends",
           "disable", "set_stance", "cudagraph_mark_step_begin", "wrap_numpy", "is_compiling",
           "is_dynamo_compiling", "is_exporting", "get_default_backend", "set_default_backend"]

_default_backend = "inductor"


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
