"""DataLoader: batches of samples from a dataset, with torch.utils.data.DataLoader's arguments.

``num_workers=0`` loads in the calling process. ``num_workers=N`` starts N worker processes
(multiprocessing, any start method); each holds its own copy of the dataset, is sent batches of
indices round-robin, and sends back collated batches, which come out in sampler order. The
protocol is torch's, so the same programs behave the same: prefetching ``prefetch_factor``
batches per worker, per-worker seeds, ``get_worker_info()`` for sharding iterable datasets,
persistent workers across epochs, and worker errors re-raised here naming the worker.

A TensorDataset (or a Subset of one) with the default collate is batched by fancy-indexing each
tensor with the whole batch's indices: no Python loop over samples.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import os
import pickle
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from ..._torch_function import user_stacklevel
from ...ops.compat import typename
from . import _worker
from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset, _fancy_index_batcher
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert"]

# torch's type aliases for the callables a DataLoader takes; libraries annotate with them (opacus)
_T = TypeVar("_T")
_worker_init_fn_t = Callable[[int], None]
_collate_fn_t = Callable[[list[_T]], Any]

# seconds workers get to finish their current batch and exit once told to, before being terminated
_WORKER_EXIT_GRACE = 5.0

_python_exiting = False


def _note_python_exit() -> None:
    # at interpreter exit multiprocessing itself terminates the (daemonic) workers; iterators
    # collected during teardown must not try to talk to them
    global _python_exiting
    _python_exiting = True


atexit.register(_note_python_exit)



def _as_torch_prints(value) -> str:
    """``str(value)`` as torch's message shows it: one of chainrule's objects without a repr of its own
    (a sampler) under torch's name, "<torch.utils.data.sampler.SequentialSampler object at 0x...>"."""
    cls = type(value)
    if cls.__module__.startswith("chainrule.") and cls.__str__ is object.__str__ and cls.__repr__ is object.__repr__:
        return f"<{typename(value)} object at {hex(id(value))}>"
    return str(value)


class DataLoader:
    """Iterate over ``dataset`` in batches, as torch.utils.data.DataLoader.

    ``batch_size=None`` turns batching off (samples come one at a time, NumPy arrays converted).
    ``shuffle=True`` draws a new order each epoch from ``generator`` (or from the default
    generator, so ``manual_seed`` makes it reproducible). ``sampler`` / ``batch_sampler`` replace
    the default index order / batching; ``drop_last`` drops a final short batch; ``collate_fn``
    merges a list of samples into a batch (default: ``default_collate``).

    ``num_workers > 0`` loads in that many worker processes, started with
    ``multiprocessing_context`` (a start method name such as ``"fork"`` or ``"spawn"``, or a
    context; default: multiprocessing's default). With spawn or forkserver the dataset,
    ``collate_fn`` and ``worker_init_fn`` must be picklable. Each worker seeds ``random``,
    NumPy's global stream and chainrule's default generator with ``base_seed + worker_id``
    (``base_seed`` drawn from ``generator`` per iterator), then calls ``worker_init_fn(worker_id)``.
    ``prefetch_factor`` (default 2) batches per worker are requested ahead; ``timeout`` > 0 bounds
    the wait for one batch (RuntimeError past it); ``persistent_workers`` keeps the workers (and
    their dataset copies) alive from one epoch to the next; ``in_order=False`` yields batches as
    they arrive. An exception in a worker is re-raised here with its type, the worker id and the
    original traceback; a worker that dies (e.g. killed by a signal) raises RuntimeError.

    ``pin_memory`` and ``pin_memory_device`` are accepted and do nothing: chainrule loads into
    ordinary host memory, and there is no pinned-memory transfer to speed up. Each new iterator
    gives torch's warnings for them (no accelerator; pin_memory_device deprecated).
    """

    _initialized = False
    # len(dataset) as the last len(loader) read it (torch's name): an iterator made after that warns
    # once it has yielded more than this many batches
    _IterableDataset_len_called = None

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | None = None, batch_sampler: Sampler | None = None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False, drop_last: bool = False,
                 timeout: float = 0, worker_init_fn: Callable | None = None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True) -> None:
        if num_workers < 0:  # (a str or None: Python's TypeError comparing it to 0, as torch's)
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers "
                             "> 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={_as_torch_prints(sampler)}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler "
                                 f"option, but got batch_sampler={_as_torch_prints(batch_sampler)}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if sampler is None and self._iterable:
            # torch's placeholders: the dataset's own __iter__ decides the samples, but code that reads
            # loader.sampler / loader.batch_sampler finds what torch's DataLoader holds
            sampler = _InfiniteConstantSampler()
        elif sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.multiprocessing_context = multiprocessing_context
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._auto_collation = batch_sampler is not None or (self._iterable and batch_size is not None)
        self.collate_fn = collate_fn or (default_collate if self._auto_collation else default_convert)
        self._iterator = None
        self.check_worker_number_rationality()
        self._initialized = True

    @property
    def _fast(self) -> bool:
        """Whether batches are built by one fancy index per tensor (see _fancy_index_batcher)."""
        return (self.collate_fn is default_collate and isinstance(self.batch_sampler, BatchSampler)
                and _fancy_index_batcher(self.dataset) is not None)

    @property
    def multiprocessing_context(self):
        return self._multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, context) -> None:
        if context is not None:
            if self.num_workers == 0:
                raise ValueError("multiprocessing_context can only be used with multi-process loading "
                                 f"(num_workers > 0), but got num_workers={self.num_workers}")
            if isinstance(context, str):
                methods = multiprocessing.get_all_start_methods()
                if context not in methods:
                    raise ValueError(f"multiprocessing_context option should specify a valid start method in "
                                     f"{methods!r}, but got multiprocessing_context={context!r}")
                context = multiprocessing.get_context(context)
            if not isinstance(context, multiprocessing.context.BaseContext):
                raise TypeError("multiprocessing_context option should be a valid context object or a string "
                                f"specifying the start method, but got multiprocessing_context={context}")
        object.__setattr__(self, "_multiprocessing_context", context)

    def __setattr__(self, name, value) -> None:
        # the samplers and workers were built from these: changing one later would be silently ignored
        if self._initialized and name in ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
                                          "persistent_workers"):
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    def check_worker_number_rationality(self) -> None:
        """Warn when more workers are asked for than CPUs this process may use. As torch does, it is
        called on construction and again for every new worker iterator, and the warning names the
        library line that called it (stack level 2), so Python's once-per-location filter shows it
        at most twice, whatever the caller's line."""
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if self.num_workers > (cpus or 1):
            warnings.warn(f"This DataLoader will create {self.num_workers} worker processes in total. Our "
                          f"suggested max number of worker in current system is {cpus}, which is smaller than "
                          "what this DataLoader is going to create. Please be aware that excessive worker "
                          "creation might get DataLoader running slow or even freeze, lower the worker number "
                          "to avoid potential slowness/freeze if necessary.", stacklevel=2)

    def __len__(self) -> int:
        if self._iterable:
            n = self._IterableDataset_len_called = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def _index_stream(self):
        """One epoch of tasks: a batch of indices (an int64 array on the fast path, a list
        otherwise) or one index per task; for an iterable dataset, the batch size every time."""
        if self._iterable:
            return itertools.repeat(self.batch_size)
        if self._fast:
            return self.batch_sampler._index_batches()
        return iter(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessDataLoaderIter(self)
        if not self.persistent_workers:
            self.check_worker_number_rationality()
            return _MultiProcessingDataLoaderIter(self)
        if self._iterator is None or self._iterator._shutdown:
            self.check_worker_number_rationality()
            self._iterator = _MultiProcessingDataLoaderIter(self)
        else:
            self._iterator._reset(self)
        return self._iterator


class _InfiniteConstantSampler(Sampler):
    """The sampler of a DataLoader over an IterableDataset, as torch's: ``None`` forever."""

    def __iter__(self):
        while True:
            yield None


def _draw_base_seed(loader: DataLoader) -> int:
    """The workers' base seed, drawn by every iterator, with or without workers, as torch does:
    so the generator advances alike and a shuffled order does not depend on ``num_workers``."""
    from ...ops.random import Generator, _rng, default_generator

    generator = default_generator if loader.generator is None else loader.generator
    if not isinstance(generator, Generator):  # torch's random_(generator=...) refuses it so, here
        raise TypeError(f"DataLoader: generator must be a Generator (or None), got {type(generator).__name__} "
                        f"{generator!r}")
    return int(_rng(generator).integers(2**63))


def _warn_about_pinning(loader: DataLoader) -> None:
    """torch's warnings, given by every new iterator, that a ``pin_memory`` request has no effect:
    ``pin_memory_device`` is deprecated, and without an accelerator there is no pinned memory."""
    from ... import accelerator

    if loader.pin_memory and loader.pin_memory_device:
        warnings.warn("pin_memory_device is deprecated, the current accelerator will be used as the device,"
                      f"ignore pin_memory_device='{loader.pin_memory_device}'.", stacklevel=user_stacklevel())
    if loader.pin_memory and not accelerator.is_available():
        warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned memory "
                      "won't be used.", stacklevel=user_stacklevel())


class _BaseDataLoaderIter:
    """What both iterators are, as in torch: libraries test ``isinstance(it, _BaseDataLoaderIter)``.
    Subclasses define ``_next_batch``; this counts what is yielded, for torch's warning when an
    IterableDataset yields more than the ``len()`` it reported."""

    def __iter__(self):
        return self

    def _start_counting(self, loader: DataLoader) -> None:
        self._dataset = loader.dataset
        self._len_reported = loader._IterableDataset_len_called if loader._iterable else None
        self._num_yielded = 0

    def __next__(self):
        data = self._next_batch()
        self._num_yielded += 1
        if self._len_reported is not None and self._num_yielded > self._len_reported:
            message = (f"Length of IterableDataset {self._dataset} was reported to be {self._len_reported}(when "
                       f"accessing len(dataloader)), but {self._num_yielded} samples have been fetched. ")
            if getattr(self, "_num_workers", 0) > 0:
                message += ("For multiprocessing data-loading, this could be caused by not properly configuring the "
                            "IterableDataset replica at each worker. Please see "
                            "https://pytorch.org/docs/stable/data.html#torch.utils.data.IterableDataset for examples.")
            warnings.warn(message, stacklevel=user_stacklevel())
        return data


class _SingleProcessDataLoaderIter(_BaseDataLoaderIter):
    def __init__(self, loader: DataLoader) -> None:
        _warn_about_pinning(loader)
        # torch's order: iter(sampler), which a sampler may draw in (not a batch sampler: its iterator
        # is a generator), then the base seed from the same generator
        self._indices = loader._index_stream()
        _draw_base_seed(loader)
        if loader.timeout != 0:
            # torch's rule and words, checked once the base seed is drawn: nothing to time out on without workers
            raise AssertionError("_SingleProcessDataLoaderIter requires timeout == 0")
        self._start_counting(loader)
        self._fetcher = _worker._make_fetcher(loader._iterable, loader.dataset, loader._auto_collation,
                                              loader.collate_fn, loader.drop_last)

    def _next_batch(self):
        return self._fetcher.fetch(next(self._indices))


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    """Workers, their queues, and the bookkeeping that returns their batches in order.

    Tasks are numbered as sent (``_send_idx``) and returned in that order (``_rcvd_idx``);
    batches that arrive early wait in ``_task_info[task_idx] = (worker_id, batch)``. Each task
    goes to the next active worker in turn, so an IterableDataset sharded by worker id comes out
    interleaved worker 0, 1, ..., 0, 1, ... exactly as in torch.
    """

    _shutdown = True  # until workers exist, there is nothing to shut down

    def __init__(self, loader: DataLoader) -> None:
        self._num_workers = loader.num_workers
        # None when num_workers was raised after construction: torch's default then
        self._prefetch_factor = 2 if loader.prefetch_factor is None else loader.prefetch_factor
        self._timeout = loader.timeout
        self._in_order = loader.in_order
        self._persistent_workers = loader.persistent_workers
        if self._prefetch_factor <= 0:
            # torch's class here (an assertion of its worker iterator), not the ValueError of construction
            raise AssertionError(f"prefetch_factor must be greater than 0 for MultiProcessingDataLoaderIter, got "
                                 f"{self._prefetch_factor}")
        _warn_about_pinning(loader)
        context = loader.multiprocessing_context or multiprocessing.get_context()
        # torch's order: iter(sampler) before the base seed is drawn, and again for the first epoch
        # (_reset), whose iterator is the one used: a sampler that draws in iter() draws twice
        loader._index_stream()
        base_seed = _draw_base_seed(loader)
        self._result_queue = context.Queue()
        self._done_event = context.Event()
        self._index_queues, self._workers = [], []
        self._shutdown = False
        try:
            for worker_id in range(self._num_workers):
                index_queue = context.Queue()
                index_queue.cancel_join_thread()  # a dead worker must not block this process's exit
                worker = context.Process(
                    target=_worker._worker_loop, daemon=True,
                    args=(loader._iterable, loader.dataset, index_queue, self._result_queue, self._done_event,
                          loader._auto_collation, loader.collate_fn, loader.drop_last, base_seed,
                          loader.worker_init_fn, worker_id, self._num_workers))
                worker.start()
                self._index_queues.append(index_queue)
                self._workers.append(worker)
            self._reset(loader, first_epoch=True)
        except BaseException:
            self._shutdown_workers()
            raise

    def _reset(self, loader: DataLoader, first_epoch: bool = False) -> None:
        """Start an epoch: a fresh index stream, every worker active, the pipeline filled."""
        self._start_counting(loader)
        self._indices = loader._index_stream()
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_info = {}
        self._workers_status = [True] * self._num_workers
        self._workers_num_tasks = [0] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        if not first_epoch:
            # persistent workers: each restarts its dataset iterator and echoes the request; what
            # it sends before the echo belongs to an abandoned epoch and is dropped
            for index_queue in self._index_queues:
                index_queue.put(_worker._ResumeIteration())
            waiting = self._num_workers
            while waiting:
                task_idx, _ = self._receive()
                waiting -= isinstance(task_idx, _worker._ResumeIteration)
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _next_batch(self):
        while True:
            # skip tasks that will never be answered: sent to a worker whose stream has ended
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info is not None and (len(info) == 2 or self._workers_status[info[0]]):
                    break
                self._task_info.pop(self._rcvd_idx, None)
                self._rcvd_idx += 1
            else:
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._rcvd_idx]) == 2:
                worker_id, data = self._task_info.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                return self._process(data, worker_id)
            task_idx, data = self._receive()
            if isinstance(data, _worker._IterableDatasetStopIteration):
                self._workers_status[data.worker_id] = False
                if not self._persistent_workers:
                    self._index_queues[data.worker_id].put(None)  # nothing left for it to do
                self._try_put_index()
                continue
            if task_idx == self._rcvd_idx:
                self._rcvd_idx += 1
            elif self._in_order:
                self._task_info[task_idx] += (data,)  # early: wait for the tasks before it
                continue
            worker_id = self._task_info.pop(task_idx)[0]
            return self._process(data, worker_id)

    def _try_put_index(self) -> None:
        """Send the next task to the next active worker (in order; or, with in_order=False, to
        one with fewer than its share of outstanding tasks)."""
        max_tasks = self._prefetch_factor * self._num_workers
        for _ in range(self._num_workers):
            worker_id = next(self._worker_cycle)
            if self._workers_status[worker_id] and (
                    self._in_order or self._workers_num_tasks[worker_id] < max_tasks // sum(self._workers_status)):
                break
        else:
            return
        try:
            index = next(self._indices)
        except StopIteration:
            return
        self._index_queues[worker_id].put((self._send_idx, index))
        self._task_info[self._send_idx] = (worker_id,)
        self._workers_num_tasks[worker_id] += 1
        self._send_idx += 1

    def _process(self, data, worker_id: int):
        self._workers_num_tasks[worker_id] -= 1
        self._try_put_index()
        if isinstance(data, _worker.ExceptionWrapper):
            data.reraise()
        return data

    def _receive(self):
        """The next ``(task_idx, data)`` any worker sends; RuntimeError past ``timeout`` or as soon
        as an active worker has died (its sentinel wakes the wait, no polling)."""
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        # mp.Queue has no public waitable handle; its pipe's read end is the one to wait on
        reader = self._result_queue._reader
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
            sentinels = [w.sentinel for w, active in zip(self._workers, self._workers_status) if active]
            ready = multiprocessing.connection.wait([reader, *sentinels], remaining)
            if reader in ready:
                return pickle.loads(self._result_queue.get())
            if ready:
                self._raise_for_dead_workers([w for w in self._workers if w.sentinel in ready])

    def _raise_for_dead_workers(self, dead: list) -> None:
        for worker in dead:
            worker.join()  # its sentinel fires as it exits; join collects the exit code
        worker = dead[0]
        if worker.exitcode < 0:
            message = f"DataLoader worker (pid {worker.pid}) is killed by signal: {signal.strsignal(-worker.exitcode)}. "
        elif worker.exitcode > 0:
            message = (f"DataLoader worker (pid {worker.pid}) exited unexpectedly with exit code "
                       f"{worker.exitcode}. Details are lost due to multiprocessing. Rerunning with "
                       "num_workers=0 may give better error trace.")
        else:
            message = f"DataLoader worker (pid(s) {', '.join(str(w.pid) for w in dead)}) exited unexpectedly"
        self._shutdown_workers()
        raise RuntimeError(message)

    def _shutdown_workers(self) -> None:
        """Tell every worker to stop, give them a grace period, terminate the rest, close queues."""
        if self._shutdown:
            return
        self._shutdown = True
        try:
            self._done_event.set()
            for index_queue in self._index_queues:
                index_queue.put(None)
            deadline = time.monotonic() + _WORKER_EXIT_GRACE
            for worker in self._workers:
                worker.join(max(0.0, deadline - time.monotonic()))
        finally:
            for worker in self._workers:
                if worker.is_alive():  # still inside the dataset after the grace period
                    worker.terminate()
                    worker.join()
            for q in (*self._index_queues, self._result_queue):
                q.cancel_join_thread()
                q.close()
            self._workers_status = [False] * len(self._workers)

    def __del__(self) -> None:
        if not _python_exiting:
            self._shutdown_workers()
