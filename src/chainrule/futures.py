"""torch.futures: ``Future``, a result that another thread (or a later step) fills in, and
``collect_all``/``wait_all`` over several.

torch's RPC and distributed code hand these around; libraries built on them name
``torch.futures.Future`` in signatures that run at import (PyTorch Geometric's distributed feature
store). Here a Future is plain Python: ``set_result``/``set_exception`` complete it once, ``wait``
blocks on a condition until then, and callbacks (``then``, ``add_done_callback``) run in the thread
that completes it, at once if it already is — the order torch gives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Future", "collect_all", "wait_all"]

T = TypeVar("T")


class Future(Generic[T]):
    """torch.futures.Future: a value (or an error) delivered later, exactly once.

    ``Future[Tensor]`` names its value's type, as in torch's annotations (DDP communication hooks).
    """

    def __init__(self, *, devices=None, _progress: Callable[[], object] | None = None) -> None:
        # _progress completes a Future whose producer acts only when asked (an MPI request is
        # finished by waiting on it, with no thread behind it): wait() calls it first
        self._progress = _progress
        self._condition = threading.Condition()
        self._completed = False
        self._result = None
        self._error: BaseException | None = None
        self._callbacks: list = []

    def done(self) -> bool:
        """Whether the result or error has been set."""
        return self._completed

    def wait(self):
        """Block until completed; the result, or the error set with ``set_exception`` raised."""
        if self._progress is not None and not self._completed:
            self._progress()
        with self._condition:
            self._condition.wait_for(lambda: self._completed)
        return self.value()

    def value(self):
        """The result of a completed Future (raises its error, if it holds one)."""
        if not self._completed:
            raise RuntimeError("Future.value(): the Future is not completed yet (call wait() first)")
        if self._error is not None:
            raise self._error
        return self._result

    def then(self, callback) -> Future:
        """A new Future completed with ``callback(self)`` once this one completes; an exception in the
        callback becomes the new Future's RuntimeError."""
        chained = Future(_progress=self._progress)

        def run(done: Future) -> None:
            try:
                chained.set_result(callback(done))
            except Exception as error:  # the callback's failure is the chained Future's result
                chained.set_exception(RuntimeError(
                    f"Got the following error when running the callback: {type(error).__name__}: {error}"))

        self.add_done_callback(run)
        return chained

    def add_done_callback(self, callback) -> None:
        """Run ``callback(self)`` when this Future completes (now, if it already has)."""
        with self._condition:
            if not self._completed:
                self._callbacks.append(callback)
                return
        callback(self)

    def set_result(self, result) -> None:
        """Complete with ``result``, wake the waiters, run the callbacks."""
        self._complete(result, None)

    def set_exception(self, result) -> None:
        """Complete with the error ``result`` (an exception instance), which ``wait`` raises."""
        if not isinstance(result, BaseException):
            raise TypeError(f"set_exception expected an exception instance, got {type(result).__name__}")
        self._complete(None, result)

    def _complete(self, result, error) -> None:
        with self._condition:
            if self._completed:
                raise RuntimeError("Attempting to mark a completed Future as complete again. Note that a Future "
                                   "can only be marked completed once.")
            self._result, self._error, self._completed = result, error, True
            callbacks, self._callbacks = self._callbacks, []
            self._condition.notify_all()
        for callback in callbacks:
            callback(self)


def collect_all(futures) -> Future:
    """One Future completed with the list of ``futures`` once all have completed (with the first
    error, in list order, if any holds one)."""
    futures = list(futures)
    collected = Future(_progress=lambda: [future.wait() for future in futures if future._progress is not None])
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Future) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            errors = [f._error for f in futures if f._error is not None]
            if errors:
                collected.set_exception(errors[0])
            else:
                collected.set_result(futures)

    if not futures:
        collected.set_result([])
    for future in futures:
        future.add_done_callback(one_done)
    return collected


def wait_all(futures) -> list:
    """Wait for every Future in ``futures``; their results in order (the first error is raised)."""
    return [future.value() for future in collect_all(futures).wait()]
