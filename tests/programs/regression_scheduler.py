"""Regression with custom weight initialisation and a one-cycle learning-rate schedule.

``model.apply(init_weights)`` with ``kaiming_normal_`` / ``zeros_``, ``MSELoss``, AdamW with
``OneCycleLR`` stepped per batch, a validation split, and early-stopping bookkeeping that keeps
the best ``state_dict`` (``copy.deepcopy``) and restores it at the end.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(0)
x_np = rng.uniform(-3, 3, size=(800, 2)).astype(np.float32)
y_np = (np.sin(x_np[:, :1]) * np.cos(x_np[:, 1:]) + 0.05 * rng.randn(800, 1)).astype(np.float32)
x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
train_loader = DataLoader(TensorDataset(x[:640], y[:640]), batch_size=32, shuffle=True)
x_val, y_val = x[640:], y[640:]


def init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)


model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
model.apply(init_weights)
criterion = nn.MSELoss()
epochs = 12
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, epochs=epochs,
                                                steps_per_epoch=len(train_loader))

best_loss = float("inf")
best_state = None
for epoch in range(epochs):
    model.train()
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        val_loss = criterion(model(x_val), y_val).item()
    if val_loss < best_loss:
        best_loss = val_loss
        best_state = copy.deepcopy(model.state_dict())
    if epoch % 3 == 2:
        print(f"epoch {epoch + 1:3d} val mse {val_loss:.5f} lr {optimizer.param_groups[0]['lr']:.6f}")

model.load_state_dict(best_state)
with torch.no_grad():
    restored_loss = criterion(model(x_val), y_val).item()
print(f"best val mse {best_loss:.5f}, restored model val mse {restored_loss:.5f}")
print(f"FINAL loss={restored_loss:.5f}")
