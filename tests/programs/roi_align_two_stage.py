"""A two-stage detector from Faster R-CNN's pieces, written by hand the way torchvision's
detection code (torchvision/models/detection/{anchor_utils,_utils,rpn,roi_heads}.py) writes them,
trained on synthetic images of filled and hollow squares.

``AnchorGenerator`` (``generate_anchors`` by ``torch.sqrt(aspect_ratios)`` and ``.round()``,
``grid_anchors`` from ``torch.int32`` ``arange`` shifts through ``torch.meshgrid(shifts_y, shifts_x,
indexing="ij")`` and ``shifts.view(-1, 1, 4) + base_anchors.view(1, -1, 4)``), ``BoxCoder``
(``encode_boxes`` with ``torch.log(gt_widths / ex_widths)``, ``decode_single`` with ``rel_codes[:, 0::4]``
strides, ``torch.clamp(dw, max=math.log(1000.0 / 16))`` and ``torch.stack(..., dim=2).flatten(1)``),
``box_iou``, the ``Matcher`` (``match_quality_matrix.max(dim=0)``, ``BELOW_LOW_THRESHOLD``/
``BETWEEN_THRESHOLDS`` by boolean masks, low-quality matches by ``torch.where(match_quality_matrix ==
highest_quality_foreach_gt[:, None])``), the ``BalancedPositiveNegativeSampler`` (``torch.randperm``
cuts, ``torch.zeros_like(..., dtype=torch.uint8)`` masks), the RPN head's ``permute_and_flatten``
(``view(N, -1, C, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, C)``), ``clip_boxes_to_image``,
``remove_small_boxes``, a greedy ``nms`` and ``batched_nms`` by the coordinate-offset trick
(``boxes + idxs.to(boxes)[:, None] * (boxes.max() + 1)``), ``F.smooth_l1_loss(beta=1 / 9,
reduction="sum")`` and ``F.binary_cross_entropy_with_logits`` RPN losses, proposals matched by
``torch.where(matched_vals >= 0.5)``, RoIAlign as ``F.grid_sample(align_corners=False)`` over
``F.affine_grid`` thetas built per roi then the sampling points averaged per bin, ``fastrcnn_loss``
(``box_regression[sampled_pos_inds_subset, labels_pos]``), and ``postprocess_detections``
(``F.softmax``, ``boxes[:, 1:]``, ``torch.where(scores > score_thresh)[0]``, per-class NMS).
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

IMAGE = 32
STRIDE = 4


# the data: one or two squares per image, class 1 filled, class 2 hollow


def make_scene():
    image = rng.normal(0.0, 0.1, size=(1, IMAGE, IMAGE)).astype(np.float32)
    boxes, labels = [], []
    count = int(rng.integers(1, 3))
    while len(boxes) < count:
        size = int(rng.integers(8, 15))
        x0, y0 = (int(v) for v in rng.integers(0, IMAGE - size, size=2))
        box = np.array([x0, y0, x0 + size, y0 + size], dtype=np.float32)
        if any(np.minimum(box[2:], b[2:]).min() > np.maximum(box[:2], b[:2]).max() - 2 for b in boxes):
            continue
        label = int(rng.integers(1, 3))
        image[0, y0:y0 + size, x0:x0 + size] = 1.0
        if label == 2:
            image[0, y0 + 3:y0 + size - 3, x0 + 3:x0 + size - 3] = 0.0
        boxes.append(box)
        labels.append(label)
    return image, {"boxes": torch.from_numpy(np.stack(boxes)), "labels": torch.tensor(labels, dtype=torch.int64)}


# _box_ops


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


def clip_boxes_to_image(boxes, size):
    dim = boxes.dim()
    boxes_x = boxes[..., 0::2]
    boxes_y = boxes[..., 1::2]
    height, width = size

    boxes_x = boxes_x.clamp(min=0, max=width)
    boxes_y = boxes_y.clamp(min=0, max=height)

    clipped_boxes = torch.stack((boxes_x, boxes_y), dim=dim)
    return clipped_boxes.reshape(boxes.shape)


def remove_small_boxes(boxes, min_size):
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (ws >= min_size) & (hs >= min_size)
    keep = torch.where(keep)[0]
    return keep


def nms(boxes, scores, iou_threshold):
    # torchvision's kernel is C++; this is the greedy loop it implements
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        ious = box_iou(boxes[i].unsqueeze(0), boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return torch.stack(keep) if keep else torch.empty((0,), dtype=torch.int64)


def batched_nms(boxes, scores, idxs, iou_threshold):
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    # strategy: in order to perform NMS independently per class,
    # we add an offset to all the boxes. The offset is dependent
    # only on the class idx, and is large enough so that boxes
    # from different classes do not overlap
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    keep = nms(boxes_for_nms, scores, iou_threshold)
    return keep


# anchor_utils


class AnchorGenerator(nn.Module):
    def __init__(self, sizes=((8, 16),), aspect_ratios=((0.5, 1.0, 2.0),)):
        super().__init__()
        self.sizes = sizes
        self.aspect_ratios = aspect_ratios
        self.cell_anchors = [
            self.generate_anchors(size, aspect_ratio) for size, aspect_ratio in zip(self.sizes, self.aspect_ratios)
        ]

    def generate_anchors(self, scales, aspect_ratios, dtype=torch.float32, device=torch.device("cpu")):
        scales = torch.as_tensor(scales, dtype=dtype, device=device)
        aspect_ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)
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
        cell_anchors = self.cell_anchors

        for size, stride, base_anchors in zip(grid_sizes, strides, cell_anchors):
            grid_height, grid_width = size
            stride_height, stride_width = stride
            device = base_anchors.device

            # For output anchor, compute [x_center, y_center, x_center, y_center]
            shifts_x = torch.arange(0, grid_width, dtype=torch.int32, device=device) * stride_width
            shifts_y = torch.arange(0, grid_height, dtype=torch.int32, device=device) * stride_height
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x = shift_x.reshape(-1)
            shift_y = shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)

            # For every (base anchor, output anchor) pair,
            # offset each zero-centered base anchor by the center of the output anchor.
            anchors.append((shifts.view(-1, 1, 4) + base_anchors.view(1, -1, 4)).reshape(-1, 4))

        return anchors

    def forward(self, images, feature_maps):
        grid_sizes = [feature_map.shape[-2:] for feature_map in feature_maps]
        image_size = images.shape[-2:]
        strides = [
            [
                torch.empty((), dtype=torch.int64).fill_(image_size[0] // g[0]),
                torch.empty((), dtype=torch.int64).fill_(image_size[1] // g[1]),
            ]
            for g in grid_sizes
        ]
        anchors_over_all_feature_maps = self.grid_anchors(grid_sizes, strides)
        # every image of the batch has the same size here, so the same anchors
        return [torch.cat(anchors_over_all_feature_maps) + STRIDE // 2 for _ in range(images.shape[0])]


# _utils


def encode_boxes(reference_boxes, proposals, weights):
    wx = weights[0]
    wy = weights[1]
    ww = weights[2]
    wh = weights[3]

    proposals_x1 = proposals[:, 0].unsqueeze(1)
    proposals_y1 = proposals[:, 1].unsqueeze(1)
    proposals_x2 = proposals[:, 2].unsqueeze(1)
    proposals_y2 = proposals[:, 3].unsqueeze(1)

    reference_boxes_x1 = reference_boxes[:, 0].unsqueeze(1)
    reference_boxes_y1 = reference_boxes[:, 1].unsqueeze(1)
    reference_boxes_x2 = reference_boxes[:, 2].unsqueeze(1)
    reference_boxes_y2 = reference_boxes[:, 3].unsqueeze(1)

    # implementation starts here
    ex_widths = proposals_x2 - proposals_x1
    ex_heights = proposals_y2 - proposals_y1
    ex_ctr_x = proposals_x1 + 0.5 * ex_widths
    ex_ctr_y = proposals_y1 + 0.5 * ex_heights

    gt_widths = reference_boxes_x2 - reference_boxes_x1
    gt_heights = reference_boxes_y2 - reference_boxes_y1
    gt_ctr_x = reference_boxes_x1 + 0.5 * gt_widths
    gt_ctr_y = reference_boxes_y1 + 0.5 * gt_heights

    targets_dx = wx * (gt_ctr_x - ex_ctr_x) / ex_widths
    targets_dy = wy * (gt_ctr_y - ex_ctr_y) / ex_heights
    targets_dw = ww * torch.log(gt_widths / ex_widths)
    targets_dh = wh * torch.log(gt_heights / ex_heights)

    targets = torch.cat((targets_dx, targets_dy, targets_dw, targets_dh), dim=1)
    return targets


class BoxCoder:
    def __init__(self, weights, bbox_xform_clip=math.log(1000.0 / 16)):
        self.weights = weights
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, reference_boxes, proposals):
        boxes_per_image = [len(b) for b in reference_boxes]
        reference_boxes = torch.cat(reference_boxes, dim=0)
        proposals = torch.cat(proposals, dim=0)
        targets = self.encode_single(reference_boxes, proposals)
        return targets.split(boxes_per_image, 0)

    def encode_single(self, reference_boxes, proposals):
        dtype = reference_boxes.dtype
        device = reference_boxes.device
        weights = torch.as_tensor(self.weights, dtype=dtype, device=device)
        targets = encode_boxes(reference_boxes, proposals, weights)
        return targets

    def decode(self, rel_codes, boxes):
        boxes_per_image = [b.size(0) for b in boxes]
        concat_boxes = torch.cat(boxes, dim=0)
        box_sum = 0
        for val in boxes_per_image:
            box_sum += val
        if box_sum > 0:
            rel_codes = rel_codes.reshape(box_sum, -1)
        pred_boxes = self.decode_single(rel_codes, concat_boxes)
        if box_sum > 0:
            pred_boxes = pred_boxes.reshape(box_sum, -1, 4)
        return pred_boxes

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

        # Prevent sending too large values into torch.exp()
        dw = torch.clamp(dw, max=self.bbox_xform_clip)
        dh = torch.clamp(dh, max=self.bbox_xform_clip)

        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        pred_w = torch.exp(dw) * widths[:, None]
        pred_h = torch.exp(dh) * heights[:, None]

        # Distance from center to box's corner.
        c_to_c_h = torch.tensor(0.5, dtype=pred_ctr_y.dtype, device=pred_h.device) * pred_h
        c_to_c_w = torch.tensor(0.5, dtype=pred_ctr_x.dtype, device=pred_w.device) * pred_w

        pred_boxes1 = pred_ctr_x - c_to_c_w
        pred_boxes2 = pred_ctr_y - c_to_c_h
        pred_boxes3 = pred_ctr_x + c_to_c_w
        pred_boxes4 = pred_ctr_y + c_to_c_h
        pred_boxes = torch.stack((pred_boxes1, pred_boxes2, pred_boxes3, pred_boxes4), dim=2).flatten(1)
        return pred_boxes


class Matcher:
    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold, low_threshold, allow_low_quality_matches=False):
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix):
        # match_quality_matrix is M (gt) x N (predicted)
        # Max over gt elements (dim 0) to find best gt candidate for each prediction
        matched_vals, matches = match_quality_matrix.max(dim=0)
        if self.allow_low_quality_matches:
            all_matches = matches.clone()
        else:
            all_matches = None

        # Assign candidate matches with low quality to negative (unassigned) values
        below_low_threshold = matched_vals < self.low_threshold
        between_thresholds = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[below_low_threshold] = self.BELOW_LOW_THRESHOLD
        matches[between_thresholds] = self.BETWEEN_THRESHOLDS

        if self.allow_low_quality_matches:
            self.set_low_quality_matches_(matches, all_matches, match_quality_matrix)

        return matches

    def set_low_quality_matches_(self, matches, all_matches, match_quality_matrix):
        # For each gt, find the prediction with which it has the highest quality
        highest_quality_foreach_gt, _ = match_quality_matrix.max(dim=1)
        # Find the highest quality match available, even if it is low, including ties
        gt_pred_pairs_of_highest_quality = torch.where(match_quality_matrix == highest_quality_foreach_gt[:, None])
        pred_inds_to_update = gt_pred_pairs_of_highest_quality[1]
        matches[pred_inds_to_update] = all_matches[pred_inds_to_update]


class BalancedPositiveNegativeSampler:
    def __init__(self, batch_size_per_image, positive_fraction):
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def __call__(self, matched_idxs):
        pos_idx = []
        neg_idx = []
        for matched_idxs_per_image in matched_idxs:
            positive = torch.where(matched_idxs_per_image >= 1)[0]
            negative = torch.where(matched_idxs_per_image == 0)[0]

            num_pos = int(self.batch_size_per_image * self.positive_fraction)
            # protect against not enough positive examples
            num_pos = min(positive.numel(), num_pos)
            num_neg = self.batch_size_per_image - num_pos
            # protect against not enough negative examples
            num_neg = min(negative.numel(), num_neg)

            # randomly select positive and negative examples
            perm1 = torch.randperm(positive.numel(), device=positive.device)[:num_pos]
            perm2 = torch.randperm(negative.numel(), device=negative.device)[:num_neg]

            pos_idx_per_image = positive[perm1]
            neg_idx_per_image = negative[perm2]

            # create binary mask from indices
            pos_idx_per_image_mask = torch.zeros_like(matched_idxs_per_image, dtype=torch.uint8)
            neg_idx_per_image_mask = torch.zeros_like(matched_idxs_per_image, dtype=torch.uint8)

            pos_idx_per_image_mask[pos_idx_per_image] = 1
            neg_idx_per_image_mask[neg_idx_per_image] = 1

            pos_idx.append(pos_idx_per_image_mask)
            neg_idx.append(neg_idx_per_image_mask)

        return pos_idx, neg_idx


# rpn


def permute_and_flatten(layer, N, A, C, H, W):
    layer = layer.view(N, -1, C, H, W)
    layer = layer.permute(0, 3, 4, 1, 2)
    layer = layer.reshape(N, -1, C)
    return layer


class RPNHead(nn.Module):
    def __init__(self, in_channels, num_anchors):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)

        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                torch.nn.init.normal_(layer.weight, std=0.01)
                if layer.bias is not None:
                    torch.nn.init.constant_(layer.bias, 0)

    def forward(self, x):
        t = F.relu(self.conv(x))
        return self.cls_logits(t), self.bbox_pred(t)


class RegionProposalNetwork(nn.Module):
    def __init__(self, anchor_generator, head, pre_nms_top_n=20, post_nms_top_n=10, nms_thresh=0.7):
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.box_similarity = box_iou
        self.proposal_matcher = Matcher(0.6, 0.3, allow_low_quality_matches=True)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(64, 0.5)
        self.pre_nms_top_n = pre_nms_top_n
        self.post_nms_top_n = post_nms_top_n
        self.nms_thresh = nms_thresh
        self.min_size = 1e-3

    def assign_targets_to_anchors(self, anchors, targets):
        labels = []
        matched_gt_boxes = []
        for anchors_per_image, targets_per_image in zip(anchors, targets):
            gt_boxes = targets_per_image["boxes"]
            match_quality_matrix = self.box_similarity(gt_boxes, anchors_per_image)
            matched_idxs = self.proposal_matcher(match_quality_matrix)
            # get the targets corresponding GT for each proposal
            # NB: need to clamp the indices because we can have a single
            # GT in the image, and matched_idxs can be -2, which goes
            # out of bounds
            matched_gt_boxes_per_image = gt_boxes[matched_idxs.clamp(min=0)]

            labels_per_image = matched_idxs >= 0
            labels_per_image = labels_per_image.to(dtype=torch.float32)

            # Background (negative examples)
            bg_indices = matched_idxs == self.proposal_matcher.BELOW_LOW_THRESHOLD
            labels_per_image[bg_indices] = 0.0

            # discard indices that are between thresholds
            inds_to_discard = matched_idxs == self.proposal_matcher.BETWEEN_THRESHOLDS
            labels_per_image[inds_to_discard] = -1.0

            labels.append(labels_per_image)
            matched_gt_boxes.append(matched_gt_boxes_per_image)
        return labels, matched_gt_boxes

    def filter_proposals(self, proposals, objectness, image_shape):
        num_images = proposals.shape[0]
        # do not backprop through objectness
        objectness = objectness.detach()
        objectness = objectness.reshape(num_images, -1)

        _, top_n_idx = objectness.topk(self.pre_nms_top_n, dim=1)
        image_range = torch.arange(num_images, device=proposals.device)
        batch_idx = image_range[:, None]

        objectness = objectness[batch_idx, top_n_idx]
        proposals = proposals[batch_idx, top_n_idx]
        objectness_prob = torch.sigmoid(objectness)

        final_boxes = []
        final_scores = []
        for boxes, scores in zip(proposals, objectness_prob):
            boxes = clip_boxes_to_image(boxes, image_shape)
            keep = remove_small_boxes(boxes, self.min_size)
            boxes, scores = boxes[keep], scores[keep]
            keep = nms(boxes, scores, self.nms_thresh)
            keep = keep[: self.post_nms_top_n]
            boxes, scores = boxes[keep], scores[keep]
            final_boxes.append(boxes)
            final_scores.append(scores)
        return final_boxes, final_scores

    def compute_loss(self, objectness, pred_bbox_deltas, labels, regression_targets):
        sampled_pos_inds, sampled_neg_inds = self.fg_bg_sampler(labels)
        sampled_pos_inds = torch.where(torch.cat(sampled_pos_inds, dim=0))[0]
        sampled_neg_inds = torch.where(torch.cat(sampled_neg_inds, dim=0))[0]

        sampled_inds = torch.cat([sampled_pos_inds, sampled_neg_inds], dim=0)

        objectness = objectness.flatten()

        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)

        box_loss = F.smooth_l1_loss(
            pred_bbox_deltas[sampled_pos_inds],
            regression_targets[sampled_pos_inds],
            beta=1 / 9,
            reduction="sum",
        ) / (sampled_inds.numel())

        objectness_loss = F.binary_cross_entropy_with_logits(objectness[sampled_inds], labels[sampled_inds])

        return objectness_loss, box_loss

    def forward(self, images, features, targets=None):
        objectness, pred_bbox_deltas = self.head(features)
        anchors = self.anchor_generator(images, [features])

        num_images = len(anchors)
        N, AxC, H, W = objectness.shape
        A = AxC
        objectness = permute_and_flatten(objectness, N, A, 1, H, W).flatten(0, -2)
        pred_bbox_deltas = permute_and_flatten(pred_bbox_deltas, N, A, 4, H, W).reshape(-1, 4)

        # apply pred_bbox_deltas to anchors to obtain the decoded proposals
        # note that we detach the deltas because Faster R-CNN do not backprop through
        # the proposals
        proposals = self.box_coder.decode(pred_bbox_deltas.detach(), anchors)
        proposals = proposals.view(num_images, -1, 4)
        boxes, scores = self.filter_proposals(proposals, objectness, images.shape[-2:])

        losses = {}
        if self.training:
            labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
            loss_objectness, loss_rpn_box_reg = self.compute_loss(
                objectness, pred_bbox_deltas, labels, regression_targets
            )
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}
        return boxes, losses


# roi_heads: RoIAlign by grid_sample


def roi_align(features, rois, output_size, spatial_scale, sampling_ratio):
    """rois: (K, 5) rows of (batch_index, x1, y1, x2, y2) in image coordinates, as torchvision's
    roi_align(aligned=True) takes them; every bin averages sampling_ratio ** 2 bilinear samples."""
    _, C, H, W = features.shape
    K = rois.shape[0]
    batch_index = rois[:, 0].long()
    x1, y1, x2, y2 = (rois[:, 1:] * spatial_scale).unbind(1)
    # align_corners=False puts -1 and 1 on the outer edges of the feature map, so a continuous
    # coordinate x maps to 2 * x / W - 1 and the affine grid samples bin centres
    theta = torch.zeros(K, 2, 3, dtype=features.dtype)
    theta[:, 0, 0] = (x2 - x1) / W
    theta[:, 0, 2] = (x1 + x2) / W - 1
    theta[:, 1, 1] = (y2 - y1) / H
    theta[:, 1, 2] = (y1 + y2) / H - 1
    points = output_size * sampling_ratio
    grid = F.affine_grid(theta, [K, C, points, points], align_corners=False)
    sampled = F.grid_sample(features[batch_index], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.view(K, C, output_size, sampling_ratio, output_size, sampling_ratio)
    return sampled.mean(dim=(3, 5))


class TwoMLPHead(nn.Module):
    def __init__(self, in_channels, representation_size):
        super().__init__()
        self.fc6 = nn.Linear(in_channels, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x):
        x = x.flatten(start_dim=1)
        x = F.relu(self.fc6(x))
        x = F.relu(self.fc7(x))
        return x


class FastRCNNPredictor(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)

    def forward(self, x):
        x = x.flatten(start_dim=1)
        scores = self.cls_score(x)
        bbox_deltas = self.bbox_pred(x)
        return scores, bbox_deltas


def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
    labels = torch.cat(labels, dim=0)
    regression_targets = torch.cat(regression_targets, dim=0)

    classification_loss = F.cross_entropy(class_logits, labels)

    # get indices that correspond to the regression targets for
    # the corresponding ground truth labels, to be used with
    # advanced indexing
    sampled_pos_inds_subset = torch.where(labels > 0)[0]
    labels_pos = labels[sampled_pos_inds_subset]
    N, num_classes = class_logits.shape
    box_regression = box_regression.reshape(N, box_regression.size(-1) // 4, 4)

    box_loss = F.smooth_l1_loss(
        box_regression[sampled_pos_inds_subset, labels_pos],
        regression_targets[sampled_pos_inds_subset],
        beta=1 / 9,
        reduction="sum",
    )
    box_loss = box_loss / labels.numel()

    return classification_loss, box_loss


class RoIHeads(nn.Module):
    def __init__(self, box_head, box_predictor, num_classes, score_thresh=0.05, nms_thresh=0.5, detections_per_img=10):
        super().__init__()
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(16, 0.5)
        self.num_classes = num_classes
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img

    def select_training_samples(self, proposals, targets):
        # append ground-truth bboxes to proposals
        proposals = [torch.cat((proposal, target["boxes"])) for proposal, target in zip(proposals, targets)]
        labels, matched_gt = [], []
        for proposals_in_image, target in zip(proposals, targets):
            iou = box_iou(target["boxes"], proposals_in_image)
            matched_vals, matches = iou.max(dim=0)
            labels_in_image = torch.zeros_like(matches)
            foreground = torch.where(matched_vals >= 0.5)
            labels_in_image[foreground] = target["labels"][matches[foreground]]
            labels.append(labels_in_image)
            matched_gt.append(target["boxes"][matches])
        sampled_pos, sampled_neg = self.fg_bg_sampler(labels)
        sampled_proposals, sampled_labels, sampled_gt = [], [], []
        for img_id in range(len(proposals)):
            img_sampled_inds = torch.where(sampled_pos[img_id] | sampled_neg[img_id])[0]
            sampled_proposals.append(proposals[img_id][img_sampled_inds])
            sampled_labels.append(labels[img_id][img_sampled_inds])
            sampled_gt.append(matched_gt[img_id][img_sampled_inds])
        regression_targets = self.box_coder.encode(sampled_gt, sampled_proposals)
        return sampled_proposals, sampled_labels, regression_targets

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shape):
        boxes_per_image = [boxes_in_image.shape[0] for boxes_in_image in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals)
        pred_scores = F.softmax(class_logits, -1)

        all_boxes, all_scores, all_labels = [], [], []
        for boxes, scores in zip(pred_boxes.split(boxes_per_image, 0), pred_scores.split(boxes_per_image, 0)):
            boxes = clip_boxes_to_image(boxes, image_shape)

            # create labels for each prediction
            labels = torch.arange(self.num_classes, device=boxes.device)
            labels = labels.view(1, -1).expand_as(scores)

            # remove predictions with the background label
            boxes = boxes[:, 1:]
            scores = scores[:, 1:]
            labels = labels[:, 1:]

            # batch everything, by making every class prediction be a separate instance
            boxes = boxes.reshape(-1, 4)
            scores = scores.reshape(-1)
            labels = labels.reshape(-1)

            # remove low scoring boxes
            inds = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[inds], scores[inds], labels[inds]

            # remove empty boxes
            keep = remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]

            # non-maximum suppression, independently done per class
            keep = batched_nms(boxes, scores, labels, self.nms_thresh)
            # keep only topk scoring predictions
            keep = keep[: self.detections_per_img]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]

            all_boxes.append(boxes)
            all_scores.append(scores)
            all_labels.append(labels)

        return all_boxes, all_scores, all_labels

    def forward(self, features, proposals, image_shape, targets=None):
        if self.training:
            proposals, labels, regression_targets = self.select_training_samples(proposals, targets)
        rois = torch.cat([torch.cat((torch.full_like(p[:, :1], i), p), dim=1) for i, p in enumerate(proposals)])
        box_features = roi_align(features, rois, output_size=4, spatial_scale=1 / STRIDE, sampling_ratio=2)
        box_features = self.box_head(box_features)
        class_logits, box_regression = self.box_predictor(box_features)

        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shape)
        return [{"boxes": b, "scores": s, "labels": lab} for b, s, lab in zip(boxes, scores, labels)], {}


class FasterRCNN(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
        )
        anchor_generator = AnchorGenerator()
        self.rpn = RegionProposalNetwork(anchor_generator, RPNHead(32, anchor_generator.num_anchors_per_location()[0]))
        self.roi_heads = RoIHeads(TwoMLPHead(32 * 4 * 4, 64), FastRCNNPredictor(64, num_classes), num_classes)

    def forward(self, images, targets=None):
        features = self.backbone(images)
        proposals, proposal_losses = self.rpn(images, features, targets)
        detections, detector_losses = self.roi_heads(features, proposals, images.shape[-2:], targets)
        if self.training:
            losses = {}
            losses.update(detector_losses)
            losses.update(proposal_losses)
            return losses
        return detections


# checks of the pieces against what they must reproduce
feature_map = torch.randn(2, 3, 8, 8)
whole = torch.tensor([[1.0, 0.0, 0.0, 32.0, 32.0]])
pooled = roi_align(feature_map, whole, output_size=8, spatial_scale=1 / STRIDE, sampling_ratio=1)
coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
reference = torch.tensor([[2.0, 3.0, 12.0, 15.0], [5.0, 5.0, 9.0, 20.0]])
proposals = torch.tensor([[1.0, 2.0, 11.0, 11.0], [4.0, 6.0, 10.0, 18.0]])
round_trip = coder.decode_single(coder.encode_single(reference, proposals), proposals)
anchors = AnchorGenerator()(torch.zeros(1, 1, IMAGE, IMAGE), [torch.zeros(1, 1, 8, 8)])[0]
print(f"roi_align of the whole map equals it: {torch.allclose(pooled[0], feature_map[1], atol=1e-5)}, "
      f"box coding round trip error {(round_trip - reference).abs().max().item():.1e}, "
      f"anchors {tuple(anchors.shape)} first {anchors[0].tolist()}")

train_set = [make_scene() for _ in range(48)]
test_set = [make_scene() for _ in range(24)]
model = FasterRCNN()
params = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.Adam(params, lr=2e-3)
lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=200, gamma=0.3)

BATCH = 4
loss_history = []
for step in range(1, 251):
    model.train()
    batch = [train_set[i] for i in torch.randint(len(train_set), (BATCH,)).tolist()]
    images = torch.stack([torch.from_numpy(image) for image, _ in batch])
    targets = [target for _, target in batch]
    loss_dict = model(images, targets)
    losses = sum(loss for loss in loss_dict.values())
    optimizer.zero_grad()
    losses.backward()
    optimizer.step()
    lr_scheduler.step()
    loss_history.append(losses.item())
    if step % 50 == 0:
        print(f"step {step}: mean loss {sum(loss_history[-50:]) / 50:.4f}, last batch "
              + " ".join(f"{k} {v.item():.4f}" for k, v in loss_dict.items()))


@torch.no_grad()
def evaluate(scenes):
    model.eval()
    images = torch.stack([torch.from_numpy(image) for image, _ in scenes])
    detections = model(images)
    found = total = kept = correct = 0
    for det, (_, target) in zip(detections, scenes):
        confident = det["scores"] > 0.5
        boxes, labels = det["boxes"][confident], det["labels"][confident]
        kept += len(boxes)
        total += len(target["boxes"])
        if len(boxes) == 0:
            continue
        iou = box_iou(target["boxes"], boxes)
        hit = (iou >= 0.5) & (labels[None, :] == target["labels"][:, None])
        found += int(hit.any(dim=1).sum())
        correct += int(hit.any(dim=0).sum())
    return found / total, correct / max(kept, 1)


train_recall, train_precision = evaluate(train_set)
test_recall, test_precision = evaluate(test_set)
print(f"train recall {train_recall:.4f} precision {train_precision:.4f}; "
      f"test recall {test_recall:.4f} precision {test_precision:.4f}")
print(f"FINAL loss={sum(loss_history[-50:]) / 50:.4f} train_recall={train_recall:.4f} test_recall={test_recall:.4f} "
      f"test_precision={test_precision:.4f}")
