"""RevNet-style reversible residual blocks, the way RevTorch and lucidrains' ``reversible.py``
(reformer-pytorch) write them, in a small conv classifier.

A ``ReversibleBlock`` splits its input by ``torch.chunk(x, 2, dim=1)`` and computes
``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` under ``torch.no_grad()``; a custom
``torch.autograd.Function`` (``_ReversibleFunction``) runs the blocks and saves only the output
(``ctx.save_for_backward(y.detach())``); its backward walks the blocks in reverse, re-running ``G``
and ``F`` under ``torch.enable_grad()`` on ``requires_grad_()`` inputs, ``torch.autograd.backward``
into them (which also accumulates the parameter grads), reconstructing ``x2 = y2 - G(y1)`` and
``x1 = y1 - F(x2)`` and returning the input gradient. Dropout inside ``F``/``G`` replays its mask
through Reformer's ``Deterministic`` wrapper (``torch.get_rng_state()`` recorded in forward,
``torch.random.fork_rng`` + ``torch.set_rng_state`` in backward).

Checks: the reversible net's input and parameter gradients equal those of the same net run with
stored activations (dropout on, thanks to the RNG replay), inputs are reconstructed from outputs,
and the classifier trains with SGD + momentum.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import Function

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class Deterministic(nn.Module):
    """Reformer's wrapper: record the RNG state on the forward, replay it on the re-run."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.cpu_state = None

    def record_rng(self, *args):
        self.cpu_state = torch.get_rng_state()

    def forward(self, *args, record_rng=False, set_rng=False, **kwargs):
        if record_rng:
            self.record_rng(*args)

        if not set_rng:
            return self.net(*args, **kwargs)

        rng_devices = []
        with torch.random.fork_rng(devices=rng_devices, enabled=True):
            torch.set_rng_state(self.cpu_state)
            return self.net(*args, **kwargs)


class ReversibleBlock(nn.Module):
    def __init__(self, f, g):
        super().__init__()
        self.f = Deterministic(f)
        self.g = Deterministic(g)

    def forward(self, x):
        x1, x2 = torch.chunk(x, 2, dim=1)
        y1, y2 = None, None

        with torch.no_grad():
            y1 = x1 + self.f(x2, record_rng=self.training)
            y2 = x2 + self.g(y1, record_rng=self.training)

        return torch.cat([y1, y2], dim=1)

    def plain_forward(self, x):
        """The same block with stored activations (what the reversible one must reproduce)."""
        x1, x2 = torch.chunk(x, 2, dim=1)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=1)

    def inverse(self, y):
        y1, y2 = torch.chunk(y, 2, dim=1)
        with torch.no_grad():
            x2 = y2 - self.g(y1, set_rng=True)
            x1 = y1 - self.f(x2, set_rng=True)
        return torch.cat([x1, x2], dim=1)

    def backward_pass(self, y, dy):
        y1, y2 = torch.chunk(y, 2, dim=1)
        del y

        dy1, dy2 = torch.chunk(dy, 2, dim=1)
        del dy

        with torch.enable_grad():
            y1.requires_grad = True
            gy1 = self.g(y1, set_rng=True)
            torch.autograd.backward(gy1, dy2)

        with torch.no_grad():
            x2 = y2 - gy1
            del y2, gy1

            dx1 = dy1 + y1.grad
            del dy1
            y1.grad = None

        with torch.enable_grad():
            x2.requires_grad_()
            fx2 = self.f(x2, set_rng=True)
            torch.autograd.backward(fx2, dx1, retain_graph=True)

        with torch.no_grad():
            x1 = y1 - fx2
            del y1, fx2

            dx2 = dy2 + x2.grad
            del dy2
            x2.grad = None

            x = torch.cat([x1, x2.detach()], dim=1)
            dx = torch.cat([dx1, dx2], dim=1)

        return x, dx


class _ReversibleFunction(Function):
    @staticmethod
    def forward(ctx, x, blocks):
        for block in blocks:
            x = block(x)
        ctx.save_for_backward(x.detach())
        ctx.blocks = blocks
        return x

    @staticmethod
    def backward(ctx, dy):
        y, = ctx.saved_tensors
        for block in ctx.blocks[::-1]:
            y, dy = block.backward_pass(y, dy)
        ctx.reconstructed = y
        return dy, None


class ReversibleSequence(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x, reversible=True):
        if not reversible:
            for block in self.blocks:
                x = block.plain_forward(x)
            return x
        return _ReversibleFunction.apply(x, self.blocks)

    def inverse(self, y):
        for block in self.blocks[::-1]:
            y = block.inverse(y)
        return y


def residual_fn(channels, p_drop):
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        nn.GroupNorm(2, channels),
        nn.ReLU(inplace=True),
        nn.Dropout(p_drop),
        nn.Conv2d(channels, channels, 3, padding=1),
    )


class RevNet(nn.Module):
    def __init__(self, channels=8, depth=3, n_classes=4, p_drop=0.1):
        super().__init__()
        self.stem = nn.Conv2d(1, 2 * channels, 3, padding=1)
        self.body = ReversibleSequence([
            ReversibleBlock(residual_fn(channels, p_drop), residual_fn(channels, p_drop)) for _ in range(depth)
        ])
        self.head = nn.Linear(2 * channels, n_classes)

    def forward(self, x, reversible=True):
        x = self.stem(x)
        x = self.body(x, reversible=reversible)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


def make_data(n, rng):
    """8x8 images of four classes: horizontal, vertical, diagonal stripes and a centred blob."""
    yy, xx = np.mgrid[0:8, 0:8]
    patterns = [np.sin(yy * 1.6), np.sin(xx * 1.6), np.sin((xx + yy) * 1.1),
                np.exp(-((xx - 3.5) ** 2 + (yy - 3.5) ** 2) / 6.0) * 2 - 0.5]
    labels = rng.randint(0, 4, size=n)
    images = np.stack([patterns[c] for c in labels]) * rng.uniform(0.5, 1.5, size=(n, 1, 1))
    images = images + 0.8 * rng.randn(n, 8, 8)
    return torch.from_numpy(images[:, None].astype(np.float32)), torch.from_numpy(labels)


def grads_of(model, x, y, reversible):
    model.zero_grad()
    x = x.clone().requires_grad_()
    torch.manual_seed(1000 + seed)
    loss = F.cross_entropy(model(x, reversible=reversible), y)
    loss.backward()
    return x.grad, {name: p.grad.clone() for name, p in model.named_parameters()}


rng = np.random.RandomState(0)
x_train, y_train = make_data(512, rng)
x_test, y_test = make_data(256, rng)
model = RevNet()
print(f"reversible blocks: {len(model.body.blocks)} parameters: {sum(p.numel() for p in model.parameters())}")

# gradients: reversible (activations rebuilt) == stored activations, dropout included
xb, yb = x_train[:32], y_train[:32]
gx_rev, gp_rev = grads_of(model, xb, yb, reversible=True)
gx_plain, gp_plain = grads_of(model, xb, yb, reversible=False)
grad_err = (gx_rev - gx_plain).abs().max().item() / gx_plain.abs().max().item()
for name in gp_plain:
    err = (gp_rev[name] - gp_plain[name]).abs().max().item() / (gp_plain[name].abs().max().item() + 1e-12)
    grad_err = max(grad_err, err)
same = torch.allclose(gx_rev, gx_plain, rtol=1e-3, atol=1e-5) and all(
    torch.allclose(gp_rev[n], gp_plain[n], rtol=1e-3, atol=1e-5) for n in gp_plain)
print(f"reversible grads == stored-activation grads: {same} ({len(gp_plain)} parameters)")
assert same, grad_err

# the inputs rebuilt from the outputs (dropout replayed from the recorded RNG states)
torch.manual_seed(1)
with torch.no_grad():
    h = model.stem(xb)
    y = model.body(h)
    h_rec = model.body.inverse(y)
recon_err = (h_rec - h).abs().max().item()
print(f"inputs reconstructed from outputs: {recon_err < 1e-4}")
assert recon_err < 1e-4, recon_err

optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        loss = F.cross_entropy(logits, y_test).item()
        acc = (logits.argmax(1) == y_test).float().mean().item()
    model.train()
    return loss, acc


loss0, acc0 = evaluate()
print(f"before: loss {loss0:.4f} acc {acc0:.4f}")
for epoch in range(4):
    perm = torch.randperm(x_train.shape[0])
    total = 0.0
    for i in range(0, perm.numel(), 32):
        idx = perm[i:i + 32]
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.numel()
    test_loss, test_acc = evaluate()
    print(f"epoch {epoch}: train {total / perm.numel():.4f} test {test_loss:.4f} acc {test_acc:.4f}")

assert test_loss < loss0
print(f"FINAL loss={test_loss:.4f} acc={test_acc:.4f} grad_err={grad_err:.2e} recon_err={recon_err:.2e}")
