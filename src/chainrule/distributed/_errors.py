"""torch.distributed's exception classes (torch's ``c10::DistError`` family): every one is a
``RuntimeError``, so code that catches RuntimeError around a collective or a store keeps working."""

from __future__ import annotations

__all__ = ["DistError", "DistBackendError", "DistNetworkError", "DistStoreError"]


class DistError(RuntimeError):
    """A failure in torch.distributed."""


class DistBackendError(DistError):
    """A failure of the communication backend (a collective that could not complete)."""


class DistNetworkError(DistError):
    """A socket could not connect, or a connection broke (a TCPStore client, for example)."""


class DistStoreError(DistError):
    """A store operation failed: a key did not appear before the store's timeout."""
