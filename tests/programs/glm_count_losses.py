"""Count regression the way statsmodels-in-torch code writes it: GLMs fitted by L-BFGS in float64, and a
small neural count model by Adam.

Poisson regression by ``F.poisson_nll_loss(log_rate, y, log_input=True, full=True)`` (its Stirling
term only for ``y > 1``) against ``-torch.distributions.Poisson(rate).log_prob(y)`` (exact
``lgamma``), and the ``log_input=False`` edition with its ``eps``; deviance residuals by
``torch.special.xlogy(y, y / mu)`` and ``torch.sign``, deviance explained against the null model;
a negative binomial (NB2) log-likelihood written with ``torch.lgamma`` and a learned log-dispersion,
agreeing with ``torch.distributions.NegativeBinomial(total_count, logits=log mu - log r)``; a
zero-inflated Poisson by ``torch.logaddexp(log pi, log(1 - pi) - mu)`` for the zeros and
``torch.where(y == 0, ...)`` (``F.logsigmoid`` for the logs of the mixing weight), with
``torch.special.gammaln``; a Tweedie (compound Poisson-gamma, power 1.5) deviance with ``torch.pow``
on exact zeros; each fitted by ``torch.optim.LBFGS(..., line_search_fn='strong_wolfe')`` with a
closure, then a neural Poisson model with ``nn.PoissonNLLLoss(log_input=True, full=True)`` and Adam.

The data: over-dispersed, zero-inflated and compound Poisson-gamma counts from known coefficients,
made with NumPy.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import NegativeBinomial, Poisson

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N, D = 600, 3
X_np = rng.normal(size=(N, D)) * 0.6
beta_true = np.array([0.6, -0.4, 0.25])
intercept_true = 0.8
mu_np = np.exp(X_np @ beta_true + intercept_true)
X = torch.from_numpy(X_np)  # float64, as statsmodels fits

y_poisson = torch.from_numpy(rng.poisson(mu_np).astype(np.float64))
dispersion_true = 2.0  # NB2: var = mu + mu^2 / r
y_nb = torch.from_numpy(rng.poisson(rng.gamma(dispersion_true, mu_np / dispersion_true)).astype(np.float64))
pi_true = 0.3
y_zip = torch.from_numpy(np.where(rng.uniform(size=N) < pi_true, 0, rng.poisson(mu_np)).astype(np.float64))
counts = rng.poisson(mu_np / 2)
y_tweedie = torch.from_numpy(np.where(counts > 0, rng.gamma(np.maximum(counts, 1) * 2.0, 0.5), 0.0))
print(f"data: {N} rows, zeros poisson {int((y_poisson == 0).sum())} nb {int((y_nb == 0).sum())} "
      f"zip {int((y_zip == 0).sum())} tweedie {int((y_tweedie == 0).sum())}")


class LogLinear(nn.Module):
    def __init__(self, extra=0):
        super().__init__()
        self.linear = nn.Linear(D, 1 + extra, dtype=torch.float64)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.extra = nn.Parameter(torch.zeros(extra, dtype=torch.float64))

    def forward(self, x):
        return self.linear(x)[:, 0]


def fit_lbfgs(model, loss_fn, steps=4):
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=50, history_size=10,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        return loss

    for _ in range(steps):
        optimizer.step(closure)
    return loss_fn(model).item()


def coefficient_error(model):
    return (model.linear.weight[0].detach() - torch.from_numpy(beta_true)).abs().max().item()


# --- Poisson GLM ---
poisson = LogLinear()
nll = fit_lbfgs(poisson, lambda m: F.poisson_nll_loss(m(X), y_poisson, log_input=True, full=True))
log_rate = poisson(X).detach()
rate = log_rate.exp()
exact = -Poisson(rate).log_prob(y_poisson)
stirling = F.poisson_nll_loss(log_rate, y_poisson, log_input=True, full=True, reduction="none")
gap = (stirling - exact)
print(f"poisson nll {nll:.4f} exact {exact.mean().item():.4f}; Stirling gap: y<=1 {gap[y_poisson <= 1].abs().max().item():.2e} "
      f"y>1 max {gap[y_poisson > 1].abs().max().item():.4f}")
by_rate = F.poisson_nll_loss(rate, y_poisson, log_input=False, eps=1e-8)
print(f"log_input=False agrees: {torch.allclose(by_rate, F.poisson_nll_loss(log_rate, y_poisson))}")
deviance_terms = 2 * (torch.special.xlogy(y_poisson, y_poisson / rate) - (y_poisson - rate))
residuals = torch.sign(y_poisson - rate) * deviance_terms.sqrt()
null_rate = y_poisson.mean()
null_deviance = (2 * (torch.special.xlogy(y_poisson, y_poisson / null_rate) - (y_poisson - null_rate))).sum()
explained = 1 - deviance_terms.sum() / null_deviance
print(f"poisson coef error {coefficient_error(poisson):.4f} intercept {poisson.linear.bias.item():.3f} "
      f"deviance explained {explained.item():.4f} residual sd {residuals.std().item():.3f}")


# --- negative binomial (NB2) ---
def nb_log_likelihood(y, mu, r):
    return (torch.lgamma(y + r) - torch.lgamma(r) - torch.lgamma(y + 1)
            + r * torch.log(r / (r + mu)) + y * torch.log(mu / (r + mu)))


nb = LogLinear(extra=1)
nb_nll = fit_lbfgs(nb, lambda m: -nb_log_likelihood(y_nb, m(X).exp(), m.extra.exp()).mean())
mu_nb = nb(X).exp().detach()
r_hat = nb.extra.exp().detach()
by_distribution = NegativeBinomial(total_count=r_hat, logits=mu_nb.log() - r_hat.log()).log_prob(y_nb)
print(f"nb nll {nb_nll:.4f} dispersion {r_hat.item():.3f} coef error {coefficient_error(nb):.4f} "
      f"distribution agrees: {torch.allclose(by_distribution, nb_log_likelihood(y_nb, mu_nb, r_hat))}")
poisson_on_nb = LogLinear()
fit_lbfgs(poisson_on_nb, lambda m: F.poisson_nll_loss(m(X), y_nb, full=True))
overdispersion = ((y_nb - poisson_on_nb(X).exp()) ** 2 / poisson_on_nb(X).exp()).mean().item()
print(f"pearson chi2/n of a poisson fit to nb counts {overdispersion:.3f}")


# --- zero-inflated Poisson ---
def zip_log_likelihood(y, log_mu, pi_logit):
    log_pi = F.logsigmoid(pi_logit)
    log_not_pi = F.logsigmoid(-pi_logit)
    mu = log_mu.exp()
    zero = torch.logaddexp(log_pi, log_not_pi - mu)
    positive = log_not_pi + y * log_mu - mu - torch.special.gammaln(y + 1)
    return torch.where(y == 0, zero, positive)


zip_model = LogLinear(extra=1)
zip_nll = fit_lbfgs(zip_model, lambda m: -zip_log_likelihood(y_zip, m(X), m.extra[0]).mean())
pi_hat = torch.sigmoid(zip_model.extra[0]).item()
plain = LogLinear()
plain_nll = fit_lbfgs(plain, lambda m: -Poisson(m(X).exp()).log_prob(y_zip).mean())
print(f"zip nll {zip_nll:.4f} (poisson {plain_nll:.4f}) pi {pi_hat:.3f} coef error {coefficient_error(zip_model):.4f}")


# --- Tweedie deviance, power 1.5 ---
def tweedie_deviance(y, mu, p=1.5):
    return 2 * (torch.pow(y, 2 - p) / ((1 - p) * (2 - p)) - y * torch.pow(mu, 1 - p) / (1 - p)
                + torch.pow(mu, 2 - p) / (2 - p))


tweedie = LogLinear()
tweedie_dev = fit_lbfgs(tweedie, lambda m: tweedie_deviance(y_tweedie, m(X).exp()).mean())
print(f"tweedie deviance {tweedie_dev:.4f} coef error {coefficient_error(tweedie):.4f} "
      f"zero-term finite: {bool(torch.isfinite(tweedie_deviance(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))).all())}")


# --- a neural Poisson model on a nonlinear rate, Adam ---
z_np = rng.uniform(-2, 2, size=(800, 2))
rate_true = np.exp(0.5 + np.sin(2 * z_np[:, 0]) * 0.8 - 0.3 * z_np[:, 1] ** 2)
z = torch.from_numpy(z_np.astype(np.float32))
y_neural = torch.from_numpy(rng.poisson(rate_true).astype(np.float32))
net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
criterion = nn.PoissonNLLLoss(log_input=True, full=True)
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
train_idx, test_idx = torch.arange(0, 600), torch.arange(600, 800)
for epoch in range(30):
    perm = train_idx[torch.randperm(600)]
    for i in range(0, 600, 100):
        idx = perm[i:i + 100]
        loss = criterion(net(z[idx]).squeeze(-1), y_neural[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 10 == 9:
        with torch.no_grad():
            test_loss = criterion(net(z[test_idx]).squeeze(-1), y_neural[test_idx]).item()
        print(f"neural epoch {epoch + 1} test poisson nll {test_loss:.4f}")
with torch.no_grad():
    oracle = criterion(torch.from_numpy(np.log(rate_true[600:]).astype(np.float32)), y_neural[test_idx]).item()
print(f"oracle nll {oracle:.4f}")

print(f"FINAL poisson_nll={nll:.4f} poisson_coef_err={coefficient_error(poisson):.4f} explained={explained.item():.4f} "
      f"nb_nll={nb_nll:.4f} nb_r={r_hat.item():.4f} overdispersion={overdispersion:.4f} zip_nll={zip_nll:.4f} "
      f"zip_pi={pi_hat:.4f} tweedie={tweedie_dev:.4f} neural_nll={test_loss:.4f} neural_gap={test_loss - oracle:.4f}")
