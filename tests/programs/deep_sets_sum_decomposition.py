"""Deep Sets (Zaheer et al., NeurIPS 2017) in the layout of manzilzaheer/DeepSets and juho-lee's set models,
on three synthetic set tasks.

1. Digit sum: each element is a noisy "image" of a digit 0-9 (a fixed prototype vector plus noise, made with
   NumPy), sets have 2-8 elements padded to ``N_MAX`` with a boolean mask; the target is the sum of the
   digits. ``DeepSetsSum`` is the repo's ``phi`` = per-element ``nn.Sequential`` over ``(B, N, D)`` with the
   padding zeroed by ``mask.unsqueeze(-1)``, pooled by ``sum(dim=1)``, then ``rho``. The baseline is an
   ``nn.LSTM(batch_first=True)`` over the set read in order, at its last real element (``gather`` at
   ``lengths - 1``).
2. Set max: scalar elements, target the maximum; the permutation-equivariant ``PermEqui1max`` (``Gamma(x -
   x.max(1, keepdim=True)[0])``) and ``PermEqui2max`` (``Gamma(x) - Lambda(xm)``) layers, padding removed from
   the max by ``masked_fill(~mask.unsqueeze(-1), float('-inf'))``, pooled by ``max(dim=1)[0]``.
3. Unique count (point-cloud style): elements drawn from a few discrete "points" with jitter, the target the
   number of distinct points, pooled by ``torch.logsumexp(dim=1)`` over masked features.

Checked: every invariant model's output is unchanged by a ``torch.randperm`` shuffle of the real elements
(``torch.allclose``), each equivariant layer commutes with the permutation, the LSTM's output does change, and
the Deep Sets digit-sum error beats the LSTM's on sets longer than any seen in training.
"""

# ruff: noqa: UP008  (the repos' own spelling: super(Class, self))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
rng = np.random.RandomState(seed)

D, N_MAX, N_TRAIN_MAX = 8, 12, 8
PROTOS = rng.randn(10, D).astype(np.float32)
POINTS = rng.randn(5, 3).astype(np.float32) * 2


# ----------------------------------------------------------------------------------- data
def digit_sets(n, lo, hi):
    x = np.zeros((n, N_MAX, D), dtype=np.float32)
    mask = np.zeros((n, N_MAX), dtype=bool)
    y = np.zeros(n, dtype=np.float32)
    for i in range(n):
        k = rng.randint(lo, hi + 1)
        digits = rng.randint(0, 10, size=k)
        x[i, :k] = PROTOS[digits] + 0.3 * rng.randn(k, D)
        mask[i, :k] = True
        y[i] = digits.sum()
    return torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(y)


def max_sets(n):
    x = np.zeros((n, N_MAX, 1), dtype=np.float32)
    mask = np.zeros((n, N_MAX), dtype=bool)
    for i in range(n):
        k = rng.randint(2, N_MAX + 1)
        x[i, :k, 0] = rng.uniform(-3, 3, size=k)
        mask[i, :k] = True
    x, mask = torch.from_numpy(x), torch.from_numpy(mask)
    y = x.squeeze(-1).masked_fill(~mask, float("-inf")).max(dim=1)[0]
    return x, mask, y


def unique_sets(n):
    points, n_points = POINTS, len(POINTS)
    x = np.zeros((n, N_MAX, 3), dtype=np.float32)
    mask = np.zeros((n, N_MAX), dtype=bool)
    y = np.zeros(n, dtype=np.float32)
    for i in range(n):
        k = rng.randint(3, N_MAX + 1)
        idx = rng.randint(0, n_points, size=k)
        x[i, :k] = points[idx] + 0.05 * rng.randn(k, 3)
        mask[i, :k] = True
        y[i] = len(np.unique(idx))
    return torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(y)


def shuffle_set(x, mask):
    """Permute the real elements of every set (the padding stays at the end)."""
    x = x.clone()
    for i in range(x.size(0)):
        k = int(mask[i].sum())
        perm = torch.randperm(k)
        x[i, :k] = x[i, :k][perm]
    return x


# ----------------------------------------------------------------------------------- models
class DeepSetsSum(nn.Module):
    def __init__(self, x_dim, d_dim=32):
        super(DeepSetsSum, self).__init__()
        self.phi = nn.Sequential(
            nn.Linear(x_dim, d_dim), nn.ELU(inplace=True),
            nn.Linear(d_dim, d_dim), nn.ELU(inplace=True),
            nn.Linear(d_dim, d_dim),
        )
        self.rho = nn.Sequential(nn.ELU(inplace=True), nn.Linear(d_dim, 16), nn.ELU(inplace=True), nn.Linear(16, 1))

    def forward(self, x, mask):
        phi_output = self.phi(x) * mask.unsqueeze(-1).float()
        sum_output = phi_output.sum(dim=1)
        return self.rho(sum_output).squeeze(-1)


class PermEqui1max(nn.Module):
    def __init__(self, in_dim, out_dim):
        super(PermEqui1max, self).__init__()
        self.Gamma = nn.Linear(in_dim, out_dim)

    def forward(self, x, mask):
        xm, _ = x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1, keepdim=True)
        x = self.Gamma(x - xm)
        return x


class PermEqui2max(nn.Module):
    def __init__(self, in_dim, out_dim):
        super(PermEqui2max, self).__init__()
        self.Gamma = nn.Linear(in_dim, out_dim)
        self.Lambda = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x, mask):
        xm, _ = x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1, keepdim=True)
        xm = self.Lambda(xm)
        x = self.Gamma(x)
        x = x - xm
        return x


class DTanh(nn.Module):
    def __init__(self, d_dim, x_dim=1):
        super(DTanh, self).__init__()
        self.phi = nn.ModuleList([PermEqui2max(x_dim, d_dim), PermEqui1max(d_dim, d_dim)])
        self.ro = nn.Sequential(nn.Dropout(p=0.0), nn.Linear(d_dim, d_dim), nn.Tanh(), nn.Linear(d_dim, 1))

    def forward(self, x, mask):
        for layer in self.phi:
            x = torch.tanh(layer(x, mask))
        x = x.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        sum_output = x.max(dim=1)[0]
        return self.ro(sum_output).squeeze(-1)


class LogSumExpSet(nn.Module):
    def __init__(self, x_dim, d_dim=32):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(x_dim, d_dim), nn.ReLU(), nn.Linear(d_dim, d_dim))
        self.rho = nn.Sequential(nn.Linear(d_dim, d_dim), nn.ReLU(), nn.Linear(d_dim, 1))

    def forward(self, x, mask):
        h = self.phi(x).masked_fill(~mask.unsqueeze(-1), float("-inf"))
        return self.rho(torch.logsumexp(h, dim=1)).squeeze(-1)


class SetLSTM(nn.Module):
    def __init__(self, x_dim, hidden=32):
        super().__init__()
        self.lstm = nn.LSTM(x_dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x, mask):
        out, _ = self.lstm(x)
        lengths = mask.sum(1)
        idx = (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.size(2))
        last = out.gather(1, idx).squeeze(1)
        return self.fc(last).squeeze(-1)


def train(model, data, epochs, lr, batch_size=64):
    x, mask, y = data
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.size(0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            optimizer.zero_grad()
            loss = F.mse_loss(model(x[idx], mask[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.numel()
    return total / n


@torch.no_grad()
def mae(model, data):
    model.eval()
    x, mask, y = data
    return (model(x, mask) - y).abs().mean().item()


@torch.no_grad()
def invariance_gap(model, data):
    model.eval()
    x, mask, _ = data
    a = model(x, mask)
    b = model(shuffle_set(x, mask), mask)
    return (a - b).abs().max().item(), torch.allclose(a, b, atol=1e-4, rtol=1e-5)


# ----------------------------------------------------------------------------------- task 1: digit sum
train_sum = digit_sets(1200, 2, N_TRAIN_MAX)
test_sum = digit_sets(300, 2, N_TRAIN_MAX)
long_sum = digit_sets(300, N_TRAIN_MAX + 1, N_MAX)

deepsets = DeepSetsSum(D)
lstm = SetLSTM(D)
for name, model in (("deepsets", deepsets), ("lstm", lstm)):
    loss = train(model, train_sum, epochs=25, lr=3e-3)
    print(f"digit-sum {name}: train mse {loss:.4f} test mae {mae(model, test_sum):.4f} "
          f"long-set mae {mae(model, long_sum):.4f}")

ds_gap, ds_ok = invariance_gap(deepsets, test_sum)
lstm_gap, lstm_ok = invariance_gap(lstm, test_sum)
print(f"deepsets invariant to randperm: {ds_ok} (max gap {ds_gap:.2e})")
print(f"lstm invariant to randperm: {lstm_ok} (max gap {lstm_gap:.3f})")
assert ds_ok and not lstm_ok
ds_long, lstm_long = mae(deepsets, long_sum), mae(lstm, long_sum)

# ----------------------------------------------------------------------------------- task 2: set max
train_max = max_sets(1000)
test_max = max_sets(300)
dtanh = DTanh(16)
loss = train(dtanh, train_max, epochs=25, lr=3e-3)
max_mae = mae(dtanh, test_max)
print(f"set-max dtanh: train mse {loss:.4f} test mae {max_mae:.4f}")
mx_gap, mx_ok = invariance_gap(dtanh, test_max)
print(f"dtanh invariant to randperm: {mx_ok} (max gap {mx_gap:.2e})")
assert mx_ok

# equivariance: layer(P x) == P layer(x) for a permutation of the real elements
with torch.no_grad():
    x, mask, _ = test_max
    x, mask = x[:16], mask[:16]
    perm = torch.randperm(N_MAX)
    xf = torch.randn(16, N_MAX, 16)
    ones = torch.ones(16, N_MAX, dtype=torch.bool)
    for layer in (PermEqui1max(16, 8), PermEqui2max(16, 8)):
        out_perm = layer(xf[:, perm], ones)
        perm_out = layer(xf, ones)[:, perm]
        print(f"{layer.__class__.__name__} equivariant: {torch.allclose(out_perm, perm_out, atol=1e-6)} "
              f"shape {tuple(out_perm.shape)}")
        assert torch.allclose(out_perm, perm_out, atol=1e-6)
    # padding does not leak: changing padded entries leaves the real outputs unchanged
    layer = dtanh.phi[0]
    x_noisy = x.masked_fill(~mask.unsqueeze(-1), 100.0)
    same = torch.allclose(layer(x, mask)[mask], layer(x_noisy, mask)[mask])
    print(f"padding ignored by the masked max: {same}")
    assert same

# ----------------------------------------------------------------------------------- task 3: unique count
train_u = unique_sets(1000)
test_u = unique_sets(300)
lse = LogSumExpSet(3)
loss = train(lse, train_u, epochs=25, lr=3e-3)
u_mae = mae(lse, test_u)
u_gap, u_ok = invariance_gap(lse, test_u)
with torch.no_grad():
    u_acc = (lse(*test_u[:2]).round() == test_u[2]).float().mean().item()
print(f"unique-count logsumexp: train mse {loss:.4f} test mae {u_mae:.4f} rounded acc {u_acc:.3f} "
      f"invariant {u_ok}")
assert u_ok

print(f"FINAL ds_long_mae={ds_long:.4f} lstm_long_mae={lstm_long:.4f} max_mae={max_mae:.4f} "
      f"unique_mae={u_mae:.4f} unique_acc={u_acc:.4f} lstm_gap={lstm_gap:.4f}")
