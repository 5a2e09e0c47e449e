"""ResNeSt split attention (zhanghang1989/ResNeSt ``splat.py``/``resnet.py``, timm's ``SplitAttn``) on textures.

Images are 3x30x30 oriented sinusoidal gratings (four orientations = four classes) with random
frequency, phase, contrast and noise. The network keeps the reference's structure at toy width: a deep
stem (three 3x3 conv-BN-ReLU, the first strided), two ``Bottleneck`` stages whose 3x3 conv is the
repo's ``SplAtConv2d`` (a grouped conv with ``groups=groups * radix`` producing ``channels * radix``,
``torch.split(x, rchannel // self.radix, dim=1)`` into radix branches, ``sum(splited)``,
``F.adaptive_avg_pool2d(gap, 1)``, grouped 1x1 ``fc1`` + BN + ReLU, ``fc2``, ``rSoftMax``
(``x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)``, ``F.softmax(x, dim=1)``,
``torch.sigmoid`` when radix is 1) and ``sum([att * split for ...])``), ``avd`` by
``nn.AvgPool2d(3, stride, padding=1)``, the ``avg_down`` shortcut ``nn.AvgPool2d(kernel_size=stride,
stride=stride, ceil_mode=True, count_include_pad=False)`` + 1x1 conv + BN on an odd (15x15) map,
``last_gamma`` by ``zeros_(self.bn3.weight)``, in-place ``out += residual``, and timm's
``DropBlock2d`` (fast path: ``gamma`` from the block and feature sizes, ``torch.rand_like(x) < gamma``,
``F.max_pool2d(kernel_size=block_size, stride=1, padding=block_size // 2)``, rescaled by
``numel / (block_mask.sum() + 1e-6)``, the identity when ``not self.training``). Trained with SGD +
Nesterov momentum, ``CosineAnnealingLR`` and ``CrossEntropyLoss(label_smoothing=0.1)``.

Checked: rSoftMax weights sum to 1 over the radix (and radix 1 is the sigmoid); timm's reshape-based
``SplitAttn`` with the same weights gives ``SplAtConv2d``'s output and input gradient; every element a
DropBlock drops lies in a fully dropped ``block_size`` square (a morphological opening of the dropped set
returns it) while the kept mean is rescaled to the input's; eval-mode DropBlock returns its input;
held-out accuracy rising from chance.
"""

# ruff: noqa: UP008  (the reference's own spelling: super(Class, self))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

CLASSES = 4
SIZE = 30


def make_textures(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    images = np.zeros((n, 3, SIZE, SIZE), dtype=np.float32)
    labels = rng.randint(0, CLASSES, size=n)
    for i in range(n):
        angle = labels[i] * np.pi / CLASSES + rng.uniform(-0.15, 0.15)
        freq = rng.uniform(0.6, 1.2)
        wave = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 2 * np.pi))
        colour = rng.uniform(0.3, 1.0, size=3)
        images[i] = colour[:, None, None] * wave + 1.0 * rng.randn(3, SIZE, SIZE)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


# ---------------------------------------------------------------------------------------- timm DropBlock
def drop_block_2d(
        x, drop_prob: float = 0.1, block_size: int = 7, gamma_scale: float = 1.0,
        inplace: bool = False, batchwise: bool = False):
    """DropBlock. See https://arxiv.org/pdf/1810.12890.pdf (timm's exact path: blocks kept inside the map)."""
    B, C, H, W = x.shape
    total_size = W * H
    clipped_block_size = min(block_size, min(W, H))
    # seed_drop_rate, the gamma parameter
    gamma = gamma_scale * drop_prob * total_size / clipped_block_size ** 2 / (
        (W - block_size + 1) * (H - block_size + 1))

    # Forces the block to be inside the feature map.
    w_i, h_i = torch.meshgrid(torch.arange(W).to(x.device), torch.arange(H).to(x.device))
    valid_block = ((w_i >= clipped_block_size // 2) & (w_i < W - (clipped_block_size - 1) // 2)) & \
                  ((h_i >= clipped_block_size // 2) & (h_i < H - (clipped_block_size - 1) // 2))
    valid_block = torch.reshape(valid_block, (1, 1, H, W)).to(dtype=x.dtype)

    if batchwise:
        # one mask for whole batch, quite a bit faster
        uniform_noise = torch.rand((1, C, H, W), dtype=x.dtype, device=x.device)
    else:
        uniform_noise = torch.rand_like(x)
    block_mask = ((2 - gamma - valid_block + uniform_noise) >= 1).to(dtype=x.dtype)
    block_mask = -F.max_pool2d(
        -block_mask,
        kernel_size=clipped_block_size,  # block_size,
        stride=1,
        padding=clipped_block_size // 2)

    normalize_scale = (block_mask.numel() / block_mask.to(dtype=torch.float32).sum().add(1e-7)).to(x.dtype)
    if inplace:
        x.mul_(block_mask * normalize_scale)
    else:
        x = x * block_mask * normalize_scale
    return x


def drop_block_fast_2d(x, drop_prob=0.1, block_size=7, gamma_scale=1.0, inplace=False):
    """DropBlock. See https://arxiv.org/pdf/1810.12890.pdf (timm's fast path, no valid-block mask)."""
    B, C, H, W = x.shape
    total_size = W * H
    clipped_block_size = min(block_size, min(W, H))
    gamma = gamma_scale * drop_prob * total_size / clipped_block_size ** 2 / (
        (W - block_size + 1) * (H - block_size + 1))

    block_mask = (torch.rand_like(x) < gamma).to(x.dtype)
    block_mask = F.max_pool2d(
        block_mask, kernel_size=clipped_block_size, stride=1, padding=clipped_block_size // 2)

    block_mask = 1 - block_mask
    normalize_scale = (block_mask.numel() / block_mask.to(dtype=torch.float32).sum().add(1e-6)).to(dtype=x.dtype)
    if inplace:
        x.mul_(block_mask * normalize_scale)
    else:
        x = x * block_mask * normalize_scale
    return x


class DropBlock2d(nn.Module):
    """DropBlock. See https://arxiv.org/pdf/1810.12890.pdf"""

    def __init__(self, drop_prob=0.1, block_size=7, gamma_scale=1.0, inplace=False, batchwise=False, fast=True):
        super(DropBlock2d, self).__init__()
        self.drop_prob = drop_prob
        self.gamma_scale = gamma_scale
        self.block_size = block_size
        self.inplace = inplace
        self.batchwise = batchwise
        self.fast = fast

    def forward(self, x):
        if not self.training or not self.drop_prob:
            return x
        if self.fast:
            return drop_block_fast_2d(x, self.drop_prob, self.block_size, self.gamma_scale, self.inplace)
        else:
            return drop_block_2d(x, self.drop_prob, self.block_size, self.gamma_scale, self.inplace, self.batchwise)


# ---------------------------------------------------------------------------------------- ResNeSt splat.py
class rSoftMax(nn.Module):
    def __init__(self, radix, cardinality):
        super().__init__()
        self.radix = radix
        self.cardinality = cardinality

    def forward(self, x):
        batch = x.size(0)
        if self.radix > 1:
            x = x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
            x = F.softmax(x, dim=1)
            x = x.reshape(batch, -1)
        else:
            x = torch.sigmoid(x)
        return x


class SplAtConv2d(nn.Module):
    """Split-Attention Conv2d"""

    def __init__(self, in_channels, channels, kernel_size, stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), groups=1, bias=True, radix=2, reduction_factor=4,
                 norm_layer=None, dropblock_prob=0.0, **kwargs):
        super(SplAtConv2d, self).__init__()
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        self.radix = radix
        self.cardinality = groups
        self.channels = channels
        self.dropblock_prob = dropblock_prob
        self.conv = nn.Conv2d(in_channels, channels * radix, kernel_size, stride, padding, dilation,
                              groups=groups * radix, bias=bias, **kwargs)
        self.use_bn = norm_layer is not None
        if self.use_bn:
            self.bn0 = norm_layer(channels * radix)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter_channels, 1, groups=self.cardinality)
        if self.use_bn:
            self.bn1 = norm_layer(inter_channels)
        self.fc2 = nn.Conv2d(inter_channels, channels * radix, 1, groups=self.cardinality)
        if dropblock_prob > 0.0:
            self.dropblock = DropBlock2d(dropblock_prob, 3)
        self.rsoftmax = rSoftMax(radix, groups)

    def forward(self, x):
        x = self.conv(x)
        if self.use_bn:
            x = self.bn0(x)
        if self.dropblock_prob > 0.0:
            x = self.dropblock(x)
        x = self.relu(x)

        batch, rchannel = x.shape[:2]
        if self.radix > 1:
            if torch.__version__ < '1.5':
                splited = torch.split(x, int(rchannel // self.radix), dim=1)
            else:
                splited = torch.split(x, rchannel // self.radix, dim=1)
            gap = sum(splited)
        else:
            gap = x
        gap = F.adaptive_avg_pool2d(gap, 1)
        gap = self.fc1(gap)

        if self.use_bn:
            gap = self.bn1(gap)
        gap = self.relu(gap)

        atten = self.fc2(gap)
        atten = self.rsoftmax(atten).view(batch, -1, 1, 1)

        if self.radix > 1:
            if torch.__version__ < '1.5':
                attens = torch.split(atten, int(rchannel // self.radix), dim=1)
            else:
                attens = torch.split(atten, rchannel // self.radix, dim=1)
            out = sum([att * split for (att, split) in zip(attens, splited)])
        else:
            out = atten * x
        return out.contiguous()


# ---------------------------------------------------------------------------------------- timm split_attn.py
def make_divisible(v, divisor=8, min_value=None, round_limit=.9):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class RadixSoftmax(nn.Module):
    def __init__(self, radix, cardinality):
        super(RadixSoftmax, self).__init__()
        self.radix = radix
        self.cardinality = cardinality

    def forward(self, x):
        batch = x.size(0)
        if self.radix > 1:
            x = x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
            x = F.softmax(x, dim=1)
            x = x.reshape(batch, -1)
        else:
            x = torch.sigmoid(x)
        return x


class SplitAttn(nn.Module):
    """Split-Attention (aka Splat)"""

    def __init__(self, in_channels, out_channels=None, kernel_size=3, stride=1, padding=None,
                 dilation=1, groups=1, bias=False, radix=2, rd_ratio=0.25, rd_channels=None, rd_divisor=8,
                 act_layer=nn.ReLU, norm_layer=None, drop_layer=None, **kwargs):
        super(SplitAttn, self).__init__()
        out_channels = out_channels or in_channels
        self.radix = radix
        mid_chs = out_channels * radix
        if rd_channels is None:
            attn_chs = make_divisible(in_channels * radix * rd_ratio, min_value=32, divisor=rd_divisor)
        else:
            attn_chs = rd_channels * radix

        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(
            in_channels, mid_chs, kernel_size, stride, padding, dilation,
            groups=groups * radix, bias=bias, **kwargs)
        self.bn0 = norm_layer(mid_chs) if norm_layer else nn.Identity()
        self.drop = drop_layer() if drop_layer is not None else nn.Identity()
        self.act0 = act_layer(inplace=True)
        self.fc1 = nn.Conv2d(out_channels, attn_chs, 1, groups=groups)
        self.bn1 = norm_layer(attn_chs) if norm_layer else nn.Identity()
        self.act1 = act_layer(inplace=True)
        self.fc2 = nn.Conv2d(attn_chs, mid_chs, 1, groups=groups)
        self.rsoftmax = RadixSoftmax(radix, groups)

    def forward(self, x):
        x = self.conv(x)
        x = self.bn0(x)
        x = self.drop(x)
        x = self.act0(x)

        B, RC, H, W = x.shape
        if self.radix > 1:
            x = x.reshape((B, self.radix, RC // self.radix, H, W))
            x_gap = x.sum(dim=1)
        else:
            x_gap = x
        x_gap = x_gap.mean((2, 3), keepdim=True)
        x_gap = self.fc1(x_gap)
        x_gap = self.bn1(x_gap)
        x_gap = self.act1(x_gap)
        x_attn = self.fc2(x_gap)

        x_attn = self.rsoftmax(x_attn).view(B, -1, 1, 1)
        if self.radix > 1:
            out = (x * x_attn.reshape((B, self.radix, RC // self.radix, 1, 1))).sum(dim=1)
        else:
            out = x * x_attn
        return out.contiguous()


# ---------------------------------------------------------------------------------------- ResNeSt resnet.py
class Bottleneck(nn.Module):
    """ResNet Bottleneck"""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, radix=1, cardinality=1,
                 bottleneck_width=64, avd=False, avd_first=False, dilation=1, is_first=False,
                 norm_layer=None, dropblock_prob=0.0, last_gamma=False):
        super(Bottleneck, self).__init__()
        group_width = int(planes * (bottleneck_width / 64.)) * cardinality
        self.conv1 = nn.Conv2d(inplanes, group_width, kernel_size=1, bias=False)
        self.bn1 = norm_layer(group_width)
        self.dropblock_prob = dropblock_prob
        self.radix = radix
        self.avd = avd and (stride > 1 or is_first)
        self.avd_first = avd_first

        if self.avd:
            self.avd_layer = nn.AvgPool2d(3, stride, padding=1)
            stride = 1

        if dropblock_prob > 0.0:
            self.dropblock1 = DropBlock2d(dropblock_prob, 3)
            self.dropblock3 = DropBlock2d(dropblock_prob, 3)

        self.conv2 = SplAtConv2d(
            group_width, group_width, kernel_size=3,
            stride=stride, padding=dilation,
            dilation=dilation, groups=cardinality, bias=False,
            radix=radix, norm_layer=norm_layer,
            dropblock_prob=dropblock_prob)

        self.conv3 = nn.Conv2d(group_width, planes * 4, kernel_size=1, bias=False)
        self.bn3 = norm_layer(planes * 4)

        if last_gamma:
            from torch.nn.init import zeros_
            zeros_(self.bn3.weight)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.dilation = dilation
        self.stride = stride

    def forward(self, x):
        residual = x

        out = self.conv1(x)
        out = self.bn1(out)
        if self.dropblock_prob > 0.0:
            out = self.dropblock1(out)
        out = self.relu(out)

        if self.avd and self.avd_first:
            out = self.avd_layer(out)

        out = self.conv2(out)

        if self.avd and not self.avd_first:
            out = self.avd_layer(out)

        out = self.conv3(out)
        out = self.bn3(out)
        if self.dropblock_prob > 0.0:
            out = self.dropblock3(out)

        if self.downsample is not None:
            residual = self.downsample(x)

        out += residual
        out = self.relu(out)

        return out


class ResNet(nn.Module):
    """ResNet Variants (toy width: stem_width 8, planes 8 and 16)"""

    def __init__(self, block, layers, radix=1, groups=1, bottleneck_width=64, num_classes=1000,
                 deep_stem=False, stem_width=64, avg_down=False, avd=False, avd_first=False,
                 final_drop=0.0, dropblock_prob=0, last_gamma=False, norm_layer=nn.BatchNorm2d):
        self.cardinality = groups
        self.bottleneck_width = bottleneck_width
        self.inplanes = stem_width * 2 if deep_stem else 16
        self.avg_down = avg_down
        self.last_gamma = last_gamma
        self.radix = radix
        self.avd = avd
        self.avd_first = avd_first
        super(ResNet, self).__init__()
        if deep_stem:
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, stem_width, kernel_size=3, stride=2, padding=1, bias=False),
                norm_layer(stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width, kernel_size=3, stride=1, padding=1, bias=False),
                norm_layer(stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width * 2, kernel_size=3, stride=1, padding=1, bias=False),
            )
        else:
            self.conv1 = nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 8, layers[0], norm_layer=norm_layer, is_first=False)
        self.layer2 = self._make_layer(block, 16, layers[1], stride=2, norm_layer=norm_layer,
                                       dropblock_prob=dropblock_prob)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.drop = nn.Dropout(final_drop) if final_drop > 0.0 else None
        self.fc = nn.Linear(16 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2. / n))
            elif isinstance(m, norm_layer):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, block, planes, blocks, stride=1, dilation=1, norm_layer=None,
                    dropblock_prob=0.0, is_first=True):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down_layers = []
            if self.avg_down:
                if dilation == 1:
                    down_layers.append(nn.AvgPool2d(kernel_size=stride, stride=stride,
                                                    ceil_mode=True, count_include_pad=False))
                else:
                    down_layers.append(nn.AvgPool2d(kernel_size=1, stride=1,
                                                    ceil_mode=True, count_include_pad=False))
                down_layers.append(nn.Conv2d(self.inplanes, planes * block.expansion,
                                             kernel_size=1, stride=1, bias=False))
            else:
                down_layers.append(nn.Conv2d(self.inplanes, planes * block.expansion,
                                             kernel_size=1, stride=stride, bias=False))
            down_layers.append(norm_layer(planes * block.expansion))
            downsample = nn.Sequential(*down_layers)

        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample=downsample,
                            radix=self.radix, cardinality=self.cardinality,
                            bottleneck_width=self.bottleneck_width,
                            avd=self.avd, avd_first=self.avd_first,
                            dilation=1, is_first=is_first, norm_layer=norm_layer,
                            dropblock_prob=dropblock_prob, last_gamma=self.last_gamma))
        self.inplanes = planes * block.expansion
        for i in range(1, blocks):  # noqa: B007
            layers.append(block(self.inplanes, planes,
                                radix=self.radix, cardinality=self.cardinality,
                                bottleneck_width=self.bottleneck_width,
                                avd=self.avd, avd_first=self.avd_first,
                                dilation=dilation, norm_layer=norm_layer,
                                dropblock_prob=dropblock_prob, last_gamma=self.last_gamma))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)

        x = self.layer1(x)
        x = self.layer2(x)

        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        if self.drop:
            x = self.drop(x)
        x = self.fc(x)

        return x


# ---------------------------------------------------------------------------------------- rSoftMax checks
B, card, radix, channels = 3, 2, 4, 6
logits = torch.randn(B, card * radix * channels)
weights = rSoftMax(radix, card)(logits)
per_radix = weights.view(B, radix, card, channels)
radix_sum_err = (per_radix.sum(1) - 1).abs().max().item()
sigmoid_ok = torch.equal(rSoftMax(1, card)(logits), torch.sigmoid(logits))
print(f"rSoftMax: weights {tuple(weights.shape)}, |sum over radix - 1| max {radix_sum_err:.2e}, radix 1 is sigmoid: {sigmoid_ok}")

# ------------------------------------------------------------------ SplAtConv2d (split) vs timm SplitAttn (reshape)
splat = SplAtConv2d(16, 16, 3, padding=1, groups=2, bias=False, radix=2, norm_layer=nn.BatchNorm2d)
timm_attn = SplitAttn(16, 16, 3, groups=2, radix=2, rd_channels=16, norm_layer=nn.BatchNorm2d)
missing, unexpected = timm_attn.load_state_dict(splat.state_dict(), strict=False)
print(f"SplitAttn loaded SplAtConv2d's state_dict: missing {len(missing)}, unexpected {len(unexpected)}")
x_a = torch.randn(4, 16, 9, 7, requires_grad=True)
x_b = x_a.detach().clone().requires_grad_(True)
out_a, out_b = splat(x_a), timm_attn(x_b)
(out_a * torch.linspace(-1, 1, out_a.numel()).view_as(out_a)).sum().backward()
(out_b * torch.linspace(-1, 1, out_b.numel()).view_as(out_b)).sum().backward()
route_err = max((out_a - out_b).abs().max().item(), (x_a.grad - x_b.grad).abs().max().item())
print(f"split route {tuple(out_a.shape)} vs reshape route {tuple(out_b.shape)}: max |diff| (output, input grad) {route_err:.2e}")

# ---------------------------------------------------------------------------------------- DropBlock checks
block_size, drop_prob = 5, 0.15


def union_of_blocks(mask, block_size):
    """True when the mask equals its opening by a block_size square (outside the map counts as dropped)."""
    pad = block_size // 2
    padded = np.pad(mask, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=True)
    centres = np.lib.stride_tricks.sliding_window_view(padded, (block_size, block_size), axis=(2, 3)).all(axis=(-1, -2))
    centres = np.pad(centres, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=False)
    opened = np.lib.stride_tricks.sliding_window_view(centres, (block_size, block_size), axis=(2, 3)).any(axis=(-1, -2))
    return bool(np.array_equal(opened, mask))


feat = torch.rand(8, 4, 21, 21) + 0.5
dropblock_ok = True
for fast in (True, False):
    drop = DropBlock2d(drop_prob, block_size, fast=fast)
    dropped_out = drop(feat)
    dropped = (dropped_out == 0).numpy()
    contiguous = union_of_blocks(dropped, block_size)
    pixel_contiguous = union_of_blocks((torch.rand(8, 4, 21, 21) < dropped.mean()).numpy(), block_size)
    kept = dropped_out != 0
    kept_fraction = kept.float().mean()
    rescale_ok = torch.allclose(dropped_out[kept] * kept_fraction, feat[kept], rtol=1e-5)
    drop.eval()
    eval_identity = drop(feat) is feat
    dropblock_ok &= contiguous and not pixel_contiguous and rescale_ok and eval_identity
    print(f"DropBlock2d(block_size={block_size}, fast={fast}): dropped {dropped.mean():.3f} in blocks: {contiguous} "
          f"(pixel dropout: {pixel_contiguous}), rescale to numel/kept: {rescale_ok}, eval identity: {eval_identity}")

# ---------------------------------------------------------------------------------------- training
train_x, train_y = make_textures(192)
val_x, val_y = make_textures(128)
model = ResNet(Bottleneck, [1, 1], radix=2, groups=2, bottleneck_width=64, num_classes=CLASSES,
               deep_stem=True, stem_width=8, avg_down=True, avd=True, avd_first=False,
               dropblock_prob=0.1, last_gamma=True)
print(f"layer2 shortcut: {model.layer2[0].downsample[0]}")
print(f"parameters: {sum(p.numel() for p in model.parameters())}")


@torch.no_grad()
def evaluate(model):
    model.eval()
    logits = model(val_x)
    model.train()
    return (logits.argmax(1) == val_y).float().mean().item()


criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
epochs, batch_size = 6, 32
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * (len(train_x) // batch_size))
acc_start = evaluate(model)
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(len(train_x))
    total, correct, loss_sum = 0, 0, 0.0
    for i in range(len(train_x) // batch_size):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        output = model(train_x[idx])
        loss = criterion(output, train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * idx.numel()
        correct += (output.argmax(1) == train_y[idx]).sum().item()
        total += idx.numel()
    print(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.4f} train acc {correct / total:.4f} "
          f"val acc {evaluate(model):.4f} lr {scheduler.get_last_lr()[0]:.5f}")
acc_end = evaluate(model)
checks_ok = int(radix_sum_err < 1e-6 and sigmoid_ok and route_err < 1e-5 and dropblock_ok)
print(f"FINAL acc_start={acc_start:.4f} acc_end={acc_end:.4f} checks_ok={checks_ok}")
