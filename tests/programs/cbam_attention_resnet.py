"""CBAM (Woo et al. 2018), SE (Hu et al. 2018) and ECA (Wang et al. 2020) attention in a small ResNet,
as Jongchan/attention-module, moskomule/senet.pytorch and BangguWu/ECANet write them.

CBAM's ``ChannelGate`` pools by ``F.avg_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))``
and ``F.max_pool2d`` (and, checked against ``torch.logsumexp`` / a hand-written norm, its ``'lse'``
``logsumexp_2d`` and ``'lp'`` ``F.lp_pool2d`` pools) through a shared ``Flatten`` + MLP, summed and
gated by ``torch.sigmoid(...).unsqueeze(2).unsqueeze(3).expand_as(x)``; the ``SpatialGate`` compresses
by ``torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)`` into a 7x7
``Conv2d`` + ``BatchNorm2d(eps=1e-5, momentum=0.01, affine=True)``. SE squeezes by
``nn.AdaptiveAvgPool2d(1)`` and a bias-free MLP with ``nn.Sigmoid``; ECA's adaptive kernel size
``int(abs((math.log(channel, 2) + b) / gamma))`` feeds ``nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)``
on ``y.squeeze(-1).transpose(-1, -2)``. The ResNet is attention-module's (``conv3x3``, ``BasicBlock`` with
a 1x1 downsample, ``out += residual``, ``nn.ReLU(inplace=True)``) initialised as its ``ResidualNet`` does:
a walk over ``state_dict()`` keys with ``init.kaiming_normal_(..., mode='fan_out')`` and writes
``self.state_dict()[key][...] = 0`` / ``= 1`` (the SpatialGate's BatchNorm weight zeroed).

The task needs *where*: each image holds two striped patches of different orientations, one of them
marked by a red frame, and the label is the marked patch's orientation. The four variants (none, SE,
ECA, CBAM) are trained alike with SGD + momentum + weight decay and ``MultiStepLR``, evaluated under
``torch.no_grad()``; the spatial attention map of CBAM is read back by a forward hook.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
torch.backends.cudnn.benchmark = True


# --- attention-module: CBAM ---
class BasicConv(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, stride=1, padding=0, dilation=1, groups=1, relu=True,
                 bn=True, bias=False):
        super(BasicConv, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.out_channels = out_planes
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding,
                              dilation=dilation, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True) if bn else None
        self.relu = nn.ReLU() if relu else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


def logsumexp_2d(tensor):
    tensor_flatten = tensor.view(tensor.size(0), tensor.size(1), -1)
    s, _ = torch.max(tensor_flatten, dim=2, keepdim=True)
    outputs = s + (tensor_flatten - s).exp().sum(dim=2, keepdim=True).log()
    return outputs


class ChannelGate(nn.Module):
    def __init__(self, gate_channels, reduction_ratio=16, pool_types=["avg", "max"]):  # noqa: B006 (the repo's default)
        super(ChannelGate, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.gate_channels = gate_channels
        self.mlp = nn.Sequential(
            Flatten(),
            nn.Linear(gate_channels, gate_channels // reduction_ratio),
            nn.ReLU(),
            nn.Linear(gate_channels // reduction_ratio, gate_channels),
        )
        self.pool_types = pool_types

    def forward(self, x):
        channel_att_sum = None
        for pool_type in self.pool_types:
            if pool_type == "avg":
                avg_pool = F.avg_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
                channel_att_raw = self.mlp(avg_pool)
            elif pool_type == "max":
                max_pool = F.max_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
                channel_att_raw = self.mlp(max_pool)
            elif pool_type == "lp":
                lp_pool = F.lp_pool2d(x, 2, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
                channel_att_raw = self.mlp(lp_pool)
            elif pool_type == "lse":
                # LSE pool only
                lse_pool = logsumexp_2d(x)
                channel_att_raw = self.mlp(lse_pool)

            if channel_att_sum is None:
                channel_att_sum = channel_att_raw
            else:
                channel_att_sum = channel_att_sum + channel_att_raw

        scale = torch.sigmoid(channel_att_sum).unsqueeze(2).unsqueeze(3).expand_as(x)
        return x * scale


class ChannelPool(nn.Module):
    def forward(self, x):
        return torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)


class SpatialGate(nn.Module):
    def __init__(self):
        super(SpatialGate, self).__init__()  # noqa: UP008 (the repo's spelling)
        kernel_size = 7
        self.compress = ChannelPool()
        self.spatial = BasicConv(2, 1, kernel_size, stride=1, padding=(kernel_size - 1) // 2, relu=False)

    def forward(self, x):
        x_compress = self.compress(x)
        x_out = self.spatial(x_compress)
        scale = torch.sigmoid(x_out)  # broadcasting
        return x * scale


class CBAM(nn.Module):
    def __init__(self, gate_channels, reduction_ratio=16, pool_types=["avg", "max"], no_spatial=False):  # noqa: B006 (the repo's default)
        super(CBAM, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.ChannelGate = ChannelGate(gate_channels, reduction_ratio, pool_types)
        self.no_spatial = no_spatial
        if not no_spatial:
            self.SpatialGate = SpatialGate()

    def forward(self, x):
        x_out = self.ChannelGate(x)
        if not self.no_spatial:
            x_out = self.SpatialGate(x_out)
        return x_out


# --- senet.pytorch: SE ---
class SELayer(nn.Module):
    def __init__(self, channel, reduction=16):
        super(SELayer, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


# --- ECANet: ECA ---
class eca_layer(nn.Module):
    """Constructs a ECA module.

    Args:
        channel: Number of channels of the input feature map
        k_size: Adaptive selection of kernel size
    """

    def __init__(self, channel, k_size=3):
        super(eca_layer, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k_size, padding=(k_size - 1) // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        # feature descriptor on the global spatial information
        y = self.avg_pool(x)

        # Two different branches of ECA module
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)

        # Multi-scale information fusion
        y = self.sigmoid(y)

        return x * y.expand_as(x)


def eca_kernel_size(channel, gamma=2, b=1):
    t = int(abs((math.log(channel, 2) + b) / gamma))
    return t if t % 2 else t + 1


# --- attention-module's ResNet ---
def conv3x3(in_planes, out_planes, stride=1):
    "3x3 convolution with padding"
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, att_type=None):
        super(BasicBlock, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
        if att_type == "CBAM":
            self.att = CBAM(planes, 4)
        elif att_type == "SE":
            self.att = SELayer(planes, 4)
        elif att_type == "ECA":
            self.att = eca_layer(planes, eca_kernel_size(planes))
        else:
            self.att = None

    def forward(self, x):
        residual = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)

        if self.downsample is not None:
            residual = self.downsample(x)

        if self.att is not None:
            out = self.att(out)

        out += residual
        out = self.relu(out)

        return out


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes, att_type=None):
        self.inplanes = 16
        super(ResNet, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 16, layers[0], att_type=att_type)
        self.layer2 = self._make_layer(block, 32, layers[1], stride=2, att_type=att_type)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32 * block.expansion, num_classes)

        init.kaiming_normal_(self.fc.weight)
        for key in self.state_dict():
            if key.split(".")[-1] == "weight":
                if "conv" in key:
                    init.kaiming_normal_(self.state_dict()[key], mode="fan_out")
                if "bn" in key:
                    if "SpatialGate" in key:
                        self.state_dict()[key][...] = 0
                    else:
                        self.state_dict()[key][...] = 1
            elif key.split(".")[-1] == "bias":
                self.state_dict()[key][...] = 0

    def _make_layer(self, block, planes, blocks, stride=1, att_type=None):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )

        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample, att_type=att_type))
        self.inplanes = planes * block.expansion
        for i in range(1, blocks):  # noqa: B007 (the repo's loop)
            layers.append(block(self.inplanes, planes, att_type=att_type))

        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


# --- the pooling identities the gates rely on ---
x = torch.randn(4, 8, 6, 5)
avg = F.avg_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
mx = F.max_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
lp = F.lp_pool2d(x, 2, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
# two summation orders: equal to rounding, so compared with an absolute tolerance for means near zero
print(f"global avg_pool2d {tuple(avg.shape)} == AdaptiveAvgPool2d(1) {torch.allclose(avg, nn.AdaptiveAvgPool2d(1)(x), atol=1e-6)} "
      f"== mean {torch.allclose(avg, x.mean((2, 3), keepdim=True), atol=1e-6)}")
print(f"global max_pool2d == amax {torch.equal(mx, x.amax(dim=(2, 3), keepdim=True))}, "
      f"lp_pool2d(p=2) == L2 norm {torch.allclose(lp, x.pow(2).sum((2, 3), keepdim=True).sqrt(), atol=1e-5)}, "
      f"logsumexp_2d == torch.logsumexp {torch.allclose(logsumexp_2d(x), torch.logsumexp(x.flatten(2), 2, keepdim=True))}")
pooled = ChannelPool()(x)
print(f"ChannelPool {tuple(pooled.shape)}: max {torch.equal(pooled[:, 0], x.max(dim=1).values)} "
      f"mean {torch.allclose(pooled[:, 1], x.mean(dim=1))}")
all_pools = ChannelGate(8, 2, pool_types=["avg", "max", "lp", "lse"])
print(f"ChannelGate with all four pools keeps the shape {tuple(all_pools(x).shape)}")
eca = eca_layer(8, 3)
y = eca.avg_pool(x)
by_conv1d = F.conv1d(y.view(4, 1, 8), eca.conv.weight, padding=1).view(4, 8, 1, 1)
print(f"ECA kernel sizes {[eca_kernel_size(c) for c in (16, 32, 64, 256, 512)]}, "
      f"conv over channels == F.conv1d {torch.allclose(torch.sigmoid(by_conv1d).expand_as(x) * x, eca(x))}")


# --- the task: the orientation of the patch in a red frame, beside a distractor ---
IMG, PATCH = 16, 5


def make_images(n):
    images = rng.normal(0.0, 0.25, size=(n, 3, IMG, IMG)).astype(np.float32)
    labels = rng.integers(0, 4, size=n)
    yy, xx = np.mgrid[0:PATCH, 0:PATCH]
    patterns = [np.sin(yy * 2.0), np.sin(xx * 2.0), np.sin((xx + yy) * 1.5), np.sin((xx - yy) * 1.5)]
    for i in range(n):
        distractor = (labels[i] + rng.integers(1, 4)) % 4
        cells = rng.permutation(4)[:2]  # two of the four quadrants
        for cell, pattern, marked in ((cells[0], labels[i], True), (cells[1], distractor, False)):
            top = (cell // 2) * 8 + rng.integers(1, 8 - PATCH)
            left = (cell % 2) * 8 + rng.integers(1, 8 - PATCH)
            images[i, 1:, top:top + PATCH, left:left + PATCH] += patterns[pattern]
            if marked:
                images[i, 0, top - 1:top + PATCH + 1, left - 1:left + PATCH + 1] += 1.5
                images[i, 0, top:top + PATCH, left:left + PATCH] -= 1.5
    return torch.from_numpy(images), torch.from_numpy(labels)


train_x, train_y = make_images(320)
test_x, test_y = make_images(400)
print(f"train {tuple(train_x.shape)} test {tuple(test_x.shape)} labels {torch.bincount(train_y, minlength=4).tolist()}")


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    correct = 0
    for start in range(0, len(x), 100):
        output = model(x[start:start + 100])
        pred = output.argmax(dim=1, keepdim=True)
        correct += pred.eq(y[start:start + 100].view_as(pred)).sum().item()
    return 100.0 * correct / len(x)


EPOCHS, BATCH = 5, 32
results, sizes = {}, {}
for att_type in [None, "SE", "ECA", "CBAM"]:
    name = att_type or "none"
    torch.manual_seed(seed + 1)
    model = ResNet(BasicBlock, [1, 1], num_classes=4, att_type=att_type)
    sizes[name] = sum(p.numel() for p in model.parameters())
    zeroed = [k for k, v in model.state_dict().items() if k.endswith("bn.weight") and bool((v == 0).all())]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[4], gamma=0.1)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(train_x))
        total = 0.0
        for start in range(0, len(train_x), BATCH):
            idx = perm[start:start + BATCH]
            loss = criterion(model(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        if epoch % 5 == 4:
            print(f"[{name}] epoch {epoch + 1} loss {total / len(train_x):.4f} lr {scheduler.get_last_lr()[0]:.4f}")
    results[name] = evaluate(model, test_x, test_y)
    print(f"[{name}] parameters {sizes[name]} zeroed SpatialGate bn weights {len(zeroed)} "
          f"test acc {results[name]:.2f}")
    if att_type == "CBAM":
        maps = []
        gate = model.layer1[0].att.SpatialGate
        handle = gate.spatial.register_forward_hook(lambda m, inp, out: maps.append(torch.sigmoid(out)))  # noqa: B023
        with torch.no_grad():
            sample_x = test_x[:50]
            model(sample_x)
        handle.remove()
        attention = maps[0].squeeze(1)
        frame = (sample_x[:, 0] > 0.75).float()
        on_frame = (attention * frame).sum() / frame.sum()
        elsewhere = (attention * (1 - frame)).sum() / (1 - frame).sum()
        frame_contrast = (on_frame - elsewhere).item()
        print(f"[CBAM] spatial map {tuple(maps[0].shape)} in [0, 1] {bool((attention >= 0).all() and (attention <= 1).all())}, "
              f"mean on the red frame {on_frame.item():.3f} elsewhere {elsewhere.item():.3f}")

print(f"attention parameters over the plain ResNet: SE {sizes['SE'] - sizes['none']} "
      f"ECA {sizes['ECA'] - sizes['none']} CBAM {sizes['CBAM'] - sizes['none']}")
print("FINAL " + " ".join(f"{name}={acc:.2f}" for name, acc in results.items()) + f" frame_contrast={frame_contrast:.4f}")
