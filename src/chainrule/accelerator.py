"""chainrule.accelerator: torch.accelerator, the device-agnostic view of the current accelerator.

The only accelerator chainrule knows is a CUDA GPU through CuPy; without one, ``is_available()``
is False, ``current_accelerator()`` is None and device calls raise torch's RuntimeError.
"""

from __future__ import annotations

from . import cuda as _cuda
from ._backend import device as _device

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index",
           "current_device_idx", "set_device_index", "set_device_idx", "device_index", "current_stream",
           "synchronize", "empty_cache", "empty_host_cache", "memory_allocated", "max_memory_allocated",
           "memory_reserved", "max_memory_reserved", "memory_stats", "get_memory_info",
           "reset_peak_memory_stats"]

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


class device_index:  # noqa: N801  (torch's name: a lower-case context-manager class)
    """``with torch.accelerator.device_index(i):`` makes device ``i`` current for the block and
    restores the previous one after; ``None`` switches nothing. Without an accelerator any index
    raises torch's RuntimeError on entering."""

    def __init__(self, device: int | None, /) -> None:
        self.idx = device
        self.prev_idx = -1

    def __enter__(self) -> None:
        if self.idx is None:
            return
        if isinstance(self.idx, bool) or not isinstance(self.idx, int):
            raise TypeError("_accelerator_exchangeDevice(): incompatible function arguments. The following "
                            "argument types are supported:\n    1. (arg0: typing.SupportsInt | "
                            f"typing.SupportsIndex) -> int\n\nInvoked with: {self.idx!r}")
        _require_accelerator()
        self.prev_idx = _cuda.current_device()
        _cuda.set_device(self.idx)

    def __exit__(self, *exc_info: object) -> None:
        if self.idx is not None:
            _cuda.set_device(self.prev_idx)


def current_stream(device=None, /):
    _require_accelerator()
    return _cuda.current_stream(device)


def synchronize(device=None) -> None:
    _require_accelerator()
    _cuda.synchronize(device)


# torch's memory queries all refuse to answer, rather than say 0, when there is no accelerator
def empty_cache() -> None:
    _require_accelerator()
    _cuda.empty_cache()


def empty_host_cache() -> None:
    _require_accelerator()


def memory_allocated(device_index=None, /) -> int:
    _require_accelerator()
    return _cuda.memory_allocated(device_index)


def max_memory_allocated(device_index=None, /) -> int:
    _require_accelerator()
    return _cuda.max_memory_allocated(device_index)


def memory_reserved(device_index=None, /) -> int:
    _require_accelerator()
    return _cuda.memory_reserved(device_index)


def max_memory_reserved(device_index=None, /) -> int:
    _require_accelerator()
    return _cuda.max_memory_reserved(device_index)


def memory_stats(device_index=None, /):
    _require_accelerator()
    return _cuda.memory_stats(device_index)


def get_memory_info(device_index=None, /) -> tuple[int, int]:
    """(free, total) bytes of the device, as ``torch.cuda.mem_get_info``."""
    _require_accelerator()
    return _cuda.mem_get_info(device_index)


def reset_peak_memory_stats(device_index=None, /) -> None:
    _require_accelerator()
    _cuda.reset_peak_memory_stats(device_index)


# ---------------------------------------------------------------- torch.Stream, torch.Event
_NO_CPU_EVENTS = "cpu backend doesn't support events."


def _stream_device(device):
    """The device a torch.Stream/torch.Event is for: the one named, else the current accelerator,
    else the CPU (torch's choice)."""
    if device is None:
        return current_accelerator() or _device("cpu")
    return device if isinstance(device, _device) else _device(device)


class Stream:
    """torch.Stream, the accelerator-generic stream: on a CUDA device it is ``chainrule.cuda.Stream``;
    on the CPU, torch's placeholder — work is already in order, so ``query`` is True and
    ``synchronize``/``wait_event`` do nothing, while event recording raises torch's RuntimeError."""

    def __new__(cls, device=None, *, priority: int = 0):
        place = _stream_device(device)
        if place.type == "cuda":
            return _cuda.Stream(place, priority=priority)
        return super().__new__(cls)

    def __init__(self, device=None, *, priority: int = 0) -> None:
        self.device = _device("cpu")
        self.device_type, self.device_index, self.stream_id = 0, -1, 0

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass

    def wait_event(self, event) -> None:
        pass

    def wait_stream(self, stream) -> None:
        raise RuntimeError(_NO_CPU_EVENTS)

    def record_event(self, event=None):
        raise RuntimeError(_NO_CPU_EVENTS)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and (other.device, other.stream_id) == (self.device, self.stream_id)

    def __hash__(self) -> int:
        return hash((self.device.type, self.stream_id))

    def __repr__(self) -> str:
        return f"torch.Stream device_type=cpu, device_index={self.device_index}, stream_id={self.stream_id}"


class Event:
    """torch.Event, the accelerator-generic event: on a CUDA device it is ``chainrule.cuda.Event``;
    on the CPU, torch's placeholder, which is always done and cannot be recorded."""

    def __new__(cls, device=None, *, enable_timing: bool = False, blocking: bool = False,
                interprocess: bool = False):
        if _stream_device(device).type == "cuda":
            return _cuda.Event(enable_timing=enable_timing, blocking=blocking, interprocess=interprocess)
        return super().__new__(cls)

    def __init__(self, device=None, *, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False) -> None:
        self.device = _device("cpu")
        self.event_id = 0
        self._timing = enable_timing

    def record(self, stream=None) -> None:
        raise RuntimeError(_NO_CPU_EVENTS)

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass

    def wait(self, stream=None) -> None:
        pass

    def elapsed_time(self, end_event) -> float:
        if not (self._timing and getattr(end_event, "_timing", False)):
            raise ValueError("Both events must be created with argument 'enable_timing=True'.")
        raise ValueError("Both events must be recorded before calculating elapsed time.")  # none can be, here

    def __repr__(self) -> str:
        return (f"torch.Event device_type=cpu, device_index=-1, event_flag={int(self._timing)}, "
                f"event_id={self.event_id}")
