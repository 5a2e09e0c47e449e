"""Octave Convolution (Chen et al. 2019, "Drop an Octave") in the layout of d-li14/octconv.pytorch
(``octconv.py``: ``OctaveConv``, ``Conv_BN``, ``Conv_BN_ACT``; ``oct_resnet.py``: ``Bottleneck``),
trained on synthetic textures.

A feature map is split by ``alpha`` into a high-frequency part at full resolution and a
low-frequency part at half resolution. ``OctaveConv`` runs four paths, h->h, h->l (average pooled
by ``nn.AvgPool2d(kernel_size=(2, 2), stride=2)`` first), l->h (upsampled by
``nn.Upsample(scale_factor=2, mode='nearest')`` after) and l->l, and sums them per branch; the first
layer has ``alpha_in=0`` (a plain tensor in, a tuple out) and the last ``alpha_out=0`` (a tuple in,
``(x_h, None)`` out). ``Conv_BN_ACT`` keeps one ``BatchNorm2d`` per branch. Tuples flow through
``nn.Sequential`` and a bottleneck whose residual is added per branch in place. A second,
functional ``FirstOctaveConv``/``LastOctaveConv`` pair (the lxtGH/OctaveConv_pytorch flavour) uses
``F.avg_pool2d(x, 2)`` and ``F.interpolate(scale_factor=2, mode='nearest')``.

Checks: ``alpha = 0`` reduces ``OctaveConv`` to a plain ``nn.Conv2d`` with the same weights (output
and weight gradient); ``nn.Upsample`` equals ``F.interpolate`` and ``repeat_interleave``;
``F.avg_pool2d(x, 2)`` equals a ``view`` + ``mean``; the classifier learns the four texture classes.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IMG = 16
NUM_CLASSES = 4


class OctaveConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, alpha_in=0.5, alpha_out=0.5, stride=1, padding=0,
                 dilation=1, groups=1, bias=False):
        super().__init__()
        self.downsample = nn.AvgPool2d(kernel_size=(2, 2), stride=2)
        self.upsample = nn.Upsample(scale_factor=2, mode='nearest')
        assert stride == 1 or stride == 2, "Stride should be 1 or 2."
        self.stride = stride
        self.is_dw = groups == in_channels
        assert 0 <= alpha_in <= 1 and 0 <= alpha_out <= 1, "Alphas should be in the interval from 0 to 1."
        self.alpha_in, self.alpha_out = alpha_in, alpha_out
        self.conv_l2l = None if alpha_in == 0 or alpha_out == 0 else \
            nn.Conv2d(int(alpha_in * in_channels), int(alpha_out * out_channels),
                      kernel_size, 1, padding, dilation, math.ceil(alpha_in * groups), bias)
        self.conv_l2h = None if alpha_in == 0 or alpha_out == 1 or self.is_dw else \
            nn.Conv2d(int(alpha_in * in_channels), out_channels - int(alpha_out * out_channels),
                      kernel_size, 1, padding, dilation, groups, bias)
        self.conv_h2l = None if alpha_in == 1 or alpha_out == 0 or self.is_dw else \
            nn.Conv2d(in_channels - int(alpha_in * in_channels), int(alpha_out * out_channels),
                      kernel_size, 1, padding, dilation, groups, bias)
        self.conv_h2h = None if alpha_in == 1 or alpha_out == 1 else \
            nn.Conv2d(in_channels - int(alpha_in * in_channels), out_channels - int(alpha_out * out_channels),
                      kernel_size, 1, padding, dilation, math.ceil(groups - alpha_in * groups), bias)

    def forward(self, x):
        x_h, x_l = x if type(x) is tuple else (x, None)

        x_h = self.downsample(x_h) if self.stride == 2 else x_h
        x_h2h = self.conv_h2h(x_h)
        x_h2l = self.conv_h2l(self.downsample(x_h)) if self.alpha_out > 0 and not self.is_dw else None
        if x_l is not None:
            x_l2l = self.downsample(x_l) if self.stride == 2 else x_l
            x_l2l = self.conv_l2l(x_l2l) if self.alpha_out > 0 else None
            if self.is_dw:
                return x_h2h, x_l2l
            else:
                x_l2h = self.conv_l2h(x_l)
                x_l2h = self.upsample(x_l2h) if self.stride == 1 else x_l2h
                x_h = x_l2h + x_h2h
                x_l = x_h2l + x_l2l if x_h2l is not None and x_l2l is not None else None
                return x_h, x_l
        else:
            return x_h2h, x_h2l


class Conv_BN(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, alpha_in=0.5, alpha_out=0.5, stride=1, padding=0,
                 dilation=1, groups=1, bias=False, norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.conv = OctaveConv(in_channels, out_channels, kernel_size, alpha_in, alpha_out, stride, padding,
                               dilation, groups, bias)
        self.bn_h = None if alpha_out == 1 else norm_layer(int(out_channels * (1 - alpha_out)))
        self.bn_l = None if alpha_out == 0 else norm_layer(int(out_channels * alpha_out))

    def forward(self, x):
        x_h, x_l = self.conv(x)
        x_h = self.bn_h(x_h)
        x_l = self.bn_l(x_l) if x_l is not None else None
        return x_h, x_l


class Conv_BN_ACT(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, alpha_in=0.5, alpha_out=0.5, stride=1, padding=0,
                 dilation=1, groups=1, bias=False, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU):
        super().__init__()
        self.conv = OctaveConv(in_channels, out_channels, kernel_size, alpha_in, alpha_out, stride, padding,
                               dilation, groups, bias)
        self.bn_h = None if alpha_out == 1 else norm_layer(int(out_channels * (1 - alpha_out)))
        self.bn_l = None if alpha_out == 0 else norm_layer(int(out_channels * alpha_out))
        self.act = activation_layer(inplace=True)

    def forward(self, x):
        x_h, x_l = self.conv(x)
        x_h = self.act(self.bn_h(x_h))
        x_l = self.act(self.bn_l(x_l)) if x_l is not None else None
        return x_h, x_l


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, inplanes, planes, alpha=0.5, norm_layer=nn.BatchNorm2d):
        super().__init__()
        width = planes
        self.conv1 = Conv_BN_ACT(inplanes, width, kernel_size=1, alpha_in=alpha, alpha_out=alpha,
                                 norm_layer=norm_layer)
        self.conv2 = Conv_BN_ACT(width, width, kernel_size=3, padding=1, alpha_in=alpha, alpha_out=alpha,
                                 norm_layer=norm_layer)
        self.conv3 = Conv_BN(width, planes * self.expansion, kernel_size=1, alpha_in=alpha, alpha_out=alpha,
                             norm_layer=norm_layer)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity_h = x[0] if type(x) is tuple else x
        identity_l = x[1] if type(x) is tuple else None

        x_h, x_l = self.conv1(x)
        x_h, x_l = self.conv2((x_h, x_l))
        x_h, x_l = self.conv3((x_h, x_l))

        x_h += identity_h
        x_l = x_l + identity_l if identity_l is not None else None

        x_h = self.relu(x_h)
        x_l = self.relu(x_l) if x_l is not None else None
        return x_h, x_l


class OctSequential(nn.Sequential):
    """An ``nn.Sequential`` that also reports which stages received tuples (for the printout)."""

    def forward(self, x):
        self.tuple_inputs = 0
        for module in self:
            self.tuple_inputs += int(isinstance(x, tuple))
            x = module(x)
        return x


class OctResNetTiny(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES, alpha=0.5, width=16):
        super().__init__()
        self.stem = Conv_BN_ACT(3, width, kernel_size=3, padding=1, alpha_in=0, alpha_out=alpha)
        self.layers = OctSequential(
            Conv_BN_ACT(width, width, kernel_size=3, padding=1, alpha_in=alpha, alpha_out=alpha),
            Bottleneck(width, width // 2, alpha=alpha),
            Conv_BN_ACT(width, 2 * width, kernel_size=3, padding=1, stride=2, alpha_in=alpha, alpha_out=alpha),
        )
        self.last = Conv_BN_ACT(2 * width, 2 * width, kernel_size=3, padding=1, alpha_in=alpha, alpha_out=0)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.stem(x)
        x = self.layers(x)
        x_h, x_l = self.last(x)
        assert x_l is None
        x = self.avgpool(x_h)
        x = torch.flatten(x, 1)
        return self.fc(x)


class FirstOctaveConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, alpha=0.5, padding=1):
        super().__init__()
        self.h2l = nn.Conv2d(in_channels, int(alpha * out_channels), kernel_size, 1, padding)
        self.h2h = nn.Conv2d(in_channels, out_channels - int(alpha * out_channels), kernel_size, 1, padding)

    def forward(self, x):
        X_h2l = F.avg_pool2d(x, 2)
        return self.h2h(x), self.h2l(X_h2l)


class LastOctaveConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, alpha=0.5, padding=1):
        super().__init__()
        self.l2h = nn.Conv2d(int(alpha * in_channels), out_channels, kernel_size, 1, padding)
        self.h2h = nn.Conv2d(in_channels - int(alpha * in_channels), out_channels, kernel_size, 1, padding)

    def forward(self, x):
        X_h, X_l = x
        X_l2h = F.interpolate(self.l2h(X_l), scale_factor=2, mode='nearest')
        return self.h2h(X_h) + X_l2h


def make_textures(n, rng):
    """Coloured gratings: class = (low or high spatial frequency) x (horizontal or vertical stripes)."""
    labels = rng.integers(0, NUM_CLASSES, size=n)
    coords = np.arange(IMG, dtype=np.float64)
    images = np.empty((n, 3, IMG, IMG), dtype=np.float32)
    for i, c in enumerate(labels):
        freq = (1.0 if c < 2 else 4.0) * (1 + 0.2 * rng.standard_normal()) / IMG
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * coords + phase)
        grid = np.tile(wave[:, None], (1, IMG)) if c % 2 == 0 else np.tile(wave[None, :], (IMG, 1))
        gains = rng.uniform(0.5, 1.5, size=(3, 1, 1))
        images[i] = gains * grid + 0.6 * rng.standard_normal((3, IMG, IMG))
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


rng = np.random.default_rng(seed)

# alpha = 0: OctaveConv is a plain Conv2d with the same weights
oct0 = OctaveConv(6, 8, 3, alpha_in=0, alpha_out=0, padding=1, bias=True)
plain = nn.Conv2d(6, 8, 3, padding=1)
plain.load_state_dict({"weight": oct0.conv_h2h.weight.data, "bias": oct0.conv_h2h.bias.data})
print("alpha=0 paths:", [name for name, m in oct0.named_children() if isinstance(m, nn.Conv2d)])
x0 = torch.randn(2, 6, 8, 8)
y_oct, y_none = oct0(x0)
y_plain = plain(x0)
y_oct.square().sum().backward()
y_plain.square().sum().backward()
alpha0_err = max((y_oct - y_plain).abs().max().item(),
                 ((oct0.conv_h2h.weight.grad - plain.weight.grad).abs().max() / plain.weight.grad.abs().max()).item())
print(f"alpha=0 low branch {y_none}, output {tuple(y_oct.shape)} err {alpha0_err:.2e}")

# the resampling idioms agree with each other
z = torch.randn(3, 4, 5, 6, requires_grad=True)
up_module = nn.Upsample(scale_factor=2, mode='nearest')(z)
up_functional = F.interpolate(z, scale_factor=2, mode='nearest')
up_repeat = z.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
zz = torch.randn(3, 4, 10, 12)
down_pool = F.avg_pool2d(zz, 2)
down_view = zz.view(3, 4, 5, 2, 6, 2).mean(dim=(3, 5))
g_up = torch.autograd.grad(up_functional.sin().sum(), z)[0]
g_rep = torch.autograd.grad(up_repeat.sin().sum(), z)[0]
resample_err = max((up_module - up_functional).abs().max().item(), (up_functional - up_repeat).abs().max().item(),
                   (down_pool - down_view).abs().max().item(), (g_up - g_rep).abs().max().item())
print(f"upsample {tuple(up_module.shape)} / avg_pool {tuple(down_pool.shape)} agree: err {resample_err:.2e}")

# a functional first/last octave pair keeps shapes
first, last = FirstOctaveConv(3, 8, 3), LastOctaveConv(8, 4, 3)
h, l = first(torch.randn(2, 3, IMG, IMG))
out = last((h, l))
print(f"first octave conv -> high {tuple(h.shape)} low {tuple(l.shape)}; last -> {tuple(out.shape)}")

model = OctResNetTiny()
n_params = sum(p.numel() for p in model.parameters())
print(f"OctResNetTiny parameters: {n_params}")
with torch.no_grad():
    h_shape = model.stem(torch.zeros(2, 3, IMG, IMG))
print(f"stem branches: high {tuple(h_shape[0].shape)} low {tuple(h_shape[1].shape)}")

train_x, train_y = make_textures(320, rng)
test_x, test_y = make_textures(200, rng)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
criterion = nn.CrossEntropyLoss()


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(test_x)
        loss = criterion(logits, test_y).item()
        acc = (logits.argmax(1) == test_y).float().mean().item()
    model.train()
    return loss, acc


loss_start, acc_start = evaluate()
for epoch in range(5):
    perm = torch.randperm(train_x.size(0))
    total = 0.0
    for i in range(0, train_x.size(0), 32):
        idx = perm[i:i + 32]
        logits = model(train_x[idx])
        loss = criterion(logits, train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.numel()
    scheduler.step()
    print(f"epoch {epoch} train loss {total / train_x.size(0):.4f} lr {scheduler.get_last_lr()[0]:.4f} "
          f"tuple stages {model.layers.tuple_inputs}")

loss_end, acc_end = evaluate()
print(f"test loss {loss_start:.4f} -> {loss_end:.4f}, accuracy {acc_start:.4f} -> {acc_end:.4f}")
print(f"FINAL test_loss={loss_end:.4f} acc={acc_end:.4f} alpha0_err={alpha0_err:.3e} "
      f"resample_err={resample_err:.3e}")
