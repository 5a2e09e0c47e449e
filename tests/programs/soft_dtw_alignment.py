"""Soft-DTW (Cuturi & Blondel 2017) as a custom ``torch.autograd.Function``, as the PyTorch ports write it.

The forward pass is the dynamic program of the soft minimum with smoothing ``gamma``,

    R[i, j] = D[i-1, j-1] + softmin_gamma(R[i-1, j-1], R[i-1, j], R[i, j-1]),

run in NumPy on ``D.detach().cpu().numpy()`` (as Maghoumi's pytorch-softdtw-cuda does on CPU), and the
backward pass is the paper's E-matrix recursion from the bottom-right corner, both batched over the
first dimension; ``ctx.save_for_backward(D, R, gamma)`` keeps the cost and the forward table. Costs
are pairwise ``torch.cdist(x, y, p=2) ** 2``. Checked by ``torch.autograd.gradcheck`` in float64 on a
tiny case, against hard DTW as gamma -> 0, and against a brute-force sum over all alignments.

Then a Soft-DTW barycenter of randomly shifted sine waves (Adam on the barycenter series, against
the Euclidean mean that smears the shifts), and a small forecaster trained with the Soft-DTW loss
against the same network trained with MSE, both scored by MSE, hard DTW and the error of the
slopes ``torch.diff(..., dim=1)`` (first differences, with ``prepend`` of the last observed value).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def soft_dtw_forward(D, gamma):
    batch, n, m = D.shape
    R = np.full((batch, n + 2, m + 2), np.inf)
    R[:, 0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            r0 = -R[:, i - 1, j - 1] / gamma
            r1 = -R[:, i - 1, j] / gamma
            r2 = -R[:, i, j - 1] / gamma
            rmax = np.maximum(np.maximum(r0, r1), r2)
            rsum = np.exp(r0 - rmax) + np.exp(r1 - rmax) + np.exp(r2 - rmax)
            softmin = -gamma * (np.log(rsum) + rmax)
            R[:, i, j] = D[:, i - 1, j - 1] + softmin
    return R


def soft_dtw_backward(D_, R, gamma):
    batch, n, m = D_.shape
    D = np.zeros((batch, n + 2, m + 2))
    E = np.zeros((batch, n + 2, m + 2))
    D[:, 1 : n + 1, 1 : m + 1] = D_
    E[:, -1, -1] = 1.0
    R = R.copy()
    R[:, :, -1] = -np.inf
    R[:, -1, :] = -np.inf
    R[:, -1, -1] = R[:, -2, -2]
    for j in range(m, 0, -1):
        for i in range(n, 0, -1):
            a = np.exp((R[:, i + 1, j] - R[:, i, j] - D[:, i + 1, j]) / gamma)
            b = np.exp((R[:, i, j + 1] - R[:, i, j] - D[:, i, j + 1]) / gamma)
            c = np.exp((R[:, i + 1, j + 1] - R[:, i, j] - D[:, i + 1, j + 1]) / gamma)
            E[:, i, j] = E[:, i + 1, j] * a + E[:, i, j + 1] * b + E[:, i + 1, j + 1] * c
    return E[:, 1 : n + 1, 1 : m + 1]


class _SoftDTW(torch.autograd.Function):
    @staticmethod
    def forward(ctx, D, gamma):
        dev, dtype = D.device, D.dtype
        gamma = torch.tensor([gamma])
        R = torch.from_numpy(soft_dtw_forward(D.detach().cpu().numpy(), gamma.item())).to(dev).type(dtype)
        ctx.save_for_backward(D, R, gamma)
        return R[:, -2, -2]

    @staticmethod
    def backward(ctx, grad_output):
        D, R, gamma = ctx.saved_tensors
        E = soft_dtw_backward(D.detach().cpu().numpy(), R.detach().cpu().numpy(), gamma.item())
        E = torch.from_numpy(E).to(grad_output.device).type(grad_output.dtype)
        return grad_output.view(-1, 1, 1).expand_as(E) * E, None


class SoftDTW(nn.Module):
    def __init__(self, gamma=1.0, normalize=False):
        super().__init__()
        self.gamma = gamma
        self.normalize = normalize

    @staticmethod
    def cost(x, y):
        return torch.cdist(x, y, p=2) ** 2

    def forward(self, x, y):
        if self.normalize:  # the Soft-DTW divergence: zero when x == y
            xxy = torch.cat([x, x, y])
            yxy = torch.cat([y, x, y])
            out = _SoftDTW.apply(self.cost(xxy, yxy), self.gamma)
            out_xy, out_xx, out_yy = torch.split(out, x.shape[0])
            return out_xy - (out_xx + out_yy) / 2
        return _SoftDTW.apply(self.cost(x, y), self.gamma)


def hard_dtw(x, y):
    """Classic DTW on squared distances, batched: the gamma -> 0 limit of Soft-DTW."""
    D = (torch.cdist(x, y, p=2) ** 2).detach().numpy()
    batch, n, m = D.shape
    R = np.full((batch, n + 1, m + 1), np.inf)
    R[:, 0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            R[:, i, j] = D[:, i - 1, j - 1] + np.minimum(np.minimum(R[:, i - 1, j - 1], R[:, i - 1, j]), R[:, i, j - 1])
    return torch.from_numpy(R[:, n, m])


def brute_force_soft_dtw(D, gamma):
    """-gamma log sum over all monotone alignment paths of exp(-cost / gamma), for one small D."""
    n, m = D.shape
    costs = []

    def walk(i, j, cost):
        cost = cost + D[i, j]
        if (i, j) == (n - 1, m - 1):
            costs.append(cost)
            return
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            if i + di < n and j + dj < m:
                walk(i + di, j + dj, cost)

    walk(0, 0, D.new_zeros(()))
    return -gamma * torch.logsumexp(-torch.stack(costs) / gamma, dim=0), len(costs)


# --- checks on tiny cases ---
x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
y = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
D = (torch.cdist(x, y, p=2) ** 2).detach().requires_grad_(True)
print("gradcheck of the Function on D:", torch.autograd.gradcheck(lambda d: _SoftDTW.apply(d, 0.7), (D,), eps=1e-6, atol=1e-5))
print("gradcheck through cdist ** 2:", torch.autograd.gradcheck(lambda a, b: SoftDTW(gamma=0.7)(a, b), (x, y), eps=1e-6, atol=1e-5))
brute, paths = brute_force_soft_dtw(D[0].detach(), 0.7)
print(f"{paths} alignments of 4 x 5: brute force agrees {torch.allclose(brute, _SoftDTW.apply(D, 0.7)[0])}")
for gamma in (1.0, 0.1, 0.001):
    gap = (SoftDTW(gamma=gamma)(x, y) - hard_dtw(x, y)).abs().max().item()
    print(f"gamma {gamma}: |soft - hard DTW| {gap:.6f}")
divergence = SoftDTW(gamma=0.7, normalize=True)
print(f"divergence of a series with itself is zero {divergence(x, x).abs().max().item() < 1e-12}, "
      f"with another of its length is positive {bool((divergence(x, y[:, :4]) > 0).all())}")

# --- a barycenter of shifted sine waves ---
LENGTH = 32
t = torch.linspace(0, 2 * math.pi, LENGTH)
shifts = torch.from_numpy(rng.uniform(-0.6, 0.6, size=6)).float()
waves = torch.sin(t[None, :] + shifts[:, None]).unsqueeze(-1) + 0.05 * torch.randn(6, LENGTH, 1)
euclidean_mean = waves.mean(dim=0, keepdim=True)
barycenter = euclidean_mean.clone().requires_grad_(True)
sdtw = SoftDTW(gamma=0.1)
optimizer = torch.optim.Adam([barycenter], lr=0.05)
for step in range(60):
    optimizer.zero_grad()
    loss = sdtw(barycenter.expand(len(waves), -1, -1), waves).mean()
    loss.backward()
    optimizer.step()
    if step % 20 == 0:
        print(f"barycenter step {step} soft-DTW {loss.item():.4f}")
with torch.no_grad():
    dtw_mean = hard_dtw(euclidean_mean.expand(len(waves), -1, -1), waves).mean().item()
    dtw_bary = hard_dtw(barycenter.expand(len(waves), -1, -1), waves).mean().item()
    amplitude_mean = euclidean_mean.abs().max().item()
    amplitude_bary = barycenter.abs().max().item()
print(f"mean DTW to the waves: Euclidean mean {dtw_mean:.4f}, soft-DTW barycenter {dtw_bary:.4f}")
print(f"peak amplitude: Euclidean mean {amplitude_mean:.3f}, barycenter {amplitude_bary:.3f}")

# --- a forecaster trained with Soft-DTW against one trained with MSE ---
HISTORY, HORIZON = 20, 12


def make_series(n):
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    freq = rng.uniform(0.25, 0.45, size=(n, 1))
    steps = np.arange(HISTORY + HORIZON)[None, :]
    series = np.sign(np.sin(freq * steps + phase)) * 0.8 + rng.normal(0, 0.05, size=(n, HISTORY + HORIZON))
    series = torch.from_numpy(series.astype(np.float32))
    return series[:, :HISTORY], series[:, HISTORY:]


train_x, train_y = make_series(128)
test_x, test_y = make_series(64)


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * HISTORY - 1, 64), nn.ReLU(), nn.Linear(64, HORIZON))

    def forward(self, history):
        return self.net(torch.cat([history, torch.diff(history, dim=1)], dim=1))


def train_forecaster(criterion, epochs=25):
    torch.manual_seed(seed + 1)
    model = Forecaster()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(train_x)).split(32):
            optimizer.zero_grad()
            loss = criterion(model(train_x[idx]), train_y[idx])
            loss.backward()
            optimizer.step()
    return model


def mse_criterion(pred, target):
    return nn.functional.mse_loss(pred, target)


soft_dtw_loss = SoftDTW(gamma=0.1)


def sdtw_criterion(pred, target):
    return soft_dtw_loss(pred.unsqueeze(-1), target.unsqueeze(-1)).mean()


results = {}
for name, criterion in (("mse", mse_criterion), ("softdtw", sdtw_criterion)):
    model = train_forecaster(criterion)
    with torch.no_grad():
        pred = model(test_x)
        mse = nn.functional.mse_loss(pred, test_y).item()
        dtw = hard_dtw(pred.unsqueeze(-1), test_y.unsqueeze(-1)).mean().item()
        slope = (torch.diff(pred, dim=1, prepend=test_x[:, -1:]) - torch.diff(test_y, dim=1, prepend=test_x[:, -1:]))
        slope_error = slope.abs().mean().item()
    results[name] = (mse, dtw, slope_error)
    print(f"trained with {name}: test MSE {mse:.4f} DTW {dtw:.4f} slope error {slope_error:.4f}")

print(f"FINAL bary_dtw={dtw_bary:.4f} mean_dtw={dtw_mean:.4f} mse_model_mse={results['mse'][0]:.4f} "
      f"mse_model_dtw={results['mse'][1]:.4f} sdtw_model_mse={results['softdtw'][0]:.4f} "
      f"sdtw_model_dtw={results['softdtw'][1]:.4f}")
