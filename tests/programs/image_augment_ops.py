"""Tensor-level image augmentations written without torchvision, then used to train a tiny CNN.

Batched random rotations by ``F.affine_grid(theta, size, align_corners=False)`` +
``F.grid_sample(..., mode='bilinear', padding_mode='reflection')`` with ``theta`` built from
``torch.cos``/``torch.sin`` (a quarter turn must equal ``torch.rot90(x, k, dims=(2, 3))``),
``F.pad(x, (p, p, p, p), mode='reflect' / 'replicate' / 'circular')`` then random crops, horizontal
flips by ``torch.flip`` under a ``torch.rand(n) < 0.5`` mask and ``torch.where``, colour jitter by
``x.mul(b).clamp_(0, 1)``, grayscale by ``0.299 * r + 0.587 * g + 0.114 * b``, Gaussian blur by a
depthwise ``F.conv2d(..., groups=C)`` of a separable kernel (against the 2-d kernel), resizing by
``F.interpolate(mode='bicubic', antialias=True)`` and ``mode='area'``, patch extraction by
``Tensor.unfold`` (against ``F.unfold``), ``F.pixel_shuffle``/``F.pixel_unshuffle`` round trips,
normalisation with ``mean[:, None, None]``/``std[:, None, None]``; the classifier trains on a fresh
augmentation of each batch and is tested on clean images.
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

SIZE = 24
CLASSES = ("disc", "square", "ring")


def make_dataset(n):
    """A coloured disc, square or ring on a darker background, at 2x resolution."""
    big = 2 * SIZE
    yy, xx = np.mgrid[0:big, 0:big]
    images = np.empty((n, 3, big, big), dtype=np.float32)
    labels = rng.integers(0, len(CLASSES), size=n)
    for i, label in enumerate(labels):
        cy, cx = rng.uniform(16, big - 16, size=2)
        r = rng.uniform(8, 13)
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        if label == 0:
            shape = d < r
        elif label == 1:
            shape = (np.abs(yy - cy) < r * 0.85) & (np.abs(xx - cx) < r * 0.85)
        else:
            shape = (d < r) & (d > r * 0.55)
        colour = rng.uniform(0.5, 1.0, size=3)
        images[i] = rng.uniform(0.0, 0.3, size=(3, 1, 1)) + rng.normal(0, 0.03, size=(3, big, big))
        images[i][:, shape] = colour[:, None]
    images = torch.from_numpy(images).clamp(0, 1)
    # downsample the way people do without torchvision: antialiased bicubic
    images = F.interpolate(images, size=(SIZE, SIZE), mode="bicubic", antialias=True, align_corners=False)
    return images.clamp(0, 1), torch.from_numpy(labels)


def rotation_theta(angles):
    """(N, 2, 3) affine matrices rotating by ``angles`` (radians) about the centre."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros = torch.zeros_like(angles)
    return torch.stack([torch.stack([cos, -sin, zeros], dim=1),
                        torch.stack([sin, cos, zeros], dim=1)], dim=1)


def random_rotate(x, max_degrees=30.0):
    angles = (torch.rand(x.shape[0]) * 2 - 1) * math.radians(max_degrees)
    grid = F.affine_grid(rotation_theta(angles), x.size(), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_crop(x, padding=3, mode="reflect"):
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding), mode=mode)
    tops = torch.randint(0, 2 * padding + 1, (n,))
    lefts = torch.randint(0, 2 * padding + 1, (n,))
    return torch.stack([padded[i, :, t:t + h, l:l + w] for i, (t, l) in enumerate(zip(tops.tolist(), lefts.tolist()))])


def random_hflip(x, p=0.5):
    flip = torch.rand(x.shape[0]) < p
    return torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)


def colour_jitter(x, brightness=0.3):
    b = 1.0 + (torch.rand(x.shape[0], 1, 1, 1) * 2 - 1) * brightness
    return x.mul(b).clamp_(0, 1)


def grayscale(x):
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    gray = (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)
    return gray.expand(-1, 3, -1, -1)


def random_grayscale(x, p=0.2):
    pick = torch.rand(x.shape[0]) < p
    return torch.where(pick[:, None, None, None], grayscale(x), x)


def gaussian_kernel1d(sigma, radius):
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def gaussian_blur(x, sigma=1.0, radius=2):
    c = x.shape[1]
    k = gaussian_kernel1d(sigma, radius)
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


mean = torch.tensor([0.4, 0.4, 0.35])
std = torch.tensor([0.3, 0.3, 0.3])


def normalize(x):
    return (x - mean[:, None, None]) / std[:, None, None]


def augment(x):
    x = random_rotate(x)
    x = random_crop(x, mode="reflect")
    x = random_hflip(x)
    x = colour_jitter(x)
    x = random_grayscale(x)
    if torch.rand(()) < 0.5:
        x = gaussian_blur(x, sigma=float(torch.empty(()).uniform_(0.5, 1.2)))
    return normalize(x)


train_x, train_y = make_dataset(192)
val_x, val_y = make_dataset(96)
print(f"train {tuple(train_x.shape)}, val {tuple(val_x.shape)}, range [{train_x.min().item():.2f}, "
      f"{train_x.max().item():.2f}]")

# the pieces checked against each other on the clean images
x = val_x[:8]
quarter = torch.full((8,), math.pi / 2)
grid = F.affine_grid(rotation_theta(quarter), x.size(), align_corners=False)
rotated = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
rot_err = min((rotated - torch.rot90(x, k, dims=(2, 3))).abs().max().item() for k in (1, 3))
sep = gaussian_blur(x, sigma=1.0, radius=2)
k1 = gaussian_kernel1d(1.0, 2)
k2 = torch.outer(k1, k1)
full = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k2.expand(3, 1, 5, 5), groups=3)
blur_err = (sep - full).abs().max().item()
pad_modes = {m: F.pad(x, (3, 3, 3, 3), mode=m) for m in ("reflect", "replicate", "circular")}
circ_ok = torch.equal(pad_modes["circular"][..., 3:-3, :3], x[..., -3:])
refl_ok = torch.equal(pad_modes["reflect"][..., 3:-3, 2], x[..., 1])
repl_ok = torch.equal(pad_modes["replicate"][..., 3:-3, 0], x[..., 0])
patches = x.unfold(2, 6, 6).unfold(3, 6, 6)  # (N, C, 4, 4, 6, 6)
patches_f = F.unfold(x, kernel_size=6, stride=6).view(8, 3, 6, 6, 4, 4).permute(0, 1, 4, 5, 2, 3)
unfold_ok = torch.equal(patches, patches_f)
shuffle_ok = torch.equal(F.pixel_shuffle(F.pixel_unshuffle(x, 2), 2), x)
down_area = F.interpolate(x, scale_factor=0.5, mode="area")
down_bicubic = F.interpolate(x, size=(12, 12), mode="bicubic", antialias=True, align_corners=False)
down_pool = F.avg_pool2d(x, 2)
print(f"quarter turn equals rot90 {rot_err < 1e-5}, separable equals 2-d blur {blur_err < 1e-5}, pads circular {circ_ok} "
      f"reflect {refl_ok} replicate {repl_ok}, unfold {tuple(patches.shape)} equal {unfold_ok}, "
      f"shuffle round trip {shuffle_ok}")
print(f"area equals avg_pool {torch.allclose(down_area, down_pool, atol=1e-6)}, bicubic-antialias vs area "
      f"{(down_bicubic - down_area).abs().mean().item():.4f}, gray {tuple(grayscale(x).shape)}")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(32, len(CLASSES))

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
EPOCHS, BATCH = 12, 32
for epoch in range(1, EPOCHS + 1):
    model.train()
    perm = torch.randperm(len(train_x))
    total = 0.0
    for i in range(0, len(train_x), BATCH):
        idx = perm[i:i + BATCH]
        with torch.no_grad():
            inputs = augment(train_x[idx])
        loss = F.cross_entropy(model(inputs), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    if epoch % 4 == 0:
        print(f"epoch {epoch}: train loss {total / len(train_x):.4f}")

model.eval()
with torch.no_grad():
    logits = model(normalize(val_x))
    val_loss = F.cross_entropy(logits, val_y).item()
    acc = (logits.argmax(1) == val_y).float().mean().item()
    # rotated by a quarter turn and flipped, the shapes keep their class
    turned = model(normalize(torch.flip(torch.rot90(val_x, 1, dims=(2, 3)), dims=[3])))
    acc_turned = (turned.argmax(1) == val_y).float().mean().item()
print(f"FINAL val_loss={val_loss:.4f} acc={acc:.4f} acc_turned={acc_turned:.4f} "
      f"rot_err={rot_err:.6f} blur_err={blur_err:.6f}")
