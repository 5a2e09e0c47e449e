"""FCOS (Tian et al., ICCV 2019) in the layout of tianzhi0549/FCOS and torchvision's FCOS head, at a tiny
size on synthetic boxes.

Images are 32x32 with one to three rectangles of two classes (a bright bar pattern in a class channel, on
noise). A three-conv backbone gives two levels (strides 4 and 8); a shared head has ``cls_tower`` and
``bbox_tower`` (``Conv2d`` + ``GroupNorm`` + ``ReLU``, the paper's ``GroupNorm(32, C)`` at a small width),
``cls_logits`` with the prior-probability bias, ``bbox_pred`` through per-level ``Scale`` modules
(``nn.Parameter(torch.FloatTensor([init_value]))``) and ``torch.exp``, and a ``centerness`` branch.

Targets follow FCOS's ``FCOSLossComputation``: per-level point grids by ``torch.meshgrid(shifts_y,
shifts_x, indexing='ij')`` + ``torch.stack((shift_x, shift_y), dim=1) + stride // 2``; regression targets
``torch.stack([l, t, r, b], dim=2)``; ``is_in_boxes = reg.min(dim=2)[0] > 0``; size-of-interest ranges
``expand``-ed and ``torch.cat``-ed over levels; ``locations_to_gt_area = area[None].repeat(len(locations),
1)`` set to ``INF`` outside and ``min(dim=1)`` assignment; targets ``torch.split`` back per level and
normalised by the stride; centerness targets ``torch.sqrt((lr.min(-1)[0] / lr.max(-1)[0]) *
(tb.min(-1)[0] / tb.max(-1)[0]))``. Losses: ``sigmoid_focal_loss`` by hand (torchvision.ops' formula, which
must agree with maskrcnn_benchmark's ``sigmoid_focal_loss_cpu`` over ``class_range``), FCOS's ``IOULoss``
(``-torch.log(ious)`` and GIoU, weighted by the centerness targets), ``BCEWithLogitsLoss`` on centerness.

Inference decodes as ``FCOSPostProcessor``: ``sigmoid`` scores times centerness, candidates over
``pre_nms_thresh``, ``topk``, boxes from locations minus/plus the distances, clipping, then greedy per-class
NMS by hand. Checked: recall and AP at IoU 0.5 on held-out images, the two focal-loss routes agree, and
the IoU and GIoU losses of the targets themselves are zero.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

IMG = 32
NUM_CLASSES = 2
FPN_STRIDES = [4, 8]
OBJECT_SIZES_OF_INTEREST = [[-1, 7], [7, 100000000]]
INF = 100000000
N_TRAIN, N_TEST = 192, 96
BATCH = 16
EPOCHS = 16


# ----------------------------------------------------------------------------------- data
def make_image():
    img = 0.15 * rng.randn(3, IMG, IMG).astype(np.float32)
    boxes, labels = [], []
    for _ in range(rng.randint(1, 4)):
        for _attempt in range(20):
            w, h = rng.randint(5, 17), rng.randint(5, 17)
            x0, y0 = rng.randint(0, IMG - w + 1), rng.randint(0, IMG - h + 1)
            box = np.array([x0, y0, x0 + w, y0 + h], dtype=np.float32)
            if all(_iou_np(box, b) < 0.1 for b in boxes):
                break
        else:
            continue
        cls = rng.randint(1, NUM_CLASSES + 1)
        img[cls - 1, y0 : y0 + h, x0 : x0 + w] += 1.0
        if cls == 2:
            img[2, y0 : y0 + h, x0 : x0 + w : 2] += 0.6
        boxes.append(box)
        labels.append(cls)
    return img, np.stack(boxes), np.array(labels, dtype=np.int64)


def _iou_np(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def make_split(n):
    images, targets = [], []
    for _ in range(n):
        img, boxes, labels = make_image()
        images.append(torch.from_numpy(img))
        targets.append({"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)})
    return torch.stack(images), targets


train_images, train_targets = make_split(N_TRAIN)
test_images, test_targets = make_split(N_TEST)
print(f"train {tuple(train_images.shape)} objects {sum(len(t['labels']) for t in train_targets)}")


# ----------------------------------------------------------------------------------- model
class Scale(nn.Module):
    def __init__(self, init_value=1.0):
        super(Scale, self).__init__()  # noqa: UP008  (the repo's own spelling)
        self.scale = nn.Parameter(torch.FloatTensor([init_value]))

    def forward(self, input):
        return input * self.scale


class Backbone(nn.Module):
    def __init__(self, c=24):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.c3 = nn.Sequential(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.c4 = nn.Sequential(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU(inplace=True))

    def forward(self, x):
        x = self.stem(x)
        p3 = self.c3(x)
        p4 = self.c4(p3)
        return [p3, p4]


class FCOSHead(torch.nn.Module):
    def __init__(self, in_channels, num_classes, num_convs=1, prior_prob=0.01):
        super(FCOSHead, self).__init__()  # noqa: UP008
        num_classes = num_classes
        self.fpn_strides = FPN_STRIDES
        cls_tower = []
        bbox_tower = []
        for _ in range(num_convs):
            cls_tower.append(nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1, bias=True))
            cls_tower.append(nn.GroupNorm(8, in_channels))
            cls_tower.append(nn.ReLU())
            bbox_tower.append(nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1, bias=True))
            bbox_tower.append(nn.GroupNorm(8, in_channels))
            bbox_tower.append(nn.ReLU())
        self.add_module("cls_tower", nn.Sequential(*cls_tower))
        self.add_module("bbox_tower", nn.Sequential(*bbox_tower))
        self.cls_logits = nn.Conv2d(in_channels, num_classes, kernel_size=3, stride=1, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4, kernel_size=3, stride=1, padding=1)
        self.centerness = nn.Conv2d(in_channels, 1, kernel_size=3, stride=1, padding=1)

        for modules in [self.cls_tower, self.bbox_tower, self.cls_logits, self.bbox_pred, self.centerness]:
            for layer in modules.modules():
                if isinstance(layer, nn.Conv2d):
                    torch.nn.init.normal_(layer.weight, std=0.01)
                    torch.nn.init.constant_(layer.bias, 0)

        bias_value = -math.log((1 - prior_prob) / prior_prob)
        torch.nn.init.constant_(self.cls_logits.bias, bias_value)
        self.scales = nn.ModuleList([Scale(init_value=1.0) for _ in range(len(FPN_STRIDES))])

    def forward(self, x):
        logits = []
        bbox_reg = []
        centerness = []
        for l, feature in enumerate(x):  # noqa: E741
            cls_tower = self.cls_tower(feature)
            box_tower = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_tower))
            centerness.append(self.centerness(box_tower))
            bbox_reg.append(torch.exp(self.scales[l](self.bbox_pred(box_tower))))
        return logits, bbox_reg, centerness


class FCOS(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.head = FCOSHead(24, NUM_CLASSES)

    def forward(self, images):
        features = self.backbone(images)
        box_cls, box_regression, centerness = self.head(features)
        locations = self.compute_locations(features)
        return locations, box_cls, box_regression, centerness

    def compute_locations(self, features):
        locations = []
        for level, feature in enumerate(features):
            h, w = feature.size()[-2:]
            locations_per_level = self.compute_locations_per_level(h, w, self.head.fpn_strides[level], feature.device)
            locations.append(locations_per_level)
        return locations

    def compute_locations_per_level(self, h, w, stride, device):
        shifts_x = torch.arange(0, w * stride, step=stride, dtype=torch.float32, device=device)
        shifts_y = torch.arange(0, h * stride, step=stride, dtype=torch.float32, device=device)
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shift_x = shift_x.reshape(-1)
        shift_y = shift_y.reshape(-1)
        locations = torch.stack((shift_x, shift_y), dim=1) + stride // 2
        return locations


# ----------------------------------------------------------------------------------- losses
def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss"""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


def sigmoid_focal_loss_cpu(logits, targets, gamma, alpha):
    """maskrcnn_benchmark.layers.sigmoid_focal_loss (labels 1..C, 0 = background)"""
    num_classes = logits.shape[1]
    dtype = targets.dtype
    device = targets.device
    class_range = torch.arange(1, num_classes + 1, dtype=dtype, device=device).unsqueeze(0)
    t = targets.unsqueeze(1)
    p = torch.sigmoid(logits)
    term1 = (1 - p) ** gamma * torch.log(p)
    term2 = p**gamma * torch.log(1 - p)
    return -(t == class_range).float() * term1 * alpha - ((t != class_range) * (t >= 0)).float() * term2 * (1 - alpha)


class IOULoss(nn.Module):
    def __init__(self, loss_type="iou"):
        super(IOULoss, self).__init__()  # noqa: UP008
        self.loss_type = loss_type

    def forward(self, pred, target, weight=None):
        pred_left = pred[:, 0]
        pred_top = pred[:, 1]
        pred_right = pred[:, 2]
        pred_bottom = pred[:, 3]

        target_left = target[:, 0]
        target_top = target[:, 1]
        target_right = target[:, 2]
        target_bottom = target[:, 3]

        target_aera = (target_left + target_right) * (target_top + target_bottom)
        pred_aera = (pred_left + pred_right) * (pred_top + pred_bottom)

        w_intersect = torch.min(pred_left, target_left) + torch.min(pred_right, target_right)
        h_intersect = torch.min(pred_bottom, target_bottom) + torch.min(pred_top, target_top)

        g_w_intersect = torch.max(pred_left, target_left) + torch.max(pred_right, target_right)
        g_h_intersect = torch.max(pred_bottom, target_bottom) + torch.max(pred_top, target_top)
        ac_uion = g_w_intersect * g_h_intersect

        area_intersect = w_intersect * h_intersect
        area_union = target_aera + pred_aera - area_intersect

        ious = (area_intersect + 1.0) / (area_union + 1.0)
        gious = ious - (ac_uion - area_union) / ac_uion
        if self.loss_type == "iou":
            losses = -torch.log(ious)
        elif self.loss_type == "linear_iou":
            losses = 1 - ious
        elif self.loss_type == "giou":
            losses = 1 - gious
        else:
            raise NotImplementedError

        if weight is not None:
            return (losses * weight).sum()
        else:
            return losses.sum()


class FCOSLossComputation(object):  # noqa: UP004  (the repo's own spelling)
    def __init__(self, loss_type="giou"):
        self.box_reg_loss_func = IOULoss(loss_type)
        self.centerness_loss_func = nn.BCEWithLogitsLoss(reduction="sum")

    def prepare_targets(self, points, targets):
        object_sizes_of_interest = OBJECT_SIZES_OF_INTEREST
        expanded_object_sizes_of_interest = []
        for l, points_per_level in enumerate(points):  # noqa: E741
            object_sizes_of_interest_per_level = points_per_level.new_tensor(object_sizes_of_interest[l])
            expanded_object_sizes_of_interest.append(
                object_sizes_of_interest_per_level[None].expand(len(points_per_level), -1)
            )
        expanded_object_sizes_of_interest = torch.cat(expanded_object_sizes_of_interest, dim=0)
        num_points_per_level = [len(points_per_level) for points_per_level in points]
        self.num_points_per_level = num_points_per_level
        points_all_level = torch.cat(points, dim=0)
        labels, reg_targets = self.compute_targets_for_locations(
            points_all_level, targets, expanded_object_sizes_of_interest
        )

        for i in range(len(labels)):
            labels[i] = torch.split(labels[i], num_points_per_level, dim=0)
            reg_targets[i] = torch.split(reg_targets[i], num_points_per_level, dim=0)

        labels_level_first = []
        reg_targets_level_first = []
        for level in range(len(points)):
            labels_level_first.append(torch.cat([labels_per_im[level] for labels_per_im in labels], dim=0))
            reg_targets_per_level = torch.cat([reg_targets_per_im[level] for reg_targets_per_im in reg_targets], dim=0)
            reg_targets_per_level = reg_targets_per_level / FPN_STRIDES[level]
            reg_targets_level_first.append(reg_targets_per_level)
        return labels_level_first, reg_targets_level_first

    def compute_targets_for_locations(self, locations, targets, object_sizes_of_interest):
        labels = []
        reg_targets = []
        xs, ys = locations[:, 0], locations[:, 1]

        for im_i in range(len(targets)):
            targets_per_im = targets[im_i]
            bboxes = targets_per_im["boxes"]
            labels_per_im = targets_per_im["labels"]
            area = (bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])

            l = xs[:, None] - bboxes[:, 0][None]  # noqa: E741
            t = ys[:, None] - bboxes[:, 1][None]
            r = bboxes[:, 2][None] - xs[:, None]
            b = bboxes[:, 3][None] - ys[:, None]
            reg_targets_per_im = torch.stack([l, t, r, b], dim=2)

            is_in_boxes = reg_targets_per_im.min(dim=2)[0] > 0

            max_reg_targets_per_im = reg_targets_per_im.max(dim=2)[0]
            # limit the regression range for each location
            is_cared_in_the_level = (max_reg_targets_per_im >= object_sizes_of_interest[:, [0]]) & (
                max_reg_targets_per_im <= object_sizes_of_interest[:, [1]]
            )

            locations_to_gt_area = area[None].repeat(len(locations), 1)
            locations_to_gt_area[is_in_boxes == 0] = INF
            locations_to_gt_area[is_cared_in_the_level == 0] = INF

            # if there are still more than one objects for a location, choose the one with minimal area
            locations_to_min_aera, locations_to_gt_inds = locations_to_gt_area.min(dim=1)

            reg_targets_per_im = reg_targets_per_im[range(len(locations)), locations_to_gt_inds]
            labels_per_im = labels_per_im[locations_to_gt_inds]
            labels_per_im[locations_to_min_aera == INF] = 0

            labels.append(labels_per_im)
            reg_targets.append(reg_targets_per_im)

        return labels, reg_targets

    def compute_centerness_targets(self, reg_targets):
        left_right = reg_targets[:, [0, 2]]
        top_bottom = reg_targets[:, [1, 3]]
        centerness = (left_right.min(dim=-1)[0] / left_right.max(dim=-1)[0]) * (
            top_bottom.min(dim=-1)[0] / top_bottom.max(dim=-1)[0]
        )
        return torch.sqrt(centerness)

    def __call__(self, locations, box_cls, box_regression, centerness, targets):
        N = box_cls[0].size(0)
        num_classes = box_cls[0].size(1)
        labels, reg_targets = self.prepare_targets(locations, targets)

        box_cls_flatten = []
        box_regression_flatten = []
        centerness_flatten = []
        labels_flatten = []
        reg_targets_flatten = []
        for l in range(len(labels)):  # noqa: E741
            box_cls_flatten.append(box_cls[l].permute(0, 2, 3, 1).reshape(-1, num_classes))
            box_regression_flatten.append(box_regression[l].permute(0, 2, 3, 1).reshape(-1, 4))
            labels_flatten.append(labels[l].reshape(-1))
            reg_targets_flatten.append(reg_targets[l].reshape(-1, 4))
            centerness_flatten.append(centerness[l].reshape(-1))

        box_cls_flatten = torch.cat(box_cls_flatten, dim=0)
        box_regression_flatten = torch.cat(box_regression_flatten, dim=0)
        centerness_flatten = torch.cat(centerness_flatten, dim=0)
        labels_flatten = torch.cat(labels_flatten, dim=0)
        reg_targets_flatten = torch.cat(reg_targets_flatten, dim=0)

        pos_inds = torch.nonzero(labels_flatten > 0).squeeze(1)
        num_pos = max(pos_inds.numel(), 1.0)

        gt_classes_target = torch.zeros_like(box_cls_flatten)
        gt_classes_target[pos_inds, labels_flatten[pos_inds] - 1] = 1.0
        cls_loss = sigmoid_focal_loss(box_cls_flatten, gt_classes_target, reduction="sum") / num_pos

        box_regression_flatten = box_regression_flatten[pos_inds]
        reg_targets_flatten = reg_targets_flatten[pos_inds]
        centerness_flatten = centerness_flatten[pos_inds]

        if pos_inds.numel() > 0:
            centerness_targets = self.compute_centerness_targets(reg_targets_flatten)
            reg_loss = self.box_reg_loss_func(
                box_regression_flatten, reg_targets_flatten, centerness_targets
            ) / centerness_targets.sum()
            centerness_loss = self.centerness_loss_func(centerness_flatten, centerness_targets) / num_pos
        else:
            reg_loss = box_regression_flatten.sum()
            centerness_loss = centerness_flatten.sum()
        self.last = (box_cls_flatten.detach(), labels_flatten, gt_classes_target, reg_targets_flatten, N)
        return cls_loss, reg_loss, centerness_loss


# ----------------------------------------------------------------------------------- post-processing
def box_iou(boxes1, boxes2):
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area1[:, None] + area2 - inter)


def nms(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        ious = box_iou(boxes[i].unsqueeze(0), boxes[order[1:]]).squeeze(0)
        order = order[1:][ious <= iou_threshold]
    return torch.stack(keep) if keep else torch.empty(0, dtype=torch.long)


def batched_nms(boxes, scores, idxs, iou_threshold):
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    return nms(boxes_for_nms, scores, iou_threshold)


@torch.no_grad()
def post_process(locations, box_cls, box_regression, centerness, pre_nms_thresh=0.05, pre_nms_top_n=100):
    N = box_cls[0].shape[0]
    results = [[] for _ in range(N)]
    for level, (loc, cls, reg, ctr) in enumerate(zip(locations, box_cls, box_regression, centerness)):
        N, C, H, W = cls.shape
        cls = cls.view(N, C, H, W).permute(0, 2, 3, 1).reshape(N, -1, C).sigmoid()
        reg = reg.view(N, 4, H, W).permute(0, 2, 3, 1).reshape(N, -1, 4) * FPN_STRIDES[level]
        ctr = ctr.view(N, 1, H, W).permute(0, 2, 3, 1).reshape(N, -1).sigmoid()
        candidate_inds = cls > pre_nms_thresh
        pre_nms_top_n_per_im = candidate_inds.reshape(N, -1).sum(1).clamp(max=pre_nms_top_n)
        cls = cls * ctr[:, :, None]
        for i in range(N):
            per_box_cls = cls[i][candidate_inds[i]]
            per_candidate_nonzeros = candidate_inds[i].nonzero()
            per_box_loc = per_candidate_nonzeros[:, 0]
            per_class = per_candidate_nonzeros[:, 1] + 1
            per_box_regression = reg[i][per_box_loc]
            per_locations = loc[per_box_loc]
            n_top = int(pre_nms_top_n_per_im[i].item())
            if per_candidate_nonzeros.shape[0] > n_top:
                per_box_cls, top_k_indices = per_box_cls.topk(n_top, sorted=False)
                per_class = per_class[top_k_indices]
                per_box_regression = per_box_regression[top_k_indices]
                per_locations = per_locations[top_k_indices]
            detections = torch.stack(
                [
                    per_locations[:, 0] - per_box_regression[:, 0],
                    per_locations[:, 1] - per_box_regression[:, 1],
                    per_locations[:, 0] + per_box_regression[:, 2],
                    per_locations[:, 1] + per_box_regression[:, 3],
                ],
                dim=1,
            )
            detections[:, 0::2] = detections[:, 0::2].clamp(min=0, max=IMG)
            detections[:, 1::2] = detections[:, 1::2].clamp(min=0, max=IMG)
            results[i].append((detections, torch.sqrt(per_box_cls), per_class))
    final = []
    for per_im in results:
        boxes = torch.cat([r[0] for r in per_im])
        scores = torch.cat([r[1] for r in per_im])
        labels = torch.cat([r[2] for r in per_im])
        keep = batched_nms(boxes, scores, labels, 0.6)
        final.append((boxes[keep], scores[keep], labels[keep]))
    return final


def average_precision(detections, targets, iou_thresh=0.5):
    aps, recalls = [], []
    for c in range(1, NUM_CLASSES + 1):
        scored = []
        n_gt = 0
        for (boxes, scores, labels), tgt in zip(detections, targets):
            gt = tgt["boxes"][tgt["labels"] == c]
            n_gt += len(gt)
            mask = labels == c
            b, s = boxes[mask], scores[mask]
            matched = torch.zeros(len(gt), dtype=torch.bool)
            for j in s.argsort(descending=True).tolist():
                hit = 0
                if len(gt):
                    ious = box_iou(b[j : j + 1], gt)[0]
                    best_iou, best = ious.max(0)
                    if best_iou >= iou_thresh and not matched[best]:
                        matched[best] = True
                        hit = 1
                scored.append((s[j].item(), hit))
        scored.sort(key=lambda x: -x[0])
        hits = torch.tensor([h for _, h in scored], dtype=torch.float32)
        tp = torch.cumsum(hits, 0)
        fp = torch.cumsum(1 - hits, 0)
        recall = tp / max(n_gt, 1)
        precision = tp / (tp + fp).clamp(min=1e-9)
        mrec = torch.cat([torch.tensor([0.0]), recall, torch.tensor([1.0])])
        mpre = torch.cat([torch.tensor([0.0]), precision, torch.tensor([0.0])])
        for i in range(mpre.numel() - 2, -1, -1):
            mpre[i] = torch.maximum(mpre[i], mpre[i + 1])
        idx = torch.nonzero(mrec[1:] != mrec[:-1]).squeeze(1)
        aps.append(((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]).sum().item())
        recalls.append(recall[-1].item() if recall.numel() else 0.0)
    return float(np.mean(aps)), float(np.mean(recalls))


# ----------------------------------------------------------------------------------- training
model = FCOS()
loss_evaluator = FCOSLossComputation("giou")
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[12], gamma=0.1)
warmup_iters = 20
it = 0
for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(N_TRAIN)
    sums = torch.zeros(3)
    for start in range(0, N_TRAIN, BATCH):
        idx = perm[start : start + BATCH]
        images = train_images[idx]
        targets = [train_targets[i] for i in idx.tolist()]
        locations, box_cls, box_regression, centerness = model(images)
        cls_loss, reg_loss, ctr_loss = loss_evaluator(locations, box_cls, box_regression, centerness, targets)
        losses = cls_loss + reg_loss + ctr_loss
        if it < warmup_iters:
            for g in optimizer.param_groups:
                g["lr"] = 0.01 * (1.0 / 3 + (1 - 1.0 / 3) * it / warmup_iters)
        optimizer.zero_grad()
        losses.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        optimizer.step()
        it += 1
        sums += torch.stack([cls_loss.detach(), reg_loss.detach(), ctr_loss.detach()])
    scheduler.step()
    if epoch % 4 == 3 or epoch == EPOCHS - 1:
        n_batches = math.ceil(N_TRAIN / BATCH)
        c, r, ce = (sums / n_batches).tolist()
        print(f"epoch {epoch + 1} loss_cls {c:.4f} loss_reg {r:.4f} loss_centerness {ce:.4f}")

# ----------------------------------------------------------------------------------- checks
with torch.no_grad():
    logits, labels_flat, one_hot, reg_t, _ = loss_evaluator.last
    tv = sigmoid_focal_loss(logits, one_hot, alpha=0.25, gamma=2.0, reduction="sum")
    mb = sigmoid_focal_loss_cpu(logits, labels_flat.int(), 2.0, 0.25).sum()
    focal_agree = torch.allclose(tv, mb, rtol=1e-4)
    iou_self = IOULoss("iou")(reg_t, reg_t).item()
    giou_self = IOULoss("giou")(reg_t, reg_t).item()
    print(f"focal torchvision {tv.item():.4f} maskrcnn {mb.item():.4f}; target self-loss iou {iou_self:.6f} giou {giou_self:.6f}")
    print(f"positive locations in last batch: {int((labels_flat > 0).sum())} of {labels_flat.numel()}")

model.eval()
with torch.no_grad():
    detections = post_process(*model(test_images))
ap50, recall50 = average_precision(detections, test_targets)
mean_dets = float(np.mean([len(d[1]) for d in detections]))
print(f"test AP@0.5 {ap50:.4f} recall@0.5 {recall50:.4f} detections per image {mean_dets:.2f}")
self_zero = int(abs(iou_self) < 1e-5 and abs(giou_self) < 1e-5)
print(f"FINAL ap50={ap50:.4f} recall50={recall50:.4f} focal_agree={int(focal_agree)} self_zero={self_zero}")
