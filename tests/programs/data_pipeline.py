"""A ``torch.utils.data`` pipeline as real projects build it: a custom ``Dataset`` that makes
samples in ``__getitem__`` (with augmentation), ``random_split`` with a seeded generator,
``DataLoader`` with two worker processes, ``worker_init_fn`` and ``persistent_workers``, and a
dict-returning dataset collated by the default collate function.
"""

import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, random_split


class NoisySignals(Dataset):
    """1-D signals of three kinds (sine, square, sawtooth) with noise; a random shift is the
    augmentation applied in ``__getitem__``, so workers draw from their own seeded RNGs."""

    def __init__(self, num_samples, length=32, augment=True):
        rng = np.random.RandomState(0)
        self.labels = rng.randint(0, 3, size=num_samples)
        self.phases = rng.rand(num_samples) * 2 * np.pi
        self.noise = rng.randn(num_samples, length).astype(np.float32) * 0.6
        self.length = length
        self.augment = augment

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        t = np.linspace(0, 4 * np.pi, self.length) + self.phases[idx]
        label = int(self.labels[idx])
        if label == 0:
            signal = np.sin(t)
        elif label == 1:
            signal = np.sign(np.sin(t))
        else:
            signal = (t % (2 * np.pi)) / np.pi - 1
        signal = signal.astype(np.float32) + self.noise[idx]
        if self.augment:
            signal = np.roll(signal, np.random.randint(0, self.length))
        return {"signal": torch.from_numpy(signal).unsqueeze(0), "label": label}


def seed_worker(worker_id):
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


class ConvNet1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(8, 16, kernel_size=5, padding=2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = F.adaptive_avg_pool1d(x, 1).flatten(1)
        return self.fc(x)


def main():
    seed = int(os.environ.get("PROGRAM_SEED", "0"))
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)

    dataset = NoisySignals(600)
    train_set, val_set = random_split(dataset, [480, 120], generator=torch.Generator().manual_seed(42))
    print(f"train {len(train_set)} val {len(val_set)}")
    g = torch.Generator()
    g.manual_seed(seed)
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True, num_workers=2, worker_init_fn=seed_worker,
                              generator=g, persistent_workers=True, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=60, shuffle=False, num_workers=0)

    model = ConvNet1d()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(1, 9):
        model.train()
        seen = 0
        for batch in train_loader:
            signals, labels = batch["signal"], batch["label"]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(signals), labels)
            loss.backward()
            optimizer.step()
            seen += len(labels)
        model.eval()
        correct = 0
        val_loss = 0.0
        with torch.no_grad():
            for batch in val_loader:
                logits = model(batch["signal"])
                val_loss += F.cross_entropy(logits, batch["label"], reduction="sum").item()
                correct += (logits.argmax(1) == batch["label"]).sum().item()
        val_loss /= len(val_set)
        print(f"epoch {epoch}: seen {seen} samples, val loss {val_loss:.4f}, val acc {correct / len(val_set):.3f}")
    print(f"label batch is int64: {batch['label'].dtype == torch.int64}, signal batch shape {tuple(batch['signal'].shape)}")
    print(f"FINAL loss={val_loss:.4f} acc={correct / len(val_set):.4f}")


if __name__ == "__main__":
    main()
