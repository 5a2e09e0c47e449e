"""torch.distributed.nn: collectives that autograd differentiates through."""

from . import functional  # noqa: F401
from .functional import all_reduce  # noqa: F401

__all__ = ["functional", "all_reduce"]
