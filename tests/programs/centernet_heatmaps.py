"""CenterNet ("Objects as Points") as xingyizhou/CenterNet writes it (src/lib/utils/image.py,
datasets/sample/ctdet.py, models/losses.py, models/utils.py, models/decode.py), trained on
synthetic dots and blobs of two colours.

``gaussian_radius`` (the three quadratic cases, ``np.sqrt``, ``min(r1, r2, r3)``), ``gaussian2D``
(``np.ogrid``, the ``np.finfo(h.dtype).eps * h.max()`` cut) and ``draw_umich_gaussian`` (clipped
windows, ``np.maximum(..., out=masked_heatmap)``) building heatmaps in NumPy passed on by
``torch.from_numpy``; the ``ct_int`` index ``ct_int[1] * output_w + ct_int[0]``, ``reg`` and
``reg_mask``; ``_sigmoid`` by ``torch.clamp(x.sigmoid_(), min=1e-4, max=1-1e-4)``; the focal
``_neg_loss`` (``gt.eq(1).float()``, ``gt.lt(1).float()``, ``torch.pow(1 - gt, 4)``, the Python
``loss = 0`` start and the ``if num_pos == 0`` branch on a 0-d tensor); ``_gather_feat`` with
``ind.unsqueeze(2).expand(...)`` + ``gather`` and the masked ``feat[mask].view(-1, dim)``,
``_transpose_and_gather_feat`` (``permute(0, 2, 3, 1).contiguous()``), ``RegL1Loss``
(``F.l1_loss(pred * mask, target * mask, size_average=False)``, the deprecated argument);
``_nms`` by ``F.max_pool2d(heat, (kernel, kernel), stride=1, padding=pad)`` and
``(hmax == heat).float()``, ``_topk`` over ``scores.view(batch, cat, -1)`` then
``topk_scores.view(batch, -1)``, positions by ``//`` and ``%`` and classes by
``torch.div(topk_ind, K, rounding_mode="floor")``, and ``ctdet_decode`` (``torch.cat`` of boxes,
scores and classes); the head bias filled with -2.19.
"""
# ruff: noqa: UP008  (the repository's own spelling: super(FocalLoss, self))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# utils/image.py


def gaussian_radius(det_size, min_overlap=0.7):
    height, width = det_size

    a1 = 1
    b1 = (height + width)
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    sq1 = np.sqrt(b1 ** 2 - 4 * a1 * c1)
    r1 = (b1 + sq1) / 2

    a2 = 4
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    sq2 = np.sqrt(b2 ** 2 - 4 * a2 * c2)
    r2 = (b2 + sq2) / 2

    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    sq3 = np.sqrt(b3 ** 2 - 4 * a3 * c3)
    r3 = (b3 + sq3) / 2
    return min(r1, r2, r3)


def gaussian2D(shape, sigma=1):
    m, n = [(ss - 1.) / 2. for ss in shape]
    y, x = np.ogrid[-m:m + 1, -n:n + 1]

    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h


def draw_umich_gaussian(heatmap, center, radius, k=1):
    diameter = 2 * radius + 1
    gaussian = gaussian2D((diameter, diameter), sigma=diameter / 6)

    x, y = int(center[0]), int(center[1])

    height, width = heatmap.shape[0:2]

    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)

    masked_heatmap = heatmap[y - top:y + bottom, x - left:x + right]
    masked_gaussian = gaussian[radius - top:radius + bottom, radius - left:radius + right]
    if min(masked_gaussian.shape) > 0 and min(masked_heatmap.shape) > 0:  # TODO debug
        np.maximum(masked_heatmap, masked_gaussian * k, out=masked_heatmap)
    return heatmap


# datasets/sample/ctdet.py, on images drawn here

INPUT = 48
DOWN_RATIO = 4
OUTPUT = INPUT // DOWN_RATIO
NUM_CLASSES = 2
MAX_OBJS = 4


def make_sample():
    image = rng.normal(0.0, 0.1, size=(3, INPUT, INPUT)).astype(np.float32)
    hm = np.zeros((NUM_CLASSES, OUTPUT, OUTPUT), dtype=np.float32)
    wh = np.zeros((MAX_OBJS, 2), dtype=np.float32)
    ind = np.zeros((MAX_OBJS), dtype=np.int64)
    reg = np.zeros((MAX_OBJS, 2), dtype=np.float32)
    reg_mask = np.zeros((MAX_OBJS), dtype=np.uint8)
    boxes = []
    num_objs = int(rng.integers(1, 4))
    for k in range(num_objs):
        cls_id = int(rng.integers(0, NUM_CLASSES))
        w, h = (int(v) for v in rng.integers(6, 17, size=2))
        x0, y0 = int(rng.integers(0, INPUT - w)), int(rng.integers(0, INPUT - h))
        # a dot (class 0, red) or a blob (class 1, green): an ellipse filling the box
        yy, xx = np.mgrid[0:h, 0:w]
        inside = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2 <= 1
        image[cls_id, y0:y0 + h, x0:x0 + w][inside] += 1.0
        bbox = np.array([x0, y0, x0 + w, y0 + h], dtype=np.float32) / DOWN_RATIO
        h, w = bbox[3] - bbox[1], bbox[2] - bbox[0]
        if h > 0 and w > 0:
            radius = gaussian_radius((math.ceil(h), math.ceil(w)))
            radius = max(0, int(radius))
            ct = np.array([(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2], dtype=np.float32)
            ct_int = ct.astype(np.int32)
            draw_umich_gaussian(hm[cls_id], ct_int, radius)
            wh[k] = 1. * w, 1. * h
            ind[k] = ct_int[1] * OUTPUT + ct_int[0]
            reg[k] = ct - ct_int
            reg_mask[k] = 1
            boxes.append([*bbox, cls_id])
    ret = {"input": image, "hm": hm, "reg_mask": reg_mask, "ind": ind, "wh": wh, "reg": reg}
    return ret, boxes


def collate(samples):
    return {key: torch.from_numpy(np.stack([s[key] for s in samples])) for key in samples[0]}


# models/losses.py and models/utils.py


def _sigmoid(x):
    y = torch.clamp(x.sigmoid_(), min=1e-4, max=1 - 1e-4)
    return y


def _gather_feat(feat, ind, mask=None):
    dim = feat.size(2)
    ind = ind.unsqueeze(2).expand(ind.size(0), ind.size(1), dim)
    feat = feat.gather(1, ind)
    if mask is not None:
        mask = mask.unsqueeze(2).expand_as(feat)
        feat = feat[mask]
        feat = feat.view(-1, dim)
    return feat


def _transpose_and_gather_feat(feat, ind):
    feat = feat.permute(0, 2, 3, 1).contiguous()
    feat = feat.view(feat.size(0), -1, feat.size(3))
    feat = _gather_feat(feat, ind)
    return feat


def _neg_loss(pred, gt):
    ''' Modified focal loss. Exactly the same as CornerNet.
        Runs faster and costs a little bit more memory
      Arguments:
        pred (batch x c x h x w)
        gt_regr (batch x c x h x w)
    '''
    pos_inds = gt.eq(1).float()
    neg_inds = gt.lt(1).float()

    neg_weights = torch.pow(1 - gt, 4)

    loss = 0

    pos_loss = torch.log(pred) * torch.pow(1 - pred, 2) * pos_inds
    neg_loss = torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg_inds

    num_pos = pos_inds.float().sum()
    pos_loss = pos_loss.sum()
    neg_loss = neg_loss.sum()

    if num_pos == 0:
        loss = loss - neg_loss
    else:
        loss = loss - (pos_loss + neg_loss) / num_pos
    return loss


class FocalLoss(nn.Module):
    '''nn.Module warpper for focal loss'''
    def __init__(self):
        super(FocalLoss, self).__init__()
        self.neg_loss = _neg_loss

    def forward(self, out, target):
        return self.neg_loss(out, target)


class RegL1Loss(nn.Module):
    def __init__(self):
        super(RegL1Loss, self).__init__()

    def forward(self, output, mask, ind, target):
        pred = _transpose_and_gather_feat(output, ind)
        mask = mask.unsqueeze(2).expand_as(pred).float()
        # loss = F.l1_loss(pred * mask, target * mask, reduction='elementwise_mean')
        loss = F.l1_loss(pred * mask, target * mask, size_average=False)
        loss = loss / (mask.sum() + 1e-4)
        return loss


class CtdetLoss(torch.nn.Module):
    def __init__(self, hm_weight=1, wh_weight=0.1, off_weight=1):
        super(CtdetLoss, self).__init__()
        self.crit = FocalLoss()
        self.crit_reg = RegL1Loss()
        self.crit_wh = self.crit_reg
        self.hm_weight, self.wh_weight, self.off_weight = hm_weight, wh_weight, off_weight

    def forward(self, output, batch):
        output['hm'] = _sigmoid(output['hm'])
        hm_loss = self.crit(output['hm'], batch['hm'])
        wh_loss = self.crit_reg(output['wh'], batch['reg_mask'], batch['ind'], batch['wh'])
        off_loss = self.crit_reg(output['reg'], batch['reg_mask'], batch['ind'], batch['reg'])
        loss = self.hm_weight * hm_loss + self.wh_weight * wh_loss + self.off_weight * off_loss
        loss_stats = {'loss': loss, 'hm_loss': hm_loss, 'wh_loss': wh_loss, 'off_loss': off_loss}
        return loss, loss_stats


# models/decode.py


def _nms(heat, kernel=3):
    pad = (kernel - 1) // 2

    hmax = nn.functional.max_pool2d(
        heat, (kernel, kernel), stride=1, padding=pad)
    keep = (hmax == heat).float()
    return heat * keep


def _topk(scores, K=40):
    batch, cat, height, width = scores.size()

    topk_scores, topk_inds = torch.topk(scores.view(batch, cat, -1), K)

    topk_inds = topk_inds % (height * width)
    topk_ys = (topk_inds // width).int().float()
    topk_xs = (topk_inds % width).int().float()

    topk_score, topk_ind = torch.topk(topk_scores.view(batch, -1), K)
    topk_clses = torch.div(topk_ind, K, rounding_mode="floor").int()
    topk_inds = _gather_feat(
        topk_inds.view(batch, -1, 1), topk_ind).view(batch, K)
    topk_ys = _gather_feat(topk_ys.view(batch, -1, 1), topk_ind).view(batch, K)
    topk_xs = _gather_feat(topk_xs.view(batch, -1, 1), topk_ind).view(batch, K)

    return topk_score, topk_inds, topk_clses, topk_ys, topk_xs


def ctdet_decode(heat, wh, reg=None, cat_spec_wh=False, K=100):
    batch, cat, height, width = heat.size()

    # heat = torch.sigmoid(heat)
    # perform nms on heatmaps
    heat = _nms(heat)

    scores, inds, clses, ys, xs = _topk(heat, K=K)
    if reg is not None:
        reg = _transpose_and_gather_feat(reg, inds)
        reg = reg.view(batch, K, 2)
        xs = xs.view(batch, K, 1) + reg[:, :, 0:1]
        ys = ys.view(batch, K, 1) + reg[:, :, 1:2]
    else:
        xs = xs.view(batch, K, 1) + 0.5
        ys = ys.view(batch, K, 1) + 0.5
    wh = _transpose_and_gather_feat(wh, inds)
    wh = wh.view(batch, K, 2)
    clses = clses.view(batch, K, 1).float()
    scores = scores.view(batch, K, 1)
    bboxes = torch.cat([xs - wh[..., 0:1] / 2,
                        ys - wh[..., 1:2] / 2,
                        xs + wh[..., 0:1] / 2,
                        ys + wh[..., 1:2] / 2], dim=2)
    detections = torch.cat([bboxes, scores, clses], dim=2)

    return detections


# a small stride-4 backbone with CenterNet's three heads


class CenterNet(nn.Module):
    def __init__(self, heads, head_conv=32):
        super().__init__()
        self.base = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=2, dilation=2), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        )
        self.heads = heads
        for head in self.heads:
            classes = self.heads[head]
            fc = nn.Sequential(
                nn.Conv2d(32, head_conv, kernel_size=3, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(head_conv, classes, kernel_size=1, stride=1, padding=0, bias=True))
            if 'hm' in head:
                fc[-1].bias.data.fill_(-2.19)
            self.__setattr__(head, fc)

    def forward(self, x):
        x = self.base(x)
        ret = {}
        for head in self.heads:
            ret[head] = self.__getattr__(head)(x)
        return [ret]


# the radius and the drawn peak of one box, as the dataset computes them
r = gaussian_radius((3, 5))
peak = draw_umich_gaussian(np.zeros((8, 8), dtype=np.float32), np.array([2, 3]), max(0, int(r)))
print(f"radius {r:.4f}, heatmap sum {peak.sum():.4f} max {peak.max():.1f} at {tuple(int(v) for v in np.unravel_index(peak.argmax(), peak.shape))}")

train_samples = [make_sample() for _ in range(160)]
test_samples = [make_sample() for _ in range(48)]
model = CenterNet({'hm': NUM_CLASSES, 'wh': 2, 'reg': 2})
loss_fn = CtdetLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

BATCH = 16
for epoch in range(1, 13):
    model.train()
    order = torch.randperm(len(train_samples)).tolist()
    stats = {"loss": 0.0, "hm_loss": 0.0, "wh_loss": 0.0, "off_loss": 0.0}
    for i in range(0, len(order), BATCH):
        batch = collate([train_samples[j][0] for j in order[i:i + BATCH]])
        output = model(batch['input'])[-1]
        loss, loss_stats = loss_fn(output, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for key in stats:
            stats[key] += loss_stats[key].item() / (len(order) // BATCH)
    if epoch % 4 == 0:
        print(f"epoch {epoch}: " + " ".join(f"{k} {v:.4f}" for k, v in stats.items()))

model.eval()
with torch.no_grad():
    batch = collate([s[0] for s in test_samples])
    output = model(batch['input'])[-1]
    # the loss replaces output['hm'] by its clamped sigmoid (and sigmoid_ rewrote the logits in place)
    test_loss, _ = loss_fn(output, batch)
    dets = ctdet_decode(output['hm'], output['wh'], reg=output['reg'], K=10)

found = total = kept = correct = 0
size_errors = []
for b, (_, boxes) in enumerate(test_samples):
    confident = dets[b][dets[b][:, 4] > 0.3]
    kept += len(confident)
    total += len(boxes)
    used = set()
    for x0, y0, x1, y1, cls_id in boxes:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        for k, det in enumerate(confident.tolist()):
            dcx, dcy = (det[0] + det[2]) / 2, (det[1] + det[3]) / 2
            if k not in used and int(det[5]) == cls_id and abs(dcx - cx) <= 1 and abs(dcy - cy) <= 1:
                used.add(k)
                found += 1
                size_errors.append(abs((det[2] - det[0]) - (x1 - x0)) + abs((det[3] - det[1]) - (y1 - y0)))
                break
    correct += len(used)
recall, precision = found / total, correct / max(kept, 1)
size_error = float(np.mean(size_errors)) if size_errors else 0.0
print(f"detections {tuple(dets.shape)}; test loss {test_loss.item():.4f}, recall {recall:.4f}, "
      f"precision {precision:.4f}, size error {size_error:.4f} cells")
print(f"FINAL loss={test_loss.item():.4f} recall={recall:.4f} precision={precision:.4f} size_error={size_error:.4f}")
