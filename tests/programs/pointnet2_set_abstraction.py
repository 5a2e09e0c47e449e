"""PointNet++ (Qi et al. 2017) classification in the layout of yanx27/Pointnet_Pointnet2_pytorch,
on synthetic point clouds of four shape classes.

``pointnet2_utils`` as the repository writes it: ``square_distance`` by ``-2 * torch.matmul(src,
dst.permute(0, 2, 1))`` plus the sums of squares ``view``-ed to broadcast, ``farthest_point_sample``
with a ``torch.randint`` start, a Python loop of ``distance[mask] = dist[mask]`` and
``torch.max(distance, -1)[1]``, ``index_points`` by ``torch.arange(B).view(view_shape).repeat(
repeat_shape)`` advanced indexing, ``query_ball_point`` (``group_idx[sqrdists > radius ** 2] = N``,
``.sort(dim=-1)[0][:, :, :nsample]``, the first index filled in for missing neighbours), a
multi-scale-grouping set abstraction and a single-scale one, both with shared MLPs as
``nn.Conv2d(1x1)`` + ``nn.BatchNorm2d`` on ``permute(0, 3, 2, 1)`` and ``torch.max(new_points,
2)[0]``, the ``group_all`` layer, the classifier head with ``BatchNorm1d`` + ``Dropout(0.4)``,
``F.log_softmax`` + ``F.nll_loss``, ``classifier.apply(inplace_relu)``, Adam with weight decay and
``StepLR``. Augmentation by random rotation about the up axis (``torch.bmm`` with matrices from
``torch.cos``/``torch.sin``), random scaling and shifts, and jitter ``torch.clamp(sigma *
torch.randn(...), -clip, clip)``; ``pred.data.max(1)[1]``, ``eq(...).cpu().sum()``; evaluation under
``model.eval()`` and ``torch.no_grad()`` with a vote pool over rotated copies.

Checked: test accuracy (with and without votes), and farthest point sampling's coverage: its
covering radius (the largest distance from a point to its nearest centroid) against random
sampling's, and the property that holds for FPS, no two centroids closer than that radius.
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

NUM_POINT, NUM_CLASS = 128, 4
CLASSES = ["sphere", "cube", "cylinder", "torus"]


def pc_normalize(pc):
    centroid = np.mean(pc, axis=0)
    pc = pc - centroid
    m = np.max(np.sqrt(np.sum(pc ** 2, axis=1)))
    return pc / m


def make_shape(label, n):
    if label == 0:  # sphere
        p = rng.standard_normal((n, 3))
        p /= np.linalg.norm(p, axis=1, keepdims=True)
    elif label == 1:  # cube surface
        p = rng.uniform(-1, 1, (n, 3))
        face = rng.integers(0, 3, n)
        p[np.arange(n), face] = rng.choice([-1.0, 1.0], n)
    elif label == 2:  # cylinder side and caps
        theta = rng.uniform(0, 2 * np.pi, n)
        z = rng.uniform(-1, 1, n)
        r = np.where(rng.random(n) < 0.8, 1.0, np.sqrt(rng.random(n)))
        z = np.where(r < 1.0, rng.choice([-1.0, 1.0], n), z)
        p = np.stack([r * np.cos(theta), z, r * np.sin(theta)], axis=1)  # upright: its axis is y
    else:  # torus
        u, v = rng.uniform(0, 2 * np.pi, (2, n))
        p = np.stack([(1 + 0.4 * np.cos(v)) * np.cos(u), 0.4 * np.sin(v), (1 + 0.4 * np.cos(v)) * np.sin(u)], axis=1)
    p = p * rng.uniform(0.9, 1.1, 3)  # anisotropic stretch
    return pc_normalize(p + 0.01 * rng.standard_normal(p.shape)).astype(np.float32)


def make_set(count):
    labels = rng.integers(0, NUM_CLASS, count)
    points = np.stack([make_shape(int(c), NUM_POINT) for c in labels])
    return torch.from_numpy(points), torch.from_numpy(labels)


train_points, train_labels = make_set(192)
test_points, test_labels = make_set(96)
print(f"train {tuple(train_points.shape)} test {tuple(test_points.shape)} classes {NUM_CLASS}")


def square_distance(src, dst):
    B, N, _ = src.shape
    _, M, _ = dst.shape
    dist = -2 * torch.matmul(src, dst.permute(0, 2, 1))
    dist += torch.sum(src ** 2, -1).view(B, N, 1)
    dist += torch.sum(dst ** 2, -1).view(B, 1, M)
    return dist


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


def farthest_point_sample(xyz, npoint):
    device = xyz.device
    B, N, C = xyz.shape
    centroids = torch.zeros(B, npoint, dtype=torch.long).to(device)
    distance = torch.ones(B, N).to(device) * 1e10
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


def query_ball_point(radius, nsample, xyz, new_xyz):
    device = xyz.device
    B, N, C = xyz.shape
    _, S, _ = new_xyz.shape
    group_idx = torch.arange(N, dtype=torch.long).to(device).view(1, 1, N).repeat([B, S, 1])
    sqrdists = square_distance(new_xyz, xyz)
    group_idx[sqrdists > radius ** 2] = N
    group_idx = group_idx.sort(dim=-1)[0][:, :, :nsample]
    group_first = group_idx[:, :, 0].view(B, S, 1).repeat([1, 1, nsample])
    mask = group_idx == N
    group_idx[mask] = group_first[mask]
    return group_idx


def sample_and_group(npoint, radius, nsample, xyz, points):
    B, N, C = xyz.shape
    S = npoint
    fps_idx = farthest_point_sample(xyz, npoint)  # [B, npoint]
    new_xyz = index_points(xyz, fps_idx)
    idx = query_ball_point(radius, nsample, xyz, new_xyz)
    grouped_xyz = index_points(xyz, idx)  # [B, npoint, nsample, C]
    grouped_xyz_norm = grouped_xyz - new_xyz.view(B, S, 1, C)
    if points is not None:
        grouped_points = index_points(points, idx)
        new_points = torch.cat([grouped_xyz_norm, grouped_points], dim=-1)  # [B, npoint, nsample, C+D]
    else:
        new_points = grouped_xyz_norm
    return new_xyz, new_points


def sample_and_group_all(xyz, points):
    device = xyz.device
    B, N, C = xyz.shape
    new_xyz = torch.zeros(B, 1, C).to(device)
    grouped_xyz = xyz.view(B, 1, N, C)
    if points is not None:
        new_points = torch.cat([grouped_xyz, points.view(B, 1, N, -1)], dim=-1)
    else:
        new_points = grouped_xyz
    return new_xyz, new_points


class PointNetSetAbstraction(nn.Module):
    def __init__(self, npoint, radius, nsample, in_channel, mlp, group_all):
        super().__init__()
        self.npoint = npoint
        self.radius = radius
        self.nsample = nsample
        self.mlp_convs = nn.ModuleList()
        self.mlp_bns = nn.ModuleList()
        last_channel = in_channel
        for out_channel in mlp:
            self.mlp_convs.append(nn.Conv2d(last_channel, out_channel, 1))
            self.mlp_bns.append(nn.BatchNorm2d(out_channel))
            last_channel = out_channel
        self.group_all = group_all

    def forward(self, xyz, points):
        xyz = xyz.permute(0, 2, 1)
        if points is not None:
            points = points.permute(0, 2, 1)
        if self.group_all:
            new_xyz, new_points = sample_and_group_all(xyz, points)
        else:
            new_xyz, new_points = sample_and_group(self.npoint, self.radius, self.nsample, xyz, points)
        new_points = new_points.permute(0, 3, 2, 1)  # [B, C+D, nsample, npoint]
        for i, conv in enumerate(self.mlp_convs):
            bn = self.mlp_bns[i]
            new_points = F.relu(bn(conv(new_points)))
        new_points = torch.max(new_points, 2)[0]
        new_xyz = new_xyz.permute(0, 2, 1)
        return new_xyz, new_points


class PointNetSetAbstractionMsg(nn.Module):
    def __init__(self, npoint, radius_list, nsample_list, in_channel, mlp_list):
        super().__init__()
        self.npoint = npoint
        self.radius_list = radius_list
        self.nsample_list = nsample_list
        self.conv_blocks = nn.ModuleList()
        self.bn_blocks = nn.ModuleList()
        for i in range(len(mlp_list)):
            convs = nn.ModuleList()
            bns = nn.ModuleList()
            last_channel = in_channel + 3
            for out_channel in mlp_list[i]:
                convs.append(nn.Conv2d(last_channel, out_channel, 1))
                bns.append(nn.BatchNorm2d(out_channel))
                last_channel = out_channel
            self.conv_blocks.append(convs)
            self.bn_blocks.append(bns)

    def forward(self, xyz, points):
        xyz = xyz.permute(0, 2, 1)
        if points is not None:
            points = points.permute(0, 2, 1)
        B, N, C = xyz.shape
        S = self.npoint
        new_xyz = index_points(xyz, farthest_point_sample(xyz, S))
        new_points_list = []
        for i, radius in enumerate(self.radius_list):
            K = self.nsample_list[i]
            group_idx = query_ball_point(radius, K, xyz, new_xyz)
            grouped_xyz = index_points(xyz, group_idx)
            grouped_xyz -= new_xyz.view(B, S, 1, C)
            if points is not None:
                grouped_points = index_points(points, group_idx)
                grouped_points = torch.cat([grouped_points, grouped_xyz], dim=-1)
            else:
                grouped_points = grouped_xyz
            grouped_points = grouped_points.permute(0, 3, 2, 1)  # [B, D, K, S]
            for j in range(len(self.conv_blocks[i])):
                conv = self.conv_blocks[i][j]
                bn = self.bn_blocks[i][j]
                grouped_points = F.relu(bn(conv(grouped_points)))
            new_points = torch.max(grouped_points, 2)[0]  # [B, D', S]
            new_points_list.append(new_points)
        new_xyz = new_xyz.permute(0, 2, 1)
        new_points_concat = torch.cat(new_points_list, dim=1)
        return new_xyz, new_points_concat


class get_model(nn.Module):
    def __init__(self, num_class, normal_channel=False):
        super().__init__()
        in_channel = 3 if normal_channel else 0
        self.normal_channel = normal_channel
        self.sa1 = PointNetSetAbstractionMsg(32, [0.25, 0.5], [8, 16], in_channel, [[16, 16, 32], [16, 24, 32]])
        self.sa2 = PointNetSetAbstraction(8, 0.7, 16, 64 + 3, [64, 64], group_all=False)
        self.sa3 = PointNetSetAbstraction(None, None, None, 64 + 3, [64, 128], group_all=True)
        self.fc1 = nn.Linear(128, 128)
        self.bn1 = nn.BatchNorm1d(128)
        self.drop1 = nn.Dropout(0.4)
        self.fc2 = nn.Linear(128, 96)
        self.bn2 = nn.BatchNorm1d(96)
        self.drop2 = nn.Dropout(0.4)
        self.fc3 = nn.Linear(96, num_class)

    def forward(self, xyz):
        B, _, _ = xyz.shape
        if self.normal_channel:
            norm = xyz[:, 3:, :]
            xyz = xyz[:, :3, :]
        else:
            norm = None
        l1_xyz, l1_points = self.sa1(xyz, norm)
        l2_xyz, l2_points = self.sa2(l1_xyz, l1_points)
        l3_xyz, l3_points = self.sa3(l2_xyz, l2_points)
        x = l3_points.view(B, 128)
        x = self.drop1(F.relu(self.bn1(self.fc1(x))))
        x = self.drop2(F.relu(self.bn2(self.fc2(x))))
        x = self.fc3(x)
        x = F.log_softmax(x, -1)
        return x, l3_points


class get_loss(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, pred, target, trans_feat):
        total_loss = F.nll_loss(pred, target)
        return total_loss


def inplace_relu(m):
    classname = m.__class__.__name__
    if classname.find('ReLU') != -1:
        m.inplace = True


def rotate(points, angles):
    """Rotate (B, N, 3) clouds about the up axis by one angle each."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros, ones = torch.zeros_like(angles), torch.ones_like(angles)
    rotation = torch.stack([torch.stack([cos, zeros, sin], -1),
                            torch.stack([zeros, ones, zeros], -1),
                            torch.stack([-sin, zeros, cos], -1)], dim=1)  # (B, 3, 3)
    return torch.bmm(points, rotation)


def augment(points, sigma=0.01, clip=0.05):
    B = points.size(0)
    points = rotate(points, torch.rand(B) * 2 * math.pi)
    scales = torch.empty(B, 1, 1).uniform_(0.8, 1.25)
    shifts = torch.empty(B, 1, 3).uniform_(-0.1, 0.1)
    jitter = torch.clamp(sigma * torch.randn(points.shape), -1 * clip, clip)
    return points * scales + shifts + jitter


# farthest point sampling covers the cloud: against random subsets of the same size
with torch.no_grad():
    clouds = test_points[:32]
    fps_idx = farthest_point_sample(clouds, 16)
    fps_centroids = index_points(clouds, fps_idx)
    random_idx = torch.stack([torch.randperm(NUM_POINT)[:16] for _ in range(clouds.size(0))])
    random_centroids = index_points(clouds, random_idx)
    fps_cover = square_distance(clouds, fps_centroids).min(dim=-1)[0].clamp_min(0).sqrt().max(dim=-1)[0]
    random_cover = square_distance(clouds, random_centroids).min(dim=-1)[0].clamp_min(0).sqrt().max(dim=-1)[0]
    pairwise = square_distance(fps_centroids, fps_centroids).clamp_min(0).sqrt()
    pairwise = pairwise + torch.eye(16).unsqueeze(0) * 1e10
    fps_separated = bool((pairwise.flatten(1).min(dim=1)[0] >= fps_cover - 1e-5).all())
    cover_ratio = (fps_cover / random_cover).max().item()
    distinct = all(len(set(row.tolist())) == 16 for row in fps_idx)
    group = query_ball_point(0.25, 8, clouds, fps_centroids)
print(f"FPS covering radius {fps_cover.mean().item():.3f} vs random {random_cover.mean().item():.3f}; "
      f"centroids distinct {distinct}, separated {fps_separated}; ball groups {tuple(group.shape)}")

classifier = get_model(NUM_CLASS, normal_channel=False)
criterion = get_loss()
classifier.apply(inplace_relu)
optimizer = torch.optim.Adam(classifier.parameters(), lr=0.003, betas=(0.9, 0.999), eps=1e-08, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
BATCH = 24


def test(model, points, labels, vote_num=1):
    mean_correct = []
    classifier = model.eval()
    with torch.no_grad():
        for start in range(0, points.size(0), 32):
            cloud, target = points[start:start + 32], labels[start:start + 32]
            vote_pool = torch.zeros(target.size()[0], NUM_CLASS)
            for v in range(vote_num):
                angles = torch.full((cloud.size(0),), 2 * math.pi * v / vote_num)
                pred, _ = classifier(rotate(cloud, angles).transpose(2, 1))
                vote_pool += pred
            pred = vote_pool / vote_num
            pred_choice = pred.data.max(1)[1]
            correct = pred_choice.eq(target.long().data).cpu().sum()
            mean_correct.append(correct.item())
    return sum(mean_correct) / float(points.size(0))


for epoch in range(1, 11):
    classifier = classifier.train()
    order = torch.randperm(train_points.size(0))
    mean_correct, losses = [], []
    for start in range(0, train_points.size(0), BATCH):
        idx = order[start:start + BATCH]
        points, target = augment(train_points[idx]), train_labels[idx]
        points = points.transpose(2, 1)
        optimizer.zero_grad()
        pred, trans_feat = classifier(points)
        loss = criterion(pred, target.long(), trans_feat)
        pred_choice = pred.data.max(1)[1]
        correct = pred_choice.eq(target.long().data).cpu().sum()
        mean_correct.append(correct.item() / float(points.size()[0]))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()
    if epoch % 2 == 0:
        print(f"Epoch {epoch} (10): loss {np.mean(losses):.4f} train instance accuracy {np.mean(mean_correct):.4f} "
              f"lr {optimizer.param_groups[0]['lr']:.6f}")

instance_acc = test(classifier, test_points, test_labels)
vote_acc = test(classifier, test_points, test_labels, vote_num=3)
print(f"Test Instance Accuracy: {instance_acc:.4f}, with 3 votes: {vote_acc:.4f}")
assert instance_acc > 1.5 / NUM_CLASS, "PointNet++ must learn the shapes"
print(f"FINAL test_acc={vote_acc:.4f} cover_ratio={cover_ratio:.4f} fps_ok={int(fps_separated and distinct)}")
