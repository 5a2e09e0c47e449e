"""torch.utils.data._utils: where torch keeps the DataLoader's helpers (libraries import the
collate functions from ``_utils.collate``)."""

from . import collate

__all__ = ["collate"]
