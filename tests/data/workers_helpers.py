"""Datasets and callbacks for the DataLoader worker tests.

They live in their own module, which does not import torch, so that workers started with
``spawn`` can unpickle them by name and start without paying for a torch import.
"""

import os
import random
import signal
import time

import numpy as np

import chainrule
from chainrule.utils.data import Dataset, IterableDataset, get_worker_info

# set by record_worker_init in each worker process
init_called_with = None


def record_worker_init(worker_id):
    global init_called_with
    init_called_with = worker_id


def failing_worker_init(worker_id):
    raise ValueError(f"worker_init_fn refuses worker {worker_id}")


def _worker_id():
    info = get_worker_info()
    return -1 if info is None else info.id


class Items(Dataset):
    """Sample i: a dict of a float tensor (of ``lib``: chainrule, or torch for torch's loader), an
    int, a float, a string and a NumPy array; ``fail_at`` makes one index raise ``error``."""

    def __init__(self, n, fail_at=None, error=ValueError, lib=chainrule):
        self.n, self.fail_at, self.error, self.lib = n, fail_at, error, lib

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise self.error(f"sample {i} is broken")
        return {"x": self.lib.full((2,), float(i)), "label": i, "half": i / 2, "name": f"item{i}",
                "pair": (np.arange(3) + i, [i, -i])}


class WhoAmI(Dataset):
    """Sample i reports which worker made it and what that worker's random streams give."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = get_worker_info()
        return {"index": i, "worker": info.id, "num_workers": info.num_workers, "seed": info.seed,
                "pid": os.getpid(), "init": init_called_with, "initial_seed": chainrule.initial_seed(),
                "random": random.random(), "numpy": np.random.rand(), "chainrule": chainrule.rand(()).item(),
                "dataset_is_copy": isinstance(info.dataset, WhoAmI)}


class Sharded(IterableDataset):
    """Worker k yields k * 100 + j for j < lengths[k] (all shards in turn without workers)."""

    def __init__(self, lengths):
        self.lengths = lengths

    def __iter__(self):
        info = get_worker_info()
        shards = range(len(self.lengths)) if info is None else [info.id]
        for k in shards:
            yield from (k * 100 + j for j in range(self.lengths[k]))


class Misbehaves(Dataset):
    """At index ``at``: sleep ``delay`` seconds, kill itself with SIGKILL, exit with a code, or
    return something that cannot be sent back (a tensor with a graph, a lambda)."""

    def __init__(self, n, at, how, delay=0.0):
        self.n, self.at, self.how, self.delay = n, at, how, delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i != self.at:
            return i
        if self.how == "sleep":
            time.sleep(self.delay)
            return i
        if self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.how == "exit":
            os._exit(3)
        if self.how == "graph":
            return chainrule.ones(2, requires_grad=True) * 2
        if self.how == "leaf":
            return chainrule.ones(2, requires_grad=True)
        return lambda: i


class NeedsTwoArguments(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)


class RaisesOddException(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        raise NeedsTwoArguments(i, "odd")


class Pids(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        return os.getpid()
