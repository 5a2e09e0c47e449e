"""A last-layer Laplace approximation (laplace-torch style) of a trained MLP classifier on two moons.

The MAP network trained by Adam on ``BCEWithLogitsLoss``; features of the penultimate layer under
``torch.no_grad()``; the last layer's log-likelihood Hessian three ways: the generalised Gauss-Newton
``J^T diag(p (1 - p)) J`` with ``J`` from ``torch.func.jacrev`` of the logits, the exact Hessian by
``torch.autograd.functional.hessian`` and by ``torch.func.jacrev(torch.func.jacrev(...))`` (all must agree,
the model being linear in the last layer); the posterior precision plus ``prior_prec * I`` factored by
``torch.linalg.cholesky`` and inverted by ``torch.cholesky_inverse`` (against ``torch.linalg.inv``), its
``torch.logdet`` against twice the log of the factor's diagonal; the probit-approximated predictive
``kappa = 1 / torch.sqrt(1 + math.pi / 8 * var)`` against Monte Carlo samples of
``MultivariateNormal(theta_map, scale_tril=L)``; the prior precision tuned by Adam on ``log_prior_prec``
through the Laplace marginal likelihood (log-likelihood, ``torch.logdet`` of the posterior precision, the
scatter term); calibration by a 10-bin expected calibration error (``torch.bucketize`` + ``index_add_``)
before and after, confidence far from the data, all in float64.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import MultivariateNormal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ----------------------------------------------------------------- data: two noisy moons
rng = np.random.RandomState(0)


def moons(n, noise):
    half = n // 2
    a = np.linspace(0, np.pi, half)
    outer = np.stack([np.cos(a), np.sin(a)], 1)
    inner = np.stack([1 - np.cos(a), 1 - np.sin(a) - 0.5], 1)
    x = np.concatenate([outer, inner]) + rng.randn(2 * half, 2) * noise
    y = np.concatenate([np.zeros(half), np.ones(half)])
    order = rng.permutation(2 * half)
    return torch.from_numpy(x[order].astype(np.float32)), torch.from_numpy(y[order].astype(np.float32))


x_train, y_train = moons(200, 0.25)
x_test, y_test = moons(1000, 0.25)
x_far = torch.from_numpy((rng.randn(200, 2) * 0.5 + np.array([6.0, -6.0])).astype(np.float32))


class Net(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.last_layer = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.last_layer(self.features(x)).squeeze(-1)


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.BCEWithLogitsLoss()
for step in range(1, 401):
    optimizer.zero_grad()
    loss = criterion(model(x_train), y_train)
    loss.backward()
    optimizer.step()
    if step % 200 == 0:
        with torch.no_grad():
            test_acc = ((model(x_test) > 0).float() == y_test).float().mean().item()
        print(f"step {step} train loss {loss.item():.4f} test acc {test_acc:.4f}")

# ----------------------------------------------------------------- the last layer's posterior
with torch.no_grad():
    phi = model.features(x_train).double()
    phi_test = model.features(x_test).double()
    phi_far = model.features(x_far).double()
theta_map = torch.cat([model.last_layer.weight.detach().view(-1), model.last_layer.bias.detach()]).double()
y = y_train.double()
n_params = theta_map.numel()


def logits_of(theta, features):
    return features @ theta[:-1] + theta[-1]


def neg_log_lik(theta):
    return F.binary_cross_entropy_with_logits(logits_of(theta, phi), y, reduction="sum")


jacobian = torch.func.jacrev(logits_of)(theta_map, phi)  # (n, P)
p = torch.sigmoid(logits_of(theta_map, phi))
ggn = jacobian.T @ (jacobian * (p * (1 - p)).unsqueeze(1))
hessian_autograd = torch.autograd.functional.hessian(neg_log_lik, theta_map)
hessian_func = torch.func.jacrev(torch.func.jacrev(neg_log_lik))(theta_map)
hessians_agree = int(torch.allclose(ggn, hessian_autograd, rtol=1e-8, atol=1e-8)
                     and torch.allclose(hessian_func, hessian_autograd, rtol=1e-8, atol=1e-8))
print(f"last layer: {n_params} parameters, GGN and Hessians agree: {bool(hessians_agree)}, "
      f"trace {torch.trace(ggn).item():.4f}")


def posterior(prior_prec):
    precision = ggn + prior_prec * torch.eye(n_params, dtype=torch.float64)
    scale_tril = torch.linalg.cholesky(precision)
    return precision, scale_tril, torch.cholesky_inverse(scale_tril)


def predictive(covariance, features):
    f_mu = logits_of(theta_map, features)
    jac = torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], dim=1)
    f_var = ((jac @ covariance) * jac).sum(-1)
    kappa = 1 / torch.sqrt(1 + math.pi / 8 * f_var)
    return torch.sigmoid(kappa * f_mu), f_var


def log_marginal_likelihood(log_prior_prec):
    prior_prec = log_prior_prec.exp()
    precision = ggn + prior_prec * torch.eye(n_params, dtype=torch.float64)
    log_det_ratio = torch.logdet(precision) - n_params * log_prior_prec
    scatter = prior_prec * (theta_map ** 2).sum()
    return -neg_log_lik(theta_map) - 0.5 * (log_det_ratio + scatter)


def ece(probs, labels, n_bins=10):
    confidence = torch.maximum(probs, 1 - probs)
    correct = ((probs > 0.5).double() == labels).double()
    edges = torch.linspace(0.5, 1.0, n_bins + 1, dtype=torch.float64)[1:-1]
    bins = torch.bucketize(confidence, edges)
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, confidence)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, correct)
    return ((conf_sum - acc_sum).abs().sum() / len(probs)).item()


precision, scale_tril, covariance = posterior(1.0)
inverse_agrees = int(torch.allclose(covariance, torch.linalg.inv(precision), rtol=1e-6, atol=1e-9))
logdet_agrees = int(torch.allclose(torch.logdet(precision), 2 * torch.log(torch.diagonal(scale_tril)).sum()))
print(f"cholesky_inverse equals inv: {bool(inverse_agrees)}; logdet equals 2 sum log diag L: {bool(logdet_agrees)}")

log_prior_prec = torch.zeros((), dtype=torch.float64, requires_grad=True)
hyper_optimizer = torch.optim.Adam([log_prior_prec], lr=0.1)
for step in range(1, 151):
    hyper_optimizer.zero_grad()
    neg_marglik = -log_marginal_likelihood(log_prior_prec)
    neg_marglik.backward()
    hyper_optimizer.step()
    if step % 50 == 0:
        print(f"prior step {step} prior precision {log_prior_prec.exp().item():.4f} "
              f"-log marginal likelihood {neg_marglik.item():.4f}")
prior_prec = log_prior_prec.detach().exp()
precision, scale_tril, covariance = posterior(prior_prec)

with torch.no_grad():
    p_map = torch.sigmoid(logits_of(theta_map, phi_test))
    p_la, f_var = predictive(covariance, phi_test)
    samples = MultivariateNormal(theta_map, scale_tril=torch.linalg.cholesky(covariance)).sample((2000,))
    p_mc = torch.sigmoid(phi_test @ samples[:, :-1].T + samples[:, -1]).mean(1)
    far_map = torch.sigmoid(logits_of(theta_map, phi_far))
    far_la, _ = predictive(covariance, phi_far)
labels = y_test.double()
nll_map = F.binary_cross_entropy(p_map, labels).item()
nll_la = F.binary_cross_entropy(p_la, labels).item()
ece_map, ece_la = ece(p_map, labels), ece(p_la, labels)
acc_la = ((p_la > 0.5).double() == labels).double().mean().item()
probit_mc_gap = (p_la - p_mc).abs().max().item()
far_conf_map = torch.maximum(far_map, 1 - far_map).mean().item()
far_conf_la = torch.maximum(far_la, 1 - far_la).mean().item()
print(f"test: MAP nll {nll_map:.4f} ECE {ece_map:.4f}; Laplace nll {nll_la:.4f} ECE {ece_la:.4f} acc {acc_la:.4f}")
print(f"probit against Monte Carlo: largest gap {probit_mc_gap:.4f}; mean logit variance {f_var.mean().item():.4f}")
print(f"far from the data: MAP confidence {far_conf_map:.4f}, Laplace {far_conf_la:.4f}")

print(f"FINAL prior_prec={prior_prec.item():.4f} nll_map={nll_map:.4f} nll_la={nll_la:.4f} ece_map={ece_map:.4f} "
      f"ece_la={ece_la:.4f} acc_la={acc_la:.4f} far_conf_map={far_conf_map:.4f} far_conf_la={far_conf_la:.4f} "
      f"probit_mc_gap={probit_mc_gap:.4f} hessians_agree={hessians_agree} inverse_agrees={inverse_agrees} "
      f"logdet_agrees={logdet_agrees}")
