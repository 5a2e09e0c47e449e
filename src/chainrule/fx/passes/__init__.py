"""torch.fx.passes: analyses run over a traced GraphModule (``shape_prop.ShapeProp``)."""

from . import shape_prop

__all__ = ["shape_prop"]
