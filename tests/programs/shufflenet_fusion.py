"""ShuffleNetV2 as torchvision (models/shufflenetv2.py) and megvii's ShuffleNet-Series train it, tiny,
then folded for deployment by conv/BatchNorm fusion.

The model: ``channel_shuffle`` by ``x.view(batchsize, groups, channels_per_group, height, width)``,
``torch.transpose(x, 1, 2).contiguous()`` and ``x.view(batchsize, num_channels, height, width)``
(checked against ``nn.ChannelShuffle``), ``InvertedResidual`` splitting by ``x.chunk(2, dim=1)`` at
stride 1 and running both branches at stride 2 (a depthwise ``nn.Conv2d(i, o, k, stride, padding,
bias=bias, groups=i)`` via ``@staticmethod depthwise_conv``), ``torch.cat((x1, self.branch2(x2)),
dim=1)``, stages made by ``setattr(self, name, nn.Sequential(*seq))`` over ``zip(stage_names,
stages_repeats, self._stage_out_channels[1:])``, the ``MaxPool2d(kernel_size=3, stride=2, padding=1)``
stem, global pooling by ``x.mean([2, 3])``; megvii's ``get_parameters`` (no weight decay on
biases, BatchNorm and 1-d weights by ``len(p.size()) > 1``), SGD + ``LambdaLR(lambda step: (1.0 -
step / total_iters))``, ``CrossEntropyLoss(label_smoothing=0.1)``; MACs counted by a forward hook on
every ``nn.Conv2d`` (``output.numel() * in_channels // groups * kernel`` products); training on
``model.to(memory_format=torch.channels_last)``; then ``copy.deepcopy(model).eval()`` fused by
walking ``named_children`` for ``nn.Conv2d`` followed by ``nn.BatchNorm2d`` with
``torch.nn.utils.fusion.fuse_conv_bn_eval`` (the BatchNorm replaced by ``nn.Identity()``), the
fused weights still channels-last, fused == unfused by ``torch.testing.assert_close``, the fused
net's parameter count.

The data: 16x16 textures of four kinds (horizontal, vertical, diagonal stripes, checkerboard) at
random phases and periods, in noise, made with NumPy.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, NUM_CLASSES = 16, 4


def make_textures(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    images = rng.normal(0.0, 0.5, size=(n, 3, SIZE, SIZE)).astype(np.float32)
    for i in range(n):
        period, phase = rng.uniform(3.0, 6.0), rng.uniform(0, 2 * np.pi)
        if labels[i] == 0:
            pattern = np.sin(2 * np.pi * yy / period + phase)
        elif labels[i] == 1:
            pattern = np.sin(2 * np.pi * xx / period + phase)
        elif labels[i] == 2:
            pattern = np.sin(2 * np.pi * (xx + yy) / (period * 1.4) + phase)
        else:
            pattern = np.sign(np.sin(2 * np.pi * xx / period + phase) * np.sin(2 * np.pi * yy / period + phase))
        images[i] += pattern * rng.uniform(0.6, 1.2, size=(3, 1, 1)).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels)


def channel_shuffle(x, groups):
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    # reshape
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    # flatten
    x = x.view(batchsize, num_channels, height, width)
    return x


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        if not (1 <= stride <= 3):
            raise ValueError("illegal stride value")
        self.stride = stride
        branch_features = oup // 2
        if (self.stride == 1) and (inp != branch_features << 1):
            raise ValueError(f"Invalid combination of stride {stride}, inp {inp} and oup {oup} values. "
                             "If stride == 1 then inp should be equal to oup // 2 << 1.")

        if self.stride > 1:
            self.branch1 = nn.Sequential(
                self.depthwise_conv(inp, inp, kernel_size=3, stride=self.stride, padding=1),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, kernel_size=1, stride=1, padding=0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()

        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if (self.stride > 1) else branch_features, branch_features,
                      kernel_size=1, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
            self.depthwise_conv(branch_features, branch_features, kernel_size=3, stride=self.stride, padding=1),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, kernel_size=1, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    @staticmethod
    def depthwise_conv(i, o, kernel_size, stride=1, padding=0, bias=False):
        return nn.Conv2d(i, o, kernel_size, stride, padding, bias=bias, groups=i)

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        out = channel_shuffle(out, 2)
        return out


class ShuffleNetV2(nn.Module):
    def __init__(self, stages_repeats, stages_out_channels, num_classes=NUM_CLASSES):
        super().__init__()
        self._stage_out_channels = stages_out_channels
        input_channels = 3
        output_channels = self._stage_out_channels[0]
        self.conv1 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        input_channels = output_channels
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        stage_names = [f"stage{i}" for i in [2, 3]]
        for name, repeats, output_channels in zip(stage_names, stages_repeats, self._stage_out_channels[1:]):
            seq = [InvertedResidual(input_channels, output_channels, 2)]
            for i in range(repeats - 1):  # noqa: B007 (torchvision's loop)
                seq.append(InvertedResidual(output_channels, output_channels, 1))
            setattr(self, name, nn.Sequential(*seq))
            input_channels = output_channels

        output_channels = self._stage_out_channels[-1]
        self.conv5 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(output_channels, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        x = self.maxpool(x)
        x = self.stage2(x)
        x = self.stage3(x)
        x = self.conv5(x)
        x = x.mean([2, 3])  # globalpool
        x = self.fc(x)
        return x


def get_parameters(model):
    group_no_weight_decay, group_weight_decay = [], []
    for pname, p in model.named_parameters():
        if pname.find("weight") >= 0 and len(p.size()) > 1:
            group_weight_decay.append(p)
        else:
            group_no_weight_decay.append(p)
    assert len(list(model.parameters())) == len(group_weight_decay) + len(group_no_weight_decay)
    return [dict(params=group_weight_decay), dict(params=group_no_weight_decay, weight_decay=0.0)]


def count_macs(model, x):
    macs = []

    def hook(module, inputs, output):
        kernel = module.kernel_size[0] * module.kernel_size[1]
        macs.append(output.numel() // output.size(0) * (module.in_channels // module.groups) * kernel)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return sum(macs), len(macs)


def fuse_model(model):
    """Fold every Conv2d immediately followed by a BatchNorm2d inside each Sequential."""
    fused_pairs = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = [name for name, _ in module.named_children()]
        for first, second in zip(names, names[1:]):
            conv, bn = getattr(module, first), getattr(module, second)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, first, fuse_conv_bn_eval(conv, bn))
                setattr(module, second, nn.Identity())
                fused_pairs += 1
    return fused_pairs


train_x, train_y = make_textures(256)
test_x, test_y = make_textures(128)
print(f"textures {tuple(train_x.shape)} classes {torch.bincount(train_y, minlength=NUM_CLASSES).tolist()}")

probe = torch.arange(2 * 8 * 2 * 2, dtype=torch.float32).view(2, 8, 2, 2)
print("channel_shuffle == nn.ChannelShuffle", torch.equal(channel_shuffle(probe, 2), nn.ChannelShuffle(2)(probe)),
      channel_shuffle(probe, 2)[0, :, 0, 0].tolist())

model = ShuffleNetV2([2, 2], [8, 16, 32, 64])
n_params = sum(p.numel() for p in model.parameters())
macs, n_convs = count_macs(model, train_x[:1])
print(f"parameters {n_params} convs {n_convs} MACs {macs}")
model = model.to(memory_format=torch.channels_last)
print("conv1 weight channels_last", model.conv1[0].weight.is_contiguous(memory_format=torch.channels_last))

EPOCHS, BATCH = 6, 32
total_iters = EPOCHS * len(train_x) // BATCH
optimizer = torch.optim.SGD(get_parameters(model), lr=0.2, momentum=0.9, weight_decay=4e-5)
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda step: (1.0 - step / total_iters) if step <= total_iters else 0, last_epoch=-1)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
print("groups", [len(g["params"]) for g in optimizer.param_groups], [g["weight_decay"] for g in optimizer.param_groups])
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(len(train_x))
    running, correct = 0.0, 0
    for start in range(0, len(train_x), BATCH):
        index = order[start:start + BATCH]
        images = train_x[index].contiguous(memory_format=torch.channels_last)
        output = model(images)
        loss = criterion(output, train_y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item() * len(index)
        correct += (output.argmax(1) == train_y[index]).sum().item()
    print(f"epoch {epoch} loss {running / len(train_x):.4f} acc {correct / len(train_x):.3f} "
          f"lr {optimizer.param_groups[0]['lr']:.4f}")

model.eval()
test_cl = test_x.contiguous(memory_format=torch.channels_last)
with torch.no_grad():
    logits = model(test_cl)
test_loss = nn.functional.cross_entropy(logits, test_y).item()
test_acc = (logits.argmax(1) == test_y).float().mean().item()
print(f"test loss {test_loss:.4f} acc {test_acc:.3f}")

fused = copy.deepcopy(model).eval()
pairs = fuse_model(fused)
fused_params = sum(p.numel() for p in fused.parameters())
with torch.no_grad():
    fused_logits = fused(test_cl)
torch.testing.assert_close(fused_logits, logits, rtol=1e-4, atol=1e-4)
max_diff = (fused_logits - logits).abs().max().item()
still_cl = all(m.weight.is_contiguous(memory_format=torch.channels_last)
               for m in fused.modules() if isinstance(m, nn.Conv2d))
n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
print(f"fused {pairs} conv+bn pairs, BatchNorm2d left {n_bn}, parameters {n_params} -> {fused_params}, "
      f"weights channels_last {still_cl}, agree {max_diff < 1e-4}")
fused_acc = (fused_logits.argmax(1) == test_y).float().mean().item()
print(f"FINAL test_loss={test_loss:.4f} test_acc={test_acc:.4f} fused_acc={fused_acc:.4f} "
      f"fused_pairs={pairs} fused_params={fused_params}")
