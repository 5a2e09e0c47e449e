"""DeepONet (Lu, Jin, Pang, Zhang and Karniadakis, 2021) learning the antiderivative operator.

The paper's first example at toy size: input functions u(x) on [0, 1] drawn from a Gaussian
process with a squared-exponential kernel (``torch.cdist`` for the distances,
``torch.linalg.cholesky`` of the kernel plus jitter, in float64), their antiderivatives
s(y) = int_0^y u by a cumulative trapezoid rule (``torch.cumsum(...) * dx``, its last value
checked against ``torch.trapezoid``), a branch net on the values of u at fixed sensors and a
trunk net on the query points y, combined as ``torch.einsum("bi,ni->bn", branch, trunk) + b0``
with a scalar bias parameter, trained with Adam on the MSE, and the relative L2 error
``torch.linalg.norm(pred - s, dim=1) / torch.linalg.norm(s, dim=1)`` on held-out functions,
against the plain mean-function predictor.
"""

import os

import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

N_GRID, N_SENSORS, LENGTH_SCALE = 101, 20, 0.2
grid = torch.linspace(0, 1, N_GRID, dtype=torch.float64)
dx = (grid[1] - grid[0]).item()


def gp_samples(n_funcs, length_scale=LENGTH_SCALE, jitter=1e-10):
    d = torch.cdist(grid[:, None], grid[:, None])
    K = torch.exp(-0.5 * (d / length_scale) ** 2)
    L = torch.linalg.cholesky(K + jitter * torch.eye(N_GRID, dtype=torch.float64) * N_GRID)
    return (L @ torch.randn(N_GRID, n_funcs, dtype=torch.float64)).T  # (n_funcs, N_GRID)


def antiderivative(u):
    # cumulative trapezoid: s(x_0) = 0, s(x_k) = sum_{j<k} (u_j + u_{j+1}) / 2 * dx
    increments = (u[:, 1:] + u[:, :-1]) / 2
    return torch.cat([torch.zeros(u.shape[0], 1, dtype=u.dtype), torch.cumsum(increments, dim=1) * dx], dim=1)


def make_data(n_funcs):
    u = gp_samples(n_funcs)
    s = antiderivative(u)
    trapezoid_gap = (s[:, -1] - torch.trapezoid(u, dx=dx, dim=1)).abs().max().item()
    sensor_idx = torch.linspace(0, N_GRID - 1, N_SENSORS).round().long()
    return u[:, sensor_idx].float(), s.float(), trapezoid_gap


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class DeepONet(nn.Module):
    def __init__(self, branch_sizes, trunk_sizes):
        super().__init__()
        self.branch = mlp(branch_sizes)
        self.trunk = mlp(trunk_sizes)
        self.b0 = nn.Parameter(torch.zeros(1))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, u_sensors, y):
        branch = self.branch(u_sensors)  # (batch, p)
        trunk = torch.tanh(self.trunk(y))  # (n_points, p): DeepXDE applies the activation to the trunk's last layer
        return torch.einsum("bi,ni->bn", branch, trunk) + self.b0


u_train, s_train, gap_train = make_data(150)
u_test, s_test, gap_test = make_data(50)
y = grid.float()[:, None]
print(f"branch input {tuple(u_train.shape)}, trunk input {tuple(y.shape)}, targets {tuple(s_train.shape)}, "
      f"cumsum matches torch.trapezoid {max(gap_train, gap_test) < 1e-12}")


def relative_l2(pred, target):
    return (torch.linalg.norm(pred - target, dim=1) / torch.linalg.norm(target, dim=1)).mean().item()


baseline = relative_l2(s_train.mean(0, keepdim=True).expand_as(s_test), s_test)
model = DeepONet([N_SENSORS, 40, 40], [1, 40, 40])
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.MSELoss()
EPOCHS, BATCH = 120, 30
for epoch in range(1, EPOCHS + 1):
    perm = torch.randperm(u_train.shape[0])
    for i in range(0, u_train.shape[0], BATCH):
        idx = perm[i:i + BATCH]
        loss = loss_fn(model(u_train[idx], y), s_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 40 == 0:
        with torch.no_grad():
            test_err = relative_l2(model(u_test, y), s_test)
        print(f"epoch {epoch}: train mse {loss.item():.5f}, test relative L2 {test_err:.4f}")

with torch.no_grad():
    pred = model(u_test, y)
    test_err = relative_l2(pred, s_test)
    train_err = relative_l2(model(u_train, y), s_train)
    start_err = pred[:, 0].abs().mean().item()  # s(0) = 0 for every u
print(f"mean-function baseline relative L2 {baseline:.4f}, |s_hat(0)| {start_err:.4f}")
print(f"FINAL test_rel_l2={test_err:.4f} train_rel_l2={train_err:.4f} baseline_rel_l2={baseline:.4f}")
