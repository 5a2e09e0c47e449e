"""The ``torch.utils.data`` documentation's ``IterableDataset`` examples, then a regressor trained on a
stream. ``MyIterableDataset(start, end)`` as the docs write it (``super(MyIterableDataset).__init__()``
included): its ``__iter__`` splits the range by ``torch.utils.data.get_worker_info()`` (``per_worker =
int(math.ceil((self.end - self.start) / float(worker_info.num_workers)))``, ``worker_info.id``), loaded with
``num_workers=0``, ``2`` and ``12`` (more workers than items); the second example's ``worker_init_fn`` that
edits ``worker_info.dataset`` in each worker. Then a streaming regression dataset sharded the same way,
loaded with ``batch_size=None`` (no auto-batching: the dataset yields whole batches), with
``persistent_workers=True`` and ``prefetch_factor=4``, a ``ChainDataset`` of two streams, a shuffle-buffer
``IterableDataset`` wrapper, ``itertools.islice`` over an endless stream and ``itertools.chain`` of
loaders; a small regressor trained by SGD on the stream. Prints the sorted set of items each loader saw.
"""

import itertools
import math
import os
import random

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import ChainDataset, DataLoader, IterableDataset


class MyIterableDataset(torch.utils.data.IterableDataset):
    def __init__(self, start, end):
        super(MyIterableDataset).__init__()
        assert end > start, "this example code only works with end >= start"
        self.start = start
        self.end = end

    def __iter__(self):
        worker_info = torch.utils.data.get_worker_info()
        if worker_info is None:  # single-process data loading, return the full iterator
            iter_start = self.start
            iter_end = self.end
        else:  # in a worker process
            # split workload
            per_worker = int(math.ceil((self.end - self.start) / float(worker_info.num_workers)))
            worker_id = worker_info.id
            iter_start = self.start + worker_id * per_worker
            iter_end = min(iter_start + per_worker, self.end)
        return iter(range(iter_start, iter_end))


class PlainRangeDataset(torch.utils.data.IterableDataset):
    """The docs' second example: the dataset knows nothing of workers; ``worker_init_fn`` shards it."""

    def __init__(self, start, end):
        super(PlainRangeDataset).__init__()
        assert end > start, "this example code only works with end >= start"
        self.start = start
        self.end = end

    def __iter__(self):
        return iter(range(self.start, self.end))


def worker_init_fn(worker_id):
    worker_info = torch.utils.data.get_worker_info()
    dataset = worker_info.dataset  # the dataset copy in this worker process
    overall_start = dataset.start
    overall_end = dataset.end
    # configure the dataset to only process the split workload
    per_worker = int(math.ceil((overall_end - overall_start) / float(worker_info.num_workers)))
    worker_id = worker_info.id
    dataset.start = overall_start + worker_id * per_worker
    dataset.end = min(dataset.start + per_worker, overall_end)


TRUE_W = np.array([1.5, -2.0, 0.5, 3.0], dtype=np.float32)
TRUE_B = 0.7


def make_sample(index, data_seed):
    """Sample ``index`` of the stream, the same in whichever worker draws it."""
    rng = np.random.RandomState(data_seed * 100003 + index)
    x = rng.randn(4).astype(np.float32)
    y = np.float32(x @ TRUE_W + TRUE_B + 0.1 * rng.randn())
    return index, torch.from_numpy(x), torch.tensor([y])


class RegressionStream(IterableDataset):
    """Samples ``start..end-1`` split across workers; with ``batch_size`` it yields whole batches itself."""

    def __init__(self, start, end, data_seed, batch_size=None):
        super().__init__()
        self.start, self.end, self.data_seed, self.batch_size = start, end, data_seed, batch_size

    def samples(self):
        worker_info = torch.utils.data.get_worker_info()
        indices = range(self.start, self.end)
        if worker_info is not None:
            indices = indices[worker_info.id::worker_info.num_workers]
        for index in indices:
            yield make_sample(index, self.data_seed)

    def __iter__(self):
        if self.batch_size is None:
            yield from self.samples()
            return
        stream = self.samples()
        while True:
            chunk = list(itertools.islice(stream, self.batch_size))
            if not chunk:
                return
            indices, xs, ys = zip(*chunk)
            yield torch.tensor(indices), torch.stack(xs), torch.stack(ys)


class EndlessStream(IterableDataset):
    def __init__(self, data_seed):
        super().__init__()
        self.data_seed = data_seed

    def __iter__(self):
        for index in itertools.count(10_000):
            yield make_sample(index, self.data_seed)


class ShuffleBuffer(IterableDataset):
    """Approximate shuffling of a stream: keep ``buffer_size`` items, emit a random one as each arrives."""

    def __init__(self, dataset, buffer_size, seed):
        super().__init__()
        self.dataset, self.buffer_size, self.seed = dataset, buffer_size, seed

    def __iter__(self):
        rng = random.Random(self.seed)
        buffer = []
        for item in self.dataset:
            if len(buffer) < self.buffer_size:
                buffer.append(item)
                continue
            slot = rng.randrange(self.buffer_size)
            yield buffer[slot]
            buffer[slot] = item
        rng.shuffle(buffer)
        yield from buffer


def items_of(batches):
    return sorted(int(i) for batch in batches for i in torch.as_tensor(batch[0]).reshape(-1))


def main():
    seed = int(os.environ.get("PROGRAM_SEED", "0"))
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)

    # should give same set of data as range(3, 7), i.e., [3, 4, 5, 6].
    ds = MyIterableDataset(start=3, end=7)
    # Single-process loading
    print(list(torch.utils.data.DataLoader(ds, num_workers=0)))
    # Mult-process loading with two worker processes
    # Worker 0 fetched [3, 4].  Worker 1 fetched [5, 6].
    print(list(torch.utils.data.DataLoader(ds, num_workers=2)))
    # With even more workers
    print(list(torch.utils.data.DataLoader(ds, num_workers=12)))

    ds = PlainRangeDataset(start=3, end=7)
    print(list(torch.utils.data.DataLoader(ds, num_workers=0)))
    # Directly doing multi-process loading yields duplicate data
    print(list(torch.utils.data.DataLoader(ds, num_workers=2)))
    print(list(torch.utils.data.DataLoader(ds, num_workers=2, worker_init_fn=worker_init_fn)))
    print(list(torch.utils.data.DataLoader(ds, num_workers=12, worker_init_fn=worker_init_fn)))

    batched = DataLoader(MyIterableDataset(0, 10), batch_size=4, num_workers=2)
    print("auto-batched:", [b.tolist() for b in batched])
    print("drop_last:", [b.tolist() for b in DataLoader(MyIterableDataset(0, 10), batch_size=4, drop_last=True)])
    try:
        len(batched)
    except TypeError as error:
        print("len of a loader over an IterableDataset without __len__:", error)

    # a stream that batches itself: batch_size=None turns auto-batching off
    data_seed = 11
    train_stream = RegressionStream(0, 512, data_seed, batch_size=16)
    train_loader = DataLoader(train_stream, batch_size=None, num_workers=2, persistent_workers=True,
                              prefetch_factor=4)
    first = next(iter(train_loader))
    print("batch_size=None batch:", tuple(first[0].shape), tuple(first[1].shape), tuple(first[2].shape),
          first[1].dtype)

    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.MSELoss()
    for epoch in range(3):
        seen = []
        total = 0.0
        for indices, x, y in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(indices)
            seen.extend(indices.tolist())
        print(f"epoch {epoch}: {len(seen)} samples, {len(set(seen))} distinct, "
              f"range {min(seen)}..{max(seen)}, loss {total / len(seen):.4f}")

    # a ChainDataset of two streams, shuffled through a buffer, auto-batched by the loader
    chained = ChainDataset([RegressionStream(512, 576, data_seed), RegressionStream(576, 640, data_seed)])
    shuffled = ShuffleBuffer(chained, buffer_size=32, seed=seed)
    order = [item[0] for item in shuffled]
    print("shuffle buffer keeps every item once:", sorted(order) == list(range(512, 640)),
          "and moves some:", order != list(range(512, 640)))
    fine_tune = DataLoader(shuffled, batch_size=8)
    tuned = []
    for indices, x, y in fine_tune:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        tuned.append(indices)
    print("chained + shuffled items:", items_of([(t,) for t in tuned]) == list(range(512, 640)),
          "batches", len(tuned), "last", tuple(tuned[-1].shape))

    # an endless stream read through itertools.islice, then two loaders chained
    endless = DataLoader(EndlessStream(data_seed), batch_size=16)
    for indices, x, y in itertools.islice(endless, 10):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        last_item = int(indices[-1])
    print("islice stopped at item", last_item)

    eval_a = DataLoader(RegressionStream(2000, 2100, data_seed + 1), batch_size=25, num_workers=2)
    eval_b = DataLoader(RegressionStream(2100, 2164, data_seed + 1, batch_size=32), batch_size=None)
    model.eval()
    squared, count, seen = 0.0, 0, []
    with torch.no_grad():
        for indices, x, y in itertools.chain(eval_a, eval_b):
            squared += ((model(x) - y) ** 2).sum().item()
            count += len(indices)
            seen.extend(indices.tolist())
    print("eval items:", sorted(set(seen)) == list(range(2000, 2164)), "count", count)
    print("sorted items of the docs' loaders:",
          items_of(DataLoader(MyIterableDataset(3, 7), num_workers=2)),
          items_of(DataLoader(PlainRangeDataset(3, 7), num_workers=2, worker_init_fn=worker_init_fn)))
    mse = squared / count
    lin = nn.Linear(4, 1)
    lin_opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    for _indices, x, y in itertools.islice(endless, 60):
        lin_opt.zero_grad()
        loss_fn(lin(x), y).backward()
        lin_opt.step()
    w_err = (lin.weight.detach().reshape(-1) - torch.from_numpy(TRUE_W)).abs().max().item()
    print(f"FINAL mse={mse:.4f} w_err={w_err:.4f} b={lin.bias.item():.4f}")


if __name__ == "__main__":
    main()
