"""Video classification with 3-D convolutions as torchvision's video models write them
(models/video/resnet.py: C3D-style ``Conv3DSimple``, ``Conv2Plus1D``, ``BasicStem``/``R2Plus1dStem``),
tiny, on synthetic clips of a moving square.

``nn.Conv3d`` with tuple kernels ``(1, 3, 3)``/``(3, 1, 1)`` and ``padding=(0, 1, 1)``/``(1, 0, 0)``
(the factored (2+1)-D conv with ``midplanes`` from the parameter-count formula), a
``(3, 3, 3)`` conv with ``stride=(1, 2, 2)`` and a 1x1x1 ``downsample``, ``nn.BatchNorm3d``,
``nn.MaxPool3d(kernel_size=(1, 2, 2))``, ``nn.AdaptiveAvgPool3d((1, 1, 1))`` + ``x.flatten(1)``,
``nn.Dropout3d``, the init loop (``kaiming_normal_(mode="fan_out", nonlinearity="relu")`` on
``nn.Conv3d``, ``constant_`` on ``nn.BatchNorm3d``, ``normal_(0, 0.01)`` on ``nn.Linear``), clips
resampled in time by ``F.interpolate(size=(T, H, W), mode="trilinear", align_corners=False)``,
``to(memory_format=torch.channels_last_3d)`` on model and input (the output and a training step
equal the contiguous run), Adam + ``CosineAnnealingLR``, ``CrossEntropyLoss``, the clip-averaged
prediction over several temporal crops by ``unfold(2, size, step)``.

The task: a bright square moving in one of four directions (or a static one, five classes) in
noise; only motion tells the classes apart.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

T, S = 8, 12
DIRECTIONS = [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0)]


def make_clips(n, frames=T):
    clips = rng.normal(0.0, 0.3, size=(n, 3, frames, S, S)).astype(np.float32)
    labels = rng.integers(0, len(DIRECTIONS), size=n)
    for i in range(n):
        dy, dx = DIRECTIONS[labels[i]]
        y, x = rng.integers(3, S - 5, size=2)
        for t in range(frames):
            yy = int(np.clip(y + dy * (t - frames // 2), 0, S - 3))
            xx = int(np.clip(x + dx * (t - frames // 2), 0, S - 3))
            clips[i, :, t, yy:yy + 3, xx:xx + 3] += np.array([1.0, 0.6, 0.2], dtype=np.float32)[:, None, None]
    return torch.from_numpy(clips), torch.from_numpy(labels)


class Conv3DSimple(nn.Conv3d):
    def __init__(self, in_planes, out_planes, midplanes=None, stride=1, padding=1):
        super().__init__(in_channels=in_planes, out_channels=out_planes, kernel_size=(3, 3, 3),
                         stride=stride, padding=padding, bias=False)

    @staticmethod
    def get_downsample_stride(stride):
        return stride, stride, stride


class Conv2Plus1D(nn.Sequential):
    def __init__(self, in_planes, out_planes, midplanes, stride=1, padding=1):
        super().__init__(
            nn.Conv3d(in_planes, midplanes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                      padding=(0, padding, padding), bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1),
                      padding=(padding, 0, 0), bias=False),
        )

    @staticmethod
    def get_downsample_stride(stride):
        return stride, stride, stride


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, conv_builder, stride=1, downsample=None):
        midplanes = (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)
        super().__init__()
        self.conv1 = nn.Sequential(conv_builder(inplanes, planes, midplanes, stride),
                                   nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        residual = x
        out = self.conv1(x)
        out = self.conv2(out)
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        out = self.relu(out)
        return out


class R2Plus1dStem(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv3d(3, 12, kernel_size=(1, 3, 3), stride=(1, 1, 1), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(12),
            nn.ReLU(inplace=True),
            nn.Conv3d(12, 16, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(16),
            nn.ReLU(inplace=True),
        )


class BasicStem(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv3d(3, 16, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1), bias=False),
            nn.BatchNorm3d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 2, 2)),
        )


class VideoResNet(nn.Module):
    def __init__(self, conv_maker, stem, num_classes=len(DIRECTIONS)):
        super().__init__()
        self.inplanes = 16
        self.stem = stem()
        self.layer1 = self._make_layer(conv_maker, 16, stride=1)
        self.layer2 = self._make_layer(conv_maker, 24, stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.dropout = nn.Dropout3d(0.1)
        self.fc = nn.Linear(24, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, conv_builder, planes, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            ds_stride = conv_builder.get_downsample_stride(stride)
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes, kernel_size=1, stride=ds_stride, bias=False),
                nn.BatchNorm3d(planes),
            )
        layer = BasicBlock(self.inplanes, planes, conv_builder, stride, downsample)
        self.inplanes = planes
        return layer

    def forward(self, x):
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.avgpool(x)
        x = self.dropout(x)
        x = x.flatten(1)
        return self.fc(x)


def train(model, clips, labels, epochs, name):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(clips))
        running, correct = 0.0, 0
        for start in range(0, len(clips), 16):
            index = order[start:start + 16]
            output = model(clips[index])
            loss = criterion(output, labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item() * len(index)
            correct += (output.argmax(1) == labels[index]).sum().item()
        scheduler.step()
        if epoch % 2 == 1 or epoch == epochs - 1:
            print(f"{name} epoch {epoch} loss {running / len(clips):.4f} acc {correct / len(clips):.3f}")


@torch.no_grad()
def evaluate(model, clips, labels):
    model.eval()
    logits = model(clips)
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


train_x, train_y = make_clips(96)
test_x, test_y = make_clips(48)
long_x, long_y = make_clips(24, frames=2 * T)
print(f"clips {tuple(train_x.shape)} classes {torch.bincount(train_y, minlength=len(DIRECTIONS)).tolist()}")

results = {}
for name, conv_maker, stem in [("r2plus1d", Conv2Plus1D, R2Plus1dStem), ("r3d", Conv3DSimple, BasicStem)]:
    torch.manual_seed(seed)
    model = VideoResNet(conv_maker, stem)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name} parameters {n_params}")
    train(model, train_x, train_y, 8, name)
    results[name] = evaluate(model, test_x, test_y)
    print(f"{name} test loss {results[name][0]:.4f} acc {results[name][1]:.3f}")

    with torch.no_grad():
        # a clip twice as long, either resampled to T frames or cut into temporal crops and averaged
        resampled = F.interpolate(long_x, size=(T, S, S), mode="trilinear", align_corners=False)
        acc_resampled = (model(resampled).argmax(1) == long_y).float().mean().item()
        crops = long_x.unfold(2, T, T // 2)  # (N, C, n_crops, H, W, T)
        crops = crops.permute(0, 2, 1, 5, 3, 4)
        n_crops = crops.shape[1]
        logits = model(crops.reshape(-1, 3, T, S, S)).view(len(long_x), n_crops, -1).softmax(-1).mean(1)
        acc_crops = (logits.argmax(1) == long_y).float().mean().item()
    print(f"{name} long clips: {n_crops} crops acc {acc_crops:.3f} resampled acc {acc_resampled:.3f}")
    results[name + "_crops"] = acc_crops

# channels_last_3d: same outputs and the same training step as the contiguous layout
torch.manual_seed(seed)
base = VideoResNet(Conv2Plus1D, R2Plus1dStem)
channels_last = VideoResNet(Conv2Plus1D, R2Plus1dStem)
channels_last.load_state_dict(base.state_dict())
channels_last = channels_last.to(memory_format=torch.channels_last_3d)
stem_weight = channels_last.stem[0].weight
print("weights channels_last_3d", stem_weight.is_contiguous(memory_format=torch.channels_last_3d),
      "strides", stem_weight.stride())
batch = train_x[:8]
batch_cl = batch.contiguous(memory_format=torch.channels_last_3d)
base.eval()
channels_last.eval()
with torch.no_grad():
    out_base, out_cl = base(batch), channels_last(batch_cl)
print(f"channels_last_3d output matches {torch.allclose(out_base, out_cl, atol=1e-5)}")
base.train()
channels_last.train()
for net, x in [(base, batch), (channels_last, batch_cl)]:
    torch.manual_seed(seed)  # the same Dropout3d mask for both
    loss = F.cross_entropy(net(x), train_y[:8])
    loss.backward()
grad_diff = max((a.grad - b.grad).abs().max().item() for a, b in zip(base.parameters(), channels_last.parameters()))
print(f"channels_last_3d gradients match {grad_diff < 1e-4}")

print(f"FINAL r2plus1d_loss={results['r2plus1d'][0]:.4f} r2plus1d_acc={results['r2plus1d'][1]:.4f} "
      f"r3d_loss={results['r3d'][0]:.4f} r3d_acc={results['r3d'][1]:.4f} "
      f"r2plus1d_crops={results['r2plus1d_crops']:.4f} r3d_crops={results['r3d_crops']:.4f}")
