"""Checkpoint and resume: save model, optimizer and scheduler state, then continue training.

Trains two epochs, saves ``{"epoch", "model_state_dict", "optimizer_state_dict",
"scheduler_state_dict", "loss"}`` with ``torch.save``, trains on to the end; then builds a fresh
model, optimizer and scheduler, ``torch.load``s the checkpoint and trains the same remaining
epochs. The resumed run must end exactly where the uninterrupted one did.
"""

import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(0)
x_all = torch.from_numpy(rng.randn(256, 8).astype(np.float32))
y_all = torch.from_numpy((np.sin(rng.randn(8, 1)) * 2).astype(np.float32))
y_all = torch.tanh(x_all @ y_all) + 0.05 * torch.from_numpy(rng.randn(256, 1).astype(np.float32))


def build():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.8)
    return model, optimizer, scheduler


def train_epoch(model, optimizer, scheduler, epoch):
    # the batch order depends only on the epoch, so a resumed run sees the same batches
    order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(1000 * seed + epoch))
    total = 0.0
    for start in range(0, len(x_all), 32):
        index = order[start:start + 32]
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x_all[index]), y_all[index])
        loss.backward()
        optimizer.step()
        total += loss.item()
    scheduler.step()
    return total / (len(x_all) // 32)


num_epochs, checkpoint_epoch = 6, 2
model, optimizer, scheduler = build()
initial_state = {k: v.clone() for k, v in model.state_dict().items()}
with tempfile.TemporaryDirectory() as directory:
    path = os.path.join(directory, "checkpoint.pt")
    for epoch in range(num_epochs):
        loss = train_epoch(model, optimizer, scheduler, epoch)
        print(f"epoch {epoch} loss {loss:.5f} lr {scheduler.get_last_lr()[0]:.5f}")
        if epoch + 1 == checkpoint_epoch:
            torch.save({
                "epoch": epoch,
                "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(),
                "scheduler_state_dict": scheduler.state_dict(),
                "loss": loss,
            }, path)
            print(f"saved checkpoint at epoch {epoch}")

    resumed_model, resumed_optimizer, resumed_scheduler = build()
    checkpoint = torch.load(path)
    resumed_model.load_state_dict(checkpoint["model_state_dict"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler_state_dict"])
    start_epoch = checkpoint["epoch"] + 1
    print(f"resumed from epoch {checkpoint['epoch']} (loss {checkpoint['loss']:.5f}) "
          f"lr {resumed_scheduler.get_last_lr()[0]:.5f}")
    for epoch in range(start_epoch, num_epochs):
        resumed_loss = train_epoch(resumed_model, resumed_optimizer, resumed_scheduler, epoch)
        print(f"resumed epoch {epoch} loss {resumed_loss:.5f}")

difference = max((p - q).abs().max().item()
                 for p, q in zip(model.state_dict().values(), resumed_model.state_dict().values()))
moved = max((p - q).abs().max().item() for p, q in zip(model.state_dict().values(), initial_state.values()))
print(f"parameters moved {moved > 0.01}, resumed equals uninterrupted: {difference == 0.0}")
print(f"FINAL loss={loss:.5f} resume_diff={difference:.3e}")
