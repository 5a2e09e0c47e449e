"""The original WGAN (Arjovsky et al.) as martinarjovsky/WassersteinGAN's main.py trains it, on a 2-d ring of Gaussians.

The reference loop: ``optim.RMSprop(lr=5e-5)`` for both networks, ``n_critic`` critic steps per
generator step (100 for the first generator steps, then the usual 5), the critic's weights clipped
after each of its steps by ``for p in critic.parameters(): p.data.clamp_(-c, c)``, and the critic's
parameters toggled by ``p.requires_grad = False`` / ``True`` around the generator step. The losses
go backwards with ``one = torch.tensor(1.)`` and ``mone = one * -1`` exactly as the reference code
does: ``errD_real.backward(one)``, ``errD_fake.backward(mone)``, ``errG.backward(one)``.

Reports the critic's Wasserstein estimate ``E[D(real)] - E[D(fake)]`` and the mode coverage of the
generator's samples (how many of the eight modes get at least 2% of them, and how many samples lie
within three standard deviations of some mode).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_MODES = 8
RADIUS = 1.0
STD = 0.1
NZ = 2
BATCH = 64
CLAMP = 0.05
GEN_ITERS = 300

centres = np.array([[RADIUS * math.cos(2 * math.pi * k / N_MODES), RADIUS * math.sin(2 * math.pi * k / N_MODES)]
                    for k in range(N_MODES)], dtype=np.float32)


def real_batch(n):
    modes = rng.integers(0, N_MODES, size=n)
    points = centres[modes] + rng.normal(0.0, STD, size=(n, 2)).astype(np.float32)
    return torch.from_numpy(points.astype(np.float32))


class Generator(nn.Module):
    def __init__(self, nz, hidden):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(nz, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, 2),
        )

    def forward(self, noise):
        return self.main(noise)


class Critic(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(2, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        output = self.main(x)
        return output.mean()


netG = Generator(NZ, 64)
netD = Critic(64)
print(netD)
optimizerD = optim.RMSprop(netD.parameters(), lr=5e-5)
optimizerG = optim.RMSprop(netG.parameters(), lr=5e-5)
print("RMSprop defaults", {k: optimizerD.defaults[k] for k in ("alpha", "eps", "momentum", "centered")})

one = torch.tensor(1.)
mone = one * -1
print("one", one.item(), "mone", mone.item(), one.dtype, mone.shape)

noise = torch.FloatTensor(BATCH, NZ)
fixed_noise = torch.randn(1000, NZ)

gen_iterations = 0
while gen_iterations < GEN_ITERS:
    ############################
    # (1) Update D network
    ###########################
    for p in netD.parameters():  # reset requires_grad
        p.requires_grad = True  # they are set to False below in netG update

    Diters = 25 if gen_iterations < 10 or gen_iterations % 100 == 0 else 5
    j = 0
    while j < Diters:
        j += 1
        # clamp parameters to a cube
        for p in netD.parameters():
            p.data.clamp_(-CLAMP, CLAMP)

        real = real_batch(BATCH)
        netD.zero_grad()
        errD_real = netD(real)
        errD_real.backward(one)

        noise.resize_(BATCH, NZ).normal_(0, 1)
        with torch.no_grad():
            fake = netG(noise)
        errD_fake = netD(fake)
        errD_fake.backward(mone)
        errD = errD_real - errD_fake
        optimizerD.step()

    ############################
    # (2) Update G network
    ###########################
    for p in netD.parameters():
        p.requires_grad = False  # to avoid computation
    netG.zero_grad()
    noise.resize_(BATCH, NZ).normal_(0, 1)
    fake = netG(noise)
    errG = netD(fake)
    errG.backward(one)
    optimizerG.step()
    gen_iterations += 1

    if gen_iterations % 50 == 0:
        grads_frozen = all(p.grad is None or p.requires_grad is False for p in netD.parameters())
        print('[%d/%d] Loss_D: %f Loss_G: %f Loss_D_real: %f Loss_D_fake %f frozen %s'  # noqa: UP031  (the reference code's spelling)
              % (gen_iterations, GEN_ITERS, errD.item(), errG.item(), errD_real.item(), errD_fake.item(),
                 grads_frozen))

clipped = max(p.data.abs().max().item() for p in netD.parameters())
print(f"largest critic weight after the last step {clipped:.4f} (clamped to {CLAMP} before each critic step)")

with torch.no_grad():
    samples = netG(fixed_noise)
    real = real_batch(1000)
    # the critic learns low values on real data (errD_real.backward(one)), so W ~ D(fake) - D(real)
    w_estimate = (netD(samples) - netD(real)).item()
    dist = torch.cdist(samples, torch.from_numpy(centres))
    nearest = dist.argmin(1)
    close = dist.min(1).values < 3 * STD
    counts = torch.bincount(nearest[close], minlength=N_MODES)
covered = int((counts >= 0.02 * len(samples)).sum())
high_quality = close.float().mean().item()
print("samples per mode", counts.tolist())
print(f"FINAL wasserstein={w_estimate:.4f} modes_covered={covered} high_quality={high_quality:.4f} "
      f"sample_radius={samples.norm(dim=1).mean().item():.4f}")
