"""Deformable convolution v2 in plain PyTorch, as the pure-PyTorch DCNv2 ports write it
(developer0hye/PyTorch-Deformable-Convolution-v2's ``DeformableConv2d`` module, with
``torchvision.ops.deform_conv2d`` replaced by its sampling written with ``F.grid_sample``), trained
on a classification toy whose patterns are shifted and stretched.

``offset_conv`` and ``modulator_conv`` initialised by ``nn.init.constant_(..., 0.)``, the modulation
``2. * torch.sigmoid(self.modulator_conv(x))``, offsets in torchvision's ``(dy, dx)`` pairs split by
``offset.view(b, k * k, 2, h_out, w_out).unbind(2)``, the base grid from ``torch.meshgrid(...,
indexing="ij")`` of output positions and of kernel points, normalising to [-1, 1] with
``2 * x / (W - 1) - 1`` for ``F.grid_sample(align_corners=True, padding_mode="zeros")`` on a
``(b, k * k * h_out, w_out, 2)`` grid (no ``F.unfold``), the kernel points summed by
``torch.einsum("bckhw,ock->bohw", ...)``; with zero offsets the layer equals ``F.conv2d`` (stride 1
and 2), a whole-pixel offset equals the convolution of the shifted image, and a training run
where the offsets learn.
"""
# ruff: noqa: UP008, E721, A002  (the repository's own spelling: super(DeformableConv2d, self),
# type(kernel_size) == tuple, torchvision's argument named input)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def deform_conv2d(input, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mask=None):
    b, c, h, w = input.shape
    out_channels, _, kh, kw = weight.shape
    h_out, w_out = offset.shape[-2:]
    k = kh * kw

    # where every kernel point of every output position samples before the offsets move it
    ys, xs = torch.meshgrid(
        torch.arange(h_out, dtype=input.dtype) * stride[0] - padding[0],
        torch.arange(w_out, dtype=input.dtype) * stride[1] - padding[1],
        indexing="ij",
    )
    ky, kx = torch.meshgrid(
        torch.arange(kh, dtype=input.dtype) * dilation[0],
        torch.arange(kw, dtype=input.dtype) * dilation[1],
        indexing="ij",
    )
    offset_y, offset_x = offset.view(b, k, 2, h_out, w_out).unbind(2)
    sample_y = ys[None, None] + ky.reshape(1, k, 1, 1) + offset_y
    sample_x = xs[None, None] + kx.reshape(1, k, 1, 1) + offset_x

    # align_corners=True: pixel centre 0 is -1 and W - 1 is 1; outside the image samples zeros
    grid_x = 2 * sample_x / (w - 1) - 1
    grid_y = 2 * sample_y / (h - 1) - 1
    grid = torch.stack((grid_x, grid_y), dim=-1).view(b, k * h_out, w_out, 2)
    sampled = F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    sampled = sampled.view(b, c, k, h_out, w_out)
    if mask is not None:
        sampled = sampled * mask.view(b, 1, k, h_out, w_out)

    out = torch.einsum("bckhw,ock->bohw", sampled, weight.view(out_channels, c, k))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class DeformableConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False):
        super(DeformableConv2d, self).__init__()

        assert type(kernel_size) == tuple or type(kernel_size) == int

        kernel_size = kernel_size if type(kernel_size) == tuple else (kernel_size, kernel_size)
        self.stride = stride if type(stride) == tuple else (stride, stride)
        self.padding = padding if type(padding) == tuple else (padding, padding)

        self.offset_conv = nn.Conv2d(in_channels,
                                     2 * kernel_size[0] * kernel_size[1],
                                     kernel_size=kernel_size,
                                     stride=stride,
                                     padding=self.padding,
                                     bias=True)

        nn.init.constant_(self.offset_conv.weight, 0.)
        nn.init.constant_(self.offset_conv.bias, 0.)

        self.modulator_conv = nn.Conv2d(in_channels,
                                        1 * kernel_size[0] * kernel_size[1],
                                        kernel_size=kernel_size,
                                        stride=stride,
                                        padding=self.padding,
                                        bias=True)

        nn.init.constant_(self.modulator_conv.weight, 0.)
        nn.init.constant_(self.modulator_conv.bias, 0.)

        self.regular_conv = nn.Conv2d(in_channels=in_channels,
                                      out_channels=out_channels,
                                      kernel_size=kernel_size,
                                      stride=stride,
                                      padding=self.padding,
                                      bias=bias)

    def forward(self, x):
        offset = self.offset_conv(x)
        modulator = 2. * torch.sigmoid(self.modulator_conv(x))

        x = deform_conv2d(input=x,
                          offset=offset,
                          weight=self.regular_conv.weight,
                          bias=self.regular_conv.bias,
                          padding=self.padding,
                          mask=modulator,
                          stride=self.stride,
                          )
        return x


# with zero offsets and a modulation of 1 the layer is a plain convolution
x = torch.randn(2, 3, 9, 11)
for stride in (1, 2):
    layer = DeformableConv2d(3, 4, kernel_size=3, stride=stride, padding=1, bias=True)
    expected = F.conv2d(x, layer.regular_conv.weight, layer.regular_conv.bias, stride=stride, padding=1)
    got = layer(x)
    print(f"stride {stride}: output {tuple(got.shape)}, max |deform - conv2d| {(got - expected).abs().max().item():.1e}")

# an offset of one whole pixel to the right everywhere reads the image shifted left by one (but for
# the first column, where the shifted image's padding is zero and the offset reads column 0)
weight = torch.randn(4, 3, 3, 3)
offset = torch.zeros(2, 18, 9, 11)
offset[:, 1::2] = 1.0
shifted = F.pad(x[..., 1:], (0, 1))
diff = (deform_conv2d(x, offset, weight, padding=(1, 1)) - F.conv2d(shifted, weight, padding=1)).abs()
print(f"whole-pixel offset against the shifted image: max diff {diff[..., 1:].max().item():.1e}, "
      f"first column {diff[..., 0].max().item() > 0.1}")

# the data: 16x16 images of a bar pattern (class 0 horizontal pair, 1 vertical pair, 2 diagonal),
# placed anywhere and stretched by 1 or 2 pixels


def make_image(label):
    image = rng.normal(0.0, 0.15, size=(1, 16, 16)).astype(np.float32)
    gap = int(rng.integers(2, 5))
    y, x = (int(v) for v in rng.integers(2, 16 - gap - 3, size=2))
    dy, dx = [(0, gap), (gap, 0), (gap, gap)][label]
    for yy, xx in ((y, x), (y + dy, x + dx)):
        image[0, yy:yy + 2, xx:xx + 2] += 1.0
    return image


def make_set(n):
    labels = rng.integers(0, 3, size=n)
    return torch.from_numpy(np.stack([make_image(int(lab)) for lab in labels])), torch.from_numpy(labels)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.deform = DeformableConv2d(8, 16, kernel_size=3, stride=2, padding=1, bias=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.deform(x))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.fc(x)


train_x, train_y = make_set(256)
test_x, test_y = make_set(128)
model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(1, 9):
    model.train()
    perm = torch.randperm(len(train_x))
    total = 0.0
    for i in range(0, len(train_x), 32):
        idx = perm[i:i + 32]
        loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    if epoch % 4 == 0:
        print(f"epoch {epoch}: train loss {total / len(train_x):.4f}")

model.eval()
with torch.no_grad():
    logits = model(test_x)
    test_loss = F.cross_entropy(logits, test_y).item()
    acc = (logits.argmax(1) == test_y).float().mean().item()
    offsets = model.deform.offset_conv(F.relu(model.conv1(test_x)))
    mask = 2.0 * torch.sigmoid(model.deform.modulator_conv(F.relu(model.conv1(test_x))))
    offset_mean = offsets.abs().mean().item()
    mask_spread = mask.std().item()
print(f"test loss {test_loss:.4f} accuracy {acc:.4f}; learned |offset| {offset_mean:.4f}, modulation std {mask_spread:.4f}")
print(f"FINAL loss={test_loss:.4f} acc={acc:.4f} offset={offset_mean:.4f}")
