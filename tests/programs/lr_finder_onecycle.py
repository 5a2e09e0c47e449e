"""fastai's learning-rate range test and one-cycle policy, written by hand as blog posts and the
pytorch-lr-finder package (davidtvs/pytorch-lr-finder) do it, then ``OneCycleLR``.

The range test: model and optimizer ``state_dict``s saved by ``copy.deepcopy``, an exponential sweep
``lr = start_lr * (end_lr / start_lr) ** (i / (num_iter - 1))`` written into every
``optimizer.param_groups`` entry, the loss smoothed by an exponential moving average with bias
correction (``avg_loss / (1 - beta ** (i + 1))``), a stop on divergence (``smoothed > 4 * best``),
the state restored by ``load_state_dict``, and the suggestion at the steepest descent of the
smoothed loss over ``log10(lr)`` by ``np.gradient``. Then one cycle at ``max_lr = suggestion``
(clamped), by ``OneCycleLR(max_lr, total_steps, pct_start, anneal_strategy='cos',
cycle_momentum=True, base_momentum, max_momentum, div_factor, final_div_factor)`` on SGD with
momentum and on Adam (momentum cycled through ``betas[0]``), ``get_last_lr()`` and the momentum
traced and printed at a few steps; a ``three_phase=True``/``anneal_strategy='linear'`` variant and
the error for stepping past ``total_steps``.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(0)
weights_true = rng.randn(16, 4).astype(np.float32)
features = rng.randn(768, 16).astype(np.float32)
labels = np.argmax(features @ weights_true + 0.5 * rng.randn(768, 4).astype(np.float32), axis=1)
train_ds = TensorDataset(torch.from_numpy(features[:512]), torch.from_numpy(labels[:512]).long())
valid_x, valid_y = torch.from_numpy(features[512:]), torch.from_numpy(labels[512:]).long()
train_dl = DataLoader(train_ds, batch_size=32, shuffle=True)


def get_model():
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))


def validate(model):
    model.eval()
    with torch.no_grad():
        out = model(valid_x)
        loss = F.cross_entropy(out, valid_y).item()
        acc = (out.argmax(dim=1) == valid_y).float().mean().item()
    model.train()
    return loss, acc


class LRFinder:
    def __init__(self, model, optimizer, criterion):
        self.model = model
        self.optimizer = optimizer
        self.criterion = criterion
        self.history = {"lr": [], "loss": []}
        self.best_loss = None
        self.state_cache = {"model": copy.deepcopy(model.state_dict()),
                            "optimizer": copy.deepcopy(optimizer.state_dict())}

    def reset(self):
        self.model.load_state_dict(self.state_cache["model"])
        self.optimizer.load_state_dict(self.state_cache["optimizer"])

    def range_test(self, train_loader, start_lr=1e-5, end_lr=10, num_iter=100, smooth_f=0.98, diverge_th=4):
        self.history = {"lr": [], "loss": []}
        self.best_loss = None
        avg_loss = 0.0
        iterator = iter(train_loader)
        for iteration in range(num_iter):
            lr = start_lr * (end_lr / start_lr) ** (iteration / (num_iter - 1))
            for param_group in self.optimizer.param_groups:
                param_group["lr"] = lr
            try:
                inputs, labels = next(iterator)
            except StopIteration:
                iterator = iter(train_loader)
                inputs, labels = next(iterator)

            self.optimizer.zero_grad()
            loss = self.criterion(self.model(inputs), labels)
            loss.backward()
            self.optimizer.step()

            avg_loss = smooth_f * avg_loss + (1 - smooth_f) * loss.item()
            smoothed_loss = avg_loss / (1 - smooth_f ** (iteration + 1))
            self.history["lr"].append(lr)
            self.history["loss"].append(smoothed_loss)
            if self.best_loss is None or smoothed_loss < self.best_loss:
                self.best_loss = smoothed_loss
            if smoothed_loss > diverge_th * self.best_loss or math.isnan(smoothed_loss):
                print(f"Stopping early, the loss has diverged at iteration {iteration}")
                break

    def suggestion(self, skip_start=10, skip_end=5):
        lrs = np.array(self.history["lr"][skip_start:-skip_end])
        losses = np.array(self.history["loss"][skip_start:-skip_end])
        min_grad_idx = np.gradient(losses, np.log10(lrs)).argmin()
        return lrs[min_grad_idx]


# --- the range test on SGD with momentum -------------------------------------------------------------------------
model = get_model()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
weights_before = model[0].weight.detach().clone()
finder = LRFinder(model, optimizer, nn.CrossEntropyLoss())
finder.range_test(train_dl, start_lr=1e-4, end_lr=100, num_iter=100)
iterations_run = len(finder.history["lr"])
print(f"range test ran {iterations_run > 20} best smoothed loss {finder.best_loss:.4f}")
print(f"lr trace {finder.history['lr'][0]:.2e} {finder.history['lr'][1]:.2e} {finder.history['lr'][2]:.2e}")
suggested_lr = float(finder.suggestion())
print(f"suggested lr {suggested_lr:.2e} between {1e-4 < suggested_lr < 100}")
finder.reset()
print("weights restored", torch.equal(model[0].weight, weights_before), len(optimizer.state_dict()["state"]))
print(f"lr after reset {optimizer.param_groups[0]['lr']:.1e}")

# --- one cycle on SGD: lr up then down, momentum down then up ----------------------------------------------------
max_lr = min(max(suggested_lr, 0.01), 0.3)
epochs = 6
model = get_model()
optimizer = torch.optim.SGD(model.parameters(), lr=max_lr / 25, momentum=0.9, nesterov=True)
scheduler = OneCycleLR(optimizer, max_lr=max_lr, total_steps=epochs * len(train_dl), pct_start=0.3,
                       anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                       div_factor=25.0, final_div_factor=1e4)
print(f"start lr/max_lr {optimizer.param_groups[0]['lr'] / max_lr:.4f} momentum {optimizer.param_groups[0]['momentum']:.4f}")
print(f"initial_lr {optimizer.param_groups[0]['initial_lr'] / max_lr:.4f} "
      f"max_lr {optimizer.param_groups[0]['max_lr'] / max_lr:.4f} min_lr {optimizer.param_groups[0]['min_lr'] / max_lr:.2e}")
lr_trace, momentum_trace = [], []
for epoch in range(epochs):
    for inputs, targets in train_dl:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        lr_trace.append(scheduler.get_last_lr()[0])
        momentum_trace.append(optimizer.param_groups[0]["momentum"])
    valid_loss, valid_acc = validate(model)
    print(f"epoch {epoch} lr/max_lr {lr_trace[-1] / max_lr:.4f} momentum {momentum_trace[-1]:.4f} "
          f"train_loss {loss.item():.4f} valid_loss {valid_loss:.4f} valid_acc {valid_acc:.4f}")
peak = int(np.argmax(lr_trace))
print(f"peak at step {peak} of {len(lr_trace)} momentum there {momentum_trace[peak]:.4f}")
print("lr/max_lr", " ".join(f"{lr / max_lr:.5f}" for lr in lr_trace[::16]))
sgd_loss, sgd_acc = validate(model)
try:
    scheduler.step()
except ValueError as error:
    print("ValueError:", str(error).split(".")[0])

# --- one cycle on Adam: beta1 cycles in place of momentum --------------------------------------------------------
model = get_model()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-4)
scheduler = OneCycleLR(optimizer, max_lr=1e-2, epochs=epochs, steps_per_epoch=len(train_dl), pct_start=0.25,
                       anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                       div_factor=25.0, final_div_factor=1e4)
print(f"adam start lr {scheduler.get_last_lr()[0]:.6f} betas {optimizer.param_groups[0]['betas']}")
for epoch in range(epochs):
    for inputs, targets in train_dl:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
    beta1, beta2 = optimizer.param_groups[0]["betas"]
    print(f"adam epoch {epoch} lr {scheduler.get_last_lr()[0]:.6f} beta1 {beta1:.4f} beta2 {beta2:.2f} "
          f"loss {loss.item():.4f}")
adam_loss, adam_acc = validate(model)
print(f"adam state_dict keys {sorted(scheduler.state_dict().keys())[:6]}")

# --- three phases, linear annealing, two parameter groups with their own max_lr ----------------------------------
model = get_model()
optimizer = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[2:].parameters()}], lr=0.01,
                            momentum=0.9)
scheduler = OneCycleLR(optimizer, max_lr=[0.1, 0.3], total_steps=20, three_phase=True, anneal_strategy="linear")
groups_trace = []
for _ in range(20):
    optimizer.step()
    scheduler.step()
    groups_trace.append(tuple(scheduler.get_last_lr()))
print("three phase", " ".join(f"{a:.5f}/{b:.5f}" for a, b in groups_trace[::4]))
print(f"final {groups_trace[-1][0]:.3e} {groups_trace[-1][1]:.3e}")

print(f"FINAL suggested_log10_lr={math.log10(suggested_lr):.4f} sgd_loss={sgd_loss:.4f} sgd_acc={sgd_acc:.4f} "
      f"adam_loss={adam_loss:.4f} adam_acc={adam_acc:.4f} peak_step={peak} final_lr={lr_trace[-1]:.3e}")
