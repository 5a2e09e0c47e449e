"""A timm-style training script: a tiny ConvNeXt trained with Mixup/CutMix, soft-target loss and an EMA.

timm's pieces as timm writes them: ``LayerNorm2d`` subclassing ``nn.LayerNorm`` (``permute(0, 2,
3, 1)``, ``F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)``, back),
``ConvNeXtBlock`` with a depthwise 7x7 ``nn.Conv2d(dim, dim, 7, padding=3, groups=dim)``, the
channels-last ``nn.LayerNorm`` + MLP between ``permute``s, the layer-scale ``gamma`` parameter and
``drop_path`` (``x.new_empty(shape).bernoulli_(keep_prob)`` + ``random_tensor.div_(keep_prob)``),
stochastic-depth rates by ``torch.linspace(0, rate, sum(depths)).split(depths)``, ``trunc_normal_``
init and ``head.weight.data.mul_(head_init_scale)``; ``Mixup`` with ``np.random.beta``, CutMix's
``rand_bbox`` and ``x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]``, the mixup
``x.mul_(lam).add_(x.flip(0).mul_(1. - lam))`` and ``mixup_target`` by ``torch.full(...).scatter_
(1, ...)``; ``SoftTargetCrossEntropy`` (``torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1)
.mean()``), ``LabelSmoothingCrossEntropy`` (``gather`` + ``mean``, checked against
``F.cross_entropy(label_smoothing=...)``), ``ModelEmaV2`` (``deepcopy``, ``ema_v.copy_(...)`` over
zipped ``state_dict().values()`` under ``torch.no_grad()``), ``param_groups_weight_decay`` (no decay
for 1-d parameters and biases), a hand-written warmup + cosine schedule per step, ``AverageMeter``
and ``accuracy(output, target, topk=(1, 5))`` by ``topk(maxk, 1, True, True)``, ``pred.t()``,
``pred.eq(target.reshape(1, -1).expand_as(pred))``.

The data: 10 classes of 3x16x16 images, each a class template plus noise, made with NumPy.
"""

import math
import os
from copy import deepcopy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.init import trunc_normal_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)  # timm's Mixup draws from NumPy's global generator
rng = np.random.default_rng(seed)

NUM_CLASSES = 10
templates = rng.normal(0.0, 1.0, size=(NUM_CLASSES, 3, 16, 16)).astype(np.float32)


def make_split(n):
    labels = rng.integers(0, NUM_CLASSES, size=n)
    images = templates[labels] + rng.normal(0.0, 3.0, size=(n, 3, 16, 16)).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels)


# --- timm/layers/drop.py ---------------------------------------------------------------------------
def drop_path(x, drop_prob: float = 0., training: bool = False, scale_by_keep: bool = True):
    """Drop paths (Stochastic Depth) per sample (when applied in main path of residual blocks)."""
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    def __init__(self, drop_prob: float = 0., scale_by_keep: bool = True):
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self):
        return f'drop_prob={round(self.drop_prob, 3):0.3f}'


# --- timm/layers/norm.py ---------------------------------------------------------------------------
class LayerNorm2d(nn.LayerNorm):
    """ LayerNorm for channels of '2D' spatial NCHW tensors """
    def __init__(self, num_channels, eps=1e-6, affine=True):
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 3, 1, 2)
        return x


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop1(x)
        x = self.fc2(x)
        x = self.drop2(x)
        return x


# --- timm/models/convnext.py -----------------------------------------------------------------------
class ConvNeXtBlock(nn.Module):
    def __init__(self, in_chs, kernel_size=7, mlp_ratio=4, ls_init_value=1e-6, drop_path=0.):
        super().__init__()
        self.conv_dw = nn.Conv2d(in_chs, in_chs, kernel_size, padding=kernel_size // 2, groups=in_chs)
        self.norm = nn.LayerNorm(in_chs, eps=1e-6)
        self.mlp = Mlp(in_chs, int(mlp_ratio * in_chs), act_layer=nn.GELU)
        self.gamma = nn.Parameter(ls_init_value * torch.ones(in_chs)) if ls_init_value is not None else None
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x):
        shortcut = x
        x = self.conv_dw(x)
        x = x.permute(0, 2, 3, 1)
        x = self.norm(x)
        x = self.mlp(x)
        x = x.permute(0, 3, 1, 2)
        if self.gamma is not None:
            x = x.mul(self.gamma.reshape(1, -1, 1, 1))
        x = self.drop_path(x) + shortcut
        return x


class ConvNeXtStage(nn.Module):
    def __init__(self, in_chs, out_chs, stride=2, depth=2, drop_path_rates=None, ls_init_value=1.0):
        super().__init__()
        if in_chs != out_chs or stride > 1:
            self.downsample = nn.Sequential(
                LayerNorm2d(in_chs),
                nn.Conv2d(in_chs, out_chs, kernel_size=stride, stride=stride),
            )
        else:
            self.downsample = nn.Identity()
        drop_path_rates = drop_path_rates or [0.] * depth
        self.blocks = nn.Sequential(*[
            ConvNeXtBlock(out_chs, drop_path=drop_path_rates[j], ls_init_value=ls_init_value)
            for j in range(depth)
        ])

    def forward(self, x):
        x = self.downsample(x)
        x = self.blocks(x)
        return x


class ConvNeXt(nn.Module):
    def __init__(self, in_chans=3, num_classes=1000, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768),
                 ls_init_value=1e-6, patch_size=4, head_init_scale=1., drop_path_rate=0.):
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=patch_size, stride=patch_size),
            LayerNorm2d(dims[0]),
        )
        self.stages = nn.Sequential()
        dp_rates = [x.tolist() for x in torch.linspace(0, drop_path_rate, sum(depths)).split(depths)]
        stages = []
        prev_chs = dims[0]
        for i in range(len(depths)):
            stride = 1 if i == 0 else 2
            out_chs = dims[i]
            stages.append(ConvNeXtStage(prev_chs, out_chs, stride=stride, depth=depths[i],
                                        drop_path_rates=dp_rates[i], ls_init_value=ls_init_value))
            prev_chs = out_chs
        self.stages = nn.Sequential(*stages)
        self.num_features = prev_chs
        self.head_norm = nn.LayerNorm(self.num_features, eps=1e-6)
        self.head = nn.Linear(self.num_features, num_classes)
        self.apply(self._init_weights)
        self.head.weight.data.mul_(head_init_scale)
        self.head.bias.data.mul_(head_init_scale)

    def _init_weights(self, module):
        if isinstance(module, nn.Conv2d):
            trunc_normal_(module.weight, std=.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=.02)
            nn.init.zeros_(module.bias)

    def forward_features(self, x):
        x = self.stem(x)
        x = self.stages(x)
        return x

    def forward_head(self, x, pre_logits: bool = False):
        x = x.mean((2, 3))  # global average pool
        x = self.head_norm(x)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        x = self.forward_features(x)
        x = self.forward_head(x)
        return x


# --- timm/data/mixup.py ----------------------------------------------------------------------------
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


def cutmix_bbox_and_lam(img_shape, lam, correct_lam=True, count=None):
    yl, yu, xl, xu = rand_bbox(img_shape, lam, count=count)
    if correct_lam:
        bbox_area = (yu - yl) * (xu - xl)
        lam = 1. - bbox_area / float(img_shape[-2] * img_shape[-1])
    return (yl, yu, xl, xu), lam


class Mixup:
    def __init__(self, mixup_alpha=1., cutmix_alpha=0., prob=1.0, switch_prob=0.5,
                 correct_lam=True, label_smoothing=0.1, num_classes=1000):
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.mix_prob = prob
        self.switch_prob = switch_prob
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes
        self.correct_lam = correct_lam
        self.mixup_enabled = True
        self.counts = {"mixup": 0, "cutmix": 0, "none": 0}

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
            else:
                use_cutmix = True
                lam_mix = np.random.beta(self.cutmix_alpha, self.cutmix_alpha)
            lam = float(lam_mix)
        return lam, use_cutmix

    def _mix_batch(self, x):
        lam, use_cutmix = self._params_per_batch()
        if lam == 1.:
            self.counts["none"] += 1
            return 1.
        if use_cutmix:
            self.counts["cutmix"] += 1
            (yl, yh, xl, xh), lam = cutmix_bbox_and_lam(x.shape, lam, correct_lam=self.correct_lam)
            x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
        else:
            self.counts["mixup"] += 1
            x_flipped = x.flip(0).mul_(1. - lam)
            x.mul_(lam).add_(x_flipped)
        return lam

    def __call__(self, x, target):
        assert len(x) % 2 == 0, 'Batch size should be even when using this'
        lam = self._mix_batch(x)
        target = mixup_target(target, self.num_classes, lam, self.label_smoothing)
        return x, target


# --- timm/loss/cross_entropy.py --------------------------------------------------------------------
class LabelSmoothingCrossEntropy(nn.Module):
    """ NLL loss with label smoothing. """
    def __init__(self, smoothing=0.1):
        super().__init__()
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
        super().__init__()

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1)
        return loss.mean()


# --- timm/utils/model_ema.py -----------------------------------------------------------------------
class ModelEmaV2(nn.Module):
    def __init__(self, model, decay=0.9999, device=None):
        super().__init__()
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


# --- timm/optim/_param_groups.py, timm/utils/metrics.py --------------------------------------------
def param_groups_weight_decay(model: nn.Module, weight_decay=1e-5, no_weight_decay_list=()):
    no_weight_decay_list = set(no_weight_decay_list)
    decay = []
    no_decay = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue

        if param.ndim <= 1 or name.endswith(".bias") or name in no_weight_decay_list:
            no_decay.append(param)
        else:
            decay.append(param)

    return [
        {'params': no_decay, 'weight_decay': 0.},
        {'params': decay, 'weight_decay': weight_decay}]


class AverageMeter:
    """Computes and stores the average and current value"""
    def __init__(self):
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    maxk = min(max(topk), output.size()[1])
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.reshape(1, -1).expand_as(pred))
    return [correct[:min(k, maxk)].reshape(-1).float().sum(0) * 100. / batch_size for k in topk]


# --- train.py, shrunk -----------------------------------------------------------------------------
x_train, y_train = make_split(320)
x_val, y_val = make_split(200)

model = ConvNeXt(num_classes=NUM_CLASSES, depths=(1, 1), dims=(16, 32), patch_size=2,
                 ls_init_value=0.1, head_init_scale=1.0, drop_path_rate=0.1)
print(f"drop path rates {[blk.drop_path.drop_prob if isinstance(blk.drop_path, DropPath) else 0.0 for s in model.stages for blk in s.blocks]}, "
      f"stem norm is a LayerNorm {isinstance(model.stem[1], nn.LayerNorm)}, "
      f"dw groups {model.stages[0].blocks[0].conv_dw.groups}, {model.stages[1].blocks[0].drop_path}")

# the hand-written LayerNorm2d equals LayerNorm over channels
probe = torch.randn(2, 16, 4, 4)
ln2d = model.stem[1](probe)
print(f"LayerNorm2d matches permute + LayerNorm: "
      f"{torch.allclose(ln2d, F.layer_norm(probe.permute(0, 2, 3, 1), (16,), eps=1e-6).permute(0, 3, 1, 2), atol=1e-5)}, "
      f"contiguous {ln2d.is_contiguous()}")

# drop_path keeps whole samples or none of them, scaled by 1 / keep_prob
dp = DropPath(0.5).train()
kept = dp(torch.ones(64, 3, 2, 2))
per_sample = kept.flatten(1)
print(f"drop_path values {sorted(set(kept.unique().tolist()))}, per-sample constant "
      f"{bool((per_sample == per_sample[:, :1]).all())}, eval identity {torch.equal(dp.eval()(probe), probe)}")

smooth_loss = LabelSmoothingCrossEntropy(smoothing=0.1)
logits_probe, target_probe = torch.randn(8, NUM_CLASSES), torch.randint(0, NUM_CLASSES, (8,))
print(f"LabelSmoothingCrossEntropy equals F.cross_entropy(label_smoothing=0.1): "
      f"{torch.allclose(smooth_loss(logits_probe, target_probe), F.cross_entropy(logits_probe, target_probe, label_smoothing=0.1), atol=1e-6)}")

mixup_fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, label_smoothing=0.1,
                 num_classes=NUM_CLASSES)
train_loss_fn = SoftTargetCrossEntropy()
validate_loss_fn = nn.CrossEntropyLoss()

weight_decay = 0.05
parameters = param_groups_weight_decay(model, weight_decay)
print(f"param groups: {len(parameters[0]['params'])} without decay, {len(parameters[1]['params'])} with decay")
optimizer = torch.optim.AdamW(parameters, lr=4e-3, weight_decay=weight_decay)
model_ema = ModelEmaV2(model, decay=0.9)

epochs, batch_size, warmup_steps = 6, 32, 12
steps_per_epoch = len(x_train) // batch_size
total_steps = epochs * steps_per_epoch
base_lr, min_lr = 4e-3, 1e-5


def lr_at(step):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))


def validate(net):
    net.eval()
    losses_m, top1_m, top5_m = AverageMeter(), AverageMeter(), AverageMeter()
    with torch.no_grad():
        for start in range(0, len(x_val), 50):
            inp, target = x_val[start:start + 50], y_val[start:start + 50]
            output = net(inp)
            loss = validate_loss_fn(output, target)
            acc1, acc5 = accuracy(output, target, topk=(1, 5))
            losses_m.update(loss.item(), inp.size(0))
            top1_m.update(acc1.item(), output.size(0))
            top5_m.update(acc5.item(), output.size(0))
    return {"loss": losses_m.avg, "top1": top1_m.avg, "top5": top5_m.avg}


step = 0
for epoch in range(epochs):
    model.train()
    losses_m = AverageMeter()
    perm = torch.randperm(len(x_train))
    for b in range(steps_per_epoch):
        idx = perm[b * batch_size:(b + 1) * batch_size]
        inp, target = x_train[idx].clone(), y_train[idx]
        inp, target = mixup_fn(inp, target)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr_at(step)
        output = model(inp)
        loss = train_loss_fn(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model_ema.update(model)
        losses_m.update(loss.item(), inp.size(0))
        step += 1
    if epoch % 2 == 1:
        metrics = validate(model)
        print(f"epoch {epoch}: train loss {losses_m.avg:.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
              f"val loss {metrics['loss']:.4f} top1 {metrics['top1']:.2f} top5 {metrics['top5']:.2f}")

metrics = validate(model)
ema_metrics = validate(model_ema.module)
gamma = model.stages[1].blocks[0].gamma
print(f"mixed batches: {sum(mixup_fn.counts.values())} of {total_steps}; "
      f"layer scale gamma {tuple(gamma.shape)} mean |gamma| {gamma.abs().mean().item():.4f}")
print(f"FINAL train_loss={losses_m.avg:.4f} val_loss={metrics['loss']:.4f} top1={metrics['top1']:.2f} "
      f"top5={metrics['top5']:.2f} ema_top1={ema_metrics['top1']:.2f}")
