"""WGAN-GP on a 2-D toy distribution: the gradient penalty needs a double backward.

``torch.autograd.grad(..., grad_outputs=torch.ones_like(...), create_graph=True,
retain_graph=True)`` on interpolates, ``((grad.norm(2, dim=1) - 1) ** 2).mean()``, three critic
steps per generator step, Adam with betas (0.5, 0.9) as in the paper's code.
"""

import os

import torch
import torch.nn as nn
from torch import autograd

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

LAMBDA = 10.0
batch_size = 64
critic_iters = 3


def sample_real(n):
    # a ring of radius 2 with a little noise
    angle = 2 * torch.pi * torch.rand(n)
    radius = 2.0 + 0.1 * torch.randn(n)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)


netG = nn.Sequential(nn.Linear(2, 32), nn.ReLU(True), nn.Linear(32, 32), nn.ReLU(True), nn.Linear(32, 2))
netD = nn.Sequential(nn.Linear(2, 24), nn.Tanh(), nn.Linear(24, 24), nn.Tanh(), nn.Linear(24, 1))
optimizerD = torch.optim.Adam(netD.parameters(), lr=3e-3, betas=(0.5, 0.9))
optimizerG = torch.optim.Adam(netG.parameters(), lr=3e-3, betas=(0.5, 0.9))


def calc_gradient_penalty(netD, real_data, fake_data):
    alpha = torch.rand(real_data.size(0), 1)
    alpha = alpha.expand(real_data.size())
    interpolates = alpha * real_data + ((1 - alpha) * fake_data)
    interpolates.requires_grad_(True)
    disc_interpolates = netD(interpolates)
    gradients = autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                              grad_outputs=torch.ones_like(disc_interpolates),
                              create_graph=True, retain_graph=True, only_inputs=True)[0]
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean() * LAMBDA


for iteration in range(1, 81):
    for p in netD.parameters():
        p.requires_grad = True
    for _ in range(critic_iters):
        real = sample_real(batch_size)
        with torch.no_grad():
            fake = netG(torch.randn(batch_size, 2))
        netD.zero_grad()
        d_real = netD(real).mean()
        d_fake = netD(fake).mean()
        gradient_penalty = calc_gradient_penalty(netD, real, fake)
        d_cost = d_fake - d_real + gradient_penalty
        d_cost.backward()
        wasserstein_d = (d_real - d_fake).item()
        optimizerD.step()

    for p in netD.parameters():
        p.requires_grad = False
    netG.zero_grad()
    g_cost = -netD(netG(torch.randn(batch_size, 2))).mean()
    g_cost.backward()
    optimizerG.step()
    if iteration % 20 == 0:
        print(f"iter {iteration} D cost {d_cost.item():.4f} G cost {g_cost.item():.4f} "
              f"W distance {wasserstein_d:.4f} GP {gradient_penalty.item():.4f}")

with torch.no_grad():
    samples = netG(torch.randn(2048, 2))
    radius = samples.norm(dim=1)
print(f"generated radius mean {radius.mean().item():.3f} std {radius.std().item():.3f}")
print(f"FINAL loss={abs(radius.mean().item() - 2.0):.4f} w_distance={wasserstein_d:.4f}")
