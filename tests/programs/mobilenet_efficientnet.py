"""MobileNetV2/V3 and EfficientNet blocks as torchvision writes them (without torchvision), on 16x16 shapes.

``_make_divisible``, ``Conv2dNormActivation`` as a ``nn.Sequential`` subclass, MobileNetV2's
``InvertedResidual`` (expand 1x1, depthwise ``groups=hidden_dim``, linear projection, ``nn.ReLU6(
inplace=True)``, the ``use_res_connect`` shortcut), MobileNetV3's block with ``nn.Hardswish`` and a
``SqueezeExcitation`` gated by ``nn.Hardsigmoid`` (``F.adaptive_avg_pool2d(input, 1)``, ``scale * input``),
EfficientNet's ``MBConv`` with ``nn.SiLU`` and ``StochasticDepth`` in "row" mode (``torch.empty(size,
dtype=input.dtype, device=input.device).bernoulli_(survival_rate)`` then ``noise.div_(survival_rate)``),
torchvision's init loop (``kaiming_normal_(m.weight, mode="fan_out")``, ``ones_``/``zeros_`` for norms,
``normal_(m.weight, 0, 0.01)`` for Linear), ``RMSprop(alpha=0.9, eps=0.0316, momentum=0.9)`` with
``ExponentialLR``, an EMA of the weights by ``AveragedModel`` with ``get_ema_multi_avg_fn``,
``CrossEntropyLoss(label_smoothing=0.1)``. The data: 16x16 images of four stripe/blob shapes with noise.
"""

import math
import os
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_CLASSES, SIZE = 4, 16


def make_data(n):
    labels = rng.integers(0, N_CLASSES, size=n)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    freq = rng.uniform(2.5, 3.5, size=(n, 1, 1))
    patterns = [np.sin(2 * np.pi * freq * xx + phase), np.sin(2 * np.pi * freq * yy + phase),
                np.sin(2 * np.pi * freq * (xx + yy) / 1.4 + phase),
                np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * freq * 6) * 2 - 1]
    images = np.stack([patterns[c][i] for i, c in enumerate(labels)])
    images = np.stack([images, images * 0.5, -images], axis=1) + rng.normal(scale=0.6, size=(n, 3, SIZE, SIZE))
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


def _make_divisible(v, divisor, min_value=None):
    """Ensures that all layers have a channel number that is divisible by 8 (from the original TensorFlow repo)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    # Make sure that round down does not go down by more than 10%.
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(torch.nn.Sequential):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=torch.nn.BatchNorm2d, activation_layer=torch.nn.ReLU, dilation=1, inplace=True,
                 bias=None):
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers = [torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation,
                                  groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            params = {} if inplace is None else {"inplace": inplace}
            layers.append(activation_layer(**params))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(torch.nn.Module):
    def __init__(self, input_channels, squeeze_channels, activation=torch.nn.ReLU,
                 scale_activation=torch.nn.Sigmoid):
        super().__init__()
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc1 = torch.nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = torch.nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input: Tensor) -> Tensor:
        scale = F.adaptive_avg_pool2d(input, 1)
        scale = self.fc1(scale)
        scale = self.activation(scale)
        scale = self.fc2(scale)
        return self.scale_activation(scale)

    def forward(self, input: Tensor) -> Tensor:
        scale = self._scale(input)
        return scale * input


def stochastic_depth(input: Tensor, p: float, mode: str, training: bool = True) -> Tensor:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
    if mode not in ["batch", "row"]:
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
    if not training or p == 0.0:
        return input

    survival_rate = 1.0 - p
    if mode == "row":
        size = [input.shape[0]] + [1] * (input.ndim - 1)
    else:
        size = [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device)
    noise = noise.bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


class StochasticDepth(nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)

    def __repr__(self) -> str:
        s = f"{self.__class__.__name__}(p={self.p}, mode={self.mode})"
        return s


class InvertedResidual(nn.Module):
    """MobileNetV2's block."""

    def __init__(self, inp, oup, stride, expand_ratio, norm_layer=None):
        super().__init__()
        self.stride = stride
        if stride not in [1, 2]:
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d

        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup

        layers = []
        if expand_ratio != 1:
            # pw
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.ReLU6))
        layers.extend(
            [
                # dw
                Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim,
                                     norm_layer=norm_layer, activation_layer=nn.ReLU6),
                # pw-linear
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                norm_layer(oup),
            ]
        )
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        else:
            return self.conv(x)


class InvertedResidualV3(nn.Module):
    """MobileNetV3's block: optional SE gated by Hardsigmoid, Hardswish or ReLU."""

    def __init__(self, input_channels, kernel, expanded_channels, out_channels, use_se, use_hs, stride,
                 norm_layer=partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)):
        super().__init__()
        self.use_res_connect = stride == 1 and input_channels == out_channels
        se_layer = partial(SqueezeExcitation, scale_activation=nn.Hardsigmoid)
        layers = []
        activation_layer = nn.Hardswish if use_hs else nn.ReLU

        if expanded_channels != input_channels:
            layers.append(Conv2dNormActivation(input_channels, expanded_channels, kernel_size=1,
                                               norm_layer=norm_layer, activation_layer=activation_layer))
        layers.append(Conv2dNormActivation(expanded_channels, expanded_channels, kernel_size=kernel, stride=stride,
                                           groups=expanded_channels, norm_layer=norm_layer,
                                           activation_layer=activation_layer))
        if use_se:
            squeeze_channels = _make_divisible(expanded_channels // 4, 8)
            layers.append(se_layer(expanded_channels, squeeze_channels))
        layers.append(Conv2dNormActivation(expanded_channels, out_channels, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, input: Tensor) -> Tensor:
        result = self.block(input)
        if self.use_res_connect:
            result += input
        return result


class MBConv(nn.Module):
    """EfficientNet's block: SiLU, SE by SiLU + Sigmoid, stochastic depth on the residual branch."""

    def __init__(self, input_channels, out_channels, kernel, stride, expand_ratio, stochastic_depth_prob,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.use_res_connect = stride == 1 and input_channels == out_channels
        layers = []
        activation_layer = nn.SiLU
        expanded_channels = _make_divisible(input_channels * expand_ratio, 8)
        if expanded_channels != input_channels:
            layers.append(Conv2dNormActivation(input_channels, expanded_channels, kernel_size=1,
                                               norm_layer=norm_layer, activation_layer=activation_layer))
        layers.append(Conv2dNormActivation(expanded_channels, expanded_channels, kernel_size=kernel, stride=stride,
                                           groups=expanded_channels, norm_layer=norm_layer,
                                           activation_layer=activation_layer))
        squeeze_channels = max(1, input_channels // 4)
        layers.append(SqueezeExcitation(expanded_channels, squeeze_channels, activation=partial(nn.SiLU, inplace=True)))
        layers.append(Conv2dNormActivation(expanded_channels, out_channels, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = out_channels

    def forward(self, input: Tensor) -> Tensor:
        result = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += input
        return result


class TinyNet(nn.Module):
    def __init__(self, width_mult=1.0, num_classes=N_CLASSES, dropout=0.2):
        super().__init__()
        first = _make_divisible(16 * width_mult, 8)
        self.features = nn.Sequential(
            Conv2dNormActivation(3, first, stride=2, activation_layer=nn.Hardswish),
            InvertedResidual(first, first, 1, expand_ratio=1),
            InvertedResidual(first, 24, 1, expand_ratio=4),
            InvertedResidualV3(24, 3, 72, 24, use_se=True, use_hs=True, stride=1),
            InvertedResidualV3(24, 5, 72, 32, use_se=True, use_hs=False, stride=2),
            MBConv(32, 32, 3, 1, expand_ratio=4, stochastic_depth_prob=0.2),
            MBConv(32, 32, 3, 1, expand_ratio=4, stochastic_depth_prob=0.2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(32, 64), nn.Hardswish(inplace=True), nn.Dropout(p=dropout, inplace=True),
            nn.Linear(64, num_classes),
        )

        # weight initialization
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


print(f"_make_divisible: {[_make_divisible(v, 8) for v in (3, 12, 16 * 0.75, 72 // 4, 37.5, 100)]}")
survivors = stochastic_depth(torch.ones(1000, 2, 1, 1), 0.2, "row")
print(f"stochastic depth row mode: kept {int((survivors[:, 0, 0, 0] > 0).sum())} of 1000, "
      f"value {survivors.max().item():.4f}, rows whole {bool((survivors[:, 0] == survivors[:, 1]).all())}")

train_x, train_y = make_data(384)
test_x, test_y = make_data(128)
model = TinyNet()
print(f"parameters {sum(p.numel() for p in model.parameters())}, depthwise groups "
      f"{[m.groups for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]}, {model.features[5].stochastic_depth}")

optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9, eps=0.0316, momentum=0.9, weight_decay=1e-5)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9),
                                          use_buffers=True)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


def evaluate(net):
    net.eval()
    with torch.no_grad():
        logits = net(test_x)
        loss = F.cross_entropy(logits, test_y).item()
        acc = (logits.argmax(1) == test_y).float().mean().item()
    net.train()
    return loss, acc


EPOCHS, BATCH = 6, 32
for epoch in range(1, EPOCHS + 1):
    model.train()
    perm = torch.randperm(len(train_y))
    total = 0.0
    for i in range(0, len(perm), BATCH):
        index = perm[i:i + BATCH]
        output = model(train_x[index])
        loss = criterion(output, train_y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update_parameters(model)
        total += loss.item() * len(index)
    scheduler.step()
    if epoch % 2 == 0:
        test_loss, test_acc = evaluate(model)
        print(f"epoch {epoch}: train loss {total / len(train_y):.4f} test loss {test_loss:.4f} acc {test_acc:.4f} "
              f"lr {scheduler.get_last_lr()[0]:.6f}")

test_loss, test_acc = evaluate(model)
ema_loss, ema_acc = evaluate(ema.module)
print(f"EMA model: test loss {ema_loss:.4f} acc {ema_acc:.4f} after {int(ema.n_averaged)} updates")
lr_final = scheduler.get_last_lr()[0]
print(f"FINAL test_loss={test_loss:.4f} test_acc={test_acc:.4f} ema_loss={ema_loss:.4f} ema_acc={ema_acc:.4f} "
      f"lr={lr_final * 1000:.4f}")
assert math.isclose(lr_final, 0.01 * 0.9 ** EPOCHS, rel_tol=1e-6)
