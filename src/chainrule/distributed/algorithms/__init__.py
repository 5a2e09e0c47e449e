"""torch.distributed.algorithms: the Join context manager for training on uneven inputs."""

from .join import Join, Joinable, JoinHook

__all__ = ["Join", "JoinHook", "Joinable"]
