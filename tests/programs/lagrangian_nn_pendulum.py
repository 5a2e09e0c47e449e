"""Lagrangian Neural Networks (Cranmer, Greydanus, Hoyer et al., 2020) on the double pendulum.

The reference code's recipe (``lagrangian_nns``, there in JAX) written with ``torch.func``: the
equation of motion of any Lagrangian L(q, q_dot),

    q_ddot = (d2L/dq_dot2)^+ [dL/dq - (d2L/dq dq_dot) q_dot],

by ``torch.func.hessian`` (argnums=1), ``torch.func.grad`` (argnums=0) and ``torch.func.jacrev``
of ``jacrev`` across the two arguments, inverted with ``torch.linalg.pinv`` and mapped over the
batch by ``torch.func.vmap``. Applied to the analytic Lagrangian it must reproduce the textbook
double-pendulum accelerations; the ground-truth trajectories come from RK4 on those. A small
``nn.Module`` MLP (``Softplus``, because ReLU's Hessian is zero) is the learned Lagrangian, trained
with Adam and ``CosineAnnealingLR`` on (state, acceleration) pairs; its accelerations are computed a
second time with ``torch.autograd.grad(create_graph=True)`` row by row and ``torch.linalg.solve``,
and the two must agree (``torch.testing.assert_close``). Finally the learned dynamics are rolled out
under ``torch.no_grad()``: the learned energy E = q_dot . dL/dq_dot - L is conserved by its own flow,
and the true energy of the learned trajectory stays near the start.
"""

import math
import os

import torch
import torch.nn as nn
from torch.func import grad, hessian, jacrev, vmap

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
torch.set_default_dtype(torch.float64)

M1, M2, L1, L2, G = 1.0, 1.0, 1.0, 1.0, 9.8


def analytic_lagrangian(q, q_t):
    t1, t2 = q[0], q[1]
    w1, w2 = q_t[0], q_t[1]
    kinetic = 0.5 * M1 * (L1 * w1) ** 2 + 0.5 * M2 * (
        (L1 * w1) ** 2 + (L2 * w2) ** 2 + 2 * L1 * L2 * w1 * w2 * torch.cos(t1 - t2))
    potential = -(M1 + M2) * G * L1 * torch.cos(t1) - M2 * G * L2 * torch.cos(t2)
    return kinetic - potential


def analytic_energy(state):
    t1, t2, w1, w2 = state.unbind(-1)
    kinetic = 0.5 * M1 * (L1 * w1) ** 2 + 0.5 * M2 * (
        (L1 * w1) ** 2 + (L2 * w2) ** 2 + 2 * L1 * L2 * w1 * w2 * torch.cos(t1 - t2))
    potential = -(M1 + M2) * G * L1 * torch.cos(t1) - M2 * G * L2 * torch.cos(t2)
    return kinetic + potential


def f_analytical(state):
    """The textbook accelerations, solved by hand from the Euler-Lagrange equations."""
    t1, t2, w1, w2 = state.unbind(-1)
    a1 = (L2 / L1) * (M2 / (M1 + M2)) * torch.cos(t1 - t2)
    a2 = (L1 / L2) * torch.cos(t1 - t2)
    f1 = -(L2 / L1) * (M2 / (M1 + M2)) * w2 ** 2 * torch.sin(t1 - t2) - (G / L1) * torch.sin(t1)
    f2 = (L1 / L2) * w1 ** 2 * torch.sin(t1 - t2) - (G / L2) * torch.sin(t2)
    g1 = (f1 - a1 * f2) / (1 - a1 * a2)
    g2 = (f2 - a2 * f1) / (1 - a1 * a2)
    return torch.stack([w1, w2, g1, g2], dim=-1)


def equation_of_motion(lagrangian, state):
    q, q_t = torch.split(state, 2)
    q_tt = torch.linalg.pinv(hessian(lagrangian, 1)(q, q_t)) @ (
        grad(lagrangian, 0)(q, q_t) - jacrev(jacrev(lagrangian, 1), 0)(q, q_t) @ q_t)
    return torch.cat([q_t, q_tt])


def rk4_step(f, state, dt):
    k1 = f(state)
    k2 = f(state + dt / 2 * k1)
    k3 = f(state + dt / 2 * k2)
    k4 = f(state + dt * k3)
    return state + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def rollout(f, state, dt, steps):
    states = [state]
    for _ in range(steps):
        state = rk4_step(f, state, dt)
        states.append(state)
    return torch.stack(states)


# --- the equation of motion of the analytic Lagrangian is the textbook double pendulum ---
analytic_field = vmap(lambda s: equation_of_motion(analytic_lagrangian, s))
probe = torch.cat([torch.empty(16, 2).uniform_(-1.5, 1.5), torch.empty(16, 2).uniform_(-2, 2)], dim=1)
gap = (analytic_field(probe) - f_analytical(probe)).abs().max().item()
print(f"Euler-Lagrange through torch.func vs textbook accelerations: max gap {gap:.2e}, "
      f"agree {torch.allclose(analytic_field(probe), f_analytical(probe), atol=1e-9)}")

# --- ground truth: RK4 trajectories from random starts ---
DT, STEPS = 0.02, 60
starts = torch.cat([torch.empty(6, 2).uniform_(-1.0, 1.0), torch.empty(6, 2).uniform_(-1.0, 1.0)], dim=1)
trajectories = torch.stack([rollout(f_analytical, s, DT, STEPS) for s in starts])
energy = analytic_energy(trajectories)
true_drift = ((energy - energy[:, :1]).abs().max() / energy.abs().mean()).item()
print(f"{trajectories.shape[0]} true trajectories of {trajectories.shape[1]} states, "
      f"RK4 relative energy drift {true_drift:.2e}")
states = trajectories.reshape(-1, 4)
targets = f_analytical(states)[:, 2:]
perm = torch.randperm(states.shape[0])
n_train = 256
train_x, train_y = states[perm[:n_train]], targets[perm[:n_train]]
test_x, test_y = states[perm[n_train:]], targets[perm[n_train:]]
print(f"train pairs {train_x.shape[0]}, test pairs {test_x.shape[0]}")


class MLPLagrangian(nn.Module):
    def __init__(self, hidden=48):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, hidden), nn.Softplus(), nn.Linear(hidden, hidden), nn.Softplus(), nn.Linear(hidden, 1))
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.5 / math.sqrt(m.in_features))
                nn.init.zeros_(m.bias)

    def forward(self, q, q_t):
        # a free particle's kinetic term keeps d2L/dq_dot2 invertible while the network is untrained
        return 0.5 * (q_t * q_t).sum(-1) + self.net(torch.cat([q, q_t], dim=-1)).squeeze(-1)


model = MLPLagrangian()
EPOCHS, BATCH, LR = 40, 64, 1e-2


def learned_accelerations(x):
    return vmap(lambda s: equation_of_motion(model, s)[2:])(x)


def accelerations_by_autograd(x, create_graph=True):
    """The same formula by double backward on the whole batch, one Hessian row per call."""
    with torch.enable_grad():
        q = x[:, :2].detach().requires_grad_(True)
        q_t = x[:, 2:].detach().requires_grad_(True)
        L = model(q, q_t).sum()
        dL_dq, dL_dqt = torch.autograd.grad(L, (q, q_t), create_graph=True)
        rows_tt, rows_tq = [], []
        for i in range(2):
            d_tt, d_tq = torch.autograd.grad(dL_dqt[:, i].sum(), (q_t, q), retain_graph=True, create_graph=create_graph)
            rows_tt.append(d_tt)
            rows_tq.append(d_tq)
        H_tt = torch.stack(rows_tt, dim=1)  # H_tt[b, i, j] = d2L / dq_t_i dq_t_j
        H_tq = torch.stack(rows_tq, dim=1)  # H_tq[b, i, j] = d2L / dq_t_i dq_j
        rhs = dL_dq - torch.bmm(H_tq, q_t.unsqueeze(-1)).squeeze(-1)
        q_tt = torch.linalg.solve(H_tt, rhs)
    return q_tt if create_graph else q_tt.detach()


initial_loss = nn.functional.mse_loss(accelerations_by_autograd(test_x, create_graph=False), test_y).item()
optimizer = torch.optim.Adam(model.parameters(), lr=LR)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * (n_train // BATCH))
for epoch in range(EPOCHS):
    total = 0.0
    for idx in torch.randperm(n_train).split(BATCH):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(accelerations_by_autograd(train_x[idx]), train_y[idx])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
    if epoch % 10 == 0 or epoch == EPOCHS - 1:
        print(f"epoch {epoch:2d} train loss {total / n_train:.4f} lr {scheduler.get_last_lr()[0]:.5f}")

final_loss = nn.functional.mse_loss(accelerations_by_autograd(test_x, create_graph=False), test_y).item()
loss_ratio = final_loss / initial_loss
print(f"test loss {initial_loss:.4f} -> {final_loss:.4f} (ratio {loss_ratio:.4f})")

by_func = learned_accelerations(test_x[:12]).detach()
by_autograd = accelerations_by_autograd(test_x[:12], create_graph=False)
torch.testing.assert_close(by_func, by_autograd, rtol=1e-6, atol=1e-8)
agree = int(torch.allclose(by_func, by_autograd, rtol=1e-6, atol=1e-8))
print(f"vmap(hessian/jacrev) + pinv vs autograd.grad(create_graph=True) + solve agree: {bool(agree)}")


def learned_energy(x):
    """E = q_dot . dL/dq_dot - L, batched by autograd."""
    with torch.enable_grad():
        q_t = x[:, 2:].detach().requires_grad_(True)
        L = model(x[:, :2], q_t)
        (dL_dqt,) = torch.autograd.grad(L.sum(), q_t)
    return ((q_t * dL_dqt).sum(-1) - L).detach()


def energy_one(s):
    q, q_t = torch.split(s, 2)
    return q_t @ grad(model, 1)(q, q_t) - model(q, q_t)


torch.testing.assert_close(vmap(energy_one)(test_x[:8]).detach(), learned_energy(test_x[:8]))


def learned_field(x):
    return torch.cat([x[:, 2:], accelerations_by_autograd(x, create_graph=False)], dim=1)


ROLLOUT = 40
with torch.no_grad():
    start = trajectories[:, 0]
    learned = rollout(learned_field, start, DT, ROLLOUT)
    own_energy = learned_energy(learned.reshape(-1, 4)).reshape(learned.shape[:2])
    own_drift = ((own_energy - own_energy[:1]).abs().max() / own_energy.abs().mean()).item()
    true_e = analytic_energy(learned)
    energy_drift = ((true_e - true_e[:1]).abs().mean() / analytic_energy(start).abs().mean()).item()
    path_error = (learned[:, :, :2] - trajectories[:, :ROLLOUT + 1, :2].transpose(0, 1)).abs().mean().item()
print(f"learned rollout of {ROLLOUT} steps: drift of its own energy {own_drift:.2e}, "
      f"true-energy drift {energy_drift:.4f}, mean angle error {path_error:.4f}")
print(f"FINAL loss_ratio={loss_ratio:.4f} energy_drift={energy_drift:.4f} agree={agree}")
