"""Barlow Twins (facebookresearch/barlowtwins ``main.py``) at tiny sizes, one process.

The repo's pieces as written: ``args`` from ``argparse`` (``--projector '64-64-64'`` read by
``list(map(int, args.projector.split('-')))``, ``--lambd``, ``--learning-rate-weights``/``-biases``),
a backbone whose ``fc`` is replaced by ``nn.Identity()``, the projector built in a loop of
``nn.Linear(..., bias=False)`` + ``nn.BatchNorm1d`` + ``nn.ReLU(inplace=True)``, the representation
norm ``nn.BatchNorm1d(sizes[-1], affine=False)``, the cross-correlation ``self.bn(z1).T @ self.bn(z2)``
divided in place by ``c.div_(self.args.batch_size)``, ``on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()``
(in-place ops on a view of a graph tensor), ``off_diagonal(x)`` by ``x.flatten()[:-1].view(n - 1, n + 1)[:,
1:].flatten()`` with ``.pow_(2).sum()``; the ``LARS`` optimizer as a ``torch.optim.Optimizer``
subclass (``exclude_bias_and_norm`` by ``p.ndim == 1``, ``dp.add(p, alpha=g['weight_decay'])``,
``torch.norm``, ``torch.ones_like``, the nested ``torch.where(param_norm > 0., torch.where(update_norm > 0,
(g['eta'] * param_norm / update_norm), one), one)``, a ``mu`` buffer in ``self.state[p]``,
``p.add_(mu, alpha=-g['lr'])`` under ``@torch.no_grad()``), weights/biases parameter groups by
``param.ndim``, and ``adjust_learning_rate`` writing warm-up + cosine into
``optimizer.param_groups[0]['lr']`` and ``[1]``. Then a linear probe on frozen backbone features.
Data: 1-d signals of four shapes, two augmented views each (shift, flip, scaling, noise, masking).
"""

import argparse
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

parser = argparse.ArgumentParser(description='Barlow Twins Training')
parser.add_argument('--epochs', default=10, type=int, metavar='N',
                    help='number of total epochs to run')
parser.add_argument('--batch-size', default=64, type=int, metavar='N',
                    help='mini-batch size')
parser.add_argument('--learning-rate-weights', default=0.2, type=float, metavar='LR',
                    help='base learning rate for weights')
parser.add_argument('--learning-rate-biases', default=0.0048, type=float, metavar='LR',
                    help='base learning rate for biases and batch norm parameters')
parser.add_argument('--weight-decay', default=1e-6, type=float, metavar='W',
                    help='weight decay')
parser.add_argument('--lambd', default=0.0051, type=float, metavar='L',
                    help='weight on off-diagonal terms')
parser.add_argument('--projector', default='64-64-64', type=str,
                    metavar='MLP', help='projector MLP')
args = parser.parse_args([])

L = 32


class Backbone(nn.Module):
    """A small 1-d conv net with a torchvision-style ``fc`` head (replaced by Identity below)."""
    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(inplace=True),
            nn.Conv1d(16, 32, 5, padding=2, stride=2), nn.BatchNorm1d(32), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(1))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def off_diagonal(x):
    # return a flattened view of the off-diagonal elements of a square matrix
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


class BarlowTwins(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.backbone = Backbone()
        self.backbone.fc = nn.Identity()

        # projector
        sizes = [32] + list(map(int, args.projector.split('-')))
        layers = []
        for i in range(len(sizes) - 2):
            layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=False))
            layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
        self.projector = nn.Sequential(*layers)

        # normalization layer for the representations z1 and z2
        self.bn = nn.BatchNorm1d(sizes[-1], affine=False)

    def forward(self, y1, y2):
        z1 = self.projector(self.backbone(y1))
        z2 = self.projector(self.backbone(y2))

        # empirical cross-correlation matrix
        c = self.bn(z1).T @ self.bn(z2)

        # sum the cross-correlation matrix between all gpus (one process here)
        c.div_(self.args.batch_size)

        on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
        off_diag = off_diagonal(c).pow_(2).sum()
        loss = on_diag + self.args.lambd * off_diag
        return loss


class LARS(optim.Optimizer):
    def __init__(self, params, lr, weight_decay=0, momentum=0.9, eta=0.001,
                 weight_decay_filter=False, lars_adaptation_filter=False):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        eta=eta, weight_decay_filter=weight_decay_filter,
                        lars_adaptation_filter=lars_adaptation_filter)
        super().__init__(params, defaults)

    def exclude_bias_and_norm(self, p):
        return p.ndim == 1

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g['params']:
                dp = p.grad

                if dp is None:
                    continue

                if not g['weight_decay_filter'] or not self.exclude_bias_and_norm(p):
                    dp = dp.add(p, alpha=g['weight_decay'])

                if not g['lars_adaptation_filter'] or not self.exclude_bias_and_norm(p):
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(param_norm > 0.,
                                    torch.where(update_norm > 0,
                                                (g['eta'] * param_norm / update_norm), one), one)
                    dp = dp.mul(q)

                param_state = self.state[p]
                if 'mu' not in param_state:
                    param_state['mu'] = torch.zeros_like(p)
                mu = param_state['mu']
                mu.mul_(g['momentum']).add_(dp)

                p.add_(mu, alpha=-g['lr'])


def adjust_learning_rate(args, optimizer, loader, step):
    max_steps = args.epochs * len(loader)
    warmup_steps = 2 * len(loader)
    base_lr = args.batch_size / 256
    if step < warmup_steps:
        lr = base_lr * step / warmup_steps
    else:
        step -= warmup_steps
        max_steps -= warmup_steps
        q = 0.5 * (1 + math.cos(math.pi * step / max_steps))
        end_lr = base_lr * 0.001
        lr = base_lr * q + end_lr * (1 - q)
    optimizer.param_groups[0]['lr'] = lr * args.learning_rate_weights
    optimizer.param_groups[1]['lr'] = lr * args.learning_rate_biases


def make_signals(n):
    t = np.linspace(0, 1, L)
    y = rng.randint(0, 4, n)
    phase = rng.uniform(0, 2 * math.pi, n)[:, None]
    waves = [np.sin(2 * math.pi * 2 * t + phase), np.sign(np.sin(2 * math.pi * 2 * t + phase)),
             np.sin(2 * math.pi * 5 * t + phase), ((t * 3 + phase / (2 * math.pi)) % 1) * 2 - 1]
    amplitude = rng.uniform(0.5, 1.5, n)[:, None]
    x = amplitude * np.stack([waves[k][i] for i, k in enumerate(y)]) + 0.3 * rng.randn(n, L)
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1), torch.from_numpy(y)


class Transform:
    """Two views, tensors only: circular shift, time flip, amplitude scaling, noise, dropped steps."""
    def _view(self, x):
        x = torch.roll(x, shifts=int(torch.randint(-4, 5, (1,))), dims=-1)
        flip = torch.rand(x.shape[0]) < 0.5
        x = torch.where(flip.view(-1, 1, 1), torch.flip(x, dims=[-1]), x)
        x = x * torch.empty(x.shape[0], 1, 1).uniform_(0.7, 1.3)
        x = x + 0.1 * torch.randn_like(x)
        return x * (torch.rand(x.shape[0], 1, L) > 0.1).float()

    def __call__(self, x):
        y1 = self._view(x)
        y2 = self._view(x)
        return y1, y2


x_train, y_train = make_signals(512)
x_test, y_test = make_signals(256)
loader = [slice(i, i + args.batch_size) for i in range(0, len(x_train), args.batch_size)]

# off_diagonal takes exactly the n * (n - 1) entries off the diagonal, in row order
probe_matrix = torch.arange(16.).view(4, 4)
expected = probe_matrix[~torch.eye(4, dtype=torch.bool)]
print(f"off_diagonal picks the off-diagonal entries: {torch.equal(off_diagonal(probe_matrix), expected)}")

model = BarlowTwins(args)
param_weights = []
param_biases = []
for param in model.parameters():
    if param.ndim == 1:
        param_biases.append(param)
    else:
        param_weights.append(param)
parameters = [{'params': param_weights}, {'params': param_biases}]
optimizer = LARS(parameters, lr=0, weight_decay=args.weight_decay,
                 weight_decay_filter=True,
                 lars_adaptation_filter=True)
print(f"parameter groups: {len(param_weights)} weights, {len(param_biases)} biases/norms; "
      f"bn affine: {model.bn.weight is not None}")

transform = Transform()
step = 0
for epoch in range(args.epochs):
    perm = torch.randperm(len(x_train))
    losses = []
    for batch in loader:
        y1, y2 = transform(x_train[perm[batch]])
        adjust_learning_rate(args, optimizer, loader, step)
        optimizer.zero_grad()
        loss = model.forward(y1, y2)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
    if epoch % 3 == 0 or epoch == args.epochs - 1:
        print(f"epoch {epoch} step {step} loss {np.mean(losses):.3f} "
              f"lr_weights {optimizer.param_groups[0]['lr']:.5f} lr_biases {optimizer.param_groups[1]['lr']:.6f}")

# held-out cross-correlation: how close to the identity, split into its two terms
model.eval()
with torch.no_grad():
    y1, y2 = transform(x_test[:args.batch_size])
    z1, z2 = model.projector(model.backbone(y1)), model.projector(model.backbone(y2))
    z1 = (z1 - z1.mean(0)) / z1.std(0, unbiased=False)
    z2 = (z2 - z2.mean(0)) / z2.std(0, unbiased=False)
    c = z1.T @ z2 / args.batch_size
    mean_on_diag = torch.diagonal(c).mean().item()
    mean_abs_off_diag = off_diagonal(c).abs().mean().item()
    state_ok = all('mu' in optimizer.state[p] for p in model.parameters())
print(f"momentum buffers for every parameter: {state_ok}")

# linear probe on the frozen backbone
with torch.no_grad():
    f_train, f_test = model.backbone(x_train), model.backbone(x_test)
probe = nn.Linear(f_train.shape[1], 4)
probe_opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
for _step in range(200):
    probe_opt.zero_grad()
    F.cross_entropy(probe(f_train), y_train).backward()
    probe_opt.step()
probe_acc = (probe(f_test).argmax(1) == y_test).float().mean().item()
print(f"FINAL loss={np.mean(losses):.4f} on_diag={mean_on_diag:.4f} off_diag={mean_abs_off_diag:.4f} "
      f"probe_acc={probe_acc:.4f}")
