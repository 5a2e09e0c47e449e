"""Supervised Contrastive learning, the way HobbitLong/SupContrast writes it.

``TwoCropTransform`` returns two augmented views of each sample (noise, random feature
masking, a random sign flip of a nuisance block); the encoder + projection head outputs are
``F.normalize``d and stacked by ``torch.cat([f1.unsqueeze(1), f2.unsqueeze(1)], dim=1)``.
``SupConLoss`` is the repository's: ``torch.eq(labels, labels.T).float()``,
``torch.cat(torch.unbind(features, dim=1), dim=0)``, ``anchor_dot_contrast =
torch.div(torch.matmul(anchor, contrast.T), temperature)``, the ``logits_max.detach()``
subtraction, the ``torch.scatter(torch.ones_like(mask), 1, torch.arange(...).view(-1, 1), 0)``
logits mask, ``mask.repeat(anchor_count, contrast_count)`` and the mean log-prob over positives;
SimCLR mode when ``labels`` is None.  Both modes are checked against a NumPy reference, the
model is trained with SupCon, then a linear probe on frozen features is scored.
"""

# ruff: noqa: B007, UP031, UP032  (SupContrast's own "{}".format and % formats, for step in range(...))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

n_classes, dim_in, n_train, n_test = 4, 16, 256, 128
centers = rng.normal(size=(n_classes, 6)).astype(np.float32) * 1.5
mixing = rng.normal(size=(6, dim_in)).astype(np.float32)


def make_data(n):
    y = rng.integers(0, n_classes, size=n)
    z = centers[y] + rng.normal(scale=0.8, size=(n, 6)).astype(np.float32)
    x = z @ mixing + 0.3 * rng.normal(size=(n, dim_in)).astype(np.float32)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


class TwoCropTransform:
    """Create two crops of the same image"""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, x):
        return [self.transform(x), self.transform(x)]


def augment(x):
    keep = (torch.rand(x.shape) > 0.2).float()
    return x * keep + 0.2 * torch.randn_like(x)


class SupConLoss(nn.Module):
    """Supervised Contrastive Learning: https://arxiv.org/pdf/2004.11362.pdf.
    It also supports the unsupervised contrastive loss in SimCLR"""

    def __init__(self, temperature=0.07, contrast_mode="all", base_temperature=0.07):
        super().__init__()
        self.temperature = temperature
        self.contrast_mode = contrast_mode
        self.base_temperature = base_temperature

    def forward(self, features, labels=None, mask=None):
        device = features.device
        if len(features.shape) < 3:
            raise ValueError("`features` needs to be [bsz, n_views, ...],"
                             "at least 3 dimensions are required")
        if len(features.shape) > 3:
            features = features.view(features.shape[0], features.shape[1], -1)

        batch_size = features.shape[0]
        if labels is not None and mask is not None:
            raise ValueError("Cannot define both `labels` and `mask`")
        elif labels is None and mask is None:
            mask = torch.eye(batch_size, dtype=torch.float32).to(device)
        elif labels is not None:
            labels = labels.contiguous().view(-1, 1)
            if labels.shape[0] != batch_size:
                raise ValueError("Num of labels does not match num of features")
            mask = torch.eq(labels, labels.T).float().to(device)
        else:
            mask = mask.float().to(device)

        contrast_count = features.shape[1]
        contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
        if self.contrast_mode == "one":
            anchor_feature = features[:, 0]
            anchor_count = 1
        elif self.contrast_mode == "all":
            anchor_feature = contrast_feature
            anchor_count = contrast_count
        else:
            raise ValueError("Unknown mode: {}".format(self.contrast_mode))

        # compute logits
        anchor_dot_contrast = torch.div(
            torch.matmul(anchor_feature, contrast_feature.T),
            self.temperature)
        # for numerical stability
        logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
        logits = anchor_dot_contrast - logits_max.detach()

        # tile mask
        mask = mask.repeat(anchor_count, contrast_count)
        # mask-out self-contrast cases
        logits_mask = torch.scatter(
            torch.ones_like(mask),
            1,
            torch.arange(batch_size * anchor_count).view(-1, 1).to(device),
            0
        )
        mask = mask * logits_mask

        # compute log_prob
        exp_logits = torch.exp(logits) * logits_mask
        log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))

        # compute mean of log-likelihood over positive
        mask_pos_pairs = mask.sum(1)
        mask_pos_pairs = torch.where(mask_pos_pairs < 1e-6, 1, mask_pos_pairs)
        mean_log_prob_pos = (mask * log_prob).sum(1) / mask_pos_pairs

        # loss
        loss = - (self.temperature / self.base_temperature) * mean_log_prob_pos
        loss = loss.view(anchor_count, batch_size).mean()

        return loss


def supcon_numpy(features, labels, temperature, base_temperature=0.07):
    f = features.astype(np.float64)
    bsz, n_views, _ = f.shape
    contrast = np.concatenate([f[:, v] for v in range(n_views)], axis=0)
    ids = np.arange(bsz) if labels is None else labels
    ids = np.tile(ids, n_views)
    logits = contrast @ contrast.T / temperature
    n = logits.shape[0]
    total = 0.0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        lse = np.log(np.sum(np.exp(logits[i, others])))
        pos = [j for j in others if ids[j] == ids[i]]
        total += -np.mean([logits[i, j] - lse for j in pos])
    return (temperature / base_temperature) * total / n


class SupConMLP(nn.Module):
    """encoder + projection head"""

    def __init__(self, head="mlp", feat_dim=8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim_in, 32), nn.ReLU(inplace=True), nn.Linear(32, 32))
        dim = 32
        if head == "linear":
            self.head = nn.Linear(dim, feat_dim)
        elif head == "mlp":
            self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, feat_dim))
        else:
            raise NotImplementedError("head not supported: {}".format(head))

    def forward(self, x):
        feat = self.encoder(x)
        feat = F.normalize(self.head(feat), dim=1)
        return feat


x_train, y_train = make_data(n_train)
x_test, y_test = make_data(n_test)
model = SupConMLP()
criterion = SupConLoss(temperature=0.1)
two_crop = TwoCropTransform(augment)

# the loss against NumPy, SupCon and SimCLR modes
with torch.no_grad():
    images = two_crop(x_train[:12])
    f = model(torch.cat([images[0], images[1]], dim=0))
    f1, f2 = torch.split(f, [12, 12], dim=0)
    features = torch.cat([f1.unsqueeze(1), f2.unsqueeze(1)], dim=1)
    sup = criterion(features, y_train[:12]).item()
    simclr = criterion(features).item()
ref_sup = supcon_numpy(features.numpy(), y_train[:12].numpy(), 0.1)
ref_simclr = supcon_numpy(features.numpy(), None, 0.1)
gap = max(abs(sup - ref_sup), abs(simclr - ref_simclr))
print("SupCon %.5f (numpy %.5f)  SimCLR %.5f (numpy %.5f)" % (sup, ref_sup, simclr, ref_simclr))
assert gap < 1e-4, gap

optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
bsz = 64
first = None
for epoch in range(1, 9):
    perm = torch.randperm(n_train)
    losses = []
    for idx in range(0, n_train, bsz):
        batch = perm[idx:idx + bsz]
        images, labels = two_crop(x_train[batch]), y_train[batch]
        images = torch.cat([images[0], images[1]], dim=0)
        features = model(images)
        f1, f2 = torch.split(features, [len(batch), len(batch)], dim=0)
        features = torch.cat([f1.unsqueeze(1), f2.unsqueeze(1)], dim=1)
        loss = criterion(features, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first = first if first is not None else np.mean(losses)
    if epoch % 2 == 0:
        print("Train: [%d]\tloss %.3f" % (epoch, np.mean(losses)))
last = float(np.mean(losses))

# linear probe on frozen encoder features
model.eval()
with torch.no_grad():
    feat_train = model.encoder(x_train)
    feat_test = model.encoder(x_test)
classifier = nn.Linear(32, n_classes)
opt = torch.optim.Adam(classifier.parameters(), lr=0.05)
for step in range(100):
    out = classifier(feat_train)
    ce = F.cross_entropy(out, y_train)
    opt.zero_grad()
    ce.backward()
    opt.step()
with torch.no_grad():
    acc = (classifier(feat_test).argmax(1) == y_test).float().mean().item()
print("linear probe top-1 %.4f" % acc)
assert last < first
print("FINAL supcon_loss=%.4f loss_drop=%.4f probe_acc=%.4f ref_gap=%.6f" % (last, first - last, acc, gap))
