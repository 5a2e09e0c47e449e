"""chainrule.cuda: torch.cuda's names, answered by CuPy when it is installed and sees a GPU.

Without CuPy or a GPU every answer is the one a CPU-only torch build gives: ``is_available()``
is False, ``device_count()`` is 0, seeding and the memory counters quietly work (0 bytes), and
calls that need a device raise ``AssertionError`` as torch's ``_lazy_init`` does.

With a GPU the answers come from CuPy's runtime and memory pool (the peak counters from the
tracking allocator in ``cuda/memory.py``). Random tensors for ``device='cuda'`` are drawn on the
device from that device's own generator (``ops/random.py``), so the CUDA seeding functions seed
those generators and leave the CPU stream alone, as torch's do; on a machine without a GPU they
do nothing, as in torch.
"""

from __future__ import annotations

import types

from .. import _backend
from .._backend import cuda_available
from .._backend import device as _device
from ..ops import random as _random
from . import amp, nvtx  # noqa: F401
from .memory import PeakTracker

__all__ = ["OutOfMemoryError", "is_available", "is_initialized", "init", "device_count", "current_device", "set_device", "device",
           "synchronize", "manual_seed", "manual_seed_all", "seed", "seed_all", "initial_seed", "get_rng_state",
           "get_rng_state_all", "set_rng_state", "set_rng_state_all", "default_generators",
           "memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
           "reset_peak_memory_stats", "memory_stats", "mem_get_info", "empty_cache", "Event", "Stream",
           "current_stream", "default_stream", "stream", "get_device_name", "get_device_properties",
           "get_device_capability", "is_bf16_supported", "get_arch_list", "amp"]

_NO_GPU = ("chainrule.cuda: no CUDA GPU is available (CuPy is not installed or sees no device; "
           "install it with pip install 'chainrule[cuda13]' (or [cuda12], see docs/gpu.md) on a machine with an "
           "NVIDIA GPU)")


class OutOfMemoryError(RuntimeError):
    """torch.cuda.OutOfMemoryError (also torch.OutOfMemoryError): what scripts catch to retry with a
    smaller batch. CuPy reports an exhausted device as its own ``cupy.cuda.memory.OutOfMemoryError``
    (a MemoryError), which is not translated: ``except (torch.OutOfMemoryError, MemoryError)`` catches both."""


def _cupy():
    """The CUDA array module from the seam (``_backend.cuda_module``: CuPy, or the CPU stand-in in
    test mode), or CuPy itself on a seam that does not offer it yet."""
    cuda_module = getattr(_backend, "cuda_module", None)
    return cuda_module() if cuda_module is not None else _backend._cupy()


# torch counts the peak from the first allocation; CuPy keeps no peak, so chainrule counts it
# from the moment the first chainrule.cuda call finds a GPU (usually ``is_available()``)
_peak = PeakTracker()


def _runtime():
    """CuPy when it is installed and sees at least one GPU, else None."""
    if not cuda_available():
        return None
    cp = _cupy()
    _peak.install(cp)
    return cp


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
    return _runtime() is not None


def is_initialized() -> bool:
    return is_available()


def init() -> None:
    _require_gpu()


def device_count() -> int:
    cp = _runtime()
    return 0 if cp is None else int(cp.cuda.runtime.getDeviceCount())


def current_device() -> int:
    """The selected device (CuPy's current one follows the data; see _backend.follow_device)."""
    return _backend.selected_gpu.of(_require_gpu())


def _check_ordinal(cp, index: int) -> int:
    """``index``, or torch's "invalid device ordinal" RuntimeError when the machine lacks that GPU."""
    count = int(cp.cuda.runtime.getDeviceCount())
    if index >= count:
        raise _backend.invalid_ordinal(f"cuda:{index}", count)
    return index


def set_device(device) -> None:
    """Make ``device`` current; a negative index is ignored, as in torch; an index the machine lacks
    raises "CUDA error: invalid device ordinal"."""
    index = _index_without_runtime(device)  # a non-CUDA device is a ValueError before anything else
    if index < 0:
        return
    cp = _require_gpu()
    index = _check_ordinal(cp, index)
    cp.cuda.runtime.setDevice(index)
    _backend.selected_gpu.set(cp, index)


class device:
    """torch.cuda.device: a context manager that makes ``device`` current and restores the previous
    one on exit. ``None`` or a negative index does nothing, as in torch."""

    def __init__(self, device) -> None:
        self.index = -1 if device is None else _index_without_runtime(device)
        self.previous = -1

    def __enter__(self):
        if self.index < 0:
            return self
        cp = _runtime()
        if cp is None:
            raise RuntimeError("chainrule.cuda.device needs a CUDA GPU; " + _NO_GPU)
        _check_ordinal(cp, self.index)
        self.previous = _backend.selected_gpu.of(cp)
        cp.cuda.runtime.setDevice(self.index)
        _backend.selected_gpu.set(cp, self.index)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.index >= 0 and self.previous >= 0:
            cp = _cupy()
            cp.cuda.runtime.setDevice(self.previous)
            _backend.selected_gpu.set(cp, self.previous)


def _index_without_runtime(device) -> int:
    """``_index`` for a device given at construction time, before any GPU is asked: 'cuda' without
    an index means the current device, so entering it changes nothing (-1)."""
    if isinstance(device, int):
        return device
    dev = _device(device)
    if dev.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {dev}")
    return dev.index if dev.index is not None else -1


def synchronize(device=None) -> None:
    """Wait for all work queued on ``device`` (the current one by default)."""
    cp = _require_gpu()
    cp.cuda.Device(_index(device)).synchronize()


def manual_seed(seed: int) -> None:
    """Seed the current device's generator only (the CPU stream is unchanged), as torch's does;
    nothing without a GPU."""
    seed = int(seed)
    if _runtime() is not None:
        _random.cuda_default_generator(current_device()).manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    """Seed every device's generator (the CPU stream is unchanged)."""
    _random.cuda_manual_seed_all(int(seed))


def seed() -> None:
    """Seed the current device's generator from the operating system's entropy."""
    if _runtime() is not None:
        _random.cuda_default_generator(current_device()).seed()


def seed_all() -> None:
    """Seed every device's generator with one seed from the operating system's entropy."""
    if _runtime() is not None:
        _random.cuda_manual_seed_all(_random.Generator().seed())


def initial_seed() -> int:
    """The seed of the current device's generator; needs a GPU, as in torch."""
    _require_gpu()
    return _random.cuda_default_generator(current_device()).initial_seed()


def get_rng_state(device="cuda"):
    """The state of ``device``'s generator as a CPU uint8 tensor (torch's 16 bytes: seed and
    offset); needs a GPU, as in torch."""
    _require_gpu()
    return _random.cuda_default_generator(_index(device)).get_state()


def set_rng_state(new_state, device="cuda") -> None:
    """Restore ``device``'s generator from ``get_rng_state``; nothing without a GPU (torch queues
    it for a CUDA initialisation that never comes)."""
    if _runtime() is not None:
        _random.cuda_default_generator(_index(device)).set_state(new_state)


def get_rng_state_all() -> list:
    return [get_rng_state(index) for index in range(device_count())]


def set_rng_state_all(new_states) -> None:
    for index, state in enumerate(new_states):
        set_rng_state(state, index)


def __getattr__(name: str):
    # torch.cuda.default_generators: one per device, () without a GPU
    if name == "default_generators":
        return tuple(_random.cuda_default_generator(index) for index in range(device_count()))
    raise AttributeError(f"module 'chainrule.cuda' has no attribute {name!r}")


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
    """The peak of ``memory_allocated`` since the tracker was installed or last reset (see
    ``cuda/memory.py``). Where CuPy's allocator cannot be wrapped, the pool's held bytes, an upper
    bound: the pool keeps every block it ever held until ``empty_cache``. 0 without a GPU."""
    pool = _memory_pool()
    if pool is None:
        return 0
    return _peak.peak_allocated(pool) if _peak.installed else int(pool.total_bytes())


def max_memory_reserved(device=None) -> int:
    """The peak of ``memory_reserved``, counted as ``max_memory_allocated`` is; 0 without a GPU."""
    pool = _memory_pool()
    if pool is None:
        return 0
    return _peak.peak_reserved(pool) if _peak.installed else int(pool.total_bytes())


def reset_peak_memory_stats(device=None) -> None:
    """Start the peak counters again from the present usage. Needs a GPU (torch's CPU build has no
    statistics to reset)."""
    _require_gpu()
    _peak.reset(_memory_pool())


def memory_stats(device=None) -> dict:
    """The counters torch's ``memory_stats`` names most often (allocated/reserved bytes, current
    and peak); an empty dict without a GPU, as on torch's CPU build."""
    if _runtime() is None:
        return {}
    return {"allocated_bytes.all.current": memory_allocated(device),
            "allocated_bytes.all.peak": max_memory_allocated(device),
            "reserved_bytes.all.current": memory_reserved(device),
            "reserved_bytes.all.peak": max_memory_reserved(device)}


def mem_get_info(device=None) -> tuple:
    """(free, total) bytes of the device, from the driver."""
    cp = _require_gpu()
    with cp.cuda.Device(_index(device)):
        free, total = cp.cuda.runtime.memGetInfo()
    return int(free), int(total)


def empty_cache() -> None:
    """Return the pool's unused blocks to the driver; a no-op without a GPU, as in torch."""
    pool = _memory_pool()
    if pool is not None:
        pool.free_all_blocks()


def get_device_properties(device=None) -> types.SimpleNamespace:
    """name, total_memory (bytes), major, minor and multi_processor_count of a GPU."""
    cp = _require_gpu()
    index = _index(device)
    if not 0 <= index < int(cp.cuda.runtime.getDeviceCount()):
        raise AssertionError("Invalid device id")  # torch's words
    props = cp.cuda.runtime.getDeviceProperties(index)
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
    """Whether bfloat16 tensors can live on the GPU: a GPU, ml_dtypes, and CuPy 14 or later (whose
    bfloat16 support, through ml_dtypes, is experimental: cupy/cupy#9494; cupyx kernels lack it).
    On CuPy 13 a bfloat16 tensor moved to 'cuda' raises a TypeError saying so."""
    from .. import _dtype

    if not is_available() or not _dtype.has_bfloat16():
        return False
    if _backend._gpu.standin:  # the CPU stand-in follows CuPy 14's documented support
        return True
    return int(str(_cupy().__version__).split(".")[0]) >= 14


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

    def record(self, stream: Stream | None = None) -> None:
        self._event.record(None if stream is None else stream._stream)

    def synchronize(self) -> None:
        self._event.synchronize()

    def query(self) -> bool:
        return bool(self._event.done)

    def elapsed_time(self, end_event: Event) -> float:
        return float(_cupy().cuda.get_elapsed_time(self._event, end_event._event))


class Stream:
    """torch.cuda.Stream over ``cupy.cuda.Stream``: ``synchronize``, ``query``, ``wait_event``,
    ``wait_stream``, ``record_event``, and ``with stream:`` (or ``chainrule.cuda.stream(s)``) to
    queue work on it. Needs a GPU, as torch's does. ``priority`` is accepted and ignored."""

    def __init__(self, device=None, priority: int = 0, *, _cupy_stream=None) -> None:
        cp = _runtime()
        if cp is None:
            raise RuntimeError("chainrule.cuda.Stream needs a CUDA GPU; " + _NO_GPU)
        if _cupy_stream is None:
            with cp.cuda.Device(_index(device)):
                _cupy_stream = cp.cuda.Stream(non_blocking=True)
        self._stream = _cupy_stream

    def synchronize(self) -> None:
        self._stream.synchronize()

    def query(self) -> bool:
        return bool(self._stream.done)

    def wait_event(self, event: Event) -> None:
        self._stream.wait_event(event._event)

    def wait_stream(self, stream: Stream) -> None:
        self._stream.wait_event(stream._stream.record())

    def record_event(self, event: Event | None = None) -> Event:
        event = event if event is not None else Event()
        event.record(self)
        return event

    def __enter__(self) -> Stream:
        self._stream.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stream.__exit__(*exc_info)

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and self._stream.ptr == other._stream.ptr

    def __hash__(self) -> int:
        return hash(self._stream.ptr)


def current_stream(device=None) -> Stream:
    """The stream CuPy queues work on now (the null stream unless a ``with stream`` is active)."""
    return Stream(_cupy_stream=_require_gpu().cuda.get_current_stream())


def default_stream(device=None) -> Stream:
    """The device's null stream."""
    return Stream(_cupy_stream=_require_gpu().cuda.Stream.null)


class stream:
    """torch.cuda.stream(s): queue work on ``s`` inside the block; ``None`` does nothing."""

    def __init__(self, s: Stream | None) -> None:
        self.stream = s

    def __enter__(self) -> Stream | None:
        if self.stream is not None:
            self.stream.__enter__()
        return self.stream

    def __exit__(self, *exc_info) -> None:
        if self.stream is not None:
            self.stream.__exit__(*exc_info)
