"""MLP-Mixer (Tolstikhin et al.) as the PyTorch ports write it, on synthetic 16x16 textures, against a small CNN.

Patches by a strided ``nn.Conv2d(3, dim, patch, stride=patch)`` then ``x.flatten(2).transpose(1, 2)``
into ``(batch, tokens, dim)``; each ``MixerBlock`` mixes tokens with an MLP applied to the
transposed tokens (``self.token_mix(self.norm1(x).transpose(1, 2)).transpose(1, 2)``) and
channels with an MLP on the last dimension, both pre-``nn.LayerNorm`` with ``nn.GELU`` and
residual adds; global average pooling over tokens and a linear head.
Trained with ``nn.CrossEntropyLoss(label_smoothing=0.1)``, ``optim.AdamW``, ``clip_grad_norm_``
and a warm-up then cosine-decay schedule by
``SequentialLR(optimizer, [LinearLR(...), CosineAnnealingLR(...)], milestones=[warmup])``
stepped per iteration; the same recipe trains a small CNN for comparison.

The data: four classes of noisy textures (horizontal stripes, vertical stripes, checkerboard,
diagonal stripes) at random phases and colours, made with NumPy.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE = 16
NUM_CLASSES = 4


def make_dataset(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    images = rng.normal(0.0, 1.2, size=(n, 3, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    for i in range(n):
        period = rng.uniform(3.0, 6.0)
        phase = rng.uniform(0, 2 * np.pi)
        if labels[i] == 0:
            pattern = np.sin(2 * np.pi * yy / period + phase)
        elif labels[i] == 1:
            pattern = np.sin(2 * np.pi * xx / period + phase)
        elif labels[i] == 2:
            pattern = np.sin(2 * np.pi * yy / period + phase) * np.sin(2 * np.pi * xx / period + phase)
        else:
            pattern = np.sin(2 * np.pi * (xx + yy) / period + phase)
        colour = rng.uniform(0.3, 0.8, size=(3, 1, 1)).astype(np.float32)
        images[i] += colour * pattern
    return torch.from_numpy(images), torch.from_numpy(labels)


class MlpBlock(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class MixerBlock(nn.Module):
    def __init__(self, num_tokens, dim, token_hidden, channel_hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mix = MlpBlock(num_tokens, token_hidden)
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mix = MlpBlock(dim, channel_hidden)

    def forward(self, x):
        x = x + self.token_mix(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        x = x + self.channel_mix(self.norm2(x))
        return x


class MlpMixer(nn.Module):
    def __init__(self, num_classes, image_size=16, patch_size=4, dim=32, depth=2, token_hidden=16,
                 channel_hidden=64):
        super().__init__()
        num_tokens = (image_size // patch_size) ** 2
        self.stem = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.blocks = nn.Sequential(*[MixerBlock(num_tokens, dim, token_hidden, channel_hidden)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.stem(x)                  # (B, dim, H/p, W/p)
        x = x.flatten(2).transpose(1, 2)  # (B, tokens, dim)
        x = self.blocks(x)
        x = self.norm(x)
        return self.head(x.mean(dim=1))


class SmallCNN(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def train(model, name, epochs=6, batch_size=32, warmup_epochs=1):
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    steps_per_epoch = len(train_x) // batch_size
    warmup = warmup_epochs * steps_per_epoch
    scheduler = SequentialLR(optimizer, schedulers=[
        LinearLR(optimizer, start_factor=0.1, total_iters=warmup),
        CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch - warmup, eta_min=1e-5),
    ], milestones=[warmup])
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(train_x))
        total, seen = 0.0, 0
        for step in range(steps_per_epoch):
            idx = perm[step * batch_size:(step + 1) * batch_size]
            logits = model(train_x[idx])
            loss = criterion(logits, train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        print(f"{name} epoch {epoch + 1} loss {total / seen:.4f} lr {scheduler.get_last_lr()[0]:.6f} "
              f"grad_norm {grad_norm.item():.3f}")
    model.eval()
    with torch.no_grad():
        logits = model(test_x)
        acc = (logits.argmax(1) == test_y).float().mean().item()
        plain = F.cross_entropy(logits, test_y).item()
    return acc, plain


train_x, train_y = make_dataset(512)
test_x, test_y = make_dataset(256)
print("data", tuple(train_x.shape), "classes", NUM_CLASSES)

mixer = MlpMixer(NUM_CLASSES)
tokens = mixer.stem(train_x[:2]).flatten(2).transpose(1, 2)
print("tokens", tuple(tokens.shape), "contiguous", tokens.is_contiguous())
print("mixer parameters", sum(p.numel() for p in mixer.parameters()))
cnn = SmallCNN(NUM_CLASSES)
print("cnn parameters", sum(p.numel() for p in cnn.parameters()))

mixer_acc, mixer_ce = train(mixer, "mixer")
cnn_acc, cnn_ce = train(cnn, "cnn")
print(f"test accuracy mixer {mixer_acc:.4f} cnn {cnn_acc:.4f}")
print(f"FINAL mixer_acc={mixer_acc:.4f} cnn_acc={cnn_acc:.4f} mixer_ce={mixer_ce:.4f} cnn_ce={cnn_ce:.4f}")
