"""Wasserstein Auto-Encoders (Tolstikhin et al., ICLR 2018) in the layout of schelotto/Wasserstein-AutoEncoders,
on synthetic two-factor images.

Each 10x10 image is a Gaussian blob whose two factors of variation are its centre's row and column (plus
noise), so the data lie near a 2-d manifold. An ``Encoder``/``Decoder`` pair (``nn.Sequential`` of
``nn.Linear(bias=False)`` + ``nn.BatchNorm1d`` + ``nn.ReLU(True)``, a ``nn.Sigmoid`` output) is trained three ways: a plain auto-encoder on the
reconstruction MSE only, WAE-MMD with the repository's ``imq_kernel`` penalty between the encoded batch
and a prior sample ``torch.randn(n, n_z) * sigma``, and WAE-GAN with a latent ``Discriminator`` (``Sigmoid``
output) trained by ``-LAMBDA * (torch.log(d_z).mean() + torch.log(1 - d_z_tilde).mean())`` while the
encoder adds ``-LAMBDA * torch.log(d_z_tilde).mean()``. ``imq_kernel`` is the repository's: squared
distances by the ``x.pow(2).sum(1, keepdim=True)`` expansion with ``torch.mm``, the inverse multiquadratics
``C / (C + dists)`` summed over scales ``C = 2 * h_dim * scale``, the diagonal excluded by
``(1 - torch.eye(batch_size)) * res1`` and ``sum() / (batch_size - 1)``; it is computed again with
``torch.cdist(x, y) ** 2`` (the two must agree). Training is the repository's: ``Adam`` per network with
``lr_scheduler.StepLR``, ``enc_optim.zero_grad()``/``dec_optim.zero_grad()``, the discriminator frozen by
``p.requires_grad = False`` on the auto-encoder's step, ``torch.manual_seed``-driven prior samples.

Checked: held-out reconstruction MSE of each model, the MMD of the aggregate posterior (held-out codes) to
the prior for WAE-MMD and WAE-GAN against the plain AE's (which nothing pulls towards the prior), the
kernel's two routes agreeing (``torch.allclose``), and the smoothness of decoded interpolations between
held-out codes (path length over the endpoints' distance).
"""

# ruff: noqa: UP008  (the repository's own spelling: super(Class, self))

import os

import numpy as np
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import StepLR

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SIDE = 10
N_Z = 4
SIGMA = 1.0
LAMBDA = 0.5
BATCH_SIZE = 64
EPOCHS = 20


def make_images(n):
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    cy = rng.uniform(1.5, SIDE - 2.5, size=(n, 1, 1))
    cx = rng.uniform(1.5, SIDE - 2.5, size=(n, 1, 1))
    img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.5 ** 2))
    img = np.clip(img + 0.03 * rng.randn(n, SIDE, SIDE), 0, 1)
    return torch.from_numpy(img.reshape(n, SIDE * SIDE).astype(np.float32))


train_images = make_images(768)
test_images = make_images(256)


class Encoder(nn.Module):
    def __init__(self, args):
        super(Encoder, self).__init__()
        self.n_z = args["n_z"]
        self.dim_h = args["dim_h"]
        self.main = nn.Sequential(
            nn.Linear(SIDE * SIDE, self.dim_h * 2, bias=False),
            nn.BatchNorm1d(self.dim_h * 2),
            nn.ReLU(True),
            nn.Linear(self.dim_h * 2, self.dim_h, bias=False),
            nn.BatchNorm1d(self.dim_h),
            nn.ReLU(True),
        )
        self.fc = nn.Linear(self.dim_h, self.n_z)

    def forward(self, x):
        x = self.main(x)
        x = self.fc(x)
        return x


class Decoder(nn.Module):
    def __init__(self, args):
        super(Decoder, self).__init__()
        self.n_z = args["n_z"]
        self.dim_h = args["dim_h"]
        self.proj = nn.Sequential(nn.Linear(self.n_z, self.dim_h), nn.ReLU())
        self.main = nn.Sequential(
            nn.Linear(self.dim_h, self.dim_h * 2, bias=False),
            nn.BatchNorm1d(self.dim_h * 2),
            nn.ReLU(True),
            nn.Linear(self.dim_h * 2, SIDE * SIDE),
            nn.Sigmoid(),
        )

    def forward(self, x):
        x = self.proj(x)
        x = self.main(x)
        return x


class Discriminator(nn.Module):
    def __init__(self, args):
        super(Discriminator, self).__init__()
        self.n_z = args["n_z"]
        self.dim_h = args["dim_h"]
        self.main = nn.Sequential(
            nn.Linear(self.n_z, self.dim_h),
            nn.ReLU(True),
            nn.Linear(self.dim_h, self.dim_h),
            nn.ReLU(True),
            nn.Linear(self.dim_h, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        x = self.main(x)
        return x


def imq_kernel(X: torch.Tensor, Y: torch.Tensor, h_dim: int):
    batch_size = X.size(0)

    norms_x = X.pow(2).sum(1, keepdim=True)  # batch_size x 1
    prods_x = torch.mm(X, X.t())  # batch_size x batch_size
    dists_x = norms_x + norms_x.t() - 2 * prods_x

    norms_y = Y.pow(2).sum(1, keepdim=True)  # batch_size x 1
    prods_y = torch.mm(Y, Y.t())  # batch_size x batch_size
    dists_y = norms_y + norms_y.t() - 2 * prods_y

    dot_prd = torch.mm(X, Y.t())
    dists_c = norms_x + norms_y.t() - 2 * dot_prd

    stats = 0
    for scale in [.1, .2, .5, 1., 2., 5., 10.]:
        C = 2 * h_dim * 1.0 * scale
        res1 = C / (C + dists_x)
        res1 += C / (C + dists_y)

        if torch.cuda.is_available():
            res1 = (1 - torch.eye(batch_size).cuda()) * res1
        else:
            res1 = (1 - torch.eye(batch_size)) * res1

        res1 = res1.sum() / (batch_size - 1)
        res2 = C / (C + dists_c)
        res2 = res2.sum() * 2. / (batch_size)
        stats += res1 - res2

    return stats


def imq_kernel_cdist(X, Y, h_dim):
    n = X.size(0)
    off_diag = 1 - torch.eye(n)
    stats = 0
    for scale in [.1, .2, .5, 1., 2., 5., 10.]:
        C = 2 * h_dim * scale
        k_xx = C / (C + torch.cdist(X, X) ** 2)
        k_yy = C / (C + torch.cdist(Y, Y) ** 2)
        k_xy = C / (C + torch.cdist(X, Y) ** 2)
        stats += ((k_xx + k_yy) * off_diag).sum() / (n - 1) - k_xy.sum() * 2. / n
    return stats


# ----------------------------------------------------------------------------------- kernel check
with torch.no_grad():
    a = torch.randn(32, N_Z) * 0.5 + 0.3
    b = torch.randn(32, N_Z)
    by_hand = imq_kernel(a, b, h_dim=N_Z)
    by_cdist = imq_kernel_cdist(a, b, N_Z)
    same_kernel = torch.allclose(by_hand, by_cdist, atol=1e-5)
    self_mmd = imq_kernel(b, b, h_dim=N_Z)
print(f"imq_kernel by hand {by_hand.item():.5f} vs cdist {by_cdist.item():.5f}: {same_kernel}; "
      f"MMD(y, y) {self_mmd.item():.5f}")

args = {"n_z": N_Z, "dim_h": 32}


def train(mode):
    encoder, decoder = Encoder(args), Decoder(args)
    criterion = nn.MSELoss()
    encoder.train()
    decoder.train()
    enc_optim = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    dec_optim = torch.optim.Adam(decoder.parameters(), lr=1e-3)
    enc_scheduler = StepLR(enc_optim, step_size=12, gamma=0.5)
    dec_scheduler = StepLR(dec_optim, step_size=12, gamma=0.5)
    if mode == "gan":
        discriminator = Discriminator(args)
        dis_optim = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
        dis_scheduler = StepLR(dis_optim, step_size=12, gamma=0.5)

    n = train_images.size(0)
    for epoch in range(EPOCHS):
        step = 0
        perm = torch.randperm(n)
        for i in range(0, n, BATCH_SIZE):
            images = train_images[perm[i:i + BATCH_SIZE]]

            if mode == "gan":
                # ======== Train Discriminator ======== #
                for p in discriminator.parameters():
                    p.requires_grad = True
                z_fake = torch.randn(images.size()[0], N_Z) * SIGMA
                d_z = discriminator(z_fake)
                z_real = encoder(images)
                d_z_tilde = discriminator(z_real.detach())
                dis_optim.zero_grad()
                d_loss = -LAMBDA * (torch.log(d_z).mean() + torch.log(1 - d_z_tilde).mean())
                d_loss.backward()
                dis_optim.step()
                for p in discriminator.parameters():
                    p.requires_grad = False

            encoder.zero_grad()
            decoder.zero_grad()
            z_real = encoder(images)
            x_recon = decoder(z_real)
            recon_loss = criterion(x_recon, images)
            if mode == "mmd":
                z_fake = torch.randn(images.size()[0], N_Z) * SIGMA
                mmd_loss = imq_kernel(z_real, z_fake, h_dim=encoder.n_z)
                mmd_loss = mmd_loss / images.size(0)
                total_loss = recon_loss + mmd_loss
            elif mode == "gan":
                d_z_tilde = discriminator(z_real)
                total_loss = recon_loss - LAMBDA * torch.log(d_z_tilde).mean()
            else:
                total_loss = recon_loss
            total_loss.backward()
            enc_optim.step()
            dec_optim.step()
            step += 1

        enc_scheduler.step()
        dec_scheduler.step()
        if mode == "gan":
            dis_scheduler.step()
        if (epoch + 1) % 10 == 0:
            print(f"[{mode}] Epoch: [{epoch + 1}/{EPOCHS}], Step: [{step}/{n // BATCH_SIZE}], "
                  f"Reconstruction Loss: {recon_loss.item():.4f}")
    return encoder, decoder


def evaluate(mode, encoder, decoder):
    encoder.eval()
    decoder.eval()
    with torch.no_grad():
        z = encoder(test_images)
        mse = ((decoder(z) - test_images) ** 2).mean().item()
        prior = torch.randn(z.size(0), N_Z) * SIGMA
        mmd = imq_kernel(z, prior, h_dim=N_Z).item() / z.size(0)
        # interpolation smoothness: decoded path length over the endpoints' distance
        ratios = []
        for i in range(8):
            z0, z1 = z[2 * i], z[2 * i + 1]
            alphas = torch.linspace(0, 1, 11).unsqueeze(1)
            path = decoder((1 - alphas) * z0 + alphas * z1)
            steps = (path[1:] - path[:-1]).norm(dim=1).sum()
            ratios.append((steps / (path[-1] - path[0]).norm()).item())
        smooth = float(np.mean(ratios))
    print(f"[{mode}] test: MSE {mse:.5f}, MMD(q(z), p(z)) {mmd:.5f}, interpolation path ratio {smooth:.3f}")
    return mse, mmd, smooth


ae_mse, ae_mmd, ae_smooth = evaluate("ae", *train("ae"))
wae_mse, wae_mmd, wae_smooth = evaluate("mmd", *train("mmd"))
gan_mse, gan_mmd, gan_smooth = evaluate("gan", *train("gan"))
print(f"FINAL wae_mse={wae_mse:.5f} ae_mse={ae_mse:.5f} gan_mse={gan_mse:.5f} wae_mmd={wae_mmd:.5f} "
      f"ae_mmd={ae_mmd:.5f} gan_mmd={gan_mmd:.5f} wae_smooth={wae_smooth:.4f} kernel_ok={int(same_kernel)}")
