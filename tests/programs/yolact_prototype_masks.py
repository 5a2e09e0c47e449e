"""YOLACT (Bolya et al., ICCV 2019) in the dbolya/yolact layout: prototype masks, coefficients, crop, fast NMS.

Synthetic 32x32 images hold two or three filled shapes (rectangles, discs and triangles) over a noisy
background; each shape has a ground-truth box (point form, relative to the image, as ``data/coco.py``
gives them) and a binary mask. The network keeps the reference's mask branch at toy width: a strided
backbone (``nn.Conv2d`` + ``F.relu``) down to a 16x16 map; the ``proto_net`` made by ``make_net`` from a
config list ``[(16, 3, {'padding': 1})] * 2 + [(None, -2, {}), (16, 3, {'padding': 1})] + [(k, 1, {})]``
where ``(None, -2, {})`` is the ``InterpolateModule(scale_factor=2, mode='bilinear',
align_corners=False)``; prototypes by ``F.relu`` and ``proto_out.permute(0, 2, 3, 1).contiguous()``; a
``PredictionHead`` whose ``mask_layer`` output is ``permute(0, 2, 3, 1).contiguous().view(x.size(0), -1,
mask_dim)`` and ``torch.tanh``-ed into per-anchor coefficients. As in ``layers/modules/multibox_loss.py``
the positive anchor of a box is the cell holding its centre, assembled masks are
``torch.sigmoid(proto_masks @ proto_coef.t())``, ``crop(pred_masks, pos_gt_box_t)`` (with
``sanitize_coordinates`` and ``torch.arange`` comparisons) zeroes them outside the box, and the mask
loss is ``F.binary_cross_entropy(torch.clamp(pred_masks, 0, 1), mask_t, reduction='none')`` summed
over pixels and divided by the box's width and height ("emulate ROI pooling"). Adam trains it.

Checked: ``fast_nms`` (``jaccard``, ``iou.triu_(diagonal=1)``, ``iou_max, _ = iou.max(dim=1)``) keeps
exactly the boxes a sequential greedy NMS keeps on clustered boxes without suppression chains (and
keeps fewer on a chain, as the paper says); ``crop`` leaves nothing outside the box and the values
inside unchanged; the held-out mask IoU of the assembled, cropped, thresholded masks rises with
training.
"""

# ruff: noqa: UP008  (the reference's own spelling: super(Class, self))

import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SIZE = 32
MASK_DIM = 8  # k prototypes


# ----------------------------------------------------------------------------------- data
def make_images(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = np.zeros((n, 3, SIZE, SIZE), dtype=np.float32)
    all_boxes, all_masks = [], []
    for i in range(n):
        images[i] = 0.3 * rng.randn(3, SIZE, SIZE)
        boxes, masks = [], []
        for _ in range(rng.randint(2, 4)):
            kind = rng.randint(3)
            w, h = rng.randint(8, 15, size=2)
            x0, y0 = rng.randint(0, SIZE - w), rng.randint(0, SIZE - h)
            if kind == 0:
                region = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
            elif kind == 1:
                cx, cy = x0 + (w - 1) / 2, y0 + (h - 1) / 2
                region = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1.0
            else:
                region = (xx >= x0) & (yy < y0 + h) & ((yy - y0) * w >= (xx - x0) * h) & (xx < x0 + w) & (yy >= y0)
            for m in masks:  # later shapes occlude earlier ones
                m &= ~region
            colour = rng.uniform(-1, 1, size=3)
            colour += 0.8 * np.sign(colour)
            images[i][:, region] = colour[:, None] + 0.3 * rng.randn(3, region.sum())
            masks.append(region.copy())
            boxes.append([x0 / SIZE, y0 / SIZE, (x0 + w) / SIZE, (y0 + h) / SIZE])
        all_boxes.append(torch.tensor(boxes, dtype=torch.float32))
        all_masks.append(torch.from_numpy(np.stack(masks).astype(np.float32)))
    return torch.from_numpy(images), all_boxes, all_masks


# ----------------------------------------------------------------------------------- layers/box_utils.py
def center_size(boxes):
    """ Convert prior_boxes to (cx, cy, w, h) representation for comparison to center-size form ground truth data. """
    return torch.cat(((boxes[:, 2:] + boxes[:, :2]) / 2,  # cx, cy
                      boxes[:, 2:] - boxes[:, :2]), 1)  # w, h


def intersect(box_a, box_b):
    n = box_a.size(0)
    A = box_a.size(1)
    B = box_b.size(1)
    max_xy = torch.min(box_a[:, :, 2:].unsqueeze(2).expand(n, A, B, 2),
                       box_b[:, :, 2:].unsqueeze(1).expand(n, A, B, 2))
    min_xy = torch.max(box_a[:, :, :2].unsqueeze(2).expand(n, A, B, 2),
                       box_b[:, :, :2].unsqueeze(1).expand(n, A, B, 2))
    return torch.clamp(max_xy - min_xy, min=0).prod(3)  # inter


def jaccard(box_a, box_b, iscrowd: bool = False):
    use_batch = True
    if box_a.dim() == 2:
        use_batch = False
        box_a = box_a[None, ...]
        box_b = box_b[None, ...]

    inter = intersect(box_a, box_b)
    area_a = ((box_a[:, :, 2] - box_a[:, :, 0]) *
              (box_a[:, :, 3] - box_a[:, :, 1])).unsqueeze(2).expand_as(inter)  # [A,B]
    area_b = ((box_b[:, :, 2] - box_b[:, :, 0]) *
              (box_b[:, :, 3] - box_b[:, :, 1])).unsqueeze(1).expand_as(inter)  # [A,B]
    union = area_a + area_b - inter

    out = inter / area_a if iscrowd else inter / union
    return out if use_batch else out.squeeze(0)


def sanitize_coordinates(_x1, _x2, img_size: int, padding: int = 0, cast: bool = True):
    """
    Sanitizes the input coordinates so that x1 < x2, x1 != x2, x1 >= 0, and x2 <= image_size.
    Also converts from relative to absolute coordinates and casts the results to long tensors.
    """
    _x1 = _x1 * img_size
    _x2 = _x2 * img_size
    if cast:
        _x1 = _x1.long()
        _x2 = _x2.long()
    x1 = torch.min(_x1, _x2)
    x2 = torch.max(_x1, _x2)
    x1 = torch.clamp(x1 - padding, min=0)
    x2 = torch.clamp(x2 + padding, max=img_size)

    return x1, x2


def crop(masks, boxes, padding: int = 1):
    """
    "Crop" predicted masks by zeroing out everything not in the predicted bbox.
        - masks should be a size [h, w, n] tensor of masks
        - boxes should be a size [n, 4] tensor of bbox coords in relative point form
    """
    h, w, n = masks.size()
    x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], w, padding, cast=False)
    y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], h, padding, cast=False)

    rows = torch.arange(w, device=masks.device, dtype=x1.dtype).view(1, -1, 1).expand(h, w, n)
    cols = torch.arange(h, device=masks.device, dtype=x1.dtype).view(-1, 1, 1).expand(h, w, n)

    masks_left = rows >= x1.view(1, 1, -1)
    masks_right = rows < x2.view(1, 1, -1)
    masks_up = cols >= y1.view(1, 1, -1)
    masks_down = cols < y2.view(1, 1, -1)

    crop_mask = masks_left * masks_right * masks_up * masks_down

    return masks * crop_mask.float()


# ----------------------------------------------------------------------------------- yolact.py
class InterpolateModule(nn.Module):
    """
    This is a module version of F.interpolate (rip nn.Upsampling).
    Any arguments you give it just get passed along for the ride.
    """

    def __init__(self, *args, **kwdargs):
        super().__init__()

        self.args = args
        self.kwdargs = kwdargs

    def forward(self, x):
        return F.interpolate(x, *self.args, **self.kwdargs)


def make_net(in_channels, conf, include_last_relu=True):
    """
    A helper function to take a config setting and turn it into a network.
    Used by protonet and extrahead. Returns (network, out_channels)
    """
    def make_layer(layer_cfg):
        nonlocal in_channels

        num_channels = layer_cfg[0]
        kernel_size = layer_cfg[1]

        if kernel_size > 0:
            layer = nn.Conv2d(in_channels, num_channels, kernel_size, **layer_cfg[2])
        else:
            if num_channels is None:
                layer = InterpolateModule(scale_factor=-kernel_size, mode='bilinear', align_corners=False, **layer_cfg[2])
            else:
                layer = nn.ConvTranspose2d(in_channels, num_channels, -kernel_size, **layer_cfg[2])

        in_channels = num_channels if num_channels is not None else in_channels

        return [layer, nn.ReLU(inplace=True)]

    # Use sum to concat together all the component layer lists
    net = sum([make_layer(x) for x in conf], [])
    if not include_last_relu:
        net = net[:-1]

    return nn.Sequential(*(net)), in_channels


mask_proto_net = [(16, 3, {'padding': 1})] * 2 + [(None, -2, {}), (16, 3, {'padding': 1})] + [(MASK_DIM, 1, {})]


class PredictionHead(nn.Module):
    def __init__(self, in_channels, out_channels=32, num_classes=2, mask_dim=MASK_DIM):
        super().__init__()
        self.mask_dim = mask_dim
        self.num_classes = num_classes
        self.upfeature, out_channels = make_net(in_channels, [(out_channels, 3, {'padding': 1})])
        self.conf_layer = nn.Conv2d(out_channels, num_classes, kernel_size=3, padding=1)
        self.mask_layer = nn.Conv2d(out_channels, mask_dim, kernel_size=3, padding=1)

    def forward(self, x):
        x = self.upfeature(x)
        conf = self.conf_layer(x).permute(0, 2, 3, 1).contiguous().view(x.size(0), -1, self.num_classes)
        mask = self.mask_layer(x).permute(0, 2, 3, 1).contiguous().view(x.size(0), -1, self.mask_dim)
        mask = torch.tanh(mask)
        return {'conf': conf, 'mask': mask}


class Yolact(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.proto_net, cfg_mask_dim = make_net(32, mask_proto_net, include_last_relu=False)
        assert cfg_mask_dim == MASK_DIM
        self.prediction_layers = nn.ModuleList([PredictionHead(32)])

    def forward(self, x):
        outs = self.backbone(x)
        proto_x = outs
        proto_out = self.proto_net(proto_x)
        proto_out = F.relu(proto_out)  # mask_proto_prototype_activation
        # Move the features last so the multiplication is easy
        proto_out = proto_out.permute(0, 2, 3, 1).contiguous()

        pred_outs = {'conf': [], 'mask': []}
        for pred_layer in self.prediction_layers:
            p = pred_layer(outs)
            for k, v in p.items():
                pred_outs[k].append(v)
        for k, v in pred_outs.items():
            pred_outs[k] = torch.cat(v, -2)
        pred_outs['proto'] = proto_out
        return pred_outs


# ----------------------------------------------------------------------------------- the loss
def positive_anchors(boxes, grid):
    """The anchor of a box is the feature cell holding its centre (one prior per cell)."""
    cs = center_size(boxes)
    col = torch.clamp((cs[:, 0] * grid).long(), 0, grid - 1)
    row = torch.clamp((cs[:, 1] * grid).long(), 0, grid - 1)
    return row * grid + col


def lincomb_mask_loss(pred_outs, gt_boxes, gt_masks):
    proto = pred_outs['proto']
    mask_h, mask_w = proto.size(1), proto.size(2)
    grid = int(round(pred_outs['mask'].size(1) ** 0.5))
    loss_m = 0
    num_pos = 0
    for idx in range(proto.size(0)):
        pos_idx = positive_anchors(gt_boxes[idx], grid)
        proto_masks = proto[idx]
        proto_coef = pred_outs['mask'][idx, pos_idx, :]
        mask_t = gt_masks[idx].permute(1, 2, 0).contiguous()
        pos_gt_box_t = center_size(gt_boxes[idx])

        # Size: [mask_h, mask_w, num_pos]
        pred_masks = proto_masks @ proto_coef.t()
        pred_masks = torch.sigmoid(pred_masks)
        pred_masks = crop(pred_masks, gt_boxes[idx])

        pre_loss = F.binary_cross_entropy(torch.clamp(pred_masks, 0, 1), mask_t, reduction='none')

        weight = mask_h * mask_w
        gt_box_width = pos_gt_box_t[:, 2] * mask_w
        gt_box_height = pos_gt_box_t[:, 3] * mask_h
        pre_loss = pre_loss.sum(dim=(0, 1)) / gt_box_width / gt_box_height * weight
        loss_m += torch.sum(pre_loss)
        num_pos += pos_idx.size(0)
    return loss_m / num_pos / (mask_h * mask_w)


def conf_loss(pred_outs, gt_boxes):
    grid = int(round(pred_outs['mask'].size(1) ** 0.5))
    target = torch.zeros(pred_outs['conf'].shape[:2], dtype=torch.long)
    for idx, boxes in enumerate(gt_boxes):
        target[idx, positive_anchors(boxes, grid)] = 1
    return F.cross_entropy(pred_outs['conf'].view(-1, 2), target.view(-1))


# ----------------------------------------------------------------------------------- layers/functions/detection.py
def fast_nms(boxes, masks, scores, iou_threshold: float = 0.5, top_k: int = 200, second_threshold: bool = False):
    scores, idx = scores.sort(1, descending=True)

    idx = idx[:, :top_k].contiguous()
    scores = scores[:, :top_k]

    num_classes, num_dets = idx.size()

    boxes = boxes[idx.view(-1), :].view(num_classes, num_dets, 4)
    masks = masks[idx.view(-1), :].view(num_classes, num_dets, -1)

    iou = jaccard(boxes, boxes)
    iou.triu_(diagonal=1)
    iou_max, _ = iou.max(dim=1)

    # Now just filter out the ones higher than the threshold
    keep = (iou_max <= iou_threshold)

    # Assign each kept detection to its corresponding class
    classes = torch.arange(num_classes, device=boxes.device)[:, None].expand_as(keep)
    classes = classes[keep]

    boxes = boxes[keep]
    masks = masks[keep]
    scores = scores[keep]

    # Only keep the top max_num_detections highest scores across all classes
    scores, idx = scores.sort(0, descending=True)
    classes = classes[idx]
    boxes = boxes[idx]
    masks = masks[idx]

    return boxes, masks, classes, scores


def greedy_nms(boxes, scores, iou_threshold=0.5):
    """Sequential NMS as in torchvision's reference: take the best box, drop all it overlaps, repeat."""
    order = scores.argsort(descending=True).tolist()
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        ious = jaccard(boxes[i:i + 1], boxes[order])[0] if order else torch.zeros(0)
        order = [j for j, v in zip(order, ious.tolist()) if v <= iou_threshold]
    return boxes[keep]


def clustered_boxes(num_clusters):
    """Well-separated clusters; in each, jittered copies overlap each other and their leader well above 0.5."""
    boxes, scores = [], []
    for c in range(num_clusters):
        cx, cy = 0.1 + 0.8 * c / max(num_clusters - 1, 1), rng.uniform(0.3, 0.7)
        for _ in range(rng.randint(1, 5)):
            jitter = rng.uniform(-0.004, 0.004, size=4)
            boxes.append([cx - 0.04 + jitter[0], cy - 0.04 + jitter[1], cx + 0.04 + jitter[2], cy + 0.04 + jitter[3]])
            scores.append(rng.uniform(0.1, 0.9))
    return torch.tensor(boxes), torch.tensor(scores)


def mask_iou(pred, gt):
    inter = (pred * gt).sum(dim=(0, 1))
    union = ((pred + gt) > 0).float().sum(dim=(0, 1))
    return inter / union


# ----------------------------------------------------------------------------------- checks before training
# fast NMS == greedy NMS without chains
nms_trials, nms_agree = 6, 0
for t in range(nms_trials):
    boxes, scores = clustered_boxes(t + 2)
    masks = torch.rand(len(boxes), 5)
    kept, kept_masks, classes, kept_scores = fast_nms(boxes, masks, scores[None], iou_threshold=0.5)
    greedy = greedy_nms(boxes, scores, 0.5)
    same = kept.shape == greedy.shape and torch.equal(kept, greedy)
    nms_agree += int(same and kept.size(0) == t + 2 and bool((classes == 0).all()) and kept_masks.shape == (t + 2, 5))
# a chain: A suppresses B, B would have suppressed C, but A and C do not overlap
chain = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.12, 0.0, 0.52, 0.4], [0.24, 0.0, 0.64, 0.4]])
chain_scores = torch.tensor([[0.9, 0.8, 0.7]])
chain_fast, _, _, _ = fast_nms(chain, torch.zeros(3, 1), chain_scores, iou_threshold=0.4)
chain_greedy = greedy_nms(chain, chain_scores[0], 0.4)
print(f"fast NMS == greedy on {nms_agree}/{nms_trials} clustered cases; chain: fast keeps {chain_fast.size(0)}, greedy keeps {chain_greedy.size(0)}")

# crop zeroes outside the box, keeps the inside
probe = torch.rand(SIZE, SIZE, 3) + 0.5
probe_boxes = torch.tensor([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.55, 0.3, 0.9, 0.45]])
cropped = crop(probe, probe_boxes, padding=0)
x1, x2 = sanitize_coordinates(probe_boxes[:, 0], probe_boxes[:, 2], SIZE, 0, cast=False)
y1, y2 = sanitize_coordinates(probe_boxes[:, 1], probe_boxes[:, 3], SIZE, 0, cast=False)
# crop compares pixel indices with the float coordinates: the first pixel kept is ceil(x1), the last ceil(x2) - 1
x1, x2, y1, y2 = (torch.ceil(v).long() for v in (x1, x2, y1, y2))
crop_ok = True
for j in range(3):
    inside = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    inside[y1[j]:y2[j], x1[j]:x2[j]] = True
    crop_ok &= bool((cropped[..., j][~inside] == 0).all()) and torch.equal(cropped[..., j][inside], probe[..., j][inside])
long_x1, long_x2 = sanitize_coordinates(probe_boxes[:, 0], probe_boxes[:, 2], SIZE, 1)
crop_ok &= long_x1.dtype == torch.int64 and bool((long_x1 <= x1).all()) and bool((long_x2 >= x2).all())
print(f"crop: outside zero and inside kept: {crop_ok}, boxes {x1.tolist()} {x2.tolist()} {y1.tolist()} {y2.tolist()}")

# ----------------------------------------------------------------------------------- training
train_x, train_boxes, train_masks = make_images(96)
val_x, val_boxes, val_masks = make_images(32)


@torch.no_grad()
def evaluate(net):
    net.eval()
    ious = []
    for i in range(0, len(val_x), 16):
        outs = net(val_x[i:i + 16])
        grid = int(round(outs['mask'].size(1) ** 0.5))
        for b in range(outs['proto'].size(0)):
            boxes = val_boxes[i + b]
            coef = outs['mask'][b, positive_anchors(boxes, grid)]
            masks = torch.sigmoid(outs['proto'][b] @ coef.t())
            masks = crop(masks, boxes)
            masks = masks.gt(0.5).float()
            ious.append(mask_iou(masks, val_masks[i + b].permute(1, 2, 0)))
    net.train()
    return torch.cat(ious).mean().item()


net = Yolact()
optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
iou_before = evaluate(net)
batch_size, epochs = 16, 10
losses = defaultdict(list)
for epoch in range(epochs):
    perm = torch.randperm(len(train_x)).tolist()
    for i in range(0, len(perm), batch_size):
        idx = perm[i:i + batch_size]
        outs = net(train_x[idx])
        loss_M = lincomb_mask_loss(outs, [train_boxes[j] for j in idx], [train_masks[j] for j in idx])
        loss_C = conf_loss(outs, [train_boxes[j] for j in idx])
        loss = loss_M * 6.125 + loss_C
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses['M'].append(loss_M.item())
        losses['C'].append(loss_C.item())
    if epoch % 3 == 0 or epoch == epochs - 1:
        print(f"[{epoch:3d}] M: {np.mean(losses['M'][-6:]):.4f} | C: {np.mean(losses['C'][-6:]):.4f}")
iou_after = evaluate(net)
print(f"mask IoU on held-out shapes: {iou_before:.4f} -> {iou_after:.4f}; prototypes {tuple(net(val_x[:1])['proto'].shape)}")
print(f"FINAL mask_iou_before={iou_before:.4f} mask_iou_after={iou_after:.4f} loss_m_last={np.mean(losses['M'][-6:]):.4f} "
      f"nms_agree={nms_agree} chain_fast={chain_fast.size(0)} chain_greedy={chain_greedy.size(0)} crop_ok={int(crop_ok)}")
