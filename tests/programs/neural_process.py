"""A neural process on 1-d functions, as the PyTorch ports of DeepMind's neural-process notebooks
(e.g. EmilienDupont/neural-processes, and the NP half of deepmind/neural-processes in PyTorch) write
it: sine curves drawn with ``torch.rand``, a context/target split by ``torch.randperm`` (the context a
subset of the targets), a deterministic path with mean aggregation ``r = r_i.mean(dim=1)``, a latent
path ``Normal(mu, sigma)`` with ``sigma = 0.1 + 0.9 * torch.sigmoid(log_sigma)``, ``z`` by ``rsample``,
the decoder on ``torch.cat([x_target, r_rep, z_rep], dim=-1)`` with ``r.unsqueeze(1).repeat(1,
num_targets, 1)``, the output ``sigma = 0.1 + 0.9 * F.softplus(...)`` in an
``torch.distributions.Independent(Normal(mu, sigma), 1)`` (against ``Normal(...).log_prob(y).sum(-1)``),
the ELBO ``log_prob(y_target).mean()`` minus ``torch.distributions.kl_divergence(q_target,
q_context).sum(-1)`` (against the closed form), Adam; predictions on a ``torch.linspace`` grid under
``torch.no_grad()`` averaged over latent samples, and a conditional NP (deterministic path only,
``Normal(mu, sigma).log_prob(y).mean()``) trained alongside for comparison.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Independent, Normal, kl_divergence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def sample_sine_batch(batch_size, num_points):
    """y = a * sin(x - b) on random x in [-pi, pi]; a in [0.5, 1.5], b in [0, pi]."""
    a = 0.5 + torch.rand(batch_size, 1, 1)
    b = math.pi * torch.rand(batch_size, 1, 1)
    x = (torch.rand(batch_size, num_points, 1) * 2 - 1) * math.pi
    y = a * torch.sin(x - b)
    return x, y


def context_target_split(x, y, num_context):
    """The targets are every point; the context a random subset of them (same for the whole batch)."""
    locations = torch.randperm(x.size(1))
    x_context, y_context = x[:, locations[:num_context], :], y[:, locations[:num_context], :]
    return x_context, y_context, x, y


class DeterministicEncoder(nn.Module):
    def __init__(self, x_dim, y_dim, h_dim, r_dim):
        super().__init__()
        layers = [nn.Linear(x_dim + y_dim, h_dim), nn.ReLU(inplace=True),
                  nn.Linear(h_dim, h_dim), nn.ReLU(inplace=True),
                  nn.Linear(h_dim, r_dim)]
        self.input_to_hidden = nn.Sequential(*layers)

    def forward(self, x, y):
        input_pairs = torch.cat((x, y), dim=-1)
        r_i = self.input_to_hidden(input_pairs)
        return r_i.mean(dim=1)


class LatentEncoder(nn.Module):
    def __init__(self, x_dim, y_dim, h_dim, z_dim):
        super().__init__()
        self.xy_to_hidden = nn.Sequential(nn.Linear(x_dim + y_dim, h_dim), nn.ReLU(inplace=True),
                                          nn.Linear(h_dim, h_dim), nn.ReLU(inplace=True))
        self.hidden_to_mu = nn.Linear(h_dim, z_dim)
        self.hidden_to_sigma = nn.Linear(h_dim, z_dim)

    def forward(self, x, y):
        s_i = self.xy_to_hidden(torch.cat((x, y), dim=-1))
        s = s_i.mean(dim=1)
        mu = self.hidden_to_mu(s)
        # bounded below, so the posterior never collapses to a point
        sigma = 0.1 + 0.9 * torch.sigmoid(self.hidden_to_sigma(s))
        return Normal(mu, sigma)


class Decoder(nn.Module):
    def __init__(self, x_dim, rep_dim, h_dim, y_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(x_dim + rep_dim, h_dim), nn.ReLU(inplace=True),
                                 nn.Linear(h_dim, h_dim), nn.ReLU(inplace=True),
                                 nn.Linear(h_dim, 2 * y_dim))

    def forward(self, x_target, *representations):
        num_targets = x_target.size(1)
        reps = [rep.unsqueeze(1).repeat(1, num_targets, 1) for rep in representations]
        hidden = self.net(torch.cat([x_target, *reps], dim=-1))
        mu, log_sigma = hidden.chunk(2, dim=-1)
        sigma = 0.1 + 0.9 * F.softplus(log_sigma)
        return mu, sigma


class NeuralProcess(nn.Module):
    def __init__(self, x_dim=1, y_dim=1, h_dim=32, r_dim=16, z_dim=8):
        super().__init__()
        self.deterministic = DeterministicEncoder(x_dim, y_dim, h_dim, r_dim)
        self.latent = LatentEncoder(x_dim, y_dim, h_dim, z_dim)
        self.decoder = Decoder(x_dim, r_dim + z_dim, h_dim, y_dim)

    def forward(self, x_context, y_context, x_target, y_target=None):
        r = self.deterministic(x_context, y_context)
        q_context = self.latent(x_context, y_context)
        if y_target is not None:  # training: z from the posterior given the targets
            q_target = self.latent(x_target, y_target)
            z = q_target.rsample()
        else:
            q_target = None
            z = q_context.rsample()
        mu, sigma = self.decoder(x_target, r, z)
        p_y = Independent(Normal(mu, sigma), 1)
        return p_y, q_target, q_context


class ConditionalNeuralProcess(nn.Module):
    def __init__(self, x_dim=1, y_dim=1, h_dim=32, r_dim=16):
        super().__init__()
        self.encoder = DeterministicEncoder(x_dim, y_dim, h_dim, r_dim)
        self.decoder = Decoder(x_dim, r_dim, h_dim, y_dim)

    def forward(self, x_context, y_context, x_target):
        r = self.encoder(x_context, y_context)
        return self.decoder(x_target, r)


def np_loss(p_y, q_target, q_context, y_target):
    log_likelihood = p_y.log_prob(y_target).mean(dim=0).sum()
    kl = kl_divergence(q_target, q_context).sum(-1).mean()
    return -log_likelihood + kl, log_likelihood, kl


# ---- the distributions agree with their closed forms ----
probe_q = Normal(torch.tensor([[0.3, -0.2]]), torch.tensor([[0.5, 1.2]]))
probe_p = Normal(torch.tensor([[0.0, 0.1]]), torch.tensor([[1.0, 0.8]]))
closed_kl = (torch.log(probe_p.scale / probe_q.scale)
             + (probe_q.scale ** 2 + (probe_q.loc - probe_p.loc) ** 2) / (2 * probe_p.scale ** 2) - 0.5)
print("kl_divergence equals the closed form:", torch.allclose(kl_divergence(probe_q, probe_p), closed_kl, atol=1e-6))
probe_y = torch.randn(2, 5, 1)
independent = Independent(Normal(torch.zeros(2, 5, 1), torch.ones(2, 5, 1)), 1)
print("Independent:", tuple(independent.batch_shape), tuple(independent.event_shape), "log_prob matches the sum:",
      torch.allclose(independent.log_prob(probe_y), Normal(0.0, 1.0).log_prob(probe_y).sum(-1)))

model = NeuralProcess()
cnp = ConditionalNeuralProcess()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
cnp_optimizer = torch.optim.Adam(cnp.parameters(), lr=2e-3)
batch_size, num_points = 16, 24
for step in range(1, 401):
    x, y = sample_sine_batch(batch_size, num_points)
    num_context = int(torch.randint(3, 12, ()).item())
    x_context, y_context, x_target, y_target = context_target_split(x, y, num_context)

    optimizer.zero_grad()
    p_y, q_target, q_context = model(x_context, y_context, x_target, y_target)
    loss, log_likelihood, kl = np_loss(p_y, q_target, q_context, y_target)
    loss.backward()
    optimizer.step()

    cnp_optimizer.zero_grad()
    mu, sigma = cnp(x_context, y_context, x_target)
    cnp_loss = -Normal(mu, sigma).log_prob(y_target).mean()
    cnp_loss.backward()
    cnp_optimizer.step()

    if step % 100 == 0:
        print(f"step {step} np loss {loss.item():.4f} (log-lik {log_likelihood.item():.4f} kl {kl.item():.4f}) "
              f"cnp loss {cnp_loss.item():.4f}")

# ---- evaluation on fresh functions, predictions on a grid ----
model.eval()
cnp.eval()
with torch.no_grad():
    x, y = sample_sine_batch(64, 40)
    x_context, y_context = x[:, :8], y[:, :8]
    x_target, y_target = x[:, 8:], y[:, 8:]
    draws = [model(x_context, y_context, x_target)[0] for _ in range(8)]
    mean_prediction = torch.stack([p.mean for p in draws]).mean(0)
    np_mse = F.mse_loss(mean_prediction, y_target).item()
    np_ll = torch.stack([p.log_prob(y_target) for p in draws]).mean().item()  # per point (event dim 1)
    mu, sigma = cnp(x_context, y_context, x_target)
    cnp_mse = F.mse_loss(mu, y_target).item()
    cnp_ll = Normal(mu, sigma).log_prob(y_target).mean().item()

    x_grid = torch.linspace(-math.pi, math.pi, 100).view(1, -1, 1)
    p_grid = model(x_context[:1], y_context[:1], x_grid)[0]
    grid_std = p_grid.stddev
    # the predictive spread is smallest near the context points
    near = (x_grid - x_context[:1].transpose(1, 2)).abs().min(-1).values.squeeze(0) < 0.2
    spread_near = grid_std.squeeze()[near].mean().item()
    spread_far = grid_std.squeeze()[~near].mean().item()
print(f"grid: {tuple(p_grid.mean.shape)} std near context {spread_near:.3f} elsewhere {spread_far:.3f}")
print(f"test: np mse {np_mse:.4f} np log-lik {np_ll:.4f} cnp mse {cnp_mse:.4f} cnp log-lik {cnp_ll:.4f}")
print(f"FINAL np_mse={np_mse:.4f} np_ll={np_ll:.4f} cnp_mse={cnp_mse:.4f} cnp_ll={cnp_ll:.4f}")
