"""torch.xpu: Intel's GPU device, which chainrule does not have. Queries answer as torch built
without XPU answers them (``is_available()`` False, ``device_count()`` 0, seeding and cache
calls do nothing, memory counters 0); what needs the device raises torch's AssertionError."""

from __future__ import annotations

__all__ = ["is_available", "device_count", "is_initialized", "is_bf16_supported", "manual_seed", "manual_seed_all",
           "seed", "seed_all", "empty_cache", "memory_allocated", "memory_reserved", "max_memory_allocated",
           "max_memory_reserved", "synchronize", "current_device", "set_device", "get_device_name",
           "get_device_properties", "get_device_capability", "init", "initial_seed", "get_rng_state",
           "set_rng_state"]

_NOT_COMPILED = "Torch not compiled with XPU enabled"


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Deferred until the device starts, which it never does here: a no-op, as torch's."""


def manual_seed_all(seed: int) -> None:
    """A no-op without the device, as torch's."""


def seed() -> None:
    """A no-op without the device, as torch's."""


def seed_all() -> None:
    """A no-op without the device, as torch's."""


def empty_cache() -> None:
    """Nothing cached without the device."""


def memory_allocated(device=None) -> int:
    return 0


def memory_reserved(device=None) -> int:
    return 0


def max_memory_allocated(device=None) -> int:
    return 0


def max_memory_reserved(device=None) -> int:
    return 0


def _not_compiled(*args, **kwargs):
    raise AssertionError(_NOT_COMPILED)


synchronize = current_device = set_device = get_device_name = get_device_properties = _not_compiled
get_device_capability = init = initial_seed = get_rng_state = set_rng_state = _not_compiled
