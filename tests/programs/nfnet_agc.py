"""Normaliser-free ResNet pieces (Brock et al., NFNets) as deepmind's and timm's PyTorch code writes them.

``ScaledStdConv2d``: weight standardisation by
``torch.var_mean(w, dim=[1, 2, 3], keepdim=True, unbiased=False)``, ``torch.rsqrt(torch.maximum(var *
fan_in, eps))``, a learned per-channel ``gain`` ``nn.Parameter(torch.ones(out, 1, 1, 1))`` and
``F.conv2d`` on the standardised weight; it must agree with timm's newer edition that standardises by
``F.batch_norm(w.reshape(1, out, -1), None, None, weight=(gain * scale).view(-1), training=True,
momentum=0., eps=eps)`` and with ``torch.std_mean``. Gamma-scaled activations (the constant measured as
deepmind does, ``1 / F.gelu(z).std()`` over a large normal sample ``z``) applied by
``F.gelu(x).mul_(gamma)``. ``NormFreeBlock`` with ``x * beta`` on the way in, a zero-initialised
``skipinit_gain`` applied by ``out.mul_(self.skipinit_gain)``, ``out * alpha + shortcut``, and the
network's expected-variance bookkeeping (``beta = 1 / expected_var ** 0.5``, reset after each stage's
first block, ``expected_var += alpha ** 2``), checked at initialisation against the measured
per-block signal variance. Training: SGD ``nesterov=True`` with weight decay only on the conv weights
(``param_groups``), timm's ``adaptive_clip_grad`` (``unitwise_norm`` by ``x.norm(dim=tuple(range(1,
x.ndim)), keepdim=True)``, ``clamp_(min=eps).mul_(clip_factor)``, ``torch.where(trigger, ...)``,
``p.grad.detach().copy_(new_grads)``) on everything but the classifier, against an unclipped run with
a lower learning rate (the unclipped network does not train at AGC's).

The data: 12x12 images of four noisy oriented stripe patterns, made with NumPy.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE = 12
NUM_CLASSES = 4


def make_images(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    images = rng.normal(0.0, 1.0, size=(n, 3, SIZE, SIZE)).astype(np.float32)
    for i, label in enumerate(labels):
        phase = rng.uniform(0, 2 * np.pi)
        freq = rng.uniform(0.7, 1.1)
        coord = [yy, xx, yy + xx, yy - xx][label]
        images[i] += np.sin(freq * coord + phase)[None] * rng.uniform(0.45, 0.8, size=(3, 1, 1))
    return torch.from_numpy(images), torch.from_numpy(labels)


x_train, y_train = make_images(256)
x_test, y_test = make_images(256)

# deepmind's nonlinearity gammas: 1 / std(act(z)) for z ~ N(0, 1), measured on a large sample
z = torch.from_numpy(rng.normal(size=200_000).astype(np.float32))
GAMMA_GELU = (1.0 / F.gelu(z).std()).item()
print(f"gamma gelu={GAMMA_GELU:.3f} (timm's constant 1.7015)")


class GammaAct(nn.Module):
    def __init__(self, gamma):
        super().__init__()
        self.gamma = gamma

    def forward(self, x):
        return F.gelu(x).mul_(self.gamma)


class ScaledStdConv2d(nn.Conv2d):
    """Conv2d with weight standardisation, as in the NFNet papers' reference code."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=None, bias=True,
                 gamma=1.0, eps=1e-4):
        if padding is None:
            padding = ((stride - 1) + (kernel_size - 1)) // 2
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        nn.init.kaiming_normal_(self.weight)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))
        self.gamma = gamma
        self.eps = eps
        self.register_buffer("fan_in", torch.tensor(self.weight.shape[1:].numel(), dtype=torch.float32),
                             persistent=False)

    def get_weight(self):
        var, mean = torch.var_mean(self.weight, dim=[1, 2, 3], keepdim=True, unbiased=False)
        scale = torch.rsqrt(torch.maximum(var * self.fan_in, torch.tensor(self.eps)))
        return (self.weight - mean) * scale * self.gain * self.gamma

    def forward(self, x):
        return F.conv2d(x, self.get_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


def timm_batch_norm_weight(conv):
    """timm's current ScaledStdConv2d standardises the weight with F.batch_norm."""
    scale = conv.gamma * conv.weight[0].numel() ** -0.5
    return F.batch_norm(conv.weight.reshape(1, conv.out_channels, -1), None, None,
                        weight=(conv.gain * scale).view(-1), training=True, momentum=0.,
                        eps=conv.eps / conv.fan_in.item()).reshape_as(conv.weight)


def std_mean_weight(conv):
    std, mean = torch.std_mean(conv.weight, dim=[1, 2, 3], keepdim=True, unbiased=False)
    return conv.gain * conv.gamma * (conv.weight - mean) / (std * conv.fan_in.sqrt())


class NormFreeBlock(nn.Module):
    """Pre-activation NF-ResNet block: out = alpha * f(x * beta) * skipinit_gain + shortcut."""

    def __init__(self, in_chs, out_chs, stride, alpha, beta):
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.act1 = GammaAct(GAMMA_GELU)
        self.downsample = None
        if in_chs != out_chs or stride != 1:
            self.downsample = ScaledStdConv2d(in_chs, out_chs, 1, stride=stride)
        self.conv1 = ScaledStdConv2d(in_chs, out_chs, 3, stride=stride)
        self.act2 = GammaAct(GAMMA_GELU)
        self.conv2 = ScaledStdConv2d(out_chs, out_chs, 3)
        self.skipinit_gain = nn.Parameter(torch.tensor(0.))

    def forward(self, x):
        out = self.act1(x) * self.beta
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(self.act2(out))
        out.mul_(self.skipinit_gain)
        return out * self.alpha + shortcut


class NFResNet(nn.Module):
    def __init__(self, widths=(16, 32), depths=(2, 2), alpha=0.2, skipinit=True):
        super().__init__()
        self.stem = ScaledStdConv2d(3, widths[0], 3)
        blocks = []
        self.expected_vars = []
        expected_var = 1.0
        in_chs = widths[0]
        for stage_idx, (width, depth) in enumerate(zip(widths, depths)):
            for block_idx in range(depth):
                stride = 2 if block_idx == 0 and stage_idx > 0 else 1
                blocks.append(NormFreeBlock(in_chs, width, stride, alpha=alpha, beta=1. / expected_var ** 0.5))
                self.expected_vars.append(expected_var)
                if block_idx == 0:
                    expected_var = 1.  # the transition block's shortcut resets the variance
                expected_var += alpha ** 2
                in_chs = width
        self.blocks = nn.Sequential(*blocks)
        self.final_act = GammaAct(GAMMA_GELU)
        self.fc = nn.Linear(in_chs, NUM_CLASSES)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        if not skipinit:
            for block in self.blocks:
                nn.init.ones_(block.skipinit_gain)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(self.final_act(x).mean((2, 3)))


def unitwise_norm(x, norm_type=2.0):
    if x.ndim <= 1:
        return x.norm(norm_type)
    # each output unit (row of a linear weight, filter of a conv) is clipped on its own
    return x.norm(norm_type, dim=tuple(range(1, x.ndim)), keepdim=True)


def adaptive_clip_grad(parameters, clip_factor=0.01, eps=1e-3, norm_type=2.0):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    clipped_units = total_units = 0
    for p in parameters:
        if p.grad is None:
            continue
        p_data = p.detach()
        g_data = p.grad.detach()
        max_norm = unitwise_norm(p_data, norm_type=norm_type).clamp_(min=eps).mul_(clip_factor)
        grad_norm = unitwise_norm(g_data, norm_type=norm_type)
        clipped_grad = g_data * (max_norm / grad_norm.clamp(min=1e-6))
        trigger = grad_norm < max_norm
        new_grads = torch.where(trigger, g_data, clipped_grad)
        p.grad.detach().copy_(new_grads)
        clipped_units += int((~trigger).sum())
        total_units += trigger.numel()
    return clipped_units, total_units


# --- standardisation agrees three ways; the signal propagates as the bookkeeping says ---
check_net = NFResNet(skipinit=False)
conv = check_net.blocks[2].conv1
with torch.no_grad():
    conv.gain.mul_(torch.linspace(0.5, 1.5, conv.out_channels).view(-1, 1, 1, 1))
w_var_mean = conv.get_weight()
print("weights agree:",
      torch.allclose(w_var_mean, timm_batch_norm_weight(conv), atol=1e-5),
      torch.allclose(w_var_mean, std_mean_weight(conv), atol=1e-5))
unit_var = (conv.get_weight() / conv.gain).pow(2).sum(dim=[1, 2, 3])
print(f"standardised filters: squared norm mean={unit_var.mean().item():.4f} (fan-in scaled to 1)")

with torch.no_grad():
    probe = torch.randn(64, 3, SIZE, SIZE)
    h = check_net.stem(probe)
    measured = []
    for block in check_net.blocks:
        measured.append(h.var(dim=(0, 2, 3)).mean().item())
        h = block(h)
for i, (expected, got) in enumerate(zip(check_net.expected_vars, measured)):
    print(f"block {i} expected_var={expected:.2f} beta={check_net.blocks[i].beta:.3f} measured_var={got:.2f}")
var_error = max(abs(math.log(g / e)) for e, g in zip(check_net.expected_vars[1:], measured[1:]))


def evaluate(model):
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        return F.cross_entropy(logits, y_test).item(), (logits.argmax(1) == y_test).float().mean().item()


def train(lr, agc, epochs=4, batch=32):
    torch.manual_seed(seed)
    model = NFResNet()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if name.endswith("weight") and p.ndim == 4 else no_decay).append(p)
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": 5e-5}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=lr, momentum=0.9, nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    clip_params = [p for name, p in model.named_parameters() if not name.startswith("fc.")]
    clipped_fraction = 0.0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train))
        total, clipped, units = 0.0, 0, 0
        for i in range(0, len(x_train), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if agc:
                c, u = adaptive_clip_grad(clip_params, clip_factor=0.02)
                clipped, units = clipped + c, units + u
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        test_loss, test_acc = evaluate(model)
        clipped_fraction = clipped / max(units, 1)
        loss_text = f"{total / len(x_train):.4f}" if math.isfinite(total) else "diverged"
        print(f"lr={lr} agc={int(agc)} epoch {epoch} train_loss {loss_text} test_acc {test_acc:.4f} "
              f"clipped_units {clipped_fraction:.3f}")
    gains = torch.stack([b.skipinit_gain.detach() for b in model.blocks])
    return model, test_loss, test_acc, clipped_fraction, gains


model, loss_agc, acc_agc, clipped, gains = train(lr=0.4, agc=True)
print("skipinit gains:", " ".join(f"{g:.3f}" for g in gains.tolist()))
_, loss_plain, acc_plain, _, _ = train(lr=0.05, agc=False)
print(f"agc lr=0.4 test_acc={acc_agc:.4f}  plain lr=0.05 test_acc={acc_plain:.4f}")
print(f"FINAL agc_acc={acc_agc:.4f} agc_loss={loss_agc:.4f} plain_acc={acc_plain:.4f} "
      f"clipped={clipped:.4f} var_error={var_error:.4f} "
      f"gamma={GAMMA_GELU:.4f}")
