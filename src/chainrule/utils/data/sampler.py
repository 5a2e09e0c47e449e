"""Samplers: which dataset indices a DataLoader visits, and in which order (torch.utils.data.sampler).

Every sampler is lazy, as torch's are: indices are drawn a chunk at a time while the epoch is
consumed, so ``RandomSampler(data, replacement=True, num_samples=10**10)`` costs one chunk of
memory, not 75 GiB. Memory is bounded by the chunk size, or by ``len(data)`` where a whole
permutation is the point (sampling without replacement draws one permutation per pass, as torch).

The chainrule samplers also expose ``_index_chunks()``, the epoch's order as a stream of int64
arrays, so BatchSampler and the DataLoader can cut batches with array slicing instead of a Python
loop over indices.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator, Sized
from typing import Generic, TypeVar

import numpy as np

from ...tensor import Tensor

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]

# indices drawn per NumPy call: large enough that the Python overhead per chunk vanishes, small
# enough that a huge num_samples never allocates more than ~32 KiB of indices at a time
_CHUNK = 4096


def _checked_generator(owner: str, generator):
    """``generator`` itself, once it is a Generator or None: anything else is torch's TypeError
    (its randperm, randint and multinomial refuse it), not an AttributeError from deep inside."""
    from ...ops.random import Generator

    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"{owner}: generator must be a Generator (or None), got {type(generator).__name__} "
                        f"{generator!r}")
    return generator


def _epoch_rng(generator):
    """The stream for one epoch: the given Generator's, or, as torch's RandomSampler, a fresh
    Generator seeded with ``torch.empty((), dtype=torch.int64).random_()`` from the default one (so
    after ``manual_seed`` the order is torch's)."""
    from ...ops.mt19937_stream import MT19937Stream
    from ...ops.random import _rng, default_generator

    if generator is not None:
        return _rng(generator)  # a CUDA generator is refused with torch's error

    return MT19937Stream(int(default_generator._rng.integers(2**63)))


def _given_or_default_rng(generator):
    """The given Generator's stream, or the default one itself (torch's SubsetRandomSampler calls
    randperm with ``generator=None``: no fresh Generator)."""
    from ...ops.random import _rng

    return _rng(generator)


def _as_int_list(chunks: Iterable[np.ndarray]) -> Iterator[int]:
    """Python ints from a stream of index arrays, converted a bounded slice at a time."""
    for chunk in chunks:
        for start in range(0, len(chunk), _CHUNK):
            yield from chunk[start:start + _CHUNK].tolist()


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_T_co = TypeVar("_T_co", covariant=True)


class Sampler(Generic[_T_co]):
    """Base class: subclasses define ``__iter__`` over indices (and usually ``__len__``); generic
    in the index type, as torch's (``Sampler[int]``).

    No ``__init__`` of its own: torch 2.13 removed the deprecated ``data_source`` argument, so
    ``super().__init__(dataset)`` in a subclass is refused by ``object.__init__``, as there."""

    def __iter__(self) -> Iterator:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """Indices 0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def _index_chunks(self) -> Iterator[np.ndarray]:
        n = len(self.data_source)
        for start in range(0, n, _CHUNK):
            yield np.arange(start, min(start + _CHUNK, n), dtype=np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation per epoch; or ``num_samples`` indices, as repeated permutations
    (``replacement=False``) or as independent uniform draws (``replacement=True``).

    The order comes from ``generator`` (advancing it), or from a fresh stream seeded from the
    default generator at the start of each epoch, as torch.utils.data.RandomSampler.
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: int | None = None,
                 generator=None) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not _is_positive_int(self.num_samples):
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _index_chunks(self) -> Iterator[np.ndarray]:
        n, total = len(self.data_source), self.num_samples
        rng = _epoch_rng(_checked_generator("RandomSampler", self.generator))
        if self.replacement:
            if n == 0:  # torch.randint(high=0)'s refusal, at the first draw
                raise RuntimeError("random_ expects 'from' to be less than 'to', but got from=0 >= to=0")
            for start in range(0, total, _CHUNK):
                yield rng.integers(0, n, size=min(_CHUNK, total - start), dtype=np.int64)
            return
        whole_passes, rest = divmod(total, n)
        for _ in range(whole_passes):
            yield rng.permutation(n).astype(np.int64, copy=False)
        if rest or self.generator is not None:
            # torch draws this last permutation even when it keeps none of it (rest == 0), once the
            # epoch is read to its end: a given generator must advance by it, or the next epoch's
            # order is not torch's (a fresh stream is dropped after the epoch: no need to draw there)
            yield rng.permutation(n)[:rest].astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[int]:
        return _as_int_list(self._index_chunks())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order each epoch. Iterated, it yields the items of
    ``indices`` themselves, as torch (0-d tensors when ``indices`` is a tensor)."""

    def __init__(self, indices, generator=None) -> None:
        self.indices = indices
        self.generator = generator

    def _index_chunks(self) -> Iterator[np.ndarray]:
        order = _given_or_default_rng(_checked_generator("SubsetRandomSampler", self.generator)).permutation(
            len(self.indices))
        indices = np.asarray(getattr(self.indices, "_data", self.indices), dtype=np.int64)
        for start in range(0, len(order), _CHUNK):
            yield indices[order[start:start + _CHUNK]]

    def __iter__(self) -> Iterator:
        order = _given_or_default_rng(_checked_generator("SubsetRandomSampler", self.generator)).permutation(
            len(self.indices))
        for position in _as_int_list([order]):
            yield self.indices[position]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``.

    Each epoch is torch.multinomial's draw on the given generator or the default one (with
    replacement streamed a chunk at a time), as in torch, so after ``manual_seed`` the indices
    are torch's (without replacement, once the
    positive weights are used up the zero-weight indices follow in index order, where torch
    leaves their order unspecified). Invalid weights raise torch.multinomial's RuntimeError
    when the epoch starts, as in torch.
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None) -> None:
        if not _is_positive_int(num_samples):
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        if isinstance(weights, Tensor) and weights.device.type == "cuda":
            # a CUDA weight tensor stays there, as torch's as_tensor keeps it: the draws are
            # torch.multinomial's on that device (with the sampler's generator, which must be a CUDA one)
            if weights.dim() != 1:
                raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(weights.shape)}")
            self.weights = weights.detach().double()
            self.num_samples, self.replacement, self.generator = num_samples, replacement, generator
            return
        data = weights._data if hasattr(weights, "_data") else weights
        if isinstance(data, str) or isinstance(data, (list, tuple)) and any(isinstance(w, str) for w in data):
            # torch.as_tensor refuses strings with a TypeError (NumPy would parse "0.5")
            raise TypeError(f"WeightedRandomSampler: weights must be a sequence of numbers, got {weights!r}")
        weights = np.asarray(data, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {weights.shape}")
        # a float64 tensor, as torch keeps it: code reads and replaces sampler.weights between epochs
        self.weights = Tensor._make(weights)
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def _index_chunks(self) -> Iterator[np.ndarray]:
        # torch calls torch.multinomial on the given or the default generator
        from ...ops.random import (
            check_multinomial_weights,
            multinomial_cumulative_weights,
            multinomial_on_cpu,
        )

        if self.weights.device.type == "cuda":
            from ...ops.random import multinomial

            drawn = multinomial(self.weights, self.num_samples, self.replacement, generator=self.generator)
            yield drawn.cpu().numpy()  # (torch reads them back too: rand_tensor.tolist())
            return
        stream = _given_or_default_rng(_checked_generator("WeightedRandomSampler", self.generator))
        weights = self.weights._data
        if not self.replacement or self.num_samples == 1:
            yield multinomial_on_cpu(weights, self.num_samples, self.replacement, stream)
            return
        # one double uniform per index searched in the cumulative weights: torch's values drawn a
        # chunk at a time, so a huge num_samples streams (torch draws them all at the start)
        check_multinomial_weights(weights, self.num_samples, self.replacement)
        cumulative = multinomial_cumulative_weights(weights)
        for start in range(0, self.num_samples, _CHUNK):
            uniforms = stream.random(min(_CHUNK, self.num_samples - start))
            yield np.searchsorted(cumulative, uniforms, side="left").astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return _as_int_list(self._index_chunks())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of ``batch_size`` (the last may be short
    unless ``drop_last``). Lazy: one batch is built at a time."""

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not _is_positive_int(batch_size):
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def _refuse_unindexable_batch_size(self) -> None:
        """torch's error, on the first batch, for a batch size beyond sys.maxsize (it cuts a batch
        with itertools.islice, or zips batch_size references to the indices when dropping the last)."""
        if self.batch_size > sys.maxsize:
            if self.drop_last:
                raise OverflowError("cannot fit 'int' into an index-sized integer")
            raise ValueError("Stop argument for islice() must be None or an integer: 0 <= x <= sys.maxsize.")

    def _index_batches(self) -> Iterator[np.ndarray]:
        """Batches as int64 arrays, cut from the sampler's chunks when it streams them."""
        self._refuse_unindexable_batch_size()
        if not hasattr(self.sampler, "_index_chunks"):
            for batch in self:
                indices = np.asarray(batch)
                # indices that are no integers (a string sampler's 'f') stay as given, for the
                # dataset's indexing to refuse as torch's does (int64 would parse '3' and fail on 'f')
                yield indices.astype(np.int64) if indices.dtype.kind in "iu" or indices.size == 0 else list(batch)
            return
        leftover = np.empty(0, dtype=np.int64)
        for chunk in self.sampler._index_chunks():
            if len(leftover):
                chunk = np.concatenate([leftover, chunk])
            whole = len(chunk) - len(chunk) % self.batch_size
            for start in range(0, whole, self.batch_size):
                yield chunk[start:start + self.batch_size]
            leftover = chunk[whole:]
        if len(leftover) and not self.drop_last:
            yield leftover

    def __iter__(self) -> Iterator[list]:
        self._refuse_unindexable_batch_size()
        if hasattr(self.sampler, "_index_chunks"):
            for batch in self._index_batches():
                yield batch.tolist()
            return
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
