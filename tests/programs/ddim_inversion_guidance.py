"""DDIM deterministic sampling, DDIM inversion and classifier-free guidance on a 2-d toy, the way
prompt-to-prompt / null-text inversion and diffusers' ``DDIMScheduler`` write them: ``alphas_cumprod``
by ``torch.cumprod(1 - torch.linspace(...))``, ``final_alpha_cumprod``, timesteps from
``(np.arange(0, n) * step_ratio).round()[::-1].copy()`` into ``torch.from_numpy``, the eta=0
``prev_step`` (``pred_original_sample = (x - beta_prod_t ** 0.5 * eps) / alpha_prod_t ** 0.5``) and
the inversion's ``next_step`` over reversed timesteps; a conditional MLP denoiser with a sinusoidal
timestep embedding (``torch.exp(-math.log(max_period) * torch.arange(half) / half)``) and an
``nn.Embedding(num_classes + 1, d)`` whose last row is the null token, labels dropped to it by
``torch.where(torch.rand(b) < p_uncond, null, y)``; guidance ``eps_u + w * (eps_c - eps_u)`` on a
``torch.cat([latents] * 2)`` batch split by ``chunk(2)`` (checked against two separate calls).
Data: a 3-class Gaussian mixture from NumPy. Checks the invert -> sample round trip returns the
data and that guidance raises the fraction of samples landing in the target class.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

NUM_CLASSES = 3
NUM_TRAIN_TIMESTEPS = 1000
NUM_DDIM_STEPS = 50


def timestep_embedding(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return embedding


class ConditionalDenoiser(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES, hidden=128, emb_dim=32):
        super().__init__()
        self.emb_dim = emb_dim
        self.null_class = num_classes
        self.time_embed = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.class_embed = nn.Embedding(num_classes + 1, hidden)
        self.in_proj = nn.Linear(2, hidden)
        self.blocks = nn.ModuleList([nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.SiLU())
                                     for _ in range(3)])
        self.out = nn.Linear(hidden, 2)

    def forward(self, x, t, y):
        cond = self.time_embed(timestep_embedding(t, self.emb_dim)) + self.class_embed(y)
        h = self.in_proj(x)
        for block in self.blocks:
            h = h + block(h + cond)
        return self.out(h)


class DDIMScheduler:
    def __init__(self, num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, set_alpha_to_one=True):
        self.num_train_timesteps = num_train_timesteps
        self.betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.final_alpha_cumprod = torch.tensor(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        self.num_inference_steps = None
        self.timesteps = torch.from_numpy(np.arange(0, num_train_timesteps)[::-1].copy().astype(np.int64))

    def set_timesteps(self, num_inference_steps):
        self.num_inference_steps = num_inference_steps
        step_ratio = self.num_train_timesteps // self.num_inference_steps
        timesteps = (np.arange(0, num_inference_steps) * step_ratio).round()[::-1].copy().astype(np.int64)
        self.timesteps = torch.from_numpy(timesteps)

    def add_noise(self, original_samples, noise, timesteps):
        sqrt_alpha_prod = self.alphas_cumprod[timesteps] ** 0.5
        sqrt_alpha_prod = sqrt_alpha_prod.flatten()
        while len(sqrt_alpha_prod.shape) < len(original_samples.shape):
            sqrt_alpha_prod = sqrt_alpha_prod.unsqueeze(-1)
        sqrt_one_minus_alpha_prod = (1 - self.alphas_cumprod[timesteps]) ** 0.5
        sqrt_one_minus_alpha_prod = sqrt_one_minus_alpha_prod.flatten()
        while len(sqrt_one_minus_alpha_prod.shape) < len(original_samples.shape):
            sqrt_one_minus_alpha_prod = sqrt_one_minus_alpha_prod.unsqueeze(-1)
        return sqrt_alpha_prod * original_samples + sqrt_one_minus_alpha_prod * noise

    # prompt-to-prompt's null_text_w_ptp.py: one eta=0 step down and one step up
    def prev_step(self, model_output, timestep, sample):
        prev_timestep = timestep - self.num_train_timesteps // self.num_inference_steps
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        beta_prod_t = 1 - alpha_prod_t
        pred_original_sample = (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
        pred_sample_direction = (1 - alpha_prod_t_prev) ** 0.5 * model_output
        prev_sample = alpha_prod_t_prev ** 0.5 * pred_original_sample + pred_sample_direction
        return prev_sample

    def next_step(self, model_output, timestep, sample):
        timestep, next_timestep = min(timestep - self.num_train_timesteps // self.num_inference_steps, 999), timestep
        alpha_prod_t = self.alphas_cumprod[timestep] if timestep >= 0 else self.final_alpha_cumprod
        alpha_prod_t_next = self.alphas_cumprod[next_timestep]
        beta_prod_t = 1 - alpha_prod_t
        next_original_sample = (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
        next_sample_direction = (1 - alpha_prod_t_next) ** 0.5 * model_output
        next_sample = alpha_prod_t_next ** 0.5 * next_original_sample + next_sample_direction
        return next_sample


def make_mixture(n, rng):
    angles = np.array([0.0, 2.0, 4.0]) * math.pi / 3
    centers = np.stack([np.cos(angles), np.sin(angles)], 1) * 1.5
    labels = rng.randint(0, NUM_CLASSES, size=n)
    points = centers[labels] + 0.8 * rng.randn(n, 2)
    return (torch.from_numpy(points.astype(np.float32)), torch.from_numpy(labels.astype(np.int64)),
            torch.from_numpy(centers.astype(np.float32)))


rng = np.random.RandomState(0)
data, labels, centers = make_mixture(4096, rng)
model = ConditionalDenoiser()
scheduler = DDIMScheduler(NUM_TRAIN_TIMESTEPS)
print(f"alphas_cumprod[0] {scheduler.alphas_cumprod[0].item():.5f} alphas_cumprod[-1] {scheduler.alphas_cumprod[-1].item():.5f}")
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
p_uncond = 0.2

batch_size, num_steps = 256, 600
losses = []
model.train()
for step in range(num_steps):
    idx = torch.randint(0, data.shape[0], (batch_size,))
    x0, y = data[idx], labels[idx]
    y = torch.where(torch.rand(batch_size) < p_uncond, torch.full_like(y, model.null_class), y)
    noise = torch.randn_like(x0)
    t = torch.randint(0, scheduler.num_train_timesteps, (batch_size,), dtype=torch.long)
    noisy = scheduler.add_noise(x0, noise, t)
    loss = F.mse_loss(model(noisy, t, y), noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 150 == 0 or step == num_steps - 1:
        print(f"step {step} loss {np.mean(losses[-50:]):.4f}")


@torch.no_grad()
def get_noise_pred(latents, t, y, guidance_scale):
    latents_input = torch.cat([latents] * 2)
    y_input = torch.cat([torch.full_like(y, model.null_class), y])
    t_input = torch.full((latents_input.shape[0],), int(t), dtype=torch.long)
    noise_pred = model(latents_input, t_input, y_input)
    noise_pred_uncond, noise_prediction_text = noise_pred.chunk(2)
    return noise_pred_uncond + guidance_scale * (noise_prediction_text - noise_pred_uncond)


@torch.no_grad()
def ddim_sample(latents, y, guidance_scale):
    for t in scheduler.timesteps:
        noise_pred = get_noise_pred(latents, t, y, guidance_scale)
        latents = scheduler.prev_step(noise_pred, t, latents)
    return latents


@torch.no_grad()
def ddim_loop(latent, y):
    # null-text inversion's ddim_inversion: walk the timesteps upwards with the conditional eps
    all_latent = [latent]
    latent = latent.clone().detach()
    for i in range(NUM_DDIM_STEPS):
        t = scheduler.timesteps[len(scheduler.timesteps) - i - 1]
        noise_pred = get_noise_pred(latent, t, y, 1.0)
        latent = scheduler.next_step(noise_pred, t, latent)
        all_latent.append(latent)
    return all_latent


model.eval()
scheduler.set_timesteps(NUM_DDIM_STEPS)
print("timesteps", scheduler.timesteps[:3].tolist(), "...", scheduler.timesteps[-2:].tolist())

# the batched guidance equals the two separate calls it stands for
with torch.no_grad():
    x_probe = torch.randn(16, 2)
    y_probe = torch.randint(0, NUM_CLASSES, (16,))
    t_probe = torch.full((16,), 500, dtype=torch.long)
    eps_u = model(x_probe, t_probe, torch.full_like(y_probe, model.null_class))
    eps_c = model(x_probe, t_probe, y_probe)
    separate = eps_u + 3.0 * (eps_c - eps_u)
    cfg_err = (get_noise_pred(x_probe, 500, y_probe, 3.0) - separate).abs().max().item()

# inversion round trip on held-out points of the data
x_data, y_data, _ = make_mixture(256, np.random.RandomState(1))
ddim_latents = ddim_loop(x_data, y_data)
x_T = ddim_latents[-1]
reconstruction = ddim_sample(x_T, y_data, 1.0)
roundtrip = (reconstruction - x_data).norm(dim=1)
print(f"inverted latents: mean {x_T.mean().item():+.3f} std {x_T.std().item():.3f}")
print(f"round trip error mean {roundtrip.mean().item():.4f} max {roundtrip.max().item():.4f}")

# guidance: sample the target class from shared noise at w = 0 (unconditional), 1 and 4
target = 0
n_samples = 400
z = torch.randn(n_samples, 2, generator=torch.Generator().manual_seed(1234 + seed))
y_target = torch.full((n_samples,), target, dtype=torch.long)
fractions = {}
for w in (0.0, 1.0, 4.0):
    samples = ddim_sample(z, y_target, w)
    nearest = torch.cdist(samples, centers).argmin(dim=1)
    fractions[w] = (nearest == target).float().mean().item()
    print(f"guidance {w:.1f}: target fraction {fractions[w]:.4f} mean distance {torch.cdist(samples, centers)[:, target].mean().item():.4f}")

print(f"FINAL loss={np.mean(losses[-100:]):.4f} roundtrip={roundtrip.mean().item():.4f} "
      f"cfg_err={cfg_err:.6f} frac_uncond={fractions[0.0]:.4f} frac_cond={fractions[1.0]:.4f} "
      f"frac_guided={fractions[4.0]:.4f} guidance_gain={fractions[4.0] - fractions[0.0]:.4f}")
