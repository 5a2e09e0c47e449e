"""timm's data and loss utilities around a plain training loop: ``Mixup`` (timm/data/mixup.py) in its
per-batch, per-pair and per-element modes, the soft-target and label-smoothing losses
(timm/loss/cross_entropy.py), ``ModelEmaV2`` (timm/utils/model_ema.py), ``clip_grad_norm_`` and a
``CosineLRScheduler``-like warm-up + cosine written by hand as a ``LambdaLR``.

``Mixup`` as timm writes it: ``_params_per_batch``/``_params_per_elem`` from NumPy's global
generator (``np.random.rand() < self.mix_prob``, ``np.random.beta``, ``np.where`` over per-sample
draws), ``rand_bbox`` (``np.sqrt(1 - lam)``, ``np.random.randint``, ``np.clip``) and
``rand_bbox_minmax``, ``cutmix_bbox_and_lam`` with ``correct_lam``, ``_mix_batch`` with
``x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]`` (NumPy integers as slice bounds) or
``x_flipped = x.flip(0).mul_(1. - lam)`` + ``x.mul_(lam).add_(x_flipped)``, ``_mix_elem`` and
``_mix_pair`` on ``x_orig = x.clone()`` with ``x[i] = x[i] * lam + x_orig[j] * (1 - lam)`` (a
tensor times a ``np.float32``) and ``torch.tensor(lam_batch, device=x.device,
dtype=x.dtype).unsqueeze(1)``; ``one_hot`` by ``torch.full((x.size()[0], num_classes), off_value,
device=x.device).scatter_(1, x, on_value)`` and ``mixup_target`` broadcasting a per-sample ``lam``.
``SoftTargetCrossEntropy`` (``torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1)``),
``LabelSmoothingCrossEntropy`` (``logprobs.gather(dim=-1, index=target.unsqueeze(1))``) checked
against ``F.cross_entropy(label_smoothing=...)``; ``ModelEmaV2(model, decay, device='cpu')``:
``deepcopy(model)``, ``ema_v.copy_(update_fn(ema_v, model_v))`` over zipped ``state_dict().values()``
(BatchNorm's long ``num_batches_tracked`` through a float update), ``set``.

The data: 6 classes of 3x12x12 images (a class template plus noise) made with NumPy.
"""

# ruff: noqa: B011  (timm's own assert False)

import math
import os
from copy import deepcopy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)  # timm's Mixup draws from NumPy's global generator


# --- timm/data/mixup.py ------------------------------------------------------------------------------------
def one_hot(x, num_classes, on_value=1., off_value=0.):
    x = x.long().view(-1, 1)
    return torch.full((x.size()[0], num_classes), off_value, device=x.device).scatter_(1, x, on_value)


def mixup_target(target, num_classes, lam=1., smoothing=0.0):
    off_value = smoothing / num_classes
    on_value = 1. - smoothing + off_value
    y1 = one_hot(target, num_classes, on_value=on_value, off_value=off_value)
    y2 = one_hot(target.flip(0), num_classes, on_value=on_value, off_value=off_value)
    return y1 * lam + y2 * (1. - lam)


def rand_bbox(img_shape, lam, margin=0., count=None):
    ratio = np.sqrt(1 - lam)
    img_h, img_w = img_shape[-2:]
    cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
    margin_y, margin_x = int(margin * cut_h), int(margin * cut_w)
    cy = np.random.randint(0 + margin_y, img_h - margin_y, size=count)
    cx = np.random.randint(0 + margin_x, img_w - margin_x, size=count)
    yl = np.clip(cy - cut_h // 2, 0, img_h)
    yh = np.clip(cy + cut_h // 2, 0, img_h)
    xl = np.clip(cx - cut_w // 2, 0, img_w)
    xh = np.clip(cx + cut_w // 2, 0, img_w)
    return yl, yh, xl, xh


def rand_bbox_minmax(img_shape, minmax, count=None):
    assert len(minmax) == 2
    img_h, img_w = img_shape[-2:]
    cut_h = np.random.randint(int(img_h * minmax[0]), int(img_h * minmax[1]), size=count)
    cut_w = np.random.randint(int(img_w * minmax[0]), int(img_w * minmax[1]), size=count)
    yl = np.random.randint(0, img_h - cut_h, size=count)
    xl = np.random.randint(0, img_w - cut_w, size=count)
    yu = yl + cut_h
    xu = xl + cut_w
    return yl, yu, xl, xu


def cutmix_bbox_and_lam(img_shape, lam, ratio_minmax=None, correct_lam=True, count=None):
    if ratio_minmax is not None:
        yl, yu, xl, xu = rand_bbox_minmax(img_shape, ratio_minmax, count=count)
    else:
        yl, yu, xl, xu = rand_bbox(img_shape, lam, count=count)
    if correct_lam or ratio_minmax is not None:
        bbox_area = (yu - yl) * (xu - xl)
        lam = 1. - bbox_area / float(img_shape[-2] * img_shape[-1])
    return (yl, yu, xl, xu), lam


class Mixup:
    def __init__(self, mixup_alpha=1., cutmix_alpha=0., cutmix_minmax=None, prob=1.0, switch_prob=0.5,
                 mode='batch', correct_lam=True, label_smoothing=0.1, num_classes=1000):
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.cutmix_minmax = cutmix_minmax
        if self.cutmix_minmax is not None:
            assert len(self.cutmix_minmax) == 2
            # force cutmix alpha == 1.0 when minmax active to keep logic simple & safe
            self.cutmix_alpha = 1.0
        self.mix_prob = prob
        self.switch_prob = switch_prob
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes
        self.mode = mode
        self.correct_lam = correct_lam  # correct lambda based on clipped area for cutmix
        self.mixup_enabled = True  # set to false to disable mixing (intended tp be set by train loop)

    def _params_per_elem(self, batch_size):
        lam = np.ones(batch_size, dtype=np.float32)
        use_cutmix = np.zeros(batch_size, dtype=bool)
        if self.mixup_enabled:
            if self.mixup_alpha > 0. and self.cutmix_alpha > 0.:
                use_cutmix = np.random.rand(batch_size) < self.switch_prob
                lam_mix = np.where(
                    use_cutmix,
                    np.random.beta(self.cutmix_alpha, self.cutmix_alpha, size=batch_size),
                    np.random.beta(self.mixup_alpha, self.mixup_alpha, size=batch_size))
            elif self.mixup_alpha > 0.:
                lam_mix = np.random.beta(self.mixup_alpha, self.mixup_alpha, size=batch_size)
            elif self.cutmix_alpha > 0.:
                use_cutmix = np.ones(batch_size, dtype=bool)
                lam_mix = np.random.beta(self.cutmix_alpha, self.cutmix_alpha, size=batch_size)
            else:
                assert False, "One of mixup_alpha > 0., cutmix_alpha > 0., cutmix_minmax not None should be true."
            lam = np.where(np.random.rand(batch_size) < self.mix_prob, lam_mix.astype(np.float32), lam)
        return lam, use_cutmix

    def _params_per_batch(self):
        lam = 1.
        use_cutmix = False
        if self.mixup_enabled and np.random.rand() < self.mix_prob:
            if self.mixup_alpha > 0. and self.cutmix_alpha > 0.:
                use_cutmix = np.random.rand() < self.switch_prob
                lam_mix = np.random.beta(self.cutmix_alpha, self.cutmix_alpha) if use_cutmix else \
                    np.random.beta(self.mixup_alpha, self.mixup_alpha)
            elif self.mixup_alpha > 0.:
                lam_mix = np.random.beta(self.mixup_alpha, self.mixup_alpha)
            elif self.cutmix_alpha > 0.:
                use_cutmix = True
                lam_mix = np.random.beta(self.cutmix_alpha, self.cutmix_alpha)
            else:
                assert False, "One of mixup_alpha > 0., cutmix_alpha > 0., cutmix_minmax not None should be true."
            lam = float(lam_mix)
        return lam, use_cutmix

    def _mix_elem(self, x):
        batch_size = len(x)
        lam_batch, use_cutmix = self._params_per_elem(batch_size)
        x_orig = x.clone()  # need to keep an unmodified original for mixing source
        for i in range(batch_size):
            j = batch_size - i - 1
            lam = lam_batch[i]
            if lam != 1.:
                if use_cutmix[i]:
                    (yl, yh, xl, xh), lam = cutmix_bbox_and_lam(
                        x[i].shape, lam, ratio_minmax=self.cutmix_minmax, correct_lam=self.correct_lam)
                    x[i][:, yl:yh, xl:xh] = x_orig[j][:, yl:yh, xl:xh]
                    lam_batch[i] = lam
                else:
                    x[i] = x[i] * lam + x_orig[j] * (1 - lam)
        return torch.tensor(lam_batch, device=x.device, dtype=x.dtype).unsqueeze(1)

    def _mix_pair(self, x):
        batch_size = len(x)
        lam_batch, use_cutmix = self._params_per_elem(batch_size // 2)
        x_orig = x.clone()  # need to keep an unmodified original for mixing source
        for i in range(batch_size // 2):
            j = batch_size - i - 1
            lam = lam_batch[i]
            if lam != 1.:
                if use_cutmix[i]:
                    (yl, yh, xl, xh), lam = cutmix_bbox_and_lam(
                        x[i].shape, lam, ratio_minmax=self.cutmix_minmax, correct_lam=self.correct_lam)
                    x[i][:, yl:yh, xl:xh] = x_orig[j][:, yl:yh, xl:xh]
                    x[j][:, yl:yh, xl:xh] = x_orig[i][:, yl:yh, xl:xh]
                    lam_batch[i] = lam
                else:
                    x[i] = x[i] * lam + x_orig[j] * (1 - lam)
                    x[j] = x[j] * lam + x_orig[i] * (1 - lam)
        lam_batch = np.concatenate((lam_batch, lam_batch[::-1]))
        return torch.tensor(lam_batch, device=x.device, dtype=x.dtype).unsqueeze(1)

    def _mix_batch(self, x):
        lam, use_cutmix = self._params_per_batch()
        if lam == 1.:
            return 1.
        if use_cutmix:
            (yl, yh, xl, xh), lam = cutmix_bbox_and_lam(
                x.shape, lam, ratio_minmax=self.cutmix_minmax, correct_lam=self.correct_lam)
            x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
        else:
            x_flipped = x.flip(0).mul_(1. - lam)
            x.mul_(lam).add_(x_flipped)
        return lam

    def __call__(self, x, target):
        assert len(x) % 2 == 0, 'Batch size should be even when using this'
        if self.mode == 'elem':
            lam = self._mix_elem(x)
        elif self.mode == 'pair':
            lam = self._mix_pair(x)
        else:
            lam = self._mix_batch(x)
        target = mixup_target(target, self.num_classes, lam, self.label_smoothing)
        return x, target


# --- timm/loss/cross_entropy.py ----------------------------------------------------------------------------
class LabelSmoothingCrossEntropy(nn.Module):
    """ NLL loss with label smoothing.
    """
    def __init__(self, smoothing=0.1):
        super(LabelSmoothingCrossEntropy, self).__init__()  # noqa: UP008  (timm's own spelling)
        assert smoothing < 1.0
        self.smoothing = smoothing
        self.confidence = 1. - smoothing

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logprobs = F.log_softmax(x, dim=-1)
        nll_loss = -logprobs.gather(dim=-1, index=target.unsqueeze(1))
        nll_loss = nll_loss.squeeze(1)
        smooth_loss = -logprobs.mean(dim=-1)
        loss = self.confidence * nll_loss + self.smoothing * smooth_loss
        return loss.mean()


class SoftTargetCrossEntropy(nn.Module):

    def __init__(self):
        super(SoftTargetCrossEntropy, self).__init__()  # noqa: UP008  (timm's own spelling)

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1)
        return loss.mean()


# --- timm/utils/model_ema.py -------------------------------------------------------------------------------
class ModelEmaV2(nn.Module):
    def __init__(self, model, decay=0.9999, device=None):
        super(ModelEmaV2, self).__init__()  # noqa: UP008  (timm's own spelling)
        # make a copy of the model for accumulating moving average of weights
        self.module = deepcopy(model)
        self.module.eval()
        self.decay = decay
        self.device = device  # perform ema on different device from model if set
        if self.device is not None:
            self.module.to(device=device)

    def _update(self, model, update_fn):
        with torch.no_grad():
            for ema_v, model_v in zip(self.module.state_dict().values(), model.state_dict().values()):
                if self.device is not None:
                    model_v = model_v.to(device=self.device)
                ema_v.copy_(update_fn(ema_v, model_v))

    def update(self, model):
        self._update(model, update_fn=lambda e, m: self.decay * e + (1. - self.decay) * m)

    def set(self, model):
        self._update(model, update_fn=lambda e, m: m)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


# --- the data, the model, the schedule ---------------------------------------------------------------------
NUM_CLASSES = 6
rng = np.random.RandomState(0)
templates = rng.randn(NUM_CLASSES, 3, 12, 12).astype(np.float32)
labels_np = rng.randint(0, NUM_CLASSES, size=448)
images_np = templates[labels_np] + 1.5 * rng.randn(448, 3, 12, 12).astype(np.float32)
x_all, y_all = torch.from_numpy(images_np), torch.from_numpy(labels_np).long()
x_train, y_train, x_val, y_val = x_all[:384], y_all[:384], x_all[384:], y_all[384:]


class Net(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(12)
        self.conv2 = nn.Conv2d(12, 24, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(24)
        self.head = nn.Linear(24, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.head(x.mean((2, 3)))


def warmup_cosine(warmup_steps, total_steps, lr_min_ratio=0.01):
    def lr_lambda(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return lr_min_ratio + (1 - lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return lr_lambda


@torch.no_grad()
def validate(model):
    was_training = model.training
    model.eval()
    logits = model(x_val)
    loss = F.cross_entropy(logits, y_val).item()
    top1 = (logits.argmax(-1) == y_val).float().mean().item() * 100
    model.train(was_training)
    return loss, top1


# --- the losses against torch's own --------------------------------------------------------------------------
logits = torch.randn(8, NUM_CLASSES)
targets = torch.randint(0, NUM_CLASSES, (8,))
smoothing_loss = LabelSmoothingCrossEntropy(smoothing=0.1)(logits, targets)
print("label smoothing equals F.cross_entropy",
      torch.allclose(smoothing_loss, F.cross_entropy(logits, targets, label_smoothing=0.1)))
soft = mixup_target(targets, NUM_CLASSES, lam=1.0, smoothing=0.1)
print("soft target rows sum to one", torch.allclose(soft.sum(-1), torch.ones(8)),
      "soft target loss equals F.cross_entropy",
      torch.allclose(SoftTargetCrossEntropy()(logits, soft), F.cross_entropy(logits, targets, label_smoothing=0.1)))
print("one_hot", one_hot(torch.tensor([2, 0]), 4, on_value=0.9, off_value=0.05).tolist())

# --- every mode on one batch ---------------------------------------------------------------------------------
for mode, options in (("batch", dict(mixup_alpha=0.8, cutmix_alpha=1.0)), ("pair", dict(mixup_alpha=0.8,
                      cutmix_alpha=1.0)), ("elem", dict(mixup_alpha=0.8, cutmix_alpha=0., cutmix_minmax=(0.3, 0.7)))):
    mixer = Mixup(mode=mode, label_smoothing=0.1, num_classes=NUM_CLASSES, **options)
    inputs, mixed_targets = mixer(x_train[:16].clone(), y_train[:16])
    print(f"mode {mode}: inputs {tuple(inputs.shape)} targets {tuple(mixed_targets.shape)} "
          f"rows sum to one {torch.allclose(mixed_targets.sum(-1), torch.ones(16))}")

# --- training -----------------------------------------------------------------------------------------------
EPOCHS, BATCH = 6, 32
steps_per_epoch = len(x_train) // BATCH
model = Net()
model_ema = ModelEmaV2(model, decay=0.95, device='cpu')
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps_per_epoch, EPOCHS * steps_per_epoch))
mixup_fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.8, switch_prob=0.5, mode='batch',
                 label_smoothing=0.1, num_classes=NUM_CLASSES)
train_loss_fn = SoftTargetCrossEntropy()
norms = []
for epoch in range(EPOCHS):
    if epoch == EPOCHS - 1:
        mixup_fn.mixup_enabled = False  # timm's --mixup-off-epoch
    order = torch.randperm(len(x_train))
    total = 0.0
    for step in range(steps_per_epoch):
        index = order[step * BATCH:(step + 1) * BATCH]
        inputs, targets = mixup_fn(x_train[index].clone(), y_train[index])
        loss = train_loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5).item())
        optimizer.step()
        scheduler.step()
        model_ema.update(model)
        total += loss.item()
    val_loss, top1 = validate(model)
    ema_loss, ema_top1 = validate(model_ema.module)
    print(f"epoch {epoch} lr {scheduler.get_last_lr()[0]:.5f} train_loss {total / steps_per_epoch:.4f} "
          f"val_loss {val_loss:.4f} top1 {top1:.2f} ema_top1 {ema_top1:.2f}")

tracked = model_ema.module.bn1.num_batches_tracked
print("ema num_batches_tracked", tracked.dtype, tracked.item() <= model.bn1.num_batches_tracked.item(),
      "ema in eval", not model_ema.module.training)
clipped = sum(norm > 0.5 for norm in norms)
print(f"clip_grad_norm_ calls {len(norms)}, clipped {clipped}")

ema_copy = ModelEmaV2(model, decay=0.95)
ema_copy.set(model)
print("set copies the model", all(torch.equal(a, b) for a, b in zip(ema_copy.state_dict().values(),
                                                                      model.state_dict().values())))

print(f"FINAL val_loss={val_loss:.4f} top1={top1:.2f} ema_loss={ema_loss:.4f} ema_top1={ema_top1:.2f} "
      f"mean_grad_norm={sum(norms) / len(norms):.4f}")
