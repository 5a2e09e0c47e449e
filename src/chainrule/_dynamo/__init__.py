"""chainrule._dynamo: the parts of torch._dynamo that training scripts set or call.

Scripts written for torch 2 write ``torch._dynamo.config.suppress_errors = True`` or
``torch._dynamo.config.cache_size_limit = 64`` before ``torch.compile``, and call
``torch._dynamo.reset()``. chainrule compiles nothing (``chainrule.compile`` runs its argument eagerly),
so ``config`` holds torch's defaults and accepts any setting, and the functions do what they do
when nothing was compiled.
"""

from __future__ import annotations

import types

from ..compiler import OptimizedModule, allow_in_graph, assume_constant_result, disable, is_compiling, reset
from . import eval_frame

__all__ = ["config", "reset", "disable", "allow_in_graph", "assume_constant_result", "is_compiling", "optimize",
           "mark_dynamic", "maybe_mark_dynamic", "mark_static", "OptimizedModule", "eval_frame"]

# torch 2.x's defaults for the settings scripts touch; others may be set freely
config = types.SimpleNamespace(suppress_errors=False, cache_size_limit=8, recompile_limit=8,
                               accumulated_cache_size_limit=256, verbose=False, capture_scalar_outputs=False,
                               capture_dynamic_output_shape_ops=False, optimize_ddp=True,
                               automatic_dynamic_shapes=True, assume_static_by_default=True)


def optimize(backend="inductor", *, nopython: bool = False, guard_export_fn=None, guard_fail_fn=None,
             disable: bool = False, dynamic=None):
    """The older spelling of torch.compile as a decorator: the function, unchanged."""
    return lambda fn: fn


def mark_dynamic(t, index, *, min=None, max=None) -> None:
    """Marks a dimension as dynamic for the compiler: shapes are always dynamic in eager code."""


def maybe_mark_dynamic(t, index) -> None:
    """As ``mark_dynamic``."""


def mark_static(t, index=None) -> None:
    """Marks a dimension as static for the compiler: nothing to record in eager code."""

