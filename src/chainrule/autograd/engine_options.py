"""torch.autograd's engine switches that chainrule's single-threaded engine has no use for.

torch runs a backward pass on per-device worker threads unless ``set_multithreading_enabled(False)``,
and can replay views during backward. chainrule's engine runs every backward on the calling thread,
so those flags are kept (per thread, set and restored as torch's) for code that sets or queries them,
and change nothing. ``enforce_grad_layout_policy`` does act: the engine reads it when it stores a
leaf's new gradient.
"""

from __future__ import annotations

import threading

from .grad_mode import _GradModeContext

__all__ = ["set_multithreading_enabled", "is_multithreading_enabled", "is_view_replay_enabled", "variable",
           "enforce_grad_layout_policy"]


class _EngineFlags(threading.local):
    def __init__(self) -> None:
        self.multithreading = True
        self.grad_layout_enforced = True  # read by the engine's AccumulateGrad (engine._accumulate)


_flags = _EngineFlags()


def is_multithreading_enabled() -> bool:
    """torch.autograd.is_multithreading_enabled: True unless a ``set_multithreading_enabled(False)``
    is in force on this thread."""
    return _flags.multithreading


def is_view_replay_enabled() -> bool:
    """torch.autograd.is_view_replay_enabled: False, as torch's default (chainrule never replays views)."""
    return False


class _ThreadFlagSwitch(_GradModeContext):
    """Sets one of this thread's engine flags at once (a function call) and, used as a context
    manager or decorator, restores the previous value on exit."""

    _accepts_bare = False
    _flag = ""  # the _EngineFlags attribute a subclass switches

    def __init__(self, mode: bool) -> None:
        self.prev = getattr(_flags, self._flag)
        self.mode = bool(mode)
        setattr(_flags, self._flag, self.mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        setattr(_flags, self._flag, self.prev)

    def _clone(self):
        return self.__class__(self.mode)

    clone = _clone


class set_multithreading_enabled(_ThreadFlagSwitch):
    """torch.autograd.set_multithreading_enabled(mode): sets the flag at once (a function call) and,
    used as a context manager or decorator, restores the previous value on exit."""

    _flag = "multithreading"


class enforce_grad_layout_policy(_ThreadFlagSwitch):
    """torch.autograd.enforce_grad_layout_policy(enable): whether a leaf's new gradient is given the
    leaf's strides (torch's gradient layout contract: a dense, non-overlapping leaf's ``.grad`` has
    the leaf's strides, any other leaf's is row-major). With ``False`` a gradient the engine may
    take over is kept in its own layout instead of copied. Per thread; a call or a context manager."""

    _flag = "grad_layout_enforced"

    def __init__(self, enable: bool = True) -> None:
        super().__init__(enable)


def variable(*args, **kwargs):
    """torch.autograd.variable: torch's deprecated constructor, which only raises."""
    raise RuntimeError("torch.autograd.variable(...) is deprecated, use torch.tensor(...) instead")
