"""beta-VAE (Higgins et al. 2017) and beta-TCVAE (Chen et al. 2018) on synthetic two-factor images,
as 1Konny/Beta-VAE and rtqichen/beta-tcvae write them: binarised 16x16 discs whose x and y
positions are the two factors; an MLP encoder returning ``mu, logvar`` and a decoder returning
logits; the likelihood by ``torch.distributions.Bernoulli(logits=...)`` ``log_prob(x).sum(1)``; the
posterior ``Normal(mu, torch.exp(0.5 * logvar))`` with ``rsample()`` and ``kl_divergence`` to
``Normal(torch.zeros_like(mu), torch.ones_like(mu))`` (against the closed form ``-0.5 * (1 + logvar -
mu ** 2 - logvar.exp())``); beta-TCVAE's minibatch-weighted-sampling decomposition of the KL into
index-code mutual information, total correlation and dimension-wise KL from the ``(B, B, D)``
``log_density`` matrix ``-0.5 * (math.log(2 * math.pi) + logvar) - 0.5 * (x - mu) ** 2 *
torch.exp(-logvar)`` with ``torch.logsumexp(..., dim=1)`` and ``- math.log(batch_size *
dataset_size)``; latent traversals over ``torch.linspace(-2.5, 2.5, 7)`` measured by the decoded
disc's centre of mass; a correlation-gap disentanglement score (``torch.corrcoef`` of posterior
means and factors, top-two gap by ``torch.topk``) and the active latents by their variance.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Bernoulli, Normal, kl_divergence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

SIZE = 16
grid = np.arange(SIZE, dtype=np.float32)


def make_images(factors):
    cx, cy = factors[:, 0][:, None, None], factors[:, 1][:, None, None]
    d2 = (grid[None, None, :] - cx) ** 2 + (grid[None, :, None] - cy) ** 2
    return (d2 <= 2.6 ** 2).astype(np.float32).reshape(len(factors), SIZE * SIZE)


data_rng = np.random.RandomState(seed)
factors_np = data_rng.uniform(3.0, 12.0, size=(4096, 2)).astype(np.float32)
images = torch.from_numpy(make_images(factors_np))
factors = torch.from_numpy(factors_np)
dataset_size = images.shape[0]
print(f"dataset: {dataset_size} images of {SIZE}x{SIZE}, mean pixel {images.mean().item():.4f}")


class VAE(nn.Module):
    def __init__(self, z_dim=4, hidden=256):
        super().__init__()
        self.z_dim = z_dim
        self.encoder = nn.Sequential(nn.Linear(SIZE * SIZE, hidden), nn.ReLU(True), nn.Linear(hidden, hidden // 2),
                                     nn.ReLU(True), nn.Linear(hidden // 2, 2 * z_dim))
        self.decoder = nn.Sequential(nn.Linear(z_dim, hidden // 2), nn.ReLU(True), nn.Linear(hidden // 2, hidden),
                                     nn.ReLU(True), nn.Linear(hidden, SIZE * SIZE))

    def encode(self, x):
        distributions = self.encoder(x)
        mu = distributions[:, :self.z_dim]
        logvar = distributions[:, self.z_dim:]
        return mu, logvar

    def forward(self, x):
        mu, logvar = self.encode(x)
        q = Normal(mu, torch.exp(0.5 * logvar))
        z = q.rsample()
        return self.decoder(z), mu, logvar, z


def log_density_gaussian(x, mu, logvar):
    norm = -0.5 * (math.log(2 * math.pi) + logvar)
    return norm - 0.5 * ((x - mu) ** 2 * torch.exp(-logvar))


def beta_vae_loss(model, x, beta):
    logits, mu, logvar, _ = model(x)
    recon = -Bernoulli(logits=logits).log_prob(x).sum(1).mean()
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kld = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), prior).sum(1).mean()
    return recon + beta * kld, recon, kld


def beta_tcvae_loss(model, x, beta, alpha=1.0, gamma=1.0):
    batch_size = x.shape[0]
    logits, mu, logvar, z = model(x)
    recon = -Bernoulli(logits=logits).log_prob(x).sum(1).mean()
    logpz = log_density_gaussian(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    logqz_condx = log_density_gaussian(z, mu, logvar).sum(1)
    # (B, B, D): log q(z_i | x_j) for every pair of the minibatch
    _logqz = log_density_gaussian(z.view(batch_size, 1, -1), mu.view(1, batch_size, -1),
                                  logvar.view(1, batch_size, -1))
    logqz_prodmarginals = (torch.logsumexp(_logqz, dim=1, keepdim=False)
                           - math.log(batch_size * dataset_size)).sum(1)
    logqz = torch.logsumexp(_logqz.sum(2), dim=1, keepdim=False) - math.log(batch_size * dataset_size)
    mi = (logqz_condx - logqz).mean()
    tc = (logqz - logqz_prodmarginals).mean()
    dw_kl = (logqz_prodmarginals - logpz).mean()
    return recon + alpha * mi + beta * tc + gamma * dw_kl, recon, mi, tc, dw_kl


def train(model, kind, beta, steps=600, batch_size=128):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(1, steps + 1):
        x = images[torch.randint(0, dataset_size, (batch_size,))]
        if kind == "beta":
            loss, recon, kld = beta_vae_loss(model, x, beta)
            parts = f"recon {recon.item():.2f} kl {kld.item():.3f}"
        else:
            loss, recon, mi, tc, dw_kl = beta_tcvae_loss(model, x, beta)
            parts = f"recon {recon.item():.2f} mi {mi.item():.3f} tc {tc.item():.3f} dwkl {dw_kl.item():.3f}"
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 300 == 0:
            print(f"{kind} step {step} loss {loss.item():.2f} {parts}")
    return recon.item()


def centre_of_mass(probs):
    p = probs.view(-1, SIZE, SIZE)
    mass = p.sum(dim=(1, 2)) + 1e-6
    xs = (p.sum(dim=1) * torch.from_numpy(grid)).sum(1) / mass
    ys = (p.sum(dim=2) * torch.from_numpy(grid)).sum(1) / mass
    return torch.stack([xs, ys], dim=1)


@torch.no_grad()
def evaluate(model, name):
    model.eval()
    mu, logvar = model.encode(images)
    active = (mu.var(dim=0) > 0.05).sum().item()
    corr = torch.corrcoef(torch.cat([mu, factors], dim=1).T)[:model.z_dim, model.z_dim:].abs()
    top2 = torch.topk(corr, 2, dim=0).values
    gap = (top2[0] - top2[1]).mean().item()
    # traverse each latent from the posterior mean of one image; how far does the disc move?
    base = mu[:1].repeat(7, 1)
    moves = []
    for d in range(model.z_dim):
        z = base.clone()
        z[:, d] = torch.linspace(-2.5, 2.5, 7)
        com = centre_of_mass(torch.sigmoid(model.decoder(z)))
        moves.append((com[-1] - com[0]).abs().max().item())
    moved = sum(1 for m in moves if m > 2.0)
    recon_error = (torch.sigmoid(model.decoder(mu)).round() != images).float().mean().item()
    print(f"{name}: {active} active latents, correlation gap {gap:.3f}, {moved} latents move the disc "
          f"by over 2 pixels, reconstruction pixel error {recon_error:.4f}")
    return gap, active, recon_error


x = images[:64]
model = VAE()
with torch.no_grad():
    mu, logvar = model.encode(x)
    closed_form = -0.5 * (1 + logvar - mu ** 2 - logvar.exp())
    analytic = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
print(f"kl_divergence against the closed form: max difference {(closed_form - analytic).abs().max().item():.1e}")

beta_vae = VAE()
recon_beta = train(beta_vae, "beta", beta=4.0)
gap_beta, active_beta, error_beta = evaluate(beta_vae, "beta-vae")

tcvae = VAE()
recon_tc = train(tcvae, "tcvae", beta=6.0)
gap_tc, active_tc, error_tc = evaluate(tcvae, "beta-tcvae")
with torch.no_grad():
    _, _, mi, tc, dw_kl = beta_tcvae_loss(tcvae, images[:512], beta=6.0)
print(f"beta-tcvae on 512 images: mi {mi.item():.3f} tc {tc.item():.3f} dimension-wise kl {dw_kl.item():.3f}")
print(f"FINAL recon_beta={recon_beta:.3f} gap_beta={gap_beta:.4f} active_beta={active_beta} error_beta={error_beta:.4f} "
      f"recon_tc={recon_tc:.3f} gap_tc={gap_tc:.4f} active_tc={active_tc} error_tc={error_tc:.4f} "
      f"tc={tc.item():.4f} dw_kl={dw_kl.item():.4f}")
