"""The Neural Accumulator and the Neural Arithmetic Logic Unit (Trask et al., 2018) as kevinzakka's
NALU-pytorch writes them, on the paper's static arithmetic task.

``NeuralAccumulatorCell``: ``W_hat``/``M_hat`` from ``torch.Tensor(out_dim, in_dim)`` filled by
``init.kaiming_uniform_(..., a=math.sqrt(5))``, ``register_parameter('bias', None)``, the weight
``W = torch.tanh(self.W_hat) * torch.sigmoid(self.M_hat)`` and ``F.linear(input, W, self.bias)``,
an ``extra_repr``. ``NeuralArithmeticLogicUnitCell``: the learned gate
``torch.sigmoid(F.linear(input, self.G, self.bias))`` on an ``init.xavier_uniform_`` ``G``, the
log-space path ``torch.exp(torch.log(torch.abs(input) + self.eps) @ W.t())`` sharing the NAC's
weights, and ``g * a + (1 - g) * m``. Stacks by ``nn.Sequential(*layers)``; MLP baselines with
``nn.ReLU6`` and ``nn.Hardtanh``; RMSprop with ``clip_grad_norm_``.

The task: 10 inputs, ``a`` and ``b`` sums of two fixed disjoint subsets (``x[:, idx].sum(1)``),
the target ``a + b``, ``a - b``, ``a * b`` or ``a / b``; trained on inputs in the interpolation
range, tested inside it and on larger inputs (extrapolation). Errors are reported as the paper does,
relative to the same architecture at initialisation (100 = no better than untrained); the ``FINAL``
line has each model's log10 extrapolation error per operation.
"""
# ruff: noqa: UP032  (the repo's own spelling: str.format in extra_repr)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init
from torch.nn.parameter import Parameter

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

IN_DIM, HIDDEN = 10, 2
INTERPOLATION, EXTRAPOLATION = (0.5, 1.5), (1.5, 4.0)


class NeuralAccumulatorCell(nn.Module):
    """A NAC: a linear map whose weights are pushed towards {-1, 0, 1}."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.W_hat = Parameter(torch.Tensor(out_dim, in_dim))
        self.M_hat = Parameter(torch.Tensor(out_dim, in_dim))
        self.register_parameter('bias', None)
        init.kaiming_uniform_(self.W_hat, a=math.sqrt(5))
        init.kaiming_uniform_(self.M_hat, a=math.sqrt(5))

    @property
    def W(self):
        return torch.tanh(self.W_hat) * torch.sigmoid(self.M_hat)

    def forward(self, input):
        return F.linear(input, self.W, self.bias)

    def extra_repr(self):
        return 'in_dim={}, out_dim={}'.format(self.in_dim, self.out_dim)


class NeuralArithmeticLogicUnitCell(nn.Module):
    """A NALU: a gate between the NAC's sum and its product in log space."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.eps = 1e-10
        self.G = Parameter(torch.Tensor(out_dim, in_dim))
        self.nac = NeuralAccumulatorCell(in_dim, out_dim)
        self.register_parameter('bias', None)
        init.xavier_uniform_(self.G)

    def forward(self, input):
        a = self.nac(input)
        g = torch.sigmoid(F.linear(input, self.G, self.bias))
        add_sub = g * a
        log_input = torch.log(torch.abs(input) + self.eps)
        m = torch.exp(log_input @ self.nac.W.t())
        mul_div = (1 - g) * m
        return add_sub + mul_div

    def extra_repr(self):
        return 'in_dim={}, out_dim={}'.format(self.in_dim, self.out_dim)


def stack(cell, in_dim, hidden_dim, out_dim, num_layers=2):
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    layers = [cell(dims[i], dims[i + 1]) for i in range(num_layers)]
    return nn.Sequential(*layers)


def mlp(activation):
    return nn.Sequential(nn.Linear(IN_DIM, 16), activation(), nn.Linear(16, 16), activation(), nn.Linear(16, 1))


OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
perm = rng.permutation(IN_DIM)
idx_a, idx_b = np.sort(perm[:3]), np.sort(perm[3:6])
print(f"a sums inputs {idx_a.tolist()}, b sums inputs {idx_b.tolist()}")


def make_data(op, n, low, high):
    x = torch.from_numpy(rng.uniform(low, high, size=(n, IN_DIM)).astype(np.float32))
    a, b = x[:, idx_a].sum(1), x[:, idx_b].sum(1)
    return x, OPS[op](a, b).unsqueeze(1)


def mse(model, x, y):
    with torch.no_grad():
        return F.mse_loss(model(x), y).item()


def train(model, x, y, iterations=600, lr=0.02):
    optimizer = torch.optim.RMSprop(model.parameters(), lr=lr)
    for _ in range(iterations):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
    return loss.item()


# the NAC's weights start inside (-1, 1) and the NALU shares them in both paths
probe = stack(NeuralArithmeticLogicUnitCell, IN_DIM, HIDDEN, 1)
print(probe)
w = probe[0].nac.W
print(f"NAC weight in (-1, 1) {bool(w.abs().max().item() < 1)} shape {tuple(w.shape)} "
      f"parameters {[name for name, _ in probe[0].named_parameters()]} bias {probe[0].bias}")
x_probe, _ = make_data("mul", 4, *INTERPOLATION)
direct = torch.exp(torch.log(torch.abs(x_probe) + 1e-10) @ w.t())
print(f"log-space path is a product of powers {torch.allclose(direct, torch.exp(probe[0].nac(torch.log(x_probe.abs() + 1e-10))))}")

models = {
    "relu6": lambda: mlp(nn.ReLU6),
    "hardtanh": lambda: mlp(nn.Hardtanh),
    "nac": lambda: stack(NeuralAccumulatorCell, IN_DIM, HIDDEN, 1),
    "nalu": lambda: stack(NeuralArithmeticLogicUnitCell, IN_DIM, HIDDEN, 1),
}
results = {}
for op in OPS:
    x_train, y_train = make_data(op, 256, *INTERPOLATION)
    x_inter, y_inter = make_data(op, 256, *INTERPOLATION)
    x_extra, y_extra = make_data(op, 256, *EXTRAPOLATION)
    for name, build in models.items():
        model = build()
        random_inter, random_extra = mse(model, x_inter, y_inter), mse(model, x_extra, y_extra)
        final_loss = train(model, x_train, y_train)
        inter = 100 * mse(model, x_inter, y_inter) / random_inter
        extra = 100 * mse(model, x_extra, y_extra) / random_extra
        results[f"{name}_{op}"] = math.log10(max(extra, 1e-6))
        print(f"{op} {name:8s} train loss {final_loss:.4g} interpolation {inter:.4g}% extrapolation {extra:.4g}%")
    if op == "add":
        learned = model[0].nac.W.detach()
        near = ((learned - learned.round()).abs() < 0.1).float().mean().item()
        print(f"add: NALU first-layer weights within 0.1 of an integer {near:.2f}")

print("FINAL " + " ".join(f"{key}={value:.4f}" for key, value in results.items()))
