"""ConvMixer ("Patches Are All You Need?", Trockman & Kolter; locuslab/convmixer) as the paper's short code,
trained the way locuslab/convmixer-cifar10's train.py does, on synthetic 16x16 texture images.

``Residual(nn.Module)`` wrapping ``fn(x) + x``, ``ConvMixer(dim, depth, kernel_size, patch_size, n_classes)``
returning one ``nn.Sequential`` with the patch embedding ``nn.Conv2d(3, dim, kernel_size=patch_size,
stride=patch_size)``, the list-comprehension of depth blocks unpacked by ``*[...]`` (depthwise
``nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same")`` + ``nn.GELU()`` + ``nn.BatchNorm2d``
inside the residual, the pointwise 1x1 conv outside), ``nn.AdaptiveAvgPool2d((1,1))``, ``nn.Flatten()``;
an odd kernel (5, the CIFAR script's ``--conv-ks``) and an even one (4: ``padding="same"`` pads
asymmetrically), ``torch.optim.AdamW`` with ``OneCycleLR`` stepped per batch, ``nn.CrossEntropyLoss(
label_smoothing=0.1)``, ``nn.utils.clip_grad_norm_(model.parameters(), 1.0)``, ``opt.param_groups[0]["lr"]``
read for the log, the train/test accuracy loop of train.py with ``model.eval()`` under ``torch.no_grad()``.
"""
# ruff: noqa: B007  (train.py's own loops: `for i, (X, y) in enumerate(trainloader)`)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


def ConvMixer(dim, depth, kernel_size=9, patch_size=7, n_classes=1000):
    return nn.Sequential(
        nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size),
        nn.GELU(),
        nn.BatchNorm2d(dim),
        *[nn.Sequential(
            Residual(nn.Sequential(
                nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same"),
                nn.GELU(),
                nn.BatchNorm2d(dim)
            )),
            nn.Conv2d(dim, dim, kernel_size=1),
            nn.GELU(),
            nn.BatchNorm2d(dim)
        ) for i in range(depth)],
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(dim, n_classes)
    )


SIZE = 16
N_CLASSES = 4


def make_textures(n):
    """Coloured gratings: horizontal, vertical, diagonal stripes or a checkerboard, random phase and noise."""
    ys, xs = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    labels = rng.integers(0, N_CLASSES, size=n)
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    for i, label in enumerate(labels):
        period = rng.uniform(3.0, 6.0)
        phase = rng.uniform(0, 2 * np.pi)
        if label == 0:
            wave = np.sin(2 * np.pi * ys / period + phase)
        elif label == 1:
            wave = np.sin(2 * np.pi * xs / period + phase)
        elif label == 2:
            wave = np.sin(2 * np.pi * (xs + ys) / period + phase)
        else:
            wave = np.sin(2 * np.pi * xs / period + phase) * np.sin(2 * np.pi * ys / period + phase)
        colour = rng.uniform(0.3, 1.0, size=3)
        images[i] = colour[:, None, None] * wave[None] + rng.normal(0, 0.6, size=(3, SIZE, SIZE))
    return torch.from_numpy(images), torch.from_numpy(labels)


X_train, y_train = make_textures(384)
X_test, y_test = make_textures(128)
mean = X_train.mean(dim=(0, 2, 3))
std = X_train.std(dim=(0, 2, 3))
X_train = (X_train - mean[:, None, None]) / std[:, None, None]
X_test = (X_test - mean[:, None, None]) / std[:, None, None]

trainloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_train, y_train),
                                          batch_size=32, shuffle=True)
testloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_test, y_test),
                                         batch_size=64, shuffle=False)

EPOCHS = 5
results = {}
for name, kernel_size in (("ks5", 5), ("ks4", 4)):
    model = ConvMixer(dim=24, depth=3, kernel_size=kernel_size, patch_size=2, n_classes=N_CLASSES)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[{name}] ConvMixer dim 24 depth 3 kernel {kernel_size}: {n_params} parameters, "
          f"{len(model)} top-level modules")

    opt = optim.AdamW(model.parameters(), lr=0.005, weight_decay=0.01)
    scheduler = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, epochs=EPOCHS,
                                              steps_per_epoch=len(trainloader))
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

    for epoch in range(EPOCHS):
        model.train()
        train_loss, train_acc, n = 0, 0, 0
        for i, (X, y) in enumerate(trainloader):
            output = model(X)
            loss = criterion(output, y)

            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            lr = opt.param_groups[0]["lr"]
            scheduler.step()

            train_loss += loss.item() * y.size(0)
            train_acc += (output.max(1)[1] == y).sum().item()
            n += y.size(0)

        model.eval()
        test_acc, m = 0, 0
        with torch.no_grad():
            for i, (X, y) in enumerate(testloader):
                output = model(X)
                test_acc += (output.max(1)[1] == y).sum().item()
                m += y.size(0)

        print(f'[{name}] Epoch: {epoch} | Train Loss: {train_loss / n:.4f}, Train Acc: {train_acc / n:.4f}, '
              f'Test Acc: {test_acc / m:.4f}, lr: {lr:.6f}')
    results[name] = (train_loss / n, test_acc / m)

print(f"FINAL ks5_loss={results['ks5'][0]:.4f} ks5_acc={results['ks5'][1]:.4f} "
      f"ks4_loss={results['ks4'][0]:.4f} ks4_acc={results['ks4'][1]:.4f}")
