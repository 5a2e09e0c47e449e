"""DataLoader idioms from the torch.utils.data docs and the recipes people copy from them.

``default_collate`` of nested samples (dicts of tuples of NumPy arrays, ints, floats, strings,
namedtuples, lists) and ``default_convert`` (the ``batch_size=None`` path); a bucketing
``Sampler`` that groups indices by sequence length and yields lists, used as ``batch_sampler`` with a
padding ``collate_fn``; an ``IterableDataset`` with a shuffle buffer, split across workers by
``get_worker_info()`` and cut by ``itertools.islice``; ``ChainDataset`` and ``ConcatDataset``;
``StackDataset`` (keyword and positional); ``DataLoader(drop_last=True, prefetch_factor=2,
num_workers=2, generator=g, persistent_workers=True)`` giving the same order for the same seeded
``torch.Generator`` and a different one for another seed; ``pin_memory=True`` on a CPU machine;
``len()`` of loaders and samplers; ``WeightedRandomSampler`` and ``SubsetRandomSampler`` with a
generator; and a small model trained on what the bucketed loader yields.
"""

import collections
import itertools
import math
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    Sampler,
    SequentialSampler,
    StackDataset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    get_worker_info,
)

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

Point = collections.namedtuple("Point", ["x", "y"])


def describe(value, indent=""):
    """Walk a collated structure, printing types, shapes and dtypes (what a user checks)."""
    if isinstance(value, torch.Tensor):
        return f"Tensor{tuple(value.shape)} {value.dtype}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value).__name__ + "(" + ", ".join(f"{k}={describe(v)}" for k, v in zip(value._fields, value)) + ")"
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "[" + ", ".join(describe(v) for v in value) + "]"
    return f"{type(value).__name__}({value!r})"


# --- default_collate and default_convert -------------------------------------------------------------------------
rng = np.random.RandomState(0)
samples = [
    {
        "image": rng.rand(3, 4).astype(np.float32),
        "pair": (np.int64(i), rng.rand(2)),
        "label": i % 3,
        "weight": 0.5 * i,
        "name": f"sample_{i}",
        "point": Point(i, float(i) / 2),
        "tags": [i, i + 1],
        "flag": bool(i % 2),
    }
    for i in range(4)
]
batch = default_collate(samples)
print(describe(batch))
print(batch["name"], batch["label"].tolist(), batch["tags"][1].tolist(), batch["flag"].tolist())
print(batch["point"].y.tolist(), batch["weight"].dtype, batch["pair"][1].dtype)
converted = default_convert(samples[0])
print(describe(converted))
print(describe(default_convert([np.arange(3), (np.float32(1.5), "s")])))
print(describe(default_collate([np.array(1.5), np.array(2.5)])), describe(default_collate([np.float64(1.0)])))
try:
    default_collate([{"a": 1}, {"a": "x"}])
except TypeError as error:
    print("TypeError:", str(error)[:60])
try:
    default_collate([np.array(["a", "b"], dtype=object)])
except TypeError as error:
    print("TypeError:", str(error)[:80])
try:
    default_collate([torch.zeros(2), torch.zeros(3)])
except RuntimeError as error:
    print("RuntimeError:", str(error)[:60])
loader = DataLoader(samples, batch_size=None)
print(describe(next(iter(loader))["image"]), len(loader))


# --- a bucketing batch sampler on variable-length sequences -------------------------------------------------------
class SequenceDataset(Dataset):
    def __init__(self, count, rng):
        self.lengths = rng.randint(3, 20, size=count)
        self.sequences = [rng.randint(1, 50, size=length) for length in self.lengths]
        # the label: does the sequence hold more large tokens than small ones?
        self.labels = [int((s > 25).sum() > (s <= 25).sum()) for s in self.sequences]

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, index):
        return torch.as_tensor(self.sequences[index]), self.labels[index]


class BucketBatchSampler(Sampler):
    def __init__(self, lengths, batch_size, bucket_width=5, drop_last=False, generator=None):
        self.lengths = lengths
        self.batch_size = batch_size
        self.bucket_width = bucket_width
        self.drop_last = drop_last
        self.generator = generator

    def _buckets(self):
        buckets = collections.defaultdict(list)
        for index, length in enumerate(self.lengths):
            buckets[length // self.bucket_width].append(index)
        return [buckets[key] for key in sorted(buckets)]

    def __iter__(self):
        batches = []
        for bucket in self._buckets():
            order = torch.randperm(len(bucket), generator=self.generator).tolist()
            bucket = [bucket[i] for i in order]
            for start in range(0, len(bucket), self.batch_size):
                chunk = bucket[start:start + self.batch_size]
                if len(chunk) == self.batch_size or not self.drop_last:
                    batches.append(chunk)
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]

    def __len__(self):
        sizes = [len(bucket) for bucket in self._buckets()]
        if self.drop_last:
            return sum(size // self.batch_size for size in sizes)
        return sum(math.ceil(size / self.batch_size) for size in sizes)


def pad_collate(batch):
    sequences, labels = zip(*batch)
    lengths = torch.tensor([len(s) for s in sequences])
    return pad_sequence(sequences, batch_first=True, padding_value=0), lengths, torch.tensor(labels)


data_rng = np.random.RandomState(1)
train_set = SequenceDataset(480, data_rng)
valid_set = SequenceDataset(160, data_rng)
bucket_sampler = BucketBatchSampler(train_set.lengths, batch_size=16, generator=torch.Generator().manual_seed(seed))
train_loader = DataLoader(train_set, batch_sampler=bucket_sampler, collate_fn=pad_collate)
print(len(bucket_sampler), len(train_loader))
first = next(iter(train_loader))
spread = [(lengths.max() - lengths.min()).item() for _, lengths, _ in train_loader]
print(first[0].dtype, first[0].dim(), max(spread) < 5, sum(len(b) for b in bucket_sampler))
try:
    DataLoader(train_set, batch_sampler=bucket_sampler, batch_size=4)
except ValueError as error:
    print("ValueError:", error)


class BagClassifier(nn.Module):
    def __init__(self, vocab=50, dim=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.head = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, tokens, lengths):
        summed = self.embed(tokens).sum(dim=1)
        return self.head(summed / lengths.unsqueeze(1).float())


model = BagClassifier()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
valid_loader = DataLoader(valid_set, batch_size=32, collate_fn=pad_collate, pin_memory=True)
print(len(valid_loader), next(iter(valid_loader))[0].is_pinned() if torch.cuda.is_available() else False)
for epoch in range(6):
    model.train()
    total, count = 0.0, 0
    for tokens, lengths, labels in train_loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(tokens, lengths), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * labels.size(0)
        count += labels.size(0)
    model.eval()
    with torch.no_grad():
        correct = sum((model(t, n).argmax(1) == y).sum().item() for t, n, y in valid_loader)
    valid_acc = correct / len(valid_set)
    if epoch % 2 == 1:
        print(f"epoch {epoch} seen {count} train_loss {total / count:.4f} valid_acc {valid_acc:.4f}")


# --- an IterableDataset with a shuffle buffer, split across workers ----------------------------------------------
class StreamDataset(IterableDataset):
    def __init__(self, start, end):
        super().__init__()
        self.start, self.end = start, end

    def __iter__(self):
        worker_info = get_worker_info()
        if worker_info is None:
            iter_start, iter_end = self.start, self.end
        else:
            per_worker = int(math.ceil((self.end - self.start) / float(worker_info.num_workers)))
            iter_start = self.start + worker_info.id * per_worker
            iter_end = min(iter_start + per_worker, self.end)
        return iter(range(iter_start, iter_end))


class ShuffleBuffer(IterableDataset):
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
            index = rng.randrange(self.buffer_size)
            yield buffer[index]
            buffer[index] = item
        rng.shuffle(buffer)
        yield from buffer


stream = ShuffleBuffer(StreamDataset(0, 20), buffer_size=5, seed=3)
print(list(itertools.islice(stream, 8)))
print(sorted(stream) == list(range(20)))
print(sorted(x.item() for b in DataLoader(StreamDataset(3, 10), batch_size=2, num_workers=2) for x in b))
print([b.tolist() for b in DataLoader(StreamDataset(0, 7), batch_size=3)])
chained = ChainDataset([StreamDataset(0, 3), StreamDataset(10, 12)])
print(list(chained), [b.tolist() for b in DataLoader(chained, batch_size=2)])
try:
    len(DataLoader(stream, batch_size=2))
except TypeError as error:
    print("TypeError:", error)
concat = ConcatDataset([TensorDataset(torch.arange(3)), TensorDataset(torch.arange(10, 14))])
print(len(concat), concat.cumulative_sizes, concat[4][0].item(), concat[-1][0].item())

# --- StackDataset ------------------------------------------------------------------------------------------------
images = TensorDataset(torch.arange(12.0).view(6, 2))
targets = TensorDataset(torch.arange(6))
stacked = StackDataset(images, targets)
keyed = StackDataset(image=images, target=targets)
print(len(stacked), stacked[1], keyed[2])
print(describe(next(iter(DataLoader(keyed, batch_size=4)))))
try:
    StackDataset(images, TensorDataset(torch.arange(5)))
except ValueError as error:
    print("ValueError:", error)

# --- determinism: a seeded generator, workers, drop_last, prefetch_factor -----------------------------------------
indexed = TensorDataset(torch.arange(50), torch.arange(50).float() * 0.1)


def epoch_order(generator_seed):
    g = torch.Generator()
    g.manual_seed(generator_seed)
    loader = DataLoader(indexed, batch_size=8, shuffle=True, drop_last=True, num_workers=2, prefetch_factor=2,
                        generator=g, persistent_workers=True)
    orders = [[idx.tolist() for idx, _ in loader] for _ in range(2)]
    return len(loader), orders


length, orders_a = epoch_order(seed + 7)
_, orders_b = epoch_order(seed + 7)
_, orders_c = epoch_order(seed + 8)
print(length, orders_a == orders_b, orders_a[0] != orders_a[1], orders_a != orders_c)
print(all(len(b) == 8 for b in orders_a[0]), len(set(itertools.chain(*orders_a[0]))))
try:
    DataLoader(indexed, batch_size=8, prefetch_factor=2)
except ValueError as error:
    print("ValueError:", error)
pinned = next(iter(DataLoader(indexed, batch_size=4, pin_memory=True)))
print(pinned[0].dtype, pinned[1].shape, pinned[1].device)

# --- samplers: weighted, subset, batch --------------------------------------------------------------------------
weights = [0.9 if label == 1 else 0.1 for label in train_set.labels]
weighted = WeightedRandomSampler(weights, num_samples=200, replacement=True, generator=torch.Generator().manual_seed(seed))
drawn = list(weighted)
positive_share = sum(train_set.labels[i] for i in drawn) / len(drawn)
print(len(weighted), len(drawn), positive_share > sum(train_set.labels) / len(train_set.labels))
subset = SubsetRandomSampler(list(range(10, 20)), generator=torch.Generator().manual_seed(seed))
print(sorted(subset) == list(range(10, 20)), len(subset))
print(list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False)))
print(len(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=True)))

print(f"FINAL valid_acc={valid_acc:.4f} train_loss={total / count:.4f} positive_share={positive_share:.4f} "
      f"epoch_batches={length}")
