"""torch.nn.modules.batchnorm: the batch-norm classes under the module path libraries import them from
(Lightning's BaseFinetuning tests ``isinstance(m, _BatchNorm)``); they are defined in normalization.py."""

from .lazy import LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, _LazyNormBase
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm, _NormBase
from .sync_batchnorm import SyncBatchNorm

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
           "SyncBatchNorm", "_BatchNorm", "_LazyNormBase", "_NormBase"]

# torch defines them here: their typename in errors, their class repr and a pickle name this module
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
