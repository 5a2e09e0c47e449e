"""A tiny NeRF, the way bmild's tiny_nerf notebook and the minimal PyTorch ports write it.

The scene is analytic: a coloured sphere, rendered exactly by ray-sphere intersection from a few
camera poses around it.  Rays come from a pinhole camera (``torch.meshgrid(..., indexing='ij')``),
points are sampled along each ray at ``torch.linspace(near, far, n)`` plus stratified jitter
(``torch.rand``), encoded by ``torch.cat([torch.sin(2**i * x), torch.cos(2**i * x)], -1)``, and an
MLP gives colour and density.  Volume rendering: ``alpha = 1 - torch.exp(-sigma * delta)``,
transmittance as the exclusive ``torch.cumprod(..., dim=-1)`` (tiny_nerf's ``torch.roll`` edition
and the ``cat`` of ones edition must agree), weights summed over the samples; the loss is MSE and
the score PSNR (``-10 * torch.log10(mse)``) on a held-out view.
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

H = W = 16
focal = 20.0
near, far, n_samples, n_freqs = 2.0, 6.0, 24, 6


def pose_spherical(theta, phi, radius=4.0):
    """A camera-to-world matrix looking at the origin from angles theta (azimuth), phi (elevation)."""
    theta, phi = math.radians(theta), math.radians(phi)
    eye = torch.tensor([radius * math.cos(phi) * math.sin(theta), radius * math.sin(phi),
                        radius * math.cos(phi) * math.cos(theta)])
    forward = -eye / eye.norm()
    right = torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0]))
    right = right / right.norm()
    up = torch.linalg.cross(right, forward)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -forward, eye
    return c2w


def get_rays(H, W, focal, c2w):
    j, i = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                          indexing="ij")
    dirs = torch.stack([(i - W * .5) / focal, -(j - H * .5) / focal, -torch.ones_like(i)], -1)
    rays_d = torch.sum(dirs[..., None, :] * c2w[:3, :3], -1)
    rays_o = c2w[:3, -1].expand(rays_d.shape)
    return rays_o, rays_d


def render_truth(rays_o, rays_d):
    """Exact image of a unit sphere coloured by its normal, on a black background."""
    d = rays_d / rays_d.norm(dim=-1, keepdim=True)
    b = (rays_o * d).sum(-1)
    c = (rays_o * rays_o).sum(-1) - 1.0
    disc = b * b - c
    hit = disc > 0
    t = -b - torch.sqrt(torch.clamp(disc, min=0))
    normal = rays_o + t[..., None] * d
    colour = 0.5 + 0.5 * normal
    return torch.where(hit[..., None], colour, torch.zeros_like(colour))


def positional_encoding(x, L=n_freqs):
    out = [x]
    for i in range(L):
        out.append(torch.sin(2.0 ** i * x))
        out.append(torch.cos(2.0 ** i * x))
    return torch.cat(out, -1)


class NeRF(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        in_ch = 3 + 3 * 2 * n_freqs
        self.layers = nn.Sequential(nn.Linear(in_ch, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                    nn.Linear(width, width), nn.ReLU())
        self.out = nn.Linear(width, 4)

    def forward(self, x):
        return self.out(self.layers(x))                  # raw (r, g, b, sigma)


def cumprod_exclusive(tensor):
    """tiny_nerf's: an inclusive cumprod rolled one step right, with 1 in front."""
    cumprod = torch.cumprod(tensor, dim=-1)
    cumprod = torch.roll(cumprod, 1, -1)
    cumprod[..., 0] = 1.
    return cumprod


def render_rays(model, rays_o, rays_d, n_samples, randomize=True, raw_noise_std=1.0):
    z_vals = torch.linspace(near, far, n_samples).expand(list(rays_o.shape[:-1]) + [n_samples])
    if randomize:
        z_vals = z_vals + torch.rand(list(rays_o.shape[:-1]) + [n_samples]) * (far - near) / n_samples
    pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]
    raw = model(positional_encoding(pts.reshape(-1, 3))).reshape(list(pts.shape[:-1]) + [4])
    rgb = torch.sigmoid(raw[..., :3])
    # nerf-pytorch's raw2outputs: noise on the raw density while training keeps the ReLU alive
    noise = torch.randn(raw[..., 3].shape) * raw_noise_std if randomize else 0.
    sigma = F.relu(raw[..., 3] + noise)
    dists = torch.cat([z_vals[..., 1:] - z_vals[..., :-1], torch.broadcast_to(torch.tensor([1e10]),
                                                                             z_vals[..., :1].shape)], -1)
    dists = dists * torch.norm(rays_d[..., None, :], dim=-1)
    alpha = 1. - torch.exp(-sigma * dists)
    transmittance = cumprod_exclusive(1. - alpha + 1e-10)
    weights = alpha * transmittance
    rgb_map = torch.sum(weights[..., None] * rgb, -2)
    depth_map = torch.sum(weights * z_vals, -1)
    acc_map = torch.sum(weights, -1)
    return rgb_map, depth_map, acc_map, alpha


# the two exclusive-cumprod editions agree, and transmittance starts at 1
a = torch.rand(5, 7)
by_cat = torch.cat([torch.ones_like(a[..., :1]), torch.cumprod(a, -1)[..., :-1]], -1)
print("exclusive cumprods agree:", torch.allclose(cumprod_exclusive(a), by_cat), "first:", by_cat[:, 0].tolist())

xs, ys = torch.meshgrid(torch.arange(3), torch.arange(2), indexing="xy")
rows, cols = torch.meshgrid(torch.arange(2), torch.arange(3), indexing="ij")
print("meshgrid xy == ij:", torch.equal(xs, cols), torch.equal(ys, rows), tuple(xs.shape))

train_angles = [(theta, phi) for theta in range(0, 360, 45) for phi in (-20, 25)]
poses = [pose_spherical(t, p) for t, p in train_angles]
rays = [get_rays(H, W, focal, c2w) for c2w in poses]
images = [render_truth(o, d) for o, d in rays]
all_o = torch.cat([o.reshape(-1, 3) for o, _ in rays])
all_d = torch.cat([d.reshape(-1, 3) for _, d in rays])
all_rgb = torch.cat([im.reshape(-1, 3) for im in images])
print("rays:", tuple(all_o.shape), "images:", len(images), tuple(images[0].shape),
      f"object coverage {(images[0].sum(-1) > 0).float().mean().item():.3f}")

model = NeRF()
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
batch = 256
for step in range(1, 161):
    idx = torch.from_numpy(rng.integers(0, all_o.shape[0], size=batch))
    rgb, _, _, _ = render_rays(model, all_o[idx], all_d[idx], n_samples)
    loss = F.mse_loss(rgb, all_rgb[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 40 == 0:
        print(f"step {step}: loss {loss.item():.5f} psnr {(-10. * torch.log10(loss)).item():.2f}")



def evaluate(c2w):
    rays_o, rays_d = get_rays(H, W, focal, c2w)
    target = render_truth(rays_o, rays_d)
    with torch.no_grad():
        rgb, depth, acc, alpha = render_rays(model, rays_o, rays_d, n_samples, randomize=False)
    mse = F.mse_loss(rgb, target)
    return (-10. * torch.log10(mse)).item(), rgb, depth, acc, alpha, target


train_psnr, *_ = evaluate(poses[3])
psnr, rgb, depth, acc, alpha, target = evaluate(pose_spherical(55.0, 25.0))
hit = target.sum(-1) > 0
depth_err = (depth[hit] - (4.0 - 1.0)).abs().mean().item()     # the sphere's front is ~3 from the camera
print("render:", tuple(rgb.shape), tuple(depth.shape), "alpha in [0, 1]:",
      bool(((alpha >= 0) & (alpha <= 1)).all()))
print(f"train view psnr {train_psnr:.2f} novel view psnr {psnr:.2f} opacity on object {acc[hit].mean().item():.3f}")
print(f"FINAL train_psnr={train_psnr:.3f} novel_psnr={psnr:.3f} depth_err={depth_err:.3f}")
