"""Differentially private SGD with torch.func: per-sample gradients from
``vmap(grad(loss over functional_call))``, each clipped to a norm bound, summed, noised, and
applied to a parameter dict by hand — the recipe of the per-sample-gradients tutorial.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(0)
weights = rng.randn(16, 3).astype(np.float32)


def make(n):
    points = rng.randn(n, 16).astype(np.float32)
    labels = (points @ weights + 0.5 * rng.randn(n, 3).astype(np.float32)).argmax(1)
    return torch.from_numpy(points), torch.from_numpy(labels).long()


x_train, y_train = make(512)
x_test, y_test = make(300)

model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3))
params = {name: p.detach().clone() for name, p in model.named_parameters()}
clip, noise_multiplier, lr, batch = 1.0, 0.5, 0.5, 32


def sample_loss(p, x, y):
    logits = functional_call(model, p, (x.unsqueeze(0),))
    return F.cross_entropy(logits, y.unsqueeze(0))


per_sample_grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))


def evaluate():
    with torch.no_grad():
        logits = functional_call(model, params, (x_test,))
        return F.cross_entropy(logits, y_test).item(), (logits.argmax(1) == y_test).float().mean().item()


for epoch in range(4):
    order = torch.randperm(len(x_train))
    clipped_fraction = 0.0
    for start in range(0, len(x_train), batch):
        index = order[start:start + batch]
        grads = per_sample_grads(params, x_train[index], y_train[index])
        norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))
        factors = (clip / (norms + 1e-6)).clamp(max=1.0)
        clipped_fraction += (factors < 1.0).float().mean().item()
        for name, g in grads.items():
            summed = (g * factors.view(-1, *([1] * (g.dim() - 1)))).sum(0)
            noisy = summed + noise_multiplier * clip * torch.randn_like(summed)
            params[name] = params[name] - lr * noisy / len(index)
    test_loss, test_acc = evaluate()
    batches = (len(x_train) + batch - 1) // batch
    print(f"epoch {epoch} clipped {clipped_fraction / batches:.3f} test_loss {test_loss:.4f} test_acc {test_acc:.3f}")

print(f"FINAL loss={test_loss:.4f} acc={test_acc:.4f}")
