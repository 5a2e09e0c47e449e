"""Mask2Former's transformer decoder (facebookresearch/Mask2Former:
mask2former/modeling/transformer_decoder/mask2former_transformer_decoder.py and
mask2former/modeling/matcher.py, criterion.py) at toy size, on 16x16 images of coloured squares and
discs, one class per colour.

A small CNN gives mask features at 8x8 and two memory levels (4x4, 8x8), each projected by a 1x1
conv plus a ``level_embed`` and given a ``PositionEmbeddingSine`` (``cumsum`` of ``~mask``,
``dim_t // 2``, ``torch.stack((sin, cos), dim=4).flatten(3)``). Learnable ``query_feat`` /
``query_embed`` embeddings are repeated over the batch in (L, B, C) layout; every decoder layer is
masked cross-attention (``nn.MultiheadAttention`` with a boolean ``attn_mask``), self-attention and an
FFN, post-norm. Each layer's attention mask comes from the previous prediction:
``torch.einsum("bqc,bchw->bqhw")`` masks, ``F.interpolate(..., mode="bilinear",
align_corners=False)`` to the next level's size, ``sigmoid() < 0.5`` after ``flatten(2)`` and the
per-head copy ``unsqueeze(1).repeat(1, heads, 1, 1).flatten(0, 1)`` (checked equal to
``repeat_interleave(heads, 0)``), ``.detach()``, then rows that would be all-masked reset by
``attn_mask[torch.where(attn_mask.sum(-1) == attn_mask.shape[-1])] = False``. Matching is an
exhaustive assignment over ``torch.tensor(list(itertools.permutations(...)))`` under
``@torch.no_grad()`` (never worse than the greedy one, asserted), on class, sigmoid-BCE and dice
costs; the losses are class CE with an ``empty_weight`` buffer (``eos_coef``) on
``transpose(1, 2)`` logits, sigmoid BCE and dice on matched masks, over every layer's output (deep
supervision). AdamW + ``clip_grad_norm_``. Checks: the loss falls, matched mask IoU rises, the
all-masked reset runs, and the masked attention equals a hand-written ``masked_fill(-inf)`` softmax.
"""

import itertools
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

NUM_CLASSES = 3
IMG = 16

# ---- data: 1-3 objects per image; the class is the colour, the shape is a square or a disc ----
rng = np.random.RandomState(0)
COLOURS = np.array([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1], [0.1, 0.1, 1.0]], dtype=np.float32)


def make_image():
    img = 0.15 * rng.randn(3, IMG, IMG).astype(np.float32)
    yy, xx = np.mgrid[0:IMG, 0:IMG]
    taken = np.zeros((IMG, IMG), dtype=bool)
    labels, masks = [], []
    for _ in range(rng.randint(1, 4)):
        cls = rng.randint(NUM_CLASSES)
        r = rng.randint(2, 5)
        cy, cx = rng.randint(r, IMG - r), rng.randint(r, IMG - r)
        if rng.rand() < 0.5:
            m = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
        else:
            m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        m &= ~taken
        if m.sum() < 4:
            continue
        taken |= m
        img[:, m] += COLOURS[cls][:, None]
        labels.append(cls)
        masks.append(m.astype(np.float32))
    if not labels:
        return make_image()
    return img, {"labels": torch.tensor(labels, dtype=torch.int64),
                 "masks": torch.from_numpy(np.stack(masks))}


train_set = [make_image() for _ in range(96)]
test_set = [make_image() for _ in range(32)]


class PositionEmbeddingSine(nn.Module):
    def __init__(self, num_pos_feats=64, temperature=10000, normalize=False, scale=None):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        if scale is None:
            scale = 2 * math.pi
        self.scale = scale

    def forward(self, x, mask=None):
        if mask is None:
            mask = torch.zeros((x.size(0), x.size(2), x.size(3)), device=x.device, dtype=torch.bool)
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


class SelfAttentionLayer(nn.Module):
    def __init__(self, d_model, nhead, dropout=0.0):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def with_pos_embed(self, tensor, pos):
        return tensor if pos is None else tensor + pos

    def forward(self, tgt, tgt_mask=None, tgt_key_padding_mask=None, query_pos=None):
        q = k = self.with_pos_embed(tgt, query_pos)
        tgt2 = self.self_attn(q, k, value=tgt, attn_mask=tgt_mask,
                              key_padding_mask=tgt_key_padding_mask)[0]
        tgt = tgt + self.dropout(tgt2)
        return self.norm(tgt)


class CrossAttentionLayer(nn.Module):
    def __init__(self, d_model, nhead, dropout=0.0):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def with_pos_embed(self, tensor, pos):
        return tensor if pos is None else tensor + pos

    def forward(self, tgt, memory, memory_mask=None, memory_key_padding_mask=None, pos=None,
                query_pos=None):
        tgt2 = self.multihead_attn(query=self.with_pos_embed(tgt, query_pos),
                                   key=self.with_pos_embed(memory, pos),
                                   value=memory, attn_mask=memory_mask,
                                   key_padding_mask=memory_key_padding_mask)[0]
        tgt = tgt + self.dropout(tgt2)
        return self.norm(tgt)


class FFNLayer(nn.Module):
    def __init__(self, d_model, dim_feedforward=64, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt):
        tgt2 = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        tgt = tgt + self.dropout(tgt2)
        return self.norm(tgt)


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


class PixelEncoder(nn.Module):
    """Stands in for backbone + pixel decoder: mask features at 1/2, memory at 1/4 and 1/2."""

    def __init__(self, dim):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(16, dim, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(dim, dim, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.mask_features = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        f8 = self.stem(x)
        f4 = self.down(f8)
        return self.mask_features(f8), [f4, f8]


class MultiScaleMaskedTransformerDecoder(nn.Module):
    def __init__(self, num_classes, hidden_dim=32, num_queries=6, nheads=4, dec_layers=3,
                 mask_dim=32):
        super().__init__()
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.transformer_self_attention_layers = nn.ModuleList()
        self.transformer_cross_attention_layers = nn.ModuleList()
        self.transformer_ffn_layers = nn.ModuleList()
        for _ in range(self.num_layers):
            self.transformer_self_attention_layers.append(SelfAttentionLayer(hidden_dim, nheads))
            self.transformer_cross_attention_layers.append(CrossAttentionLayer(hidden_dim, nheads))
            self.transformer_ffn_layers.append(FFNLayer(hidden_dim, dim_feedforward=2 * hidden_dim))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.num_queries = num_queries
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.num_feature_levels = 2
        self.level_embed = nn.Embedding(self.num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList(nn.Conv2d(hidden_dim, hidden_dim, kernel_size=1)
                                        for _ in range(self.num_feature_levels))
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.resets = 0
        self.rows = 0

    def forward(self, x, mask_features):
        src, pos, size_list = [], [], []
        for i in range(self.num_feature_levels):
            size_list.append(x[i].shape[-2:])
            pos.append(self.pe_layer(x[i], None).flatten(2))
            src.append(self.input_proj[i](x[i]).flatten(2) + self.level_embed.weight[i][None, :, None])
            # flatten NxCxHxW to HWxNxC
            pos[-1] = pos[-1].permute(2, 0, 1)
            src[-1] = src[-1].permute(2, 0, 1)
        _, bs, _ = src[0].shape
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, bs, 1)

        predictions_class, predictions_mask = [], []
        outputs_class, outputs_mask, attn_mask = self.forward_prediction_heads(
            output, mask_features, attn_mask_target_size=size_list[0])
        predictions_class.append(outputs_class)
        predictions_mask.append(outputs_mask)
        for i in range(self.num_layers):
            level_index = i % self.num_feature_levels
            full = attn_mask.sum(-1) == attn_mask.shape[-1]
            self.resets += int(full.sum())
            self.rows += full.numel()
            attn_mask[torch.where(attn_mask.sum(-1) == attn_mask.shape[-1])] = False
            output = self.transformer_cross_attention_layers[i](
                output, src[level_index], memory_mask=attn_mask, memory_key_padding_mask=None,
                pos=pos[level_index], query_pos=query_embed)
            output = self.transformer_self_attention_layers[i](
                output, tgt_mask=None, tgt_key_padding_mask=None, query_pos=query_embed)
            output = self.transformer_ffn_layers[i](output)
            outputs_class, outputs_mask, attn_mask = self.forward_prediction_heads(
                output, mask_features,
                attn_mask_target_size=size_list[(i + 1) % self.num_feature_levels])
            predictions_class.append(outputs_class)
            predictions_mask.append(outputs_mask)
        return {
            "pred_logits": predictions_class[-1],
            "pred_masks": predictions_mask[-1],
            "aux_outputs": [{"pred_logits": a, "pred_masks": b}
                            for a, b in zip(predictions_class[:-1], predictions_mask[:-1])],
        }

    def forward_prediction_heads(self, output, mask_features, attn_mask_target_size):
        decoder_output = self.decoder_norm(output)
        decoder_output = decoder_output.transpose(0, 1)
        outputs_class = self.class_embed(decoder_output)
        mask_embed = self.mask_embed(decoder_output)
        outputs_mask = torch.einsum("bqc,bchw->bqhw", mask_embed, mask_features)
        attn_mask = F.interpolate(outputs_mask, size=attn_mask_target_size, mode="bilinear",
                                  align_corners=False)
        # [B, Q, H, W] -> [B, Q, H*W] -> [B, h, Q, H*W] -> [B*h, Q, HW]
        attn_mask = (attn_mask.sigmoid().flatten(2).unsqueeze(1).repeat(1, self.num_heads, 1, 1)
                     .flatten(0, 1) < 0.5).bool()
        attn_mask = attn_mask.detach()
        return outputs_class, outputs_mask, attn_mask


class MaskFormer(nn.Module):
    def __init__(self):
        super().__init__()
        self.pixel = PixelEncoder(32)
        self.predictor = MultiScaleMaskedTransformerDecoder(NUM_CLASSES)

    def forward(self, images):
        mask_features, feats = self.pixel(images)
        return self.predictor(feats, mask_features)


def batch_dice_cost(inputs, targets):
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * torch.einsum("nc,mc->nm", inputs, targets)
    denominator = inputs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def batch_sigmoid_ce_cost(inputs, targets):
    hw = inputs.shape[1]
    pos = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    neg = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    loss = torch.einsum("nc,mc->nm", pos, targets) + torch.einsum("nc,mc->nm", neg, (1 - targets))
    return loss / hw


class ExhaustiveMatcher(nn.Module):
    def __init__(self, cost_class=2.0, cost_mask=5.0, cost_dice=5.0):
        super().__init__()
        self.cost_class, self.cost_mask, self.cost_dice = cost_class, cost_mask, cost_dice
        self.perm_cache = {}

    def permutations(self, num_queries, n):
        key = (num_queries, n)
        if key not in self.perm_cache:
            self.perm_cache[key] = torch.tensor(list(itertools.permutations(range(num_queries), n)),
                                                dtype=torch.int64)
        return self.perm_cache[key]

    @torch.no_grad()
    def forward(self, outputs, targets):
        bs, num_queries = outputs["pred_logits"].shape[:2]
        indices = []
        self.greedy_gap = 0.0
        for b in range(bs):
            out_prob = outputs["pred_logits"][b].softmax(-1)
            tgt_ids = targets[b]["labels"]
            cost_class = -out_prob[:, tgt_ids]
            out_mask = F.interpolate(outputs["pred_masks"][b][:, None], size=(IMG, IMG),
                                     mode="bilinear", align_corners=False)[:, 0].flatten(1)
            tgt_mask = targets[b]["masks"].flatten(1)
            C = (self.cost_mask * batch_sigmoid_ce_cost(out_mask, tgt_mask)
                 + self.cost_class * cost_class + self.cost_dice * batch_dice_cost(out_mask, tgt_mask))
            n = tgt_ids.numel()
            perms = self.permutations(num_queries, n)
            totals = C[perms, torch.arange(n)].sum(1)
            best = perms[totals.argmin()]
            # greedy: cheapest remaining query for each target in turn
            used, greedy = torch.zeros(num_queries, dtype=torch.bool), 0.0
            for j in range(n):
                q = C[:, j].masked_fill(used, float("inf")).argmin()
                used[q] = True
                greedy += C[q, j].item()
            gap = greedy - totals.min().item()
            assert gap >= -1e-4, gap
            self.greedy_gap += gap
            src, tgt = best.sort()
            indices.append((src, tgt))
        return indices


def dice_loss(inputs, targets, num_masks):
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * (inputs * targets).sum(-1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    loss = 1 - (numerator + 1) / (denominator + 1)
    return loss.sum() / num_masks


def sigmoid_ce_loss(inputs, targets, num_masks):
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    return loss.mean(1).sum() / num_masks


class SetCriterion(nn.Module):
    def __init__(self, num_classes, matcher, eos_coef=0.1):
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        empty_weight = torch.ones(self.num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)

    def _get_src_permutation_idx(self, indices):
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        src_idx = torch.cat([src for (src, _) in indices])
        return batch_idx, src_idx

    def losses(self, outputs, targets, indices, num_masks):
        src_logits = outputs["pred_logits"].float()
        idx = self._get_src_permutation_idx(indices)
        target_classes_o = torch.cat([t["labels"][J] for t, (_, J) in zip(targets, indices)])
        target_classes = torch.full(src_logits.shape[:2], self.num_classes, dtype=torch.int64)
        target_classes[idx] = target_classes_o
        loss_ce = F.cross_entropy(src_logits.transpose(1, 2), target_classes, self.empty_weight)

        src_masks = outputs["pred_masks"][idx]
        target_masks = torch.cat([t["masks"][J] for t, (_, J) in zip(targets, indices)])
        src_masks = F.interpolate(src_masks[:, None], size=target_masks.shape[-2:], mode="bilinear",
                                  align_corners=False)[:, 0].flatten(1)
        target_masks = target_masks.flatten(1)
        return (2.0 * loss_ce + 5.0 * sigmoid_ce_loss(src_masks, target_masks, num_masks)
                + 5.0 * dice_loss(src_masks, target_masks, num_masks))

    def forward(self, outputs, targets):
        num_masks = float(sum(len(t["labels"]) for t in targets))
        total = self.losses(outputs, targets, self.matcher(outputs, targets), num_masks)
        for aux in outputs["aux_outputs"]:
            total = total + self.losses(aux, targets, self.matcher(aux, targets), num_masks)
        return total


def collate(items):
    return torch.from_numpy(np.stack([img for img, _ in items])), [t for _, t in items]


@torch.no_grad()
def matched_iou(model, matcher, data):
    model.eval()
    images, targets = collate(data)
    outputs = model(images)
    ious, correct, total = [], 0, 0
    for b, (src, tgt) in enumerate(matcher(outputs, targets)):
        pred = F.interpolate(outputs["pred_masks"][b][src][:, None], size=(IMG, IMG),
                             mode="bilinear", align_corners=False)[:, 0].sigmoid() > 0.5
        gt = targets[b]["masks"][tgt] > 0.5
        inter = (pred & gt).flatten(1).sum(1).float()
        union = (pred | gt).flatten(1).sum(1).float()
        ious.append(inter / union.clamp(min=1))
        correct += (outputs["pred_logits"][b][src].argmax(-1) == targets[b]["labels"][tgt]).sum().item()
        total += tgt.numel()
    model.train()
    return torch.cat(ious).mean().item(), correct / total


model = MaskFormer()
matcher = ExhaustiveMatcher()
criterion = SetCriterion(NUM_CLASSES, matcher, eos_coef=0.1)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)

# ---- the per-head mask copy and the masked attention, checked once against other routes ----
with torch.no_grad():
    probe_images, _ = collate(train_set[:2])
    mf, feats = model.pixel(probe_images)
    dec = model.predictor
    _, outputs_mask, attn_mask = dec.forward_prediction_heads(
        dec.query_feat.weight.unsqueeze(1).repeat(1, 2, 1), mf, feats[0].shape[-2:])
    small = F.interpolate(outputs_mask, size=feats[0].shape[-2:], mode="bilinear",
                          align_corners=False)
    by_interleave = (small.sigmoid().flatten(2) < 0.5).repeat_interleave(dec.num_heads, 0)
    assert attn_mask.dtype == torch.bool and attn_mask.shape == (2 * dec.num_heads, dec.num_queries, 16)
    assert torch.equal(attn_mask, by_interleave)
    attn_mask[torch.where(attn_mask.sum(-1) == attn_mask.shape[-1])] = False
    attn_mask[0, 0] = True
    attn_mask[0, 0, 3] = False
    mha = dec.transformer_cross_attention_layers[0].multihead_attn
    q = torch.randn(dec.num_queries, 2, 32)
    kv = torch.randn(16, 2, 32)
    out, weights = mha(q, kv, kv, attn_mask=attn_mask, average_attn_weights=False)
    assert torch.isfinite(out).all()
    wq, wk, wv = mha.in_proj_weight.chunk(3)
    bq, bk, bv = mha.in_proj_bias.chunk(3)
    hd = 32 // dec.num_heads

    def heads(t, w, b):
        return F.linear(t, w, b).reshape(t.shape[0], 2 * dec.num_heads, hd).transpose(0, 1)

    scores = heads(q, wq, bq) @ heads(kv, wk, bk).transpose(1, 2) / math.sqrt(hd)
    manual_w = scores.masked_fill(attn_mask, float("-inf")).softmax(-1)
    manual = (manual_w @ heads(kv, wv, bv)).transpose(0, 1).reshape(dec.num_queries, 2, 32)
    manual = mha.out_proj(manual)
    attn_err = max((out - manual).abs().max().item(),
                   (weights.reshape(2 * dec.num_heads, dec.num_queries, 16) - manual_w).abs().max().item())
    assert weights[0, 0, 0, 3].item() == 1.0
print(f"attention mask: {tuple(attn_mask.shape)} bool, per-head copy == repeat_interleave, "
      f"manual attention err {attn_err:.2e}")

iou_start, _ = matched_iou(model, matcher, test_set)
epochs, bs = 6, 8
first = last = None
for epoch in range(epochs):
    order = torch.randperm(len(train_set)).tolist()
    total, steps = 0.0, 0
    for i in range(0, len(order), bs):
        images, targets = collate([train_set[j] for j in order[i:i + bs]])
        loss = criterion(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total += loss.item()
        steps += 1
    avg = total / steps
    first = avg if first is None else first
    last = avg
    if epoch % 2 == 1:
        iou, acc = matched_iou(model, matcher, test_set)
        print(f"epoch {epoch} loss {avg:.4f} test mIoU {iou:.4f} class acc {acc:.4f}")

iou_end, acc_end = matched_iou(model, matcher, test_set)
resets = model.predictor.resets
print(f"all-masked rows reset: {resets} of {model.predictor.rows}; greedy gap last batch "
      f"{matcher.greedy_gap:.4f}")
assert resets > 0
assert last < first
assert iou_end > iou_start
print(f"FINAL loss={last:.4f} miou={iou_end:.4f} iou_gain={iou_end - iou_start:.4f} "
      f"attn_err={attn_err:.6f}")
