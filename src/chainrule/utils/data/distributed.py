"""torch.utils.data.DistributedSampler: each rank's share of a dataset, with torch's partitioning and shuffled order."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np

from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    """Rank ``rank`` of ``num_replicas`` visits ``indices[rank::num_replicas]``.

    Without ``drop_last`` the index list is padded by repeating its start up to a multiple of
    ``num_replicas`` (every rank gets ``ceil(n / num_replicas)`` samples); with it, the tail is
    dropped (``floor``). ``shuffle`` permutes all indices the same way on every rank, seeded by
    ``seed + epoch`` (call ``set_epoch`` each epoch). The partitioning and the shuffled order
    equal torch's (its ``randperm`` on a Generator seeded so).
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from ... import distributed as dist

            # without a process group these raise torch's ValueError, naming init_process_group
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if drop_last and len(dataset) % num_replicas != 0:
            # leave out the tail so every rank gets the same number of samples
            self.num_samples = math.ceil((len(dataset) - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(len(dataset) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def _indices(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            from ...ops.mt19937_stream import MT19937Stream

            # torch: randperm(n) from a Generator seeded with seed + epoch, so the order is torch's
            indices = MT19937Stream(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if not self.drop_last:
            padding = self.total_size - n
            if padding > 0:
                indices = np.concatenate([indices, np.resize(indices, padding)])
        else:
            indices = indices[:self.total_size]
        return indices[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for this epoch (the same permutation on every rank)."""
        self.epoch = epoch
