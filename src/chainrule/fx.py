"""chainrule.fx: torch.fx's ``wrap``, for model code that marks its functions as tracing leaves.

chainrule has no symbolic tracer, so nothing reads the marks; ``wrap`` keeps torch's contract
(a callable or a global function's name, called at a module's top level) and returns its
argument unchanged, so that libraries which decorate functions with ``@torch.fx.wrap`` at import
(timm's layers do) import and run eagerly. ``Proxy`` is the class of the values a symbolic trace
passes through a model: libraries test ``isinstance(x, torch.fx.Proxy)`` to skip checks while
tracing, and in eager code nothing is one.
"""

from __future__ import annotations

import inspect

__all__ = ["wrap", "Proxy"]


def wrap(fn_or_name):
    """Registers ``fn_or_name`` as a leaf of FX tracing in torch; here it only checks torch's usage
    rules and returns ``fn_or_name``. Usable as a decorator or as ``fx.wrap("name")``."""
    if not callable(fn_or_name) and not isinstance(fn_or_name, str):
        raise RuntimeError("Unsupported type for global function! Must be either a callable or string name")
    caller = inspect.currentframe().f_back
    # torch patches the wrapped name in the caller's globals while tracing, so the call must be there
    if caller.f_code.co_name != "<module>":
        raise NotImplementedError("wrap must be called at the top level of a module")
    return fn_or_name


class Proxy:
    """torch.fx.Proxy: a value standing for a node of a traced graph. chainrule never traces, so
    no object it makes is a Proxy; the class exists for ``isinstance`` checks."""

    def __init__(self, node, tracer=None) -> None:
        self.node = node
        self.tracer = tracer

    def __repr__(self) -> str:
        return f"Proxy({self.node})"
