"""Kernel ridge regression and its two classic approximations, written in torch as the "kernel methods
in PyTorch" tutorials do it, on a 2-d regression task.

An RBF kernel by ``torch.exp(-torch.cdist(X, Y).pow(2) / (2 * ls ** 2))``; exact kernel ridge
regression by ``torch.linalg.cholesky`` + ``torch.cholesky_solve`` (float32); the Nystrom
approximation with ``torch.randperm`` landmarks, ``torch.linalg.eigh`` of ``K_mm`` with eigenvalues
clipped by ``clamp(min=...)`` and features ``K_nm @ U / sqrt(eigvals)``, solved as a primal ridge
problem with ``torch.linalg.solve``; random Fourier features ``torch.cos(X @ W + b) * math.sqrt(2 / D)``
against the exact kernel; then, in float64 (``.double()``), the lengthscale and noise learned by
maximising the marginal likelihood through ``F.softplus`` raw parameters with Adam (gradients
through the Cholesky factor), and the predictive variance by
``torch.linalg.solve_triangular(L, K_s, upper=False)`` with its 2-sigma coverage of the test targets.
Data: ``sin(x0) * cos(x1)`` plus noise, from NumPy.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_TRAIN, N_TEST, NOISE = 200, 100, 0.1


def target(x):
    return np.sin(x[:, 0]) * np.cos(x[:, 1])


x_all = rng.uniform(-3, 3, size=(N_TRAIN + N_TEST, 2))
y_all = target(x_all) + NOISE * rng.standard_normal(N_TRAIN + N_TEST)
X = torch.from_numpy(x_all[:N_TRAIN]).float()
y = torch.from_numpy(y_all[:N_TRAIN]).float()
X_test = torch.from_numpy(x_all[N_TRAIN:]).float()
y_test = torch.from_numpy(y_all[N_TRAIN:]).float()


def rbf_kernel(X, Y, lengthscale):
    return torch.exp(-torch.cdist(X, Y).pow(2) / (2 * lengthscale ** 2))


def rmse(pred, truth):
    return torch.sqrt(torch.mean((pred - truth) ** 2)).item()


# ----------------------------------------------------------------- exact kernel ridge regression
lengthscale, lam = 1.0, 1e-2
K = rbf_kernel(X, X, lengthscale)
L = torch.linalg.cholesky(K + lam * torch.eye(N_TRAIN))
alpha = torch.cholesky_solve(y.unsqueeze(-1), L)
pred_exact = (rbf_kernel(X_test, X, lengthscale) @ alpha).squeeze(-1)
exact_rmse = rmse(pred_exact, y_test)
print(f"exact krr: K {tuple(K.shape)} {K.dtype}, test rmse {exact_rmse:.4f}, train rmse {rmse((K @ alpha).squeeze(-1), y):.4f}")

# ----------------------------------------------------------------- Nystrom
M = 40
landmarks = X[torch.randperm(N_TRAIN)[:M]]
K_mm = rbf_kernel(landmarks, landmarks, lengthscale)
eigvals, U = torch.linalg.eigh(K_mm)
eigvals = eigvals.clamp(min=1e-5)
phi = rbf_kernel(X, landmarks, lengthscale) @ U / torch.sqrt(eigvals)     # (N, M) features, phi phi^T ~ K
phi_test = rbf_kernel(X_test, landmarks, lengthscale) @ U / torch.sqrt(eigvals)
w = torch.linalg.solve(phi.T @ phi + lam * torch.eye(M), phi.T @ y)
nystrom_rmse = rmse(phi_test @ w, y_test)
nystrom_kernel_err = (torch.linalg.matrix_norm(K - phi @ phi.T) / torch.linalg.matrix_norm(K)).item()
print(f"nystrom m={M}: relative kernel error {nystrom_kernel_err:.4f}, test rmse {nystrom_rmse:.4f}, "
      f"smallest clipped eigenvalue {eigvals.min().item():.1e}")

# ----------------------------------------------------------------- random Fourier features
for n_features in (50, 400):
    W = torch.randn(2, n_features) / lengthscale
    b = torch.rand(n_features) * 2 * math.pi
    Z = torch.cos(X @ W + b) * math.sqrt(2 / n_features)
    Z_test = torch.cos(X_test @ W + b) * math.sqrt(2 / n_features)
    rff_kernel_err = (torch.linalg.matrix_norm(K - Z @ Z.T) / torch.linalg.matrix_norm(K)).item()
    w_rff = torch.linalg.solve(Z.T @ Z + lam * torch.eye(n_features), Z.T @ y)
    rff_rmse = rmse(Z_test @ w_rff, y_test)
    print(f"rff D={n_features}: relative kernel error {rff_kernel_err:.4f}, test rmse {rff_rmse:.4f}")


# ----------------------------------------------------------------- marginal likelihood in float64
class RBFRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.raw_lengthscale = nn.Parameter(torch.tensor(0.0, dtype=torch.float64))
        self.raw_noise = nn.Parameter(torch.tensor(-1.0, dtype=torch.float64))

    @property
    def lengthscale(self):
        return F.softplus(self.raw_lengthscale)

    @property
    def noise(self):
        return F.softplus(self.raw_noise) + 1e-6

    def cholesky(self, X):
        K = rbf_kernel(X, X, self.lengthscale) + self.noise * torch.eye(X.shape[0], dtype=X.dtype)
        return torch.linalg.cholesky(K)

    def neg_log_marginal_likelihood(self, X, y):
        L = self.cholesky(X)
        alpha = torch.cholesky_solve(y.unsqueeze(-1), L)
        data_fit = 0.5 * (y.unsqueeze(-1) * alpha).sum()
        complexity = torch.log(torch.diagonal(L)).sum()
        return (data_fit + complexity) / X.shape[0] + 0.5 * math.log(2 * math.pi)

    def predict(self, X, y, X_star):
        L = self.cholesky(X)
        alpha = torch.cholesky_solve(y.unsqueeze(-1), L)
        K_s = rbf_kernel(X, X_star, self.lengthscale)
        mean = (K_s.T @ alpha).squeeze(-1)
        v = torch.linalg.solve_triangular(L, K_s, upper=False)
        var = 1.0 - (v ** 2).sum(dim=0)
        return mean, var


Xd, yd, Xd_test, yd_test = X.double(), y.double(), X_test.double(), y_test.double()
model = RBFRegression()
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
for step in range(1, 101):
    optimizer.zero_grad()
    nlml = model.neg_log_marginal_likelihood(Xd, yd)
    nlml.backward()
    optimizer.step()
    if step % 25 == 0:
        print(f"step {step:3d} nlml {nlml.item():.5f} lengthscale {model.lengthscale.item():.4f} "
              f"noise {model.noise.item():.5f}")

with torch.no_grad():
    mean, var = model.predict(Xd, yd, Xd_test)
    std = torch.sqrt(var + model.noise)
    gp_rmse = rmse(mean, yd_test)
    coverage = ((yd_test - mean).abs() < 2 * std).double().mean().item()
print(f"gp: test rmse {gp_rmse:.4f}, mean predictive std {std.mean().item():.4f}, 2-sigma coverage {coverage:.3f}, "
      f"min variance {var.min().item():.2e} {var.dtype}")

print(f"FINAL exact_rmse={exact_rmse:.4f} nystrom_rmse={nystrom_rmse:.4f} nystrom_err={nystrom_kernel_err:.4f} "
      f"rff_rmse={rff_rmse:.4f} rff_err={rff_kernel_err:.4f} nlml={nlml.item():.4f} "
      f"lengthscale={model.lengthscale.item():.4f} noise={model.noise.item():.5f} gp_rmse={gp_rmse:.4f} "
      f"coverage={coverage:.3f}")
