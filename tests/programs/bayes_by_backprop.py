"""Bayes by Backprop (Blundell et al. 2015) as nitarshan's "Weight Uncertainty in Neural Networks"
PyTorch post writes it, then the torch.distributions edition people write after it.

First edition, classification of synthetic Gaussian clusters: a ``Gaussian`` posterior object over
``mu``/``rho`` ``nn.Parameter``s with ``sigma = torch.log1p(torch.exp(self.rho))`` and
``epsilon = self.normal.sample(self.rho.size())`` from ``torch.distributions.Normal(0, 1)``, a
``ScaleMixtureGaussian`` prior (``torch.exp(gaussian.log_prob(input))`` mixed and logged), a
``BayesianLinear`` that samples in training and uses the means in evaluation, and ``sample_elbo``
filling ``outputs = torch.zeros(samples, BATCH_SIZE, CLASSES)`` by ``outputs[i] = self(input, sample=True)``,
the complexity cost divided by the number of batches, ``F.nll_loss(outputs.mean(0), target,
size_average=False)`` (the legacy argument, with its warning); ensembles of posterior samples by
``output.mean(0).max(1, keepdim=True)[1]``.

Second edition, 1-d regression: weights drawn by ``torch.distributions.Normal(mu, sigma).rsample()``,
the closed-form ``torch.distributions.kl_divergence(Normal, Normal)`` to a ``Normal(0, prior_sigma)``
prior (checked against the Monte Carlo ``log_prob`` difference), several samples per ELBO, and the
predictive mean and spread over posterior samples by ``torch.stack(...).mean(0)`` / ``.std(0)``: the
spread must grow away from the data.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
DEVICE = torch.device("cpu")

# ----------------------------------------------------------------- data: clusters in 8-d
CLASSES, FEATURES = 3, 8
centres = rng.normal(0, 1.2, size=(CLASSES, FEATURES))


def clusters(n):
    y = rng.integers(0, CLASSES, size=n)
    x = centres[y] + rng.normal(0, 1.0, size=(n, FEATURES))
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


train_x, train_y = clusters(512)
test_x, test_y = clusters(512)
BATCH_SIZE = 64
TEST_BATCH_SIZE = 128
train_loader = DataLoader(TensorDataset(train_x, train_y), batch_size=BATCH_SIZE, shuffle=True, drop_last=True)
test_loader = DataLoader(TensorDataset(test_x, test_y), batch_size=TEST_BATCH_SIZE, shuffle=False)
TRAIN_SIZE = len(train_loader.dataset)
NUM_BATCHES = len(train_loader)
SAMPLES = 2
TEST_SAMPLES = 10


class Gaussian(object):  # noqa: UP004  (the post's spelling)
    def __init__(self, mu, rho):
        super().__init__()
        self.mu = mu
        self.rho = rho
        self.normal = torch.distributions.Normal(0, 1)

    @property
    def sigma(self):
        return torch.log1p(torch.exp(self.rho))

    def sample(self):
        epsilon = self.normal.sample(self.rho.size()).to(DEVICE)
        return self.mu + self.sigma * epsilon

    def log_prob(self, input):
        return (-math.log(math.sqrt(2 * math.pi))
                - torch.log(self.sigma)
                - ((input - self.mu) ** 2) / (2 * self.sigma ** 2)).sum()


PI = 0.5
SIGMA_1 = torch.FloatTensor([math.exp(-0)])
SIGMA_2 = torch.FloatTensor([math.exp(-6)])


class ScaleMixtureGaussian(object):  # noqa: UP004
    def __init__(self, pi, sigma1, sigma2):
        super().__init__()
        self.pi = pi
        self.sigma1 = sigma1
        self.sigma2 = sigma2
        self.gaussian1 = torch.distributions.Normal(0, sigma1)
        self.gaussian2 = torch.distributions.Normal(0, sigma2)

    def log_prob(self, input):
        prob1 = torch.exp(self.gaussian1.log_prob(input))
        prob2 = torch.exp(self.gaussian2.log_prob(input))
        return (torch.log(self.pi * prob1 + (1 - self.pi) * prob2)).sum()


class BayesianLinear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        # Weight parameters
        self.weight_mu = nn.Parameter(torch.Tensor(out_features, in_features).uniform_(-0.2, 0.2))
        self.weight_rho = nn.Parameter(torch.Tensor(out_features, in_features).uniform_(-5, -4))
        self.weight = Gaussian(self.weight_mu, self.weight_rho)
        # Bias parameters
        self.bias_mu = nn.Parameter(torch.Tensor(out_features).uniform_(-0.2, 0.2))
        self.bias_rho = nn.Parameter(torch.Tensor(out_features).uniform_(-5, -4))
        self.bias = Gaussian(self.bias_mu, self.bias_rho)
        # Prior distributions
        self.weight_prior = ScaleMixtureGaussian(PI, SIGMA_1, SIGMA_2)
        self.bias_prior = ScaleMixtureGaussian(PI, SIGMA_1, SIGMA_2)
        self.log_prior = 0
        self.log_variational_posterior = 0

    def forward(self, input, sample=False, calculate_log_probs=False):
        if self.training or sample:
            weight = self.weight.sample()
            bias = self.bias.sample()
        else:
            weight = self.weight.mu
            bias = self.bias.mu
        if self.training or calculate_log_probs:
            self.log_prior = self.weight_prior.log_prob(weight) + self.bias_prior.log_prob(bias)
            self.log_variational_posterior = self.weight.log_prob(weight) + self.bias.log_prob(bias)
        else:
            self.log_prior, self.log_variational_posterior = 0, 0
        return F.linear(input, weight, bias)


class BayesianNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = BayesianLinear(FEATURES, 32)
        self.l2 = BayesianLinear(32, 32)
        self.l3 = BayesianLinear(32, CLASSES)

    def forward(self, x, sample=False):
        x = x.view(-1, FEATURES)
        x = F.relu(self.l1(x, sample))
        x = F.relu(self.l2(x, sample))
        x = F.log_softmax(self.l3(x, sample), dim=1)
        return x

    def log_prior(self):
        return self.l1.log_prior + self.l2.log_prior + self.l3.log_prior

    def log_variational_posterior(self):
        return self.l1.log_variational_posterior + self.l2.log_variational_posterior + self.l3.log_variational_posterior

    def sample_elbo(self, input, target, samples=SAMPLES):
        outputs = torch.zeros(samples, BATCH_SIZE, CLASSES).to(DEVICE)
        log_priors = torch.zeros(samples).to(DEVICE)
        log_variational_posteriors = torch.zeros(samples).to(DEVICE)
        for i in range(samples):
            outputs[i] = self(input, sample=True)
            log_priors[i] = self.log_prior()
            log_variational_posteriors[i] = self.log_variational_posterior()
        log_prior = log_priors.mean()
        log_variational_posterior = log_variational_posteriors.mean()
        negative_log_likelihood = F.nll_loss(outputs.mean(0), target, size_average=False)
        loss = (log_variational_posterior - log_prior) / NUM_BATCHES + negative_log_likelihood
        return loss, log_prior, log_variational_posterior, negative_log_likelihood


net = BayesianNetwork().to(DEVICE)
print("parameters:", sum(p.numel() for p in net.parameters()),
      "sigma from rho in:", [round(v, 4) for v in (net.l1.weight.sigma.min().item(), net.l1.weight.sigma.max().item())])
optimizer = optim.Adam(net.parameters(), lr=1e-2)


def train(net, optimizer, epoch):
    net.train()
    for batch_idx, (data, target) in enumerate(train_loader):  # noqa: B007  (the post's loop)
        data, target = data.to(DEVICE), target.to(DEVICE)
        net.zero_grad()
        loss, log_prior, log_variational_posterior, negative_log_likelihood = net.sample_elbo(data, target)
        loss.backward()
        optimizer.step()
    return loss.item(), (log_variational_posterior - log_prior).item(), negative_log_likelihood.item()


for epoch in range(8):
    loss, complexity, nll = train(net, optimizer, epoch)
    if epoch % 4 == 3:
        print(f"epoch {epoch}: loss {loss:.2f} complexity {complexity:.2f} nll {nll:.3f}")


def test_ensemble():
    net.eval()
    correct = 0
    corrects = np.zeros(TEST_SAMPLES + 1, dtype=int)
    with torch.no_grad():
        for data, target in test_loader:
            outputs = torch.zeros(TEST_SAMPLES + 1, data.shape[0], CLASSES).to(DEVICE)
            for i in range(TEST_SAMPLES):
                outputs[i] = net(data, sample=True)
            outputs[TEST_SAMPLES] = net(data, sample=False)
            output = outputs.mean(0)
            preds = outputs.max(2, keepdim=True)[1]
            pred = output.max(1, keepdim=True)[1]  # index of max log-probability
            corrects += preds.eq(target.view_as(pred)).sum(dim=1).squeeze().cpu().numpy()
            correct += pred.eq(target.view_as(pred)).sum().item()
    return corrects / len(test_loader.dataset), correct / len(test_loader.dataset)


per_model, ensemble_acc = test_ensemble()
print("posterior sample accuracies:", len(per_model), "mean-weights accuracy: %.3f" % per_model[-1],  # noqa: UP031
      "ensemble accuracy: %.3f" % ensemble_acc)  # noqa: UP031


# ----------------------------------------------------------------- the torch.distributions edition
class BayesLinearD(nn.Module):
    def __init__(self, in_features, out_features, prior_sigma=1.0):
        super().__init__()
        self.w_mu = nn.Parameter(torch.empty(out_features, in_features).normal_(0, 0.1))
        self.w_rho = nn.Parameter(torch.full((out_features, in_features), -4.0))
        self.b_mu = nn.Parameter(torch.zeros(out_features))
        self.b_rho = nn.Parameter(torch.full((out_features,), -4.0))
        self.prior = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(prior_sigma))

    def posteriors(self):
        return (torch.distributions.Normal(self.w_mu, torch.log1p(torch.exp(self.w_rho))),
                torch.distributions.Normal(self.b_mu, F.softplus(self.b_rho)))

    def forward(self, x):
        q_w, q_b = self.posteriors()
        return F.linear(x, q_w.rsample(), q_b.rsample())

    def kl(self):
        return sum(torch.distributions.kl_divergence(q, self.prior).sum() for q in self.posteriors())


layer = BayesLinearD(3, 2)
q_w, _ = layer.posteriors()
draws = q_w.rsample((4000,))
mc_kl = (q_w.log_prob(draws) - layer.prior.log_prob(draws)).mean(0).sum()
closed_kl = torch.distributions.kl_divergence(q_w, layer.prior).sum()
print("closed-form KL agrees with Monte Carlo:", abs(closed_kl.item() - mc_kl.item()) < 0.05 * closed_kl.item(),
      "rsample has a graph:", draws.requires_grad, "softplus == log1p(exp):",
      torch.allclose(F.softplus(layer.b_rho), torch.log1p(torch.exp(layer.b_rho))))

x_reg = np.concatenate([rng.uniform(-3, -1, 60), rng.uniform(1, 3, 60)]).astype(np.float32)
y_reg = (np.sin(1.5 * x_reg) + 0.1 * rng.normal(size=x_reg.shape)).astype(np.float32)
x_reg, y_reg = torch.from_numpy(x_reg).unsqueeze(1), torch.from_numpy(y_reg).unsqueeze(1)
noise_sigma = 0.1


class RegressionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = BayesLinearD(1, 32)
        self.out = BayesLinearD(32, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))

    def kl(self):
        return self.hidden.kl() + self.out.kl()


reg = RegressionNet()
reg_opt = optim.Adam(reg.parameters(), lr=2e-2)
for step in range(400):
    reg_opt.zero_grad()
    nll = 0.0
    for _ in range(3):
        pred = reg(x_reg)
        nll = nll - torch.distributions.Normal(pred, noise_sigma).log_prob(y_reg).sum()
    loss = nll / 3 + reg.kl()
    loss.backward()
    reg_opt.step()
    if (step + 1) % 200 == 0:
        print(f"regression step {step + 1}: -elbo {loss.item():.1f}")

grid = torch.linspace(-5, 5, 101).unsqueeze(1)
with torch.no_grad():
    preds = torch.stack([reg(grid) for _ in range(100)])
mean, std = preds.mean(0), preds.std(0)
print("predictive shapes:", tuple(preds.shape), tuple(mean.shape), tuple(std.shape))
inside = ((grid.abs() > 1.2) & (grid.abs() < 2.8)).squeeze(1)
outside = (grid.abs() > 4).squeeze(1)
fit_mse = F.mse_loss(mean[inside], torch.sin(1.5 * grid[inside])).item()
std_ratio = (std[outside].mean() / std[inside].mean()).item()
print(f"FINAL ensemble_acc={ensemble_acc:.4f} mean_acc={per_model[-1]:.4f} fit_mse={fit_mse:.4f} "
      f"std_inside={std[inside].mean().item():.4f} std_ratio={std_ratio:.3f}")
