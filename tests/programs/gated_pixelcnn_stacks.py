"""Gated PixelCNN (van den Oord et al. 2016), written the way the popular PyTorch ports write it,
on toy 8x8 binary images of two classes (horizontal bars, vertical bars): ``nn.Conv2d``
subclasses holding a ``register_buffer('mask', ...)`` (the horizontal stack's 1 x k convolution
masks its weight in place with ``self.weight.data *= self.mask``, the vertical stack's k x k one
uses ``self.weight * self.mask`` in ``F.conv2d``), the vertical stack down-shifted into the
horizontal one by ``F.pad(v, (0, 0, 1, 0))[:, :, :-1, :]``, gated activations
``torch.tanh(a) * torch.sigmoid(b)`` from ``chunk(2, dim=1)``, a class-conditional bias through
``nn.Embedding`` broadcast by ``[:, :, None, None]``, residual and skip connections in the
horizontal stack, 2-way ``F.cross_entropy`` over pixels reported in bits/dim, Adam, and sampling
pixel by pixel under ``torch.no_grad()`` with ``torch.multinomial``. Checks: the receptive field
has no future leak and no blind spot (the gradient of each output pixel's logits with respect to
the input, taken for all 64 pixels in one batched backward, must be zero at and after the pixel in
raster order and non-zero everywhere before it), the NLL falls, and samples of the two classes
differ the way the classes do.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

H = W = 8
n_classes = 2


def make_images(n, rng):
    """Class 0: random full rows on; class 1: random full columns on; 3% pixel noise."""
    labels = rng.randint(0, n_classes, size=n)
    lines = rng.rand(n, H) < 0.35
    imgs = np.where(labels[:, None, None] == 0, lines[:, :, None], lines[:, None, :])
    imgs = np.broadcast_to(imgs, (n, H, W)) ^ (rng.rand(n, H, W) < 0.03)
    return imgs.astype(np.float32)[:, None], labels.astype(np.int64)


rng = np.random.RandomState(seed)
train_x, train_y = make_images(1280, rng)
test_x, test_y = make_images(512, rng)
train_x, train_y = torch.from_numpy(train_x), torch.from_numpy(train_y)
test_x, test_y = torch.from_numpy(test_x), torch.from_numpy(test_y)


class HorizontalMaskedConv2d(nn.Conv2d):
    """1 x k convolution over the current row: type 'A' sees only pixels to the left."""

    def __init__(self, *args, mask_type="B", **kwargs):
        super().__init__(*args, **kwargs)
        assert mask_type in ("A", "B")
        self.register_buffer("mask", self.weight.data.clone())
        _, _, kh, kw = self.weight.size()
        self.mask.fill_(1)
        self.mask[:, :, :, kw // 2 + (mask_type == "B"):] = 0

    def forward(self, x):
        self.weight.data *= self.mask
        return super().forward(x)


class VerticalMaskedConv2d(nn.Conv2d):
    """k x k convolution seeing the rows above and the current row."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _, _, kh, kw = self.weight.size()
        mask = torch.ones_like(self.weight)
        mask[:, :, kh // 2 + 1:, :] = 0
        self.register_buffer("mask", mask)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


def down_shift(x):
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


class GatedLayer(nn.Module):
    def __init__(self, in_ch, ch, k, mask_type, residual):
        super().__init__()
        self.residual = residual
        self.v_conv = VerticalMaskedConv2d(in_ch, 2 * ch, k, padding=k // 2)
        self.v_to_h = nn.Conv2d(2 * ch, 2 * ch, 1)
        self.h_conv = HorizontalMaskedConv2d(in_ch, 2 * ch, (1, k), padding=(0, k // 2),
                                             mask_type=mask_type)
        self.h_out = nn.Conv2d(ch, ch, 1)
        self.skip = nn.Conv2d(ch, ch, 1)
        self.class_cond = nn.Embedding(n_classes, 4 * ch)

    @staticmethod
    def gate(x):
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, v, h, y):
        cond_v, cond_h = self.class_cond(y)[:, :, None, None].chunk(2, dim=1)
        v_feat = self.v_conv(v)
        v_out = self.gate(v_feat + cond_v)
        h_feat = self.h_conv(h) + self.v_to_h(down_shift(v_feat))
        h_gated = self.gate(h_feat + cond_h)
        skip = self.skip(h_gated)
        h_out = self.h_out(h_gated)
        if self.residual:
            h_out = h_out + h
        return v_out, h_out, skip


class GatedPixelCNN(nn.Module):
    def __init__(self, ch=16, n_layers=5, k=5, n_values=2):
        super().__init__()
        self.layers = nn.ModuleList(
            [GatedLayer(1 if i == 0 else ch, ch, k, "A" if i == 0 else "B", residual=i > 0)
             for i in range(n_layers)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, 32, 1), nn.ReLU(),
                                  nn.Conv2d(32, n_values, 1))

    def forward(self, x, y):
        v, h = x, x
        skips = 0
        for layer in self.layers:
            v, h, s = layer(v, h, y)
            skips = skips + s
        return self.head(skips)


model = GatedPixelCNN()
print(model.layers[0].h_conv)
print("parameters:", sum(p.numel() for p in model.parameters()))


# ---- receptive field: one batched backward, one input copy per output pixel ----
def receptive_field_check(model):
    n = H * W
    x = torch.rand(n, 1, H, W, generator=torch.Generator().manual_seed(1)).requires_grad_()
    y = torch.zeros(n, dtype=torch.long)
    out = model(x, y)
    rows, cols = torch.arange(n) // W, torch.arange(n) % W
    out[torch.arange(n), :, rows, cols].sum().backward()
    grad = x.grad.abs().view(n, n)
    future = torch.ones(n, n).triu().bool()
    leak = grad[future].max().item()
    blind = (grad[~future] == 0).sum().item()
    return leak, blind


model.eval()
leak0, blind0 = receptive_field_check(model)
print(f"untrained: max future leak {leak0:.3g}, blind pixels {blind0}")
assert leak0 == 0 and blind0 == 0


def bits_per_dim(model, x, y):
    logits = model(x, y)
    return F.cross_entropy(logits, x[:, 0].long()).item() / np.log(2.0)


optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
batch_size = 64
with torch.no_grad():
    bpd_start = bits_per_dim(model, test_x, test_y)
print(f"test bits/dim before training {bpd_start:.4f}")
for epoch in range(1, 4):
    model.train()
    perm = torch.randperm(train_x.size(0))
    total = 0.0
    for i in range(0, train_x.size(0), batch_size):
        idx = perm[i:i + batch_size]
        xb, yb = train_x[idx], train_y[idx]
        logits = model(xb, yb)
        loss = F.cross_entropy(logits, xb.squeeze(1).long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * xb.size(0)
    model.eval()
    with torch.no_grad():
        bpd = bits_per_dim(model, test_x, test_y)
    print(f"epoch {epoch} train bits/dim {total / train_x.size(0) / np.log(2.0):.4f} "
          f"test bits/dim {bpd:.4f}")

leak, blind = receptive_field_check(model)
print(f"trained: max future leak {leak:.3g}, blind pixels {blind}")
assert leak == 0


# ---- autoregressive sampling, pixel by pixel ----
@torch.no_grad()
def sample(model, labels):
    x = torch.zeros(labels.size(0), 1, H, W)
    for i in range(H):
        for j in range(W):
            probs = F.softmax(model(x, labels)[:, :, i, j], dim=1)
            x[:, :, i, j] = torch.multinomial(probs, 1).float()
    return x


def bar_score(x):
    """Positive for horizontal bars (row means vary), negative for vertical bars."""
    return x.mean(3).var(2).squeeze(1) - x.mean(2).var(2).squeeze(1)


labels = torch.arange(32) % n_classes
samples = sample(model, labels)
score = bar_score(samples)
data_score = bar_score(test_x)
sep = (score[labels == 0].mean() - score[labels == 1].mean()).item()
data_sep = (data_score[test_y == 0].mean() - data_score[test_y == 1].mean()).item()
sample_acc = ((score < 0).long() == labels).float().mean().item()
print(f"samples {tuple(samples.shape)} ink {samples.mean().item():.3f} "
      f"class separation {sep:.4f} (data {data_sep:.4f}) sign accuracy {sample_acc:.3f}")
print(f"FINAL bpd={bpd:.4f} bpd_drop={bpd_start - bpd:.4f} leak={leak:.6f} "
      f"sample_sep={sep:.4f} sample_acc={sample_acc:.4f}")
