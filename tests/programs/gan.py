"""A small GAN learning a one-dimensional Gaussian, the classic first GAN exercise.

Two networks and two Adam optimisers (betas (0.5, 0.999)), ``BCEWithLogitsLoss`` with real /
fake labels, ``detach()`` of the generator's output for the discriminator step.
"""

import os

import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

data_mean, data_std = 3.0, 0.5
latent_dim = 4
batch_size = 64

generator = nn.Sequential(nn.Linear(latent_dim, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
discriminator = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.LeakyReLU(0.2),
                              nn.Linear(16, 1))
criterion = nn.BCEWithLogitsLoss()
optimizer_g = optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
optimizer_d = optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
real_label = torch.ones(batch_size, 1)
fake_label = torch.zeros(batch_size, 1)

for step in range(1, 601):
    real = data_mean + data_std * torch.randn(batch_size, 1)
    noise = torch.randn(batch_size, latent_dim)
    fake = generator(noise)

    # discriminator: push real up, fake down; the generator is not updated here
    optimizer_d.zero_grad()
    loss_d = criterion(discriminator(real), real_label) + criterion(discriminator(fake.detach()), fake_label)
    loss_d.backward()
    optimizer_d.step()

    # generator: fool the discriminator
    optimizer_g.zero_grad()
    loss_g = criterion(discriminator(fake), real_label)
    loss_g.backward()
    optimizer_g.step()

    if step % 100 == 0:
        print(f"[{step}/600] Loss_D: {loss_d.item():.4f} Loss_G: {loss_g.item():.4f}")

with torch.no_grad():
    samples = generator(torch.randn(4096, latent_dim))
gen_mean = samples.mean().item()
gen_std = samples.std().item()
print(f"generated mean {gen_mean:.3f} std {gen_std:.3f} (target {data_mean} {data_std})")
moment_error = abs(gen_mean - data_mean) + abs(gen_std - data_std)
print(f"FINAL loss={moment_error:.4f} gen_mean={gen_mean:.4f}")
