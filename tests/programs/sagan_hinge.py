"""A Self-Attention GAN (Zhang et al.'s SAGAN, with BigGAN's training habits) on 8x8 synthetic images.

Every convolution of both networks is wrapped the old way, ``torch.nn.utils.spectral_norm(nn.Conv2d(...))``
(``weight_orig``, ``weight_u``, ``weight_v``, one power iteration per training forward). The
``SelfAttention`` block of the SAGAN ports: 1x1 convs to query/key/value, the flattened maps
``view(B, -1, H * W)`` multiplied by ``torch.bmm``, ``softmax(dim=-1)``, and a learned
``gamma = nn.Parameter(torch.zeros(1))`` so that the block starts as the identity. The hinge loss
(``F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()`` for D, ``-d_fake.mean()`` for G), the
two-timescale update rule (Adam with ``betas=(0.0, 0.9)``, D's rate four times G's), ``fake.detach()``
in the discriminator step, and BigGAN's orthogonal regularisation of G's weights
(``torch.mm(w, w.t()) * (1 - torch.eye(...))``). It reports the losses, gamma, and each layer's
spectral norm: ``torch.linalg.matrix_norm(w, ord=2)`` of ``weight_orig`` (before) and of the
normalised ``weight`` (close to one after the power iteration has converged).

The data: 8x8 images of one bright blob on a dark field, made with NumPy.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, Z_DIM, CH = 8, 16, 16


def make_images(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    centres = rng.uniform(2.0, SIZE - 3.0, size=(n, 2))
    widths = rng.uniform(1.0, 1.8, size=n)
    blobs = np.exp(-((yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2)
                   / (2 * widths[:, None, None] ** 2))
    images = 2.0 * blobs - 1.0 + 0.05 * rng.normal(size=blobs.shape)
    return torch.from_numpy(images[:, None].astype(np.float32))


class SelfAttention(nn.Module):
    """SAGAN's attention over all positions, as the PyTorch ports write it."""

    def __init__(self, in_dim):
        super().__init__()
        self.query_conv = spectral_norm(nn.Conv2d(in_dim, in_dim // 8, kernel_size=1))
        self.key_conv = spectral_norm(nn.Conv2d(in_dim, in_dim // 8, kernel_size=1))
        self.value_conv = spectral_norm(nn.Conv2d(in_dim, in_dim, kernel_size=1))
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        batch, channels, height, width = x.size()
        proj_query = self.query_conv(x).view(batch, -1, width * height).permute(0, 2, 1)
        proj_key = self.key_conv(x).view(batch, -1, width * height)
        energy = torch.bmm(proj_query, proj_key)
        attention = self.softmax(energy)
        proj_value = self.value_conv(x).view(batch, -1, width * height)
        out = torch.bmm(proj_value, attention.permute(0, 2, 1))
        out = out.view(batch, channels, height, width)
        return self.gamma * out + x, attention


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.project = spectral_norm(nn.ConvTranspose2d(Z_DIM, CH, 4))  # 1x1 -> 4x4
        self.up = spectral_norm(nn.ConvTranspose2d(CH, CH, 4, stride=2, padding=1))  # 4x4 -> 8x8
        self.attn = SelfAttention(CH)
        self.to_image = spectral_norm(nn.Conv2d(CH, 1, 3, padding=1))
        self.bn1 = nn.BatchNorm2d(CH)
        self.bn2 = nn.BatchNorm2d(CH)

    def forward(self, z):
        h = F.relu(self.bn1(self.project(z.view(z.size(0), -1, 1, 1))))
        h = F.relu(self.bn2(self.up(h)))
        h, attention = self.attn(h)
        return torch.tanh(self.to_image(h)), attention


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(1, CH, 3, padding=1))
        self.attn = SelfAttention(CH)
        self.conv2 = spectral_norm(nn.Conv2d(CH, 2 * CH, 4, stride=2, padding=1))  # 8x8 -> 4x4
        self.last = spectral_norm(nn.Conv2d(2 * CH, 1, 4))  # 4x4 -> 1x1

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.1)
        h, attention = self.attn(h)
        h = F.leaky_relu(self.conv2(h), 0.1)
        return self.last(h).squeeze(), attention


def orthogonal_regularisation(model, strength=1e-4):
    """BigGAN's Ortho reg: only the off-diagonal of W W^T is pushed to zero."""
    penalty = 0.0
    for name, param in model.named_parameters():
        if param.ndimension() < 2 or "gamma" in name:
            continue
        w = param.view(param.shape[0], -1)
        penalty = penalty + torch.sum((torch.mm(w, w.t()) * (1.0 - torch.eye(w.shape[0]))) ** 2)
    return strength * penalty


def spectral_norms(model):
    """sigma of every wrapped layer: of weight_orig (as trained) and of the normalised weight."""
    rows = []
    for name, module in model.named_modules():
        if hasattr(module, "weight_orig"):
            w_orig = module.weight_orig.detach()
            w = module.weight.detach()
            if isinstance(module, nn.ConvTranspose2d):
                w_orig, w = w_orig.transpose(0, 1), w.transpose(0, 1)
            rows.append((name,
                         torch.linalg.matrix_norm(w_orig.reshape(w_orig.shape[0], -1), ord=2).item(),
                         torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()))
    return rows


real_images = make_images(256)
print(f"data {tuple(real_images.shape)} range {real_images.min().item():.2f}..{real_images.max().item():.2f}")

G, D = Generator(), Discriminator()
wrapped = [n for n, m in D.named_modules() if hasattr(m, "weight_orig")]
print("D spectral-norm layers", wrapped)
print("D parameter names", sorted(n for n, _ in D.named_parameters()))
print("D buffer names", sorted(n for n, _ in D.named_buffers()))
print(f"weight is a plain attribute, not a parameter: {'conv1.weight' not in dict(D.named_parameters())}")
print(f"gamma starts at {G.attn.gamma.item():.1f}; orthogonal penalty {orthogonal_regularisation(G).item():.6f}")
print("hook", type(D.conv1._forward_pre_hooks[next(iter(D.conv1._forward_pre_hooks))]).__name__,
      "state_dict keys", [k for k in D.state_dict() if k.startswith("conv1.")])
try:
    spectral_norm(D.conv1)
except RuntimeError as error:
    print("wrapping twice:", error)
# the old API round-trips through a state_dict and can be removed again
probe_x = make_images(4)
copy_D = Discriminator()
copy_D.load_state_dict(D.state_dict())
D.eval()
copy_D.eval()
with torch.no_grad():
    same = torch.allclose(D(probe_x)[0], copy_D(probe_x)[0])
D.train()
plain = torch.nn.utils.remove_spectral_norm(copy_D.last)
print(f"loaded copy agrees {same}; removed: weight is a parameter {isinstance(plain.weight, nn.Parameter)} "
      f"hooks left {len(plain._forward_pre_hooks)} has weight_orig {hasattr(plain, 'weight_orig')}")


opt_G = torch.optim.Adam(G.parameters(), lr=1e-4 * 2, betas=(0.0, 0.9))
opt_D = torch.optim.Adam(D.parameters(), lr=4e-4 * 2, betas=(0.0, 0.9))
print("two timescales", opt_G.param_groups[0]["lr"], opt_D.param_groups[0]["lr"], opt_D.param_groups[0]["betas"])

STEPS, BATCH = 60, 32
fixed_z = torch.randn(64, Z_DIM)
for step in range(1, STEPS + 1):
    real = real_images[torch.randint(0, len(real_images), (BATCH,))]
    z = torch.randn(BATCH, Z_DIM)

    fake, _ = G(z)
    d_real, _ = D(real)
    d_fake, _ = D(fake.detach())
    d_loss_real = F.relu(1.0 - d_real).mean()
    d_loss_fake = F.relu(1.0 + d_fake).mean()
    d_loss = d_loss_real + d_loss_fake
    opt_D.zero_grad()
    d_loss.backward()
    opt_D.step()

    fake, _ = G(z)
    g_out, _ = D(fake)
    g_adv = -g_out.mean()
    ortho = orthogonal_regularisation(G)
    g_loss = g_adv + ortho
    opt_G.zero_grad()
    g_loss.backward()
    opt_G.step()
    if step % 15 == 0:
        print(f"step {step} d_real {d_loss_real.item():.4f} d_fake {d_loss_fake.item():.4f} "
              f"g_adv {g_adv.item():.4f} ortho {ortho.item():.6f} "
              f"gamma G {G.attn.gamma.item():+.4f} D {D.attn.gamma.item():+.4f}")

print("spectral norms of D (weight_orig -> weight):")
for name, sigma_orig, sigma in spectral_norms(D):
    print(f"  {name:18s} {sigma_orig:.4f} -> {sigma:.4f}")
g_sigmas = spectral_norms(G)
print("spectral norms of G (weight_orig -> weight):")
for name, sigma_orig, sigma in g_sigmas:
    print(f"  {name:18s} {sigma_orig:.4f} -> {sigma:.4f}")

G.eval()
D.eval()
with torch.no_grad():
    samples, g_attention = G(fixed_z)
    d_on_real, d_attention = D(real_images[:64])
    d_on_fake, _ = D(samples)
    eval_again, _ = D(real_images[:64])
print(f"attention rows sum to one {torch.allclose(g_attention.sum(-1), torch.ones(64, SIZE * SIZE), atol=1e-5)} "
      f"shape {tuple(d_attention.shape)}")
print(f"eval mode keeps u fixed: {torch.equal(d_on_real, eval_again)}")
real_mean_profile = real_images.mean(0)
sample_gap = (samples.mean(0) - real_mean_profile).abs().mean().item()
margin = (d_on_real.mean() - d_on_fake.mean()).item()
mean_sigma = sum(s for _, _, s in spectral_norms(D)) / len(wrapped)
print(f"FINAL d_loss={d_loss.item():.4f} g_adv={g_adv.item():.4f} d_margin={margin:.4f} "
      f"gamma_g={G.attn.gamma.item():.4f} gamma_d={D.attn.gamma.item():.4f} "
      f"sigma_d={mean_sigma:.4f} sigma_orig_last={spectral_norms(D)[-1][1]:.4f} "
      f"sample_gap={sample_gap:.4f} sample_std={samples.std().item():.4f}")
