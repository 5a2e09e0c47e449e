"""SegNet (Badrinarayanan et al.) as the PyTorch ports write it, on synthetic shapes at 18x18.

The encoder keeps its pooling switches: ``nn.MaxPool2d(2, stride=2, return_indices=True)`` returns
``(x, indices)`` and the decoder undoes each pool with ``nn.MaxUnpool2d(2, stride=2)`` given
``output_size=size`` (18 -> 9 -> 4 pools to an odd size, so the second unpool needs the size);
``F.max_pool2d(..., return_indices=True)`` + ``F.max_unpool2d`` in the functional edition must agree.
Class-balanced ``F.cross_entropy(weight=..., ignore_index=255)`` with SegNet's median-frequency
weights from ``torch.bincount`` over the labelled pixels; a soft Dice loss on
``F.softmax(logits, dim=1)`` against ``F.one_hot(target.clamp(max=...), n).permute(0, 3, 1, 2)``
masked by ``(target != 255).unsqueeze(1)``; ``nn.Softmax2d``; the ``logits.argmax(1)`` prediction
scored by IoU per class and the ignore ring; SGD with momentum + ``PolynomialLR``.

The data: noisy images of a square, a disc and a cross (three classes + background), made with
NumPy, with a 255 "void" outline around each shape.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_CLASSES = 4  # background, square, disc, cross
IGNORE = 255
SIZE = 18


def make_dataset(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = rng.normal(0.0, 0.35, size=(n, 3, SIZE, SIZE)).astype(np.float32)
    masks = np.zeros((n, SIZE, SIZE), dtype=np.int64)
    colours = np.array([[0.8, 0.2, -0.4], [0.1, 0.9, 0.3], [-0.5, 0.4, 0.9]], dtype=np.float32)
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            cls = int(rng.integers(1, NUM_CLASSES))
            cy, cx = rng.uniform(4, SIZE - 4, size=2)
            r = rng.uniform(2.5, 4.0)
            if cls == 1:
                inside = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
                grown = (np.abs(yy - cy) < r + 1) & (np.abs(xx - cx) < r + 1)
            elif cls == 2:
                d = np.hypot(yy - cy, xx - cx)
                inside, grown = d < r, d < r + 1
            else:
                inside = ((np.abs(yy - cy) < r) & (np.abs(xx - cx) < 1.2)) | ((np.abs(xx - cx) < r) & (np.abs(yy - cy) < 1.2))
                grown = ((np.abs(yy - cy) < r + 1) & (np.abs(xx - cx) < 2.2)) | ((np.abs(xx - cx) < r + 1) & (np.abs(yy - cy) < 2.2))
            images[i][:, inside] += colours[cls - 1][:, None]
            masks[i][grown & ~inside] = IGNORE
            masks[i][inside] = cls
    return torch.from_numpy(images), torch.from_numpy(masks)


def conv_bn_relu(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SegNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=NUM_CLASSES):
        super().__init__()
        self.enc1 = nn.Sequential(conv_bn_relu(in_channels, 16), conv_bn_relu(16, 16))
        self.enc2 = nn.Sequential(conv_bn_relu(16, 32), conv_bn_relu(32, 32))
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.dec2 = nn.Sequential(conv_bn_relu(32, 32), conv_bn_relu(32, 16))
        self.dec1 = nn.Sequential(conv_bn_relu(16, 16), nn.Conv2d(16, num_classes, kernel_size=3, padding=1))

    def forward(self, x):
        x = self.enc1(x)
        size1 = x.size()
        x, indices1 = self.pool(x)
        x = self.enc2(x)
        size2 = x.size()
        x, indices2 = self.pool(x)
        x = self.unpool(x, indices2, output_size=size2)
        x = self.dec2(x)
        x = self.unpool(x, indices1, output_size=size1)
        return self.dec1(x)

    def forward_functional(self, x):
        x = self.enc1(x)
        size1 = x.shape[-2:]
        x, indices1 = F.max_pool2d(x, kernel_size=2, stride=2, return_indices=True)
        x = self.enc2(x)
        size2 = x.shape[-2:]
        x, indices2 = F.max_pool2d(x, kernel_size=2, stride=2, return_indices=True)
        x = F.max_unpool2d(x, indices2, kernel_size=2, stride=2, output_size=size2)
        x = self.dec2(x)
        x = F.max_unpool2d(x, indices1, kernel_size=2, stride=2, output_size=size1)
        return self.dec1(x)


def median_frequency_weights(masks, num_classes):
    labelled = masks[masks != IGNORE]
    counts = torch.bincount(labelled, minlength=num_classes).float()
    freq = counts / counts.sum()
    return freq.median() / freq


def dice_loss(logits, target, num_classes, eps=1.0):
    probs = F.softmax(logits, dim=1)
    valid = (target != IGNORE).unsqueeze(1).float()
    one_hot = F.one_hot(target.clamp(max=num_classes - 1), num_classes).permute(0, 3, 1, 2).float()
    probs, one_hot = probs * valid, one_hot * valid
    dims = (0, 2, 3)
    intersection = torch.sum(probs * one_hot, dims)
    cardinality = torch.sum(probs + one_hot, dims)
    dice = (2.0 * intersection + eps) / (cardinality + eps)
    return 1.0 - dice.mean()


def iou_per_class(pred, target, num_classes):
    valid = target != IGNORE
    ious = []
    for c in range(num_classes):
        p, t = (pred == c) & valid, (target == c) & valid
        union = (p | t).sum().item()
        ious.append((p & t).sum().item() / union if union else float("nan"))
    return ious


train_x, train_y = make_dataset(96)
test_x, test_y = make_dataset(48)
print(f"data {tuple(train_x.shape)} masks {tuple(train_y.shape)} ignored {(train_y == IGNORE).float().mean().item():.3f}")

class_weights = median_frequency_weights(train_y, NUM_CLASSES)
print("median-frequency weights", [round(w, 3) for w in class_weights.tolist()])

model = SegNet()
with torch.no_grad():
    model.eval()
    probe = test_x[:4]
    same = torch.allclose(model(probe), model.forward_functional(probe), atol=1e-6)
    _, idx = model.pool(model.enc1(probe))
    print("module and functional unpool agree", same, "indices", tuple(idx.shape), idx.dtype)
    probs = nn.Softmax2d()(model(probe))
    print(f"Softmax2d sums to one {torch.allclose(probs.sum(1), torch.ones(4, SIZE, SIZE), atol=1e-5)}")

EPOCHS, BATCH = 8, 16
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=EPOCHS * (len(train_x) // BATCH), power=0.9)
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(len(train_x))
    total_ce = total_dice = 0.0
    for start in range(0, len(train_x), BATCH):
        index = order[start:start + BATCH]
        images, target = train_x[index], train_y[index]
        logits = model(images)
        ce = F.cross_entropy(logits, target, weight=class_weights, ignore_index=IGNORE)
        dice = dice_loss(logits, target, NUM_CLASSES)
        loss = ce + dice
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_ce += ce.item()
        total_dice += dice.item()
    steps = len(train_x) // BATCH
    print(f"epoch {epoch} ce {total_ce / steps:.4f} dice {total_dice / steps:.4f} lr {scheduler.get_last_lr()[0]:.5f}")

model.eval()
with torch.no_grad():
    logits = model(test_x)
    pred = logits.argmax(1)
    ious = iou_per_class(pred, test_y, NUM_CLASSES)
    test_ce = F.cross_entropy(logits, test_y, weight=class_weights, ignore_index=IGNORE).item()
    plain_ce = F.cross_entropy(logits, test_y, ignore_index=IGNORE).item()
    per_pixel = F.cross_entropy(logits, test_y, ignore_index=IGNORE, reduction="none")
    valid = test_y != IGNORE
    acc = (pred[valid] == test_y[valid]).float().mean().item()
    functional = model.forward_functional(test_x)
print("test IoU per class", [f"{v:.3f}" for v in ious])
print(f"per-pixel losses zero on void {bool((per_pixel[~valid] == 0).all())} "
      f"mean over valid {per_pixel[valid].mean().item():.4f} = plain {plain_ce:.4f}")
print(f"functional edition max diff {(functional - logits).abs().max().item() < 1e-4}")
miou = sum(ious) / len(ious)
print(f"FINAL test_ce={test_ce:.4f} test_plain_ce={plain_ce:.4f} pixel_acc={acc:.4f} miou={miou:.4f} "
      f"iou_square={ious[1]:.4f} iou_disc={ious[2]:.4f} iou_cross={ious[3]:.4f}")
