"""Predictive coding networks against backprop (Whittington & Bogacz 2017; Millidge, Tschantz & Buckley,
"Predictive Coding Approximates Backprop along Arbitrary Computation Graphs"), as their PyTorch code writes it.

Value nodes as tensors made leaves by ``mu.detach().clone().requires_grad_()``, predictions ``mu_{l+1} = W_l
f(x_l) + b_l`` from ``nn.Linear`` layers, the energy ``sum_l 0.5 * ((x_l - mu_l) ** 2).sum()``, an inference
loop taking ``torch.autograd.grad(energy, values)`` and updating the value nodes in place (``v -= lr * g``)
under ``torch.no_grad()``, weight gradients from the local prediction errors only (``-(eps.T @ f(x))``) written
into ``layer.weight.grad`` / ``layer.bias.grad`` and applied by ``optimizer.step()``; the same net's
``loss.backward()`` gradients for comparison by ``F.cosine_similarity`` on ``torch.cat`` of flattened
gradients. Three regimes: standard PC with the target clamped (the cosine rises with inference iterations),
weak nudging of the output towards the target (Whittington & Bogacz: approaches 1 as the nudge shrinks), and
Millidge's fixed-prediction assumption with vector-Jacobian products by ``autograd.grad(mu, x, grad_outputs=
eps, retain_graph=True)`` (the errors equal backprop's gradients after L steps). Then a PC-trained classifier
on three spirals against a backprop-trained twin made by ``copy.deepcopy``, both with Adam.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def make_spirals(n_per_class, n_classes=3, noise=0.15):
    xs, ys = [], []
    for c in range(n_classes):
        r = np.linspace(0.1, 1.0, n_per_class)
        t = np.linspace(c * 2 * math.pi / n_classes, c * 2 * math.pi / n_classes + 3.0, n_per_class)
        t = t + noise * rng.standard_normal(n_per_class)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(n_per_class, c))
    x = torch.from_numpy(np.concatenate(xs).astype(np.float32))
    y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
    return x, y


class PCNet(nn.Module):
    def __init__(self, sizes, f=torch.tanh):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.f = f

    def act(self, x, l):
        return x if l == 0 else self.f(x)  # the input layer is not squashed

    def predict(self, values, l):
        return self.layers[l](self.act(values[l], l))

    def forward(self, x):
        for l in range(len(self.layers)):  # noqa: E741 (the papers' layer index)
            x = self.layers[l](self.act(x, l))
        return x

    @torch.no_grad()
    def feedforward(self, x):
        values = [x]
        for l in range(len(self.layers)):  # noqa: E741
            values.append(self.predict(values, l))
        return values

    def energy(self, values):
        energy = 0.0
        for l in range(len(self.layers)):  # noqa: E741
            eps = values[l + 1] - self.predict(values, l)
            energy = energy + 0.5 * (eps ** 2).sum()
        return energy

    def infer(self, x, target, n_iters, inference_lr):
        """Standard PC: hidden value nodes start at the feedforward pass, the output is clamped to the target."""
        ff = self.feedforward(x)
        values = [x] + [v.detach().clone().requires_grad_() for v in ff[1:-1]] + [target]
        energies = []
        for _ in range(n_iters):
            energy = self.energy(values)
            grads = torch.autograd.grad(energy, values[1:-1])
            with torch.no_grad():
                for v, g in zip(values[1:-1], grads):
                    v -= inference_lr * g
            energies.append(energy.item())
        energies.append(self.energy(values).item())
        return values, energies

    @torch.no_grad()
    def set_weight_grads(self, values, batch_size):
        """Local Hebbian-like updates: dF/dW_l = -eps_{l+1} f(x_l)^T, written into .grad for the optimizer."""
        for l, layer in enumerate(self.layers):
            pre = self.act(values[l], l)
            eps = values[l + 1] - layer(pre)
            layer.weight.grad = -(eps.T @ pre) / batch_size
            layer.bias.grad = -eps.sum(0) / batch_size

    def fixed_prediction_errors(self, x, target, n_iters, inference_lr=1.0):
        """Millidge et al.: predictions held at the feedforward pass, errors propagated by VJPs through it."""
        ff = [v.detach().requires_grad_() for v in self.feedforward(x)]
        mus = [None] + [self.predict(ff, l) for l in range(len(self.layers))]
        L = len(self.layers)
        values = [v.detach().clone() for v in ff[:-1]] + [target]
        errors = [None] * (L + 1)
        for _ in range(n_iters):
            errors[L] = values[L] - mus[L].detach()
            for l in reversed(range(1, L)):  # noqa: E741
                errors[l] = values[l] - mus[l].detach()
                (vjp,) = torch.autograd.grad(mus[l + 1], ff[l], grad_outputs=errors[l + 1], retain_graph=True)
                with torch.no_grad():
                    values[l] -= inference_lr * (errors[l] - vjp)
        errors[L] = values[L] - mus[L].detach()
        for l in range(1, L):  # noqa: E741
            errors[l] = values[l] - mus[l].detach()
        return ff, errors

    @torch.no_grad()
    def set_fixed_prediction_grads(self, ff, errors, batch_size):
        for l, layer in enumerate(self.layers):
            pre = self.act(ff[l], l)
            layer.weight.grad = -(errors[l + 1].T @ pre) / batch_size
            layer.bias.grad = -errors[l + 1].sum(0) / batch_size


def flat_grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def backprop_grads(model, x, target):
    model.zero_grad()
    loss = 0.5 * ((target - model(x)) ** 2).sum() / x.shape[0]
    loss.backward()
    g = flat_grads(model).clone()
    model.zero_grad()
    return g, loss.item()


def cos(a, b):
    return F.cosine_similarity(a, b, dim=0).item()


sizes = [2, 32, 32, 3]
x_train, y_train = make_spirals(60)
x_test, y_test = make_spirals(40)
net = PCNet(sizes)
target = F.one_hot(y_train, 3).float()
B = x_train.shape[0]
bp, bp_loss = backprop_grads(net, x_train, target)
print(f"backprop loss {bp_loss:.4f} |grad| {bp.norm().item():.4f} parameters {bp.numel()}")

# ---- standard PC: the energy falls and the cosine with backprop rises with inference ----
cos_by_iters = []
for n_iters in (0, 5, 20, 100):
    values, energies = net.infer(x_train, target, n_iters, inference_lr=0.1)
    net.set_weight_grads(values, B)
    cos_by_iters.append(cos(flat_grads(net), bp))
    net.zero_grad()
energy_increases = sum(b > a + 1e-6 * abs(a) for a, b in zip(energies[:-1], energies[1:]))
print(f"energy: start {energies[0]:.4f} after 5 {energies[5]:.4f} after 100 {energies[-1]:.4f} "
      f"increases {energy_increases}")
print("cosine(PC, backprop) by inference iterations: " + " ".join(
    f"{n}:{c:.4f}" for n, c in zip((0, 5, 20, 100), cos_by_iters)))

# ---- weak nudging: the output clamped near the prediction, the gradient scaled back by 1 / beta ----
out = net(x_train).detach()
nudged = []
for beta in (1.0, 0.1, 0.01):
    values, _ = net.infer(x_train, out + beta * (target - out), 100, inference_lr=0.1)
    net.set_weight_grads(values, B)
    nudged.append(cos(flat_grads(net) / beta, bp))
    net.zero_grad()
print("cosine with output nudged by beta: " + " ".join(f"{b}:{c:.5f}" for b, c in zip((1.0, 0.1, 0.01), nudged)))

# ---- fixed-prediction assumption: exact after L steps ----
L = len(net.layers)
ff, errors = net.fixed_prediction_errors(x_train, target, n_iters=L)
net.set_fixed_prediction_grads(ff, errors, B)
fp = flat_grads(net)
fp_diff = (fp - bp).abs().max().item() / bp.abs().max().item()
net.zero_grad()
ff_check = [v for v in net.feedforward(x_train)]
print(f"fixed prediction, {L} steps: cosine {cos(fp, bp):.6f} max rel diff {fp_diff:.2e} "
      f"value nodes {[tuple(v.shape) for v in ff_check]}")

# ---- training: PC (standard, clamped target) against a backprop twin ----
pc_net = PCNet(sizes)
bp_net = copy.deepcopy(pc_net)
pc_opt = torch.optim.Adam(pc_net.parameters(), lr=1e-2)
bp_opt = torch.optim.Adam(bp_net.parameters(), lr=1e-2)
batch_size = 60
train_cos = []
for epoch in range(16):
    perm = torch.from_numpy(rng.permutation(B))
    for i in range(0, B, batch_size):
        idx = perm[i:i + batch_size]
        xb, tb = x_train[idx], target[idx]
        values, energies = pc_net.infer(xb, tb, 20, inference_lr=0.1)
        pc_opt.zero_grad()
        pc_net.set_weight_grads(values, xb.shape[0])
        pc_update = flat_grads(pc_net).clone()
        reference, _ = backprop_grads(pc_net, xb, tb)
        train_cos.append(cos(pc_update, reference))
        pc_net.set_weight_grads(values, xb.shape[0])  # backprop_grads zeroed them
        pc_opt.step()

        bp_opt.zero_grad()
        loss = 0.5 * ((tb - bp_net(xb)) ** 2).sum() / xb.shape[0]
        loss.backward()
        bp_opt.step()
    if epoch % 4 == 3:
        with torch.no_grad():
            pc_loss = 0.5 * ((target - pc_net(x_train)) ** 2).sum().item() / B
        print(f"epoch {epoch} pc loss {pc_loss:.4f} bp loss {loss.item():.4f} "
              f"cos {np.mean(train_cos[-3:]):.4f}")

with torch.no_grad():
    pc_acc = (pc_net(x_test).argmax(1) == y_test).float().mean().item()
    bp_acc = (bp_net(x_test).argmax(1) == y_test).float().mean().item()
    pc_loss = 0.5 * ((F.one_hot(y_test, 3).float() - pc_net(x_test)) ** 2).sum().item() / x_test.shape[0]
print(f"test accuracy: predictive coding {pc_acc:.4f} backprop {bp_acc:.4f}")
print(f"FINAL cos_0={cos_by_iters[0]:.4f} cos_100={cos_by_iters[-1]:.4f} cos_nudged={nudged[-1]:.5f} "
      f"cos_fixed={cos(fp, bp):.6f} energy_increases={energy_increases} train_cos={np.mean(train_cos):.4f} "
      f"pc_acc={pc_acc:.4f} bp_acc={bp_acc:.4f} pc_loss={pc_loss:.4f}")
