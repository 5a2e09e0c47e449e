"""CutMix (Yun et al. 2019) on soft targets with label-smoothed, class-weighted cross-entropy, and
online hard-example mining, on a small CNN and an imbalanced synthetic image set.

CutMix drawn with torch alone: ``torch.distributions.Beta(alpha, alpha)`` for lambda (one per
sample, ``sample((B,))``), box centres by ``torch.randint``, ``cut_w = (W * torch.sqrt(1. - lam)).long()``,
corners by ``torch.clamp(cx - cut_w // 2, 0, W)``, a per-sample box mask from ``torch.arange``
comparisons pasted by ``torch.where(mask[:, None], x[index], x)``, lambda corrected to the pasted
area; the target is a probability tensor (``lam * F.one_hot(y) + (1 - lam) * F.one_hot(y[index])``)
fed straight to ``F.cross_entropy(logits, target, weight=class_weights, label_smoothing=0.1)``.
Checked on the way: soft-target cross-entropy equals CutMix's ``lam * criterion(out, y_a) +
(1 - lam) * criterion(out, y_b)`` without weights (smoothing included), and with weights for
``reduction='sum'`` and ``'none'`` but not ``'mean'`` (class indices divide by the summed target
weights, probabilities by the batch size); ``ignore_index=-1`` for unlabelled rows with weights and
smoothing against a hand-written formula; the errors for ``ignore_index`` with probabilities, a
weight of the wrong length and ``label_smoothing`` above 1; class weights from ``torch.bincount``.
Hard-example mining: ``nn.CrossEntropyLoss(weight=..., reduction='none', label_smoothing=0.1)``
per-sample losses, ``topk`` of them averaged. Three runs (plain, CutMix, CutMix + mining) scored by
the ImageNet example's ``accuracy(output, target, topk=(1, 2))`` and by per-class recall.

The data: five classes of 3x12x12 images (a class pattern plus noise), the training set imbalanced.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_CLASSES = 5
SIZE = 12
COLOURS = rng.normal(0.0, 0.6, size=(NUM_CLASSES, 3)).astype(np.float32)


def make_split(counts):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    patterns = np.stack([
        np.sin(2 * np.pi * 2 * xx), np.sin(2 * np.pi * 2 * yy), np.sin(2 * np.pi * 2 * (xx + yy) / 1.5),
        ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1).astype(float) * 2 - 1,
        np.sign(np.sin(2 * np.pi * 3 * xx) * np.sin(2 * np.pi * 3 * yy)),
    ]).astype(np.float32)
    images, labels = [], []
    for cls, count in enumerate(counts):
        base = COLOURS[cls][:, None, None] * 0.25 + patterns[cls][None] * 0.5
        images.append(base[None] + rng.normal(0.0, 1.5, size=(count, 3, SIZE, SIZE)).astype(np.float32))
        labels.append(np.full(count, cls))
    order = rng.permutation(sum(counts))
    return torch.from_numpy(np.concatenate(images)[order]), torch.from_numpy(np.concatenate(labels)[order])


x_train, y_train = make_split([96, 64, 40, 20, 12])
x_test, y_test = make_split([40] * NUM_CLASSES)
counts = torch.bincount(y_train, minlength=NUM_CLASSES)
class_weights = counts.sum() / (NUM_CLASSES * counts.float())
print("train counts:", counts.tolist(), "test size:", len(y_test), "class weights:",
      [round(w, 3) for w in class_weights.tolist()])


class SmallCNN(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def cutmix(x, y, beta):
    """Per-sample CutMix: each row gets a box from a partner row; returns the mixed batch and the
    probability targets, lambda corrected to the share of the image each row kept."""
    B, _, H, W = x.shape
    lam = beta.sample((B,))
    index = torch.randperm(B)
    cut_rat = torch.sqrt(1. - lam)
    cut_w, cut_h = (W * cut_rat).long(), (H * cut_rat).long()
    cx, cy = torch.randint(W, (B,)), torch.randint(H, (B,))
    bbx1, bbx2 = torch.clamp(cx - cut_w // 2, 0, W), torch.clamp(cx + cut_w // 2, 0, W)
    bby1, bby2 = torch.clamp(cy - cut_h // 2, 0, H), torch.clamp(cy + cut_h // 2, 0, H)
    cols, rows = torch.arange(W), torch.arange(H)
    in_x = (cols[None, :] >= bbx1[:, None]) & (cols[None, :] < bbx2[:, None])
    in_y = (rows[None, :] >= bby1[:, None]) & (rows[None, :] < bby2[:, None])
    mask = in_y[:, :, None] & in_x[:, None, :]                      # (B, H, W): pasted from the partner
    mixed = torch.where(mask[:, None], x[index], x)
    lam = 1. - ((bbx2 - bbx1) * (bby2 - bby1)).float() / (W * H)
    target = lam[:, None] * F.one_hot(y, NUM_CLASSES) + (1. - lam[:, None]) * F.one_hot(y[index], NUM_CLASSES)
    return mixed, target, lam, index, mask


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


# --- the pieces, checked before training ----------------------------------------------------------
beta = torch.distributions.Beta(torch.tensor(1.0), torch.tensor(1.0))
print("Beta(1, 1):", "mean", round(beta.mean.item(), 4), "variance", round(beta.variance.item(), 4),
      "sample shape", tuple(beta.sample((8,)).shape), "batch shape", tuple(beta.batch_shape))
mixed, soft, lam, index, mask = cutmix(x_train[:16], y_train[:16], beta)
print("cutmix:", tuple(mixed.shape), "targets sum to 1:", torch.allclose(soft.sum(1), torch.ones(16)),
      "lam equals the kept share:", torch.allclose(lam, 1. - mask.float().mean((1, 2))),
      "target dtype:", soft.dtype)

logits = torch.randn(16, NUM_CLASSES)
y_a, y_b = y_train[:16], y_train[:16][index]
lam_batch = lam.mean()
soft_batch = lam_batch * F.one_hot(y_a, NUM_CLASSES) + (1. - lam_batch) * F.one_hot(y_b, NUM_CLASSES)
for name, weight in (("unweighted", None), ("weighted", class_weights)):
    for reduction in ("mean", "sum", "none"):
        criterion = nn.CrossEntropyLoss(weight=weight, reduction=reduction, label_smoothing=0.1)
        soft_loss = criterion(logits, soft_batch)
        mixed_loss = lam_batch * criterion(logits, y_a) + (1. - lam_batch) * criterion(logits, y_b)
        print(f"soft target == lam-mixed hard targets, {name} {reduction}: {torch.allclose(soft_loss, mixed_loss)}")

# unlabelled rows by ignore_index, with weights and smoothing, against the formula
y_partial = y_train[:16].clone()
y_partial[::3] = -1
loss = F.cross_entropy(logits, y_partial, weight=class_weights, ignore_index=-1, label_smoothing=0.1)
per_row = F.cross_entropy(logits, y_partial, weight=class_weights, ignore_index=-1, label_smoothing=0.1,
                          reduction='none')
keep = y_partial != -1
logp = F.log_softmax(logits, dim=1)
nll = -logp[keep].gather(1, y_partial[keep, None]).squeeze(1) * class_weights[y_partial[keep]]
smooth = -(logp[keep] * class_weights).sum(1)
by_hand = (0.9 * nll.sum() + 0.1 / NUM_CLASSES * smooth.sum()) / class_weights[y_partial[keep]].sum()
print("ignore_index=-1 rows:", int((~keep).sum()), "loss matches the formula:", torch.allclose(loss, by_hand),
      "ignored rows give 0:", bool((per_row[~keep] == 0).all()))

for label, call in (
        ("ignore_index with probabilities", lambda: F.cross_entropy(logits, soft_batch, ignore_index=0)),
        ("weight of 4 for 5 classes", lambda: F.cross_entropy(logits, soft_batch, weight=class_weights[:4])),
        ("label_smoothing 1.5", lambda: F.cross_entropy(logits, y_a, label_smoothing=1.5)),
        ("long probabilities", lambda: F.cross_entropy(logits, soft_batch.long()))):
    try:
        call()
        print(f"{label}: accepted")
    except RuntimeError as error:
        print(f"{label}: RuntimeError: {error}")


# --- training -------------------------------------------------------------------------------------
def train(mode, epochs=10, batch_size=32, keep_ratio=0.5):
    torch.manual_seed(seed + 1)
    model = SmallCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    plain = nn.CrossEntropyLoss(label_smoothing=0.1)
    per_sample = nn.CrossEntropyLoss(weight=class_weights, reduction='none', label_smoothing=0.1)
    mined_minority = 0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y_train))
        total, batches = 0.0, 0
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            x, y = x_train[idx], y_train[idx]
            if mode == "plain":
                loss = plain(model(x), y)
            else:
                x, soft_target, _, _, _ = cutmix(x, y, beta)
                output = model(x)
                if mode == "cutmix":
                    loss = F.cross_entropy(output, soft_target, weight=class_weights, label_smoothing=0.1)
                else:
                    losses = per_sample(output, soft_target)
                    k = max(1, int(keep_ratio * len(losses)))
                    hard, hard_idx = losses.topk(k)
                    loss = hard.mean()
                    mined_minority += int((soft_target[hard_idx].argmax(1) >= 3).sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        scheduler.step()
        if epoch % 3 == 2 or epoch == epochs - 1:
            print(f"  [{mode}] epoch {epoch + 1} loss {total / batches:.4f} lr {scheduler.get_last_lr()[0]:.4f}")
    model.eval()
    with torch.no_grad():
        output = model(x_test)
    top1, top2 = accuracy(output, y_test, topk=(1, 2))
    pred = output.argmax(1)
    recall = torch.stack([(pred[y_test == c] == c).float().mean() for c in range(NUM_CLASSES)])
    return top1.item(), top2.item(), recall, mined_minority


results = {}
for mode in ("plain", "cutmix", "cutmix_ohem"):
    top1, top2, recall, mined = train(mode)
    results[mode] = (top1, recall)
    print(f"{mode}: top1 {top1:.2f} top2 {top2:.2f} recall " + " ".join(f"{r:.2f}" for r in recall.tolist())
          + f" minority recall {recall[3:].mean().item():.3f}")
    if mode == "cutmix_ohem":
        print(f"  mined rows whose larger share is a minority class: {mined}")

print(f"FINAL top1_plain={results['plain'][0]:.2f} top1_cutmix={results['cutmix'][0]:.2f} "
      f"top1_ohem={results['cutmix_ohem'][0]:.2f} minority_recall_plain={results['plain'][1][3:].mean().item():.3f} "
      f"minority_recall_cutmix={results['cutmix'][1][3:].mean().item():.3f} "
      f"minority_recall_ohem={results['cutmix_ohem'][1][3:].mean().item():.3f}")
