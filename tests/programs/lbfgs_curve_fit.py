"""Curve fitting with ``torch.optim.LBFGS`` and a closure, as in scientific-computing scripts.

Fits y = a * sin(b * x + c) + d to noisy samples; parameters are ``nn.Parameter``s of a small
module; strong-Wolfe line search.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(0)
x_np = np.linspace(-3, 3, 200)
y_np = 1.5 * np.sin(1.3 * x_np + 0.4) + 0.2 + 0.1 * rng.randn(200)
x = torch.tensor(x_np, dtype=torch.float64)
y = torch.tensor(y_np, dtype=torch.float64)


class SineModel(nn.Module):
    def __init__(self):
        super().__init__()
        # a rough initial guess, perturbed by the seed
        self.a = nn.Parameter(torch.tensor(1.0, dtype=torch.float64) + 0.1 * torch.randn((), dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(1.0, dtype=torch.float64) + 0.1 * torch.randn((), dtype=torch.float64))
        self.c = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.d = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        return self.a * torch.sin(self.b * x + self.c) + self.d


model = SineModel()
optimizer = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=20, history_size=10,
                              line_search_fn="strong_wolfe")
loss_fn = nn.MSELoss()

for step in range(5):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    print(f"step {step}: loss {loss.item():.6f}")

with torch.no_grad():
    final_loss = loss_fn(model(x), y).item()
print(f"fit: a={model.a.item():.3f} b={model.b.item():.3f} c={model.c.item():.3f} d={model.d.item():.3f}")
print(f"FINAL loss={final_loss:.6f} a={model.a.item():.4f} b={model.b.item():.4f}")
