"""torch.distributed.tensor.experimental: ``implicit_replication``, which opacus's FSDP optimizers
import at load time."""

import contextlib
from collections.abc import Iterator

__all__ = ["implicit_replication"]


@contextlib.contextmanager
def implicit_replication() -> Iterator[None]:
    """torch lets DTensor ops treat plain tensors as replicated inside this block; chainrule has
    no DTensor ops (no tensor is ever a DTensor), so there is nothing to switch and the block just runs."""
    yield
