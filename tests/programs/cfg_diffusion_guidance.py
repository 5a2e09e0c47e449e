"""Classifier-free guidance (Ho & Salimans 2022) with DDPM and DDIM sampling on 2-d class-conditional
data, in the style of lucidrains' denoising-diffusion-pytorch (``classifier_free_guidance.py``) and
minDiffusion.

The noise model is an MLP conditioned on a sinusoidal time embedding plus ``nn.Embedding(n_classes + 1,
dim)`` whose last row is the null label; labels are dropped during training by
``torch.where(torch.rand(b) < p_uncond, null, y)``. The cosine schedule builds ``alphas_cumprod`` from
``torch.cos`` of a float64 ``torch.linspace``, betas by ``torch.clip``, ``torch.cumprod`` and
``F.pad(..., (1, 0), value=1.)``, the tables registered as float32 buffers; ``extract`` is
``a.gather(-1, t).reshape(b, *((1,) * (len(x_shape) - 1)))``. The guided noise
``(1 + w) * eps_c - w * eps_u`` comes from one batched call (``torch.cat`` + ``chunk(2)``), checked
against two separate calls. DDPM (posterior mean and clipped log-variance) and DDIM (``eta=0``,
``time_pairs`` from ``torch.linspace(-1, T - 1, steps + 1).int()``) samplers run under
``@torch.no_grad()``; DDIM with ``eta=0`` is deterministic. A classifier trained on the real data
scores the guided samples, whose accuracy rises with the guidance scale ``w``.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

N_CLASSES, TIMESTEPS, DIM = 3, 100, 64
CENTERS = torch.tensor([[math.cos(2 * math.pi * k / N_CLASSES), math.sin(2 * math.pi * k / N_CLASSES)]
                        for k in range(N_CLASSES)]) * 1.5


def make_data(n):
    y = torch.randint(0, N_CLASSES, (n,))
    x = CENTERS[y] + 0.6 * torch.randn(n, 2)
    return x, y


def exists(x):
    return x is not None


def extract(a, t, x_shape):
    b, *_ = t.shape
    out = a.gather(-1, t)
    return out.reshape(b, *((1,) * (len(x_shape) - 1)))


def cosine_beta_schedule(timesteps, s=0.008):
    """cosine schedule, as proposed in https://openreview.net/forum?id=-NVWXNS-E1o"""
    steps = timesteps + 1
    t = torch.linspace(0, timesteps, steps, dtype=torch.float64) / timesteps
    alphas_cumprod = torch.cos((t + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return torch.clip(betas, 0, 0.999)


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim, theta=10000):
        super().__init__()
        self.dim = dim
        self.theta = theta

    def forward(self, x):
        half_dim = self.dim // 2
        emb = math.log(self.theta) / (half_dim - 1)
        emb = torch.exp(torch.arange(half_dim, device=x.device) * -emb)
        emb = x[:, None] * emb[None, :]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class ConditionalMLP(nn.Module):
    def __init__(self, num_classes, dim=DIM, hidden=128):
        super().__init__()
        self.null_class = num_classes
        self.classes_emb = nn.Embedding(num_classes + 1, dim)
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.net = nn.Sequential(nn.Linear(2 + dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2))

    def forward(self, x, time, classes):
        cond = self.time_mlp(time.float()) + self.classes_emb(classes)
        return self.net(torch.cat((x, cond), dim=-1))

    def forward_with_cond_scale(self, x, time, classes, cond_scale):
        """(1 + w) eps(x, c) - w eps(x, null), both halves from one batched call."""
        null = torch.full_like(classes, self.null_class)
        eps_c, eps_u = self(torch.cat([x, x]), torch.cat([time, time]), torch.cat([classes, null])).chunk(2)
        return (1 + cond_scale) * eps_c - cond_scale * eps_u


class GaussianDiffusion(nn.Module):
    def __init__(self, model, timesteps=TIMESTEPS, sampling_timesteps=25, p_uncond=0.2):
        super().__init__()
        self.model = model
        self.p_uncond = p_uncond
        betas = cosine_beta_schedule(timesteps)
        alphas = 1. - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.)
        self.num_timesteps = int(betas.shape[0])
        self.sampling_timesteps = sampling_timesteps

        def register_buffer(name, val):
            return self.register_buffer(name, val.to(torch.float32))

        register_buffer('betas', betas)
        register_buffer('alphas_cumprod', alphas_cumprod)
        register_buffer('alphas_cumprod_prev', alphas_cumprod_prev)
        register_buffer('sqrt_alphas_cumprod', torch.sqrt(alphas_cumprod))
        register_buffer('sqrt_one_minus_alphas_cumprod', torch.sqrt(1. - alphas_cumprod))
        register_buffer('sqrt_recip_alphas_cumprod', torch.sqrt(1. / alphas_cumprod))
        register_buffer('sqrt_recipm1_alphas_cumprod', torch.sqrt(1. / alphas_cumprod - 1))
        posterior_variance = betas * (1. - alphas_cumprod_prev) / (1. - alphas_cumprod)
        register_buffer('posterior_variance', posterior_variance)
        register_buffer('posterior_log_variance_clipped', torch.log(posterior_variance.clamp(min=1e-20)))
        register_buffer('posterior_mean_coef1', betas * torch.sqrt(alphas_cumprod_prev) / (1. - alphas_cumprod))
        register_buffer('posterior_mean_coef2', (1. - alphas_cumprod_prev) * torch.sqrt(alphas) / (1. - alphas_cumprod))

    def predict_start_from_noise(self, x_t, t, noise):
        return (extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t
                - extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape) * noise)

    def predict_noise_from_start(self, x_t, t, x0):
        return ((extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - x0)
                / extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape))

    def q_sample(self, x_start, t, noise=None):
        noise = noise if exists(noise) else torch.randn_like(x_start)
        return (extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
                + extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise)

    def q_posterior(self, x_start, x_t, t):
        posterior_mean = (extract(self.posterior_mean_coef1, t, x_t.shape) * x_start
                          + extract(self.posterior_mean_coef2, t, x_t.shape) * x_t)
        return posterior_mean, extract(self.posterior_log_variance_clipped, t, x_t.shape)

    def model_predictions(self, x, t, classes, cond_scale, rederive_pred_noise=False):
        pred_noise = self.model.forward_with_cond_scale(x, t, classes, cond_scale)
        x_start = self.predict_start_from_noise(x, t, pred_noise).clamp(-4., 4.)
        if rederive_pred_noise:
            # the noise consistent with the clipped x_start, or DDIM's large-w steps run away
            pred_noise = self.predict_noise_from_start(x, t, x_start)
        return pred_noise, x_start

    @torch.no_grad()
    def p_sample_loop(self, classes, cond_scale):
        img = torch.randn(classes.shape[0], 2)
        for t in reversed(range(0, self.num_timesteps)):
            batched_times = torch.full((img.shape[0],), t, dtype=torch.long)
            _, x_start = self.model_predictions(img, batched_times, classes, cond_scale)
            model_mean, model_log_variance = self.q_posterior(x_start, img, batched_times)
            noise = torch.randn_like(img) if t > 0 else 0.
            img = model_mean + (0.5 * model_log_variance).exp() * noise
        return img

    @torch.no_grad()
    def ddim_sample(self, classes, cond_scale, img=None, eta=0.):
        times = torch.linspace(-1, self.num_timesteps - 1, steps=self.sampling_timesteps + 1)
        times = list(reversed(times.int().tolist()))
        time_pairs = list(zip(times[:-1], times[1:]))
        img = torch.randn(classes.shape[0], 2) if img is None else img
        for time, time_next in time_pairs:
            time_cond = torch.full((img.shape[0],), time, dtype=torch.long)
            pred_noise, x_start = self.model_predictions(img, time_cond, classes, cond_scale, rederive_pred_noise=True)
            if time_next < 0:
                img = x_start
                continue
            alpha = self.alphas_cumprod[time]
            alpha_next = self.alphas_cumprod[time_next]
            sigma = eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
            c = (1 - alpha_next - sigma ** 2).sqrt()
            noise = torch.randn_like(img)
            img = x_start * alpha_next.sqrt() + c * pred_noise + sigma * noise
        return img

    def forward(self, x_start, classes):
        b = x_start.shape[0]
        t = torch.randint(0, self.num_timesteps, (b,)).long()
        noise = torch.randn_like(x_start)
        x = self.q_sample(x_start, t, noise)
        # classifier-free guidance: train the unconditional model on the same net, by the null label
        classes = torch.where(torch.rand(b) < self.p_uncond, torch.full_like(classes, self.model.null_class), classes)
        return F.mse_loss(self.model(x, t, classes), noise)


diffusion = GaussianDiffusion(ConditionalMLP(N_CLASSES))
print(f"schedule: {diffusion.num_timesteps} steps, betas {diffusion.betas.dtype} "
      f"[{diffusion.betas[0].item():.5f}, {diffusion.betas[-1].item():.4f}], "
      f"alphas_cumprod[-1] {diffusion.alphas_cumprod[-1].item():.6f}, "
      f"buffers {len(list(diffusion.buffers()))}")

x0, y0 = make_data(8)
t0 = torch.randint(0, TIMESTEPS, (8,))
noise0 = torch.randn_like(x0)
recovered = diffusion.predict_start_from_noise(diffusion.q_sample(x0, t0, noise0), t0, noise0)
print("predict_start_from_noise inverts q_sample:", torch.allclose(recovered, x0, atol=1e-4),
      "extract shape", tuple(extract(diffusion.alphas_cumprod, t0, (8, 2)).shape))

train_x, train_y = make_data(3000)
optimizer = torch.optim.Adam(diffusion.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=1200, eta_min=2e-4)
running = []
for step in range(1200):
    idx = torch.randint(0, train_x.shape[0], (256,))
    loss = diffusion(train_x[idx], train_y[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    running.append(loss.item())
    if step % 400 == 399:
        print(f"step {step + 1} loss {sum(running[-400:]) / 400:.4f} lr {scheduler.get_last_lr()[0]:.5f}")
train_loss = sum(running[-300:]) / 300

# a classifier trained on the real data scores the samples
classifier = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, N_CLASSES))
clf_opt = torch.optim.Adam(classifier.parameters(), lr=1e-2)
for _ in range(300):
    clf_opt.zero_grad()
    F.cross_entropy(classifier(train_x), train_y).backward()
    clf_opt.step()
test_x, test_y = make_data(1000)
with torch.no_grad():
    real_acc = (classifier(test_x).argmax(-1) == test_y).float().mean().item()
print(f"classifier accuracy on real data {real_acc:.3f}")

diffusion.eval()
classes = torch.arange(N_CLASSES).repeat_interleave(80)
with torch.no_grad():
    x = torch.randn(6, 2)
    t = torch.full((6,), 50, dtype=torch.long)
    c = classes[::40]
    w = 2.0
    one_call = diffusion.model.forward_with_cond_scale(x, t, c, w)
    two_calls = (1 + w) * diffusion.model(x, t, c) - w * diffusion.model(x, t, torch.full_like(c, N_CLASSES))
print("batched guidance equals two calls:", torch.allclose(one_call, two_calls, atol=1e-5))

start = torch.randn(classes.shape[0], 2)
again = diffusion.ddim_sample(classes, 1.0, img=start.clone())
print("DDIM eta=0 is deterministic:", torch.equal(diffusion.ddim_sample(classes, 1.0, img=start.clone()), again))

results = {}
for w in (0.0, 1.0, 3.0):
    for name, sampler in (("ddim", diffusion.ddim_sample), ("ddpm", diffusion.p_sample_loop)):
        samples = sampler(classes, w)
        with torch.no_grad():
            acc = (classifier(samples).argmax(-1) == classes).float().mean().item()
        dist = (samples - CENTERS[classes]).norm(dim=-1).mean().item()
        results[(name, w)] = acc
        print(f"[{name}] w {w:.1f} samples {tuple(samples.shape)} classifier accuracy {acc:.3f} "
              f"distance to class centre {dist:.3f} finite {bool(torch.isfinite(samples).all())}")

print(f"FINAL loss={train_loss:.4f} ddim_acc_w0={results[('ddim', 0.0)]:.4f} "
      f"ddim_acc_w3={results[('ddim', 3.0)]:.4f} ddpm_acc_w3={results[('ddpm', 3.0)]:.4f}")
