"""A spiking network trained by backpropagation through time, as snnTorch's tutorials write it.

The spike is a custom ``torch.autograd.Function``: a Heaviside step forward, and in backward the fast
sigmoid surrogate ``grad / (slope * |mem| + 1) ** 2`` (Zenke & Ganguli's SuperSpike), with the
membrane kept by ``ctx.save_for_backward``. A leaky integrate-and-fire neuron
``mem = beta * mem + input - reset * threshold`` resets by subtraction, either through the spike
(``reset = spk``) or with the reset cut from the graph (``spk.detach()``, snnTorch's
``reset_mechanism`` default). Inputs are rate-coded by ``torch.bernoulli`` of the pixel
intensities at every time step, the time loop collects spikes and membranes with ``torch.stack``,
the loss is the cross-entropy of the output spike counts (snnTorch's ``ce_count_loss``), and the
program reports firing rates per layer, accuracy by the most-spiking neuron, and checks the
surrogate's gradient with ``torch.autograd.gradcheck`` in float64 (against the smooth function
whose derivative it is) and that ``gradcheck`` rejects it as the Heaviside's gradient.

The data: 4x4 "images" of four bar orientations with noise, made with NumPy.
"""

import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.gradcheck import GradcheckError

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_STEPS, NUM_INPUTS, NUM_HIDDEN, NUM_OUTPUTS = 20, 16, 48, 4
BETA, THRESHOLD, SLOPE = 0.9, 1.0, 25.0


def make_bars(n):
    """Horizontal, vertical and two diagonal bars on a 4x4 grid, intensities in [0, 1]."""
    patterns = np.zeros((NUM_OUTPUTS, 4, 4), dtype=np.float32)
    patterns[0, 1, :] = 1.0
    patterns[1, :, 2] = 1.0
    patterns[2] = np.eye(4)
    patterns[3] = np.fliplr(np.eye(4))
    labels = rng.integers(0, NUM_OUTPUTS, size=n)
    images = 0.5 * patterns[labels] + rng.uniform(0.0, 0.5, size=(n, 4, 4))
    return torch.from_numpy(np.clip(images, 0, 1).astype(np.float32)), torch.from_numpy(labels)


class FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward; the fast sigmoid's derivative as the surrogate gradient."""

    @staticmethod
    def forward(ctx, mem, slope=SLOPE):
        ctx.save_for_backward(mem)
        ctx.slope = slope
        return (mem > 0).type(mem.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (mem,) = ctx.saved_tensors
        grad_input = grad_output / (ctx.slope * torch.abs(mem) + 1.0) ** 2
        return grad_input, None


spike_fn = FastSigmoidSpike.apply


class LIF(nn.Module):
    def __init__(self, beta=BETA, threshold=THRESHOLD, detach_reset=True):
        super().__init__()
        self.beta, self.threshold, self.detach_reset = beta, threshold, detach_reset

    def init_leaky(self):
        return torch.zeros(0)

    def forward(self, input_, mem):
        if mem.numel() == 0:
            mem = torch.zeros_like(input_)
        spk_prev = spike_fn(mem - self.threshold)
        reset = spk_prev.detach() if self.detach_reset else spk_prev
        mem = self.beta * mem + input_ - reset * self.threshold
        spk = spike_fn(mem - self.threshold)
        return spk, mem


class SpikingNet(nn.Module):
    def __init__(self, detach_reset=True):
        super().__init__()
        self.fc1 = nn.Linear(NUM_INPUTS, NUM_HIDDEN)
        self.lif1 = LIF(detach_reset=detach_reset)
        self.fc2 = nn.Linear(NUM_HIDDEN, NUM_OUTPUTS)
        self.lif2 = LIF(detach_reset=detach_reset)

    def forward(self, spike_train):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk1_rec, spk2_rec, mem2_rec = [], [], []
        for step in range(spike_train.size(0)):
            cur1 = self.fc1(spike_train[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk1_rec.append(spk1)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk1_rec, dim=0), torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def rate_code(images, num_steps=NUM_STEPS):
    """snntorch.spikegen.rate: one Bernoulli draw per pixel and time step."""
    flat = images.view(images.size(0), -1)
    return torch.bernoulli(flat.unsqueeze(0).repeat(num_steps, 1, 1))


def ce_count_loss(spk_out, targets):
    spike_count = spk_out.sum(0)
    return F.cross_entropy(spike_count, targets)


def accuracy(spk_out, targets):
    _, idx = spk_out.sum(dim=0).max(1)
    return (targets == idx).float().mean().item()


# the surrogate's gradient, checked in float64
mem = torch.randn(12, dtype=torch.float64, requires_grad=True)
fast_sigmoid = lambda x: x / (1.0 + SLOPE * torch.abs(x))  # noqa: E731 - the function the surrogate differentiates
surrogate_grad, = torch.autograd.grad(spike_fn(mem).sum(), mem)
exact_grad, = torch.autograd.grad(fast_sigmoid(mem).sum(), mem)
print(f"surrogate equals d/dx fast_sigmoid: {torch.allclose(surrogate_grad, exact_grad)}")


class SmoothedSpike(torch.autograd.Function):
    """The same backward on a forward it really differentiates, for gradcheck."""

    @staticmethod
    def forward(ctx, mem):
        ctx.save_for_backward(mem)
        return mem / (1.0 + SLOPE * torch.abs(mem))

    @staticmethod
    def backward(ctx, grad_output):
        (mem,) = ctx.saved_tensors
        return grad_output / (SLOPE * torch.abs(mem) + 1.0) ** 2


away_from_kink = (torch.rand(8, dtype=torch.float64) + 0.1) * torch.sign(torch.randn(8, dtype=torch.float64))
away_from_kink.requires_grad_(True)
print("gradcheck of the surrogate on its smooth forward:", torch.autograd.gradcheck(SmoothedSpike.apply, (away_from_kink,)))
print("gradcheck of the Heaviside with the surrogate:",
      torch.autograd.gradcheck(spike_fn, (away_from_kink,), raise_exception=False))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        torch.autograd.gradcheck(spike_fn, (away_from_kink.detach().float().requires_grad_(),))
    except GradcheckError as error:  # float32 inputs: a warning, then a mismatch
        print("gradcheck in float32 raises", type(error).__name__, "-", str(error).splitlines()[0])
print("warnings:", [str(w.message) for w in caught])

train_x, train_y = make_bars(256)
test_x, test_y = make_bars(128)
print(f"data {tuple(train_x.shape)} classes {torch.bincount(train_y, minlength=NUM_OUTPUTS).tolist() == torch.bincount(train_y).tolist()}")
probe = rate_code(train_x[:8])
print(f"rate code {tuple(probe.shape)} mean rate {probe.mean().item():.3f} vs intensity {train_x[:8].mean().item():.3f}")


def train(detach_reset, epochs=6, batch=32):
    torch.manual_seed(seed)
    net = SpikingNet(detach_reset=detach_reset)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3, betas=(0.9, 0.999))
    for epoch in range(epochs):
        order = torch.randperm(len(train_x))
        total = 0.0
        for start in range(0, len(train_x), batch):
            index = order[start:start + batch]
            spikes_in = rate_code(train_x[index])
            _, spk_out, mem_out = net(spikes_in)
            loss = ce_count_loss(spk_out, train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"  reset {'detached' if detach_reset else 'attached'} epoch {epoch} loss {total / (len(train_x) // batch):.4f}")
    with torch.no_grad():
        spk_hidden, spk_out, mem_out = net(rate_code(test_x))
    return net, spk_hidden, spk_out, mem_out


results = {}
for detach_reset in (True, False):
    net, spk_hidden, spk_out, mem_out = train(detach_reset)
    acc = accuracy(spk_out, test_y)
    hidden_rate = spk_hidden.mean().item()
    output_rate = spk_out.mean().item()
    silent = (spk_hidden.sum(dim=(0, 1)) == 0).sum().item()
    print(f"reset {'detached' if detach_reset else 'attached'}: acc {acc:.4f} hidden rate {hidden_rate:.4f} "
          f"output rate {output_rate:.4f} silent hidden {silent} "
          f"membrane {tuple(mem_out.shape)} max {mem_out.max().item():.3f}")
    results[detach_reset] = (acc, hidden_rate, output_rate)

# spikes are exactly 0/1 and the surrogate reaches the first layer through the time loop
net = SpikingNet()
spk_hidden, spk_out, _ = net(rate_code(train_x[:16]))
print(f"binary spikes {bool(((spk_hidden == 0) | (spk_hidden == 1)).all())} dtype {spk_hidden.dtype}")
ce_count_loss(spk_out + 0 * spk_hidden.sum(), train_y[:16]).backward()
print(f"fc1 weight grad nonzero {net.fc1.weight.grad.abs().sum().item() > 0}")
print(f"FINAL acc_detached={results[True][0]:.4f} acc_attached={results[False][0]:.4f} "
      f"hidden_rate={results[True][1]:.4f} output_rate={results[True][2]:.4f} "
      f"hidden_rate_attached={results[False][1]:.4f}")
