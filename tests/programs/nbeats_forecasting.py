"""N-BEATS (ElementAI/N-BEATS, models/nbeats.py) on synthetic trend + seasonal series.

Both variants of the paper: the generic model (``GenericBasis``: theta split into backcast and
forecast by slicing) and the interpretable one, ``TrendBasis`` (polynomial basis from
``np.power(np.arange(...) / size, i)``) and ``SeasonalityBasis`` (cos/sin of
``2 * np.pi * np.arange(...) * frequency``), their basis matrices registered as non-trainable
``nn.Parameter``s / buffers and applied by ``torch.einsum('bp,pt->bt', theta, basis)``.
``NBeats.forward`` stacks residually: ``residuals = (residuals - backcast) * input_mask``,
``forecast = forecast + block_forecast``, with the input flipped as the repository does. The
losses are its ``mase_loss``/``smape_2_loss`` with ``divide_no_nan`` by ``torch.where(torch.isnan
(r) | torch.isinf(r), torch.zeros_like(r), r)``; training windows are cut at
``np.random.randint`` points; ``torch.optim.Adam`` with ``lr_scheduler.StepLR``; early stopping
keeps ``{k: v.clone() for k, v in model.state_dict().items()}`` and restores it with
``load_state_dict`` at the end.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

HORIZON, LOOKBACK = 6, 3  # input size = LOOKBACK * HORIZON, as the repository's configs do
INPUT_SIZE = LOOKBACK * HORIZON
PERIOD = 12
N_SERIES, SERIES_LENGTH = 24, 120


def make_series():
    t = np.arange(SERIES_LENGTH, dtype=np.float64)
    level = np.random.uniform(10, 20, size=(N_SERIES, 1))
    slope = np.random.uniform(-0.05, 0.1, size=(N_SERIES, 1))
    amplitude = np.random.uniform(1, 4, size=(N_SERIES, 1))
    phase = np.random.uniform(0, 2 * np.pi, size=(N_SERIES, 1))
    noise = 0.3 * np.random.randn(N_SERIES, SERIES_LENGTH)
    return (level + slope * t + amplitude * np.sin(2 * np.pi * t / PERIOD + phase) + noise).astype(np.float32)


series = make_series()
train_series, test_series = series[:, :-HORIZON], series[:, -HORIZON - INPUT_SIZE:]


def sample_batch(batch_size):
    """The repository's sampler: a random series, a random cut point, the window before it."""
    insample = np.zeros((batch_size, INPUT_SIZE), dtype=np.float32)
    insample_mask = np.zeros((batch_size, INPUT_SIZE), dtype=np.float32)
    outsample = np.zeros((batch_size, HORIZON), dtype=np.float32)
    outsample_mask = np.zeros((batch_size, HORIZON), dtype=np.float32)
    for i, sampled_index in enumerate(np.random.randint(len(train_series), size=batch_size)):
        sampled_series = train_series[sampled_index]
        cut_point = np.random.randint(low=INPUT_SIZE // 2, high=len(sampled_series) - HORIZON)
        insample_window = sampled_series[max(0, cut_point - INPUT_SIZE):cut_point]
        insample[i, -len(insample_window):] = insample_window
        insample_mask[i, -len(insample_window):] = 1.0
        outsample_window = sampled_series[cut_point:cut_point + HORIZON]
        outsample[i, :len(outsample_window)] = outsample_window
        outsample_mask[i, :len(outsample_window)] = 1.0
    return [torch.from_numpy(a) for a in (insample, insample_mask, outsample, outsample_mask)]


class NBeatsBlock(nn.Module):
    def __init__(self, input_size, theta_size, basis_function, layers, layer_size):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(in_features=input_size, out_features=layer_size)] +
                                    [nn.Linear(in_features=layer_size, out_features=layer_size)
                                     for _ in range(layers - 1)])
        self.basis_parameters = nn.Linear(in_features=layer_size, out_features=theta_size)
        self.basis_function = basis_function

    def forward(self, x):
        block_input = x
        for layer in self.layers:
            block_input = torch.relu(layer(block_input))
        basis_parameters = self.basis_parameters(block_input)
        return self.basis_function(basis_parameters)


class NBeats(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = blocks

    def forward(self, x, input_mask):
        residuals = x.flip(dims=(1,))
        input_mask = input_mask.flip(dims=(1,))
        forecast = x[:, -1:]
        for block in self.blocks:
            backcast, block_forecast = block(residuals)
            residuals = (residuals - backcast) * input_mask
            forecast = forecast + block_forecast
        return forecast


class GenericBasis(nn.Module):
    def __init__(self, backcast_size, forecast_size):
        super().__init__()
        self.backcast_size = backcast_size
        self.forecast_size = forecast_size

    def forward(self, theta):
        return theta[:, :self.backcast_size], theta[:, -self.forecast_size:]


class TrendBasis(nn.Module):
    def __init__(self, degree_of_polynomial, backcast_size, forecast_size):
        super().__init__()
        self.polynomial_size = degree_of_polynomial + 1
        self.backcast_time = nn.Parameter(
            torch.tensor(np.concatenate([np.power(np.arange(backcast_size, dtype=np.float64) / backcast_size, i)[None, :]
                                         for i in range(self.polynomial_size)]), dtype=torch.float32),
            requires_grad=False)
        self.forecast_time = nn.Parameter(
            torch.tensor(np.concatenate([np.power(np.arange(forecast_size, dtype=np.float64) / forecast_size, i)[None, :]
                                         for i in range(self.polynomial_size)]), dtype=torch.float32),
            requires_grad=False)

    def forward(self, theta):
        backcast = torch.einsum('bp,pt->bt', theta[:, self.polynomial_size:], self.backcast_time)
        forecast = torch.einsum('bp,pt->bt', theta[:, :self.polynomial_size], self.forecast_time)
        return backcast, forecast


class SeasonalityBasis(nn.Module):
    def __init__(self, harmonics, backcast_size, forecast_size):
        super().__init__()
        self.frequency = np.append(np.zeros(1, dtype=np.float32),
                                   np.arange(harmonics, harmonics / 2 * forecast_size,
                                             dtype=np.float32) / harmonics)[None, :]
        backcast_grid = -2 * np.pi * (np.arange(backcast_size, dtype=np.float32)[:, None] / forecast_size) * self.frequency
        forecast_grid = 2 * np.pi * (np.arange(forecast_size, dtype=np.float32)[:, None] / forecast_size) * self.frequency
        # buffers here (the repository uses frozen Parameters, as TrendBasis above does)
        self.register_buffer("backcast_cos_template", torch.tensor(np.transpose(np.cos(backcast_grid)), dtype=torch.float32))
        self.register_buffer("backcast_sin_template", torch.tensor(np.transpose(np.sin(backcast_grid)), dtype=torch.float32))
        self.register_buffer("forecast_cos_template", torch.tensor(np.transpose(np.cos(forecast_grid)), dtype=torch.float32))
        self.register_buffer("forecast_sin_template", torch.tensor(np.transpose(np.sin(forecast_grid)), dtype=torch.float32))

    def forward(self, theta):
        params_per_harmonic = theta.shape[1] // 4
        backcast_harmonics_cos = torch.einsum('bp,pt->bt', theta[:, 2 * params_per_harmonic:3 * params_per_harmonic],
                                              self.backcast_cos_template)
        backcast_harmonics_sin = torch.einsum('bp,pt->bt', theta[:, 3 * params_per_harmonic:], self.backcast_sin_template)
        backcast = backcast_harmonics_sin + backcast_harmonics_cos
        forecast_harmonics_cos = torch.einsum('bp,pt->bt', theta[:, :params_per_harmonic], self.forecast_cos_template)
        forecast_harmonics_sin = torch.einsum('bp,pt->bt', theta[:, params_per_harmonic:2 * params_per_harmonic],
                                              self.forecast_sin_template)
        forecast = forecast_harmonics_sin + forecast_harmonics_cos
        return backcast, forecast


def generic(input_size, output_size, stacks=2, layers=2, layer_size=32):
    return NBeats(nn.ModuleList([NBeatsBlock(input_size=input_size, theta_size=input_size + output_size,
                                             basis_function=GenericBasis(backcast_size=input_size,
                                                                         forecast_size=output_size),
                                             layers=layers, layer_size=layer_size)
                                 for _ in range(stacks)]))


def interpretable(input_size, output_size, degree_of_polynomial=2, harmonics=2, layer_size=32):
    trend_block = NBeatsBlock(input_size=input_size, theta_size=2 * (degree_of_polynomial + 1),
                              basis_function=TrendBasis(degree_of_polynomial, input_size, output_size),
                              layers=2, layer_size=layer_size)
    seasonality_basis = SeasonalityBasis(harmonics, input_size, output_size)
    seasonality_block = NBeatsBlock(input_size=input_size,
                                    theta_size=4 * int(np.ceil(harmonics / 2 * output_size) - (harmonics - 1)),
                                    basis_function=seasonality_basis, layers=2, layer_size=layer_size)
    return NBeats(nn.ModuleList([trend_block, seasonality_block]))


def divide_no_nan(a, b):
    """a / b with NaN and +-inf replaced by 0."""
    result = a / b
    result = torch.where(torch.isnan(result) | torch.isinf(result), torch.zeros_like(result), result)
    return result


def smape_2_loss(forecast, target, mask):
    return 200 * torch.mean(divide_no_nan(torch.abs(forecast - target),
                                          torch.abs(forecast.data) + torch.abs(target.data)) * mask)


def mase_loss(insample, freq, forecast, target, mask):
    masep = torch.mean(torch.abs(insample[:, freq:] - insample[:, :-freq]), dim=1)
    masked_masep_inv = divide_no_nan(mask, masep[:, None])
    return torch.mean(torch.abs(target - forecast) * masked_masep_inv)


def train(name, model, loss_name, iterations=160, batch_size=32):
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=60, gamma=0.5)
    test_x = torch.from_numpy(test_series[:, :INPUT_SIZE])
    test_y = torch.from_numpy(test_series[:, INPUT_SIZE:])
    ones = torch.ones_like(test_x)
    best_loss, best_state, bad_checks, patience = float("inf"), None, 0, 3
    for iteration in range(1, iterations + 1):
        model.train()
        x, x_mask, y, y_mask = sample_batch(batch_size)
        forecast = model(x, x_mask)
        if loss_name == "MASE":
            loss = mase_loss(x, PERIOD // 2, forecast, y, y_mask)
        else:
            loss = smape_2_loss(forecast, y, y_mask)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if iteration % 20 == 0:
            model.eval()
            with torch.no_grad():
                validation = smape_2_loss(model(test_x, ones), test_y, torch.ones_like(test_y)).item()
            if validation < best_loss:
                best_loss, best_iteration, bad_checks = validation, iteration, 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                bad_checks += 1
            if bad_checks >= patience:
                break
    # one summary line: where early stopping ends depends on the seed
    print(f"{name} {loss_name} {loss.item():.4f} best validation sMAPE {best_loss:.4f} at {best_iteration} "
          f"stopped at {iteration} lr {scheduler.get_last_lr()[0]:.6f}")
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        forecast = model(test_x, ones)
    smape = smape_2_loss(forecast, test_y, torch.ones_like(test_y)).item()
    mase = mase_loss(test_x, PERIOD // 2, forecast, test_y, torch.ones_like(test_y)).item()
    return smape, mase


generic_model = generic(INPUT_SIZE, HORIZON)
interpretable_model = interpretable(INPUT_SIZE, HORIZON)
print("trend basis", tuple(interpretable_model.blocks[0].basis_function.forecast_time.shape),
      "seasonality buffers", [tuple(b.shape) for b in interpretable_model.blocks[1].basis_function.buffers()])
print("divide_no_nan", divide_no_nan(torch.tensor([1.0, 0.0, -2.0]), torch.tensor([0.0, 0.0, 4.0])).tolist())

naive = test_series[:, INPUT_SIZE - 1:INPUT_SIZE]
naive_smape = smape_2_loss(torch.from_numpy(np.repeat(naive, HORIZON, 1)), torch.from_numpy(test_series[:, INPUT_SIZE:]),
                           torch.ones(N_SERIES, HORIZON)).item()
generic_smape, generic_mase = train("generic", generic_model, "MASE")
interpretable_smape, interpretable_mase = train("interpretable", interpretable_model, "SMAPE")
print(f"naive sMAPE {naive_smape:.4f}")
print(f"FINAL generic_smape={generic_smape:.4f} generic_mase={generic_mase:.4f} "
      f"interpretable_smape={interpretable_smape:.4f} interpretable_mase={interpretable_mase:.4f}")
