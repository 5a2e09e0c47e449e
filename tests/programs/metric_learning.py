"""Metric learning as pytorch-metric-learning and the face-recognition repos write it, on clustered embeddings.

The batch-hard triplet loss of omoindrot/Olivier Moindrot's ``_pairwise_distances`` (``torch.diag``
of the dot products, ``clamp(min=0.0)``, the ``mask * 1e-16`` sqrt guard) with anchor-positive and
anchor-negative masks from ``torch.eq(labels.unsqueeze(0), labels.unsqueeze(1))``, hardest positives
by ``max(1, keepdim=True)`` and hardest negatives by adding the row maximum to the positives, then
``F.relu(d_ap - d_an + margin)``; the same distances by ``torch.cdist`` (must agree); ``nn.TripletMarginLoss``
on mined triplets; ArcFace as ronghuaiyang/arcface-pytorch writes it (``F.linear(F.normalize(x),
F.normalize(W))``, ``torch.sqrt((1.0 - torch.pow(cosine, 2)).clamp(0, 1))``, ``phi = cosine * cos_m -
sine * sin_m``, ``torch.where(cosine > th, phi, cosine - mm)``, ``one_hot.scatter_(1, label.view(-1, 1).long(),
1)``); ``CenterLoss`` (KaiyangZhou) with its own SGD on the centers and the ``param.grad.data *= (1. /
weight_cent)`` rescaling; recall@1 by ``topk`` on a held-out set. The data: 8 Gaussian clusters in 16-d
mapped through a fixed random nonlinearity, embedded by a small MLP to 8-d.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_CLASSES, IN_DIM, EMB_DIM = 8, 16, 8
CENTRES = rng.normal(size=(N_CLASSES, IN_DIM)) * 1.2
MIX = rng.normal(size=(IN_DIM, IN_DIM)) / math.sqrt(IN_DIM)


def make_split(per_class):
    labels = np.repeat(np.arange(N_CLASSES), per_class)
    points = CENTRES[labels] + rng.normal(size=(len(labels), IN_DIM))
    points = np.tanh(points @ MIX) + 0.1 * points
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(labels)


train_x, train_y = make_split(24)
test_x, test_y = make_split(12)


def _pairwise_distances(embeddings, squared=False):
    dot_product = torch.matmul(embeddings, embeddings.t())
    square_norm = torch.diag(dot_product)
    distances = square_norm.unsqueeze(0) - 2.0 * dot_product + square_norm.unsqueeze(1)
    distances = distances.clamp(min=0.0)
    if not squared:
        # the gradient of sqrt is infinite at 0: nudge the zeros, take the root, zero them again
        mask = distances.eq(0).float()
        distances = distances + mask * 1e-16
        distances = torch.sqrt(distances)
        distances = distances * (1.0 - mask)
    return distances


def _get_anchor_positive_triplet_mask(labels):
    indices_equal = torch.eye(labels.size(0), dtype=torch.bool, device=labels.device)
    indices_not_equal = ~indices_equal
    labels_equal = torch.eq(labels.unsqueeze(0), labels.unsqueeze(1))
    return labels_equal & indices_not_equal


def _get_anchor_negative_triplet_mask(labels):
    return ~torch.eq(labels.unsqueeze(0), labels.unsqueeze(1))


def batch_hard_triplet_loss(labels, embeddings, margin, squared=False):
    pairwise_dist = _pairwise_distances(embeddings, squared=squared)

    mask_anchor_positive = _get_anchor_positive_triplet_mask(labels).float()
    anchor_positive_dist = mask_anchor_positive * pairwise_dist
    hardest_positive_dist, _ = anchor_positive_dist.max(1, keepdim=True)

    mask_anchor_negative = _get_anchor_negative_triplet_mask(labels).float()
    max_anchor_negative_dist, _ = pairwise_dist.max(1, keepdim=True)
    anchor_negative_dist = pairwise_dist + max_anchor_negative_dist * (1.0 - mask_anchor_negative)
    hardest_negative_dist, _ = anchor_negative_dist.min(1, keepdim=True)

    tl = F.relu(hardest_positive_dist - hardest_negative_dist + margin)
    return tl.mean()


class ArcMarginProduct(nn.Module):
    def __init__(self, in_features, out_features, s=30.0, m=0.50, easy_margin=False):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.s = s
        self.m = m
        self.weight = nn.Parameter(torch.FloatTensor(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)

        self.easy_margin = easy_margin
        self.cos_m = math.cos(m)
        self.sin_m = math.sin(m)
        self.th = math.cos(math.pi - m)
        self.mm = math.sin(math.pi - m) * m

    def forward(self, input, label):
        cosine = F.linear(F.normalize(input), F.normalize(self.weight))
        sine = torch.sqrt((1.0 - torch.pow(cosine, 2)).clamp(0, 1))
        phi = cosine * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(cosine > 0, phi, cosine)
        else:
            phi = torch.where(cosine > self.th, phi, cosine - self.mm)
        one_hot = torch.zeros(cosine.size(), device=input.device)
        one_hot.scatter_(1, label.view(-1, 1).long(), 1)
        output = (one_hot * phi) + ((1.0 - one_hot) * cosine)
        output *= self.s
        return output


class CenterLoss(nn.Module):
    def __init__(self, num_classes=10, feat_dim=2):
        super().__init__()
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.centers = nn.Parameter(torch.randn(self.num_classes, self.feat_dim))

    def forward(self, x, labels):
        batch_size = x.size(0)
        distmat = torch.pow(x, 2).sum(dim=1, keepdim=True).expand(batch_size, self.num_classes) + \
            torch.pow(self.centers, 2).sum(dim=1, keepdim=True).expand(self.num_classes, batch_size).t()
        distmat.addmm_(x, self.centers.t(), beta=1, alpha=-2)

        classes = torch.arange(self.num_classes).long()
        labels = labels.unsqueeze(1).expand(batch_size, self.num_classes)
        mask = labels.eq(classes.expand(batch_size, self.num_classes))

        dist = distmat * mask.float()
        loss = dist.clamp(min=1e-12, max=1e+12).sum() / batch_size
        return loss


def embedder():
    return nn.Sequential(nn.Linear(IN_DIM, 32), nn.ReLU(), nn.Linear(32, EMB_DIM))


@torch.no_grad()
def recall_at_1(model, x, y):
    model.eval()
    emb = F.normalize(model(x))
    sim = emb @ emb.t()
    sim.fill_diagonal_(-float("inf"))
    _, idx = sim.topk(1, dim=1)
    model.train()
    return (y[idx.squeeze(1)] == y).float().mean().item()


def batches(batch_size=32):
    perm = torch.randperm(len(train_y))
    for i in range(0, len(perm), batch_size):
        index = perm[i:i + batch_size]
        yield train_x[index], train_y[index]


# the hand-written distances against torch.cdist, and their gradients through the sqrt guard
probe = torch.randn(6, EMB_DIM, requires_grad=True)
d_hand = _pairwise_distances(torch.cat([probe, probe[:1]]))
d_cdist = torch.cdist(torch.cat([probe, probe[:1]]), torch.cat([probe, probe[:1]]))
d_hand.sum().backward()
print(f"pairwise distances agree with cdist: {torch.allclose(d_hand, d_cdist, atol=1e-5)}, "
      f"zeros on the diagonal {int((torch.diag(d_hand) == 0).sum())}, finite grad {bool(torch.isfinite(probe.grad).all())}")

# 1) batch-hard triplet loss
model = embedder()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
print(f"triplet: recall@1 before {recall_at_1(model, test_x, test_y):.4f}")
for epoch in range(1, 13):
    total = 0.0
    for xb, yb in batches():
        loss = batch_hard_triplet_loss(yb, model(xb), margin=0.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 4 == 0:
        print(f"triplet epoch {epoch}: loss {total:.4f}")
triplet_recall = recall_at_1(model, test_x, test_y)
print(f"triplet: recall@1 after {triplet_recall:.4f}")

# 2) nn.TripletMarginLoss on triplets mined per anchor (a random positive, the hardest negative)
model = embedder()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.TripletMarginLoss(margin=0.5, p=2)
for epoch in range(1, 9):
    total = 0.0
    for xb, yb in batches():
        emb = model(xb)
        with torch.no_grad():
            dist = torch.cdist(emb, emb)
            same = torch.eq(yb.unsqueeze(0), yb.unsqueeze(1))
            pos_scores = torch.rand(dist.shape) * (same & ~torch.eye(len(yb), dtype=torch.bool)).float()
            pos_idx = pos_scores.argmax(1)
            neg_idx = dist.masked_fill(same, float("inf")).argmin(1)
        loss = criterion(emb, emb[pos_idx], emb[neg_idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 4 == 0:
        print(f"TripletMarginLoss epoch {epoch}: loss {total:.4f}")
margin_recall = recall_at_1(model, test_x, test_y)
print(f"TripletMarginLoss: recall@1 {margin_recall:.4f}")

# 3) ArcFace head + CenterLoss, two optimizers as in the CenterLoss repo
model = embedder()
metric_fc = ArcMarginProduct(EMB_DIM, N_CLASSES, s=8.0, m=0.3)
center_loss = CenterLoss(num_classes=N_CLASSES, feat_dim=EMB_DIM)
weight_cent = 0.05
optimizer_model = torch.optim.SGD([{"params": model.parameters()}, {"params": metric_fc.parameters()}],
                                  lr=0.05, momentum=0.9, weight_decay=5e-4)
optimizer_centloss = torch.optim.SGD(center_loss.parameters(), lr=0.5)
xent = nn.CrossEntropyLoss()
for epoch in range(1, 13):
    total, correct = 0.0, 0
    for xb, yb in batches():
        features = model(xb)
        output = metric_fc(features, yb)
        loss_xent = xent(output, yb)
        loss_cent = center_loss(features, yb) * weight_cent
        loss = loss_xent + loss_cent
        optimizer_model.zero_grad()
        optimizer_centloss.zero_grad()
        loss.backward()
        optimizer_model.step()
        # undo the weight on the center gradients so the centers move at their own rate
        for param in center_loss.parameters():
            param.grad.data *= (1. / weight_cent)
        optimizer_centloss.step()
        total += loss.item()
        correct += (output.max(1)[1] == yb).sum().item()
    if epoch % 4 == 0:
        print(f"arcface epoch {epoch}: loss {total:.4f} margin-acc {correct / len(train_y):.4f}")
with torch.no_grad():
    model.eval()
    cosine = F.linear(F.normalize(model(test_x)), F.normalize(metric_fc.weight))
    arc_acc = (cosine.argmax(1) == test_y).float().mean().item()
    centre_dist = (model(test_x) - center_loss.centers[test_y]).norm(dim=1).mean().item()
    model.train()
arc_recall = recall_at_1(model, test_x, test_y)
print(f"arcface: recall@1 {arc_recall:.4f} cosine acc {arc_acc:.4f} mean distance to centre {centre_dist:.4f}")
print(f"FINAL triplet_recall={triplet_recall:.4f} margin_recall={margin_recall:.4f} "
      f"arc_recall={arc_recall:.4f} arc_acc={arc_acc:.4f} centre_dist={centre_dist:.4f}")
