"""Hamiltonian Neural Networks (Greydanus, Dzamba and Yosinski, 2019) on the ideal mass-spring.

The ``hamiltonian-nn`` repository's recipe at toy size: an ``MLP`` (``torch.nn.Linear`` +
``tanh``, orthogonal init) whose single output is the learned energy H(q, p); the symplectic
field from ``torch.autograd.grad(H.sum(), x, create_graph=True)[0]`` split by ``dH.split(1, 1)``
into ``dH/dq`` and ``dH/dp`` and reassembled as ``torch.cat([dHdp, -dHdq], 1)``, trained by an
L2 loss against the true time derivatives with Adam, beside a baseline MLP that regresses the
derivatives directly. Both learned fields are then integrated from the same start with an RK4
stepper written in torch under ``torch.no_grad()`` (the HNN's field still needs a gradient:
``torch.enable_grad()`` inside), and the energy drift of each trajectory is printed: the HNN
keeps H = (q^2 + p^2) / 2 nearly constant, the baseline spirals.
"""

import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def hamiltonian_fn(coords):
    q, p = np.split(coords, 2, axis=-1)
    return (q ** 2 + p ** 2) / 2  # spring constant and mass of 1


def dynamics_fn(coords):
    q, p = np.split(coords, 2, axis=-1)
    return np.concatenate([p, -q], axis=-1)  # dq/dt = dH/dp, dp/dt = -dH/dq


def get_dataset(samples, noise_std=0.1):
    radius = rng.uniform(0.3, 1.0, size=(samples, 1))
    angle = rng.uniform(0, 2 * np.pi, size=(samples, 1))
    x = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)
    dxdt = dynamics_fn(x)
    x = x + rng.normal(scale=noise_std, size=x.shape)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(dxdt, dtype=torch.float32)


class MLP(torch.nn.Module):
    """Just a salt-of-the-earth MLP."""

    def __init__(self, input_dim, hidden_dim, output_dim):
        super().__init__()
        self.linear1 = torch.nn.Linear(input_dim, hidden_dim)
        self.linear2 = torch.nn.Linear(hidden_dim, hidden_dim)
        self.linear3 = torch.nn.Linear(hidden_dim, output_dim, bias=None)
        for lin in [self.linear1, self.linear2, self.linear3]:
            torch.nn.init.orthogonal_(lin.weight)  # use a principled initialization
        self.nonlinearity = torch.tanh

    def forward(self, x):
        h = self.nonlinearity(self.linear1(x))
        h = self.nonlinearity(self.linear2(h))
        return self.linear3(h)


class HNN(torch.nn.Module):
    """Learn arbitrary vector fields that are sums of conservative and solenoidal fields."""

    def __init__(self, input_dim, differentiable_model, baseline=False):
        super().__init__()
        self.baseline = baseline
        self.differentiable_model = differentiable_model
        self.input_dim = input_dim

    def forward(self, x):
        return self.differentiable_model(x)

    def time_derivative(self, x):
        if self.baseline:
            return self.differentiable_model(x)
        H = self.forward(x)
        dH = torch.autograd.grad(H.sum(), x, create_graph=True)[0]
        dHdq, dHdp = dH.split(1, 1)
        return torch.cat([dHdp, -dHdq], 1)


def train(model, x, dxdt, test_x, test_dxdt, steps=300, lr=1e-2):
    optim = torch.optim.Adam(model.parameters(), lr, weight_decay=1e-4)
    L2_loss = lambda u, v: (u - v).pow(2).mean()  # noqa: E731  (the repository's spelling)
    for step in range(steps + 1):
        x.requires_grad_(True)
        dxdt_hat = model.time_derivative(x)
        loss = L2_loss(dxdt, dxdt_hat)
        loss.backward()
        optim.step()
        optim.zero_grad()
        if step % 100 == 0:
            test_x.requires_grad_(True)
            test_loss = L2_loss(test_dxdt, model.time_derivative(test_x))
            print(f"  step {step}, train_loss {loss.item():.4e}, test_loss {test_loss.item():.4e}")
    return loss.item(), test_loss.item()


def rk4_step(fun, t, y, dt):
    k1 = fun(t, y)
    k2 = fun(t + dt / 2, y + dt / 2 * k1)
    k3 = fun(t + dt / 2, y + dt / 2 * k2)
    k4 = fun(t + dt, y + dt * k3)
    return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def integrate_model(model, y0, t_span=(0.0, 20.0), steps=200):
    def fun(t, y):
        with torch.enable_grad():
            x = y.detach().clone().requires_grad_(True)
            return model.time_derivative(x).detach()

    dt = (t_span[1] - t_span[0]) / steps
    ys = [y0]
    with torch.no_grad():
        y = y0
        for i in range(steps):
            y = rk4_step(fun, t_span[0] + i * dt, y, dt)
            ys.append(y)
    return torch.cat(ys, 0)


x, dxdt = get_dataset(64)
test_x, test_dxdt = get_dataset(64)
print(f"train {tuple(x.shape)} test {tuple(test_x.shape)}")

results = {}
for name, baseline in [("baseline", True), ("hnn", False)]:
    output_dim = 2 if baseline else 1
    nn_model = MLP(2, 32, output_dim)
    model = HNN(2, differentiable_model=nn_model, baseline=baseline)
    print(f"training {name} (output_dim {output_dim})")
    train_loss, test_loss = train(model, x.clone(), dxdt, test_x.clone(), test_dxdt)

    y0 = torch.tensor([[0.75, 0.0]])
    trajectory = integrate_model(model, y0)
    energy = torch.tensor(hamiltonian_fn(trajectory.numpy()))[:, 0]
    drift = (energy[-1] - energy[0]).abs().item()
    t = torch.linspace(0, 20, trajectory.shape[0])
    true_trajectory = torch.stack([0.75 * torch.cos(t), -0.75 * torch.sin(t)], 1)
    traj_err = (trajectory - true_trajectory).pow(2).sum(1).sqrt().mean().item()
    print(f"{name}: trajectory {tuple(trajectory.shape)}, energy {energy[0].item():.4f} -> "
          f"{energy[-1].item():.4f}, drift {drift:.4f}, mean position error {traj_err:.4f}")
    results[name] = (test_loss, drift, traj_err)

print(f"FINAL hnn_test_loss={results['hnn'][0]:.4f} baseline_test_loss={results['baseline'][0]:.4f} "
      f"hnn_drift={results['hnn'][1]:.4f} baseline_drift={results['baseline'][1]:.4f} "
      f"hnn_traj_err={results['hnn'][2]:.4f}")
