"""EfficientDet's BiFPN (Tan et al. 2020) on a tiny backbone, as zylo117/Yet-Another-EfficientDet
writes it, trained as a dense keypoint detector.

``SeparableConvBlock``: a depthwise ``nn.Conv2d(c, c, 3, groups=c, bias=False)`` then a pointwise
1x1 conv, ``nn.BatchNorm2d(momentum=0.01, eps=1e-3)`` and optionally SiLU. ``BiFPN``: fast
normalised fusion of each node's inputs (``w = F.relu(self.w); w / (w.sum(dim=0) + 1e-4)``), a
top-down path with ``F.interpolate(scale_factor=2, mode='nearest')`` and a bottom-up path with
``F.max_pool2d(x, 3, 2, padding=1)``, the weights as ``nn.Parameter(torch.ones(2))``/``(3)`` per
node; the layer is repeated (three ``BiFPN`` modules in an ``nn.Sequential``, one code path). The
head is a dense per-location heatmap on the finest level, trained with a sigmoid focal loss
written by hand (``alpha=0.25, gamma=2``, normalised by the number of positives, the head's bias
at ``-log((1 - 0.01) / 0.01)``). With ``momentum=0.01`` the running statistics lag far behind a
short run, so before evaluation they are re-estimated ("precise BN": ``reset_running_stats()``,
``momentum = None`` for a cumulative average, forward passes in train mode under ``no_grad``).
Reported: the mean loss of the last epoch, the held-out loss and peak-detection accuracy (the
heatmap's argmax within one cell of the object's centre), and the learned fusion weights.

The data: 32x32 noisy images, each with one bright square (the target) and one ring (a
distractor), made with NumPy.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, STRIDE = 32, 2
GRID = SIZE // STRIDE


def make_dataset(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = rng.normal(0.0, 0.3, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    centres = np.zeros((n, 2), dtype=np.int64)
    for i in range(n):
        cy, cx = rng.integers(4, SIZE - 4, size=2)
        images[i, 0, cy - 2:cy + 2, cx - 2:cx + 2] += 1.0
        while True:
            ry, rx = rng.integers(5, SIZE - 5, size=2)
            if abs(ry - cy) + abs(rx - cx) > 10:
                break
        d = np.hypot(yy - ry, xx - rx)
        images[i, 0][(d > 2.0) & (d < 3.5)] += 1.0
        centres[i] = (cy // STRIDE, cx // STRIDE)
    heatmaps = np.zeros((n, 1, GRID, GRID), dtype=np.float32)
    heatmaps[np.arange(n), 0, centres[:, 0], centres[:, 1]] = 1.0
    return torch.from_numpy(images), torch.from_numpy(heatmaps), torch.from_numpy(centres)


class SeparableConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels=None, norm=True, activation=False):
        super().__init__()
        if out_channels is None:
            out_channels = in_channels
        self.depthwise_conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1,
                                        groups=in_channels, bias=False)
        self.pointwise_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1)
        self.norm = norm
        if self.norm:
            self.bn = nn.BatchNorm2d(num_features=out_channels, momentum=0.01, eps=1e-3)
        self.activation = activation
        if self.activation:
            self.swish = nn.SiLU()

    def forward(self, x):
        x = self.depthwise_conv(x)
        x = self.pointwise_conv(x)
        if self.norm:
            x = self.bn(x)
        if self.activation:
            x = self.swish(x)
        return x


class BiFPN(nn.Module):
    """One BiFPN layer over levels P3..P6 (finest first), all with ``num_channels`` channels."""

    def __init__(self, num_channels, num_levels=4, epsilon=1e-4):
        super().__init__()
        self.epsilon = epsilon
        self.num_levels = num_levels
        # top-down nodes for P_{L-2} .. P_0, bottom-up nodes for P_1 .. P_{L-1}
        self.conv_up = nn.ModuleList(SeparableConvBlock(num_channels) for _ in range(num_levels - 1))
        self.conv_down = nn.ModuleList(SeparableConvBlock(num_channels) for _ in range(num_levels - 1))
        self.w_up = nn.ParameterList(nn.Parameter(torch.ones(2, dtype=torch.float32)) for _ in range(num_levels - 1))
        # the top level's bottom-up node has two inputs, the others three
        self.w_down = nn.ParameterList(
            nn.Parameter(torch.ones(3 if level < num_levels - 1 else 2, dtype=torch.float32))
            for level in range(1, num_levels)
        )
        self.swish = nn.SiLU()

    def fuse(self, raw_weights, inputs):
        w = F.relu(raw_weights)
        weight = w / (torch.sum(w, dim=0) + self.epsilon)
        return self.swish(sum(weight[i] * x for i, x in enumerate(inputs)))

    def forward(self, inputs):
        levels = list(inputs)
        # top-down: P_top stays, each lower level fuses itself with the upsampled one above
        td = [None] * self.num_levels
        td[-1] = levels[-1]
        for k, level in enumerate(range(self.num_levels - 2, -1, -1)):
            up = F.interpolate(td[level + 1], scale_factor=2, mode="nearest")
            td[level] = self.conv_up[k](self.fuse(self.w_up[k], [levels[level], up]))
        # bottom-up: the finest output is the top-down node; each higher one fuses input, top-down
        # node (not for the top) and the downsampled output below
        outs = [td[0]]
        for k, level in enumerate(range(1, self.num_levels)):
            down = F.max_pool2d(outs[-1], kernel_size=3, stride=2, padding=1)
            if level < self.num_levels - 1:
                fused = self.fuse(self.w_down[k], [levels[level], td[level], down])
            else:
                fused = self.fuse(self.w_down[k], [levels[level], down])
            outs.append(self.conv_down[k](fused))
        return outs


class TinyBackbone(nn.Module):
    def __init__(self, widths=(8, 16, 24, 32)):
        super().__init__()
        stages = []
        in_channels = 1
        for width in widths:
            stages.append(nn.Sequential(
                nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width, momentum=0.01, eps=1e-3),
                nn.SiLU(),
            ))
            in_channels = width
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features  # strides 2, 4, 8, 16


class Detector(nn.Module):
    def __init__(self, num_channels=16, repeats=3, widths=(8, 16, 24, 32)):
        super().__init__()
        self.backbone = TinyBackbone(widths)
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w, num_channels, 1), nn.BatchNorm2d(num_channels, momentum=0.01, eps=1e-3))
            for w in widths
        )
        self.bifpn = nn.Sequential(*[BiFPN(num_channels, num_levels=len(widths)) for _ in range(repeats)])
        self.head = nn.Sequential(SeparableConvBlock(num_channels, activation=True),
                                  SeparableConvBlock(num_channels, 1, norm=False))
        prior = 0.01
        nn.init.constant_(self.head[-1].pointwise_conv.bias, -math.log((1 - prior) / prior))

    def forward(self, x):
        features = [lat(f) for lat, f in zip(self.lateral, self.backbone(x))]
        features = self.bifpn(features)
        return self.head(features[0])


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    loss = alpha_t * loss
    num_pos = targets.sum().clamp(min=1.0)
    return loss.sum() / num_pos


def peak_accuracy(heat, centres):
    b = heat.size(0)
    idx = heat.view(b, -1).argmax(dim=1)
    py = torch.div(idx, GRID, rounding_mode="floor")
    px = idx % GRID
    close = ((py - centres[:, 0]).abs() <= 1) & ((px - centres[:, 1]).abs() <= 1)
    return close.float().mean().item()


train_x, train_y, train_c = make_dataset(128)
test_x, test_y, test_c = make_dataset(64)
print(f"data {tuple(train_x.shape)} heatmaps {tuple(train_y.shape)} positives per image {train_y.sum().item() / len(train_y):.1f}")

model = Detector()
with torch.no_grad():
    feats = [lat(f) for lat, f in zip(model.lateral, model.backbone(train_x[:2]))]
    print("levels", [tuple(f.shape[-2:]) for f in feats], "-> bifpn", [tuple(f.shape) for f in model.bifpn(feats)])
depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
print(f"depthwise convs {len(depthwise)} groups {depthwise[0].groups} weight {tuple(depthwise[0].weight.shape)}")
print(f"fusion weights {sum(p.numel() for n, p in model.named_parameters() if '.w_' in n)} parameters {sum(p.numel() for p in model.parameters())}")
with torch.no_grad():
    model.eval()
    start = torch.sigmoid(model(test_x)).mean().item()
    model.train()
print(f"initial mean probability {start:.4f}")

optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
EPOCHS, BATCH = 6, 32
for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(train_x))
    losses = []
    for i in range(0, len(train_x), BATCH):
        idx = perm[i:i + BATCH]
        logits = model(train_x[idx])
        loss = sigmoid_focal_loss(logits, train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    mean_loss = sum(losses) / len(losses)
    print(f"epoch {epoch} mean loss {mean_loss:.4f} last batch {losses[-1]:.4f}")


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(test_x)
    return sigmoid_focal_loss(logits, test_y).item(), peak_accuracy(logits, test_c)


# momentum=0.01 moves the running statistics slowly: after a short run they are still far from
# the data's, so eval mode is poor until they are re-estimated ("precise BN")
bn = model.head[0].bn
print(f"head BN after training: running var {bn.running_var.mean().item():.4f} tracked {int(bn.num_batches_tracked)}")
stale_loss, stale_acc = evaluate()
print(f"eval with the running statistics: loss {stale_loss:.4f} peak accuracy {stale_acc:.3f}")

bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
for m in bns:
    m.reset_running_stats()
    m.momentum = None  # a cumulative average over the batches below
model.train()
with torch.no_grad():
    for i in range(0, len(train_x), BATCH):
        model(train_x[i:i + BATCH])
for m in bns:
    m.momentum = 0.01
print(f"re-estimated {len(bns)} BatchNorm2d over {int(bn.num_batches_tracked)} batches: running var {bn.running_var.mean().item():.4f}")
test_loss, acc = evaluate()
print(f"eval after re-estimation: loss {test_loss:.4f} peak accuracy {acc:.3f}")

with torch.no_grad():
    layer = model.bifpn[-1]
    fused = [F.relu(w) / (F.relu(w).sum() + layer.epsilon) for w in layer.w_up]
print("last layer top-down fusion weights", [[round(v, 3) for v in w.tolist()] for w in fused])
print(f"FINAL loss={mean_loss:.4f} test_loss={test_loss:.4f} peak_acc={acc:.4f}")
