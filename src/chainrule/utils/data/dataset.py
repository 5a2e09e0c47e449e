"""Datasets: map-style (``__getitem__`` + ``__len__``) and iterable, as torch.utils.data.dataset."""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

import numpy as np

from ..._backend import device_of, to_device
from ...tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "StackDataset", "Subset", "ConcatDataset",
           "ChainDataset", "random_split"]


_T_co = TypeVar("_T_co", covariant=True)


class Dataset(Generic[_T_co]):
    """A map-style dataset: subclasses define ``__getitem__(index)`` and ``__len__``. Generic in its
    sample type, as torch's (libraries subclass ``Dataset[T_co]``)."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[_T_co], Iterable[_T_co]):
    """A stream of samples: subclasses define ``__iter__``. Abstract, as torch's (it is an
    ``Iterable``): ``IterableDataset()`` itself, or a subclass without ``__iter__``, raises TypeError."""

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``; all tensors share their first dimension."""

    def __init__(self, *tensors: Tensor) -> None:
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset expects Tensors, got {type(t).__name__}")
            if t._data.ndim == 0:  # torch reads t.size(0) of each
                raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        if any(tensors[0]._data.shape[:1] != t._data.shape[:1] for t in tensors):
            raise AssertionError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0]._data.shape[0]

    def _get_batch(self, indices: np.ndarray) -> list:
        """A whole batch by one fancy index per tensor: what default_collate would build."""
        return [Tensor._make(t._data[_index_on(indices, t._data)]) if not t.requires_grad
                else t[Tensor._make(indices)] for t in self.tensors]


def _index_on(indices: np.ndarray, data):
    """The batch's host indices on ``data``'s device (a dataset can live on the GPU)."""
    return indices if type(data) is np.ndarray else to_device(indices, device_of(data))


class StackDataset(Dataset):
    """Samples of several equally long datasets side by side: ``StackDataset(a, b)[i]`` is
    ``(a[i], b[i])``; ``StackDataset(x=a, y=b)[i]`` is ``{"x": a[i], "y": b[i]}``."""

    def __init__(self, *args: Dataset, **kwargs: Dataset) -> None:
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like "
                             "input/output, but both types are given.")
        if not args and not kwargs:
            raise ValueError("At least one dataset should be passed")
        datasets = list(args or kwargs.values())
        self._length = len(datasets[0])
        if any(len(dataset) != self._length for dataset in datasets):
            raise ValueError("Size mismatch between datasets")
        self.datasets = args or kwargs

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {key: dataset[index] for key, dataset in self.datasets.items()}
        return tuple(dataset[index] for dataset in self.datasets)

    def __getitems__(self, indices: list) -> list:
        """A batch's samples, asking each stacked dataset for the whole batch when it can."""
        named = isinstance(self.datasets, dict)
        columns = {}
        for key, dataset in (self.datasets.items() if named else enumerate(self.datasets)):
            if callable(getattr(dataset, "__getitems__", None)):
                column = dataset.__getitems__(indices)
                if len(column) != len(indices):
                    raise ValueError(f"Nested dataset's output size mismatch. Expected {len(indices)}, "
                                     f"got {len(column)}")
            else:
                column = [dataset[index] for index in indices]
            columns[key] = column
        if named:
            return [{key: column[row] for key, column in columns.items()} for row in range(len(indices))]
        return [tuple(column[row] for column in columns.values()) for row in range(len(indices))]

    def __len__(self) -> int:
        return self._length


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices
        if type(self).__getitem__ is not Subset.__getitem__ and type(self).__getitems__ is Subset.__getitems__:
            # the DataLoader fetches batches through __getitems__, which would bypass the override
            raise NotImplementedError(
                f"{type(self).__name__} overrides __getitem__ but not __getitems__. When subclassing Subset "
                "and overriding __getitem__, you must also override __getitems__ to ensure DataLoader works "
                "correctly with your custom logic. A simple implementation:\n\n"
                "def __getitems__(self, indices):\n    return [self.__getitem__(idx) for idx in indices]")

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list) -> list:
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)



def _fancy_index_batcher(dataset):
    """A function from a batch's indices (an int64 array) to what default_collate would make of
    those samples, built by one fancy index per tensor; or None when per-sample code must run.

    Only a TensorDataset, or a Subset of one, qualifies, and only when no subclass has replaced
    ``__getitem__`` / ``__getitems__`` (an augmenting subclass must see every sample)."""
    kind = type(dataset)
    getitem = getattr(kind, "__getitem__", None)  # a dataset of no kind at all falls to the sampler's len()
    if getitem is TensorDataset.__getitem__ and not hasattr(kind, "__getitems__"):
        return dataset._get_batch
    if getitem is Subset.__getitem__ and kind.__getitems__ is Subset.__getitems__:
        inner = _fancy_index_batcher(dataset.dataset)
        if inner is not None:
            positions = np.asarray(getattr(dataset.indices, "_data", dataset.indices), dtype=np.int64)
            return lambda indices: inner(positions[indices])
    return None


class ConcatDataset(Dataset):
    """Several map-style datasets one after another."""

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        offset = idx if which == 0 else idx - self.cumulative_sizes[which - 1]
        return self.datasets[which][offset]


class ChainDataset(IterableDataset):
    """Several iterable datasets one after another, chained on the fly."""

    def __init__(self, datasets) -> None:
        self.datasets = datasets

    def __iter__(self):
        for dataset in self.datasets:
            if not isinstance(dataset, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from dataset

    def __len__(self) -> int:
        total = 0
        for dataset in self.datasets:
            if not isinstance(dataset, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            total += len(dataset)
        return total


def random_split(dataset: Dataset, lengths: Sequence, generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths, or of the given
    fractions of its length (summing to 1; leftover items go round-robin to the first splits)."""
    n = len(dataset)
    if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__iter__"):
        raise TypeError(f"random_split: lengths must be a sequence of ints or of fractions, got {lengths!r}")
    lengths = [int(k) if hasattr(k, "item") and not isinstance(k, float) else k for k in lengths]
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            counts.append(int(math.floor(n * frac)))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=2)
        lengths = counts
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    if any(not isinstance(k, int) for k in lengths):  # torch's randperm refuses them, a TypeError
        raise TypeError(f"random_split: lengths must be ints (or fractions summing to 1), got {lengths!r}")
    from ...ops.random import randperm
    from .sampler import _checked_generator

    indices = randperm(sum(lengths), generator=_checked_generator("random_split", generator))._data.tolist()
    return [Subset(dataset, indices[end - length:end])
            for end, length in zip(itertools.accumulate(lengths), lengths)]
