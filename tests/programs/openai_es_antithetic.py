"""Evolution strategies as in openai/evolution-strategies-starter (es_distributed/es.py) and its PyTorch ports.

A flat parameter vector by ``torch.nn.utils.parameters_to_vector`` written back by ``vector_to_parameters``;
antithetic (mirrored) noise ``torch.cat([eps, -eps])`` drawn from a seeded ``torch.Generator`` (the same
seed gives the same noise; ``get_state``/``set_state`` replays it); the starter's ``SharedNoiseTable``
(one ``torch.randn(count, generator=...)`` table, ``get(i, dim)`` slices at ``torch.randint`` offsets);
``compute_centered_ranks`` by ``argsort().argsort()`` (against the starter's NumPy ``ranks[x.argsort()] =
np.arange(len(x))``); the ES gradient estimate of a smooth regression loss compared with autograd's
gradient by ``F.cosine_similarity`` (the antithetic estimate is closer than the one-sided one); then a
small tanh policy on a toy 2-d reaching task evaluated under ``torch.no_grad()``, the rank-weighted noise
sum written into ``p.grad`` (``-g`` plus the L2 term ``l2coeff * theta``) and stepped by
``torch.optim.Adam``, with the return rising above the initial policy's.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def compute_ranks(x):
    """
    Returns ranks in [0, len(x))
    Note: This is different from scipy.stats.rankdata, which returns ranks in [1, len(x)].
    """
    assert x.ndim == 1
    ranks = np.empty(len(x), dtype=int)
    ranks[x.argsort()] = np.arange(len(x))
    return ranks


def compute_centered_ranks_np(x):
    y = compute_ranks(x.ravel()).reshape(x.shape).astype(np.float32)
    y /= (x.size - 1)
    y -= .5
    return y


def compute_centered_ranks(x):
    ranks = x.argsort().argsort().float()
    return ranks / (x.numel() - 1) - 0.5


class SharedNoiseTable:
    def __init__(self, count=250000, seed=123):
        print(f"Sampling {count} random numbers with seed {seed}")
        self.noise = torch.randn(count, generator=torch.Generator().manual_seed(seed))

    def get(self, i, dim):
        return self.noise[i:i + dim]

    def sample_index(self, generator, dim):
        return int(torch.randint(0, len(self.noise) - dim + 1, (1,), generator=generator))


# ---- 1. the ES gradient estimate against autograd on a smooth objective ----
X = torch.from_numpy(rng.standard_normal((64, 4)).astype(np.float32))
y = torch.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1))
theta = parameters_to_vector(model.parameters()).detach().clone()
dim = theta.numel()
print(f"parameters {dim} shapes {[tuple(p.shape) for p in model.parameters()]}")


def objective(flat):
    vector_to_parameters(flat, model.parameters())
    return F.mse_loss(model(X), y)


loss = objective(theta)
model.zero_grad()
loss.backward()
true_grad = parameters_to_vector(p.grad for p in model.parameters())

generator = torch.Generator().manual_seed(seed)
state = generator.get_state()
sigma, n_pairs = 0.01, 400
eps = torch.randn(n_pairs, dim, generator=generator)
generator.set_state(state)
replayed = torch.randn(n_pairs, dim, generator=generator)
noise = torch.cat([eps, -eps])
with torch.no_grad():
    fitness = torch.stack([objective(theta + sigma * e) for e in noise])
    base = objective(theta)
    pos, neg = fitness[:n_pairs], fitness[n_pairs:]
    antithetic = ((pos - neg)[:, None] * eps).sum(0) / (2 * n_pairs * sigma)
    one_sided = ((fitness - base)[:, None] * noise).sum(0) / (2 * n_pairs * sigma)
    one_sided_raw = ((fitness[:n_pairs])[:, None] * eps).sum(0) / (n_pairs * sigma)
vector_to_parameters(theta, model.parameters())
cos_anti = F.cosine_similarity(antithetic, true_grad, dim=0).item()
cos_raw = F.cosine_similarity(one_sided_raw, true_grad, dim=0).item()
cos_one = F.cosine_similarity(one_sided, true_grad, dim=0).item()
replay_ok = float(torch.equal(eps, replayed) and (noise[:n_pairs] + noise[n_pairs:]).abs().max().item() == 0.0)
# on mirrored noise a baseline cancels: subtracting f(theta) changes nothing
baseline_ok = float(torch.allclose(one_sided, antithetic, rtol=1e-3, atol=1e-5))
print(f"cosine antithetic {cos_anti:.4f} baseline-subtracted {cos_one:.4f} raw one-sided {cos_raw:.4f}")

# centered ranks: torch's double argsort against the starter's NumPy ranks (distinct values)
values = torch.from_numpy(rng.permutation(50).astype(np.float32) + rng.uniform(0, 0.5, 50).astype(np.float32))
ranks_ok = float(np.array_equal(compute_centered_ranks(values).numpy(), compute_centered_ranks_np(values.numpy())))
print(f"centered ranks {compute_centered_ranks(values)[:3].tolist()} sum {compute_centered_ranks(values).sum().item():.4f}")


# ---- 2. optimise a policy on a toy reaching task with antithetic ES + Adam ----
class Policy(nn.Module):
    def __init__(self, ob_dim=4, ac_dim=2, hidden=16):
        super().__init__()
        self.fc1 = nn.Linear(ob_dim, hidden)
        self.fc2 = nn.Linear(hidden, ac_dim)

    def forward(self, ob):
        return torch.tanh(self.fc2(torch.tanh(self.fc1(ob))))


starts = torch.from_numpy(rng.uniform(-1, 1, size=(16, 2)).astype(np.float32))


@torch.no_grad()
def rollout(policy, timestep_limit=20):
    pos = starts.clone()
    vel = torch.zeros_like(pos)
    total = torch.zeros(len(pos))
    for _ in range(timestep_limit):
        action = policy(torch.cat([pos, vel], dim=1))
        vel = 0.8 * vel + 0.1 * action
        pos = pos + vel
        total -= pos.norm(dim=1) + 0.01 * action.pow(2).sum(1)
    return total.mean().item()


policy = Policy()
theta = parameters_to_vector(policy.parameters()).detach()
noise_table = SharedNoiseTable(count=20000, seed=123)
optimizer = torch.optim.Adam(policy.parameters(), lr=0.03)
es_generator = torch.Generator().manual_seed(seed)
noise_stdev, episodes_per_batch, l2coeff = 0.05, 12, 0.005
initial_return = rollout(policy)
returns = []
for iteration in range(40):
    theta = parameters_to_vector(policy.parameters()).detach().clone()
    noise_inds = [noise_table.sample_index(es_generator, theta.numel()) for _ in range(episodes_per_batch)]
    noise_mat = torch.stack([noise_table.get(i, theta.numel()) for i in noise_inds])
    returns_pos, returns_neg = [], []
    with torch.no_grad():
        for v in noise_mat:
            vector_to_parameters(theta + noise_stdev * v, policy.parameters())
            returns_pos.append(rollout(policy))
            vector_to_parameters(theta - noise_stdev * v, policy.parameters())
            returns_neg.append(rollout(policy))
        vector_to_parameters(theta, policy.parameters())
    noiseless = torch.tensor([returns_pos, returns_neg]).t()  # (episodes, 2)
    proc_returns = compute_centered_ranks(noiseless.flatten()).view_as(noiseless)
    g = (proc_returns[:, 0] - proc_returns[:, 1]) @ noise_mat
    g /= noiseless.numel()
    update = -g + l2coeff * theta
    offset = 0
    for p in policy.parameters():
        n = p.numel()
        p.grad = update[offset:offset + n].view_as(p).clone()
        offset += n
    optimizer.step()
    returns.append(rollout(policy))
    if iteration % 10 == 9:
        print(f"iter {iteration} mean return {np.mean(returns[-10:]):.4f} |theta| {theta.norm().item():.4f}")

final_return = rollout(policy)
print(f"initial return {initial_return:.4f} final {final_return:.4f}")
print(
    f"FINAL cos_anti={cos_anti:.4f} cos_raw={cos_raw:.4f} anti_better={float(cos_anti > cos_raw):.1f}"
    f" replay_ok={replay_ok:.1f} baseline_ok={baseline_ok:.1f} ranks_ok={ranks_ok:.1f}"
    f" initial_return={initial_return:.4f} final_return={final_return:.4f}"
    f" improved={float(final_return > initial_return + 1.0):.1f}"
)
