"""torch.nn.modules.instancenorm: the instance-norm classes under the module path libraries subclass
them from (PyTorch Geometric's ``InstanceNorm`` extends ``_InstanceNorm``); defined in normalization.py."""

from .lazy import LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d
from .normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, _InstanceNorm

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
           "LazyInstanceNorm3d", "_InstanceNorm"]
