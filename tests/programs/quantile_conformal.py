"""Quantile regression and split-conformal prediction intervals, as the CQR paper's code
(yromano/cqr) and the conformal-prediction tutorials write them, on heteroscedastic 1-D data.

The pinball loss ``torch.max((q - 1) * errors, q * errors)`` over five quantile levels at once (against
``torch.where(errors >= 0, ...)``), a head with free outputs whose quantiles cross (counted by
``q[:, 1:] < q[:, :-1]``, repaired by ``torch.sort(dim=-1)`` rearrangement) and a non-crossing head
``torch.cat([first, first + torch.cumsum(F.softplus(increments), dim=-1)], dim=-1)``, mini-batches by
``torch.randperm``; split conformal on absolute residuals of the median with ``torch.quantile(scores,
level, interpolation='higher')`` at ``level = ceil((n + 1)(1 - alpha)) / n``, the same threshold by
``torch.kthvalue`` and by ``torch.sort(scores).values[k - 1]`` (must agree), the other interpolations;
CQR's conformity scores ``torch.maximum(lo - y, y - hi)``, marginal coverage and mean width of both
intervals on a test set, coverage per ``torch.bucketize`` bin of x, and the empirical quantiles per bin by
``torch.nanquantile`` over a NaN-padded matrix filled through ``index_put_``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ----------------------------------------------------------------- data: noise growing with x, skewed
rng = np.random.RandomState(0)


def make(n):
    x = rng.uniform(0.0, 5.0, size=(n, 1)).astype(np.float32)
    noise = (rng.gamma(2.0, 1.0, size=(n, 1)) - 2.0) * (0.1 + 0.3 * x)
    y = (2.0 * np.sin(1.5 * x) + noise).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


x_train, y_train = make(800)
x_cal, y_cal = make(400)
x_test, y_test = make(1000)
taus = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95])
alpha = 0.1
print(f"data: train {len(x_train)} calibration {len(x_cal)} test {len(x_test)}, quantiles {taus.tolist()}")


def pinball_loss(preds, target, quantiles):
    errors = target - preds  # (n, 1) - (n, k)
    return torch.max((quantiles - 1) * errors, quantiles * errors).mean()


def pinball_loss_where(preds, target, quantiles):
    errors = target - preds
    return torch.where(errors >= 0, quantiles * errors, (quantiles - 1) * errors).mean()


class FreeQuantiles(nn.Module):
    def __init__(self, n_quantiles, hidden=64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_quantiles)

    def forward(self, x):
        return self.head(self.body(x))


class MonotoneQuantiles(FreeQuantiles):
    def forward(self, x):
        raw = self.head(self.body(x))
        first, increments = raw[:, :1], raw[:, 1:]
        return torch.cat([first, first + torch.cumsum(F.softplus(increments), dim=-1)], dim=-1)


def train(model, epochs=40, batch_size=100, lr=1e-2):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(x_train))
        total = 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            loss = pinball_loss(model(x_train[idx]), y_train[idx], taus)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        if epoch % 20 == 0:
            with torch.no_grad():
                test_loss = pinball_loss(model(x_test), y_test, taus).item()
            print(f"  epoch {epoch:3d} train pinball {total / len(x_train):.4f} test pinball {test_loss:.4f}")
    return model


print("free head")
free = train(FreeQuantiles(len(taus)))
print("monotone head")
monotone = train(MonotoneQuantiles(len(taus)))

with torch.no_grad():
    q_free = free(x_test)
    q_mono = monotone(x_test)
    same_loss = torch.allclose(pinball_loss(q_mono, y_test, taus), pinball_loss_where(q_mono, y_test, taus))
    # quantile heads cross where they extrapolate: count on a grid reaching past the data
    grid = torch.linspace(-3.0, 8.0, 221).unsqueeze(1)
    q_grid_free, q_grid_mono = free(grid), monotone(grid)
    crossing_free = (q_grid_free[:, 1:] < q_grid_free[:, :-1]).any(dim=1).float().mean().item()
    crossing_mono = (q_grid_mono[:, 1:] < q_grid_mono[:, :-1]).any(dim=1).float().mean().item()
    q_sorted = torch.sort(q_free, dim=-1).values
    sorted_loss = pinball_loss(q_sorted, y_test, taus).item()
    free_loss = pinball_loss(q_free, y_test, taus).item()
    pinball_test = pinball_loss(q_mono, y_test, taus).item()
    hit_rates = (y_test <= q_mono).float().mean(0)
print(f"max and where pinball agree: {bool(same_loss)}")
print(f"crossing rows: free {crossing_free:.4f} monotone {crossing_mono:.4f}; "
      f"free pinball {free_loss:.4f} after sorting {sorted_loss:.4f}")
print("monotone head hit rates " + " ".join(f"{r:.3f}" for r in hit_rates.tolist()))

# ----------------------------------------------------------------- split conformal on the median
with torch.no_grad():
    median_cal = monotone(x_cal)[:, 2:3]
    median_test = q_mono[:, 2:3]
scores = (y_cal - median_cal).abs().view(-1)
n = len(scores)
k = math.ceil((n + 1) * (1 - alpha))
level = k / n
qhat = torch.quantile(scores, level, interpolation="higher")
# 'higher' reads the sorted scores at ceil(level * (n - 1)), one past the textbook k-th smallest
position = math.ceil(level * (n - 1))
qhat_kth = torch.kthvalue(scores, position + 1).values
qhat_sort = torch.sort(scores).values[position]
thresholds_agree = int(torch.equal(qhat, qhat_kth) and torch.equal(qhat, qhat_sort))
textbook = torch.kthvalue(scores, k).values
print(f"split conformal: n {n} k {k} position {position} qhat {qhat.item():.4f} (k-th smallest "
      f"{textbook.item():.4f}); kthvalue and sort agree: {bool(thresholds_agree)}")
others = {method: torch.quantile(scores, level, interpolation=method).item()
          for method in ("linear", "lower", "nearest", "midpoint")}
print("  other interpolations " + " ".join(f"{m} {v:.4f}" for m, v in others.items()))
lo_split, hi_split = median_test - qhat, median_test + qhat
coverage_split = ((y_test >= lo_split) & (y_test <= hi_split)).float().mean().item()
width_split = (hi_split - lo_split).mean().item()

# ----------------------------------------------------------------- CQR on the 5% and 95% quantiles
with torch.no_grad():
    q_cal = monotone(x_cal)
cqr_scores = torch.maximum(q_cal[:, :1] - y_cal, y_cal - q_cal[:, -1:]).view(-1)
qhat_cqr = torch.quantile(cqr_scores, level, interpolation="higher")
lo_cqr, hi_cqr = q_mono[:, :1] - qhat_cqr, q_mono[:, -1:] + qhat_cqr
covered_cqr = ((y_test >= lo_cqr) & (y_test <= hi_cqr)).float().view(-1)
coverage_cqr = covered_cqr.mean().item()
width_cqr = (hi_cqr - lo_cqr).mean().item()
print(f"coverage (target {1 - alpha:.2f}): split {coverage_split:.4f} width {width_split:.4f}; "
      f"CQR {coverage_cqr:.4f} width {width_cqr:.4f} (qhat {qhat_cqr.item():+.4f})")

# coverage and empirical quantiles per bin of x
edges = torch.tensor([1.0, 2.0, 3.0, 4.0])
bins = torch.bucketize(x_test.view(-1), edges)
counts = torch.bincount(bins, minlength=5)
per_bin_cqr = torch.zeros(5).index_add_(0, bins, covered_cqr) / counts
covered_split = ((y_test >= lo_split) & (y_test <= hi_split)).float().view(-1)
per_bin_split = torch.zeros(5).index_add_(0, bins, covered_split) / counts
print("bin coverage split " + " ".join(f"{c:.3f}" for c in per_bin_split.tolist()))
print("bin coverage CQR   " + " ".join(f"{c:.3f}" for c in per_bin_cqr.tolist()))
position = torch.cat([torch.arange(int(c)) for c in counts])
order = torch.argsort(bins, stable=True)
padded = torch.full((5, int(counts.max())), float("nan"))
padded.index_put_((bins[order], position), y_test.view(-1)[order])
empirical = torch.nanquantile(padded, torch.tensor([0.05, 0.95]), dim=1)  # (2, 5)
bin_width = (empirical[1] - empirical[0])
print("bin 90% spread of y " + " ".join(f"{w:.3f}" for w in bin_width.tolist()))
width_corr = torch.corrcoef(torch.stack([bin_width, torch.zeros(5).index_add_(
    0, bins, (hi_cqr - lo_cqr).view(-1)) / counts]))[0, 1].item()

print(f"FINAL pinball_test={pinball_test:.4f} crossing_free={crossing_free:.4f} crossing_mono={crossing_mono:.4f} "
      f"coverage_split={coverage_split:.4f} width_split={width_split:.4f} coverage_cqr={coverage_cqr:.4f} "
      f"width_cqr={width_cqr:.4f} width_corr={width_corr:.4f} thresholds_agree={thresholds_agree}")
