"""Cohen & Welling's group-equivariant CNN on the group P4 (translations and rotations by 90 degrees),
written as the GrouPy / e2cnn-free PyTorch ports write it.

The lifting layer rotates one filter bank four times with ``torch.rot90(w, k, dims=(-2, -1))``,
stacks the copies into a single ``F.conv2d`` weight and views the output as
``(batch, channels, 4, H, W)``; the group-to-group layer also cycles the filter's rotation axis with
``torch.roll(w, k, dims=2)`` before stacking, so a rotated input gives rotated feature maps whose
rotation axis is rolled by one. ``nn.BatchNorm3d`` normalises each channel over its four rotations,
``F.max_pool2d`` pools space on the flattened maps, and ``amax(dim=2)`` pools over rotations
before a global average, which makes the classifier rotation invariant. Equivariance is checked by
rotating the batch (``torch.rot90(x, k, (2, 3))``) and comparing feature maps with ``torch.allclose``.
Trained on upright synthetic tetromino shapes and tested on shapes rotated by random multiples of
90 degrees, against a plain CNN of about the same size that only sees upright shapes too.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE = 12
TEMPLATES = {
    "L": ["X..", "X..", "XX."],
    "T": ["XXX", ".X.", "..."],
    "S": [".XX", "XX.", "..."],
    "J": ["..X", "..X", ".XX"],
}
NAMES = list(TEMPLATES)


def make_shapes(n, rotate):
    images = rng.normal(0.0, 0.15, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, len(NAMES), size=n)
    for i, label in enumerate(labels):
        pattern = np.array([[c == "X" for c in row] for row in TEMPLATES[NAMES[label]]], dtype=np.float32)
        pattern = np.kron(pattern, np.ones((2, 2), dtype=np.float32))  # 6x6 strokes two pixels wide
        if rotate:
            pattern = np.rot90(pattern, k=int(rng.integers(0, 4)))
        top, left = rng.integers(0, SIZE - 6 + 1, size=2)
        images[i, 0, top:top + 6, left:left + 6] += pattern
    return torch.from_numpy(images), torch.from_numpy(labels)


class P4LiftingConv(nn.Module):
    """Z2 -> P4: one filter per output channel, applied at each of the four rotations."""

    def __init__(self, in_channels, out_channels, kernel_size, padding=0, bias=True):
        super().__init__()
        self.out_channels = out_channels
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, x):
        weight = torch.stack([torch.rot90(self.weight, k, dims=(-2, -1)) for k in range(4)], dim=1)
        weight = weight.reshape(self.out_channels * 4, *self.weight.shape[1:])
        bias = self.bias.repeat_interleave(4) if self.bias is not None else None
        out = F.conv2d(x, weight, bias, padding=self.padding)
        return out.view(out.size(0), self.out_channels, 4, out.size(-2), out.size(-1))


class P4GroupConv(nn.Module):
    """P4 -> P4: the filter over (channels, rotations) is rotated in space and rolled along its
    rotation axis for each output rotation."""

    def __init__(self, in_channels, out_channels, kernel_size, padding=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 4, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def transformed_weight(self):
        rotated = [torch.roll(torch.rot90(self.weight, k, dims=(-2, -1)), shifts=k, dims=2) for k in range(4)]
        weight = torch.stack(rotated, dim=1)  # (out, 4, in, 4, k, k)
        return weight.reshape(self.out_channels * 4, self.in_channels * 4, *self.weight.shape[-2:])

    def forward(self, x):
        b, c, g, h, w = x.shape
        bias = self.bias.repeat_interleave(4) if self.bias is not None else None
        out = F.conv2d(x.reshape(b, c * g, h, w), self.transformed_weight(), bias, padding=self.padding)
        return out.view(b, self.out_channels, 4, out.size(-2), out.size(-1))


def p4_max_pool(x, kernel_size):
    b, c, g, h, w = x.shape
    pooled = F.max_pool2d(x.view(b, c * g, h, w), kernel_size)
    return pooled.view(b, c, g, pooled.size(-2), pooled.size(-1))


class P4CNN(nn.Module):
    def __init__(self, n_classes=len(NAMES), width=8):
        super().__init__()
        # no conv bias before a BatchNorm: it would only drift on Adam's normalised rounding noise
        self.lift = P4LiftingConv(1, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.gconv2 = P4GroupConv(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.gconv3 = P4GroupConv(width, 2 * width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm3d(2 * width)
        self.fc = nn.Linear(2 * width, n_classes)

    def features(self, x):
        x = F.relu(self.bn1(self.lift(x)))
        x = F.relu(self.bn2(self.gconv2(x)))
        x = p4_max_pool(x, 2)
        return F.relu(self.bn3(self.gconv3(x)))

    def forward(self, x):
        x = self.features(x).amax(dim=2)
        return self.fc(x.mean(dim=(-2, -1)))


class PlainCNN(nn.Module):
    def __init__(self, n_classes=len(NAMES), width=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        return self.fc(self.body(x))


def equivariance_errors(model, x):
    """max |f(rot x) - roll(rot f(x))| for the P4 feature maps, and |pooled(rot x) - rot pooled(x)|."""
    feats = model.features(x)
    map_errs, pooled_errs, same = [], [], True
    for k in range(1, 4):
        feats_rot = model.features(torch.rot90(x, k, (2, 3)))
        expected = torch.roll(torch.rot90(feats, k, (-2, -1)), shifts=k, dims=2)
        map_errs.append((feats_rot - expected).abs().max().item())
        pooled_errs.append((feats_rot.amax(dim=2) - torch.rot90(feats.amax(dim=2), k, (-2, -1))).abs().max().item())
        same = same and torch.allclose(feats_rot, expected, rtol=1e-4, atol=1e-4)
    return max(map_errs), max(pooled_errs), same


def evaluate(model, images, labels):
    model.eval()
    with torch.no_grad():
        logits = model(images)
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


train_x, train_y = make_shapes(192, rotate=False)
test_upright_x, test_upright_y = make_shapes(128, rotate=False)
test_rotated_x, test_rotated_y = make_shapes(128, rotate=True)
print(f"train {tuple(train_x.shape)} per class {torch.bincount(train_y, minlength=len(NAMES)).tolist()}")

p4 = P4CNN()
plain = PlainCNN()
n_p4 = sum(p.numel() for p in p4.parameters())
n_plain = sum(p.numel() for p in plain.parameters())
print(f"parameters p4 {n_p4} plain {n_plain}")
print("lifted weight", tuple(p4.gconv2.transformed_weight().shape))

p4.eval()
with torch.no_grad():
    map_err, pooled_err, same = equivariance_errors(p4, test_rotated_x[:8])
print(f"at init: feature maps roll with the rotation {same} max err {map_err:.2e} pooled {pooled_err:.2e}")

EPOCHS, BATCH = 12, 32
results = {}
for name, model in (("p4", p4), ("plain", plain)):
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(train_x))
        total = 0.0
        for start in range(0, len(train_x), BATCH):
            index = order[start:start + BATCH]
            loss = F.cross_entropy(model(train_x[index]), train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        if epoch % 3 == 2:
            print(f"{name} epoch {epoch} loss {total / len(train_x):.4f}")
    results[name] = evaluate(model, test_upright_x, test_upright_y) + evaluate(model, test_rotated_x, test_rotated_y)
    print(f"{name}: upright acc {results[name][1]:.3f} rotated acc {results[name][3]:.3f}")

p4.eval()
with torch.no_grad():
    map_err, pooled_err, same = equivariance_errors(p4, test_rotated_x[:16])
    logits = p4(test_rotated_x[:16])
    invariant_err = max((p4(torch.rot90(test_rotated_x[:16], k, (2, 3))) - logits).abs().max().item() for k in range(1, 4))
print(f"trained: feature maps roll with the rotation {same} max err {map_err:.2e} pooled {pooled_err:.2e}")
print(f"logits invariant to rotating the batch, max err {invariant_err:.2e}")
print(f"FINAL p4_upright_acc={results['p4'][1]:.4f} p4_rotated_acc={results['p4'][3]:.4f} "
      f"p4_rotated_loss={results['p4'][2]:.4f} plain_upright_acc={results['plain'][1]:.4f} "
      f"plain_rotated_acc={results['plain'][3]:.4f} equivariance_err={map_err:.6f} invariance_err={invariant_err:.6f}")
