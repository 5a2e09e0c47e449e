"""A tiny DETR (Carion et al., facebookresearch/detr) trained end to end on synthetic box images.

The pieces as the repo and its minimal demo write them, at toy sizes: images of two sizes padded
into one batch with a padding mask (``nested_tensor_from_tensor_list``), the mask carried to the
feature map by ``F.interpolate(m[None].float(), size=...).to(torch.bool)[0]``; a small strided-conv
backbone and a 1x1 ``input_proj``; ``PositionEmbeddingSine`` (``not_mask.cumsum(1, dtype=torch.float32)``,
normalised by the last row, ``temperature ** (2 * (dim_t // 2) / n)`` on a float ``arange``,
``torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=4).flatten(3)``); an
``nn.TransformerEncoder``/``nn.TransformerDecoder`` pair with ``batch_first=True``, the padding mask
as ``src_key_padding_mask``/``memory_key_padding_mask``, the decoder stepped layer by layer through
``self.decoder.layers`` so every layer's (normed) output feeds the shared heads for the auxiliary
losses; learned object queries ``nn.Embedding(num_queries, d).weight.unsqueeze(0).repeat(bs, 1, 1)``;
a class head with a no-object class and a 3-layer box MLP ending in ``.sigmoid()`` (cxcywh).

The matcher is the Hungarian matching by brute force, as small-query re-implementations do: under
``torch.no_grad()`` a class + L1 (``torch.cdist(p=1)``) + GIoU cost matrix, every assignment from
``itertools.permutations(range(num_queries), n)`` scored at once by advanced indexing
``C[perms, torch.arange(n)].sum(1)``, the cheapest by ``argmin``. The criterion: the no-object class
down-weighted through ``F.cross_entropy(..., weight=empty_weight)`` on ``flatten(0, 1)`` logits,
``F.l1_loss(reduction='none')`` and ``1 - diagonal`` of a hand-written generalised IoU
(``torch.max``/``torch.min`` of corners, ``clamp(min=0)``), summed over decoder layers; AdamW with a
smaller backbone lr group, ``clip_grad_norm_(..., 0.1)`` whose returned total norm is logged.
"""

import itertools
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_CLASSES = 2  # red boxes and blue boxes; index 2 is "no object"
NUM_QUERIES = 4
PAD = 24
COLOURS = np.array([[1.0, 0.1, 0.1], [0.1, 0.3, 1.0]], dtype=np.float32)


def make_scene():
    height, width = [int(s) for s in rng.choice([20, 24], size=2)]
    image = rng.normal(0.0, 0.15, size=(3, height, width)).astype(np.float32)
    labels, boxes = [], []
    for _ in range(int(rng.integers(0, 3))):
        cls = int(rng.integers(0, NUM_CLASSES))
        w, h = rng.uniform(5, 11), rng.uniform(5, 11)
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        x1, y1 = x0 + w, y0 + h
        image[:, int(y0):int(math.ceil(y1)), int(x0):int(math.ceil(x1))] += COLOURS[cls][:, None, None]
        labels.append(cls)
        boxes.append([x0 / width, y0 / height, x1 / width, y1 / height])
    target = {"labels": torch.tensor(labels, dtype=torch.int64),
              "boxes": box_xyxy_to_cxcywh(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4))}
    return torch.from_numpy(image), target


def nested_tensor_from_tensor_list(tensor_list):
    batch_shape = [len(tensor_list), 3, PAD, PAD]
    tensor = torch.zeros(batch_shape, dtype=tensor_list[0].dtype)
    mask = torch.ones((len(tensor_list), PAD, PAD), dtype=torch.bool)
    for img, pad_img, m in zip(tensor_list, tensor, mask):
        pad_img[: img.shape[0], : img.shape[1], : img.shape[2]].copy_(img)
        m[: img.shape[1], : img.shape[2]] = False
    return tensor, mask


def box_cxcywh_to_xyxy(x):
    x_c, y_c, w, h = x.unbind(-1)
    return torch.stack([x_c - 0.5 * w, y_c - 0.5 * h, x_c + 0.5 * w, y_c + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(x):
    x0, y0, x1, y1 = x.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def generalized_box_iou(boxes1, boxes2):
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2 - inter
    iou = inter / union
    lt = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[:, :, 0] * wh[:, :, 1]
    return iou - (area - union) / area, iou


class PositionEmbeddingSine(nn.Module):
    def __init__(self, num_pos_feats=16, temperature=10000, normalize=True, scale=None):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale

    def forward(self, x, mask):
        not_mask = ~mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        if self.normalize:
            eps = 1e-6
            y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=x.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class MLP(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class DETR(nn.Module):
    def __init__(self, num_classes, num_queries, hidden_dim=32, nheads=4, num_layers=2):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.input_proj = nn.Conv2d(32, hidden_dim, kernel_size=1)
        self.position_embedding = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        encoder_layer = nn.TransformerEncoderLayer(hidden_dim, nheads, dim_feedforward=64, dropout=0.1, batch_first=True)
        decoder_layer = nn.TransformerDecoderLayer(hidden_dim, nheads, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(encoder_layer, num_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(decoder_layer, num_layers, norm=nn.LayerNorm(hidden_dim))
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)

    def forward(self, samples, mask):
        features = self.backbone(samples)
        mask = F.interpolate(mask[None].float(), size=features.shape[-2:]).to(torch.bool)[0]
        pos = self.position_embedding(features, mask)
        bs = features.shape[0]
        src = (self.input_proj(features) + pos).flatten(2).permute(0, 2, 1)
        key_padding_mask = mask.flatten(1)
        memory = self.encoder(src, src_key_padding_mask=key_padding_mask)
        tgt = self.query_embed.weight.unsqueeze(0).repeat(bs, 1, 1)
        intermediate = []
        for layer in self.decoder.layers:
            tgt = layer(tgt, memory, memory_key_padding_mask=key_padding_mask)
            intermediate.append(self.decoder.norm(tgt))
        hs = torch.stack(intermediate)
        outputs_class = self.class_embed(hs)
        outputs_coord = self.bbox_embed(hs).sigmoid()
        out = {"pred_logits": outputs_class[-1], "pred_boxes": outputs_coord[-1]}
        out["aux_outputs"] = [{"pred_logits": a, "pred_boxes": b}
                              for a, b in zip(outputs_class[:-1], outputs_coord[:-1])]
        return out


class BruteForceMatcher:
    def __init__(self, cost_class=1.0, cost_bbox=5.0, cost_giou=2.0):
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    @torch.no_grad()
    def __call__(self, outputs, targets):
        indices = []
        for logits, boxes, target in zip(outputs["pred_logits"], outputs["pred_boxes"], targets):
            prob = logits.softmax(-1)
            tgt_ids, tgt_boxes = target["labels"], target["boxes"]
            cost_class = -prob[:, tgt_ids]
            cost_bbox = torch.cdist(boxes, tgt_boxes, p=1)
            cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(tgt_boxes))[0]
            C = self.cost_bbox * cost_bbox + self.cost_class * cost_class + self.cost_giou * cost_giou
            n = len(tgt_ids)
            perms = torch.tensor(list(itertools.permutations(range(C.shape[0]), n)), dtype=torch.int64)
            costs = C[perms, torch.arange(n)].sum(1)
            best = perms[costs.argmin()]
            indices.append((best, torch.arange(n, dtype=torch.int64)))
        return indices


class SetCriterion(nn.Module):
    def __init__(self, num_classes, matcher, eos_coef=0.1, weight_dict=None):
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = weight_dict
        empty_weight = torch.ones(self.num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)

    def _get_src_permutation_idx(self, indices):
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        src_idx = torch.cat([src for (src, _) in indices])
        return batch_idx, src_idx

    def single_layer(self, outputs, targets, num_boxes):
        indices = self.matcher(outputs, targets)
        idx = self._get_src_permutation_idx(indices)
        src_logits = outputs["pred_logits"]
        target_classes_o = torch.cat([t["labels"][J] for t, (_, J) in zip(targets, indices)])
        target_classes = torch.full(src_logits.shape[:2], self.num_classes, dtype=torch.int64)
        target_classes[idx] = target_classes_o
        loss_ce = F.cross_entropy(src_logits.flatten(0, 1), target_classes.flatten(), weight=self.empty_weight)
        src_boxes = outputs["pred_boxes"][idx]
        target_boxes = torch.cat([t["boxes"][i] for t, (_, i) in zip(targets, indices)], dim=0)
        loss_bbox = F.l1_loss(src_boxes, target_boxes, reduction="none").sum() / num_boxes
        giou = generalized_box_iou(box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(target_boxes))[0]
        loss_giou = (1 - torch.diagonal(giou)).sum() / num_boxes
        return {"loss_ce": loss_ce, "loss_bbox": loss_bbox, "loss_giou": loss_giou}

    def forward(self, outputs, targets):
        num_boxes = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
        losses = self.single_layer(outputs, targets, num_boxes)
        for i, aux in enumerate(outputs["aux_outputs"]):
            losses.update({f"{k}_{i}": v for k, v in self.single_layer(aux, targets, num_boxes).items()})
        return losses

    def total(self, losses):
        return sum(losses[k] * self.weight_dict[k.rsplit("_", 1)[0] if k[-1].isdigit() else k] for k in losses)


train_scenes = [make_scene() for _ in range(64)]
test_scenes = [make_scene() for _ in range(32)]
objects = sum(len(t["labels"]) for _, t in train_scenes)
empty = sum(len(t["labels"]) == 0 for _, t in train_scenes)
print(f"train scenes {len(train_scenes)} objects {objects} empty scenes {empty} test scenes {len(test_scenes)}")

model = DETR(NUM_CLASSES, NUM_QUERIES)
weight_dict = {"loss_ce": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}
criterion = SetCriterion(NUM_CLASSES, BruteForceMatcher(), eos_coef=0.1, weight_dict=weight_dict)
print("empty_weight", criterion.empty_weight.tolist(), "buffers", [n for n, _ in criterion.named_buffers()])

probe_images, probe_mask = nested_tensor_from_tensor_list([img for img, _ in train_scenes[:4]])
pos = model.position_embedding(probe_images, probe_mask)
print(f"padded batch {tuple(probe_images.shape)} padding {probe_mask.float().mean().item():.3f} "
      f"pos {tuple(pos.shape)} range ok {bool(pos.abs().max() <= 1.0)}")

param_dicts = [
    {"params": [p for n, p in model.named_parameters() if "backbone" not in n and p.requires_grad]},
    {"params": [p for n, p in model.named_parameters() if "backbone" in n and p.requires_grad], "lr": 1e-3},
]
optimizer = torch.optim.AdamW(param_dicts, lr=3e-3, weight_decay=1e-4)
lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 8)

EPOCHS, BATCH = 10, 16
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(len(train_scenes)).tolist()
    totals, norms, steps = {}, [], 0
    for start in range(0, len(order), BATCH):
        batch = [train_scenes[i] for i in order[start:start + BATCH]]
        samples, mask = nested_tensor_from_tensor_list([img for img, _ in batch])
        targets = [t for _, t in batch]
        outputs = model(samples, mask)
        loss_dict = criterion(outputs, targets)
        losses = criterion.total(loss_dict)
        optimizer.zero_grad()
        losses.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1).item())
        optimizer.step()
        for k in ("loss_ce", "loss_bbox", "loss_giou"):
            totals[k] = totals.get(k, 0.0) + loss_dict[k].item()
        totals["loss"] = totals.get("loss", 0.0) + losses.item()
        steps += 1
    lr_scheduler.step()
    print(f"epoch {epoch} loss {totals['loss'] / steps:.4f} ce {totals['loss_ce'] / steps:.4f} "
          f"l1 {totals['loss_bbox'] / steps:.4f} giou {totals['loss_giou'] / steps:.4f} "
          f"grad norm {np.mean(norms):.3f} lr {optimizer.param_groups[0]['lr']:.5f}")


@torch.no_grad()
def evaluate(scenes):
    model.eval()
    samples, mask = nested_tensor_from_tensor_list([img for img, _ in scenes])
    targets = [t for _, t in scenes]
    outputs = model(samples, mask)
    loss = criterion.total(criterion(outputs, targets)).item()
    indices = criterion.matcher(outputs, targets)
    idx = criterion._get_src_permutation_idx(indices)
    matched_boxes = box_cxcywh_to_xyxy(outputs["pred_boxes"][idx])
    target_boxes = box_cxcywh_to_xyxy(torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)]))
    ious = torch.diagonal(generalized_box_iou(matched_boxes, target_boxes)[1])
    target_labels = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)])
    class_acc = (outputs["pred_logits"][idx].argmax(-1) == target_labels).float().mean().item()
    # DETR's cardinality error: how many queries do not predict "no object", against the truth
    card_pred = (outputs["pred_logits"].argmax(-1) != NUM_CLASSES).sum(1)
    tgt_lengths = torch.as_tensor([len(t["labels"]) for t in targets])
    card_err = F.l1_loss(card_pred.float(), tgt_lengths.float()).item()
    return loss, ious.mean().item(), (ious > 0.5).float().mean().item(), class_acc, card_err


loss, miou, hit50, class_acc, card_err = evaluate(test_scenes)
print(f"test loss {loss:.4f} matched IoU {miou:.4f} IoU>0.5 {hit50:.3f} class acc {class_acc:.3f} "
      f"cardinality error {card_err:.3f}")
print(f"FINAL test_loss={loss:.4f} matched_iou={miou:.4f} iou50={hit50:.4f} class_acc={class_acc:.4f} "
      f"card_err={card_err:.4f}")
