"""PointRend (Kirillov et al., CVPR 2020) in the layout of detectron2's projects/PointRend
(point_features.py, point_head.py, semantic_seg.py, mask_head.py) at tiny sizes, on synthetic
shape masks: binary segmentation of one disc or rectangle per noisy 32x32 image.

``point_sample`` goes through ``F.grid_sample(input, 2.0 * point_coords - 1.0, **kwargs)`` with the
``unsqueeze(2)``/``squeeze(3)`` of 3-d point sets; ``get_uncertain_point_coords_with_randomness``
oversamples ``torch.rand`` points, scores them by ``calculate_uncertainty = -(torch.abs(logits))``,
keeps ``torch.topk(...)[1]`` through the ``shift = num_sampled * torch.arange(num_boxes)`` /
``idx += shift[:, None]`` flat-index trick into ``point_coords.view(-1, 2)[idx.view(-1), :]`` and
``torch.cat``s random coverage points; ``get_uncertain_point_coords_on_grid`` turns ``topk`` indices
into cell centres by ``%`` and ``//``; ``generate_regular_grid_point_coords`` uses
``F.affine_grid(aff, torch.Size((1, 1, side, side)), align_corners=False)``. ``StandardPointHead`` is a
stack of ``nn.Conv1d(kernel_size=1)`` layers on ``torch.cat((fine_grained_features, coarse_features),
dim=1)`` with ``coarse_pred_each_layer``, ``c2_msra_fill`` (``kaiming_normal_(mode="fan_out",
nonlinearity="relu")``) and a ``normal_(std=0.001)`` predictor. Training follows PointRendSemSegHead:
a coarse head trained on ``F.interpolate``-ed logits, point labels by ``point_sample(..., mode="nearest")``,
``F.binary_cross_entropy_with_logits`` on the sampled points; inference is the subdivision loop of
mask_head.py (``F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)``, uncertain grid
points, point logits written back by ``reshape(R, C, H * W).scatter_(2, point_indices, point_logits)``).

Checked: ``point_sample`` at integer-centred points equals indexing the map (and the affine-grid
points equal the cell centres); the flat-index trick equals a ``torch.gather`` of the same ``topk``
indices; the mask IoU of the subdivision inference rises with training and beats the bilinearly
upsampled coarse prediction.
"""

# ruff: noqa: UP032  (detectron2's own spelling: "fc{}".format(k + 1))

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
cat = torch.cat


# ------------------------------------------------------------------------- point_features.py
def point_sample(input, point_coords, **kwargs):
    """
    A wrapper around :function:`torch.nn.functional.grid_sample` to support 3D point_coords tensors.
    Unlike :function:`torch.nn.functional.grid_sample` it assumes `point_coords` to lie inside
    [0, 1] x [0, 1] square.
    """
    add_dim = False
    if point_coords.dim() == 3:
        add_dim = True
        point_coords = point_coords.unsqueeze(2)
    output = F.grid_sample(input, 2.0 * point_coords - 1.0, **kwargs)
    if add_dim:
        output = output.squeeze(3)
    return output


def generate_regular_grid_point_coords(R, side_size, device):
    aff = torch.tensor([[[0.5, 0, 0.5], [0, 0.5, 0.5]]], device=device)
    r = F.affine_grid(aff, torch.Size((1, 1, side_size, side_size)), align_corners=False)
    return r.view(1, -1, 2).expand(R, -1, -1)


def get_uncertain_point_coords_with_randomness(
    coarse_logits, uncertainty_func, num_points, oversample_ratio, importance_sample_ratio
):
    assert oversample_ratio >= 1
    assert importance_sample_ratio <= 1 and importance_sample_ratio >= 0
    num_boxes = coarse_logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    point_coords = torch.rand(num_boxes, num_sampled, 2, device=coarse_logits.device)
    point_logits = point_sample(coarse_logits, point_coords, align_corners=False)
    # It is crucial to calculate uncertainty based on the sampled prediction value for the points.
    point_uncertainties = uncertainty_func(point_logits)
    num_uncertain_points = int(importance_sample_ratio * num_points)
    num_random_points = num_points - num_uncertain_points
    idx = torch.topk(point_uncertainties[:, 0, :], k=num_uncertain_points, dim=1)[1]
    shift = num_sampled * torch.arange(num_boxes, dtype=torch.long, device=coarse_logits.device)
    idx += shift[:, None]
    point_coords = point_coords.view(-1, 2)[idx.view(-1), :].view(
        num_boxes, num_uncertain_points, 2
    )
    if num_random_points > 0:
        point_coords = cat(
            [
                point_coords,
                torch.rand(num_boxes, num_random_points, 2, device=coarse_logits.device),
            ],
            dim=1,
        )
    return point_coords


def get_uncertain_point_coords_on_grid(uncertainty_map, num_points):
    R, _, H, W = uncertainty_map.shape
    h_step = 1.0 / float(H)
    w_step = 1.0 / float(W)

    num_points = min(H * W, num_points)
    point_indices = torch.topk(uncertainty_map.view(R, H * W), k=num_points, dim=1)[1]
    point_coords = torch.zeros(R, num_points, 2, dtype=torch.float, device=uncertainty_map.device)
    point_coords[:, :, 0] = w_step / 2.0 + (point_indices % W).to(torch.float) * w_step
    point_coords[:, :, 1] = h_step / 2.0 + (point_indices // W).to(torch.float) * h_step
    return point_indices, point_coords


def calculate_uncertainty(sem_seg_logits):
    """For binary logits: the closer to 0, the more uncertain."""
    if sem_seg_logits.shape[1] == 1:
        gt_class_logits = sem_seg_logits.clone()
    else:
        top2_scores = torch.topk(sem_seg_logits, k=2, dim=1)[0]
        return (top2_scores[:, 1] - top2_scores[:, 0]).unsqueeze(1)
    return -(torch.abs(gt_class_logits))


# ----------------------------------------------------------------------------- point_head.py
def c2_msra_fill(module: nn.Module) -> None:
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


class StandardPointHead(nn.Module):
    def __init__(self, input_channels, num_classes=1, fc_dim=32, num_fc=3, coarse_pred_each_layer=True):
        super().__init__()
        self.coarse_pred_each_layer = coarse_pred_each_layer
        fc_dim_in = input_channels + num_classes
        self.fc_layers = []
        for k in range(num_fc):
            fc = nn.Conv1d(fc_dim_in, fc_dim, kernel_size=1, stride=1, padding=0, bias=True)
            self.add_module("fc{}".format(k + 1), fc)
            self.fc_layers.append(fc)
            fc_dim_in = fc_dim
            fc_dim_in += num_classes if self.coarse_pred_each_layer else 0
        self.predictor = nn.Conv1d(fc_dim_in, num_classes, kernel_size=1, stride=1, padding=0)
        for layer in self.fc_layers:
            c2_msra_fill(layer)
        # use normal distribution initialization for mask prediction layer
        nn.init.normal_(self.predictor.weight, std=0.001)
        if self.predictor.bias is not None:
            nn.init.constant_(self.predictor.bias, 0)

    def forward(self, fine_grained_features, coarse_features):
        x = torch.cat((fine_grained_features, coarse_features), dim=1)
        for layer in self.fc_layers:
            x = F.relu(layer(x))
            if self.coarse_pred_each_layer:
                x = cat((x, coarse_features), dim=1)
        return self.predictor(x)


# --------------------------------------------------------------------------- semantic_seg.py
class TinyBackbone(nn.Module):
    """res2-like fine features at stride 2 and a coarse head at stride 8."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True))
        self.deep = nn.Sequential(nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(24, 24, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.coarse_head = nn.Conv2d(24, 1, 1)

    def forward(self, x):
        fine = self.stem(x)
        return {"res2": fine}, self.coarse_head(self.deep(fine))


class PointRendSemSegHead(nn.Module):
    def __init__(self, train_num_points=48, oversample_ratio=3, importance_sample_ratio=0.75,
                 subdivision_steps=3, subdivision_num_points=96):
        super().__init__()
        self.in_features = ["res2"]
        self.train_num_points = train_num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.subdivision_steps = subdivision_steps
        self.subdivision_num_points = subdivision_num_points
        self.point_head = StandardPointHead(16)

    def forward(self, features, coarse_sem_seg_logits, targets=None):
        if self.training:
            with torch.no_grad():
                point_coords = get_uncertain_point_coords_with_randomness(
                    coarse_sem_seg_logits, calculate_uncertainty, self.train_num_points,
                    self.oversample_ratio, self.importance_sample_ratio)
            coarse_features = point_sample(coarse_sem_seg_logits, point_coords, align_corners=False)
            fine_grained_features = cat(
                [point_sample(features[in_feature], point_coords, align_corners=False)
                 for in_feature in self.in_features], dim=1)
            point_logits = self.point_head(fine_grained_features, coarse_features)
            point_targets = point_sample(targets.unsqueeze(1).to(torch.float), point_coords,
                                         mode="nearest", align_corners=False).squeeze(1)
            return {"loss_sem_seg_point": F.binary_cross_entropy_with_logits(
                point_logits.squeeze(1), point_targets, reduction="mean")}
        sem_seg_logits = coarse_sem_seg_logits.clone()
        for _ in range(self.subdivision_steps):
            sem_seg_logits = F.interpolate(sem_seg_logits, scale_factor=2, mode="bilinear", align_corners=False)
            uncertainty_map = calculate_uncertainty(sem_seg_logits)
            point_indices, point_coords = get_uncertain_point_coords_on_grid(
                uncertainty_map, self.subdivision_num_points)
            fine_grained_features = cat(
                [point_sample(features[in_feature], point_coords, align_corners=False)
                 for in_feature in self.in_features])
            coarse_features = point_sample(coarse_sem_seg_logits, point_coords, align_corners=False)
            point_logits = self.point_head(fine_grained_features, coarse_features)
            # put sem seg point predictions to the right places on the upsampled grid.
            N, C, H, W = sem_seg_logits.shape
            point_indices = point_indices.unsqueeze(1).expand(-1, C, -1)
            sem_seg_logits = (sem_seg_logits.reshape(N, C, H * W)
                              .scatter_(2, point_indices, point_logits).view(N, C, H, W))
        return sem_seg_logits


class PointRendSegmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = TinyBackbone()
        self.sem_seg_head = PointRendSemSegHead()

    def forward(self, images, targets=None):
        features, coarse = self.backbone(images)
        if self.training:
            upsampled = F.interpolate(coarse, size=targets.shape[-2:], mode="bilinear", align_corners=False)
            losses = {"loss_sem_seg": F.binary_cross_entropy_with_logits(upsampled.squeeze(1), targets.float())}
            losses.update(self.sem_seg_head(features, coarse.detach(), targets))
            return losses
        return self.sem_seg_head(features, coarse), coarse


# ------------------------------------------------------------------------------------- checks
# 1. point_sample at integer-centred points equals indexing the map
feat = torch.randn(3, 5, 6, 7)
ys, xs = torch.randint(0, 6, (3, 10)), torch.randint(0, 7, (3, 10))
coords = torch.stack([(xs.float() + 0.5) / 7, (ys.float() + 0.5) / 6], dim=-1)
sampled = point_sample(feat, coords, align_corners=False)
indexed = feat[torch.arange(3)[:, None], :, ys, xs].permute(0, 2, 1)
centre_err = (sampled - indexed).abs().max().item()
grid_pts = generate_regular_grid_point_coords(2, 4, feat.device)
centres = torch.stack(torch.meshgrid((torch.arange(4) + 0.5) / 4, (torch.arange(4) + 0.5) / 4, indexing="xy"), -1)
grid_err = (grid_pts[0] - centres.reshape(-1, 2)).abs().max().item()
print(f"point_sample at cell centres vs indexing max err {centre_err:.3e}, regular grid vs centres {grid_err:.3e}, "
      f"shape {tuple(sampled.shape)} grid {tuple(grid_pts.shape)}")

# 2. the flat-index trick equals a gather of the same topk indices
logits = torch.randn(4, 1, 8, 8)
torch.manual_seed(seed + 1)
picked = get_uncertain_point_coords_with_randomness(logits, calculate_uncertainty, 20, 3, 1.0)
torch.manual_seed(seed + 1)
candidates = torch.rand(4, 60, 2)
local_idx = torch.topk(calculate_uncertainty(point_sample(logits, candidates, align_corners=False))[:, 0], k=20, dim=1)[1]
gathered = torch.gather(candidates, 1, local_idx[..., None].expand(-1, -1, 2))
flat_equal = torch.equal(picked, gathered)
mixed = get_uncertain_point_coords_with_randomness(logits, calculate_uncertainty, 20, 3, 0.75)
print(f"flat-index trick == gather: {flat_equal}; mixed points {tuple(mixed.shape)}, "
      f"in [0, 1): {bool(((mixed >= 0) & (mixed < 1)).all())}")
torch.manual_seed(seed)


# 3. synthetic shapes
def make_shapes(n, rng, size=32):
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    images = np.zeros((n, 1, size, size), np.float32)
    masks = np.zeros((n, size, size), np.int64)
    for i in range(n):
        cx, cy = rng.uniform(9, size - 9, 2)
        if i % 2 == 0:
            r = rng.uniform(5, 9)
            m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2
        else:
            hw, hh = rng.uniform(4, 8, 2)
            theta = rng.uniform(0, math.pi)
            u = (xx - cx) * math.cos(theta) + (yy - cy) * math.sin(theta)
            v = -(xx - cx) * math.sin(theta) + (yy - cy) * math.cos(theta)
            m = (np.abs(u) <= hw) & (np.abs(v) <= hh)
        masks[i] = m
        images[i, 0] = m * rng.uniform(0.6, 1.0) + 0.25 * rng.randn(size, size)
    return torch.from_numpy(images), torch.from_numpy(masks)


rng = np.random.RandomState(seed)
train_x, train_y = make_shapes(96, rng)
val_x, val_y = make_shapes(32, rng)


def mask_iou(pred, gt):
    inter = (pred & gt).sum((1, 2)).float()
    union = (pred | gt).sum((1, 2)).float()
    return (inter / union.clamp(min=1)).mean().item()


model = PointRendSegmenter()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[30], gamma=0.1)


@torch.no_grad()
def evaluate():
    model.eval()
    refined, coarse = model(val_x)
    model.train()
    coarse_up = F.interpolate(coarse, scale_factor=8, mode="bilinear", align_corners=False)
    return mask_iou(refined.squeeze(1) > 0, val_y.bool()), mask_iou(coarse_up.squeeze(1) > 0, val_y.bool())


iou_before, _ = evaluate()
print(f"before training: pointrend IoU {iou_before:.4f}")
for epoch in range(36):
    perm = torch.randperm(train_x.shape[0])
    totals = {"loss_sem_seg": 0.0, "loss_sem_seg_point": 0.0}
    for it in range(0, train_x.shape[0], 16):
        idx = perm[it:it + 16]
        loss_dict = model(train_x[idx], train_y[idx])
        losses = sum(loss_dict.values())
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
        for k, v in loss_dict.items():
            totals[k] += v.item()
    scheduler.step()
    if epoch % 12 == 11:
        iou, coarse_iou = evaluate()
        print(f"epoch {epoch + 1} loss_sem_seg {totals['loss_sem_seg'] / 6:.4f} "
              f"loss_sem_seg_point {totals['loss_sem_seg_point'] / 6:.4f} IoU pointrend {iou:.4f} coarse {coarse_iou:.4f}")
iou_after, coarse_after = evaluate()
print(f"FINAL centre_err={centre_err:.3e} grid_err={grid_err:.3e} flat_equal={int(flat_equal)} "
      f"iou_before={iou_before:.4f} iou_after={iou_after:.4f} coarse_iou={coarse_after:.4f} "
      f"iou_gain={iou_after - coarse_after:.4f}")
