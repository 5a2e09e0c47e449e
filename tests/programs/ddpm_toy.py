"""DDPM on 2-d toy data, the shape of tanelp/tiny-diffusion and the "diffusion models from scratch"
tutorials: a ``NoiseScheduler`` with ``torch.linspace`` betas, ``torch.cumprod`` alphas,
``F.pad(alphas_cumprod[:-1], (1, 0), value=1.)``, ``.sqrt()`` tables ``gather``-ed by timestep and
``reshape(-1, 1)``, ``add_noise`` with ``torch.randn_like``, the posterior mean/variance ``step``
with ``.clip(1e-20)``; a sinusoidal time embedding (``torch.exp(-math.log(10000) * torch.arange(half) / half)``,
``torch.cat((torch.sin(emb), torch.cos(emb)), dim=-1)``) into an MLP with residual ``Block``s and
``nn.GELU``; ``torch.randint`` timesteps, ``F.mse_loss`` on the noise, AdamW, ``clip_grad_norm_``;
sampling ``for t in reversed(range(T))`` under ``torch.no_grad()`` with ``torch.from_numpy(np.repeat(t, n)).long()``.
Data: a noisy circle from NumPy. Checks the samples land on the circle.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class SinusoidalEmbedding(nn.Module):
    def __init__(self, size: int, scale: float = 1.0):
        super().__init__()
        self.size = size
        self.scale = scale

    def forward(self, x: torch.Tensor):
        x = x * self.scale
        half_size = self.size // 2
        emb = torch.log(torch.Tensor([10000.0])) / (half_size - 1)
        emb = torch.exp(-emb * torch.arange(half_size))
        emb = x.unsqueeze(-1) * emb.unsqueeze(0)
        emb = torch.cat((torch.sin(emb), torch.cos(emb)), dim=-1)
        return emb

    def __len__(self):
        return self.size


class Block(nn.Module):
    def __init__(self, size: int):
        super().__init__()

        self.ff = nn.Linear(size, size)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor):
        return x + self.act(self.ff(x))


class MLP(nn.Module):
    def __init__(self, hidden_size: int = 64, hidden_layers: int = 2, emb_size: int = 16):
        super().__init__()

        self.time_mlp = SinusoidalEmbedding(emb_size)
        self.input_mlp1 = SinusoidalEmbedding(emb_size, scale=25.0)
        self.input_mlp2 = SinusoidalEmbedding(emb_size, scale=25.0)

        concat_size = len(self.time_mlp) + len(self.input_mlp1) + len(self.input_mlp2)
        layers = [nn.Linear(concat_size, hidden_size), nn.GELU()]
        for _ in range(hidden_layers):
            layers.append(Block(hidden_size))
        layers.append(nn.Linear(hidden_size, 2))
        self.joint_mlp = nn.Sequential(*layers)

    def forward(self, x, t):
        x1_emb = self.input_mlp1(x[:, 0])
        x2_emb = self.input_mlp2(x[:, 1])
        t_emb = self.time_mlp(t)
        x = torch.cat((x1_emb, x2_emb, t_emb), dim=-1)
        x = self.joint_mlp(x)
        return x


class NoiseScheduler:
    def __init__(self, num_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear"):
        self.num_timesteps = num_timesteps
        if beta_schedule == "linear":
            self.betas = torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float32)
        elif beta_schedule == "quadratic":
            self.betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_timesteps, dtype=torch.float32) ** 2

        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, axis=0)
        self.alphas_cumprod_prev = F.pad(self.alphas_cumprod[:-1], (1, 0), value=1.)

        # required for self.add_noise
        self.sqrt_alphas_cumprod = self.alphas_cumprod ** 0.5
        self.sqrt_one_minus_alphas_cumprod = (1 - self.alphas_cumprod) ** 0.5

        # required for reconstruct_x0
        self.sqrt_inv_alphas_cumprod = torch.sqrt(1 / self.alphas_cumprod)
        self.sqrt_inv_alphas_cumprod_minus_one = torch.sqrt(1 / self.alphas_cumprod - 1)

        # required for q_posterior
        self.posterior_mean_coef1 = self.betas * torch.sqrt(self.alphas_cumprod_prev) / (1. - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1. - self.alphas_cumprod_prev) * torch.sqrt(self.alphas) / (
            1. - self.alphas_cumprod)

    def reconstruct_x0(self, x_t, t, noise):
        s1 = self.sqrt_inv_alphas_cumprod[t]
        s2 = self.sqrt_inv_alphas_cumprod_minus_one[t]
        s1 = s1.reshape(-1, 1)
        s2 = s2.reshape(-1, 1)
        return s1 * x_t - s2 * noise

    def q_posterior(self, x_0, x_t, t):
        s1 = self.posterior_mean_coef1[t]
        s2 = self.posterior_mean_coef2[t]
        s1 = s1.reshape(-1, 1)
        s2 = s2.reshape(-1, 1)
        mu = s1 * x_0 + s2 * x_t
        return mu

    def get_variance(self, t):
        if t == 0:
            return 0

        variance = self.betas[t] * (1. - self.alphas_cumprod_prev[t]) / (1. - self.alphas_cumprod[t])
        variance = variance.clip(1e-20)
        return variance

    def step(self, model_output, timestep, sample):
        t = timestep
        pred_original_sample = self.reconstruct_x0(sample, t, model_output)
        pred_prev_sample = self.q_posterior(pred_original_sample, sample, t)

        variance = 0
        if t > 0:
            noise = torch.randn_like(model_output)
            variance = (self.get_variance(t) ** 0.5) * noise

        pred_prev_sample = pred_prev_sample + variance

        return pred_prev_sample

    def add_noise(self, x_start, x_noise, timesteps):
        # the tutorials' other spelling of the table lookup: gather by timestep
        s1 = self.sqrt_alphas_cumprod.gather(0, timesteps)
        s2 = self.sqrt_one_minus_alphas_cumprod.gather(0, timesteps)

        s1 = s1.reshape(-1, 1)
        s2 = s2.reshape(-1, 1)

        return s1 * x_start + s2 * x_noise

    def __len__(self):
        return self.num_timesteps


def circle_dataset(n, rng):
    theta = 2 * math.pi * rng.rand(n)
    x = np.stack([np.cos(theta), np.sin(theta)], 1) + 0.03 * rng.randn(n, 2)
    return torch.from_numpy(x.astype(np.float32))


rng = np.random.RandomState(0)
dataset = circle_dataset(2000, rng)
model = MLP(hidden_size=64, hidden_layers=2, emb_size=16)
noise_scheduler = NoiseScheduler(num_timesteps=50, beta_schedule="linear", beta_end=0.2)
print(f'schedule: first alpha_bar {noise_scheduler.alphas_cumprod[0].item():.4f} last alpha_bar {noise_scheduler.alphas_cumprod[-1].item():.4f}')
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

batch_size, num_epochs = 64, 10
losses = []
for epoch in range(num_epochs):
    model.train()
    perm = torch.randperm(len(dataset))
    for step in range(len(dataset) // batch_size):
        batch = dataset[perm[step * batch_size:(step + 1) * batch_size]]
        noise = torch.randn(batch.shape)
        timesteps = torch.randint(0, noise_scheduler.num_timesteps, (batch.shape[0],)).long()

        noisy = noise_scheduler.add_noise(batch, noise, timesteps)
        noise_pred = model(noisy, timesteps)
        loss = F.mse_loss(noise_pred, noise)
        loss.backward(loss)

        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.detach().item())
    if epoch % 3 == 0 or epoch == num_epochs - 1:
        print(f"epoch {epoch} mean loss {np.mean(losses[-(len(dataset) // batch_size):]):.4f}")

# generate
model.eval()
sample = torch.randn(500, 2)
timesteps = list(range(len(noise_scheduler)))[::-1]
for _i, t in enumerate(timesteps):
    t = torch.from_numpy(np.repeat(t, 500)).long()
    with torch.no_grad():
        residual = model(sample, t)
    sample = noise_scheduler.step(residual, t[0], sample)
radius = sample.norm(dim=1)
print('sampled', tuple(sample.shape), 'in', len(timesteps), 'steps')
on_circle = ((radius - 1).abs() < 0.2).float().mean().item()
print(f"FINAL loss={np.mean(losses[-30:]):.4f} on_circle={on_circle:.4f} radius_error={(radius - 1).abs().mean().item():.4f}")
