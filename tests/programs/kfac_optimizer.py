"""K-FAC as its public PyTorch repos write it (alecwangcq/KFAC-Pytorch, Thrandis/EKFAC-pytorch), on a
small CNN, against plain SGD from the same initial weights on the same batches.

``KFACOptimizer`` subclasses ``torch.optim.Optimizer`` with one parameter group per layer
(``{'params': [weight, bias], 'mod': module, 'layer_type': 'Conv2d'}``). On every ``nn.Linear`` and
``nn.Conv2d`` it registers ``register_forward_pre_hook`` (the layer input: conv patches by ``F.pad``
+ ``Tensor.unfold`` twice + ``transpose_``, a column of ones by ``a.new(a.size(0), 1).fill_(1)``
for the bias) and ``register_full_backward_hook`` (``grad_output[0]``, rescaled by the batch
size), both gated on ``torch.is_grad_enabled()``/``module.training``. The Kronecker factors
``A = E[a a^T]`` and ``G = E[g g^T]`` are running averages kept in ``self.state[weight]`` and
updated in place; every few steps ``torch.linalg.eigh`` decomposes them (eigenvalues below eps
zeroed by ``mul_((d > eps).float())``); ``step`` (under ``@torch.no_grad()``) preconditions the
weight and bias gradients together, ``Q_g (Q_g^T V Q_a / (d_g d_a^T + damping)) Q_a^T``, rescales
them by the KL clip ``min(1, sqrt(kl_clip / sum(v * grad * lr^2)))``, and takes an SGD-momentum
step with the buffer in the same ``self.state``. The eigen form must agree with
``torch.linalg.solve(torch.kron(G, A) + damping * I, grad.flatten())``.

The data: 12x12 NumPy images of a bar in one of four orientations under noise.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, CLASSES = 12, 4


def make_bars(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] - (SIZE - 1) / 2
    images = rng.normal(0.0, 0.6, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=n)
    for i, c in enumerate(labels):
        angle = c * math.pi / CLASSES + rng.normal(0, 0.12)
        cy, cx = rng.uniform(-2, 2, size=2)
        distance = np.abs((xx - cx) * math.sin(angle) - (yy - cy) * math.cos(angle))
        images[i, 0] += (distance < 1.0) * 1.2
    return torch.from_numpy(images), torch.from_numpy(labels)


def _extract_patches(x, kernel_size, stride, padding):
    """(N, C, H, W) -> (N, oh, ow, C * kh * kw), the rows a conv multiplies by its weight."""
    if padding[0] + padding[1] > 0:
        x = F.pad(x, (padding[1], padding[1], padding[0], padding[0])).data
    x = x.unfold(2, kernel_size[0], stride[0])
    x = x.unfold(3, kernel_size[1], stride[1])
    x = x.transpose_(1, 2).transpose_(2, 3).contiguous()
    return x.view(x.size(0), x.size(1), x.size(2), x.size(3) * x.size(4) * x.size(5))


def compute_cov_a(a, module):
    batch_size = a.size(0)
    if isinstance(module, nn.Conv2d):
        a = _extract_patches(a, module.kernel_size, module.stride, module.padding)
        spatial_size = a.size(1) * a.size(2)
        a = a.view(-1, a.size(-1)) / spatial_size
    if module.bias is not None:
        a = torch.cat([a, a.new(a.size(0), 1).fill_(1)], 1)
    return a.t() @ (a / batch_size)


def compute_cov_g(g, module, batch_averaged=True):
    batch_size = g.size(0)
    if isinstance(module, nn.Conv2d):
        spatial_size = g.size(2) * g.size(3)
        g = g.transpose(1, 2).transpose(2, 3).contiguous()
        g = g.view(-1, g.size(-1))
        if batch_averaged:
            g = g * batch_size
        g = g * spatial_size
        return g.t() @ (g / g.size(0))
    if batch_averaged:
        g = g * batch_size
    return g.t() @ (g / batch_size)


def update_running_stat(new, current, stat_decay):
    # in place: current = stat_decay * current + (1 - stat_decay) * new
    current *= stat_decay / (1 - stat_decay)
    current += new
    current *= 1 - stat_decay


class KFACOptimizer(optim.Optimizer):
    def __init__(self, model, lr=0.01, momentum=0.9, stat_decay=0.95, damping=1e-3, kl_clip=1e-3,
                 weight_decay=0.0, TCov=1, TInv=5, batch_averaged=True):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        self.known_modules = {"Linear", "Conv2d"}
        self.modules, self.handles = [], []
        param_groups = []
        for module in model.modules():
            classname = module.__class__.__name__
            if classname in self.known_modules:
                self.modules.append(module)
                self.handles.append(module.register_forward_pre_hook(self._save_input))
                self.handles.append(module.register_full_backward_hook(self._save_grad_output))
                params = [module.weight] + ([module.bias] if module.bias is not None else [])
                param_groups.append({"params": params, "mod": module, "layer_type": classname})
        defaults = dict(lr=lr, momentum=momentum, damping=damping, weight_decay=weight_decay)
        super().__init__(param_groups, defaults)
        self.stat_decay, self.kl_clip = stat_decay, kl_clip
        self.TCov, self.TInv, self.batch_averaged = TCov, TInv, batch_averaged
        self.steps = 0
        self.acc_stats = True

    def _save_input(self, module, input):
        if torch.is_grad_enabled() and module.training and self.steps % self.TCov == 0:
            aa = compute_cov_a(input[0].data, module)
            state = self.state[module.weight]
            if "A" not in state:
                state["A"] = torch.diag(aa.new(aa.size(0)).fill_(1))
            update_running_stat(aa, state["A"], self.stat_decay)

    def _save_grad_output(self, module, grad_input, grad_output):
        if self.acc_stats and module.training and self.steps % self.TCov == 0:
            gg = compute_cov_g(grad_output[0].data, module, self.batch_averaged)
            state = self.state[module.weight]
            if "G" not in state:
                state["G"] = torch.diag(gg.new(gg.size(0)).fill_(1))
            update_running_stat(gg, state["G"], self.stat_decay)

    def _update_inv(self, state, eps=1e-10):
        state["dA"], state["QA"] = torch.linalg.eigh(state["A"])
        state["dG"], state["QG"] = torch.linalg.eigh(state["G"])
        state["dA"].mul_((state["dA"] > eps).float())
        state["dG"].mul_((state["dG"] > eps).float())

    @staticmethod
    def _get_matrix_form_grad(module):
        if isinstance(module, nn.Conv2d):
            p_grad_mat = module.weight.grad.data.view(module.weight.grad.data.size(0), -1)
        else:
            p_grad_mat = module.weight.grad.data
        if module.bias is not None:
            p_grad_mat = torch.cat([p_grad_mat, module.bias.grad.data.view(-1, 1)], 1)
        return p_grad_mat

    @staticmethod
    def _get_natural_grad(module, state, p_grad_mat, damping):
        v1 = state["QG"].t() @ p_grad_mat @ state["QA"]
        v2 = v1 / (state["dG"].unsqueeze(1) * state["dA"].unsqueeze(0) + damping)
        v = state["QG"] @ v2 @ state["QA"].t()
        if module.bias is not None:
            v = [v[:, :-1], v[:, -1:]]
            v[0] = v[0].view(module.weight.grad.data.size())
            v[1] = v[1].view(module.bias.grad.data.size())
        else:
            v = [v.view(module.weight.grad.data.size())]
        return v

    def _kl_clip_and_update_grad(self, updates, lr):
        vg_sum = 0
        for module in self.modules:
            v = updates[module]
            vg_sum += (v[0] * module.weight.grad.data * lr ** 2).sum().item()
            if module.bias is not None:
                vg_sum += (v[1] * module.bias.grad.data * lr ** 2).sum().item()
        nu = min(1.0, math.sqrt(self.kl_clip / vg_sum))
        for module in self.modules:
            v = updates[module]
            module.weight.grad.data.copy_(v[0])
            module.weight.grad.data.mul_(nu)
            if module.bias is not None:
                module.bias.grad.data.copy_(v[1])
                module.bias.grad.data.mul_(nu)
        return nu

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        updates = {}
        for group in self.param_groups:
            module, state = group["mod"], self.state[group["mod"].weight]
            if self.steps % self.TInv == 0:
                self._update_inv(state)
            p_grad_mat = self._get_matrix_form_grad(module)
            updates[module] = self._get_natural_grad(module, state, p_grad_mat, group["damping"])
        self.last_nu = self._kl_clip_and_update_grad(updates, self.param_groups[0]["lr"])
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad.data
                if group["weight_decay"] != 0:
                    d_p.add_(p.data, alpha=group["weight_decay"])
                if group["momentum"] != 0:
                    param_state = self.state[p]
                    if "momentum_buffer" not in param_state:
                        buf = param_state["momentum_buffer"] = torch.zeros_like(p.data)
                        buf.mul_(group["momentum"]).add_(d_p)
                    else:
                        buf = param_state["momentum_buffer"]
                        buf.mul_(group["momentum"]).add_(d_p, alpha=1)
                    d_p = buf
                p.data.add_(d_p, alpha=-group["lr"])
        self.steps += 1
        return loss


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1)
        self.fc1 = nn.Linear(16 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


train_x, train_y = make_bars(512)
test_x, test_y = make_bars(256)
print(f"data {tuple(train_x.shape)} classes {torch.bincount(train_y, minlength=CLASSES).tolist()}")

initial = Net()
EPOCHS, BATCH = 4, 64
histories, results = {}, {}
for name in ("sgd", "kfac"):
    model = copy.deepcopy(initial)
    if name == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        optimizer = KFACOptimizer(model, lr=0.05, momentum=0.9, damping=3e-2, kl_clip=1e-3, TInv=4)
        print("kfac groups", [(g["layer_type"], len(g["params"])) for g in optimizer.param_groups])
    shuffle = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(EPOCHS):
        total = 0.0
        order = torch.randperm(len(train_x), generator=shuffle)
        for start in range(0, len(train_x), BATCH):
            idx = order[start:start + BATCH]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item()
            history.append(loss.item())
        test_loss, test_acc = evaluate(model, test_x, test_y)
        extra = f" nu {optimizer.last_nu:.4f}" if name == "kfac" else ""
        print(f"{name} epoch {epoch} train loss {total / (len(train_x) // BATCH):.4f} test loss {test_loss:.4f} "
              f"acc {test_acc:.4f}{extra}")
    histories[name] = history
    results[name] = evaluate(model, test_x, test_y)
    if name == "kfac":
        kfac_model, kfac = model, optimizer

state = kfac.state[kfac_model.fc2.weight]
print("fc2 state keys", list(state.keys()), "A", tuple(state["A"].shape), "G", tuple(state["G"].shape))
print("conv1 factors", tuple(kfac.state[kfac_model.conv1.weight]["A"].shape),
      tuple(kfac.state[kfac_model.conv1.weight]["G"].shape))
print("bias state keys", list(kfac.state[kfac_model.fc2.bias].keys()))
symmetric = all(torch.allclose(kfac.state[m.weight][k], kfac.state[m.weight][k].t(), atol=1e-6)
                for m in kfac.modules for k in ("A", "G"))
print(f"factors symmetric {symmetric}")

# the eigen form of the damped inverse against the explicit Kronecker product
kfac_model.zero_grad()
F.cross_entropy(kfac_model(train_x[:BATCH]), train_y[:BATCH]).backward()
with torch.no_grad():
    fc2 = kfac_model.fc2
    kfac._update_inv(state)
    grad_mat = KFACOptimizer._get_matrix_form_grad(fc2)
    damping = kfac.param_groups[0]["damping"]
    eigen_form = torch.cat([v.reshape(fc2.out_features, -1) for v in
                            KFACOptimizer._get_natural_grad(fc2, state, grad_mat, damping)], 1)
    d_a, q_a = state["dA"], state["QA"]
    a_clipped = q_a @ torch.diag(d_a) @ q_a.t()
    g_clipped = state["QG"] @ torch.diag(state["dG"]) @ state["QG"].t()
    kron = torch.kron(g_clipped, a_clipped)
    explicit = torch.linalg.solve(kron + damping * torch.eye(kron.size(0)), grad_mat.flatten())
    rel = ((eigen_form.flatten() - explicit).norm() / explicit.norm()).item()
print(f"eigen form equals kron solve {rel < 1e-3} kron {tuple(kron.shape)}")

# no statistics are gathered under no_grad, nor in eval mode
before = state["A"].clone()
with torch.no_grad():
    kfac_model(test_x[:8])
kfac_model.eval()
kfac_model(test_x[:8]).sum().backward()
kfac_model.train()
print(f"stats untouched outside training {torch.equal(before, state['A'])}")
for handle in kfac.handles:
    handle.remove()
print("hooks after remove", sum(len(m._forward_pre_hooks) + len(m._backward_hooks) for m in kfac.modules))

early = {k: sum(h[:8]) / 8 for k, h in histories.items()}
print(f"first-epoch mean loss sgd {early['sgd']:.4f} kfac {early['kfac']:.4f}")
print(f"FINAL sgd_test_loss={results['sgd'][0]:.4f} sgd_acc={results['sgd'][1]:.4f} "
      f"kfac_test_loss={results['kfac'][0]:.4f} kfac_acc={results['kfac'][1]:.4f} "
      f"sgd_epoch1_loss={early['sgd']:.4f} kfac_epoch1_loss={early['kfac']:.4f}")
