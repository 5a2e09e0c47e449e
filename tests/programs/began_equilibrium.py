"""BEGAN: Boundary Equilibrium GAN (Berthelot et al., 2017) as carpedm20/BEGAN-pytorch and
anantzoid/BEGAN-pytorch write it, at 8x8 on a synthetic two-mode image set.

The discriminator is an auto-encoder: an encoder of ``nn.Conv2d`` + ``nn.ELU`` blocks with a strided
down-sampling conv and an ``nn.Linear`` to the embedding, a decoder of ``nn.Linear`` to an ``(n, 4,
4)`` map, ``nn.ELU`` conv blocks and ``nn.UpsamplingNearest2d(scale_factor=2)``; the generator is the
same decoder. The losses are L1 reconstructions ``torch.mean(torch.abs(D(x) - x))``: ``d_loss =
L(x) - k_t * L(G(z).detach())``, ``g_loss = L(G(z))``; the control variable ``k_t`` is a Python float
updated by ``k_t + lambda_k * (gamma * L(x) - L(G(z))).item()`` and clamped to [0, 1]; the convergence
measure is ``M = L(x) + |gamma L(x) - L(G(z))|``. Two Adams (``betas=(0.5, 0.999)``); every
``lr_update_step`` steps the mean of M is compared with the previous one and, on a plateau, the
learning rate is halved and the optimizers built again, as carpedm20's trainer does.

The data: 8x8 one-channel images (``norm_img`` to [-1, 1]), half a bright square in the top-left
corner, half a bright bar across the bottom, with noise. Checked: ``k_t`` never leaves [0, 1], M
falls, and the generated samples' pixel mean and std move toward the data's. The share of samples
nearest the second mode's mean image is printed: at this size and step count the generator collapses
onto one mode (their spread over ``fixed_z`` stays far below the data's), as small BEGANs do.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IMAGE, CHANNELS, CONV_HIDDEN, Z_NUM = 8, 1, 8, 16
BATCH_SIZE, MAX_STEP, LR_UPDATE_STEP = 16, 300, 75
GAMMA, LAMBDA_K = 0.7, 0.05


def norm_img(image):
    return image * 2 - 1  # carpedm20's norm_img: pixels to [-1, 1]


def make_dataset(n, rng):
    images = 0.1 * rng.rand(n, CHANNELS, IMAGE, IMAGE)
    mode = rng.randint(0, 2, size=n)
    for i in range(n):
        if mode[i] == 0:
            images[i, :, 1:4, 1:4] += 0.8
        else:
            images[i, :, 5:7, 1:7] += 0.8
    images += 0.05 * rng.randn(n, CHANNELS, IMAGE, IMAGE)
    return norm_img(torch.from_numpy(np.clip(images, 0, 1).astype(np.float32))), mode


class Decoder(nn.Module):
    def __init__(self, hidden_num=CONV_HIDDEN, z_num=Z_NUM):
        super().__init__()
        self.hidden_num = hidden_num
        self.fc = nn.Linear(z_num, 4 * 4 * hidden_num)
        self.conv1 = nn.Sequential(
            nn.Conv2d(hidden_num, hidden_num, 3, 1, 1), nn.ELU(True),
            nn.Conv2d(hidden_num, hidden_num, 3, 1, 1), nn.ELU(True))
        self.up = nn.UpsamplingNearest2d(scale_factor=2)
        self.conv2 = nn.Sequential(
            nn.Conv2d(hidden_num, hidden_num, 3, 1, 1), nn.ELU(True),
            nn.Conv2d(hidden_num, hidden_num, 3, 1, 1), nn.ELU(True))
        self.to_image = nn.Conv2d(hidden_num, CHANNELS, 3, 1, 1)

    def forward(self, z):
        x = self.fc(z).view(-1, self.hidden_num, 4, 4)
        x = self.conv1(x)
        x = self.up(x)
        x = self.conv2(x)
        return self.to_image(x)


class Encoder(nn.Module):
    def __init__(self, hidden_num=CONV_HIDDEN, z_num=Z_NUM):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(CHANNELS, hidden_num, 3, 1, 1), nn.ELU(True),
            nn.Conv2d(hidden_num, hidden_num, 3, 1, 1), nn.ELU(True),
            nn.Conv2d(hidden_num, 2 * hidden_num, 3, 2, 1), nn.ELU(True),
            nn.Conv2d(2 * hidden_num, 2 * hidden_num, 3, 1, 1), nn.ELU(True))
        self.fc = nn.Linear(4 * 4 * 2 * hidden_num, z_num)

    def forward(self, x):
        x = self.conv(x)
        return self.fc(x.view(x.size(0), -1))


class DiscriminatorAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()

    def forward(self, x):
        return self.decoder(self.encoder(x))


def get_optimizer(lr, G, D):
    return (torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999)),
            torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999)))


def nearest_mode(images, templates):
    distances = ((images.unsqueeze(1) - templates.unsqueeze(0)) ** 2).flatten(2).sum(-1)
    return distances.argmin(dim=1)


data, modes = make_dataset(512, np.random.RandomState(seed))
templates = torch.stack([data[torch.from_numpy(modes == m)].mean(0) for m in (0, 1)])
data_mean, data_std = data.mean().item(), data.std().item()
print(f"data: {len(data)} images {IMAGE}x{IMAGE}, mode fractions {modes.mean():.3f}, "
      f"pixel mean {data_mean:.4f} std {data_std:.4f}")

G = Decoder()
D = DiscriminatorAE()
lr = 1e-3
g_optim, d_optim = get_optimizer(lr, G, D)
fixed_z = torch.FloatTensor(256, Z_NUM).uniform_(-1, 1)


def sample_stats():
    with torch.no_grad():
        samples = G(fixed_z)
    mode_fraction = nearest_mode(samples, templates).float().mean().item()
    return samples.mean().item(), samples.std().item(), mode_fraction


start_mean, start_std, _ = sample_stats()
k_t, prev_measure = 0.0, 1.0
k_history, measure_history, all_measures = [], [], []
lr_decays = 0
for step in range(MAX_STEP):
    x = data[torch.randint(0, len(data), (BATCH_SIZE,))]
    z = torch.FloatTensor(BATCH_SIZE, Z_NUM).uniform_(-1, 1)

    # discriminator: reconstruct real, un-reconstruct fake (weighted by k_t)
    sample_z = G(z)
    AE_x = D(x)
    AE_G_d = D(sample_z.detach())
    d_loss_real = torch.mean(torch.abs(AE_x - x))
    d_loss_fake = torch.mean(torch.abs(AE_G_d - sample_z.detach()))
    d_loss = d_loss_real - k_t * d_loss_fake
    d_optim.zero_grad()
    d_loss.backward()
    d_optim.step()

    # generator: make D reconstruct its samples
    AE_G_g = D(sample_z)
    g_loss = torch.mean(torch.abs(AE_G_g - sample_z))
    g_optim.zero_grad()
    g_loss.backward()
    g_optim.step()

    g_d_balance = (GAMMA * d_loss_real - d_loss_fake).item()
    k_t += LAMBDA_K * g_d_balance
    k_t = max(min(1, k_t), 0)
    measure = d_loss_real.item() + abs(g_d_balance)
    measure_history.append(measure)
    all_measures.append(measure)
    k_history.append(k_t)

    if step % LR_UPDATE_STEP == LR_UPDATE_STEP - 1:
        cur_measure = np.mean(measure_history)
        if cur_measure > prev_measure * 0.9999:
            lr *= 0.5
            lr_decays += 1
            g_optim, d_optim = get_optimizer(lr, G, D)
        prev_measure = cur_measure
        measure_history = []
        print(f"[{step + 1}/{MAX_STEP}] Loss_D: {d_loss.item():.4f} L_x: {d_loss_real.item():.4f} "
              f"Loss_G: {g_loss.item():.4f} k_t: {k_t:.4f} measure: {cur_measure:.4f} lr: {lr:.6f}")

end_mean, end_std, end_mode_fraction = sample_stats()
measure_first = float(np.mean(all_measures[:20]))
measure_last = float(np.mean(all_measures[-20:]))
k_in_range = all(0.0 <= k <= 1.0 for k in k_history)
print(f"k_t stayed in [0, 1]: {k_in_range}, max {max(k_history):.5f}")
print(f"convergence measure {measure_first:.4f} -> {measure_last:.4f}")
print(f"sample mean {start_mean:.4f} -> {end_mean:.4f} (data {data_mean:.4f}), "
      f"std {start_std:.4f} -> {end_std:.4f} (data {data_std:.4f}), second-mode fraction {end_mode_fraction:.3f}")
print(f"FINAL measure_first={measure_first:.4f} measure_last={measure_last:.4f} "
      f"measure_ratio={measure_last / measure_first:.4f} k_in_range={int(k_in_range)} k_final={k_t:.5f} "
      f"mean_gap_start={abs(start_mean - data_mean):.4f} mean_gap_end={abs(end_mean - data_mean):.4f} "
      f"std_gap_start={abs(start_std - data_std):.4f} std_gap_end={abs(end_std - data_std):.4f}")
