"""Noise2Void (Krull et al. 2019, juglab/n2v and its PyTorch ports) on synthetic noisy images.

Training never sees a clean image: random 32x32 patches of the noisy images get ~1.5 % blind-spot pixels
(chosen per patch without repeats by ``torch.rand(...).argsort``), each replaced by a random neighbour's
value from the 5x5 window without its centre (offsets drawn by ``torch.randint``, clamped at the borders).
The replacement is done twice, by advanced indexing and by ``torch.gather``/``scatter`` on a flattened
view, and the two must agree. A small UNet (``nn.Conv2d`` + ``nn.BatchNorm2d`` + ReLU, ``nn.MaxPool2d``,
``nn.Upsample(mode='bilinear', align_corners=False)``, ``torch.cat`` skips) predicts every pixel, and the
loss is taken only on the blind spots, ``((pred - noisy)[mask] ** 2).mean()``; Adam with
``ReduceLROnPlateau`` on the validation loss. The denoised held-out images' PSNR against their clean
originals beats the noisy PSNR.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, PATCH, SIGMA = 64, 32, 0.15
PERC_PIX, RADIUS = 1.5, 2


def gaussian_blur(img, s=1.5):
    k = np.exp(-0.5 * (np.arange(-4, 5) / s) ** 2)
    k /= k.sum()
    img = np.apply_along_axis(lambda r: np.convolve(np.pad(r, 4, mode="edge"), k, "valid"), 0, img)
    return np.apply_along_axis(lambda r: np.convolve(np.pad(r, 4, mode="edge"), k, "valid"), 1, img)


def make_image():
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img = np.full((SIZE, SIZE), 0.2) + 0.1 * xx / SIZE
    for _ in range(rng.integers(4, 8)):
        cy, cx, r = rng.uniform(8, SIZE - 8), rng.uniform(8, SIZE - 8), rng.uniform(4, 12)
        if rng.random() < 0.5:
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = rng.uniform(0.4, 0.9)
        else:
            img[(np.abs(yy - cy) < r) & (np.abs(xx - cx) < 0.7 * r)] = rng.uniform(0.4, 0.9)
    return gaussian_blur(img).astype(np.float32)


clean = np.stack([make_image() for _ in range(10)])[:, None]
noisy = (clean + SIGMA * rng.standard_normal(clean.shape)).astype(np.float32)
clean, noisy = torch.from_numpy(clean), torch.from_numpy(noisy)
train_noisy, val_noisy = noisy[:6], noisy[6:8]
test_clean, test_noisy = clean[8:], noisy[8:]
print(f"images {tuple(noisy.shape)} train {train_noisy.shape[0]} val {val_noisy.shape[0]} test {test_noisy.shape[0]}")

OFFSETS = torch.tensor([(dy, dx) for dy in range(-RADIUS, RADIUS + 1) for dx in range(-RADIUS, RADIUS + 1)
                        if (dy, dx) != (0, 0)])


def random_patches(images, n):
    idx = torch.randint(0, images.shape[0], (n,))
    ys = torch.randint(0, SIZE - PATCH + 1, (n,))
    xs = torch.randint(0, SIZE - PATCH + 1, (n,))
    return torch.stack([images[i, :, y:y + PATCH, x:x + PATCH] for i, y, x in zip(idx.tolist(), ys.tolist(), xs.tolist())])


def blind_spot_coords(b, h, w):
    n_pix = max(1, int(round(h * w * PERC_PIX / 100)))
    flat = torch.rand(b, h * w).argsort(dim=1)[:, :n_pix]  # distinct pixels per patch
    ys, xs = flat // w, flat % w
    off = OFFSETS[torch.randint(0, OFFSETS.shape[0], (b, n_pix))]
    ny = (ys + off[..., 0]).clamp(0, h - 1)
    nx = (xs + off[..., 1]).clamp(0, w - 1)
    # a clamp that lands back on the centre takes the mirrored offset, which is inside the patch
    on_centre = (ny == ys) & (nx == xs)
    ny = torch.where(on_centre, ys - off[..., 0], ny)
    nx = torch.where(on_centre, xs - off[..., 1], nx)
    return ys, xs, ny, nx


def manipulate_indexing(x, ys, xs, ny, nx):
    b, n = ys.shape
    bidx = torch.arange(b)[:, None].expand(b, n)
    masked = x.clone()
    masked[bidx, 0, ys, xs] = x[bidx, 0, ny, nx]
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[bidx, 0, ys, xs] = True
    return masked, mask


def manipulate_gather(x, ys, xs, ny, nx):
    b, _, h, w = x.shape
    flat = x.reshape(b, h * w)
    values = torch.gather(flat, 1, ny * w + nx)
    masked = flat.clone().scatter_(1, ys * w + xs, values)
    mask = torch.zeros(b, h * w, dtype=torch.bool).scatter_(1, ys * w + xs, True)
    return masked.view(b, 1, h, w), mask.view(b, 1, h, w)


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.block(x)


class UNet(nn.Module):
    def __init__(self, ch=16):
        super().__init__()
        self.inc = DoubleConv(1, ch)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(ch, 2 * ch))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(2 * ch, 2 * ch))
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv_up1 = DoubleConv(4 * ch, ch)
        self.conv_up2 = DoubleConv(2 * ch, ch)
        self.outc = nn.Conv2d(ch, 1, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.conv_up1(torch.cat([x2, self.up(x3)], dim=1))
        x = self.conv_up2(torch.cat([x1, self.up(x)], dim=1))
        return self.outc(x)


def psnr(pred, target):
    mse = torch.mean((pred - target) ** 2).item()
    return 10 * math.log10(1.0 / mse)


patches = random_patches(train_noisy, 8)
coords = blind_spot_coords(*patches.shape[:1], PATCH, PATCH)
by_index, mask_a = manipulate_indexing(patches, *coords)
by_gather, mask_b = manipulate_gather(patches, *coords)
assert torch.equal(by_index, by_gather) and torch.equal(mask_a, mask_b)
changed = int((by_index != patches).sum())
print(f"blind spots per patch {int(mask_a[0].sum())}, changed pixels {changed} of {int(mask_a.sum())} masked, "
      f"outside the mask unchanged {bool(torch.equal(by_index[~mask_a], patches[~mask_a]))}")
assert changed == int(mask_a.sum())

model = UNet()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)
val_patches = random_patches(val_noisy, 16)
val_coords = blind_spot_coords(val_patches.shape[0], PATCH, PATCH)
val_input, val_mask = manipulate_gather(val_patches, *val_coords)

epochs, steps, batch = 6, 12, 16
train_losses = []
for epoch in range(epochs):
    model.train()
    running = 0.0
    for _ in range(steps):
        x = random_patches(train_noisy, batch)
        x_in, mask = manipulate_indexing(x, *blind_spot_coords(batch, PATCH, PATCH))
        pred = model(x_in)
        loss = ((pred - x)[mask] ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item()
    train_losses.append(running / steps)
    model.eval()
    with torch.no_grad():
        val_pred = model(val_input)
        val_loss = ((val_pred - val_patches) * val_mask).pow(2).sum() / val_mask.sum()
    scheduler.step(val_loss)
    print(f"epoch {epoch} train loss {train_losses[-1]:.5f} val loss {val_loss.item():.5f} "
          f"lr {optimizer.param_groups[0]['lr']:.1e}")

assert train_losses[-1] < train_losses[0]
model.eval()
with torch.no_grad():
    denoised = model(test_noisy)
psnr_noisy = psnr(test_noisy, test_clean)
psnr_denoised = psnr(denoised, test_clean)
print(f"test PSNR noisy {psnr_noisy:.2f} dB denoised {psnr_denoised:.2f} dB shape {tuple(denoised.shape)}")
assert psnr_denoised > psnr_noisy

print(f"FINAL loss={train_losses[-1]:.5f} psnr_noisy={psnr_noisy:.3f} psnr_denoised={psnr_denoised:.3f} "
      f"psnr_gain={psnr_denoised - psnr_noisy:.3f}")
