"""A tiny RetinaNet (Lin et al., ICCV 2017) in the torchvision / yhenon/pytorch-retinanet layout, on synthetic
32x32 images holding one to three rectangles of two classes (told apart by colour) over noise.

The backbone downsamples by strided ``nn.Conv2d`` to C3/C4/C5 (strides 4/8/16); the FPN has 1x1 lateral
convs, a top-down path by ``F.interpolate(..., size=lateral.shape[-2:], mode='nearest')`` and 3x3 output
convs. Anchors are torchvision's ``AnchorGenerator``: ``generate_anchors`` from sizes x ratios (``h_ratios
= torch.sqrt(aspect_ratios)``, ``torch.stack([-ws, -hs, ws, hs], dim=1) / 2`` + ``round()``) with three
scales per octave, shifted by ``torch.meshgrid(shifts_y, shifts_x, indexing='ij')`` over int32 ``arange``
grids and ``(shifts.view(-1, 1, 4) + base_anchors.view(1, -1, 4)).reshape(-1, 4)``. The heads share their
convs across levels; the class subnet's last conv has ``normal_(std=0.01)`` weights and the prior bias
``-math.log((1 - 0.01) / 0.01)``, and outputs are ``view(N, -1, K, H, W).permute(0, 3, 4, 1, 2).reshape(N,
-1, K)`` concatenated over levels. Matching is yhenon's: a hand ``box_iou`` (``torch.max(boxes1[:, None,
:2], boxes2[:, :2])``, ``clamp(min=0)``), ``IoU.max(dim=1)``, targets ``-1`` (ignored) between 0.4 and
0.5, plus torchvision's low-quality matches (``torch.where(iou == best_per_gt[None, :])``). Boxes are
encoded as torchvision's ``BoxCoder`` does (``torch.log(gt_widths / ex_widths)``) and decoded with
``torch.exp(dw.clamp(max=math.log(1000. / 16)))``. The loss is torchvision's ``sigmoid_focal_loss``
(``p_t``, ``alpha_t``, ``ce_loss * ((1 - p_t) ** gamma)``) over non-ignored anchors plus
``F.smooth_l1_loss(beta=1 / 9)`` on positives, both divided by the positive count; Adam with
``clip_grad_norm_(..., 0.1)``. Inference follows ``postprocess_detections``: per level ``sigmoid``,
``scores > 0.05``, ``topk``, ``torch.div(topk_idxs, K, rounding_mode='floor')`` anchors and ``%`` labels,
decoding, clipping, and ``batched_nms`` by hand with the coordinate-offset trick over a greedy
``argsort(descending=True)`` + ``while order.numel() > 0`` NMS; mAP@0.5 by hand (VOC all-point AP).

Checked: test mAP@0.5; that decode(encode(gt)) returns gt; that yhenon's focal loss (``torch.where``
factors, explicit BCE on clamped probabilities) and smooth L1 (``torch.where(torch.le(diff, 1.0 / 9.0),
...)``) equal torchvision's formulas; and that the offset-trick batched NMS keeps exactly the boxes of a
per-class NMS loop.
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
NUM_CLASSES = 2


# ----------------------------------------------------------------------------------------------- data
def make_image():
    img = 0.15 * rng.randn(3, IMG, IMG).astype(np.float32)
    boxes, labels = [], []
    for _ in range(rng.randint(1, 4)):
        for _try in range(20):
            w, h = rng.randint(6, 15), rng.randint(6, 15)
            x0, y0 = rng.randint(0, IMG - w + 1), rng.randint(0, IMG - h + 1)
            box = [x0, y0, x0 + w, y0 + h]
            if all(min(box[2], b[2]) - max(box[0], b[0]) <= 0 or min(box[3], b[3]) - max(box[1], b[1]) <= 0 for b in boxes):
                break
        else:
            continue
        c = rng.randint(0, NUM_CLASSES)
        img[c, y0 : y0 + h, x0 : x0 + w] += 1.0
        img[2, y0 : y0 + h, x0 : x0 + w] += 0.5
        boxes.append(box)
        labels.append(c)
    return img, np.array(boxes, dtype=np.float32), np.array(labels, dtype=np.int64)


train_set = [make_image() for _ in range(160)]
test_set = [make_image() for _ in range(40)]


# ---------------------------------------------------------------------------------------------- boxes
def box_area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1, boxes2):
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])  # [N,M,2]
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])  # [N,M,2]
    wh = (rb - lt).clamp(min=0)  # [N,M,2]
    inter = wh[:, :, 0] * wh[:, :, 1]  # [N,M]
    union = area1[:, None] + area2 - inter
    return inter / union


class AnchorGenerator(nn.Module):
    def __init__(self, sizes, aspect_ratios):
        super().__init__()
        self.sizes = sizes
        self.aspect_ratios = aspect_ratios
        self.cell_anchors = [self.generate_anchors(size, aspect_ratio) for size, aspect_ratio in zip(sizes, aspect_ratios)]

    def generate_anchors(self, scales, aspect_ratios, dtype=torch.float32):
        scales = torch.as_tensor(scales, dtype=dtype)
        aspect_ratios = torch.as_tensor(aspect_ratios, dtype=dtype)
        h_ratios = torch.sqrt(aspect_ratios)
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).view(-1)
        hs = (h_ratios[:, None] * scales[None, :]).view(-1)
        base_anchors = torch.stack([-ws, -hs, ws, hs], dim=1) / 2
        return base_anchors.round()

    def num_anchors_per_location(self):
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def grid_anchors(self, grid_sizes, strides):
        anchors = []
        for size, stride, base_anchors in zip(grid_sizes, strides, self.cell_anchors):
            grid_height, grid_width = size
            stride_height, stride_width = stride
            shifts_x = torch.arange(0, grid_width, dtype=torch.int32) * stride_width
            shifts_y = torch.arange(0, grid_height, dtype=torch.int32) * stride_height
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x = shift_x.reshape(-1)
            shift_y = shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            anchors.append((shifts.view(-1, 1, 4) + base_anchors.view(1, -1, 4)).reshape(-1, 4))
        return anchors

    def forward(self, image_size, feature_maps):
        grid_sizes = [feature_map.shape[-2:] for feature_map in feature_maps]
        strides = [[torch.tensor(image_size[0] // g[0], dtype=torch.int64), torch.tensor(image_size[1] // g[1], dtype=torch.int64)] for g in grid_sizes]
        return self.grid_anchors(grid_sizes, strides)


class BoxCoder:
    def __init__(self, weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=math.log(1000.0 / 16)):
        self.weights = weights
        self.bbox_xform_clip = bbox_xform_clip

    def encode_single(self, reference_boxes, proposals):
        wx, wy, ww, wh = self.weights
        ex_widths = proposals[:, 2] - proposals[:, 0]
        ex_heights = proposals[:, 3] - proposals[:, 1]
        ex_ctr_x = proposals[:, 0] + 0.5 * ex_widths
        ex_ctr_y = proposals[:, 1] + 0.5 * ex_heights
        gt_widths = reference_boxes[:, 2] - reference_boxes[:, 0]
        gt_heights = reference_boxes[:, 3] - reference_boxes[:, 1]
        gt_ctr_x = reference_boxes[:, 0] + 0.5 * gt_widths
        gt_ctr_y = reference_boxes[:, 1] + 0.5 * gt_heights
        targets_dx = wx * (gt_ctr_x - ex_ctr_x) / ex_widths
        targets_dy = wy * (gt_ctr_y - ex_ctr_y) / ex_heights
        targets_dw = ww * torch.log(gt_widths / ex_widths)
        targets_dh = wh * torch.log(gt_heights / ex_heights)
        return torch.stack((targets_dx, targets_dy, targets_dw, targets_dh), dim=1)

    def decode_single(self, rel_codes, boxes):
        boxes = boxes.to(rel_codes.dtype)
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        ctr_x = boxes[:, 0] + 0.5 * widths
        ctr_y = boxes[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx = rel_codes[:, 0::4] / wx
        dy = rel_codes[:, 1::4] / wy
        dw = rel_codes[:, 2::4] / ww
        dh = rel_codes[:, 3::4] / wh
        dw = torch.clamp(dw, max=self.bbox_xform_clip)
        dh = torch.clamp(dh, max=self.bbox_xform_clip)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        pred_w = torch.exp(dw) * widths[:, None]
        pred_h = torch.exp(dh) * heights[:, None]
        c_to_c_h = torch.tensor(0.5, dtype=pred_ctr_y.dtype) * pred_h
        c_to_c_w = torch.tensor(0.5, dtype=pred_ctr_x.dtype) * pred_w
        pred_boxes1 = pred_ctr_x - c_to_c_w
        pred_boxes2 = pred_ctr_y - c_to_c_h
        pred_boxes3 = pred_ctr_x + c_to_c_w
        pred_boxes4 = pred_ctr_y + c_to_c_h
        return torch.stack((pred_boxes1, pred_boxes2, pred_boxes3, pred_boxes4), dim=2).flatten(1)


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction="none"):
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


def yhenon_focal(classification, targets, alpha=0.25, gamma=2.0):
    classification = torch.clamp(classification, 1e-4, 1.0 - 1e-4)
    alpha_factor = torch.ones(targets.shape) * alpha
    alpha_factor = torch.where(torch.eq(targets, 1.0), alpha_factor, 1.0 - alpha_factor)
    focal_weight = torch.where(torch.eq(targets, 1.0), 1.0 - classification, classification)
    focal_weight = alpha_factor * torch.pow(focal_weight, gamma)
    bce = -(targets * torch.log(classification) + (1.0 - targets) * torch.log(1.0 - classification))
    cls_loss = focal_weight * bce
    return torch.where(torch.ne(targets, -1.0), cls_loss, torch.zeros(cls_loss.shape))


def nms(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        iou = box_iou(boxes[i][None], boxes[order[1:]])[0]
        order = order[1:][iou <= iou_threshold]
    return torch.stack(keep) if keep else torch.empty((0,), dtype=torch.int64)


def batched_nms(boxes, scores, idxs, iou_threshold):
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    return nms(boxes_for_nms, scores, iou_threshold)


def per_class_nms(boxes, scores, idxs, iou_threshold):
    keep = []
    for c in torch.unique(idxs):
        where = torch.where(idxs == c)[0]
        keep.append(where[nms(boxes[where], scores[where], iou_threshold)])
    return torch.cat(keep) if keep else torch.empty((0,), dtype=torch.int64)


# ---------------------------------------------------------------------------------------------- model
def conv_bn_relu(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FPN(nn.Module):
    def __init__(self, in_channels_list, out_channels):
        super().__init__()
        self.inner_blocks = nn.ModuleList([nn.Conv2d(c, out_channels, 1) for c in in_channels_list])
        self.layer_blocks = nn.ModuleList([nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels_list])

    def forward(self, x):
        last_inner = self.inner_blocks[-1](x[-1])
        results = [self.layer_blocks[-1](last_inner)]
        for idx in range(len(x) - 2, -1, -1):
            inner_lateral = self.inner_blocks[idx](x[idx])
            feat_shape = inner_lateral.shape[-2:]
            inner_top_down = F.interpolate(last_inner, size=feat_shape, mode="nearest")
            last_inner = inner_lateral + inner_top_down
            results.insert(0, self.layer_blocks[idx](last_inner))
        return results


class RetinaNetClassificationHead(nn.Module):
    def __init__(self, in_channels, num_anchors, num_classes, prior_probability=0.01):
        super().__init__()
        conv = []
        for _ in range(2):
            conv.append(nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1))
            conv.append(nn.ReLU())
        self.conv = nn.Sequential(*conv)
        for layer in self.conv.modules():
            if isinstance(layer, nn.Conv2d):
                torch.nn.init.normal_(layer.weight, std=0.01)
                torch.nn.init.constant_(layer.bias, 0)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, kernel_size=3, stride=1, padding=1)
        torch.nn.init.normal_(self.cls_logits.weight, std=0.01)
        torch.nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_probability) / prior_probability))
        self.num_classes = num_classes
        self.num_anchors = num_anchors

    def forward(self, x):
        all_cls_logits = []
        for features in x:
            cls_logits = self.cls_logits(self.conv(features))
            N, _, H, W = cls_logits.shape
            cls_logits = cls_logits.view(N, -1, self.num_classes, H, W)
            cls_logits = cls_logits.permute(0, 3, 4, 1, 2)
            cls_logits = cls_logits.reshape(N, -1, self.num_classes)
            all_cls_logits.append(cls_logits)
        return torch.cat(all_cls_logits, dim=1)


class RetinaNetRegressionHead(nn.Module):
    def __init__(self, in_channels, num_anchors):
        super().__init__()
        conv = []
        for _ in range(2):
            conv.append(nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1))
            conv.append(nn.ReLU())
        self.conv = nn.Sequential(*conv)
        self.bbox_reg = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=3, stride=1, padding=1)
        torch.nn.init.normal_(self.bbox_reg.weight, std=0.01)
        torch.nn.init.zeros_(self.bbox_reg.bias)
        for layer in self.conv.children():
            if isinstance(layer, nn.Conv2d):
                torch.nn.init.normal_(layer.weight, std=0.01)
                torch.nn.init.zeros_(layer.bias)

    def forward(self, x):
        all_bbox_regression = []
        for features in x:
            bbox_regression = self.bbox_reg(self.conv(features))
            N, _, H, W = bbox_regression.shape
            bbox_regression = bbox_regression.view(N, -1, 4, H, W)
            bbox_regression = bbox_regression.permute(0, 3, 4, 1, 2)
            bbox_regression = bbox_regression.reshape(N, -1, 4)
            all_bbox_regression.append(bbox_regression)
        return torch.cat(all_bbox_regression, dim=1)


class RetinaNet(nn.Module):
    def __init__(self, num_classes, width=16):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_relu(3, width, 2), conv_bn_relu(width, width, 2))  # C3, stride 4
        self.layer2 = conv_bn_relu(width, 2 * width, 2)  # C4, stride 8
        self.layer3 = conv_bn_relu(2 * width, 2 * width, 2)  # C5, stride 16
        self.fpn = FPN([width, 2 * width, 2 * width], width)
        anchor_sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [8, 16, 32])
        aspect_ratios = ((0.5, 1.0, 2.0),) * len(anchor_sizes)
        self.anchor_generator = AnchorGenerator(anchor_sizes, aspect_ratios)
        num_anchors = self.anchor_generator.num_anchors_per_location()[0]
        self.classification_head = RetinaNetClassificationHead(width, num_anchors, num_classes)
        self.regression_head = RetinaNetRegressionHead(width, num_anchors)
        self.box_coder = BoxCoder()
        self.num_classes = num_classes

    def forward(self, images):
        c3 = self.stem(images)
        c4 = self.layer2(c3)
        c5 = self.layer3(c4)
        features = self.fpn([c3, c4, c5])
        cls_logits = self.classification_head(features)
        bbox_regression = self.regression_head(features)
        anchors = self.anchor_generator(images.shape[-2:], features)
        return cls_logits, bbox_regression, anchors


def assign_targets(anchors, gt_boxes, gt_labels, num_classes):
    IoU = box_iou(anchors, gt_boxes)  # num_anchors x num_annotations
    IoU_max, IoU_argmax = IoU.max(dim=1)
    targets = torch.ones((anchors.shape[0], num_classes)) * -1
    targets[torch.lt(IoU_max, 0.4), :] = 0
    positive_indices = torch.ge(IoU_max, 0.5)
    # torchvision's Matcher.set_low_quality_matches_: every box keeps its best anchors
    highest_quality_foreach_gt, _ = IoU.max(dim=0)
    pred_inds_to_update = torch.where(IoU == highest_quality_foreach_gt[None, :])[0]
    positive_indices[pred_inds_to_update] = True
    assigned_annotations = gt_boxes[IoU_argmax, :]
    assigned_labels = gt_labels[IoU_argmax]
    targets[positive_indices, :] = 0
    targets[positive_indices, assigned_labels[positive_indices]] = 1
    return targets, positive_indices, assigned_annotations


def compute_loss(model, cls_logits, bbox_regression, anchors, targets_list):
    cls_losses, reg_losses = [], []
    for cls_j, reg_j, (gt_boxes, gt_labels) in zip(cls_logits, bbox_regression, targets_list):
        targets, positive_indices, assigned = assign_targets(anchors, gt_boxes, gt_labels, model.num_classes)
        num_positive_anchors = positive_indices.sum()
        valid = torch.ne(targets, -1.0)
        cls_loss = sigmoid_focal_loss(cls_j[valid], targets[valid], reduction="sum")
        cls_losses.append(cls_loss / torch.clamp(num_positive_anchors.float(), min=1.0))
        target_regression = model.box_coder.encode_single(assigned[positive_indices], anchors[positive_indices])
        reg_loss = F.smooth_l1_loss(reg_j[positive_indices], target_regression, beta=1 / 9, reduction="sum")
        reg_losses.append(reg_loss / max(1, num_positive_anchors.item()))
    return torch.stack(cls_losses).mean(), torch.stack(reg_losses).mean()


def to_batch(items):
    images = torch.stack([torch.from_numpy(img) for img, _, _ in items])
    targets = [(torch.from_numpy(b), torch.from_numpy(lab)) for _, b, lab in items]
    return images, targets


# -------------------------------------------------------------------------------------------- training
model = RetinaNet(NUM_CLASSES)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
batch_size = 16
epochs = 12
for epoch in range(epochs):
    model.train()
    order = rng.permutation(len(train_set))
    epoch_cls, epoch_reg, n = 0.0, 0.0, 0
    for i in range(0, len(order), batch_size):
        images, targets = to_batch([train_set[j] for j in order[i : i + batch_size]])
        optimizer.zero_grad()
        cls_logits, bbox_regression, anchors = model(images)
        anchors = torch.cat(anchors)
        classification_loss, regression_loss = compute_loss(model, cls_logits, bbox_regression, anchors, targets)
        loss = classification_loss + regression_loss
        if bool(loss == 0):
            continue
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        epoch_cls += float(classification_loss)
        epoch_reg += float(regression_loss)
        n += 1
    if epoch % 4 == 0 or epoch == epochs - 1:
        print(f"Epoch: {epoch} | Classification loss: {epoch_cls / n:1.5f} | Regression loss: {epoch_reg / n:1.5f}")

num_anchors = [len(a) for a in model.anchor_generator(images.shape[-2:], [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)])]
print(f"anchors per level {num_anchors}, per location {model.anchor_generator.num_anchors_per_location()}")


# ------------------------------------------------------------------------------------------- inference
@torch.no_grad()
def postprocess_detections(model, cls_logits, bbox_regression, anchors_per_level, image_size,
                           score_thresh=0.05, nms_thresh=0.5, detections_per_img=20, topk_candidates=100):
    num_classes = cls_logits.shape[-1]
    split = [len(a) for a in anchors_per_level]
    detections, nms_agree = [], True
    for logits_j, reg_j in zip(cls_logits, bbox_regression):
        image_boxes, image_scores, image_labels = [], [], []
        for box_regression_per_level, logits_per_level, anchors_per_level_ in zip(reg_j.split(split), logits_j.split(split), anchors_per_level):
            scores_per_level = torch.sigmoid(logits_per_level).flatten()
            keep_idxs = scores_per_level > score_thresh
            scores_per_level = scores_per_level[keep_idxs]
            topk_idxs = torch.where(keep_idxs)[0]
            num_topk = min(topk_candidates, topk_idxs.size(0))
            scores_per_level, idxs = scores_per_level.topk(num_topk)
            topk_idxs = topk_idxs[idxs]
            anchor_idxs = torch.div(topk_idxs, num_classes, rounding_mode="floor")
            labels_per_level = topk_idxs % num_classes
            boxes_per_level = model.box_coder.decode_single(box_regression_per_level[anchor_idxs], anchors_per_level_[anchor_idxs])
            boxes_per_level = boxes_per_level.clamp(min=0, max=image_size)
            image_boxes.append(boxes_per_level)
            image_scores.append(scores_per_level)
            image_labels.append(labels_per_level)
        image_boxes = torch.cat(image_boxes, dim=0)
        image_scores = torch.cat(image_scores, dim=0)
        image_labels = torch.cat(image_labels, dim=0)
        keep = batched_nms(image_boxes, image_scores, image_labels, nms_thresh)
        if image_boxes.numel():
            other = per_class_nms(image_boxes, image_scores, image_labels, nms_thresh)
            nms_agree &= torch.equal(torch.sort(keep)[0], torch.sort(other)[0])
        keep = keep[:detections_per_img]
        detections.append({"boxes": image_boxes[keep], "scores": image_scores[keep], "labels": image_labels[keep]})
    return detections, nms_agree


def average_precision(detections, ground_truth, num_classes, iou_thresh=0.5):
    aps = []
    for c in range(num_classes):
        records = []
        n_gt = 0
        for img_id, (det, (_, gt_labels)) in enumerate(zip(detections, ground_truth)):
            n_gt += int((gt_labels == c).sum())
            for box, score in zip(det["boxes"][det["labels"] == c], det["scores"][det["labels"] == c]):
                records.append((float(score), img_id, box))
        records.sort(key=lambda r: -r[0])
        matched = [torch.zeros(int((gt_labels == c).sum()), dtype=torch.bool) for _, gt_labels in ground_truth]
        tp = torch.zeros(len(records))
        for k, (_, img_id, box) in enumerate(records):
            gt_boxes, gt_labels = ground_truth[img_id]
            gt_c = gt_boxes[gt_labels == c]
            if len(gt_c) == 0:
                continue
            ious = box_iou(box[None], gt_c)[0]
            best_iou, best = ious.max(0)
            if best_iou >= iou_thresh and not matched[img_id][best]:
                matched[img_id][best] = True
                tp[k] = 1
        fp = 1 - tp
        tp_cum, fp_cum = torch.cumsum(tp, 0), torch.cumsum(fp, 0)
        recall = tp_cum / max(n_gt, 1)
        precision = tp_cum / torch.clamp(tp_cum + fp_cum, min=1e-9)
        mrec = torch.cat([torch.tensor([0.0]), recall, torch.tensor([1.0])])
        mpre = torch.cat([torch.tensor([0.0]), precision, torch.tensor([0.0])])
        mpre = torch.flip(torch.cummax(torch.flip(mpre, [0]), 0)[0], [0])
        i = torch.where(mrec[1:] != mrec[:-1])[0]
        aps.append(float(((mrec[i + 1] - mrec[i]) * mpre[i + 1]).sum()))
    return aps


model.eval()
images, targets = to_batch(test_set)
with torch.no_grad():
    cls_logits, bbox_regression, anchors_per_level = model(images)
detections, nms_ok = postprocess_detections(model, cls_logits, bbox_regression, anchors_per_level, IMG)
aps = average_precision(detections, targets, NUM_CLASSES)
mean_ap = sum(aps) / len(aps)
print(f"test AP@0.5 per class {[round(a, 4) for a in aps]}, mAP {mean_ap:.4f}, detections {sum(len(d['boxes']) for d in detections)}")
print(f"batched NMS (offset trick) == per-class NMS: {nms_ok}")

# -------------------------------------------------------------------------------- agreement of two routes
anchors = torch.cat(anchors_per_level)
gt_boxes, gt_labels = targets[0]
_, positive, assigned = assign_targets(anchors, gt_boxes, gt_labels, NUM_CLASSES)
codes = model.box_coder.encode_single(assigned[positive], anchors[positive])
decoded = model.box_coder.decode_single(codes, anchors[positive])
roundtrip_ok = torch.allclose(decoded, assigned[positive], atol=1e-4)
big = model.box_coder.decode_single(torch.tensor([[0.0, 0.0, 20.0, 20.0]]), anchors[:1])
clip_ok = bool(torch.allclose(big[0, 2] - big[0, 0], (anchors[0, 2] - anchors[0, 0]) * 1000.0 / 16, rtol=1e-4))

logits = cls_logits[0]
t, _, _ = assign_targets(anchors, gt_boxes, gt_labels, NUM_CLASSES)
valid = t != -1
ours = sigmoid_focal_loss(logits, t.clamp(min=0))
theirs = yhenon_focal(torch.sigmoid(logits), t)
p = torch.sigmoid(logits)
unclamped = valid & (p > 1e-4) & (p < 1 - 1e-4)
focal_ok = bool(torch.allclose(ours[unclamped], theirs[unclamped], rtol=1e-3, atol=1e-6)) and bool((theirs[~valid] == 0).all())
diff = torch.randn(200, 4) * 0.3
regression_diff = torch.abs(diff)
hand = torch.where(torch.le(regression_diff, 1.0 / 9.0), 0.5 * 9.0 * torch.pow(regression_diff, 2), regression_diff - 0.5 / 9.0)
smooth_ok = torch.allclose(hand.sum(), F.smooth_l1_loss(diff, torch.zeros_like(diff), beta=1 / 9, reduction="sum"))
print(f"decode(encode) == gt: {roundtrip_ok}, dw clamp at log(1000/16): {clip_ok}, focal forms agree: {focal_ok}, smooth L1 forms agree: {smooth_ok}")
checks = int(roundtrip_ok and clip_ok and focal_ok and smooth_ok and nms_ok)
print(f"FINAL map={mean_ap:.4f} cls_loss={epoch_cls / n:.4f} reg_loss={epoch_reg / n:.4f} checks_ok={checks}")
