"""Variational inference with ``torch.distributions`` the way Pyro-less users write it.

A Bayesian linear regression on synthetic data: a mean-field posterior ``Normal(loc,
F.softplus(rho))`` over the weights, wrapped as ``Independent(Normal(...), 1)``, trained by the
reparameterised ELBO (``q.rsample((S,))``), with the KL term once by the analytic
``torch.distributions.kl_divergence(q, p)`` and once by Monte Carlo (``q.log_prob(w) -
p.log_prob(w)``); the two must agree. The fitted posterior is compared with the exact Gaussian
posterior (``MultivariateNormal(loc, scale_tril=torch.linalg.cholesky(cov))``: ``log_prob``,
``entropy()``, its ``kl_divergence`` to the mean-field fit), a ``LowRankMultivariateNormal`` against
the ``MultivariateNormal`` of the same covariance, then a tour of the other families people reach
for: ``Gamma``/``Beta``/``Dirichlet``/``Categorical`` ``log_prob``s against their closed forms,
``TransformedDistribution(Normal, [ExpTransform()])`` against ``LogNormal``, ``batch_shape`` /
``event_shape`` of each, ``constraints`` checks, and ``validate_args=True`` raising ``ValueError``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import (
    Beta,
    Categorical,
    Dirichlet,
    Gamma,
    Independent,
    LogNormal,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
    constraints,
    kl_divergence,
)
from torch.distributions.transforms import ExpTransform

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# ----------------------------------------------------------------- data: y = X w + noise
N, D = 64, 4
NOISE_SIGMA = 0.5
PRIOR_SIGMA = 1.0
true_w = rng.normal(0, 1, size=D)
X_np = rng.normal(0, 1, size=(N, D))
y_np = X_np @ true_w + rng.normal(0, NOISE_SIGMA, size=N)
X = torch.from_numpy(X_np.astype(np.float32))
y = torch.from_numpy(y_np.astype(np.float32))


class MeanFieldPosterior(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.rho = nn.Parameter(torch.full((dim,), -3.0))

    def forward(self):
        return Independent(Normal(self.loc, F.softplus(self.rho)), 1)


prior = Independent(Normal(torch.zeros(D), PRIOR_SIGMA * torch.ones(D)), 1)
print("prior batch_shape", tuple(prior.batch_shape), "event_shape", tuple(prior.event_shape))


def elbo(q, num_samples, analytic_kl):
    w = q.rsample((num_samples,))                       # (S, D), differentiable in loc and rho
    pred = w @ X.T                                      # (S, N)
    log_lik = Normal(pred, NOISE_SIGMA).log_prob(y).sum(-1).mean()
    if analytic_kl:
        kl = kl_divergence(q, prior)
    else:
        kl = (q.log_prob(w) - prior.log_prob(w)).mean()
    return log_lik - kl


def fit(analytic_kl, steps=300):
    posterior = MeanFieldPosterior(D)
    optimizer = torch.optim.Adam(posterior.parameters(), lr=0.05)
    for step in range(steps):
        optimizer.zero_grad()
        loss = -elbo(posterior(), num_samples=8, analytic_kl=analytic_kl)
        loss.backward()
        optimizer.step()
        if (step + 1) % 150 == 0:
            print(f"{'analytic' if analytic_kl else 'monte-carlo'} KL step {step + 1}: -elbo {loss.item():.2f}")
    return posterior


analytic = fit(True)
monte_carlo = fit(False)
q = analytic()
q_mc = monte_carlo()
print("posterior batch_shape", tuple(q.batch_shape), "event_shape", tuple(q.event_shape),
      "base", type(q.base_dist).__name__, tuple(q.base_dist.batch_shape))
with torch.no_grad():
    kl_analytic = kl_divergence(q, prior).item()
    w_many = q.sample((20000,))
    kl_mc = (q.log_prob(w_many) - prior.log_prob(w_many)).mean().item()
    loc_gap = (q.mean - q_mc.mean).abs().max().item()
print(f"KL analytic {kl_analytic:.3f} monte-carlo {kl_mc:.3f}; loc gap between fits {loc_gap:.3f}")

# ----------------------------------------------------------------- exact posterior, full covariance
precision = X.T @ X / NOISE_SIGMA ** 2 + torch.eye(D) / PRIOR_SIGMA ** 2
cov = torch.linalg.inv(precision)
cov = 0.5 * (cov + cov.T)
exact_loc = cov @ (X.T @ y) / NOISE_SIGMA ** 2
exact = MultivariateNormal(exact_loc, scale_tril=torch.linalg.cholesky(cov))
print("exact batch_shape", tuple(exact.batch_shape), "event_shape", tuple(exact.event_shape))
with torch.no_grad():
    loc_err = (q.mean - exact_loc).abs().max().item()
    exact_entropy = exact.entropy().item()
    q_entropy = q.entropy().item()
    q_full = MultivariateNormal(q.mean, scale_tril=torch.diag(q.stddev))
    kl_q_exact = kl_divergence(q_full, exact).item()
    lp_exact_at_truth = exact.log_prob(torch.from_numpy(true_w.astype(np.float32))).item()
    # the textbook formula: -0.5 (d log 2pi + log det + maha)
    diff = torch.from_numpy(true_w.astype(np.float32)) - exact_loc
    maha = diff @ torch.linalg.solve(cov, diff)
    lp_formula = (-0.5 * (D * math.log(2 * math.pi) + torch.logdet(cov) + maha)).item()
print(f"mean-field loc err {loc_err:.4f}; entropy exact {exact_entropy:.3f} mean-field {q_entropy:.3f}; "
      f"KL(q || exact) {kl_q_exact:.4f}")
print(f"exact log_prob at truth {lp_exact_at_truth:.3f} formula {lp_formula:.3f}")

# LowRankMultivariateNormal against the MultivariateNormal of the same covariance
factor = torch.randn(D, 2) * 0.5
diag = torch.rand(D) + 0.5
low_rank = LowRankMultivariateNormal(torch.zeros(D), cov_factor=factor, cov_diag=diag)
dense = MultivariateNormal(torch.zeros(D), covariance_matrix=factor @ factor.T + torch.diag(diag))
points = torch.randn(5, D)
low_rank_gap = (low_rank.log_prob(points) - dense.log_prob(points)).abs().max().item()
entropy_gap = abs(low_rank.entropy().item() - dense.entropy().item())
print("low-rank batch_shape", tuple(low_rank.batch_shape), "event_shape", tuple(low_rank.event_shape),
      "log_prob shape", tuple(low_rank.log_prob(points).shape))
print(f"low-rank vs dense: log_prob gap {low_rank_gap:.2e} entropy gap {entropy_gap:.2e}")

# ----------------------------------------------------------------- other families vs closed forms
x_pos = torch.rand(6) * 3 + 0.1
gamma = Gamma(torch.tensor(2.0), torch.tensor(1.5))
gamma_formula = 2.0 * math.log(1.5) - math.lgamma(2.0) + (2.0 - 1) * torch.log(x_pos) - 1.5 * x_pos
gamma_gap = (gamma.log_prob(x_pos) - gamma_formula).abs().max().item()

x_unit = torch.rand(6) * 0.9 + 0.05
beta = Beta(torch.tensor([2.0, 0.7]).unsqueeze(1), torch.tensor(3.0))
print("beta batch_shape", tuple(beta.batch_shape), "log_prob shape", tuple(beta.log_prob(x_unit).shape))
log_b = math.lgamma(2.0) + math.lgamma(3.0) - math.lgamma(5.0)
beta_formula = torch.log(x_unit) * 1.0 + torch.log1p(-x_unit) * 2.0 - log_b
beta_gap = (beta.log_prob(x_unit)[0] - beta_formula).abs().max().item()

alpha = torch.tensor([1.5, 2.0, 0.8])
dirichlet = Dirichlet(alpha)
simplex = torch.distributions.Dirichlet(torch.ones(3)).sample((4,))
dirichlet_formula = ((alpha - 1) * torch.log(simplex)).sum(-1) + torch.lgamma(alpha.sum()) - torch.lgamma(alpha).sum()
dirichlet_gap = (dirichlet.log_prob(simplex) - dirichlet_formula).abs().max().item()
print("dirichlet batch_shape", tuple(dirichlet.batch_shape), "event_shape", tuple(dirichlet.event_shape),
      "sample", tuple(dirichlet.sample((4,)).shape))

logits = torch.randn(3, 5)
categorical = Categorical(logits=logits)
labels = torch.tensor([0, 4, 2])
categorical_gap = (categorical.log_prob(labels) + F.cross_entropy(logits, labels, reduction="none")).abs().max().item()
print("categorical batch_shape", tuple(categorical.batch_shape), "probs sum", [round(v, 4) for v in categorical.probs.sum(-1).tolist()])
print(f"closed-form gaps: gamma {gamma_gap:.1e} beta {beta_gap:.1e} dirichlet {dirichlet_gap:.1e} "
      f"categorical {categorical_gap:.1e}")

# TransformedDistribution(Normal, [ExpTransform()]) is LogNormal
base = Normal(torch.tensor([0.3, -0.2]), torch.tensor([0.5, 1.2]))
log_normal_by_hand = TransformedDistribution(base, [ExpTransform()])
log_normal = LogNormal(torch.tensor([0.3, -0.2]), torch.tensor([0.5, 1.2]))
positive = torch.rand(7, 2) * 4 + 0.05
transformed_gap = (log_normal_by_hand.log_prob(positive) - log_normal.log_prob(positive)).abs().max().item()
torch.manual_seed(seed + 1)
s1 = log_normal_by_hand.sample((3,))
torch.manual_seed(seed + 1)
s2 = log_normal.sample((3,))
print("transformed sample shape", tuple(s1.shape), "same draws", torch.allclose(s1, s2),
      f"log_prob gap {transformed_gap:.1e}")
print("lognormal mean", [round(v, 4) for v in log_normal.mean.tolist()],
      "by hand", [round(v, 4) for v in torch.exp(base.loc + base.scale ** 2 / 2).tolist()])

# ----------------------------------------------------------------- constraints and validate_args
print("support checks:",
      constraints.positive.check(torch.tensor([1.0, -1.0, 0.0])).tolist(),
      constraints.unit_interval.check(torch.tensor([0.5, 1.5])).tolist(),
      constraints.simplex.check(torch.tensor([[0.2, 0.8], [0.5, 0.6]])).tolist(),
      Gamma.arg_constraints["concentration"], Normal.support, Beta.support)
errors = []
for make in (
    lambda: Normal(torch.tensor(0.0), torch.tensor(-1.0), validate_args=True),
    lambda: Gamma(torch.tensor(-2.0), torch.tensor(1.0), validate_args=True),
    lambda: Beta(torch.tensor(1.0), torch.tensor(1.0), validate_args=True).log_prob(torch.tensor(1.5)),
    lambda: Categorical(probs=torch.tensor([0.3, 0.7]), validate_args=True).log_prob(torch.tensor(2)),
    lambda: Dirichlet(torch.tensor([1.0, 1.0]), validate_args=True).log_prob(torch.tensor([0.3, 0.3])),
):
    try:
        make()
    except ValueError as error:
        errors.append(str(error).split(" ")[:3])
print("validate_args raised ValueError", len(errors), "of 5; first words", errors[0])

print(f"FINAL kl_analytic={kl_analytic:.4f} kl_mc={kl_mc:.4f} loc_err={loc_err:.4f} "
      f"kl_q_exact={kl_q_exact:.4f} q_entropy={q_entropy:.4f} exact_entropy={exact_entropy:.4f} "
      f"lp_truth={lp_exact_at_truth:.4f} max_gap={max(low_rank_gap, gamma_gap, beta_gap, dirichlet_gap, categorical_gap, transformed_gap):.6f}")
