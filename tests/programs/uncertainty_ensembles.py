"""Regression with predictive uncertainty: deep ensembles (Lakshminarayanan et al.) and MC dropout (Gal &
Ghahramani) as the PyTorch tutorials and repos write them.

A heteroscedastic MLP with a mean head and a variance head through ``F.softplus(...) + 1e-6``, trained by
``F.gaussian_nll_loss(mean, target, var, full=True)`` (half the ensemble) and ``nn.GaussianNLLLoss(full=True)``
(the other half), both checked against the written-out Gaussian NLL and the homoscedastic form (a
``var`` with a last dim of 1 broadcast over a 2-d target, and one dim fewer); the ensemble as a uniform
mixture (``torch.stack`` of the members' means and variances, mixture variance ``E[var + mu^2] - mu*^2``);
MC dropout by calling ``model.train()`` at test time and ``torch.stack([model(x) for _ in range(T)])``
under ``torch.no_grad()``, total variance = mean aleatoric + variance of the means (``var(0,
unbiased=False)``); calibration by ``torch.distributions.Normal(mu, sigma).cdf(y)`` coverage of the
central 90% interval, ``Normal.icdf`` bounds, a PIT histogram by ``torch.histc``, and
``torch.quantile(samples, torch.tensor([0.05, 0.95]), dim=0)`` intervals from predictive samples
(``mu + sigma * torch.randn_like``); epistemic variance inside the data against a gap left out of it.

The data: a 1-d function with noise growing with |x| and a gap in the training inputs, made with NumPy.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def target_function(x):
    return np.sin(1.5 * x) + 0.3 * x


def make_data(n, gap=True):
    x = rng.uniform(-3, 3, size=n)
    if gap:
        x = x[(x < 0.5) | (x > 1.5)]
    noise_std = 0.05 + 0.15 * np.abs(x)
    y = target_function(x) + noise_std * rng.normal(size=x.shape)
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1), torch.from_numpy(y.astype(np.float32)).unsqueeze(1)


x_train, y_train = make_data(320)
x_test, y_test = make_data(400)
x_gap = torch.linspace(0.6, 1.4, 50).unsqueeze(1)
x_seen = torch.linspace(-2.5, -0.5, 50).unsqueeze(1)
print(f"train {len(x_train)} test {len(x_test)} points")


class HeteroscedasticMLP(nn.Module):
    def __init__(self, hidden=48, p_drop=0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Dropout(p_drop),
                                  nn.Linear(hidden, hidden), nn.Tanh(), nn.Dropout(p_drop))
        self.mean_head = nn.Linear(hidden, 1)
        self.var_head = nn.Linear(hidden, 1)

    def forward(self, x):
        h = self.body(x)
        return self.mean_head(h), F.softplus(self.var_head(h)) + 1e-6


# --- the loss three ways, and its homoscedastic broadcasting ---
mean = torch.randn(6, 3)
target = torch.randn(6, 3)
var = torch.rand(6, 3) + 0.1
by_hand = (0.5 * (torch.log(var) + (target - mean) ** 2 / var)).mean() + 0.5 * math.log(2 * math.pi)
functional = F.gaussian_nll_loss(mean, target, var, full=True)
module = nn.GaussianNLLLoss(full=True)(mean, target, var)
print("nll agrees:", torch.allclose(functional, by_hand, atol=1e-6), torch.allclose(module, by_hand, atol=1e-6))
shared_var = torch.rand(6, 1) + 0.1
print("homoscedastic broadcast:",
      torch.allclose(F.gaussian_nll_loss(mean, target, shared_var), F.gaussian_nll_loss(mean, target, shared_var.expand(6, 3))),
      torch.allclose(F.gaussian_nll_loss(mean, target, var[:, 0]), F.gaussian_nll_loss(mean, target, var[:, :1])))
summed = F.gaussian_nll_loss(mean, target, var, reduction="sum")
per_point = nn.GaussianNLLLoss(reduction="none", eps=1e-3)(mean, target, var)
print(f"reductions: sum/mean={summed.item() / F.gaussian_nll_loss(mean, target, var).item():.1f} none shape {tuple(per_point.shape)}")


def train_member(member_seed, use_module, p_drop=0.0, epochs=60, batch=64, lr=5e-3):
    torch.manual_seed(member_seed)
    model = HeteroscedasticMLP(p_drop=p_drop)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.GaussianNLLLoss(full=True)
    n = len(x_train)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            mu, var = model(x_train[idx])
            if use_module:
                loss = criterion(mu, y_train[idx], var)
            else:
                loss = F.gaussian_nll_loss(mu, y_train[idx], var, full=True)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        if epoch % 20 == 19:
            print(f"  member {member_seed - seed * 100} epoch {epoch + 1} nll {total / n:.4f}")
    return model


def gaussian_scores(mu, var, y, name):
    sigma = var.sqrt()
    dist = Normal(mu, sigma)
    nll = -dist.log_prob(y).mean().item()
    rmse = (mu - y).pow(2).mean().sqrt().item()
    pit = dist.cdf(y)
    coverage = ((pit > 0.05) & (pit < 0.95)).float().mean().item()
    lower, upper = dist.icdf(torch.tensor(0.05)), dist.icdf(torch.tensor(0.95))
    coverage_icdf = ((y > lower) & (y < upper)).float().mean().item()
    hist = torch.histc(pit, bins=5, min=0, max=1) / len(y)
    print(f"{name}: nll {nll:.4f} rmse {rmse:.4f} coverage90 {coverage:.4f} (icdf {coverage_icdf:.4f}) "
          f"pit " + " ".join(f"{h:.2f}" for h in hist.tolist()))
    return nll, rmse, coverage


# --- the deep ensemble ---
members = []
for m in range(4):
    members.append(train_member(seed * 100 + m, use_module=m % 2 == 1))


@torch.no_grad()
def ensemble_predict(x):
    for model in members:
        model.eval()
    mus, variances = zip(*[model(x) for model in members])
    mus, variances = torch.stack(mus), torch.stack(variances)
    mixture_mean = mus.mean(dim=0)
    mixture_var = (variances + mus.pow(2)).mean(dim=0) - mixture_mean.pow(2)
    return mixture_mean, mixture_var, mus.var(dim=0, unbiased=False)


mu_ens, var_ens, _ = ensemble_predict(x_test)
ens_nll, ens_rmse, ens_coverage = gaussian_scores(mu_ens, var_ens, y_test, "ensemble")
with torch.no_grad():
    single_nll, _, _ = gaussian_scores(*members[0](x_test), y_test, "member 0")
_, _, epistemic_gap = ensemble_predict(x_gap)
_, _, epistemic_seen = ensemble_predict(x_seen)
gap_ratio = (epistemic_gap.mean() / epistemic_seen.mean()).item()
print(f"ensemble epistemic variance: gap {epistemic_gap.mean().item():.5f} seen {epistemic_seen.mean().item():.5f}")

# --- MC dropout ---
dropout_model = train_member(seed * 100 + 7, use_module=False, p_drop=0.1, epochs=80)
T = 30
dropout_model.train()  # dropout stays on at test time
with torch.no_grad():
    draws = [dropout_model(x_test) for _ in range(T)]
    mc_means = torch.stack([d[0] for d in draws])
    mc_vars = torch.stack([d[1] for d in draws])
print(f"mc samples {tuple(mc_means.shape)}")
mc_mu = mc_means.mean(0)
mc_var = mc_vars.mean(0) + mc_means.var(0, unbiased=False)
mc_nll, mc_rmse, mc_coverage = gaussian_scores(mc_mu, mc_var, y_test, "mc dropout")

# predictive samples and their empirical quantiles
samples = mc_means + mc_vars.sqrt() * torch.randn_like(mc_means)
bounds = torch.quantile(samples, torch.tensor([0.05, 0.95]), dim=0)
print(f"quantile bounds shape {tuple(bounds.shape)}")
quantile_coverage = ((y_test > bounds[0]) & (y_test < bounds[1])).float().mean().item()
median = torch.quantile(samples, 0.5, dim=0, interpolation="nearest")
print(f"quantile interval coverage {quantile_coverage:.4f} median-mean gap {(median - mc_mu).abs().mean().item():.4f}")

with torch.no_grad():
    gap_draws = torch.stack([dropout_model(x_gap)[0] for _ in range(T)])
    seen_draws = torch.stack([dropout_model(x_seen)[0] for _ in range(T)])
mc_gap_ratio = (gap_draws.var(0).mean() / seen_draws.var(0).mean()).item()
dropout_model.eval()
with torch.no_grad():
    deterministic = dropout_model(x_test)[0]
print(f"eval() is deterministic: {torch.equal(deterministic, dropout_model(x_test)[0])}")

print(f"FINAL ens_nll={ens_nll:.4f} ens_rmse={ens_rmse:.4f} ens_cov={ens_coverage:.4f} member_nll={single_nll:.4f} "
      f"gap_ratio={gap_ratio:.3f} mc_nll={mc_nll:.4f} mc_rmse={mc_rmse:.4f} mc_cov={mc_coverage:.4f} "
      f"q_cov={quantile_coverage:.4f} mc_gap_ratio={mc_gap_ratio:.3f}")
