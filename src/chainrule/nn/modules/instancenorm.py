"""torch.nn.modules.instancenorm: where torch keeps the instance-norm layers (chainrule defines them
in normalization.py; torchvision's RAFT imports InstanceNorm2d from here)."""

from __future__ import annotations

from .lazy import LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d
from .normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, _InstanceNorm

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
           "LazyInstanceNorm3d", "_InstanceNorm"]

# torch defines them here: their typename in errors, their class repr and a pickle name this module
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
