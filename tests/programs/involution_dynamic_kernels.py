"""Involution (Li et al., CVPR 2021; d-li14/involution's PyTorch ``involution`` module) beside CondConv /
dynamic convolution's per-sample kernels (Yang et al. 2019; Chen et al. 2020), on a synthetic image task.

The involution kernel is generated per pixel: ``reduce`` (1x1 conv + BatchNorm + ReLU) then ``span`` (1x1
conv to ``kernel_size ** 2 * groups`` channels), after ``nn.AvgPool2d(stride, stride)`` when the stride is
2; the input is ``nn.Unfold(kernel_size, dilation, padding, stride)``-ed and ``view(b, groups,
group_channels, k * k, h, w)``; the product with ``weight.view(b, groups, k * k, h, w).unsqueeze(2)`` is
``sum(dim=3)`` and ``view(b, c, h, w)`` -- exactly the repo's ``forward``.

Dynamic convolution mixes ``K`` expert kernels with a softmax attention (temperature) computed from a
global average pool, and applies the per-sample kernel by the grouped-conv trick: ``x.view(1, -1, h, w)``
convolved with ``aggregate_weight.view(-1, in_planes, k, k)`` at ``groups=batch_size``, output
``view(batch_size, out_planes, ...)``.

Checked: the unfold route equals an explicit loop over kernel offsets (stride 1 and 2), the grouped-conv
trick equals a per-sample loop of ``F.conv2d`` (values and gradients), and test accuracy rising for both
networks on a task where the class is the orientation of a local texture at a random position.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SIZE, CLASSES = 12, 4


# ----------------------------------------------------------------------------------- involution (d-li14)
class ConvModule(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, act=True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=not act)
        self.bn = nn.BatchNorm2d(out_channels) if act else None
        self.activate = nn.ReLU(inplace=True) if act else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.activate(self.bn(x))
        return x


class involution(nn.Module):
    def __init__(self, channels, kernel_size, stride):
        super(involution, self).__init__()  # noqa: UP008
        self.kernel_size = kernel_size
        self.stride = stride
        self.channels = channels
        reduction_ratio = 4
        self.group_channels = 4
        self.groups = self.channels // self.group_channels
        self.conv1 = ConvModule(channels, channels // reduction_ratio, 1)
        self.conv2 = ConvModule(channels // reduction_ratio, kernel_size**2 * self.groups, 1, act=False)
        if stride > 1:
            self.avgpool = nn.AvgPool2d(stride, stride)
        self.unfold = nn.Unfold(kernel_size, 1, (kernel_size - 1) // 2, stride)

    def kernel(self, x):
        weight = self.conv2(self.conv1(x if self.stride == 1 else self.avgpool(x)))
        b, c, h, w = weight.shape
        return weight.view(b, self.groups, self.kernel_size**2, h, w)

    def forward(self, x):
        weight = self.kernel(x)
        b, _, h, w = weight.shape[0], None, weight.shape[-2], weight.shape[-1]
        weight = weight.unsqueeze(2)
        out = self.unfold(x).view(b, self.groups, self.group_channels, self.kernel_size**2, h, w)
        out = (weight * out).sum(dim=3).view(b, self.channels, h, w)
        return out


def involution_loop(module, x):
    """The same operator written as an explicit loop over kernel offsets on a zero-padded input."""
    k, s = module.kernel_size, module.stride
    weight = module.kernel(x)  # b, g, k*k, h, w
    b, c, H, W = x.shape
    h, w = weight.shape[-2:]
    p = (k - 1) // 2
    xp = F.pad(x, (p, p, p, p))
    out = torch.zeros(b, c, h, w)
    for ch in range(c):
        g = ch // module.group_channels
        for i in range(k):
            for j in range(k):
                patch = xp[:, ch, i : i + s * (h - 1) + 1 : s, j : j + s * (w - 1) + 1 : s]
                out[:, ch] += weight[:, g, i * k + j] * patch
    return out


# ----------------------------------------------------------------------------------- dynamic convolution
class attention2d(nn.Module):
    def __init__(self, in_planes, ratios, K, temperature):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        hidden_planes = int(in_planes * ratios) + 1 if in_planes != 3 else K
        self.fc1 = nn.Conv2d(in_planes, hidden_planes, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden_planes, K, 1, bias=True)
        self.temperature = temperature

    def forward(self, x):
        x = self.avgpool(x)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x).view(x.size(0), -1)
        return F.softmax(x / self.temperature, 1)


class Dynamic_conv2d(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, ratio=0.25, stride=1, padding=0, dilation=1, groups=1, bias=True, K=4, temperature=34):
        super().__init__()
        assert in_planes % groups == 0
        self.in_planes, self.out_planes = in_planes, out_planes
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.groups, self.K = dilation, groups, K
        self.attention = attention2d(in_planes, ratio, K, temperature)
        self.weight = nn.Parameter(torch.randn(K, out_planes, in_planes // groups, kernel_size, kernel_size), requires_grad=True)
        self.bias = nn.Parameter(torch.zeros(K, out_planes)) if bias else None
        for i in range(self.K):
            nn.init.kaiming_uniform_(self.weight[i])

    def aggregate(self, x):
        softmax_attention = self.attention(x)
        batch_size = x.size(0)
        weight = self.weight.view(self.K, -1)
        aggregate_weight = torch.mm(softmax_attention, weight).view(batch_size * self.out_planes, self.in_planes // self.groups, self.kernel_size, self.kernel_size)
        aggregate_bias = torch.mm(softmax_attention, self.bias).view(-1) if self.bias is not None else None
        return aggregate_weight, aggregate_bias

    def forward(self, x):
        batch_size, in_planes, height, width = x.size()
        aggregate_weight, aggregate_bias = self.aggregate(x)
        x = x.view(1, -1, height, width)
        output = F.conv2d(x, weight=aggregate_weight, bias=aggregate_bias, stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups * batch_size)
        output = output.view(batch_size, self.out_planes, output.size(-2), output.size(-1))
        return output


def dynamic_loop(module, x):
    aggregate_weight, aggregate_bias = module.aggregate(x)
    w = aggregate_weight.view(x.size(0), module.out_planes, module.in_planes, module.kernel_size, module.kernel_size)
    b = aggregate_bias.view(x.size(0), module.out_planes)
    outs = [F.conv2d(x[i : i + 1], w[i], b[i], module.stride, module.padding, module.dilation) for i in range(x.size(0))]
    return torch.cat(outs, 0)


# ----------------------------------------------------------------------------------- networks
class InvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvModule(1, 8, 3, padding=1)
        self.inv1 = involution(8, 3, 1)
        self.inv2 = involution(8, 3, 2)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, CLASSES)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(self.inv1(x)) + x
        x = F.relu(self.bn(self.inv2(x)))
        return self.fc(torch.flatten(F.adaptive_max_pool2d(x, 1), 1))


class DynNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = Dynamic_conv2d(1, 8, 3, padding=1, K=4, temperature=4)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = Dynamic_conv2d(8, 8, 3, padding=1, stride=2, K=4, temperature=4)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, CLASSES)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(F.adaptive_max_pool2d(x, 1), 1))


# ----------------------------------------------------------------------------------- data
def make_data(n):
    """Class = orientation of a 4x4 stripe texture (horizontal, vertical, two diagonals) at a random place."""
    ii, jj = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    patterns = [(ii % 2 == 0), (jj % 2 == 0), ((ii + jj) % 2 == 0) & (ii % 2 == 0), ((ii - jj) % 4 == 0) | ((ii - jj) % 4 == 2) & (jj % 2 == 1)]
    patterns = [p.astype(np.float32) * 2 - 1 for p in patterns]
    x = 0.35 * rng.randn(n, 1, SIZE, SIZE).astype(np.float32)
    y = rng.randint(0, CLASSES, size=n)
    for k in range(n):
        r, c = rng.randint(0, SIZE - 4, size=2)
        x[k, 0, r : r + 4, c : c + 4] += patterns[y[k]]
    return torch.from_numpy(x), torch.from_numpy(y).long()


train_x, train_y = make_data(384)
test_x, test_y = make_data(192)


def evaluate(model):
    model.eval()
    with torch.no_grad():
        pred = model(test_x).argmax(1)
    model.train()
    return (pred == test_y).float().mean().item()


def train(model, epochs=6, batch_size=32):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.CrossEntropyLoss()
    before = evaluate(model)
    for epoch in range(epochs):
        perm = torch.randperm(train_x.size(0))
        total = 0.0
        for i in range(0, train_x.size(0), batch_size):
            idx = perm[i : i + batch_size]
            loss = criterion(model(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.numel()
        print(f"{type(model).__name__} epoch {epoch}: loss {total / train_x.size(0):.4f}")
    return before, evaluate(model)


# ----------------------------------------------------------------------------------- route checks
x = torch.randn(3, 8, 10, 10)
inv_err = 0.0
for stride in (1, 2):
    m = involution(8, 3, stride).eval()
    fast, slow = m(x), involution_loop(m, x)
    assert fast.shape == slow.shape == (3, 8, 10 // stride, 10 // stride), fast.shape
    inv_err = max(inv_err, (fast - slow).abs().max().item())
inv_ok = inv_err < 1e-5
print(f"involution unfold vs loop: max err {inv_err:.2e} -> {inv_ok}")

d = Dynamic_conv2d(8, 6, 3, padding=1, stride=2, K=4, temperature=4)
xd = torch.randn(5, 8, 9, 9, requires_grad=True)
a = d(xd)
g_a = torch.autograd.grad(a.pow(2).sum(), [xd, d.weight, d.bias])
b = dynamic_loop(d, xd)
g_b = torch.autograd.grad(b.pow(2).sum(), [xd, d.weight, d.bias])
dyn_err = (a - b).abs().max().item()
dyn_gerr = max((u - v).abs().max().item() / (v.abs().max().item() + 1e-12) for u, v in zip(g_a, g_b))
dyn_ok = torch.allclose(a, b, atol=1e-5) and dyn_gerr < 1e-5
print(f"grouped-conv trick vs per-sample loop: max err {dyn_err:.2e}, grad rel err {dyn_gerr:.2e} -> {dyn_ok}")

# ----------------------------------------------------------------------------------- training
inv_before, inv_after = train(InvNet())
dyn_before, dyn_after = train(DynNet())
print(f"involution accuracy {inv_before:.4f} -> {inv_after:.4f}; dynamic conv accuracy {dyn_before:.4f} -> {dyn_after:.4f}")
print(f"FINAL inv_acc={inv_after:.4f} dyn_acc={dyn_after:.4f} inv_gain={inv_after - inv_before:.4f} dyn_gain={dyn_after - dyn_before:.4f} routes_ok={int(inv_ok and dyn_ok)}")
