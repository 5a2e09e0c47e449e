"""torch.mps: Apple's Metal device, which chainrule does not have. What a script asks before it
chooses a device answers as torch's answers on a machine without MPS (``is_available()`` False,
``device_count()`` 0, ``manual_seed`` a no-op); what needs the device raises torch's RuntimeError."""

from __future__ import annotations

__all__ = ["is_available", "device_count", "manual_seed", "seed", "synchronize", "empty_cache", "get_rng_state",
           "set_rng_state", "current_allocated_memory", "driver_allocated_memory", "recommended_max_memory",
           "set_per_process_memory_fraction"]


def _no_backend(function: str):
    def refuse(*args, **kwargs):
        raise RuntimeError(f"Cannot execute {function}() without MPS backend.")

    return refuse


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """A no-op without the device, as torch's."""


seed = _no_backend("getDefaultGenerator")
get_rng_state = _no_backend("getDefaultGenerator")
set_rng_state = _no_backend("getDefaultGenerator")
synchronize = _no_backend("deviceSynchronize")
empty_cache = _no_backend("emptyCache")
current_allocated_memory = _no_backend("getCurrentAllocatedMemory")
driver_allocated_memory = _no_backend("getDriverAllocatedMemory")
recommended_max_memory = _no_backend("getRecommendedMaxMemory")
set_per_process_memory_fraction = _no_backend("setMemoryFraction")
