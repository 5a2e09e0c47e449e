"""Feature visualisation as lucid / lucent and the DeepDream scripts do it, on a small CNN trained
to tell horizontal, vertical and diagonal stripes apart on noisy 16x16 images.

Activation maximisation of a class logit: an input image ``requires_grad_(True)`` optimised by
``torch.optim.Adam``, jittered each step by ``torch.roll(img, shifts=(dy, dx), dims=(2, 3))`` with
``torch.randint`` offsets, penalised by total variation (``img[:, :, 1:, :] - img[:, :, :-1, :]``)
and L2, kept in range by ``img.clamp_(-1, 1)`` under ``torch.no_grad()``. The same with lucid's
decorrelated Fourier parametrisation: a spectrum ``nn.Parameter`` of shape ``(1, 1, H, W // 2 + 1, 2)``
read by ``torch.view_as_complex``, scaled by ``1 / max(freqs, 1 / max(H, W)) ** decay`` from
``torch.fft.fftfreq``/``rfftfreq``, mapped to pixels by ``torch.fft.irfft2(s=(H, W), norm="ortho")``
(and ``rfft2`` back, a round trip). A channel of a conv layer maximised through a
``register_forward_hook``. DeepDream: octaves by ``F.interpolate(scale_factor=1 / 1.5,
mode="bilinear")``, gradient ascent on an activation's norm with the step normalised by
``grad.abs().mean()``, the lost detail added back after upsampling to each octave's size.
The visualisations must show the stripes: their 2-D spectrum (``torch.fft.fft2``) puts its
energy on the class's axis.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(2)
SIZE = 16
CLASSES = ("horizontal", "vertical", "diagonal")


def make(n):
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    labels = rng.randint(0, 3, size=n)
    images = np.zeros((n, 1, SIZE, SIZE), dtype=np.float32)
    for i, label in enumerate(labels):
        coordinate = (rows, cols, rows + cols)[label]
        period = rng.choice([3.5, 4.0, 4.5])
        images[i, 0] = np.sin(2 * np.pi * coordinate / period + rng.uniform(0, 2 * np.pi))
    images += 0.5 * rng.randn(*images.shape).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels)


x_train, y_train = make(600)
x_test, y_test = make(120)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return self.head(x.mean(dim=(2, 3)))


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
for epoch in range(1, 7):
    perm = torch.randperm(len(x_train))
    for index in perm.split(50):
        loss = F.cross_entropy(model(x_train[index]), y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 2 == 0:
        print(f"epoch {epoch} loss {loss.item():.4f}")
model.eval()
model.requires_grad_(False)
with torch.no_grad():
    accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
print(f"test accuracy {accuracy:.3f}")


def total_variation(img):
    return (img[:, :, 1:, :] - img[:, :, :-1, :]).abs().mean() + (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().mean()


def axis_share(img, label):
    """Share of the image's non-DC spectral energy within one frequency bin of the class's axis
    (3 of 16 bins: 0.19 for white noise)."""
    power = torch.fft.fft2(img[0, 0] - img.mean()).abs() ** 2
    power[0, 0] = 0
    ky = torch.arange(SIZE).view(-1, 1).expand(SIZE, SIZE)
    kx = torch.arange(SIZE).view(1, -1).expand(SIZE, SIZE)
    offset = (kx, ky, ky - kx)[label] % SIZE  # rows vary: kx = 0; columns vary: ky = 0; diagonal: ky = kx
    near = torch.minimum(offset, SIZE - offset) <= 1
    return (power[near].sum() / power.sum()).item()


def visualise_pixels(target, steps=120, lr=0.05, tv_weight=0.05, l2_weight=1e-3, jitter=2):
    img = (0.1 * torch.randn(1, 1, SIZE, SIZE)).requires_grad_(True)
    opt = torch.optim.Adam([img], lr=lr)
    for _ in range(steps):
        dy, dx = torch.randint(-jitter, jitter + 1, (2,)).tolist()
        jittered = torch.roll(img, shifts=(dy, dx), dims=(2, 3))
        logit = model(jittered)[0, target]
        loss = -logit + tv_weight * total_variation(img) + l2_weight * img.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            img.clamp_(-1, 1)
    return img.detach()


def rfft2d_freqs(h, w):
    """lucid's spectrum frequencies: sqrt(fy^2 + fx^2) on the rfft2 grid."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


class FourierImage(nn.Module):
    def __init__(self, h, w, sd=0.01, decay_power=1.0):
        super().__init__()
        self.h, self.w = h, w
        self.spectrum = nn.Parameter(sd * torch.randn(1, 1, h, w // 2 + 1, 2))
        freqs = rfft2d_freqs(h, w)
        scale = 1.0 / torch.maximum(freqs, torch.full_like(freqs, 1.0 / max(h, w))) ** decay_power
        self.register_buffer("scale", scale * math.sqrt(h * w))

    def forward(self):
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfft2(spectrum, s=(self.h, self.w), norm="ortho")
        return torch.tanh(image / 4)


def visualise_fourier(target, steps=120, lr=0.01, jitter=2):
    param = FourierImage(SIZE, SIZE)
    opt = torch.optim.Adam(param.parameters(), lr=lr)
    for _ in range(steps):
        img = param()
        dy, dx = torch.randint(-jitter, jitter + 1, (2,)).tolist()
        loss = -model(torch.roll(img, shifts=(dy, dx), dims=(2, 3)))[0, target]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return param().detach(), param


roundtrip = torch.randn(2, 1, SIZE, SIZE)
print("irfft2(rfft2(x)) == x:", torch.allclose(
    torch.fft.irfft2(torch.fft.rfft2(roundtrip, norm="ortho"), s=(SIZE, SIZE), norm="ortho"), roundtrip, atol=1e-5))

pixel_shares, fourier_shares, probabilities = [], [], []
for target, name in enumerate(CLASSES):
    pixels = visualise_pixels(target)
    fourier, param = visualise_fourier(target)
    with torch.no_grad():
        prob_pixels = F.softmax(model(pixels), dim=1)[0, target].item()
        prob_fourier = F.softmax(model(fourier), dim=1)[0, target].item()
    pixel_shares.append(axis_share(pixels, target))
    fourier_shares.append(axis_share(fourier, target))
    probabilities += [prob_pixels, prob_fourier]
    print(f"{name:10s} pixels: p={prob_pixels:.3f} axis share {pixel_shares[-1]:.3f} range "
          f"[{pixels.min().item():.2f}, {pixels.max().item():.2f}]; fourier: p={prob_fourier:.3f} "
          f"axis share {fourier_shares[-1]:.3f}")
print("spectrum parameter", tuple(param.spectrum.shape), "scale buffer", tuple(param.scale.shape),
      f"largest |pixel| {fourier.abs().max().item():.3f}")

# a channel of conv2 through a forward hook
activations = {}
handle = model.conv2.register_forward_hook(lambda module, inputs, output: activations.__setitem__("conv2", output))
channel_gain = []
for channel in (0, 5):
    img = (0.01 * torch.randn(1, 1, SIZE, SIZE)).requires_grad_(True)
    opt = torch.optim.Adam([img], lr=0.05)
    model(img)
    start = activations["conv2"][0, channel].mean().item()
    for _ in range(60):
        model(torch.roll(img, shifts=tuple(torch.randint(-1, 2, (2,)).tolist()), dims=(2, 3)))
        loss = -activations["conv2"][0, channel].mean() + 0.05 * total_variation(img)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            img.clamp_(-1, 1)
    with torch.no_grad():
        model(img)
    channel_gain.append(activations["conv2"][0, channel].mean().item() - start)
    print(f"conv2 channel {channel}: mean activation grew {'yes' if channel_gain[-1] > 0 else 'no'}")
handle.remove()


def deep_dream(image, layer_fn, octaves=3, octave_scale=1.5, steps=15, lr=0.05):
    """DeepDream: ascend ||layer(img)|| at each octave, small to large, carrying the added detail up."""
    pyramid = [image]
    for _ in range(octaves - 1):
        pyramid.append(F.interpolate(pyramid[-1], scale_factor=1 / octave_scale, mode="bilinear",
                                     align_corners=False))
    detail = torch.zeros_like(pyramid[-1])
    for octave_base in reversed(pyramid):
        if detail.shape != octave_base.shape:
            detail = F.interpolate(detail, size=octave_base.shape[-2:], mode="bilinear", align_corners=False)
        img = (octave_base + detail).requires_grad_(True)
        for _ in range(steps):
            objective = layer_fn(img).norm()
            (grad,) = torch.autograd.grad(objective, img)
            with torch.no_grad():
                img += lr * grad / (grad.abs().mean() + 1e-8)
                img.clamp_(-2, 2)
        detail = img.detach() - octave_base
    return img.detach()


def conv2_features(x):
    return F.relu(model.conv2(F.max_pool2d(F.relu(model.conv1(x)), 2)))


start = x_test[:1]
with torch.no_grad():
    before = conv2_features(start).norm().item()
dreamed = deep_dream(start, conv2_features)
with torch.no_grad():
    after = conv2_features(dreamed).norm().item()
sizes = [tuple(F.interpolate(start, scale_factor=1 / 1.5 ** k, mode="bilinear").shape[-2:]) for k in range(3)]
print("octave sizes", sizes, "dream shape", tuple(dreamed.shape), f"activation norm x{after / before:.2f}")

print(f"FINAL accuracy={accuracy:.4f} pixel_share={sum(pixel_shares) / 3:.4f} "
      f"fourier_share={sum(fourier_shares) / 3:.4f} min_prob={min(probabilities):.4f} "
      f"dream_gain={after / before:.4f}")
