"""PointPillars (Lang et al. 2019): pillar feature net, BEV scatter and a CenterPoint-style heatmap head.

In the style of open-mmlab/OpenPCDet (`pcdet/models/backbones_3d/vfe/pillar_vfe.py`,
`backbones_2d/map_to_bev/pointpillar_scatter.py`, `backbones_2d/base_bev_backbone.py`,
`dense_heads/center_head.py`, `utils/centernet_utils.py`, `utils/loss_utils.py`) at toy size on
synthetic scenes (ground clutter, a few box-shaped objects and distractor poles): NumPy voxelisation
into padded pillars with `(batch, z, y, x)` coordinates; `PillarVFE` with `get_paddings_indicator`
(`torch.arange(max_num, dtype=torch.int).view(max_num_shape)`, `actual_num.int() > max_num`), the offset
to the pillar mean (`voxel_features[:, :, :3].sum(dim=1, keepdim=True) /
voxel_num_points.type_as(voxel_features).view(-1, 1, 1)`), the offset to the pillar centre written into
`torch.zeros_like(...)[:, :, k]` from `coords[:, 3].to(dtype).unsqueeze(1)`, `features *= mask`;
`PFNLayer` (Linear without bias, `BatchNorm1d(eps=1e-3, momentum=0.01)` on `x.permute(0, 2, 1)`,
`torch.backends.cudnn.enabled` toggles, `F.relu`, `torch.max(x, dim=1, keepdim=True)[0]`, the
`x_max.repeat(1, inputs.shape[1], 1)` + `torch.cat` of a non-last layer, `features.squeeze()`);
`PointPillarScatter` (`torch.zeros(C, nz * nx * ny)`, `coords[:, 0] == batch_idx` masks,
`this_coords[:, 1] + this_coords[:, 2] * self.nx + this_coords[:, 3]`, `indices.type(torch.long)`,
`spatial_feature[:, indices] = pillars.t()`, `torch.stack(...).view(B, C * nz, ny, nx)`);
`BaseBEVBackbone` (`nn.ZeroPad2d(1)`, strided Conv2d + BatchNorm2d + ReLU blocks, `nn.ConvTranspose2d`
deblocks, `torch.cat(ups, dim=1)`); a heatmap head with the `-2.19` bias, `_sigmoid` by
`torch.clamp(x.sigmoid_(), min=1e-4, max=1 - 1e-4)`; targets by `draw_gaussian_to_heatmap`
(`torch.max(masked_heatmap, masked_gaussian * k, out=masked_heatmap)`), `neg_loss_cornernet` focal
loss; `F.max_pool2d` peak NMS + `torch.topk` decoding; AdamW + `OneCycleLR`, `clip_grad_norm_`.
Reports the focal loss and the centre accuracy (objects whose centre cell holds a detected peak).
Check: the index scatter equals a loop of column assignments, its gradient reaches every pillar
exactly once (all ones for a summed canvas, the canvas weights gathered back for a weighted one),
and the padding indicator equals a loop.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

point_cloud_range = [0.0, 0.0, -1.0, 16.0, 16.0, 3.0]
voxel_size = [0.5, 0.5, 4.0]
grid_size = [32, 32, 1]  # nx, ny, nz
max_points_per_voxel = 16
feature_map_stride = 2


class PFNLayer(nn.Module):
    def __init__(self, in_channels, out_channels, use_norm=True, last_layer=False):
        super().__init__()

        self.last_vfe = last_layer
        self.use_norm = use_norm
        if not self.last_vfe:
            out_channels = out_channels // 2

        if self.use_norm:
            self.linear = nn.Linear(in_channels, out_channels, bias=False)
            self.norm = nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.01)
        else:
            self.linear = nn.Linear(in_channels, out_channels, bias=True)

        self.part = 50000

    def forward(self, inputs):
        if inputs.shape[0] > self.part:
            # nn.Linear performs randomly when batch size is too large
            num_parts = inputs.shape[0] // self.part
            part_linear_out = [self.linear(inputs[num_part * self.part:(num_part + 1) * self.part])
                               for num_part in range(num_parts + 1)]
            x = torch.cat(part_linear_out, dim=0)
        else:
            x = self.linear(inputs)
        torch.backends.cudnn.enabled = False
        x = self.norm(x.permute(0, 2, 1)).permute(0, 2, 1) if self.use_norm else x
        torch.backends.cudnn.enabled = True
        x = F.relu(x)
        x_max = torch.max(x, dim=1, keepdim=True)[0]

        if self.last_vfe:
            return x_max
        else:
            x_repeat = x_max.repeat(1, inputs.shape[1], 1)
            x_concatenated = torch.cat([x, x_repeat], dim=2)
            return x_concatenated


class PillarVFE(nn.Module):
    def __init__(self, num_point_features, voxel_size, point_cloud_range, num_filters=(16, 32),
                 use_norm=True, with_distance=False, use_absolute_xyz=True):
        super().__init__()
        self.use_norm = use_norm
        self.with_distance = with_distance
        self.use_absolute_xyz = use_absolute_xyz
        num_point_features += 6 if self.use_absolute_xyz else 3
        if self.with_distance:
            num_point_features += 1

        self.num_filters = list(num_filters)
        assert len(self.num_filters) > 0
        num_filters = [num_point_features] + list(self.num_filters)

        pfn_layers = []
        for i in range(len(num_filters) - 1):
            in_filters = num_filters[i]
            out_filters = num_filters[i + 1]
            pfn_layers.append(
                PFNLayer(in_filters, out_filters, self.use_norm, last_layer=(i >= len(num_filters) - 2))
            )
        self.pfn_layers = nn.ModuleList(pfn_layers)

        self.voxel_x = voxel_size[0]
        self.voxel_y = voxel_size[1]
        self.voxel_z = voxel_size[2]
        self.x_offset = self.voxel_x / 2 + point_cloud_range[0]
        self.y_offset = self.voxel_y / 2 + point_cloud_range[1]
        self.z_offset = self.voxel_z / 2 + point_cloud_range[2]

    def get_output_feature_dim(self):
        return self.num_filters[-1]

    def get_paddings_indicator(self, actual_num, max_num, axis=0):
        actual_num = torch.unsqueeze(actual_num, axis + 1)
        max_num_shape = [1] * len(actual_num.shape)
        max_num_shape[axis + 1] = -1
        max_num = torch.arange(max_num, dtype=torch.int, device=actual_num.device).view(max_num_shape)
        paddings_indicator = actual_num.int() > max_num
        return paddings_indicator

    def forward(self, batch_dict, **kwargs):

        voxel_features, voxel_num_points, coords = batch_dict['voxels'], batch_dict['voxel_num_points'], batch_dict['voxel_coords']
        points_mean = voxel_features[:, :, :3].sum(dim=1, keepdim=True) / voxel_num_points.type_as(voxel_features).view(-1, 1, 1)
        f_cluster = voxel_features[:, :, :3] - points_mean

        f_center = torch.zeros_like(voxel_features[:, :, :3])
        f_center[:, :, 0] = voxel_features[:, :, 0] - (coords[:, 3].to(voxel_features.dtype).unsqueeze(1) * self.voxel_x + self.x_offset)
        f_center[:, :, 1] = voxel_features[:, :, 1] - (coords[:, 2].to(voxel_features.dtype).unsqueeze(1) * self.voxel_y + self.y_offset)
        f_center[:, :, 2] = voxel_features[:, :, 2] - (coords[:, 1].to(voxel_features.dtype).unsqueeze(1) * self.voxel_z + self.z_offset)

        if self.use_absolute_xyz:
            features = [voxel_features, f_cluster, f_center]
        else:
            features = [voxel_features[..., 3:], f_cluster, f_center]

        if self.with_distance:
            points_dist = torch.norm(voxel_features[:, :, :3], 2, 2, keepdim=True)
            features.append(points_dist)
        features = torch.cat(features, dim=-1)

        voxel_count = features.shape[1]
        mask = self.get_paddings_indicator(voxel_num_points, voxel_count, axis=0)
        mask = torch.unsqueeze(mask, -1).type_as(voxel_features)
        features *= mask
        for pfn in self.pfn_layers:
            features = pfn(features)
        features = features.squeeze()
        batch_dict['pillar_features'] = features
        return batch_dict


class PointPillarScatter(nn.Module):
    def __init__(self, num_bev_features, grid_size):
        super().__init__()
        self.num_bev_features = num_bev_features
        self.nx, self.ny, self.nz = grid_size
        assert self.nz == 1

    def forward(self, batch_dict, **kwargs):
        pillar_features, coords = batch_dict['pillar_features'], batch_dict['voxel_coords']
        batch_spatial_features = []
        batch_size = coords[:, 0].max().int().item() + 1
        for batch_idx in range(batch_size):
            spatial_feature = torch.zeros(
                self.num_bev_features,
                self.nz * self.nx * self.ny,
                dtype=pillar_features.dtype,
                device=pillar_features.device)

            batch_mask = coords[:, 0] == batch_idx
            this_coords = coords[batch_mask, :]
            indices = this_coords[:, 1] + this_coords[:, 2] * self.nx + this_coords[:, 3]
            indices = indices.type(torch.long)
            pillars = pillar_features[batch_mask, :]
            pillars = pillars.t()
            spatial_feature[:, indices] = pillars
            batch_spatial_features.append(spatial_feature)

        batch_spatial_features = torch.stack(batch_spatial_features, 0)
        batch_spatial_features = batch_spatial_features.view(batch_size, self.num_bev_features * self.nz, self.ny, self.nx)
        batch_dict['spatial_features'] = batch_spatial_features
        return batch_dict


class BaseBEVBackbone(nn.Module):
    def __init__(self, input_channels, layer_nums=(1, 1), layer_strides=(2, 2), num_filters=(32, 64),
                 upsample_strides=(1, 2), num_upsample_filters=(32, 32)):
        super().__init__()
        num_levels = len(layer_nums)
        c_in_list = [input_channels, *num_filters[:-1]]
        self.blocks = nn.ModuleList()
        self.deblocks = nn.ModuleList()
        for idx in range(num_levels):
            cur_layers = [
                nn.ZeroPad2d(1),
                nn.Conv2d(
                    c_in_list[idx], num_filters[idx], kernel_size=3,
                    stride=layer_strides[idx], padding=0, bias=False
                ),
                nn.BatchNorm2d(num_filters[idx], eps=1e-3, momentum=0.01),
                nn.ReLU()
            ]
            for k in range(layer_nums[idx]):
                cur_layers.extend([
                    nn.Conv2d(num_filters[idx], num_filters[idx], kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(num_filters[idx], eps=1e-3, momentum=0.01),
                    nn.ReLU()
                ])
            self.blocks.append(nn.Sequential(*cur_layers))
            stride = upsample_strides[idx]
            self.deblocks.append(nn.Sequential(
                nn.ConvTranspose2d(
                    num_filters[idx], num_upsample_filters[idx],
                    upsample_strides[idx],
                    stride=upsample_strides[idx], bias=False
                ),
                nn.BatchNorm2d(num_upsample_filters[idx], eps=1e-3, momentum=0.01),
                nn.ReLU()
            ))
        self.num_bev_features = sum(num_upsample_filters)

    def forward(self, data_dict):
        spatial_features = data_dict['spatial_features']
        ups = []
        x = spatial_features
        for i in range(len(self.blocks)):
            x = self.blocks[i](x)
            ups.append(self.deblocks[i](x))
        x = torch.cat(ups, dim=1)
        data_dict['spatial_features_2d'] = x
        return data_dict


class CenterHead(nn.Module):
    def __init__(self, input_channels, num_class=1, head_conv=32, init_bias=-2.19):
        super().__init__()
        self.hm = nn.Sequential(
            nn.Conv2d(input_channels, head_conv, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(head_conv),
            nn.ReLU(),
            nn.Conv2d(head_conv, num_class, kernel_size=3, stride=1, padding=1, bias=True),
        )
        self.hm[-1].bias.data.fill_(init_bias)

    def forward(self, data_dict):
        data_dict['hm'] = self.hm(data_dict['spatial_features_2d'])
        return data_dict


class PointPillar(nn.Module):
    def __init__(self):
        super().__init__()
        self.vfe = PillarVFE(4, voxel_size, point_cloud_range, num_filters=(16, 32))
        self.map_to_bev = PointPillarScatter(self.vfe.get_output_feature_dim(), grid_size)
        self.backbone_2d = BaseBEVBackbone(32)
        self.dense_head = CenterHead(self.backbone_2d.num_bev_features)

    def forward(self, batch_dict):
        for module in (self.vfe, self.map_to_bev, self.backbone_2d, self.dense_head):
            batch_dict = module(batch_dict)
        return batch_dict


def _sigmoid(x):
    y = torch.clamp(x.sigmoid_(), min=1e-4, max=1 - 1e-4)
    return y


def neg_loss_cornernet(pred, gt, mask=None):
    """
    Refer to https://github.com/tianweiy/CenterPoint.
    Modified focal loss. Exactly the same as CornerNet. Runs faster and costs a little bit more memory
    """
    pos_inds = gt.eq(1).float()
    neg_inds = gt.lt(1).float()

    neg_weights = torch.pow(1 - gt, 4)

    loss = 0

    pos_loss = torch.log(pred) * torch.pow(1 - pred, 2) * pos_inds
    neg_loss = torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg_inds

    if mask is not None:
        mask = mask[:, None, :, :].float()
        pos_loss = pos_loss * mask
        neg_loss = neg_loss * mask
        num_pos = (pos_inds.float() * mask).sum()
    else:
        num_pos = pos_inds.float().sum()

    pos_loss = pos_loss.sum()
    neg_loss = neg_loss.sum()

    if num_pos == 0:
        loss = loss - neg_loss
    else:
        loss = loss - (pos_loss + neg_loss) / num_pos
    return loss


def gaussian2D(shape, sigma=1):
    m, n = [(ss - 1.) / 2. for ss in shape]
    y, x = np.ogrid[-m:m + 1, -n:n + 1]

    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h


def draw_gaussian_to_heatmap(heatmap, center, radius, k=1, valid_mask=None):
    diameter = 2 * radius + 1
    gaussian = gaussian2D((diameter, diameter), sigma=diameter / 6)

    x, y = int(center[0]), int(center[1])

    height, width = heatmap.shape[0:2]

    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)

    masked_heatmap = heatmap[y - top:y + bottom, x - left:x + right]
    masked_gaussian = torch.from_numpy(
        gaussian[radius - top:radius + bottom, radius - left:radius + right]
    ).to(heatmap.device).float()

    if min(masked_gaussian.shape) > 0 and min(masked_heatmap.shape) > 0:  # TODO debug
        if valid_mask is not None:
            cur_valid_mask = valid_mask[y - top:y + bottom, x - left:x + right]
            masked_gaussian = masked_gaussian * cur_valid_mask.float()

        torch.max(masked_heatmap, masked_gaussian * k, out=masked_heatmap)
    return heatmap


# --- synthetic scenes: ground clutter, boxes (the objects) and thin poles (distractors)
def make_scene(rng):
    pts = [np.stack([rng.uniform(0, 16, 220), rng.uniform(0, 16, 220),
                     rng.normal(0.0, 0.05, 220), rng.uniform(0, 0.3, 220)], 1)]
    centers = []
    for _ in range(rng.randint(1, 4)):
        cx, cy = rng.uniform(2, 14, size=2)
        if any(np.hypot(cx - a, cy - b) < 3.0 for a, b in centers):
            continue
        centers.append((cx, cy))
        n = 60
        pts.append(np.stack([cx + rng.uniform(-0.9, 0.9, n), cy + rng.uniform(-0.6, 0.6, n),
                             rng.uniform(0.2, 1.6, n), rng.uniform(0.2, 1.0, n)], 1))
    for _ in range(rng.randint(1, 4)):
        px, py = rng.uniform(1, 15, size=2)
        n = 20
        pts.append(np.stack([px + rng.normal(0, 0.1, n), py + rng.normal(0, 0.1, n),
                             rng.uniform(0.0, 2.5, n), rng.uniform(0.2, 1.0, n)], 1))
    return np.concatenate(pts).astype(np.float32), centers


def voxelize(points):
    nx, ny, _ = grid_size
    ix = np.floor((points[:, 0] - point_cloud_range[0]) / voxel_size[0]).astype(np.int64)
    iy = np.floor((points[:, 1] - point_cloud_range[1]) / voxel_size[1]).astype(np.int64)
    keep = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    points, ix, iy = points[keep], ix[keep], iy[keep]
    flat = iy * nx + ix
    uniq = np.unique(flat)
    voxels = np.zeros((len(uniq), max_points_per_voxel, 4), dtype=np.float32)
    num = np.zeros(len(uniq), dtype=np.int32)
    coords = np.zeros((len(uniq), 3), dtype=np.int32)  # z, y, x
    for v, f in enumerate(uniq):
        p = points[flat == f][:max_points_per_voxel]
        voxels[v, :len(p)] = p
        num[v] = len(p)
        coords[v] = (0, f // nx, f % nx)
    return voxels, num, coords


def collate(scenes):
    voxels, nums, coords, hms, centers = [], [], [], [], []
    H, W = grid_size[1] // feature_map_stride, grid_size[0] // feature_map_stride
    for b, (points, cs) in enumerate(scenes):
        v, n, c = voxelize(points)
        voxels.append(v)
        nums.append(n)
        coords.append(np.pad(c, ((0, 0), (1, 0)), constant_values=b))
        heatmap = torch.zeros(H, W)
        for cx, cy in cs:
            center = np.array([cx / voxel_size[0] / feature_map_stride, cy / voxel_size[1] / feature_map_stride])
            draw_gaussian_to_heatmap(heatmap, center, radius=2)
        hms.append(heatmap)
        centers.append(cs)
    return {
        'voxels': torch.from_numpy(np.concatenate(voxels)),
        'voxel_num_points': torch.from_numpy(np.concatenate(nums)),
        'voxel_coords': torch.from_numpy(np.concatenate(coords)),
        'batch_size': len(scenes),
        'heatmaps': torch.stack(hms).unsqueeze(1),
        'centers': centers,
    }


rng = np.random.RandomState(seed)
train_set = [collate([make_scene(rng) for _ in range(4)]) for _ in range(16)]
valid_set = collate([make_scene(rng) for _ in range(16)])

model = PointPillar()

# --- checks: the scatter against a loop and its gradient; the padding indicator against a loop
batch = train_set[0]
vfe, scatter = model.vfe, model.map_to_bev
num = batch['voxel_num_points']
pad_mask = vfe.get_paddings_indicator(num, max_points_per_voxel, axis=0)
pad_loop = torch.zeros(len(num), max_points_per_voxel, dtype=torch.bool)
for v in range(len(num)):
    for p in range(int(num[v])):
        pad_loop[v, p] = True
pad_err = int((pad_mask != pad_loop).sum().item())
pillar_features = torch.randn(len(num), 32, requires_grad=True)
out = scatter({'pillar_features': pillar_features, 'voxel_coords': batch['voxel_coords']})['spatial_features']
coords = batch['voxel_coords']
loop = torch.zeros(batch['batch_size'], 32, grid_size[1], grid_size[0])
for n in range(len(num)):
    b, _, y, x = [int(c) for c in coords[n]]
    loop[b, :, y, x] = pillar_features[n].detach()
scatter_err = (out - loop).abs().max().item()
occupied = int((out.abs().sum(1) > 0).sum().item())
out.sum().backward(retain_graph=True)
once_err = (pillar_features.grad - 1).abs().max().item()
weights = torch.randn_like(out)
pillar_features.grad = None
(out * weights).sum().backward()
gathered = weights[coords[:, 0].long(), :, coords[:, 2].long(), coords[:, 3].long()]
weighted_err = (pillar_features.grad - gathered).abs().max().item()
print(f"scatter: {len(num)} pillars -> {occupied} occupied cells, err {scatter_err:.2e} grad once err "
      f"{once_err:.2e} weighted grad err {weighted_err:.2e} padding indicator mismatches {pad_err}")


def decode_centers(hm, K=8, thresh=0.3):
    hmax = F.max_pool2d(hm, 3, stride=1, padding=1)
    keep = (hmax == hm).float()
    hm = hm * keep
    B, C, H, W = hm.shape
    scores, inds = torch.topk(hm.view(B, -1), K)
    ys = torch.div(inds, W, rounding_mode='floor')
    xs = inds % W
    return [[(int(x), int(y)) for s, x, y in zip(scores[b], xs[b], ys[b]) if s > thresh] for b in range(B)]


def precise_bn(model, batches):
    """Re-estimate BatchNorm statistics as a cumulative average (detectron2's precise BN): with
    OpenPCDet's momentum=0.01 a short run leaves the running statistics near their initial values."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    with torch.no_grad():
        for batch in batches:
            model(dict(batch))
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    return int(bns[0].num_batches_tracked)


def evaluate():
    model.eval()
    with torch.no_grad():
        data = model(dict(valid_set))
        pred = _sigmoid(data['hm'])
        loss = neg_loss_cornernet(pred, valid_set['heatmaps']).item()
        peaks = decode_centers(pred)
    hit = total = false_pos = 0
    for cs, ps in zip(valid_set['centers'], peaks):
        for cx, cy in cs:
            gx, gy = int(cx / voxel_size[0] / feature_map_stride), int(cy / voxel_size[1] / feature_map_stride)
            total += 1
            hit += any(abs(px - gx) <= 1 and abs(py - gy) <= 1 for px, py in ps)
        false_pos += sum(all(abs(px - cx / voxel_size[0] / feature_map_stride) > 1.5 or
                             abs(py - cy / voxel_size[1] / feature_map_stride) > 1.5 for cx, cy in cs)
                         for px, py in ps)
    model.train()
    return loss, hit / total, false_pos / len(peaks)


loss0, acc0, fp0 = evaluate()
print(f"before: focal loss {loss0:.4f} centre acc {acc0:.4f} false positives/scene {fp0:.3f}")
epochs = 5
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * len(train_set),
                                                pct_start=0.4, div_factor=10)
losses = []
for epoch in range(epochs):
    for batch in train_set:
        data = model(dict(batch))
        pred = _sigmoid(data['hm'])
        loss = neg_loss_cornernet(pred, batch['heatmaps'])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    if (epoch + 1) % 5 == 0:
        print(f"epoch {epoch + 1}: train focal loss {np.mean(losses[-len(train_set):]):.4f}")

tracked = precise_bn(model, train_set)
print(f"precise BN over {tracked} batches")
loss1, acc1, fp1 = evaluate()
print(f"after: focal loss {loss1:.4f} centre acc {acc1:.4f} false positives/scene {fp1:.3f}")
print(f"FINAL center_acc={acc1:.4f} focal_loss={loss1:.4f} loss_drop={loss0 - loss1:.4f} fp_per_scene={fp1:.4f} "
      f"train_loss={np.mean(losses[-len(train_set):]):.4f} scatter_err={scatter_err:.2e} once_err={once_err:.2e} "
      f"weighted_err={weighted_err:.2e} pad_err={pad_err}")
