"""torch.nn.parallel: DistributedDataParallel (on chainrule.distributed, i.e. MPI) and DataParallel."""

from . import scatter_gather as scatter_gather  # torch binds it on import
from .data_parallel import DataParallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
