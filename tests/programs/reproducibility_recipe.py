"""The pytorch.org "Reproducibility" notes (notes/randomness), as a user follows them: ``torch.manual_seed``,
``random.seed``, ``np.random.seed``; ``torch.use_deterministic_algorithms(True)`` and
``torch.are_deterministic_algorithms_enabled()`` (and ``warn_only=True`` with
``is_deterministic_algorithms_warn_only_enabled()``), ``torch.backends.cudnn.deterministic = True`` /
``benchmark = False``; the DataLoader section's ``seed_worker`` (``torch.initial_seed() % 2**32`` into
``numpy.random.seed`` and ``random.seed``) with ``generator=g`` from ``torch.Generator().manual_seed(0)``
and ``num_workers=2`` (the shuffle order and the workers' NumPy draws repeat); ``torch.get_rng_state`` /
``set_rng_state`` replaying ``torch.rand``, ``torch.random.fork_rng()`` leaving the global stream
untouched, a private ``torch.Generator().manual_seed`` stream, ``torch.initial_seed()``; then two
identical training runs (dropout, shuffled loader, augmentation noise from NumPy and ``random`` in the
workers) that ``torch.equal`` agrees on for every parameter, and a third with another seed that differs.
"""

import os
import random

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))


class NoisyPoints(Dataset):
    """Two noisy spirals; each item gets augmentation noise from NumPy and ``random`` (in the worker)."""

    def __init__(self, n=96):
        rng = np.random.RandomState(1234)
        t = rng.uniform(0.5, 3.0, size=n)
        label = np.arange(n) % 2
        angle = t * 2.5 + np.pi * label
        self.x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1).astype(np.float32)
        self.y = label.astype(np.int64)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        jitter = np.random.normal(0, 0.05, size=2).astype(np.float32)
        flip = 1.0 if random.random() < 0.5 else -1.0
        x = torch.from_numpy(self.x[i] + jitter)
        return torch.stack([x[0], x[1], flip * x[0] * x[1]]), self.y[i]


def seed_worker(worker_id):
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def make_loader(generator_seed):
    g = torch.Generator()
    g.manual_seed(generator_seed)
    return DataLoader(NoisyPoints(), batch_size=16, shuffle=True, num_workers=2, worker_init_fn=seed_worker,
                      generator=g)


def train(run_seed, epochs=10):
    torch.manual_seed(run_seed)
    random.seed(run_seed)
    np.random.seed(run_seed)
    model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    loader = make_loader(run_seed)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
        losses.append(total / len(loader.dataset))
    return model, losses


def main():
    # -- Controlling sources of randomness
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    print("initial_seed matches:", torch.initial_seed() == seed)

    torch.use_deterministic_algorithms(True)
    print("deterministic:", torch.are_deterministic_algorithms_enabled(),
          "warn_only:", torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    print("deterministic:", torch.are_deterministic_algorithms_enabled(),
          "warn_only:", torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    print("cudnn benchmark:", torch.backends.cudnn.benchmark, "deterministic:", torch.backends.cudnn.deterministic)

    # -- the RNG state: save, draw, restore, draw again
    state = torch.get_rng_state()
    print("rng state:", state.dtype, state.shape)
    a = torch.rand(4)
    torch.set_rng_state(state)
    b = torch.rand(4)
    print("replayed after set_rng_state:", torch.equal(a, b))

    before = torch.get_rng_state()
    with torch.random.fork_rng():
        torch.manual_seed(seed + 100)
        inside = torch.randn(3)
    print("fork_rng leaves the global state:", torch.equal(before, torch.get_rng_state()))
    with torch.random.fork_rng():
        torch.manual_seed(seed + 100)
        again = torch.randn(3)
    print("fork_rng draws repeat:", torch.equal(inside, again))

    g = torch.Generator().manual_seed(2147483647)
    first = torch.randint(0, 100, (5,), generator=g)
    g.manual_seed(2147483647)
    second = torch.randint(0, 100, (5,), generator=g)
    print("generator streams repeat:", torch.equal(first, second), "initial_seed:", g.initial_seed())
    print("private generator leaves global:", torch.equal(before, torch.get_rng_state()))

    # -- DataLoader: seed_worker + generator
    orders = []
    for _ in range(2):
        torch.manual_seed(seed)
        batches = [xb for xb, _ in make_loader(seed)]
        orders.append(torch.cat(batches))
    print("loader batches repeat with the same generator:", torch.equal(orders[0], orders[1]))
    torch.manual_seed(seed)
    other = torch.cat([xb for xb, _ in make_loader(seed + 1)])
    print("another generator shuffles differently:", not torch.equal(orders[0], other))

    # -- two identical training runs
    model_a, losses_a = train(seed)
    model_b, losses_b = train(seed)
    same = [torch.equal(p, q) for p, q in zip(model_a.parameters(), model_b.parameters())]
    print(f"identical runs: {len(same)} parameters, all equal {all(same)}, losses equal {losses_a == losses_b}")
    model_c, losses_c = train(seed + 1)
    differ = [not torch.equal(p, q) for p, q in zip(model_a.parameters(), model_c.parameters())]
    print(f"another seed: parameters differ {all(differ)}")
    for epoch, loss in enumerate(losses_a):
        print(f"epoch {epoch} loss {loss:.4f}")

    model_a.eval()
    data = NoisyPoints()
    with torch.no_grad():
        x = torch.stack([torch.tensor([p[0], p[1], p[0] * p[1]]) for p in data.x])
        logits = model_a(x)
        accuracy = (logits.argmax(1) == torch.from_numpy(data.y)).float().mean().item()
    print(f"FINAL loss={losses_a[-1]:.4f} accuracy={accuracy:.4f}")


if __name__ == "__main__":
    main()
