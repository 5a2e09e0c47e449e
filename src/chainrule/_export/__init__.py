"""torch._export: only ``wrappers``, the decorator tensor subclasses put on their ``__init__``."""

from . import wrappers

__all__ = ["wrappers"]
