"""An EG3D-style tri-plane neural field (NVlabs/eg3d's renderer idioms) fitted to a toy analytic scene.

The scene is a soft sphere and a small soft box inside the [-1, 1]^3 box, coloured by position;
its images are rendered from a ring of cameras by the same ray marcher on the analytic field.
The field to fit is three learnable feature planes ``nn.Parameter(torch.randn(3, C, R, R) * 0.1)``:
points are projected onto the xy/xz/zy planes through a (3, 3, 3) stack of plane axes
(``torch.linalg.inv`` + ``torch.bmm``, then ``[..., :2]``; an ``einsum`` edition must agree),
sampled by ``F.grid_sample(planes, coords.unsqueeze(1), mode='bilinear', padding_mode='zeros',
align_corners=False)``, ``permute(0, 3, 2, 1)``, averaged over planes by ``.mean(1)`` and decoded
by a small ``nn.Sequential`` into a density (``F.softplus(sigma - 1)``) and a colour
``torch.sigmoid(x) * (1 + 2 * 0.001) - 0.001``.  Depths are ``torch.linspace`` plus stratified
jitter (``torch.rand_like``); the MipRayMarcher2 composite uses midpoints, alphas
``1 - torch.exp(-sigma * delta)`` and ``torch.cumprod(torch.cat([ones, 1 - alpha + 1e-10], -2), -2)[:, :, :-1]``.
Loss: MSE plus a TV loss on the planes; Adam.  Checks: ``grid_sample`` at the texel centres returns
the stored plane values, the rendered weights sum to at most 1, PSNR on a held-out view rises.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
img_res, n_views = 12, 9
ray_start, ray_end, depth_resolution = 1.4, 3.6, 24
box_warp = 2.0


def generate_planes():
    """The three planes' axes; EG3D's quirk: the third projects to (z, y)."""
    return torch.tensor([[[1, 0, 0],
                          [0, 1, 0],
                          [0, 0, 1]],
                         [[1, 0, 0],
                          [0, 0, 1],
                          [0, 1, 0]],
                         [[0, 0, 1],
                          [0, 1, 0],
                          [1, 0, 0]]], dtype=torch.float32)


def project_onto_planes(planes, coordinates):
    """(N, M, 3) coordinates onto (n_planes, 3, 3) axes -> (N * n_planes, M, 2)."""
    N, M, C = coordinates.shape
    n_planes, _, _ = planes.shape
    coordinates = coordinates.unsqueeze(1).expand(-1, n_planes, -1, -1).reshape(N * n_planes, M, 3)
    inv_planes = torch.linalg.inv(planes).unsqueeze(0).expand(N, -1, -1, -1).reshape(N * n_planes, 3, 3)
    projections = torch.bmm(coordinates, inv_planes)
    return projections[..., :2]


def sample_from_planes(plane_axes, plane_features, coordinates, mode="bilinear", padding_mode="zeros"):
    N, n_planes, C, H, W = plane_features.shape
    _, M, _ = coordinates.shape
    plane_features = plane_features.view(N * n_planes, C, H, W)
    coordinates = (2 / box_warp) * coordinates
    projected_coordinates = project_onto_planes(plane_axes, coordinates).unsqueeze(1)
    output_features = F.grid_sample(plane_features, projected_coordinates.float(), mode=mode,
                                    padding_mode=padding_mode, align_corners=False)
    return output_features.permute(0, 3, 2, 1).reshape(N, n_planes, M, C)


class OSGDecoder(nn.Module):
    def __init__(self, n_features, hidden_dim=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden_dim),
            nn.Softplus(),
            nn.Linear(hidden_dim, 1 + 3),
        )

    def forward(self, sampled_features):
        x = sampled_features.mean(1)
        N, M, C = x.shape
        x = x.view(N * M, C)
        x = self.net(x)
        x = x.view(N, M, -1)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001
        sigma = x[..., 0:1]
        return {"rgb": rgb, "sigma": sigma}


class TriPlaneField(nn.Module):
    def __init__(self, channels=8, resolution=32):
        super().__init__()
        self.planes = nn.Parameter(torch.randn(3, channels, resolution, resolution) * 0.1)
        self.register_buffer("plane_axes", generate_planes())
        self.decoder = OSGDecoder(channels)

    def forward(self, coordinates):
        features = sample_from_planes(self.plane_axes, self.planes.unsqueeze(0), coordinates)
        return self.decoder(features)


def analytic_field(coordinates):
    """Ground truth: raw density (before the marcher's softplus) and colour of the toy scene."""
    r = coordinates.norm(dim=-1, keepdim=True)
    sphere = torch.sigmoid((0.45 - r) * 30.0)
    box_p = (coordinates - torch.tensor([0.35, 0.3, -0.3])).abs()
    box = torch.sigmoid((0.22 - box_p.max(dim=-1, keepdim=True)[0]) * 30.0)
    occupancy = torch.clamp(sphere + box, max=1.0)
    sigma = 30.0 * occupancy - 4.0
    rgb = torch.where(box > sphere, torch.tensor([0.9, 0.8, 0.1]).expand_as(coordinates),
                      0.5 + 0.5 * coordinates.clamp(-1, 1))
    return {"rgb": rgb, "sigma": sigma}


def ray_march(colors, densities, depths):
    """MipRayMarcher2: composite at interval midpoints."""
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    densities_mid = (densities[:, :, :-1] + densities[:, :, 1:]) / 2
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    densities_mid = F.softplus(densities_mid - 1)
    density_delta = densities_mid * deltas
    alpha = 1 - torch.exp(-density_delta)
    alpha_shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], -2)
    weights = alpha * torch.cumprod(alpha_shifted, -2)[:, :, :-1]
    composite_rgb = torch.sum(weights * colors_mid, -2)
    weight_total = weights.sum(2)
    composite_depth = torch.sum(weights * depths_mid, -2) / weight_total
    composite_depth = torch.nan_to_num(composite_depth, float("inf"))
    composite_depth = torch.clamp(composite_depth, torch.min(depths), torch.max(depths))
    return composite_rgb, composite_depth, weights


def sample_stratified(ray_origins, disparity_space=False, jitter=True):
    N, M, _ = ray_origins.shape
    depths = torch.linspace(ray_start, ray_end, depth_resolution, device=ray_origins.device)
    depths = depths.reshape(1, 1, depth_resolution, 1).repeat(N, M, 1, 1)
    if jitter:
        depth_delta = (ray_end - ray_start) / (depth_resolution - 1)
        depths += torch.rand_like(depths) * depth_delta
    return depths


def render(field_fn, ray_origins, ray_directions, jitter=True):
    depths = sample_stratified(ray_origins, jitter=jitter)
    N, M, S, _ = depths.shape
    sample_coordinates = (ray_origins.unsqueeze(-2) + depths * ray_directions.unsqueeze(-2)).reshape(N, -1, 3)
    out = field_fn(sample_coordinates)
    colors = out["rgb"].reshape(N, M, S, 3)
    densities = out["sigma"].reshape(N, M, S, 1)
    return ray_march(colors, densities, depths)


def camera_rays(angle, elevation=0.35, radius=2.5, fov_deg=40.0):
    eye = torch.tensor([radius * math.cos(elevation) * math.sin(angle), radius * math.sin(elevation),
                        radius * math.cos(elevation) * math.cos(angle)])
    forward = -eye / eye.norm()
    right = torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0]))
    right = right / right.norm()
    up = torch.linalg.cross(right, forward)
    half = math.tan(math.radians(fov_deg) / 2)
    uv = torch.linspace(-half, half, img_res)
    v, u = torch.meshgrid(uv, uv, indexing="ij")
    dirs = forward + u[..., None] * right - v[..., None] * up
    dirs = F.normalize(dirs.reshape(-1, 3), dim=-1)
    return eye.expand(img_res * img_res, 3).unsqueeze(0), dirs.unsqueeze(0)


# ---------------------------------------------------------------- data
angles = [2 * math.pi * k / n_views for k in range(n_views)]
rays = [camera_rays(a) for a in angles]
with torch.no_grad():
    images = [render(analytic_field, o, d, jitter=False)[0] for o, d in rays]
train_views, val_view = list(range(n_views - 1)), n_views - 1
print(f"views: {n_views} of {img_res}x{img_res}, samples per ray {depth_resolution}, "
      f"image mean {torch.stack(images).mean().item():.3f}")

model = TriPlaneField().to(device)
print(f"planes {tuple(model.planes.shape)}, decoder parameters "
      f"{sum(p.numel() for p in model.decoder.parameters())}")

# grid_sample at texel centres (align_corners=False) returns the stored values
R = model.planes.shape[-1]
centres = (2 * torch.arange(R, dtype=torch.float32) + 1) / R - 1
gy, gx = torch.meshgrid(centres, centres, indexing="ij")
texel_grid = torch.stack([gx, gy], -1).unsqueeze(0).expand(3, -1, -1, -1)
with torch.no_grad():
    resampled = F.grid_sample(model.planes, texel_grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)
texel_err = (resampled - model.planes).abs().max().item()
assert texel_err < 1e-5, texel_err

# the projection: bmm through the inverted axes against an einsum edition
probe = torch.rand(2, 50, 3) * 2 - 1
proj_bmm = project_onto_planes(model.plane_axes, probe).reshape(2, 3, 50, 2)
proj_einsum = torch.einsum("nmi,pij->npmj", probe, model.plane_axes.transpose(1, 2))[..., :2]
proj_err = (proj_bmm - proj_einsum).abs().max().item()
assert torch.equal(proj_bmm[:, 0], probe[..., :2]) and torch.equal(proj_bmm[:, 2], probe[..., [2, 1]])
print(f"texel-centre resample err {texel_err:.1e}, projection err {proj_err:.1e}")


def tv_loss(planes):
    dh = planes[..., 1:, :] - planes[..., :-1, :]
    dw = planes[..., :, 1:] - planes[..., :, :-1]
    return dh.pow(2).mean() + dw.pow(2).mean()


def psnr_of(view):
    with torch.no_grad():
        pred = render(model, *rays[view], jitter=False)[0]
    mse = F.mse_loss(pred, images[view])
    return (-10.0 * torch.log10(mse)).item()


psnr_start = psnr_of(val_view)
optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
all_o = torch.cat([rays[v][0] for v in train_views], 1)
all_d = torch.cat([rays[v][1] for v in train_views], 1)
all_rgb = torch.cat([images[v] for v in train_views], 1)
n_rays, batch_rays, n_steps = all_o.shape[1], 384, 150
weight_max = 0.0
for step in range(n_steps):
    idx = torch.randint(0, n_rays, (batch_rays,))
    rgb, depth, weights = render(model, all_o[:, idx], all_d[:, idx])
    weight_max = max(weight_max, weights.sum(2).max().item())
    mse = F.mse_loss(rgb, all_rgb[:, idx])
    loss = mse + 1e-2 * tv_loss(model.planes)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0 or step == n_steps - 1:
        print(f"step {step:3d} loss {loss.item():.5f} psnr {-10 * math.log10(mse.item()):.2f} "
              f"depth {depth.mean().item():.3f}")

psnr_end = psnr_of(val_view)
weight_excess = max(weight_max - 1.0, 0.0)
assert weight_max <= 1.0 + 1e-5, weight_max
print(f"val psnr: start {psnr_start:.2f} end {psnr_end:.2f}; max weight sum {weight_max:.4f}")
print(f"FINAL psnr={psnr_end:.3f} psnr_gain={psnr_end - psnr_start:.3f} texel_err={texel_err:.2e} "
      f"proj_err={proj_err:.2e} weight_excess={weight_excess:.2e}")
