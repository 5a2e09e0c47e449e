"""torch.fx.experimental: ``proxy_tensor.make_fx`` (the aten-level graph of a function, recorded
through the ``__torch_dispatch__`` layer) and the ``symbolic_shapes`` helpers code imports to
test sizes, which here always hold plain ints."""

from __future__ import annotations

from . import proxy_tensor, symbolic_shapes

__all__ = ["proxy_tensor", "symbolic_shapes"]
