"""CornerNet (Law & Deng, ECCV 2018) in the princeton-vl/CornerNet-Lite layout, on synthetic boxes.

The corner pools are the pure-PyTorch ports that replace the CUDA extension: ``TopPool`` is
``x.flip(2).cummax(dim=2)[0].flip(2)`` (the running maximum from the bottom), ``LeftPool`` the same on
dim 3, ``BottomPool``/``RightPool`` plain ``cummax``. ``corner_pool`` is the reference module (two 3x3
conv-BN-ReLU branches pooled and summed, ``p_conv1`` + ``p_bn1``, a 1x1 shortcut, ``relu1``,
``conv2``), ``tl_cnvs``/``br_cnvs`` feed ``make_kp_layer`` heads for heatmaps (bias filled with -2.19),
embedding tags and offsets. Targets are CornerNet's: ``gaussian_radius(min_overlap=0.3)``,
``draw_gaussian`` on the heatmaps, tag indices ``y * width + x``, offsets by the fractional part,
uint8 tag masks. The losses are ``_focal_loss`` (penalty-reduced by ``(1 - gt) ** 4``) on
``_sigmoid`` (``clamp(x.sigmoid_(), 1e-4, 1 - 1e-4)``), ``_ae_loss`` (pull / push from
``_tranpose_and_gather_feat``: ``permute`` + ``view`` + ``gather``) and ``_off_loss``
(``smooth_l1_loss(reduction="sum")``), trained with Adam. ``_decode`` is the reference's: ``_nms`` by
``F.max_pool2d`` equality, ``_topk`` on the flattened heatmaps, K x K corner pairs rejected by class,
tag distance and geometry, ``torch.topk`` on scores.

Checked: the four cummax pools equal a Python-loop running maximum; the TopPool / LeftPool
gradient lands on the running maxima (a loop that adds each output's upstream gradient to its
argmax); detection recall at IoU 0.5 rises from the untrained to the trained network.
"""

# ruff: noqa: UP008  (the reference's own spelling: super(Class, self))

import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

IMG, STRIDE, CLASSES = 32, 2, 2
OUT = IMG // STRIDE
MAX_TAGS = 4


# ----------------------------------------------------------------------------------- corner pooling
class TopPool(nn.Module):
    def forward(self, x):
        return x.flip(2).cummax(dim=2)[0].flip(2)


class BottomPool(nn.Module):
    def forward(self, x):
        return x.cummax(dim=2)[0]


class LeftPool(nn.Module):
    def forward(self, x):
        return x.flip(3).cummax(dim=3)[0].flip(3)


class RightPool(nn.Module):
    def forward(self, x):
        return x.cummax(dim=3)[0]


def loop_pool(x, dim, reverse):
    """Reference running maximum and the index it came from, by Python loops over NumPy."""
    a = np.moveaxis(x.detach().numpy(), dim, -1)
    out, arg = np.empty_like(a), np.empty(a.shape, dtype=np.int64)
    n = a.shape[-1]
    order = range(n - 1, -1, -1) if reverse else range(n)
    best, where = None, None
    for idx in np.ndindex(*a.shape[:-1]):
        best, where = -np.inf, -1
        for i in order:
            if a[idx + (i,)] > best:
                best, where = a[idx + (i,)], i
            out[idx + (i,)], arg[idx + (i,)] = best, where
    return np.moveaxis(out, -1, dim), np.moveaxis(arg, -1, dim)


class convolution(nn.Module):
    def __init__(self, k, inp_dim, out_dim, stride=1, with_bn=True):
        super(convolution, self).__init__()
        pad = (k - 1) // 2
        self.conv = nn.Conv2d(inp_dim, out_dim, (k, k), padding=(pad, pad), stride=(stride, stride), bias=not with_bn)
        self.bn = nn.BatchNorm2d(out_dim) if with_bn else nn.Sequential()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class residual(nn.Module):
    def __init__(self, inp_dim, out_dim, k=3, stride=1):
        super(residual, self).__init__()
        self.conv1 = nn.Conv2d(inp_dim, out_dim, (3, 3), padding=(1, 1), stride=(stride, stride), bias=False)
        self.bn1 = nn.BatchNorm2d(out_dim)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_dim, out_dim, (3, 3), padding=(1, 1), bias=False)
        self.bn2 = nn.BatchNorm2d(out_dim)
        self.skip = nn.Sequential(
            nn.Conv2d(inp_dim, out_dim, (1, 1), stride=(stride, stride), bias=False),
            nn.BatchNorm2d(out_dim),
        ) if stride != 1 or inp_dim != out_dim else nn.Sequential()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        conv1 = self.conv1(x)
        bn1 = self.bn1(conv1)
        relu1 = self.relu1(bn1)
        conv2 = self.conv2(relu1)
        bn2 = self.bn2(conv2)
        skip = self.skip(x)
        return self.relu(bn2 + skip)


class corner_pool(nn.Module):
    def __init__(self, dim, pool1, pool2):
        super(corner_pool, self).__init__()
        self._init_layers(dim, pool1, pool2)

    def _init_layers(self, dim, pool1, pool2):
        self.p1_conv1 = convolution(3, dim, 16)
        self.p2_conv1 = convolution(3, dim, 16)
        self.p_conv1 = nn.Conv2d(16, dim, (3, 3), padding=(1, 1), bias=False)
        self.p_bn1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, (1, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = convolution(3, dim, dim)
        self.pool1 = pool1()
        self.pool2 = pool2()

    def forward(self, x):
        # pool 1
        p1_conv1 = self.p1_conv1(x)
        pool1 = self.pool1(p1_conv1)
        # pool 2
        p2_conv1 = self.p2_conv1(x)
        pool2 = self.pool2(p2_conv1)
        # pool 1 + pool 2
        p_conv1 = self.p_conv1(pool1 + pool2)
        p_bn1 = self.p_bn1(p_conv1)
        conv1 = self.conv1(x)
        bn1 = self.bn1(conv1)
        relu1 = self.relu1(p_bn1 + bn1)
        conv2 = self.conv2(relu1)
        return conv2


def make_kp_layer(cnv_dim, curr_dim, out_dim):
    return nn.Sequential(convolution(3, cnv_dim, curr_dim, with_bn=False), nn.Conv2d(curr_dim, out_dim, (1, 1)))


def _sigmoid(x):
    return torch.clamp(x.sigmoid_(), min=1e-4, max=1 - 1e-4)


def _gather_feat(feat, ind, mask=None):
    dim = feat.size(2)
    ind = ind.unsqueeze(2).expand(ind.size(0), ind.size(1), dim)
    feat = feat.gather(1, ind)
    if mask is not None:
        mask = mask.unsqueeze(2).expand_as(feat)
        feat = feat[mask]
        feat = feat.view(-1, dim)
    return feat


def _tranpose_and_gather_feat(feat, ind):
    feat = feat.permute(0, 2, 3, 1).contiguous()
    feat = feat.view(feat.size(0), -1, feat.size(3))
    feat = _gather_feat(feat, ind)
    return feat


def _nms(heat, kernel=1):
    pad = (kernel - 1) // 2
    hmax = nn.functional.max_pool2d(heat, (kernel, kernel), stride=1, padding=pad)
    keep = (hmax == heat).float()
    return heat * keep


def _topk(scores, K=20):
    batch, cat, height, width = scores.size()
    topk_scores, topk_inds = torch.topk(scores.view(batch, -1), K)
    topk_clses = (topk_inds / (height * width)).int()
    topk_inds = topk_inds % (height * width)
    topk_ys = (topk_inds / width).int().float()
    topk_xs = (topk_inds % width).int().float()
    return topk_scores, topk_inds, topk_clses, topk_ys, topk_xs


def _decode(tl_heat, br_heat, tl_tag, br_tag, tl_regr, br_regr, K=10, kernel=3, ae_threshold=1, num_dets=20):
    batch, cat, height, width = tl_heat.size()
    tl_heat = torch.sigmoid(tl_heat)
    br_heat = torch.sigmoid(br_heat)
    # perform nms on heatmaps
    tl_heat = _nms(tl_heat, kernel=kernel)
    br_heat = _nms(br_heat, kernel=kernel)
    tl_scores, tl_inds, tl_clses, tl_ys, tl_xs = _topk(tl_heat, K=K)
    br_scores, br_inds, br_clses, br_ys, br_xs = _topk(br_heat, K=K)
    tl_ys = tl_ys.view(batch, K, 1).expand(batch, K, K)
    tl_xs = tl_xs.view(batch, K, 1).expand(batch, K, K)
    br_ys = br_ys.view(batch, 1, K).expand(batch, K, K)
    br_xs = br_xs.view(batch, 1, K).expand(batch, K, K)
    if tl_regr is not None and br_regr is not None:
        tl_regr = _tranpose_and_gather_feat(tl_regr, tl_inds)
        tl_regr = tl_regr.view(batch, K, 1, 2)
        br_regr = _tranpose_and_gather_feat(br_regr, br_inds)
        br_regr = br_regr.view(batch, 1, K, 2)
        tl_xs = tl_xs + tl_regr[..., 0]
        tl_ys = tl_ys + tl_regr[..., 1]
        br_xs = br_xs + br_regr[..., 0]
        br_ys = br_ys + br_regr[..., 1]
    # all possible boxes based on top k corners (ignoring class)
    bboxes = torch.stack((tl_xs, tl_ys, br_xs, br_ys), dim=3)
    tl_tag = _tranpose_and_gather_feat(tl_tag, tl_inds)
    tl_tag = tl_tag.view(batch, K, 1)
    br_tag = _tranpose_and_gather_feat(br_tag, br_inds)
    br_tag = br_tag.view(batch, 1, K)
    dists = torch.abs(tl_tag - br_tag)
    tl_scores = tl_scores.view(batch, K, 1).expand(batch, K, K)
    br_scores = br_scores.view(batch, 1, K).expand(batch, K, K)
    scores = (tl_scores + br_scores) / 2
    # reject boxes based on classes
    tl_clses = tl_clses.view(batch, K, 1).expand(batch, K, K)
    br_clses = br_clses.view(batch, 1, K).expand(batch, K, K)
    cls_inds = (tl_clses != br_clses)
    # reject boxes based on distances
    dist_inds = (dists > ae_threshold)
    # reject boxes based on widths and heights
    width_inds = (br_xs < tl_xs)
    height_inds = (br_ys < tl_ys)
    scores[cls_inds] = -1
    scores[dist_inds] = -1
    scores[width_inds] = -1
    scores[height_inds] = -1
    scores = scores.view(batch, -1)
    scores, inds = torch.topk(scores, num_dets)
    scores = scores.unsqueeze(2)
    bboxes = bboxes.view(batch, -1, 4)
    bboxes = _gather_feat(bboxes, inds)
    clses = tl_clses.contiguous().view(batch, -1, 1)
    clses = _gather_feat(clses, inds).float()
    tl_scores = tl_scores.contiguous().view(batch, -1, 1)
    tl_scores = _gather_feat(tl_scores, inds).float()
    br_scores = br_scores.contiguous().view(batch, -1, 1)
    br_scores = _gather_feat(br_scores, inds).float()
    detections = torch.cat([bboxes, scores, tl_scores, br_scores, clses], dim=2)
    return detections


class CornerNet(nn.Module):
    def __init__(self, dim=24):
        super(CornerNet, self).__init__()
        self.pre = nn.Sequential(convolution(5, 3, 16, stride=STRIDE), residual(16, dim))
        self.cnv = nn.Sequential(residual(dim, dim), convolution(3, dim, dim))
        self.tl_cnvs = corner_pool(dim, TopPool, LeftPool)
        self.br_cnvs = corner_pool(dim, BottomPool, RightPool)
        self.tl_heats = make_kp_layer(dim, dim, CLASSES)
        self.br_heats = make_kp_layer(dim, dim, CLASSES)
        for heat in (self.tl_heats, self.br_heats):
            heat[-1].bias.data.fill_(-2.19)
        self.tl_tags = make_kp_layer(dim, dim, 1)
        self.br_tags = make_kp_layer(dim, dim, 1)
        self.tl_offs = make_kp_layer(dim, dim, 2)
        self.br_offs = make_kp_layer(dim, dim, 2)

    def _heads(self, image):
        cnv = self.cnv(self.pre(image))
        tl_cnv, br_cnv = self.tl_cnvs(cnv), self.br_cnvs(cnv)
        return (self.tl_heats(tl_cnv), self.br_heats(br_cnv), self.tl_tags(tl_cnv), self.br_tags(br_cnv),
                self.tl_offs(tl_cnv), self.br_offs(br_cnv))

    def _train(self, image, tl_inds, br_inds):
        tl_heat, br_heat, tl_tag, br_tag, tl_off, br_off = self._heads(image)
        tl_tag = _tranpose_and_gather_feat(tl_tag, tl_inds)
        br_tag = _tranpose_and_gather_feat(br_tag, br_inds)
        tl_off = _tranpose_and_gather_feat(tl_off, tl_inds)
        br_off = _tranpose_and_gather_feat(br_off, br_inds)
        return [tl_heat], [br_heat], [tl_tag], [br_tag], [tl_off], [br_off]

    def _test(self, image, **kwargs):
        return _decode(*self._heads(image), **kwargs)

    def forward(self, *xs, test=False, **kwargs):
        if not test:
            return self._train(*xs, **kwargs)
        return self._test(*xs, **kwargs)


# ----------------------------------------------------------------------------------- losses
def _focal_loss(preds, gt):
    pos_inds = gt.eq(1)
    neg_inds = gt.lt(1)
    neg_weights = torch.pow(1 - gt[neg_inds], 4)
    loss = 0
    for pred in preds:
        pos_pred = pred[pos_inds]
        neg_pred = pred[neg_inds]
        pos_loss = torch.log(pos_pred) * torch.pow(1 - pos_pred, 2)
        neg_loss = torch.log(1 - neg_pred) * torch.pow(neg_pred, 2) * neg_weights
        num_pos = pos_inds.float().sum()
        pos_loss = pos_loss.sum()
        neg_loss = neg_loss.sum()
        if pos_pred.nelement() == 0:
            loss = loss - neg_loss
        else:
            loss = loss - (pos_loss + neg_loss) / num_pos
    return loss


def _ae_loss(tag0, tag1, mask):
    num = mask.sum(dim=1, keepdim=True).float()
    tag0 = tag0.squeeze(2)
    tag1 = tag1.squeeze(2)
    tag_mean = (tag0 + tag1) / 2
    tag0 = torch.pow(tag0 - tag_mean, 2) / (num + 1e-4)
    tag0 = tag0[mask.bool()].sum()
    tag1 = torch.pow(tag1 - tag_mean, 2) / (num + 1e-4)
    tag1 = tag1[mask.bool()].sum()
    pull = tag0 + tag1
    mask = mask.unsqueeze(1) + mask.unsqueeze(2)
    mask = mask.eq(2)
    num = num.unsqueeze(2)
    num2 = (num - 1) * num
    dist = tag_mean.unsqueeze(1) - tag_mean.unsqueeze(2)
    dist = 1 - torch.abs(dist)
    dist = nn.functional.relu(dist, inplace=True)
    dist = dist - 1 / (num + 1e-4)
    dist = dist / (num2 + 1e-4)
    dist = dist[mask]
    push = dist.sum()
    return pull, push


def _off_loss(off, gt_off, mask):
    num = mask.float().sum()
    mask = mask.unsqueeze(2).expand_as(gt_off).bool()
    off = off[mask]
    gt_off = gt_off[mask]
    off_loss = nn.functional.smooth_l1_loss(off, gt_off, reduction="sum")
    off_loss = off_loss / (num + 1e-4)
    return off_loss


class CornerNet_Loss(nn.Module):
    def __init__(self, pull_weight=1, push_weight=1, off_weight=1, focal_loss=_focal_loss):
        super(CornerNet_Loss, self).__init__()
        self.pull_weight = pull_weight
        self.push_weight = push_weight
        self.off_weight = off_weight
        self.focal_loss = focal_loss
        self.ae_loss = _ae_loss
        self.off_loss = _off_loss

    def forward(self, outs, targets):
        tl_heats, br_heats, tl_tags, br_tags, tl_offs, br_offs = outs
        gt_tl_heat, gt_br_heat, gt_mask, gt_tl_off, gt_br_off = targets
        # focal loss
        tl_heats = [_sigmoid(t) for t in tl_heats]
        br_heats = [_sigmoid(b) for b in br_heats]
        focal_loss = 0
        focal_loss += self.focal_loss(tl_heats, gt_tl_heat)
        focal_loss += self.focal_loss(br_heats, gt_br_heat)
        # tag loss
        pull_loss, push_loss = 0, 0
        for tl_tag, br_tag in zip(tl_tags, br_tags):
            pull, push = self.ae_loss(tl_tag, br_tag, gt_mask)
            pull_loss += pull
            push_loss += push
        pull_loss = self.pull_weight * pull_loss
        push_loss = self.push_weight * push_loss
        off_loss = 0
        for tl_off, br_off in zip(tl_offs, br_offs):
            off_loss += self.off_loss(tl_off, gt_tl_off, gt_mask)
            off_loss += self.off_loss(br_off, gt_br_off, gt_mask)
        off_loss = self.off_weight * off_loss
        loss = (focal_loss + pull_loss + push_loss + off_loss) / max(len(tl_heats), 1)
        return loss.unsqueeze(0), (focal_loss, pull_loss, push_loss, off_loss)


# ----------------------------------------------------------------------------------- targets (numpy)
def gaussian2D(shape, sigma=1):
    m, n = [(ss - 1.) / 2. for ss in shape]
    y, x = np.ogrid[-m:m + 1, -n:n + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h


def draw_gaussian(heatmap, center, radius, k=1):
    diameter = 2 * radius + 1
    gaussian = gaussian2D((diameter, diameter), sigma=diameter / 6)
    x, y = center
    height, width = heatmap.shape[0:2]
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    masked_heatmap = heatmap[y - top:y + bottom, x - left:x + right]
    masked_gaussian = gaussian[radius - top:radius + bottom, radius - left:radius + right]
    np.maximum(masked_heatmap, masked_gaussian * k, out=masked_heatmap)


def gaussian_radius(det_size, min_overlap):
    height, width = det_size
    a1 = 1
    b1 = (height + width)
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    sq1 = np.sqrt(b1 ** 2 - 4 * a1 * c1)
    r1 = (b1 - sq1) / (2 * a1)
    a2 = 4
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    sq2 = np.sqrt(b2 ** 2 - 4 * a2 * c2)
    r2 = (b2 - sq2) / (2 * a2)
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    sq3 = np.sqrt(b3 ** 2 - 4 * a3 * c3)
    r3 = (b3 + sq3) / (2 * a3)
    return min(r1, r2, r3)


COLOURS = np.array([[1.0, -0.4, 0.2], [-0.5, 0.9, -0.6]], dtype=np.float32)


def make_batch(n):
    images = 0.3 * rng.randn(n, 3, IMG, IMG).astype(np.float32)
    tl_heat = np.zeros((n, CLASSES, OUT, OUT), dtype=np.float32)
    br_heat = np.zeros((n, CLASSES, OUT, OUT), dtype=np.float32)
    tl_tags = np.zeros((n, MAX_TAGS), dtype=np.int64)
    br_tags = np.zeros((n, MAX_TAGS), dtype=np.int64)
    tl_regrs = np.zeros((n, MAX_TAGS, 2), dtype=np.float32)
    br_regrs = np.zeros((n, MAX_TAGS, 2), dtype=np.float32)
    tag_masks = np.zeros((n, MAX_TAGS), dtype=np.uint8)
    boxes = []
    for b in range(n):
        dets = []
        for t in range(rng.randint(1, 3)):
            cls = rng.randint(CLASSES)
            w, h = rng.randint(8, 17, size=2)
            x0, y0 = rng.randint(0, IMG - w), rng.randint(0, IMG - h)
            x1, y1 = x0 + w - 1, y0 + h - 1
            images[b, :, y0:y1 + 1, x0:x1 + 1] += COLOURS[cls][:, None, None]
            dets.append((x0, y0, x1, y1, cls))
            fxtl, fytl, fxbr, fybr = x0 / STRIDE, y0 / STRIDE, x1 / STRIDE, y1 / STRIDE
            xtl, ytl, xbr, ybr = int(fxtl), int(fytl), int(fxbr), int(fybr)
            radius = max(0, int(gaussian_radius((math.ceil(h / STRIDE), math.ceil(w / STRIDE)), 0.3)))
            draw_gaussian(tl_heat[b, cls], [xtl, ytl], radius)
            draw_gaussian(br_heat[b, cls], [xbr, ybr], radius)
            tl_regrs[b, t, :] = [fxtl - xtl, fytl - ytl]
            br_regrs[b, t, :] = [fxbr - xbr, fybr - ybr]
            tl_tags[b, t] = ytl * OUT + xtl
            br_tags[b, t] = ybr * OUT + xbr
            tag_masks[b, t] = 1
        boxes.append(dets)
    as_t = torch.from_numpy
    return (as_t(images), as_t(tl_tags), as_t(br_tags),
            (as_t(tl_heat), as_t(br_heat), as_t(tag_masks), as_t(tl_regrs), as_t(br_regrs)), boxes)


def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@torch.no_grad()
def evaluate(model, images, boxes, top=5):
    model.eval()
    dets = model(images, test=True, K=10, kernel=3, ae_threshold=0.5, num_dets=20)
    model.train()
    hit, total, best_ious = 0, 0, []
    for b, gts in enumerate(boxes):
        d = dets[b]
        d = d[d[:, 4] > 0]
        pred = (d[:top, :4] * STRIDE).tolist()
        pcls = d[:top, 7].tolist()
        for x0, y0, x1, y1, cls in gts:
            ious = [box_iou(p, (x0, y0, x1, y1)) for p, c in zip(pred, pcls) if int(c) == cls]
            best = max(ious) if ious else 0.0
            best_ious.append(best)
            hit += best >= 0.5
            total += 1
    return hit / total, float(np.mean(best_ious))


# ----------------------------------------------------------------------------------- pooling checks
x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
pools_ok = True
for pool, dim, reverse in ((TopPool(), 2, True), (BottomPool(), 2, False), (LeftPool(), 3, True), (RightPool(), 3, False)):
    ref, _ = loop_pool(x, dim, reverse)
    pools_ok &= bool(np.array_equal(pool(x).numpy(), ref))
grad_ok = True
for pool, dim in ((TopPool(), 2), (LeftPool(), 3)):
    xg = x.clone().requires_grad_(True)
    upstream = torch.randn(x.shape, dtype=torch.float64)
    (pool(xg) * upstream).sum().backward()
    _, arg = loop_pool(x, dim, True)
    a_up = np.moveaxis(upstream.numpy(), dim, -1)
    a_arg = np.moveaxis(arg, dim, -1)
    expect = np.zeros_like(a_up)
    for idx in np.ndindex(*a_up.shape[:-1]):
        for i in range(a_up.shape[-1]):
            expect[idx + (a_arg[idx + (i,)],)] += a_up[idx + (i,)]
    grad_ok &= bool(np.allclose(xg.grad.numpy(), np.moveaxis(expect, -1, dim)))
    grad_ok &= bool((xg.grad != 0).sum() <= x.numel())
print(f"cummax pools == loop: {pools_ok}, gradient to running maxima: {grad_ok}")

# ----------------------------------------------------------------------------------- training
model = CornerNet()
criterion = CornerNet_Loss()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
print(f"parameters: {sum(p.numel() for p in model.parameters())}")

val_images, _, _, _, val_boxes = make_batch(24)
recall0, iou0 = evaluate(model, val_images, val_boxes)
print(f"untrained: recall@0.5 {recall0:.4f} mean best IoU {iou0:.4f}")

iterations, batch_size = 150, 8
recent = []
for it in range(1, iterations + 1):
    images, tl_inds, br_inds, targets, _ = make_batch(batch_size)
    outs = model(images, tl_inds, br_inds)
    loss, (focal, pull, push, off) = criterion(outs, targets)
    loss = loss.mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    recent = (recent + [loss.item()])[-30:]
    if it % 30 == 0:
        print(f"iter {it}: loss {loss.item():.4f} focal {focal.item():.4f} pull {pull.item():.4f} "
              f"push {push.item():.4f} off {off.item():.4f}")

recall1, iou1 = evaluate(model, val_images, val_boxes)
print(f"trained: recall@0.5 {recall1:.4f} mean best IoU {iou1:.4f}")
improved = int(recall1 > recall0 and iou1 > iou0)
print(f"FINAL loss={np.mean(recent):.4f} recall={recall1:.4f} iou={iou1:.4f} "
      f"improved={improved} pools_ok={int(pools_ok)} grad_ok={int(grad_ok)}")
