"""N-HiTS (Challu et al. 2023; Nixtla/neuralforecast's ``NHITS``) on synthetic multi-seasonal series.

Each block max-pools its input window at its own rate (``nn.MaxPool1d(kernel_size=k, stride=k,
ceil_mode=True)``, so a window that is not a multiple of ``k`` keeps its last partial pool), an MLP
produces backcast coefficients and a few forecast knots, and ``_IdentityBasis`` interpolates the knots
to the horizon with ``F.interpolate(knots[:, None, :], size=h, mode='linear')`` (one block uses
``mode='nearest'``). Blocks are stacked doubly-residually: ``residuals = (residuals - backcast) *
insample_mask`` on the flipped window, ``forecast = forecast + block_forecast`` starting from the
naive level. Windows are scaled by their own mean and standard deviation (``std.clamp_min``) and the
forecast is scaled back; the loss is the MAE, trained by Adam with ``StepLR``.

Checked: the decomposed forecast (the level plus each stack's forecast) sums to the model output, the
test MAE is below the seasonal-naive baseline, and the loss falls.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


class _IdentityBasis(nn.Module):
    def __init__(self, backcast_size, forecast_size, interpolation_mode):
        super().__init__()
        assert interpolation_mode in ["linear", "nearest"]
        self.forecast_size = forecast_size
        self.backcast_size = backcast_size
        self.interpolation_mode = interpolation_mode

    def forward(self, theta):
        backcast = theta[:, : self.backcast_size]
        knots = theta[:, self.backcast_size:]
        # interpolation runs over the last dim: (B, 1, n_knots) -> (B, 1, h)
        forecast = F.interpolate(knots[:, None, :], size=self.forecast_size, mode=self.interpolation_mode)
        forecast = forecast[:, 0, :]
        return backcast, forecast


class NHITSBlock(nn.Module):
    def __init__(self, input_size, h, n_theta, mlp_units, basis, n_pool_kernel_size, dropout_prob=0.0):
        super().__init__()
        pooled_hist_size = int(np.ceil(input_size / n_pool_kernel_size))
        self.pooling_layer = nn.MaxPool1d(kernel_size=n_pool_kernel_size, stride=n_pool_kernel_size, ceil_mode=True)
        hidden_layers = [nn.Linear(in_features=pooled_hist_size, out_features=mlp_units[0][0])]
        for layer in mlp_units:
            hidden_layers.append(nn.Linear(in_features=layer[0], out_features=layer[1]))
            hidden_layers.append(nn.ReLU())
            if dropout_prob > 0:
                hidden_layers.append(nn.Dropout(p=dropout_prob))
        output_layer = [nn.Linear(in_features=mlp_units[-1][1], out_features=n_theta)]
        self.layers = nn.Sequential(*hidden_layers, *output_layer)
        self.basis = basis

    def forward(self, insample_y):
        # Pool1d needs (B, C, L): add the channel dim and take it away again
        insample_y = insample_y.unsqueeze(1)
        insample_y = self.pooling_layer(insample_y)
        insample_y = insample_y.squeeze(1)
        theta = self.layers(insample_y)
        backcast, forecast = self.basis(theta)
        return backcast, forecast


class NHITS(nn.Module):
    def __init__(self, h, input_size, n_pool_kernel_size=(4, 2, 1), n_freq_downsample=(6, 3, 1),
                 interpolation_modes=("linear", "linear", "nearest"), mlp_units=((64, 64), (64, 64))):
        super().__init__()
        self.h = h
        self.input_size = input_size
        blocks = []
        for kernel, downsample, mode in zip(n_pool_kernel_size, n_freq_downsample, interpolation_modes):
            n_theta = input_size + max(h // downsample, 1)
            basis = _IdentityBasis(backcast_size=input_size, forecast_size=h, interpolation_mode=mode)
            blocks.append(NHITSBlock(input_size, h, n_theta, [list(u) for u in mlp_units], basis, kernel))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, insample_y, insample_mask, decompose_forecast=False):
        residuals = insample_y.flip(dims=(-1,))
        insample_mask = insample_mask.flip(dims=(-1,))
        forecast = insample_y[:, -1:]  # level with Naive1
        block_forecasts = [forecast.repeat(1, self.h)]
        for block in self.blocks:
            backcast, block_forecast = block(insample_y=residuals)
            residuals = (residuals - backcast) * insample_mask
            forecast = forecast + block_forecast
            if decompose_forecast:
                block_forecasts.append(block_forecast)
        if decompose_forecast:
            return torch.stack(block_forecasts, dim=1)  # (B, 1 + n_blocks, h)
        return forecast


class StandardScaler:
    """Scale each window by its own statistics; the forecast is scaled back with the same ones."""

    def __init__(self, eps=1e-3):
        self.eps = eps

    def fit_transform(self, x):
        self.mean = x.mean(dim=-1, keepdim=True)
        self.std = x.std(dim=-1, keepdim=True).clamp_min(self.eps)
        return (x - self.mean) / self.std

    def transform(self, y):
        return (y - self.mean) / self.std

    def inverse_transform(self, z):
        return z * self.std + self.mean


# ------------------------------------------------------------------ data: two seasonalities, a trend, noise
N_SERIES, LENGTH, H, INPUT_SIZE, SEASON = 24, 360, 24, 50, 24


def make_series():
    t = np.arange(LENGTH)
    level = rng.uniform(5, 15, size=(N_SERIES, 1))
    trend = rng.uniform(-0.01, 0.01, size=(N_SERIES, 1)) * t
    daily = rng.uniform(1, 3, size=(N_SERIES, 1)) * np.sin(2 * np.pi * t / SEASON + rng.uniform(0, 2 * np.pi, (N_SERIES, 1)))
    fast = rng.uniform(0.5, 1.5, size=(N_SERIES, 1)) * np.sin(2 * np.pi * t / 7 + rng.uniform(0, 2 * np.pi, (N_SERIES, 1)))
    noise = 0.3 * rng.normal(size=(N_SERIES, LENGTH))
    return (level + trend + daily + fast + noise).astype(np.float32)


series = torch.from_numpy(make_series())
TEST_START = LENGTH - H - 2 * H  # the last windows are held out


def windows(start_lo, start_hi):
    xs, ys = [], []
    for s in range(start_lo, start_hi):
        xs.append(series[:, s:s + INPUT_SIZE])
        ys.append(series[:, s + INPUT_SIZE:s + INPUT_SIZE + H])
    return torch.cat(xs), torch.cat(ys)


x_train, y_train = windows(0, TEST_START - INPUT_SIZE - H)
x_test, y_test = windows(TEST_START - INPUT_SIZE, LENGTH - INPUT_SIZE - H + 1)
print(f"train windows {tuple(x_train.shape)} -> {tuple(y_train.shape)}, test windows {tuple(x_test.shape)}")

# seasonal naive: repeat the last season of the window
seasonal_naive = x_test[:, -SEASON:].repeat(1, H // SEASON + 1)[:, :H]
naive_mae = (seasonal_naive - y_test).abs().mean().item()

pool = nn.MaxPool1d(kernel_size=4, stride=4, ceil_mode=True)
pooled = pool(x_train[:2, None, :])
assert pooled.shape == (2, 1, -(-INPUT_SIZE // 4))
assert torch.equal(pooled[:, 0, -1], x_train[:2, 48:].max(dim=-1).values)
print(f"MaxPool1d(4, ceil_mode=True) on {INPUT_SIZE} steps -> {pooled.shape[-1]}: last pool over the tail: True")

model = NHITS(h=H, input_size=INPUT_SIZE)
print(f"N-HiTS parameters: {sum(p.numel() for p in model.parameters())}")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)
scaler = StandardScaler()
mask = torch.ones(1, INPUT_SIZE)

STEPS, BATCH = 300, 64
first_loss = None
for step in range(STEPS):
    idx = torch.randint(0, x_train.shape[0], (BATCH,))
    x_batch = scaler.fit_transform(x_train[idx])
    y_batch = scaler.transform(y_train[idx])
    forecast = model(x_batch, mask.expand_as(x_batch))
    loss = (forecast - y_batch).abs().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    if first_loss is None:
        first_loss = loss.item()
    if step % 75 == 0 or step == STEPS - 1:
        print(f"step {step:3d} MAE (scaled) {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.1e}")

model.eval()
with torch.no_grad():
    x_scaled = scaler.fit_transform(x_test)
    m = mask.expand_as(x_scaled)
    forecast_scaled = model(x_scaled, m)
    stacks = model(x_scaled, m, decompose_forecast=True)
    forecast = scaler.inverse_transform(forecast_scaled)
decompose_err = (stacks.sum(dim=1) - forecast_scaled).abs().max().item()
assert stacks.shape == (x_test.shape[0], 1 + len(model.blocks), H)
assert decompose_err < 1e-4, decompose_err
test_mae = (forecast - y_test).abs().mean().item()
print(f"stacks {tuple(stacks.shape)} sum to the forecast: {decompose_err < 1e-4}")
print(f"test MAE {test_mae:.4f} vs seasonal naive {naive_mae:.4f}: better: {test_mae < naive_mae}")
print(f"FINAL test_mae={test_mae:.4f} mae_ratio={test_mae / naive_mae:.4f} loss_ratio={loss.item() / first_loss:.4f} "
      f"decompose_err={decompose_err:.3e}")
