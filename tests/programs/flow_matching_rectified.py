"""Conditional flow matching (Lipman et al. 2023, with Tong et al.'s minibatch-OT couplings) and
rectified flow (Liu et al. 2023) on a 2-D toy, as torchcfm's examples and the rectified-flow
notebooks write them: ``t = torch.rand(B, 1)``, ``x_t = (1 - t) * x0 + t * x1`` with the target
velocity ``x1 - x0``, sinusoidal time features (``torch.exp(-math.log(10000) * torch.arange(half)
/ half)``, ``torch.cat([emb.sin(), emb.cos()], dim=-1)``), a velocity MLP, the Euler and midpoint
samplers under ``torch.no_grad()``, minibatch OT couplings by a log-domain Sinkhorn (``torch.cdist``
costs, ``torch.logsumexp`` updates, ``torch.multinomial`` on the flattened plan) checked against the
exact assignment found by trying every permutation of a tiny batch (``itertools.permutations`` into a
long tensor, ``C[torch.arange(n), perms].sum(1)``), the reflow step on the sampled couplings of the
first flow (a ``copy.deepcopy`` student trained on ``(z0, model(z0))`` pairs), and sample quality by
an RBF-kernel MMD from ``torch.cdist``; straightness by the one-step Euler sample's MMD.
"""

import copy
import itertools
import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def sample_8gaussians(n, rng):
    centers = [(math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)) for k in range(8)]
    centers = 2.0 * np.array(centers, dtype=np.float32)
    which = rng.randint(0, 8, size=n)
    return (centers[which] + 0.15 * rng.randn(n, 2)).astype(np.float32)


class SinusoidalTimeEmbedding(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        emb = 100.0 * t * freqs[None, :]
        return torch.cat([emb.sin(), emb.cos()], dim=-1)


class VelocityField(nn.Module):
    def __init__(self, dim=2, hidden=64, time_dim=16):
        super().__init__()
        self.time_emb = SinusoidalTimeEmbedding(time_dim)
        self.net = nn.Sequential(
            nn.Linear(dim + time_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, dim),
        )

    def forward(self, x, t):
        return self.net(torch.cat([x, self.time_emb(t)], dim=-1))


def sinkhorn_plan(x0, x1, reg=0.05, n_iters=50):
    """Entropic OT plan between two uniform point clouds, in the log domain."""
    cost = torch.cdist(x0, x1) ** 2
    cost = cost / cost.max()
    n, m = cost.shape
    log_a = torch.full((n,), -math.log(n))
    log_b = torch.full((m,), -math.log(m))
    f = torch.zeros(n)
    g = torch.zeros(m)
    for _ in range(n_iters):
        f = reg * (log_a - torch.logsumexp((g[None, :] - cost) / reg, dim=1))
        g = reg * (log_b - torch.logsumexp((f[:, None] - cost) / reg, dim=0))
    return torch.exp((f[:, None] + g[None, :] - cost) / reg)


def ot_pairs(x0, x1):
    plan = sinkhorn_plan(x0, x1)
    choice = torch.multinomial(plan.flatten(), x0.shape[0], replacement=True)
    i, j = torch.div(choice, x1.shape[0], rounding_mode="floor"), choice % x1.shape[0]
    return x0[i], x1[j]


def exact_assignment(cost):
    n = cost.shape[0]
    perms = torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long)
    totals = cost[torch.arange(n), perms].sum(1)
    best = torch.argmin(totals)
    return perms[best], totals[best]


def cfm_loss(model, x0, x1):
    t = torch.rand(x0.shape[0], 1)
    xt = (1 - t) * x0 + t * x1
    ut = x1 - x0
    vt = model(xt, t)
    return torch.mean((vt - ut) ** 2)


@torch.no_grad()
def euler_sample(model, x0, steps):
    x = x0.clone()
    dt = 1.0 / steps
    for k in range(steps):
        t = torch.full((x.shape[0], 1), k * dt)
        x = x + dt * model(x, t)
    return x


@torch.no_grad()
def midpoint_sample(model, x0, steps):
    x = x0.clone()
    dt = 1.0 / steps
    for k in range(steps):
        t = torch.full((x.shape[0], 1), k * dt)
        x_mid = x + 0.5 * dt * model(x, t)
        x = x + dt * model(x_mid, t + 0.5 * dt)
    return x


def mmd_rbf(x, y, bandwidths=(0.2, 0.5, 1.0, 2.0)):
    xx, yy, xy = torch.cdist(x, x) ** 2, torch.cdist(y, y) ** 2, torch.cdist(x, y) ** 2
    total = 0.0
    for h in bandwidths:
        total += torch.exp(-xx / (2 * h * h)).mean() + torch.exp(-yy / (2 * h * h)).mean() \
            - 2 * torch.exp(-xy / (2 * h * h)).mean()
    return total.item()


def train(model, sampler, steps, batch_size=256, lr=2e-3, label=""):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(1, steps + 1):
        x0, x1 = sampler(batch_size)
        loss = cfm_loss(model, x0, x1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 200 == 0:
            print(f"{label} step {step} loss {loss.item():.4f}")
    return loss.item()


data_rng = np.random.RandomState(seed)
data = torch.from_numpy(sample_8gaussians(8192, data_rng))
test_data = torch.from_numpy(sample_8gaussians(512, data_rng))


def independent_pairs(batch_size):
    x1 = data[torch.randint(0, data.shape[0], (batch_size,))]
    return torch.randn_like(x1), x1


def minibatch_ot_pairs(batch_size):
    x0, x1 = independent_pairs(batch_size)
    return ot_pairs(x0, x1)


# the exact assignment of 6 points by brute force, and Sinkhorn's plan at a small regulariser
small0, small1 = torch.randn(6, 2), torch.from_numpy(sample_8gaussians(6, data_rng))
small_cost = torch.cdist(small0, small1) ** 2
perm, best_cost = exact_assignment(small_cost)
plan = sinkhorn_plan(small0, small1, reg=0.01, n_iters=300)
agree = (plan.argmax(dim=1) == perm).sum().item()
identity_cost = small_cost.diagonal().sum().item()
print(f"assignment of 6: {len(list(itertools.permutations(range(6))))} permutations, best cost {best_cost.item():.4f} "
      f"(identity {identity_cost:.4f}), sinkhorn argmax agrees on {agree} of 6, plan mass {plan.sum().item():.4f}")

cfm = VelocityField()
loss_cfm = train(cfm, independent_pairs, 400, label="cfm")
otcfm = VelocityField()
loss_ot = train(otcfm, minibatch_ot_pairs, 400, label="ot-cfm")

z0 = torch.randn(512, 2)
results = {}
for name, model in (("cfm", cfm), ("ot", otcfm)):
    model.eval()
    results[f"mmd_{name}_euler1"] = mmd_rbf(euler_sample(model, z0, 1), test_data)
    results[f"mmd_{name}_euler20"] = mmd_rbf(euler_sample(model, z0, 20), test_data)
    results[f"mmd_{name}_mid10"] = mmd_rbf(midpoint_sample(model, z0, 10), test_data)
    print(f"{name}: mmd one Euler step {results[f'mmd_{name}_euler1']:.4f}, 20 Euler steps "
          f"{results[f'mmd_{name}_euler20']:.4f}, 10 midpoint steps {results[f'mmd_{name}_mid10']:.4f}")

# reflow: couple fresh noise with the first flow's samples and fit a straighter flow to the pairs
reflow_z0 = torch.randn(2048, 2)
reflow_z1 = midpoint_sample(cfm, reflow_z0, 20)


def reflow_pairs(batch_size):
    idx = torch.randint(0, reflow_z0.shape[0], (batch_size,))
    return reflow_z0[idx], reflow_z1[idx]


rectified = copy.deepcopy(cfm)
rectified.train()
loss_reflow = train(rectified, reflow_pairs, 400, lr=1e-3, label="reflow")
rectified.eval()
results["mmd_reflow_euler1"] = mmd_rbf(euler_sample(rectified, z0, 1), test_data)
with torch.no_grad():
    straight = (euler_sample(rectified, z0, 1) - midpoint_sample(rectified, z0, 10)).norm(dim=1).mean().item()
    curved = (euler_sample(cfm, z0, 1) - midpoint_sample(cfm, z0, 10)).norm(dim=1).mean().item()
print(f"reflow: mmd one Euler step {results['mmd_reflow_euler1']:.4f}, one-step gap {straight:.4f} "
      f"(first flow {curved:.4f})")
print(f"FINAL loss_cfm={loss_cfm:.4f} loss_ot={loss_ot:.4f} loss_reflow={loss_reflow:.4f} "
      + " ".join(f"{key}={value:.4f}" for key, value in results.items())
      + f" gap_reflow={straight:.4f} gap_cfm={curved:.4f} agree={agree}")
