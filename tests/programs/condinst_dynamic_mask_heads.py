"""CondInst (aim-uofa/AdelaiDet) dynamic mask heads on toy scenes of 1-3 rectangles and discs.

A controller conv predicts, at each instance's location, the parameters of a per-instance FCN;
``parse_dynamic_params`` cuts them with ``torch.split_with_sizes`` and
``reshape(num_insts * channels, -1, 1, 1)``; ``compute_locations`` (``torch.meshgrid`` without
``indexing``) gives relative coordinates, divided by the size of interest and concatenated to
``mask_feats[im_inds]``; the heads run as ONE grouped ``F.conv2d(x.reshape(1, -1, H, W), w,
bias=b, groups=num_insts)`` per layer with ``F.relu`` between; ``aligned_bilinear`` upsamples
(``F.pad(mode="replicate")`` + ``F.interpolate(align_corners=True)``); the dice loss on
``sigmoid`` scores against ``gt_bitmasks[:, start::stride, start::stride]``; Adam.
Checks: the grouped conv equals a per-instance loop of ``F.conv2d``, dice falls, mask IoU rises.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def compute_locations(h, w, stride, device):
    shifts_x = torch.arange(0, w * stride, step=stride, dtype=torch.float32, device=device)
    shifts_y = torch.arange(0, h * stride, step=stride, dtype=torch.float32, device=device)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x)
    shift_x = shift_x.reshape(-1)
    shift_y = shift_y.reshape(-1)
    locations = torch.stack((shift_x, shift_y), dim=1) + stride // 2
    return locations


def aligned_bilinear(tensor, factor):
    assert tensor.dim() == 4
    assert factor >= 1
    assert int(factor) == factor

    if factor == 1:
        return tensor

    h, w = tensor.size()[2:]
    tensor = F.pad(tensor, pad=(0, 1, 0, 1), mode="replicate")
    oh = factor * h + 1
    ow = factor * w + 1
    tensor = F.interpolate(tensor, size=(oh, ow), mode="bilinear", align_corners=True)
    tensor = F.pad(tensor, pad=(factor // 2, 0, factor // 2, 0), mode="replicate")

    return tensor[:, :, :oh - 1, :ow - 1]


def dice_coefficient(x, target):
    eps = 1e-5
    n_inst = x.size(0)
    x = x.reshape(n_inst, -1)
    target = target.reshape(n_inst, -1)
    intersection = (x * target).sum(dim=1)
    union = (x ** 2.0).sum(dim=1) + (target ** 2.0).sum(dim=1) + eps
    loss = 1. - (2 * intersection / union)
    return loss


def parse_dynamic_params(params, channels, weight_nums, bias_nums):
    assert params.dim() == 2
    assert len(weight_nums) == len(bias_nums)
    assert params.size(1) == sum(weight_nums) + sum(bias_nums)

    num_insts = params.size(0)
    num_layers = len(weight_nums)

    params_splits = list(torch.split_with_sizes(params, weight_nums + bias_nums, dim=1))

    weight_splits = params_splits[:num_layers]
    bias_splits = params_splits[num_layers:]

    for l in range(num_layers):
        if l < num_layers - 1:
            # out_channels x in_channels x 1 x 1
            weight_splits[l] = weight_splits[l].reshape(num_insts * channels, -1, 1, 1)
            bias_splits[l] = bias_splits[l].reshape(num_insts * channels)
        else:
            # out_channels x in_channels x 1 x 1
            weight_splits[l] = weight_splits[l].reshape(num_insts * 1, -1, 1, 1)
            bias_splits[l] = bias_splits[l].reshape(num_insts)

    return weight_splits, bias_splits


class DynamicMaskHead(nn.Module):
    def __init__(self, in_channels=8, channels=8, num_layers=3, mask_out_stride=2, soi=16):
        super().__init__()
        self.num_layers = num_layers
        self.channels = channels
        self.in_channels = in_channels
        self.mask_out_stride = mask_out_stride
        self.disable_rel_coords = False
        self.register_buffer("sizes_of_interest", torch.tensor([soi]))

        weight_nums, bias_nums = [], []
        for l in range(self.num_layers):
            if l == 0:
                if not self.disable_rel_coords:
                    weight_nums.append((self.in_channels + 2) * self.channels)
                else:
                    weight_nums.append(self.in_channels * self.channels)
                bias_nums.append(self.channels)
            elif l == self.num_layers - 1:
                weight_nums.append(self.channels * 1)
                bias_nums.append(1)
            else:
                weight_nums.append(self.channels * self.channels)
                bias_nums.append(self.channels)

        self.weight_nums = weight_nums
        self.bias_nums = bias_nums
        self.num_gen_params = sum(weight_nums) + sum(bias_nums)

    def mask_heads_forward(self, features, weights, biases, num_insts):
        """
        :param features
        :param weights: [w0, w1, ...]
        :param bias: [b0, b1, ...]
        :return:
        """
        assert features.dim() == 4
        n_layers = len(weights)
        x = features
        for i, (w, b) in enumerate(zip(weights, biases)):
            x = F.conv2d(x, w, bias=b, stride=1, padding=0, groups=num_insts)
            if i < n_layers - 1:
                x = F.relu(x)
        return x

    def head_inputs(self, mask_feats, mask_feat_stride, im_inds, instance_locations, fpn_levels):
        locations = compute_locations(mask_feats.size(2), mask_feats.size(3), stride=mask_feat_stride,
                                      device=mask_feats.device)
        n_inst = len(im_inds)
        N, _, H, W = mask_feats.size()
        relative_coords = instance_locations.reshape(-1, 1, 2) - locations.reshape(1, -1, 2)
        relative_coords = relative_coords.permute(0, 2, 1).float()
        soi = self.sizes_of_interest.float()[fpn_levels]
        relative_coords = relative_coords / soi.reshape(-1, 1, 1)
        relative_coords = relative_coords.to(dtype=mask_feats.dtype)
        return torch.cat([relative_coords, mask_feats[im_inds].reshape(n_inst, self.in_channels, H * W)], dim=1)

    def forward(self, mask_feats, mask_feat_stride, im_inds, instance_locations, fpn_levels, mask_head_params):
        n_inst = len(im_inds)
        N, _, H, W = mask_feats.size()
        mask_head_inputs = self.head_inputs(mask_feats, mask_feat_stride, im_inds, instance_locations, fpn_levels)
        mask_head_inputs = mask_head_inputs.reshape(1, -1, H, W)
        weights, biases = parse_dynamic_params(mask_head_params, self.channels, self.weight_nums, self.bias_nums)
        mask_logits = self.mask_heads_forward(mask_head_inputs, weights, biases, n_inst)
        mask_logits = mask_logits.reshape(-1, 1, H, W)

        assert mask_feat_stride >= self.mask_out_stride
        assert mask_feat_stride % self.mask_out_stride == 0
        mask_logits = aligned_bilinear(mask_logits, int(mask_feat_stride / self.mask_out_stride))
        return mask_logits


class CondInst(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True))
        self.mask_branch = nn.Sequential(nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(16, 8, 1))
        self.mask_head = DynamicMaskHead(in_channels=8, channels=8, num_layers=3, mask_out_stride=2, soi=16)
        self.controller = nn.Conv2d(32, self.mask_head.num_gen_params, kernel_size=3, stride=1, padding=1)
        torch.nn.init.normal_(self.controller.weight, std=0.01)
        torch.nn.init.constant_(self.controller.bias, 0)
        self.mask_feat_stride = 4

    def forward(self, images, im_inds, instance_locations):
        features = self.backbone(images)
        mask_feats = self.mask_branch(features)
        params_map = self.controller(features)
        s = self.mask_feat_stride
        cells = (instance_locations // s).long()
        mask_head_params = params_map.permute(0, 2, 3, 1)[im_inds, cells[:, 1], cells[:, 0]]
        fpn_levels = torch.zeros(len(im_inds), dtype=torch.long)
        return self.mask_head(mask_feats, s, im_inds, instance_locations, fpn_levels, mask_head_params), \
            mask_feats, mask_head_params, fpn_levels


def make_scenes(n, rng):
    """32x32 scenes with 1-3 rectangles/discs; per instance: its image, its centre and its bitmask."""
    ys, xs = np.mgrid[0:32, 0:32]
    images = np.zeros((n, 3, 32, 32), np.float32)
    im_inds, locations, bitmasks = [], [], []
    for i in range(n):
        occupied = np.zeros((32, 32), bool)
        for _ in range(rng.randint(1, 4)):
            for _attempt in range(20):
                if rng.rand() < 0.5:
                    y0, x0 = rng.randint(0, 22, size=2)
                    hh, ww = rng.randint(5, 11, size=2)
                    mask = (ys >= y0) & (ys < y0 + hh) & (xs >= x0) & (xs < x0 + ww)
                else:
                    cy, cx = rng.uniform(5, 27, size=2)
                    r = rng.uniform(3, 6)
                    mask = (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r
                if not (mask & occupied).any():
                    break
            else:
                continue
            occupied |= mask
            images[i][:, mask] += rng.uniform(0.5, 1.5, size=(3, 1))
            py, px = np.nonzero(mask)
            im_inds.append(i)
            locations.append((px.mean(), py.mean()))
            bitmasks.append(mask.astype(np.float32))
        images[i] += 0.3 * rng.randn(3, 32, 32)
    return (torch.from_numpy(images), torch.tensor(im_inds), torch.tensor(np.array(locations), dtype=torch.float32),
            torch.from_numpy(np.stack(bitmasks)))


rng = np.random.RandomState(11)
train = make_scenes(96, rng)
val = make_scenes(32, rng)
model = CondInst()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
mask_out_stride = model.mask_head.mask_out_stride
start = int(mask_out_stride // 2)
print(f"{len(train[0])} training scenes with {len(train[1])} instances; dynamic head params "
      f"{model.mask_head.num_gen_params} = {model.mask_head.weight_nums} + {model.mask_head.bias_nums}")


def select(data, image_idx):
    images, im_inds, locations, bitmasks = data
    keep = torch.isin(im_inds, image_idx)
    remap = torch.full((len(images),), -1, dtype=torch.long)
    remap[image_idx] = torch.arange(len(image_idx))
    return images[image_idx], remap[im_inds[keep]], locations[keep], bitmasks[keep]


@torch.no_grad()
def evaluate(data):
    model.eval()
    images, im_inds, locations, bitmasks = data
    mask_logits = model(images, im_inds, locations)[0]
    gt = bitmasks[:, None, start::mask_out_stride, start::mask_out_stride]
    pred = mask_logits.sigmoid() > 0.5
    inter = (pred & (gt > 0.5)).flatten(1).sum(1).float()
    union = (pred | (gt > 0.5)).flatten(1).sum(1).float()
    dice = dice_coefficient(mask_logits.sigmoid(), gt).mean().item()
    model.train()
    return dice, (inter / union.clamp(min=1)).mean().item()


dice0, iou0 = evaluate(val)
print(f"before training: val dice loss {dice0:.4f} mask IoU {iou0:.4f}")
batch = 8
for epoch in range(12):
    perm = torch.randperm(len(train[0]))
    total = 0.0
    for b in range(len(perm) // batch):
        images, im_inds, locations, bitmasks = select(train, perm[b * batch:(b + 1) * batch].sort().values)
        mask_scores = model(images, im_inds, locations)[0].sigmoid()
        gt_bitmasks = bitmasks[:, start::mask_out_stride, start::mask_out_stride].unsqueeze(dim=1).to(dtype=mask_scores.dtype)
        mask_losses = dice_coefficient(mask_scores, gt_bitmasks)
        loss_mask = mask_losses.mean()
        optimizer.zero_grad()
        loss_mask.backward()
        optimizer.step()
        total += loss_mask.item()
    if epoch % 3 == 2:
        dice, iou = evaluate(val)
        print(f"epoch {epoch + 1}: train dice loss {total / (len(perm) // batch):.4f} "
              f"val dice loss {dice:.4f} mask IoU {iou:.4f}")

# The grouped conv of all instances at once equals running each instance's FCN on its own.
with torch.no_grad():
    images, im_inds, locations, bitmasks = val
    mask_logits, mask_feats, params, fpn_levels = model(images, im_inds, locations)
    n_inst, (H, W) = len(im_inds), mask_feats.shape[2:]
    inputs = model.mask_head.head_inputs(mask_feats, 4, im_inds, locations, fpn_levels).reshape(1, -1, H, W)
    weights, biases = parse_dynamic_params(params, 8, model.mask_head.weight_nums, model.mask_head.bias_nums)
    grouped = model.mask_head.mask_heads_forward(inputs, weights, biases, n_inst).reshape(n_inst, 1, H, W)
    looped = []
    for k in range(n_inst):
        x = inputs[:, k * 10:(k + 1) * 10]
        for l, (w, b) in enumerate(zip(weights, biases)):
            out = w.shape[0] // n_inst
            x = F.conv2d(x, w[k * out:(k + 1) * out], b[k * out:(k + 1) * out])
            if l < len(weights) - 1:
                x = F.relu(x)
        looped.append(x)
    looped = torch.cat(looped)
    group_err = (grouped - looped).abs().max().item()
    assert mask_logits.shape == (n_inst, 1, 16, 16) and grouped.shape == (n_inst, 1, 8, 8)
    assert torch.equal(aligned_bilinear(grouped, 2), mask_logits)
    print(f"{n_inst} instances: grouped conv vs per-instance loop max error {group_err:.2e}")

print(f"FINAL dice_loss={dice:.4f} dice_drop={dice0 - dice:.4f} iou={iou:.4f} group_err={group_err:.6f}")
