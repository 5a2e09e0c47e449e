"""Deep Kernel Learning (Wilson, Hu, Salakhutdinov & Xing, AISTATS 2016) written by hand the way GP
tutorials in plain PyTorch do, on a 1-D regression task with a step discontinuity.

A small ``nn.Sequential`` MLP ``FeatureExtractor`` maps inputs to 2-d features; an ``RBFKernel`` module
computes ``outputscale * torch.exp(-0.5 * torch.cdist(x1 / ls, x2 / ls).pow(2))`` with the lengthscale,
outputscale and noise kept positive by ``F.softplus`` of ``raw_*`` ``nn.Parameter``s. The exact
negative marginal log-likelihood goes through ``torch.eye(n) * 1e-4`` jitter, ``torch.linalg.cholesky``,
``torch.cholesky_solve(y.unsqueeze(-1), L)`` and ``2 * L.diagonal().log().sum()``; prediction under
``torch.no_grad()`` uses ``torch.linalg.solve_triangular(L, K_s, upper=False)`` for the predictive
variance, clamped by ``clamp_min``. DKL is trained by Adam with parameter groups (the feature
extractor at a smaller lr with ``weight_decay``, the kernel and likelihood hyperparameters raised to a
larger one through ``param_groups[i]["lr"]``), the plain GP baseline (the same kernel on raw inputs)
by Adam on its hyperparameters alone.

Checked: DKL's marginal likelihood beats the plain GP's; the test RMSE of both, the test NLL of the DKL predictive,
and ``torch.cholesky_solve`` against ``torch.linalg.solve(K, y)`` (``torch.allclose``).
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def make_data(n, noise=0.05):
    x = torch.rand(n, 1) * 4 - 2
    # a step at 0 on top of a slow wave: a stationary RBF cannot follow both
    y = torch.where(x < 0, torch.sin(1.5 * x) - 0.5, torch.sin(1.5 * x) + 1.0).squeeze(-1)
    return x, y + noise * torch.randn(n)


train_x, train_y = make_data(120)
test_x = torch.linspace(-2, 2, 200).unsqueeze(-1)
test_y = torch.where(test_x < 0, torch.sin(1.5 * test_x) - 0.5, torch.sin(1.5 * test_x) + 1.0).squeeze(-1)
print(f"train {tuple(train_x.shape)} test {tuple(test_x.shape)}")


class FeatureExtractor(nn.Sequential):
    def __init__(self, data_dim, hidden=32, out_dim=2):
        super().__init__()
        self.add_module("linear1", nn.Linear(data_dim, hidden))
        self.add_module("tanh1", nn.Tanh())
        self.add_module("linear2", nn.Linear(hidden, hidden))
        self.add_module("tanh2", nn.Tanh())
        self.add_module("linear3", nn.Linear(hidden, out_dim))


class RBFKernel(nn.Module):
    def __init__(self, ard_num_dims=1):
        super().__init__()
        self.raw_lengthscale = nn.Parameter(torch.zeros(1, ard_num_dims))
        self.raw_outputscale = nn.Parameter(torch.tensor(0.0))

    @property
    def lengthscale(self):
        return F.softplus(self.raw_lengthscale)

    @property
    def outputscale(self):
        return F.softplus(self.raw_outputscale)

    def forward(self, x1, x2):
        sq_dist = torch.cdist(x1 / self.lengthscale, x2 / self.lengthscale).pow(2)
        return self.outputscale * torch.exp(-0.5 * sq_dist)


class ExactGP(nn.Module):
    def __init__(self, train_x, train_y, feature_extractor=None, feature_dim=1):
        super().__init__()
        self.train_x = train_x
        self.train_y = train_y
        self.feature_extractor = feature_extractor
        self.covar_module = RBFKernel(ard_num_dims=feature_dim)
        self.mean_constant = nn.Parameter(torch.zeros(1))
        self.raw_noise = nn.Parameter(torch.tensor(-2.0))

    @property
    def noise(self):
        return F.softplus(self.raw_noise) + 1e-4

    def features(self, x):
        if self.feature_extractor is None:
            return x
        return self.feature_extractor(x)

    def neg_mll(self):
        n = self.train_x.size(0)
        z = self.features(self.train_x)
        K = self.covar_module(z, z) + (self.noise + 1e-4) * torch.eye(n)
        L = torch.linalg.cholesky(K)
        residual = (self.train_y - self.mean_constant).unsqueeze(-1)
        alpha = torch.cholesky_solve(residual, L)
        data_fit = (residual * alpha).sum()
        log_det = 2 * L.diagonal().log().sum()
        return 0.5 * (data_fit + log_det + n * math.log(2 * math.pi)) / n

    def predict(self, x):
        n = self.train_x.size(0)
        z = self.features(self.train_x)
        z_star = self.features(x)
        K = self.covar_module(z, z) + (self.noise + 1e-4) * torch.eye(n)
        L = torch.linalg.cholesky(K)
        K_s = self.covar_module(z, z_star)
        alpha = torch.cholesky_solve((self.train_y - self.mean_constant).unsqueeze(-1), L)
        mean = self.mean_constant + (K_s.t() @ alpha).squeeze(-1)
        v = torch.linalg.solve_triangular(L, K_s, upper=False)
        var = self.covar_module.outputscale - v.pow(2).sum(0)
        return mean, var.clamp_min(1e-6) + self.noise


def train(model, optimizer, iterations, name):
    model.train()
    losses = []
    for i in range(iterations):
        optimizer.zero_grad()
        loss = model.neg_mll()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (i + 1) % 100 == 0:
            print(f"{name} iter {i + 1}/{iterations} - loss: {loss.item():.3f} "
                  f"lengthscale: {model.covar_module.lengthscale.mean().item():.3f} "
                  f"noise: {model.noise.item():.4f}")
    return losses


def evaluate(model):
    model.eval()
    with torch.no_grad():
        mean, var = model.predict(test_x)
        rmse = torch.sqrt(F.mse_loss(mean, test_y)).item()
        nll = (0.5 * torch.log(2 * math.pi * var) + 0.5 * (test_y - mean) ** 2 / var).mean().item()
    return rmse, nll, mean, var


# the plain GP: the same kernel on the raw input
gp = ExactGP(train_x, train_y)
gp_optimizer = torch.optim.Adam(gp.parameters(), lr=0.05)
gp_losses = train(gp, gp_optimizer, 200, "GP")
gp_rmse, gp_nll, _, _ = evaluate(gp)
print(f"plain GP: test RMSE {gp_rmse:.4f} NLL {gp_nll:.4f}")

# DKL: the kernel on learned features, two parameter groups
dkl = ExactGP(train_x, train_y, FeatureExtractor(1), feature_dim=2)
optimizer = torch.optim.Adam([
    {"params": dkl.feature_extractor.parameters(), "weight_decay": 1e-4},
    {"params": dkl.covar_module.parameters()},
    {"params": [dkl.mean_constant, dkl.raw_noise]},
], lr=0.005)
optimizer.param_groups[1]["lr"] = 0.05
optimizer.param_groups[2]["lr"] = 0.05
losses = train(dkl, optimizer, 300, "DKL")
print(f"DKL loss dropped {losses[0] > losses[-1]}; lr per group {[g['lr'] for g in optimizer.param_groups]}")
dkl_rmse, dkl_nll, mean, var = evaluate(dkl)
print(f"DKL: test RMSE {dkl_rmse:.4f} NLL {dkl_nll:.4f}")
in_band = ((test_y - mean).abs() < 2 * var.sqrt()).float().mean().item()
print(f"DKL 2-sigma coverage {in_band:.3f}; variance positive {bool((var > 0).all())}")

# cholesky_solve against a plain solve of the same system
with torch.no_grad():
    z = dkl.features(train_x)
    K = dkl.covar_module(z, z) + (dkl.noise + 1e-4) * torch.eye(train_x.size(0))
    # cdist's float32 rounding leaves K a hair off symmetric; cholesky reads only the lower half
    K = (0.5 * (K + K.mT)).double()
    L = torch.linalg.cholesky(K)
    y = train_y.double().unsqueeze(-1)
    solve_ok = torch.allclose(torch.cholesky_solve(y, L), torch.linalg.solve(K, y), rtol=1e-6, atol=1e-8)
    logdet_ok = torch.allclose(2 * L.diagonal().log().sum(), torch.logdet(K))
print(f"cholesky_solve equals linalg.solve {solve_ok}; log-det equals logdet {logdet_ok}")
# the learned features buy evidence: DKL's marginal likelihood beats the plain GP's on the same data
assert losses[-1] < gp_losses[-1]

print(f"FINAL dkl_rmse={dkl_rmse:.4f} gp_rmse={gp_rmse:.4f} dkl_nll={dkl_nll:.4f} solve_ok={int(solve_ok and logdet_ok)}")
