"""A small WaveNet / TCN, the way the WaveNet re-implementations and locuslab's TCN write it.

Causal dilated ``nn.Conv1d(..., dilation=2 ** i)`` with left padding by ``F.pad(x, (pad, 0))``,
the gated activation ``torch.tanh(a) * torch.sigmoid(b)`` on ``chunk(2, dim=1)``, residual and
skip 1x1 convolutions, weight normalisation (``nn.utils.weight_norm`` in the TCN edition,
``nn.utils.parametrizations.weight_norm`` in the WaveNet one), mu-law companding
(``torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)``) into 256 classes, a 256-way
``cross_entropy`` over the quantised next sample, and autoregressive sampling with
``torch.multinomial``.  Data are synthetic sums of sines.
"""

import math
import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
warnings.filterwarnings("ignore", category=FutureWarning)  # nn.utils.weight_norm's deprecation

n_classes, mu = 256, 255


def mu_law_encode(x, quantization_channels=n_classes):
    mu = quantization_channels - 1
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).long()


def mu_law_decode(q, quantization_channels=n_classes):
    mu = quantization_channels - 1
    y = 2 * (q.float() / mu) - 1
    return torch.sign(y) * (torch.pow(1 + mu, y.abs()) - 1) / mu


def make_waves(n, length):
    t = np.arange(length + 1)[None, :]
    freq = rng.uniform(0.04, 0.12, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    wave = 0.6 * np.sin(2 * np.pi * freq * t + phase) + 0.2 * np.sin(4 * np.pi * freq * t + 2 * phase)
    return torch.from_numpy(wave.astype(np.float32))


class CausalConv1d(nn.Conv1d):
    def __init__(self, in_channels, out_channels, kernel_size, dilation=1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left_padding = (kernel_size - 1) * dilation

    def forward(self, x):
        return super().forward(F.pad(x, (self.left_padding, 0)))


class ResidualBlock(nn.Module):
    def __init__(self, residual_channels, skip_channels, dilation):
        super().__init__()
        self.dilated = nn.utils.parametrizations.weight_norm(
            CausalConv1d(residual_channels, 2 * residual_channels, 2, dilation=dilation))
        self.residual = nn.Conv1d(residual_channels, residual_channels, 1)
        self.skip = nn.Conv1d(residual_channels, skip_channels, 1)

    def forward(self, x):
        a, b = self.dilated(x).chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return x + self.residual(z), self.skip(z)


class WaveNet(nn.Module):
    def __init__(self, residual_channels=24, skip_channels=32, n_layers=6):
        super().__init__()
        self.causal = CausalConv1d(n_classes, residual_channels, 2)
        self.blocks = nn.ModuleList([ResidualBlock(residual_channels, skip_channels, 2 ** i) for i in range(n_layers)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(skip_channels, n_classes, 1))
        self.receptive_field = 2 ** n_layers + 1

    def forward(self, q):                                 # q: (N, T) classes
        x = F.one_hot(q, n_classes).float().transpose(1, 2)
        x = self.causal(x)
        skips = 0
        for block in self.blocks:
            x, skip = block(x)
            skips = skips + skip
        return self.head(skips)                           # (N, 256, T) logits for the next sample


# --- locuslab's TCN: weight-normed Chomp blocks with a 1x1 downsample, on a regression target ---
class Chomp1d(nn.Module):
    def __init__(self, chomp_size):
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, :-self.chomp_size].contiguous()


class TemporalBlock(nn.Module):
    def __init__(self, n_inputs, n_outputs, kernel_size, dilation, dropout=0.1):
        super().__init__()
        padding = (kernel_size - 1) * dilation
        self.conv1 = nn.utils.weight_norm(nn.Conv1d(n_inputs, n_outputs, kernel_size, padding=padding,
                                                    dilation=dilation))
        self.conv2 = nn.utils.weight_norm(nn.Conv1d(n_outputs, n_outputs, kernel_size, padding=padding,
                                                    dilation=dilation))
        self.net = nn.Sequential(self.conv1, Chomp1d(padding), nn.ReLU(), nn.Dropout(dropout),
                                 self.conv2, Chomp1d(padding), nn.ReLU(), nn.Dropout(dropout))
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()
        self.conv1.weight.data.normal_(0, 0.01)
        self.conv2.weight.data.normal_(0, 0.01)

    def forward(self, x):
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TCN(nn.Module):
    def __init__(self, channels=(16, 16, 16), kernel_size=3):
        super().__init__()
        layers = []
        for i, c in enumerate(channels):
            layers.append(TemporalBlock(1 if i == 0 else channels[i - 1], c, kernel_size, 2 ** i))
        self.network = nn.Sequential(*layers)
        self.linear = nn.Linear(channels[-1], 1)

    def forward(self, x):                                 # x: (N, 1, T) -> next value at every step
        return self.linear(self.network(x).transpose(1, 2)).squeeze(-1)


# mu-law companding round trip: quantisation error is small, largest at the loud end
x = torch.linspace(-1, 1, 101)
q = mu_law_encode(x)
print("mu-law classes:", int(q.min()), int(q.max()), q.dtype, "round trip max error:",
      f"{(mu_law_decode(q) - x).abs().max().item():.4f}")

# causality: changing a future input changes no earlier output
net = WaveNet()
probe = mu_law_encode(make_waves(1, 40)[:, :40])
with torch.no_grad():
    base = net(probe)
    changed = probe.clone()
    changed[0, 30] = (changed[0, 30] + 100) % n_classes
    moved = net(changed)
print("causal:", torch.equal(base[..., :30], moved[..., :30]), "future moved:", not torch.equal(base[..., 30:], moved[..., 30:]))
block = net.blocks[0].dilated
print("parametrized weight_norm:", [n for n, _ in block.named_parameters()])

optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
length = 72
for step in range(1, 121):
    q = mu_law_encode(make_waves(12, length))
    inputs, targets = q[:, :-1], q[:, 1:]
    logits = net(inputs)
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 40 == 0:
        print(f"wavenet step {step}: loss {loss.item():.4f}")

net.eval()
with torch.no_grad():
    q = mu_law_encode(make_waves(32, length))
    logits = net(q[:, :-1])
    wave_loss = F.cross_entropy(logits, q[:, 1:]).item()
    pred = logits.argmax(1)
    within = ((pred - q[:, 1:]).abs() <= 4).float()[:, net.receptive_field:].mean().item()


@torch.no_grad()
def generate(model, prime, n_samples, temperature=0.5):
    q = prime
    for _ in range(n_samples):
        logits = model(q[:, -model.receptive_field:])[:, :, -1]
        probs = F.softmax(logits / temperature, dim=1)
        q = torch.cat([q, torch.multinomial(probs, 1)], dim=1)
    return q


prime_wave = make_waves(4, 80)
generated = generate(net, mu_law_encode(prime_wave)[:, :70], 30)
audio = mu_law_decode(generated)
# the continuation should keep the sine's smoothness: step-to-step change like the priming signal's
jump = (audio[:, 71:] - audio[:, 70:-1]).abs().mean().item()
print("generated:", tuple(generated.shape), generated.dtype, "in range:",
      bool(((generated >= 0) & (generated < n_classes)).all()))
print(f"wavenet: eval loss {wave_loss:.4f} within-4 {within:.4f} generated jump {jump:.4f}")

# the TCN edition: regression of the next value with MSE, old-style weight_norm (weight_g / weight_v)
tcn = TCN()
print("old weight_norm:", sorted(n for n, _ in tcn.network[0].conv1.named_parameters()))
tcn_opt = torch.optim.Adam(tcn.parameters(), lr=4e-3)
for step in range(1, 81):
    w = make_waves(16, 64)
    pred = tcn(w[:, None, :-1])
    tcn_loss = F.mse_loss(pred, w[:, 1:])
    tcn_opt.zero_grad()
    tcn_loss.backward()
    nn.utils.clip_grad_norm_(tcn.parameters(), 1.0)
    tcn_opt.step()
    if step % 40 == 0:
        print(f"tcn step {step}: mse {tcn_loss.item():.5f}")
tcn.eval()
with torch.no_grad():
    w = make_waves(32, 64)
    tcn_mse = F.mse_loss(tcn(w[:, None, :-1])[:, 8:], w[:, 9:]).item()
print(f"FINAL wave_loss={wave_loss:.4f} within4={within:.4f} jump={jump:.4f} tcn_mse={tcn_mse:.5f}")
