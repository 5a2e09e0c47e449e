"""A neural ODE without torchdiffeq: hand-written Euler and RK4 solvers, trained on a spiral.

As in the torchdiffeq ``ode_demo.py`` and the many "neural ODE from scratch" notebooks: an
``nn.Module`` vector field ``ODEFunc(t, y)`` (the true dynamics ``y**3 @ true_A``), a
``torch.linspace`` time grid, fixed-step ``euler``/``rk4`` solvers returning ``torch.stack(states)``,
random short-window batches, training by backpropagation through the RK4 steps with
``RMSprop``, then ``torch.autograd.functional.jacobian`` of the learned field at the origin and
``torch.linalg.eigvals`` of it (``.real`` for stability), against the true field's.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

data_size = 200
batch_time = 10
batch_size = 16
niters = 300

true_y0 = torch.tensor([[2., 0.]])
t = torch.linspace(0., 6., data_size)
true_A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])


class Lambda(nn.Module):
    def forward(self, t, y):
        return torch.mm(y ** 3, true_A)


def euler(func, y0, t):
    ys = [y0]
    y = y0
    for t0, t1 in zip(t[:-1], t[1:]):
        y = y + (t1 - t0) * func(t0, y)
        ys.append(y)
    return torch.stack(ys)


def rk4(func, y0, t):
    ys = [y0]
    y = y0
    for t0, t1 in zip(t[:-1], t[1:]):
        dt = t1 - t0
        k1 = func(t0, y)
        k2 = func(t0 + dt / 2, y + dt * k1 / 2)
        k3 = func(t0 + dt / 2, y + dt * k2 / 2)
        k4 = func(t1, y + dt * k3)
        y = y + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        ys.append(y)
    return torch.stack(ys)


with torch.no_grad():
    true_y = rk4(Lambda(), true_y0, t)
    fine = euler(Lambda(), true_y0, torch.linspace(0., 6., 4 * data_size - 3))[::4]
print("true trajectory", tuple(true_y.shape))
print(f"euler (4x finer) vs rk4 drift at t=6: {(fine[-1] - true_y[-1]).norm().item():.4f}")


def get_batch():
    s = torch.from_numpy(np.random.choice(np.arange(data_size - batch_time, dtype=np.int64), batch_size,
                                          replace=False))
    batch_y0 = true_y[s]  # (M, D)
    batch_t = t[:batch_time]  # (T)
    batch_y = torch.stack([true_y[s + i] for i in range(batch_time)], dim=0)  # (T, M, D)
    return batch_y0, batch_t, batch_y


class ODEFunc(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, 50),
            nn.Tanh(),
            nn.Linear(50, 2),
        )
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0, std=0.1)
                nn.init.constant_(m.bias, val=0)

    def forward(self, t, y):
        return self.net(y ** 3)


func = ODEFunc()
optimizer = optim.RMSprop(func.parameters(), lr=1e-3)

for itr in range(1, niters + 1):
    optimizer.zero_grad()
    batch_y0, batch_t, batch_y = get_batch()
    pred_y = rk4(func, batch_y0, batch_t)
    loss = torch.mean(torch.abs(pred_y - batch_y))
    loss.backward()
    optimizer.step()
    if itr % 100 == 0:
        with torch.no_grad():
            pred_y = rk4(func, true_y0, t)
            total = torch.mean(torch.abs(pred_y - true_y))
        print(f"Iter {itr:04d} | Total Loss {total.item():.6f}")

# linearise both fields at a point on the orbit: the jacobian of the vector field
y_star = torch.tensor([1.0, 0.5])
J_learned = torch.autograd.functional.jacobian(lambda y: func(0.0, y.unsqueeze(0)).squeeze(0), y_star)
J_true = torch.autograd.functional.jacobian(lambda y: Lambda()(0.0, y.unsqueeze(0)).squeeze(0), y_star)
print("jacobian shape", tuple(J_learned.shape))
eig_learned = torch.linalg.eigvals(J_learned)
eig_true = torch.linalg.eigvals(J_true)
print("eigvals complex64:", eig_learned.dtype == torch.complex64)
max_real = eig_learned.real.max().item()
print(f"largest real part learned {max_real:.3f} true {eig_true.real.max().item():.3f}")
jac_err = (J_learned - J_true).norm().item() / J_true.norm().item()
spectral_radius = eig_learned.abs().max().item()
print(f"spectral radius learned {spectral_radius:.3f} true {eig_true.abs().max().item():.3f}")

with torch.no_grad():
    pred_y = rk4(func, true_y0, t)
    final = torch.mean(torch.abs(pred_y - true_y)).item()
print(f"FINAL loss={final:.4f} jac_err={jac_err:.4f} radius={spectral_radius:.4f}")
