"""Warm-up, warm restarts and weight averaging: the schedule-heavy end of a training script.

``nn.DataParallel`` around the model (as older scripts write unconditionally), ``SequentialLR``
chaining a ``LinearLR`` warm-up into ``CosineAnnealingWarmRestarts``, then an SWA phase with
``AveragedModel`` + ``SWALR`` and ``update_bn`` for the BatchNorm statistics, and an EMA copy
updated every batch with ``get_ema_multi_avg_fn``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts, LinearLR, SequentialLR
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn, update_bn
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

rng = np.random.RandomState(0)
centers = rng.randn(5, 20).astype(np.float32) * 1.5


def make(n):
    labels = rng.randint(0, 5, size=n)
    points = centers[labels] + 1.5 * rng.randn(n, 20).astype(np.float32)
    return torch.from_numpy(points), torch.from_numpy(labels).long()


x_train, y_train = make(640)
x_test, y_test = make(400)
train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 5))
model = nn.DataParallel(model).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
warmup = LinearLR(optimizer, start_factor=0.1, total_iters=2)
restarts = CosineAnnealingWarmRestarts(optimizer, T_0=3, eta_min=0.005)
scheduler = SequentialLR(optimizer, [warmup, restarts], milestones=[2])
ema_model = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.95))
swa_model = AveragedModel(model)
swa_scheduler = SWALR(optimizer, swa_lr=0.02, anneal_epochs=2)
swa_start = 6


def evaluate(net):
    net.eval()
    with torch.no_grad():
        logits = net(x_test.to(device))
        loss = F.cross_entropy(logits, y_test.to(device)).item()
        acc = (logits.argmax(1) == y_test.to(device)).float().mean().item()
    return loss, acc


for epoch in range(10):
    model.train()
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs.to(device)), targets.to(device))
        loss.backward()
        optimizer.step()
        ema_model.update_parameters(model)
    if epoch >= swa_start:
        swa_model.update_parameters(model)
        swa_scheduler.step()
    else:
        scheduler.step()
    test_loss, test_acc = evaluate(model)
    print(f"epoch {epoch} lr {optimizer.param_groups[0]['lr']:.4f} test_loss {test_loss:.4f} test_acc {test_acc:.3f}")

update_bn(train_loader, swa_model, device=device)
update_bn(train_loader, ema_model, device=device)
swa_loss, swa_acc = evaluate(swa_model)
ema_loss, ema_acc = evaluate(ema_model)
print(f"averaged {int(swa_model.n_averaged)} swa_acc {swa_acc:.3f} ema_acc {ema_acc:.3f}")
print(f"FINAL loss={test_loss:.4f} acc={test_acc:.4f} swa_loss={swa_loss:.4f} swa_acc={swa_acc:.4f} "
      f"ema_acc={ema_acc:.4f}")
