"""A differentiable 2-D soft rasteriser in the manner of SoftRas (Liu et al., 2019) and the
"differentiable rendering from scratch" tutorials: triangles as vertex tensors gathered by a fixed
face index, the signed distance of every pixel to every edge line at once (pixels x triangles x edges
by broadcasting, unit edge normals, the triangle's distance by ``torch.minimum`` of its three), soft
coverage ``torch.sigmoid(d / sigma)`` and the probabilistic union ``1 - torch.prod(1 - cov, dim=-1)``.
A fan-triangulated disc is deformed towards a trefoil silhouette by optimising per-vertex offsets (an
``nn.Parameter``) with a soft-IoU loss plus a Laplacian smoothness term (neighbour sums by
``index_add_`` over the edge list, checked against the adjacency-matrix route), ``Adam`` with a
``MultiStepLR``. The autograd gradient with respect to the offsets is checked against central finite
differences in float64 on a few coordinates.
"""

import math
import os

import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

H = W = 32


def pixel_centres(h, w):
    ys = torch.linspace(1 - 1 / h, -1 + 1 / h, h)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).view(-1, 2)


def fan_mesh(radii):
    n = radii.shape[0]
    theta = torch.arange(n, dtype=radii.dtype) * (2 * math.pi / n)
    ring = torch.stack([radii * torch.cos(theta), radii * torch.sin(theta)], dim=1)
    verts = torch.cat([torch.zeros(1, 2, dtype=radii.dtype), ring], dim=0)
    idx = torch.arange(1, n + 1)
    faces = torch.stack([torch.zeros_like(idx), idx, idx % n + 1], dim=1)  # counter-clockwise
    return verts, faces


def soft_rasterize(verts, faces, pixels, sigma):
    tri = verts[faces]                               # (F, 3, 2)
    edge = tri.roll(-1, dims=1) - tri                # edge k runs from vertex k to k + 1
    normal = torch.stack([edge[..., 1], -edge[..., 0]], dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True)  # outward for a counter-clockwise triangle
    rel = pixels[:, None, None, :] - tri[None]       # (P, F, 3, 2)
    inside = -(rel * normal[None]).sum(dim=-1)       # positive inside the edge's half-plane
    dist = torch.minimum(torch.minimum(inside[..., 0], inside[..., 1]), inside[..., 2])
    cov = torch.sigmoid(dist / sigma)
    return 1 - torch.prod(1 - cov, dim=-1)


def mesh_edges(faces):
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], dim=0)
    e = torch.sort(e, dim=1).values
    return torch.unique(e, dim=0)


def laplacian_index_add(verts, edges):
    src = torch.cat([edges[:, 0], edges[:, 1]])
    dst = torch.cat([edges[:, 1], edges[:, 0]])
    neighbour_sum = torch.zeros_like(verts).index_add_(0, src, verts[dst])
    degree = torch.zeros(verts.shape[0], dtype=verts.dtype).index_add_(0, src, torch.ones_like(src, dtype=verts.dtype))
    return verts - neighbour_sum / degree[:, None]


def laplacian_matrix(num_verts, edges):
    adj = torch.zeros(num_verts, num_verts)
    adj[edges[:, 0], edges[:, 1]] = 1.
    adj[edges[:, 1], edges[:, 0]] = 1.
    return torch.eye(num_verts) - adj / adj.sum(dim=1, keepdim=True)


def soft_iou_loss(pred, target):
    inter = (pred * target).sum()
    union = (pred + target - pred * target).sum()
    return 1 - inter / union


def hard_iou(pred, target):
    p, t = pred > 0.5, target > 0.5
    return ((p & t).sum() / (p | t).sum()).item()


class DeformableMesh(nn.Module):
    def __init__(self, verts, faces):
        super().__init__()
        self.register_buffer("base", verts)
        self.register_buffer("faces", faces)
        self.offsets = nn.Parameter(torch.zeros_like(verts))

    def forward(self):
        return self.base + self.offsets


pixels = pixel_centres(H, W)
n_target = 90
theta = torch.arange(n_target) * (2 * math.pi / n_target)
phase = torch.rand(1).item() * 2 * math.pi
target_verts, target_faces = fan_mesh(0.55 + 0.2 * torch.cos(3 * theta + phase))
with torch.no_grad():
    target = soft_rasterize(target_verts, target_faces, pixels, sigma=1e-3)
print(f"target: {n_target} triangles, {hard_iou(target, target):.1f} self-IoU, "
      f"coverage {(target > 0.5).float().mean().item():.4f}")

base_verts, faces = fan_mesh(torch.full((24,), 0.4))
mesh = DeformableMesh(base_verts + 0.02 * torch.randn_like(base_verts), faces)
edges = mesh_edges(faces)
lap_mat = laplacian_matrix(base_verts.shape[0], edges)
lap_err = (laplacian_index_add(mesh(), edges) - lap_mat @ mesh()).abs().max().item()
assert lap_err < 1e-5
print(f"mesh: {mesh.base.shape[0]} vertices, {faces.shape[0]} faces, {edges.shape[0]} edges, "
      f"laplacian routes agree to {lap_err:.1e}")

sigma, smooth_weight = 0.03, 0.05
optimizer = torch.optim.Adam(mesh.parameters(), lr=0.01)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[150, 250], gamma=0.3)
with torch.no_grad():
    iou_start = hard_iou(soft_rasterize(mesh(), faces, pixels, sigma), target)
for step in range(1, 301):
    verts = mesh()
    image = soft_rasterize(verts, faces, pixels, sigma)
    iou_loss = soft_iou_loss(image, target)
    smooth = laplacian_index_add(verts, edges).pow(2).sum(dim=1).mean()
    loss = iou_loss + smooth_weight * smooth
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    if step % 100 == 0:
        print(f"step {step}: soft IoU loss {iou_loss.item():.4f}, smoothness {smooth.item():.5f}, "
              f"hard IoU {hard_iou(image.detach(), target):.4f}, lr {scheduler.get_last_lr()[0]:.4f}")
iou_end = hard_iou(soft_rasterize(mesh(), faces, pixels, sigma).detach(), target)
smooth_end = smooth.item()
assert iou_end > iou_start and smooth_end < 0.3

# the gradient at the learned mesh against central differences, in float64
offsets = mesh.offsets.detach().double().requires_grad_(True)
base64, target64, pixels64, edges64 = mesh.base.double(), target.double(), pixels.double(), edges


def objective(off):
    v = base64 + off
    return soft_iou_loss(soft_rasterize(v, faces, pixels64, sigma), target64) + \
        smooth_weight * laplacian_index_add(v, edges64).pow(2).sum(dim=1).mean()


grad = torch.autograd.grad(objective(offsets), offsets)[0]
coords = torch.randperm(offsets.numel())[:6]
fd_err, eps = 0.0, 1e-6
with torch.no_grad():
    for c in coords.tolist():
        bump = torch.zeros_like(offsets).view(-1)
        bump[c] = eps
        bump = bump.view_as(offsets)
        fd = (objective(offsets + bump) - objective(offsets - bump)) / (2 * eps)
        fd_err = max(fd_err, abs(fd.item() - grad.view(-1)[c].item()) / (grad.abs().max().item() + 1e-12))
print(f"IoU {iou_start:.4f} -> {iou_end:.4f}; finite differences on {len(coords)} coordinates, "
      f"max relative error {fd_err:.1e}")
assert fd_err < 1e-4
print(f"FINAL iou={iou_end:.4f} iou_gain={iou_end - iou_start:.4f} smooth={smooth_end:.5f} fd_err={fd_err:.2e}")
