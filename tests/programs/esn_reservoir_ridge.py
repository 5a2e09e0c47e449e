"""An echo state network (Jaeger 2001) as the reservoir-computing tutorials write it in torch (ReservoirPy's
``Reservoir`` + ``Ridge`` ported to torch, EchoTorch's ``LiESN``), on a Mackey-Glass series.

The series is generated in the program: the Mackey-Glass delay equation ``dx/dt = b x(t - tau) / (1 +
x(t - tau)^n) - g x(t)`` with ``tau = 17`` integrated by Euler steps of 0.1 from a NumPy history, sampled
every unit, rescaled to [-1, 1] and taken with ``torch.from_numpy(...).float()``. The reservoir is the
tutorials': ``W = torch.rand(n, n) * 2 - 1`` sparsified by ``W[torch.rand(n, n) > density] = 0``, scaled to
spectral radius 0.9 by ``torch.linalg.eigvals(W).abs().max()``, a dense input matrix with a bias column, and
leaky-integrator tanh updates ``x = (1 - lr) * x + lr * torch.tanh(W_in @ torch.cat(...) + W @ x)`` in a
Python loop under ``torch.no_grad()``, the first ``washout`` states discarded. The readout is fitted on the
states ``[1; u; x]`` three ways: ridge regression by ``torch.linalg.solve(X.T @ X + reg *
torch.eye(...), X.T @ Y)`` in float64, ``torch.linalg.lstsq`` of the Tikhonov-augmented system
``[X; sqrt(reg) I]`` (``.solution``; the two must agree), and an ``nn.Linear`` trained by Adam on
``nn.MSELoss``. The ESN then runs generatively, its own prediction fed back as the next input.

Checked: solve == lstsq (``torch.allclose``), the spectral radius after scaling, the one-step test NRMSE of
the ridge readout against a "repeat the last value" baseline and against the gradient-trained readout,
and the free-running prediction error over the first 20 and 60 steps.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ------------------------------------------------------------------------------ Mackey-Glass
def mackey_glass(n_samples, tau=17, beta=0.2, gamma=0.1, n=10, dt=0.1, subsample=10):
    history_len = int(tau / dt)
    history = 1.2 + 0.2 * (np.random.rand(history_len) - 0.5)
    x = list(history)
    samples = []
    for i in range((n_samples + 200) * subsample):
        x_tau = x[-history_len]
        x_t = x[-1]
        x.append(x_t + dt * (beta * x_tau / (1.0 + x_tau ** n) - gamma * x_t))
        if i % subsample == 0:
            samples.append(x[-1])
        if len(x) > 2 * history_len:
            x = x[-history_len - 1:]
    series = np.array(samples[200:200 + n_samples])  # drop the transient
    series = 2.0 * (series - series.min()) / (series.max() - series.min()) - 1.0
    return series


data = torch.from_numpy(mackey_glass(1600)).float().unsqueeze(1)  # (T, 1)
train_len, test_len, washout = 1000, 500, 100
u_train, y_train = data[:train_len], data[1:train_len + 1]
u_test, y_test = data[train_len:train_len + test_len], data[train_len + 1:train_len + test_len + 1]
print(f"Mackey-Glass series {tuple(data.shape)}, range [{data.min().item():.3f}, {data.max().item():.3f}]")


# ------------------------------------------------------------------------------ reservoir
class ESN:
    def __init__(self, in_size, res_size, spectral_radius=0.9, density=0.1, leak_rate=0.3, input_scaling=0.5):
        self.res_size = res_size
        self.leak_rate = leak_rate
        W = torch.rand(res_size, res_size) * 2 - 1
        W[torch.rand(res_size, res_size) > density] = 0
        rho = torch.linalg.eigvals(W).abs().max()
        self.W = W * (spectral_radius / rho)
        self.W_in = (torch.rand(res_size, 1 + in_size) * 2 - 1) * input_scaling
        self.x = torch.zeros(res_size, 1)

    def reset(self):
        self.x = torch.zeros(self.res_size, 1)

    @torch.no_grad()
    def step(self, u):
        u = u.view(-1, 1)
        pre = self.W_in @ torch.cat((torch.ones(1, 1), u), 0) + self.W @ self.x
        self.x = (1 - self.leak_rate) * self.x + self.leak_rate * torch.tanh(pre)
        return self.x

    @torch.no_grad()
    def harvest(self, inputs, washout=0):
        states = []
        for t in range(inputs.size(0)):
            x = self.step(inputs[t])
            if t >= washout:
                states.append(torch.cat((torch.ones(1), inputs[t], x.view(-1))))
        return torch.stack(states)


esn = ESN(1, 120)
radius = torch.linalg.eigvals(esn.W).abs().max().item()
print(f"reservoir: {esn.res_size} units, {int((esn.W != 0).sum())} nonzero weights, spectral radius {radius:.4f}")

X_train = esn.harvest(u_train, washout)           # (train_len - washout, 2 + n)
Y_train = y_train[washout:]
last_state = esn.x.clone()
X_test = esn.harvest(u_test)                      # continues from the training run's last state
print(f"states {tuple(X_train.shape)} train, {tuple(X_test.shape)} test")


# ------------------------------------------------------------------------------ readouts
reg = 1e-6
Xd, Yd = X_train.double(), Y_train.double()
eye = torch.eye(Xd.size(1), dtype=torch.float64)
W_out = torch.linalg.solve(Xd.T @ Xd + reg * eye, Xd.T @ Yd)
augmented = torch.cat((Xd, reg ** 0.5 * eye), 0)
targets = torch.cat((Yd, torch.zeros(Xd.size(1), 1, dtype=torch.float64)), 0)
W_lstsq = torch.linalg.lstsq(augmented, targets).solution
agree = torch.allclose(W_out, W_lstsq, rtol=1e-4, atol=1e-4)
print(f"ridge by solve vs lstsq: max |diff| {(W_out - W_lstsq).abs().max().item():.2e}, allclose {agree}")


def nrmse(pred, target):
    return (torch.sqrt(torch.mean((pred - target) ** 2)) / target.std()).item()


pred_ridge = (X_test.double() @ W_out).float()
ridge_nrmse = nrmse(pred_ridge, y_test)
naive_nrmse = nrmse(u_test, y_test)
print(f"one-step test NRMSE: ridge {ridge_nrmse:.5f}, repeat-last baseline {naive_nrmse:.5f}")

readout = nn.Linear(X_train.size(1), 1, bias=False)
optimizer = torch.optim.Adam(readout.parameters(), lr=0.01)
criterion = nn.MSELoss()
for epoch in range(400):
    optimizer.zero_grad()
    loss = criterion(readout(X_train), Y_train)
    loss.backward()
    optimizer.step()
    if epoch % 100 == 0 or epoch == 399:
        print(f"linear readout epoch {epoch:3d} loss {loss.item():.6f}")
with torch.no_grad():
    linear_nrmse = nrmse(readout(X_test), y_test)
print(f"one-step test NRMSE: gradient-trained nn.Linear {linear_nrmse:.5f}")


# ------------------------------------------------------------------------------ generative run
@torch.no_grad()
def generate(model, W_out, x0, u0, steps):
    model.x = x0.clone()
    u = u0.clone()
    outputs = []
    for _ in range(steps):
        x = model.step(u)
        features = torch.cat((torch.ones(1), u.view(-1), x.view(-1))).double()
        u = (features @ W_out).float()
        outputs.append(u)
    return torch.stack(outputs)


gen = generate(esn, W_out, last_state, u_test[0], 60)
gen_err20 = nrmse(gen[:20], y_test[:20])
gen_err60 = torch.sqrt(torch.mean((gen - y_test[:60]) ** 2)).item()
print(f"free-running: NRMSE over 20 steps {gen_err20:.5f}, RMSE over 60 steps {gen_err60:.5f}")

print(
    f"FINAL ridge_nrmse={ridge_nrmse:.5f} naive_nrmse={naive_nrmse:.5f} linear_nrmse={linear_nrmse:.5f} "
    f"gen_rmse60={gen_err60:.5f} radius={radius:.4f} solve_eq_lstsq={int(agree)}"
)
