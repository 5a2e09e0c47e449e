"""YOLOv8's detection loss in the layout of ultralytics (utils/tal.py, utils/loss.py, nn/modules/head.py)
at toy size, on synthetic images of coloured rectangles.

Images are 32x32 with one to three axis-aligned rectangles of two classes (a red-ish and a green-ish
fill) on a noisy background; labels come as ultralytics batches (``batch_idx``, ``cls``, normalised
``xywh`` ``bboxes``) and are padded per image by ``v8DetectionLoss.preprocess`` (``i.unique(return_counts=
True)``, ``torch.zeros(batch_size, counts.max(), ne - 1)``, ``if n := matches.sum()``, ``xywh2xyxy`` on
``mul_(scale_tensor)``).

The model is a stride-8/16 backbone of ultralytics ``Conv`` (``autopad``, ``Conv2d`` + ``BatchNorm2d`` +
``SiLU``) and the ``Detect`` head: ``cv2``/``cv3`` ``nn.ModuleList``s of box (``4 * reg_max`` channels)
and class branches, ``bias_init`` by stride, ``DFL`` as a frozen 1x1 ``nn.Conv2d`` whose weight is
``torch.arange(c1)`` (the softmax expectation), ``make_anchors`` by ``torch.meshgrid(sy, sx,
indexing="ij")`` + ``torch.full((h * w, 1), stride)`` and ``dist2bbox``. The loss is ``v8DetectionLoss``:
``bbox_decode`` by ``softmax(3).matmul(self.proj)`` (against the ``DFL`` conv), ``TaskAlignedAssigner``
(``select_candidates_in_gts`` by ``amin(3).gt_(eps)``, ``get_box_metrics`` with ``ind[0]``/``ind[1]``
fancy indexing and boolean-mask assignment, the metric ``bbox_scores.pow(alpha) * overlaps.pow(beta)``,
``select_topk_candidates`` by ``torch.topk`` + ``masked_fill_`` + an int8 ``scatter_add_`` count,
``select_highest_overlaps`` by ``argmax`` + ``scatter_``, ``get_targets`` by ``scatter_`` one-hot and
``torch.where(fg_scores_mask > 0, target_scores, 0)``, the normalised alignment targets), BCE with logits
on the soft targets, ``BboxLoss`` with CIoU (``atan``, the ``torch.no_grad()`` ``alpha``) and ``DFLoss``
(``F.cross_entropy(pred_dist, tl.view(-1), reduction="none").view(tl.shape) * wl + ... * wr``), gains
7.5 / 0.5 / 1.5, ``max(target_scores.sum(), 1)``, AdamW.

Checked: the loss falling; the assigner's candidates, metrics and top-k positives, and its resolution
of anchors claimed by several boxes, against a brute-force loop over images, boxes and anchors; the
DFL conv decoding equal to the ``matmul`` expectation; recall at IoU 0.5 and mean best IoU on held-out
images after training.
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

IMG = 32
NC = 2
COLOURS = np.array([[1.0, 0.1, 0.2], [0.1, 0.9, 0.3]], dtype=np.float32)


def make_batch(n):
    images = 0.15 * rng.randn(n, 3, IMG, IMG).astype(np.float32)
    batch_idx, cls, bboxes = [], [], []
    for i in range(n):
        for _ in range(rng.randint(1, 4)):
            c = rng.randint(NC)
            w, h = rng.randint(6, 17, size=2)
            x1, y1 = rng.randint(0, IMG - w + 1), rng.randint(0, IMG - h + 1)
            images[i, :, y1:y1 + h, x1:x1 + w] = COLOURS[c][:, None, None] + 0.15 * rng.randn(3, h, w)
            batch_idx.append(i)
            cls.append(c)
            bboxes.append([(x1 + w / 2) / IMG, (y1 + h / 2) / IMG, w / IMG, h / IMG])
    return torch.from_numpy(images), {
        "batch_idx": torch.tensor(batch_idx, dtype=torch.float32),
        "cls": torch.tensor(cls, dtype=torch.float32).view(-1, 1),
        "bboxes": torch.tensor(bboxes, dtype=torch.float32),
    }


# ----------------------------------------------------------------------------- ultralytics utils
def xywh2xyxy(x):
    assert x.shape[-1] == 4, f"input shape last dimension expected 4 but input shape is {x.shape}"
    y = torch.empty_like(x)
    xy = x[..., :2]
    wh = x[..., 2:] / 2
    y[..., :2] = xy - wh
    y[..., 2:] = xy + wh
    return y


def make_anchors(feats, strides, grid_cell_offset=0.5):
    """Generate anchors from features."""
    anchor_points, stride_tensor = [], []
    assert feats is not None
    dtype, device = feats[0].dtype, feats[0].device
    for i, stride in enumerate(strides):
        _, _, h, w = feats[i].shape
        sx = torch.arange(end=w, device=device, dtype=dtype) + grid_cell_offset  # shift x
        sy = torch.arange(end=h, device=device, dtype=dtype) + grid_cell_offset  # shift y
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        anchor_points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_tensor.append(torch.full((h * w, 1), stride, dtype=dtype, device=device))
    return torch.cat(anchor_points), torch.cat(stride_tensor)


def dist2bbox(distance, anchor_points, xywh=True, dim=-1):
    """Transform distance(ltrb) to box(xywh or xyxy)."""
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if xywh:
        c_xy = (x1y1 + x2y2) / 2
        wh = x2y2 - x1y1
        return torch.cat((c_xy, wh), dim)  # xywh bbox
    return torch.cat((x1y1, x2y2), dim)  # xyxy bbox


def bbox2dist(anchor_points, bbox, reg_max):
    """Transform bbox(xyxy) to dist(ltrb)."""
    x1y1, x2y2 = bbox.chunk(2, -1)
    return torch.cat((anchor_points - x1y1, x2y2 - anchor_points), -1).clamp_(0, reg_max - 0.01)


def bbox_iou(box1, box2, xywh=True, GIoU=False, DIoU=False, CIoU=False, eps=1e-7):
    if xywh:  # transform from xywh to xyxy
        (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.chunk(4, -1), box2.chunk(4, -1)
        w1_, h1_, w2_, h2_ = w1 / 2, h1 / 2, w2 / 2, h2 / 2
        b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1_, x1 + w1_, y1 - h1_, y1 + h1_
        b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2_, x2 + w2_, y2 - h2_, y2 + h2_
    else:  # x1, y1, x2, y2 = box1
        b1_x1, b1_y1, b1_x2, b1_y2 = box1.chunk(4, -1)
        b2_x1, b2_y1, b2_x2, b2_y2 = box2.chunk(4, -1)
        w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
        w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps

    # Intersection area
    inter = (b1_x2.minimum(b2_x2) - b1_x1.maximum(b2_x1)).clamp_(0) * (
        b1_y2.minimum(b2_y2) - b1_y1.maximum(b2_y1)
    ).clamp_(0)

    # Union Area
    union = w1 * h1 + w2 * h2 - inter + eps

    # IoU
    iou = inter / union
    if CIoU or DIoU or GIoU:
        cw = b1_x2.maximum(b2_x2) - b1_x1.minimum(b2_x1)  # convex (smallest enclosing box) width
        ch = b1_y2.maximum(b2_y2) - b1_y1.minimum(b2_y1)  # convex height
        if CIoU or DIoU:  # Distance or Complete IoU https://arxiv.org/abs/1911.08287v1
            c2 = cw.pow(2) + ch.pow(2) + eps  # convex diagonal squared
            rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2).pow(2) + (b2_y1 + b2_y2 - b1_y1 - b1_y2).pow(2)) / 4
            if CIoU:  # https://github.com/Zzh-tju/DIoU-SSD-pytorch/blob/master/utils/box/box_utils.py#L47
                v = (4 / math.pi**2) * ((w2 / h2).atan() - (w1 / h1).atan()).pow(2)
                with torch.no_grad():
                    alpha = v / (v - iou + (1 + eps))
                return iou - (rho2 / c2 + v * alpha)  # CIoU
            return iou - rho2 / c2  # DIoU
        c_area = cw * ch + eps  # convex area
        return iou - (c_area - union) / c_area  # GIoU https://arxiv.org/pdf/1902.09630.pdf
    return iou  # IoU


# ----------------------------------------------------------------------------- TaskAlignedAssigner
class TaskAlignedAssigner(nn.Module):
    def __init__(self, topk=13, num_classes=80, alpha=1.0, beta=6.0, eps=1e-9):
        super().__init__()
        self.topk = topk
        self.num_classes = num_classes
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    @torch.no_grad()
    def forward(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
        self.bs = pd_scores.shape[0]
        self.n_max_boxes = gt_bboxes.shape[1]

        mask_pos, align_metric, overlaps = self.get_pos_mask(
            pd_scores, pd_bboxes, gt_labels, gt_bboxes, anc_points, mask_gt
        )
        target_gt_idx, fg_mask, mask_pos = self.select_highest_overlaps(mask_pos, overlaps, self.n_max_boxes)

        # Assigned target
        target_labels, target_bboxes, target_scores = self.get_targets(gt_labels, gt_bboxes, target_gt_idx, fg_mask)

        # Normalize
        align_metric *= mask_pos
        pos_align_metrics = align_metric.amax(dim=-1, keepdim=True)  # b, max_num_obj
        pos_overlaps = (overlaps * mask_pos).amax(dim=-1, keepdim=True)  # b, max_num_obj
        norm_align_metric = (align_metric * pos_overlaps / (pos_align_metrics + self.eps)).amax(-2).unsqueeze(-1)
        target_scores = target_scores * norm_align_metric

        return target_labels, target_bboxes, target_scores, fg_mask.bool(), target_gt_idx

    def get_pos_mask(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, anc_points, mask_gt):
        mask_in_gts = self.select_candidates_in_gts(anc_points, gt_bboxes)
        # Get anchor_align metric, (b, max_num_obj, h*w)
        align_metric, overlaps = self.get_box_metrics(pd_scores, pd_bboxes, gt_labels, gt_bboxes, mask_in_gts * mask_gt)
        # Get topk_metric mask, (b, max_num_obj, h*w)
        mask_topk = self.select_topk_candidates(align_metric, topk_mask=mask_gt.expand(-1, -1, self.topk).bool())
        # Merge all mask to a final mask, (b, max_num_obj, h*w)
        mask_pos = mask_topk * mask_in_gts * mask_gt

        return mask_pos, align_metric, overlaps

    def get_box_metrics(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, mask_gt):
        na = pd_bboxes.shape[-2]
        mask_gt = mask_gt.bool()  # b, max_num_obj, h*w
        overlaps = torch.zeros([self.bs, self.n_max_boxes, na], dtype=pd_bboxes.dtype, device=pd_bboxes.device)
        bbox_scores = torch.zeros([self.bs, self.n_max_boxes, na], dtype=pd_scores.dtype, device=pd_scores.device)

        ind = torch.zeros([2, self.bs, self.n_max_boxes], dtype=torch.long)  # 2, b, max_num_obj
        ind[0] = torch.arange(end=self.bs).view(-1, 1).expand(-1, self.n_max_boxes)  # b, max_num_obj
        ind[1] = gt_labels.squeeze(-1)  # b, max_num_obj
        # Get the scores of each grid for each gt cls
        bbox_scores[mask_gt] = pd_scores[ind[0], :, ind[1]][mask_gt]  # b, max_num_obj, h*w

        # (b, max_num_obj, 1, 4), (b, 1, h*w, 4)
        pd_boxes = pd_bboxes.unsqueeze(1).expand(-1, self.n_max_boxes, -1, -1)[mask_gt]
        gt_boxes = gt_bboxes.unsqueeze(2).expand(-1, -1, na, -1)[mask_gt]
        overlaps[mask_gt] = self.iou_calculation(gt_boxes, pd_boxes)

        align_metric = bbox_scores.pow(self.alpha) * overlaps.pow(self.beta)
        return align_metric, overlaps

    def iou_calculation(self, gt_bboxes, pd_bboxes):
        return bbox_iou(gt_bboxes, pd_bboxes, xywh=False, CIoU=True).squeeze(-1).clamp_(0)

    def select_topk_candidates(self, metrics, largest=True, topk_mask=None):
        # (b, max_num_obj, topk)
        topk_metrics, topk_idxs = torch.topk(metrics, self.topk, dim=-1, largest=largest)
        if topk_mask is None:
            topk_mask = (topk_metrics.max(-1, keepdim=True)[0] > self.eps).expand_as(topk_idxs)
        # (b, max_num_obj, topk)
        topk_idxs.masked_fill_(~topk_mask, 0)

        # (b, max_num_obj, topk, h*w) -> (b, max_num_obj, h*w)
        count_tensor = torch.zeros(metrics.shape, dtype=torch.int8, device=topk_idxs.device)
        ones = torch.ones_like(topk_idxs[:, :, :1], dtype=torch.int8, device=topk_idxs.device)
        for k in range(self.topk):
            # Expand topk_idxs for each value of k and add 1 at the specified positions
            count_tensor.scatter_add_(-1, topk_idxs[:, :, k : k + 1], ones)
        # Filter invalid bboxes
        count_tensor.masked_fill_(count_tensor > 1, 0)

        return count_tensor.to(metrics.dtype)

    def get_targets(self, gt_labels, gt_bboxes, target_gt_idx, fg_mask):
        # Assigned target labels, (b, 1)
        batch_ind = torch.arange(end=self.bs, dtype=torch.int64, device=gt_labels.device)[..., None]
        target_gt_idx = target_gt_idx + batch_ind * self.n_max_boxes  # (b, h*w)
        target_labels = gt_labels.long().flatten()[target_gt_idx]  # (b, h*w)

        # Assigned target boxes, (b, max_num_obj, 4) -> (b, h*w, 4)
        target_bboxes = gt_bboxes.view(-1, gt_bboxes.shape[-1])[target_gt_idx]

        # Assigned target scores
        target_labels.clamp_(0)

        # 10x faster than F.one_hot()
        target_scores = torch.zeros(
            (target_labels.shape[0], target_labels.shape[1], self.num_classes),
            dtype=torch.int64,
            device=target_labels.device,
        )  # (b, h*w, 80)
        target_scores.scatter_(2, target_labels.unsqueeze(-1), 1)

        fg_scores_mask = fg_mask[:, :, None].repeat(1, 1, self.num_classes)  # (b, h*w, 80)
        target_scores = torch.where(fg_scores_mask > 0, target_scores, 0)

        return target_labels, target_bboxes, target_scores

    @staticmethod
    def select_candidates_in_gts(xy_centers, gt_bboxes, eps=1e-9):
        n_anchors = xy_centers.shape[0]
        bs, n_boxes, _ = gt_bboxes.shape
        lt, rb = gt_bboxes.view(-1, 1, 4).chunk(2, 2)  # left-top, right-bottom
        bbox_deltas = torch.cat((xy_centers[None] - lt, rb - xy_centers[None]), dim=2).view(bs, n_boxes, n_anchors, -1)
        return bbox_deltas.amin(3).gt_(eps)

    @staticmethod
    def select_highest_overlaps(mask_pos, overlaps, n_max_boxes):
        # Convert (b, n_max_boxes, h*w) -> (b, h*w)
        fg_mask = mask_pos.sum(-2)
        if fg_mask.max() > 1:  # one anchor is assigned to multiple gt_bboxes
            mask_multi_gts = (fg_mask.unsqueeze(1) > 1).expand(-1, n_max_boxes, -1)  # (b, n_max_boxes, h*w)
            max_overlaps_idx = overlaps.argmax(1)  # (b, h*w)

            is_max_overlaps = torch.zeros(mask_pos.shape, dtype=mask_pos.dtype, device=mask_pos.device)
            is_max_overlaps.scatter_(1, max_overlaps_idx.unsqueeze(1), 1)

            mask_pos = torch.where(mask_multi_gts, is_max_overlaps, mask_pos).float()  # (b, n_max_boxes, h*w)
            fg_mask = mask_pos.sum(-2)
        # Find each grid serve which gt(index)
        target_gt_idx = mask_pos.argmax(-2)  # (b, h*w)
        return target_gt_idx, fg_mask, mask_pos


# ----------------------------------------------------------------------------- losses
class DFLoss(nn.Module):
    """Criterion class for computing DFL losses during training."""

    def __init__(self, reg_max=16) -> None:
        super().__init__()
        self.reg_max = reg_max

    def __call__(self, pred_dist, target):
        target = target.clamp_(0, self.reg_max - 1 - 0.01)
        tl = target.long()  # target left
        tr = tl + 1  # target right
        wl = tr - target  # weight left
        wr = 1 - wl  # weight right
        return (
            F.cross_entropy(pred_dist, tl.view(-1), reduction="none").view(tl.shape) * wl
            + F.cross_entropy(pred_dist, tr.view(-1), reduction="none").view(tl.shape) * wr
        ).mean(-1, keepdim=True)


class BboxLoss(nn.Module):
    def __init__(self, reg_max=16):
        super().__init__()
        self.dfl_loss = DFLoss(reg_max) if reg_max > 1 else None

    def forward(self, pred_dist, pred_bboxes, anchor_points, target_bboxes, target_scores, target_scores_sum, fg_mask):
        weight = target_scores.sum(-1)[fg_mask].unsqueeze(-1)
        iou = bbox_iou(pred_bboxes[fg_mask], target_bboxes[fg_mask], xywh=False, CIoU=True)
        loss_iou = ((1.0 - iou) * weight).sum() / target_scores_sum

        target_ltrb = bbox2dist(anchor_points, target_bboxes, self.dfl_loss.reg_max - 1)
        loss_dfl = self.dfl_loss(pred_dist[fg_mask].view(-1, self.dfl_loss.reg_max), target_ltrb[fg_mask]) * weight
        loss_dfl = loss_dfl.sum() / target_scores_sum
        return loss_iou, loss_dfl


class v8DetectionLoss:
    def __init__(self, model, tal_topk=10):
        device = next(model.parameters()).device
        m = model.detect
        self.bce = nn.BCEWithLogitsLoss(reduction="none")
        self.hyp = {"box": 7.5, "cls": 0.5, "dfl": 1.5}
        self.stride = m.stride
        self.nc = m.nc
        self.no = m.nc + m.reg_max * 4
        self.reg_max = m.reg_max
        self.device = device
        self.use_dfl = m.reg_max > 1
        self.assigner = TaskAlignedAssigner(topk=tal_topk, num_classes=self.nc, alpha=0.5, beta=6.0)
        self.bbox_loss = BboxLoss(m.reg_max).to(device)
        self.proj = torch.arange(m.reg_max, dtype=torch.float, device=device)

    def preprocess(self, targets, batch_size, scale_tensor):
        nl, ne = targets.shape
        if nl == 0:
            out = torch.zeros(batch_size, 0, ne - 1, device=self.device)
        else:
            i = targets[:, 0]  # image index
            _, counts = i.unique(return_counts=True)
            counts = counts.to(dtype=torch.int32)
            out = torch.zeros(batch_size, counts.max(), ne - 1, device=self.device)
            for j in range(batch_size):
                matches = i == j
                if n := matches.sum():
                    out[j, :n] = targets[matches, 1:]
            out[..., 1:5] = xywh2xyxy(out[..., 1:5].mul_(scale_tensor))
        return out

    def bbox_decode(self, anchor_points, pred_dist):
        if self.use_dfl:
            b, a, c = pred_dist.shape  # batch, anchors, channels
            pred_dist = pred_dist.view(b, a, 4, c // 4).softmax(3).matmul(self.proj.type(pred_dist.dtype))
        return dist2bbox(pred_dist, anchor_points, xywh=False)

    def targets_of(self, feats, batch):
        batch_size = feats[0].shape[0]
        dtype = feats[0].dtype
        imgsz = torch.tensor(feats[0].shape[2:], device=self.device, dtype=dtype) * self.stride[0]  # image size (h,w)
        anchor_points, stride_tensor = make_anchors(feats, self.stride, 0.5)
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)  # cls, xyxy
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)
        return anchor_points, stride_tensor, gt_labels, gt_bboxes, mask_gt

    def split_preds(self, feats):
        pred_distri, pred_scores = torch.cat([xi.view(feats[0].shape[0], self.no, -1) for xi in feats], 2).split(
            (self.reg_max * 4, self.nc), 1
        )
        return pred_distri.permute(0, 2, 1).contiguous(), pred_scores.permute(0, 2, 1).contiguous()

    def __call__(self, preds, batch):
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        feats = preds[1] if isinstance(preds, tuple) else preds
        pred_distri, pred_scores = self.split_preds(feats)
        dtype = pred_scores.dtype
        batch_size = pred_scores.shape[0]
        anchor_points, stride_tensor, gt_labels, gt_bboxes, mask_gt = self.targets_of(feats, batch)

        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)  # xyxy, (b, h*w, 4)

        _, target_bboxes, target_scores, fg_mask, _ = self.assigner(
            pred_scores.detach().sigmoid(),
            (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
        )

        target_scores_sum = max(target_scores.sum(), 1)

        # Cls loss
        loss[1] = self.bce(pred_scores, target_scores.to(dtype)).sum() / target_scores_sum  # BCE

        # Bbox loss
        if fg_mask.sum():
            target_bboxes /= stride_tensor
            loss[0], loss[2] = self.bbox_loss(
                pred_distri, pred_bboxes, anchor_points, target_bboxes, target_scores, target_scores_sum, fg_mask
            )

        loss[0] *= self.hyp["box"]  # box gain
        loss[1] *= self.hyp["cls"]  # cls gain
        loss[2] *= self.hyp["dfl"]  # dfl gain

        return loss.sum() * batch_size, loss.detach()  # loss(box, cls, dfl)


# ----------------------------------------------------------------------------- model
def autopad(k, p=None, d=1):
    """Pad to 'same' shape outputs."""
    if d > 1:
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


class Conv(nn.Module):
    default_act = nn.SiLU()

    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, d=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = self.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class DFL(nn.Module):
    def __init__(self, c1=16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        x = torch.arange(c1, dtype=torch.float)
        self.conv.weight.data[:] = nn.Parameter(x.view(1, c1, 1, 1))
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape  # batch, channels, anchors
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


class Detect(nn.Module):
    def __init__(self, nc=80, reg_max=8, ch=()):
        super().__init__()
        self.nc = nc  # number of classes
        self.nl = len(ch)  # number of detection layers
        self.reg_max = reg_max
        self.no = nc + self.reg_max * 4  # number of outputs per anchor
        self.stride = torch.zeros(self.nl)  # strides computed during build
        c2, c3 = max((16, ch[0] // 4, self.reg_max * 4)), max(ch[0], min(self.nc, 100))  # channels
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1)) for x in ch
        )
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, self.nc, 1)) for x in ch)
        self.dfl = DFL(self.reg_max) if self.reg_max > 1 else nn.Identity()

    def forward(self, x):
        for i in range(self.nl):
            x[i] = torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1)
        if self.training:  # Training path
            return x
        shape = x[0].shape  # BCHW
        self.anchors, self.strides = (x.transpose(0, 1) for x in make_anchors(x, self.stride, 0.5))
        x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
        box, cls = x_cat.split((self.reg_max * 4, self.nc), 1)
        dbox = self.decode_bboxes(self.dfl(box), self.anchors.unsqueeze(0)) * self.strides
        return torch.cat((dbox, cls.sigmoid()), 1), x

    def bias_init(self):
        m = self
        for a, b, s in zip(m.cv2, m.cv3, m.stride):  # from
            a[-1].bias.data[:] = 1.0  # box
            b[-1].bias.data[: m.nc] = math.log(5 / m.nc / (IMG / s) ** 2)  # cls (.01 objects, 80 classes, 640 img)

    def decode_bboxes(self, bboxes, anchors):
        return dist2bbox(bboxes, anchors, xywh=True, dim=1)


class TinyYOLO(nn.Module):
    def __init__(self, nc=NC, reg_max=8):
        super().__init__()
        self.stem = nn.Sequential(Conv(3, 16, 3, 2), Conv(16, 24, 3, 2))
        self.p3 = Conv(24, 32, 3, 2)
        self.p4 = Conv(32, 32, 3, 2)
        self.detect = Detect(nc, reg_max, ch=(32, 32))
        self.detect.stride = torch.tensor([8.0, 16.0])
        self.detect.bias_init()

    def forward(self, x):
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        return self.detect([p3, p4])


# ----------------------------------------------------------------------------- brute force
def brute_force_assign(assigner, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
    """The assigner written as loops over images, boxes and anchors."""
    bs, n_boxes, na = pd_scores.shape[0], gt_bboxes.shape[1], anc_points.shape[0]
    pos = np.zeros((bs, n_boxes, na), dtype=bool)
    metric = np.zeros((bs, n_boxes, na))
    overlap = np.zeros((bs, n_boxes, na))
    for b in range(bs):
        for g in range(n_boxes):
            if not mask_gt[b, g, 0]:
                continue
            x1, y1, x2, y2 = gt_bboxes[b, g].tolist()
            label = int(gt_labels[b, g, 0])
            for a in range(na):
                ax, ay = anc_points[a].tolist()
                if min(ax - x1, ay - y1, x2 - ax, y2 - ay) <= assigner.eps:
                    continue
                iou = bbox_iou(gt_bboxes[b, g][None], pd_bboxes[b, a][None], xywh=False, CIoU=True).item()
                overlap[b, g, a] = max(iou, 0.0)
                metric[b, g, a] = pd_scores[b, a, label].item() ** assigner.alpha * overlap[b, g, a] ** assigner.beta
            ranked = sorted(range(na), key=lambda a: -metric[b, g, a])[: assigner.topk]
            for a in ranked:
                if metric[b, g, a] > 0:
                    pos[b, g, a] = True
    return pos, metric, overlap


def brute_force_resolve(mask_pos, overlaps):
    bs, n_boxes, na = mask_pos.shape
    fg = np.zeros((bs, na), dtype=bool)
    gt_idx = np.zeros((bs, na), dtype=np.int64)
    for b in range(bs):
        for a in range(na):
            owners = [g for g in range(n_boxes) if mask_pos[b, g, a]]
            if not owners:
                continue
            fg[b, a] = True
            gt_idx[b, a] = owners[0] if len(owners) == 1 else int(np.argmax(overlaps[b, :, a]))
    return fg, gt_idx


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model, images, batch, conf=0.25):
    model.eval()
    y, _ = model(images)
    model.train()
    boxes_xywh, scores = y[:, :4].transpose(1, 2), y[:, 4:].transpose(1, 2)
    boxes = xywh2xyxy(boxes_xywh)
    gt = xywh2xyxy(batch["bboxes"] * IMG)
    hits, best = 0, []
    for k in range(len(gt)):
        b, c = int(batch["batch_idx"][k]), int(batch["cls"][k, 0])
        keep = scores[b, :, c] > conf
        if keep.any():
            ious = bbox_iou(gt[k][None], boxes[b][keep], xywh=False).squeeze(-1)
            best.append(ious.max().item())
        else:
            best.append(0.0)
        hits += best[-1] > 0.5
    return hits / len(gt), sum(best) / len(best)


train_images, train_batch = make_batch(64)
test_images, test_batch = make_batch(96)

model = TinyYOLO()
criterion = v8DetectionLoss(model, tal_topk=5)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)

batch_size = 16
first, last = None, None
for epoch in range(20):
    perm = torch.randperm(len(train_images))
    running = torch.zeros(3)
    for start in range(0, len(perm), batch_size):
        idx = perm[start:start + batch_size]
        keep = torch.isin(train_batch["batch_idx"].long(), idx)
        remap = torch.full((len(train_images),), -1, dtype=torch.long)
        remap[idx] = torch.arange(len(idx))
        batch = {
            "batch_idx": remap[train_batch["batch_idx"][keep].long()].float(),
            "cls": train_batch["cls"][keep],
            "bboxes": train_batch["bboxes"][keep],
        }
        loss, loss_items = criterion(model(train_images[idx]), batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
        optimizer.step()
        running += loss_items
    running /= len(perm) // batch_size
    if first is None:
        first = running.sum().item()
    last = running.sum().item()
    if epoch % 3 == 2 or epoch == 0:
        print(f"epoch {epoch}: box {running[0]:.4f}  cls {running[1]:.4f}  dfl {running[2]:.4f}")

recall, mean_iou = evaluate(model, test_images, test_batch)
print(f"test recall@0.5 {recall:.3f}  mean best IoU {mean_iou:.3f}")

# the assigner against loops, on the trained model's predictions
with torch.no_grad():
    feats = model(test_images[:8])
    sub = test_batch["batch_idx"] < 8
    batch = {k: v[sub] for k, v in test_batch.items()}
    pred_distri, pred_scores = criterion.split_preds(feats)
    anchor_points, stride_tensor, gt_labels, gt_bboxes, mask_gt = criterion.targets_of(feats, batch)
    pd_scores = pred_scores.sigmoid()
    pd_bboxes = criterion.bbox_decode(anchor_points, pred_distri) * stride_tensor
    assigner = criterion.assigner
    assigner.bs, assigner.n_max_boxes = pd_scores.shape[0], gt_bboxes.shape[1]
    mask_pos, align_metric, overlaps = assigner.get_pos_mask(
        pd_scores, pd_bboxes, gt_labels, gt_bboxes, anchor_points * stride_tensor, mask_gt)
    pos_bf, metric_bf, overlap_bf = brute_force_assign(
        assigner, pd_scores, pd_bboxes, anchor_points * stride_tensor, gt_labels, gt_bboxes, mask_gt)
    metric_err = max((align_metric.double() - torch.from_numpy(metric_bf)).abs().max().item(),
                     (overlaps.double() - torch.from_numpy(overlap_bf)).abs().max().item())
    positive = (mask_pos > 0) & (align_metric > 0)
    pos_mismatch = int((positive.numpy() != pos_bf).sum())
    target_gt_idx, fg_mask, _ = assigner.select_highest_overlaps(mask_pos, overlaps, assigner.n_max_boxes)
    fg_bf, idx_bf = brute_force_resolve(mask_pos.numpy() > 0, overlaps.numpy())
    fg = (fg_mask > 0).numpy()
    resolve_mismatch = int((fg != fg_bf).sum()) + int((target_gt_idx.numpy()[fg_bf] != idx_bf[fg_bf]).sum())
    n_multi = int((mask_pos.sum(-2) > 1).sum())
    # the DFL conv (softmax expectation by a 1x1 conv of arange) against the matmul decode
    box = torch.cat([xi.view(8, criterion.no, -1) for xi in feats], 2)[:, : criterion.reg_max * 4]
    by_conv = model.detect.dfl(box).transpose(1, 2)
    by_matmul = box.transpose(1, 2).reshape(8, -1, 4, criterion.reg_max).softmax(3).matmul(criterion.proj)
    dfl_err = (by_conv - by_matmul).abs().max().item()
print(f"assigner: {int(positive.sum())} positives, {n_multi} anchors claimed twice, "
      f"metric err {metric_err:.1e}, mismatches {pos_mismatch} + {resolve_mismatch}; DFL conv err {dfl_err:.1e}")
agree = float(pos_mismatch == 0 and resolve_mismatch == 0 and metric_err < 1e-5 and dfl_err < 1e-5)

print(f"FINAL loss_first={first:.4f} loss_last={last:.4f} loss_ratio={last / first:.4f} "
      f"recall50={recall:.4f} mean_iou={mean_iou:.4f} agree={agree:.0f}")
