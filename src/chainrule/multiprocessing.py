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
    ``join`` wait for all of them (raising if one fails), else return their ProcessContext.

    With the spawn start method and MPI installed, the ranks start as one MPI job (``mpiexec``),
    so that ``init_process_group("gloo", rank=rank, world_size=nprocs)`` in them — torch's DDP
    tutorial — finds its world: chainrule's process groups are MPI communicators, and processes
    started one by one would each be a world of one. ``CHAINRULE_SPAWN_MPI=0`` turns this off."""
    if start_method == "spawn" and nprocs > 1 and _spawn_under_mpi():
        return _start_mpi_job(fn, args, nprocs, join)
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


def _spawn_under_mpi() -> bool:
    import os

    from .distributed import _mpi

    if os.environ.get("CHAINRULE_SPAWN_MPI", "1") == "0" or not _mpi.mpi_available():
        return False
    if int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) or 1) > 1:
        return False  # already a rank of an MPI job: a nested job would not join it
    from .distributed.run import find_mpiexec

    try:
        find_mpiexec()
    except FileNotFoundError:
        return False
    return True


def _start_mpi_job(fn, args: tuple, nprocs: int, join: bool):
    import multiprocessing.spawn as spawning
    import os
    import pickle
    import subprocess
    import tempfile

    from .distributed.run import TORCHRUN_VARIABLES, mpiexec_command

    directory = tempfile.mkdtemp(prefix="chainrule-spawn-")
    with open(os.path.join(directory, "payload"), "wb") as payload:
        # how to rebuild __main__ first (fn may live there), then fn and args, shared tensors by name
        preparation = spawning.get_preparation_data("chainrule-spawn")
        preparation["authkey"] = bytes(preparation["authkey"])  # (an AuthenticationString refuses pickling)
        pickle.dump(preparation, payload)
        payload.write(_ForkingPickler.dumps((fn, args)))
    environment = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARIABLES}
    command = mpiexec_command(nprocs) + [_sys.executable, "-m", "chainrule._spawn_child", directory]
    running = MpiProcessContext(subprocess.Popen(command, env=environment), directory, nprocs)
    if not join:
        return running
    while not running.join():
        pass
    return None


class MpiProcessContext:
    """``spawn(join=False)``'s context for ranks started as one MPI job (see ``start_processes``)."""

    def __init__(self, job, directory: str, nprocs: int) -> None:
        self.job = job
        self.directory = directory
        self.nprocs = nprocs

    def pids(self) -> list:
        return [int(self.job.pid)]

    def join(self, timeout: float | None = None) -> bool:
        """True when every rank has ended successfully, False while they run; raises
        ProcessRaisedException (the first failing rank's traceback) or ProcessExitedException."""
        import os
        import shutil
        import subprocess

        try:
            code = self.job.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        reports = sorted((int(name.split("-")[1]), name) for name in os.listdir(self.directory)
                         if name.startswith("error-")) if os.path.isdir(self.directory) else []
        message = None
        if reports:
            rank, name = reports[0]
            with open(os.path.join(self.directory, name)) as report:
                message = f"\n\n-- Process {rank} terminated with the following error:\n" + report.read()
        shutil.rmtree(self.directory, ignore_errors=True)
        if message is not None:
            raise ProcessRaisedException(message, rank, self.job.pid)
        if code != 0:
            raise ProcessExitedException(f"process 0 terminated with exit code {code}", 0, self.job.pid, code)
        return True


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
