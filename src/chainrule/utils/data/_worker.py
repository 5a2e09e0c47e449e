"""What runs inside a DataLoader worker process, and what the worker sends back.

A worker receives ``(task_idx, index)`` tasks on its own index queue, fetches and collates the
batch, and puts the pickled ``(task_idx, batch)`` on the result queue shared by all workers. It
pickles the result itself, before ``put``: a result that cannot be pickled (a tensor carrying a
graph, a lambda) then becomes an error the main process re-raises, instead of an exception in
the queue's feeder thread that would leave the main process waiting forever.
"""

from __future__ import annotations

import copyreg
import io
import multiprocessing
import pickle
import queue
import random
import sys
import traceback
from dataclasses import dataclass

import numpy as np

from ...tensor import Tensor

__all__ = ["WorkerInfo", "get_worker_info"]

# seconds a worker waits on its index queue before checking that its parent is still alive
_PARENT_CHECK_INTERVAL = 1.0

_worker_info: WorkerInfo | None = None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """Which worker this process is: ``id`` in ``range(num_workers)``, its ``seed``
    (``base_seed + id``) and its own copy of ``dataset``, as torch's WorkerInfo. Frozen and
    slotted as torch's: no ``vars()``, no assignment. ``rng`` (torch's per-thread RNG states) and
    ``worker_method`` are torch's fields too; a worker here is a process, so they are None and
    "multiprocessing"."""

    id: int
    num_workers: int
    seed: int
    dataset: object
    rng: object | None = None
    worker_method: str | None = "multiprocessing"


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process, that worker's WorkerInfo; in the main process, None.

    An IterableDataset uses it in ``__iter__`` to yield only its share of the stream, and a
    ``worker_init_fn`` to configure each worker's dataset copy."""
    return _worker_info


class _KeyErrorMessage(str):
    """KeyError prints repr() of its argument; this keeps a multi-line traceback readable."""

    def __repr__(self) -> str:
        return self


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process as its type and the
    formatted original traceback (tracebacks themselves do not pickle)."""

    def __init__(self, where: str) -> None:
        exc_type, exc_value, exc_traceback = sys.exc_info()
        self.type_name = exc_type.__name__
        self.text = "".join(traceback.format_exception(exc_type, exc_value, exc_traceback))
        self.where = where
        try:
            pickle.dumps(exc_type)
            self.exc_type = exc_type
        except Exception:  # a class defined inside a function: re-raised as RuntimeError
            self.exc_type = RuntimeError

    def reraise(self):
        """Raise the worker's exception type in this process: "Caught ValueError in DataLoader
        worker process 1.\\nOriginal Traceback (most recent call last): ..." as torch does."""
        message = f"Caught {self.type_name} {self.where}.\nOriginal {self.text}"
        if self.exc_type is KeyError:
            message = _KeyErrorMessage(message)
        try:
            exception = self.exc_type(message)
        except Exception:  # the type wants other constructor arguments
            raise RuntimeError(message) from None
        try:
            raise exception
        finally:
            # a local naming the exception whose traceback holds this frame is a reference cycle:
            # it would keep the DataLoader iterator, and so its worker processes, alive until gc
            del exception


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    """A worker's reply once its copy of an IterableDataset is exhausted."""

    worker_id: int


@dataclass(frozen=True)
class _ResumeIteration:
    """Sent to persistent workers at a new epoch; echoed back once they have restarted."""


def _reduce_tensor(tensor: Tensor):
    if tensor.requires_grad and tensor.grad_fn is not None:
        # torch.multiprocessing's refusal, word for word: a graph cannot cross processes
        raise RuntimeError(
            "Cowardly refusing to serialize non-leaf tensor which requires_grad, since autograd does not "
            "support crossing process boundaries.  If you just want to transfer the data, call detach() on "
            "the tensor before serializing (e.g., putting it on the queue).")
    return tensor.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


class _ResultPickler(pickle.Pickler):
    dispatch_table = {**copyreg.dispatch_table, Tensor: _reduce_tensor}


def _pickled(message) -> bytes:
    buffer = io.BytesIO()
    _ResultPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
    return buffer.getvalue()


class _MapFetcher:
    """Fetches one batch of a map-style dataset: the batch's indices → collated samples."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool) -> None:
        self.dataset, self.auto_collation, self.collate_fn = dataset, auto_collation, collate_fn
        from .collate import default_collate
        from .dataset import _fancy_index_batcher

        self.get_batch = _fancy_index_batcher(dataset) if collate_fn is default_collate else None

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self.get_batch is not None and _valid_indices(index, len(self.dataset)):
            return self.get_batch(np.asarray(index, dtype=np.int64))
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.collate_fn(self.dataset.__getitems__(index))
        return self.collate_fn([self.dataset[i] for i in index])


def _valid_indices(index, size: int) -> bool:
    """Whether a batch's indices are integers in range, for the one-fancy-index batch; any other
    takes the per-sample path, whose indexing raises torch's errors (a str, an index past the end)."""
    try:
        indices = np.asarray(index)
    except ValueError:
        return False
    if indices.size == 0:
        return True
    return indices.dtype.kind in "iu" and -size <= indices.min() and indices.max() < size


class _IterableFetcher:
    """Pulls the next batch (``batch_size`` samples, or one sample when ``batch_size`` is None)
    from an iterable dataset; raises StopIteration once it is exhausted."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool) -> None:
        self.iterator, self.auto_collation = iter(dataset), auto_collation
        self.collate_fn, self.drop_last = collate_fn, drop_last
        self.ended = False

    def fetch(self, batch_size):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.iterator))
        samples = []
        for sample in self.iterator:
            samples.append(sample)
            if len(samples) == batch_size:
                break
        else:
            self.ended = True
        if not samples or (self.drop_last and len(samples) < batch_size):
            raise StopIteration
        return self.collate_fn(samples)


def _make_fetcher(iterable: bool, dataset, auto_collation: bool, collate_fn, drop_last: bool):
    fetcher = _IterableFetcher if iterable else _MapFetcher
    return fetcher(dataset, auto_collation, collate_fn, drop_last)


def _seed_everything(base_seed: int, worker_id: int) -> int:
    """Seed `random`, NumPy's global stream and chainrule's default generator differently in each
    worker, as torch does: a fork would otherwise give every worker the parent's streams."""
    from ...ops.random import manual_seed

    seed = base_seed + worker_id
    random.seed(seed)
    manual_seed(seed)
    # torch's _generate_state is NumPy's SeedSequence hash over these four 32-bit words: the same
    # NumPy stream per worker as torch's, so np.random draws in a Dataset agree
    np.random.seed(np.random.SeedSequence([worker_id, base_seed & 0xFFFFFFFF, base_seed >> 32, 0]).generate_state(4))
    return seed


def _worker_loop(iterable: bool, dataset, index_queue, result_queue, done_event, auto_collation: bool,
                 collate_fn, drop_last: bool, base_seed: int, init_fn, worker_id: int, num_workers: int) -> None:
    """The body of worker process ``worker_id``; returns when told to stop (None on its index
    queue) or when the process that started it has died."""
    global _worker_info
    where = f"in DataLoader worker process {worker_id}"
    try:
        seed = _seed_everything(base_seed, worker_id)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = _make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_error = ExceptionWrapper(where)  # reported as the answer to the first task
        iteration_end = False
        # the main process can die without telling us (SIGKILL): then stop. Its sentinel, unlike
        # comparing getppid() against a value read here, cannot miss a death before this line
        parent = multiprocessing.parent_process()
        while parent.is_alive():
            try:
                task = index_queue.get(timeout=_PARENT_CHECK_INTERVAL)
            except queue.Empty:
                continue
            if task is None:
                break
            if isinstance(task, _ResumeIteration):
                iteration_end = False
                try:
                    fetcher = _make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
                except Exception:
                    init_error = ExceptionWrapper(where)
                result_queue.put(_pickled((task, None)))
                continue
            if done_event.is_set() or iteration_end:
                continue  # tasks sent before shutdown, or after this worker's stream ended
            task_idx, index = task
            if init_error is not None:
                data, init_error = init_error, None
            else:
                try:
                    data = fetcher.fetch(index)
                except Exception as error:
                    if iterable and isinstance(error, StopIteration):
                        data, iteration_end = _IterableDatasetStopIteration(worker_id), True
                    else:
                        data = ExceptionWrapper(where)
            try:
                message = _pickled((task_idx, data))
            except Exception:
                message = _pickled((task_idx, ExceptionWrapper(where)))
            result_queue.put(message)
            del data, message
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the main process handles it
        pass
    if done_event.is_set():
        # the main process no longer reads: exit without waiting to flush the results
        result_queue.cancel_join_thread()
        result_queue.close()
