"""RealNVP on two moons, the shape of the widely copied "RealNVP in PyTorch" notebooks
(senya-ashukha/real-nvp-pytorch and its forks): affine coupling layers with alternating binary
masks held in ``nn.Parameter(mask, requires_grad=False)``, ``nn.ModuleList`` of scale (``Tanh``) and
translation nets, ``f`` (data to latent) summing ``log_det_J -= s.sum(dim=1)`` and ``g`` (latent to
data, the inverse) for sampling, ``prior.log_prob(z) + logp`` with ``torch.distributions.MultivariateNormal(
torch.zeros(2), torch.eye(2))`` and, for comparison, ``Normal(0, 1).log_prob(z).sum(-1)`` (must agree),
``prior.sample((n, 1))``; Adam on ``[p for p in flow.parameters() if p.requires_grad]``. Data:
``sklearn.datasets.make_moons`` rewritten in NumPy. Checks the inverse reconstructs its input.
"""

import os

import numpy as np
import torch
from torch import distributions, nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def make_moons(n_samples, noise, rng):
    n_out, n_in = n_samples // 2, n_samples - n_samples // 2
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))], 1)
    inner = np.stack([1 - np.cos(np.linspace(0, np.pi, n_in)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - .5], 1)
    x = np.concatenate([outer, inner]) + noise * rng.randn(n_samples, 2)
    return x.astype(np.float32)


class RealNVP(nn.Module):
    def __init__(self, nets, nett, mask, prior):
        super().__init__()

        self.prior = prior
        self.mask = nn.Parameter(mask, requires_grad=False)
        self.t = torch.nn.ModuleList([nett() for _ in range(len(mask))])
        self.s = torch.nn.ModuleList([nets() for _ in range(len(mask))])

    def g(self, z):
        x = z
        for i in range(len(self.t)):
            x_ = x * self.mask[i]
            s = self.s[i](x_) * (1 - self.mask[i])
            t = self.t[i](x_) * (1 - self.mask[i])
            x = x_ + (1 - self.mask[i]) * (x * torch.exp(s) + t)
        return x

    def f(self, x):
        log_det_J, z = x.new_zeros(x.shape[0]), x
        for i in reversed(range(len(self.t))):
            z_ = self.mask[i] * z
            s = self.s[i](z_) * (1 - self.mask[i])
            t = self.t[i](z_) * (1 - self.mask[i])
            z = (1 - self.mask[i]) * (z - t) * torch.exp(-s) + z_
            log_det_J -= s.sum(dim=1)
        return z, log_det_J

    def log_prob(self, x):
        z, logp = self.f(x)
        return self.prior.log_prob(z) + logp

    def sample(self, batchSize):
        z = self.prior.sample((batchSize, 1))
        x = self.g(z)
        return x


nets = lambda: nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(), nn.Linear(32, 32), nn.LeakyReLU(),  # noqa: E731
                             nn.Linear(32, 2), nn.Tanh())
nett = lambda: nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(), nn.Linear(32, 32), nn.LeakyReLU(),  # noqa: E731
                             nn.Linear(32, 2))
masks = torch.from_numpy(np.array([[0, 1], [1, 0]] * 2).astype(np.float32))
prior = distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
flow = RealNVP(nets, nett, masks, prior)

rng = np.random.RandomState(0)
data = make_moons(1000, 0.05, rng)
test_data = torch.from_numpy(make_moons(500, 0.05, rng))
optimizer = torch.optim.Adam([p for p in flow.parameters() if p.requires_grad == True], lr=3e-3)  # noqa: E712
print('trainable tensors:', len([p for p in flow.parameters() if p.requires_grad]),
      'frozen mask:', tuple(flow.mask.shape))
for t in range(401):
    noisy_moons = torch.from_numpy(data[rng.choice(len(data), 100)])
    loss = -flow.log_prob(noisy_moons).mean()

    optimizer.zero_grad()
    loss.backward(retain_graph=True)
    optimizer.step()

    if t % 100 == 0:
        print(f'iter {t}:', f'loss = {loss:.3f}')

with torch.no_grad():
    z, logdet = flow.f(test_data)
    by_mvn = prior.log_prob(z) + logdet
    by_normal = distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) + logdet
    print('MultivariateNormal and Normal.sum(-1) agree:', torch.allclose(by_mvn, by_normal, atol=1e-5))
    recon = flow.g(z)
    print('inverse reconstructs:', torch.allclose(recon, test_data, atol=1e-4))
    x = flow.sample(1000)
    print('sample shape:', tuple(x.shape))
    x = x.squeeze(1)
    # samples land on the moons: nearest training point within the noise scale
    dist = torch.cdist(x, torch.from_numpy(data)).min(1).values
    on_moons = (dist < 0.15).float().mean().item()
test_nll = -by_mvn.mean().item()
print(f"FINAL test_nll={test_nll:.4f} on_moons={on_moons:.4f}")
