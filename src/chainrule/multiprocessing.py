"""torch.multiprocessing: Python's multiprocessing, plus torch's ``spawn`` — start ``nprocs``
processes running ``fn(rank, *args)`` and raise in the parent when one of them fails.

As in torch, a tensor in shared memory (``share_memory_()``, ``Module.share_memory()``) that is
sent to another process — a Process argument, a Queue item — travels as the name of its
shared segment, so both processes update the same numbers; other tensors travel as copies.
The sharing-strategy calls only record their setting (segments are always named POSIX shared
memory).
"""

from __future__ import annotations

import multiprocessing as _mp
import multiprocessing.connection as _connection
import signal as _signal
import sys as _sys
import traceback as _traceback
from multiprocessing import *  # noqa: F401,F403  (torch.multiprocessing re-exports it all)
from multiprocessing.reduction import ForkingPickler as _ForkingPickler

from . import _shared
from .nn.parameter import Buffer as _Buffer
from .nn.parameter import Parameter as _Parameter
from .tensor import Tensor as _Tensor

__all__ = [*_mp.__all__, "spawn", "start_processes", "ProcessContext", "ProcessException",
           "ProcessRaisedException", "ProcessExitedException", "set_sharing_strategy", "get_sharing_strategy",
           "get_all_sharing_strategies"]

_SHARING_STRATEGIES = {"file_descriptor", "file_system"}
_sharing_strategy = "file_descriptor"


def get_all_sharing_strategies() -> set:
    return set(_SHARING_STRATEGIES)


def get_sharing_strategy() -> str:
    return _sharing_strategy


def set_sharing_strategy(new_strategy: str) -> None:
    global _sharing_strategy
    if new_strategy not in _SHARING_STRATEGIES:
        raise AssertionError(f"invalid sharing strategy {new_strategy!r}; expected one of "
                             f"{sorted(_SHARING_STRATEGIES)}")
    _sharing_strategy = new_strategy


class ProcessException(Exception):
    def __init__(self, msg: str, error_index: int, pid: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.error_index = error_index
        self.pid = pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """A spawned process raised; the message carries its traceback."""


class ProcessExitedException(ProcessException):
    """A spawned process exited with a non-zero code or was killed by a signal."""

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int,
                 signal_name: str | None = None) -> None:
        super().__init__(msg, error_index, error_pid)
        self.exit_code = exit_code
        self.signal_name = signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid, self.exit_code, self.signal_name)


def _run_rank(fn, rank: int, args: tuple, error_queue) -> None:
    try:
        fn(rank, *args)
    except KeyboardInterrupt:
        pass  # the parent is stopping everyone
    except Exception:
        error_queue.put(_traceback.format_exc())
        _sys.exit(1)


class ProcessContext:
    """The processes ``spawn(join=False)`` started; ``join()`` waits for them."""

    def __init__(self, processes: list, error_queues: list) -> None:
        self.processes = processes
        self.error_queues = error_queues
        self._sentinels = {process.sentinel: index for index, process in enumerate(processes)}

    def pids(self) -> list:
        return [int(process.pid) for process in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` for a process to end. True when all have ended successfully;
        False while some still run; raises ProcessRaisedException / ProcessExitedException
        (after stopping the others) as soon as one fails."""
        if not self._sentinels:
            return True
        ready = _connection.wait(list(self._sentinels), timeout=timeout)
        failed = None
        for sentinel in ready:
            index = self._sentinels.pop(sentinel)
            process = self.processes[index]
            process.join()
            if process.exitcode != 0:
                failed = index
                break
        if failed is None:
            return not self._sentinels
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join()
        process = self.processes[failed]
        queue = self.error_queues[failed]
        if not queue.empty():
            message = f"\n\n-- Process {failed} terminated with the following error:\n" + queue.get()
            raise ProcessRaisedException(message, failed, process.pid)
        if process.exitcode < 0:
            name = _signal.Signals(-process.exitcode).name
            raise ProcessExitedException(f"process {failed} terminated with signal {name}", failed, process.pid,
                                         process.exitcode, name)
        raise ProcessExitedException(f"process {failed} terminated with exit code {process.exitcode}", failed,
                                     process.pid, process.exitcode)


def start_processes(fn, args: tuple = (), nprocs: int = 1, join: bool = True, daemon: bool = False,
                    start_method: str = "spawn"):
    """Start ``nprocs`` processes running ``fn(rank, *args)`` with ``start_method``; with
    ``join`` wait for all of them (raising if one fails), else return their ProcessContext."""
    context = _mp.get_context(start_method)
    processes, error_queues = [], []
    for rank in range(nprocs):
        error_queue = context.SimpleQueue()
        process = context.Process(target=_run_rank, args=(fn, rank, args, error_queue), daemon=daemon)
        process.start()
        processes.append(process)
        error_queues.append(error_queue)
    running = ProcessContext(processes, error_queues)
    if not join:
        return running
    while not running.join():
        pass
    return None


def spawn(fn, args: tuple = (), nprocs: int = 1, join: bool = True, daemon: bool = False,
          start_method: str = "spawn"):
    """torch.multiprocessing.spawn: ``start_processes`` with the spawn start method."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)


def _rebuild_shared_tensor(kind, name: str, offset: int, shape: tuple, dtype: str, strides: tuple,
                           requires_grad: bool):
    array = _shared.attach(name, offset, shape, dtype, strides)
    if kind is _Parameter:
        return _Parameter(_Tensor._make(array), requires_grad)
    tensor = _Tensor._make(array)
    if kind is _Buffer:
        tensor = _Buffer(tensor)
    return tensor.requires_grad_(requires_grad) if requires_grad else tensor


def _reduce_tensor(tensor):
    where = _shared.location(tensor._data)
    if where is None:
        return tensor.__reduce_ex__(4)
    name, offset = where
    array = tensor._data
    return _rebuild_shared_tensor, (type(tensor), name, offset, array.shape, array.dtype.str, array.strides,
                                    tensor.requires_grad)


for _kind in (_Tensor, _Parameter, _Buffer):
    _ForkingPickler.register(_kind, _reduce_tensor)
