"""torch.distributed.algorithms.ddp_comm_hooks: communication hooks for
``DistributedDataParallel.register_comm_hook`` (``default_hooks``: all-reduce, float16 compression)."""

from . import default_hooks

__all__ = ["default_hooks"]
