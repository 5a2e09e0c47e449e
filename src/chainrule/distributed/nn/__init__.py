"""torch.distributed.nn: collectives that autograd differentiates through."""

from . import functional  # noqa: F401
from .functional import all_gather, all_reduce, all_to_all_single, broadcast, reduce_scatter  # noqa: F401

__all__ = ["functional", "all_gather", "all_reduce", "all_to_all_single", "broadcast", "reduce_scatter"]
