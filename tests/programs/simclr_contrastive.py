"""SimCLR, the shape of sthalles/SimCLR (``info_nce_loss``) and Spijkervet/SimCLR (``NT_Xent``):
two augmented views per sample from tensor augmentations (``torch.flip``, ``torch.roll`` with a
random shift of up to 3 steps, Gaussian noise, random masking); an encoder + projection head; the InfoNCE logits
built as sthalles does (``torch.cat([torch.arange(batch_size) for i in range(n_views)])``,
``(labels.unsqueeze(0) == labels.unsqueeze(1)).float()``, ``F.normalize(features, dim=1)``,
``features @ features.T``, the diagonal dropped through ``torch.eye(..., dtype=torch.bool)`` and
``[~mask].view(...)``, positives first, ``torch.zeros(..., dtype=torch.long)`` targets) and as
Spijkervet does (``masked_fill`` of the diagonal with ``torch.finfo(sim.dtype).min``, 2N targets
from ``torch.arange``, ``F.cross_entropy(reduction="sum") / 2N``): both must agree; top-k
``accuracy`` of the contrastive task; then a linear probe on the frozen features
(``torch.no_grad()`` features, ``nn.Linear`` + Adam). Data: noisy 1-d signals of four shapes with random phase and amplitude.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

L = 32


def make_signals(n, rng):
    t = np.linspace(0, 1, L)
    y = rng.randint(0, 4, n)
    phase = rng.uniform(0, 2 * math.pi, n)[:, None]
    waves = [np.sin(2 * math.pi * 2 * t + phase), np.sign(np.sin(2 * math.pi * 2 * t + phase)),
             np.sin(2 * math.pi * 5 * t + phase), ((t * 3 + phase / (2 * math.pi)) % 1) * 2 - 1]
    amplitude = rng.uniform(0.5, 1.5, n)[:, None]
    x = amplitude * np.stack([waves[k][i] for i, k in enumerate(y)]) + 0.3 * rng.randn(n, L)
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1), torch.from_numpy(y)


def augment(x):
    """Tensor-only augmentations: random flip in time, random circular shift, noise, masking."""
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip.view(-1, 1, 1), torch.flip(x, dims=[-1]), x)
    shift = int(torch.randint(-3, 4, (1,)))
    x = torch.roll(x, shifts=shift, dims=-1)
    x = x + 0.1 * torch.randn_like(x)
    mask = (torch.rand(x.shape[0], 1, L) > 0.1).float()
    return x * mask


class Encoder(nn.Module):
    def __init__(self, out_dim=16):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv1d(1, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(),
            nn.Conv1d(16, 32, 5, padding=2, stride=2), nn.BatchNorm1d(32), nn.ReLU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten())
        dim_mlp = 32
        # add mlp projection head
        self.head = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), nn.Linear(dim_mlp, out_dim))

    def forward(self, x):
        return self.head(self.backbone(x))


def info_nce_loss(features, batch_size, n_views=2, temperature=0.5):
    labels = torch.cat([torch.arange(batch_size) for i in range(n_views)], dim=0)
    labels = (labels.unsqueeze(0) == labels.unsqueeze(1)).float()

    features = F.normalize(features, dim=1)

    similarity_matrix = torch.matmul(features, features.T)

    # discard the main diagonal from both: labels and similarities matrix
    mask = torch.eye(labels.shape[0], dtype=torch.bool)
    labels = labels[~mask].view(labels.shape[0], -1)
    similarity_matrix = similarity_matrix[~mask].view(similarity_matrix.shape[0], -1)

    # select and combine multiples positives
    positives = similarity_matrix[labels.bool()].view(labels.shape[0], -1)

    # select only the negatives the negatives
    negatives = similarity_matrix[~labels.bool()].view(similarity_matrix.shape[0], -1)

    logits = torch.cat([positives, negatives], dim=1)
    labels = torch.zeros(logits.shape[0], dtype=torch.long)

    logits = logits / temperature
    return logits, labels


def nt_xent(z_i, z_j, temperature=0.5):
    n = z_i.shape[0]
    z = F.normalize(torch.cat((z_i, z_j), dim=0), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), torch.finfo(sim.dtype).min)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, targets, reduction="sum") / (2 * n)


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)

        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))

        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


rng = np.random.RandomState(0)
x_train, y_train = make_signals(512, rng)
x_test, y_test = make_signals(256, rng)

model = Encoder()
optimizer = torch.optim.Adam(model.parameters(), 3e-3, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=8, eta_min=0, last_epoch=-1)
criterion = torch.nn.CrossEntropyLoss()
batch_size = 64
for epoch_counter in range(8):
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), batch_size):
        x = x_train[perm[i:i + batch_size]]
        images = torch.cat([augment(x), augment(x)], dim=0)
        features = model(images)
        logits, labels = info_nce_loss(features, x.shape[0])
        loss = criterion(logits, labels)

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scheduler.step()
    if epoch_counter % 2 == 1:
        top1, top5 = accuracy(logits, labels, topk=(1, 5))
        print(f"Epoch: {epoch_counter}\tLoss: {loss.item():.4f}\tTop1 accuracy: {top1[0]:.2f}\tTop5: {top5[0]:.2f}")

# the two spellings of the loss agree
with torch.no_grad():
    model.eval()
    x = x_test[:64]
    z_i, z_j = model(augment(x)), model(augment(x))
    logits, labels = info_nce_loss(torch.cat([z_i, z_j]), 64)
    same = math.isclose(criterion(logits, labels).item(), nt_xent(z_i, z_j).item(), rel_tol=1e-4)
    print('info_nce_loss and NT_Xent agree:', same)
    contrastive_top1 = accuracy(logits, labels)[0].item()

# linear probe on frozen features
with torch.no_grad():
    f_train, f_test = model.backbone(x_train), model.backbone(x_test)
probe = nn.Linear(f_train.shape[1], 4)
probe_opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
for _step in range(200):
    probe_opt.zero_grad()
    F.cross_entropy(probe(f_train), y_train).backward()
    probe_opt.step()
probe_acc = (probe(f_test).argmax(1) == y_test).float().mean().item()
print(f"FINAL contrastive_top1={contrastive_top1 / 100:.4f} probe_acc={probe_acc:.4f}")
