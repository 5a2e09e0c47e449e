"""chainrule.utils: data loading (``chainrule.utils.data``), as ``torch.utils``."""

from . import data

__all__ = ["data"]
