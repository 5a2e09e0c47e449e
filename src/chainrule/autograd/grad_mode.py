"""Grad-mode switches: no_grad, enable_grad, set_grad_enabled, inference_mode.

Each works as a context manager and as a decorator, like torch's. The flag is a plain
module attribute read on every op, so checking it costs one attribute lookup.
"""

from __future__ import annotations

import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]


class _GradState:
    __slots__ = ("enabled", "inference")

    def __init__(self) -> None:
        self.enabled = True
        self.inference = False


state = _GradState()


def is_grad_enabled() -> bool:
    return state.enabled


def is_inference_mode_enabled() -> bool:
    return state.inference


class _GradModeContext:
    """Base: sets the flag on enter, restores the previous value on exit; also a decorator."""

    _target = True

    def __enter__(self):
        self._previous = state.enabled
        state.enabled = self._target
        return self

    def __exit__(self, *exc) -> None:
        state.enabled = self._previous

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self._clone():
                return func(*args, **kwargs)

        return wrapper

    def _clone(self):
        return type(self)()


class no_grad(_GradModeContext):
    """Disable gradient recording: ops inside produce tensors with no grad_fn."""

    _target = False


class enable_grad(_GradModeContext):
    """Re-enable gradient recording inside a no_grad block."""

    _target = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode``; takes effect at construction, like torch's."""

    def __init__(self, mode: bool) -> None:
        self._previous = state.enabled
        self._target = bool(mode)
        state.enabled = self._target

    def __enter__(self):
        return self

    def _clone(self):
        return _SetGradContext(self._target)


class _SetGradContext(_GradModeContext):
    def __init__(self, mode: bool) -> None:
        self._target = mode


class inference_mode(_GradModeContext):
    """Like no_grad (chainrule has no separate inference tensors); ``mode=False`` is a no-op."""

    def __init__(self, mode: bool = True) -> None:
        self._mode = bool(mode)
        self._target = not mode if mode else None

    def __enter__(self):
        self._previous = state.enabled
        self._previous_inference = state.inference
        if self._mode:
            state.enabled = False
            state.inference = True
        return self

    def __exit__(self, *exc) -> None:
        state.enabled = self._previous
        state.inference = self._previous_inference

    def _clone(self):
        return inference_mode(self._mode)
