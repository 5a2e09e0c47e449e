"""DeepLabv3 in torchvision's idioms (models/segmentation/deeplabv3.py, references/segmentation), tiny.

``ASPPConv`` as an ``nn.Sequential`` of a dilated ``nn.Conv2d(..., 3, padding=dilation,
dilation=dilation, bias=False)`` + ``BatchNorm2d`` + ``ReLU``; ``ASPPPooling`` (``nn.AdaptiveAvgPool2d(1)``
then ``F.interpolate(x, size=size, mode="bilinear", align_corners=False)`` back to
``x.shape[-2:]``) with a ``forward`` iterating ``for mod in self``; ``ASPP`` joining its branches
by ``torch.cat(res, dim=1)`` into a 1x1 projection with ``Dropout(0.5)``; ``DeepLabHead``; the
``_SimpleSegmentationModel`` forward returning an ``OrderedDict`` with ``"out"`` upsampled to the
input size; ``nn.CrossEntropyLoss(ignore_index=255)`` on masks with 255 borders (VOC's
"void"), the masks shrunk by ``F.interpolate(mode="nearest")``; the references' poly schedule
``LambdaLR(optimizer, lambda x: (1 - x / max_it) ** 0.9)`` stepped per iteration, SGD with momentum
and weight decay on two parameter groups; ``ConfusionMatrix`` with ``torch.bincount(n * a[k] +
b[k], minlength=n ** 2).reshape(n, n)`` under ``torch.inference_mode()``, global accuracy and
per-class IoU; evaluation in ``model.eval()`` (BatchNorm on running statistics).
"""

import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_CLASSES = 3  # background, square, disc
FULL, SIZE = 48, 24


def make_dataset(n):
    """Noisy images of squares and discs at FULL resolution, masks with a 255 "void" ring."""
    yy, xx = np.mgrid[0:FULL, 0:FULL]
    images = np.empty((n, 3, FULL, FULL), dtype=np.float32)
    masks = np.zeros((n, FULL, FULL), dtype=np.int64)
    for i in range(n):
        images[i] = rng.normal(0.0, 0.3, size=(3, FULL, FULL))
        for _ in range(rng.integers(1, 4)):
            cls = rng.integers(1, NUM_CLASSES)
            cy, cx = rng.uniform(8, FULL - 8, size=2)
            r = rng.uniform(5, 9)
            if cls == 1:
                inside = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
                border = (np.abs(yy - cy) < r + 1.5) & (np.abs(xx - cx) < r + 1.5) & ~inside
            else:
                d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
                inside = d < r
                border = (d < r + 1.5) & ~inside
            # both shapes have the same colour: only their outline tells them apart
            images[i][:, inside] += np.array([0.9, 0.4, -0.5], dtype=np.float32)[:, None]
            masks[i][border] = 255
            masks[i][inside] = cls
    images = torch.from_numpy(images)
    masks = torch.from_numpy(masks)
    images = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    masks = F.interpolate(masks[:, None].float(), size=(SIZE, SIZE), mode="nearest")[:, 0].long()
    return images, masks


class ASPPConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        modules = [
            nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        ]
        super().__init__(*modules)


class ASPPPooling(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        for mod in self:
            x = mod(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, in_channels, atrous_rates, out_channels: int = 256) -> None:
        super().__init__()
        modules = []
        modules.append(
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())
        )

        rates = tuple(atrous_rates)
        for rate in rates:
            modules.append(ASPPConv(in_channels, out_channels, rate))

        modules.append(ASPPPooling(in_channels, out_channels))

        self.convs = nn.ModuleList(modules)

        self.project = nn.Sequential(
            nn.Conv2d(len(self.convs) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(0.5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _res = []
        for conv in self.convs:
            _res.append(conv(x))
        res = torch.cat(_res, dim=1)
        return self.project(res)


class DeepLabHead(nn.Sequential):
    def __init__(self, in_channels: int, num_classes: int, atrous_rates=(12, 24, 36), width=256) -> None:
        super().__init__(
            ASPP(in_channels, atrous_rates, width),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )


class Backbone(nn.Module):
    """A stand-in for ResNet's layers: output stride 4."""

    def __init__(self, width=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return OrderedDict(out=self.body(x))


class DeepLabV3(nn.Module):
    def __init__(self, backbone, classifier):
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier

    def forward(self, x):
        input_shape = x.shape[-2:]
        # contract: features is a dict of tensors
        features = self.backbone(x)

        result = OrderedDict()
        x = features["out"]
        x = self.classifier(x)
        x = F.interpolate(x, size=input_shape, mode="bilinear", align_corners=False)
        result["out"] = x
        return result


class ConfusionMatrix:
    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.mat = None

    def update(self, a, b):
        n = self.num_classes
        if self.mat is None:
            self.mat = torch.zeros((n, n), dtype=torch.int64, device=a.device)
        with torch.inference_mode():
            k = (a >= 0) & (a < n)
            inds = n * a[k].to(torch.int64) + b[k]
            self.mat += torch.bincount(inds, minlength=n**2).reshape(n, n)

    def compute(self):
        h = self.mat.float()
        acc_global = torch.diag(h).sum() / h.sum()
        acc = torch.diag(h) / h.sum(1)
        iu = torch.diag(h) / (h.sum(1) + h.sum(0) - torch.diag(h))
        return acc_global, acc, iu


def criterion(inputs, target):
    losses = {}
    for name, x in inputs.items():
        losses[name] = nn.functional.cross_entropy(x, target, ignore_index=255)
    return losses["out"]


train_images, train_masks = make_dataset(48)
val_images, val_masks = make_dataset(16)
void = (train_masks == 255).sum().item()
print(f"train {tuple(train_images.shape)} masks {tuple(train_masks.shape)} {train_masks.dtype}, "
      f"classes {sorted(set(train_masks.unique().tolist()))}, void pixels > 0: {void > 0}")

model = DeepLabV3(Backbone(), DeepLabHead(32, NUM_CLASSES, atrous_rates=(1, 2, 3), width=24))
params_to_optimize = [
    {"params": [p for p in model.backbone.parameters() if p.requires_grad]},
    {"params": [p for p in model.classifier.parameters() if p.requires_grad]},
]
optimizer = torch.optim.SGD(params_to_optimize, lr=0.05, momentum=0.9, weight_decay=1e-4)
loss_fn = nn.CrossEntropyLoss(ignore_index=255)

EPOCHS, BATCH = 10, 8
iters_per_epoch = len(train_images) // BATCH
max_it = iters_per_epoch * EPOCHS
lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda x: (1 - x / max_it) ** 0.9)

for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(train_images))
    for it in range(iters_per_epoch):
        idx = perm[it * BATCH:(it + 1) * BATCH]
        image, target = train_images[idx], train_masks[idx]
        output = model(image)
        loss = criterion(output, target)
        # the module and the function agree on the void label
        assert torch.allclose(loss, loss_fn(output["out"], target))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
    if (epoch + 1) % 5 == 0:
        print(f"epoch {epoch + 1}: loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.5f}")

model.eval()
confmat = ConfusionMatrix(NUM_CLASSES)
with torch.inference_mode():
    output = model(val_images)["out"]
    confmat.update(val_masks.flatten(), output.argmax(1).flatten())
    val_loss = loss_fn(output, val_masks).item()
acc_global, acc, iu = confmat.compute()
print(f"output {tuple(output.shape)}, confusion {tuple(confmat.mat.shape)} {confmat.mat.dtype}, "
      f"counted {confmat.mat.sum().item() == (val_masks != 255).sum().item()}")
print("IoU " + " ".join(f"{v:.3f}" for v in (iu * 100).tolist()))

# the same mIoU by hand, as the segmentation repositories write it
n_class = NUM_CLASSES
label, pred = val_masks, output.argmax(1)
mask = (label >= 0) & (label < n_class)
hist = torch.bincount(n_class * label[mask] + pred[mask], minlength=n_class ** 2).reshape(n_class, n_class)
miou_by_hand = (torch.diag(hist) / (hist.sum(0) + hist.sum(1) - torch.diag(hist))).mean().item()
assert abs(miou_by_hand - iu.mean().item()) < 1e-6
print(f"FINAL val_loss={val_loss:.4f} pixel_acc={acc_global.item():.4f} miou={iu.mean().item():.4f}")
