"""A small CIFAR-style ResNet, written the way torchvision and the pytorch-cifar repositories write it.

``BasicBlock`` with a ``downsample`` shortcut (1x1 strided conv + BatchNorm2d) when the shape
changes, ``nn.AdaptiveAvgPool2d((1, 1))`` and ``torch.flatten(x, 1)``, the ``self.modules()``
init loop with ``kaiming_normal_(mode="fan_out", nonlinearity="relu")`` and ``constant_``,
SGD with Nesterov momentum and weight decay, ``MultiStepLR``, ``CrossEntropyLoss(label_smoothing=0.1)``,
top-1 accuracy with ``max(1)``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# data: 3-channel 12x12 images of one of four oriented gratings, with noise and a random phase
rng = np.random.RandomState(0)


def make_images(n):
    ys, xs = np.mgrid[0:12, 0:12].astype(np.float32)
    labels = rng.randint(0, 4, size=n)
    angles = labels * np.pi / 4
    phases = rng.uniform(0, 2 * np.pi, size=n)
    waves = np.sin(0.9 * (np.cos(angles)[:, None, None] * xs + np.sin(angles)[:, None, None] * ys)
                   + phases[:, None, None])
    colours = rng.uniform(0.5, 1.5, size=(n, 3, 1, 1))
    images = (colours * waves[:, None] + 1.3 * rng.randn(n, 3, 12, 12)).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels).long()


train_set = TensorDataset(*make_images(384))
test_set = TensorDataset(*make_images(256))


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=4):
        super().__init__()
        self.inplanes = 8
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 8, layers[0])
        self.layer2 = self._make_layer(block, 16, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


net = ResNet(BasicBlock, [1, 1])
n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
print(f"parameters: {n_params}")
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
optimizer = optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=[4, 5], gamma=0.1)
train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
test_loader = DataLoader(test_set, batch_size=128, shuffle=False)


def evaluate():
    net.eval()
    correct = 0
    total = 0
    test_loss = 0.0
    with torch.no_grad():
        for inputs, targets in test_loader:
            outputs = net(inputs)
            test_loss += criterion(outputs, targets).item() * targets.size(0)
            _, predicted = outputs.max(1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
    return test_loss / total, correct / total


for epoch in range(6):
    net.train()
    train_loss = 0.0
    correct = 0
    total = 0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        train_loss += loss.item()
        _, predicted = outputs.max(1)
        total += targets.size(0)
        correct += predicted.eq(targets).sum().item()
    scheduler.step()
    test_loss, test_acc = evaluate()
    print(f"Epoch {epoch}: train loss {train_loss / len(train_loader):.3f} | train acc {correct / total:.3f} "
          f"on {total} | test loss {test_loss:.3f} acc {test_acc:.3f} | lr {scheduler.get_last_lr()[0]:.4f}")

running_var = net.layer2[0].downsample[1].running_var
print(f"downsample BN running_var mean {running_var.mean().item():.4f}, "
      f"tracked batches {net.bn1.num_batches_tracked.item()}")
print(f"FINAL loss={test_loss:.4f} acc={test_acc:.4f}")
