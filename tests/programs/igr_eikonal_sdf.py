"""Implicit Geometric Regularisation (Gropp et al. 2020, amosgropp/IGR) on a 2-D shape.

The shape is the union of a disc and a square; points on its boundary come with their outward
normals. The network is IGR's ``ImplicitNet``: ``nn.Linear`` layers with ``nn.Softplus(beta=100)``,
a skip connection ``torch.cat([x, input], -1) / np.sqrt(2)`` and the geometric initialisation
(hidden weights ``normal_(0.0, np.sqrt(2) / np.sqrt(out_dim))``, the last layer
``normal_(mean=np.sqrt(np.pi) / np.sqrt(dims[-2]), std=1e-5)`` with bias ``-radius_init``), so
that at step 0 the network is close to the signed distance of a circle. The loss is IGR's:
``|f|`` on the manifold points, the normals term ``(grad - normals).norm(2, dim=1)`` and the
eikonal term ``((grad.norm(dim=-1) - 1) ** 2).mean()`` on off-surface samples (Gaussians around
the surface whose width is the distance to the k-th neighbour, by ``torch.cdist`` + ``kthvalue``,
plus uniform points), the gradients taken by ``torch.autograd.grad(..., create_graph=True)``
so the loss is differentiated twice. Afterwards: the SDF error on a grid against the analytic
``min(disc, square)`` distance, the learned gradient's norm, and sphere tracing rays against the
learned SDF with ``torch.where`` masks (hit rate, and how close the hits are to the true surface).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.autograd import grad

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

DISC_CENTRE, DISC_RADIUS = np.array([-0.3, -0.05]), 0.35
BOX_CENTRE, BOX_HALF = np.array([0.25, 0.1]), np.array([0.3, 0.25])


def disc_sdf(p):
    return torch.linalg.norm(p - torch.tensor(DISC_CENTRE, dtype=p.dtype), dim=-1) - DISC_RADIUS


def box_sdf(p):
    q = (p - torch.tensor(BOX_CENTRE, dtype=p.dtype)).abs() - torch.tensor(BOX_HALF, dtype=p.dtype)
    outside = torch.linalg.norm(q.clamp(min=0), dim=-1)
    inside = torch.clamp(q.max(dim=-1).values, max=0)
    return outside + inside


def true_sdf(p):
    # the union's distance is the min outside; inside, min is the usual (exact enough) estimate
    return torch.minimum(disc_sdf(p), box_sdf(p))


def sample_surface(n):
    """Points on the union's boundary with outward normals, made with NumPy."""
    angles = rng.uniform(0, 2 * np.pi, size=n)
    disc_pts = DISC_CENTRE + DISC_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    disc_nrm = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    side = rng.integers(0, 4, size=n)
    u = rng.uniform(-1, 1, size=n)
    axis = side % 2
    sign = np.where(side < 2, 1.0, -1.0)
    box_pts = np.empty((n, 2))
    box_nrm = np.zeros((n, 2))
    box_pts[np.arange(n), axis] = sign * BOX_HALF[axis]
    box_pts[np.arange(n), 1 - axis] = u * BOX_HALF[1 - axis]
    box_nrm[np.arange(n), axis] = sign
    box_pts += BOX_CENTRE
    pts = torch.tensor(np.concatenate([disc_pts, box_pts]), dtype=torch.float32)
    nrm = torch.tensor(np.concatenate([disc_nrm, box_nrm]), dtype=torch.float32)
    # keep the parts of each boundary that lie outside the other shape
    keep = torch.cat([box_sdf(pts[:n]) > 1e-3, disc_sdf(pts[n:]) > 1e-3])
    return pts[keep], nrm[keep]


class ImplicitNet(nn.Module):
    def __init__(self, d_in, dims, skip_in=(), geometric_init=True, radius_init=1, beta=100):
        super().__init__()
        dims = [d_in] + dims + [1]
        self.num_layers = len(dims)
        self.skip_in = skip_in
        for layer in range(0, self.num_layers - 1):
            if layer + 1 in skip_in:
                out_dim = dims[layer + 1] - d_in
            else:
                out_dim = dims[layer + 1]
            lin = nn.Linear(dims[layer], out_dim)
            if geometric_init:
                if layer == self.num_layers - 2:
                    torch.nn.init.normal_(lin.weight, mean=np.sqrt(np.pi) / np.sqrt(dims[layer]), std=0.00001)
                    torch.nn.init.constant_(lin.bias, -radius_init)
                else:
                    torch.nn.init.constant_(lin.bias, 0.0)
                    torch.nn.init.normal_(lin.weight, 0.0, np.sqrt(2) / np.sqrt(out_dim))
            setattr(self, "lin" + str(layer), lin)
        if beta > 0:
            self.activation = nn.Softplus(beta=beta)
        else:
            self.activation = nn.ReLU()

    def forward(self, input):
        x = input
        for layer in range(0, self.num_layers - 1):
            lin = getattr(self, "lin" + str(layer))
            if layer in self.skip_in:
                x = torch.cat([x, input], -1) / np.sqrt(2)
            x = lin(x)
            if layer < self.num_layers - 2:
                x = self.activation(x)
        return x


def gradient(inputs, outputs):
    d_points = torch.ones_like(outputs, requires_grad=False, device=outputs.device)
    points_grad = grad(
        outputs=outputs,
        inputs=inputs,
        grad_outputs=d_points,
        create_graph=True,
        retain_graph=True,
        only_inputs=True,
    )[0][:, -2:]
    return points_grad


def local_sigmas(points, k=10):
    dists = torch.cdist(points, points)
    return dists.kthvalue(k + 1, dim=1).values


def sample_off_surface(points, sigmas, global_sigma=1.2):
    local = points + torch.randn_like(points) * sigmas.unsqueeze(-1)
    uniform = (torch.rand(points.size(0) // 4, 2) * 2 - 1) * global_sigma
    return torch.cat([local, uniform], dim=0)


surface, normals = sample_surface(300)
sigmas = local_sigmas(surface)
print(f"surface points {tuple(surface.shape)} normals unit {torch.allclose(normals.norm(dim=1), torch.ones(len(normals)))}")
print(f"true sdf on surface max {true_sdf(surface).abs().max().item():.2e} local sigma mean {sigmas.mean().item():.4f}")

net = ImplicitNet(d_in=2, dims=[64, 64, 64, 64], skip_in=(2,), radius_init=0.5)
print(net.activation, "layers", net.num_layers - 1)

xs = torch.linspace(-1, 1, 41)
grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), dim=-1).reshape(-1, 2)
grid_truth = true_sdf(grid)
with torch.no_grad():
    circle = grid.norm(dim=-1) - 0.5
    init_err = (net(grid).squeeze(-1) - circle).abs().max().item()
print(f"geometric init: max |f - (|x| - 0.5)| on the grid {init_err:.3f}")

optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=150, gamma=0.5)
grad_lambda, normals_lambda = 0.1, 1.0
BATCH = 128
STEPS = 300
for step in range(STEPS):
    idx = torch.randperm(surface.size(0))[:BATCH]
    mnfld_pnts = surface[idx].clone().requires_grad_(True)
    nonmnfld_pnts = sample_off_surface(surface[idx], sigmas[idx]).requires_grad_(True)

    mnfld_pred = net(mnfld_pnts)
    nonmnfld_pred = net(nonmnfld_pnts)
    mnfld_grad = gradient(mnfld_pnts, mnfld_pred)
    nonmnfld_grad = gradient(nonmnfld_pnts, nonmnfld_pred)

    mnfld_loss = (mnfld_pred.abs()).mean()
    grad_loss = ((nonmnfld_grad.norm(2, dim=-1) - 1) ** 2).mean()
    normals_loss = ((mnfld_grad - normals[idx]).abs()).norm(2, dim=1).mean()
    loss = mnfld_loss + grad_lambda * grad_loss + normals_lambda * normals_loss

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    if step % 60 == 0 or step == STEPS - 1:
        print(
            f"step {step:3d} loss {loss.item():.4f} mnfld {mnfld_loss.item():.4f} "
            f"eikonal {grad_loss.item():.4f} normals {normals_loss.item():.4f} lr {scheduler.get_last_lr()[0]:.5f}"
        )

# the SDF on a grid, and the eikonal property of the fit
grid_pts = grid.clone().requires_grad_(True)
pred = net(grid_pts)
grid_grad = gradient(grid_pts, pred)
pred = pred.detach().squeeze(-1)
near = grid_truth.abs() < 0.3
sdf_err = (pred - grid_truth).abs()[near].mean().item()
sign_acc = ((pred > 0) == (grid_truth > 0)).float().mean().item()
grad_norm_dev = (grid_grad.norm(dim=-1) - 1).abs()[near].mean().item()
print(f"grid {tuple(grid.shape)} near-surface points {int(near.sum())}")
print(f"sdf error near surface {sdf_err:.4f} sign accuracy {sign_acc:.4f} | |grad| - 1 | {grad_norm_dev:.4f}")


@torch.no_grad()
def sphere_trace(sdf, origins, dirs, max_steps=40, eps=2e-3, t_max=4.0):
    t = torch.zeros(origins.size(0))
    for _ in range(max_steps):
        p = origins + t.unsqueeze(-1) * dirs
        d = sdf(p)
        active = (d.abs() > eps) & (t < t_max)
        t = torch.where(active, t + d, t)
        if not active.any():
            break
    p = origins + t.unsqueeze(-1) * dirs
    hit = (sdf(p).abs() <= eps) & (t < t_max)
    return hit, t, p


n_rays = 96
theta = torch.linspace(0, 2 * math.pi, n_rays + 1)[:-1]
origins = 1.6 * torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)
aim = torch.randn(n_rays, 2) * 0.25
dirs = aim - origins
dirs = dirs / dirs.norm(dim=-1, keepdim=True)
hit, t_hit, p_hit = sphere_trace(lambda p: net(p).squeeze(-1), origins, dirs)
true_hit, true_t, _ = sphere_trace(true_sdf, origins, dirs)
hit_rate = hit.float().mean().item()
agree = (hit == true_hit).float().mean().item()
both = hit & true_hit
depth_err = (t_hit - true_t).abs()[both].mean().item() if both.any() else float("nan")
surf_err = true_sdf(p_hit[hit]).abs().mean().item()
print(f"rays {n_rays} hits {int(hit.sum())} true hits {int(true_hit.sum())}")
print(f"hit rate {hit_rate:.4f} agreement {agree:.4f} depth error {depth_err:.4f} |true sdf| at hits {surf_err:.4f}")

print(f"FINAL sdf_err={sdf_err:.4f} sign_acc={sign_acc:.4f} eikonal={grad_norm_dev:.4f} hit_rate={hit_rate:.4f} hit_agree={agree:.4f} surf_err={surf_err:.4f}")
