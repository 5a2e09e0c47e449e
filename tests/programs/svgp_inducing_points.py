"""A sparse variational GP (Hensman et al., UAI 2013) written by hand, the way the classic PyTorch SVGP
tutorials and GPyTorch's ``VariationalStrategy`` with ``whiten=True`` lay it out, on a 1-D regression.

``torch.set_default_dtype(torch.float64)`` as GP code does. The RBF kernel is
``outputscale * exp(-0.5 * torch.cdist(x1 / ls, x2 / ls).pow(2))`` with ``F.softplus`` of raw
hyperparameters (GPyTorch's ``Positive`` constraint). Inducing points ``Z`` are an ``nn.Parameter``; the
whitened variational distribution ``q(v) = N(m, L L^T)`` takes ``L`` as ``torch.tril(raw, -1)`` plus
``torch.diag_embed(F.softplus(torch.diagonal(raw)))``. The marginals at a minibatch use
``torch.linalg.cholesky(Kzz + jitter * I)`` and ``torch.linalg.solve_triangular(Lz, Kzx, upper=False)``;
the ELBO is the minibatch expected Gaussian log-likelihood scaled by ``N / B`` minus the analytic
``KL(q(v) || N(0, I))``, whose log-determinant is taken three ways (``2 * log(diag L).sum()``,
``torch.logdet`` and ``torch.linalg.slogdet``; they must agree). Adam on everything with minibatches from
``torch.randperm``.

The exact GP with the learned hyperparameters gives the reference predictive mean by
``torch.linalg.solve(Kxx + noise * I, y)`` and again by ``torch.cholesky_solve`` (must agree), and the
unwhitened SVGP mean ``Kxz Kzz^-1 (Lz m)`` by ``torch.cholesky_solve`` must equal the whitened one.

Checked: the full-data ELBO rises, the SVGP's predictive mean is close to the exact GP's, the
predictive variance stays positive, and the test RMSE.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
torch.set_default_dtype(torch.float64)

N, M, BATCH = 240, 12, 60
JITTER = 1e-6


def target(x):
    return np.sin(3.0 * x) + 0.3 * x


rng = np.random.RandomState(1234 + seed)
train_x_np = np.sort(rng.uniform(-3.0, 3.0, size=N))
train_y_np = target(train_x_np) + 0.2 * rng.randn(N)
test_x_np = np.linspace(-2.8, 2.8, 50)
train_x = torch.from_numpy(train_x_np).unsqueeze(-1)
train_y = torch.from_numpy(train_y_np)
test_x = torch.from_numpy(test_x_np).unsqueeze(-1)
test_y = torch.from_numpy(target(test_x_np))


def inv_softplus(x):
    return math.log(math.expm1(x))


class RBFKernel(nn.Module):
    def __init__(self):
        super().__init__()
        self.raw_lengthscale = nn.Parameter(torch.tensor(inv_softplus(1.0)))
        self.raw_outputscale = nn.Parameter(torch.tensor(inv_softplus(1.0)))

    @property
    def lengthscale(self):
        return F.softplus(self.raw_lengthscale)

    @property
    def outputscale(self):
        return F.softplus(self.raw_outputscale)

    def forward(self, x1, x2, diag=False):
        if diag:
            return self.outputscale.expand(x1.size(0))
        ls = self.lengthscale
        dist = torch.cdist(x1 / ls, x2 / ls).pow(2)
        return self.outputscale * torch.exp(-0.5 * dist)


class SVGP(nn.Module):
    def __init__(self, inducing_points):
        super().__init__()
        m = inducing_points.size(0)
        self.kernel = RBFKernel()
        self.inducing_points = nn.Parameter(inducing_points.clone())
        self.variational_mean = nn.Parameter(torch.zeros(m))
        # GPyTorch initialises the whitened covariance to the identity
        self.raw_chol = nn.Parameter(torch.eye(m) * inv_softplus(1.0))
        self.raw_noise = nn.Parameter(torch.tensor(inv_softplus(0.5)))

    @property
    def noise(self):
        return F.softplus(self.raw_noise) + 1e-4

    def chol_variational_covar(self):
        raw = self.raw_chol
        return torch.tril(raw, -1) + torch.diag_embed(F.softplus(torch.diagonal(raw)))

    def prior_chol(self):
        Z = self.inducing_points
        Kzz = self.kernel(Z, Z)
        return torch.linalg.cholesky(Kzz + JITTER * torch.eye(Z.size(0)))

    def forward(self, x):
        """Marginals of q(f(x)) under the whitened parameterisation."""
        Lz = self.prior_chol()
        Kzx = self.kernel(self.inducing_points, x)
        A = torch.linalg.solve_triangular(Lz, Kzx, upper=False)  # Lz^-1 Kzx, (M, B)
        L = self.chol_variational_covar()
        mean = A.t() @ self.variational_mean
        LtA = L.t() @ A
        var = self.kernel(x, x, diag=True) - A.pow(2).sum(0) + LtA.pow(2).sum(0)
        return mean, var.clamp_min(1e-10)

    def kl_divergence(self):
        L = self.chol_variational_covar()
        m = self.variational_mean
        logdet_S = 2.0 * torch.log(torch.diagonal(L)).sum()
        trace_S = L.pow(2).sum()
        return 0.5 * (trace_S + m @ m - m.numel() - logdet_S)

    def expected_log_prob(self, y, mean, var):
        noise = self.noise
        return (
            -0.5 * math.log(2 * math.pi) - 0.5 * torch.log(noise) - 0.5 * ((y - mean).pow(2) + var) / noise
        ).sum()

    def elbo(self, x, y, num_data):
        mean, var = self(x)
        ell = self.expected_log_prob(y, mean, var) * (num_data / x.size(0))
        return ell - self.kl_divergence()


inducing = torch.linspace(-2.5, 2.5, M).unsqueeze(-1) + 0.1 * torch.randn(M, 1)
model = SVGP(inducing)
optimizer = torch.optim.Adam(model.parameters(), lr=0.03)

with torch.no_grad():
    elbo_start = model.elbo(train_x, train_y, N).item() / N
print(
    f"inducing points {tuple(model.inducing_points.shape)}, {sum(p.numel() for p in model.parameters())} parameters"
)
print(f"start: elbo/N {elbo_start:.4f}")

EPOCHS = 120
for epoch in range(1, EPOCHS + 1):
    perm = torch.randperm(N)
    total = 0.0
    for i in range(0, N, BATCH):
        idx = perm[i : i + BATCH]
        optimizer.zero_grad()
        loss = -model.elbo(train_x[idx], train_y[idx], N)
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 40 == 0:
        print(
            f"epoch {epoch:3d} -elbo/N {total / (N // BATCH) / N:.4f} lengthscale {model.kernel.lengthscale.item():.3f} "
            f"outputscale {model.kernel.outputscale.item():.3f} noise {model.noise.item():.4f}"
        )

with torch.no_grad():
    elbo_end = model.elbo(train_x, train_y, N).item() / N
    # the KL's log-determinant three ways
    L = model.chol_variational_covar()
    S = L @ L.t()
    logdet_chol = 2.0 * torch.log(torch.diagonal(L)).sum()
    sign, logabsdet = torch.linalg.slogdet(S)
    logdet_agree = bool(
        torch.allclose(logdet_chol, torch.logdet(S), atol=1e-8)
        and torch.allclose(logdet_chol, sign * logabsdet, atol=1e-8)
    )

    svgp_mean, svgp_var = model(test_x)
    # unwhitened: u = Lz v, mean = Kxz Kzz^-1 (Lz m)
    Lz = model.prior_chol()
    u_mean = Lz @ model.variational_mean
    Kzx = model.kernel(model.inducing_points, test_x)
    unwhitened_mean = (Kzx.t() @ torch.cholesky_solve(u_mean.unsqueeze(-1), Lz)).squeeze(-1)
    whiten_agree = bool(torch.allclose(svgp_mean, unwhitened_mean, atol=1e-6))

    # the exact GP with the learned hyperparameters
    Kxx = model.kernel(train_x, train_x) + model.noise * torch.eye(N)
    Ksx = model.kernel(test_x, train_x)
    exact_mean = Ksx @ torch.linalg.solve(Kxx, train_y)
    Lxx = torch.linalg.cholesky(Kxx)
    exact_mean_chol = (Ksx @ torch.cholesky_solve(train_y.unsqueeze(-1), Lxx)).squeeze(-1)
    exact_agree = bool(torch.allclose(exact_mean, exact_mean_chol, atol=1e-6))

    mean_gap = (svgp_mean - exact_mean).abs().max().item()
    svgp_rmse = (svgp_mean - test_y).pow(2).mean().sqrt().item()
    exact_rmse = (exact_mean - test_y).pow(2).mean().sqrt().item()
    var_positive = bool((svgp_var > 0).all())

print(f"end: elbo/N {elbo_end:.4f} (rose: {elbo_end > elbo_start})")
print(
    f"log-det by Cholesky == logdet == slogdet: {logdet_agree}; whitened == unwhitened mean: {whiten_agree}"
)
print(f"exact GP solve == cholesky_solve: {exact_agree}")
print(f"max |svgp mean - exact mean| {mean_gap:.4f}; rmse svgp {svgp_rmse:.4f} exact {exact_rmse:.4f}")

checks = int(logdet_agree and whiten_agree and exact_agree and var_positive and elbo_end > elbo_start)
print(
    f"FINAL elbo_gain={elbo_end - elbo_start:.4f} mean_gap={mean_gap:.4f} svgp_rmse={svgp_rmse:.4f} "
    f"exact_rmse={exact_rmse:.4f} checks={checks}"
)
