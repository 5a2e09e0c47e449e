"""Contrastive Predictive Coding (van den Oord et al.) as the PyTorch ports write it, on synthetic audio.

A strided ``nn.Conv1d`` encoder turns raw waveforms into latent frames ``z_t``; an
``nn.GRU(batch_first=True)`` summarises them into a context ``c_t``; one linear predictor per step
ahead (an ``nn.ModuleList`` of ``nn.Linear``) maps ``c_t`` to a guess of ``z_{t+k}``. InfoNCE scores
every guess against the true future frames of all sequences in the batch (the other sequences are
the negatives): the scores come once from ``torch.bmm`` and once from ``torch.einsum`` (must agree),
``F.log_softmax`` over the batch, the positives read off ``torch.diagonal``, and the accuracy per
prediction step from ``argmax`` against ``torch.arange``. Then the encoder and GRU are frozen and a
linear probe on the pooled context classifies the sequences' pitch class.

The data: sums of two sines whose base frequency picks one of four classes, with phase noise,
amplitude modulation and white noise, made with NumPy.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_CLASSES = 4
LENGTH = 320
SAMPLE_RATE = 1600.0
PREDICT_STEPS = 3


def make_audio(n):
    t = np.arange(LENGTH) / SAMPLE_RATE
    labels = rng.integers(0, NUM_CLASSES, size=n)
    waves = np.empty((n, 1, LENGTH), dtype=np.float32)
    for i, label in enumerate(labels):
        f0 = 60.0 + 45.0 * label + rng.normal(0.0, 3.0)
        phase = rng.uniform(0, 2 * np.pi, size=2)
        envelope = 0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + phase[0])
        signal = envelope * (np.sin(2 * np.pi * f0 * t + phase[1]) + 0.5 * np.sin(4 * np.pi * f0 * t))
        waves[i, 0] = signal + rng.normal(0.0, 0.3, size=LENGTH)
    return torch.from_numpy(waves), torch.from_numpy(labels)


class Encoder(nn.Module):
    """Strided 1-d convolutions: 320 samples -> 20 frames (total stride 16)."""

    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, hidden, kernel_size=8, stride=4, padding=2),
            nn.ReLU(),
            nn.Conv1d(hidden, hidden, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(hidden, hidden, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.net(x).transpose(1, 2)  # (B, T, C)


class CPC(nn.Module):
    def __init__(self, z_dim=32, c_dim=24, steps=PREDICT_STEPS):
        super().__init__()
        self.encoder = Encoder(z_dim)
        self.gru = nn.GRU(z_dim, c_dim, num_layers=1, batch_first=True)
        self.predictors = nn.ModuleList([nn.Linear(c_dim, z_dim) for _ in range(steps)])
        self.steps = steps

    def forward(self, x, use_einsum=False):
        z = self.encoder(x)
        batch, frames, _ = z.shape
        t_anchor = frames - self.steps - 1
        context, hidden = self.gru(z[:, : t_anchor + 1, :])
        c_t = context[:, t_anchor, :]  # (B, c_dim)
        # All steps at once: predictions and true futures as (K, B, D).
        predicted = torch.stack([predictor(c_t) for predictor in self.predictors])
        future = torch.stack([z[:, t_anchor + k, :] for k in range(1, self.steps + 1)])
        if use_einsum:
            scores = torch.einsum("kbd,knd->kbn", predicted, future)
        else:
            scores = torch.bmm(predicted, future.transpose(1, 2))  # (K, B, B)
        log_probs = F.log_softmax(scores, dim=-1)
        positives = torch.diagonal(log_probs, dim1=-2, dim2=-1)  # (K, B)
        loss = -positives.mean()
        hits = torch.eq(torch.argmax(F.softmax(scores, dim=-1), dim=-1), torch.arange(batch))
        accuracies = hits.float().mean(dim=1).tolist()
        return loss, accuracies, hidden

    @torch.no_grad()
    def features(self, x):
        z = self.encoder(x)
        context, _ = self.gru(z)
        return context.mean(dim=1)


train_x, train_y = make_audio(256)
test_x, test_y = make_audio(128)
print(f"data train={tuple(train_x.shape)} test={tuple(test_x.shape)}")

model = CPC()
print(f"frames per sequence: {model.encoder(train_x[:1]).shape[1]}")
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
batch_size = 32
for epoch in range(6):
    permutation = torch.randperm(train_x.shape[0])
    total, step_hits = 0.0, np.zeros(PREDICT_STEPS)
    batches = 0
    for start in range(0, train_x.shape[0], batch_size):
        idx = permutation[start:start + batch_size]
        loss, accuracies, _ = model(train_x[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
        step_hits += np.array(accuracies)
        batches += 1
    print(f"epoch {epoch} infonce={total / batches:.4f} acc_per_step="
          + ",".join(f"{a:.3f}" for a in step_hits / batches))

model.eval()
with torch.no_grad():
    bmm_loss, bmm_acc, hidden = model(test_x[:64])
    einsum_loss, einsum_acc, _ = model(test_x[:64], use_einsum=True)
print(f"hidden shape {tuple(hidden.shape)}")
agree = torch.allclose(bmm_loss, einsum_loss, atol=1e-5) and bmm_acc == einsum_acc
print(f"test infonce={bmm_loss.item():.4f} bmm/einsum agree: {agree}")
chance_loss = float(np.log(64))
print(f"chance infonce={chance_loss:.4f}")

# Linear probe on frozen features.
for p in model.parameters():
    p.requires_grad_(False)
train_features = model.features(train_x)
test_features = model.features(test_x)
mean, std = train_features.mean(0, keepdim=True), train_features.std(0, keepdim=True) + 1e-6
train_features = (train_features - mean) / std
test_features = (test_features - mean) / std
probe = nn.Linear(train_features.shape[1], NUM_CLASSES)
probe_optimizer = torch.optim.SGD(probe.parameters(), lr=0.1, momentum=0.9)
for epoch in range(100):
    probe_optimizer.zero_grad()
    probe_loss = F.cross_entropy(probe(train_features), train_y)
    probe_loss.backward()
    probe_optimizer.step()
    if epoch % 25 == 0:
        print(f"probe epoch {epoch:3d} loss={probe_loss.item():.4f}")
frozen = all(not p.requires_grad for p in model.parameters())
probe_acc = (probe(test_features).argmax(1) == test_y).float().mean().item()
print(f"encoder frozen: {frozen} probe test acc={probe_acc:.4f}")
print(f"FINAL infonce={bmm_loss.item():.4f} step1_acc={bmm_acc[0]:.4f} step3_acc={bmm_acc[2]:.4f} "
      f"probe_acc={probe_acc:.4f} agree={int(agree)}")
