"""Grad-mode switches: no_grad, enable_grad, set_grad_enabled, inference_mode.

Each works as a context manager and as a decorator, like torch's: ``@no_grad()`` and bare
``@no_grad`` both work, decorated generator functions run each step under the mode, and
``@set_grad_enabled(False)`` does not leave grad mode changed after decoration. The flag is a
thread-local attribute read on every op, so checking it costs one attribute lookup.
"""

from __future__ import annotations

import functools
import inspect
import threading

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]


class _GradState(threading.local):
    """Per-thread, as torch's: a no_grad block in one thread (a data-loading worker, say) never
    switches recording off in another. Each thread starts with grad mode on."""

    def __init__(self) -> None:
        self.enabled = True
        self.inference = False


state = _GradState()


def is_grad_enabled() -> bool:
    """is_grad_enabled() -> bool

    Whether gradient recording is on in this thread (torch.is_grad_enabled)."""
    return state.enabled


def is_inference_mode_enabled() -> bool:
    return state.inference


def _wrap_generator(make_context, func):
    """Run every step of the generator ``func`` returns under a fresh context (torch does too)."""

    @functools.wraps(func)
    def generator(*args, **kwargs):
        gen = func(*args, **kwargs)
        try:
            with make_context():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with make_context():
                        gen.close()
                    raise
                except BaseException as exc:
                    with make_context():
                        response = gen.throw(exc)
                else:
                    with make_context():
                        response = gen.send(request)
        except StopIteration as stop:
            return stop.value

    return generator


class _GradModeContext:
    """Base: sets the flag on enter, restores the previous value on exit; also a decorator.

    Each decorated call enters a fresh copy (``_clone``), so recursion and threads that share
    one decorator never overwrite each other's saved state.
    """

    _target = True

    def __new__(cls, *args, **kwargs):
        # bare decorator: ``@no_grad`` passes the function itself as the only argument
        if cls._accepts_bare and len(args) == 1 and not kwargs and callable(args[0]) \
                and not isinstance(args[0], bool):
            return cls()(args[0])
        return super().__new__(cls)

    _accepts_bare = False

    def __enter__(self):
        self._previous = state.enabled
        state.enabled = self._target
        return None

    def __exit__(self, *exc) -> None:
        state.enabled = self._previous

    def __call__(self, func):
        make_context = self._clone
        if inspect.isgeneratorfunction(func):
            return _wrap_generator(make_context, func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with make_context():
                return func(*args, **kwargs)

        return wrapper

    def _clone(self):
        return type(self)()


class no_grad(_GradModeContext):
    """Disable gradient recording: ops inside produce tensors with no grad_fn."""

    _target = False
    _accepts_bare = True

    def __init__(self, func=None) -> None:
        pass


class enable_grad(_GradModeContext):
    """Re-enable gradient recording inside a no_grad block."""

    _target = True
    _accepts_bare = True

    def __init__(self, func=None) -> None:
        pass


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode``; takes effect at construction, so it also works as a plain call.

    As a decorator the mode is restored right away and applied only while the function runs.
    """

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, bool):  # torch's binding takes no int, numpy bool or 0-d tensor either
            from .._dtype import parser_type_name

            raise TypeError(f"set_grad_enabled(): argument 'enabled' (position 1) must be bool, "
                            f"not {parser_type_name(mode)}")
        self._previous = state.enabled
        self._target = mode
        state.enabled = self._target

    def __enter__(self):
        state.enabled = self._target
        return None

    def __call__(self, func):
        state.enabled = self._previous
        return super().__call__(func)

    def _clone(self):
        return _SetGradContext(self._target)

    def __repr__(self) -> str:
        return f"chainrule.autograd.grad_mode.set_grad_enabled(mode={self._target})"


class _SetGradContext(_GradModeContext):
    def __init__(self, mode: bool) -> None:
        self._target = mode


class inference_mode(_GradModeContext):
    """Like no_grad (chainrule has no separate inference tensors); ``mode=False`` is a no-op.

    ``inference_mode(True)``, ``inference_mode()`` and bare ``@inference_mode`` all work.
    """

    _accepts_bare = True

    def __init__(self, mode: bool = True) -> None:
        self._mode = bool(mode)

    def __enter__(self):
        self._previous = state.enabled
        self._previous_inference = state.inference
        if self._mode:
            state.enabled = False
            state.inference = True
            if not self._previous_inference and inference_tensors.mark is not None:
                inference_tensors.mark(True)
        return None

    def __exit__(self, *exc) -> None:
        state.enabled = self._previous
        state.inference = self._previous_inference
        if self._mode and not self._previous_inference and inference_tensors.mark is not None:
            inference_tensors.mark(False)

    def _clone(self):
        return inference_mode(self._mode)


# ---------------------------------------------------------------- inference tensors
# A tensor made inside inference_mode is an inference tensor (torch): it has no version counter,
# so it can never be saved for backward, nor written in place outside inference mode. chainrule
# gives it a version counter that says so: ``_vbox`` is INFERENCE_VERSION (its views' too; a
# write reads it through ``_version_box`` as INFERENCE_WRITE). The hot paths already read
# ``_vbox[0]`` of every tensor an op saves, so the check costs nothing, and tensors made outside
# inference_mode are untouched.
_SAVED_ERROR = ("Inference tensors cannot be saved for backward. Please do not use Tensors created in inference "
                "mode in computation tracked by autograd. To work around this, you can make a clone to get a "
                "normal tensor and use it in autograd, or use `torch.no_grad()` instead of `torch.inference_mode()`.")
_INPLACE_ERROR = ("Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone "
                  "to get a normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 "
                  "for more details.")


class _InferenceVersion:
    """An inference tensor's version counter: reading it (what saving for backward does) raises."""

    __slots__ = ()

    def __getitem__(self, index):
        raise RuntimeError(_SAVED_ERROR)

    def __setitem__(self, index, value) -> None:
        pass


class _InferenceWrite:
    """What an in-place write to an inference tensor (or a view of one) bumps: refused outside
    inference mode, a no-op inside it."""

    __slots__ = ()

    def __getitem__(self, index) -> int:
        if not state.inference:
            raise RuntimeError(_INPLACE_ERROR)
        return 0

    def __setitem__(self, index, value) -> None:
        pass


INFERENCE_VERSION = _InferenceVersion()
INFERENCE_WRITE = _InferenceWrite()


class DetachedInference:
    """The ``_vbox`` of ``detach()`` of an inference tensor taken outside inference_mode: torch's
    result is still an inference tensor, which cannot be saved for backward (reading ``_vbox[0]``,
    what saving does, raises), but it may be written in place anywhere, bumping a version counter
    of its own (``counter``, which ``_version_box`` hands to writes and further detaches share).
    Its views are plain inference tensors again, whose writes are refused outside inference mode."""

    __slots__ = ("counter",)

    def __init__(self, counter: list) -> None:
        self.counter = counter

    def __getitem__(self, index):
        raise RuntimeError(_SAVED_ERROR)


class _InferenceTensors:
    """``mark(True)`` makes every new tensor an inference tensor until ``mark(False)``: set by the
    tensor layer (``_methods``), which swaps its constructors while an inference_mode block is open."""

    __slots__ = ("mark",)

    def __init__(self) -> None:
        self.mark = None


inference_tensors = _InferenceTensors()


def check_requires_grad_allowed(box) -> None:
    """torch's error for ``requires_grad_()`` on an inference tensor outside inference mode."""
    if (box is INFERENCE_VERSION or box is INFERENCE_WRITE or type(box) is DetachedInference) and not state.inference:
        raise RuntimeError("Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.")
