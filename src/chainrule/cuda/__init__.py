"""chainrule.cuda: torch.cuda's names, answered by CuPy when it is installed and sees a GPU.

Without CuPy or a GPU every answer is the one a CPU-only torch build gives: ``is_available()``
is False, ``device_count()`` is 0, seeding and the memory counters quietly work (0 bytes), and
calls that need a device raise ``AssertionError`` as torch's ``_lazy_init`` does.

With a GPU the answers come from CuPy's runtime and memory pool. chainrule draws random tensors
for ``device='cuda'`` from the default (host) generator and copies them over, so the CUDA seeding
functions seed that generator there; on a machine without a GPU they do nothing, as in torch.
"""

from __future__ import annotations

import types

from .._backend import _cupy, cuda_available
from .._backend import device as _device
from . import amp  # noqa: F401

__all__ = ["is_available", "is_initialized", "init", "device_count", "current_device", "set_device",
           "synchronize", "manual_seed", "manual_seed_all", "seed", "seed_all", "memory_allocated",
           "max_memory_allocated", "memory_reserved", "max_memory_reserved", "reset_peak_memory_stats",
           "empty_cache", "Event", "get_device_name", "get_device_properties", "get_device_capability",
           "is_bf16_supported", "get_arch_list", "amp"]

_NO_GPU = ("chainrule.cuda: no CUDA GPU is available (CuPy is not installed or sees no device; "
           "install it with pip install 'chainrule[cuda]' on a machine with an NVIDIA GPU)")


def _runtime():
    """CuPy when it is installed and sees at least one GPU, else None."""
    return _cupy() if cuda_available() else None


def _require_gpu():
    """CuPy, or torch's AssertionError for a call that needs a device on a machine without one."""
    cp = _runtime()
    if cp is None:
        raise AssertionError(_NO_GPU)
    return cp


def _index(device) -> int:
    """The device index of ``device`` (None, an int, 'cuda:1' or a chainrule.device)."""
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    dev = _device(device)
    if dev.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {dev}")
    return dev.index if dev.index is not None else current_device()


def is_available() -> bool:
    """True when CuPy is installed and sees a GPU."""
    return cuda_available()


def is_initialized() -> bool:
    return is_available()


def init() -> None:
    _require_gpu()


def device_count() -> int:
    cp = _runtime()
    return 0 if cp is None else int(cp.cuda.runtime.getDeviceCount())


def current_device() -> int:
    return int(_require_gpu().cuda.runtime.getDevice())


def set_device(device) -> None:
    """Make ``device`` current; a negative index is ignored, as in torch."""
    if isinstance(device, int) and device < 0:
        return
    cp = _require_gpu()
    cp.cuda.runtime.setDevice(_index(device))


def synchronize(device=None) -> None:
    """Wait for all work queued on ``device`` (the current one by default)."""
    cp = _require_gpu()
    cp.cuda.Device(_index(device)).synchronize()


def manual_seed(seed: int) -> None:
    if _runtime() is not None:
        from ..ops.random import manual_seed as _seed_default_generator

        _seed_default_generator(seed)


manual_seed_all = manual_seed


def seed() -> None:
    if _runtime() is not None:
        from ..ops.random import seed as _reseed_default_generator

        _reseed_default_generator()


seed_all = seed


def _memory_pool():
    cp = _runtime()
    return None if cp is None else cp.get_default_memory_pool()


def memory_allocated(device=None) -> int:
    """Bytes held by live CUDA arrays (CuPy's pool ``used_bytes``); 0 without a GPU."""
    pool = _memory_pool()
    return 0 if pool is None else int(pool.used_bytes())


def memory_reserved(device=None) -> int:
    """Bytes the caching allocator holds (CuPy's pool ``total_bytes``); 0 without a GPU."""
    pool = _memory_pool()
    return 0 if pool is None else int(pool.total_bytes())


def max_memory_allocated(device=None) -> int:
    """An upper bound on the peak of ``memory_allocated``: CuPy's pool records no peak, but it
    keeps every block it ever held until ``empty_cache``, so the bytes it holds bound the peak
    since the last ``empty_cache``. 0 without a GPU."""
    return memory_reserved(device)


max_memory_reserved = memory_reserved


def reset_peak_memory_stats(device=None) -> None:
    """The peak is bounded by the pool's held bytes (see ``max_memory_allocated``), so nothing
    needs resetting; without a GPU there are no statistics, as on torch's CPU build."""
    _require_gpu()


def empty_cache() -> None:
    """Return the pool's unused blocks to the driver; a no-op without a GPU, as in torch."""
    pool = _memory_pool()
    if pool is not None:
        pool.free_all_blocks()


def get_device_properties(device=None) -> types.SimpleNamespace:
    """name, total_memory (bytes), major, minor and multi_processor_count of a GPU."""
    cp = _require_gpu()
    props = cp.cuda.runtime.getDeviceProperties(_index(device))
    name = props["name"]
    return types.SimpleNamespace(
        name=name.decode() if isinstance(name, bytes) else str(name),
        total_memory=int(props["totalGlobalMem"]), major=int(props["major"]), minor=int(props["minor"]),
        multi_processor_count=int(props["multiProcessorCount"]))


def get_device_name(device=None) -> str:
    return get_device_properties(device).name


def get_device_capability(device=None) -> tuple:
    props = get_device_properties(device)
    return (props.major, props.minor)


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: chainrule has no bfloat16 dtype on any device."""
    return False


def get_arch_list() -> list:
    return []


class Event:
    """torch.cuda.Event over ``cupy.cuda.Event``: ``record``, ``synchronize``, ``query`` and
    ``elapsed_time`` (milliseconds). Needs a GPU, as torch's does."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False) -> None:
        cp = _runtime()
        if cp is None:
            raise RuntimeError("chainrule.cuda.Event needs a CUDA GPU; " + _NO_GPU)
        self._event = cp.cuda.Event(block=blocking, disable_timing=not enable_timing,
                                    interprocess=interprocess)

    def record(self, stream=None) -> None:
        self._event.record(stream)

    def synchronize(self) -> None:
        self._event.synchronize()

    def query(self) -> bool:
        return bool(self._event.done)

    def elapsed_time(self, end_event: Event) -> float:
        return float(_cupy().cuda.get_elapsed_time(self._event, end_event._event))
