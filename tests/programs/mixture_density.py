"""Mixture density networks on the inverse-sine toy problem (hardmaru's pytorch-MDN notebook and
its logsumexp successors): an ``nn.Sequential`` regression that fits the forward sine but not its
inverse; hardmaru's ``MDN`` with pi/sigma/mu heads (``nn.functional.softmax(..., -1)``,
``torch.exp`` sigma), ``gaussian_distribution`` with ``y.expand_as(mu)`` and ``torch.reciprocal``,
``mdn_loss_fn`` by ``-torch.log(torch.sum(...))``; a stable edition on pi logits with a hand-written
mixture NLL ``-torch.logsumexp(F.log_softmax(pi_logits, -1) + log_normal, dim=1)`` that must agree
with ``D.MixtureSameFamily(D.Categorical(logits=...), D.Independent(D.Normal(mu, sigma), 1)).log_prob``;
sampling by ``Categorical(logits=...).sample()`` + ``gather`` (and by hardmaru's NumPy Gumbel-max),
``torch.distributions`` ``sample`` against the hand-written one.
"""

import math
import os

import numpy as np
import torch
import torch.distributions as D
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

# ---------------------------------------------------------------- data: y = 7 sin(0.75 x) + 0.5 x + noise
n_input = 1
n_samples = 1000
epsilon = np.random.normal(size=(n_samples))
x_data = np.random.uniform(-10.5, 10.5, n_samples)
y_data = 7 * np.sin(0.75 * x_data) + 0.5 * x_data + epsilon

x_tensor = torch.from_numpy(x_data.reshape(n_samples, n_input)).float()
y_tensor = torch.from_numpy(y_data.reshape(n_samples, n_input)).float()
x_variable = Variable(x_tensor)
y_variable = Variable(y_tensor, requires_grad=False)
print(x_variable.shape, x_variable.dtype, y_variable.requires_grad)

# a plain network fits the forward problem ...
n_hidden = 20
network = nn.Sequential(
    nn.Linear(n_input, n_hidden),
    nn.Tanh(),
    nn.Linear(n_hidden, 1),
)
loss_fn = nn.MSELoss()
optimizer = torch.optim.RMSprop(network.parameters(), lr=0.01)


def train_regression(x, y, steps):
    for _epoch in range(steps):
        y_pred = network(x)
        loss = loss_fn(y_pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


forward_mse = train_regression(x_variable, y_variable, 400)
# ... but not the inverse: swap x and y, and the mean of a multimodal target is useless
for layer in network.children():
    if hasattr(layer, "reset_parameters"):
        layer.reset_parameters()
optimizer = torch.optim.RMSprop(network.parameters(), lr=0.01)
inverse_mse = train_regression(y_variable, x_variable, 400)
print('regression: forward mse < inverse mse', forward_mse < inverse_mse)

x_test_data = np.linspace(-15, 15, n_samples)
x_test_tensor = torch.from_numpy(x_test_data.reshape(n_samples, n_input)).float()

# ---------------------------------------------------------------- hardmaru's MDN
n_gaussians = 5


class MDN(nn.Module):
    def __init__(self, n_hidden, n_gaussians):
        super().__init__()
        self.z_h = nn.Sequential(
            nn.Linear(1, n_hidden),
            nn.Tanh()
        )
        self.z_pi = nn.Linear(n_hidden, n_gaussians)
        self.z_sigma = nn.Linear(n_hidden, n_gaussians)
        self.z_mu = nn.Linear(n_hidden, n_gaussians)

    def forward(self, x):
        z_h = self.z_h(x)
        pi = nn.functional.softmax(self.z_pi(z_h), -1)
        sigma = torch.exp(self.z_sigma(z_h))
        mu = self.z_mu(z_h)
        return pi, sigma, mu


oneDivSqrtTwoPI = 1.0 / np.sqrt(2.0 * np.pi)  # normalisation factor for gaussians


def gaussian_distribution(y, mu, sigma):
    # make |mu|=K copies of y, subtract mu, divide by sigma
    result = (y.expand_as(mu) - mu) * torch.reciprocal(sigma)
    result = -0.5 * (result * result)
    return (torch.exp(result) * torch.reciprocal(sigma)) * oneDivSqrtTwoPI


def mdn_loss_fn(pi, sigma, mu, y):
    result = gaussian_distribution(y, mu, sigma) * pi
    result = torch.sum(result, dim=1)
    result = -torch.log(result)
    return torch.mean(result)


# the inverse problem: predict x from y
mdn_x_data = y_data.astype(np.float32).reshape(n_samples, n_input)
mdn_y_data = x_data.astype(np.float32).reshape(n_samples, n_input)
mdn_x_tensor = torch.from_numpy(mdn_x_data)
mdn_y_tensor = torch.from_numpy(mdn_y_data)
mdn_x_variable = Variable(mdn_x_tensor)
mdn_y_variable = Variable(mdn_y_tensor, requires_grad=False)

network = MDN(n_hidden=n_hidden, n_gaussians=n_gaussians)
optimizer = torch.optim.Adam(network.parameters(), lr=0.01)


def train_mdn(steps):
    for epoch in range(steps):
        pi_variable, sigma_variable, mu_variable = network(mdn_x_variable)
        loss = mdn_loss_fn(pi_variable, sigma_variable, mu_variable, mdn_y_variable)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        if epoch % 200 == 0:
            print(epoch, round(loss.item(), 4))
    return loss.item()


hardmaru_nll = train_mdn(800)

pi_variable, sigma_variable, mu_variable = network(Variable(x_test_tensor))
pi_data = pi_variable.data.numpy()
sigma_data = sigma_variable.data.numpy()
mu_data = mu_variable.data.numpy()
print('heads', pi_data.shape, sigma_data.shape, mu_data.shape, 'pi sums to one',
      bool(np.allclose(pi_data.sum(1), 1.0, atol=1e-5)), 'sigma positive', bool((sigma_data > 0).all()))


def gumbel_sample(x, axis=1):
    z = np.random.gumbel(loc=0, scale=1, size=x.shape)
    return (np.log(x) + z).argmax(axis=axis)


k = gumbel_sample(pi_data)
indices = (np.arange(n_samples), k)
rn = np.random.randn(n_samples)
sampled = rn * sigma_data[indices] + mu_data[indices]
print('gumbel samples', sampled.shape)


# ---------------------------------------------------------------- the stable edition: logits and logsumexp
class MixtureDensityNetwork(nn.Module):
    def __init__(self, dim_in, dim_out, n_components, hidden=32):
        super().__init__()
        self.dim_out, self.n_components = dim_out, n_components
        self.body = nn.Sequential(nn.Linear(dim_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.pi_head = nn.Linear(hidden, n_components)
        self.normal_head = nn.Linear(hidden, 2 * n_components * dim_out)

    def forward(self, x):
        h = self.body(x)
        pi_logits = self.pi_head(h)
        mean, log_sd = torch.chunk(self.normal_head(h), 2, dim=1)
        mu = mean.view(-1, self.n_components, self.dim_out)
        sigma = torch.exp(log_sd).view(-1, self.n_components, self.dim_out)
        return pi_logits, mu, sigma


def mixture_nll(pi_logits, mu, sigma, y):
    """-log sum_k pi_k N(y | mu_k, sigma_k), summed over the output dims, by logsumexp."""
    z = (y.unsqueeze(1) - mu) / sigma
    log_normal = (-0.5 * z ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)
    return -torch.logsumexp(F.log_softmax(pi_logits, dim=-1) + log_normal, dim=1)


def mixture_distribution(pi_logits, mu, sigma):
    mix = D.Categorical(logits=pi_logits)
    comp = D.Independent(D.Normal(mu, sigma), 1)
    return D.MixtureSameFamily(mix, comp)


def sample(pi_logits, mu, sigma):
    k = D.Categorical(logits=pi_logits).sample()
    index = k.view(-1, 1, 1).expand(-1, 1, mu.size(2))
    mu_k = mu.gather(1, index).squeeze(1)
    sigma_k = sigma.gather(1, index).squeeze(1)
    return mu_k + sigma_k * torch.randn_like(mu_k)


mdn = MixtureDensityNetwork(1, 1, n_gaussians)
optimizer = torch.optim.Adam(mdn.parameters(), lr=0.005)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=800)
max_gap = 0.0
for step in range(800):
    pi_logits, mu, sigma = mdn(mdn_x_tensor)
    loss = mixture_nll(pi_logits, mu, sigma, mdn_y_tensor).mean()
    if step % 200 == 0:
        with torch.no_grad():
            reference = -mixture_distribution(pi_logits, mu, sigma).log_prob(mdn_y_tensor).mean()
            max_gap = max(max_gap, (loss - reference).abs().item())
        print(step, round(loss.item(), 4), 'agrees with MixtureSameFamily', bool(torch.isclose(loss, reference, atol=1e-4)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()

with torch.no_grad():
    pi_logits, mu, sigma = mdn(mdn_x_tensor)
    stable_nll = mixture_nll(pi_logits, mu, sigma, mdn_y_tensor).mean().item()
    dist = mixture_distribution(pi_logits, mu, sigma)
    per_point = dist.log_prob(mdn_y_tensor)
    product_form = -torch.log((torch.softmax(pi_logits, -1) * torch.exp(
        D.Normal(mu, sigma).log_prob(mdn_y_tensor.unsqueeze(1)).sum(-1))).sum(1))
    print('log_prob', tuple(per_point.shape), 'batch', tuple(dist.batch_shape), 'event', tuple(dist.event_shape),
          'product form agrees', bool(torch.allclose(-per_point, product_form, atol=1e-4)))

    # samples for the test inputs by the hand-written route and by MixtureSameFamily.sample
    x_test = torch.linspace(-15, 15, 400).view(-1, 1)
    pi_logits, mu, sigma = mdn(x_test)
    y_hand = sample(pi_logits, mu, sigma)
    y_dist = mixture_distribution(pi_logits, mu, sigma).sample()
    print('samples', tuple(y_hand.shape), tuple(y_dist.shape))
    # the samples should lie where the data lie: score them under the data's own pairs
    train_pairs = torch.cat([mdn_x_tensor, mdn_y_tensor], 1)
    dist_hand = torch.cdist(torch.cat([x_test, y_hand], 1), train_pairs).min(1)[0].mean().item()
    dist_lib = torch.cdist(torch.cat([x_test, y_dist], 1), train_pairs).min(1)[0].mean().item()

print(f"FINAL forward_mse={forward_mse:.4f} inverse_mse={inverse_mse:.4f} hardmaru_nll={hardmaru_nll:.4f} "
      f"stable_nll={stable_nll:.4f} sample_dist={dist_hand:.4f} dist_sample_dist={dist_lib:.4f} "
      f"gap={max_gap:.6f}")
