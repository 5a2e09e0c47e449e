"""Diffusion Policy (Chi et al. 2023, real-stanford/diffusion_policy) on a toy 2-d reaching task.

The noise model is the repository's ``ConditionalUnet1D`` at a small size: ``Conv1dBlock`` (``nn.Conv1d``
+ ``nn.GroupNorm(n_groups, c)`` + ``nn.Mish()``), ``ConditionalResidualBlock1D`` with FiLM from
``nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c))`` reshaped to ``(b, 2, c, 1)``, ``Downsample1d`` as
``Conv1d(c, c, 3, 2, 1)`` and ``Upsample1d`` as ``ConvTranspose1d(c, c, 4, 2, 1)``, skips by ``torch.cat``,
``permute`` in place of einops, and a ``SinusoidalPosEmb`` diffusion-step encoder whose output is
concatenated with the observation as the global condition. Training is epsilon-prediction MSE under the
squared-cosine schedule (``betas_for_alpha_bar``), AdamW with a ``LambdaLR`` warm-up into cosine decay and
an EMA copy (``copy.deepcopy`` + ``torch.no_grad()`` ``lerp_`` of the parameters). Action chunks are drawn
by DDPM sampling from ``torch.randn(..., generator=...)``; their error to the expert's chunk falls versus
the untrained model's.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

HORIZON, ACTION_DIM, OBS_DIM = 16, 2, 4
NUM_TRAIN_TIMESTEPS = 50


def expert_chunk(obs):
    """The expert moves the agent from its position to the target along a straight line, reaching it
    at 3/4 of the chunk and holding there; actions are absolute positions, as in the Push-T setup."""
    agent, target = obs[:, None, :2], obs[:, None, 2:]
    frac = np.minimum(np.arange(1, HORIZON + 1) / (0.75 * HORIZON), 1.0)[None, :, None]
    return (agent + (target - agent) * frac).astype(np.float32)


def make_dataset(n):
    obs = rng.uniform(-0.8, 0.8, size=(n, OBS_DIM)).astype(np.float32)
    return torch.from_numpy(obs), torch.from_numpy(expert_chunk(obs))


# ---- model (diffusion_policy/model/diffusion/conditional_unet1d.py, shrunk) ----
class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        device = x.device
        half_dim = self.dim // 2
        emb = math.log(10000) / (half_dim - 1)
        emb = torch.exp(torch.arange(half_dim, device=device) * -emb)
        emb = x[:, None] * emb[None, :]
        emb = torch.cat((emb.sin(), emb.cos()), dim=-1)
        return emb


class Downsample1d(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x):
        return self.conv(x)


class Upsample1d(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1)

    def forward(self, x):
        return self.conv(x)


class Conv1dBlock(nn.Module):
    """Conv1d --> GroupNorm --> Mish"""

    def __init__(self, inp_channels, out_channels, kernel_size, n_groups=8):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(inp_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )

    def forward(self, x):
        return self.block(x)


class ConditionalResidualBlock1D(nn.Module):
    def __init__(self, in_channels, out_channels, cond_dim, kernel_size=3, n_groups=8):
        super().__init__()
        self.blocks = nn.ModuleList([
            Conv1dBlock(in_channels, out_channels, kernel_size, n_groups=n_groups),
            Conv1dBlock(out_channels, out_channels, kernel_size, n_groups=n_groups),
        ])
        # FiLM modulation https://arxiv.org/abs/1709.07871: per-channel scale and bias
        cond_channels = out_channels * 2
        self.out_channels = out_channels
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, cond_channels))
        self.residual_conv = nn.Conv1d(in_channels, out_channels, 1) \
            if in_channels != out_channels else nn.Identity()

    def forward(self, x, cond):
        out = self.blocks[0](x)
        embed = self.cond_encoder(cond).unsqueeze(-1)
        embed = embed.reshape(embed.shape[0], 2, self.out_channels, 1)
        scale = embed[:, 0, ...]
        bias = embed[:, 1, ...]
        out = scale * out + bias
        out = self.blocks[1](out)
        out = out + self.residual_conv(x)
        return out


class ConditionalUnet1D(nn.Module):
    def __init__(self, input_dim, global_cond_dim, diffusion_step_embed_dim=32, down_dims=(32, 64),
                 kernel_size=3, n_groups=8):
        super().__init__()
        all_dims = [input_dim] + list(down_dims)
        start_dim = down_dims[0]
        dsed = diffusion_step_embed_dim
        self.diffusion_step_encoder = nn.Sequential(
            SinusoidalPosEmb(dsed),
            nn.Linear(dsed, dsed * 4),
            nn.Mish(),
            nn.Linear(dsed * 4, dsed),
        )
        cond_dim = dsed + global_cond_dim
        in_out = list(zip(all_dims[:-1], all_dims[1:]))
        mid_dim = all_dims[-1]
        self.mid_modules = nn.ModuleList([
            ConditionalResidualBlock1D(mid_dim, mid_dim, cond_dim, kernel_size, n_groups),
        ])
        self.down_modules = nn.ModuleList([])
        for ind, (dim_in, dim_out) in enumerate(in_out):
            is_last = ind >= (len(in_out) - 1)
            self.down_modules.append(nn.ModuleList([
                ConditionalResidualBlock1D(dim_in, dim_out, cond_dim, kernel_size, n_groups),
                Downsample1d(dim_out) if not is_last else nn.Identity(),
            ]))
        self.up_modules = nn.ModuleList([])
        for ind, (dim_in, dim_out) in enumerate(reversed(in_out[1:])):
            is_last = ind >= (len(in_out) - 1)
            self.up_modules.append(nn.ModuleList([
                ConditionalResidualBlock1D(dim_out * 2, dim_in, cond_dim, kernel_size, n_groups),
                Upsample1d(dim_in) if not is_last else nn.Identity(),
            ]))
        self.final_conv = nn.Sequential(
            Conv1dBlock(start_dim, start_dim, kernel_size=kernel_size, n_groups=n_groups),
            nn.Conv1d(start_dim, input_dim, 1),
        )
        print(f"number of parameters: {sum(p.numel() for p in self.parameters()):e}")

    def forward(self, sample, timestep, global_cond=None):
        """sample: (B, T, input_dim); timestep: (B,) or int; global_cond: (B, global_cond_dim)."""
        sample = sample.permute(0, 2, 1)  # 'b h t -> b t h'
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.long, device=sample.device)
        elif torch.is_tensor(timesteps) and len(timesteps.shape) == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(sample.shape[0])
        global_feature = self.diffusion_step_encoder(timesteps)
        if global_cond is not None:
            global_feature = torch.cat([global_feature, global_cond], axis=-1)

        x = sample
        h = []
        for resnet, downsample in self.down_modules:
            x = resnet(x, global_feature)
            h.append(x)
            x = downsample(x)
        for mid_module in self.mid_modules:
            x = mid_module(x, global_feature)
        for resnet, upsample in self.up_modules:
            x = torch.cat((x, h.pop()), dim=1)
            x = resnet(x, global_feature)
            x = upsample(x)
        x = self.final_conv(x)
        return x.permute(0, 2, 1)  # 'b t h -> b h t'


# ---- scheduler (diffusers' DDPMScheduler with beta_schedule="squaredcos_cap_v2") ----
def betas_for_alpha_bar(num_diffusion_timesteps, max_beta=0.999):
    def alpha_bar(time_step):
        return math.cos((time_step + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = []
    for i in range(num_diffusion_timesteps):
        t1 = i / num_diffusion_timesteps
        t2 = (i + 1) / num_diffusion_timesteps
        betas.append(min(1 - alpha_bar(t2) / alpha_bar(t1), max_beta))
    return torch.tensor(betas, dtype=torch.float32)


class DDPMScheduler:
    def __init__(self, num_train_timesteps):
        self.num_train_timesteps = num_train_timesteps
        self.betas = betas_for_alpha_bar(num_train_timesteps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1)

    def add_noise(self, original_samples, noise, timesteps):
        sqrt_alpha_prod = self.alphas_cumprod[timesteps] ** 0.5
        sqrt_one_minus_alpha_prod = (1 - self.alphas_cumprod[timesteps]) ** 0.5
        while len(sqrt_alpha_prod.shape) < len(original_samples.shape):
            sqrt_alpha_prod = sqrt_alpha_prod.unsqueeze(-1)
            sqrt_one_minus_alpha_prod = sqrt_one_minus_alpha_prod.unsqueeze(-1)
        return sqrt_alpha_prod * original_samples + sqrt_one_minus_alpha_prod * noise

    def step(self, model_output, t, sample, generator=None):
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t
        pred_original_sample = (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
        pred_original_sample = pred_original_sample.clamp(-1.0, 1.0)  # clip_sample=True
        pred_original_sample_coeff = (alpha_prod_t_prev ** 0.5 * current_beta_t) / beta_prod_t
        current_sample_coeff = current_alpha_t ** 0.5 * beta_prod_t_prev / beta_prod_t
        pred_prev_sample = pred_original_sample_coeff * pred_original_sample + current_sample_coeff * sample
        if t > 0:
            variance = (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t
            variance = torch.clamp(variance, min=1e-20)
            noise = torch.randn(model_output.shape, generator=generator, dtype=model_output.dtype)
            pred_prev_sample = pred_prev_sample + variance ** 0.5 * noise
        return pred_prev_sample


@torch.no_grad()
def sample_actions(model, scheduler, obs, generator):
    naction = torch.randn((obs.shape[0], HORIZON, ACTION_DIM), generator=generator)
    for k in scheduler.timesteps:
        noise_pred = model(sample=naction, timestep=k, global_cond=obs)
        naction = scheduler.step(noise_pred, int(k), naction, generator=generator)
    return naction


def ema_update(ema_model, model, decay):
    with torch.no_grad():
        for ema_p, p in zip(ema_model.parameters(), model.parameters()):
            ema_p.lerp_(p, 1.0 - decay)


train_obs, train_actions = make_dataset(512)
test_obs, test_actions = make_dataset(64)
print(f"dataset obs {tuple(train_obs.shape)} actions {tuple(train_actions.shape)}")

noise_pred_net = ConditionalUnet1D(input_dim=ACTION_DIM, global_cond_dim=OBS_DIM)
untrained = copy.deepcopy(noise_pred_net).eval()
ema_net = copy.deepcopy(noise_pred_net)
ema_net.requires_grad_(False)
noise_scheduler = DDPMScheduler(NUM_TRAIN_TIMESTEPS)

num_epochs, batch_size, warmup = 12, 64, 20
steps_per_epoch = train_obs.shape[0] // batch_size
total_steps = num_epochs * steps_per_epoch
optimizer = torch.optim.AdamW(noise_pred_net.parameters(), lr=3e-3, weight_decay=1e-6)


def lr_lambda(step):
    if step < warmup:
        return float(step + 1) / float(warmup)
    progress = float(step - warmup) / float(max(1, total_steps - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)

epoch_losses = []
global_step = 0
for epoch in range(num_epochs):
    noise_pred_net.train()
    perm = torch.randperm(train_obs.shape[0])
    losses = []
    for i in range(steps_per_epoch):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        nobs, naction = train_obs[idx], train_actions[idx]
        noise = torch.randn(naction.shape)
        timesteps = torch.randint(0, NUM_TRAIN_TIMESTEPS, (naction.shape[0],)).long()
        noisy_actions = noise_scheduler.add_noise(naction, noise, timesteps)
        noise_pred = noise_pred_net(noisy_actions, timesteps, global_cond=nobs)
        loss = F.mse_loss(noise_pred, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        global_step += 1
        # warm the EMA up like EMAModel's power schedule: small decay early, 0.95 later
        decay = min(0.95, 1 - (1 + global_step) ** -0.75)
        ema_update(ema_net, noise_pred_net, decay)
        losses.append(loss.item())
    epoch_losses.append(sum(losses) / len(losses))
    if epoch % 3 == 0 or epoch == num_epochs - 1:
        print(f"epoch {epoch:2d} loss {epoch_losses[-1]:.4f} lr {lr_scheduler.get_last_lr()[0]:.2e}")

assert epoch_losses[-1] < epoch_losses[0], "loss did not fall"

ema_net.eval()
noise_pred_net.eval()
errors = {}
for name, net in (("untrained", untrained), ("online", noise_pred_net), ("ema", ema_net)):
    generator = torch.Generator().manual_seed(1000 + seed)
    chunk = sample_actions(net, noise_scheduler, test_obs, generator)
    assert chunk.shape == (test_obs.shape[0], HORIZON, ACTION_DIM)
    errors[name] = (chunk - test_actions).norm(dim=-1).mean().item()
    print(f"[{name}] sampled chunk {tuple(chunk.shape)} mean error to expert {errors[name]:.4f} "
          f"finite {bool(torch.isfinite(chunk).all())}")

same_generator = sample_actions(ema_net, noise_scheduler, test_obs[:4], torch.Generator().manual_seed(7))
again = sample_actions(ema_net, noise_scheduler, test_obs[:4], torch.Generator().manual_seed(7))
assert torch.equal(same_generator, again), "sampling with one generator seed must repeat"

ema_gap = max((a - b).abs().max().item() for a, b in zip(ema_net.parameters(), noise_pred_net.parameters()))
finite = all(bool(torch.isfinite(p).all()) for p in list(ema_net.parameters()) + list(noise_pred_net.parameters()))
assert ema_gap > 0 and finite
assert errors["ema"] < errors["untrained"]
print(f"EMA differs from the online model: max gap {ema_gap:.2e}, all finite {finite}")

print(f"FINAL loss={epoch_losses[-1]:.4f} ema_err={errors['ema']:.4f} online_err={errors['online']:.4f} "
      f"err_ratio={errors['ema'] / errors['untrained']:.4f}")
