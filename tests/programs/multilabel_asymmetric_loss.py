"""Multi-label classification with the losses people use for it, ending with the Asymmetric Loss of
Ridnik et al. (2021) as Alibaba-MIIL/ASL writes it, on synthetic imbalanced multi-label data.

Twelve labels of very different frequencies hang off a hidden linear map of 32 features; an MLP
(``nn.Sequential``) is trained by four losses: ``nn.BCEWithLogitsLoss(pos_weight=neg / pos)``,
``nn.MultiLabelSoftMarginLoss()``, ``nn.MultiLabelMarginLoss()`` on its ``-1``-padded index targets
(built from the 0/1 matrix with ``nonzero`` + ``split``), and ASL's ``AsymmetricLoss`` (``torch.sigmoid``,
probability shifting ``(xs_neg + clip).clamp(max=1)``, ``torch.log(x.clamp(min=eps))``, focusing
weights ``torch.pow(1 - pt, one_sided_gamma)`` computed with grad disabled by the function form
``torch.set_grad_enabled(False)`` as its ``disable_torch_grad_focal_loss`` does) beside
``AsymmetricLossOptimized`` (the in-place ``add_(clip).clamp_(max=1)``, ``loss.add_``, ``loss *= w``
under ``torch.no_grad()``): both must agree in value and gradient, ASL with gamma 0 and no clip
must be the summed BCE, the soft-margin loss the mean BCE, the margin and pos_weight losses their
formulas. Scored by mAP computed by hand (``torch.argsort(descending=True)``, ``cumsum``, precision at
each hit) and micro-F1, with per-class thresholds chosen by F1 on a validation split from a
``torch.linspace`` grid against the fixed 0.5; Adam with ``weight_decay`` and a ``CosineAnnealingLR``
over ``DataLoader(TensorDataset(...), shuffle=True)`` batches.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_FEATURES, N_LABELS = 32, 12
W_true = rng.normal(size=(N_FEATURES, N_LABELS)) / np.sqrt(N_FEATURES)
W_true[:8] *= 2.5
rates = np.linspace(0.04, 0.45, N_LABELS)


def make_split(n):
    x = rng.normal(size=(n, N_FEATURES))
    z = x @ W_true + 0.35 * rng.normal(size=(n, N_LABELS))
    # each label's threshold puts its population rate at rates[k]
    thresholds = np.quantile(x_pool @ W_true, 1 - rates, axis=0).diagonal()
    y = (z > thresholds).astype(np.float32)
    return torch.tensor(x, dtype=torch.float32), torch.from_numpy(y)


x_pool = rng.normal(size=(20000, N_FEATURES))
train_x, train_y = make_split(1200)
val_x, val_y = make_split(300)
test_x, test_y = make_split(400)
print(f"labels per sample {train_y.sum(1).mean().item():.2f} empty rows {(train_y.sum(1) == 0).float().mean().item():.3f} "
      f"rarest {train_y.mean(0).min().item():.3f} commonest {train_y.mean(0).max().item():.3f}")


class AsymmetricLoss(nn.Module):
    def __init__(self, gamma_neg=4, gamma_pos=1, clip=0.05, eps=1e-8, disable_torch_grad_focal_loss=True):
        super(AsymmetricLoss, self).__init__()  # noqa: UP008 (the repo's spelling)

        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.disable_torch_grad_focal_loss = disable_torch_grad_focal_loss
        self.eps = eps

    def forward(self, x, y):
        """"
        Parameters
        ----------
        x: input logits
        y: targets (multi-label binarized vector)
        """

        # Calculating Probabilities
        x_sigmoid = torch.sigmoid(x)
        xs_pos = x_sigmoid
        xs_neg = 1 - x_sigmoid

        # Asymmetric Clipping
        if self.clip is not None and self.clip > 0:
            xs_neg = (xs_neg + self.clip).clamp(max=1)

        # Basic CE calculation
        los_pos = y * torch.log(xs_pos.clamp(min=self.eps))
        los_neg = (1 - y) * torch.log(xs_neg.clamp(min=self.eps))
        loss = los_pos + los_neg

        # Asymmetric Focusing
        if self.gamma_neg > 0 or self.gamma_pos > 0:
            if self.disable_torch_grad_focal_loss:
                torch.set_grad_enabled(False)
            pt0 = xs_pos * y
            pt1 = xs_neg * (1 - y)  # pt = p if t > 0 else 1-p
            pt = pt0 + pt1
            one_sided_gamma = self.gamma_pos * y + self.gamma_neg * (1 - y)
            one_sided_w = torch.pow(1 - pt, one_sided_gamma)
            if self.disable_torch_grad_focal_loss:
                torch.set_grad_enabled(True)
            loss *= one_sided_w

        return -loss.sum()


class AsymmetricLossOptimized(nn.Module):
    ''' Notice - optimized version, minimizes memory allocation and gpu uploading,
    favors inplace operations'''

    def __init__(self, gamma_neg=4, gamma_pos=1, clip=0.05, eps=1e-8, disable_torch_grad_focal_loss=False):
        super(AsymmetricLossOptimized, self).__init__()  # noqa: UP008 (the repo's spelling)

        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.disable_torch_grad_focal_loss = disable_torch_grad_focal_loss
        self.eps = eps

        # prevent memory allocation and gpu uploading every iteration, and encourages inplace operations
        self.targets = self.anti_targets = self.xs_pos = self.xs_neg = self.asymmetric_w = self.loss = None

    def forward(self, x, y):
        self.targets = y
        self.anti_targets = 1 - y

        # Calculating Probabilities
        self.xs_pos = torch.sigmoid(x)
        self.xs_neg = 1.0 - self.xs_pos

        # Asymmetric Clipping
        if self.clip is not None and self.clip > 0:
            self.xs_neg.add_(self.clip).clamp_(max=1)

        # Basic CE calculation
        self.loss = self.targets * torch.log(self.xs_pos.clamp(min=self.eps))
        self.loss.add_(self.anti_targets * torch.log(self.xs_neg.clamp(min=self.eps)))

        # Asymmetric Focusing
        if self.gamma_neg > 0 or self.gamma_pos > 0:
            if self.disable_torch_grad_focal_loss:
                with torch.no_grad():
                    self.xs_pos = self.xs_pos * self.targets
                    self.xs_neg = self.xs_neg * self.anti_targets
                    self.asymmetric_w = torch.pow(1 - self.xs_pos - self.xs_neg,
                                                  self.gamma_pos * self.targets + self.gamma_neg * self.anti_targets)
                self.loss *= self.asymmetric_w
            else:
                self.xs_pos = self.xs_pos * self.targets
                self.xs_neg = self.xs_neg * self.anti_targets
                self.asymmetric_w = torch.pow(1 - self.xs_pos - self.xs_neg,
                                              self.gamma_pos * self.targets + self.gamma_neg * self.anti_targets)
                self.loss *= self.asymmetric_w

        return -self.loss.sum()


def margin_targets(y):
    """MultiLabelMarginLoss's format: each row's positive label indices, then -1 padding."""
    target = torch.full(y.shape, -1, dtype=torch.long)
    rows, cols = y.nonzero(as_tuple=True)
    for i, labels in enumerate(torch.split(cols, y.sum(1).long().tolist())):
        target[i, :len(labels)] = labels
    return target


def multilabel_margin_by_hand(x, y):
    losses = []
    for row, labels in zip(x, y.bool()):
        pos, neg = row[labels], row[~labels]
        hinge = F.relu(1 - (pos[:, None] - neg[None, :]))
        losses.append(hinge.sum() / row.numel())
    return torch.stack(losses).mean()


def average_precision(scores, targets):
    order = torch.argsort(scores, descending=True)
    hits = targets[order]
    precision_at_k = torch.cumsum(hits, dim=0) / torch.arange(1, len(hits) + 1)
    return (precision_at_k * hits).sum() / hits.sum().clamp(min=1)


def mean_average_precision(scores, targets):
    return 100 * torch.stack([average_precision(scores[:, k], targets[:, k]) for k in range(scores.size(1))]).mean()


def f1_scores(pred, targets):
    tp = (pred * targets).sum(0)
    fp = (pred * (1 - targets)).sum(0)
    fn = ((1 - pred) * targets).sum(0)
    per_class = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())
    return per_class, micro


def best_thresholds(probs, targets, grid=torch.linspace(0.05, 0.95, 19)):
    table = torch.stack([f1_scores((probs > t).float(), targets)[0] for t in grid])  # (grid, classes)
    return grid[table.argmax(dim=0)]


# --- the losses against their formulas --------------------------------------------------------
logits = torch.randn(6, N_LABELS, requires_grad=True)
y6 = train_y[:6]
pos_weight = (len(train_y) - train_y.sum(0)) / train_y.sum(0)
bce_pw = nn.BCEWithLogitsLoss(pos_weight=pos_weight)(logits, y6)
by_hand = -(pos_weight * y6 * F.logsigmoid(logits) + (1 - y6) * F.logsigmoid(-logits)).mean()
soft_margin = nn.MultiLabelSoftMarginLoss()(logits, y6)
print("pos_weight", tuple(pos_weight.shape), f"max {pos_weight.max().item():.2f}", "formula", torch.allclose(bce_pw, by_hand),
      "soft margin == mean BCE", torch.allclose(soft_margin, F.binary_cross_entropy_with_logits(logits, y6)),
      "nodes", bce_pw.grad_fn.name(), soft_margin.grad_fn.name())
targets6 = margin_targets(y6)
margin = nn.MultiLabelMarginLoss()(logits, targets6)
print("margin target row", targets6[0].tolist(), "dtype", targets6.dtype, "loss", margin.grad_fn.name(),
      "formula", torch.allclose(margin, multilabel_margin_by_hand(logits, y6)),
      "per sample", tuple(nn.MultiLabelMarginLoss(reduction="none")(logits, targets6).shape))
try:
    nn.MultiLabelMarginLoss()(logits, targets6[:, :5])
except RuntimeError as err:
    print("short target:", err)
asl, asl_fast = AsymmetricLoss(), AsymmetricLossOptimized(disable_torch_grad_focal_loss=True)
loss_a = asl(logits, y6)
(grad_a,) = torch.autograd.grad(loss_a, logits)
loss_b = asl_fast(logits, y6)
(grad_b,) = torch.autograd.grad(loss_b, logits)
print("ASL == optimized", torch.allclose(loss_a, loss_b), torch.allclose(grad_a, grad_b, atol=1e-6),
      "grad enabled after", torch.is_grad_enabled(), "weights tracked", asl_fast.asymmetric_w.requires_grad,
      "loss node", asl_fast.loss.grad_fn.name())
(grad_focal,) = torch.autograd.grad(AsymmetricLoss(disable_torch_grad_focal_loss=False)(logits, y6), logits)
print("focal weights differentiated changes the gradient", not torch.allclose(grad_a, grad_focal))
plain = AsymmetricLoss(gamma_neg=0, gamma_pos=0, clip=0)(logits, y6)
print("ASL(gamma=0, clip=0) == summed BCE", torch.allclose(plain, F.binary_cross_entropy_with_logits(logits, y6, reduction="sum")))


# --- training ---------------------------------------------------------------------------------
def make_model():
    return nn.Sequential(nn.Linear(N_FEATURES, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, N_LABELS))


criteria = {
    "bce": nn.BCEWithLogitsLoss(pos_weight=pos_weight),
    "softmargin": nn.MultiLabelSoftMarginLoss(),
    "margin": nn.MultiLabelMarginLoss(),
    "asl": AsymmetricLoss(gamma_neg=4, gamma_pos=1, clip=0.05),
}
EPOCHS = 25
loader = DataLoader(TensorDataset(train_x, train_y), batch_size=64, shuffle=True)
results = {}
for name, criterion in criteria.items():
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    for epoch in range(EPOCHS):
        total = 0.0
        for xb, yb in loader:
            out = model(xb)
            loss = criterion(out, margin_targets(yb) if name == "margin" else yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
        scheduler.step()
        if epoch % 12 == 0:
            print(f"[{name}] epoch {epoch + 1} loss {total / len(train_x):.4f} lr {scheduler.get_last_lr()[0]:.5f}")
    model.eval()
    with torch.no_grad():
        val_probs, test_probs = torch.sigmoid(model(val_x)), torch.sigmoid(model(test_x))
    thresholds = best_thresholds(val_probs, val_y)
    _, f1_fixed = f1_scores((test_probs > 0.5).float(), test_y)
    _, f1_tuned = f1_scores((test_probs > thresholds).float(), test_y)
    test_map = mean_average_precision(test_probs, test_y).item()
    results[name] = (test_map, f1_tuned.item())
    print(f"[{name}] test mAP {test_map:.2f} micro-F1 at 0.5 {f1_fixed.item():.4f} tuned {f1_tuned.item():.4f} "
          f"thresholds in [{thresholds.min().item():.2f}, {thresholds.max().item():.2f}]")

print("FINAL " + " ".join(f"map_{k}={v[0]:.3f}" for k, v in results.items()) + f" f1_asl={results['asl'][1]:.4f}")
