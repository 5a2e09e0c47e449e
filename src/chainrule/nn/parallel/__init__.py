"""torch.nn.parallel: DistributedDataParallel (on chainrule.distributed, i.e. MPI)."""

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
