"""Arrays in shared memory, for ``Tensor.share_memory_()`` and ``Module.share_memory()``.

A shared array lives in a named POSIX shared-memory segment (``multiprocessing.shared_memory``).
A child started with ``fork`` maps the same pages; one started with ``spawn`` receives the
segment's name, offset, shape and strides instead of a copy (chainrule.multiprocessing registers
that reduction, as torch.multiprocessing does), so in-place updates — Hogwild training — are
seen by every process. Segments are created once and kept for the life of the creating process,
which unlinks them when it exits.
"""

from __future__ import annotations

import atexit
import os
import sys

import numpy as np

from ._backend import memory_order

# name -> (segment, address of its first byte, size); kept open so the arrays stay valid
_segments: dict[str, tuple] = {}
# the segments this process made, with its pid: a forked child inherits the list, not the duty
_created: list[str] = []
_creator = os.getpid()


@atexit.register
def _unlink_created() -> None:
    if os.getpid() != _creator:
        return
    for name in _created:
        try:
            _segments[name][0].unlink()
        except (FileNotFoundError, KeyError):
            pass


def _address(segment) -> int:
    return np.frombuffer(segment.buf, dtype=np.uint8).ctypes.data


def to_shared(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` in a new shared-memory segment: row-major, or laid out as ``array`` is
    when that is dense in another order (channels-last), as torch moves the storage itself."""
    from multiprocessing import shared_memory  # on first use: most programs share nothing

    segment = shared_memory.SharedMemory(create=True, size=max(array.nbytes, 1))
    _segments[segment.name] = (segment, _address(segment), segment.size)
    _created.append(segment.name)
    order = memory_order(array)
    if order is None:
        shared = np.ndarray(array.shape, dtype=array.dtype, buffer=segment.buf)
    else:
        in_order = np.ndarray(tuple(array.shape[d] for d in order), dtype=array.dtype, buffer=segment.buf)
        shared = in_order.transpose(np.argsort(order))
    shared[...] = array
    return shared


def location(array) -> tuple[str, int] | None:
    """(segment name, byte offset) when ``array``'s memory is a shared segment, else None."""
    if not isinstance(array, np.ndarray) or not _segments:
        return None
    start = array.__array_interface__["data"][0]
    for name, (_, address, size) in _segments.items():
        if address <= start < address + size:
            return name, start - address
    return None


def attach(name: str, offset: int, shape: tuple, dtype: str, strides: tuple) -> np.ndarray:
    """The array another process put in segment ``name``."""
    from multiprocessing import resource_tracker, shared_memory

    if name in _segments:
        segment = _segments[name][0]
    else:
        if sys.version_info >= (3, 13):
            segment = shared_memory.SharedMemory(name=name, track=False)
        else:
            # before 3.13 attaching registers the segment for removal when this process ends,
            # which would take it away from the process that made it. Unregistering afterwards
            # is no cure: a spawned child shares its parent's tracker, so that drops the
            # creator's own registration and the creator's unlink at exit makes the tracker
            # print a KeyError per segment. So the attach does not register at all.
            register = resource_tracker.register
            resource_tracker.register = lambda name, rtype: None
            try:
                segment = shared_memory.SharedMemory(name=name)
            finally:
                resource_tracker.register = register
        _segments[name] = (segment, _address(segment), segment.size)
    return np.ndarray(shape, dtype=np.dtype(dtype), buffer=segment.buf, offset=offset, strides=strides)
