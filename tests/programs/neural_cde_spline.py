"""Neural CDE (Kidger et al., NeurIPS 2020) in the layout of patrick-kidger/torchcde's ``time_series_classification``
example, with torchcde's interpolation code written out, classifying clockwise against counter-clockwise spirals
observed at irregular times.

The data are torchcde's ``get_data`` spirals (``torch.linspace`` times, a random start angle, ``cos``/``sin``
shrinking by ``1 + 0.5 t``, the second half flipped to counter-clockwise, Gaussian noise), kept at a random
sorted subset of the time points (shared by the batch) with time itself as channel 0, as torchcde recommends.
``natural_cubic_coeffs`` is torchcde's ``_natural_cubic_spline_coeffs_without_missing_values``: the knots'
second-derivative system is tridiagonal and solved by ``tridiagonal_solve`` (the Thomas algorithm: a forward
sweep and a backward substitution over Python lists of channel tensors), which must agree with
``torch.linalg.solve`` on the dense matrix built by ``torch.diag_embed``; the coefficients ``(a, b, two_c,
three_d)`` are ``torch.cat``-ed along the channels. ``CubicSpline`` finds the interval of ``t`` by
``torch.bucketize(t.detach(), self._t) - 1`` (equal to ``torch.searchsorted(..., right=True) - 1``),
``clamp``-ed, and gives ``evaluate`` and ``derivative`` by Horner's rule.

The model is the example's: ``CDEFunc`` (``Linear`` -> ``relu`` -> ``Linear`` -> ``tanh`` -> ``view(batch,
hidden, input)``), an ``initial`` Linear on ``X.evaluate(X.interval[0])``, a fixed-step RK4 ``cdeint`` loop
whose vector field contracts ``f(z)`` with ``dX/dt`` by ``(f @ dX.unsqueeze(-1)).squeeze(-1)`` (and by
``torch.einsum('bhi,bi->bh', ...)`` in the check), a ``readout`` Linear, ``binary_cross_entropy_with_logits``
and Adam over shuffled minibatches.

Checked: the spline passes exactly through the data at the knots; its derivative matches central finite
differences of ``evaluate`` (float64); the sweep and dense solves agree, as do bucketize/searchsorted and
bmm/einsum; test accuracy rises from its untrained value.
"""

import math
import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

HIDDEN, LENGTH, KEPT = 8, 64, 20


# ----------------------------------------------------------------------------------- data
def get_data(num_timepoints=LENGTH):
    t = torch.linspace(0.0, 4 * math.pi, num_timepoints)
    start = torch.rand(128) * 2 * math.pi
    x_pos = torch.cos(start.unsqueeze(1) + t.unsqueeze(0)) / (1 + 0.5 * t)
    x_pos[:64] *= -1
    y_pos = torch.sin(start.unsqueeze(1) + t.unsqueeze(0)) / (1 + 0.5 * t)
    x_pos += 0.01 * torch.randn_like(x_pos)
    y_pos += 0.01 * torch.randn_like(y_pos)
    # (The time channel must be included, as torchcde's README says.)
    X = torch.stack([t.unsqueeze(0).repeat(128, 1), x_pos, y_pos], dim=2)
    y = torch.zeros(128)
    y[:64] = 1
    perm = torch.randperm(128)
    X = X[perm]
    y = y[perm]
    return X, y


# ----------------------------------------------------------------------------------- interpolation
def tridiagonal_solve(b, A_upper, A_diagonal, A_lower):
    """Solves a tridiagonal system Ax = b (torchcde.misc.tridiagonal_solve): the last dimension of each
    argument runs along the system; the rest are batch dimensions."""
    A_upper, _ = torch.broadcast_tensors(A_upper, b[..., :-1])
    A_lower, _ = torch.broadcast_tensors(A_lower, b[..., :-1])
    A_diagonal, b = torch.broadcast_tensors(A_diagonal, b)

    channels = b.size(-1)

    new_b = np.empty(channels, dtype=object)
    new_A_diagonal = np.empty(channels, dtype=object)
    outs = np.empty(channels, dtype=object)

    new_b[0] = b[..., 0]
    new_A_diagonal[0] = A_diagonal[..., 0]
    for i in range(1, channels):
        w = A_lower[..., i - 1] / new_A_diagonal[i - 1]
        new_A_diagonal[i] = A_diagonal[..., i] - w * A_upper[..., i - 1]
        new_b[i] = b[..., i] - w * new_b[i - 1]

    outs[channels - 1] = new_b[channels - 1] / new_A_diagonal[channels - 1]
    for i in range(channels - 2, -1, -1):
        outs[i] = (new_b[i] - A_upper[..., i] * outs[i + 1]) / new_A_diagonal[i]

    return torch.stack(outs.tolist(), dim=-1)


def _natural_cubic_spline_system(times, path):
    length = path.size(-1)
    time_diffs = times[1:] - times[:-1]
    time_diffs_reciprocal = time_diffs.reciprocal()
    time_diffs_reciprocal_squared = time_diffs_reciprocal ** 2
    three_path_diffs = 3 * (path[..., 1:] - path[..., :-1])
    six_path_diffs = 2 * three_path_diffs
    path_diffs_scaled = three_path_diffs * time_diffs_reciprocal_squared

    system_diagonal = torch.empty(length, dtype=path.dtype, device=path.device)
    system_diagonal[:-1] = time_diffs_reciprocal
    system_diagonal[-1] = 0
    system_diagonal[1:] += time_diffs_reciprocal
    system_diagonal *= 2
    system_rhs = torch.empty_like(path)
    system_rhs[..., :-1] = path_diffs_scaled
    system_rhs[..., -1] = 0
    system_rhs[..., 1:] += path_diffs_scaled
    return (time_diffs_reciprocal, time_diffs_reciprocal_squared, six_path_diffs, system_rhs, system_diagonal)


def natural_cubic_knot_derivatives(times, path, dense=False):
    time_diffs_reciprocal, _, _, system_rhs, system_diagonal = _natural_cubic_spline_system(times, path)
    if not dense:
        return tridiagonal_solve(system_rhs, time_diffs_reciprocal, system_diagonal, time_diffs_reciprocal)
    matrix = (torch.diag_embed(system_diagonal) + torch.diag_embed(time_diffs_reciprocal, offset=1)
              + torch.diag_embed(time_diffs_reciprocal, offset=-1))
    return torch.linalg.solve(matrix, system_rhs.unsqueeze(-1)).squeeze(-1)


def _natural_cubic_spline_coeffs_without_missing_values(times, path):
    # path should be a tensor of shape (..., length)
    # Will return the b, two_c, three_d coefficients of the derivative of the cubic spline interpolating the
    # path.
    length = path.size(-1)

    if length < 2:
        raise ValueError("Must have a time dimension of size at least 2.")
    (time_diffs_reciprocal, time_diffs_reciprocal_squared, six_path_diffs, _,
     _) = _natural_cubic_spline_system(times, path)
    knot_derivatives = natural_cubic_knot_derivatives(times, path)

    a = path[..., :-1]
    b = knot_derivatives[..., :-1]
    two_c = (six_path_diffs * time_diffs_reciprocal
             - 4 * knot_derivatives[..., :-1]
             - 2 * knot_derivatives[..., 1:]) * time_diffs_reciprocal
    three_d = (-six_path_diffs * time_diffs_reciprocal
               + 3 * (knot_derivatives[..., :-1]
                      + knot_derivatives[..., 1:])) * time_diffs_reciprocal_squared

    return a, b, two_c, three_d


def natural_cubic_coeffs(x, t):
    # x: (batch, length, channels); the channels go last as torchcde's internals want the length last.
    x = x.transpose(-1, -2)
    a, b, two_c, three_d = _natural_cubic_spline_coeffs_without_missing_values(t, x)
    a, b, two_c, three_d = (c.transpose(-1, -2) for c in (a, b, two_c, three_d))
    return torch.cat([a, b, two_c, three_d], dim=-1)


class CubicSpline:
    def __init__(self, coeffs, t):
        channels = coeffs.size(-1) // 4
        self._t = t
        self._a, self._b, self._two_c, self._three_d = coeffs.split(channels, dim=-1)

    @property
    def interval(self):
        return torch.stack([self._t[0], self._t[-1]])

    @property
    def grid_points(self):
        return self._t

    def _interpret_t(self, t):
        t = torch.as_tensor(t, dtype=self._b.dtype, device=self._b.device)
        maxlen = self._b.size(-2) - 1
        # clamp because t may go outside of [t[0], t[-1]]; this is fine
        index = torch.bucketize(t.detach(), self._t).sub(1).clamp(0, maxlen)
        # will never access the last element of self._t; this is correct behaviour
        fractional_part = t - self._t[index]
        return fractional_part, index

    def evaluate(self, t):
        fractional_part, index = self._interpret_t(t)
        fractional_part = fractional_part.unsqueeze(-1)
        inner = 0.5 * self._two_c[..., index, :] + self._three_d[..., index, :] * fractional_part / 3
        inner = self._b[..., index, :] + inner * fractional_part
        return self._a[..., index, :] + inner * fractional_part

    def derivative(self, t):
        fractional_part, index = self._interpret_t(t)
        fractional_part = fractional_part.unsqueeze(-1)
        inner = self._two_c[..., index, :] + self._three_d[..., index, :] * fractional_part
        deriv = self._b[..., index, :] + inner * fractional_part
        return deriv


# ----------------------------------------------------------------------------------- model
class CDEFunc(torch.nn.Module):
    def __init__(self, input_channels, hidden_channels):
        super(CDEFunc, self).__init__()  # noqa: UP008 (the example's spelling)
        self.input_channels = input_channels
        self.hidden_channels = hidden_channels

        self.linear1 = torch.nn.Linear(hidden_channels, 32)
        self.linear2 = torch.nn.Linear(32, input_channels * hidden_channels)

    def forward(self, t, z):
        z = self.linear1(z)
        z = z.relu()
        z = self.linear2(z)
        z = z.tanh()
        z = z.view(z.size(0), self.hidden_channels, self.input_channels)
        return z


def cdeint(X, z0, func, t, step_size):
    """Fixed-step RK4 (torchcde.cdeint(method='rk4')) of dz = f(z) dX(t)."""
    def vector_field(s, z):
        return (func(s, z) @ X.derivative(s).unsqueeze(-1)).squeeze(-1)

    zs = [z0]
    z = z0
    for t0, t1 in zip(t[:-1].tolist(), t[1:].tolist()):
        n_steps = max(1, math.ceil((t1 - t0) / step_size))
        h = (t1 - t0) / n_steps
        s = t0
        for _ in range(n_steps):
            k1 = vector_field(s, z)
            k2 = vector_field(s + h / 2, z + h / 2 * k1)
            k3 = vector_field(s + h / 2, z + h / 2 * k2)
            k4 = vector_field(s + h, z + h * k3)
            z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            s = s + h
        zs.append(z)
    return torch.stack(zs, dim=1)


class NeuralCDE(torch.nn.Module):
    def __init__(self, input_channels, hidden_channels, output_channels):
        super(NeuralCDE, self).__init__()  # noqa: UP008

        self.func = CDEFunc(input_channels, hidden_channels)
        self.initial = torch.nn.Linear(input_channels, hidden_channels)
        self.readout = torch.nn.Linear(hidden_channels, output_channels)

    def forward(self, coeffs, times):
        X = CubicSpline(coeffs, times)
        X0 = X.evaluate(X.interval[0])
        z0 = self.initial(X0)
        z_T = cdeint(X=X, z0=z0, func=self.func, t=X.interval, step_size=0.6)
        z_T = z_T[:, 1]
        pred_y = self.readout(z_T)
        return pred_y


# ----------------------------------------------------------------------------------- main
X_full, y = get_data()
keep = torch.sort(torch.randperm(LENGTH - 2)[: KEPT - 2] + 1).values
keep = torch.cat([torch.tensor([0]), keep, torch.tensor([LENGTH - 1])])
X_obs = X_full[:, keep]
times = X_obs[0, :, 0].clone()
print(f"{X_obs.size(0)} series, {X_obs.size(1)} irregular observations, {X_obs.size(2)} channels")

# Checks of the interpolation, in float64.
X64, t64 = X_obs.double(), times.double()
sweep = natural_cubic_knot_derivatives(t64, X64.transpose(-1, -2))
dense = natural_cubic_knot_derivatives(t64, X64.transpose(-1, -2), dense=True)
solve_err = (sweep - dense).abs().max().item()
spline64 = CubicSpline(natural_cubic_coeffs(X64, t64), t64)
knot_err = max((spline64.evaluate(t64[k]) - X64[:, k]).abs().max().item() for k in range(len(t64)))
probe = t64[0] + (t64[-1] - t64[0]) * torch.rand(25, dtype=torch.float64)
index_bucketize = torch.bucketize(probe, t64)
index_searchsorted = torch.searchsorted(t64, probe, right=True)
same_index = bool(torch.equal(index_bucketize, index_searchsorted))
eps = 1e-6
fd_err = 0.0
for s in probe.tolist():
    fd = (spline64.evaluate(s + eps) - spline64.evaluate(s - eps)) / (2 * eps)
    fd_err = max(fd_err, (fd - spline64.derivative(s)).abs().max().item())
print(f"sweep vs dense solve: {solve_err:.2e}; spline at the knots: {knot_err:.2e}")
print(f"bucketize equals searchsorted(right=True): {same_index}; derivative vs finite differences: {fd_err:.2e}")

train_X, test_X = X_obs[:96], X_obs[96:]
train_y, test_y = y[:96], y[96:]
train_coeffs = natural_cubic_coeffs(train_X, times)
test_coeffs = natural_cubic_coeffs(test_X, times)

model = NeuralCDE(input_channels=3, hidden_channels=HIDDEN, output_channels=1)

# The vector field's contraction by bmm against einsum.
spline = CubicSpline(train_coeffs[:8], times)
z = torch.randn(8, HIDDEN)
f = model.func(times[3], z)
dX = spline.derivative(times[3] + 0.1)
contract_err = ((f @ dX.unsqueeze(-1)).squeeze(-1) - torch.einsum("bhi,bi->bh", f, dX)).abs().max().item()
print(f"bmm vs einsum contraction: {contract_err:.2e}")


def accuracy(coeffs, labels):
    with torch.no_grad():
        pred_y = model(coeffs, times).squeeze(-1)
        binary_prediction = (torch.sigmoid(pred_y) > 0.5).to(labels.dtype)
        prediction_matches = (binary_prediction == labels).to(labels.dtype)
        return (prediction_matches.sum() / labels.size(0)).item()


acc_before = accuracy(test_coeffs, test_y)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
train_dataset = torch.utils.data.TensorDataset(train_coeffs, train_y)
train_dataloader = torch.utils.data.DataLoader(train_dataset, batch_size=32, shuffle=True)
num_epochs = 12
for epoch in range(num_epochs):
    for batch in train_dataloader:
        batch_coeffs, batch_y = batch
        pred_y = model(batch_coeffs, times).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(pred_y, batch_y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if epoch % 4 == 3:
        print(f"Epoch: {epoch}   Training loss: {loss.item():.4f}")

acc_after = accuracy(test_coeffs, test_y)
print(f"Test Accuracy: {acc_before:.4f} -> {acc_after:.4f}")
print(
    f"FINAL knot_err={knot_err:.3e} fd_err={fd_err:.3e} solve_err={solve_err:.3e} same_index={int(same_index)} "
    f"contract_err={contract_err:.3e} acc_before={acc_before:.4f} acc_after={acc_after:.4f} loss={loss.item():.4f}"
)
