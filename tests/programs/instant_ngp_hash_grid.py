"""Instant-NGP's multiresolution hash encoding, as the pure-PyTorch ports write it, fitting a 2-D image.

The ``HashEmbedder`` of yashbhalgat/HashNeRF-pytorch cut down to two dimensions: the growth
factor ``b = torch.exp((torch.log(finest) - torch.log(base)) / (n_levels - 1))`` and per-level
resolutions ``torch.floor(self.base_resolution * self.b ** i)``, ``BOX_OFFSETS`` from
``torch.tensor([[[i, j] for i in [0, 1] for j in [0, 1]]])``, ``get_voxel_vertices`` with
``keep_mask = xyz == torch.max(torch.min(xyz, box_max), box_min)``, ``torch.clamp`` and
``torch.floor(...).int()`` corners, the spatial hash of the paper (``xor_result ^= coords[..., i] *
primes[i]`` on int32 corners, where the large primes wrap) and the int64 form
(``(coords * primes)`` reduced by ``torch.bitwise_xor``, ``% table_size``) checked to pick the same
slots, plus a 64-bit multiplicative hash whose products overflow int64; one ``nn.Embedding`` per
level initialised by ``nn.init.uniform_(..., a=-0.0001, b=0.0001)``, bilinear weights from
``x - floor(x)``, the levels ``torch.cat`` into a tiny ReLU MLP, Adam with ``betas=(0.9, 0.99),
eps=1e-15`` and the embeddings' own parameter group, MSE and PSNR by ``-10 * torch.log10(mse)``.
The image: smooth colour waves plus a disc and a stripe band, 32x32 from NumPy.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

H = W = 32
yy, xx = np.meshgrid(np.linspace(0, 1, H), np.linspace(0, 1, W), indexing="ij")
phase = rng.uniform(0, 2 * np.pi, size=3)
freq = rng.uniform(2.0, 5.0, size=3)
image = np.stack([0.5 + 0.35 * np.sin(freq[c] * np.pi * (xx + 0.6 * yy) + phase[c]) for c in range(3)], axis=-1)
centre = rng.uniform(0.3, 0.7, size=2)
disc = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 < 0.04
image[disc] = rng.uniform(0.0, 1.0, size=3)
image[(yy > 0.8) & ((xx * 16).astype(int) % 2 == 0)] = 0.05
image = np.clip(image, 0.0, 1.0).astype(np.float32)

coords = torch.from_numpy(np.stack([xx, yy], axis=-1).reshape(-1, 2).astype(np.float32))
pixels = torch.from_numpy(image.reshape(-1, 3))

BOX_OFFSETS = torch.tensor([[[i, j] for i in [0, 1] for j in [0, 1]]])
PRIMES = [1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737]


def hash(coords, log2_hashmap_size):
    """coords: this function can process up to 7 dim coordinates; log2T: logarithm of T w.r.t 2"""
    xor_result = torch.zeros_like(coords)[..., 0]
    for i in range(coords.shape[-1]):
        xor_result ^= coords[..., i] * PRIMES[i]

    return torch.tensor((1 << log2_hashmap_size) - 1).to(xor_result.device) & xor_result


def hash_int64(coords, table_size):
    """The same hash on int64 corners, reduced with bitwise_xor and a modulo."""
    primes = torch.tensor(PRIMES[:coords.shape[-1]], dtype=torch.int64)
    products = coords.long() * primes
    result = products[..., 0]
    for i in range(1, products.shape[-1]):
        result = torch.bitwise_xor(result, products[..., i])
    return result % table_size


def get_voxel_vertices(xy, bounding_box, resolution, log2_hashmap_size):
    box_min, box_max = bounding_box

    keep_mask = xy == torch.max(torch.min(xy, box_max), box_min)
    if not torch.all(xy <= box_max) or not torch.all(xy >= box_min):
        xy = torch.clamp(xy, min=box_min, max=box_max)

    grid_size = (box_max - box_min) / resolution

    bottom_left_idx = torch.floor((xy - box_min) / grid_size).int()
    voxel_min_vertex = bottom_left_idx * grid_size + box_min
    voxel_max_vertex = voxel_min_vertex + torch.tensor([1.0, 1.0]) * grid_size

    voxel_indices = bottom_left_idx.unsqueeze(1) + BOX_OFFSETS
    hashed_voxel_indices = hash(voxel_indices, log2_hashmap_size)

    return voxel_min_vertex, voxel_max_vertex, voxel_indices, hashed_voxel_indices, keep_mask


class HashEmbedder(nn.Module):
    def __init__(self, bounding_box, n_levels=8, n_features_per_level=2,
                 log2_hashmap_size=9, base_resolution=4, finest_resolution=48):
        super().__init__()
        self.bounding_box = bounding_box
        self.n_levels = n_levels
        self.n_features_per_level = n_features_per_level
        self.log2_hashmap_size = log2_hashmap_size
        self.base_resolution = torch.tensor(base_resolution)
        self.finest_resolution = torch.tensor(finest_resolution)
        self.out_dim = self.n_levels * self.n_features_per_level

        self.b = torch.exp((torch.log(self.finest_resolution) - torch.log(self.base_resolution)) / (n_levels - 1))

        self.embeddings = nn.ModuleList([nn.Embedding(2 ** self.log2_hashmap_size,
                                                      self.n_features_per_level) for i in range(n_levels)])
        # custom uniform initialization
        for i in range(n_levels):
            nn.init.uniform_(self.embeddings[i].weight, a=-0.0001, b=0.0001)

    def bilinear_interp(self, x, voxel_min_vertex, voxel_max_vertex, voxel_embedds):
        """
        x: B x 2
        voxel_min_vertex: B x 2
        voxel_max_vertex: B x 2
        voxel_embedds: B x 4 x 2
        """
        weights = (x - voxel_min_vertex) / (voxel_max_vertex - voxel_min_vertex)  # B x 2

        # step 1: interpolate along the first axis, corners (0, j) with (1, j)
        c0 = voxel_embedds[:, 0] * (1 - weights[:, 0][:, None]) + voxel_embedds[:, 2] * weights[:, 0][:, None]
        c1 = voxel_embedds[:, 1] * (1 - weights[:, 0][:, None]) + voxel_embedds[:, 3] * weights[:, 0][:, None]

        # step 2: along the second axis
        c = c0 * (1 - weights[:, 1][:, None]) + c1 * weights[:, 1][:, None]

        return c

    def forward(self, x):
        # x is 2D point position: B x 2
        x_embedded_all = []
        for i in range(self.n_levels):
            resolution = torch.floor(self.base_resolution * self.b ** i)
            voxel_min_vertex, voxel_max_vertex, _, hashed_voxel_indices, keep_mask = get_voxel_vertices(
                x, self.bounding_box, resolution, self.log2_hashmap_size)

            voxel_embedds = self.embeddings[i](hashed_voxel_indices)

            x_embedded = self.bilinear_interp(x, voxel_min_vertex, voxel_max_vertex, voxel_embedds)
            x_embedded_all.append(x_embedded)

        keep_mask = keep_mask.sum(dim=-1) == keep_mask.shape[-1]
        return torch.cat(x_embedded_all, dim=-1), keep_mask


def interp_by_fraction(embedding, x, resolution, table_size):
    """The other ports' form: scale, floor, fraction ``x - floor(x)``, corner weights by product."""
    scaled = x * resolution
    floor = torch.floor(scaled)
    frac = scaled - floor
    corners = floor.long().unsqueeze(1) + BOX_OFFSETS  # B x 4 x 2
    idx = hash_int64(corners, table_size)
    offsets = BOX_OFFSETS[0].to(x.dtype)  # 4 x 2
    w = torch.where(offsets.bool(), frac.unsqueeze(1), 1 - frac.unsqueeze(1)).prod(dim=-1)  # B x 4
    return (embedding(idx) * w.unsqueeze(-1)).sum(dim=1)


class NGPImage(nn.Module):
    def __init__(self, bounding_box, hidden=32):
        super().__init__()
        self.encoder = HashEmbedder(bounding_box)
        self.mlp = nn.Sequential(
            nn.Linear(self.encoder.out_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 3),
        )

    def forward(self, x):
        features, keep_mask = self.encoder(x)
        return torch.sigmoid(self.mlp(features)), keep_mask


bounding_box = (torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0]))
model = NGPImage(bounding_box)
levels = [int(torch.floor(model.encoder.base_resolution * model.encoder.b ** i)) for i in range(model.encoder.n_levels)]
print(f"levels {model.encoder.n_levels}, resolutions {levels[0]}..{levels[-1]}, table {2 ** model.encoder.log2_hashmap_size} "
      f"x {model.encoder.n_features_per_level}, encoding dim {model.encoder.out_dim}")

# the int32 hash (whose large primes wrap) and the int64 bitwise_xor + modulo form pick the same slots
table_size = 2 ** model.encoder.log2_hashmap_size
agree = 0
total = 0
for res in levels:
    _, _, voxel_indices, hashed, _ = get_voxel_vertices(coords, bounding_box, torch.tensor(float(res)), 9)
    agree += int((hash_int64(voxel_indices, table_size) == hashed.long()).sum())
    total += hashed.numel()
# a 64-bit multiplicative hash: the products overflow int64 and wrap; % keeps the result non-negative
finest_corners = (torch.floor(coords * levels[-1]).long().unsqueeze(1) + BOX_OFFSETS).reshape(-1, 2)
mixed = torch.bitwise_xor(finest_corners[:, 0] * -7046029254386353131, finest_corners[:, 1] * 0x5851F42D4C957F2D)
slots = mixed % table_size
occupancy = torch.bincount(slots, minlength=table_size)
print(f"hash forms agree on {agree} of {total} corners; wrapped hash fills {int((occupancy > 0).sum())} "
      f"of {table_size} slots, min {int(slots.min())}")

# bilinear weights from x - floor(x) give the encoder's own interpolation at every level
with torch.no_grad():
    enc, keep = model.encoder(coords)
    by_fraction = torch.cat([interp_by_fraction(model.encoder.embeddings[i], coords, float(r), table_size)
                             for i, r in enumerate(levels)], dim=-1)
    interp_diff = (enc - by_fraction).abs().max().item()
print(f"interpolation forms agree: {interp_diff < 1e-6}, kept {int(keep.sum())} of {keep.numel()} points")

optimizer = torch.optim.Adam([
    {"params": model.encoder.parameters(), "lr": 1e-2},
    {"params": model.mlp.parameters(), "lr": 1e-2, "weight_decay": 1e-6},
], betas=(0.9, 0.99), eps=1e-15)

STEPS = 150
BATCH = 256
for step in range(1, STEPS + 1):
    idx = torch.randint(0, coords.shape[0], (BATCH,))
    pred, _ = model(coords[idx])
    loss = F.mse_loss(pred, pixels[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        psnr = -10 * torch.log10(loss.detach())
        print(f"step {step}: loss {loss.item():.5f} psnr {psnr.item():.2f}")

with torch.no_grad():
    full, _ = model(coords)
    mse = F.mse_loss(full, pixels)
    psnr = -10.0 * torch.log10(mse)
    baseline = F.mse_loss(pixels.mean(0, keepdim=True).expand_as(pixels), pixels)
    table_norm = torch.stack([e.weight.norm() for e in model.encoder.embeddings]).sum()

print(f"FINAL mse={mse.item():.5f} psnr={psnr.item():.3f} baseline_psnr={(-10 * torch.log10(baseline)).item():.3f} "
      f"table_norm={table_norm.item():.4f}")
