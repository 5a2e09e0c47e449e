"""Segmentation losses in the layout of bermanmaxim/LovaszSoftmax (pytorch/lovasz_losses.py) and
segmentation_models_pytorch (smp.losses), training a tiny segmentation net on synthetic images.

The images are 16x16 with a noisy background (class 0), squares (class 1) and discs (class 2) whose colours
identify them; a one-pixel border is labelled 255 and ignored. The Lovasz file is kept as written:
``lovasz_grad`` (``gts = gt_sorted.sum()``, ``intersection = gts - gt_sorted.float().cumsum(0)``,
``jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]``), ``lovasz_hinge``/``lovasz_hinge_flat`` (``torch.sort(errors,
dim=0, descending=True)``, ``perm.data``, ``torch.dot(F.relu(errors_sorted), Variable(grad))``) with
``flatten_binary_scores``, ``lovasz_softmax``/``lovasz_softmax_flat`` with ``classes='present'`` and
``flatten_probas`` dropping the ignore label by ``probas[valid.nonzero().squeeze()]``, its ``iou_binary``/``iou``
and the ``mean`` helper over generators with ``ifilterfalse(isnan, l)``. From smp: ``soft_dice_score`` and
``soft_tversky_score`` with ``smooth`` and ``clamp_min(eps)``, ``DiceLoss`` in multiclass mode
(``log_softmax(dim=1).exp()``, ``F.one_hot((y_true * mask).to(torch.long), num_classes)``, ``permute(0, 2,
1) * mask.unsqueeze(1)``, ``loss *= mask.to(loss.dtype)``), ``TverskyLoss`` as its subclass (``loss.mean() **
self.gamma``), and ``FocalLoss`` by ``functools.partial(focal_loss_with_logits, ...)`` (``target.type(output.type())``,
``binary_cross_entropy_with_logits(reduction="none")``, ``torch.exp(-logpt)``, ``reduced_threshold``) per
class with ``not_ignored`` masks.

Checked: the Lovasz extension at binary predictions is the Jaccard loss, 1 - IoU (``lovasz_softmax`` on one-hot
probabilities against ``iou``; ``lovasz_hinge`` on +-1 logits against twice ``1 - iou_binary``); Tversky with
alpha = beta = 0.5 equals Dice (smooth 0); Dice of a perfect prediction is 0; and the net, trained on cross-entropy +
Lovasz-Softmax + Dice + focal, reaches a held-out mIoU well above chance.
"""

# ruff: noqa: E731, B905  (the reference's own spelling: isnan as a def, zip without strict)

import functools
import os
from itertools import filterfalse as ifilterfalse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

CLASSES = 3
IGNORE = 255
SIZE = 16


def make_images(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = (0.3 * rng.randn(n, 3, SIZE, SIZE)).astype(np.float32)
    labels = np.zeros((n, SIZE, SIZE), dtype=np.int64)
    for i in range(n):
        for _ in range(rng.randint(1, 3)):
            cls = rng.randint(1, CLASSES)
            r = rng.randint(2, 5)
            cy, cx = rng.randint(r, SIZE - r, size=2)
            if cls == 1:
                region = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
                colour = np.array([1.0, -0.5, 0.2])
            else:
                region = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
                colour = np.array([-0.4, 0.8, 0.6])
            images[i][:, region] = colour[:, None] + 0.3 * rng.randn(3, region.sum())
            labels[i][region] = cls
    labels[:, 0, :] = labels[:, -1, :] = labels[:, :, 0] = labels[:, :, -1] = IGNORE
    return torch.from_numpy(images), torch.from_numpy(labels)


# ----------------------------------------------------------------------------------- lovasz_losses.py
def lovasz_grad(gt_sorted):
    """
    Computes gradient of the Lovasz extension w.r.t sorted errors
    See Alg. 1 in paper
    """
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.float().cumsum(0)
    union = gts + (1 - gt_sorted).float().cumsum(0)
    jaccard = 1.0 - intersection / union
    if p > 1:  # cover 1-pixel case
        jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def iou_binary(preds, labels, EMPTY=1.0, ignore=None, per_image=True):
    """
    IoU for foreground class
    binary: 1 foreground, 0 background
    """
    if not per_image:
        preds, labels = (preds,), (labels,)
    ious = []
    for pred, label in zip(preds, labels):
        intersection = ((label == 1) & (pred == 1)).sum()
        union = ((label == 1) | ((pred == 1) & (label != ignore))).sum()
        if not union:
            iou = EMPTY
        else:
            iou = float(intersection) / float(union)
        ious.append(iou)
    iou = mean(ious)  # mean accross images if per_image
    return 100 * iou


def iou(preds, labels, C, EMPTY=1.0, ignore=None, per_image=False):
    """
    Array of IoU for each (non ignored) class
    """
    if not per_image:
        preds, labels = (preds,), (labels,)
    ious = []
    for pred, label in zip(preds, labels):
        iou = []
        for i in range(C):
            if i != ignore:  # The ignored label is sometimes among predicted classes (ENet - CityScapes)
                intersection = ((label == i) & (pred == i)).sum()
                union = ((label == i) | ((pred == i) & (label != ignore))).sum()
                if not union:
                    iou.append(EMPTY)
                else:
                    iou.append(float(intersection) / float(union))
        ious.append(iou)
    ious = [mean(iou) for iou in zip(*ious)]  # mean accross images if per_image
    return 100 * np.array(ious)


def lovasz_hinge(logits, labels, per_image=True, ignore=None):
    """
    Binary Lovasz hinge loss
      logits: [B, H, W] Variable, logits at each pixel (between -\\infty and +\\infty)
      labels: [B, H, W] Tensor, binary ground truth masks (0 or 1)
      per_image: compute the loss per image instead of per batch
      ignore: void class id
    """
    if per_image:
        loss = mean(lovasz_hinge_flat(*flatten_binary_scores(log.unsqueeze(0), lab.unsqueeze(0), ignore))
                    for log, lab in zip(logits, labels))
    else:
        loss = lovasz_hinge_flat(*flatten_binary_scores(logits, labels, ignore))
    return loss


def lovasz_hinge_flat(logits, labels):
    """
    Binary Lovasz hinge loss
      logits: [P] Variable, logits at each prediction (between -\\infty and +\\infty)
      labels: [P] Tensor, binary ground truth labels (0 or 1)
      ignore: label to ignore
    """
    if len(labels) == 0:
        # only void pixels, the gradients should be 0
        return logits.sum() * 0.0
    signs = 2.0 * labels.float() - 1.0
    errors = 1.0 - logits * Variable(signs)
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    perm = perm.data
    gt_sorted = labels[perm]
    grad = lovasz_grad(gt_sorted)
    loss = torch.dot(F.relu(errors_sorted), Variable(grad))
    return loss


def flatten_binary_scores(scores, labels, ignore=None):
    """
    Flattens predictions in the batch (binary case)
    Remove labels equal to 'ignore'
    """
    scores = scores.view(-1)
    labels = labels.view(-1)
    if ignore is None:
        return scores, labels
    valid = labels != ignore
    vscores = scores[valid]
    vlabels = labels[valid]
    return vscores, vlabels


def lovasz_softmax(probas, labels, classes="present", per_image=False, ignore=None):
    """
    Multi-class Lovasz-Softmax loss
      probas: [B, C, H, W] Variable, class probabilities at each prediction (between 0 and 1).
              Interpreted as binary (sigmoid) output with outputs of size [B, H, W].
      labels: [B, H, W] Tensor, ground truth labels (between 0 and C - 1)
      classes: 'all' for all, 'present' for classes present in labels, or a list of classes to average.
      per_image: compute the loss per image instead of per batch
      ignore: void class labels
    """
    if per_image:
        loss = mean(lovasz_softmax_flat(*flatten_probas(prob.unsqueeze(0), lab.unsqueeze(0), ignore), classes=classes)
                    for prob, lab in zip(probas, labels))
    else:
        loss = lovasz_softmax_flat(*flatten_probas(probas, labels, ignore), classes=classes)
    return loss


def lovasz_softmax_flat(probas, labels, classes="present"):
    """
    Multi-class Lovasz-Softmax loss
      probas: [P, C] Variable, class probabilities at each prediction (between 0 and 1)
      labels: [P] Tensor, ground truth labels (between 0 and C - 1)
      classes: 'all' for all, 'present' for classes present in labels, or a list of classes to average.
    """
    if probas.numel() == 0:
        # only void pixels, the gradients should be 0
        return probas * 0.0
    C = probas.size(1)
    losses = []
    class_to_sum = list(range(C)) if classes in ["all", "present"] else classes
    for c in class_to_sum:
        fg = (labels == c).float()  # foreground for class c
        if classes == "present" and fg.sum() == 0:
            continue
        if C == 1:
            if len(classes) > 1:
                raise ValueError("Sigmoid output possible only with 1 class")
            class_pred = probas[:, 0]
        else:
            class_pred = probas[:, c]
        errors = (Variable(fg) - class_pred).abs()
        errors_sorted, perm = torch.sort(errors, 0, descending=True)
        perm = perm.data
        fg_sorted = fg[perm]
        losses.append(torch.dot(errors_sorted, Variable(lovasz_grad(fg_sorted))))
    return mean(losses)


def flatten_probas(probas, labels, ignore=None):
    """
    Flattens predictions in the batch
    """
    if probas.dim() == 3:
        # assumes output of a sigmoid layer
        B, H, W = probas.size()
        probas = probas.view(B, 1, H, W)
    B, C, H, W = probas.size()
    probas = probas.permute(0, 2, 3, 1).contiguous().view(-1, C)  # B * H * W, C = P, C
    labels = labels.view(-1)
    if ignore is None:
        return probas, labels
    valid = labels != ignore
    vprobas = probas[valid.nonzero().squeeze()]
    vlabels = labels[valid]
    return vprobas, vlabels


def isnan(x):
    return x != x


def mean(l, ignore_nan=False, empty=0):  # noqa: E741
    """
    nanmean compatible with generators.
    """
    l = iter(l)  # noqa: E741
    if ignore_nan:
        l = ifilterfalse(isnan, l)  # noqa: E741
    try:
        n = 1
        acc = next(l)
    except StopIteration:
        if empty == "raise":
            raise ValueError("Empty mean")  # noqa: B904
        return empty
    for n, v in enumerate(l, 2):  # noqa: B007
        acc += v
    if n == 1:
        return acc
    return acc / n


# ----------------------------------------------------------------------------------- smp losses/_functional.py
def soft_dice_score(output, target, smooth=0.0, eps=1e-7, dims=None):
    assert output.size() == target.size()
    if dims is not None:
        intersection = torch.sum(output * target, dim=dims)
        cardinality = torch.sum(output + target, dim=dims)
    else:
        intersection = torch.sum(output * target)
        cardinality = torch.sum(output + target)
    dice_score = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
    return dice_score


def soft_tversky_score(output, target, alpha, beta, smooth=0.0, eps=1e-7, dims=None):
    assert output.size() == target.size()
    if dims is not None:
        intersection = torch.sum(output * target, dim=dims)  # TP
        fp = torch.sum(output * (1.0 - target), dim=dims)
        fn = torch.sum((1 - output) * target, dim=dims)
    else:
        intersection = torch.sum(output * target)  # TP
        fp = torch.sum(output * (1.0 - target))
        fn = torch.sum((1 - output) * target)
    tversky_score = (intersection + smooth) / (intersection + alpha * fp + beta * fn + smooth).clamp_min(eps)
    return tversky_score


def focal_loss_with_logits(output, target, gamma=2.0, alpha=0.25, reduction="mean", normalized=False,
                           reduced_threshold=None, eps=1e-6):
    target = target.type(output.type())

    logpt = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    pt = torch.exp(-logpt)

    # compute the loss
    if reduced_threshold is None:
        focal_term = (1.0 - pt).pow(gamma)
    else:
        focal_term = ((1.0 - pt) / reduced_threshold).pow(gamma)
        focal_term[pt < reduced_threshold] = 1

    loss = focal_term * logpt

    if alpha is not None:
        loss *= alpha * target + (1 - alpha) * (1 - target)

    if normalized:
        norm_factor = focal_term.sum().clamp_min(eps)
        loss /= norm_factor

    if reduction == "mean":
        loss = loss.mean()
    if reduction == "sum":
        loss = loss.sum()
    if reduction == "batchwise_mean":
        loss = loss.sum(0)

    return loss


# ----------------------------------------------------------------------------------- smp losses/dice.py, tversky.py, focal.py
MULTICLASS_MODE = "multiclass"


class DiceLoss(nn.Module):
    def __init__(self, mode, classes=None, log_loss=False, from_logits=True, smooth=0.0, ignore_index=None, eps=1e-7):
        assert mode in {MULTICLASS_MODE}
        super().__init__()
        self.mode = mode
        self.classes = classes
        self.from_logits = from_logits
        self.smooth = smooth
        self.eps = eps
        self.log_loss = log_loss
        self.ignore_index = ignore_index

    def forward(self, y_pred, y_true):
        assert y_true.size(0) == y_pred.size(0)

        if self.from_logits:
            # Apply activations to get [0..1] class probabilities
            # Using Log-Exp as this gives more numerically stable result and does not cause vanishing gradient on
            # extreme values 0 and 1
            y_pred = y_pred.log_softmax(dim=1).exp()

        bs = y_true.size(0)
        num_classes = y_pred.size(1)
        dims = (0, 2)

        y_true = y_true.view(bs, -1)
        y_pred = y_pred.view(bs, num_classes, -1)

        if self.ignore_index is not None:
            mask = y_true != self.ignore_index
            y_pred = y_pred * mask.unsqueeze(1)

            y_true = F.one_hot((y_true * mask).to(torch.long), num_classes)  # N,H*W -> N,H*W, C
            y_true = y_true.permute(0, 2, 1) * mask.unsqueeze(1)  # N, C, H*W
        else:
            y_true = F.one_hot(y_true, num_classes)  # N,H*W -> N,H*W, C
            y_true = y_true.permute(0, 2, 1)  # N, C, H*W

        scores = self.compute_score(y_pred, y_true.type_as(y_pred), smooth=self.smooth, eps=self.eps, dims=dims)

        if self.log_loss:
            loss = -torch.log(scores.clamp_min(self.eps))
        else:
            loss = 1.0 - scores

        # Dice loss is undefined for non-empty classes
        # So we zero contribution of channel that does not have true pixels
        # NOTE: A better workaround would be to use loss term `mean(y_pred)`
        # for this case, however it will be a modified jaccard loss

        mask = y_true.sum(dims) > 0
        loss *= mask.to(loss.dtype)

        if self.classes is not None:
            loss = loss[self.classes]

        return self.aggregate_loss(loss)

    def aggregate_loss(self, loss):
        return loss.mean()

    def compute_score(self, output, target, smooth=0.0, eps=1e-7, dims=None):
        return soft_dice_score(output, target, smooth, eps, dims)


class TverskyLoss(DiceLoss):
    def __init__(self, mode, classes=None, log_loss=False, from_logits=True, smooth=0.0, ignore_index=None, eps=1e-7,
                 alpha=0.5, beta=0.5, gamma=1.0):
        assert mode in {MULTICLASS_MODE}
        super().__init__(mode, classes, log_loss, from_logits, smooth, ignore_index, eps)
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma

    def aggregate_loss(self, loss):
        return loss.mean() ** self.gamma

    def compute_score(self, output, target, smooth=0.0, eps=1e-7, dims=None):
        return soft_tversky_score(output, target, self.alpha, self.beta, smooth, eps, dims)


class FocalLoss(nn.Module):
    def __init__(self, mode, alpha=None, gamma=2.0, ignore_index=None, reduction="mean", normalized=False,
                 reduced_threshold=None):
        assert mode in {MULTICLASS_MODE}
        super().__init__()
        self.mode = mode
        self.ignore_index = ignore_index
        self.focal_loss_fn = functools.partial(focal_loss_with_logits, alpha=alpha, gamma=gamma,
                                               reduced_threshold=reduced_threshold, reduction=reduction,
                                               normalized=normalized)

    def forward(self, y_pred, y_true):
        num_classes = y_pred.size(1)
        loss = 0

        # Filter anchors with -1 label from loss computation
        if self.ignore_index is not None:
            not_ignored = y_true != self.ignore_index

        for cls in range(num_classes):
            cls_y_true = (y_true == cls).long()
            cls_y_pred = y_pred[:, cls, ...]

            if self.ignore_index is not None:
                cls_y_true = cls_y_true[not_ignored]
                cls_y_pred = cls_y_pred[not_ignored]

            loss += self.focal_loss_fn(cls_y_pred, cls_y_true)

        return loss


# ----------------------------------------------------------------------------------- model
class TinySegNet(nn.Module):
    def __init__(self, in_channels=3, classes=CLASSES, width=16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        )
        self.segmentation_head = nn.Conv2d(width, classes, kernel_size=1)

    def forward(self, x):
        return self.segmentation_head(self.encoder(x))


# ----------------------------------------------------------------------------------- the Lovasz extension at binary points
check_x, check_y = make_images(4)
binary_pred = check_y.clone()
flip = torch.rand(check_y.shape) < 0.2
binary_pred[flip] = torch.randint(0, CLASSES, (int(flip.sum()),))
binary_pred[check_y == IGNORE] = 0
one_hot = F.one_hot(binary_pred, CLASSES).permute(0, 3, 1, 2).float()
lovasz_at_binary = lovasz_softmax(one_hot, check_y, classes="present", ignore=IGNORE).item()
present = [c for c in range(CLASSES) if (check_y == c).any()]
jaccard = 1.0 - np.mean(iou(binary_pred, check_y, CLASSES, ignore=IGNORE)[present]) / 100.0
softmax_ok = abs(lovasz_at_binary - jaccard) < 1e-5
print(f"lovasz_softmax at one-hot predictions {lovasz_at_binary:.6f}, 1 - mIoU (present classes) {jaccard:.6f}")

fg_labels = (check_y == 1).long()
fg_labels[check_y == IGNORE] = IGNORE
fg_pred = (binary_pred == 1).long()
signed_logits = 2.0 * fg_pred.float() - 1.0
hinge_at_binary = lovasz_hinge(signed_logits, fg_labels, per_image=True, ignore=IGNORE).item()
hinge_jaccard = 1.0 - iou_binary(fg_pred, fg_labels, ignore=IGNORE, per_image=True) / 100.0
hinge_ok = abs(hinge_at_binary - 2 * hinge_jaccard) < 1e-5
print(f"lovasz_hinge at +-1 logits {hinge_at_binary:.6f}, 2 * (1 - IoU) {2 * hinge_jaccard:.6f}")

logits = torch.randn(4, CLASSES, SIZE, SIZE)
dice = DiceLoss(MULTICLASS_MODE, ignore_index=IGNORE)(logits, check_y)
tversky = TverskyLoss(MULTICLASS_MODE, ignore_index=IGNORE, alpha=0.5, beta=0.5)(logits, check_y)
perfect = DiceLoss(MULTICLASS_MODE, from_logits=False, ignore_index=IGNORE)(
    F.one_hot(check_y * (check_y != IGNORE), CLASSES).permute(0, 3, 1, 2).float(), check_y)
dice_ok = torch.allclose(dice, tversky) and abs(perfect.item()) < 1e-6
print(f"Dice {dice.item():.6f} == Tversky(0.5, 0.5) {tversky.item():.6f}, Dice of a perfect prediction {perfect.item():.6f}")

# ----------------------------------------------------------------------------------- training
train_x, train_y = make_images(64)
val_x, val_y = make_images(16)
model = TinySegNet()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
ce = nn.CrossEntropyLoss(ignore_index=IGNORE)
dice_loss = DiceLoss(MULTICLASS_MODE, smooth=1.0, ignore_index=IGNORE)
focal_loss = FocalLoss(MULTICLASS_MODE, alpha=0.25, gamma=2.0, ignore_index=IGNORE, reduced_threshold=0.5)
tversky_loss = TverskyLoss(MULTICLASS_MODE, ignore_index=IGNORE, alpha=0.3, beta=0.7, gamma=4.0 / 3)
batch_size = 16
for epoch in range(6):
    model.train()
    perm = torch.randperm(train_x.size(0))
    totals = np.zeros(5)
    for i in range(0, train_x.size(0), batch_size):
        idx = perm[i : i + batch_size]
        images, labels = train_x[idx], train_y[idx]
        out = model(images)
        terms = (ce(out, labels), lovasz_softmax(F.softmax(out, dim=1), labels, ignore=IGNORE), dice_loss(out, labels),
                 focal_loss(out, labels), tversky_loss(out, labels))
        loss = terms[0] + terms[1] + 0.5 * terms[2] + terms[3] + 0.5 * terms[4]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals += np.array([t.item() for t in terms])
    totals /= train_x.size(0) // batch_size
    print(f"epoch {epoch}: ce {totals[0]:.4f} lovasz {totals[1]:.4f} dice {totals[2]:.4f} focal {totals[3]:.4f} tversky {totals[4]:.4f}")

model.eval()
with torch.no_grad():
    out = model(val_x)
    preds = out.argmax(1)
    val_lovasz = lovasz_softmax(F.softmax(out, dim=1), val_y, ignore=IGNORE, per_image=True).item()
    class_iou = iou(preds, val_y, CLASSES, ignore=IGNORE)
miou = float(np.mean(class_iou))
print("val IoU per class " + " ".join(f"{v:.2f}" for v in class_iou) + f", mIoU {miou:.2f}, lovasz (per image) {val_lovasz:.4f}")
print(f"FINAL miou={miou:.4f} val_lovasz={val_lovasz:.4f} checks_ok={int(softmax_ok and hinge_ok and dice_ok)}")
