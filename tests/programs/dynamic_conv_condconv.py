"""Dynamic Convolution (Chen et al. 2020) and CondConv (Yang et al. 2019) on synthetic shapes, in the
style of the public ports: kaijieshi7/Dynamic-convolution-Pytorch's ``Dynamic_conv2d`` and timm's
``CondConv2d``.

``Dynamic_conv2d``: K expert kernels ``nn.Parameter(torch.randn(K, out_planes, in_planes // groups,
k, k))`` each initialised by ``nn.init.kaiming_uniform_(self.weight[i])``, biases
``nn.Parameter(torch.zeros(K, out_planes))``; the ``attention2d`` router ``nn.AdaptiveAvgPool2d(1)``
-> 1x1 ``Conv2d`` -> ``F.relu`` -> 1x1 ``Conv2d`` -> ``.view(x.size(0), -1)`` ->
``F.softmax(x / self.temperature, 1)``, the temperature annealed from 34 by 3 per epoch
(``assert temperature % 3 == 1``, ``update_temperature``); per-sample kernels by
``torch.mm(softmax_attention, self.weight.view(self.K, -1)).view(batch_size * self.out_planes,
self.in_planes // self.groups, k, k)`` and biases by ``torch.mm(...).view(-1)``; the batch folded
into the groups: ``F.conv2d(x.view(1, -1, height, width), weight=aggregate_weight,
bias=aggregate_bias, stride=..., padding=..., dilation=..., groups=self.groups * batch_size)`` then
``.view(batch_size, self.out_planes, output.size(-2), output.size(-1))``.
timm's ``CondConv2d``: experts stored flat ``(num_experts, num_params)`` and initialised through
``get_condconv_initializer`` (``initializer(weight[i].view(expert_shape))`` with
``partial(nn.init.kaiming_uniform_, a=math.sqrt(5))``), sigmoid routing from
``F.adaptive_avg_pool2d(x, 1).flatten(1)`` through ``nn.Linear``, ``torch.matmul(routing_weights,
self.weight)``, ``x.reshape(1, B * C, H, W)``, ``out.permute([1, 0, 2, 3]).view(B, out_channels,
...)``.

A small dynamic CNN (two Dynamic_conv2d, the second grouped and strided, a CondConv 1x1) against the
same CNN with static ``nn.Conv2d``s, SGD + momentum + ``MultiStepLR``, on four shape classes.
Check: the grouped-batch convolution equals a per-sample loop of ``F.conv2d`` (values and gradients,
for several stride / padding / dilation / groups settings), and CondConv's folded conv equals its loop.
"""
# ruff: noqa: UP008  (the ports' own spelling: super(Dynamic_conv2d, self))

import math
import os
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IMG, NUM_CLASSES = 16, 4


class attention2d(nn.Module):
    def __init__(self, in_planes, ratios, K, temperature, init_weight=True):
        super(attention2d, self).__init__()
        assert temperature % 3 == 1
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        if in_planes != 3:
            hidden_planes = int(in_planes * ratios) + 1
        else:
            hidden_planes = K
        self.fc1 = nn.Conv2d(in_planes, hidden_planes, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden_planes, K, 1, bias=True)
        self.temperature = temperature
        if init_weight:
            self._initialize_weights()

    def _initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def updata_temperature(self):
        if self.temperature != 1:
            self.temperature -= 3

    def forward(self, x):
        x = self.avgpool(x)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x).view(x.size(0), -1)
        return F.softmax(x / self.temperature, 1)


class Dynamic_conv2d(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, ratio=0.25, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, K=4, temperature=34, init_weight=True):
        super(Dynamic_conv2d, self).__init__()
        assert in_planes % groups == 0
        self.in_planes = in_planes
        self.out_planes = out_planes
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.bias = bias
        self.K = K
        self.attention = attention2d(in_planes, ratio, K, temperature)

        self.weight = nn.Parameter(torch.randn(K, out_planes, in_planes // groups, kernel_size, kernel_size),
                                   requires_grad=True)
        if bias:
            self.bias = nn.Parameter(torch.zeros(K, out_planes))
        else:
            self.bias = None
        if init_weight:
            self._initialize_weights()

    def _initialize_weights(self):
        for i in range(self.K):
            nn.init.kaiming_uniform_(self.weight[i])

    def update_temperature(self):
        self.attention.updata_temperature()

    def forward(self, x, return_attention=False):
        softmax_attention = self.attention(x)
        batch_size, in_planes, height, width = x.size()
        x = x.view(1, -1, height, width)
        weight = self.weight.view(self.K, -1)

        aggregate_weight = torch.mm(softmax_attention, weight).view(
            batch_size * self.out_planes, self.in_planes // self.groups, self.kernel_size, self.kernel_size)
        if self.bias is not None:
            aggregate_bias = torch.mm(softmax_attention, self.bias).view(-1)
            output = F.conv2d(x, weight=aggregate_weight, bias=aggregate_bias, stride=self.stride,
                              padding=self.padding, dilation=self.dilation, groups=self.groups * batch_size)
        else:
            output = F.conv2d(x, weight=aggregate_weight, bias=None, stride=self.stride, padding=self.padding,
                              dilation=self.dilation, groups=self.groups * batch_size)

        output = output.view(batch_size, self.out_planes, output.size(-2), output.size(-1))
        if return_attention:
            return output, softmax_attention
        return output


def get_condconv_initializer(initializer, num_experts, expert_shape):
    def condconv_initializer(weight):
        num_params = math.prod(expert_shape)
        if len(weight.shape) != 2 or weight.shape[0] != num_experts or weight.shape[1] != num_params:
            raise ValueError('CondConv variables must have shape [num_experts, num_params]')
        for i in range(num_experts):
            initializer(weight[i].view(expert_shape))
    return condconv_initializer


class CondConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, dilation=1, groups=1,
                 bias=False, num_experts=4):
        super(CondConv2d, self).__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        self.dilation = (dilation, dilation)
        self.groups = groups
        self.num_experts = num_experts
        self.weight_shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        weight_num_param = 1
        for wd in self.weight_shape:
            weight_num_param *= wd
        self.weight = torch.nn.Parameter(torch.Tensor(self.num_experts, weight_num_param))
        if bias:
            self.bias_shape = (self.out_channels,)
            self.bias = torch.nn.Parameter(torch.Tensor(self.num_experts, self.out_channels))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        init_weight = get_condconv_initializer(
            partial(nn.init.kaiming_uniform_, a=math.sqrt(5)), self.num_experts, self.weight_shape)
        init_weight(self.weight)
        if self.bias is not None:
            fan_in = math.prod(self.weight_shape[1:])
            bound = 1 / math.sqrt(fan_in)
            init_bias = get_condconv_initializer(
                partial(nn.init.uniform_, a=-bound, b=bound), self.num_experts, self.bias_shape)
            init_bias(self.bias)

    def forward(self, x, routing_weights):
        B, C, H, W = x.shape
        weight = torch.matmul(routing_weights, self.weight)
        new_weight_shape = (B * self.out_channels, self.in_channels // self.groups) + self.kernel_size
        weight = weight.view(new_weight_shape)
        bias = None
        if self.bias is not None:
            bias = torch.matmul(routing_weights, self.bias)
            bias = bias.view(B * self.out_channels)
        x = x.reshape(1, B * C, H, W)
        out = F.conv2d(x, weight, bias, stride=self.stride, padding=self.padding,
                       dilation=self.dilation, groups=self.groups * B)
        out = out.permute([1, 0, 2, 3]).view(B, self.out_channels, out.shape[-2], out.shape[-1])
        return out


class CondConvHead(nn.Module):
    """timm's CondConv routing: pooled features -> Linear -> sigmoid, one weight per expert."""

    def __init__(self, in_channels, out_channels, num_experts=4):
        super().__init__()
        self.routing_fn = nn.Linear(in_channels, num_experts)
        self.conv = CondConv2d(in_channels, out_channels, 1, bias=True, num_experts=num_experts)

    def forward(self, x):
        pooled_inputs = F.adaptive_avg_pool2d(x, 1).flatten(1)
        routing_weights = torch.sigmoid(self.routing_fn(pooled_inputs))
        return self.conv(x, routing_weights)


class Net(nn.Module):
    def __init__(self, dynamic=True, num_classes=NUM_CLASSES):
        super().__init__()
        if dynamic:
            self.conv1 = Dynamic_conv2d(3, 16, 3, padding=1, K=4)
            self.conv2 = Dynamic_conv2d(16, 32, 3, stride=2, padding=1, groups=2, K=4)
            self.conv3 = CondConvHead(32, 32)
        else:
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=2)
            self.conv3 = nn.Conv2d(32, 32, 1)
        self.bn1 = nn.BatchNorm2d(16)
        self.bn2 = nn.BatchNorm2d(32)
        self.bn3 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, num_classes)

    def update_temperature(self):
        for m in self.modules():
            if isinstance(m, Dynamic_conv2d):
                m.update_temperature()

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.adaptive_avg_pool2d(x, 1).view(x.size(0), -1)
        return self.fc(x)


def make_shapes(n, rng):
    """A cross, a square outline, a horizontal or a vertical bar pair, at a random place, in noise."""
    labels = rng.integers(0, NUM_CLASSES, size=n)
    images = 0.5 * rng.standard_normal((n, 3, IMG, IMG)).astype(np.float32)
    for i, c in enumerate(labels):
        r, s = rng.integers(1, IMG - 7, size=2)
        colour = rng.uniform(0.8, 1.5, size=(3, 1))
        patch = np.zeros((6, 6), dtype=np.float32)
        if c == 0:
            patch[2:4, :] = 1
            patch[:, 2:4] = 1
        elif c == 1:
            patch[[0, 5], :] = 1
            patch[:, [0, 5]] = 1
        elif c == 2:
            patch[[1, 4], :] = 1
        else:
            patch[:, [1, 4]] = 1
        images[i, :, r:r + 6, s:s + 6] += colour[:, :, None] * patch
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def per_sample_loop(layer, x):
    """The dynamic conv with each sample's aggregated kernel applied by its own F.conv2d."""
    attention = layer.attention(x)
    outs = []
    for b in range(x.size(0)):
        w = (attention[b][:, None] * layer.weight.view(layer.K, -1)).sum(0).view(layer.weight.shape[1:])
        bias = attention[b] @ layer.bias
        outs.append(F.conv2d(x[b:b + 1], w, bias, stride=layer.stride, padding=layer.padding,
                             dilation=layer.dilation, groups=layer.groups))
    return torch.cat(outs, dim=0)


def folded_vs_loop_err(layer, x):
    out = layer(x)
    ref = per_sample_loop(layer, x)
    w = torch.randn_like(out)
    params = (x, layer.weight, layer.bias, layer.attention.fc2.weight)
    g_out = torch.autograd.grad((out * w).sum(), params)
    g_ref = torch.autograd.grad((ref * w).sum(), params)
    return max([(out - ref).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(g_out, g_ref)])


rng = np.random.default_rng(seed)

# --- the batch folded into groups against a per-sample loop, over several conv settings
settings = [dict(kernel_size=3, padding=1), dict(kernel_size=3, stride=2, padding=1, groups=2),
            dict(kernel_size=3, padding=2, dilation=2, groups=4), dict(kernel_size=1, bias=True)]
errs = []
for cfg in settings:
    layer = Dynamic_conv2d(8, 12, K=3, temperature=4, **cfg)
    xs = torch.randn(3, 8, 7, 6, requires_grad=True)
    errs.append(folded_vs_loop_err(layer, xs))
fold_err = max(errs)
print(f"Dynamic_conv2d folded into groups vs per-sample loop, {len(settings)} settings: err {fold_err:.2e}")

cond = CondConvHead(8, 6)
with torch.no_grad():
    cond.conv.bias.normal_()
    xs = torch.randn(3, 8, 5, 5)
    routing = torch.sigmoid(cond.routing_fn(F.adaptive_avg_pool2d(xs, 1).flatten(1)))
    folded = cond(xs)
    loop = torch.cat([F.conv2d(xs[b:b + 1], (routing[b] @ cond.conv.weight).view(cond.conv.weight_shape),
                               routing[b] @ cond.conv.bias) for b in range(3)])
cond_err = (folded - loop).abs().max().item()
print(f"CondConv2d {tuple(folded.shape)} folded vs loop: err {cond_err:.2e}")
check_err = max(fold_err, cond_err)

# --- training the dynamic and the static CNN on the same data
train_x, train_y = make_shapes(384, rng)
test_x, test_y = make_shapes(256, rng)
EPOCHS, BATCH = 8, 32


def train(model, name):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[6], gamma=0.1)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(train_x.size(0))
        total = 0.0
        for i in range(0, train_x.size(0), BATCH):
            idx = perm[i:i + BATCH]
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.numel()
        scheduler.step()
        temperature = ""
        if isinstance(model.conv1, Dynamic_conv2d):
            model.update_temperature()
            temperature = f" temperature {model.conv1.attention.temperature}"
        print(f"{name} epoch {epoch} loss {total / train_x.size(0):.4f}{temperature}")
    model.eval()
    with torch.no_grad():
        logits = model(test_x)
        loss = F.cross_entropy(logits, test_y).item()
        acc = (logits.argmax(1) == test_y).float().mean().item()
    return loss, acc


dynamic = Net(dynamic=True)
static = Net(dynamic=False)
print(f"parameters: dynamic {sum(p.numel() for p in dynamic.parameters())}, "
      f"static {sum(p.numel() for p in static.parameters())}")
dyn_loss, dyn_acc = train(dynamic, "dynamic")
static_loss, static_acc = train(static, "static")
with torch.no_grad():
    _, attention = dynamic.conv1(test_x[:64], return_attention=True)
    attention_entropy = -(attention * attention.clamp_min(1e-12).log()).sum(1).mean().item()
print(f"router entropy at temperature {dynamic.conv1.attention.temperature}: {attention_entropy:.4f}")
print(f"dynamic test loss {dyn_loss:.4f} acc {dyn_acc:.4f}; static test loss {static_loss:.4f} acc {static_acc:.4f}")
print(f"FINAL dyn_loss={dyn_loss:.4f} dyn_acc={dyn_acc:.4f} static_acc={static_acc:.4f} "
      f"router_entropy={attention_entropy:.4f} check_err={check_err:.3e}")
