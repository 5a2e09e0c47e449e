"""Point Transformer (Zhao et al., ICCV 2021) as its PyTorch ports write it (POSTECH-CVLab/point-transformer's
layer layout, lucidrains/point-transformer-pytorch's vector attention, the pointnet2 utilities for sampling
and gathering), classifying small synthetic point clouds.

Each cloud has 64 points on one of three surfaces (sphere, cube, cylinder) with a random scale, a random
rotation about the vertical axis and jitter. Neighbourhoods are the k nearest points by ``torch.cdist`` +
``topk(k, dim=-1, largest=False)``; neighbour features are gathered by DGCNN's index arithmetic
(``idx + torch.arange(B).view(-1, 1, 1) * N`` into ``x.reshape(B * N, C)[idx]``), which must equal
pointnet2's ``index_points`` (``points[batch_indices, idx, :]`` with ``view``/``repeat``-ed batch indices)
and a per-cloud loop. The layer is the paper's: ``to_qkv(x).chunk(3, dim=-1)``, a position encoding MLP on
relative coordinates ``pos[:, :, None] - pos_j``, vector attention ``softmax(gamma(phi(x_i) - psi(x_j) +
delta), dim=-2)`` per channel and aggregation ``(attn * (alpha(x_j) + delta)).sum(dim=2)``, inside a
residual block with ``nn.LayerNorm``. Transition down is farthest point sampling (the pointnet2 loop:
``torch.ones(B, N) * 1e10`` distances, ``distance[mask] = dist[mask]``, ``torch.max(distance, -1)[1]``)
from a ``torch.randint`` start, kNN grouping of the sampled centres and ``torch.max(..., dim=2)[0]`` pooling.
Training is Adam + ``CosineAnnealingLR`` on ``F.cross_entropy``.

Checked: the layer's output permutes with a permutation of the points, farthest point sampling picks the
same points from a permuted cloud started at the same point, the batched gather equals the loop and
``index_points``, the attention weights sum to one over the neighbours, and test accuracy rises from the
untrained model's.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_POINTS, K, DIM, N_CLASSES = 64, 8, 32, 3
N_TRAIN, N_TEST, BATCH, EPOCHS = 144, 60, 12, 12


# ----------------------------------------------------------------------------------- data
def make_cloud(label):
    u = rng.rand(N_POINTS, 2)
    if label == 0:  # sphere
        theta, z = 2 * math.pi * u[:, 0], 2 * u[:, 1] - 1
        r = np.sqrt(1 - z ** 2)
        pts = np.stack([r * np.cos(theta), r * np.sin(theta), z], 1)
    elif label == 1:  # cube surface
        pts = rng.uniform(-1, 1, (N_POINTS, 3))
        face = rng.randint(0, 3, N_POINTS)
        pts[np.arange(N_POINTS), face] = np.sign(rng.rand(N_POINTS) - 0.5)
    else:  # cylinder side
        theta = 2 * math.pi * u[:, 0]
        pts = np.stack([np.cos(theta), np.sin(theta), 2 * u[:, 1] - 1], 1)
    a = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    pts = pts @ rot.T * rng.uniform(0.9, 1.1) + 0.02 * rng.randn(N_POINTS, 3)
    return pts.astype(np.float32)


labels_np = np.arange(N_TRAIN + N_TEST) % N_CLASSES
clouds = torch.from_numpy(np.stack([make_cloud(c) for c in labels_np]))
labels = torch.from_numpy(labels_np.astype(np.int64))
train_pos, test_pos = clouds[:N_TRAIN], clouds[N_TRAIN:]
train_y, test_y = labels[:N_TRAIN], labels[N_TRAIN:]
print(f"data: {N_TRAIN} train / {N_TEST} test clouds of {N_POINTS} points, {N_CLASSES} classes")


# ----------------------------------------------------------------------------------- pointnet2 / dgcnn utils
def knn(pos_query, pos, k):
    dist = torch.cdist(pos_query, pos)
    return dist.topk(k, dim=-1, largest=False)[1]  # (B, M, k)


def gather_neighbours(x, idx):
    # DGCNN's get_graph_feature: flat index arithmetic
    B, N, C = x.shape
    idx_base = torch.arange(0, B).view(-1, 1, 1) * N
    flat = (idx + idx_base).view(-1)
    out = x.reshape(B * N, C)[flat, :]
    return out.view(*idx.shape, C)


def index_points(points, idx):
    device = points.device
    B = points.shape[0]
    view_shape = list(idx.shape)
    view_shape[1:] = [1] * (len(view_shape) - 1)
    repeat_shape = list(idx.shape)
    repeat_shape[0] = 1
    batch_indices = torch.arange(B, dtype=torch.long).to(device).view(view_shape).repeat(repeat_shape)
    new_points = points[batch_indices, idx, :]
    return new_points


def farthest_point_sample(xyz, npoint, farthest=None):
    device = xyz.device
    B, N, C = xyz.shape
    centroids = torch.zeros(B, npoint, dtype=torch.long).to(device)
    distance = torch.ones(B, N).to(device) * 1e10
    if farthest is None:
        farthest = torch.randint(0, N, (B,), dtype=torch.long).to(device)
    batch_indices = torch.arange(B, dtype=torch.long).to(device)
    for i in range(npoint):
        centroids[:, i] = farthest
        centroid = xyz[batch_indices, farthest, :].view(B, 1, 3)
        dist = torch.sum((xyz - centroid) ** 2, -1)
        mask = dist < distance
        distance[mask] = dist[mask]
        farthest = torch.max(distance, -1)[1]
    return centroids


# ----------------------------------------------------------------------------------- model
class PointTransformerLayer(nn.Module):
    def __init__(self, dim, pos_mlp_hidden_dim=16, attn_mlp_hidden_mult=2, num_neighbors=K):
        super().__init__()
        self.num_neighbors = num_neighbors
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.pos_mlp = nn.Sequential(nn.Linear(3, pos_mlp_hidden_dim), nn.ReLU(), nn.Linear(pos_mlp_hidden_dim, dim))
        self.attn_mlp = nn.Sequential(nn.Linear(dim, dim * attn_mlp_hidden_mult), nn.ReLU(),
                                      nn.Linear(dim * attn_mlp_hidden_mult, dim))
        self.last_attn = None

    def forward(self, x, pos):
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        idx = knn(pos, pos, self.num_neighbors)
        rel_pos = pos[:, :, None, :] - gather_neighbours(pos, idx)
        rel_pos_emb = self.pos_mlp(rel_pos)
        qk_rel = q[:, :, None, :] - gather_neighbours(k, idx)
        v = gather_neighbours(v, idx) + rel_pos_emb
        sim = self.attn_mlp(qk_rel + rel_pos_emb)
        attn = sim.softmax(dim=-2)
        self.last_attn = attn
        return (attn * v).sum(dim=2)


class PointTransformerBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.linear1 = nn.Linear(dim, dim)
        self.transformer = PointTransformerLayer(dim)
        self.linear2 = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, pos):
        identity = x
        x = F.relu(self.linear1(x))
        x = self.transformer(x, pos)
        x = self.linear2(x)
        return self.norm(F.relu(x + identity))


class TransitionDown(nn.Module):
    def __init__(self, in_dim, out_dim, npoint, k=K):
        super().__init__()
        self.npoint, self.k = npoint, k
        self.mlp = nn.Sequential(nn.Linear(in_dim + 3, out_dim), nn.LayerNorm(out_dim), nn.ReLU())

    def forward(self, x, pos):
        fps_idx = farthest_point_sample(pos, self.npoint)
        new_pos = index_points(pos, fps_idx)
        idx = knn(new_pos, pos, self.k)
        grouped_pos = index_points(pos, idx) - new_pos[:, :, None, :]
        grouped = torch.cat([grouped_pos, index_points(x, idx)], dim=-1)
        new_x = torch.max(self.mlp(grouped), dim=2)[0]
        return new_x, new_pos


class PointTransformerCls(nn.Module):
    def __init__(self, dim=DIM, num_classes=N_CLASSES):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(3, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.block1 = PointTransformerBlock(dim)
        self.down = TransitionDown(dim, dim, N_POINTS // 4)
        self.block2 = PointTransformerBlock(dim)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, num_classes))

    def forward(self, pos):
        x = self.embed(pos)
        x = self.block1(x, pos)
        x, pos = self.down(x, pos)
        x = self.block2(x, pos)
        return self.head(x.mean(dim=1))


@torch.no_grad()
def evaluate(model, pos, y):
    model.eval()
    return (model(pos).argmax(-1) == y).float().mean().item()


model = PointTransformerCls()
acc_before = evaluate(model, test_pos, test_y)
print(f"untrained test accuracy {acc_before:.4f}")

# ----------------------------------------------------------------------------------- checks
with torch.no_grad():
    pos = test_pos[:4]
    x = model.embed(pos)
    idx = knn(pos, pos, K)
    batched = gather_neighbours(x, idx)
    loop = torch.stack([x[b][idx[b]] for b in range(pos.shape[0])])
    gather_ok = torch.equal(batched, loop) and torch.equal(batched, index_points(x, idx))
    self_first = bool((idx[..., 0] == torch.arange(N_POINTS)).all())

    layer = model.block1.transformer
    perm = torch.randperm(N_POINTS)
    out = layer(x, pos)
    attn_sum_err = (layer.last_attn.sum(dim=2) - 1).abs().max().item()
    out_perm = layer(x[:, perm], pos[:, perm])
    perm_err = (out_perm - out[:, perm]).abs().max().item()

    start = torch.randint(0, N_POINTS, (pos.shape[0],))
    inv = torch.argsort(perm)
    fps_a = farthest_point_sample(pos, 16, farthest=start)
    fps_b = farthest_point_sample(pos[:, perm], 16, farthest=inv[start])
    fps_ok = torch.equal(perm[fps_b], fps_a)
print(f"kNN: self first {self_first}; batched gather == loop == index_points: {gather_ok}")
print(f"vector attention: weights sum to one (max err {attn_sum_err:.1e}); permuted points max diff {perm_err:.1e}")
print(f"farthest point sampling on the permuted cloud picks the same points: {fps_ok}")

# ----------------------------------------------------------------------------------- training
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(N_TRAIN)
    total, correct, loss_sum = 0, 0, 0.0
    for start_i in range(0, N_TRAIN, BATCH):
        batch_idx = order[start_i:start_i + BATCH]
        pos, y = train_pos[batch_idx], train_y[batch_idx]
        logits = model(pos)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * y.size(0)
        correct += (logits.argmax(-1) == y).sum().item()
        total += y.size(0)
    scheduler.step()
    if (epoch + 1) % 3 == 0:
        print(f"epoch {epoch + 1}: loss {loss_sum / total:.4f} train acc {correct / total:.4f} "
              f"lr {scheduler.get_last_lr()[0]:.5f}")

test_acc = evaluate(model, test_pos, test_y)
checks = int(gather_ok and self_first and attn_sum_err < 1e-5 and perm_err < 1e-5 and fps_ok)
print(f"FINAL acc_before={acc_before:.4f} test_acc={test_acc:.4f} gain={test_acc - acc_before:.4f} "
      f"train_loss={loss_sum / total:.4f} checks_ok={checks}")
