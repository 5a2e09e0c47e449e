"""torch._custom_op.impl: ``get_ctx``, the fake-kernel context (chainrule.library.get_ctx)."""

from __future__ import annotations

from ..library.operators import get_ctx

__all__ = ["get_ctx"]
