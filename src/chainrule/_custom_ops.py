"""torch._custom_ops: torch's first custom-operator interface, kept for the libraries that still
import it. torchvision's fake kernels ask it for ``get_ctx()`` (the fake-kernel context, which
chainrule has only inside opcheck); the rest is torch.library's (chainrule.library)."""

from __future__ import annotations

from .library import get_ctx, impl_abstract, infer_schema

__all__ = ["get_ctx", "impl_abstract", "infer_schema"]
