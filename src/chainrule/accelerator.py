"""chainrule.accelerator: torch.accelerator, the device-agnostic view of the current accelerator.

The only accelerator chainrule knows is a CUDA GPU through CuPy; without one, ``is_available()``
is False, ``current_accelerator()`` is None and device calls raise torch's RuntimeError.
"""

from __future__ import annotations

from . import cuda as _cuda
from ._backend import device as _device

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index",
           "current_device_idx", "set_device_index", "set_device_idx", "synchronize", "empty_cache",
           "memory_allocated", "max_memory_allocated", "memory_reserved", "reset_peak_memory_stats"]

_NONE_AVAILABLE = "Cannot access accelerator device when none is available."


def _require_accelerator() -> None:
    if not _cuda.is_available():
        raise RuntimeError(_NONE_AVAILABLE)


def is_available() -> bool:
    return _cuda.is_available()


def current_accelerator(check_available: bool = False):
    """``device('cuda')`` when a GPU is usable, else None."""
    return _device("cuda") if _cuda.is_available() else None


def device_count() -> int:
    return _cuda.device_count()


def current_device_index() -> int:
    _require_accelerator()
    return _cuda.current_device()


current_device_idx = current_device_index


def set_device_index(device) -> None:
    _require_accelerator()
    _cuda.set_device(device)


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    _require_accelerator()
    _cuda.synchronize(device)


def empty_cache() -> None:
    _cuda.empty_cache()


def memory_allocated(device_index=None) -> int:
    return _cuda.memory_allocated(device_index)


def max_memory_allocated(device_index=None) -> int:
    return _cuda.max_memory_allocated(device_index)


def memory_reserved(device_index=None) -> int:
    return _cuda.memory_reserved(device_index)


def reset_peak_memory_stats(device_index=None) -> None:
    _require_accelerator()
    _cuda.reset_peak_memory_stats(device_index)
