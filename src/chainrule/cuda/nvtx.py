"""torch.cuda.nvtx: NVTX ranges and marks for GPU profilers, answered by CuPy's NVTX bindings
when CuPy is installed with them. Without them every call raises as a CPU-only torch build's
stub does; importing the module (asdl imports it at package import) always works."""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["range_push", "range_pop", "range_start", "range_end", "mark", "range"]

_NOT_INSTALLED = "NVTX functions not installed. Are you sure you have a CUDA build?"


def _nvtx():
    """CuPy's NVTX module, or None."""
    try:
        from cupy.cuda import nvtx
    except Exception:  # no CuPy, or one built without NVTX
        return None
    return nvtx if getattr(nvtx, "available", True) else None


def _required():
    nvtx = _nvtx()
    if nvtx is None:
        raise RuntimeError(_NOT_INSTALLED)
    return nvtx


_depth = 0  # torch returns the nesting depth from range_push and range_pop


def range_push(msg: str) -> int:
    """Open a nested range named ``msg``; returns the depth of the range opened (0 for the outermost)."""
    global _depth
    _required().RangePush(msg)
    _depth += 1
    return _depth - 1


def range_pop() -> int:
    """Close the innermost range; returns the depth of the range closed."""
    global _depth
    _required().RangePop()
    _depth -= 1
    return _depth


def range_start(msg: str) -> int:
    """Open a range that may end on another thread: its handle for ``range_end``."""
    nvtx = _nvtx()  # torch's stub has no range functions: an AttributeError, not the RuntimeError
    if nvtx is None or not hasattr(nvtx, "RangeStart"):
        raise AttributeError("'_NVTXStub' object has no attribute 'rangeStartA'")
    return nvtx.RangeStart(msg)


def range_end(range_id: int) -> None:
    nvtx = _nvtx()
    if nvtx is None or not hasattr(nvtx, "RangeEnd"):
        raise AttributeError("'_NVTXStub' object has no attribute 'rangeEnd'")
    nvtx.RangeEnd(range_id)


def mark(msg: str) -> None:
    """An instantaneous event named ``msg``."""
    _required().Mark(msg)


@contextmanager
def range(msg: str, *args, **kwargs):  # noqa: A001 - torch's name
    """A range around the block, its name ``msg.format(*args, **kwargs)``."""
    range_push(msg.format(*args, **kwargs))
    try:
        yield
    finally:
        range_pop()
