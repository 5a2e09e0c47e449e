"""Exact Gaussian-process regression written by hand, as the GPyTorch-free notebooks and blog posts do it
("Gaussian processes from scratch in PyTorch"): float64 throughout by ``torch.set_default_dtype(torch.float64)``.

An ``RBFKernel`` by ``torch.cdist(x1, x2).pow(2)`` and a ``Matern52Kernel`` by broadcasting
(``(x1.unsqueeze(-2) - x2.unsqueeze(-3)).pow(2).sum(-1)``), each with ``raw_lengthscale`` and
``raw_outputscale`` ``nn.Parameter``s through ``F.softplus``; an ``ExactGP`` module with a
``raw_noise`` and a constant mean; the negative log marginal likelihood by
``torch.linalg.cholesky(K + noise * I + torch.eye(n) * 1e-6)``, ``alpha = torch.cholesky_solve(y, L)``
and ``2 * torch.log(torch.diagonal(L)).sum()`` checked against ``torch.logdet`` and
``torch.linalg.slogdet`` (they must agree); Adam on both kernels' hyperparameters; the predictive
mean ``K_s^T alpha`` and variance by ``torch.linalg.solve_triangular(L, K_s, upper=False)``;
``torch.distributions.MultivariateNormal(mean, scale_tril=L).log_prob(y)`` against the hand formula,
and the posterior sampled by ``rsample``. Data: a noisy sine with a gap, from NumPy.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import MultivariateNormal

torch.set_default_dtype(torch.float64)
seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def f_true(x):
    return np.sin(3 * x) + 0.3 * np.cos(7 * x)


# 40 training points on [-2, 2] with a gap in (0.3, 0.9); noise std 0.1
x_np = rng.uniform(-2, 2, size=60)
x_np = x_np[(x_np < 0.3) | (x_np > 0.9)][:40]
train_x = torch.from_numpy(np.sort(x_np)).unsqueeze(-1)
train_y = torch.from_numpy(f_true(train_x.numpy()[:, 0]) + 0.1 * rng.standard_normal(train_x.shape[0]))
test_x = torch.linspace(-2, 2, 81).unsqueeze(-1)
test_y = torch.from_numpy(f_true(test_x.numpy()[:, 0]))
print(f"train {tuple(train_x.shape)} {train_x.dtype}, test {tuple(test_x.shape)}, default {torch.get_default_dtype()}")


class RBFKernel(nn.Module):
    def __init__(self):
        super().__init__()
        self.raw_lengthscale = nn.Parameter(torch.tensor(0.0))
        self.raw_outputscale = nn.Parameter(torch.tensor(0.0))

    @property
    def lengthscale(self):
        return F.softplus(self.raw_lengthscale)

    @property
    def outputscale(self):
        return F.softplus(self.raw_outputscale)

    def forward(self, x1, x2):
        sqdist = torch.cdist(x1 / self.lengthscale, x2 / self.lengthscale).pow(2)
        return self.outputscale * torch.exp(-0.5 * sqdist)


class Matern52Kernel(RBFKernel):
    def forward(self, x1, x2):
        diff = (x1.unsqueeze(-2) - x2.unsqueeze(-3)) / self.lengthscale
        r = diff.pow(2).sum(-1).clamp_min(1e-30).sqrt()
        sqrt5_r = math.sqrt(5) * r
        return self.outputscale * (1 + sqrt5_r + 5.0 / 3.0 * r ** 2) * torch.exp(-sqrt5_r)


class ExactGP(nn.Module):
    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel
        self.raw_noise = nn.Parameter(torch.tensor(-2.0))
        self.mean_constant = nn.Parameter(torch.zeros(()))

    @property
    def noise(self):
        return F.softplus(self.raw_noise) + 1e-4

    def cholesky(self, x):
        n = x.shape[0]
        K = self.kernel(x, x) + self.noise * torch.eye(n)
        return torch.linalg.cholesky(K + torch.eye(n) * 1e-6), K

    def neg_log_marginal_likelihood(self, x, y):
        L, _ = self.cholesky(x)
        r = (y - self.mean_constant).unsqueeze(-1)
        alpha = torch.cholesky_solve(r, L)
        logdet = 2 * torch.log(torch.diagonal(L)).sum()
        n = x.shape[0]
        return 0.5 * (r * alpha).sum() + 0.5 * logdet + 0.5 * n * math.log(2 * math.pi)

    def predict(self, x, y, x_star):
        L, _ = self.cholesky(x)
        alpha = torch.cholesky_solve((y - self.mean_constant).unsqueeze(-1), L)
        K_s = self.kernel(x, x_star)
        mean = (K_s.T @ alpha).squeeze(-1) + self.mean_constant
        v = torch.linalg.solve_triangular(L, K_s, upper=False)
        var = torch.diagonal(self.kernel(x_star, x_star)) - v.pow(2).sum(0)
        cov = self.kernel(x_star, x_star) - v.T @ v
        return mean, var.clamp_min(1e-12), cov


def train(model, steps=120, lr=0.05):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for i in range(steps):
        optimizer.zero_grad()
        loss = model.neg_log_marginal_likelihood(train_x, train_y)
        loss.backward()
        optimizer.step()
        if (i + 1) % 40 == 0:
            print(f"  iter {i + 1}/{steps} - nlml {loss.item():.4f} lengthscale {model.kernel.lengthscale.item():.4f}"
                  f" outputscale {model.kernel.outputscale.item():.4f} noise {model.noise.item():.5f}")
    return loss.item()


results = {}
for name, kernel in [("rbf", RBFKernel()), ("matern52", Matern52Kernel())]:
    model = ExactGP(kernel)
    with torch.no_grad():
        model.kernel.raw_lengthscale.fill_(math.log(math.expm1(0.5 + 0.2 * torch.rand(()).item())))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} hyperparameters, dtype {model.raw_noise.dtype}")
    nlml = train(model)
    with torch.no_grad():
        mean, var, cov = model.predict(train_x, train_y, test_x)
    rmse = (mean - test_y).pow(2).mean().sqrt().item()
    inside = ((test_y - mean).abs() <= 2 * var.sqrt()).double().mean().item()
    in_gap = (test_x[:, 0] > 0.3) & (test_x[:, 0] < 0.9)
    gap_ratio = (var[in_gap].mean() / var[~in_gap].mean()).item()
    print(f"{name}: rmse {rmse:.4f}, 2-sigma coverage {inside:.3f}, gap/outside variance ratio {gap_ratio:.2f}")
    results[name] = dict(nlml=nlml, rmse=rmse, model=model, cov=cov, mean=mean)

# ----------------------------------------------------------------- log-determinants must agree
model = results["rbf"]["model"]
with torch.no_grad():
    L, K = model.cholesky(train_x)
    chol_logdet = 2 * torch.log(torch.diagonal(L)).sum()
    Kj = K + torch.eye(K.shape[0]) * 1e-6
    sign, slog = torch.linalg.slogdet(Kj)
    logdet = torch.logdet(Kj)
    old_sign, old_slog = torch.slogdet(Kj)
print(f"logdet: cholesky {chol_logdet.item():.6f} torch.logdet {logdet.item():.6f} "
      f"slogdet ({sign.item():.0f}, {slog.item():.6f}) torch.slogdet sign {old_sign.item():.0f}")
logdet_gap = max(abs(chol_logdet - logdet).item(), abs(chol_logdet - slog).item(), abs(old_slog - slog).item())

# ----------------------------------------------------------------- MultivariateNormal against the hand formula
with torch.no_grad():
    mvn = MultivariateNormal(model.mean_constant.expand(train_y.shape[0]), scale_tril=L)
    mvn_lp = mvn.log_prob(train_y)
    hand = -model.neg_log_marginal_likelihood(train_x, train_y)
    mvn_cov = MultivariateNormal(model.mean_constant.expand(train_y.shape[0]), covariance_matrix=Kj)
    cov_lp = mvn_cov.log_prob(train_y)
print(f"log marginal likelihood: MultivariateNormal(scale_tril) {mvn_lp.item():.5f}, covariance_matrix "
      f"{cov_lp.item():.5f}, by hand {hand.item():.5f}, event {tuple(mvn.event_shape)}")
mvn_gap = max(abs(mvn_lp - hand).item(), abs(cov_lp - hand).item())

# ----------------------------------------------------------------- posterior samples
with torch.no_grad():
    post_mean, post_cov = results["rbf"]["mean"], results["rbf"]["cov"]
    post_L = torch.linalg.cholesky(post_cov + torch.eye(post_cov.shape[0]) * 1e-6)
    posterior = MultivariateNormal(post_mean, scale_tril=post_L)
    samples = posterior.rsample((200,))
sample_err = (samples.mean(0) - post_mean).abs().max().item()
print(f"posterior samples {tuple(samples.shape)} {samples.dtype}, max |sample mean - mean| {sample_err:.4f}")

# gradient of the nlml through cholesky/cholesky_solve: autograd against a central difference
model.zero_grad()
model.neg_log_marginal_likelihood(train_x, train_y).backward()
g = model.kernel.raw_lengthscale.grad.item()
with torch.no_grad():
    h = 1e-5
    model.kernel.raw_lengthscale += h
    up = model.neg_log_marginal_likelihood(train_x, train_y).item()
    model.kernel.raw_lengthscale -= 2 * h
    down = model.neg_log_marginal_likelihood(train_x, train_y).item()
    model.kernel.raw_lengthscale += h
fd = (up - down) / (2 * h)
grad_gap = abs(g - fd) / max(1.0, abs(fd))
print(f"d nlml / d raw_lengthscale: autograd {g:.6f}, central difference {fd:.6f}")

rbf, mat = results["rbf"], results["matern52"]
print(f"FINAL rbf_nlml={rbf['nlml']:.4f} rbf_rmse={rbf['rmse']:.4f} matern_nlml={mat['nlml']:.4f} "
      f"matern_rmse={mat['rmse']:.4f} lengthscale={model.kernel.lengthscale.item():.4f} "
      f"noise={model.noise.item():.5f} logdet_ok={float(logdet_gap < 1e-8):.1f} mvn_ok={float(mvn_gap < 1e-8):.1f} "
      f"grad_ok={float(grad_gap < 1e-5):.1f} sample_err={sample_err:.4f}")
