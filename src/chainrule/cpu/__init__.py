"""torch.cpu: the CPU as a device module, with the functions scripts call on any device module
(``getattr(torch, device_type).synchronize()``, ``.device_count()``, ``.is_available()``). The CPU
runs every op to completion before it returns, so streams and events are there to be named and
entered and have nothing to wait for."""

from __future__ import annotations

from . import amp

__all__ = ["amp", "is_available", "is_initialized", "device_count", "current_device", "set_device", "synchronize",
           "Stream", "StreamContext", "Event", "current_stream", "stream"]


def is_available() -> bool:
    """Always True: chainrule always has the CPU."""
    return True


def is_initialized() -> bool:
    return True


def device_count() -> int:
    """1: torch counts the CPU as one device."""
    return 1


def current_device() -> str:
    return "cpu"


def set_device(device) -> None:
    """Nothing to select: there is one CPU device (torch ignores the argument too)."""


def synchronize(device=None) -> None:
    """Nothing to wait for: a CPU op has finished when it returns."""


class Stream:
    """torch.cpu.Stream: the one, always-idle stream of the CPU."""

    def __init__(self, priority: int = -1) -> None:
        self.priority = priority

    def wait_stream(self, stream) -> None:
        """Nothing to wait for on the CPU."""

    def wait_event(self, event) -> None:
        """Nothing to wait for on the CPU."""

    def record_event(self, event=None):
        return event if event is not None else Event()


class Event:
    """torch.cpu.Event: complete as soon as it is recorded."""

    def record(self, stream=None) -> None:
        """Recorded: the work before it is done already."""

    def wait(self, stream=None) -> None:
        """Nothing to wait for on the CPU."""

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        """Nothing to wait for on the CPU."""


_current_stream = Stream()


def current_stream(device=None) -> Stream:
    return _current_stream


class StreamContext:
    """torch.cpu.StreamContext: ``with torch.cpu.stream(s):`` — the CPU has one stream, so it changes nothing."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc) -> None:
        return None


def stream(stream) -> StreamContext:
    return StreamContext(stream)
