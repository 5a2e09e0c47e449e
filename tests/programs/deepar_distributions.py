"""DeepAR (Salinas et al.; the pytorch-forecasting / GluonTS idioms) with ``torch.distributions`` heads.

An autoregressive LSTM fed the previous (scaled) value and calendar covariates outputs the
parameters of a likelihood per step: a Gaussian (``mu`` and ``sigma = F.softplus(...) + 1e-6``,
``torch.distributions.Normal(mu, sigma).log_prob(y)``) for a real series, a ``NegativeBinomial``
(``total_count`` by softplus, ``logits``) for a count series, and a ``StudentT`` head as the
alternative; the scale is ``v = 1 + x.mean(1, keepdim=True)`` over the conditioning range.
Training is teacher forcing over context + horizon; forecasting unrolls the context and then
draws ancestral sample paths (``.sample()``, and ``.rsample()`` for the Gaussian), reported as
``torch.quantile(samples, torch.tensor([0.1, 0.5, 0.9]), dim=0)``; the scores are written by
hand: a sample CRPS (E|X - y| - E|X - X'| / 2) and the normalised quantile loss (rho-risk).
``Independent(Normal(...), 1)`` scores whole horizons.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Independent, NegativeBinomial, Normal, StudentT

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_SERIES, LENGTH, PERIOD = 32, 96, 8
CONTEXT, HORIZON = 24, 8
N_SAMPLES = 64
QUANTILES = torch.tensor([0.1, 0.5, 0.9])


def make_data():
    t = np.arange(LENGTH)
    level = rng.uniform(5, 50, size=(N_SERIES, 1))
    season = 1 + 0.5 * np.sin(2 * np.pi * t / PERIOD + rng.uniform(0, 2 * np.pi, size=(N_SERIES, 1)))
    real = level * season + rng.randn(N_SERIES, LENGTH) * 0.1 * level
    counts = rng.poisson(0.2 * level * season).astype(np.float64)
    covariates = np.stack([np.sin(2 * np.pi * t / PERIOD), np.cos(2 * np.pi * t / PERIOD)], -1)
    return (torch.tensor(real, dtype=torch.float32), torch.tensor(counts, dtype=torch.float32),
            torch.tensor(covariates, dtype=torch.float32))


real_series, count_series, calendar = make_data()
SPLIT = LENGTH - HORIZON  # the last HORIZON steps are the test range


class DeepAR(nn.Module):
    def __init__(self, likelihood, hidden_size=24, num_layers=2):
        super().__init__()
        self.likelihood = likelihood
        self.rnn = nn.LSTM(input_size=1 + calendar.size(1), hidden_size=hidden_size, num_layers=num_layers,
                           batch_first=True, dropout=0.1)
        n_params = {"normal": 2, "negbin": 2, "studentt": 3}[likelihood]
        self.distribution_projector = nn.Linear(hidden_size, n_params)

    def distribution(self, output, scale):
        params = self.distribution_projector(output)
        if self.likelihood == "normal":
            mu = params[..., 0] * scale
            sigma = (F.softplus(params[..., 1]) + 1e-6) * scale
            return Normal(mu, sigma)
        if self.likelihood == "studentt":
            df = 2.0 + F.softplus(params[..., 2])
            return StudentT(df, params[..., 0] * scale, (F.softplus(params[..., 1]) + 1e-6) * scale)
        # NegativeBinomial in the (total_count, logits) form; the scale multiplies the mean
        total_count = F.softplus(params[..., 0]) + 1e-6
        mean = F.softplus(params[..., 1]) * scale
        return NegativeBinomial(total_count=total_count, logits=torch.log(mean) - torch.log(total_count))

    def forward(self, target, covariates, scale, state=None):
        """Teacher forcing: step t sees the value at t - 1 (scaled) and the covariates at t."""
        lagged = torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], dim=1) / scale
        inputs = torch.cat([lagged.unsqueeze(-1), covariates], dim=-1)
        output, state = self.rnn(inputs, state)
        return self.distribution(output, scale), state

    @torch.no_grad()
    def sample_paths(self, context, context_covariates, future_covariates, scale, n_samples, reparameterised=False):
        _, state = self(context, context_covariates, scale)
        # every path continues from the same state: repeat the batch n_samples times
        state = tuple(s.repeat_interleave(n_samples, dim=1) for s in state)
        scale = scale.repeat_interleave(n_samples, dim=0)
        previous = context[:, -1:].repeat_interleave(n_samples, dim=0)
        future_covariates = future_covariates.repeat_interleave(n_samples, dim=0)
        samples = []
        for t in range(future_covariates.size(1)):
            inputs = torch.cat([(previous / scale).unsqueeze(-1), future_covariates[:, t:t + 1]], dim=-1)
            output, state = self.rnn(inputs, state)
            distribution = self.distribution(output, scale)
            draw = distribution.rsample() if reparameterised else distribution.sample()
            samples.append(draw)
            previous = draw
        paths = torch.cat(samples, dim=1)  # (batch * n_samples, horizon)
        return paths.view(-1, n_samples, paths.size(1)).transpose(0, 1)  # (n_samples, batch, horizon)


def sample_windows(series, batch_size):
    starts = rng.randint(0, SPLIT - CONTEXT - HORIZON + 1, size=batch_size)
    rows = rng.randint(0, N_SERIES, size=batch_size)
    index = torch.tensor(starts[:, None] + np.arange(CONTEXT + HORIZON)[None, :])
    window = series[torch.tensor(rows)[:, None], index]
    return window, calendar[index]


def crps(samples, target):
    """Sample CRPS: E|X - y| - 0.5 E|X - X'|, averaged over series and steps."""
    first = (samples - target).abs().mean(0)
    second = (samples[:, None] - samples[None, :]).abs().mean((0, 1))
    return (first - 0.5 * second).mean()


def rho_risk(quantile_forecast, target, rho):
    """The normalised quantile loss of DeepAR's tables: 2 * sum(|(y - q)(1[y <= q] - rho)|) / sum|y|."""
    indicator = (target <= quantile_forecast).float()
    return 2 * ((target - quantile_forecast) * (indicator - rho)).abs().sum() / target.abs().sum()


def fit_and_forecast(name, likelihood, series, steps=80, batch_size=32):
    model = DeepAR(likelihood)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        model.train()
        window, covariates = sample_windows(series, batch_size)
        scale = 1 + window[:, :CONTEXT].mean(1, keepdim=True)
        distribution, _ = model(window, covariates, scale)
        loss = -distribution.log_prob(window).mean()
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
    model.eval()
    context = series[:, SPLIT - CONTEXT:SPLIT]
    target = series[:, SPLIT:]
    scale = 1 + context.mean(1, keepdim=True)
    context_covariates = calendar[SPLIT - CONTEXT:SPLIT].expand(N_SERIES, -1, -1)
    future_covariates = calendar[SPLIT:].expand(N_SERIES, -1, -1)
    samples = model.sample_paths(context, context_covariates, future_covariates, scale, N_SAMPLES,
                                 reparameterised=likelihood == "normal")
    quantiles = torch.quantile(samples, QUANTILES, dim=0)  # (3, batch, horizon)
    coverage = ((target >= quantiles[0]) & (target <= quantiles[2])).float().mean().item()
    scores = {"crps": crps(samples, target).item() / target.abs().mean().item(),
              "rho50": rho_risk(quantiles[1], target, 0.5).item(),
              "rho90": rho_risk(quantiles[2], target, 0.9).item(), "coverage": coverage}
    print(f"{name}: train nll {loss.item():.4f} samples {tuple(samples.shape)} quantiles {tuple(quantiles.shape)} "
          f"crps {scores['crps']:.4f} rho50 {scores['rho50']:.4f} rho90 {scores['rho90']:.4f} "
          f"80% coverage {coverage:.3f}")
    return model, scores


normal_model, normal_scores = fit_and_forecast("gaussian", "normal", real_series)
studentt_model, studentt_scores = fit_and_forecast("student-t", "studentt", real_series)
negbin_model, negbin_scores = fit_and_forecast("negative binomial", "negbin", count_series)

# whole-horizon scores: Independent makes the horizon one event, so log_prob sums over it
with torch.no_grad():
    window = real_series[:, SPLIT - CONTEXT:]
    covariates = calendar[SPLIT - CONTEXT:].expand(N_SERIES, -1, -1)
    scale = 1 + window[:, :CONTEXT].mean(1, keepdim=True)
    distribution, _ = normal_model(window, covariates, scale)
    horizon = Independent(Normal(distribution.loc[:, CONTEXT:], distribution.scale[:, CONTEXT:]), 1)
    horizon_nll = -horizon.log_prob(window[:, CONTEXT:]).mean().item()
    print("independent batch_shape", tuple(horizon.batch_shape), "event_shape", tuple(horizon.event_shape),
          f"horizon nll {horizon_nll:.4f}")

print(f"FINAL normal_crps={normal_scores['crps']:.4f} normal_rho50={normal_scores['rho50']:.4f} "
      f"studentt_rho50={studentt_scores['rho50']:.4f} negbin_crps={negbin_scores['crps']:.4f} "
      f"negbin_rho50={negbin_scores['rho50']:.4f} horizon_nll={horizon_nll:.4f}")
