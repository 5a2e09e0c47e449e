"""Stein variational gradient descent (Liu & Wang, NeurIPS 2016) as the PyTorch ports of
DartML/Stein-Variational-Gradient-Descent write it, on two targets.

The particles are one tensor ``X`` (no ``requires_grad``) handed to ``optim.Adam([X])``; each step
sets ``X.grad = -phi(X)`` and calls ``optimizer.step()``. ``phi`` re-leafs the particles with
``X.detach().requires_grad_(True)``, takes the score by ``autograd.grad(log_prob(X).sum(), X)[0]``,
the RBF kernel ``K(X, X.detach())`` from the port's ``dnorm2`` (``XX.diag().unsqueeze(1)``) with the
median-heuristic bandwidth (``torch.median`` of ``torch.pdist``, checked against ``np.median`` of the
``torch.cdist`` off-diagonal distances on an odd count), and the repulsive term as
``-autograd.grad(K_XX.sum(), X)[0]`` (checked against its closed form
``2 * gamma * (K.sum(1, keepdim=True) * X - K @ X)``).

Target 1: a 2-D Gaussian mixture as ``MixtureSameFamily(Categorical(probs), MultivariateNormal(locs,
scale_tril=...))``; particle mean and ``torch.cov`` against the mixture's analytic moments.
Target 2: a Bayesian logistic regression posterior (Gaussian prior, ``F.logsigmoid(y * X @ w)``
likelihood, batched over particles), against the Laplace approximation at the MAP (found by
``optim.LBFGS``, Hessian by ``torch.autograd.functional.hessian``); test accuracy of the posterior
predictive ``torch.sigmoid(Xtest @ W.t()).mean(1)``.
"""

import os

import numpy as np
import torch
import torch.distributions as D
import torch.nn.functional as F
import torch.optim as optim
from torch import autograd

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


class RBF(torch.nn.Module):
    def __init__(self, sigma=None):
        super().__init__()
        self.sigma = sigma

    def forward(self, X, Y):
        XX = X.matmul(X.t())
        XY = X.matmul(Y.t())
        YY = Y.matmul(Y.t())
        dnorm2 = -2 * XY + XX.diag().unsqueeze(1) + YY.diag().unsqueeze(0)
        if self.sigma is None:
            # median heuristic: h = med^2 / log(n)
            med = torch.median(torch.pdist(Y.detach()))
            h = med**2 / np.log(X.size(0) + 1)
            sigma = torch.sqrt(0.5 * h).item()
        else:
            sigma = self.sigma
        self.gamma = 1.0 / (1e-8 + 2 * sigma**2)
        return (-self.gamma * dnorm2).exp()


class SVGD:
    def __init__(self, P, K, optimizer):
        self.P = P
        self.K = K
        self.optim = optimizer

    def phi(self, X):
        X = X.detach().requires_grad_(True)
        log_prob = self.P.log_prob(X)
        score_func = autograd.grad(log_prob.sum(), X)[0]
        K_XX = self.K(X, X.detach())
        grad_K = -autograd.grad(K_XX.sum(), X)[0]
        phi = (K_XX.detach().matmul(score_func) + grad_K) / X.size(0)
        return phi, K_XX.detach(), grad_K

    def step(self, X):
        self.optim.zero_grad()
        phi, _, _ = self.phi(X)
        X.grad = -phi
        self.optim.step()


# ------------------------------------------------------------------- the kernel pieces
with torch.no_grad():
    Xodd = torch.randn(15, 2)
    d_cdist = torch.cdist(Xodd, Xodd)
    off = d_cdist[~torch.eye(15, dtype=torch.bool)]
    median_agree = abs(torch.median(torch.pdist(Xodd)).item() - float(np.median(off.numpy()))) < 1e-5
kernel = RBF()
svgd_probe = SVGD(D.MultivariateNormal(torch.zeros(2), torch.eye(2)), kernel, None)
_, K_probe, grad_K_probe = svgd_probe.phi(Xodd)
closed_form = 2 * kernel.gamma * (K_probe.sum(1, keepdim=True) * Xodd - K_probe @ Xodd)
repulsion_agree = torch.allclose(grad_K_probe, closed_form, atol=1e-5)
print(
    f"median of pdist == np.median of cdist: {median_agree}; autograd kernel gradient == closed form: {repulsion_agree}"
)

# ------------------------------------------------------------------- target 1: a Gaussian mixture
weights = torch.tensor([0.3, 0.7])
locs = torch.tensor([[-1.2, 0.0], [1.2, 0.6]])
scale_tril = torch.stack([torch.tensor([[0.6, 0.0], [0.2, 0.5]]), torch.tensor([[0.8, 0.0], [-0.3, 0.6]])])
mixture = D.MixtureSameFamily(D.Categorical(probs=weights), D.MultivariateNormal(locs, scale_tril=scale_tril))
covs = scale_tril @ scale_tril.transpose(-1, -2)
true_mean = (weights[:, None] * locs).sum(0)
second = (weights[:, None, None] * (covs + locs[:, :, None] * locs[:, None, :])).sum(0)
true_cov = second - torch.outer(true_mean, true_mean)

n = 100
X = torch.randn(n, 2) * 2.0
svgd = SVGD(mixture, RBF(), optim.Adam([X], lr=0.1))
for it in range(1, 401):
    svgd.step(X)
    if it % 200 == 0:
        print(f"mixture iter {it}: mean log p {mixture.log_prob(X).mean().item():.4f}")
mix_mean_err = (X.mean(0) - true_mean).norm().item()
mix_cov_err = (torch.cov(X.t()) - true_cov).norm().item()
left_frac = (X[:, 0] < 0).float().mean().item()
print(f"mixture: |mean - true| {mix_mean_err:.4f} |cov - true|_F {mix_cov_err:.4f} left mode {left_frac:.2f}")

# ------------------------------------------------------------------- target 2: Bayesian logistic regression
rng = np.random.RandomState(100 + seed)
n_train, n_test, dim = 200, 400, 3
w_true = np.array([1.5, -2.0, 0.5])
Xall = np.concatenate([rng.randn(n_train + n_test, dim - 1), np.ones((n_train + n_test, 1))], axis=1)
yall = np.where(rng.rand(n_train + n_test) < 1 / (1 + np.exp(-Xall @ w_true)), 1.0, -1.0)
Xtr = torch.tensor(Xall[:n_train], dtype=torch.float32)
ytr = torch.tensor(yall[:n_train], dtype=torch.float32)
Xte = torch.tensor(Xall[n_train:], dtype=torch.float32)
yte = torch.tensor(yall[n_train:], dtype=torch.float32)
PRIOR_VAR = 4.0


class BayesianLR:
    def __init__(self, X, Y):
        self.X = X
        self.Y = Y

    def log_prob(self, w):
        # w: (particles, dim)
        log_prior = -0.5 * (w**2).sum(1) / PRIOR_VAR
        logits = self.Y[None, :] * (w @ self.X.t())
        return log_prior + F.logsigmoid(logits).sum(1)


blr = BayesianLR(Xtr, ytr)

w_map = torch.zeros(dim, requires_grad=True)
lbfgs = optim.LBFGS([w_map], lr=1, max_iter=100, line_search_fn="strong_wolfe")


def closure():
    lbfgs.zero_grad()
    loss = -blr.log_prob(w_map[None])[0]
    loss.backward()
    return loss


lbfgs.step(closure)
w_map = w_map.detach()
H = torch.autograd.functional.hessian(lambda w: -blr.log_prob(w[None])[0], w_map)
laplace_cov = torch.linalg.inv(H)

W = torch.randn(50, dim)
svgd = SVGD(blr, RBF(), optim.Adam([W], lr=0.05))
for it in range(1, 301):
    svgd.step(W)
    if it % 150 == 0:
        print(f"logistic iter {it}: mean log posterior {blr.log_prob(W).mean().item():.3f}")
with torch.no_grad():
    prob = torch.sigmoid(Xte @ W.t()).mean(1)
    acc = ((prob > 0.5).float() * 2 - 1).eq(yte).float().mean().item()
    map_acc = (torch.sign(Xte @ w_map)).eq(yte).float().mean().item()
lr_mean_err = (W.mean(0) - w_map).norm().item()
lr_std_ratio = (W.std(0) / laplace_cov.diagonal().sqrt()).mean().item()
print(f"logistic: |svgd mean - MAP| {lr_mean_err:.4f}, svgd std / Laplace std {lr_std_ratio:.3f}")
print(f"logistic: test acc svgd {acc:.4f} MAP {map_acc:.4f}")

checks = int(median_agree and repulsion_agree)
print(
    f"FINAL mix_mean_err={mix_mean_err:.4f} mix_cov_err={mix_cov_err:.4f} left_frac={left_frac:.4f} "
    f"lr_mean_err={lr_mean_err:.4f} lr_std_ratio={lr_std_ratio:.4f} acc={acc:.4f} checks={checks}"
)
