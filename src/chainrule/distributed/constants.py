"""torch.distributed.constants: the default process-group timeouts (Lightning reads them at import)."""

from .distributed_c10d import DEFAULT_TIMEOUT

__all__ = ["default_pg_timeout", "default_pg_nccl_timeout"]

default_pg_timeout = DEFAULT_TIMEOUT
# torch sets this only when built with NCCL; its CPU build (like chainrule, which has no NCCL) has None
default_pg_nccl_timeout = None
