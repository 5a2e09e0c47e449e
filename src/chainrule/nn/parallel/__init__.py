"""torch.nn.parallel: DistributedDataParallel (on chainrule.distributed, i.e. MPI) and DataParallel."""

from .data_parallel import DataParallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
