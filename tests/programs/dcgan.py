"""DCGAN in the shape of the pytorch/examples script, shrunk to 16x16 images of blobs.

A ``ConvTranspose2d`` + BatchNorm2d + ReLU generator and a strided-``Conv2d`` + LeakyReLU
discriminator, ``netG.apply(weights_init)`` with ``m.__class__.__name__.find('Conv')`` and
``nn.init.normal_``/``nn.init.constant_`` on ``.weight.data``, ``nn.BCELoss`` on a Sigmoid output,
``torch.full`` labels with ``fill_(fake_label)``, ``.view(-1)``, Adam betas (0.5, 0.999), a
``fixed_noise`` batch evaluated under ``torch.no_grad()``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

nz, ngf, ndf, nc = 8, 8, 8, 1
batch_size = 32

# data: one bright Gaussian blob at a random place in a 16x16 image, scaled to [-1, 1] like Normalize(0.5, 0.5)
rng = np.random.RandomState(0)
ys, xs = np.mgrid[0:16, 0:16].astype(np.float32)
centres = rng.uniform(4, 12, size=(512, 2)).astype(np.float32)
blobs = np.exp(-((ys - centres[:, 0, None, None]) ** 2 + (xs - centres[:, 1, None, None]) ** 2) / 6.0)
dataset = torch.from_numpy((2 * blobs - 1)[:, None].astype(np.float32))


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),  # 4x4
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False),  # 16x16
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),  # 8x8
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # 4x4
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),  # 1x1
            nn.Sigmoid(),
        )

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


netG = Generator()
netG.apply(weights_init)
netD = Discriminator()
netD.apply(weights_init)
print(netG)

criterion = nn.BCELoss()
fixed_noise = torch.randn(64, nz, 1, 1)
real_label = 1.0
fake_label = 0.0
optimizerD = optim.Adam(netD.parameters(), lr=2e-3, betas=(0.5, 0.999))
optimizerG = optim.Adam(netG.parameters(), lr=2e-3, betas=(0.5, 0.999))

iters = 0
for epoch in range(5):
    permutation = torch.randperm(dataset.size(0))
    for i in range(dataset.size(0) // batch_size):
        real_cpu = dataset[permutation[i * batch_size:(i + 1) * batch_size]]
        b_size = real_cpu.size(0)
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        label = torch.full((b_size,), real_label, dtype=torch.float)
        output = netD(real_cpu)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(b_size, nz, 1, 1)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        optimizerG.step()
        iters += 1
    print(f"[{epoch}/5][{i + 1}/{dataset.size(0) // batch_size}] Loss_D: {errD.item():.4f} "
          f"Loss_G: {errG.item():.4f} D(x): {D_x:.4f} D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}")

# how blob-like are the fixed-noise samples: the brightest pixel should be high and the border dark
netG.eval()
with torch.no_grad():
    samples = netG(fixed_noise).detach()
print(f"samples {tuple(samples.shape)} in [{samples.min().item():.3f}, {samples.max().item():.3f}]")
peak = samples.flatten(1).max(dim=1).values.mean().item()
border = torch.cat([samples[:, :, 0, :], samples[:, :, -1, :], samples[:, :, :, 0], samples[:, :, :, -1]], dim=2)
border_mean = border.mean().item()
real_peak = dataset.flatten(1).max(dim=1).values.mean().item()
print(f"iterations {iters}, real peak {real_peak:.3f}")
print(f"FINAL peak={peak:.4f} border={border_mean:.4f}")
