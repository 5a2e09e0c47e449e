"""A deep equilibrium model as the NeurIPS 2020 "Deep Implicit Layers" tutorial (chapter 4) writes
it, with locuslab/deq's hook handling: a ``ResNetLayer`` ``f(z, x)`` (``Conv2d(bias=False)`` with
``weight.data.normal_(0, 0.01)``, ``GroupNorm``, ``F.relu``), the forward fixed point solved under
``torch.no_grad()`` by plain ``forward_iteration`` or by ``anderson`` acceleration (buffers
``X[:, 0], F[:, 0] = ...`` written by tuple assignment, ``H[:, 0, 1:] = H[:, 1:, 0] = 1``,
``torch.bmm(G, G.transpose(1, 2))``, ``torch.linalg.solve``, ``alpha[:, None] @ F[:, :n]``,
residuals by ``.norm().item()``), one re-engaged step ``z = self.f(z, x)``, ``z0 =
z.clone().detach().requires_grad_()`` and ``f0 = self.f(z0, x)``, and ``z.register_hook(
backward_hook)`` solving the adjoint fixed point ``autograd.grad(f0, z0, y, retain_graph=True)[0] +
grad`` after ``self.hook.remove()``; ``nn.Sequential`` with ``BatchNorm2d``/``AvgPool2d``/
``Flatten``, ``CrossEntropyLoss``, Adam + ``CosineAnnealingLR`` per batch, the tutorial's ``epoch``
loop with ``yp.max(dim=1)[1] != y``; then, in float64 by ``.double()``, the implicit gradient
checked against backprop through the unrolled iteration.
"""

import copy
import os

import numpy as np
import torch
import torch.autograd as autograd
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)
device = "cuda" if torch.cuda.is_available() and False else "cpu"


class ResNetLayer(nn.Module):
    def __init__(self, n_channels, n_inner_channels, kernel_size=3, num_groups=4):
        super().__init__()
        self.conv1 = nn.Conv2d(n_channels, n_inner_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.conv2 = nn.Conv2d(n_inner_channels, n_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm1 = nn.GroupNorm(num_groups, n_inner_channels)
        self.norm2 = nn.GroupNorm(num_groups, n_channels)
        self.norm3 = nn.GroupNorm(num_groups, n_channels)
        self.conv1.weight.data.normal_(0, 0.01)
        self.conv2.weight.data.normal_(0, 0.01)

    def forward(self, z, x):
        y = self.norm1(F.relu(self.conv1(z)))
        return self.norm3(F.relu(z + self.norm2(x + self.conv2(y))))


def forward_iteration(f, x0, max_iter=50, tol=1e-2):
    f0 = f(x0)
    res = []
    for k in range(max_iter):  # noqa: B007  (the tutorial's own loop)
        x = f0
        f0 = f(x)
        res.append((f0 - x).norm().item() / (1e-5 + f0.norm().item()))
        if (res[-1] < tol):
            break
    return f0, res


def anderson(f, x0, m=5, lam=1e-4, max_iter=50, tol=1e-2, beta=1.0):
    """ Anderson acceleration for fixed point iteration. """
    bsz, d, H, W = x0.shape
    X = torch.zeros(bsz, m, d * H * W, dtype=x0.dtype, device=x0.device)
    F = torch.zeros(bsz, m, d * H * W, dtype=x0.dtype, device=x0.device)
    X[:, 0], F[:, 0] = x0.view(bsz, -1), f(x0).view(bsz, -1)
    X[:, 1], F[:, 1] = F[:, 0], f(F[:, 0].view_as(x0)).view(bsz, -1)

    H = torch.zeros(bsz, m + 1, m + 1, dtype=x0.dtype, device=x0.device)
    H[:, 0, 1:] = H[:, 1:, 0] = 1
    y = torch.zeros(bsz, m + 1, 1, dtype=x0.dtype, device=x0.device)
    y[:, 0] = 1

    res = []
    for k in range(2, max_iter):
        n = min(k, m)
        G = F[:, :n] - X[:, :n]
        H[:, 1:n + 1, 1:n + 1] = torch.bmm(G, G.transpose(1, 2)) + lam * torch.eye(n, dtype=x0.dtype, device=x0.device)[None]
        alpha = torch.linalg.solve(H[:, :n + 1, :n + 1], y[:, :n + 1])[:, 1:n + 1, 0]   # (bsz x n)

        X[:, k % m] = beta * (alpha[:, None] @ F[:, :n])[:, 0] + (1 - beta) * (alpha[:, None] @ X[:, :n])[:, 0]
        F[:, k % m] = f(X[:, k % m].view_as(x0)).view(bsz, -1)
        res.append((F[:, k % m] - X[:, k % m]).norm().item() / (1e-5 + F[:, k % m].norm().item()))
        if (res[-1] < tol):
            break
    return X[:, k % m].view_as(x0), res


class DEQFixedPoint(nn.Module):
    def __init__(self, f, solver, **kwargs):
        super().__init__()
        self.f = f
        self.solver = solver
        self.kwargs = kwargs
        self.hook = None
        self.backward_calls = 0

    def forward(self, x):
        # compute forward pass and re-engage autograd tape
        with torch.no_grad():
            z, self.forward_res = self.solver(lambda z: self.f(z, x), torch.zeros_like(x), **self.kwargs)
        z = self.f(z, x)

        # set up Jacobian vector product (without additional forward calls)
        z0 = z.clone().detach().requires_grad_()
        f0 = self.f(z0, x)

        def backward_hook(grad):
            if self.hook is not None:
                self.hook.remove()    # locuslab/deq: the hook runs once per backward
                self.hook = None
            self.backward_calls += 1
            g, self.backward_res = self.solver(lambda y: autograd.grad(f0, z0, y, retain_graph=True)[0] + grad,
                                               grad, **self.kwargs)
            return g

        self.hook = z.register_hook(backward_hook)
        return z


def make_data(n, rng):
    """8x8 single-channel images of four stroke patterns (horizontal, vertical, diagonal, box)
    at random offsets, with noise."""
    xs = np.zeros((n, 1, 8, 8), dtype=np.float32)
    ys = rng.randint(0, 4, size=n)
    for i, c in enumerate(ys):
        r, s = rng.randint(1, 7, size=2)
        if c == 0:
            xs[i, 0, r, 1:7] = 1.0
        elif c == 1:
            xs[i, 0, 1:7, s] = 1.0
        elif c == 2:
            for j in range(6):
                xs[i, 0, 1 + j, (s + j) % 8] = 1.0
        else:
            xs[i, 0, 2:6, 2] = xs[i, 0, 2:6, 5] = xs[i, 0, 2, 2:6] = xs[i, 0, 5, 2:6] = 1.0
            xs[i, 0] = np.roll(xs[i, 0], r - 3, axis=1)
    xs += 0.3 * rng.randn(n, 1, 8, 8).astype(np.float32)
    return torch.from_numpy(xs), torch.from_numpy(ys).long()


rng = np.random.RandomState(seed)
X_train, y_train = make_data(256, rng)
X_test, y_test = make_data(128, rng)
train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True)
test_loader = DataLoader(TensorDataset(X_test, y_test), batch_size=64, shuffle=False)

chan = 8
f = ResNetLayer(chan, 16, kernel_size=3)
deq = DEQFixedPoint(f, anderson, tol=1e-2, max_iter=25, m=5)
model = nn.Sequential(nn.Conv2d(1, chan, kernel_size=3, bias=True, padding=1),
                      nn.BatchNorm2d(chan),
                      deq,
                      nn.BatchNorm2d(chan),
                      nn.AvgPool2d(4, 4),
                      nn.Flatten(),
                      nn.Linear(chan * 2 * 2, 4)).to(device)
max_epochs = 3
opt = optim.Adam(model.parameters(), lr=1e-2)
print("# Parmeters: ", sum(a.numel() for a in model.parameters()))
scheduler = optim.lr_scheduler.CosineAnnealingLR(opt, max_epochs * len(train_loader), eta_min=1e-6)


# standard training or evaluation loop
def epoch(loader, model, opt=None, lr_scheduler=None):
    total_loss, total_err = 0., 0.
    model.eval() if opt is None else model.train()
    forward_iters, backward_iters = [], []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        yp = model(X)
        loss = nn.CrossEntropyLoss()(yp, y)
        forward_iters.append(len(deq.forward_res))
        if opt:
            opt.zero_grad()
            loss.backward()
            backward_iters.append(len(deq.backward_res))
            opt.step()
            lr_scheduler.step()

        total_err += (yp.max(dim=1)[1] != y).sum().item()
        total_loss += loss.item() * X.shape[0]
    return total_err / len(loader.dataset), total_loss / len(loader.dataset), forward_iters, backward_iters


# the two solvers find the same fixed point
# (at initialisation, where f is a contraction)
model.eval()
with torch.no_grad():
    x_in = model[1](model[0](X_test[:16]))
    z_plain, res_plain = forward_iteration(lambda z: f(z, x_in), torch.zeros_like(x_in), max_iter=200, tol=1e-5)
    z_anderson, res_anderson = anderson(lambda z: f(z, x_in), torch.zeros_like(x_in), max_iter=200, tol=1e-5)
solver_gap = (z_plain - z_anderson).norm().item() / z_plain.norm().item()
print(f"forward iteration {len(res_plain)} steps, anderson {len(res_anderson)} steps, "
      f"same fixed point {solver_gap < 1e-3}")

# implicit gradient (adjoint by plain iteration) against backprop through 300 unrolled steps, in float64
f64 = copy.deepcopy(f).double()
deq64 = DEQFixedPoint(f64, forward_iteration, tol=1e-12, max_iter=400)
x64 = x_in[:4].double().requires_grad_()
target = torch.randn(4, chan, 8, 8, dtype=torch.float64)

z = deq64(x64)
loss = (z * target).sum()
implicit = autograd.grad(loss, [x64, f64.conv1.weight, f64.conv2.weight])

z = torch.zeros_like(x64)
for _ in range(300):
    z = f64(z, x64)
loss = (z * target).sum()
unrolled = autograd.grad(loss, [x64, f64.conv1.weight, f64.conv2.weight])
grad_gap = max(((a - b).norm() / b.norm()).item() for a, b in zip(implicit, unrolled))
print(f"implicit vs unrolled gradients agree {grad_gap < 1e-6} hook removed {deq64.hook is None}")

for i in range(max_epochs):
    train_err, train_loss, fwd, bwd = epoch(train_loader, model, opt, scheduler)
    test_err, test_loss, _, _ = epoch(test_loader, model)
    print(f"epoch {i + 1} train error {train_err:.4f} loss {train_loss:.4f} test error {test_err:.4f} "
          f"loss {test_loss:.4f} forward iters {np.mean(fwd):.1f} backward iters {np.mean(bwd):.1f}")
print(f"hook ran once per backward: {deq.backward_calls == max_epochs * len(train_loader)}")

print(f"FINAL train_err={train_err:.4f} test_err={test_err:.4f} test_loss={test_loss:.4f} "
      f"forward_iters={np.mean(fwd):.2f} backward_iters={np.mean(bwd):.2f} solver_gap={solver_gap:.6f} grad_gap={grad_gap:.6f}")
