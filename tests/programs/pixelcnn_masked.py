"""PixelCNN as jzbontar/pixelcnn-pytorch and the tutorials after it write it, on small 4-level images:
a ``MaskedConv2d(nn.Conv2d)`` subclass that registers its ``mask`` buffer from ``self.weight.data.clone()``,
zeroes it by ``self.mask[:, :, kH // 2, kW // 2 + (mask_type == 'B'):] = 0`` and
``self.mask[:, :, kH // 2 + 1:] = 0``, and applies it in ``forward`` by ``self.weight.data *= self.mask``
before ``super().forward(x)``; a stack of 'A' then 'B' convolutions with ``BatchNorm2d`` + ``ReLU``, gated
residual blocks (``tanh(a) * sigmoid(b)`` from ``chunk(2, dim=1)``), a 1x1 head to K logits per pixel,
``F.cross_entropy`` of (N, K, H, W) logits against (N, H, W) ``long`` targets, bits per dimension, a
check by autograd that each output sees only the pixels before it in raster order, and the
pixel-by-pixel sampling loop under ``torch.no_grad()`` with
``torch.multinomial(F.softmax(logits, dim=1), 1)``. The samples must keep the data's row structure.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils import data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
K, H, W = 4, 8, 8


def make_images(n):
    """Rows of one level each; a row repeats the one above with probability 1/2."""
    levels = np.zeros((n, H), dtype=np.int64)
    levels[:, 0] = rng.integers(0, K, size=n)
    for i in range(1, H):
        fresh = rng.integers(0, K, size=n)
        levels[:, i] = np.where(rng.random(n) < 0.5, levels[:, i - 1], fresh)
    return np.repeat(levels[:, :, None], W, axis=2)


class MaskedConv2d(nn.Conv2d):
    def __init__(self, mask_type, *args, **kwargs):
        super(MaskedConv2d, self).__init__(*args, **kwargs)  # noqa: UP008  (the repo's spelling)
        assert mask_type in {"A", "B"}
        self.register_buffer("mask", self.weight.data.clone())
        _, _, kH, kW = self.weight.size()
        self.mask.fill_(1)
        self.mask[:, :, kH // 2, kW // 2 + (mask_type == "B"):] = 0
        self.mask[:, :, kH // 2 + 1:] = 0

    def forward(self, x):
        self.weight.data *= self.mask
        return super(MaskedConv2d, self).forward(x)  # noqa: UP008


class GatedResidual(nn.Module):
    """A 'B'-masked conv to 2C channels, gated by tanh * sigmoid, a 1x1 conv, and the skip."""

    def __init__(self, channels):
        super().__init__()
        self.conv = MaskedConv2d("B", channels, 2 * channels, 3, 1, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        a, b = self.conv(x).chunk(2, dim=1)
        return x + self.out(torch.tanh(a) * torch.sigmoid(b))


fm = 32
net = nn.Sequential(
    MaskedConv2d("A", 1, fm, 5, 1, 2, bias=False), nn.BatchNorm2d(fm), nn.ReLU(True),
    MaskedConv2d("B", fm, fm, 3, 1, 1, bias=False), nn.BatchNorm2d(fm), nn.ReLU(True),
    GatedResidual(fm),
    GatedResidual(fm),
    MaskedConv2d("B", fm, fm, 3, 1, 1, bias=False), nn.BatchNorm2d(fm), nn.ReLU(True),
    nn.Conv2d(fm, K, 1))

# ----------------------------------------------------------------- the masks, checked
first = net[0]
print("mask is a buffer:", "0.mask" in dict(net.named_buffers()), "not a parameter:",
      "0.mask" not in dict(net.named_parameters()), "shape:", tuple(first.mask.shape))
print("mask A centre row:", first.mask[0, 0, 2].tolist(), "mask B centre row:", net[3].mask[0, 0, 1].tolist())
print("mask A ones:", int(first.mask[0, 0].sum().item()), "mask B ones:", int(net[3].mask[0, 0].sum().item()))

# causality: the logits at (i, j) depend only on pixels strictly before (i, j) in raster order
net.eval()
probe = torch.rand(1, 1, H, W, requires_grad=True)
i, j = 4, 3
net(probe)[0, :, i, j].sum().backward()
grad = probe.grad[0, 0].abs()
order = torch.arange(H * W).view(H, W)
print("causal:", bool((grad[order >= i * W + j] == 0).all()),
      "sees the pixel to its left:", bool(grad[i, j - 1] > 0), "and the row above:", bool(grad[i - 1, j] > 0))
net.train()
print("weights masked after a forward:", bool((net[3].weight.data * (1 - net[3].mask) == 0).all()))

# ----------------------------------------------------------------- training
train_images = make_images(1024)
test_images = make_images(256)
train_set = data.TensorDataset(torch.from_numpy(train_images))
train_loader = data.DataLoader(train_set, batch_size=64, shuffle=True, num_workers=0, pin_memory=False)
test_target = torch.from_numpy(test_images)
test_input = test_target.unsqueeze(1).float() / (K - 1)
optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)


def bits_per_dim(logits, target):
    return F.cross_entropy(logits, target).item() / math.log(2)


for epoch in range(6):
    err_tr = []
    net.train()
    for (target,) in train_loader:
        input = target.unsqueeze(1).float() / (K - 1)
        loss = F.cross_entropy(net(input), target)
        err_tr.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        test_bpd = bits_per_dim(net(test_input), test_target)
    if epoch % 2 == 1:
        print(f"epoch={epoch}; nll_tr={np.mean(err_tr):.5f}; test bits/dim={test_bpd:.4f}")

# ----------------------------------------------------------------- sampling, pixel by pixel
sample = torch.Tensor(32, 1, H, W)
sample.fill_(0)
net.eval()
with torch.no_grad():
    for i in range(H):
        for j in range(W):
            out = net(sample)
            probs = F.softmax(out[:, :, i, j], dim=1)
            sample[:, :, i, j] = torch.multinomial(probs, 1).float() / (K - 1)
levels = (sample * (K - 1)).round().long().squeeze(1)
print("sample shape:", tuple(sample.shape), "levels in range:", bool(((levels >= 0) & (levels < K)).all()))
row_constant = (levels[:, :, 1:] == levels[:, :, :-1]).float().mean().item()
row_repeat = (levels[:, 1:, 0] == levels[:, :-1, 0]).float().mean().item()
print(f"FINAL test_bpd={test_bpd:.4f} row_constant={row_constant:.4f} row_repeat={row_repeat:.4f}")
