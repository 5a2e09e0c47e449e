"""A tiny UNet for binary segmentation, in the style of the milesial/Pytorch-UNet repository.

``DoubleConv`` blocks, ``MaxPool2d`` down, ``F.interpolate(scale_factor=2, mode="bilinear",
align_corners=False)`` (and ``nn.Upsample(align_corners=True)``) up, ``F.pad`` to match skip
shapes, ``torch.cat([x2, x1], dim=1)`` skip connections, a soft Dice loss plus
``BCEWithLogitsLoss``, RMSprop, ``torch.sigmoid(...) > 0.5`` masks and an IoU metric.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class ShapesDataset(Dataset):
    """Noisy 16x16 images with one or two bright discs; the mask marks the discs."""

    def __init__(self, n, seed):
        rng = np.random.RandomState(seed)
        ys, xs = np.mgrid[0:16, 0:16]
        self.images = np.zeros((n, 1, 16, 16), np.float32)
        self.masks = np.zeros((n, 1, 16, 16), np.float32)
        for k in range(n):
            for _ in range(rng.randint(1, 3)):
                cy, cx = rng.uniform(3, 13, size=2)
                r = rng.uniform(2, 4)
                self.masks[k, 0][(ys - cy) ** 2 + (xs - cx) ** 2 <= r * r] = 1.0
            self.images[k] = self.masks[k] * 1.0 + 0.7 * rng.randn(1, 16, 16)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        return {"image": torch.as_tensor(self.images[idx].copy()).float().contiguous(),
                "mask": torch.as_tensor(self.masks[idx].copy()).long().contiguous()}


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels, use_module):
        super().__init__()
        self.use_module = use_module
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)

    def forward(self, x1, x2):
        if self.use_module:
            x1 = self.up(x1)
        else:
            x1 = F.interpolate(x1, scale_factor=2, mode="bilinear", align_corners=False)
        # input is CHW
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes):
        super().__init__()
        self.inc = DoubleConv(n_channels, 8)
        self.down1 = Down(8, 16)
        self.down2 = Down(16, 16)
        self.up1 = Up(32, 8, use_module=False)
        self.up2 = Up(16, 8, use_module=True)
        self.outc = nn.Conv2d(8, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        return self.outc(x)


def dice_coeff(input, target, reduce_batch_first=False, epsilon=1e-6):
    # Average of Dice coefficient for all batches, or for a single mask
    assert input.size() == target.size()
    sum_dim = (-1, -2) if input.dim() == 2 or not reduce_batch_first else (-1, -2, -3)
    inter = 2 * (input * target).sum(dim=sum_dim)
    sets_sum = input.sum(dim=sum_dim) + target.sum(dim=sum_dim)
    sets_sum = torch.where(sets_sum == 0, inter, sets_sum)
    dice = (inter + epsilon) / (sets_sum + epsilon)
    return dice.mean()


def dice_loss(input, target):
    return 1 - dice_coeff(input, target, reduce_batch_first=True)


train_loader = DataLoader(ShapesDataset(160, 1), batch_size=16, shuffle=True)
val_loader = DataLoader(ShapesDataset(64, 2), batch_size=32, shuffle=False, drop_last=False)
model = UNet(n_channels=1, n_classes=1)
model = model.to(memory_format=torch.channels_last)
optimizer = optim.RMSprop(model.parameters(), lr=3e-3, weight_decay=1e-8, momentum=0.9, foreach=True)
criterion = nn.BCEWithLogitsLoss()
print(f"Network: {sum(p.numel() for p in model.parameters())} parameters, "
      f"{len(train_loader.dataset)} training images")


@torch.inference_mode()
def evaluate(net, dataloader):
    net.eval()
    dice_score = 0.0
    intersection = union = 0.0
    for batch in dataloader:
        image, mask_true = batch["image"], batch["mask"]
        mask_pred = (torch.sigmoid(net(image)) > 0.5).float()
        dice_score += dice_coeff(mask_pred.squeeze(1), mask_true.float().squeeze(1), reduce_batch_first=False)
        intersection += (mask_pred.bool() & mask_true.bool()).sum().item()
        union += (mask_pred.bool() | mask_true.bool()).sum().item()
    net.train()
    return (dice_score / max(len(dataloader), 1)).item(), intersection / union


global_step = 0
for epoch in range(1, 6):
    model.train()
    epoch_loss = 0.0
    for batch in train_loader:
        images, true_masks = batch["image"], batch["mask"]
        images = images.to(memory_format=torch.channels_last)
        masks_pred = model(images)
        loss = criterion(masks_pred.squeeze(1), true_masks.squeeze(1).float())
        loss += dice_loss(torch.sigmoid(masks_pred.squeeze(1)), true_masks.squeeze(1).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        global_step += 1
        epoch_loss += loss.item()
    val_score, iou = evaluate(model, val_loader)
    print(f"Epoch {epoch}: step {global_step}, loss {epoch_loss / len(train_loader):.4f}, "
          f"validation Dice {val_score:.4f}, IoU {iou:.4f}")

print(f"FINAL loss={epoch_loss / len(train_loader):.4f} dice={val_score:.4f} iou={iou:.4f}")
