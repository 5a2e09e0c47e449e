"""Sliding-window patches with ``F.unfold``/``F.fold`` and ``nn.Unfold``/``nn.Fold``, three ways.

1. A convolution written as im2col + matmul, the example of torch's ``nn.Unfold`` docs
   (``inp_unf.transpose(1, 2).matmul(w.view(w.size(0), -1).t()).transpose(1, 2)`` folded back with
   a (1, 1) kernel), and with a ``view`` for strided, padded and dilated (also per-axis) cases,
   checked against ``F.conv2d``: values, and gradients of input, weight and bias by
   ``torch.autograd.grad``; ``gradcheck`` of the im2col form in float64.
2. Overlapping-patch denoising: ``nn.Unfold(6, stride=2)`` patches of noisy images projected on
   the leading principal components of clean training patches (``torch.linalg.eigh``), put back by
   ``nn.Fold`` and divided by the fold of an all-ones unfold (how many patches cover each pixel).
3. A space-to-depth denoiser: ``nn.PixelUnshuffle(2)`` -> convolutions -> ``nn.PixelShuffle(2)``
   predicting the noise (residual), trained with Adam; ``F.pixel_unshuffle`` equals an unfold with
   kernel = stride = 2.

PSNR of the noisy images, the patch projection and the network.
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

# --- 1. convolution as unfold + matmul --------------------------------------------------------
# the nn.Unfold docs' example: Convolution is equivalent with Unfold + Matrix Multiplication + Fold
inp = torch.randn(1, 3, 10, 12)
w = torch.randn(2, 3, 4, 5)
inp_unf = torch.nn.functional.unfold(inp, (4, 5))
out_unf = inp_unf.transpose(1, 2).matmul(w.view(w.size(0), -1).t()).transpose(1, 2)
out = torch.nn.functional.fold(out_unf, (7, 8), (1, 1))
print("docs example", tuple(inp_unf.shape), tuple(out_unf.shape), tuple(out.shape),
      "equals conv2d", (torch.nn.functional.conv2d(inp, w) - out).abs().max().item() < 1e-4)


def conv2d_im2col(x, weight, bias, stride=1, padding=0, dilation=1):
    """F.conv2d by F.unfold: (N, C*kh*kw, L) columns times the (O, C*kh*kw) weight matrix."""
    n, _, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    stride, padding, dilation = (nn.modules.utils._pair(v) for v in (stride, padding, dilation))
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    out = weight.view(out_channels, -1) @ columns + bias.view(1, -1, 1)
    return out.view(n, out_channels, out_h, out_w)


x = torch.randn(2, 3, 11, 9, requires_grad=True)
weight = torch.randn(4, 3, 3, 3, requires_grad=True)
bias = torch.randn(4, requires_grad=True)
cases_close = 0
for stride, padding, dilation in [(1, 1, 1), (2, 0, 1), (1, 2, 2), ((2, 1), (1, 0), (1, 2))]:
    ours = conv2d_im2col(x, weight, bias, stride, padding, dilation)
    ref = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    grad_out = torch.randn_like(ref)
    ours_grads = torch.autograd.grad(ours, (x, weight, bias), grad_out)
    ref_grads = torch.autograd.grad(ref, (x, weight, bias), grad_out)
    value_err = (ours - ref).abs().max().item()
    grad_err = max((a - b).abs().max().item() for a, b in zip(ours_grads, ref_grads))
    cases_close += value_err < 1e-4 and grad_err < 1e-4
    print(f"stride={stride} padding={padding} dilation={dilation}: out {tuple(ref.shape)} "
          f"values close {value_err < 1e-4} gradients close {grad_err < 1e-4}")

x64 = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
w64 = torch.randn(3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
b64 = torch.randn(3, dtype=torch.float64, requires_grad=True)
print("gradcheck of the im2col conv", torch.autograd.gradcheck(
    lambda a, b, c: conv2d_im2col(a, b, c, stride=2, padding=1), (x64, w64, b64)))

# nn.Unfold / nn.Fold as modules, on a batch and on an unbatched (C, H, W) image
unfold = nn.Unfold(kernel_size=3, dilation=2, padding=1, stride=2)
fold = nn.Fold(output_size=(11, 9), kernel_size=3, dilation=2, padding=1, stride=2)
print(unfold, fold)
blocks = unfold(x.detach())
print("blocks", tuple(blocks.shape), "unbatched", tuple(unfold(x.detach()[0]).shape),
      "fold back", tuple(fold(blocks).shape), tuple(fold(blocks[0]).shape))
try:
    F.fold(blocks[:, :, :-1], (11, 9), kernel_size=3, dilation=2, padding=1, stride=2)
except RuntimeError as error:
    print("fold with a block missing:", error)
try:
    F.fold(blocks[:, :-1], (11, 9), kernel_size=3, dilation=2, padding=1, stride=2)
except RuntimeError as error:
    print("fold with a channel missing:", error)

# --- 2. overlapping-patch denoising -----------------------------------------------------------
SIZE, SIGMA = 24, 0.1


def make_images(n):
    """Smooth shapes and gradients in [0, 1], (n, 1, SIZE, SIZE)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    images = np.empty((n, 1, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        a, b, c = rng.uniform(-0.4, 0.4, size=3)
        image = 0.5 + a * xx + b * yy + c * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * (xx + yy))
        for _ in range(2):
            cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.25)
            image += rng.uniform(-0.4, 0.4) / (1 + np.exp((np.hypot(yy - cy, xx - cx) - r) * 30))
        images[i, 0] = np.clip(image, 0, 1)
    return torch.from_numpy(images)


def psnr(image, reference):
    return (10 * torch.log10(1.0 / F.mse_loss(image, reference))).item()


train_clean, test_clean = make_images(64), make_images(16)
test_noisy = test_clean + SIGMA * torch.randn_like(test_clean)

patch_unfold = nn.Unfold(kernel_size=6, stride=2)
patch_fold = nn.Fold(output_size=(SIZE, SIZE), kernel_size=6, stride=2)
normaliser = patch_fold(patch_unfold(torch.ones(1, 1, SIZE, SIZE)))
print("normaliser", tuple(normaliser.shape), "covers each pixel", int(normaliser.min().item()), "to",
      int(normaliser.max().item()), "times; corner", int(normaliser[0, 0, 0, 0].item()))
round_trip = patch_fold(patch_unfold(test_noisy)) / normaliser
print("fold(unfold(x)) / normaliser == x", torch.allclose(round_trip, test_noisy, atol=1e-6))

train_patches = patch_unfold(train_clean).transpose(1, 2).reshape(-1, 36)
patch_mean = train_patches.mean(dim=0)
centred = train_patches - patch_mean
covariance = centred.T @ centred / (len(centred) - 1)
eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
COMPONENTS = 6
basis = eigenvectors[:, -COMPONENTS:]
explained = (eigenvalues[-COMPONENTS:].sum() / eigenvalues.sum()).item()
print(f"{len(train_patches)} training patches, {COMPONENTS} components explain {explained:.4f} of the variance")

noisy_patches = patch_unfold(test_noisy)  # (N, 36, L)
centred_noisy = noisy_patches - patch_mean.view(1, -1, 1)
projected = basis @ (basis.T @ centred_noisy) + patch_mean.view(1, -1, 1)
patch_denoised = (patch_fold(projected) / normaliser).clamp(0, 1)
psnr_noisy, psnr_patches = psnr(test_noisy, test_clean), psnr(patch_denoised, test_clean)
print(f"psnr noisy {psnr_noisy:.2f} dB, patch projection {psnr_patches:.2f} dB")


# --- 3. a space-to-depth denoiser -------------------------------------------------------------
class SpaceToDepthDenoiser(nn.Module):
    def __init__(self, channels=1, width=32, factor=2):
        super().__init__()
        packed = channels * factor ** 2
        self.down = nn.PixelUnshuffle(factor)
        self.body = nn.Sequential(
            nn.Conv2d(packed, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, packed, 3, padding=1),
        )
        self.up = nn.PixelShuffle(factor)

    def forward(self, x):
        return x - self.up(self.body(self.down(x)))


model = SpaceToDepthDenoiser()
print(model.down, model.up, "parameters", sum(p.numel() for p in model.parameters()))
probe = test_noisy[:2]
packed = model.down(probe)
print("unshuffled", tuple(packed.shape), "shuffle undoes it", torch.equal(model.up(packed), probe),
      "equals unfold(2, stride=2)", torch.equal(F.unfold(probe, 2, stride=2).view(packed.shape), packed),
      "functional", torch.equal(F.pixel_unshuffle(probe, 2), packed))

optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
STEPS, BATCH = 200, 16
for step in range(1, STEPS + 1):
    clean = train_clean[torch.randint(0, len(train_clean), (BATCH,))]
    noisy = clean + SIGMA * torch.randn_like(clean)
    loss = F.mse_loss(model(noisy), clean)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step:3d} loss {loss.item():.6f} psnr {10 * math.log10(1 / loss.item()):.2f}")

model.eval()
with torch.no_grad():
    net_denoised = model(test_noisy).clamp(0, 1)
psnr_net = psnr(net_denoised, test_clean)
print(f"psnr noisy {psnr_noisy:.2f} dB -> patches {psnr_patches:.2f} dB, network {psnr_net:.2f} dB")
print(f"FINAL psnr_noisy={psnr_noisy:.4f} psnr_patches={psnr_patches:.4f} psnr_net={psnr_net:.4f} "
      f"conv_cases_close={cases_close}")
