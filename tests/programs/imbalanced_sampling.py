"""Class-imbalanced classification with the ``torch.utils.data`` samplers, as forum answers and blog
posts build it: per-sample weights from ``1.0 / torch.bincount(labels).float()`` fed to
``WeightedRandomSampler(weights, num_samples, replacement=True, generator=g)``; ``random_split(ds, [0.8,
0.2], generator=torch.Generator().manual_seed(42))`` with fractions; ``TensorDataset``, ``ConcatDataset``
and ``Subset``; ``BatchSampler(SequentialSampler(...), batch_size, drop_last)`` listed and passed as
``batch_sampler=``; ``SubsetRandomSampler`` for a validation split; a ``Sampler`` subclass with
``__iter__``/``__len__`` that draws class-balanced batches, against ``sampler=``; the class counts each
sampler delivers, and per-class recall / balanced accuracy by ``torch.bincount(..., minlength=)``. An
unweighted model and a weighted-sampling model are trained side by side.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    random_split,
)

NUM_CLASSES = 3


def make_blobs(counts, rng):
    centres = np.array([[0.0, 0.0], [2.0, 1.0], [0.5, 2.2]], dtype=np.float32)
    xs, ys = [], []
    for label, count in enumerate(counts):
        xs.append(centres[label] + rng.randn(count, 2).astype(np.float32) * 0.8)
        ys.append(np.full(count, label, dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


class ClassBalancedBatchSampler(Sampler):
    """Yields batches with ``per_class`` indices of every class, drawn with replacement."""

    def __init__(self, labels, per_class, num_batches, generator=None):
        self.by_class = [torch.nonzero(labels == c).flatten() for c in range(int(labels.max()) + 1)]
        self.per_class = per_class
        self.num_batches = num_batches
        self.generator = generator

    def __iter__(self):
        for _ in range(self.num_batches):
            batch = []
            for indices in self.by_class:
                picks = torch.randint(len(indices), (self.per_class,), generator=self.generator)
                batch.extend(indices[picks].tolist())
            yield batch

    def __len__(self):
        return self.num_batches


def per_class_recall(preds, targets):
    correct = torch.bincount(targets[preds == targets], minlength=NUM_CLASSES)
    total = torch.bincount(targets, minlength=NUM_CLASSES)
    return correct.float() / total.float()


def evaluate(model, loader):
    model.eval()
    preds, targets = [], []
    with torch.no_grad():
        for x, y in loader:
            preds.append(model(x).argmax(dim=1))
            targets.append(y)
    preds, targets = torch.cat(preds), torch.cat(targets)
    recall = per_class_recall(preds, targets)
    return (preds == targets).float().mean().item(), recall, recall.mean().item()


def train(model, loader, epochs, lr=0.05):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()


def make_model():
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, NUM_CLASSES))


def main():
    seed = int(os.environ.get("PROGRAM_SEED", "0"))
    torch.manual_seed(seed)
    rng = np.random.RandomState(0)

    x_a, y_a = make_blobs([300, 40, 12], rng)
    x_b, y_b = make_blobs([150, 20, 8], rng)
    dataset = ConcatDataset([TensorDataset(x_a, y_a), TensorDataset(x_b, y_b)])
    print("concat:", len(dataset), dataset.cumulative_sizes)
    train_set, val_set = random_split(dataset, [0.8, 0.2], generator=torch.Generator().manual_seed(42))
    print("random_split fractions:", len(train_set), len(val_set), type(train_set).__name__)

    labels = torch.tensor([dataset[i][1] for i in train_set.indices])
    class_counts = torch.bincount(labels)
    print("train class counts:", class_counts.tolist())
    class_weights = 1.0 / torch.bincount(labels).float()
    sample_weights = class_weights[labels]
    print("weights dtype", sample_weights.dtype, "shape", tuple(sample_weights.shape))

    g = torch.Generator()
    g.manual_seed(seed)
    sampler = WeightedRandomSampler(sample_weights, num_samples=len(sample_weights), replacement=True,
                                    generator=g)
    drawn = torch.tensor(list(sampler))
    drawn_counts = torch.bincount(labels[drawn], minlength=NUM_CLASSES)
    print("weighted sampler:", len(sampler), "draws; minority share", f"{drawn_counts[2].item() / len(drawn):.3f}")

    weighted_loader = DataLoader(train_set, batch_size=32, sampler=sampler)
    plain_loader = DataLoader(train_set, batch_size=32, shuffle=True)
    try:
        DataLoader(train_set, batch_size=32, shuffle=True, sampler=sampler)
    except ValueError as error:
        print("sampler with shuffle:", error)

    seq_batches = list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
    print("BatchSampler:", seq_batches, list(BatchSampler(SequentialSampler(range(10)), batch_size=3,
                                                           drop_last=True)))
    print("len:", len(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False)),
          len(BatchSampler(RandomSampler(range(10)), batch_size=3, drop_last=True)))

    val_indices = list(range(len(val_set)))
    val_loader = DataLoader(val_set, batch_size=50, sampler=SubsetRandomSampler(val_indices, generator=g))
    eval_batches = DataLoader(val_set, batch_sampler=BatchSampler(SequentialSampler(val_set), batch_size=50,
                                                                  drop_last=False))
    print("batch_sampler batches:", len(eval_batches), [len(y) for _, y in eval_batches])

    balanced = ClassBalancedBatchSampler(labels, per_class=8, num_batches=15, generator=g)
    balanced_loader = DataLoader(train_set, batch_sampler=balanced)
    first_x, first_y = next(iter(balanced_loader))
    print("balanced batch:", tuple(first_x.shape), torch.bincount(first_y, minlength=NUM_CLASSES).tolist())

    minority = Subset(train_set, [i for i, c in enumerate(labels.tolist()) if c == 2])
    print("minority subset:", len(minority), "label", int(minority[0][1]))

    results = {}
    for name, loader in (("plain", plain_loader), ("weighted", weighted_loader), ("balanced", balanced_loader)):
        torch.manual_seed(seed)
        model = make_model()
        train(model, loader, epochs=6)
        acc, recall, bal_acc = evaluate(model, val_loader)
        results[name] = (acc, bal_acc, recall)
        print(f"{name}: acc {acc:.3f} balanced acc {bal_acc:.3f} recall "
              + " ".join(f"{r:.3f}" for r in recall.tolist()))

    same_order = evaluate(model, eval_batches)[0] == results["balanced"][0]
    print("sequential batches give the same accuracy:", same_order)
    print(f"FINAL plain_bal_acc={results['plain'][1]:.4f} weighted_bal_acc={results['weighted'][1]:.4f} "
          f"balanced_bal_acc={results['balanced'][1]:.4f} weighted_minority_recall={results['weighted'][2][2]:.4f}")


if __name__ == "__main__":
    main()
