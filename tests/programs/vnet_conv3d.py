"""V-Net (Milletari et al. 2016, in the layout of mattmacy/vnet.pytorch) and a 3-D U-Net (Cicek et al.
2016, as wolny/pytorch-3dunet builds it) segmenting synthetic spheres in small noisy volumes.

V-Net: ``InputTransition`` (``nn.Conv3d(1, C, kernel_size=5, padding=2)``, ``nn.BatchNorm3d``, the input
repeated over channels, by ``x.repeat(1, C, 1, 1, 1)`` and by ``torch.cat([x] * C, 1)``, added as a
residual, ``nn.PReLU(C)``), ``DownTransition`` (a ``kernel_size=2, stride=2`` down convolution, ``LUConv``
stacks, residual add), ``UpTransition`` (``nn.ConvTranspose3d(kernel_size=2, stride=2)``, ``torch.cat``
with the skip, ``LUConv`` stack, residual add), ``OutputTransition`` (5x5x5 then 1x1x1 conv to two
classes' logits in (N, C, D, H, W)), and a deep-supervision head on the coarsest level upsampled by
``F.interpolate(..., mode='trilinear', align_corners=False)``. The loss is a soft Dice (``2 * (p *
g).sum(dim=(2, 3, 4)) / (p.sum(dim=(2, 3, 4)) + g.sum(dim=(2, 3, 4)) + eps)``) on softmax probabilities
and a one-hot target permuted to (N, C, D, H, W), plus ``F.cross_entropy`` with a class weight for the
rare foreground. The 3-D U-Net uses double 3x3x3 conv-BN-ReLU blocks, ``nn.MaxPool3d(2)`` and
``nn.ConvTranspose3d`` decoders with ``torch.cat`` skips. Both train with Adam; Dice on held-out
volumes under ``torch.no_grad()`` in ``eval()`` mode.

Checked: both networks' held-out Dice against thresholding the raw intensity; the two channel
repetitions agree; the batched Dice equals a per-volume loop on flattened tensors.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SIZE = 12
BASE = 8


# ----------------------------------------------------------------------------------- data
def make_volumes(n):
    """One or two bright spheres on a smoothly varying background with noise; the label is the
    spheres' mask. A global threshold is confused by the background ramp."""
    grid = np.stack(np.meshgrid(*[np.arange(SIZE)] * 3, indexing="ij"), axis=0).astype(np.float32)
    volumes = np.zeros((n, 1, SIZE, SIZE, SIZE), dtype=np.float32)
    labels = np.zeros((n, SIZE, SIZE, SIZE), dtype=np.int64)
    for i in range(n):
        mask = np.zeros((SIZE, SIZE, SIZE), dtype=bool)
        for _ in range(rng.randint(1, 3)):
            center = rng.uniform(3, SIZE - 3, size=3).reshape(3, 1, 1, 1)
            radius = rng.uniform(1.8, 3.2)
            mask |= ((grid - center) ** 2).sum(0) <= radius ** 2
        direction = rng.randn(3).reshape(3, 1, 1, 1)
        background = 0.6 * (direction * (grid / SIZE - 0.5)).sum(0)
        volumes[i, 0] = mask * 1.0 + background + 0.35 * rng.randn(SIZE, SIZE, SIZE)
        labels[i] = mask
    return torch.from_numpy(volumes), torch.from_numpy(labels)


train_x, train_y = make_volumes(24)
test_x, test_y = make_volumes(8)
print(f"volumes: train {tuple(train_x.shape)} test {tuple(test_x.shape)} "
      f"foreground {train_y.float().mean().item():.3f}")


# ----------------------------------------------------------------------------------- V-Net
def passthrough(x, **kwargs):
    return x


class LUConv(nn.Module):
    def __init__(self, nchan):
        super().__init__()
        self.relu1 = nn.PReLU(nchan)
        self.conv1 = nn.Conv3d(nchan, nchan, kernel_size=5, padding=2)
        self.bn1 = nn.BatchNorm3d(nchan)

    def forward(self, x):
        return self.relu1(self.bn1(self.conv1(x)))


def _make_nConv(nchan, depth):
    return nn.Sequential(*[LUConv(nchan) for _ in range(depth)])


class InputTransition(nn.Module):
    def __init__(self, outChans, use_cat=False):
        super().__init__()
        self.outChans = outChans
        self.use_cat = use_cat
        self.conv1 = nn.Conv3d(1, outChans, kernel_size=5, padding=2)
        self.bn1 = nn.BatchNorm3d(outChans)
        self.relu1 = nn.PReLU(outChans)

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        # split input in to 16 channels (here BASE)
        if self.use_cat:
            x16 = torch.cat([x] * self.outChans, 1)
        else:
            x16 = x.repeat(1, self.outChans, 1, 1, 1)
        return self.relu1(torch.add(out, x16))


class DownTransition(nn.Module):
    def __init__(self, inChans, nConvs, dropout=False):
        super().__init__()
        outChans = 2 * inChans
        self.down_conv = nn.Conv3d(inChans, outChans, kernel_size=2, stride=2)
        self.bn1 = nn.BatchNorm3d(outChans)
        self.do1 = passthrough
        self.relu1 = nn.PReLU(outChans)
        self.relu2 = nn.PReLU(outChans)
        if dropout:
            self.do1 = nn.Dropout3d(0.1)
        self.ops = _make_nConv(outChans, nConvs)

    def forward(self, x):
        down = self.relu1(self.bn1(self.down_conv(x)))
        out = self.do1(down)
        out = self.ops(out)
        return self.relu2(torch.add(out, down))


class UpTransition(nn.Module):
    def __init__(self, inChans, outChans, nConvs):
        super().__init__()
        self.up_conv = nn.ConvTranspose3d(inChans, outChans // 2, kernel_size=2, stride=2)
        self.bn1 = nn.BatchNorm3d(outChans // 2)
        self.relu1 = nn.PReLU(outChans // 2)
        self.relu2 = nn.PReLU(outChans)
        self.ops = _make_nConv(outChans, nConvs)

    def forward(self, x, skipx):
        out = self.relu1(self.bn1(self.up_conv(x)))
        xcat = torch.cat((out, skipx), 1)
        out = self.ops(xcat)
        return self.relu2(torch.add(out, xcat))


class OutputTransition(nn.Module):
    def __init__(self, inChans, n_classes=2):
        super().__init__()
        self.conv1 = nn.Conv3d(inChans, n_classes, kernel_size=5, padding=2)
        self.bn1 = nn.BatchNorm3d(n_classes)
        self.conv2 = nn.Conv3d(n_classes, n_classes, kernel_size=1)
        self.relu1 = nn.PReLU(n_classes)

    def forward(self, x):
        return self.conv2(self.relu1(self.bn1(self.conv1(x))))


class VNet(nn.Module):
    def __init__(self, base=BASE, n_classes=2):
        super().__init__()
        self.in_tr = InputTransition(base)
        self.down_tr32 = DownTransition(base, 1)
        self.down_tr64 = DownTransition(2 * base, 1, dropout=True)
        self.up_tr64 = UpTransition(4 * base, 4 * base, 1)
        self.up_tr32 = UpTransition(4 * base, 2 * base, 1)
        self.out_tr = OutputTransition(2 * base, n_classes)
        self.deep_supervision = nn.Conv3d(4 * base, n_classes, kernel_size=1)

    def forward(self, x):
        out16 = self.in_tr(x)
        out32 = self.down_tr32(out16)
        out64 = self.down_tr64(out32)
        out = self.up_tr64(out64, out32)
        out = self.up_tr32(out, out16)
        logits = self.out_tr(out)
        if self.training:
            aux = F.interpolate(self.deep_supervision(out64), size=x.shape[2:], mode="trilinear", align_corners=False)
            return logits, aux
        return logits


# ----------------------------------------------------------------------------------- 3-D U-Net
class DoubleConv(nn.Sequential):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        mid = max(out_channels // 2, in_channels) if in_channels < out_channels else out_channels
        self.add_module("conv1", nn.Conv3d(in_channels, mid, kernel_size=3, padding=1, bias=False))
        self.add_module("bn1", nn.BatchNorm3d(mid))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module("conv2", nn.Conv3d(mid, out_channels, kernel_size=3, padding=1, bias=False))
        self.add_module("bn2", nn.BatchNorm3d(out_channels))
        self.add_module("relu2", nn.ReLU(inplace=True))


class UNet3D(nn.Module):
    def __init__(self, f_maps=(8, 16, 32), n_classes=2):
        super().__init__()
        self.encoders = nn.ModuleList()
        in_channels = 1
        for i, out_channels in enumerate(f_maps):
            pool = nn.MaxPool3d(kernel_size=2) if i > 0 else nn.Identity()
            self.encoders.append(nn.Sequential(pool, DoubleConv(in_channels, out_channels)))
            in_channels = out_channels
        self.upsamples = nn.ModuleList()
        self.decoders = nn.ModuleList()
        reversed_maps = list(reversed(f_maps))
        for i in range(len(reversed_maps) - 1):
            self.upsamples.append(nn.ConvTranspose3d(reversed_maps[i], reversed_maps[i + 1], kernel_size=2, stride=2))
            self.decoders.append(DoubleConv(2 * reversed_maps[i + 1], reversed_maps[i + 1]))
        self.final_conv = nn.Conv3d(f_maps[0], n_classes, kernel_size=1)

    def forward(self, x):
        encoders_features = []
        for encoder in self.encoders:
            x = encoder(x)
            encoders_features.insert(0, x)
        encoders_features = encoders_features[1:]
        for upsample, decoder, features in zip(self.upsamples, self.decoders, encoders_features):
            x = decoder(torch.cat((features, upsample(x)), dim=1))
        return self.final_conv(x)


# ----------------------------------------------------------------------------------- losses
def soft_dice(probs, one_hot, eps=1e-5):
    """per volume and class: 2 |P G| / (|P| + |G|), shape (N, C)"""
    intersection = (probs * one_hot).sum(dim=(2, 3, 4))
    return 2 * intersection / (probs.sum(dim=(2, 3, 4)) + one_hot.sum(dim=(2, 3, 4)) + eps)


def segmentation_loss(logits, target, class_weight):
    probs = F.softmax(logits, dim=1)
    one_hot = F.one_hot(target, num_classes=logits.size(1)).permute(0, 4, 1, 2, 3).float()
    dice_loss = 1 - soft_dice(probs, one_hot)[:, 1].mean()
    return dice_loss + F.cross_entropy(logits, target, weight=class_weight)


def hard_dice(pred, target):
    pred, target = pred.float(), target.float()
    intersection = (pred * target).sum(dim=(1, 2, 3))
    return (2 * intersection / (pred.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1e-5)).mean().item()


foreground = train_y.float().mean()
class_weight = torch.tensor([1.0, (0.5 / foreground).item()])
print(f"class weight {class_weight[1].item():.2f}")


def train(model, name, epochs=8, batch_size=4, deep_supervision_weight=0.3):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(1, epochs + 1):
        model.train()
        permutation = torch.randperm(len(train_x))
        total = 0.0
        for start in range(0, len(train_x), batch_size):
            index = permutation[start:start + batch_size]
            x, y = train_x[index], train_y[index]
            output = model(x)
            if isinstance(output, tuple):
                logits, aux = output
                loss = segmentation_loss(logits, y, class_weight) + deep_supervision_weight * segmentation_loss(aux, y, class_weight)
            else:
                loss = segmentation_loss(output, y, class_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        model.eval()
        with torch.no_grad():
            logits = model(test_x)
            dice = hard_dice(logits.argmax(dim=1), test_y)
        print(f"{name} epoch {epoch} loss {total / len(train_x):.4f} test dice {dice:.4f}")
    return dice


# the two channel repetitions agree, and so does the batched Dice with a per-volume loop
x = test_x[:2]
repeat_equal = torch.equal(x.repeat(1, BASE, 1, 1, 1), torch.cat([x] * BASE, 1))
vnet = VNet()
vnet_cat = VNet()
vnet_cat.in_tr.use_cat = True
vnet_cat.load_state_dict(vnet.state_dict())
vnet.eval()
vnet_cat.eval()
with torch.no_grad():
    input_route_diff = (vnet(x) - vnet_cat(x)).abs().max().item()
    probs = F.softmax(vnet(x), dim=1)
    one_hot = F.one_hot(test_y[:2], 2).permute(0, 4, 1, 2, 3).float()
    batched = soft_dice(probs, one_hot)
    looped = torch.stack([
        torch.stack([2 * (probs[n, c].flatten() * one_hot[n, c].flatten()).sum()
                     / (probs[n, c].flatten().sum() + one_hot[n, c].flatten().sum() + 1e-5) for c in range(2)])
        for n in range(2)])
    dice_diff = (batched - looped).abs().max().item()
print(f"repeat vs cat: equal {repeat_equal} output diff {input_route_diff:.2e}; batched vs looped dice diff {dice_diff:.2e}")

# baseline: the best global intensity threshold on the training volumes, applied to the test volumes
thresholds = torch.linspace(0.0, 1.0, 21)
train_dice = [hard_dice(train_x[:, 0] > t, train_y) for t in thresholds]
best = thresholds[int(np.argmax(train_dice))]
baseline_dice = hard_dice(test_x[:, 0] > best, test_y)
print(f"threshold baseline: t {best.item():.2f} test dice {baseline_dice:.4f}")

vnet_dice = train(vnet, "vnet")
unet_dice = train(UNet3D(), "unet3d")
checks = float(repeat_equal and input_route_diff < 1e-5 and dice_diff < 1e-5)
print(f"FINAL vnet_dice={vnet_dice:.4f} unet_dice={unet_dice:.4f} baseline_dice={baseline_dice:.4f} checks={checks:.0f}")
