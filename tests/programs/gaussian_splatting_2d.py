"""Fit a small synthetic image with 2-d Gaussians, the way 3-D Gaussian Splatting fits a scene.

Every Gaussian is a set of ``nn.Parameter`` rows: a mean, log-scales, a rotation angle, a colour
(through ``torch.sigmoid``) and an opacity (``torch.sigmoid`` of a logit), plus a fixed depth.
The covariance is ``R S S^T R^T`` with ``R`` built by ``torch.stack`` of ``cos``/``sin`` and ``S`` by
``torch.diag_embed``; its inverse (the "conic") in closed form, checked against
``torch.linalg.inv``. Each Gaussian is evaluated on the pixel grid from
``torch.meshgrid(..., indexing='ij')`` with ``torch.einsum``, and the image composited front to
back in depth order (``torch.argsort``) with the transmittance an exclusive ``torch.cumprod`` of
``1 - alpha``. Adam has one parameter group per attribute, each with its own learning rate.

Densification as 3DGS does it: the norm of each mean's gradient, read from ``.grad`` after every
backward, is averaged over the steps; the Gaussians with the largest averages are cloned, new
``nn.Parameter``s are built from ``torch.cat`` of the detached old rows and the copies, and a new
optimizer is made for them. Quality is the PSNR of the rendered image.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

H = W = 20


def make_image():
    """A dark background with a few soft-edged coloured discs and a bar, as (H, W, 3) in [0, 1]."""
    yy, xx = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
    image = np.full((H, W, 3), 0.1, dtype=np.float32)
    for _ in range(3):
        cy, cx = rng.uniform(0.2, 0.8, size=2)
        r = rng.uniform(0.12, 0.25)
        inside = 1 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - r) * 40))
        image = image * (1 - inside[..., None]) + inside[..., None] * rng.uniform(0.2, 1.0, size=3)
    bar = (np.abs(yy - rng.uniform(0.3, 0.7)) < 0.06).astype(np.float32)
    image = image * (1 - bar[..., None]) + bar[..., None] * rng.uniform(0.2, 1.0, size=3)
    return torch.from_numpy(image.astype(np.float32))


target = make_image()
ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
pixels = torch.stack([(xs + 0.5) / W, (ys + 0.5) / H], dim=-1).reshape(-1, 2)
print("target", tuple(target.shape), "grid", tuple(ys.shape), "pixels", tuple(pixels.shape),
      f"first {pixels[0].tolist()} last row starts {pixels[-W].tolist()}")
BACKGROUND = torch.zeros(3)


class Gaussians2D(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.means = nn.Parameter(torch.rand(n, 2))
        self.log_scales = nn.Parameter(torch.full((n, 2), math.log(0.08)) + 0.1 * torch.randn(n, 2))
        self.rotations = nn.Parameter(torch.rand(n) * math.pi)
        self.colours = nn.Parameter(0.5 * torch.randn(n, 3))
        self.opacities = nn.Parameter(torch.zeros(n))
        self.register_buffer("depths", torch.rand(n))

    def __len__(self):
        return self.means.shape[0]

    def covariances(self):
        cos, sin = torch.cos(self.rotations), torch.sin(self.rotations)
        rotation = torch.stack([torch.stack([cos, -sin], dim=-1), torch.stack([sin, cos], dim=-1)], dim=-2)
        scale = torch.diag_embed(torch.exp(self.log_scales))
        rs = rotation @ scale
        return rs @ rs.transpose(-1, -2)

    def conics(self):
        """The inverse covariances, in closed form for 2x2 matrices."""
        cov = self.covariances()
        a, b, c, d = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 0], cov[:, 1, 1]
        det = a * d - b * c
        return torch.stack([torch.stack([d, -b], dim=-1), torch.stack([-c, a], dim=-1)], dim=-2) / det[:, None, None]

    def alphas(self, pixels):
        """Each Gaussian's opacity at each pixel, (N, P)."""
        offsets = pixels.unsqueeze(0) - self.means.unsqueeze(1)  # (N, P, 2)
        power = -0.5 * torch.einsum("npi,nij,npj->np", offsets, self.conics(), offsets)
        return (torch.sigmoid(self.opacities).unsqueeze(1) * torch.exp(power)).clamp(max=0.99)

    def forward(self, pixels):
        alpha = self.alphas(pixels)
        order = torch.argsort(self.depths)
        alpha, colours = alpha[order], torch.sigmoid(self.colours)[order]
        # exclusive cumprod: the light left in front of each Gaussian, 1 for the nearest one
        transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:1]), 1 - alpha[:-1]], dim=0), dim=0)
        weights = alpha * transmittance
        left = transmittance[-1] * (1 - alpha[-1])
        return weights.t() @ colours + left.unsqueeze(1) * BACKGROUND, weights


def psnr(image, reference):
    return (10 * torch.log10(1.0 / F.mse_loss(image, reference))).item()


def make_optimizer(model):
    return torch.optim.Adam([
        {"params": [model.means], "lr": 0.01, "name": "means"},
        {"params": [model.log_scales], "lr": 0.02, "name": "scales"},
        {"params": [model.rotations], "lr": 0.02, "name": "rotations"},
        {"params": [model.colours], "lr": 0.05, "name": "colours"},
        {"params": [model.opacities], "lr": 0.05, "name": "opacities"},
    ])


model = Gaussians2D(24)
with torch.no_grad():
    cov = model.covariances()
    print("covariance", tuple(cov.shape), "symmetric", torch.allclose(cov, cov.transpose(1, 2)),
          "det = prod(scale^2)", torch.allclose(torch.linalg.det(cov), torch.exp(2 * model.log_scales).prod(-1), rtol=1e-4),
          "closed-form inverse = linalg.inv", torch.allclose(model.conics(), torch.linalg.inv(cov), rtol=1e-4, atol=1e-2))
    image, weights = model(pixels)
    alpha = model.alphas(pixels)[torch.argsort(model.depths)]
    shifted = torch.roll(torch.cumprod(1 - alpha, dim=0), 1, dims=0)
    shifted[0] = 1.0
    print("image", tuple(image.shape), "weights", tuple(weights.shape),
          "weights sum below one", bool((weights.sum(0) <= 1 + 1e-6).all()),
          "exclusive cumprod = rolled cumprod", torch.allclose(weights, alpha * shifted))
target_flat = target.reshape(-1, 3)
print(f"initial psnr {psnr(image, target_flat):.2f} dB")

STEPS, DENSIFY_AT, CLONE = 300, 120, 12
optimizer = make_optimizer(model)
grad_norm_sum, grad_steps = torch.zeros(len(model)), 0
for step in range(1, STEPS + 1):
    image, _ = model(pixels)
    loss = 0.8 * F.l1_loss(image, target_flat) + 0.2 * F.mse_loss(image, target_flat)
    optimizer.zero_grad()
    loss.backward()
    grad_norm_sum += model.means.grad.norm(dim=-1)
    grad_steps += 1
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step:3d} gaussians {len(model)} loss {loss.item():.4f} psnr {psnr(image.detach(), target_flat):.2f}")
    if step == DENSIFY_AT:
        mean_grad = grad_norm_sum / grad_steps
        chosen = torch.topk(mean_grad, CLONE).indices
        print(f"densify: mean gradient norms {mean_grad.min().item():.2e}..{mean_grad.max().item():.2e}, "
              f"cloning {len(chosen)} of {len(model)}")
        with torch.no_grad():
            for name in ["means", "log_scales", "rotations", "colours", "opacities"]:
                old = getattr(model, name).detach()
                setattr(model, name, nn.Parameter(torch.cat([old, old[chosen]], dim=0)))
            # the copies sit just behind their originals and split the mean gradient's direction
            model.depths = torch.cat([model.depths, model.depths[chosen] + 1e-3])
            model.means[-CLONE:] += 0.01 * torch.randn(CLONE, 2)
        optimizer = make_optimizer(model)
        grad_norm_sum, grad_steps = torch.zeros(len(model)), 0
        print("new parameters", [tuple(p.shape) for p in model.parameters()],
              "groups", [g["name"] for g in optimizer.param_groups], "state", len(optimizer.state))

with torch.no_grad():
    image, weights = model(pixels)
final_psnr = psnr(image, target_flat)
scales = torch.exp(model.log_scales)
print(f"final psnr {final_psnr:.2f} dB with {len(model)} gaussians, "
      f"scales {scales.min().item():.3f}..{scales.max().item():.3f}, "
      f"opacity mean {torch.sigmoid(model.opacities).mean().item():.3f}")
print(f"FINAL psnr={final_psnr:.4f} loss={loss.item():.5f} gaussians={len(model)}")
