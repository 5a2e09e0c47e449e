"""Consistency training (Song et al. 2023, "Consistency Models", and the improved-CT schedule of
Song & Dhariwal 2023) on a 2-D toy (two moons), as openai/consistency_models and its minimal
re-implementations write it: the boundary-condition parameterisation ``c_skip = sigma_data ** 2 /
((sigma - sigma_min) ** 2 + sigma_data ** 2)``, ``c_out = (sigma - sigma_min) * sigma_data / (sigma **
2 + sigma_data ** 2) ** 0.5``, ``c_in``, ``c_noise = 0.25 * torch.log(sigma)`` (so ``f(x, sigma_min) = x``);
the Karras discretisation ``(sigma_max ** (1 / rho) + i / (N - 1) * (sigma_min ** (1 / rho) -
sigma_max ** (1 / rho))) ** rho`` with the growing ``N(k) = ceil(sqrt(k / K * ((s1 + 1) ** 2 - s0 **
2) + s0 ** 2) - 1) + 1`` schedule and the EMA decay ``mu(k) = exp(s0 * log(mu0) / N(k))``; the target
network updated by ``torch._foreach_lerp_(target_params, online_params, 1 - mu)`` (checked against
``p.lerp_`` and ``p.mul_(mu).add_(q, alpha=1 - mu)``, and an EMA for sampling by ``torch._foreach_mul_``
+ ``torch._foreach_add_(..., alpha=...)``); the pseudo-Huber metric ``sqrt(||a - b|| ** 2 + c ** 2) - c``
with ``c = 0.00054 * sqrt(d)``; ``Adam(foreach=True)``; one-step sampling from ``sigma_max * randn``
and two-step sampling re-noised to an intermediate sigma by ``(tau ** 2 - sigma_min ** 2) ** 0.5``.
Samples are scored by an RBF-kernel MMD from ``torch.cdist`` and the distance to the nearest data point.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

SIGMA_MIN, SIGMA_MAX, SIGMA_DATA, RHO = 0.002, 20.0, 0.5, 7.0


def make_moons(n, rng):
    half = n // 2
    outer = np.linspace(0, math.pi, half)
    inner = np.linspace(0, math.pi, n - half)
    x = np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                        np.stack([1 - np.cos(inner), 1 - np.sin(inner) - 0.5], 1)])
    x = x + 0.05 * rng.randn(n, 2)
    x = (x - np.array([0.5, 0.25])) / np.array([0.9, 0.5])
    return x[rng.permutation(n)].astype(np.float32)


def karras_sigmas(n):
    ramp = torch.linspace(0, 1, n)
    min_inv_rho = SIGMA_MIN ** (1 / RHO)
    max_inv_rho = SIGMA_MAX ** (1 / RHO)
    return (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** RHO


def n_schedule(k, total, s0=10, s1=80):
    return math.ceil(math.sqrt(k / total * ((s1 + 1) ** 2 - s0 ** 2) + s0 ** 2) - 1) + 1


def ema_decay(n, s0=10, mu0=0.9):
    return math.exp(s0 * math.log(mu0) / n)


class TimeEmbedding(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.register_buffer("freqs", torch.randn(dim // 2) * 4.0)

    def forward(self, c_noise):
        angles = c_noise[:, None] * self.freqs[None, :] * 2 * math.pi
        return torch.cat([angles.cos(), angles.sin()], dim=1)


class ConsistencyModel(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.embed = TimeEmbedding()
        self.net = nn.Sequential(nn.Linear(2 + 32, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x, sigma):
        sigma = sigma.reshape(-1, 1)
        c_skip = SIGMA_DATA ** 2 / ((sigma - SIGMA_MIN) ** 2 + SIGMA_DATA ** 2)
        c_out = (sigma - SIGMA_MIN) * SIGMA_DATA / (sigma ** 2 + SIGMA_DATA ** 2) ** 0.5
        c_in = 1 / (sigma ** 2 + SIGMA_DATA ** 2) ** 0.5
        c_noise = 0.25 * torch.log(sigma.flatten())
        F_x = self.net(torch.cat([c_in * x, self.embed(c_noise)], dim=1))
        return c_skip * x + c_out * F_x


def pseudo_huber(a, b):
    c = 0.00054 * math.sqrt(a.shape[1])
    return torch.sqrt(((a - b) ** 2).sum(dim=1) + c ** 2) - c


def mmd_rbf(x, y, bandwidths=(0.1, 0.3, 1.0)):
    xx, yy, xy = torch.cdist(x, x) ** 2, torch.cdist(y, y) ** 2, torch.cdist(x, y) ** 2
    return sum((torch.exp(-xx / (2 * h * h)).mean() + torch.exp(-yy / (2 * h * h)).mean()
                - 2 * torch.exp(-xy / (2 * h * h)).mean()).item() for h in bandwidths)


data_rng = np.random.RandomState(seed)
data = torch.from_numpy(make_moons(8192, data_rng))
test_data = torch.from_numpy(make_moons(512, data_rng))

model = ConsistencyModel()
target = copy.deepcopy(model).requires_grad_(False)
ema = copy.deepcopy(model).requires_grad_(False)
online_params, target_params, ema_params = list(model.parameters()), list(target.parameters()), list(ema.parameters())
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)

# the boundary condition holds at initialisation: f(x, sigma_min) = x
probe = torch.randn(8, 2)
with torch.no_grad():
    boundary = (model(probe, torch.full((8,), SIGMA_MIN)) - probe).abs().max().item()
print(f"boundary: |f(x, sigma_min) - x| = {boundary:.1e}; sigmas for N=10: "
      f"{', '.join(f'{s:.3f}' for s in karras_sigmas(10).tolist()[:4])}, ...")

# three spellings of one EMA step agree
a = [p.detach().clone() for p in online_params]
b = [p.detach().clone() + 0.1 for p in online_params]
by_foreach = [t.clone() for t in b]
torch._foreach_lerp_(by_foreach, a, 0.3)
by_lerp = [t.clone().lerp_(s, 0.3) for t, s in zip(b, a)]
by_mul_add = [t.clone().mul_(0.7).add_(s, alpha=0.3) for t, s in zip(b, a)]
lerp_diff = max((x - y).abs().max().item() for x, y in zip(by_foreach, by_lerp))
mul_add_diff = max((x - y).abs().max().item() for x, y in zip(by_foreach, by_mul_add))
print(f"ema step: foreach_lerp_ vs lerp_ {lerp_diff:.1e}, vs mul_().add_() {mul_add_diff:.1e}")

total_steps, batch_size = 1500, 256
for k in range(total_steps):
    N = n_schedule(k, total_steps)
    sigmas = karras_sigmas(N)
    x = data[torch.randint(0, data.shape[0], (batch_size,))]
    n = torch.randint(0, N - 1, (batch_size,))
    z = torch.randn_like(x)
    # sigmas run from sigma_max down: the online network sees the noisier point of each pair
    t_cur, t_prev = sigmas[n], sigmas[n + 1]
    x_cur = x + t_cur[:, None] * z
    x_prev = x + t_prev[:, None] * z
    with torch.no_grad():
        target_out = target(x_prev, t_prev)
    weight = 1 / (t_cur - t_prev)
    loss = (weight * pseudo_huber(model(x_cur, t_cur), target_out)).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        mu = ema_decay(N)
        torch._foreach_lerp_(target_params, online_params, 1 - mu)
        torch._foreach_mul_(ema_params, 0.995)
        torch._foreach_add_(ema_params, online_params, alpha=1 - 0.995)
    if (k + 1) % 500 == 0:
        print(f"step {k + 1} N {N} mu {mu:.4f} loss {loss.item():.4f}")
final_loss = loss.item()


@torch.no_grad()
def sample(net, z, taus=()):
    x = net(z * SIGMA_MAX, torch.full((z.shape[0],), SIGMA_MAX))
    for tau in taus:
        noise = torch.randn_like(x)
        x_tau = x + (tau ** 2 - SIGMA_MIN ** 2) ** 0.5 * noise
        x = net(x_tau, torch.full((z.shape[0],), tau))
    return x


z = torch.randn(512, 2)
results = {}
for name, net in (("online", model), ("ema", ema)):
    one = sample(net, z)
    two = sample(net, z, taus=(0.8,))
    results[f"mmd1_{name}"] = mmd_rbf(one, test_data)
    results[f"mmd2_{name}"] = mmd_rbf(two, test_data)
    results[f"near2_{name}"] = torch.cdist(two, data[:2048]).min(dim=1).values.mean().item()
    print(f"{name}: one-step mmd {results[f'mmd1_{name}']:.4f}, two-step mmd {results[f'mmd2_{name}']:.4f}, "
          f"two-step distance to data {results[f'near2_{name}']:.4f}")
noise_mmd = mmd_rbf(z, test_data)
print(f"for scale: the noise itself has mmd {noise_mmd:.4f}")
print(f"FINAL loss={final_loss:.4f} " + " ".join(f"{key}={value:.4f}" for key, value in results.items())
      + f" noise_mmd={noise_mmd:.4f}")
