"""Big Transfer (Kolesnikov et al. 2020): a pre-activation ResNet with weight-standardised convs.

In the style of google-research/big_transfer (`bit_pytorch/models.py`, `bit_pytorch/train.py`,
`bit_hyperrule.py`) at toy size on synthetic 16x16 images of four classes: `StdConv2d(nn.Conv2d)`
whose forward standardises its weight by `torch.var_mean(w, dim=[1, 2, 3], keepdim=True,
unbiased=False)` and `(w - m) / torch.sqrt(v + 1e-10)` before `F.conv2d(x, w, self.bias, self.stride,
self.padding, self.dilation, self.groups)`; the `conv3x3`/`conv1x1` helpers; `PreActBottleneck` units
(`nn.GroupNorm(8, ...)` + ReLU before each conv, a strided projection `downsample` applied to the
pre-activated input); the root `StdConv2d` + `nn.ConstantPad2d(1, 0)` + `nn.MaxPool2d(3, stride=2)`;
`nn.Sequential(OrderedDict([...]))` bodies; the head `GroupNorm` + ReLU + `nn.AdaptiveAvgPool2d(output_size=1)`
+ a 1x1 `nn.Conv2d` zero-initialised with `nn.init.zeros_` (`zero_head`), `[..., 0, 0]`; the
BiT-HyperRule schedule (linear warm-up, then /10 steps) through `LambdaLR`; MixUp with
`np.random.beta(mixup, mixup)` and `torch.randperm`, `mixup_criterion`; SGD momentum 0.9.
Reports train loss, held-out accuracy and loss.
Check: StdConv2d's standardised weight has per-filter mean ~0 and variance ~1, and equals the
manual `(w - w.mean((1, 2, 3), keepdim=True)) / w.std((1, 2, 3), keepdim=True, unbiased=False)`.
"""

import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


class StdConv2d(nn.Conv2d):

    def forward(self, x):
        w = self.weight
        v, m = torch.var_mean(w, dim=[1, 2, 3], keepdim=True, unbiased=False)
        w = (w - m) / torch.sqrt(v + 1e-10)
        return F.conv2d(x, w, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


def conv3x3(cin, cout, stride=1, groups=1, bias=False):
    return StdConv2d(cin, cout, kernel_size=3, stride=stride,
                     padding=1, bias=bias, groups=groups)


def conv1x1(cin, cout, stride=1, bias=False):
    return StdConv2d(cin, cout, kernel_size=1, stride=stride,
                     padding=0, bias=bias)


class PreActBottleneck(nn.Module):
    """Pre-activation (v2) bottleneck block.

    Follows the implementation of "Identity Mappings in Deep Residual Networks":
    https://github.com/KaimingHe/resnet-1k-layers/blob/master/resnet-pre-act.lua
    Except it puts the stride on 3x3 conv when available.
    """

    def __init__(self, cin, cout=None, cmid=None, stride=1):
        super().__init__()
        cout = cout or cin
        cmid = cmid or cout // 4

        self.gn1 = nn.GroupNorm(8, cin)
        self.conv1 = conv1x1(cin, cmid)
        self.gn2 = nn.GroupNorm(8, cmid)
        self.conv2 = conv3x3(cmid, cmid, stride)  # Original code has it on conv1!!
        self.gn3 = nn.GroupNorm(8, cmid)
        self.conv3 = conv1x1(cmid, cout)
        self.relu = nn.ReLU(inplace=True)

        if (stride != 1 or cin != cout):
            # Projection also with pre-activation according to paper.
            self.downsample = conv1x1(cin, cout, stride)

    def forward(self, x):
        out = self.relu(self.gn1(x))

        # Residual branch
        residual = x
        if hasattr(self, 'downsample'):
            residual = self.downsample(out)

        # Unit's branch
        out = self.conv1(out)
        out = self.conv2(self.relu(self.gn2(out)))
        out = self.conv3(self.relu(self.gn3(out)))

        return out + residual


class ResNetV2(nn.Module):
    """Implementation of Pre-activation (v2) ResNet mode."""

    def __init__(self, block_units, width_factor, head_size=4, zero_head=False):
        super().__init__()
        wf = width_factor  # shortcut 'cause we'll use it a lot.

        self.root = nn.Sequential(OrderedDict([
            ('conv', StdConv2d(3, 16 * wf, kernel_size=3, stride=1, padding=1, bias=False)),
            ('pad', nn.ConstantPad2d(1, 0)),
            ('pool', nn.MaxPool2d(kernel_size=3, stride=2, padding=0)),
        ]))

        self.body = nn.Sequential(OrderedDict([
            ('block1', nn.Sequential(OrderedDict(
                [('unit01', PreActBottleneck(cin=16 * wf, cout=32 * wf, cmid=8 * wf))] +
                [(f'unit{i:02d}', PreActBottleneck(cin=32 * wf, cout=32 * wf, cmid=8 * wf))
                 for i in range(2, block_units[0] + 1)],
            ))),
            ('block2', nn.Sequential(OrderedDict(
                [('unit01', PreActBottleneck(cin=32 * wf, cout=64 * wf, cmid=16 * wf, stride=2))] +
                [(f'unit{i:02d}', PreActBottleneck(cin=64 * wf, cout=64 * wf, cmid=16 * wf))
                 for i in range(2, block_units[1] + 1)],
            ))),
        ]))

        self.zero_head = zero_head
        self.head = nn.Sequential(OrderedDict([
            ('gn', nn.GroupNorm(8, 64 * wf)),
            ('relu', nn.ReLU(inplace=True)),
            ('avg', nn.AdaptiveAvgPool2d(output_size=1)),
            ('conv', nn.Conv2d(64 * wf, head_size, kernel_size=1, bias=True)),
        ]))
        if zero_head:
            nn.init.zeros_(self.head.conv.weight)
            nn.init.zeros_(self.head.conv.bias)

    def forward(self, x):
        x = self.head(self.body(self.root(x)))
        assert x.shape[-2:] == (1, 1)  # We should have no spatial shape left.
        return x[..., 0, 0]


# --- synthetic images: four classes of oriented stripes / blobs, with noise and random phase
num_classes = 4


def make_images(n, rng):
    ys = rng.randint(0, num_classes, size=n)
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float32) / 16.0
    imgs = np.empty((n, 3, 16, 16), dtype=np.float32)
    for i, y in enumerate(ys):
        phase = rng.uniform(0, 2 * np.pi)
        if y == 0:
            base = np.sin(2 * np.pi * 3 * xx + phase)
        elif y == 1:
            base = np.sin(2 * np.pi * 3 * yy + phase)
        elif y == 2:
            base = np.sin(2 * np.pi * 2 * (xx + yy) + phase)
        else:
            cx, cy = rng.uniform(0.3, 0.7, size=2)
            base = 2.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02) - 0.5
        colour = rng.uniform(0.5, 1.0, size=(3, 1, 1)).astype(np.float32)
        imgs[i] = colour * base[None] + 0.6 * rng.randn(3, 16, 16)
    return torch.from_numpy(imgs), torch.from_numpy(ys).long()


rng = np.random.RandomState(seed)
x_train, y_train = make_images(384, rng)
x_test, y_test = make_images(192, rng)


def get_schedule(dataset_size):
    if dataset_size < 20_000:
        return [6, 30, 45, 55, 60]
    return [500, 3000, 6000, 9000, 10_000]


def get_lr(step, dataset_size, base_lr=0.003):
    """Returns learning-rate for `step` or None at the end."""
    supports = get_schedule(dataset_size)
    # Linear warmup
    if step < supports[0]:
        return base_lr * step / supports[0]
    # End of training
    elif step >= supports[-1]:
        return None
    # Staircase decays by factor of 10
    else:
        for s in supports[1:]:
            if s < step:
                base_lr /= 10
        return base_lr


def get_mixup(dataset_size):
    return 0.0 if dataset_size < 20_000 else 0.1


def mixup_data(x, y, l):
    """Returns mixed inputs, pairs of targets, and lambda"""
    indices = torch.randperm(x.shape[0]).to(x.device)

    mixed_x = l * x + (1 - l) * x[indices]
    y_a, y_b = y, y[indices]
    return mixed_x, y_a, y_b


def mixup_criterion(criterion, pred, y_a, y_b, l):
    return l * criterion(pred, y_a) + (1 - l) * criterion(pred, y_b)


model = ResNetV2([2, 1], width_factor=1, head_size=num_classes, zero_head=True)
head_zero = model.head.conv.weight.abs().sum().item() + model.head.conv.bias.abs().sum().item()

# --- the check: the weight standardisation against the manual mean / std form
conv = model.body.block1.unit01.conv2
with torch.no_grad():
    w = conv.weight
    v, m = torch.var_mean(w, dim=[1, 2, 3], keepdim=True, unbiased=False)
    w_std = (w - m) / torch.sqrt(v + 1e-10)
    w_manual = (w - w.mean((1, 2, 3), keepdim=True)) / w.std((1, 2, 3), keepdim=True, unbiased=False)
    std_err = (w_std - w_manual).abs().max().item()
    filt_mean = w_std.mean((1, 2, 3)).abs().max().item()
    filt_var = (w_std.var((1, 2, 3), unbiased=False) - 1).abs().max().item()
    probe = torch.randn(2, conv.in_channels, 6, 6)
    conv_err = (conv(probe) - F.conv2d(probe, w_manual, None, 1, 1)).abs().max().item()
print(f"StdConv2d weight {tuple(w.shape)}: manual err {std_err:.2e} mean {filt_mean:.2e} var-1 {filt_var:.2e} "
      f"conv err {conv_err:.2e} head zero {head_zero == 0}")

# The paper hardcodes batch 512 and 0.003 lr: BiT-HyperRule scales lr with batch size.
batch_size = 32
base_lr = 0.003 * batch_size / 512 * 800
optim = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=0.9)
dataset_size = len(x_train)
total = get_schedule(dataset_size)[-1]
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optim, lambda step: (get_lr(step, dataset_size, base_lr) or 0.0) / base_lr)
mixup = 0.2  # toy scale: BiT would use get_mixup(dataset_size) == 0.0 here; we exercise MixUp anyway
mixup_l = np.random.beta(mixup, mixup) if mixup > 0 else 1
cri = torch.nn.CrossEntropyLoss()


def run_eval(model):
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        loss = cri(logits, y_test).item()
        top1 = (logits.argmax(1) == y_test).float().mean().item()
    model.train()
    return loss, top1


loss0, acc0 = run_eval(model)
print(f"before: test loss {loss0:.4f} acc {acc0:.4f}")
step = 0
losses = []
model.train()
while step < total:
    perm = torch.randperm(dataset_size)
    for i in range(0, dataset_size, batch_size):
        if step >= total:
            break
        idx = perm[i:i + batch_size]
        x, y = x_train[idx], y_train[idx]
        if mixup > 0.0:
            x, y_a, y_b = mixup_data(x, y, mixup_l)
        logits = model(x)
        if mixup > 0.0:
            c = mixup_criterion(cri, logits, y_a, y_b, mixup_l)
        else:
            c = cri(logits, y)
        optim.zero_grad()
        c.backward()
        optim.step()
        scheduler.step()
        step += 1
        losses.append(c.item())
        mixup_l = np.random.beta(mixup, mixup) if mixup > 0 else 1
        if step % 20 == 0:
            print(f"[step {step}]: loss={np.mean(losses[-20:]):.5f} (lr={scheduler.get_last_lr()[0]:.1e})")

loss1, acc1 = run_eval(model)
print(f"after: test loss {loss1:.4f} acc {acc1:.4f}")
print(f"FINAL test_acc={acc1:.4f} test_loss={loss1:.4f} train_loss={np.mean(losses[-10:]):.4f} "
      f"loss_drop={loss0 - loss1:.4f} std_err={std_err:.2e} filt_mean={filt_mean:.2e} filt_var={filt_var:.2e} "
      f"conv_err={conv_err:.2e}")
