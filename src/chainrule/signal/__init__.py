"""torch.signal: its ``windows`` namespace."""

from . import windows

__all__ = ["windows"]
