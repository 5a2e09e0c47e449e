"""Shampoo (Gupta, Koren and Singer, ICML 2018) as the PyTorch ports of google-research's optimizers write
it (moskomule/shampoo.pytorch's ``Optimizer`` subclass, the grafting of distributed_shampoo), on a tiny MLP
classifying Gaussian blobs.

Per matrix parameter the optimizer keeps left/right statistics in ``self.state[p]``, started at ``epsilon *
torch.eye(dim, out=grad.new(dim, dim))`` and grown by ``L.add_(G @ G.T)`` and ``R.add_(G.T @ G)``; every
``update_freq`` steps it recomputes the inverse 4th roots by ``torch.linalg.eigh`` (``Q @ torch.diag(lam.
clamp_min(eps) ** -0.25) @ Q.T``). The preconditioned direction ``L^-1/4 G R^-1/4`` is grafted onto the
norm of an Adagrad step (``sum_sq.addcmul_(grad, grad)``, ``grad / (sum_sq.sqrt() + eps)``); vectors
(biases) take the Adagrad step itself. Training compares Shampoo with ``optim.SGD`` and ``optim.Adagrad``
on the same model and data.

Checked: the eigh root against moskomule's ``_matrix_power`` by ``torch.svd`` (``u @ s.pow_(power).diag()
@ v.t()``) and ``torch.linalg.matrix_power(root, -4)`` against the statistic; a Shampoo ``state_dict()``
saved mid-training and loaded into a fresh optimizer continues exactly as the uninterrupted run; and the
learning results of the three optimizers.
"""

import copy
import io
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.optimizer import Optimizer

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_TRAIN, N_TEST, D_IN, N_CLASSES = 256, 256, 12, 4
STEPS = 60

centers = rng.randn(N_CLASSES, D_IN) * 1.2


def blobs(n):
    y = rng.randint(0, N_CLASSES, n)
    x = centers[y] + rng.randn(n, D_IN) * 1.5
    x[:, 0] *= 8.0  # a badly scaled feature, which is where a preconditioner pays
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


x_train, y_train = blobs(N_TRAIN)
x_test, y_test = blobs(N_TEST)


def _matrix_power(matrix, power):
    # moskomule/shampoo.pytorch: use CPU for svd for speed up
    device = matrix.device
    matrix = matrix.cpu()
    u, s, v = torch.svd(matrix)
    return (u @ s.pow_(power).diag() @ v.t()).to(device)


def inverse_root(stat, eps=1e-6, root=4):
    lam, Q = torch.linalg.eigh(stat)
    return Q @ torch.diag(lam.clamp_min(eps) ** (-1.0 / root)) @ Q.T


class Shampoo(Optimizer):
    r"""Shampoo with Adagrad grafting.

    Args:
        params: iterable of parameters to optimize or dicts defining parameter groups
        lr: learning rate (default: 1e-1)
        momentum: momentum factor (default: 0)
        weight_decay: weight decay (L2 penalty) (default: 0)
        epsilon: epsilon added to each mat_gbar_j for numerical stability (default: 1e-4)
        update_freq: update frequency to compute inverse (default: 1)
    """

    def __init__(self, params, lr=1e-1, momentum=0.0, weight_decay=0.0, epsilon=1e-4, update_freq=1):
        if lr <= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, epsilon=epsilon,
                        update_freq=update_freq)
        super(Shampoo, self).__init__(params, defaults)  # noqa: UP008

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                momentum = group["momentum"]
                weight_decay = group["weight_decay"]
                if len(state) == 0:
                    state["step"] = 0
                    state["sum_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    if momentum > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    if grad.ndimension() == 2:
                        for dim_id, dim in enumerate(grad.size()):
                            state[f"precond_{dim_id}"] = group["epsilon"] * torch.eye(dim, out=grad.new(dim, dim))
                            state[f"inv_precond_{dim_id}"] = grad.new(dim, dim).zero_()
                if weight_decay > 0:
                    grad = grad.add(p.data, alpha=weight_decay)
                # Adagrad, the graft
                state["sum_sq"].addcmul_(grad, grad, value=1)
                adagrad = grad / (state["sum_sq"].sqrt() + 1e-10)
                if grad.ndimension() == 2:
                    L, R = state["precond_0"], state["precond_1"]
                    L.add_(grad @ grad.T)
                    R.add_(grad.T @ grad)
                    if state["step"] % group["update_freq"] == 0:
                        state["inv_precond_0"].copy_(inverse_root(L))
                        state["inv_precond_1"].copy_(inverse_root(R))
                    shampoo = state["inv_precond_0"] @ grad @ state["inv_precond_1"]
                    update = shampoo * (adagrad.norm() / (shampoo.norm() + 1e-16))
                else:
                    update = adagrad
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).add_(update)
                    update = buf
                state["step"] += 1
                p.data.add_(update, alpha=-group["lr"])
        return loss


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D_IN, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, N_CLASSES)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(model, optimizer, steps):
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x_train), y_train)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


init = MLP()
results = {}
for name, make in [
    ("shampoo", lambda ps: Shampoo(ps, lr=0.05, momentum=0.5, update_freq=5)),
    ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5)),
    ("adagrad", lambda ps: torch.optim.Adagrad(ps, lr=0.05)),
]:
    model = copy.deepcopy(init)
    optimizer = make(model.parameters())
    losses = train(model, optimizer, STEPS)
    results[name] = (losses[-1], accuracy(model, x_test, y_test))
    print(f"{name:8s} loss {losses[0]:.4f} -> {losses[-1]:.4f}  test acc {results[name][1]:.4f}")
    if name == "shampoo":
        shampoo_model, shampoo_opt = model, optimizer

# the roots: eigh against svd, and matrix_power(root, -4) against the statistic
state = shampoo_opt.state[shampoo_model.fc2.weight]
print(f"fc2 state keys {sorted(state.keys())}, step {state['step']}")
root_err, stat_err = 0.0, 0.0
for key in ("precond_0", "precond_1"):
    stat = state[key].double()
    root = inverse_root(stat, eps=1e-12)
    root_svd = _matrix_power(stat.clone(), -0.25)
    back = torch.linalg.matrix_power(root, -4)
    root_err = max(root_err, ((root - root_svd).norm() / root.norm()).item())
    stat_err = max(stat_err, ((back - stat).norm() / stat.norm()).item())
    print(f"{key}: {tuple(stat.shape)} symmetric {torch.allclose(stat, stat.T)}, "
          f"eigh root == svd root {torch.allclose(root, root_svd, rtol=1e-6, atol=1e-8)}, "
          f"root^-4 == stat {torch.allclose(back, stat, rtol=1e-6, atol=1e-8)}")

# resuming from a state_dict gives the uninterrupted run
model_a = copy.deepcopy(init)
opt_a = Shampoo(model_a.parameters(), lr=0.05, momentum=0.5, update_freq=3)
train(model_a, opt_a, 7)
buffer = io.BytesIO()
torch.save({"model": model_a.state_dict(), "optimizer": opt_a.state_dict()}, buffer)
losses_a = train(model_a, opt_a, 5)
buffer.seek(0)
ckpt = torch.load(buffer)
model_b = MLP()
model_b.load_state_dict(ckpt["model"])
opt_b = Shampoo(model_b.parameters(), lr=0.05, momentum=0.5, update_freq=3)
opt_b.load_state_dict(ckpt["optimizer"])
losses_b = train(model_b, opt_b, 5)
resume_gap = max((pa - pb).abs().max().item() for pa, pb in zip(model_a.parameters(), model_b.parameters()))
print(f"resumed run equals uninterrupted: {losses_a == losses_b}, parameters equal {resume_gap == 0.0}")

print(f"FINAL shampoo_loss={results['shampoo'][0]:.4f} shampoo_acc={results['shampoo'][1]:.4f} "
      f"sgd_loss={results['sgd'][0]:.4f} sgd_acc={results['sgd'][1]:.4f} "
      f"adagrad_loss={results['adagrad'][0]:.4f} adagrad_acc={results['adagrad'][1]:.4f} "
      f"root_err={root_err:.6f} stat_err={stat_err:.6f} resume_gap={resume_gap:.6f}")
