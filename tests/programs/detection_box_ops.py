"""Detection utilities written by hand, as DETR (facebookresearch/detr: util/box_ops.py,
models/matcher.py, models/detr.py) and YOLO-style repos write them instead of importing torchvision.

``box_cxcywh_to_xyxy``/``box_xyxy_to_cxcywh`` by ``unbind(-1)`` + ``torch.stack``, ``box_area``,
pairwise ``box_iou`` by ``torch.max(boxes1[:, None, :2], boxes2[:, :2])`` and ``.clamp(min=0)``,
``generalized_box_iou`` with its degenerate-box asserts, greedy NMS by
``scores.argsort(descending=True)`` and a ``while order.numel() > 0`` loop, batched NMS by the
coordinate-offset trick, ``sigmoid_focal_loss`` (``F.binary_cross_entropy_with_logits(reduction="none")``,
``p_t``, ``alpha_t``), the ``HungarianMatcher`` (``@torch.no_grad()``, ``flatten(0, 1).softmax(-1)``,
``torch.cdist(p=1)``, ``C.view(bs, num_queries, -1).cpu()``, ``linear_sum_assignment`` per
``C.split(sizes, -1)`` chunk, ``torch.as_tensor(i, dtype=torch.int64)``), ``_get_src_permutation_idx``
by ``torch.cat([torch.full_like(src, i) ...])``, and ``SetCriterion`` with an ``empty_weight`` buffer
passed as ``weight=`` to ``F.cross_entropy``, ``torch.full(..., self.num_classes, dtype=torch.int64)``
filled by ``target_classes[idx] = target_classes_o``, L1 + GIoU box losses with ``torch.diag``; then
a tiny set-prediction head (learned queries over a pooled image feature) trained on synthetic scenes.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def box_cxcywh_to_xyxy(x):
    x_c, y_c, w, h = x.unbind(-1)
    b = [(x_c - 0.5 * w), (y_c - 0.5 * h),
         (x_c + 0.5 * w), (y_c + 0.5 * h)]
    return torch.stack(b, dim=-1)


def box_xyxy_to_cxcywh(x):
    x0, y0, x1, y1 = x.unbind(-1)
    b = [(x0 + x1) / 2, (y0 + y1) / 2,
         (x1 - x0), (y1 - y0)]
    return torch.stack(b, dim=-1)


def box_area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


# modified from torchvision to also return the union
def box_iou(boxes1, boxes2):
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)

    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])  # [N,M,2]
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])  # [N,M,2]

    wh = (rb - lt).clamp(min=0)  # [N,M,2]
    inter = wh[:, :, 0] * wh[:, :, 1]  # [N,M]

    union = area1[:, None] + area2 - inter

    iou = inter / union
    return iou, union


def generalized_box_iou(boxes1, boxes2):
    """
    Generalized IoU from https://giou.stanford.edu/

    The boxes should be in [x0, y0, x1, y1] format

    Returns a [N, M] pairwise matrix, where N = len(boxes1)
    and M = len(boxes2)
    """
    # degenerate boxes gives inf / nan results
    # so do an early check
    assert (boxes1[:, 2:] >= boxes1[:, :2]).all()
    assert (boxes2[:, 2:] >= boxes2[:, :2]).all()
    iou, union = box_iou(boxes1, boxes2)

    lt = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])

    wh = (rb - lt).clamp(min=0)  # [N,M,2]
    area = wh[:, :, 0] * wh[:, :, 1]

    return iou - (area - union) / area


def nms(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i.item())
        if order.numel() == 1:
            break
        ious, _ = box_iou(boxes[i].unsqueeze(0), boxes[order[1:]])
        mask = ious[0] <= iou_threshold
        order = order[1:][mask]
    return torch.tensor(keep, dtype=torch.long)


def batched_nms(boxes, scores, idxs, iou_threshold):
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    return nms(boxes_for_nms, scores, iou_threshold)


def sigmoid_focal_loss(inputs, targets, num_boxes, alpha: float = 0.25, gamma: float = 2):
    prob = inputs.sigmoid()
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)

    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss

    return loss.mean(1).sum() / num_boxes


class HungarianMatcher(nn.Module):
    def __init__(self, cost_class: float = 1, cost_bbox: float = 1, cost_giou: float = 1):
        super().__init__()
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        assert cost_class != 0 or cost_bbox != 0 or cost_giou != 0, "all costs cant be 0"

    @torch.no_grad()
    def forward(self, outputs, targets):
        bs, num_queries = outputs["pred_logits"].shape[:2]

        # We flatten to compute the cost matrices in a batch
        out_prob = outputs["pred_logits"].flatten(0, 1).softmax(-1)  # [batch_size * num_queries, num_classes]
        out_bbox = outputs["pred_boxes"].flatten(0, 1)  # [batch_size * num_queries, 4]

        # Also concat the target labels and boxes
        tgt_ids = torch.cat([v["labels"] for v in targets])
        tgt_bbox = torch.cat([v["boxes"] for v in targets])

        # Compute the classification cost.
        cost_class = -out_prob[:, tgt_ids]

        # Compute the L1 cost between boxes
        cost_bbox = torch.cdist(out_bbox, tgt_bbox, p=1)

        # Compute the giou cost betwen boxes
        cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(out_bbox), box_cxcywh_to_xyxy(tgt_bbox))

        # Final cost matrix
        C = self.cost_bbox * cost_bbox + self.cost_class * cost_class + self.cost_giou * cost_giou
        C = C.view(bs, num_queries, -1).cpu()

        sizes = [len(v["boxes"]) for v in targets]
        indices = [linear_sum_assignment(c[i]) for i, c in enumerate(C.split(sizes, -1))]
        return [(torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)) for i, j in indices]


class SetCriterion(nn.Module):
    def __init__(self, num_classes, matcher, weight_dict, eos_coef, losses):
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = weight_dict
        self.eos_coef = eos_coef
        self.losses = losses
        empty_weight = torch.ones(self.num_classes + 1)
        empty_weight[-1] = self.eos_coef
        self.register_buffer("empty_weight", empty_weight)

    def loss_labels(self, outputs, targets, indices, num_boxes):
        src_logits = outputs["pred_logits"]

        idx = self._get_src_permutation_idx(indices)
        target_classes_o = torch.cat([t["labels"][J] for t, (_, J) in zip(targets, indices)])
        target_classes = torch.full(src_logits.shape[:2], self.num_classes,
                                    dtype=torch.int64, device=src_logits.device)
        target_classes[idx] = target_classes_o

        loss_ce = F.cross_entropy(src_logits.transpose(1, 2), target_classes, self.empty_weight)
        return {"loss_ce": loss_ce}

    @torch.no_grad()
    def loss_cardinality(self, outputs, targets, indices, num_boxes):
        pred_logits = outputs["pred_logits"]
        device = pred_logits.device
        tgt_lengths = torch.as_tensor([len(v["labels"]) for v in targets], device=device)
        # Count the number of predictions that are NOT "no-object" (which is the last class)
        card_pred = (pred_logits.argmax(-1) != pred_logits.shape[-1] - 1).sum(1)
        card_err = F.l1_loss(card_pred.float(), tgt_lengths.float())
        return {"cardinality_error": card_err}

    def loss_boxes(self, outputs, targets, indices, num_boxes):
        assert "pred_boxes" in outputs
        idx = self._get_src_permutation_idx(indices)
        src_boxes = outputs["pred_boxes"][idx]
        target_boxes = torch.cat([t["boxes"][i] for t, (_, i) in zip(targets, indices)], dim=0)

        loss_bbox = F.l1_loss(src_boxes, target_boxes, reduction="none")

        losses = {}
        losses["loss_bbox"] = loss_bbox.sum() / num_boxes

        loss_giou = 1 - torch.diag(generalized_box_iou(
            box_cxcywh_to_xyxy(src_boxes),
            box_cxcywh_to_xyxy(target_boxes)))
        losses["loss_giou"] = loss_giou.sum() / num_boxes
        return losses

    def _get_src_permutation_idx(self, indices):
        # permute predictions following indices
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        src_idx = torch.cat([src for (src, _) in indices])
        return batch_idx, src_idx

    def get_loss(self, loss, outputs, targets, indices, num_boxes):
        loss_map = {
            "labels": self.loss_labels,
            "cardinality": self.loss_cardinality,
            "boxes": self.loss_boxes,
        }
        assert loss in loss_map, f"do you really want to compute {loss} loss?"
        return loss_map[loss](outputs, targets, indices, num_boxes)

    def forward(self, outputs, targets):
        indices = self.matcher(outputs, targets)

        # Compute the average number of target boxes accross all nodes, for normalization purposes
        num_boxes = sum(len(t["labels"]) for t in targets)
        num_boxes = torch.as_tensor([num_boxes], dtype=torch.float, device=next(iter(outputs.values())).device)
        num_boxes = torch.clamp(num_boxes, min=1).item()

        losses = {}
        for loss in self.losses:
            losses.update(self.get_loss(loss, outputs, targets, indices, num_boxes))
        return losses


# --- the box utilities on fixed boxes ----------------------------------------------------------------------------
boxes_a = torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.3, 0.6, 0.2, 0.5], [0.7, 0.2, 0.3, 0.2]])
boxes_b = torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.55, 0.45, 0.3, 0.3], [0.1, 0.1, 0.1, 0.1], [0.7, 0.25, 0.3, 0.3]])
xyxy_a, xyxy_b = box_cxcywh_to_xyxy(boxes_a), box_cxcywh_to_xyxy(boxes_b)
print(xyxy_a)
print(torch.allclose(box_xyxy_to_cxcywh(xyxy_a), boxes_a), box_area(xyxy_a))
iou, union = box_iou(xyxy_a, xyxy_b)
print(iou.shape, iou.round(decimals=4))
print(generalized_box_iou(xyxy_a, xyxy_b).round(decimals=4))
try:
    generalized_box_iou(xyxy_a.flip(-1), xyxy_b)
except AssertionError:
    print("degenerate boxes refused")

# gradients of the GIoU loss flow through min/max/clamp as in torch
pred = boxes_a.clone().requires_grad_(True)
giou_loss = (1 - torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(pred), xyxy_b[:3]))).sum()
giou_loss.backward()
print(f"giou loss {giou_loss.item():.4f}", pred.grad.round(decimals=4))

# --- NMS on random detections --------------------------------------------------------------------------------------
centers = torch.rand(40, 2) * 0.8 + 0.1
sizes = torch.rand(40, 2) * 0.2 + 0.05
det_boxes = box_cxcywh_to_xyxy(torch.cat([centers, sizes], dim=1))
det_scores = torch.rand(40)
det_classes = torch.randint(0, 3, (40,))
keep = nms(det_boxes, det_scores, 0.3)
kept_iou, _ = box_iou(det_boxes[keep], det_boxes[keep])
kept_iou.fill_diagonal_(0)
print(keep.dtype, bool((det_scores[keep][:-1] >= det_scores[keep][1:]).all()), bool((kept_iou <= 0.3).all()))
keep_batched = batched_nms(det_boxes, det_scores, det_classes, 0.3)
print(len(keep_batched) >= len(keep), batched_nms(torch.empty(0, 4), torch.empty(0), torch.empty(0), 0.5).shape)

# --- focal loss and its gradient -----------------------------------------------------------------------------------
logits = torch.randn(6, 5, requires_grad=True)
onehot = (torch.rand(6, 5) > 0.7).float()
focal = sigmoid_focal_loss(logits, onehot, num_boxes=4)
focal.backward()
print(f"focal {focal.item():.4f} grad_norm {logits.grad.norm().item():.4f}")

# --- the matcher on a fixed prediction -----------------------------------------------------------------------------
num_classes = 3
matcher = HungarianMatcher(cost_class=1, cost_bbox=5, cost_giou=2)
outputs = {"pred_logits": torch.randn(2, 5, num_classes + 1), "pred_boxes": torch.rand(2, 5, 4) * 0.5 + 0.25}
targets = [{"labels": torch.tensor([0, 2]), "boxes": boxes_a[:2]},
           {"labels": torch.tensor([1, 1, 0]), "boxes": boxes_b[1:]}]
indices = matcher(outputs, targets)
print([(len(i), len(j), i.dtype) for i, j in indices], sorted(indices[1][1].tolist()))

# --- train a tiny set-prediction head on synthetic scenes ---------------------------------------------------------
rng = np.random.RandomState(0)
COLORS = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0]], dtype=np.float32)


def make_scene(size=16):
    """A small RGB image with one to three solid rectangles; targets in normalised cxcywh."""
    image = np.zeros((3, size, size), dtype=np.float32)
    labels, boxes = [], []
    for _ in range(rng.randint(1, 4)):
        w, h = rng.randint(3, 8, size=2)
        x0, y0 = rng.randint(0, size - w), rng.randint(0, size - h)
        label = rng.randint(0, 3)
        image[:, y0:y0 + h, x0:x0 + w] = COLORS[label][:, None, None]
        labels.append(label)
        boxes.append([(x0 + w / 2) / size, (y0 + h / 2) / size, w / size, h / size])
    return image, {"labels": torch.tensor(labels), "boxes": torch.tensor(boxes, dtype=torch.float32)}


scenes = [make_scene() for _ in range(96)]
images = torch.from_numpy(np.stack([s[0] for s in scenes]))
scene_targets = [s[1] for s in scenes]


class MLP(nn.Module):
    """ Very simple multi-layer perceptron (also called FFN)"""

    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class TinyDETR(nn.Module):
    def __init__(self, num_classes, num_queries=4, hidden_dim=32):
        super().__init__()
        self.num_queries = num_queries
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, hidden_dim, 3, padding=1), nn.ReLU())
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.attn = nn.MultiheadAttention(hidden_dim, 4, batch_first=True)
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)

    def forward(self, samples):
        features = self.backbone(samples).flatten(2).transpose(1, 2)  # [B, HW, C]
        queries = self.query_embed.weight.unsqueeze(0).repeat(samples.shape[0], 1, 1)
        hs, _ = self.attn(queries, features, features)
        hs = hs + queries
        return {"pred_logits": self.class_embed(hs), "pred_boxes": self.bbox_embed(hs).sigmoid()}


model = TinyDETR(num_classes)
weight_dict = {"loss_ce": 1, "loss_bbox": 5, "loss_giou": 2}
criterion = SetCriterion(num_classes, matcher=matcher, weight_dict=weight_dict, eos_coef=0.1,
                         losses=["labels", "boxes", "cardinality"])
print(criterion.empty_weight, [name for name, _ in criterion.named_buffers()])
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
batch_size = 16
for epoch in range(12):
    model.train()
    criterion.train()
    permutation = torch.randperm(len(scenes))
    for start in range(0, len(scenes), batch_size):
        index = permutation[start:start + batch_size]
        outputs = model(images[index])
        loss_dict = criterion(outputs, [scene_targets[i] for i in index.tolist()])
        losses = sum(loss_dict[k] * weight_dict[k] for k in loss_dict.keys() if k in weight_dict)
        optimizer.zero_grad()
        losses.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
    if epoch % 4 == 3:
        stats = {k: v.item() for k, v in loss_dict.items()}
        print(f"epoch {epoch} loss {losses.item():.4f} ce {stats['loss_ce']:.4f} bbox {stats['loss_bbox']:.4f} "
              f"giou {stats['loss_giou']:.4f} card {stats['cardinality_error']:.2f}")

model.eval()
with torch.no_grad():
    outputs = model(images)
    loss_dict = criterion(outputs, scene_targets)
    indices = matcher(outputs, scene_targets)
    matched = torch.cat([outputs["pred_boxes"][b, i] for b, (i, _) in enumerate(indices)])
    truth = torch.cat([t["boxes"][j] for t, (_, j) in zip(scene_targets, indices)])
    matched_iou = torch.diag(box_iou(box_cxcywh_to_xyxy(matched), box_cxcywh_to_xyxy(truth))[0]).mean().item()
    probas = outputs["pred_logits"].softmax(-1)[:, :, :-1]
    keep_mask = probas.max(-1).values > 0.5
print(f"eval ce {loss_dict['loss_ce'].item():.4f} giou {loss_dict['loss_giou'].item():.4f} "
      f"matched_iou {matched_iou:.4f} kept {int(keep_mask.sum()) > 0}")
print(f"FINAL loss_ce={loss_dict['loss_ce'].item():.4f} loss_bbox={loss_dict['loss_bbox'].item():.4f} "
      f"loss_giou={loss_dict['loss_giou'].item():.4f} matched_iou={matched_iou:.4f} "
      f"cardinality_error={loss_dict['cardinality_error'].item():.4f} focal={focal.item():.4f}")
