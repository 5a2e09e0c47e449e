"""Slimmable networks as JiahuiYu/slimmable_networks writes them, on toy 8x8 images of 4 classes.

``SlimmableConv2d`` / ``SlimmableLinear`` subclass ``nn.Conv2d`` / ``nn.Linear`` at their largest
width; ``forward`` reads ``self.width_mult`` (set on every module by ``model.apply(lambda m:
setattr(m, 'width_mult', w))``), slices ``self.weight[:out, :in, :, :]`` and ``self.bias[:out]``
and calls ``F.conv2d`` / ``F.linear``. ``SwitchableBatchNorm2d`` keeps one ``nn.BatchNorm2d`` per
width in an ``nn.ModuleList`` so every width has its own running statistics. Training follows the
sandwich rule with in-place distillation: the largest width learns from the labels, the smallest
and one random middle width learn from the largest's ``softmax(...).detach()`` soft labels through
``nn.KLDivLoss(reduction='batchmean')``; gradients of all widths accumulate before one SGD Nesterov
step under ``CosineAnnealingLR``. Checks: every width beats chance, larger widths are better on
average, and a slice's gradient lands in the right block of the full weight (zeros elsewhere when
only the smallest width ran), equal to the gradient of a standalone copy of that block.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

WIDTH_MULT_LIST = [0.25, 0.5, 0.75, 1.0]
NUM_CLASSES = 4


def make_divisible(v, divisor=4):
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class SwitchableBatchNorm2d(nn.Module):
    def __init__(self, num_features_list):
        super().__init__()
        self.num_features_list = num_features_list
        self.num_features = max(num_features_list)
        bns = []
        for i in num_features_list:
            bns.append(nn.BatchNorm2d(i))
        self.bn = nn.ModuleList(bns)
        self.width_mult = max(WIDTH_MULT_LIST)
        self.ignore_model_profiling = True

    def forward(self, input):
        idx = WIDTH_MULT_LIST.index(self.width_mult)
        y = self.bn[idx](input)
        return y


class SlimmableConv2d(nn.Conv2d):
    def __init__(self, in_channels_list, out_channels_list, kernel_size, stride=1, padding=0,
                 dilation=1, groups_list=(1,), bias=True):
        super().__init__(
            max(in_channels_list), max(out_channels_list), kernel_size, stride=stride,
            padding=padding, dilation=dilation, groups=max(groups_list), bias=bias)
        self.in_channels_list = in_channels_list
        self.out_channels_list = out_channels_list
        self.groups_list = list(groups_list)
        if self.groups_list == [1]:
            self.groups_list = [1 for _ in range(len(in_channels_list))]
        self.width_mult = max(WIDTH_MULT_LIST)

    def forward(self, input):
        idx = WIDTH_MULT_LIST.index(self.width_mult)
        self.in_channels = self.in_channels_list[idx]
        self.out_channels = self.out_channels_list[idx]
        self.groups = self.groups_list[idx]
        weight = self.weight[:self.out_channels, :self.in_channels, :, :]
        if self.bias is not None:
            bias = self.bias[:self.out_channels]
        else:
            bias = self.bias
        y = F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        return y


class SlimmableLinear(nn.Linear):
    def __init__(self, in_features_list, out_features_list, bias=True):
        super().__init__(max(in_features_list), max(out_features_list), bias=bias)
        self.in_features_list = in_features_list
        self.out_features_list = out_features_list
        self.width_mult = max(WIDTH_MULT_LIST)

    def forward(self, input):
        idx = WIDTH_MULT_LIST.index(self.width_mult)
        self.in_features = self.in_features_list[idx]
        self.out_features = self.out_features_list[idx]
        weight = self.weight[:self.out_features, :self.in_features]
        if self.bias is not None:
            bias = self.bias[:self.out_features]
        else:
            bias = self.bias
        return F.linear(input, weight, bias)


class Block(nn.Module):
    def __init__(self, inp, outp, stride):
        super().__init__()
        self.body = nn.Sequential(
            SlimmableConv2d(inp, outp, 3, stride, 1, bias=False),
            SwitchableBatchNorm2d(outp),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.body(x)


class Model(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__()
        channels = [[make_divisible(c * w) for w in WIDTH_MULT_LIST] for c in (16, 32)]
        self.features = nn.Sequential(
            Block([3 for _ in WIDTH_MULT_LIST], channels[0], 1),
            Block(channels[0], channels[1], 2),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(
            SlimmableLinear(channels[1], [num_classes for _ in WIDTH_MULT_LIST]))
        self.reset_parameters()

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)

    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, (2. / n) ** 0.5)
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.data.normal_(0, 0.01)
                m.bias.data.zero_()


# ---- data: 4 classes of 8x8 RGB images, each a blurred class pattern plus noise ----
rng = np.random.RandomState(0)
templates = rng.randn(NUM_CLASSES, 3, 8, 8).astype(np.float32)


def make_split(n):
    y = rng.randint(0, NUM_CLASSES, size=n)
    x = 0.45 * templates[y] + rng.randn(n, 3, 8, 8).astype(np.float32)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


x_train, y_train = make_split(384)
x_test, y_test = make_split(256)
train_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(x_train, y_train), batch_size=32, shuffle=True)

model = Model()
criterion = nn.CrossEntropyLoss()
soft_criterion = nn.KLDivLoss(reduction='batchmean')
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                            weight_decay=1e-4)
epochs = 8
lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))
max_width, min_width = max(WIDTH_MULT_LIST), min(WIDTH_MULT_LIST)
middle = [w for w in WIDTH_MULT_LIST if w not in (max_width, min_width)]


def run_one_epoch(epoch):
    model.train()
    totals = {w: 0.0 for w in (max_width, min_width)}
    for input, target in train_loader:
        optimizer.zero_grad()
        pick = middle[int(torch.randint(len(middle), (1,)))]
        widths_train = [max_width, pick, min_width]
        for width_mult in widths_train:
            model.apply(lambda m: setattr(m, 'width_mult', width_mult))  # noqa: B023  (applied at once)
            output = model(input)
            if width_mult == max_width:
                loss = criterion(output, target)
                soft_target = F.softmax(output, dim=1).detach()
            else:
                loss = soft_criterion(F.log_softmax(output, dim=1), soft_target)
            loss.backward()
            if width_mult in totals:
                totals[width_mult] += loss.item() * input.size(0)
        optimizer.step()
        lr_scheduler.step()
    n = len(train_loader.dataset)
    return totals[max_width] / n, totals[min_width] / n


@torch.no_grad()
def evaluate():
    model.eval()
    accs = {}
    for width_mult in sorted(WIDTH_MULT_LIST, reverse=True):
        model.apply(lambda m: setattr(m, 'width_mult', width_mult))  # noqa: B023
        pred = model(x_test).argmax(dim=1)
        accs[width_mult] = pred.eq(y_test).float().mean().item()
    return accs


first_loss = None
for epoch in range(epochs):
    ce_loss, kd_loss = run_one_epoch(epoch)
    if first_loss is None:
        first_loss = ce_loss
    if epoch % 2 == 1 or epoch == epochs - 1:
        accs = evaluate()
        print(f"epoch {epoch} ce {ce_loss:.4f} kd_min {kd_loss:.4f} lr {lr_scheduler.get_last_lr()[0]:.5f} "
              + " ".join(f"acc@{w:.2f} {accs[w]:.4f}" for w in WIDTH_MULT_LIST))

accs = evaluate()
for w in WIDTH_MULT_LIST:
    assert accs[w] > 1.0 / NUM_CLASSES + 0.1, (w, accs[w])
gains = [accs[b] - accs[a] for a, b in zip(WIDTH_MULT_LIST[:-1], WIDTH_MULT_LIST[1:])]
mean_gain = sum(gains) / len(gains)
assert mean_gain > 0 and accs[max_width] > accs[min_width], gains
bn_gap = max((m.bn[0].running_mean - m.bn[-1].running_mean[:m.num_features_list[0]]).abs().max().item()
             for m in model.modules() if isinstance(m, SwitchableBatchNorm2d))
assert bn_gap > 0.0
print(f"switchable bn: {len(model.features[0].body[1].bn)} bns per layer, running-mean gap {bn_gap:.4f}")

# ---- where a slice's gradient lands: only the smallest width runs ----
model.train()
model.zero_grad(set_to_none=True)
model.apply(lambda m: setattr(m, 'width_mult', min_width))
out = model(x_train[:32])
criterion(out, y_train[:32]).backward()
conv1 = model.features[0].body[0]
conv2 = model.features[1].body[0]
fc = model.classifier[0]
o1, o2, i_fc = conv1.out_channels_list[0], conv2.out_channels_list[0], fc.in_features_list[0]
assert conv1.weight.grad.shape == conv1.weight.shape
assert conv1.weight.grad[o1:].abs().sum().item() == 0.0
assert conv2.weight.grad[o2:].abs().sum().item() == 0.0
assert conv2.weight.grad[:, o1:].abs().sum().item() == 0.0
assert fc.weight.grad[:, i_fc:].abs().sum().item() == 0.0
assert conv2.weight.grad[:o2, :o1].abs().sum().item() > 0.0
assert fc.weight.grad[:, :i_fc].abs().sum().item() > 0.0
untouched = [m.bn[-1].weight.grad for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)]
assert all(g is None for g in untouched)
print(f"slice grads: conv1 block {tuple(conv1.weight.grad[:o1].shape)} conv2 block "
      f"{tuple(conv2.weight.grad[:o2, :o1].shape)} fc block {tuple(fc.weight.grad[:, :i_fc].shape)}")

# the same block as a standalone leaf must receive the same gradient
x_in = model.features[0](x_train[:32]).detach()
block = conv2.weight[:o2, :o1].detach().clone().requires_grad_(True)
ref_full = conv2.weight.detach().clone().requires_grad_(True)
y_block = F.conv2d(x_in, block, None, conv2.stride, conv2.padding)
y_full = F.conv2d(x_in, ref_full[:o2, :o1, :, :], None, conv2.stride, conv2.padding)
g = torch.randn_like(y_block)
(y_block * g).sum().backward()
(y_full * g).sum().backward()
slice_err = (ref_full.grad[:o2, :o1] - block.grad).abs().max().item()
assert ref_full.grad[o2:].abs().sum().item() == 0.0
assert ref_full.grad[:, o1:].abs().sum().item() == 0.0

print(f"FINAL acc_min={accs[min_width]:.4f} acc_max={accs[max_width]:.4f} "
      f"mean_gain={mean_gain:.4f} slice_err={slice_err:.6f}")
