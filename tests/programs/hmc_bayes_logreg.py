"""Bayesian logistic regression three ways, as the "HMC from scratch in PyTorch" posts write it, in float64.

Hamiltonian Monte Carlo by hand: the potential energy ``U(w) = -(Normal(0, 1).log_prob(w).sum() +
Bernoulli(logits=X @ w).log_prob(y).sum())`` from ``torch.distributions``, its gradient by
``torch.autograd.grad`` on ``w.detach().requires_grad_(True)``, leapfrog steps (half momentum steps at the
ends, momentum flipped), kinetic energy ``0.5 * (p ** 2).sum()``, the Metropolis test
``torch.log(torch.rand(())) < H0 - H1``, step-size adaptation during warm-up towards an acceptance of 0.65 (Robbins-Monro on the log step, averaged)
(``min(1, exp(H0 - H1))`` by ``torch.clamp``), samples appended under ``torch.no_grad()`` and stacked, the
acceptance rate; the Laplace approximation at the MAP (found by ``torch.optim.LBFGS`` with a closure) with
the Hessian from ``torch.autograd.functional.hessian`` and the covariance by ``torch.linalg.inv``, its
log-det by ``torch.linalg.slogdet`` for the evidence; ``torch.quantile`` 95% credible intervals and their
coverage of the true weights; variational inference with ``Normal(mu, F.softplus(rho)).rsample()``
and the closed-form ``torch.distributions.kl_divergence`` to the prior (checked against a Monte Carlo
estimate), Adam on the negative ELBO; posterior predictive accuracy by averaging ``torch.sigmoid`` over samples.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# ----------------------------------------------------------------- data: 120 points, a bias and 3 features
N, D = 120, 4
w_true = np.array([0.5, -1.5, 2.0, 0.0])
X_np = np.concatenate([np.ones((N, 1)), rng.standard_normal((N, D - 1))], 1)
y_np = (rng.random(N) < 1 / (1 + np.exp(-X_np @ w_true))).astype(np.float64)
X, y = torch.from_numpy(X_np), torch.from_numpy(y_np)
X_test_np = np.concatenate([np.ones((400, 1)), rng.standard_normal((400, D - 1))], 1)
X_test = torch.from_numpy(X_test_np)
y_test = torch.from_numpy((rng.random(400) < 1 / (1 + np.exp(-X_test_np @ w_true))).astype(np.float64))
print(f"X {tuple(X.shape)} {X.dtype}, positives {int(y.sum())} of {N}")

prior = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))


def log_likelihood(w):
    return Bernoulli(logits=X @ w).log_prob(y).sum(-1)


def potential(w):
    return -(prior.log_prob(w).sum(-1) + log_likelihood(w))


def grad_U(w):
    w = w.detach().requires_grad_(True)
    u = potential(w)
    (g,) = torch.autograd.grad(u, w)
    return u.detach(), g


def leapfrog(w, p, step_size, n_steps):
    _, g = grad_U(w)
    p = p - 0.5 * step_size * g
    for i in range(n_steps):
        w = w + step_size * p
        _, g = grad_U(w)
        if i != n_steps - 1:
            p = p - step_size * g
    p = p - 0.5 * step_size * g
    return w, -p


def hmc(w0, n_samples, n_warmup, step_size=0.05, n_steps=10, target_accept=0.65):
    w = w0.clone()
    samples, accepted = [], 0
    log_step, log_step_avg = math.log(step_size), 0.0
    U0, _ = grad_U(w)
    for it in range(n_warmup + n_samples):
        p0 = torch.randn_like(w)
        H0 = U0 + 0.5 * (p0 ** 2).sum()
        w_new, p_new = leapfrog(w, p0, step_size, n_steps)
        U1, _ = grad_U(w_new)
        H1 = U1 + 0.5 * (p_new ** 2).sum()
        log_accept = H0 - H1
        accept = torch.log(torch.rand((), dtype=torch.float64)) < log_accept
        if accept:
            w, U0 = w_new, U1
        if it < n_warmup:  # Robbins-Monro on the log step size, then freeze it at the second half's average
            accept_prob = torch.clamp(torch.exp(log_accept), max=1.0).item()
            log_step += (accept_prob - target_accept) / (it + 1) ** 0.6
            step_size = math.exp(log_step)
            if it >= n_warmup // 2:
                log_step_avg += log_step / (n_warmup - n_warmup // 2)
            if it == n_warmup - 1:
                step_size = math.exp(log_step_avg)
        else:
            accepted += int(accept)
            with torch.no_grad():
                samples.append(w.clone())
        if (it + 1) % 120 == 0:
            print(f"  iteration {it + 1}: U {U0.item():.3f}, step size {step_size:.4f}")
    return torch.stack(samples), accepted / n_samples, step_size


samples, acceptance, step_size = hmc(torch.zeros(D, dtype=torch.float64), n_samples=360, n_warmup=120)
hmc_mean, hmc_std = samples.mean(0), samples.std(0)
print(f"HMC: {tuple(samples.shape)} samples, acceptance {acceptance:.3f}, step size {step_size:.4f}")
print("  mean " + " ".join(f"{v:+.3f}" for v in hmc_mean.tolist()) +
      " | std " + " ".join(f"{v:.3f}" for v in hmc_std.tolist()))

# ----------------------------------------------------------------- Laplace approximation at the MAP
w_map = torch.zeros(D, dtype=torch.float64, requires_grad=True)
lbfgs = torch.optim.LBFGS([w_map], lr=1, max_iter=50, line_search_fn="strong_wolfe")


def closure():
    lbfgs.zero_grad()
    loss = potential(w_map)
    loss.backward()
    return loss


lbfgs.step(closure)
w_map = w_map.detach()
H = torch.autograd.functional.hessian(potential, w_map)
cov = torch.linalg.inv(H)
laplace_std = torch.sqrt(torch.diagonal(cov))
_, logdet_H = torch.linalg.slogdet(H)
log_evidence = -potential(w_map) + 0.5 * D * math.log(2 * math.pi) - 0.5 * logdet_H
# the Hessian of the logistic potential in closed form: X^T diag(s (1 - s)) X + I
s = torch.sigmoid(X @ w_map)
H_exact = X.T @ (X * (s * (1 - s)).unsqueeze(-1)) + torch.eye(D, dtype=torch.float64)
print("Laplace: map " + " ".join(f"{v:+.3f}" for v in w_map.tolist()) +
      " | std " + " ".join(f"{v:.3f}" for v in laplace_std.tolist()))
print(f"  hessian symmetric {bool(torch.allclose(H, H.T))}, matches the closed form "
      f"{bool(torch.allclose(H, H_exact, atol=1e-8))}, log evidence {log_evidence.item():.4f}")

# ----------------------------------------------------------------- credible intervals
q = torch.quantile(samples, torch.tensor([0.025, 0.5, 0.975], dtype=torch.float64), dim=0)
lower, median, upper = q[0], q[1], q[2]
w_true_t = torch.from_numpy(w_true)
covered = ((w_true_t >= lower) & (w_true_t <= upper)).sum().item()
width = (upper - lower).mean().item()
print(f"95% intervals {tuple(q.shape)}: cover {covered} of {D} true weights, mean width {width:.3f}")

# ----------------------------------------------------------------- variational inference
mu = torch.zeros(D, dtype=torch.float64, requires_grad=True)
rho = torch.full((D,), -1.0, dtype=torch.float64, requires_grad=True)
optimizer = torch.optim.Adam([mu, rho], lr=0.05)
for step in range(1, 301):
    q_w = Normal(mu, F.softplus(rho))
    w = q_w.rsample((8,))
    elbo = Bernoulli(logits=w @ X.T).log_prob(y).sum(-1).mean() - kl_divergence(q_w, prior).sum()
    loss = -elbo
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"  svi step {step}: -elbo {loss.item():.3f}")
with torch.no_grad():
    q_w = Normal(mu, F.softplus(rho))
    kl = kl_divergence(q_w, prior).sum()
    draws = q_w.sample((4000,))
    kl_mc = (q_w.log_prob(draws) - prior.log_prob(draws)).sum(-1).mean()
print("SVI: mu " + " ".join(f"{v:+.3f}" for v in mu.tolist()) +
      " | sigma " + " ".join(f"{v:.3f}" for v in F.softplus(rho).tolist()))
print(f"  KL closed form {kl.item():.4f}, Monte Carlo {kl_mc.item():.4f}")

# ----------------------------------------------------------------- comparisons and predictive accuracy
hmc_vs_laplace = (hmc_mean - w_map).abs().max().item()
svi_vs_hmc = (mu.detach() - hmc_mean).abs().max().item()
with torch.no_grad():
    p_hmc = torch.sigmoid(X_test @ samples.T).mean(-1)
    acc = ((p_hmc > 0.5).double() == y_test).double().mean().item()
    nll = -Bernoulli(probs=p_hmc.clamp(1e-6, 1 - 1e-6)).log_prob(y_test).mean().item()
print(f"max |hmc mean - map| {hmc_vs_laplace:.4f}, max |svi mu - hmc mean| {svi_vs_hmc:.4f}, "
      f"predictive accuracy {acc:.4f}, nll {nll:.4f}")
print(f"FINAL acceptance={acceptance:.4f} hmc_w1={hmc_mean[1].item():.4f} hmc_w2={hmc_mean[2].item():.4f} "
      f"hmc_vs_laplace={hmc_vs_laplace:.4f} svi_vs_hmc={svi_vs_hmc:.4f} std_ratio={(hmc_std / laplace_std).mean().item():.4f} "
      f"coverage={covered / D:.4f} acc={acc:.4f} kl_gap={abs(kl.item() - kl_mc.item()):.4f}")
